"""The KEDA + HPA model: KEDA's activation and cooldown, the HPA's algorithm."""

from __future__ import annotations

import pytest

from batchctl.sim import keda


@pytest.mark.parametrize(
    ("metric", "current", "want"),
    [
        (0, 1, 0),  # clamped to minReplicas by the caller
        (24, 5, 5),  # ratio 0.96: within the tolerance
        (27, 5, 5),  # ratio 1.08: within the tolerance
        (28, 5, 6),  # ratio 1.12: outside
        (1000, 1, 200),
    ],
)
def test_hpa_recommendation(metric: int, current: int, want: int) -> None:
    assert keda.hpa_recommendation(metric, current, 5, 0.1) == want


def _drive(lengths: list[int], settings: keda.KedaSettings, start: int = 0) -> list[int]:
    """Replicas per second under a given LLEN per second, applied at once."""
    state, replicas, out = keda.KedaState(), start, []
    for s, n in enumerate(lengths):
        desired, state = keda.step(state, settings, float(s), n, replicas)
        replicas = desired
        out.append(replicas)
    return out


def test_keda_activates_then_hpa_doubles_per_sync() -> None:
    reps = _drive([1000] * 120, keda.KedaSettings(max_replicas=20))
    assert reps[0] == 1  # poll at t=0 sees the list: 0 -> 1
    assert reps[15] == 4  # max(2 x 1, 4)
    assert reps[30] == 8 and reps[45] == 16 and reps[60] == 20


def test_keda_reaches_the_cap_within_a_minute() -> None:
    reps = _drive([5000] * 60, keda.KedaSettings(max_replicas=5))
    assert reps.index(5) <= 30


def test_scale_down_waits_for_the_stabilization_window_and_cooldown() -> None:
    settings = keda.KedaSettings(max_replicas=5)
    lengths = [100] * 60 + [0] * 600
    reps = _drive(lengths, settings)
    assert reps[59] == 5
    # The metric is 0 from t=60: the highest recommendation of the last 300 s keeps 5;
    # KEDA's cooldown counts from the last active poll (t=30) and scales to 0.
    assert reps[300] == 5
    assert reps[340] == 0
    assert min(reps[60:330]) == 5


def test_hpa_leaves_zero_to_keda() -> None:
    reps = _drive([0] * 100, keda.KedaSettings(max_replicas=5))
    assert reps == [0] * 100


def test_cached_metrics_follow_the_poll() -> None:
    settings = keda.KedaSettings(max_replicas=20, use_cached_metrics=True)
    lengths = [1] + [1000] * 40
    reps = _drive(lengths, settings)
    # The poll at t=0 saw 1; at t=15 the HPA still reads the cached 1 and keeps 1.
    assert reps[15] == 1
    assert reps[30] == 4
