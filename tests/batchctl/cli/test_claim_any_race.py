"""Two `batchctl claim --any` at the same moment, as two processes, 20 rounds: never the
same batch.

Each round starts two fresh Python processes that import the CLI, connect to Redis and
block on a start line (BLPOP); one RPUSH releases both, and each then runs the real
console entry point `batchctl.cli.main` with `claim --any`. The start line takes the
import time (most of a CLI's run) out of the race, so the two claims really overlap.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from batchctl.claims.redis_store import RedisClaimStore
from tests.support.servers.redis import RedisServer

pytestmark = pytest.mark.slow

ROUNDS = 20

# The CLI, behind a start line: everything before BLPOP is what a CLI does before it
# reaches Redis (imports, connecting), so both are at the same point when released.
RACER = """
import sys
import redis
import batchctl.cli
port, db, key, holder = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
r = redis.Redis(port=int(port), db=db)
r.rpush(key + ":ready", holder)
r.blpop([key], timeout=30)
sys.argv = ["batchctl", "claim", "--any", "--purpose", "race", "--holder", holder, "-o", "json"]
batchctl.cli.main()
"""


def test_two_clis_claim_any_at_once_never_get_the_same_batch(
    redis_server: RedisServer, redis_db: redis.Redis, tmp_path: Path
) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text("kubernetes: {enabled: false}\n")
    env = {
        **os.environ,
        "BATCHCTL_CONFIG": str(cfg),
        "BATCHCTL_BROKER_URL": redis_server.url,
        "PYTHONUNBUFFERED": "1",
    }
    queues = ["batch0", "batch1", "batch2", "batch3"]
    for round_ in range(ROUNDS):
        # Free batches for the first half, then only one or two left: both outcomes of
        # the race (two different batches; one batch and "no free batch") happen.
        redis_db.flushdb()
        taken = 0 if round_ < ROUNDS // 2 else 2 + round_ % 2
        for q in queues[:taken]:
            RedisClaimStore(redis_db).claim(q, "dave", "busy", 3600, 1e10 - 3600)
        key = f"go:{round_}"
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    RACER,
                    str(redis_server.port),
                    str(redis_server.db),
                    key,
                    who,
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for who in ("alice", "bob")
        ]
        try:
            # Both at the start line, then one push releases both.
            for _ in range(2):
                assert redis_db.blpop([f"{key}:ready"], timeout=30) is not None
            redis_db.rpush(key, "go", "go")
            results = [p.communicate(timeout=30) for p in procs]
        finally:
            for p in procs:
                p.kill()
        codes = [p.returncode for p in procs]
        docs = [json.loads(out) for out, _ in results]
        got = [d["claim"]["queue"] for d in docs if "claim" in d]
        free = len(queues) - taken
        assert len(got) == len(set(got)), (round_, docs)  # never the same batch
        assert len(got) == min(2, free), (round_, docs, [err for _, err in results])
        assert sorted(codes) == ([0, 0] if free >= 2 else [0, 1]), (round_, docs)
        held = RedisClaimStore(redis_db).all(queues)
        for d in docs:
            if "claim" in d:
                c = held[d["claim"]["queue"]]
                assert c is not None and c.holder == d["claim"]["holder"]
            else:
                assert d["error"].startswith("no free batch")
