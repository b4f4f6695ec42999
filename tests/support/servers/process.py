"""A server process started by a test, ready once a probe answers."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import redis


class Proc:
    """A server process started with `args`, ready once `probe()` succeeds."""

    def __init__(self, args: Sequence[str | Path], probe: Callable[[], object], log: Path) -> None:
        self.args = [str(a) for a in args]
        self.probe = probe
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> Proc:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.probe()
                return self
            except (redis.RedisError, OSError) as e:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{self.args[0]} did not start: {e}; see {self.log}") from e
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
