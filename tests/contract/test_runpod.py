"""The RunPod SDK, as runpod_adapter/ uses it, at the pinned version."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from tests.contract.pins import assert_pinned


def test_the_installed_version_is_the_pin():
    assert_pinned("runpod")


def test_start_takes_one_config_and_honours_the_concurrency_modifier():
    import runpod
    from runpod.serverless.modules.rp_scale import JobScaler

    assert list(inspect.signature(runpod.serverless.start).parameters) == ["config"]
    scaler = JobScaler({"handler": lambda job: job, "concurrency_modifier": lambda _now: 7})
    asyncio.run(scaler.set_scale())
    assert scaler.current_concurrency == 7


def test_an_async_handlers_output_is_the_jobs_and_an_error_key_fails_it():
    """Why error outputs carry no `error` key (runpod_adapter/handler.py, error_output)."""
    from runpod.serverless.modules.rp_job import run_job

    def job_of(output: Any) -> dict[str, Any]:
        async def handler(_job: dict[str, Any]) -> Any:
            return output

        return asyncio.run(run_job(handler, {"id": "job", "input": {}}))

    error = {"object": "error", "message": "m", "type": "t", "param": None, "code": 429}
    assert job_of(dict(error)) == {"output": error}
    assert job_of([{"a": 1}]) == {"output": [{"a": 1}]}
    assert job_of({"error": "x", "a": 1}) == {"output": {"a": 1}, "error": "x"}
