"""The metric table (batchctl/metrics.py): every family the exporter and the autoscaler
publish, held to Prometheus' naming rules and to the table's own conventions."""

from __future__ import annotations

import re

import pytest

from batchctl import metrics
from batchctl.metrics import ALL_SPECS, AUTOSCALER_SPECS, EXPORTER_SPECS, Spec

# Prometheus' metric names, without the colons that are for recording rules only.
METRIC_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# Labels Prometheus sets itself on every target (an exporter's would be renamed to
# exported_*), and those the histogram and summary types reserve.
RESERVED_LABELS = {"job", "instance", "le", "quantile"}


def test_every_spec_is_in_exactly_one_room() -> None:
    defined = [v for v in vars(metrics).values() if isinstance(v, Spec)]
    # A Spec defined but left out of both tuples would be published by nobody's tests.
    assert set(defined) == set(ALL_SPECS)
    assert ALL_SPECS == EXPORTER_SPECS + AUTOSCALER_SPECS
    assert len(set(ALL_SPECS)) == len(ALL_SPECS)
    assert not set(EXPORTER_SPECS) & set(AUTOSCALER_SPECS)


def test_names_are_unique_in_both_formats() -> None:
    names = [s.name for s in ALL_SPECS]
    assert len(names) == len(set(names))
    # OpenMetrics names a counter's family without `_total`: a gauge of that name clashes.
    families = [s.name.removesuffix("_total") if s.kind == "counter" else s.name for s in ALL_SPECS]
    assert len(families) == len(set(families))


def test_each_room_has_its_prefix() -> None:
    assert all(s.name.startswith("celery_autoscaler_") for s in AUTOSCALER_SPECS)
    assert not any(s.name.startswith("celery_autoscaler_") for s in EXPORTER_SPECS)


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: s.name)
def test_metric_table_is_consistent(spec: Spec) -> None:
    assert METRIC_NAME.fullmatch(spec.name)
    assert spec.name.startswith("celery_")
    assert spec.kind in ("gauge", "counter", "histogram")
    assert spec.name.endswith("_total") == (spec.kind == "counter")
    # Base units only, and a unit is the name's last word (before a counter's _total).
    words = spec.name.removesuffix("_total").split("_")
    assert not set(words) & {"ms", "milliseconds", "minutes", "hours", "kb", "mb", "kilobytes"}
    assert not set(words[:-1]) & {"seconds", "bytes"}
    assert spec.help and spec.help == spec.help.strip() and "\n" not in spec.help
    assert spec.help.endswith(".") or spec.help.endswith(")")
    assert len(set(spec.labels)) == len(spec.labels)
    for label in spec.labels:
        assert LABEL_NAME.fullmatch(label) and not label.startswith("__")
        assert label not in RESERVED_LABELS
