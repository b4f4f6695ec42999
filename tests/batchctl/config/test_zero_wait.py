"""batches[].from_zero_interval_seconds and adaptive_idle: their defaults, and the check
against alerts.no_consumers_for (small work waiting at 0 replicas must not page)."""

from __future__ import annotations

from typing import Any

import pytest

from autoscaler.policy import BatchPolicy
from autoscaler.policyconfig import batch_policy, policy_config
from batchctl.config import ConfigError, parse_config
from batchctl.config.batches import DEFAULT_FROM_ZERO_INTERVAL_SECONDS


def parsed(interval: float | None = None, no_consumers_for: str | None = None) -> Any:
    batch: dict[str, Any] = {"queue": "batch0", "deployment": "celery-batch0"}
    if interval is not None:
        batch["from_zero_interval_seconds"] = interval
    data: dict[str, Any] = {"batches": [batch]}
    if no_consumers_for is not None:
        data["alerts"] = {"no_consumers_for": no_consumers_for}
    return parse_config(data, env={})


def problems(**kw: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parsed(**kw)
    return info.value.problems


@pytest.mark.parametrize(
    ("interval", "no_consumers_for", "effective"),
    [
        (None, None, 180.0),  # the default, a minute and more below the alert's 5m
        (None, "2m", 60.0),  # unset: a minute below a shorter alert
        (None, "1s", 0.0),  # ... and never below 0 (start at once)
        (0, "1s", 0.0),
        (240, None, 240.0),  # set: up to a minute below the alert
        (600, "1h", 600.0),
    ],
)
def test_the_interval_in_force(
    interval: float | None, no_consumers_for: str | None, effective: float
) -> None:
    cfg = parsed(interval, no_consumers_for)
    assert cfg.from_zero_interval_of(cfg.batches[0]) == effective
    assert policy_config(cfg).batches[0].from_zero_interval_seconds == effective


@pytest.mark.parametrize(
    ("interval", "no_consumers_for", "limit"),
    [(241, None, "240"), (90, "2m", "60"), (1, "1m", "0"), (30, "30s", "0")],
)
def test_an_interval_too_close_to_the_no_consumers_alert_is_refused(
    interval: float, no_consumers_for: str | None, limit: str
) -> None:
    (line,) = problems(interval=interval, no_consumers_for=no_consumers_for)
    assert line.startswith(f"batches[0].from_zero_interval_seconds: {interval:g} lets small"), line
    assert f"set at most {limit} " in line and "or raise alerts.no_consumers_for" in line


def test_a_negative_interval_is_refused() -> None:
    want = "batches[0].from_zero_interval_seconds: Input should be greater than or equal to 0"
    assert problems(interval=-1) == [f"{want} (got -1)"]


def test_the_policy_defaults_are_the_configs() -> None:
    """The policy's own records (tests build them without a config) default as the config
    does."""
    cfg = parsed()
    b = cfg.batches[0]
    assert b.adaptive_idle is True
    assert BatchPolicy.__dataclass_fields__["adaptive_idle"].default is True
    default = BatchPolicy.__dataclass_fields__["from_zero_interval_seconds"].default
    assert default == DEFAULT_FROM_ZERO_INTERVAL_SECONDS
    assert batch_policy(b).from_zero_interval_seconds == DEFAULT_FROM_ZERO_INTERVAL_SECONDS
    off = parsed(interval=0).batches[0]
    assert batch_policy(off).from_zero_interval_seconds == 0
