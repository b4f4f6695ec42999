"""Secrets never reach any output: every URL form, every output there is.

For each form the test runs `config check`, `--help` with the URL in the environment,
`status` (which fails: the broker is unreachable or refuses the password), and an
exporter in this process whose /metrics, /status, /api/v1/snapshot and log lines are
all collected; then it looks for every password, as written and percent-decoded.
"""

from __future__ import annotations

import io
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from click.testing import CliRunner

from batchctl.cli import cli
from batchctl.config import load_config
from batchctl.log import configure_logging
from exporter.runtime import start_exporter
from tests.support.servers.network import closed_port
from tests.support.servers.redis import RedisServer

PW = {
    "plain": "hunter2-plain",
    "special": "p@ss/w:rd?#%",
    "user": "alice-pw-9",
    "sentinel1": "node-one-pw",
    "sentinel2": "node-two-pw",
    "sentinels": "the-sentinels-pw",
    "key": "tls-key-pw",
    "socket": "socket-pw-7",
    "bare": "typo-pw-no-colon",
}


def forms(live_port: int) -> list[tuple[str, dict[str, object]]]:
    dead = closed_port()
    enc = quote(PW["special"], safe="")
    return [
        ("live-redis-wrong-password", {"url": f"redis://:{PW['plain']}@127.0.0.1:{live_port}/1"}),
        ("down-redis", {"url": f"redis://:{PW['plain']}@127.0.0.1:{dead}/0"}),
        ("special-characters", {"url": f"redis://:{enc}@127.0.0.1:{dead}/0"}),
        ("acl-user", {"url": f"redis://alice:{PW['user']}@127.0.0.1:{dead}/2"}),
        ("tls", {"url": f"rediss://:{PW['plain']}@127.0.0.1:{dead}/0?ssl_cert_reqs=CERT_NONE&ssl_password={PW['key']}"}),
        ("sentinel", {
            "url": f"sentinel://:{PW['sentinel1']}@127.0.0.1:{dead};sentinel://:{PW['sentinel2']}@127.0.0.1:{closed_port()}",
            "master_name": "mymaster",
            "sentinel_kwargs": {"password": PW["sentinels"]},
        }),
        ("redis+socket", {"url": f"redis+socket://:{PW['socket']}@/nonexistent/redis.sock"}),
        ("unix", {"url": f"unix://:{PW['socket']}@/nonexistent/redis.sock?db=1"}),
        ("bad-port", {"url": f"redis://:{PW['plain']}@127.0.0.1:port/0"}),
        # A password written without its ':' is, to kombu, a user name: masked anyway.
        ("user-without-password", {"url": f"redis://{PW['bare']}@127.0.0.1:{dead}/0"}),
    ]  # fmt: skip


def fetch(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.read().decode()
    except urllib.error.HTTPError as e:
        return e.read().decode()


def leaks(text: str) -> list[str]:
    secrets = {*PW.values(), *(quote(v, safe="") for v in PW.values())}
    return sorted(s for s in secrets if s in text)


@pytest.mark.parametrize("case", range(10))
def test_no_secret_in_any_output(case: int, redis_server: RedisServer, tmp_path: Path) -> None:
    name, broker = forms(redis_server.port)[case]
    broker = {**broker, "timeout_seconds": 0.5}
    cfg_file = tmp_path / "batchctl.yml"
    cfg_file.write_text(
        yaml.safe_dump({"broker": broker, "kubernetes": {"enabled": False}}, allow_unicode=True)
    )
    out: list[str] = []
    runner = CliRunner()
    env = {"BATCHCTL_BROKER_URL": str(broker["url"])}
    for args in (
        ["--log-format", "json", "config", "check", str(cfg_file)],
        ["--log-format", "json", "exporter", "--help"],
        ["--help"],
        ["--log-format", "json", "status", "-c", str(cfg_file)],
    ):
        res = runner.invoke(cli, args, env=env)
        out += [res.output, res.stderr, repr(res.exception)]
    if name != "bad-port":
        logs = io.StringIO()
        configure_logging("debug", "json", file=logs)
        running = start_exporter(load_config(cfg_file, env={}), "127.0.0.1:0")
        try:
            for path in ("/metrics", "/status", "/api/v1/snapshot", "/", "/readyz"):
                out.append(fetch(running.url + path))
        finally:
            running.stop()
        out.append(logs.getvalue())
        assert '"broker read failed"' in logs.getvalue() or "broker_up 1" in out[-6]
    everything = "\n".join(out)
    if name != "bad-port":
        assert "***" in everything  # the URL is shown, masked
    assert leaks(everything) == []
