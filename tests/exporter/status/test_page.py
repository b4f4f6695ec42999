"""The /status page: in a real headless Chromium (rows, tier colours, sparklines, the
unclaimed flag, greyed last values while Redis is down), and rendered from snapshots
(events or none, the autoscaler's decisions or none, every value escaped)."""

from __future__ import annotations

import dataclasses
import itertools
import subprocess
import time
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import redis
from PIL import Image
from prometheus_client import CollectorRegistry

from autoscaler.backends.dryrun import DryRunBackend
from autoscaler.loop import Autoscaler
from autoscaler.server import AutoscalerServer
from batchctl.claims import Claim
from batchctl.claims.redis_store import RedisClaimStore
from batchctl.config import Config, parse_config
from batchctl.decisions import LEASE, SELF, DecisionRecord, Decisions
from batchctl.demo.tasks import enqueue, make_app
from exporter.broker.redis.reader import RedisReader
from exporter.collect import InProcessSource
from exporter.events.model import EventsView, QueueActivity
from exporter.http.server import ExporterApp
from exporter.live import Live
from exporter.progress import Progress
from exporter.snapshot import QueueStats, Snapshot
from exporter.status.page import render_status
from tests.support.autoscaler import RecordingBackend, dry_run_config
from tests.support.exporter import fixed_snapshot
from tests.support.servers.redis import EmbeddedRedis, RedisServer
from tests.support.tools import require_tool

pytestmark = pytest.mark.browser

# The page's colours (exporter/status/page.py, parts.py), as RGB.
GOOD, FINE, CARE, DANGER = (
    (0xD7, 0xF2, 0xDD),
    (0xFF, 0xF4, 0xC2),
    (0xFF, 0xD8, 0xA8),
    (0xF8, 0xB4, 0xB4),
)
FLAG = (0x6D, 0x28, 0xD9)  # the UNCLAIMED badge
STALE = (0xEC, 0xEE, 0xF2)  # greyed rows while the broker is down
DEPTHS = {"batch0": 0, "batch1": 150, "batch2": 700, "batch3": 1200}
NOW = 100_000.0


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    exe = require_tool("chromium")
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--hide-scrollbars",
    ]  # fmt: skip
    return subprocess.run(
        [exe, *flags, *args], capture_output=True, text=True, timeout=90, check=False
    )


