"""The status page's notices: what an operator must know before reading the rows.

Pure HTML from the autoscaler's decisions and the snapshot: the autoscaler only
pretends (dry-run), batches another controller scales (an HPA, KEDA), and a broker that
keeps no data across a restart (claims and their history would vanish).
"""

from __future__ import annotations

from batchctl.decisions import Decisions
from exporter.snapshot import Snapshot
from exporter.status.parts import esc

DRY_RUN = "dry-run"
NOTE = (
    '<p class="note" id="{id}" style="background:#fff4c2;color:#6b4e00;padding:.5rem .8rem;'
    'border-radius:4px">{text}</p>'
)


def dry_run(decisions: Decisions | None) -> bool:
    """Whether the autoscaler only pretends: its decisions were applied to nothing."""
    return decisions is not None and decisions.backend == DRY_RUN


def notices(snap: Snapshot, decisions: Decisions | None) -> str:
    parts = []
    if dry_run(decisions):
        parts.append(
            NOTE.format(
                id="dry-run",
                text="The autoscaler runs in <b>dry-run</b>: the decisions below are what it "
                "would do; it scaled nothing.",
            )
        )
    others = [
        d
        for d in (decisions.decisions if decisions is not None else ())
        if d.reason == "other_controller"
    ]
    if others:
        items = "".join(f"<li>{esc(d.queue)}: {esc(d.detail)}</li>" for d in others)
        parts.append(
            NOTE.format(
                id="other-controllers",
                text=f"Held: another controller scales these batches' Deployments.<ul>{items}</ul>",
            )
        )
    durability = snap.durability
    if durability is not None and durability.lost_claims:
        lost = ", ".join(f"{esc(q)} ({esc(h)})" for q, h in sorted(durability.lost_claims.items()))
        parts.append(
            NOTE.format(
                id="claims-lost",
                text=f"Redis restarted and lost its data: the claims of {lost} are gone, "
                "with their history. Claim the batches again.",
            )
        )
    if durability is not None and durability.durable is False:
        parts.append(
            NOTE.format(
                id="not-durable",
                text=f"Redis keeps no data across a restart ({esc(durability.detail)}): "
                "claims and their history are not durable.",
            )
        )
    return "".join(parts)
