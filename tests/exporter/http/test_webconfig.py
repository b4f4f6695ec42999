"""--web.config.file: TLS and basic auth on the exporter's endpoints, with real TLS clients
and certificates made in the test; no endpoint changes state."""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import redis
from click.testing import CliRunner

from batchctl.cli import cli
from batchctl.config import Config, parse_config
from exporter.broker.redis.reader import RedisReader
from exporter.collect import InProcessSource
from exporter.http.server import ExporterApp
from exporter.http.webconfig import WebConfig, WebConfigError, load_web_config
from tests.support.certs import Certs, make_certs
from tests.support.metrics import sample
from tests.support.servers.redis import RedisServer

PASSWORD = "scrape-s3cret:with colon"


def cfg_for(url: str) -> Config:
    return parse_config(
        {"broker": {"url": url}, "kubernetes": {"enabled": False}, "batches": []}, env={}
    )


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def serve(url: str, web: WebConfig) -> tuple[ExporterApp, int]:
    cfg = cfg_for(url)
    app = ExporterApp(cfg, InProcessSource(cfg, RedisReader(cfg.broker)), web=web)
    _, port = app.listen("127.0.0.1:0")
    app.serve_in_thread()
    return app, port


def write(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "web.yml"
    f.write_text(text)
    return f


def client_context(certs: Certs, with_cert: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(certs.ca))
    if with_cert:
        ctx.load_cert_chain(str(certs.client_cert), str(certs.client_key))
    return ctx


def get(url: str, ctx: ssl.SSLContext | None = None, auth: str | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url)
    if auth is not None:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture
def tls_auth(
    certs: Certs, tmp_path: Path, redis_server: RedisServer
) -> Iterator[tuple[int, Certs]]:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    hashed = "$2y$" + hashed[4:]  # htpasswd -B writes $2y$
    f = write(
        tmp_path,
        f"tls_server_config:\n  cert_file: {certs.server_cert}\n  key_file: {certs.server_key}\n"
        f"basic_auth_users:\n  prometheus: '{hashed}'\n",
    )
    app, port = serve(redis_server.url, load_web_config(f))
    try:
        yield port, certs
    finally:
        app.shutdown()


def test_tls_and_basic_auth(tls_auth: tuple[int, Certs]) -> None:
    port, certs = tls_auth
    base = f"https://localhost:{port}"
    ctx = client_context(certs)
    assert get(base + "/metrics", ctx, f"prometheus:{PASSWORD}")[0] == 200
    code, body = get(base + "/metrics", ctx, f"prometheus:{PASSWORD}")  # remembered match
    assert code == 200 and sample(body, "celery_broker_up") == 1
    for auth in (None, "prometheus:wrong", "nobody:" + PASSWORD, "prometheus"):
        assert get(base + "/metrics", ctx, auth)[0] == 401
        assert get(base + "/api/v1/snapshot", ctx, auth)[0] == 401
        assert get(base + "/status", ctx, auth)[0] == 401
    # The probes stay open (they say nothing but ok/ready).
    assert get(base + "/healthz", ctx)[0] == 200
    # Without the CA the certificate is refused; plain HTTP gets no answer.
    with pytest.raises(urllib.error.URLError):
        get(base + "/healthz", ssl.create_default_context())
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    with pytest.raises((http.client.HTTPException, OSError)):
        conn.request("GET", "/healthz")
        conn.getresponse()
    conn.close()
    # The server still serves after those failures.
    assert get(base + "/healthz", ctx)[0] == 200


def test_client_certificates(certs: Certs, tmp_path: Path, redis_server: RedisServer) -> None:
    f = write(
        tmp_path,
        f"tls_server_config:\n  cert_file: {certs.server_cert}\n  key_file: {certs.server_key}\n"
        f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {certs.ca}\n"
        "  min_version: TLS13\n",
    )
    app, port = serve(redis_server.url, load_web_config(f))
    try:
        base = f"https://127.0.0.1:{port}"
        assert get(base + "/metrics", client_context(certs, with_cert=True))[0] == 200
        with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionResetError)):
            get(base + "/metrics", client_context(certs))
    finally:
        app.shutdown()


def test_no_endpoint_changes_state(
    tls_auth: tuple[int, Certs], redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    port, certs = tls_auth
    redis_db.lpush("batch1", json.dumps({"properties": {"delivery_tag": "t"}}))
    before = {k: redis_db.dump(k) for k in redis_db.keys("*")}
    auth = "Basic " + base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode()
    for path in ("/", "/metrics", "/status", "/api/v1/snapshot", "/healthz", "/readyz"):
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            conn = http.client.HTTPSConnection(
                "localhost", port, context=client_context(certs), timeout=5
            )
            conn.request(method, path, body=b"{}", headers={"Authorization": auth})
            assert conn.getresponse().status in (405, 501), (method, path)
            conn.close()
    after = {k: redis_db.dump(k) for k in redis_db.keys("*") if not k.endswith(b"first_seen")}
    assert after == before


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tls_server_config:\n  cert_file: nope.crt\n", "2 problem(s)"),
        ("tls_server_config:\n  cert_file: x\n  key_file: y\n  ciphers: 1\n", "ciphers: not"),
        ("basic_auth_users:\n  alice: plaintext-password\n", "alice: expected a bcrypt hash"),
        ("http_server_config:\n  http2: true\n", "http_server_config: not supported"),
        ("tls_server_config: [\n", "not valid YAML"),
        ("- a list\n", "expected a mapping of keys"),
    ],
)  # fmt: skip
def test_bad_web_config_is_exit_2(tmp_path: Path, text: str, expected: str) -> None:
    f = write(tmp_path, text)
    with pytest.raises(WebConfigError) as info:
        load_web_config(f)
    assert expected in info.value.render()
    assert "plaintext-password" not in info.value.render()
    res = CliRunner().invoke(cli, ["exporter", "--web.config.file", str(f), "-l", "127.0.0.1:0"])
    assert res.exit_code == 2 and expected in res.output and "Traceback" not in res.output


def test_an_empty_web_config_means_plain_http(tmp_path: Path) -> None:
    web = load_web_config(write(tmp_path, ""))
    assert web.context is None and web.authorized(None)
