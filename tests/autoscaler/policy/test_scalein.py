"""What a step down says about the pods it stops (autoscaler/policy/scalein.py): without
a busy map (Celery's events off) Kubernetes picks them, and the decision says so; with
one it does not need to."""

from __future__ import annotations

import pytest

from autoscaler.policy import Action, PolicyState, Reason, decide
from autoscaler.policy.scalein import NO_BUSY_MAP
from autoscaler.policyconfig import policy_config
from tests.support.policy import NOW, config, obs, ours

# Over the cap (5) by one with work waiting: above_cap steps down one.
OVER = {"waiting": 50, "replicas": 6}


@pytest.mark.parametrize(
    ("idle_replicas", "says_so"),
    [(None, True), (1, False)],
    ids=["no busy map: Kubernetes picks, said", "a busy map: nothing to say"],
)
def test_a_step_down_says_when_kubernetes_picks_the_pods(
    idle_replicas: int | None, says_so: bool
) -> None:

    (d,), _ = decide(
        [obs(idle_replicas=idle_replicas, **OVER)],
        PolicyState({"batch0": ours(6)}),
        policy_config(config()),
        NOW,
    )
    assert (d.desired, d.reason, d.action) == (5, Reason.ABOVE_CAP, Action.DOWN), d.detail
    assert (NO_BUSY_MAP in d.detail) is says_so, d.detail


def test_a_hold_or_a_step_up_says_nothing_of_pods() -> None:

    (d,), _ = decide(
        [obs(waiting=500, replicas=1)],
        PolicyState({"batch0": ours(1)}),
        policy_config(config()),
        NOW,
    )
    assert d.action == Action.UP and NO_BUSY_MAP not in d.detail, d.detail
