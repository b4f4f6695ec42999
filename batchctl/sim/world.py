"""A discrete-time (1 s) model of Celery workers on Kubernetes, to compare scaling policies.

One batch queue, one Deployment: the broker's lists and the pods, advanced one second at a
time. `batchctl.sim.run` replays a trace (`batchctl.sim.trace`) in it under a controller
(`batchctl.sim.controllers`): our policy (`autoscaler.policy.decide`, unchanged, every
autoscaler interval, with the claim held for the whole trace) or the KEDA + HPA baseline
(`batchctl.sim.keda`).

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
  the way a ReplicaSet does (kubernetes `controller.ActivePodsWithRanks`): pods not yet
  ready first, then the lower `controller.kubernetes.io/pod-deletion-cost` (a controller
  may set it before scaling down: our policy's controller does, from the busy map), then
  the most recently ready, then the newest. A removed pod's worker does a warm shutdown:
  it stops fetching, returns its prefetched messages to the head of their lists at once,
  and finishes its running tasks; Kubernetes kills it after the grace period, and every
  task still running then is counted in `inflight_interrupted` (lost with early acks;
  redelivered after the visibility timeout with late acks). Tasks running on a pod when
  it is told to stop are counted in `running_at_stop`: they finish only thanks to the
  grace period. The grace period is the batch's `max_task_seconds` for our policy (the
  manifests set it so) and Kubernetes' default 30 s for the baseline.
- Replica-seconds count every pod that exists, starting and terminating ones included.
- With the trace's `max_ready_pods` the cluster has room for only that many of the
  batch's pods: the others are created and never become ready (Pending), the case the
  autoscaler's `replicas_not_ready` hold is for.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from dataclasses import dataclass, field

from batchctl.config import BatchConfig
from batchctl.sim.trace import Trace, lognormal_params


@dataclass
class Pod:
    id: int  # in creation order
    created_at: int
    ready_at: float
    # Running tasks as a heap of (end time, list index, enqueue time).
    running: list[tuple[float, int, float]] = field(default_factory=list)
    # Prefetched, not started: (list index, enqueue time), oldest first.
    reserved: deque[tuple[int, float]] = field(default_factory=deque)
    kill_at: float | None = None  # set when terminating
    deletion_cost: int = 0  # controller.kubernetes.io/pod-deletion-cost

    @property
    def terminating(self) -> bool:
        return self.kill_at is not None


@dataclass(frozen=True)
class PodLoad:
    """One pod that is not terminating, as the busy map (Celery's events) shows it."""

    id: int
    ready: bool
    running: int
    reserved: int


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
    # What Celery's task events would show: tasks executing now (any pod, terminating
    # ones too), tasks completed so far, and each pod's load (the busy map).
    running: int = 0
    completed: int = 0
    pods: tuple[PodLoad, ...] = ()


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
        self.running_at_stop = 0  # tasks running on a pod when it was told to stop
        self.wait_sum = 0.0
        self.wait_max = 0.0
        self.started = 0
        self.task_seconds = 0.0  # run time of every task started (the physical floor)
        self.finished_at: float | None = None  # when the last task ended so far
        self._next_id = 0

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
        d = min(self.rng.lognormvariate(self.mu, self.sigma), self.max_task)
        self.task_seconds += d
        return d

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
                    done_at, _, _ = heapq.heappop(pod.running)
                    self._done(done_at)
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
                self._done(done_at)
                self._settle(pod, done_at)
        self.pods = kept

    def _done(self, at: float) -> None:
        self.completed += 1
        self.finished_at = at if self.finished_at is None else max(self.finished_at, at)

    def _kill(self, pod: Pod, t: int) -> None:
        self.interrupted += len(pod.running)
        for _, lst, enq in pod.running:
            if self.trace.acks_late:
                due = t + self.trace.visibility_timeout_seconds
                heapq.heappush(self.redeliver, (due, lst, enq))
            else:
                self.lost += 1
        pod.running.clear()

    def annotate(self, costs: dict[int, int]) -> None:
        """Set pod-deletion-cost on the pods named by id (a controller's pod PATCHes)."""
        for pod in self.pods:
            if pod.id in costs:
                pod.deletion_cost = costs[pod.id]

    def scale(self, desired: int, t: float) -> None:
        """Set spec.replicas and reconcile pods like a ReplicaSet."""
        desired = max(0, desired)
        self.spec = desired
        active = [p for p in self.pods if not p.terminating]
        room = self.trace.max_ready_pods
        for _ in range(desired - len(active)):
            placed = sum(1 for p in self.pods if not p.terminating and math.isfinite(p.ready_at))
            ready_at = t + self.trace.pod_start_seconds
            if room is not None and placed >= room:
                ready_at = math.inf  # Pending: no room in the cluster
            self.pods.append(Pod(id=self._next_id, created_at=int(t), ready_at=ready_at))
            self._next_id += 1
        excess = len(active) - desired
        if excess <= 0:
            return
        # The ReplicaSet's order: not ready first, then the lower deletion cost, then the
        # most recently ready, then the newest.
        victims = sorted(
            active, key=lambda p: (p.ready_at <= t, p.deletion_cost, -p.ready_at, -p.id)
        )[:excess]
        for pod in victims:
            if pod.ready_at > t:
                self.pods.remove(pod)  # never started a worker: nothing to lose
                continue
            pod.kill_at = t + self.grace
            self.running_at_stop += len(pod.running)
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
            running=sum(len(p.running) for p in self.pods),
            completed=self.completed,
            pods=tuple(
                PodLoad(p.id, p.ready_at <= now, len(p.running), len(p.reserved))
                for p in self.pods
                if not p.terminating
            ),
        )

    def check_conservation(self) -> None:
        pending = len(self.redeliver)
        held = self.waiting + self.in_flight() + pending + self.completed + self.lost
        assert held == self.arrived, f"conservation broken: {held} != {self.arrived}"
