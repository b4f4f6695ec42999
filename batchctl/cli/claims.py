"""`batchctl claim | release`: the spreadsheet of the operations page, in Redis.

Thin click layer: parse here; the rules and the store live in batchctl/claims/.
"""

from __future__ import annotations

import getpass
import os
import sys
import time
from datetime import datetime
from typing import NoReturn

import click
import redis

from batchctl.claims import ClaimConflict, describe_expiry
from batchctl.claims.service import ClaimRefused, claim, release
from batchctl.cli.options import (
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    config_option,
    load_or_exit,
)
from batchctl.config import Config
from batchctl.redact import redact_url, scrub
from batchctl.units import format_duration, parse_duration


def default_holder() -> str:
    return os.environ.get("USER") or getpass.getuser()


def fail(message: str, code: int = EXIT_REFUSED) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def unreachable(cfg: Config, exc: redis.RedisError) -> NoReturn:
    # redis-py's messages name host and port at most; scrub URLs and secrets anyway.
    fail(
        f"cannot reach the broker at {redact_url(cfg.broker.url)}: {scrub(str(exc))}",
        EXIT_UNREACHABLE,
    )


def when(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M %Z")


def _ttl(cfg: Config, text: str | None) -> float:
    if text is None:
        return cfg.autoscaler.claim_default_ttl_seconds
    try:
        return parse_duration(text)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--ttl") from None


@click.command("claim")
@click.argument("queue")
@click.option(
    "--holder",
    default=default_holder,
    show_default="$USER",
    help="Who holds the batch (your user name).",
)
@click.option("--purpose", default=None, help="What the batch is for; required for a new claim.")
@click.option("--contact", default=None, help="Where to reach you, e.g. a chat channel.")
@click.option(
    "--ttl",
    default=None,
    metavar="DURATION",
    help="How long until the claim counts as forgotten: 30m, 8h, 2d, 1h30m "
    "[default: autoscaler.claim_default_ttl_seconds, 8h].",
)
@config_option
def claim_command(
    queue: str,
    holder: str,
    purpose: str | None,
    contact: str | None,
    ttl: str | None,
    config_path: str | None,
) -> None:
    """Claim the batch QUEUE, or extend your claim on it.

    Only claimed batches are scaled up. Claiming again extends the claim (and
    updates --purpose/--contact when given). Someone else's claim blocks you until
    it expires or they release it.
    """
    cfg = load_or_exit(config_path)
    ttl_seconds = _ttl(cfg, ttl)
    now = time.time()
    try:
        done = claim(cfg, queue, holder, purpose, contact, ttl_seconds, now)
    except ClaimConflict as e:
        c = e.existing
        who = c.holder + (f" ({c.contact})" if c.contact else "")
        fail(
            f"{queue} is claimed by {who} for {c.purpose or '(no purpose given)'!r}, "
            f"{describe_expiry(c, e.now)}; ask them, wait, or take it over with "
            f"`batchctl release {queue} --force`"
        )
    except ClaimRefused as e:
        fail(str(e), EXIT_USAGE)
    except ValueError as e:
        fail(str(e), EXIT_USAGE)
    except redis.RedisError as e:
        unreachable(cfg, e)
    c = done.claim
    verb = "extended" if done.extended else "claimed"
    click.echo(
        f"{verb} {queue} for {c.holder} until {when(c.expires)} "
        f"({format_duration(ttl_seconds)}): {c.purpose or '(no purpose given)'}"
    )
    click.echo(f"when you are done: batchctl release {queue}")


@click.command("release")
@click.argument("queue")
@click.option("--holder", default=default_holder, show_default="$USER", help="Your name.")
@click.option("--force", is_flag=True, help="Release someone else's claim.")
@config_option
def release_command(queue: str, holder: str, force: bool, config_path: str | None) -> None:
    """Give the batch QUEUE back: the autoscaler drains it and scales it to zero."""
    cfg = load_or_exit(config_path)
    now = time.time()
    try:
        released = release(cfg, queue, holder, force, now)
    except ClaimConflict as e:
        c = e.existing
        fail(
            f"{queue} is claimed by {c.holder}, not {holder} ({describe_expiry(c, now)}); "
            "add --force to release it anyway"
        )
    except ClaimRefused as e:
        fail(str(e), EXIT_USAGE)
    except redis.RedisError as e:
        unreachable(cfg, e)
    if released is None:
        click.echo(f"{queue} was not claimed; nothing to release")
        return
    whose = "" if released.holder == holder else f" (was held by {released.holder})"
    click.echo(f"released {queue}{whose}")
