"""A discrete-time (1 s) model of Celery workers on Kubernetes, to compare scaling policies.

One batch queue, one Deployment. Each run replays a trace of enqueued messages against a
controller: our policy (`autoscaler.policy.decide`, unchanged, every autoscaler interval,
with the claim held for the whole trace) or the KEDA + HPA baseline (`batchctl.sim.keda`).

What is modelled, and how (docs/design.md, "Celery's Redis layout", "Stopping workers"):

- Messages go to one Redis list per priority step (the trace's shares); workers take from
  the lists in step order (kombu BRPOPs `Q`, `Q\\x06\\x163`, ... in that order), oldest first.
- A ready worker has `worker_concurrency` slots and a prefetch window of
  concurrency * prefetch_multiplier unacknowledged messages. With Celery's default early
  acknowledgement a task leaves `unacked` when it starts, so the window holds prefetched
  messages only and running ones are invisible to the broker; with `acks_late: true` the
  window holds both. The controllers see what the exporter would: waiting (all lists for
  ours, the base list for KEDA) and `unacked`.
- Task durations are lognormal with the trace's mean and p99 (fixed seed), capped at the
  batch's `max_task_seconds` (the longest task, as a hard time limit would).
- A new pod becomes ready `pod_start_seconds` after it is created. Scale-down removes pods
  the way a ReplicaSet does, whatever they are doing: pods not yet ready first, then the
  most recently ready. A removed pod's worker does a warm shutdown: it stops fetching,
  returns its prefetched messages to the head of their lists at once, and finishes its
  running tasks; Kubernetes kills it after the grace period, and every task still running
  then is counted in `inflight_interrupted` (lost with early acks; redelivered after the
  visibility timeout with late acks). The grace period is the batch's `max_task_seconds`
  for our policy (the manifests set it so) and Kubernetes' default 30 s for the baseline.
- Replica-seconds count every pod that exists, starting and terminating ones included.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from autoscaler.policy import BatchObservation, PolicyState, decide, effective_cap
from batchctl.claims import Claim
from batchctl.config import BatchConfig, Config
from batchctl.sim import keda

DEFAULT_PRIORITY_STEPS = (0, 3, 6, 9)
OURS = "batchctl"
BASELINE = "keda_hpa"


class TraceError(ValueError):
    """A trace file that cannot be simulated; the message says what and where."""


@dataclass(frozen=True)
class Trace:
    name: str
    task_mean: float
    task_p99: float
    worker_concurrency: int
    prefetch_multiplier: int
    pod_start_seconds: float
    # (priority step, share of messages), ascending steps; step 0 is the base list.
    priorities: tuple[tuple[int, float], ...]
    # (second, messages enqueued at that second), ascending.
    arrivals: tuple[tuple[int, int], ...]
    acks_late: bool = False
    seed: int = 1
    queue: str | None = None
    # Give up this long after the last arrival (a run that never drains).
    tail_seconds: int = 6 * 3600
    visibility_timeout_seconds: float = 3600.0
    description: str = ""

    @property
    def total(self) -> int:
        return sum(n for _, n in self.arrivals)

    @property
    def last_arrival(self) -> int:
        return self.arrivals[-1][0] if self.arrivals else 0


def lognormal_params(mean: float, p99: float) -> tuple[float, float]:
    """(mu, sigma) of the lognormal with this mean and 99th percentile.

    mean = exp(mu + s^2/2) and p99 = exp(mu + z s) with z = 2.3263, so
    s^2/2 - z s + ln(p99/mean) = 0; the smaller root is the well-behaved one.
    """
    z = 2.3263478740408408
    if mean <= 0 or p99 < mean:
        raise TraceError(f"task_seconds: need 0 < mean <= p99, got mean {mean}, p99 {p99}")
    k = math.log(p99 / mean)
    disc = z * z - 2 * k
    if disc < 0:
        raise TraceError(
            f"task_seconds: p99/mean = {p99 / mean:.1f} is too skewed for a lognormal "
            f"(at most {math.exp(z * z / 2):.1f})"
        )
    sigma = z - math.sqrt(disc)
    return math.log(mean) - sigma * sigma / 2, sigma


def parse_trace(data: Any, name: str = "trace") -> Trace:
    """Validate a decoded YAML trace; raise TraceError naming the first problem."""
    if not isinstance(data, dict):
        raise TraceError(f"{name}: expected a mapping at the top level")
    known = {
        "name", "description", "task_seconds", "worker_concurrency", "prefetch_multiplier",
        "pod_start_seconds", "priorities", "arrivals", "acks_late", "seed", "queue",
        "tail_seconds", "visibility_timeout_seconds",
    }  # fmt: skip
    unknown = sorted(set(data) - known)
    if unknown:
        raise TraceError(f"{name}: unknown key(s) {unknown}; valid: {sorted(known)}")
    try:
        task = data.get("task_seconds") or {}
        mean, p99 = float(task["mean"]), float(task["p99"])
        lognormal_params(mean, p99)
        arrivals = _arrivals(data.get("arrivals"))
        trace = Trace(
            name=str(data.get("name", name)),
            description=str(data.get("description", "")),
            task_mean=mean,
            task_p99=p99,
            worker_concurrency=_positive_int(
                data.get("worker_concurrency", 4), "worker_concurrency"
            ),
            prefetch_multiplier=_positive_int(
                data.get("prefetch_multiplier", 4), "prefetch_multiplier"
            ),
            pod_start_seconds=float(data.get("pod_start_seconds", 20)),
            priorities=_priorities(data.get("priorities", {0: 1.0})),
            arrivals=arrivals,
            acks_late=bool(data.get("acks_late", False)),
            seed=int(data.get("seed", 1)),
            queue=data.get("queue"),
            tail_seconds=int(data.get("tail_seconds", 6 * 3600)),
            visibility_timeout_seconds=float(data.get("visibility_timeout_seconds", 3600)),
        )
    except TraceError as e:
        raise TraceError(f"{name}: {e}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise TraceError(f"{name}: bad value ({type(e).__name__}: {e})") from None
    if trace.pod_start_seconds < 0:
        raise TraceError(f"{name}: pod_start_seconds must be >= 0")
    return trace


def load_trace(path: str | Path) -> Trace:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as e:
        raise TraceError(f"{p}: cannot read: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise TraceError(f"{p}: not valid YAML: {e}") from None
    return parse_trace(data, name=p.stem)


def _positive_int(v: Any, key: str) -> int:
    n = int(v)
    if n < 1:
        raise TraceError(f"{key} must be >= 1, got {v!r}")
    return n


def _arrivals(raw: Any) -> tuple[tuple[int, int], ...]:
    if not isinstance(raw, list) or not raw:
        raise TraceError("arrivals: expected a non-empty list of [second, count]")
    per_second: dict[int, int] = {}
    for i, item in enumerate(raw):
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise TraceError(f"arrivals[{i}]: expected [second, count], got {item!r}")
        sec, n = int(item[0]), int(item[1])
        if sec < 0 or n < 0:
            raise TraceError(f"arrivals[{i}]: second and count must be >= 0, got {item!r}")
        per_second[sec] = per_second.get(sec, 0) + n
    return tuple(sorted((s, n) for s, n in per_second.items() if n > 0))


def _priorities(raw: Any) -> tuple[tuple[int, float], ...]:
    """{step: share}, [[step, share], ...] or [share, ...] for kombu's steps 0, 3, 6, 9."""
    if isinstance(raw, dict):
        pairs = [(int(k), float(v)) for k, v in raw.items()]
    elif isinstance(raw, list) and all(isinstance(x, (list, tuple)) for x in raw):
        pairs = [(int(k), float(v)) for k, v in raw]
    elif isinstance(raw, list):
        if len(raw) > len(DEFAULT_PRIORITY_STEPS):
            raise TraceError("priorities: a list of shares has one per step of 0, 3, 6, 9")
        pairs = [(DEFAULT_PRIORITY_STEPS[i], float(v)) for i, v in enumerate(raw)]
    else:
        raise TraceError("priorities: expected {step: share} or a list of shares")
    if any(s < 0 or v < 0 for s, v in pairs) or sum(v for _, v in pairs) <= 0:
        raise TraceError("priorities: steps and shares must be >= 0 with a positive total")
    total = sum(v for _, v in pairs)
    merged: dict[int, float] = {}
    for s, v in pairs:
        merged[s] = merged.get(s, 0.0) + v / total
    return tuple(sorted((s, v) for s, v in merged.items() if v > 0))


