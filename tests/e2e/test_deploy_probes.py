"""The real service answers the Kubernetes manifests' probes and serves the HPA's metric."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import CLIP_ID, EMBED_ID, RERANK_ID
from tests.kustomize import render
from tests.servers import ROOT

KUBE = ROOT / "deploy" / "kubernetes"
KEY = {"Authorization": "Bearer test-secret-key"}  # locked_server's API_KEY
# Default server: BentoML's metrics on. locked_server: API_KEY set, PROMETHEUS_METRICS=false.
SERVERS = ["server", "locked_server"]


def manifest(kind: str) -> dict:
    (doc,) = (doc for doc in render(KUBE) if doc["kind"] == kind)
    return doc


@pytest.mark.parametrize("name", SERVERS)
def test_every_probe_answers_as_the_manifest_expects(request, name):
    url = request.getfixturevalue(name).url
    (container,) = manifest("Deployment")["spec"]["template"]["spec"]["containers"]
    probes = [container[key] for key in ("startupProbe", "readinessProbe", "livenessProbe")]
    for probe in probes:
        # The kubelet sends no credentials and counts 200-399 as success, within the timeout.
        response = httpx.get(url + probe["httpGet"]["path"], timeout=probe["timeoutSeconds"])
        assert 200 <= response.status_code < 400, (probe, response.status_code)


@pytest.mark.parametrize("name", SERVERS)
def test_the_hpa_metric_is_served_per_model_with_the_documented_labels(request, name):
    url = request.getfixturevalue(name).url
    body = {"model": EMBED_ID, "input": ["a", "b"]}
    assert httpx.post(f"{url}/v1/embeddings", json=body, headers=KEY).status_code == 200
    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert any(n.startswith("bentoml_") for n in families) == (name == "server")

    (metric,) = manifest("HorizontalPodAutoscaler")["spec"]["metrics"]
    gauge = families[metric_name := metric["pods"]["metric"]["name"]]
    assert gauge.type == "gauge", metric_name
    assert [sample.labels for sample in gauge.samples] == [
        {"model": model} for model in (EMBED_ID, RERANK_ID, CLIP_ID)
    ]
    ours = [family for family in families.values() if family.name.startswith("embedding_")]
    assert {family.name for family in ours} == {
        "embedding_waiting_items",
        "embedding_inflight_items",
        "embedding_admitted_requests",
        "embedding_rejected_requests",
        "embedding_processed_items",
        "embedding_dropped_items",
        "embedding_failed_batches",
        "embedding_batch_size",
    }
    for family in ours:
        for sample in family.samples:
            assert set(sample.labels) <= {"model", "reason", "le"}, sample  # never `pid`
    processed = families["embedding_processed_items"].samples
    assert {s.labels["model"]: s.value for s in processed}[EMBED_ID] >= 2
