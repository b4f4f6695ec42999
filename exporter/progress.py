"""How fast a batch goes, how much fails, when it is done: from a short history (pure).

The exporter keeps, per configured batch, a sample of every collection at most every
`SAMPLE_SECONDS` for the last `HISTORY_SECONDS` (`History`); `progress()` turns it into
what the status page, `batchctl status`, /api/v1/snapshot and the sidecar show:

- **completed per minute**: from the task events (succeeded + failed over the last
  `RATE_SECONDS`) when the batch's workers send them; otherwise an *estimate* from the
  fall of waiting + in flight (arrivals hide part of the work done, so it errs low);
- **failure ratio**: failed / (succeeded + failed) over the last `FAILURE_SECONDS`
  (events only: without them failures are invisible);
- **ETA**: waiting + in flight (+ active with events) at the current rate;
- **sparkline**: waiting at the end of each of the last 30 minutes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

SAMPLE_SECONDS = 10.0
HISTORY_SECONDS = 1800.0
RATE_SECONDS = 300.0
FAILURE_SECONDS = 600.0
SPARK_POINTS = 30  # one per minute
# A rate needs readings this far apart at least.
MIN_SPAN_SECONDS = 10.0

EVENTS = "events"
ESTIMATE = "estimate"


class Sample(NamedTuple):
    at: float
    waiting: int
    work: int  # waiting + in flight (+ active, with events)
    completed: int | None  # succeeded + failed so far, from events; None without
    failed: int | None


@dataclass(frozen=True, slots=True)
class Progress:
    """One batch's pace, failures and ETA (see the module docstring)."""

    queue: str
    rate_per_minute: float | None = None  # None: not known yet
    rate_source: str | None = None  # EVENTS or ESTIMATE
    completed_recent: int | None = None  # over FAILURE_SECONDS, events only
    failed_recent: int | None = None
    eta_seconds: float | None = None  # 0: nothing to do; None: unknown or not draining
    sparkline: tuple[int | None, ...] = ()  # waiting per minute, oldest first

    @property
    def failure_ratio(self) -> float | None:
        if not self.completed_recent or self.failed_recent is None:
            return None
        return self.failed_recent / self.completed_recent

    def to_json(self) -> dict[str, object]:
        return {
            "queue": self.queue,
            "rate_per_minute": self.rate_per_minute,
            "rate_source": self.rate_source,
            "completed_recent": self.completed_recent,
            "failed_recent": self.failed_recent,
            "failure_ratio": self.failure_ratio,
            "eta_seconds": self.eta_seconds,
            "sparkline": list(self.sparkline),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Progress:
        def opt(key: str, kind: type) -> Any:
            value = data.get(key)
            return None if value is None else kind(value)

        return cls(
            queue=str(data["queue"]),
            rate_per_minute=opt("rate_per_minute", float),
            rate_source=opt("rate_source", str),
            completed_recent=opt("completed_recent", int),
            failed_recent=opt("failed_recent", int),
            eta_seconds=opt("eta_seconds", float),
            sparkline=tuple(None if v is None else int(v) for v in data.get("sparkline") or ()),
        )


class History:
    """The samples of one batch: at most one per SAMPLE_SECONDS, HISTORY_SECONDS long."""

    def __init__(self) -> None:
        self.samples: deque[Sample] = deque()

    def add(self, s: Sample) -> None:
        q = self.samples
        if q and s.at < q[-1].at:
            q.clear()  # the clock went back: start over rather than mix times
        if len(q) >= 2 and q[-1].at - q[-2].at < SAMPLE_SECONDS:
            q[-1] = s  # the newest reading replaces one not yet SAMPLE_SECONDS on
        else:
            q.append(s)
        while q and q[0].at < s.at - HISTORY_SECONDS - SAMPLE_SECONDS:
            q.popleft()


def progress(queue: str, samples: Sequence[Sample], now: float | None = None) -> Progress:
    """The batch's progress from its samples (oldest first); the last one is now."""
    if not samples:
        return Progress(queue)
    last = samples[-1]
    now = last.at if now is None else now
    rate, source = _rate(samples)
    done = failed = None
    if last.completed is not None and last.failed is not None:
        base = _at_or_after(samples, last.at - FAILURE_SECONDS, events=True)
        if base is not None and base.completed is not None and base.failed is not None:
            done, failed = last.completed - base.completed, last.failed - base.failed
    eta: float | None
    if last.work <= 0:
        eta = 0.0
    elif rate is None or rate <= 0:
        eta = None
    else:
        eta = last.work / (rate / 60.0)
    return Progress(queue, rate, source, done, failed, eta, sparkline(samples, now))


def _rate(samples: Sequence[Sample]) -> tuple[float | None, str | None]:
    last = samples[-1]
    if last.completed is not None:
        base = _at_or_after(samples, last.at - RATE_SECONDS, events=True)
        if base is not None and base.completed is not None:
            span = last.at - base.at
            if span >= MIN_SPAN_SECONDS:
                return max(0.0, (last.completed - base.completed) / span * 60.0), EVENTS
            return None, EVENTS
    base = _at_or_after(samples, last.at - RATE_SECONDS, events=False)
    if base is None or last.at - base.at < MIN_SPAN_SECONDS:
        return None, None
    fall = base.work - last.work
    return max(0.0, fall / (last.at - base.at) * 60.0), ESTIMATE


def _at_or_after(samples: Sequence[Sample], t: float, *, events: bool) -> Sample | None:
    """The oldest sample taken at or after `t` (with event counts, if `events`)."""
    for s in samples:
        if s.at >= t and (not events or s.completed is not None):
            return s
    return None


def sparkline(samples: Sequence[Sample], now: float) -> tuple[int | None, ...]:
    """Waiting at the last sample of each of the SPARK_POINTS minutes ending at `now`;
    None for a minute without a sample (the broker was down, or not yet running)."""
    points: list[int | None] = [None] * SPARK_POINTS
    start = now - SPARK_POINTS * 60.0
    for s in samples:
        if s.at <= start or s.at > now:
            continue
        i = min(SPARK_POINTS - 1, int((s.at - start) // 60.0))
        points[i] = s.waiting
    return tuple(points)
