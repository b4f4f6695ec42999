"""The /status page in a real headless Chromium: rows and tier colours on screen."""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from PIL import Image

from batchctl.claims import Claim
from batchctl.config import parse_config
from batchctl.demo.tasks import enqueue, make_app
from exporter.broker import BrokerReader
from exporter.collect import InProcessSource
from exporter.server import ExporterApp
from exporter.status import render_status
from tests.conftest import RedisServer, require_tool
from tests.exporter.test_server import fixed_snapshot

pytestmark = pytest.mark.browser

# The tier backgrounds from exporter/status.py, as RGB.
GOOD, FINE, CARE, DANGER = (
    (0xD7, 0xF2, 0xDD),
    (0xFF, 0xF4, 0xC2),
    (0xFF, 0xD8, 0xA8),
    (0xF8, 0xB4, 0xB4),
)
DEPTHS = {"batch0": 0, "batch1": 150, "batch2": 700, "batch3": 1200}


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


@pytest.fixture
def status_url(redis_server: RedisServer, redis_db: redis.Redis) -> Iterator[str]:
    app = make_app(redis_server.url)
    for queue, n in DEPTHS.items():
        enqueue(app, queue, n, seconds=0)
    cfg = parse_config(
        {"broker": {"url": redis_server.url}, "kubernetes": {"enabled": False}}, env={}
    )
    server = ExporterApp(cfg, InProcessSource(cfg, BrokerReader(cfg.broker)))
    host, port = server.listen("127.0.0.1:0")
    server.serve_in_thread()
    try:
        yield f"http://{host}:{port}/status"
    finally:
        server.shutdown()


def count_colour(img: Image.Image, rgb: tuple[int, int, int]) -> int:
    colours = img.getcolors(maxcolors=img.width * img.height) or []
    return sum(n for n, px in colours if tuple(px) == rgb)


def test_status_page_rows_and_colours(status_url: str, tmp_path: Path) -> None:
    profile = tmp_path / "profile"
    dom = chromium(f"--user-data-dir={profile}", "--dump-dom", status_url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for queue, depth in DEPTHS.items():
        assert f'data-queue="{queue}"' in dom.stdout
        assert f">{depth}</td>" in dom.stdout

    shot = tmp_path / "status.png"
    res = chromium(
        f"--user-data-dir={profile}", f"--screenshot={shot}", "--window-size=1300,500", status_url
    )
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    img = Image.open(shot).convert("RGB")
    # Each tier colour covers at least a table cell's worth of pixels (and the legend).
    for name, rgb in {"good": GOOD, "fine": FINE, "careful": CARE, "danger": DANGER}.items():
        assert count_colour(img, rgb) > 500, f"no {name} colour on the page"


def test_status_page_shows_claim_and_no_consumers() -> None:
    claim = Claim("batch1", "alice", "reindex", "", since=0.0, expires=3603.0)
    snap = dataclasses.replace(fixed_snapshot(), claims={"batch1": claim})
    page = render_status(snap, (100, 500, 1000), 5, now=3.0)
    assert "alice (reindex), expires in 1h" in page
    assert 'data-tier="danger"' in page  # 1000 waiting is the top tier
    assert "2/3" in page  # ready/desired
    assert 'content="5"' in page  # auto refresh
