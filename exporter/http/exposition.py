"""The exporter's exposition: a snapshot -> Prometheus text (0.0.4) or OpenMetrics.

The families are the table in batchctl/metrics.py. The exposition is rendered anew from
each snapshot, so a queue that disappears from the snapshot drops out of /metrics with
no clean-up code.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping

from prometheus_client.utils import floatToGoString

from batchctl.metrics import (
    BATCH_CLAIM_EXPIRY,
    BATCH_CLAIM_REPLICA_SECONDS,
    BATCH_CLAIMED,
    BATCH_EXPECTED_FINISH,
    BATCH_FINISH_BY,
    BROKER_ALARM,
    BROKER_MEMORY_MAX,
    BROKER_MEMORY_USED,
    BROKER_UP,
    BUILD_INFO,
    DEPLOYMENT_READY,
    DEPLOYMENT_REPLICAS,
    EVENTS_RECEIVED,
    EVENTS_UP,
    KUBERNETES_UP,
    LAST_ERROR,
    QUEUE_ACTIVE,
    QUEUE_CONSUMERS,
    QUEUE_LENGTH,
    QUEUE_MEMORY,
    QUEUE_OLDEST_AGE,
    QUEUE_PRIORITY_LENGTH,
    QUEUE_SCHEDULED,
    QUEUE_UNACKED,
    QUEUE_UNACKED_STRANDED,
    QUEUE_WORKERS,
    QUEUES_DROPPED,
    QUEUES_SKIPPED,
    SCRAPE_DURATION,
    TASK_EVENTS,
    TASK_RUNTIME,
    Spec,
)
from exporter.events.model import EventsView
from exporter.snapshot import Snapshot
from exporter.stats import expected_finish

# One histogram series: its label values, (upper bound, cumulative count) per bucket
# with +Inf last, and the sum of the observations.
HistogramRow = tuple[tuple[str, ...], list[tuple[float, int]], float]


def _escape(value: str) -> str:
    """A label value (both formats), or HELP text in OpenMetrics: \\, newline and "."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


def _escape_help(value: str) -> str:
    """HELP text in the text format, where only \\ and newline are escapes: Prometheus'
    parser rejects any other escape, so a quote must stay bare."""
    return value.replace("\\", "\\\\").replace("\n", "\\n")


# zlib's fastest level: a 1,000-queue body (~420 KB) shrinks ~14x in ~1 ms, 10,000
# queues ~17x in ~11 ms; the default level 6 is 4x slower for 7% less, 9 (what
# prometheus_client uses) 12x slower (benchmarks/README.md).
GZIP_LEVEL = 1

# A line's value follows its last space (indexing bytes gives ints).
_SPACE = ord(" ")

# Python's repr of non-finite floats -> the spelling both formats define.
_NON_FINITE = {"inf": "+Inf", "-inf": "-Inf", "nan": "NaN"}


def _num(value: float) -> str:
    if type(value) is int:
        return str(value)
    value = float(value)
    if value.is_integer():
        # 3.0 -> 3; from 1e16 on repr's 1e+16 rather than seventeen digits or more.
        return str(int(value)) if -1e16 < value < 1e16 else repr(value)
    text = repr(value)
    return _NON_FINITE.get(text, text)


class LineCache:
    """Sample lines of the last render, by family and label: an idle queue's lines are
    reused rather than formatted again (most batch queues are idle most of the time).
    Kept as UTF-8 bytes, the form the body is joined from: no str body and no second
    copy when it is encoded (with 10,000 queues the body is ~4 MB; benchmarks/)."""

    def __init__(self) -> None:
        self.lines: dict[str, dict[tuple[str, ...] | str, bytes]] = {}
        # Whole families of the last snapshot generation: (generation, their lines).
        self.blocks: dict[str, tuple[Hashable, list[bytes]]] = {}
        # Per-queue families (the priority lists): queue -> (its mapping, its lines as
        # one block). One object per queue instead of a line and a key per series.
        self.groups: dict[str, dict[str, tuple[Mapping[int, int], bytes]]] = {}
        # Per-queue integer families (`_Writer.counts`): queue -> (value, line).
        self.counts: dict[str, dict[str, tuple[int, bytes]]] = {}


