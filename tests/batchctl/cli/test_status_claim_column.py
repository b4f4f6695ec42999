"""`batchctl status`'s CLAIM column: the expiry, a drain and a manual scale, as /status."""

from __future__ import annotations

import re
import time

import redis

from batchctl.claims import Work
from batchctl.claims.redis_store import RedisClaimStore
from tests.support.cli import claim_rows

HOUR = 3600.0

# A time of day, with its date when it is not today's (a run near midnight).
CLOCK = r"(\d{4}-\d\d-\d\d )?\d\d:\d\d"


def test_status_table_shows_drains_and_manual_scales(run, redis_db: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    store = RedisClaimStore(redis_db)
    now = time.time()
    store.claim("batch1", "alice", "reindex", 2 * HOUR, now)
    store.set_override("batch1", "alice", 3, now + 1200, now)
    store.claim("batch2", "bob", "dedupe", HOUR, now)
    store.give_back("batch2", "bob", False, now - 60, drain=True, work=Work(5, 0))
    store.claim("batch3", "carol", "old", 60, now - 71)

    cells = claim_rows(run("status").stdout)
    assert re.fullmatch(
        rf"expires in (2h|1h59m); scaled to 3 by alice until {CLOCK}", cells["batch1"]
    ), cells
    assert re.fullmatch(rf"expires in (1h|59m\d+s); draining since {CLOCK}", cells["batch2"])
    # One word for it, not "EXPIRED, expired 11s ago".
    assert re.fullmatch(r"EXPIRED 1[12]s ago", cells["batch3"]), cells
