"""Broker clients: connecting as Celery would, within a bounded time, never showing a password.

Every client batchctl opens on the broker (the exporter, the claims, the demo) comes
from `connect`, so URL forms, timeouts and credentials are handled in one place. The
URL is read with Celery's meaning by `batchctl.brokerparse` (kombu's own parser).

An app-scoped Redis user (`+@all -@dangerous` on the app's keys, docs/operations.md,
"Least privilege") may not run CLIENT SETNAME or INFO, and a monitoring user may not
write, and a hardened server may rename such commands away (`rename-command`): a
refused command costs what it would have told (`refused`, `say_refused`: said once per
process, with the permission that would allow it), never the connection.

Time is bounded at every step: the connect and read timeouts are
`broker.timeout_seconds`, there are no retries, and with Sentinel each sentinel gets
an equal share of that time so that asking all of them takes no longer. (A host name
that does not resolve is bounded by the caller: the exporter waits for a read at most
`timeout_seconds`, see exporter/collect.py.)
"""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError, Sentinel

from batchctl.brokerparse import BrokerTarget, parse_broker_urls
from batchctl.config.model import DEFAULT_SEP, BrokerConfig
from batchctl.log import get_logger
from batchctl.redact import redact_url, scrub, scrub_urls

__all__ = [
    "celery_transport_options",
    "connect",
    "redact_url",
    "refused",
    "renamed",
    "say_refused",
    "scrub",
    "scrub_urls",
    "sentinel_kwargs_for",
    "user_of",
]


log = get_logger("batchctl.broker")
CLIENT_NAME = "batchctl"
_said: set[tuple[str, str]] = set()
_said_lock = threading.Lock()


def refused(reply: object) -> bool:
    """Is `reply` (an exception, or an error reply in a pipeline's results) Redis'
    NOPERM (the user's ACL does not allow the command or key), or its `unknown command`
    (the server renames the command away, `rename-command CLIENT ""`, a common hardening
    and what some managed services do)? Either way the command will not run for us."""
    return isinstance(reply, redis.exceptions.NoPermissionError) or (
        isinstance(reply, redis.ResponseError)
        and (str(reply).startswith("NOPERM") or renamed(reply))
    )


def renamed(reply: object) -> bool:
    """Is `reply` Redis' answer to a command it does not have (renamed or disabled)?"""
    return isinstance(reply, redis.ResponseError) and str(reply).startswith("unknown command")


def say_refused(
    what: str, permission: str, unknown: str, user: str | None = None, reply: object = None
) -> None:
    """Log once per process and broker user (None: Redis' `default`) that the user may
    not do `what`: `unknown` is what stays unknown, `permission` what to add to its ACL
    (or, when `reply` says the server has no such command, that it is renamed)."""
    user = user or "default"
    with _said_lock:
        if (user, what) in _said:
            return
        _said.add((user, what))
    if renamed(reply):
        log.warning(
            "the broker does not offer this command: what it would tell stays unknown",
            command=what,
            user=user,
            unknown=unknown,
            fix="the server renames or disables it (rename-command in redis.conf); "
            "nothing else depends on it",
        )
        return
    log.warning(
        "the broker user may not run this: what it would tell stays unknown",
        command=what,
        user=user,
        unknown=unknown,
        fix=f"add {permission} to the user's ACL (docs/operations.md, 'Least privilege')",
    )


def user_of(client: redis.Redis) -> str | None:
    """The ACL user a client authenticates as (None: the `default` user)."""
    kwargs = getattr(client.connection_pool, "connection_kwargs", {})
    user = kwargs.get("username")
    return str(user) if user else None


def _name_connection(conn: redis.connection.AbstractConnection) -> None:
    """redis-py's handshake, then CLIENT SETNAME batchctl (for CLIENT LIST), which an
    app-scoped user may not run (`-@dangerous`): then the connection stays unnamed."""
    conn.on_connect()
    try:
        conn.send_command("CLIENT", "SETNAME", CLIENT_NAME)
        conn.read_response()
    except redis.ResponseError as e:
        if not refused(e):
            raise
        say_refused(
            "CLIENT SETNAME",
            "+client|setname",
            "batchctl's name in CLIENT LIST (nothing else depends on it)",
            getattr(conn, "username", None),
            e,
        )


def _no_retry() -> Retry:
    return Retry(NoBackoff(), 0)


def _common(cfg: BrokerConfig, decode_responses: bool) -> dict[str, Any]:
    return {
        "socket_timeout": cfg.timeout_seconds,
        "socket_connect_timeout": cfg.timeout_seconds,
        "retry": _no_retry(),
        "decode_responses": decode_responses,
        "redis_connect_func": _name_connection,
    }


