"""The /status page and the / landing page: pure HTML rendering of a snapshot."""

from __future__ import annotations

import html
import time
from collections.abc import Sequence

from batchctl.claims import claim_summary
from batchctl.units import format_bytes, format_duration
from exporter.snapshot import QueueStats, Snapshot, tier

# Tier colours: good (<100), fine (<500), careful (<1000), danger (>=1000).
TIER_CLASSES = ("tier-good", "tier-fine", "tier-care", "tier-danger")
TIER_WORDS = ("good", "fine", "careful", "danger")

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #1d2330; }
h1 { font-size: 1.4rem; margin: 0 0 .2rem; }
.meta { color: #5b6475; margin-bottom: 1rem; font-size: .9rem; }
.down { background: #b3261e; color: #fff; padding: .5rem .8rem; border-radius: 4px; }
table { border-collapse: collapse; min-width: 60rem; }
th, td { padding: .45rem .8rem; border-bottom: 1px solid #dde1e8; text-align: right; }
th { background: #f1f3f7; font-weight: 600; }
td.name, th.name { text-align: left; }
td.depth { font-weight: 700; border-radius: 3px; }
.tier-good { background: #d7f2dd; color: #14532d; }
.tier-fine { background: #fff4c2; color: #6b4e00; }
.tier-care { background: #ffd8a8; color: #7c2d00; }
.tier-danger { background: #f8b4b4; color: #7f1010; }
.warn { color: #b3261e; font-weight: 600; }
.legend span { display: inline-block; padding: .1rem .5rem; margin-right: .4rem;
  border-radius: 3px; }
"""


def _row(q: QueueStats, thresholds: Sequence[int], claim: str) -> str:
    t = tier(q.waiting, thresholds)
    replicas = "–" if q.replicas is None else f"{q.ready_replicas or 0}/{q.replicas}"
    warn = ""
    if q.waiting > 0 and q.replicas is not None and (q.ready_replicas or 0) == 0:
        warn = ' <span class="warn" title="messages waiting, nobody consuming">no consumers</span>'
    cells = [
        f'<td class="name">{html.escape(q.queue)}</td>',
        f'<td class="depth {TIER_CLASSES[t]}" data-tier="{TIER_WORDS[t]}">{q.waiting}</td>',
        f"<td>{q.unacked}</td>",
        f"<td>{format_duration(q.oldest_age_seconds)}</td>",
        f"<td>{format_bytes(q.memory_bytes)}</td>",
        f"<td>{replicas}{warn}</td>",
        f'<td class="name">{html.escape(q.deployment or "")}</td>',
        f'<td class="name">{html.escape(claim)}</td>',
    ]
    return f'<tr data-queue="{html.escape(q.queue)}">{"".join(cells)}</tr>'


def render_status(
    snap: Snapshot | None,
    thresholds: Sequence[int],
    refresh_seconds: int,
    now: float | None = None,
    history: str = "",
) -> str:
    """One row per queue: depth coloured by tier, in flight, age, memory, replicas, claim."""
    now = time.time() if now is None else now
    t1, t2, t3 = thresholds
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f'<meta http-equiv="refresh" content="{refresh_seconds}">',
        "<title>batchctl · Celery batch queues</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Celery batch queues</h1>",
    ]
    if snap is None:
        parts.append('<p class="down">No snapshot yet: the first collection is running.</p>')
        parts.append("</body></html>")
        return "".join(parts)
    age = max(0.0, now - snap.taken_at)
    parts.append(
        f'<div class="meta">Refreshed every {refresh_seconds}s · snapshot {age:.0f}s old · '
        f"read in {snap.duration_seconds * 1000:.1f} ms · "
        f'<a href="/metrics">/metrics</a> · <a href="/api/v1/snapshot">JSON</a></div>'
    )
    if not snap.broker_up:
        parts.append(
            f'<p class="down" id="broker-down">Broker unreachable: '
            f"{html.escape(snap.broker_error or 'unknown error')}</p>"
        )
    if snap.kubernetes_up is False:
        parts.append(
            f'<p class="down" id="kube-down">Kubernetes API unreachable (replicas may be stale): '
            f"{html.escape(snap.kubernetes_error or 'unknown error')}</p>"
        )
    parts.append(
        '<p class="legend">'
        f'<span class="tier-good">&le; {t1} good</span>'
        f'<span class="tier-fine">&le; {t2} fine</span>'
        f'<span class="tier-care">&lt; {t3} careful</span>'
        f'<span class="tier-danger">&ge; {t3} danger</span></p>'
    )
    parts.append(
        '<table id="queues"><thead><tr><th class="name">Queue</th><th>Waiting</th>'
        "<th>In flight</th><th>Oldest</th><th>Memory</th><th>Replicas ready/desired</th>"
        '<th class="name">Deployment</th><th class="name">Claim</th></tr></thead><tbody>'
    )
    for q in sorted(snap.queues, key=lambda q: (not q.configured, q.queue)):
        parts.append(_row(q, thresholds, claim_summary(snap.claims.get(q.queue), now)))
    parts.append("</tbody></table>")
    parts.append(history)  # recent claim events (exporter/claim_history.py), or ""
    parts.append("</body></html>")
    return "".join(parts)


def render_landing(version: str) -> str:
    links = [
        ("/status", "Status page: one row per batch"),
        ("/metrics", "Prometheus metrics"),
        ("/api/v1/snapshot", "The current snapshot as JSON"),
        ("/healthz", "Liveness"),
        ("/readyz", "Readiness (after a first successful collection)"),
    ]
    items = "".join(f'<li><a href="{u}">{u}</a> — {html.escape(t)}</li>' for u, t in links)
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>batchctl exporter</title>"
        f"<style>{_STYLE}</style></head><body><h1>batchctl exporter</h1>"
        f'<div class="meta">version {html.escape(version)}</div><ul>{items}</ul></body></html>'
    )