# --- the world ---------------------------------------------------------------------


@dataclass
class Pod:
    created_at: int
    ready_at: float
    # Running tasks as a heap of (end time, list index, enqueue time).
    running: list[tuple[float, int, float]] = field(default_factory=list)
    # Prefetched, not started: (list index, enqueue time), oldest first.
    reserved: deque[tuple[int, float]] = field(default_factory=deque)
    kill_at: float | None = None  # set when terminating

    @property
    def terminating(self) -> bool:
        return self.kill_at is not None


@dataclass(frozen=True)
class View:
    """What a controller may look at, at the end of a simulated second."""

    now: float
    waiting: int  # all lists
    base_waiting: int  # the base list only (what KEDA's LLEN sees)
    unacked: int  # the broker's unacked count (early acks: prefetched only)
    oldest_age_seconds: float
    replicas: int  # spec.replicas
    ready: int


class Controller(Protocol):
    name: str
    grace_seconds: float

    def __call__(self, view: View) -> int | None:
        """The replica count to set now, or None to leave it."""


class PolicyController:
    """Our policy, ticking every `autoscaler.interval_seconds`, the claim held throughout."""

    name = OURS

    def __init__(self, config: Config, queue: str) -> None:
        self.config = config
        self.queue = queue
        batch = config.batch(queue)
        assert batch is not None
        self.grace_seconds = batch.max_task_seconds
        self.interval = config.autoscaler.interval_seconds
        self.next_tick = 0.0
        self.state = PolicyState()
        self.claim = Claim(batch.queue, "simulator", "simulation", "", 0.0, math.inf)
        self.reasons: dict[str, int] = {}

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
        )
        decisions, self.state = decide([obs], self.state, self.config, view.now)
        d = decisions[0]
        self.reasons[d.reason.value] = self.reasons.get(d.reason.value, 0) + 1
        return d.desired


