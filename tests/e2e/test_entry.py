"""One entry point: `bentoml serve .` binds INFINITY_HOST:INFINITY_PORT like `make serve`."""

from __future__ import annotations

import httpx

from tests.conftest import CLIP_ID, EMBED_ID, RERANK_ID
from tests.servers import ServiceProcess


def test_bentoml_serve_binds_infinity_host_and_port(model_env):
    """ServiceProcess sets INFINITY_HOST=127.0.0.1 and a free INFINITY_PORT, and waits for
    /readyz there; BentoML's own default would be port 3000."""
    with ServiceProcess(model_env, command=("-m", "bentoml", "serve", ".")) as proc:
        assert httpx.get(f"{proc.url}/readyz").status_code == 200
        models = httpx.get(f"{proc.url}/v1/models").json()["data"]
        assert {m["id"] for m in models} == {EMBED_ID, RERANK_ID, CLIP_ID}
