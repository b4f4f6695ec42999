"""The live loop: observe, decide with the pure policy, act through a thin backend.

Each tick reads the shared snapshot (the exporter's collector), the claims and the
guards, calls `policy.decide`, and asks the backend to apply changed counts. Any
failure to read means `no_data` (hold); a failure to act is logged and counted, and
the next tick simply decides again from what it then observes.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace

from autoscaler.backends import Backend
from autoscaler.guards import evaluate
from autoscaler.observations import observations
from autoscaler.policy import Action, Decision, GuardResult, PolicyState, Reason, decide
from batchctl.claims import Claim
from batchctl.config import Config, GuardConfig
from batchctl.log import get_logger
from exporter.snapshot import SnapshotSource

log = get_logger("batchctl.autoscaler")

GuardFn = Callable[[Sequence[GuardConfig], str | None, float], list[GuardResult]]


class Autoscaler:
    def __init__(
        self,
        cfg: Config,
        source: SnapshotSource,
        backend: Backend,
        clock: Callable[[], float] = time.time,
        guards: GuardFn = evaluate,
        stall_after: float | None = None,
    ) -> None:
        self.cfg = cfg
        self.source = source
        self.backend = backend
        self.clock = clock
        self.guards = guards
        self.state = PolicyState()
        self.last_decisions: list[Decision] = []
        self.decisions_total: Counter[tuple[str, str, str]] = Counter()
        self.errors_total: Counter[tuple[str, str]] = Counter()
        self.is_leader = True  # leader election arrives with the Kubernetes issue
        self.last_tick_at = 0.0
        # Health (the sidecar's /healthz, /readyz): `ticked` is set once a first tick has
        # ended, data or not; the loop is stalled when no tick has ended for
        # `stall_after` seconds (default: three intervals, at least a minute, so a slow
        # guard or API call does not count).
        self.ticked = threading.Event()
        interval = cfg.autoscaler.interval_seconds
        self.stall_after = stall_after if stall_after is not None else max(3 * interval, 60.0)
        self._last_tick_end: float | None = None
        self._run_started: float | None = None
        # The last would-be change logged per observe-only batch, to log it once.
        self._observed: dict[str, tuple[int, int, str]] = {}
        self._stop = threading.Event()

    def tick(self) -> list[Decision]:
        snap = self.source.collect()
        # After the read: a snapshot must never look newer than "now" (that means stale).
        now = max(self.clock(), snap.taken_at)
        # Claims come with the snapshot (same round trip); unknown while the broker is down.
        claims: dict[str, Claim | None] | None = None
        if snap.broker_up:
            claims = {b.queue: snap.claims.get(b.queue) for b in self.cfg.batches}
        a = self.cfg.autoscaler
        guards = (
            self.guards(a.guards, a.prometheus_url, a.guard_timeout_seconds) if a.guards else []
        )
        blind = claims is None
        try:
            replicas = self.backend.observed()
        except Exception as e:  # a backend read failure must hold, never crash the loop
            self.errors_total[("", "backend")] += 1
            log.warning("cannot read replicas; holding", error=f"{type(e).__name__}: {e}")
            replicas, blind = None, True
        obs = observations(snap, self.cfg, claims or {}, guards, now, replicas)
        if blind:  # claims or replicas unknown: hold every batch (`no_data`)
            obs = [replace(o, data_ok=False) for o in obs]
        decisions, self.state = decide(obs, self.state, self.cfg, now)
        decisions = [self._observe_only(d) for d in decisions]
        for d in decisions:
            self.decisions_total[(d.queue, str(d.action), str(d.reason))] += 1
            if not d.changed:
                continue
            try:
                self.backend.set_replicas(d.queue, d.desired)
                log.info(
                    "scaled",
                    queue=d.queue,
                    replicas_from=d.current,
                    replicas_to=d.desired,
                    reason=str(d.reason),
                    detail=d.detail,
                    backend=self.backend.name,
                )
            except Exception as e:
                # Not applied: the next tick must not mistake the old count for a manual change.
                self.state = self.state.change_not_applied(d.queue)
                self.errors_total[(d.queue, "backend")] += 1
                log.error(
                    "scaling failed",
                    queue=d.queue,
                    replicas_to=d.desired,
                    error=f"{type(e).__name__}: {e}",
                )
        self.last_decisions = decisions
        self.last_tick_at = self.clock()
        return decisions

    def _observe_only(self, d: Decision) -> Decision:
        """With batches[].autoscale false, a change becomes a hold (`observe_only`): the
        decision is reported and logged, never applied. Done here, not in the policy,
        so the policy's decision is exactly the one it would act on."""
        batch = self.cfg.batch(d.queue)
        if batch is None or batch.autoscale or not d.changed:
            self._observed.pop(d.queue, None)
            return d
        # Not applied: the next tick must not take the unchanged count for a manual change.
        self.state = self.state.change_not_applied(d.queue)
        would = (d.current, d.desired, str(d.reason))
        if self._observed.get(d.queue) != would:
            self._observed[d.queue] = would
            log.info(
                "observe only: would scale",
                queue=d.queue,
                replicas_from=d.current,
                replicas_to=d.desired,
                reason=str(d.reason),
                detail=d.detail,
            )
        return replace(
            d,
            desired=d.current,
            action=Action.HOLD,
            reason=Reason.OBSERVE_ONLY,
            detail=f"observe only: would go {d.current} -> {d.desired} ({d.reason}): {d.detail}",
        )

    def run(self) -> None:
        interval = self.cfg.autoscaler.interval_seconds
        log.info("autoscaler started", backend=self.backend.name, interval=interval)
        self._run_started = time.monotonic()
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.tick()
            except Exception:
                # One bad tick must not end the loop: log and try again next interval.
                self.errors_total[("", "tick")] += 1
                log.exception("tick failed")
            self._last_tick_end = time.monotonic()
            self.ticked.set()
            self._stop.wait(max(0.0, interval - (time.monotonic() - started)))

    def health(self) -> tuple[bool, str]:
        """(healthy, why) for /healthz: the loop runs and a tick has ended within
        `stall_after` seconds (of the loop's start, before the first)."""
        if self._run_started is None:
            return False, "the loop has not started"
        since = self._last_tick_end if self._last_tick_end is not None else self._run_started
        age = time.monotonic() - since
        if age > self.stall_after:
            return False, f"no tick has ended for {age:.0f}s (limit {self.stall_after:.0f}s)"
        return True, "ok"

    def stop(self) -> None:
        self._stop.set()


def holds(decisions: Sequence[Decision]) -> dict[str, Reason]:
    """queue -> reason for the batches held at the last tick (for status displays)."""
    return {d.queue: d.reason for d in decisions if d.action == Action.HOLD}
