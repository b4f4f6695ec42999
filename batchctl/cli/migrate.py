"""`batchctl claims migrate --to kubernetes`: move a running site's claims into Leases.

One command copies every configured batch's claim from the broker's Redis (the `redis`
store) into its Lease, as it is: holder, purpose, contact, since, expiry, a drain, a
manual scale. Each copy is one write with a `migrated` event (it reaches the history
ring and the Deployment's Events like any change). Run it where both the broker and the
cluster are reachable, the pod being the obvious place:

    kubectl -n NS exec deploy/batchctl -c exporter -- batchctl claims migrate --to kubernetes

It can run again: a Lease that already holds the same claim (same holder, same start)
is brought up to date, one that holds another live claim is left alone and reported
(exit 1). The Redis copy is not deleted (no claim is ever lost by moving it).
"""

from __future__ import annotations

import time

import click

from batchctl.claims import ClaimConflict, StoreError
from batchctl.claims.service import STORES
from batchctl.cli.cluster import (
    Cluster,
    cluster_options,
    identity_note,
    session_as,
    with_cluster,
)
from batchctl.cli.common import store_failed, when
from batchctl.cli.options import EXIT_REFUSED, Printer, config_option, load_or_exit, output_option
from batchctl.textcols import columns


@click.group("claims")
def claims_group() -> None:
    """Manage the claim store itself (the claims: claim, release, scale, status)."""


@claims_group.command("migrate")
@click.option(
    "--to",
    "target",
    type=click.Choice(["kubernetes"]),
    required=True,
    help="The store to copy the claims into: kubernetes (one Lease per batch).",
)
@click.option(
    "--from",
    "source",
    type=click.Choice(["redis"]),
    default="redis",
    show_default=True,
    help="The store to copy them from: redis (the broker's, broker.url).",
)
@config_option
@cluster_options
@output_option
def migrate_command(
    target: str,
    source: str,
    config_path: str | None,
    output: str,
    cluster: Cluster,
) -> None:
    """Copy every configured batch's claim from the broker's Redis into its Lease.

    \b
    Then switch the store (claims.store: kubernetes, or the shipped Deployment's
    default) and roll the pods. Claims changed in Redis meanwhile: run it again.
    Exit 0 when every claim is in its Lease, 1 when a Lease holds another live claim.
    """
    out = Printer.of(output)
    base = load_or_exit(config_path, out)
    cfg = with_cluster(base, cluster)
    cfg = cfg.model_copy(update={"claims": cfg.claims.model_copy(update={"store": target})})
    session = session_as(cfg, None, out)
    assert session.identity is not None
    who = session.identity.name
    now = time.time()
    rows: list[dict[str, object]] = []
    try:
        reader = STORES[source](cfg)
        store = session.store()
        try:
            found = reader.all([b.queue for b in cfg.batches])
        finally:
            reader.close()
        for queue, claim in found.items():
            if claim is None:
                rows.append({"queue": queue, "result": "free", "holder": None})
                continue
            try:
                done = store.copy_in(claim, who, now, source)
                result = "copied" if done.event is not None else "already there"
            except ClaimConflict as e:
                result = f"left alone: the Lease holds {e.existing.holder}'s live claim"
            rows.append(
                {"queue": queue, "result": result, "holder": claim.holder,
                 "expires": claim.expires}
            )  # fmt: skip
    except StoreError as e:
        store_failed(e, out)
    finally:
        session.close()
    conflicts = [r for r in rows if str(r["result"]).startswith("left alone")]
    doc = {"from": source, "to": target, "batches": rows} | identity_note(session)

    def text() -> str:
        table = [("BATCH", "HOLDER", "EXPIRES", "RESULT")]
        for r in rows:
            expires = r.get("expires")
            table.append(
                (str(r["queue"]), str(r["holder"] or "-"),
                 when(float(expires)) if isinstance(expires, float) else "-", str(r["result"]))
            )  # fmt: skip
        return columns(table, free_last=True)

    out.data(doc, text)
    if conflicts:
        raise SystemExit(EXIT_REFUSED)
