"""`batchctl autoscaler`: a backend that contradicts the config is a config error naming both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchctl.cli import cli
from tests.support.servers.redis import EmbeddedRedis


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
