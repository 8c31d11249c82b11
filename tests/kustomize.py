"""Offline `kustomize build` for our manifests: resources, strategic-merge patches, images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["render", "strategic_merge"]

# The kustomization fields this renderer implements; any other one fails the render, so a
# manifest change that needs real kustomize cannot pass the tests unrendered.
SUPPORTED = {"apiVersion", "kind", "resources", "patches", "images"}


def render(folder: Path) -> list[dict[str, Any]]:
    """The resources `kubectl apply -k folder` would apply, in order.

    Raises:
        ValueError: the kustomization uses a field, or a patch targets a resource, that
            this renderer does not know.
    """
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(kustomization) - SUPPORTED
    if unknown:
        raise ValueError(f"{folder}: unsupported kustomization fields {sorted(unknown)}")
    docs: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = folder / entry
        if path.is_dir():
            docs.extend(render(path))
        else:
            docs.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    for patch_entry in kustomization.get("patches", []):
        patch = yaml.safe_load((folder / patch_entry["path"]).read_text())
        index = next(
            (
                i
                for i, doc in enumerate(docs)
                if (doc["kind"], doc["metadata"]["name"])
                == (patch["kind"], patch["metadata"]["name"])
            ),
            None,
        )
        if index is None:
            raise ValueError(f"{folder}: patch {patch_entry['path']} matches no resource")
        docs[index] = strategic_merge(docs[index], patch)
    for image in kustomization.get("images", []):
        for doc in docs:
            _set_image(doc, image)
    return docs


def strategic_merge(base: Any, patch: Any) -> Any:
    """The part of Kubernetes' strategic merge our patches use: maps merge key by key,
    lists of named items (containers, env, volumes) merge by `name`, other lists replace."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = strategic_merge(base[key], value) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(patch, list) and _named(base) and _named(patch):
        by_name = {item["name"]: item for item in base}
        for item in patch:
            name = item["name"]
            by_name[name] = strategic_merge(by_name[name], item) if name in by_name else item
        return list(by_name.values())
    return patch


def _named(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(item, dict) and "name" in item for item in items)


def _set_image(doc: dict[str, Any], image: dict[str, str]) -> None:
    """Kustomize's `images` transformer on a workload's containers."""
    pod = doc.get("spec", {}).get("template", {}).get("spec", {})
    for container in pod.get("containers", []) + pod.get("initContainers", []):
        name, tag = container["image"], ""
        head, colon, tail = name.rpartition(":")
        if colon and "/" not in tail:  # a tag, not a registry port
            name, tag = head, tail
        if name == image["name"]:
            new_tag = image.get("newTag", tag)
            container["image"] = image.get("newName", name) + (f":{new_tag}" if new_tag else "")
