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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from autoscaler.guards import evaluate
from autoscaler.observations import observations
from autoscaler.policy import Action, Decision, GuardResult, PolicyState, Reason, decide
from batchctl.claims import Claim
from batchctl.config import Config, ConfigError, GuardConfig
from batchctl.log import get_logger
from exporter.collect import Collector

log = get_logger("batchctl.autoscaler")

GuardFn = Callable[[Sequence[GuardConfig], str | None, float], list[GuardResult]]


class Backend(Protocol):
    """Where replicas live: local worker processes, a Kubernetes Deployment, or nowhere."""

    name: str

    def observed(self) -> Mapping[str, tuple[int, int]] | None:
        """queue -> (desired, ready) when the backend knows better than the snapshot."""
        ...

    def set_replicas(self, queue: str, n: int) -> None: ...

    def close(self) -> None: ...


class DryRunBackend:
    """Decides and reports, changes nothing: replicas are whatever the snapshot says."""

    name = "dry-run"

    def observed(self) -> Mapping[str, tuple[int, int]] | None:
        return None

    def set_replicas(self, queue: str, n: int) -> None:
        log.info("dry run: would scale", queue=queue, replicas=n)

    def close(self) -> None:
        pass


class LocalBackend:
    """Replicas are local `celery worker` processes (the demo and the tests)."""

    name = "local"

    def __init__(self, actuator: object, queues: Sequence[str]) -> None:
        from autoscaler.backends.local import LocalActuator

        assert isinstance(actuator, LocalActuator)
        self.actuator = actuator
        self.queues = list(queues)

    def observed(self) -> Mapping[str, tuple[int, int]]:
        return {
            q: (self.actuator.get_replicas(q), self.actuator.ready_replicas(q)) for q in self.queues
        }

    def set_replicas(self, queue: str, n: int) -> None:
        self.actuator.set_replicas(queue, n)

    def close(self) -> None:
        self.actuator.shutdown()


class KubernetesBackend:
    """Replicas are a Deployment's; read from the exporter's watch cache, written via scale."""

    name = "kubernetes"

    def __init__(self, cfg: Config) -> None:
        from autoscaler.backends.kubernetes import KubernetesActuator
        from batchctl.kube import KubeConfigError

        try:
            self.actuator = KubernetesActuator(cfg.kubernetes)
        except KubeConfigError as e:
            raise ConfigError([f"kubernetes: {e}"], "kubernetes") from None
        self.deployments = {b.queue: b.deployment for b in cfg.batches}

    def observed(self) -> Mapping[str, tuple[int, int]] | None:
        return None

    def set_replicas(self, queue: str, n: int) -> None:
        self.actuator.set_replicas(self.deployments[queue], n, expected=None)

    def close(self) -> None:
        pass


class Autoscaler:
    def __init__(
        self,
        cfg: Config,
        collector: Collector,
        backend: Backend,
        clock: Callable[[], float] = time.time,
        guards: GuardFn = evaluate,
    ) -> None:
        self.cfg = cfg
        self.collector = collector
        self.backend = backend
        self.clock = clock
        self.guards = guards
        self.state = PolicyState()
        self.last_decisions: list[Decision] = []
        self.decisions_total: Counter[tuple[str, str, str]] = Counter()
        self.errors_total: Counter[tuple[str, str]] = Counter()
        self.is_leader = True  # leader election arrives with the Kubernetes issue
        self.last_tick_at = 0.0
        self._stop = threading.Event()

    def tick(self) -> list[Decision]:
        snap = self.collector.collect()
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
            self.errors_total[("", "actuator")] += 1
            log.warning("cannot read replicas; holding", error=f"{type(e).__name__}: {e}")
            replicas, blind = None, True
        obs = observations(snap, self.cfg, claims or {}, guards, now, replicas)
        if blind:  # claims or replicas unknown: hold every batch (`no_data`)
            obs = [replace(o, data_ok=False) for o in obs]
        decisions, self.state = decide(obs, self.state, self.cfg, now)
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
                self.errors_total[(d.queue, "actuator")] += 1
                log.error(
                    "scaling failed",
                    queue=d.queue,
                    replicas_to=d.desired,
                    error=f"{type(e).__name__}: {e}",
                )
        self.last_decisions = decisions
        self.last_tick_at = self.clock()
        return decisions

    def run(self) -> None:
        interval = self.cfg.autoscaler.interval_seconds
        log.info("autoscaler started", backend=self.backend.name, interval=interval)
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.tick()
            except Exception:
                # One bad tick must not end the loop: log and try again next interval.
                self.errors_total[("", "tick")] += 1
                log.exception("tick failed")
            self._stop.wait(max(0.0, interval - (time.monotonic() - started)))

    def stop(self) -> None:
        self._stop.set()


def holds(decisions: Sequence[Decision]) -> dict[str, Reason]:
    """queue -> reason for the batches held at the last tick (for status displays)."""
    return {d.queue: d.reason for d in decisions if d.action == Action.HOLD}
