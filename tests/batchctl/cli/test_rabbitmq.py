"""The claim workflow on a RabbitMQ site: claims in the SQLite store, the work left read
from the management API (waiting and unacknowledged), errors as exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from batchctl.cli import cli
from batchctl.demo.tasks import enqueue, make_app
from tests.support.servers.rabbitmq import RabbitVhost
from tests.support.waits import wait_for

pytestmark = pytest.mark.integration


def test_claim_status_and_release_on_rabbitmq(
    rabbitmq: RabbitVhost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "batchctl.yml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "broker": rabbitmq.broker(timeout_seconds=5),
                "kubernetes": {"enabled": False},
                "claims": {"store": "sqlite", "sqlite_path": str(tmp_path / "claims.sqlite3")},
            }
        )
    )
    monkeypatch.setenv("USER", "alice")
    monkeypatch.delenv("BATCHCTL_BROKER_URL", raising=False)

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, [*args, "-c", str(cfg)], catch_exceptions=False)

    assert run("claim", "batch1", "--purpose", "reindex", "--ttl", "1h").exit_code == 0
    enqueue(make_app(rabbitmq.url), "batch1", 7, seconds=0, priorities=[0, 9])
    wait_for(lambda: rabbitmq.queue("batch1").get("messages_ready") == 7, 20)

    status = run("status", "-o", "json")
    assert status.exit_code == 0, status.output
    rows = {b["queue"]: b for b in json.loads(status.stdout)["batches"]}
    assert rows["batch1"]["claim"]["holder"] == "alice"
    assert (rows["batch1"]["waiting"], rows["batch1"]["in_flight"]) == (7, 0)

    refused = run("release", "batch1", "-o", "json")
    assert refused.exit_code == 1  # work left: the claim stays
    assert (json.loads(refused.stdout)["waiting"], json.loads(refused.stdout)["in_flight"]) == (
        7,
        0,
    )
    assert run("release", "batch1", "--force", "--reason", "test").exit_code == 0
    history = run("history", "batch1", "-o", "json")
    kinds = [e["kind"] for e in json.loads(history.stdout)["events"]]
    assert kinds == ["claimed", "forced"]

    # A vhost that does not exist: the broker refuses the config (exit 2), naming it.
    bad = yaml.safe_load(cfg.read_text())
    bad["broker"]["url"] = rabbitmq.node.url("nope", rabbitmq.monitor_user, "x-pw-1234")
    cfg.write_text(yaml.safe_dump(bad))
    gone = run("status")
    assert gone.exit_code == 2 and "x-pw-1234" not in gone.output
