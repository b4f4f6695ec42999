"""Which queues each worker consumes, by its own answer: Celery's `active_queues`.

No event carries a worker's queues, and a worker's name says nothing reliable about them
(`celery@<pod>` by default; `-n` is free text). So the queue learner asks the workers
themselves: `app.control.inspect(destination=[...], timeout=...).active_queues()`, the
request `celery inspect active_queues` sends, through the workers' pidbox on the broker.
It runs on a thread of its own, so the events thread never waits for a reply:

- a worker is asked as soon as the aggregator first sees it (`worker-online`, a
  heartbeat, any task event; the consumer asks every worker for a heartbeat on connect),
  then every `events.worker_queues_refresh_seconds` (queues change with
  `add_consumer`/`cancel_consumer`);
- a worker that does not answer within `events.control_timeout_seconds` (remote control
  off, `--without-mingle` does not matter, a broker user that may not publish) keeps
  unknown queues and is asked again after `RETRY_SECONDS`; nothing is guessed;
- a request the broker user may not make (Redis' NOPERM: no `+publish`, the pidbox
  channel not in its `&` patterns, the reply queue's keys not in its `~` patterns) is
  said once, with the permission to add (`pidbox_permission`), and retried the same
  way; any other failure (the connection dropped) is logged when it starts failing and
  once a minute after.

A request publishes a small message to the `celery.pidbox` fanout exchange and reads
the replies from a reply queue of its own (kombu declares and deletes it): no task
message is touched. The aggregator (exporter/events/aggregate.py) decides who is due
(`due`), and is told what they said (`learned`).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from celery import Celery
from kombu import Connection

from batchctl.brokerurl import celery_transport_options, refused, say_refused
from batchctl.config import BrokerConfig, Config
from batchctl.log import RepeatedWarning, get_logger
from batchctl.redact import scrub_urls
from exporter.events.aggregate import EventAggregator

log = get_logger("batchctl.events")
# Workers asked in one request, at most (each request waits for all of them or the timeout).
PER_REQUEST = 32
# How often the learner looks for workers due even when no new one appeared.
POLL_SECONDS = 1.0

# (hostnames) -> {hostname: [queue name, ...]} for those that answered.
Ask = Callable[[list[str]], Mapping[str, list[str]]]
# Redis' NOPERM texts (server/acl.c, addACLLogEntry's callers): a command, or a key or
# channel outside the user's patterns.
_NOPERM = re.compile(r"permissions to run the '([^']+)' command|one of the (channels|keys) used")


def pidbox_permission(exc: BaseException, broker: BrokerConfig) -> str | None:
    """The ACL permission a Redis broker user lacks for a remote-control request (a
    PUBLISH to the `celery.pidbox` fanout channel, a reply queue under
    `reply.celery.pidbox`), when `exc` or what caused it is Redis' NOPERM; None for any
    other failure. kombu publishes fanout messages on `{global_keyprefix}/{db}.celery.pidbox`
    (its `fanout_prefix`) and binds the reply queue in `_kombu.binding.reply.celery.pidbox`."""
    cause: BaseException | None = exc
    while cause is not None and not refused(cause):
        cause = cause.__cause__ or cause.__context__
    if cause is None:
        return None
    prefix = broker.global_keyprefix or ""
    found = _NOPERM.search(str(cause))
    if found and found.group(1):
        return f"+{found.group(1).lower()}"
    if found and found.group(2) == "channels":
        db = urlsplit(broker.url.split(";")[0]).path.strip("/") or "0"
        return f"&{prefix}/{db}.celery.pidbox"
    return f"~{prefix}_kombu.binding.* ~{prefix}*.reply.celery.pidbox"


def broker_user(broker: BrokerConfig) -> str | None:
    """The ACL user of the broker URL (None: Redis' `default`)."""
    return urlsplit(broker.url.split(";")[0]).username or None


def queue_names(reply: object) -> list[str]:
    """The queue names of one worker's `active_queues` reply (a list of declarations,
    each a dict with `name`); anything else counts as no queues known."""
    if not isinstance(reply, list):
        raise ValueError(f"not a list of queues: {type(reply).__name__}")
    names = [q.get("name") for q in reply if isinstance(q, dict)]
    return [n for n in names if isinstance(n, str) and n]


class QueueLearner:
    """Asks the workers the aggregator names for their queues, on a thread of its own."""

    def __init__(
        self,
        cfg: Config,
        aggregator: EventAggregator,
        *,
        ask: Ask | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.aggregator = aggregator
        self.clock = clock
        self.refresh = cfg.events.worker_queues_refresh_seconds
        self._ask = ask or self._control
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures = RepeatedWarning(log, "cannot ask workers for their queues")
        self._conn: Connection | None = None
        self._app = Celery("batchctl-queues", set_as_current=False)
        self._app.conf.update(broker_url=cfg.broker.url)
        self.requests = 0  # requests sent (for tests and the curious)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="worker-queues", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.aggregator.new_worker.set()  # wake the thread
        if self._thread is not None:
            self._thread.join(timeout)
        self._close()

    # -- the thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self.aggregator.new_worker.wait(POLL_SECONDS)
            if self._stop.is_set():
                return
            self.once()

    def once(self) -> None:
        """Ask every worker that is due, in requests of PER_REQUEST."""
        due = self.aggregator.due(self.clock(), self.refresh)
        for i in range(0, len(due), PER_REQUEST):
            hosts = due[i : i + PER_REQUEST]
            self.aggregator.asked(hosts, self.clock())
            try:
                answers = self._ask(hosts)
            except Exception as e:  # any failure of the request: unknown, said, retried
                self._close()
                permission = pidbox_permission(e, self.cfg.broker)
                if permission is not None:
                    say_refused(
                        "active_queues (a publish to the pidbox, a reply queue)",
                        permission,
                        unknown="the queues of every worker (counted under queue=unknown)",
                        user=broker_user(self.cfg.broker),
                    )
                    return
                self._failures.failed(
                    scrub_urls(f"{type(e).__name__}: {e}"),
                    unknown="the queues of the workers asked (counted under queue=unknown)",
                    fix="let the broker user publish to the pidbox and use a reply queue "
                    "(docs/operations.md, 'Least privilege'), and keep workers' remote "
                    "control on",
                )
                return
            self._failures.recovered("asking workers for their queues works again")
            for host, names in answers.items():
                self.aggregator.learned(host, names)

    # -- Celery's control request -----------------------------------------------------

    def _control(self, hosts: list[str]) -> Mapping[str, list[str]]:
        if self._conn is None:
            self._conn = Connection(
                self.cfg.broker.url,
                transport_options=celery_transport_options(self.cfg.broker),
                connect_timeout=self.cfg.broker.timeout_seconds,
            )
        self.requests += 1
        inspect = self._app.control.inspect(
            destination=hosts,
            timeout=self.cfg.events.control_timeout_seconds,
            connection=self._conn,
            limit=len(hosts),
        )
        replies: Any = inspect.active_queues() or {}
        out: dict[str, list[str]] = {}
        for host, reply in replies.items():
            try:
                out[str(host)] = queue_names(reply)
            except ValueError:
                continue  # an answer we cannot read: that worker stays unknown
        return out

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.release()
            except Exception:  # closing a broken connection: nothing more to do
                log.debug("closing the control connection failed", exc_info=True)
