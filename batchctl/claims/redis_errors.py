"""What a Redis error means, as the store-neutral errors of batchctl/claims/errors.py.

Used by the Redis claim store for its own errors, and by the CLI for the broker reads
it makes beside the claims (`status`, the work left before a release), so both say
the same thing the same way.
"""

from __future__ import annotations

import redis

from batchctl.claims.errors import StoreError, StoreFault, StoreRefused, StoreUnavailable
from batchctl.redact import redact_url, scrub


def store_error(url: str, exc: redis.RedisError) -> StoreError:
    """`exc`, raised by a client on the broker at `url`, as a StoreError with a message
    that is safe to show.

    An error the broker answered is not "cannot reach": a password it refuses or
    lacks, a database the server does not have or a command the user may not run is
    StoreRefused (the URL must change), a key of the wrong type or any other answered
    error is StoreFault; only connection errors and timeouts are StoreUnavailable."""
    # redis-py's messages name host and port at most; scrub URLs and secrets anyway.
    where, why, text = redact_url(url), scrub(str(exc)), str(exc)
    if isinstance(exc, redis.AuthenticationError):
        # Reached, and refused: trying again will not help, the URL must change.
        if "WRONGPASS" in text or "invalid" in text:
            return StoreRefused(
                f"the broker at {where} refused the user or password ({why}): fix them "
                "in broker.url",
                exc,
            )
        return StoreRefused(
            f"the broker at {where} requires a password ({why}): put it in broker.url, "
            "redis://:PASSWORD@host:6379/0 (or redis://USER:PASSWORD@... for an ACL user)",
            exc,
        )
    if not isinstance(exc, redis.ResponseError):
        return StoreUnavailable(f"cannot reach the broker at {where}: {why}", exc)
    if "DB index is out of range" in text or "invalid DB index" in text:
        return StoreRefused(
            f"the broker at {where} has no such database ({why}): fix the database "
            "number in broker.url",
            exc,
        )
    if isinstance(exc, redis.exceptions.NoPermissionError):
        return StoreRefused(
            f"the broker at {where} refused the command ({why}): claims need a user that "
            "may write batchctl's keys; add the command it names to the user's ACL "
            "(docs/operations.md, 'Least privilege')",
            exc,
        )
    if text.startswith("WRONGTYPE"):
        return StoreFault(
            f"unexpected data in the broker at {where} ({why}): a claim "
            "(batchctl:claim:<queue>) or the claim history (batchctl:history) key holds "
            "another type of value; look at it with redis-cli TYPE and remove it",
            exc,
        )
    return StoreFault(f"the broker at {where} answered with an error: {why}", exc)


def client_url(client: redis.Redis) -> str:
    """Where a client connects, as a URL without credentials (for a store built on a
    client alone, e.g. in the demo; `store_for` passes the configured broker.url)."""
    kw = client.connection_pool.connection_kwargs
    if kw.get("path"):
        return f"unix://{kw['path']}?db={kw.get('db', 0)}"
    return f"redis://{kw.get('host', 'localhost')}:{kw.get('port', 6379)}/{kw.get('db', 0)}"


__all__ = ["client_url", "store_error"]
