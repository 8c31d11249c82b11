"""Scheduler metrics: every documented series, read from a real scheduler's own counters."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from handlers.api.metrics import SchedulerMetrics
from handlers.engine.scheduler import Scheduler
from handlers.engine.stages import Limits
from handlers.errors import ServiceError


class Echo:
    def prepare(self, inputs, key):
        return inputs, [1] * len(inputs)

    def forward(self, features):
        return features

    def finish(self, output):
        return output


def samples(metrics: SchedulerMetrics) -> dict[tuple[str, frozenset], float]:
    families = text_string_to_metric_families(metrics.text().decode())
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in families
        for sample in family.samples
    }


async def test_every_series_per_model_with_model_and_reason_labels_only():
    limits = Limits(
        batch_size=4,
        max_batch_tokens=1_000,
        capacity=3,
        max_waiting=1,
        queue_timeout=0,  # a wait's deadline passes at the loop's next turn
        stall_seconds=30.0,
    )
    scheduler = Scheduler(name="m", runners=[Echo()], limits=limits)
    scheduler.start()
    metrics = SchedulerMetrics({"m": scheduler})
    try:
        for inputs in (["a"], ["a", "b", "c"], ["a"] * 3):
            async with scheduler.admit(len(inputs)):
                await scheduler.run(inputs)
        with pytest.raises(ServiceError):
            await scheduler.admission.acquire(4)  # over capacity: 413
        async with scheduler.admit(3):
            held = samples(metrics)
            with pytest.raises(ServiceError):
                await scheduler.admission.acquire(2)  # the line holds 1: 429
            with pytest.raises(ServiceError):
                await scheduler.admission.acquire(1)  # past its deadline: 429
    finally:
        scheduler.stop()
    model = frozenset({("model", "m")})
    assert held[("embedding_inflight_items", model)] == 3
    assert held[("embedding_waiting_items", model)] == 0
    got = samples(metrics)
    assert got[("embedding_inflight_items", model)] == 0
    assert got[("embedding_admitted_requests_total", model)] == 4
    for reason in ("queue_full", "timeout", "too_large"):
        assert got[("embedding_rejected_requests_total", model | {("reason", reason)})] == 1
    assert got[("embedding_processed_items_total", model)] == 7
    assert got[("embedding_batch_size_count", model)] == 3
    assert got[("embedding_batch_size_sum", model)] == 7
    buckets = {
        dict(labels)["le"]: value
        for (name, labels), value in got.items()
        if name == "embedding_batch_size_bucket"
    }
    assert buckets == {"1.0": 1, "2.0": 1, "4.0": 3, "+Inf": 3}
    assert all(set(dict(labels)) <= {"model", "reason", "le"} for _, labels in got)
