"""`batchctl autoscaler`: a backend that contradicts the config is a config error naming both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchctl.cli import cli
from tests.conftest import EmbeddedRedis


@pytest.mark.parametrize(
    ("config", "args", "named"),
    [
        ("kubernetes: {enabled: false}\n", ["--backend", "kubernetes"], "--backend kubernetes"),
        ("kubernetes: {enabled: false}\n", [], "autoscaler.backend: kubernetes"),
        (
            "kubernetes: {enabled: false}\nautoscaler: {backend: dry-run}\n",
            ["--backend", "kubernetes"],
            "--backend kubernetes",
        ),
    ],
)
def test_the_kubernetes_backend_without_kubernetes_names_the_conflict(
    tmp_path: Path, config: str, args: list[str], named: str
) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text(config)
    res = CliRunner().invoke(cli, ["autoscaler", "-c", str(cfg), "--once", *args])
    assert res.exit_code == 2, res.output
    assert res.stderr.splitlines() == [
        f"{cfg}: 1 problem(s)",
        f"  - {named} needs kubernetes.enabled: true, but kubernetes.enabled is false: "
        "enable Kubernetes, or use --backend dry-run or local",
    ]
    res = CliRunner().invoke(cli, ["autoscaler", "-c", str(cfg), "--once", "-o", "json", *args])
    assert res.exit_code == 2
    assert json.loads(res.stdout)["problems"][0].startswith(f"{named} needs kubernetes.enabled")


def test_once_with_a_refused_password_is_a_config_error_at_once(
    tmp_path: Path, own_redis: EmbeddedRedis
) -> None:
    """The broker answered and refused us: exit 2 with the reason, well before
    startup_timeout_seconds (waiting cannot help), and no flood of warnings."""
    own_redis.client().config_set("requirepass", "right-pw")
    cfg = tmp_path / "c.yml"
    cfg.write_text(
        f"broker: {{url: 'redis://:wrong-pw@127.0.0.1:{own_redis.port}/0'}}\n"
        "kubernetes: {enabled: false}\n"
        "autoscaler: {backend: dry-run, snapshot_url: null, startup_timeout_seconds: 600}\n"
    )
    res = CliRunner().invoke(
        cli, ["autoscaler", "-c", str(cfg), "--once"], env={"BATCHCTL_BROKER_URL": None}
    )
    assert res.exit_code == 2, res.output
    assert "the broker refused the credentials of broker.url" in res.stderr
    assert "wrong-pw" not in res.output + res.stderr


def test_a_decision_has_one_json_shape_in_once_and_in_the_api() -> None:
    """`--once -o json` and /api/v1/decisions print a decision alike; the exporter still
    reads a decision from a sidecar that called `replicas` "current"."""
    from autoscaler.policy import Decision
    from batchctl.cli.autoscaler import decisions_json
    from batchctl.decisions import SELF, DecisionRecord, Decisions
    from batchctl.reasons import Action, Reason

    d = Decision("batch1", desired=2, current=1, reason=Reason.BACKLOG, action=Action.UP)
    api = Decisions(SELF, 1.0, "me", (DecisionRecord.of(d),)).to_json()
    shape = {
        "queue": "batch1",
        "replicas": 1,
        "desired": 2,
        "action": "up",
        "reason": "backlog",
        "detail": "",
    }
    assert decisions_json([d]) == api["decisions"] == [shape]
    assert Decisions.from_json(json.loads(json.dumps(api))).decisions == (DecisionRecord.of(d),)
    before = {k: v for k, v in shape.items() if k != "replicas"} | {"current": 1}
    older = {"source": SELF, "decisions": [before]}
    assert Decisions.from_json(older).decisions == (DecisionRecord.of(d),)
