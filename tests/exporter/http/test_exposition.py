"""render_snapshot proven equal to prometheus_client, in both exposition formats.

The renderer formats lines itself, for speed (benchmarks/README.md). Here a reference
exposition of the same snapshot goes through prometheus_client's generic path: a
custom collector yields Gauge/CounterMetricFamily objects built from the
batchctl.metrics table and the snapshot's fields (not from exporter/http/exposition.py),
and the library encodes them. Both texts are parsed by the library's parsers and must
give the same families and samples, for random snapshots with hostile label values
and non-finite numbers, with and without a LineCache carried across scrapes.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import generate_latest as text_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from batchctl import metrics as m
from batchctl.claims import Claim
from batchctl.metrics import EXPORTER_SPECS, RUNTIME_BUCKETS, TASK_STATES, Spec
from exporter.events.model import EventsView, QueueActivity, TaskStats
from exporter.http.exposition import render_snapshot
from exporter.http.textformat import Body, LineCache, _Writer
from exporter.progress import Progress
from exporter.snapshot import Deployment, QueueStats, Snapshot
from tests.support.properties import examples

Rows = list[tuple[tuple[str, ...], float]]
# A histogram series: label values, (le, cumulative count) per bucket, sum.
HistogramRows = list[tuple[tuple[str, ...], list[tuple[str, float]], float]]
Family = GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily

# --- the reference: prometheus_client's generic path --------------------------------


def reference_rows(
    snap: Snapshot, *, version: str, kubernetes_enabled: bool, broker: str = "redis"
) -> dict[Spec, Rows | HistogramRows]:
    """Every exporter family's samples, read off the snapshot's fields as the table's
    help texts describe them (not from the renderer's code).

    A family without samples is left out whole, HELP and TYPE included: while the
    broker is down the exporter shows no queue series rather than false zeros, and
    with Kubernetes disabled no Kubernetes families.
    """
    s = snap
    errors: Rows = [((broker,), int(s.broker_error is not None))]
    if kubernetes_enabled:
        errors.append((("kubernetes",), int(s.kubernetes_error is not None)))
    ev = s.events
    # Events off: no events family at all. Consumer down: counters, but no gauges of
    # what runs now. Run times only for tasks with observations.
    live = ev is not None and ev.up
    deadlines = [(q, c.finish_by) for q, c in s.claims.items() if c.finish_by is not None]

    def finish(q: str) -> float | None:
        # The help text: done at the pace (the ETA from now), +Inf while work is left and
        # nothing drains, absent with nothing left.
        p = s.progress.get(q)
        if p is not None and p.eta_seconds is not None:
            return None if p.eta_seconds == 0 else s.taken_at + p.eta_seconds
        stats = s.queue(q)
        return math.inf if stats is not None and stats.waiting + stats.unacked > 0 else None

    workers = {a.queue: a.workers for a in ev.queues} if ev is not None and live else {}
    rows: dict[Spec, Rows | HistogramRows] = {
        m.QUEUE_LENGTH: [((q.queue,), q.waiting) for q in s.queues],
        m.QUEUE_PRIORITY_LENGTH: [
            ((q.queue, str(step)), n) for q in s.queues for step, n in q.priority_lengths.items()
        ],
        m.QUEUE_UNACKED: [((q.queue,), q.unacked) for q in s.queues],
        # The parts of in flight: the batches always, other queues while they have any.
        m.QUEUE_SCHEDULED: [
            ((q.queue,), q.scheduled) for q in s.queues if q.configured or q.scheduled
        ],
        # Overdue ones count while no ready replica nor live worker (events) consumes.
        m.QUEUE_UNACKED_STRANDED: [
            ((q.queue,), 0 if q.ready_replicas or workers.get(q.queue) else q.overdue)
            for q in s.queues
            if q.configured or q.overdue
        ],
        m.QUEUE_OLDEST_AGE: [
            ((q.queue,), q.oldest_age_seconds) for q in s.queues if q.oldest_age_seconds is not None
        ],
        m.QUEUE_MEMORY: [((q.queue,), q.memory_bytes) for q in s.queues],
        m.BROKER_UP: [((), int(s.broker_up))],
        m.BROKER_MEMORY_USED: [((), v) for v in [s.broker_memory_used_bytes] if v is not None],
        m.BROKER_MEMORY_MAX: [((), v) for v in [s.broker_memory_max_bytes] if v is not None],
        m.QUEUE_CONSUMERS: [((q.queue,), q.consumers) for q in s.queues if q.consumers is not None],
        m.BROKER_ALARM: [((r,), int(on)) for r, on in s.broker_alarms.items()],
        m.DEPLOYMENT_REPLICAS: [((q, d.name), d.replicas) for q, d in s.deployments.items()],
        m.DEPLOYMENT_READY: [((q, d.name), d.ready_replicas) for q, d in s.deployments.items()],
        m.KUBERNETES_UP: [((), int(bool(s.kubernetes_up)))] if kubernetes_enabled else [],
        m.BATCH_CLAIMED: [((q, c.holder), 1) for q, c in s.claims.items()],
        m.BATCH_CLAIM_EXPIRY: [((q,), c.expires) for q, c in s.claims.items()],
        m.BATCH_CLAIM_REPLICA_SECONDS: [((q,), c.replica_seconds) for q, c in s.claims.items()],
        m.BATCH_FINISH_BY: [((q,), t) for q, t in deadlines],
        m.BATCH_EXPECTED_FINISH: [((q,), t) for q, _ in deadlines if (t := finish(q)) is not None],
        m.EVENTS_UP: [((), int(ev.up))] if ev is not None else [],
        m.EVENTS_RECEIVED: [((), ev.received)] if ev is not None else [],
        m.TASK_EVENTS: [
            ((t.queue, t.task, state), n)
            for t in (ev.tasks if ev is not None else ())
            for state, n in t.states.items()
        ],
        m.TASK_RUNTIME: [
            (
                (t.queue, t.task),
                [
                    (floatToGoString(le), n)
                    for le, n in zip(
                        (*RUNTIME_BUCKETS, math.inf),
                        itertools.accumulate(t.runtime_buckets),
                        strict=True,
                    )
                ],
                t.runtime_sum,
            )
            for t in (ev.tasks if ev is not None else ())
            if t.runtime_buckets
        ],
        m.QUEUE_ACTIVE: [((q.queue,), q.active) for q in ev.queues] if live else [],
        m.QUEUE_WORKERS: [((q.queue,), q.workers) for q in ev.queues] if live else [],
        m.SCRAPE_DURATION: [((), s.duration_seconds)],
        m.QUEUES_DROPPED: [((), s.queues_dropped)],
        m.QUEUES_SKIPPED: [((reason,), n) for reason, n in s.queues_skipped.items()],
        m.LAST_ERROR: errors,
        m.BUILD_INFO: [((version,), 1)],
    }
    # A family added to the table must be added here too, or this fails.
    assert set(rows) == set(EXPORTER_SPECS)
    return rows


def library_family(spec: Spec, rows: Rows | HistogramRows) -> Family:
    if spec.kind == "histogram":
        histogram = HistogramMetricFamily(spec.name, spec.help, labels=list(spec.labels))
        for labels, buckets, total in rows:  # type: ignore[misc]
            histogram.add_metric(list(labels), buckets, total)
        return histogram
    cls = CounterMetricFamily if spec.kind == "counter" else GaugeMetricFamily
    family = cls(spec.name, spec.help, labels=list(spec.labels))
    for labels, value in rows:  # type: ignore[misc]
        family.add_metric(list(labels), value)
    return family


class ReferenceCollector(Collector):
    def __init__(self, families: Sequence[Family]) -> None:
        self.families = families

    def collect(self) -> Iterator[Any]:
        yield from self.families


def library_exposition(families: Sequence[Family], openmetrics: bool) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ReferenceCollector(families))
    encode = openmetrics_latest if openmetrics else text_latest
    return encode(registry).decode()


def reference_exposition(snap: Snapshot, openmetrics: bool, **kwargs: Any) -> str:
    rows = reference_rows(snap, **kwargs)
    families = [library_family(spec, rows[spec]) for spec in EXPORTER_SPECS if rows[spec]]
    return library_exposition(families, openmetrics)


# --- comparing two expositions --------------------------------------------------------


def _value(v: float) -> object:
    """A comparable value: NaN equals NaN, 3 equals 3.0."""
    return "NaN" if math.isnan(v) else float(v)


def parsed(text: str, openmetrics: bool) -> list[tuple[object, ...]]:
    parse = parse_openmetrics if openmetrics else parse_text
    out: list[tuple[object, ...]] = []
    for f in parse(text):
        samples = sorted(
            ((s.name, tuple(sorted(s.labels.items())), _value(s.value)) for s in f.samples),
            key=lambda x: (x[0], x[1]),
        )
        out.append((f.name, f.type, f.documentation, samples))
    return out


# What both formats allow for a sample value (OpenMetrics' number; Prometheus' text
# format takes what Go's ParseFloat does, and documents NaN, +Inf and -Inf).
VALUE = re.compile(r"NaN|[+-]Inf|-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[+-]?[0-9]+)?")


def assert_same(ours: str, theirs: str, openmetrics: bool) -> None:
    assert parsed(ours, openmetrics) == parsed(theirs, openmetrics)
    # The parsers are lenient about numbers (float() reads "inf"); the formats are not.
    # Lines end at \n only: str.splitlines would also split at \r or \u2028 in a label.
    for line in ours.rstrip("\n").split("\n"):
        if not line.startswith("#"):
            value = line.rsplit(" ", 1)[1]
            assert VALUE.fullmatch(value), f"{value!r} in {line!r}"
    if openmetrics:
        assert ours.endswith("\n# EOF\n") and ours.count("# EOF") == 1


# --- random snapshots ---------------------------------------------------------------

# Characters that need escaping, or look like exposition syntax, or are not ASCII.
TRICKY = "\"\\\n\r\t {}=,#<>&'n_é日☃\U0001f600\u2028\x85\x00"
label_values = st.one_of(st.text(max_size=10), st.text(alphabet=TRICKY, max_size=10))
special_floats = st.sampled_from(
    [math.nan, math.inf, -math.inf, 0.0, -0.0, 1e300, -1e300, 5e-324, 1e-7, 2.0**53 + 2, 1e16]
)
counts = st.integers(min_value=-(2**63), max_value=2**63)
# Float fields take ints as well (what a typed float allows).
numbers = st.one_of(st.floats(), special_floats, counts)


@st.composite
def queue_stats(draw: st.DrawFn, name: str) -> QueueStats:
    return QueueStats(
        queue=name,
        waiting=draw(counts),
        priority_lengths=draw(st.dictionaries(st.integers(0, 255), counts, max_size=3)),
        unacked=draw(counts),
        oldest_age_seconds=draw(st.none() | numbers),
        memory_bytes=draw(counts),
        configured=draw(st.booleans()),
        consumers=draw(st.none() | counts.map(abs)),
        ready_replicas=draw(st.none() | st.integers(0, 3)),
        scheduled=draw(counts),
        overdue=draw(counts),
    )


@st.composite
def events_views(draw: st.DrawFn) -> EventsView:
    """Random events with hostile queue and task names; counts as the aggregator makes
    them (never negative)."""
    amounts = st.integers(0, 2**53)
    tasks = draw(
        st.lists(
            st.builds(
                TaskStats,
                label_values,
                label_values,
                st.dictionaries(st.sampled_from(TASK_STATES), amounts, max_size=4),
                st.just(()) | st.lists(amounts, min_size=19, max_size=19).map(tuple),
                st.floats(0, 1e9) | st.just(0.0),
            ),
            max_size=4,
            unique_by=lambda t: (t.queue, t.task),
        )
    )
    queues = draw(
        st.lists(
            st.builds(QueueActivity, label_values, amounts, amounts, amounts, amounts),
            max_size=3,
            unique_by=lambda q: q.queue,
        )
    )
    up = draw(st.booleans())
    return EventsView(
        up, draw(st.none() | st.floats(0, 2e9)), None if up else "down", draw(amounts),
        tuple(queues), tuple(tasks),
    )  # fmt: skip


@st.composite
def snapshots(
    draw: st.DrawFn, generation: int | None, queues: tuple[QueueStats, ...] | None = None
) -> Snapshot:
    """A random snapshot; given `queues`, one of a broker that is up with those queues."""
    broker_up = True if queues is not None else draw(st.booleans())
    if queues is None and broker_up:
        names = draw(st.lists(label_values, max_size=5, unique=True))
        queues = tuple(draw(queue_stats(q)) for q in names)
    kube = draw(st.booleans())
    optional_count = st.none() | counts
    claim = st.builds(
        Claim,
        label_values,
        label_values,
        st.just(""),
        st.just(""),
        numbers,
        numbers,
        finish_by=st.none() | numbers,
        replica_seconds=st.just(0.0) | numbers,
    )
    deployment = st.builds(Deployment, label_values, counts, counts)
    return Snapshot(
        taken_at=draw(numbers),
        duration_seconds=draw(numbers),
        broker_up=broker_up,
        kubernetes_up=draw(st.booleans()) if kube else None,
        # While the broker is down the queues are unknown (no series at all).
        queues=queues or (),
        broker_error=None if broker_up else draw(label_values),
        kubernetes_error=draw(st.none() | label_values) if kube else None,
        broker_memory_used_bytes=draw(optional_count) if broker_up else None,
        broker_memory_max_bytes=draw(optional_count) if broker_up else None,
        deployments=draw(st.dictionaries(label_values, deployment, max_size=3 if kube else 0)),
        generation=generation if broker_up else None,
        claims=(claims := draw(st.dictionaries(label_values, claim, max_size=3))),
        progress={
            q: Progress(q, eta_seconds=draw(st.none() | st.just(0.0) | numbers))
            for q in claims
            if draw(st.booleans())
        },
        queues_dropped=draw(counts.map(abs)) if broker_up else 0,
        queues_skipped=draw(st.dictionaries(label_values, counts.map(abs), max_size=3)),
        events=draw(st.none() | events_views()),
        broker_alarms=draw(
            st.dictionaries(st.sampled_from(["memory", "disk"]), st.booleans(), max_size=2)
        )
        if broker_up
        else {},
    )


@dataclass(frozen=True)
class Scrape:
    snap: Snapshot
    version: str
    kubernetes_enabled: bool
    formats: tuple[bool, ...]  # openmetrics or not, in the order they are rendered
    broker: str = "redis"

    def kwargs(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "kubernetes_enabled": self.kubernetes_enabled,
            "broker": self.broker,
        }


@st.composite
def scrapes(draw: st.DrawFn) -> list[Scrape]:
    """Successive scrapes of one exporter: fresh snapshots, and snapshots where only
    the ages moved (same generation, as exporter/collect.py makes them)."""
    out: list[Scrape] = []
    generation = 0
    for _ in range(draw(st.integers(1, 4))):
        previous = out[-1].snap if out else None
        if previous is not None and previous.generation is not None and draw(st.booleans()):
            aged = tuple(q._replace(oldest_age_seconds=draw(numbers)) for q in previous.queues)
            snap = draw(snapshots(previous.generation, aged))
        else:
            generation += 1
            snap = draw(snapshots(draw(st.sampled_from([generation, None]))))
        formats = tuple(draw(st.lists(st.booleans(), min_size=1, max_size=2)))
        kube = snap.kubernetes_up is not None
        broker = draw(st.sampled_from(["redis", "rabbitmq"]))
        out.append(Scrape(snap, draw(label_values), kube, formats, broker))
    return out


PROPERTY = settings(
    max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY
@given(scrapes(), st.booleans())
def test_render_snapshot_equals_prometheus_client(scrapes: list[Scrape], cached: bool) -> None:
    cache = LineCache() if cached else None
    for scrape in scrapes:
        for openmetrics in scrape.formats:
            ours = render_snapshot(
                scrape.snap, openmetrics=openmetrics, cache=cache, **scrape.kwargs()
            )
            theirs = reference_exposition(scrape.snap, openmetrics, **scrape.kwargs())
            assert_same(ours, theirs, openmetrics)


# --- any family: help texts and label names the table does not have (yet) -------------

# No colons: they are for recording rules, never for exporters (tests/batchctl/
# test_metrics.py holds the table to that), and prometheus_client's OpenMetrics
# encoder rewrites them to underscores in sample names.
metric_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,15}", fullmatch=True)
label_names = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_]{0,8}", fullmatch=True)


@st.composite
def families(draw: st.DrawFn) -> tuple[Spec, Rows]:
    kind: Literal["gauge", "counter"] = draw(st.sampled_from(["gauge", "counter"]))
    name = draw(metric_names) + ("_total" if kind == "counter" else "")
    labels = tuple(draw(st.lists(label_names, max_size=3, unique=True)))
    help_ = draw(st.text(alphabet=TRICKY, max_size=20) | st.text(max_size=20))
    # OpenMetrics counters are never negative or NaN.
    counter_values = st.integers(0, 2**63) | st.floats(0, allow_infinity=True)
    values = counter_values if kind == "counter" else numbers
    rows = draw(
        st.lists(
            st.tuples(st.tuples(*[label_values] * len(labels)), values),
            min_size=1,
            max_size=4,
            unique_by=lambda r: r[0],
        )
    )
    return Spec(name, kind, help_, labels), rows


@PROPERTY
@given(families(), st.booleans())
def test_any_family_equals_prometheus_client(family: tuple[Spec, Rows], openmetrics: bool) -> None:
    spec, rows = family
    writer = _Writer(openmetrics, LineCache())
    writer.family(spec, rows)
    ours = bytes(writer.body(None)).decode()
    theirs = library_exposition([library_family(spec, rows)], openmetrics)
    assert_same(ours, theirs, openmetrics)


# --- per-queue blocks: the priority lists, cached as one block per queue ---------------

mappings = st.dictionaries(st.integers(0, 255), counts.map(abs), max_size=4)


@PROPERTY
@given(
    st.lists(st.dictionaries(label_values, mappings, max_size=4), min_size=1, max_size=4),
    st.booleans(),
)
def test_per_queue_blocks_equal_family(renders: list[dict[str, dict[int, int]]], om: bool) -> None:
    """Successive renders through one cache (queues kept, changed, gone, and mappings
    that are the same object or only equal) read exactly as family() over the series."""
    spec = m.QUEUE_PRIORITY_LENGTH
    cache = LineCache()
    previous: dict[str, dict[int, int]] = {}
    for queues in renders:
        # Unchanged mappings are passed as the very object of the last render, as the
        # collector shares them; the others are new objects.
        groups = [
            (q, previous[q] if previous.get(q) == mp else dict(mp)) for q, mp in queues.items()
        ]
        writer = _Writer(om, cache)
        writer.per_queue(spec, groups)
        reference = _Writer(om, None)
        reference.family(
            spec, [((q, str(s)), n) for q, mp in groups for s, n in sorted(mp.items())]
        )
        assert bytes(writer.body(None)) == bytes(reference.body(None))
        previous = dict(groups)


@given(st.lists(st.binary(max_size=30).filter(lambda b: b"\n" not in b)), st.integers(1, 5))
def test_body_chunks_are_the_lines_with_their_newlines(lines: list[bytes], size: int) -> None:
    body = Body(list(lines))
    whole = b"".join(body.chunks(size))
    assert whole == b"".join(line + b"\n" for line in lines)
    assert body.length == len(whole) == len(bytes(body))
