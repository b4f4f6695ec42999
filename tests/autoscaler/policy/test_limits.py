"""The caps by band and the in-flight floor (the prefetch window)."""

from __future__ import annotations

from autoscaler.policy import effective_cap, inflight_floor
from batchctl.config import BatchConfig


def test_caps_by_band() -> None:
    assert effective_cap(BatchConfig(queue="q", deployment="d", max_replicas=7)) == 7
    big = BatchConfig(queue="q", deployment="d", max_replicas=15, allow_big=True)
    assert effective_cap(big) == 15
    # Bypassing validation (model_construct) must not bypass the bands.
    sneaky = BatchConfig.model_construct(**{**big.model_dump(), "max_replicas": 50})
    assert effective_cap(sneaky) == 20


def test_inflight_floor_is_prefetch_window() -> None:
    b = BatchConfig(queue="q", deployment="d", worker_concurrency=4, prefetch_multiplier=4)
    assert [inflight_floor(b, n) for n in (0, 1, 16, 17, 33)] == [0, 1, 1, 2, 3]