class KedaController:
    """The KEDA + HPA model, stepped every second."""

    name = BASELINE

    def __init__(self, settings: keda.KedaSettings) -> None:
        self.settings = settings
        self.grace_seconds = settings.termination_grace_seconds
        self.state = keda.KedaState()

    def __call__(self, view: View) -> int | None:
        desired, self.state = keda.step(
            self.state, self.settings, view.now, view.base_waiting, view.replicas
        )
        return desired


@dataclass
class Series:
    """One value per simulated second."""

    waiting: list[int] = field(default_factory=list)
    in_flight: list[int] = field(default_factory=list)  # prefetched + running
    replicas: list[int] = field(default_factory=list)  # spec.replicas
    pods: list[int] = field(default_factory=list)  # existing pods, any phase


@dataclass
class RunResult:
    name: str
    metrics: dict[str, Any]
    series: Series
    reasons: dict[str, int] = field(default_factory=dict)


class World:
    """The broker lists, the pods and the counters of one run."""

    def __init__(self, trace: Trace, batch: BatchConfig, grace_seconds: float) -> None:
        self.trace = trace
        self.steps = [s for s, _ in trace.priorities]
        self.shares = [v for _, v in trace.priorities]
        self.base = self.steps.index(0) if 0 in self.steps else None
        # Per list: blocks of [enqueue time, count], oldest on the left.
        self.lists: list[deque[list[float]]] = [deque() for _ in self.steps]
        self.lengths = [0] * len(self.steps)
        self.pods: list[Pod] = []
        self.spec = 0
        self.grace = grace_seconds
        self.concurrency = trace.worker_concurrency
        self.window = trace.worker_concurrency * trace.prefetch_multiplier
        self.rng = random.Random(trace.seed)
        self.mu, self.sigma = lognormal_params(trace.task_mean, trace.task_p99)
        self.max_task = batch.max_task_seconds
        self.per_list_cum = [0] * len(self.steps)  # messages sent to each list so far
        self.redeliver: list[tuple[float, int, float]] = []  # (due, list, enqueued)
        self.arrived = 0
        self.completed = 0
        self.lost = 0
        self.interrupted = 0
        self.wait_sum = 0.0
        self.wait_max = 0.0
        self.started = 0

    # -- the broker
    @property
    def waiting(self) -> int:
        return sum(self.lengths)

    def enqueue(self, now: float, n: int) -> None:
        """Spread n messages over the lists so that running totals follow the shares."""
        self.arrived += n
        total = self.arrived
        ideal = [share * total for share in self.shares]
        alloc = [max(0, math.floor(ideal[i]) - self.per_list_cum[i]) for i in range(len(ideal))]
        while sum(alloc) > n:  # rounding can over-allocate by a message or two
            i = max(
                range(len(alloc)),
                key=lambda j: (alloc[j] > 0, self.per_list_cum[j] + alloc[j] - ideal[j]),
            )
            alloc[i] -= 1
        for _ in range(n - sum(alloc)):
            i = max(range(len(alloc)), key=lambda j: ideal[j] - self.per_list_cum[j] - alloc[j])
            alloc[i] += 1
        for i, k in enumerate(alloc):
            if k:
                self._push(i, now, k)
                self.per_list_cum[i] += k

    def _push(self, i: int, enqueued: float, k: int) -> None:
        self.lists[i].append([enqueued, k])
        self.lengths[i] += k

    def _pop(self) -> tuple[int, float] | None:
        for i, blocks in enumerate(self.lists):
            if blocks:
                block = blocks[0]
                block[1] -= 1
                if block[1] == 0:
                    blocks.popleft()
                self.lengths[i] -= 1
                return i, block[0]
        return None

    def oldest_age(self, now: float) -> float:
        ages = [now - blocks[0][0] for blocks in self.lists if blocks]
        return max(ages, default=0.0)

    # -- workers
    def _duration(self) -> float:
        return min(self.rng.lognormvariate(self.mu, self.sigma), self.max_task)

    def _held(self, pod: Pod) -> int:
        return len(pod.reserved) + (len(pod.running) if self.trace.acks_late else 0)

    def _settle(self, pod: Pod, at: float) -> None:
        """Fill the prefetch window and the free slots at time `at`."""
        while True:
            while self._held(pod) < self.window and any(self.lengths):
                msg = self._pop()
                assert msg is not None
                pod.reserved.append(msg)
            if len(pod.running) < self.concurrency and pod.reserved:
                lst, enq = pod.reserved.popleft()
                wait = at - enq
                self.wait_sum += wait
                self.wait_max = max(self.wait_max, wait)
                self.started += 1
                heapq.heappush(pod.running, (at + self._duration(), lst, enq))
            else:
                return

    def advance(self, t: int) -> None:
        """Simulate [t, t + 1): redeliveries, readiness, kills, task completions."""
        while self.redeliver and self.redeliver[0][0] <= t:
            _, lst, enq = heapq.heappop(self.redeliver)
            self._push(lst, enq, 1)
        end = t + 1
        kept = []
        for pod in self.pods:
            if pod.kill_at is not None:
                # Warm shutdown: running tasks finish until SIGKILL (a tie goes to the task).
                while pod.running and pod.running[0][0] < end and pod.running[0][0] <= pod.kill_at:
                    heapq.heappop(pod.running)
                    self.completed += 1
                if pod.running and pod.kill_at < end:
                    self._kill(pod, t)
                if pod.running:
                    kept.append(pod)
                continue
            kept.append(pod)
            if pod.ready_at > t:
                continue
            self._settle(pod, float(t))
            while pod.running and pod.running[0][0] < end:
                done_at, _, _ = heapq.heappop(pod.running)
                self.completed += 1
                self._settle(pod, done_at)
        self.pods = kept

    def _kill(self, pod: Pod, t: int) -> None:
        self.interrupted += len(pod.running)
        for _, lst, enq in pod.running:
            if self.trace.acks_late:
                due = t + self.trace.visibility_timeout_seconds
                heapq.heappush(self.redeliver, (due, lst, enq))
            else:
                self.lost += 1
        pod.running.clear()

    def scale(self, desired: int, t: float) -> None:
        """Set spec.replicas and reconcile pods like a ReplicaSet."""
        desired = max(0, desired)
        self.spec = desired
        active = [p for p in self.pods if not p.terminating]
        for _ in range(desired - len(active)):
            self.pods.append(Pod(created_at=int(t), ready_at=t + self.trace.pod_start_seconds))
        excess = len(active) - desired
        if excess <= 0:
            return
        # ReplicaSet order: not ready first, then the most recently ready.
        victims = sorted(active, key=lambda p: (p.ready_at <= t, -p.ready_at))[:excess]
        for pod in victims:
            if pod.ready_at > t:
                self.pods.remove(pod)  # never started a worker: nothing to lose
                continue
            pod.kill_at = t + self.grace
            # Warm shutdown: prefetched messages go back to the head of their lists.
            while pod.reserved:
                lst, enq = pod.reserved.popleft()
                self._push(lst, enq, 1)
            if not pod.running:
                self.pods.remove(pod)

    # -- observation
    def in_flight(self) -> int:
        return sum(len(p.reserved) + len(p.running) for p in self.pods)

    def unacked(self) -> int:
        return sum(self._held(p) for p in self.pods)

    def ready(self, t: float) -> int:
        return sum(1 for p in self.pods if not p.terminating and p.ready_at <= t)

    def view(self, now: float) -> View:
        return View(
            now=now,
            waiting=self.waiting,
            base_waiting=self.lengths[self.base] if self.base is not None else 0,
            unacked=self.unacked(),
            oldest_age_seconds=self.oldest_age(now),
            replicas=self.spec,
            ready=self.ready(now),
        )

    def check_conservation(self) -> None:
        pending = len(self.redeliver)
        held = self.waiting + self.in_flight() + pending + self.completed + self.lost
        assert held == self.arrived, f"conservation broken: {held} != {self.arrived}"


