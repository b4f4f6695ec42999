"""What the exporter adds to each reading: events, progress, and the last good snapshot.

`InProcessSource` reads Redis and the Deployments; `Live` is called on every snapshot it
collects and returns it with the Celery events (`Snapshot.events`, from the consumer
thread when `events.enabled`) and each configured batch's pace, failures and ETA
(`Snapshot.progress`, exporter/progress.py). It also keeps the last snapshot in which
the broker answered, which the status page shows greyed while Redis is down.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from batchctl.config import Config
from exporter.events.waiting import SentWaiting
from exporter.progress import History, Sample, progress
from exporter.snapshot import Snapshot

if TYPE_CHECKING:
    from exporter.events.consumer import EventsConsumer


class Live:
    def __init__(
        self,
        cfg: Config,
        consumer: EventsConsumer | None = None,
        waiting: SentWaiting | None = None,
    ) -> None:
        self.cfg = cfg
        self.consumer = consumer
        # The consumer's record of tasks sent and not yet received: dates the queues
        # whose broker cannot (RabbitMQ without timestamps). None: no dating.
        self.waiting = waiting
        self.histories = {b.queue: History() for b in cfg.batches}
        self.last_good: Snapshot | None = None

    @classmethod
    def from_config(cls, cfg: Config, *, events: bool = True) -> Live:
        """With `events` and events.enabled, a started events consumer (Celery is only
        imported then: the exporter without events does not load it)."""
        consumer = None
        if events and cfg.events.enabled:
            from exporter.events.consumer import EventsConsumer

            consumer = EventsConsumer(cfg)
            consumer.start()
            return cls(cfg, consumer, consumer.aggregator.waiting)
        return cls(cfg, consumer)

    def __call__(self, snap: Snapshot) -> Snapshot:
        events = self.consumer.view(snap.taken_at) if self.consumer is not None else None
        if events is not None and events.up and not snap.broker_up:
            # The consumer's connection may not notice a stalled or unreachable broker for
            # long; no event can arrive through a broker the read just found down.
            events = replace(events, up=False, error=f"the broker is down: {snap.broker_error}")
        snap = replace(snap, events=events)
        if self.waiting is not None and events is not None and events.up and snap.broker_up:
            snap = dated_by_events(snap, self.waiting)
        if snap.broker_up:
            for queue, history in self.histories.items():
                sample = _sample(snap, queue)
                if sample is not None:
                    history.add(sample)
        now = snap.taken_at
        snap = replace(
            snap,
            progress={q: progress(q, h.samples, now) for q, h in self.histories.items()},
        )
        if snap.broker_up:
            self.last_good = snap
        return snap

    def settle(self, timeout: float) -> None:
        """Give the events consumer (if any) at most `timeout` seconds to connect and hear
        from the workers, for a one-shot reading."""
        if self.consumer is not None:
            self.consumer.settle(timeout)

    def stop(self) -> None:
        if self.consumer is not None:
            self.consumer.stop()


def dated_by_events(snap: Snapshot, waiting: SentWaiting) -> Snapshot:
    """`snap` with the ages the broker could not tell (None) dated by the `task-sent`
    events of tasks still waiting (exporter/events/waiting.py says how far to trust
    them); what the broker found empty is forgotten there."""
    queues, dated = [], False
    for q in snap.queues:
        if not q.waiting:
            waiting.emptied(q.queue, snap.taken_at)
        elif q.oldest_age_seconds is None:
            sent = waiting.oldest(q.queue)
            if sent is not None:
                q = q._replace(oldest_age_seconds=max(0.0, snap.taken_at - sent))
                dated = True
        queues.append(q)
    return replace(snap, queues=tuple(queues)) if dated else snap


def _sample(snap: Snapshot, queue: str) -> Sample | None:
    q = snap.queue(queue)
    if q is None:
        return None
    work = q.work
    # Counts stay valid while the consumer reconnects: they only miss what went by.
    counted = snap.events.queue(queue) if snap.events is not None else None
    activity = snap.activity(queue)
    if activity is not None:
        work += activity.active
    if counted is not None and counted.task_events:
        return Sample(snap.taken_at, q.waiting, work, counted.completed, counted.failed)
    return Sample(snap.taken_at, q.waiting, work, None, None)
