"""One replica of the local backend: a `celery worker` process, started with the broker URL
in its environment (never on the command line, where `ps` shows it), stopped warm with
SIGTERM, killed with its pool by process group, and seen ready by its own log line.

Readiness is read from the worker's "<node> ready." line (logged once its consumer is
running), which costs a small file read instead of a broadcast round trip like
`celery inspect ping`. autoscaler/backends/local.py keeps the replicas of every batch.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from batchctl.workers import ENV_BROKER_URL, ENV_KEYPREFIX

_READY = re.compile(rb"\] (\S+) ready\.\s*$", re.MULTILINE)


@dataclass
class WorkerProcess:
    """One replica: a `celery worker` main process (and its pool, in its own session)."""

    queue: str
    node: str  # the name before '@%h'; Celery appends the host name
    proc: subprocess.Popen[bytes]
    log_path: Path
    started_at: float
    ready_at: float | None = None
    stop_requested_at: float | None = None
    killed: bool = False
    _log_offset: int = field(default=0, repr=False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def terminating(self) -> bool:
        return self.stop_requested_at is not None

    def poll_ready(self, now: float) -> bool:
        """Scan new log output for the worker's "ready." line; remember the result."""
        if self.ready_at is not None:
            return True
        try:
            with self.log_path.open("rb") as f:
                f.seek(self._log_offset)
                chunk = f.read()
        except OSError:
            return False
        # Only consume whole lines, so a line being written is read again next time.
        end = chunk.rfind(b"\n") + 1
        for match in _READY.finditer(chunk[:end]):
            if match.group(1).decode(errors="replace").startswith(f"{self.node}@"):
                self.ready_at = now
                break
        self._log_offset += end
        return self.ready_at is not None

    def terminate(self, now: float) -> bool:
        """SIGTERM the main process only: Celery's warm shutdown stops its pool itself.
        False when the process is already gone."""
        self.stop_requested_at = now
        try:
            self.proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            return False
        return True

    def kill(self) -> bool:
        """SIGKILL the whole process group (the pool too); False when it is already gone."""
        self.killed = True
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        return True

    def kill_leftovers(self) -> None:
        """After the main process exited (or was killed): pool children left behind cannot
        ack anything any more, so their messages are redelivered anyway."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)


@dataclass(frozen=True)
class WorkerExit:
    """A replica that has exited, as reported by `WorkerPool.reap()`."""

    queue: str
    node: str
    pid: int
    returncode: int
    requested: bool  # we asked it to stop (SIGTERM)
    killed: bool  # we had to SIGKILL it after its grace period
    log_path: Path


def worker_env(broker_url: str, keyprefix: str) -> dict[str, str]:
    """This process' environment with the broker's URL and key prefix for the worker."""
    env = dict(os.environ)
    env[ENV_BROKER_URL] = broker_url
    if keyprefix:
        env[ENV_KEYPREFIX] = keyprefix
    else:
        env.pop(ENV_KEYPREFIX, None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_worker(
    queue: str,
    node: str,
    command: Sequence[str],
    env: dict[str, str],
    log_path: Path,
    cwd: Path | None,
    now: float,
) -> WorkerProcess:
    """Start `command` with its output in `log_path`, in a session of its own."""
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            list(command),
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            # Own process group: a SIGKILL can then take the pool children too, and a
            # Ctrl-C in the terminal does not reach the workers directly.
            start_new_session=True,
        )
    return WorkerProcess(queue, node, proc, log_path, started_at=now)


def celery_worker_command(
    *,
    app: str,
    queue: str,
    node: str,
    concurrency: int,
    pool: str,
    prefetch_multiplier: int,
    loglevel: str,
    events: bool,
) -> list[str]:
    """`celery worker` for one queue, named `node@<host>`; with `events`, task events (-E)
    and heartbeats (active tasks, live workers), else no heartbeats at all."""
    quiet = ["-E"] if events else ["--without-heartbeat"]
    return [
        sys.executable, "-m", "celery",
        "-A", app,
        "worker",
        "-Q", queue,
        "-c", str(concurrency),
        "-P", pool,
        "--prefetch-multiplier", str(prefetch_multiplier),
        "-n", f"{node}@%h",
        "--without-gossip", "--without-mingle", *quiet,
        "-l", loglevel,
    ]  # fmt: skip
