"""The two controllers a run can replay a trace under: our policy and KEDA + HPA.

A controller is called at the end of every simulated second with what the exporter would
show (`View`) and returns the replica count to set, or None to leave it. `grace_seconds`
is the terminationGracePeriodSeconds the world applies to the pods it removes. Before a
scale-down the world asks `deletion_costs` for the pod-deletion-cost of each pod: ours
ranks them by the busy map as the Kubernetes backend does (autoscaler/backends/
ranking.py), KEDA + HPA sets none.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

from autoscaler.backends.ranking import Replica, deletion_cost, idle_count
from autoscaler.policy import PRECEDENCE, BatchObservation, PolicyState, Step, decide
from autoscaler.policyconfig import policy_config
from batchctl.claims import Claim
from batchctl.config import Config
from batchctl.sim import keda
from batchctl.sim.world import View

OURS = "batchctl"
BASELINE = "keda_hpa"


class Controller(Protocol):
    name: str
    grace_seconds: float

    def __call__(self, view: View) -> int | None:
        """The replica count to set now, or None to leave it."""

    def deletion_costs(self, view: View) -> dict[int, int] | None:
        """pod id -> pod-deletion-cost to set before a scale-down; None: set none."""


class PolicyController:
    """Our policy, ticking every `autoscaler.interval_seconds`, the claim held throughout.

    `precedence` replaces the policy's rules (benchmarks/scale_down_pace.py compares
    candidates); `reasons` counts decisions by reason and `downs` lists every step down as
    (second, reason). With `events` it also sees what Celery's task events would show:
    the tasks running now, the completions so far and the busy map of the pods
    (exporter/events/), and ranks the pods for a scale-down. `finish_by` (seconds of the
    simulation) is the claim's deadline (`batchctl claim --finish-by`).
    """

    name = OURS

    def __init__(
        self,
        config: Config,
        queue: str,
        precedence: Sequence[Step] = PRECEDENCE,
        *,
        events: bool = False,
        finish_by: float | None = None,
    ) -> None:
        self.config = config
        self.policy = policy_config(config)
        self.events = events
        self.queue = queue
        self.precedence = tuple(precedence)
        batch = config.batch(queue)
        assert batch is not None
        self.grace_seconds = batch.max_task_seconds
        self.interval = config.autoscaler.interval_seconds
        self.next_tick = 0.0
        self.state = PolicyState()
        self.finish_by = finish_by
        self.claim = Claim(
            batch.queue, "simulator", "simulation", "", 0.0, math.inf, finish_by=finish_by
        )
        self.reasons: dict[str, int] = {}
        self.downs: list[tuple[float, str]] = []

    def __call__(self, view: View) -> int | None:
        if view.now < self.next_tick:
            return None
        self.next_tick = view.now + self.interval
        obs = BatchObservation(
            queue=self.queue,
            waiting=view.waiting,
            in_flight=view.unacked,
            oldest_age_seconds=view.oldest_age_seconds,
            replicas=view.replicas,
            ready_replicas=view.ready,
            claim=self.claim,
            active=view.running if self.events else 0,
            completed=view.completed if self.events else None,
            idle_replicas=idle_count(self._replicas(view)) if self.events else None,
        )
        decisions, self.state = decide(
            [obs], self.state, self.policy, view.now, precedence=self.precedence
        )
        d = decisions[0]
        self.reasons[d.reason.value] = self.reasons.get(d.reason.value, 0) + 1
        if d.desired < d.current:
            self.downs.append((view.now, d.reason.value))
        return d.desired

    def deletion_costs(self, view: View) -> dict[int, int] | None:
        if not self.events:
            return None  # no busy map: the ReplicaSet picks, as without batchctl's help
        return {int(r.name): deletion_cost(r) for r in self._replicas(view)}

    @staticmethod
    def _replicas(view: View) -> list[Replica]:
        return [Replica(str(p.id), p.ready, p.running, p.reserved) for p in view.pods]


class KedaController:
    """The KEDA + HPA model, stepped every second. `finish_by` is only measured against:
    KEDA and the HPA know no deadlines."""

    name = BASELINE

    def __init__(self, settings: keda.KedaSettings, finish_by: float | None = None) -> None:
        self.settings = settings
        self.finish_by = finish_by
        self.grace_seconds = settings.termination_grace_seconds
        self.state = keda.KedaState()

    def __call__(self, view: View) -> int | None:
        desired, self.state = keda.step(
            self.state, self.settings, view.now, view.base_waiting, view.replicas
        )
        return desired

    def deletion_costs(self, view: View) -> dict[int, int] | None:
        return None  # the HPA scales the Deployment; nobody ranks the pods


def keda_settings(cap: int) -> keda.KedaSettings:
    return keda.KedaSettings(max_replicas=cap)