class Body:
    """A rendered exposition: its lines (UTF-8, each without its newline), written out in
    chunks and never joined whole. With 10,000 queues the body is ~4 MB; its lines are
    those the LineCache keeps anyway, so serving it costs one chunk at a time
    (benchmarks/README.md)."""

    __slots__ = ("length", "lines")

    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines
        self.length = sum(map(len, lines)) + len(lines)  # bytes, with every newline

    def chunks(self, size: int = 512) -> Iterator[bytes]:
        """The body in order, `size` lines (or per-queue blocks) per chunk."""
        lines = self.lines
        for i in range(0, len(lines), size):
            part = lines[i : i + size]
            part.append(b"")  # the newline after the chunk's last line
            yield b"\n".join(part)

    def __bytes__(self) -> bytes:
        return b"".join(self.chunks())

    def gzipped(self, level: int = GZIP_LEVEL) -> bytes:
        """The body gzipped, compressed chunk by chunk (never joined whole first)."""
        z = zlib.compressobj(level, zlib.DEFLATED, 31)  # wbits 31: the gzip container
        out = [z.compress(chunk) for chunk in self.chunks()]
        out.append(z.flush())
        return b"".join(out)


class _Writer:
    """Exposition text for one family at a time, in the text or OpenMetrics format."""

    def __init__(self, openmetrics: bool, cache: LineCache | None) -> None:
        self.openmetrics = openmetrics
        self.cache = cache
        self.lines: list[bytes] = []

    def _head(self, spec: Spec, meta: str) -> None:
        """A family's HELP and TYPE lines, under `meta` (OpenMetrics counters lose
        `_total` there)."""
        help_text = _escape(spec.help) if self.openmetrics else _escape_help(spec.help)
        self.lines.append(f"# HELP {meta} {help_text}".encode())
        self.lines.append(f"# TYPE {meta} {spec.kind}".encode())

    def family(self, spec: Spec, samples: Iterable[tuple[tuple[str, ...], float]]) -> None:
        rows = list(samples)
        if not rows:
            return
        name = spec.name
        meta = name.removesuffix("_total") if self.openmetrics and spec.kind == "counter" else name
        self._head(spec, meta)
        out = self.lines
        keys = spec.labels
        if not keys:
            out.extend(f"{name} {_num(value)}".encode() for _, value in rows)
            return
        # Labelled samples: the last render's line is reused when the value is unchanged,
        # and its name-and-labels part when only the value moved (the ages). Only the
        # lines are kept: the value is the text after the line's last space.
        old = self.cache.lines.get(name, {}) if self.cache is not None else {}
        new: dict[tuple[str, ...] | str, bytes] = {}
        single = len(keys) == 1
        for values, value in rows:
            num = _num(value).encode()
            key = values[0] if single else values  # one label: its value (no tuple kept)
            line = old.get(key)
            if line is None:
                labels = ",".join(f'{k}="{_escape(v)}"' for k, v in zip(keys, values, strict=True))
                line = f"{name}{{{labels}}} ".encode() + num
            elif not line.endswith(num) or line[-len(num) - 1] != _SPACE:
                line = line[: line.rindex(b" ") + 1] + num
            new[key] = line
            out.append(line)
        if self.cache is not None:
            # Replaced, not merged: series that went away do not linger in memory.
            self.cache.lines[name] = new

    def per_queue(self, spec: Spec, groups: Iterable[tuple[str, Mapping[int, int]]]) -> None:
        """A family labelled (queue, step) from each queue's mapping step -> value, the
        steps in order: a queue's lines are kept as one block, reused while its mapping
        is unchanged (equal to family() over the same series: tests/exporter/
        test_exposition.py)."""
        name = spec.name
        old = self.cache.groups.get(name, {}) if self.cache is not None else {}
        new: dict[str, tuple[Mapping[int, int], bytes]] = {}
        blocks: list[bytes] = []
        queue_label, step_label = spec.labels
        for queue, mapping in groups:
            if not mapping:
                continue
            hit = old.get(queue)
            if hit is not None and (hit[0] is mapping or hit[0] == mapping):
                block = hit[1]
            else:
                head = f'{name}{{{queue_label}="{_escape(queue)}",{step_label}="'
                block = "\n".join(
                    f'{head}{step}"}} {_num(n)}' for step, n in sorted(mapping.items())
                ).encode()
            new[queue] = (mapping, block)
            blocks.append(block)
        if self.cache is not None:
            self.cache.groups[name] = new
        if not blocks:
            return
        self._head(spec, name)
        self.lines.extend(blocks)

    def counts(self, spec: Spec, rows: Iterable[tuple[str, int]]) -> None:
        """A family with one label and integer values (queue -> count): a line is reused
        while its value is the same, without formatting the value again (equal to
        family() over the same series). Cheaper than family() when most values stay put
        but the snapshot's generation moved, as on a busy broker."""
        name = spec.name
        old = self.cache.counts.get(name, {}) if self.cache is not None else {}
        new: dict[str, tuple[int, bytes]] = {}
        lines: list[bytes] = []
        label = spec.labels[0]
        for key, value in rows:
            hit = old.get(key)
            if hit is not None and hit[0] == value:
                line = hit[1]
            else:
                line = f'{name}{{{label}="{_escape(key)}"}} {value}'.encode()
            new[key] = (value, line)
            lines.append(line)
        if self.cache is not None:
            self.cache.counts[name] = new
        if not lines:
            return
        self._head(spec, name)
        self.lines.extend(lines)

    def histogram(self, spec: Spec, rows: Iterable[HistogramRow]) -> None:
        """A histogram family: `_bucket` per bound (`le`), `_count` and `_sum`."""
        series = list(rows)
        if not series:
            return
        out = self.lines
        self._head(spec, spec.name)
        for values, buckets, total in series:
            labels = ",".join(
                f'{k}="{_escape(v)}"' for k, v in zip(spec.labels, values, strict=True)
            )
            sep = "," if labels else ""
            for bound, n in buckets:
                le = floatToGoString(bound)
                out.append(f'{spec.name}_bucket{{{labels}{sep}le="{le}"}} {n}'.encode())
            count = buckets[-1][1] if buckets else 0
            out.append(f"{spec.name}_count{{{labels}}} {count}".encode())
            out.append(f"{spec.name}_sum{{{labels}}} {_num(total)}".encode())

    def family_of(self, spec: Spec, generation: Hashable | None, write: Callable[[], None]) -> None:
        """A family that only changes with the snapshot's generation: written by
        `write` once per generation, its lines reused verbatim while only the ages move."""
        cache = self.cache
        if cache is None or generation is None:
            write()
            return
        hit = cache.blocks.get(spec.name)
        if hit is not None and hit[0] == generation:
            self.lines.extend(hit[1])
            return
        start = len(self.lines)
        write()
        cache.blocks[spec.name] = (generation, self.lines[start:])

    def body(self, extra: bytes | None) -> Body:
        """The lines, then `extra` (a whole exposition in the same format, with its own
        `# EOF` in OpenMetrics) or our own `# EOF`."""
        if extra is not None:
            if extra:
                self.lines.append(extra.removesuffix(b"\n"))
        elif self.openmetrics:
            self.lines.append(b"# EOF")
        return Body(self.lines)


