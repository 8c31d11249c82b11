"""Per-model queue and batch metrics in Prometheus text, read from the schedulers at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from handlers.api.asgi import ASGIApp

if TYPE_CHECKING:
    from handlers.engine.scheduler import Scheduler

__all__ = ["HPA_METRIC", "MetricsRoute", "SchedulerMetrics"]

# The per-pod figure the HorizontalPodAutoscaler scales on (deploy/kubernetes/hpa.yaml).
HPA_METRIC = "embedding_inflight_items"


def _bounds(batch_size: int) -> list[int]:
    """Histogram bounds: powers of two below the batch size, then the batch size itself."""
    bounds = [1]
    while bounds[-1] * 2 < batch_size:
        bounds.append(bounds[-1] * 2)
    return bounds + [batch_size] if batch_size > 1 else bounds


class SchedulerMetrics(Collector):
    """Reads each scheduler's own counters when /metrics is scraped: nothing per request.

    The figures live in one process (the service runs one worker), so no series carries a
    `pid` label, and none goes through prometheus_client's multiprocess files.
    """

    def __init__(self, schedulers: Mapping[str, Scheduler]) -> None:
        self.schedulers = schedulers  # a live view: filled in when the models have loaded

    def text(self) -> bytes:
        """The Prometheus text exposition of every series below."""
        return generate_latest(self)

    def collect(self) -> Iterator[Metric]:
        labels = ["model"]
        waiting = GaugeMetricFamily(
            "embedding_waiting_items",
            "Items waiting for admission (MAX_WAITING_ITEMS line), not yet admitted.",
            labels=labels,
        )
        inflight = GaugeMetricFamily(
            HPA_METRIC,
            "Items admitted and not yet answered (queued or in a batch); at most "
            "INFINITY_QUEUE_SIZE.",
            labels=labels,
        )
        admitted = CounterMetricFamily(
            "embedding_admitted_requests", "Requests admitted.", labels=labels
        )
        rejected = CounterMetricFamily(
            "embedding_rejected_requests",
            "Requests refused at admission: queue_full and timeout (429), too_large (413).",
            labels=[*labels, "reason"],
        )
        processed = CounterMetricFamily(
            "embedding_processed_items", "Items computed by the model.", labels=labels
        )
        dropped = CounterMetricFamily(
            "embedding_dropped_items",
            "Queued items dropped before inference because their caller went away.",
            labels=labels,
        )
        failed = CounterMetricFamily(
            "embedding_failed_batches", "Batches whose model stages raised.", labels=labels
        )
        batches = HistogramMetricFamily(
            "embedding_batch_size", "Items per finished batch.", labels=labels
        )
        for name, scheduler in list(self.schedulers.items()):
            admission, counts = scheduler.admission, scheduler.counts
            waiting.add_metric([name], admission.waiting)
            inflight.add_metric([name], admission.admitted)
            admitted.add_metric([name], admission.requests)
            for reason, count in admission.rejected.items():
                rejected.add_metric([name, reason], count)
            processed.add_metric([name], counts["items"])
            dropped.add_metric([name], counts["dropped"])
            failed.add_metric([name], counts["failed_batches"])
            batches.add_metric([name], *_histogram(list(scheduler.batch_sizes)))
        yield from (waiting, inflight, admitted, rejected, processed, dropped, failed, batches)


def go_float(value: float) -> str:
    """A bucket bound as Prometheus's text format writes it (prometheus_client's own)."""
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]
    return text


def _histogram(by_size: list[int]) -> tuple[list[tuple[str, float]], float]:
    """Cumulative buckets and the sum from counts indexed by batch size."""
    buckets: list[tuple[str, float]] = [
        (go_float(bound), float(sum(by_size[: bound + 1]))) for bound in _bounds(len(by_size) - 1)
    ]
    buckets.append(("+Inf", sum(by_size)))
    return buckets, float(sum(size * count for size, count in enumerate(by_size)))


class MetricsRoute:
    """ASGI middleware that answers GET /metrics with our series alone: used when
    PROMETHEUS_METRICS=false removes BentoML's own route."""

    def __init__(self, app: ASGIApp, metrics: Callable[[], bytes]) -> None:
        self.app = app
        self._metrics = metrics  # the running service's series, in Prometheus text

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/metrics" or scope["method"] != "GET":
            return await self.app(scope, receive, send)
        body = self._metrics()
        headers = [
            (b"content-type", CONTENT_TYPE_LATEST.encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
