"""`batchctl scale BATCH N`: replicas by hand, by the claim's holder, within the caps."""

from __future__ import annotations

import time

import click

from batchctl.claims import ClaimConflict, ClaimRefused, Refused, StoreError
from batchctl.claims.store import ClaimStore
from batchctl.cli.cluster import (
    Cluster,
    cluster_options,
    identity_note,
    load_for_claims,
    session_as,
)
from batchctl.cli.common import (
    conflict,
    duration,
    holder_or_exit,
    outcome_json,
    store_failed,
    when,
)
from batchctl.cli.options import (
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    TEXT,
    Printer,
    config_error,
    config_option,
    output_option,
)
from batchctl.config import ConfigError
from batchctl.units import format_duration


class _ScaleCommand(click.Command):
    """`scale batch1 -1`: a bad N, said as such, not click's "No such option '-1'"."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        typed = list(args)  # click consumes `args`
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as e:
            # The token as typed: click names only its first short option ("-1" of "-1.5").
            token = next((a for a in typed if a.startswith(e.option_name)), e.option_name)
            if token.lstrip("-").replace(".", "", 1).isdigit():
                raise click.BadParameter(
                    f"{token}: replicas are a whole number, 0 or more.",
                    ctx=ctx,
                    param_hint="'N'",
                ) from None
            raise


@click.command("scale", cls=_ScaleCommand)
@click.argument("queue")
@click.argument("replicas", type=click.IntRange(min=0), metavar="N")
@click.option(
    "--for",
    "for_",
    default=None,
    metavar="DURATION",
    help="How long the autoscaler leaves N alone, e.g. 30m, 2h "
    "[default: the batch's manual_override_seconds, 15m; never past the claim's expiry].",
)
@click.option("--holder", default=None, show_default="$USER", type=TEXT, help="Your name.")
@click.option("--force", is_flag=True, help="Scale a batch someone else holds (needs --reason).")
@click.option(
    "--reason",
    default="",
    type=TEXT,
    help="Why; required with --force, recorded in the history.",
)
@config_option
@cluster_options
@output_option
def scale_command(
    queue: str,
    replicas: int,
    for_: str | None,
    holder: str | None,
    force: bool,
    reason: str,
    config_path: str | None,
    output: str,
    cluster: Cluster,
) -> None:
    """Set the batch QUEUE to N replicas by hand, for a while.

    \b
    Only the claim's holder may (or anyone with --force --reason, recorded as
    "forced"), and N must be within the batch's min_replicas..max_replicas. It goes
    through the configured backend (autoscaler.backend):
      kubernetes  patches the Deployment's scale subresource now
      local       the autoscaler starts or warm-stops workers at its next tick
      dry-run     recorded only
    The autoscaler then holds N for --for (reason manual_override, naming you and
    how long is left) and takes over again afterwards; `release --drain` ends it.
    With the claims in Kubernetes, N is recorded in the batch's Lease, in the name
    the cluster knows you by, and the autoscaler sets it at its next tick (you need
    no rights on the Deployment); someone else's batch takes the Role batchctl-admin.
    """
    from autoscaler.manual import ScaleFailed, manual_scale
    from batchctl.claims.service import store_for

    out = Printer.of(output)
    cfg = load_for_claims(config_path, cluster, out)
    session = session_as(cfg, holder, out) if cfg.claims.store == "kubernetes" else None
    store: ClaimStore
    if session is not None and session.identity is not None:
        holder, store = session.identity.name, session.store()
    else:
        holder, store = holder_or_exit(holder, out), store_for(cfg)
    batch = cfg.batch(queue)
    default_for = batch.manual_override_seconds if batch and batch.manual_override_seconds else 900
    for_seconds = duration(for_, default_for, "--for")
    now = time.time()
    try:
        done = manual_scale(
            cfg,
            store,
            queue,
            replicas,
            for_seconds,
            holder,
            now,
            force=force,
            reason=reason,
            patch=session is None,
        )
    except ClaimConflict as e:
        conflict(e, out, "ask them, or add --force --reason")
    except ClaimRefused as e:
        out.fail(str(e), EXIT_USAGE)
    except Refused as e:
        out.fail(str(e), EXIT_REFUSED)
    except ConfigError as e:
        config_error(e, out)
    except ScaleFailed as e:
        out.fail(f"cannot scale {queue}: {e}", EXIT_USAGE if e.not_found else EXIT_UNREACHABLE)
    except StoreError as e:
        store_failed(e, out)
    finally:
        store.close()
        if session is not None:
            session.close()
    c = done.outcome.claim
    assert c is not None and c.override is not None
    o = c.override
    doc = outcome_json(queue, done.outcome, now) | identity_note(session)
    doc |= {"replicas": replicas, "until": o.until, "backend": done.backend}
    doc["patched"] = done.patched
    left = f"until {when(o.until)} ({format_duration(o.until - now)})"
    deployment = batch.deployment if batch is not None else ""
    how = {
        "kubernetes": f"scaled {queue} to {replicas} replicas (Deployment {deployment}); "
        f"the autoscaler leaves it so {left}"
        if done.patched
        else f"{queue}: {replicas} replicas recorded {left}; the autoscaler sets them on "
        f"Deployment {deployment} at its next tick",
        "local": f"{queue}: {replicas} replicas {left}; the autoscaler (local backend) starts "
        "or stops the workers at its next tick",
    }.get(
        done.backend,
        f"{queue}: {replicas} replicas recorded {left}; the dry-run backend changes nothing",
    )
    out.data(doc, how)
