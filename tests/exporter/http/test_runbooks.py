"""The exporter serves every alert's runbook at /runbooks/<Alert>, where the default
alerts.runbook_url points: the link in an alert resolves wherever the exporter does."""

from __future__ import annotations

import pytest

from alerts.rules import ALL_ALERTS, groups
from batchctl.config import Config, parse_config
from batchctl.runbooks import runbook, runbook_names
from exporter.broker.redis.reader import RedisReader
from exporter.collect import InProcessSource
from exporter.http.server import ExporterApp
from tests.support.http import get


@pytest.mark.integration
def test_every_alert_link_resolves_on_the_exporter() -> None:
    cfg = parse_config(
        {"broker": {"url": "redis://127.0.0.1:9/0", "timeout_seconds": 0.2},
         "kubernetes": {"enabled": False}},
        env={},
    )  # fmt: skip
    app = ExporterApp(cfg, InProcessSource(cfg, RedisReader(cfg.broker)))
    host, port = app.listen("127.0.0.1:0")
    app.serve_in_thread()
    base = f"http://{host}:{port}"
    try:
        links = {r["annotations"]["runbook_url"] for g in groups(Config()) for r in g["rules"]}
        assert len(links) == len(ALL_ALERTS)
        for link in sorted(links):
            assert link.startswith("http://localhost:9808/runbooks/")
            path = link.removeprefix("http://localhost:9808")
            code, ctype, body = get(base + path)
            alert = path.rsplit("/", 1)[1]
            assert code == 200 and ctype.startswith("text/html"), link
            assert f"# {alert}" in body and "## Meaning" in body
        code, _, body = get(base + "/runbooks/")
        assert code == 200 and all(f'href="/runbooks/{a}"' in body for a in ALL_ALERTS)
        # The repository's spelling works too; nothing outside the folder is served.
        assert get(base + "/runbooks/CeleryBrokerDown.md")[0] == 200
        for bad in ("/runbooks/NoSuchAlert", "/runbooks/..%2F__init__", "/runbooks/README"):
            assert get(base + bad)[0] == 404, bad
    finally:
        app.shutdown()


def test_runbooks_ship_inside_the_package() -> None:
    assert set(ALL_ALERTS) <= set(runbook_names())
    assert runbook("../__init__") is None and runbook("README") is None
