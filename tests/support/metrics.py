"""Metric values read as Prometheus reads them: the exposition text parsed by
prometheus_client's own parsers, samples looked up by name and labels (client_python's
`registry.get_sample_value` for text). Exposition text itself is compared whole, in one
golden test per renderer (tests/exporter/test_server.py), never by substring."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text
from prometheus_client.samples import Sample


def families(text: str, *, openmetrics: bool = False) -> dict[str, Metric]:
    """Every family of `text` by name (a counter's without its _total)."""
    parse = parse_openmetrics if openmetrics else parse_text
    return {f.name: f for f in parse(text)}


def samples(text: str, name: str | None = None, *, openmetrics: bool = False) -> list[Sample]:
    """The samples of `text` named `name` (a counter's with its _total, a histogram's
    _bucket, _count and _sum), or all of them."""
    return [
        s
        for f in families(text, openmetrics=openmetrics).values()
        for s in f.samples
        if name is None or s.name == name
    ]


def sample(
    text: str,
    name: str,
    labels: Mapping[str, str] | None = None,
    *,
    openmetrics: bool = False,
) -> float | None:
    """The value of the sample `name` with exactly `labels` (none when omitted), or None
    when `text` has no such sample."""
    want = dict(labels or {})
    for s in samples(text, name, openmetrics=openmetrics):
        if s.labels == want:
            return float(s.value)
    return None
