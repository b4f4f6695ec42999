"""The demo's summary, from its samples (pure)."""

from __future__ import annotations

from batchctl.demo.runner import Sample, _summarise


def sample(t: float, replicas: int) -> Sample:
    return Sample(t, 0, 0, 0, replicas, replicas, "")


def test_steps_count_from_rest_at_zero() -> None:
    # The first 0 -> 1 happened before the first sample: it is still a scale-up.
    samples = [sample(0, 1), sample(1, 2), sample(2, 2), sample(3, 1), sample(4, 0)]
    s = _summarise(["a", "b"], {"a"}, samples, drained_at=3.5)
    assert (s.scale_ups, s.scale_downs) == (2, 2)
    assert (s.completed, s.lost, s.peak_replicas, s.replicas_at_end) == (1, 1, 2, 0)
    assert s.replica_seconds == 1 + 2 + 2 + 1 and not s.ok
