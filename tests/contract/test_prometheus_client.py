"""prometheus_client, as handlers/api/metrics.py renders our series, at the pinned version."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tests.contract.pins import assert_pinned


def test_the_installed_version_is_the_pin():
    assert_pinned("prometheus-client")


def test_a_collector_of_metric_families_renders_as_text():
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from prometheus_client.metrics_core import GaugeMetricFamily, HistogramMetricFamily
    from prometheus_client.registry import Collector
    from prometheus_client.utils import floatToGoString

    class Probe(Collector):
        def collect(self) -> Iterator[Any]:
            gauge = GaugeMetricFamily("probe_items", "Items.", labels=["model"])
            gauge.add_metric(["m"], 2)
            sizes = HistogramMetricFamily("probe_batch", "Sizes.", labels=["model"])
            sizes.add_metric(["m"], [(floatToGoString(1), 1.0), ("+Inf", 2.0)], 3.0)
            yield from (gauge, sizes)

    text = generate_latest(Probe()).decode()
    assert 'probe_items{model="m"} 2.0' in text
    assert 'probe_batch_bucket{le="1.0",model="m"} 1.0' in text
    assert CONTENT_TYPE_LATEST.startswith("text/plain")
