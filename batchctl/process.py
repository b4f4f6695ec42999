"""Process life: block until Kubernetes (SIGTERM) or a person (Ctrl-C) asks us to stop."""

from __future__ import annotations

import signal
import threading
from types import FrameType


def wait_for_shutdown() -> None:
    """Block until SIGTERM or SIGINT; callers then stop their threads cleanly."""
    done = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    done.wait()
