"""The CLI tests' runner: real Redis (the test's own database), no cluster unless faked."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from batchctl.cli import cli
from tests.support.servers.redis import RedisServer


@pytest.fixture
def run(  # type: ignore[no-untyped-def]
    redis_server: RedisServer,
    redis_db: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
):
    # No cluster here: replicas come from Kubernetes only in the test that fakes one.
    no_kube = tmp_path / "no-kube.yml"
    no_kube.write_text("kubernetes:\n  enabled: false\n")
    monkeypatch.setenv("BATCHCTL_BROKER_URL", redis_server.url)
    monkeypatch.setenv("USER", "alice")
    monkeypatch.setenv("BATCHCTL_CONFIG", str(no_kube))
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(cli, list(args), env=env, catch_exceptions=False)

    return invoke
