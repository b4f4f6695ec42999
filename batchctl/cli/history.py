"""`batchctl history [BATCH]`: who had which batch, when, and why."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime

import click

from batchctl.claims import ClaimEvent, ClaimRefused, StoreError
from batchctl.claims.service import history
from batchctl.cli.cluster import Cluster, cluster_options, load_for_claims, open_session
from batchctl.cli.common import duration, store_failed
from batchctl.cli.options import EXIT_USAGE, Printer, config_option, output_option
from batchctl.cost import Cost, Prices
from batchctl.textcols import columns

_HEADER = ("TIME", "BATCH", "EVENT", "WHO", "HOLDER", "PURPOSE", "DETAIL")


def render_events(
    events: Sequence[ClaimEvent], prices: Callable[[str], Prices] = lambda q: Prices()
) -> str:
    """The events as a table; an event that ends a claim says what it cost, at the
    batch's `prices` (replica-hours only without a price)."""
    if not events:
        return "no claim events"
    rows = [_HEADER]
    for e in events:
        at = datetime.fromtimestamp(e.at).astimezone().strftime("%Y-%m-%d %H:%M:%S")
        detail = e.detail
        if e.replica_seconds:
            detail = f"{detail}; cost: {Cost(e.replica_seconds, prices(e.queue))}".lstrip("; ")
        rows.append((at, e.queue, e.kind, e.who_shown, e.holder, _clip(e.purpose, 32), detail))
    return columns(rows, free_last=True)


def event_json(e: ClaimEvent, prices: Prices) -> dict[str, object]:
    """An event as -o json prints it; with what the claim it ends cost."""
    doc = e.to_json()
    if e.replica_seconds is not None:
        doc["cost"] = Cost(e.replica_seconds, prices).to_json()
    return doc


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


@click.command("history")
@click.argument("queue", required=False)
@click.option(
    "--since",
    default=None,
    metavar="DURATION",
    help="Only events of the last DURATION, e.g. 1h, 2d (default: all that are kept).",
)
@config_option
@cluster_options
@output_option
def history_command(
    queue: str | None, since: str | None, config_path: str | None, output: str, cluster: Cluster
) -> None:
    """Every claim event, oldest first, of batch QUEUE or of all batches.

    \b
    Events: claimed, extended, shortened, taken_over (names the previous holder),
    released, draining (released with --drain), drained (the autoscaler ended the
    claim once the work was done), forced, expired, scaled. Each with when, who did
    it, the holder and the purpose; an event that ends a claim also says what the claim
    used (replica-hours, counted by the autoscaler) and cost at the `cost:` prices. They
    are kept in a Redis stream capped at about claims.history_max_events (10,000)
    events; with the claims in Kubernetes, in a ring of ConfigMaps in batchctl's
    namespace that keeps at least 90% of that (the newest events also ride in each
    batch's Lease), WHO as the cluster knows them ("(unverified)" when it could not
    say).
    """
    out = Printer.of(output)
    cfg = load_for_claims(config_path, cluster, out)
    window = duration(since, 0.0, "--since") if since is not None else None
    now = time.time()
    session = open_session(cfg, out) if cfg.claims.store == "kubernetes" else None
    try:
        store = session.store() if session is not None else None
        read = history(cfg, queue, now - window if window is not None else None, store=store)
    except ClaimRefused as e:
        out.fail(str(e), EXIT_USAGE)
    except StoreError as e:
        store_failed(e, out)
    finally:
        if session is not None:
            session.close()
    events = read.events
    if read.skipped:
        # Unreadable entries name no batch for sure: counted over the whole stream.
        out.warn(
            f"{read.skipped} entries of the history stream (of any batch) could not be "
            "read and were skipped"
        )
    doc = {"queue": queue, "since": now - window if window else None, "skipped": read.skipped}
    docs = [event_json(e, cfg.prices_of(e.queue)) for e in events]
    out.data(doc | {"events": docs}, lambda: render_events(events, cfg.prices_of))
