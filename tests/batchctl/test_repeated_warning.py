"""RepeatedWarning: a failure that repeats many times a second logs once, then once a
minute while it lasts (with how many were not logged), and once when it ends."""

from __future__ import annotations

from structlog.testing import capture_logs

from batchctl.log import RepeatedWarning, get_logger


def test_one_line_per_start_change_minute_and_recovery() -> None:
    now = [0.0]
    w = RepeatedWarning(get_logger("t"), "read failed", every=60, clock=lambda: now[0])
    with capture_logs() as logs:
        for _ in range(300):  # five a second for a minute
            w.failed("refused", broker="b")
            now[0] += 0.2
        w.failed("refused")  # 60 s on: again, with the count of the silent ones
        w.failed("timed out")  # another error: at once
        w.recovered("read recovered")
        w.recovered("read recovered")  # once
        w.failed("timed out")  # a new failure after recovery: at once
    seen = [(e["event"], e.get("error"), e.get("repeats")) for e in logs]
    assert seen == [
        ("read failed", "refused", None),
        ("read failed", "refused", 299),
        ("read failed", "timed out", None),
        ("read recovered", None, None),
        ("read failed", "timed out", None),
    ]
    assert logs[0]["broker"] == "b" and logs[0]["log_level"] == "warning"
