"""The events consumer: Celery's own event receiver on the broker, in a thread of its own.

`app.events.Receiver` (celery.events.receiver.EventReceiver, a kombu ConsumerMixin)
subscribes to the `celeryev` fanout exchange and decodes every event, grouped ones
included, exactly as Flower and `celery events` do; we only hand each event to the
`EventAggregator`. The connection is kombu's, from the broker URL with the options
Celery would use (`batchctl.brokerurl.celery_transport_options`). When the broker goes
away the consumer says so (`celery_events_up 0`, the error without credentials) and
reconnects, waiting 1 s, 2 s, 4 s ... up to `events.reconnect_max_seconds`.

On every (re)connection the receiver asks the workers for a heartbeat at once
(Celery's `heartbeat` broadcast, as Flower does), so live workers and their active
tasks are known within a moment instead of a heartbeat interval (a broker user that
may not publish to the pidbox: said once, and they are known from their next
heartbeat; the events still flow). Which queues each
worker consumes is asked of the worker itself, on another thread (exporter/events/
queues.py, `events.worker_queues`). Subscribing moves or
deletes nothing: events are published to every subscriber, and the receiver's
auto-delete binding goes when it disconnects.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from celery import Celery
from kombu import Connection

from batchctl.brokerurl import celery_transport_options, say_refused
from batchctl.config import Config
from batchctl.log import get_logger
from batchctl.redact import redact_url, scrub_urls
from exporter.events.aggregate import EventAggregator
from exporter.events.model import HEARTBEAT_SETTLE_SECONDS, EventsView
from exporter.events.queues import QueueLearner, broker_user, pidbox_permission

log = get_logger("batchctl.events")


class EventsConsumer:
    """Consumes Celery events into an `EventAggregator`; `view(now)` for snapshots."""

    def __init__(
        self,
        cfg: Config,
        aggregator: EventAggregator | None = None,
        *,
        clock: Callable[[], float] = time.time,
        wakeup: bool = True,
    ) -> None:
        self.cfg = cfg
        self.aggregator = aggregator or EventAggregator(
            cfg.events, {b.queue: b.deployment for b in cfg.batches}
        )
        self.clock = clock
        self.wakeup = wakeup
        self.up = False
        self.since: float | None = None  # first connected
        self.error: str | None = "not connected yet"
        self.connections = 0  # successful (re)connections
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._receiver: Any = None
        self._app = Celery("batchctl-events", set_as_current=False)
        self._app.conf.update(broker_url=cfg.broker.url)
        if cfg.broker.kind == "rabbitmq":
            # The receiver's heartbeat broadcast publishes through the app's own producer
            # pool (its own connection): it needs the same TLS options as ours.
            self._app.conf.update(broker_use_ssl=cfg.broker.amqp_ssl())
        self._safe_url = redact_url(cfg.broker.url)
        # Asks each worker which queues it consumes (None: events.worker_queues false).
        self.learner = QueueLearner(cfg, self.aggregator) if cfg.events.worker_queues else None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="celery-events", daemon=True)
            self._thread.start()
        if self.learner is not None:
            self.learner.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self.learner is not None:
            self.learner.stop(timeout)
        receiver = self._receiver
        if receiver is not None:
            receiver.should_stop = True
        if self._thread is not None:
            self._thread.join(timeout)
        self.up = False

    def settle(self, timeout: float) -> None:
        """For a one-shot reading (`batchctl status`): wait at most `timeout` seconds until
        connected, the workers' heartbeats (asked for on connecting) are in, and every
        worker seen has said which queues it consumes."""
        end = time.monotonic() + timeout
        while not self.up and time.monotonic() < end and not self._stop.wait(0.02):
            pass
        if not self.up:
            return
        self._stop.wait(min(HEARTBEAT_SETTLE_SECONDS, max(0.0, end - time.monotonic())))
        while (
            self.learner is not None
            and self.aggregator.unanswered(self.clock())
            and time.monotonic() < end
            and not self._stop.wait(0.02)
        ):
            pass

    def view(self, now: float) -> EventsView:
        return self.aggregator.view(now, up=self.up, since=self.since, error=self.error)

    # -- the thread --------------------------------------------------------------------

    def _run(self) -> None:
        backoff = 1.0
        limit = self.cfg.events.reconnect_max_seconds
        while not self._stop.is_set():
            before = self.connections
            try:
                self._consume()
            except Exception as e:  # the thread must outlive any failure: report, retry
                self.up = False
                self.error = self._describe(e)
                log.warning(
                    "events consumer disconnected; retrying",
                    broker=self._safe_url,
                    error=self.error,
                    retry_in_seconds=round(backoff, 1),
                )
            else:
                self.up = False
                if self._stop.is_set():
                    return
                self.error = "the event stream ended"
            if self.connections > before:
                backoff = 1.0  # it worked for a while: start the waits over
            # Jitter, so that the exporters of several pods do not reconnect in step.
            if self._stop.wait(backoff * random.uniform(0.8, 1.2)):
                return
            backoff = min(backoff * 2, limit)

    def _consume(self) -> None:
        broker = self.cfg.broker
        # RabbitMQ over TLS: Celery's broker_use_ssl (broker.use_ssl) as kombu's `ssl`.
        tls = {"ssl": broker.amqp_ssl()} if broker.kind == "rabbitmq" else {}
        with Connection(
            broker.url,
            transport_options=celery_transport_options(broker),
            connect_timeout=broker.timeout_seconds,
            **tls,
        ) as conn:
            conn.connect()
            receiver = self._app.events.Receiver(conn, handlers={"*": self._handle})
            # Fail over to our own backoff rather than kombu's endless retries.
            receiver.connect_max_retries = 0
            ready = receiver.on_consume_ready

            # kombu's ConsumerMixin passes consume()'s `wakeup` through to here.
            def on_ready(
                connection: Any, channel: Any, consumers: Any, wakeup: bool = True, **kw: Any
            ) -> None:
                ready(connection, channel, consumers, wakeup=False, **kw)
                if wakeup:
                    self._wake(receiver, channel)
                self._connected()

            receiver.on_consume_ready = on_ready
            self._receiver = receiver
            if self._stop.is_set():
                return
            for _ in receiver.consume(limit=None, timeout=None, wakeup=self.wakeup):
                if self._stop.is_set():
                    receiver.should_stop = True

    def _connected(self) -> None:
        if self.since is None:
            self.since = self.clock()
        self.up = True
        self.error = None
        self.connections += 1
        log.info("consuming Celery events", broker=self._safe_url, connection=self.connections)

    def _wake(self, receiver: Any, channel: Any) -> None:
        """Celery's `heartbeat` broadcast; a broker user that may not publish to the
        pidbox only delays knowing the workers until their next heartbeat."""
        try:
            receiver.wakeup_workers(channel=channel)
        except Exception as e:
            permission = pidbox_permission(e, self.cfg.broker)
            if permission is None:
                raise
            say_refused(
                "heartbeat broadcast (a publish to the pidbox)",
                permission,
                unknown="live workers until their next heartbeat (2 s by default)",
                user=broker_user(self.cfg.broker),
            )

    def _handle(self, event: Mapping[str, Any]) -> None:
        self.aggregator.handle(event)

    def _describe(self, exc: BaseException) -> str:
        return scrub_urls(f"{type(exc).__name__}: {exc}").replace(
            self.cfg.broker.url, self._safe_url
        )