def run(
    trace: Trace,
    batch: BatchConfig,
    controller: Controller,
    *,
    thresholds: Sequence[int] = (100, 500, 1000),
    cap: int | None = None,
    check: bool = False,
) -> RunResult:
    """Replay `trace` under `controller`; `check` asserts conservation every second."""
    world = World(trace, batch, controller.grace_seconds)
    cap = effective_cap(batch) if cap is None else cap
    arrivals = dict(trace.arrivals)
    last = trace.last_arrival
    series = Series()
    drained_at: float | None = None
    t = 0
    while True:
        if t in arrivals:
            world.enqueue(float(t), arrivals[t])
        world.advance(t)
        if check:
            world.check_conservation()
        # The controller looks at the end of the second; its change applies from t + 1.
        view = world.view(float(t + 1))
        work = view.waiting + world.in_flight() + len(world.redeliver)
        series.waiting.append(view.waiting)
        series.in_flight.append(world.in_flight())
        if t >= last and work == 0 and drained_at is None:
            drained_at = float(t + 1)
        desired = controller(view)
        if desired is not None and desired != world.spec:
            world.scale(desired, float(t + 1))
        # Replicas and pods as they stand for the next second, so the last sample is 0.
        series.replicas.append(world.spec)
        series.pods.append(len(world.pods))
        t += 1
        if t > last and drained_at is not None and not world.pods and world.spec == 0:
            break
        if t > last + trace.tail_seconds:
            break
    metrics = _metrics(trace, world, series, drained_at, cap, thresholds[-1])
    reasons = getattr(controller, "reasons", {})
    return RunResult(controller.name, metrics, series, dict(reasons))


