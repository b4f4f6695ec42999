"""The /status page and the / landing page: pure HTML rendering of a snapshot.

One row per configured batch, for an operator who keeps the page open: waiting with its
tier colour and a 30-minute sparkline, in flight, active tasks, completed per minute,
failures, ETA, oldest age, memory, replicas ready/desired/cap, the autoscaler's current
decision and reason, the claim, and a flag on a batch with work that nobody claimed.
When the broker is down the last known values stay, greyed, with their age and the
reason. Every value that comes from outside (names, claims, errors, decisions) is
HTML-escaped; `exporter/status/board.py` gathers the inputs (the sidecar's decisions).
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Sequence

from batchctl.claims import Claim, claim_summary
from batchctl.config import BatchConfig
from batchctl.cost import Prices
from batchctl.decisions import LEASE, DecisionRecord, Decisions
from batchctl.units import format_bytes, format_duration
from exporter.progress import ESTIMATE, Progress
from exporter.snapshot import QueueStats, Snapshot
from exporter.stats import expected_finish, tier
from exporter.status.deadline import BEHIND, deadline_state, deadline_text, usage_text
from exporter.status.notes import dry_run, notices
from exporter.status.parts import STYLE, esc, sparkline_svg

# Tier colours: good (<100), fine (<500), careful (<1000), danger (>=1000).
TIER_CLASSES = ("tier-good", "tier-fine", "tier-care", "tier-danger")
TIER_WORDS = ("good", "fine", "careful", "danger")
NO_EVENTS = '<span class="muted" title="events are off or not arriving">no events</span>'
DASH = "–"

_HEAD = (
    "Batch", "Waiting · 30 min", "In flight", "Active", "Done /min", "Failed 10 min", "ETA",
    "Oldest", "Memory", "Replicas ready/desired/cap", "Autoscaler", "Claim",
)  # fmt: skip


def render_status(
    snap: Snapshot | None,
    thresholds: Sequence[int],
    refresh_seconds: int,
    now: float | None = None,
    *,
    batches: Sequence[BatchConfig] = (),
    last_good: Snapshot | None = None,
    decisions: Decisions | None = None,
    decisions_note: str = "",
    history: str = "",
    prices: Callable[[str], Prices] = lambda queue: Prices(),
) -> str:
    """The page. `batches` are the configured ones (queues marked configured in the
    snapshot otherwise); `last_good` the last snapshot in which the broker answered;
    `decisions` the autoscaler's, or None with `decisions_note` saying why; `history`
    the recent claim events block (HTML, already escaped), or ""; `prices` what a
    replica-hour of each batch costs (the `cost:` section)."""
    now = time.time() if now is None else now
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f'<meta http-equiv="refresh" content="{int(refresh_seconds)}">',
        "<title>batchctl · Celery batch queues</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Celery batch queues</h1>",
    ]
    if snap is None:
        parts.append('<p class="down">No snapshot yet: the first collection is running.</p>')
        parts.append("</body></html>")
        return "".join(parts)
    age = max(0.0, now - snap.taken_at)
    parts.append(
        f'<div class="meta">Refreshed every {int(refresh_seconds)}s · snapshot {age:.0f}s old · '
        f"read in {snap.duration_seconds * 1000:.1f} ms · {_events_meta(snap)} · "
        f"{_autoscaler_meta(decisions, decisions_note, now)} · "
        f'<a href="/metrics">/metrics</a> · <a href="/api/v1/snapshot">JSON</a></div>'
    )
    shown = snap
    stale = False
    if not snap.broker_up:
        shown_at = ""
        if last_good is not None:
            shown, stale = last_good, True
            shown_at = (
                f" Showing the last known values, {format_duration(now - last_good.taken_at)} old."
            )
        parts.append(
            f'<p class="down" id="broker-down">Broker unreachable: '
            f"{esc((snap.broker_error or 'unknown error').rstrip('.'))}.{esc(shown_at)}</p>"
        )
    if snap.kubernetes_up is False:
        parts.append(
            f'<p class="down" id="kube-down">Kubernetes API unreachable (replicas may be stale): '
            f"{esc(snap.kubernetes_error or 'unknown error')}</p>"
        )
    parts.append(notices(snap, decisions))
    parts.append(_legend(thresholds))
    configured = _configured(shown, batches)
    by_queue = decisions.by_queue() if decisions is not None else {}
    pretend = dry_run(decisions)
    head = "".join(
        f'<th class="{"name" if i in (0, 10, 11) else ""}">{h}</th>' for i, h in enumerate(_HEAD)
    )
    parts.append(f'<table id="batches"><thead><tr>{head}</tr></thead><tbody>')
    for batch in configured:
        q = shown.queue(batch.queue) if shown.broker_up else None
        decision = by_queue.get(batch.queue)
        row = _row(batch, q, shown, snap, thresholds, now, stale, decision, pretend, prices)
        parts.append(row)
    parts.append("</tbody></table>")
    others = [q for q in shown.queues if q.queue not in {b.queue for b in configured}]
    if others:
        parts.append(_others(others, thresholds, stale))
    parts.append(history)  # recent claim events (exporter/status/claim_history.py), or ""
    parts.append("</body></html>")
    return "".join(parts)


def _configured(shown: Snapshot, batches: Sequence[BatchConfig]) -> list[BatchConfig]:
    if batches:
        return list(batches)
    # No config at hand (tests, old callers): the queues the snapshot marks configured.
    return [
        BatchConfig(queue=q.queue, deployment=q.deployment or "unknown-deployment")
        for q in sorted(shown.queues, key=lambda q: q.queue)
        if q.configured
    ]


def _row(
    batch: BatchConfig,
    q: QueueStats | None,
    shown: Snapshot,
    current: Snapshot,
    thresholds: Sequence[int],
    now: float,
    stale: bool,
    decision: DecisionRecord | None,
    pretend: bool = False,
    prices: Callable[[str], Prices] = lambda queue: Prices(),
) -> str:
    name = batch.queue
    claim = shown.claims.get(name) if shown.broker_up else None
    prog = shown.progress.get(name)
    dep = current.deployments.get(name) or shown.deployments.get(name)
    replicas = (
        q.replicas if q is not None and q.replicas is not None else (dep.replicas if dep else None)
    )
    ready = (
        q.ready_replicas
        if q is not None and q.ready_replicas is not None
        else (dep.ready_replicas if dep else None)
    )
    flags = ""
    in_use = q is not None and (q.waiting > 0 or (replicas or 0) > 0)
    unclaimed = batch.require_claim and (claim is None or claim.expired(now))
    if in_use and unclaimed:
        what = "work waiting" if q is not None and q.waiting else "replicas running"
        flags += (
            f' <span class="flag" title="{what} and nobody has claimed the batch">UNCLAIMED</span>'
        )
    if q is not None and q.waiting > 0 and replicas is not None and (ready or 0) == 0:
        flags += (
            ' <span class="warn" title="messages waiting, nobody consuming">no consumers</span>'
        )
    activity = shown.activity(name)
    cells = [f'<td class="name">{esc(name)}{flags}</td>']
    if q is None:
        cells.append('<td class="depth">–</td>')
        cells += [f"<td>{DASH}</td>"] * 7
    else:
        t = tier(q.waiting, batch.thresholds or thresholds)
        spark = sparkline_svg(prog.sparkline if prog is not None else ())
        cells.append(
            f'<td class="depth {TIER_CLASSES[t]}" data-tier="{TIER_WORDS[t]}">'
            f'<span class="n">{q.waiting}</span>{spark}</td>'
        )
        cells.append(f"<td>{q.unacked}{_in_flight_parts(q, shown.stranded(name))}</td>")
        cells.append(f"<td>{activity.active if activity is not None else NO_EVENTS}</td>")
        cells.append(f"<td>{_rate(prog)}</td>")
        cells.append(f"<td>{_failures(prog, shown, name)}</td>")
        started = bool(ready) or q.unacked > 0 or bool(activity and activity.active)
        cells.append(f"<td>{_eta(prog, q, started)}</td>")
        cells.append(f"<td>{_age(q)}</td>")
        memory = format_bytes(q.memory_bytes)
        if q.waiting > 0 and q.memory_bytes == 0:
            memory = '<span class="muted">sampling...</span>'
        cells.append(f"<td>{memory}</td>")
    rep = DASH if replicas is None else f"{ready or 0}/{replicas}"
    cells.append(f"<td>{rep}/{batch.max_replicas}</td>")
    cells.append(f'<td class="name">{_decision(decision, pretend)}</td>')
    expected = expected_finish(shown, name) if shown.broker_up else None
    claim_html = _claim(claim, now, shown.broker_up, expected, prices(name))
    cells.append(f'<td class="name">{claim_html}</td>')
    cls = ' class="stale"' if stale else ""
    return f'<tr data-queue="{esc(name)}"{cls}>{"".join(cells)}</tr>'


def _age(q: QueueStats) -> str:
    if not q.waiting:
        return DASH
    if q.oldest_age_seconds is None:  # a broker that cannot date its messages
        return '<span class="muted" title="the broker does not date its messages">?</span>'
    return format_duration(q.oldest_age_seconds)


def _in_flight_parts(q: QueueStats, stranded: int) -> str:
    """The parts of in flight shown apart: ETA tasks held for later, and stranded ones."""
    out = ""
    if q.scheduled:
        why = "ETA and countdown tasks a worker holds until their time"
        out += f' <small class="muted" title="{why}">{q.scheduled} scheduled</small>'
    if stranded:
        why = "past the visibility timeout with no worker to restore them"
        out += f' <span class="warn" title="{why}">{stranded} stranded</span>'
    return out


def _rate(prog: Progress | None) -> str:
    if prog is None or prog.rate_per_minute is None:
        return DASH
    text = f"{prog.rate_per_minute:.1f}"
    if prog.rate_source == ESTIMATE:
        why = "from the fall of waiting + in flight"
        return f'{text} <span class="muted" title="{why}">estimate</span>'
    return text


def _failures(prog: Progress | None, snap: Snapshot, queue: str) -> str:
    counted = snap.events.queue(queue) if snap.events is not None else None
    if prog is None or counted is None or not counted.task_events or prog.failed_recent is None:
        return NO_EVENTS
    ratio = prog.failure_ratio
    if ratio is None:
        return "0"
    cls = ' class="warn"' if prog.failed_recent else ""
    return f"<span{cls}>{prog.failed_recent} ({ratio:.0%})</span>"


def _eta(prog: Progress | None, q: QueueStats, running: bool | None = None) -> str:
    """`running`: whether the batch has consumers (ready replicas) or tasks running; a
    batch nobody started is waiting, not stalled."""
    if prog is None or prog.eta_seconds is None:
        if prog is not None and prog.rate_per_minute == 0 and q.work > 0:
            if running is False:
                return '<span class="muted" title="no consumer has started">not started</span>'
            return '<span class="warn" title="nothing completed lately">stalled</span>'
        return DASH
    if prog.eta_seconds == 0:
        return "done" if q.work == 0 else DASH
    return format_duration(prog.eta_seconds)


def _decision(d: DecisionRecord | None, pretend: bool = False) -> str:
    if d is None:
        return '<span class="muted">unknown</span>'
    change = f"{d.current}→{d.desired}" if d.desired != d.current else str(d.current)
    if pretend:  # dry-run: nothing happened, so nothing is coloured as if it had
        return (
            f'<span class="muted" data-dry-run="1" title="{esc(d.detail)}">'
            f"would {esc(d.action)} {change} · {esc(d.reason)}</span>"
        )
    return (
        f'<span class="act-{esc(d.action)}" title="{esc(d.detail)}">'
        f"{esc(d.action)} {change} · {esc(d.reason)}</span>"
    )


def _claim(
    c: Claim | None,
    now: float,
    known: bool,
    expected: float | None = None,
    prices: Prices | None = None,
) -> str:
    """The claim cell: who, for what, until when; its deadline (`expected`: when the work
    would be done at its pace), flagged when behind; what it used, at `prices`."""
    if not known:
        return DASH
    if c is None:
        return '<span class="muted">free</span>'
    summary = esc(claim_summary(c, now))
    if c.expired(now):
        summary = f'<span class="warn">{summary}</span>'
    contact = f"{esc(c.contact)} · " if c.contact else ""
    out = f"{summary}<br><small>{contact}claimed {format_duration(now - c.since)} ago</small>"
    if deadline := deadline_text(c, expected, now):
        behind = deadline_state(c, expected, now) == BEHIND
        cls = ' class="warn" data-deadline="behind"' if behind else ' data-deadline="on-pace"'
        out += f"<br><small{cls}>{esc(deadline)}</small>"
    if c.replica_seconds > 0 and prices is not None:
        out += f'<br><small class="muted">{esc(usage_text(c, prices))}</small>'
    return out


def _others(queues: Sequence[QueueStats], thresholds: Sequence[int], stale: bool) -> str:
    rows = []
    for q in sorted(queues, key=lambda q: q.queue):
        t = tier(q.waiting, thresholds)
        cls = ' class="stale"' if stale else ""
        rows.append(
            f'<tr data-queue="{esc(q.queue)}"{cls}><td class="name">{esc(q.queue)}</td>'
            f'<td class="depth {TIER_CLASSES[t]}" data-tier="{TIER_WORDS[t]}">{q.waiting}</td>'
            f"<td>{q.unacked}</td>"
            f"<td>{_age(q)}</td>"
            f"<td>{format_bytes(q.memory_bytes)}</td></tr>"
        )
    return (
        '<h2>Other queues</h2><table id="others"><thead><tr><th class="name">Queue</th>'
        "<th>Waiting</th><th>In flight</th><th>Oldest</th><th>Memory</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _legend(thresholds: Sequence[int]) -> str:
    t1, t2, t3 = thresholds
    return (
        '<p class="legend">'
        f'<span class="tier-good">&le; {t1} good</span>'
        f'<span class="tier-fine">&le; {t2} fine</span>'
        f'<span class="tier-care">&lt; {t3} careful</span>'
        f'<span class="tier-danger">&ge; {t3} danger</span></p>'
    )


def _events_meta(snap: Snapshot) -> str:
    ev = snap.events
    if ev is None:
        return '<span class="muted">no events (events.enabled is false)</span>'
    if not ev.up:
        return f'<span class="warn">no events: {esc(ev.error or "not connected")}</span>'
    return f"events: {ev.received} received"


def _autoscaler_meta(decisions: Decisions | None, note: str, now: float) -> str:
    why = f" ({esc(note)})" if note else ""
    if decisions is None:
        return f'<span class="muted" id="autoscaler">autoscaler: unknown{why}</span>'
    if decisions.at is None:
        return f'<span class="muted" id="autoscaler">autoscaler: no decision yet{why}</span>'
    who = f" by {esc(decisions.leader)}" if decisions.leader else ""
    via = " (the leader's, from its Lease)" if decisions.source == LEASE else ""
    return f"autoscaler decided {format_duration(max(0.0, now - decisions.at))} ago{who}{via}"


def render_landing(version: str) -> str:
    links = [
        ("/status", "Status page: one row per batch"),
        ("/metrics", "Prometheus metrics"),
        ("/api/v1/snapshot", "The current snapshot as JSON"),
        ("/healthz", "Liveness"),
        ("/readyz", "Readiness (after a first successful collection)"),
        ("/runbooks/", "The runbook of every alert (alerts.runbook_url points here)"),
    ]
    items = "".join(f'<li><a href="{u}">{u}</a> — {html.escape(t)}</li>' for u, t in links)
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>batchctl exporter</title>"
        f"<style>{STYLE}</style></head><body><h1>batchctl exporter</h1>"
        f'<div class="meta">version {html.escape(version)}</div><ul>{items}</ul></body></html>'
    )
