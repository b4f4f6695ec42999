"""Pace, failures, ETA and sparklines from a batch's history (exporter/progress.py, pure)."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from exporter.progress import (
    ESTIMATE,
    EVENTS,
    FAILURE_SECONDS,
    HISTORY_SECONDS,
    SAMPLE_SECONDS,
    SPARK_POINTS,
    History,
    Progress,
    Sample,
    progress,
    sparkline,
)

T0 = 1_000_000.0


def history(samples: list[Sample]) -> list[Sample]:
    h = History()
    for s in samples:
        h.add(s)
    return list(h.samples)


def test_rate_from_events_counts_completions_over_five_minutes() -> None:
    # 30 completions a minute, 1 in 10 failing; 600 waiting and falling by 30 a minute.
    samples = [Sample(T0 + 60 * m, 600 - 30 * m, 620 - 30 * m, 30 * m, 3 * m) for m in range(11)]
    p = progress("batch1", history(samples))
    assert p.rate_source == EVENTS and p.rate_per_minute == 30.0
    # The failure window is 10 minutes: 300 completed, 30 failed.
    assert (p.completed_recent, p.failed_recent, p.failure_ratio) == (300, 30, 0.1)
    # 320 left (waiting + in flight + active) at 30 a minute.
    assert p.eta_seconds == 320 / 30 * 60


def test_without_events_the_rate_is_an_estimate_from_the_fall_of_work() -> None:
    samples = [Sample(T0 + 60 * m, 600 - 20 * m, 610 - 20 * m, None, None) for m in range(6)]
    p = progress("batch1", history(samples))
    assert (p.rate_per_minute, p.rate_source) == (20.0, ESTIMATE)
    assert (p.completed_recent, p.failed_recent, p.failure_ratio) == (None, None, None)
    assert p.eta_seconds == 510 / 20 * 60


def test_a_queue_that_grows_has_no_estimated_eta() -> None:
    samples = [Sample(T0 + 60 * m, 100 + 10 * m, 100 + 10 * m, None, None) for m in range(6)]
    p = progress("batch1", history(samples))
    assert (p.rate_per_minute, p.eta_seconds) == (0.0, None)


def test_nothing_to_do_is_an_eta_of_zero_and_one_reading_is_no_rate() -> None:
    p = progress("batch1", [Sample(T0, 0, 0, None, None)])
    assert (p.rate_per_minute, p.rate_source, p.eta_seconds) == (None, None, 0.0)
    p = progress("batch1", [Sample(T0, 5, 5, 0, 0)])
    assert (p.rate_per_minute, p.eta_seconds) == (None, None)
    assert progress("batch1", []) == Progress("batch1")


def test_completions_stop_and_the_batch_is_stalled() -> None:
    samples = [Sample(T0 + 60 * m, 50, 54, 100, 0) for m in range(6)]
    p = progress("batch1", history(samples))
    assert (p.rate_per_minute, p.rate_source, p.eta_seconds) == (0.0, EVENTS, None)
    # Nothing finished: no failures, and no ratio of nothing.
    assert (p.completed_recent, p.failed_recent, p.failure_ratio) == (0, 0, None)


def test_failures_are_over_the_last_ten_minutes_only() -> None:
    # 10 failures in the first minute, none after: gone from the window after 10 minutes.
    samples = [Sample(T0, 0, 10, 0, 0), Sample(T0 + 60, 0, 10, 10, 10)]
    samples += [Sample(T0 + 60 * m, 0, 10, 10 + m, 10) for m in range(2, 14)]
    p = progress("batch1", history(samples))
    assert p.failed_recent == 0 and p.completed_recent == 10
    assert progress("batch1", history(samples[:8])).failed_recent == 10


def test_history_keeps_one_sample_per_ten_seconds_for_thirty_minutes() -> None:
    h = History()
    for i in range(3600 * 2):  # a sample a second for two hours
        h.add(Sample(T0 + i, i, i, None, None))
    q = list(h.samples)
    assert q[-1].at == T0 + 3600 * 2 - 1  # the newest reading is always kept
    assert q[0].at >= q[-1].at - HISTORY_SECONDS - SAMPLE_SECONDS
    assert len(q) <= HISTORY_SECONDS / SAMPLE_SECONDS + 3
    # Spaced samples, then the newest reading (which may be closer to the one before).
    assert all(b.at - a.at >= SAMPLE_SECONDS for a, b in itertools.pairwise(q[:-1]))
    # A clock that steps back starts the history over.
    h.add(Sample(T0, 1, 1, None, None))
    assert list(h.samples) == [Sample(T0, 1, 1, None, None)]


def test_sparkline_is_waiting_per_minute_with_gaps() -> None:
    samples = [Sample(T0 + 60 * m + 30, m, m, None, None) for m in range(30) if m not in (5, 6)]
    line = sparkline(samples, T0 + 1800)
    assert len(line) == SPARK_POINTS
    assert line[4] == 4 and line[5] is None and line[6] is None and line[29] == 29
    # Older than 30 minutes: not drawn.
    assert sparkline([Sample(T0, 7, 7, None, None)], T0 + 1801) == (None,) * SPARK_POINTS


@given(
    st.lists(
        st.tuples(st.floats(0.1, 120), st.integers(0, 10**6), st.integers(0, 10**3)),
        min_size=1,
        max_size=60,
    )
)
def test_any_history_gives_sane_numbers(steps: list[tuple[float, int, int]]) -> None:
    t, done, failed, samples = T0, 0, 0, []
    for dt, waiting, more in steps:
        t += dt
        done += more
        failed += more // 3
        samples.append(Sample(t, waiting, waiting, done, failed))
    p = progress("q", history(samples))
    assert p.rate_per_minute is None or p.rate_per_minute >= 0
    assert p.eta_seconds is None or p.eta_seconds >= 0
    ratio = p.failure_ratio
    assert ratio is None or 0 <= ratio <= 1
    assert p.completed_recent is None or p.completed_recent <= done
    assert len(p.sparkline) == SPARK_POINTS
    assert FAILURE_SECONDS > 0
