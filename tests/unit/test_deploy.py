"""Deployment files, offline: Kubernetes manifests against the API schemas, BentoCloud's schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cattrs
import kubernetes_validate
import pytest
import yaml
from _bentoml_sdk.service.config import validate as validate_service_config
from bentoml._internal.cloud.schemas.schemasv2 import CreateDeploymentSchema

from handlers.api.metrics import HPA_METRIC
from handlers.settings import load_settings
from tests.image_check_smoke import BENTO_SRC, MAKE_SERVE
from tests.kustomize import render

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
GPU = KUBE / "overlays" / "gpu"
# The oldest Kubernetes minor still common on managed clusters, and the newest the
# validator ships: every resource must be valid on both.
KUBERNETES_VERSIONS = ["1.30", "1.37"]
KINDS = {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"}


def by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    kinds = [doc["kind"] for doc in docs]
    assert len(kinds) == len(set(kinds)), kinds
    return {doc["kind"]: doc for doc in docs}


def container(docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (only,) = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    return only


def env_of(docs: dict[str, dict[str, Any]]) -> dict[str, str]:
    return docs["ConfigMap"]["data"]


@pytest.fixture(scope="module")
def base() -> dict[str, dict[str, Any]]:
    return by_kind(render(KUBE))


@pytest.fixture(scope="module")
def gpu() -> dict[str, dict[str, Any]]:
    return by_kind(render(GPU))


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("folder", [KUBE, GPU], ids=["cpu", "gpu"])
def test_every_rendered_resource_is_valid_against_the_kubernetes_schemas(folder, version):
    docs = render(folder) + [yaml.safe_load((KUBE / "secret.example.yaml").read_text())]
    assert {doc["kind"] for doc in docs} == KINDS | {"Secret"}
    errors = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(map(str, error.path))
            errors.append(f"{doc['kind']} {doc['metadata']['name']}: {where}: {error.message}")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("folder", [KUBE, GPU], ids=["cpu", "gpu"])
def test_the_configmap_is_a_valid_configuration(folder):
    load_settings(by_kind(render(folder))["ConfigMap"]["data"])


def test_probes_port_and_selectors_fit_together(base):
    spec = base["Deployment"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    port = container(base)["ports"][0]
    assert port == {"name": "http", "containerPort": 7997, "protocol": "TCP"}
    assert env_of(base)["INFINITY_PORT"] == env_of(base)["BENTOML_PORT"] == "7997"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container(base)[probe]["httpGet"]["port"] == "http"
    assert container(base)["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container(base)["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert base["Service"]["spec"]["selector"].items() <= labels.items()
    assert base["Service"]["spec"]["ports"][0]["targetPort"] == "http"
    assert base["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1
    assert base["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_the_grace_period_covers_drain_and_shutdown(base):
    env = env_of(base)
    grace = base["Deployment"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace >= float(env["SHUTDOWN_DRAIN_SECONDS"]) + int(env["SHUTDOWN_TIMEOUT"]) + 5


def test_the_container_runs_make_serves_command_in_the_bento(base, gpu):
    """The image's default (`bentoml serve`) has uvicorn's 5 s keep-alive and no graceful-
    shutdown limit; make serve's command, which tests.image_check runs in the image from
    this folder, sets both."""
    for docs in (base, gpu):
        assert container(docs)["workingDir"] == BENTO_SRC
        assert tuple(container(docs)["args"]) == MAKE_SERVE
        assert "command" not in container(docs)  # through BentoML's entrypoint


def test_secrets_and_model_cache(base):
    refs = {item["name"]: item["valueFrom"]["secretKeyRef"] for item in container(base)["env"]}
    assert refs["API_KEY"].get("optional") is None  # no pod without a key
    assert refs["HF_TOKEN"]["optional"] is True
    assert {"configMapRef": {"name": "embedding-service-config"}} in container(base)["envFrom"]
    (mount,) = container(base)["volumeMounts"]
    assert env_of(base)["HF_HOME"].startswith(mount["mountPath"] + "/")
    (volume,) = base["Deployment"]["spec"]["template"]["spec"]["volumes"]
    assert volume["name"] == mount["name"] and "emptyDir" in volume


def test_the_hpa_scales_the_deployment_on_the_per_pod_queue_metric(base):
    spec = base["HorizontalPodAutoscaler"]["spec"]
    assert spec["scaleTargetRef"]["name"] == base["Deployment"]["metadata"]["name"]
    assert "replicas" not in base["Deployment"]["spec"]  # the HPA owns it
    assert 2 <= spec["minReplicas"] < spec["maxReplicas"]
    (metric,) = spec["metrics"]
    assert metric["type"] == "Pods"
    assert metric["pods"]["metric"]["name"] == HPA_METRIC
    target = metric["pods"]["target"]
    assert target["type"] == "AverageValue"
    # Above what a busy pod holds with no backlog (two batches), far below its capacity.
    batch = int(env_of(base)["BATCH_SIZES"])
    assert 2 * batch < int(target["averageValue"]) < int(env_of(base)["INFINITY_QUEUE_SIZE"])
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] > 0


def test_the_adapter_rule_exposes_the_hpa_metric_per_pod():
    values = yaml.safe_load((KUBE / "prometheus-adapter-values.yaml").read_text())
    (rule,) = values["rules"]["custom"]
    assert rule["seriesQuery"].startswith(HPA_METRIC + "{")
    assert rule["name"]["as"] == HPA_METRIC
    assert set(rule["resources"]["overrides"]) == {"namespace", "pod"}


def test_the_gpu_overlay_runs_torch_on_one_gpu(base, gpu):
    assert env_of(gpu)["BACKEND"] == "torch" and env_of(base)["BACKEND"] == "optimum"
    assert container(gpu)["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container(gpu)["image"].endswith(":gpu") and container(base)["image"].endswith(":cpu")
    # Everything else is the base's: probes, secrets, cache.
    for key in ("startupProbe", "readinessProbe", "livenessProbe", "env", "volumeMounts"):
        assert container(gpu)[key] == container(base)[key]
    spec = gpu["HorizontalPodAutoscaler"]["spec"]
    assert spec["minReplicas"] == 2
    assert spec["behavior"] == base["HorizontalPodAutoscaler"]["spec"]["behavior"]
    target = int(spec["metrics"][0]["pods"]["target"]["averageValue"])
    assert 2 * int(env_of(gpu)["BATCH_SIZES"]) < target < int(env_of(gpu)["INFINITY_QUEUE_SIZE"])


def _same_keys(given: Any, validated: Any) -> bool:
    """True when validation dropped no key (BentoML's schema ignores unknown ones)."""
    if isinstance(given, dict):
        return given.keys() == validated.keys() and all(
            _same_keys(given[key], validated[key]) for key in given
        )
    return True


def test_the_bentocloud_file_matches_what_bentoml_deploy_accepts(tmp_path):
    config = yaml.safe_load((ROOT / "deploy" / "bentocloud.yaml").read_text())
    # `bentoml deploy -f` sends the file as a CreateDeploymentSchema; BentoML ignores
    # unknown keys there, so structure it strictly: a typo fails here.
    deployment = cattrs.Converter(forbid_extra_keys=True).structure(config, CreateDeploymentSchema)
    (name, service) = next(iter(deployment.services.items()))
    assert name == "embedding-service"  # the bento's entry service (service.py)
    assert deployment.bento == "embedding-service-cpu:latest"  # deploy/bentofile.cpu.yaml
    overrides = service.config_overrides
    assert _same_keys(overrides, validate_service_config(overrides))
    env = {item.name: item.value for item in deployment.envs}
    load_settings(env)
    assert 2 <= service.scaling.min_replicas < service.scaling.max_replicas
    assert overrides["traffic"]["concurrency"] == 2 * int(env["BATCH_SIZES"])
    assert service.scaling.policy.scale_down_stabilization_window > 0


def test_the_renderer_refuses_what_it_does_not_implement(tmp_path):
    (tmp_path / "kustomization.yaml").write_text("resources: []\nconfigMapGenerator: []\n")
    with pytest.raises(ValueError, match="configMapGenerator"):
        render(tmp_path)
