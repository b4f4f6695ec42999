"""Claims kept in a SQLite file: for local runs, whatever the broker (`claims.store: sqlite`).

A broker that keeps no claims (RabbitMQ) and no cluster (a laptop, the demo, a CI job)
still needs the spreadsheet: this store keeps it in one file,
`$XDG_STATE_HOME/batchctl/claims.sqlite3` by default (`claims.sqlite_path`), shared by
every batchctl process of the machine (the exporter, the autoscaler, the CLI). It is no
store for a cluster: each pod would have a file of its own (use `claims.store:
kubernetes` there).

Two tables: `claims` (one row per claimed batch: the record's fields as JSON, as the
Redis store keeps them in a hash) and `history` (one row per event, capped at about
claims.history_max_events). Each change reads the record, asks its rule and writes the
record and its event (a change without one, usage, the record alone) in one `BEGIN
IMMEDIATE` transaction: SQLite takes the write lock
before the read, so concurrent changes, from threads or processes, run one after the
other and two takes of a free batch never both win (the protocol's promise,
batchctl/claims/store.py). The database runs in WAL mode, so readers never wait for a
writer. Errors leave as StoreError: a file that cannot be opened or written is
StoreRefused (fix the path or its permissions), a lock held past the timeout is
StoreUnavailable, a file that is not a database StoreFault.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from batchctl.claims.errors import StoreError, StoreFault, StoreRefused, StoreUnavailable
from batchctl.claims.history import ClaimEvent, HistoryRead, parse_entries
from batchctl.claims.record import Claim
from batchctl.claims.rules import Outcome
from batchctl.claims.store import RuleStore, unchanged
from batchctl.log import get_logger

log = get_logger("batchctl.claims")

DEFAULT_HISTORY_CAP = 10_000
# Waiting for another process's write lock: a change takes milliseconds.
LOCK_TIMEOUT_SECONDS = 5.0
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS claims (queue TEXT PRIMARY KEY, fields TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS history (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "fields TEXT NOT NULL)",
)


def default_path(env: dict[str, str] | None = None) -> Path:
    """$XDG_STATE_HOME/batchctl/claims.sqlite3, or ~/.local/state/... without it (the
    XDG Base Directory specification's default)."""
    env = dict(os.environ) if env is None else env
    state = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local/state")
    return Path(state) / "batchctl" / "claims.sqlite3"


class SqliteClaimStore(RuleStore):
    """Claims in one SQLite file; safe across threads and processes (one connection per
    thread, every change one IMMEDIATE transaction)."""

    def __init__(
        self,
        path: str | Path,
        history_cap: int = DEFAULT_HISTORY_CAP,
        timeout: float = LOCK_TIMEOUT_SECONDS,
    ) -> None:
        self.path = Path(path).expanduser()
        self.history_cap = history_cap
        self.timeout = timeout
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._ready = False

    # -- the connection ---------------------------------------------------------------

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as e:
            raise self._store_error(e) from e
        except OSError as e:  # creating the directory
            raise StoreRefused(
                f"cannot open the claim store at {self.path}: {e.strerror or e}: fix "
                "claims.sqlite_path, or the directory's permissions",
                e,
            ) from e

    def _store_error(self, e: sqlite3.Error) -> StoreError:
        text = str(e)
        if isinstance(e, sqlite3.OperationalError) and "locked" in text:
            return StoreUnavailable(
                f"cannot reach the claim store at {self.path}: another process kept it "
                f"locked for {self.timeout:g}s; try again",
                e,
            )
        if isinstance(e, sqlite3.OperationalError) and (
            "unable to open" in text or "readonly" in text or "read-only" in text
        ):
            return StoreRefused(
                f"cannot write the claim store at {self.path} ({text}): fix claims.sqlite_path "
                "or its permissions",
                e,
            )
        return StoreFault(
            f"the claim store at {self.path} failed ({text}): is it a batchctl claims "
            "database? Move it away to start afresh",
            e,
        )

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode (isolation_level None): transactions are ours, BEGIN IMMEDIATE.
        conn = sqlite3.connect(
            self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
        )
        with self._lock:
            self._all.append(conn)
            if not self._ready:
                conn.execute("PRAGMA journal_mode=WAL")
                for statement in _SCHEMA:
                    conn.execute(statement)
                self._ready = True
        self._local.conn = conn
        return conn

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    # -- reading ----------------------------------------------------------------------

    def get(self, queue: str) -> Claim | None:
        return self.all([queue])[queue]

    def all(self, queues: Iterable[str]) -> dict[str, Claim | None]:
        names = list(queues)
        with self._errors():
            rows = dict(self._conn().execute("SELECT queue, fields FROM claims").fetchall())
        return {q: _claim(q, rows.get(q)) for q in names}

    def _claims_for_any(self, queues: Sequence[str]) -> dict[str, Claim | None]:
        # A row whose JSON is not a mapping reads as garbage (long expired), as in Redis.
        return self.all(queues)

    def history(self, queue: str | None = None, since: float | None = None) -> HistoryRead:
        with self._errors():
            rows = self._conn().execute("SELECT id, fields FROM history ORDER BY id").fetchall()
        read = parse_entries((str(i), _fields(f)) for i, f in rows)
        read.events = [
            e
            for e in read.events
            if (queue is None or e.queue == queue) and (since is None or e.at >= since)
        ]
        return read

    def recent(self, count: int) -> HistoryRead:
        with self._errors():
            rows = (
                self._conn()
                .execute("SELECT id, fields FROM history ORDER BY id DESC LIMIT ?", (count,))
                .fetchall()
            )
        return parse_entries((str(i), _fields(f)) for i, f in rows)

    # -- the transaction ----------------------------------------------------------------

    def _transact(
        self,
        queue: str,
        decide: Callable[[Claim | None], Outcome],
        forcing: str | None = None,
    ) -> Outcome:
        with self._errors():
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")  # the write lock first: the read is current
            try:
                row = conn.execute("SELECT fields FROM claims WHERE queue = ?", (queue,)).fetchone()
                existing = _claim(queue, row[0] if row else None)
                out = decide(existing)
                if unchanged(out, existing):
                    conn.execute("ROLLBACK")
                    return out
                if out.claim is None:
                    conn.execute("DELETE FROM claims WHERE queue = ?", (queue,))
                else:
                    conn.execute(
                        "INSERT OR REPLACE INTO claims (queue, fields) VALUES (?, ?)",
                        (queue, json.dumps(out.claim.to_fields())),
                    )
                if out.event is not None:
                    self._append(conn, out.event)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        if (e := out.event) is not None:
            log.info(
                "claim event", kind=e.kind, queue=e.queue, who=e.who, holder=e.holder,
                purpose=e.purpose, detail=e.detail,
            )  # fmt: skip
        return out

    def _append(self, conn: sqlite3.Connection, event: ClaimEvent) -> None:
        """The event into the history, inside the caller's transaction."""
        cur = conn.execute(
            "INSERT INTO history (fields) VALUES (?)", (json.dumps(event.to_fields()),)
        )
        # Capped like the Redis stream (MAXLEN ~): trimmed every hundred events.
        last = cur.lastrowid or 0
        if last % 100 == 0:
            conn.execute("DELETE FROM history WHERE id <= ?", (last - self.history_cap,))


def _fields(text: Any) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None


def _claim(queue: str, text: Any) -> Claim | None:
    if text is None:
        return None
    fields = _fields(text)
    # A row that is not a mapping of fields is garbage: a long expired claim, as
    # Claim.from_fields reads unusable times, never a batch blocked for good.
    return Claim.from_fields(queue, fields if isinstance(fields, dict) else {"holder": "?"})


__all__ = ["DEFAULT_HISTORY_CAP", "SqliteClaimStore", "default_path"]
