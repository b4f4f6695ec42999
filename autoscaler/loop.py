"""The live loop: observe, decide with the pure policy, act through a thin backend.

Each tick reads a snapshot (from the exporter beside us, or in process), the guards,
calls `policy.decide` with the policy's own settings (autoscaler/policyconfig.py), and
asks the backend to apply changed counts. Any failure to read means a hold that names
its cause; a failure to act is logged and counted, and the next tick simply decides
again from what it then observes. The changes of observe-only batches become holds
(autoscaler/observe_only.py); after acting, the loop ends drained claims, records
expiries and reports unclaimed work (autoscaler/claimkeeping.py).

Only the leader decides (autoscaler/leader.py): a standby replica observes nothing and
writes nothing. Before each write the leader records its intent where the next leader
finds it (autoscaler/handover.py), and checks it still leads; a new leader starts from
that record, so a handover neither mistakes the last steps for a manual change nor
steps faster than `step_up` per `step_interval_seconds`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from autoscaler import handover
from autoscaler.backends import Backend, ScaleNote
from autoscaler.busymap import BusyMaps
from autoscaler.claimkeeping import ClaimKeeper, UnclaimedReport, keep_claims
from autoscaler.guards import evaluate
from autoscaler.leadership import Leadership, NotLeader, SoleLeader
from autoscaler.observations import observations
from autoscaler.observe_only import ObserveOnly
from autoscaler.othercontrollers import hold_for_others
from autoscaler.policy import (
    Action,
    BatchObservation,
    Decision,
    GuardResult,
    PolicyState,
    Reason,
    decide,
)
from autoscaler.policyconfig import policy_config
from autoscaler.source import SnapshotUnavailable
from autoscaler.usage import Usage
from batchctl.claims import Claim
from batchctl.config import Config, GuardConfig
from batchctl.decisions import NONE, SELF, DecisionRecord, Decisions, decode_compact, encode_compact
from batchctl.log import get_logger
from exporter.snapshot import Snapshot, SnapshotSource

log = get_logger("batchctl.autoscaler")

GuardFn = Callable[[Sequence[GuardConfig], str | None, float], list[GuardResult]]

# ClaimKeeper (autoscaler/claimkeeping.py) is the type of `claims`: importable from here.
__all__ = ["Autoscaler", "ClaimKeeper", "holds"]


class Autoscaler:
    def __init__(
        self,
        cfg: Config,
        source: SnapshotSource,
        backend: Backend,
        clock: Callable[[], float] = time.time,
        guards: GuardFn = evaluate,
        leadership: Leadership | None = None,
        stall_after: float | None = None,
        claims: ClaimKeeper | None = None,
    ) -> None:
        self.cfg = cfg
        self.policy = policy_config(cfg)  # what the policy reads of it
        self.source = source
        self.backend = backend
        self.clock = clock
        self.guards = guards
        self.leadership: Leadership = leadership if leadership is not None else SoleLeader()
        # The last decision logged at info level, per batch.
        self._said: dict[str, tuple[int, int, str, str]] = {}
        self.claims = claims
        self.state = PolicyState()
        self.record: dict[str, handover.Change] = {}
        self.last_decisions: list[Decision] = []
        self.decisions_total: Counter[tuple[str, str, str]] = Counter()
        self.errors_total: Counter[tuple[str, str]] = Counter()
        self._leading = False  # at the last tick
        self.last_tick_at = 0.0
        self.last_snapshot_at: float | None = None  # when the last snapshot was taken
        self._seed = True  # (re)load the handover record before deciding
        # Health (the sidecar's /healthz, /readyz): `ticked` is set once a first tick has
        # ended, data or not (a standby's too); the loop is stalled when no tick has
        # ended for `stall_after` seconds (default: three intervals, at least a minute,
        # so a slow guard or API call does not count).
        self.ticked = threading.Event()
        interval = cfg.autoscaler.interval_seconds
        self.stall_after = stall_after if stall_after is not None else max(3 * interval, 60.0)
        self._last_tick_end: float | None = None
        self._run_started: float | None = None
        self._observe_only = ObserveOnly()
        # Changes decided at the last tick that were not applied (a write failed, the
        # lease was lost): `--once` exits non-zero for them.
        self.unapplied: list[str] = []
        self._report_unclaimed = UnclaimedReport()
        self._stop = threading.Event()
        # The busy map of each batch (autoscaler/busymap.py) and what each batch and
        # claim used (autoscaler/usage.py).
        self.busy = BusyMaps()
        self.usage = Usage()

    @property
    def is_leader(self) -> bool:
        """Whether this replica may scale now (celery_autoscaler_is_leader)."""
        return self.leadership.is_leader()

    # ------------------------------------------------------------------ one tick

    def tick(self) -> list[Decision]:
        if not self.leadership.is_leader():
            # A standby does not decide: it would decide on a state it does not own.
            if self._leading:
                log.info("standing by: another replica leads")
            self._leading, self._seed = False, True
            self.last_decisions = []
            self.last_tick_at = self.clock()
            return []
        self._leading = True
        snap, missing = self._snapshot()
        # After the read: a snapshot must never look newer than "now" (that means stale).
        now = max(self.clock(), snap.taken_at)
        obs = self._observe(snap, missing, now)
        if self._seed and not self._load_record(obs):
            obs = [replace(o, data_ok=False, why="handover record unreadable") for o in obs]
        obs, unlisted = self.busy.observe(self.backend, snap, obs)
        for queue in unlisted:
            self.errors_total[(queue, "pods")] += 1
        decided, self.state = decide(obs, self.state, self.policy, now)
        decided = self._hands_off(decided)
        decisions = [self._observe_only(self.cfg, d) for d in decided]
        for before, d in zip(decided, decisions, strict=True):
            if d is not before:  # held: the next tick must not see a manual change
                self.state = self.state.change_not_applied(d.queue)
        claims = {o.queue: o.claim for o in obs}
        self.unapplied = []
        for i, d in enumerate(decisions):
            self.decisions_total[(d.queue, str(d.action), str(d.reason))] += 1
            # A line when a batch's decision changes; every tick only at debug level (4
            # idle batches every 15 s would be 23,000 lines a day saying "steady").
            said = (d.current, d.desired, str(d.action), str(d.reason))
            emit = log.info if self._said.get(d.queue) != said else log.debug
            self._said[d.queue] = said
            emit(
                "decision",
                queue=d.queue,
                replicas=d.current,
                desired=d.desired,
                action=str(d.action),
                reason=str(d.reason),
                detail=d.detail,
            )
            if d.changed and not self._apply(d, claims.get(d.queue), now):
                self.unapplied.extend(x.queue for x in decisions[i:] if x.changed)
                break
        self.busy.tell_waits(self.backend, decisions)
        self.usage.count(obs, now)
        if self.claims is not None:
            for queue in self.usage.flush(self.claims, now):
                self.errors_total[(queue, "claims")] += 1
            for queue in keep_claims(self.claims, self.cfg, obs, decisions, now):
                self.errors_total[(queue, "claims")] += 1
        self._report_unclaimed(self.cfg, obs, now)
        self.last_decisions = decisions
        self.last_tick_at = self.clock()
        self._publish(decisions)
        return decisions

    def decisions_view(self) -> Decisions:
        """What /api/v1/decisions serves: ours while we lead, else the leader's copy from
        the Lease (a standby's), else none yet."""
        if self._leading and self.last_decisions:
            records = _records(self.last_decisions)
            return Decisions(
                SELF, self.last_tick_at, self.leadership.identity, records, self.backend.name
            )
        copy = decode_compact(self.leadership.leader_decisions())
        return copy if copy is not None else Decisions(NONE)

    def _publish(self, decisions: Sequence[Decision]) -> None:
        """Hand our decisions to the Lease's next renewal (a standby serves them)."""
        if decisions:
            text = encode_compact(
                self.last_tick_at, self.leadership.identity, _records(decisions), self.backend.name
            )
            self.leadership.publish_decisions(text)

    def _snapshot(self) -> tuple[Snapshot, str | None]:
        """The snapshot, or an empty one and why there is none."""
        try:
            snap = self.source.collect()
        except SnapshotUnavailable as e:
            self.errors_total[("", "snapshot")] += 1
            log.warning("no snapshot; holding", error=str(e))
            return Snapshot(self.clock(), 0.0, broker_up=False, kubernetes_up=None), str(e)
        self.last_snapshot_at = snap.taken_at
        return snap, None

    def _observe(self, snap: Snapshot, missing: str | None, now: float) -> list[BatchObservation]:
        a = self.cfg.autoscaler
        guards = (
            self.guards(a.guards, a.prometheus_url, a.guard_timeout_seconds) if a.guards else []
        )
        # Claims come with the snapshot (same round trip); unknown while the broker is down.
        claims: Mapping[str, Claim | None] = {}
        if snap.broker_up:
            claims = {b.queue: snap.claims.get(b.queue) for b in self.cfg.batches}
        try:
            replicas = self.backend.observed()
        except Exception as e:  # a backend read failure must hold, never crash the loop
            self.errors_total[("", "backend")] += 1
            error = f"{type(e).__name__}: {e}"
            log.warning("cannot read replicas; holding", error=error)
            obs = observations(snap, self.cfg, claims, guards, now, None)
            return [replace(o, data_ok=False, why=f"replicas unknown: {error}") for o in obs]
        obs = observations(snap, self.cfg, claims, guards, now, replicas)
        if missing is not None:
            obs = [replace(o, data_ok=False, why=missing) for o in obs]
        return obs

    def _load_record(self, obs: Sequence[BatchObservation]) -> bool:
        """Start this term from the handover record; False (hold) when it cannot be read."""
        try:
            self.record = handover.decode(self.leadership.read_state())
        except Exception as e:
            self.errors_total[("", "lease")] += 1
            log.warning("cannot read the handover record; holding", error=f"{type(e).__name__}")
            return False
        replicas = {o.queue: o.replicas for o in obs if o.data_ok}
        self.state = handover.seed(self.record, replicas)
        self._seed = False
        if self.record:
            log.info("took over", batches=sorted(self.record))
        return True

    def _apply(self, d: Decision, claim: Claim | None, now: float) -> bool:
        """Record the intent, then write it; False when we must stop writing this tick."""
        record = handover.with_change(self.record, d.queue, d.current, d.desired, now)
        try:
            self.leadership.write_state(handover.encode(record))
        except NotLeader as e:
            self.state = self.state.change_not_applied(d.queue)
            log.warning("not the leader any more; not scaling", error=str(e))
            self._seed = True
            return False
        except Exception as e:
            self.state = self.state.change_not_applied(d.queue)
            self.errors_total[(d.queue, "lease")] += 1
            self.unapplied.append(d.queue)
            log.error(
                "cannot record the change; not scaling", queue=d.queue, error=type(e).__name__
            )
            return True
        self.record = record
        if not self.leadership.is_leader():  # lost while recording: another may lead now
            self.state = self.state.change_not_applied(d.queue)
            self._seed = True
            return False
        note = ScaleNote(
            d.current,
            d.desired,
            str(d.reason),
            d.detail,
            claim.holder if claim else None,
            self.busy.ranked(d.queue),
        )
        try:
            self.backend.set_replicas(d.queue, d.desired, note)
        except Exception as e:
            # Not applied: the next tick must not mistake the old count for a manual change.
            self.state = self.state.change_not_applied(d.queue)
            self.errors_total[(d.queue, "backend")] += 1
            self.unapplied.append(d.queue)
            log.error(
                "scaling failed",
                queue=d.queue,
                replicas_to=d.desired,
                error=f"{type(e).__name__}: {e}",
            )
            return True
        self.busy.stopping(d)
        log.info(
            "scaled",
            queue=d.queue,
            replicas_from=d.current,
            replicas_to=d.desired,
            reason=str(d.reason),
            detail=d.detail,
            backend=self.backend.name,
        )
        return True

    def _hands_off(self, decisions: list[Decision]) -> list[Decision]:
        """Hold every batch whose Deployment another controller (an HPA, KEDA) scales,
        with backends that can tell (autoscaler/othercontrollers.py)."""
        error: str | None = None
        try:
            found = self.backend.other_controllers()
        except Exception as e:  # unknown: hold what would change, never crash the loop
            self.errors_total[("", "controllers")] += 1
            error = f"{type(e).__name__}: {e}"
            log.warning("cannot list HPAs and ScaledObjects; holding changes", error=error)
            found = None
        else:
            if found is None:  # a backend no other controller can scale
                return decisions
        deployments = {b.queue: b.deployment for b in self.cfg.batches}
        out = hold_for_others(decisions, deployments, found, error)
        for before, after in zip(decisions, out, strict=True):
            if before.changed and not after.changed:
                # Not applied: the next tick must not take it for a manual change.
                self.state = self.state.change_not_applied(before.queue)
        return out

    # ------------------------------------------------------------------ running

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
        if self.claims is not None and self._leading:
            # What the claims used since the last write: not lost with a stop.
            self.usage.flush(self.claims, self.clock(), force=True)

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


def _records(decisions: Sequence[Decision]) -> tuple[DecisionRecord, ...]:
    return tuple(DecisionRecord.of(d) for d in decisions)


def holds(decisions: Sequence[Decision]) -> dict[str, Reason]:
    """queue -> reason for the batches held at the last tick (for status displays)."""
    return {d.queue: d.reason for d in decisions if d.action == Action.HOLD}
