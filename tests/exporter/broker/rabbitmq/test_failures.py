"""RabbitMQ failing, or configured wrong: `celery_broker_up 0` with a clear error within
broker.timeout_seconds, never a 500, a traceback or a password in any output.

Real faults on loopback: a wrong password, a virtual host that does not exist, a user
without the `monitoring` tag, an HTTPS management API and an AMQP port whose handshakes
never start, a node stopped and started again. Time limits are correctness bounds (the
timeout plus scheduling slack on a shared machine), not speed measurements.
"""

from __future__ import annotations

import io
import json
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from click.testing import CliRunner

from batchctl.cli import cli
from batchctl.config import Config, load_config
from batchctl.log import configure_logging
from exporter.broker import open_reader
from exporter.collect import InProcessSource
from exporter.runtime import start_exporter
from exporter.snapshot import Snapshot
from tests.support.config import config_for
from tests.support.http import get
from tests.support.servers.network import closed_port, silent_listener
from tests.support.servers.rabbitmq import MONITOR_PERMISSIONS, RabbitNode, RabbitVhost, new_vhost
from tests.support.waits import wait_for

pytestmark = pytest.mark.integration

TIMEOUT = 0.8
SLACK = 0.6  # thread start-up and scheduling on a busy shared machine


def cfg_with(url: str, management_url: str, **broker: object) -> Config:
    return config_for(
        url,
        ("batch1",),
        broker={"management_url": management_url, "timeout_seconds": TIMEOUT, **broker},
        claims={"store": "sqlite"},
    )


def timed_collect(cfg: Config, source: InProcessSource | None = None) -> tuple[Snapshot, float]:
    source = source or InProcessSource(cfg, open_reader(cfg.broker))
    t0 = time.monotonic()
    snap = source.collect()
    return snap, time.monotonic() - t0


def wrong(v: RabbitVhost, *, password: str | None = None, vhost: str | None = None) -> str:
    return v.node.url(vhost or v.vhost, v.monitor_user, password or v.monitor_password)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("password", "refused the user or password"),
        ("vhost", "does the virtual host exist"),
        ("no-tag", "monitoring` tag"),
    ],
)
def test_refusals_are_down_with_the_fix(rabbitmq: RabbitVhost, fault: str, expected: str) -> None:
    url = rabbitmq.monitor_url
    if fault == "password":
        url = wrong(rabbitmq, password="not-the-password-123")
    elif fault == "vhost":
        url = wrong(rabbitmq, vhost="no-such-vhost")
    else:  # a user RabbitMQ knows, without the monitoring (or any management) tag
        rabbitmq.node.add_user(
            "plain-user", "plain-pw-1234", "", rabbitmq.vhost, MONITOR_PERMISSIONS
        )
        url = rabbitmq.node.url(rabbitmq.vhost, "plain-user", "plain-pw-1234")
    snap, took = timed_collect(cfg_with(url, rabbitmq.management_url))
    assert not snap.broker_up and took < TIMEOUT + SLACK, took
    assert snap.broker_error is not None and expected in snap.broker_error
    assert "not-the-password" not in snap.broker_error and rabbitmq.monitor_password not in str(
        snap.to_json()
    )
    if fault == "no-tag":
        rabbitmq.node.delete_user("plain-user")


def test_stalled_handshakes_and_closed_ports_are_down_within_the_timeout(
    rabbitmq: RabbitVhost,
) -> None:
    with ExitStack() as stack:
        https = stack.enter_context(silent_listener())
        amqp = stack.enter_context(silent_listener())
        cases = {
            "management TLS handshake stalls": cfg_with(
                rabbitmq.monitor_url, f"https://127.0.0.1:{https}"
            ),
            "management port closed": cfg_with(
                rabbitmq.monitor_url, f"http://127.0.0.1:{closed_port()}"
            ),
            # The management API answers; the AMQP listener Celery uses does not.
            "AMQP handshake stalls": cfg_with(
                f"amqp://{rabbitmq.monitor_user}:{rabbitmq.monitor_password}@127.0.0.1:{amqp}/"
                + quote(rabbitmq.vhost, safe=""),
                rabbitmq.management_url,
            ),
            "AMQPS handshake stalls": cfg_with(
                f"amqps://{rabbitmq.monitor_user}:{rabbitmq.monitor_password}@127.0.0.1:{amqp}/"
                + quote(rabbitmq.vhost, safe=""),
                rabbitmq.management_url,
            ),
        }
        for what, cfg in cases.items():
            snap, took = timed_collect(cfg)
            assert not snap.broker_up, what
            assert took < TIMEOUT + SLACK, (what, took)
            assert snap.broker_error and rabbitmq.monitor_password not in snap.broker_error


