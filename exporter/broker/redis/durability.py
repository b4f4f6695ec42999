"""Say what can be lost: whether the broker keeps its data across a restart.

batchctl keeps claims and their history in the broker's Redis. A Redis with neither
AOF nor RDB save points starts empty after a restart, and every claim and its history
vanish without a word. This module finds out (docs/design.md, "Redis persistence"):

- `INFO persistence`: `aof_enabled`; `CONFIG GET save`: the RDB save points ("" means
  none). CONFIG is often refused by ACL (`-@dangerous`): then only AOF can be known,
  and with AOF off durability is unknown (not claimed either way).
- `INFO server`'s `run_id` changes on every restart: when it changes and claims seen
  before are gone, they were lost with the data, and that is reported (a log line, the
  status page, `batchctl status`), not left silent.

It costs one extra round trip per `CHECK_SECONDS`, and one more whenever a claim that
was there is gone (a release, an expiry, or a restart: the run_id tells which).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import redis

from batchctl.log import get_logger
from exporter.snapshot import BrokerDurability

log = get_logger("batchctl.durability")

CHECK_SECONDS = 60.0


def judge(aof_enabled: bool, save: str | None) -> tuple[bool | None, str]:
    """(durable, why) from AOF and the RDB save points (None: CONFIG GET refused)."""
    aof = "AOF on" if aof_enabled else "no AOF"
    if save is None:
        if aof_enabled:
            return True, "AOF on"
        return None, "no AOF; RDB save points unknown (CONFIG GET save refused)"
    rdb = f"RDB saves {save!r}" if save.strip() else "no RDB save points"
    return (aof_enabled or bool(save.strip())), f"{aof}, {rdb}"


class DurabilityWatch:
    """Checks persistence now and then and notices claims lost in a restart. Not
    thread-safe: called from the one collection in flight."""

    def __init__(self, check_seconds: float = CHECK_SECONDS) -> None:
        self.check_seconds = check_seconds
        self.state: BrokerDurability | None = None
        self._checked_at = float("-inf")
        self._claims: dict[str, str] = {}  # the last claims seen: queue -> holder

    def observe(
        self, client: redis.Redis, now: float, claims: Mapping[str, Any]
    ) -> BrokerDurability | None:
        """After a read: check when due, or at once when a claim seen before is gone.
        Never raises for Redis: an answer we cannot get keeps what we knew."""
        holders = {q: str(getattr(c, "holder", "")) for q, c in claims.items()}
        gone = {q: h for q, h in self._claims.items() if q not in holders}
        if gone or now - self._checked_at >= self.check_seconds:
            self._check(client, now, gone)
        self._claims = holders
        if self.state is not None and set(self.state.lost_claims) & set(holders):
            # Claimed again: no longer lost.
            lost = {q: h for q, h in self.state.lost_claims.items() if q not in holders}
            self.state = replace(
                self.state, lost_claims=lost, lost_at=self.state.lost_at if lost else None
            )
        return self.state

    def _check(self, client: redis.Redis, now: float, gone: Mapping[str, str]) -> None:
        pipe = client.pipeline(transaction=False)
        pipe.info("persistence")
        pipe.info("server")
        pipe.config_get("save")
        try:
            persistence, server, save = pipe.execute(raise_on_error=False)
        except redis.RedisError as e:
            log.debug("persistence check failed", error=type(e).__name__)
            return
        if not isinstance(persistence, dict) or not isinstance(server, dict):
            return
        self._checked_at = now
        save_points = None
        if isinstance(save, dict):
            raw = save.get("save", save.get(b"save"))
            save_points = raw.decode() if isinstance(raw, bytes) else raw
        durable, detail = judge(bool(int(persistence.get("aof_enabled", 0))), save_points)
        run_id = str(server.get("run_id", ""))
        before = self.state
        lost = dict(before.lost_claims) if before is not None else {}
        lost_at = before.lost_at if before is not None else None
        if before is not None and before.run_id and run_id != before.run_id:
            log.warning("the broker restarted (its run_id changed)", durable=durable)
            if gone:
                lost, lost_at = dict(gone), now
                log.warning(
                    "claims lost in a broker restart: the broker kept no data, the claims "
                    "and their history are gone; claim the batches again",
                    claims=sorted(f"{q} ({h})" for q, h in gone.items()),
                )
        self.state = BrokerDurability(durable, detail, run_id, lost, lost_at)
