"""Real `celery worker -E` processes for the events tests (the demo app, on a test's Redis)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from batchctl.config import Config, parse_config
from batchctl.demo.tasks import ENV_ACKS_LATE, ENV_RECORD_URL
from batchctl.workers import ENV_BROKER_URL
from exporter.events.consumer import EventsConsumer
from exporter.events.model import QueueActivity, TaskStats
from tests.support.paths import ROOT
from tests.support.waits import wait_for


def events_config(url: str, **events: object) -> Config:
    return parse_config(
        {
            "broker": {"url": url},
            "kubernetes": {"enabled": False},
            "events": {"enabled": True, **events},
            "exporter": {"autoscaler_url": None},
            # RabbitMQ keeps no claims: a local store (unused by the events tests).
            **({"claims": {"store": "sqlite"}} if url.startswith("amqp") else {}),
        },
        env={},
    )


class Worker:
    """One `celery worker` process group, started with task events on."""

    def __init__(
        self,
        url: str,
        queue: str,
        node: str,
        log: Path,
        *,
        concurrency: int = 2,
        prefetch: int = 1,
        acks_late: bool = True,
        record_url: str | None = None,
    ) -> None:
        env = dict(os.environ)
        env[ENV_BROKER_URL] = url
        env[ENV_ACKS_LATE] = "1" if acks_late else "0"
        if record_url is not None:  # a Redis for the task ids (a RabbitMQ broker has none)
            env[ENV_RECORD_URL] = record_url
        env["PYTHONUNBUFFERED"] = "1"
        self.node = node
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable, "-m", "celery", "-A", "batchctl.demo.tasks", "worker",
                    "-Q", queue, "-c", str(concurrency), "--prefetch-multiplier", str(prefetch),
                    "-n", node, "-E", "--without-gossip", "--without-mingle", "-l", "INFO",
                ],
                env=env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool): no goodbye, no event."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL if it does not end."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def workers(tmp: Path) -> Iterator[list[Worker]]:
    """Workers started in the block are stopped at its end (their logs on failure)."""
    started: list[Worker] = []
    try:
        yield started
    finally:
        for w in started:
            w.stop()


def task_stats(consumer: EventsConsumer, queue: str, task: str) -> TaskStats:
    """One task name's counts in one queue, as the consumer sees them now."""
    found = [t for t in consumer.view(time.time()).tasks if (t.queue, t.task) == (queue, task)]
    return found[0] if found else TaskStats(queue, task)


def activity(consumer: EventsConsumer, queue: str) -> QueueActivity:
    q = consumer.view(time.time()).queue(queue)
    return q if q is not None else QueueActivity(queue)


def wait_connected(consumer: EventsConsumer, timeout: float = 15.0) -> None:
    wait_for(lambda: consumer.up, timeout, what="the events consumer to connect")


def wait_workers(consumer: EventsConsumer, queue: str, n: int, timeout: float = 30.0) -> None:
    wait_for(
        lambda: activity(consumer, queue).workers == n,
        timeout,
        what=f"{n} live worker(s) of {queue}",
    )


@contextlib.contextmanager
def heartbeats(url: str, hostnames: list[str], every: float = 1.0) -> Iterator[None]:
    """Celery `worker-heartbeat` events (nothing running) for `hostnames`, as idle workers
    send them, every `every` seconds until the block ends: what Celery's own dispatcher
    publishes, for a test whose workers are pods of the fake API server."""
    from celery import Celery

    app = Celery(broker=url)
    stop = threading.Event()

    def beat() -> None:
        with app.connection_for_write() as conn:
            dispatchers = [app.events.Dispatcher(conn, hostname=h, enabled=True) for h in hostnames]
            while not stop.is_set():
                for d in dispatchers:
                    d.send("worker-heartbeat", freq=2.0, active=0, processed=0)
                stop.wait(every)
            for d in dispatchers:
                d.close()

    thread = threading.Thread(target=beat, name="heartbeats", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)