def screenshot(url: str, tmp_path: Path, name: str) -> tuple[str, Image.Image]:
    """The page's DOM and a screenshot of it."""
    profile = tmp_path / f"profile-{name}"
    dom = chromium(f"--user-data-dir={profile}", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    shot = tmp_path / f"{name}.png"
    res = chromium(
        f"--user-data-dir={profile}", f"--screenshot={shot}", "--window-size=1700,600", url
    )
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    return dom.stdout, Image.open(shot).convert("RGB")


def count_colour(img: Image.Image, rgb: tuple[int, int, int]) -> int:
    colours = img.getcolors(maxcolors=img.width * img.height) or []
    return sum(n for n, px in colours if tuple(px) == rgb)


def cfg_for(url: str, **exporter: object) -> Config:
    return parse_config(
        {
            "broker": {"url": url},
            "kubernetes": {"enabled": False},
            "exporter": {"autoscaler_url": None, **exporter},
        },
        env={},
    )


Serve = Callable[[InProcessSource, Config], str]


@pytest.fixture
def serve() -> Iterator[Serve]:
    apps: list[tuple[ExporterApp, InProcessSource]] = []

    def start(source: InProcessSource, cfg: Config) -> str:
        app = ExporterApp(cfg, source)
        host, port = app.listen("127.0.0.1:0")
        app.serve_in_thread()
        apps.append((app, source))
        return f"http://{host}:{port}/status"

    yield start
    for app, source in apps:
        app.shutdown()
        source.stop()


def minutes(start: float = NOW) -> Callable[[], float]:
    """A clock a minute further on at every reading: a history of many minutes at once."""
    ticks = itertools.count()
    return lambda: start + 60 * next(ticks)


def test_rows_colours_sparklines_and_the_unclaimed_flag(
    redis_server: RedisServer, redis_db: redis.Redis, serve: Serve, tmp_path: Path
) -> None:
    app = make_app(redis_server.url)
    cfg = cfg_for(redis_server.url)
    source = InProcessSource(cfg, RedisReader(cfg.broker), clock=minutes(), live=Live(cfg))
    for _ in range(4):  # four minutes of history: the queues grow a quarter a minute
        for queue, n in DEPTHS.items():
            enqueue(app, queue, n // 4, seconds=0)
        source.collect()
    dom, img = screenshot(serve(source, cfg), tmp_path, "up")
    for queue, depth in DEPTHS.items():
        assert f'data-queue="{queue}"' in dom
        assert f'<span class="n">{depth // 4 * 4}</span>' in dom
    assert dom.count("<polyline") == 4  # the last minutes of every batch
    assert dom.count(">UNCLAIMED<") == 3  # work, and nobody claimed it
    assert "no events (events.enabled is false)" in dom and "autoscaler: unknown" in dom
    # Each tier colour covers at least a table cell's worth of pixels (and the legend).
    for name, rgb in {"good": GOOD, "fine": FINE, "careful": CARE, "danger": DANGER}.items():
        assert count_colour(img, rgb) > 500, f"no {name} colour on the page"
    assert count_colour(img, FLAG) > 300, "no UNCLAIMED badge on screen"
    assert count_colour(img, STALE) == 0


def test_while_redis_is_down_the_last_values_stay_greyed(
    own_redis: EmbeddedRedis, serve: Serve, tmp_path: Path
) -> None:
    enqueue(make_app(own_redis.url), "batch2", 700, seconds=0)
    cfg = cfg_for(own_redis.url)
    live = Live(cfg)
    source = InProcessSource(cfg, RedisReader(cfg.broker), live=live)
    assert source.collect().broker_up
    url = serve(source, cfg)
    own_redis.stop()
    dom, img = screenshot(url, tmp_path, "down")
    assert 'id="broker-down"' in dom and "Showing the last known values" in dom
    assert "Connection refused." in dom and "refused.." not in dom  # one full stop
    assert dom.count('class="stale"') == 4  # every batch, greyed, with its last numbers
    assert '<span class="n">700</span>' in dom
    assert count_colour(img, STALE) > 20_000, "the last values are not greyed"


def test_the_autoscalers_decisions_from_the_sidecar(
    redis_server: RedisServer, redis_db: redis.Redis, serve: Serve, tmp_path: Path
) -> None:
    enqueue(make_app(redis_server.url), "batch1", 5, seconds=0)
    RedisClaimStore(redis_db).claim("batch1", "alice", "x", 600, time.time())
    scfg = dry_run_config(redis_server.url)
    backend = RecordingBackend({"batch0": 0, "batch1": 0})
    scaler = Autoscaler(scfg, InProcessSource(scfg, RedisReader(scfg.broker)), backend)
    scaler.tick()
    sidecar = AutoscalerServer(scaler, CollectorRegistry())
    host, port = sidecar.listen("127.0.0.1:0")
    sidecar.serve_in_thread()
    try:
        cfg = cfg_for(redis_server.url, autoscaler_url=f"http://{host}:{port}")
        url = serve(InProcessSource(cfg, RedisReader(cfg.broker), live=Live(cfg)), cfg)
        dom, _ = screenshot(url, tmp_path, "decisions")
        assert "autoscaler decided" in dom
        assert 'class="act-up"' in dom and "up 0→1 · from_zero" in dom
        assert 'id="dry-run"' not in dom
    finally:
        sidecar.shutdown()
    # In dry-run nothing happened: the page says so and colours no decision.
    dry = Autoscaler(scfg, InProcessSource(scfg, RedisReader(scfg.broker)), DryRunBackend(
        ["batch0", "batch1"], track=True))  # fmt: skip
    dry.tick()
    sidecar = AutoscalerServer(dry, CollectorRegistry())
    host, port = sidecar.listen("127.0.0.1:0")
    sidecar.serve_in_thread()
    try:
        cfg = cfg_for(redis_server.url, autoscaler_url=f"http://{host}:{port}")
        url = serve(InProcessSource(cfg, RedisReader(cfg.broker), live=Live(cfg)), cfg)
        dom, _ = screenshot(url, tmp_path, "dry-run")
        assert 'id="dry-run"' in dom and "it scaled nothing" in dom
        assert "would up 0→1 · from_zero" in dom
        assert 'class="act-up"' not in dom
    finally:
        sidecar.shutdown()


# --- rendered from snapshots ----------------------------------------------------------


def snapshot_with_events(**overrides: object) -> Snapshot:
    base = fixed_snapshot()
    events = EventsView(
        True, NOW - 600, None, 500,
        (QueueActivity("batch0"), QueueActivity("batch1", 3, 2, 90, 10, True)),
    )  # fmt: skip
    progress = {
        "batch0": Progress("batch0", None, None, None, None, 0.0, ()),
        "batch1": Progress("batch1", 12.5, "events", 100, 10, 300.0, (1, 2, None, 4)),
    }
    return dataclasses.replace(base, events=events, progress=progress, **overrides)  # type: ignore[arg-type]


def test_events_values_on_the_page() -> None:
    page = render_status(snapshot_with_events(), (100, 500, 1000), 5, now=NOW)
    row = _row(page, "batch1")
    assert "<td>3</td>" in row  # active
    assert "<td>12.5</td>" in row  # completed per minute, from events: no "estimate"
    assert "10 (10%)" in row and "<td>5m</td>" in row
    assert "events: 500 received" in page


def test_without_events_the_page_says_so_instead_of_zeros() -> None:
    snap = dataclasses.replace(
        fixed_snapshot(),
        progress={"batch1": Progress("batch1", 6.0, "estimate", None, None, 600.0, ())},
    )
    page = render_status(snap, (100, 500, 1000), 5, now=NOW)
    row = _row(page, "batch1")
    assert row.count("no events") == 2  # active, failures
    assert "6.0" in row and "estimate" in row
    assert "no events (events.enabled is false)" in page
    down = snapshot_with_events()
    assert down.events is not None
    down = dataclasses.replace(
        down, events=dataclasses.replace(down.events, up=False, error="gone")
    )
    page = render_status(down, (100, 500, 1000), 5, now=NOW)
    # Consumer down: nothing on what runs now; failures counted so far still show.
    assert "no events: gone" in page and _row(page, "batch1").count("no events") == 1


def test_decisions_and_their_source() -> None:
    snap = fixed_snapshot()
    ours = Decisions(
        SELF, NOW - 5, "pod-a", (DecisionRecord("batch1", 2, 2, "hold", "at_cap", "x"),)
    )
    page = render_status(snap, (100, 500, 1000), 5, now=NOW, decisions=ours)
    assert "autoscaler decided 5s ago by pod-a" in page and "hold 2 · at_cap" in page
    assert "(the leader's, from its Lease)" not in page
    leaders = dataclasses.replace(ours, source=LEASE)
    page = render_status(snap, (100, 500, 1000), 5, now=NOW, decisions=leaders)
    assert "(the leader's, from its Lease)" in page
    page = render_status(snap, (100, 500, 1000), 5, now=NOW, decisions_note="refused")
    assert "autoscaler: unknown (refused)" in page
    assert '<span class="muted">unknown</span>' in _row(page, "batch1")


def test_memory_says_sampling_until_the_first_sample() -> None:
    snap = fixed_snapshot()
    q = snap.queue("batch1")
    assert q is not None and q.waiting > 0
    sampled = dataclasses.replace(snap, queues=(q._replace(memory_bytes=0),))
    assert "sampling..." in _row(render_status(sampled, (100, 500, 1000), 5, now=NOW), "batch1")
    assert "sampling..." not in _row(render_status(snap, (100, 500, 1000), 5, now=NOW), "batch1")
    # An empty queue has no lists: 0 B is the truth, not a sample to wait for.
    assert "sampling..." not in _row(render_status(snap, (100, 500, 1000), 5, now=NOW), "batch0")


HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>&amp;'


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(name for name, _ in attrs)


def test_every_value_is_escaped() -> None:
    claim = Claim("batch1", HOSTILE, HOSTILE, HOSTILE, NOW - 60, NOW + 60)
    other = QueueStats(HOSTILE, 5, {0: 5}, 0, 1.0, 10, False)
    snap = snapshot_with_events(
        claims={"batch1": claim},
        kubernetes_up=False,
        kubernetes_error=HOSTILE,
    )
    snap = dataclasses.replace(snap, queues=(*snap.queues, other))
    down = dataclasses.replace(snap, broker_up=False, broker_error=HOSTILE, queues=())
    assert down.events is not None
    down = dataclasses.replace(
        down, events=dataclasses.replace(down.events, up=False, error=HOSTILE)
    )
    decisions = Decisions(
        SELF, NOW, HOSTILE, (DecisionRecord("batch1", 1, 2, HOSTILE, HOSTILE, HOSTILE),)
    )
    pages = [
        render_status(snap, (100, 500, 1000), 5, now=NOW, decisions=decisions),
        render_status(down, (100, 500, 1000), 5, now=NOW, last_good=snap, decisions_note=HOSTILE),
    ]
    for page in pages:
        assert "<script" not in page and "<img" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        parsed = _Elements()
        parsed.feed(page)
        assert "script" not in parsed.tags and "img" not in parsed.tags
        assert "onerror" not in parsed.attrs


def _row(page: str, queue: str) -> str:
    start = page.index(f'<tr data-queue="{queue}"')
    return page[start : page.index("</tr>", start)]