def render_snapshot(
    snap: Snapshot,
    *,
    version: str,
    kubernetes_enabled: bool,
    openmetrics: bool = False,
    cache: LineCache | None = None,
    broker: str = "redis",
) -> str:
    """All exporter metrics for one snapshot, as exposition text (render_body, decoded)."""
    body = render_body(
        snap,
        version=version,
        kubernetes_enabled=kubernetes_enabled,
        openmetrics=openmetrics,
        cache=cache,
        broker=broker,
    )
    return bytes(body).decode()


def render_body(
    snap: Snapshot,
    *,
    version: str,
    kubernetes_enabled: bool,
    openmetrics: bool = False,
    cache: LineCache | None = None,
    extra: bytes | None = None,
    broker: str = "redis",
) -> Body:
    """All exporter metrics for one snapshot: the /metrics body, UTF-8. `extra` is
    another whole exposition in the same format (prometheus_client's output for the
    registry beside the snapshot), appended in the same join. `broker` is the broker's
    kind, the `backend` label of its last_scrape_error ("redis", "rabbitmq").

    Rendered directly rather than through prometheus_client's families: with 1,000
    queues that is ~8,000 samples, and the generic path costs several times more
    than reading Redis does (benchmarks/README.md).
    """
    w = _Writer(openmetrics, cache)
    qs = snap.queues
    # Between generations only the ages change (see InProcessSource): the other per-queue
    # families are reused whole. The format changes meta lines (counter names, HELP escapes).
    gen = None if snap.generation is None else (snap.generation, openmetrics)
    # While the broker is down the queues are unknown: no series rather than false zeros.
    w.family_of(
        QUEUE_LENGTH, gen, lambda: w.family(QUEUE_LENGTH, (((q.queue,), q.waiting) for q in qs))
    )
    w.family_of(
        QUEUE_PRIORITY_LENGTH,
        gen,
        lambda: w.per_queue(QUEUE_PRIORITY_LENGTH, ((q.queue, q.priority_lengths) for q in qs)),
    )
    w.family_of(
        QUEUE_UNACKED, gen, lambda: w.family(QUEUE_UNACKED, (((q.queue,), q.unacked) for q in qs))
    )
    # The parts of in flight: for the batches always, for other queues while they have
    # any (with thousands of discovered queues two more series each, all 0, would cost
    # memory and time for nothing).
    w.family_of(
        QUEUE_SCHEDULED,
        gen,
        lambda: w.counts(
            QUEUE_SCHEDULED, ((q.queue, q.scheduled) for q in qs if q.configured or q.scheduled)
        ),
    )
    # Stranded depends on the events' live workers too, not only on the read.
    overdue = [q for q in qs if q.overdue]
    w.family_of(
        QUEUE_UNACKED_STRANDED,
        None if overdue else gen,
        lambda: w.counts(
            QUEUE_UNACKED_STRANDED,
            ((q.queue, snap.stranded(q.queue)) for q in qs if q.configured or q.overdue),
        ),
    )
    # An age the broker cannot tell is no series, never a false 0.
    w.family(
        QUEUE_OLDEST_AGE,
        (((q.queue,), q.oldest_age_seconds) for q in qs if q.oldest_age_seconds is not None),
    )
    w.family_of(
        QUEUE_MEMORY,
        gen,
        lambda: w.family(QUEUE_MEMORY, (((q.queue,), q.memory_bytes) for q in qs)),
    )
    w.family(BROKER_UP, [((), 1 if snap.broker_up else 0)])
    if snap.broker_memory_used_bytes is not None:
        w.family(BROKER_MEMORY_USED, [((), snap.broker_memory_used_bytes)])
    if snap.broker_memory_max_bytes is not None:
        w.family(BROKER_MEMORY_MAX, [((), snap.broker_memory_max_bytes)])
    # Only where the broker counts consumers (RabbitMQ): no false zeros on Redis.
    w.family_of(
        QUEUE_CONSUMERS,
        gen,
        lambda: w.family(
            QUEUE_CONSUMERS, (((q.queue,), q.consumers) for q in qs if q.consumers is not None)
        ),
    )
    w.family(BROKER_ALARM, (((r,), 1 if on else 0) for r, on in sorted(snap.broker_alarms.items())))
    deps = sorted(snap.deployments.items())
    w.family(DEPLOYMENT_REPLICAS, (((q, d.name), d.replicas) for q, d in deps))
    w.family(DEPLOYMENT_READY, (((q, d.name), d.ready_replicas) for q, d in deps))
    if kubernetes_enabled:
        w.family(KUBERNETES_UP, [((), 1 if snap.kubernetes_up else 0)])
    claims = sorted(snap.claims.items())
    w.family(BATCH_CLAIMED, (((q, c.holder), 1) for q, c in claims))
    w.family(BATCH_CLAIM_EXPIRY, (((q,), c.expires) for q, c in claims))
    deadlines = [(q, c.finish_by) for q, c in claims if c.finish_by is not None]
    w.family(BATCH_FINISH_BY, (((q,), t) for q, t in deadlines))
    expected = [(q, expected_finish(snap, q)) for q, _ in deadlines]
    w.family(BATCH_EXPECTED_FINISH, (((q,), t) for q, t in expected if t is not None))
    w.family(BATCH_CLAIM_REPLICA_SECONDS, (((q,), c.replica_seconds) for q, c in claims))
    if snap.events is not None:
        _events(w, snap.events)
    w.family(SCRAPE_DURATION, [((), snap.duration_seconds)])
    w.family(QUEUES_DROPPED, [((), snap.queues_dropped)])
    w.family(QUEUES_SKIPPED, (((r,), n) for r, n in sorted(snap.queues_skipped.items())))
    errors = [((broker,), 0 if snap.broker_error is None else 1)]
    if kubernetes_enabled:
        errors.append((("kubernetes",), 0 if snap.kubernetes_error is None else 1))
    w.family(LAST_ERROR, errors)
    w.family(BUILD_INFO, [((version,), 1)])
    return w.body(extra)


def _events(w: _Writer, ev: EventsView) -> None:
    """The events families. Counters always (they count what was seen); the gauges of
    what runs now only while the consumer is connected: unknown is no series, not 0."""
    w.family(EVENTS_UP, [((), 1 if ev.up else 0)])
    w.family(EVENTS_RECEIVED, [((), ev.received)])
    w.family(
        TASK_EVENTS,
        (((t.queue, t.task, state), n) for t in ev.tasks for state, n in sorted(t.states.items())),
    )
    w.histogram(
        TASK_RUNTIME,
        (
            ((t.queue, t.task), t.cumulative_buckets(), t.runtime_sum)
            for t in ev.tasks
            if t.runtime_buckets
        ),
    )
    if ev.up:
        w.family(QUEUE_ACTIVE, (((q.queue,), q.active) for q in ev.queues))
        w.family(QUEUE_WORKERS, (((q.queue,), q.workers) for q in ev.queues))