@pytest.mark.slow
def test_a_stopped_node_is_down_within_the_timeout_and_recovers(own_rabbitmq: RabbitNode) -> None:
    v = new_vhost(own_rabbitmq)
    cfg = cfg_with(v.monitor_url, v.management_url)
    source = InProcessSource(cfg, open_reader(cfg.broker))
    try:
        snap, _ = timed_collect(cfg, source)
        assert snap.broker_up, snap.broker_error
        own_rabbitmq.stop()
        snap, took = timed_collect(cfg, source)
        assert not snap.broker_up and took < TIMEOUT + SLACK, took
        own_rabbitmq.start()
        wait_for(lambda: source.collect().broker_up, timeout=30, what="the broker back up")
        assert source.collect().queue("batch1").waiting == 0  # type: ignore[union-attr]
    finally:
        source.stop()


# -- secrets ---------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["working", "wrong-vhost", "management-url-credentials"])
def test_the_monitoring_users_password_appears_in_no_output(
    rabbitmq: RabbitVhost, tmp_path: Path, form: str
) -> None:
    broker: dict[str, object] = {
        "url": rabbitmq.monitor_url,
        "management_url": rabbitmq.management_url,
        "timeout_seconds": 2,
    }
    if form == "wrong-vhost":
        broker["url"] = wrong(rabbitmq, vhost="nope")
    elif form == "management-url-credentials":
        # The management API with credentials of its own (the same user here).
        user, pw = rabbitmq.monitor_user, quote(rabbitmq.monitor_password, safe="")
        broker["url"] = rabbitmq.node.url(rabbitmq.vhost, "guest", "guest")
        broker["management_url"] = rabbitmq.management_url.replace("://", f"://{user}:{pw}@")
    cfg_file = tmp_path / "batchctl.yml"
    cfg_file.write_text(
        yaml.safe_dump(
            {
                "broker": broker,
                "kubernetes": {"enabled": False},
                "events": {"enabled": True},
                "claims": {"store": "sqlite", "sqlite_path": str(tmp_path / "claims.db")},
            }
        )
    )
    out: list[str] = []
    runner = CliRunner()
    results = {}
    for args in (
        ["--log-format", "json", "config", "check", str(cfg_file)],
        ["--log-format", "json", "status", "-o", "json", "-c", str(cfg_file)],
        ["--log-format", "json", "status", "-c", str(cfg_file)],
    ):
        res = runner.invoke(cli, args, env={"BATCHCTL_BROKER_URL": ""})
        results[" ".join(args[2:4])] = res
        out += [res.output, res.stderr, repr(res.exception)]
    assert results["config check"].exit_code == 0, results["config check"].output
    status = results["status -o"]
    if form == "wrong-vhost":
        assert status.exit_code == 2, status.output  # refused as configured: fix the config
        assert "virtual host" in status.output + status.stderr
    else:
        assert status.exit_code == 0, status.output + status.stderr
        doc = json.loads(status.stdout)
        assert doc["broker_up"] is True
        assert [b["queue"] for b in doc["batches"]] == ["batch0", "batch1", "batch2", "batch3"]
    logs = io.StringIO()
    configure_logging("debug", "json", file=logs)
    running = start_exporter(load_config(cfg_file, env={}), "127.0.0.1:0")
    try:
        for path in ("/metrics", "/status", "/api/v1/snapshot", "/", "/readyz"):
            out.append(get(running.url + path)[2])
    finally:
        running.stop()
    out.append(logs.getvalue())
    everything = "\n".join(out)
    assert "***" in everything  # the URL is shown, masked
    secrets = {rabbitmq.monitor_password, quote(rabbitmq.monitor_password, safe="")}
    assert [s for s in secrets if s in everything] == []