def _metrics(
    trace: Trace,
    world: World,
    series: Series,
    drained_at: float | None,
    cap: int,
    top: int,
) -> dict[str, Any]:
    reps = series.replicas
    ups = [max(0, b - a) for a, b in zip([0, *reps[:-1]], reps, strict=True)]
    active_pods = series.pods  # terminating pods are over cap only by what they finish
    violations = sum(1 for r in reps if r > cap)
    return {
        "replica_seconds": sum(series.pods),
        "drain_seconds": None if drained_at is None else drained_at - trace.last_arrival,
        "peak_waiting": max(series.waiting, default=0),
        "peak_replicas": max(reps, default=0),
        "max_step_up_per_minute": _window_max(ups, 60),
        "scale_actions": sum(1 for a, b in zip([0, *reps[:-1]], reps, strict=True) if a != b),
        "inflight_interrupted": world.interrupted,
        "cap_violations": violations,
        "seconds_above_1000": sum(1 for w in series.waiting if w >= top),
        # Beyond the required fields: what the numbers above cost or hide.
        "peak_pods": max(active_pods, default=0),
        "messages": world.arrived,
        "completed": world.completed,
        "lost": world.lost,
        "left_undone": world.arrived - world.completed - world.lost,
        "mean_wait_seconds": round(world.wait_sum / world.started, 2) if world.started else 0.0,
        "max_wait_seconds": round(world.wait_max, 1),
        "simulated_seconds": len(reps),
    }


def _window_max(increments: Sequence[int], width: int) -> int:
    """The largest sum of `increments` over any `width` consecutive seconds."""
    best = acc = 0
    for i, v in enumerate(increments):
        acc += v
        if i >= width:
            acc -= increments[i - width]
        best = max(best, acc)
    return best


def sim_config(config: Config, trace: Trace) -> tuple[Config, BatchConfig]:
    """The config narrowed to the trace's batch, with the trace's worker shape."""
    batch = config.batch(trace.queue) if trace.queue else config.batches[0]
    if batch is None:
        raise TraceError(f"queue {trace.queue!r} is not a configured batch")
    batch = batch.model_copy(
        update={
            "worker_concurrency": trace.worker_concurrency,
            "prefetch_multiplier": trace.prefetch_multiplier,
        }
    )
    return config.model_copy(update={"batches": (batch,)}), batch


