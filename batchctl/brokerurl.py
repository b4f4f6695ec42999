"""Broker URLs: connecting as Celery would, and never showing a password.

Celery's broker URL forms (kombu's Redis transport): `redis://`, `rediss://` (TLS),
`unix://` and `sentinel://host:port[/db]` joined with `;`. Every client batchctl opens
on the broker (the exporter, the claims, the demo) comes from `connect`, so timeouts
and credentials are handled in one place.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from batchctl.config.model import BrokerConfig
from batchctl.redact import redact_url, scrub_urls

__all__ = ["celery_transport_options", "connect", "redact_url", "scrub_urls"]


def connect(cfg: BrokerConfig, *, decode_responses: bool = True) -> redis.Redis:
    """A client whose every call fails within `cfg.timeout_seconds`: no retries."""
    opts: dict[str, Any] = {
        "socket_timeout": cfg.timeout_seconds,
        "socket_connect_timeout": cfg.timeout_seconds,
        "retry": Retry(NoBackoff(), 0),
        "decode_responses": decode_responses,
        "client_name": "batchctl",
    }
    parts = urlsplit(cfg.url.split(";")[0])
    if parts.scheme == "sentinel":
        return _sentinel_master(cfg, opts)
    return redis.Redis.from_url(cfg.url, **opts)


def _sentinel_master(cfg: BrokerConfig, opts: dict[str, Any]) -> redis.Redis:
    # Celery's form: sentinel://:pw@host1:26379/0;sentinel://host2:26379/0
    nodes = []
    password = None
    db = 0
    for url in cfg.url.split(";"):
        p = urlsplit(url.strip())
        nodes.append((p.hostname or "localhost", p.port or 26379))
        password = password or (unquote(p.password) if p.password else None)
        if p.path.strip("/").isdigit():
            db = int(p.path.strip("/"))
    sentinel = Sentinel(nodes, sentinel_kwargs={"socket_timeout": cfg.timeout_seconds})
    return sentinel.master_for(cfg.sentinel_master_name, password=password, db=db, **opts)


def celery_transport_options(cfg: BrokerConfig) -> dict[str, Any]:
    """kombu's `transport_options` for a connection that Celery itself would open on this
    broker (the events consumer's): the app's key prefix, the Sentinel master, and
    connect timeouts of `cfg.timeout_seconds`. kombu parses `cfg.url` itself."""
    opts: dict[str, Any] = {
        "socket_connect_timeout": cfg.timeout_seconds,
        "socket_keepalive": True,
    }
    if cfg.global_keyprefix:
        opts["global_keyprefix"] = cfg.global_keyprefix
    if urlsplit(cfg.url.split(";")[0]).scheme == "sentinel":
        opts["master_name"] = cfg.sentinel_master_name
    return opts