def connect(cfg: BrokerConfig, *, decode_responses: bool = True) -> redis.Redis:
    """A client whose every call fails within `cfg.timeout_seconds`: no retries.

    A `;`-joined failover list (Celery's) gives the client of the first URL that
    answers a PING, in order, as kombu's connection does; the first when none does.
    One URL (or a Sentinel list whose URLs share password and database): no I/O here,
    the first command connects.
    """
    targets = _distinct(parse_broker_urls(cfg.url))
    clients = [_client(cfg, t, decode_responses) for t in targets]
    chosen = clients[0]
    if len(clients) > 1:
        # Try them in order within one timeout_seconds in all (kombu's failover).
        deadline = time.monotonic() + cfg.timeout_seconds
        for client in clients:
            try:
                client.ping()
            except MasterNotFoundError:
                break  # every candidate asks the same sentinels
            except redis.RedisError:
                if time.monotonic() < deadline:
                    continue
                break
            chosen = client
            break
    for other in clients:
        if other is not chosen:
            other.close()
    return chosen


def _distinct(targets: tuple[BrokerTarget, ...]) -> list[BrokerTarget]:
    """The candidates that differ (a Sentinel list with one password and database is
    one candidate: the same sentinels, the same master)."""
    out: list[BrokerTarget] = []
    for t in targets:
        if not any(
            o.params == t.params and o.sentinels == t.sentinels and o.kind == t.kind for o in out
        ):
            out.append(t)
    return out


def _client(cfg: BrokerConfig, target: BrokerTarget, decode_responses: bool) -> redis.Redis:
    params = {k: v for k, v in target.params.items() if v is not None}
    common = _common(cfg, decode_responses)
    if target.kind == "sentinel":
        return _sentinel_master(cfg, target, params, common)
    if target.kind == "unix":
        common.pop("socket_connect_timeout")
        pool = redis.ConnectionPool(
            connection_class=redis.UnixDomainSocketConnection, **params, **common
        )
    else:
        cls = redis.SSLConnection if target.tls else redis.Connection
        pool = redis.ConnectionPool(connection_class=cls, **params, **common)
    return redis.Redis(connection_pool=pool)


def sentinel_kwargs_for(cfg: BrokerConfig, nodes: int) -> dict[str, Any]:
    """Connection arguments for the sentinels themselves: Celery's `sentinel_kwargs`
    (e.g. the sentinels' password), with our timeouts split among the `nodes`."""
    share = cfg.timeout_seconds / max(1, nodes)
    out: dict[str, Any] = dict(cfg.sentinel_kwargs or {})
    for key in ("socket_timeout", "socket_connect_timeout"):
        given = out.get(key)
        out[key] = share if given is None else min(float(given), share)
    out["retry"] = _no_retry()
    return out


def _sentinel_master(
    cfg: BrokerConfig, target: BrokerTarget, params: dict[str, Any], common: dict[str, Any]
) -> redis.Redis:
    # kombu's SentinelChannel._sentinel_managed_pool: Sentinel(nodes, sentinel_kwargs,
    # **connection params), then master_for(master_name) with the first URL's user and
    # password; TLS to the master when the URL has ssl_* parameters.
    master = dict(params)
    if target.tls:
        master["ssl"] = True
    sentinel = Sentinel(
        list(target.sentinels),
        sentinel_kwargs=sentinel_kwargs_for(cfg, len(target.sentinels)),
        **common,
    )
    return sentinel.master_for(cfg.master_name, redis_class=redis.Redis, **master)


def celery_transport_options(cfg: BrokerConfig) -> dict[str, Any]:
    """kombu's `transport_options` for a connection that Celery itself would open on this
    broker (the events consumer's): the app's key prefix and `sep`, the Sentinel master
    and sentinels' own arguments, and connect timeouts of `cfg.timeout_seconds`. kombu
    parses `cfg.url` itself. RabbitMQ takes none of these (its TLS options are kombu's
    `ssl` argument: `BrokerConfig.amqp_ssl`)."""
    if cfg.kind == "rabbitmq":
        return {}
    opts: dict[str, Any] = {
        "socket_connect_timeout": cfg.timeout_seconds,
        "socket_keepalive": True,
    }
    if cfg.global_keyprefix:
        opts["global_keyprefix"] = cfg.global_keyprefix
    if cfg.sep != DEFAULT_SEP:
        opts["sep"] = cfg.sep
    if urlsplit(cfg.url.split(";")[0]).scheme == "sentinel":
        opts["master_name"] = cfg.master_name
        if cfg.sentinel_kwargs:
            opts["sentinel_kwargs"] = dict(cfg.sentinel_kwargs)
    return opts