def keda_settings(cap: int) -> keda.KedaSettings:
    return keda.KedaSettings(max_replicas=cap)


def simulate(
    trace: Trace,
    config: Config,
    baseline: str | None = "keda",
    *,
    check: bool = False,
) -> dict[str, RunResult]:
    """Run our policy (and the baseline) on the trace with the same caps."""
    cfg, batch = sim_config(config, trace)
    # Both get the tighter of the batch's cap and the global budget.
    cap = min(effective_cap(batch), cfg.autoscaler.global_max_replicas)
    thresholds = cfg.thresholds
    results = {
        OURS: run(
            trace,
            batch,
            PolicyController(cfg, batch.queue),
            thresholds=thresholds,
            cap=cap,
            check=check,
        )
    }
    if baseline == "keda":
        ctl = KedaController(keda_settings(cap))
        results[BASELINE] = run(trace, batch, ctl, thresholds=thresholds, cap=cap, check=check)
    return results


def report(trace: Trace, config: Config, results: Mapping[str, RunResult]) -> dict[str, Any]:
    """The JSON document: the inputs that matter, each policy's metrics, and the ratios."""
    _, batch = sim_config(config, trace)
    out: dict[str, Any] = {
        "trace": {
            "name": trace.name,
            "messages": trace.total,
            "last_arrival_second": trace.last_arrival,
            "task_seconds": {"mean": trace.task_mean, "p99": trace.task_p99},
            "worker_concurrency": trace.worker_concurrency,
            "prefetch_multiplier": trace.prefetch_multiplier,
            "pod_start_seconds": trace.pod_start_seconds,
            "priorities": {str(s): v for s, v in trace.priorities},
            "acks_late": trace.acks_late,
        },
        "config": {
            "max_replicas": effective_cap(batch),
            "global_max_replicas": config.autoscaler.global_max_replicas,
            "step_up": batch.step_up,
            "step_interval_seconds": batch.step_interval_seconds,
            "target_drain_seconds": batch.target_drain_seconds,
            "idle_after_seconds": batch.idle_after_seconds,
            "interval_seconds": config.autoscaler.interval_seconds,
            "max_task_seconds": batch.max_task_seconds,
        },
        "policies": {name: r.metrics for name, r in results.items()},
    }
    if OURS in results:
        out["policies"][OURS]["reasons"] = results[OURS].reasons
    if OURS in results and BASELINE in results:
        out["ratios"] = {
            k: _ratio(results[OURS].metrics[k], results[BASELINE].metrics[k])
            for k in ("replica_seconds", "drain_seconds")
        }
    return out


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or theirs is None or theirs == 0:
        return None
    return round(ours / theirs, 3)


def plot(results: Mapping[str, RunResult], path: str | Path, title: str = "") -> None:
    """Waiting, in flight and replicas over time, one line per policy.

    Long runs are averaged over buckets of a few seconds (at most ~2,000 points per line)
    so that a day stays readable; the baseline is drawn first, ours on top.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    longest = max((len(r.series.waiting) for r in results.values()), default=1)
    bucket = max(1, math.ceil(longest / 2000))
    hours = longest > 3 * 3600
    scale = 3600 if hours else 60
    fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    panels: list[tuple[str, Callable[[Series], list[int]]]] = [
        ("waiting", lambda s: s.waiting),
        ("in flight", lambda s: s.in_flight),
        ("replicas", lambda s: s.replicas),
    ]
    order = sorted(results.items(), key=lambda kv: kv[0] == OURS)
    for ax, (label, get) in zip(axes, panels, strict=True):
        for name, r in order:
            ys = _buckets(get(r.series), bucket)
            xs = [i * bucket / scale for i in range(len(ys))]
            color = "C0" if name == OURS else "C1"
            ax.plot(xs, ys, label=name, drawstyle="steps-post", linewidth=1, color=color)
        ax.set_ylabel(label if bucket == 1 else f"{label} ({bucket} s mean)")
        ax.grid(alpha=0.3)
    axes[0].legend()
    axes[-1].set_xlabel("hours" if hours else "minutes")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _buckets(values: Sequence[int], size: int) -> list[float]:
    if size == 1:
        return [float(v) for v in values]
    return [
        sum(values[i : i + size]) / len(values[i : i + size]) for i in range(0, len(values), size)
    ]
