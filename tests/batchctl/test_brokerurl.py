# ruff: noqa: E501 - a table of URLs, one form per line
"""Every broker URL form Celery accepts, against real servers: batchctl connects exactly
where Celery (kombu's Redis transport) would, to the same server and database.

The expectation is never written down here: for each form, kombu itself connects
(`kombu.Connection(url, transport_options=...).channel()`, which parses the URL with
`kombu.utils.url.parse_url` and builds redis-py's arguments in
`Channel._connparams`), and batchctl must read the same `whoami` key, or fail where
kombu fails. `unix://` is redis-py's form (kombu has no such transport), so there
the reference is `redis.Redis.from_url`.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis

from batchctl.brokerurl import connect
from batchctl.config import ConfigError, parse_config
from tests.support.certs import Certs, make_certs
from tests.support.isolation import starts_servers
from tests.support.servers.network import closed_port
from tests.support.servers.process import Proc
from tests.support.servers.redis import debian_redis, free_port, redis_args

ACL_USER = "alice"
ACL_PASSWORD = "p@ss:w/rd%?#&é"  # every character a URL treats specially
DEFAULT_PASSWORD = "dflt-hunter2"
MASTER_PASSWORD = "master-s3cret"
SENTINEL_PASSWORD = "sentinel-s3cret"
PASSWORDS = (ACL_PASSWORD, DEFAULT_PASSWORD, MASTER_PASSWORD, SENTINEL_PASSWORD)


@dataclass
class Brokers:
    plain: int
    acl: int
    tls: int
    mtls: int
    sock: Path
    sentinels: tuple[int, int]
    certs: Certs


def _whoami(client: redis.Redis, name: str) -> None:
    for db in range(5):
        client.execute_command("SELECT", db)
        client.set("whoami", f"{name}/{db}")


@pytest.fixture(scope="module")
@starts_servers
def brokers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Brokers]:
    d = tmp_path_factory.mktemp("brokers")
    server, sentinel = debian_redis(d / "bin")
    certs = make_certs(d / "certs")
    tls_args = [
        "--tls-cert-file", certs.server_cert, "--tls-key-file", certs.server_key,
        "--tls-ca-cert-file", certs.ca,
    ]  # fmt: skip
    procs: list[Proc] = []

    def start(name: str, args: list[Any], probe: Any) -> None:
        procs.append(Proc(args, probe, d / f"{name}.log").start())

    def client(**kw: Any) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", socket_timeout=2, single_connection_client=True, **kw)

    p = {name: free_port() for name in ("plain", "acl", "tls", "mtls", "master", "s1", "s2")}
    sock = d / "redis.sock"
    try:
        start(
            "plain",
            redis_args(server, p["plain"], d, "--unixsocket", sock),
            lambda: client(port=p["plain"]).ping(),
        )
        acl = ("--requirepass", DEFAULT_PASSWORD, "--user", ACL_USER, "on", f">{ACL_PASSWORD}")
        acl += ("~*", "&*", "+@all")
        start(
            "acl",
            redis_args(server, p["acl"], d, *acl),
            lambda: client(port=p["acl"], password=DEFAULT_PASSWORD).ping(),
        )
        for name, auth in (("tls", "optional"), ("mtls", "yes")):
            start(
                name,
                redis_args(server, 0, d, *tls_args, "--tls-auth-clients", auth, tls_port=p[name]),
                lambda name=name: client(
                    port=p[name], ssl=True, ssl_ca_certs=str(certs.ca),
                    ssl_certfile=str(certs.client_cert), ssl_keyfile=str(certs.client_key),
                ).ping(),
            )  # fmt: skip
        start("master", redis_args(server, p["master"], d, "--requirepass", MASTER_PASSWORD),
              lambda: client(port=p["master"], password=MASTER_PASSWORD).ping())  # fmt: skip
        for s in ("s1", "s2"):
            conf = d / f"{s}.conf"
            conf.write_text(
                f"bind 127.0.0.1\nport {p[s]}\ndir {d}\n"
                f"sentinel monitor mymaster 127.0.0.1 {p['master']} 1\n"
                f"sentinel auth-pass mymaster {MASTER_PASSWORD}\n"
                f"requirepass {SENTINEL_PASSWORD}\n"
            )
            start(
                s,
                [sentinel, conf],
                lambda s=s: client(port=p[s], password=SENTINEL_PASSWORD).ping(),
            )
        _whoami(client(port=p["plain"]), "plain")
        _whoami(client(port=p["acl"], password=DEFAULT_PASSWORD), "acl")
        _whoami(client(port=p["tls"], ssl=True, ssl_cert_reqs="none"), "tls")
        _whoami(client(port=p["mtls"], ssl=True, ssl_ca_certs=str(certs.ca),
                       ssl_certfile=str(certs.client_cert), ssl_keyfile=str(certs.client_key)), "mtls")  # fmt: skip
        _whoami(client(port=p["master"], password=MASTER_PASSWORD), "master")
        yield Brokers(p["plain"], p["acl"], p["tls"], p["mtls"], sock, (p["s1"], p["s2"]), certs)
    finally:
        for proc in procs:
            proc.stop()


def _forms(b: Brokers) -> list[tuple[str, str, dict[str, Any]]]:
    """(id, url, transport options) for every form."""
    ca, cc, ck = b.certs.ca, b.certs.client_cert, b.certs.client_key
    acl_pw, dflt = quote(ACL_PASSWORD, safe=""), quote(DEFAULT_PASSWORD, safe="")
    mpw = quote(MASTER_PASSWORD, safe="")
    s1, s2 = b.sentinels
    dead = closed_port()
    sentinel = {"master_name": "mymaster", "sentinel_kwargs": {"password": SENTINEL_PASSWORD}}
    return [
        ("redis-db", f"redis://127.0.0.1:{b.plain}/2", {}),
        ("redis-no-db", f"redis://127.0.0.1:{b.plain}", {}),
        ("redis-slash", f"redis://localhost:{b.plain}/", {}),
        ("redis-acl-user", f"redis://{ACL_USER}:{acl_pw}@127.0.0.1:{b.acl}/1", {}),
        ("redis-password", f"redis://:{dflt}@127.0.0.1:{b.acl}/3", {}),
        ("redis-wrong-password", f"redis://:wrong-pass@127.0.0.1:{b.acl}/0", {}),
        ("redis-bad-db", f"redis://127.0.0.1:{b.plain}/two", {}),
        ("redis-unknown-param", f"redis://127.0.0.1:{b.plain}/0?socket_timeout=3", {}),
        ("redis-virtual-host-param", f"redis://127.0.0.1:{b.plain}?virtual_host=4", {}),
        ("rediss-CERT_NONE", f"rediss://127.0.0.1:{b.tls}/0?ssl_cert_reqs=CERT_NONE", {}),
        ("rediss-none", f"rediss://127.0.0.1:{b.tls}/1?ssl_cert_reqs=none", {}),
        ("rediss-no-options", f"rediss://127.0.0.1:{b.tls}/4", {}),
        ("rediss-CERT_REQUIRED-ca", f"rediss://localhost:{b.tls}/2?ssl_cert_reqs=CERT_REQUIRED&ssl_ca_certs={ca}", {}),
        ("rediss-required-ca-ip", f"rediss://127.0.0.1:{b.tls}/3?ssl_cert_reqs=required&ssl_ca_certs={ca}", {}),
        ("rediss-CERT_OPTIONAL", f"rediss://127.0.0.1:{b.tls}/1?ssl_cert_reqs=CERT_OPTIONAL&ssl_ca_certs={ca}", {}),
        ("rediss-CERT_REQUIRED-no-ca", f"rediss://127.0.0.1:{b.tls}/0?ssl_cert_reqs=CERT_REQUIRED", {}),
        ("rediss-no-hostname-check", f"rediss://127.0.0.1:{b.tls}/0?ssl_cert_reqs=required&ssl_ca_certs={ca}&ssl_check_hostname=false", {}),
        ("rediss-bogus-reqs", f"rediss://127.0.0.1:{b.tls}/0?ssl_cert_reqs=maybe", {}),
        ("rediss-client-cert", f"rediss://127.0.0.1:{b.mtls}/2?ssl_cert_reqs=CERT_REQUIRED&ssl_ca_certs={ca}&ssl_certfile={cc}&ssl_keyfile={ck}", {}),
        ("rediss-client-cert-missing", f"rediss://127.0.0.1:{b.mtls}/2?ssl_cert_reqs=CERT_REQUIRED&ssl_ca_certs={ca}", {}),
        ("redis-with-ssl-params", f"redis://127.0.0.1:{b.tls}/1?ssl_cert_reqs=CERT_NONE", {}),
        ("redis+socket", f"redis+socket://{b.sock}", {}),
        ("redis+socket-virtual-host", f"redis+socket://{b.sock}?virtual_host=3", {}),
        ("redis+socket-db-ignored", f"redis+socket://{b.sock}?db=3", {}),
        ("unix-db", f"unix://{b.sock}?db=2", {}),
        ("unix-no-db", f"unix://{b.sock}", {}),
        ("sentinel-two", f"sentinel://:{mpw}@127.0.0.1:{s1};sentinel://:{mpw}@127.0.0.1:{s2}", sentinel),
        ("sentinel-two-db", f"sentinel://:{mpw}@127.0.0.1:{s1}/2;sentinel://:{mpw}@127.0.0.1:{s2}/2", sentinel),
        ("sentinel-db-of-first", f"sentinel://:{mpw}@127.0.0.1:{s1}/1;sentinel://:{mpw}@127.0.0.1:{s2}/4", sentinel),
        ("sentinel-single", f"sentinel://:{mpw}@127.0.0.1:{s1}/3", sentinel),
        ("sentinel-first-down", f"sentinel://:{mpw}@127.0.0.1:{dead};sentinel://:{mpw}@127.0.0.1:{s2}/2", sentinel),
        ("sentinel-per-node-passwords", f"sentinel://:{mpw}@127.0.0.1:{s1};sentinel://:other-pw@127.0.0.1:{s2}", sentinel),
        ("sentinel-password-on-second-only", f"sentinel://127.0.0.1:{s1};sentinel://:{mpw}@127.0.0.1:{s2}", sentinel),
        ("sentinel-no-sentinel-password", f"sentinel://:{mpw}@127.0.0.1:{s1}", {"master_name": "mymaster"}),
        ("sentinel-unknown-master", f"sentinel://:{mpw}@127.0.0.1:{s1}", {**sentinel, "master_name": "nope"}),
        ("redis-list-is-not-sentinel", f"redis://127.0.0.1:{b.plain}/0;redis://127.0.0.1:{b.plain}/1", {}),
    ]  # fmt: skip


def celery_reads(url: str, options: dict[str, Any]) -> tuple[str, ...]:
    """What Celery's broker connection reads: kombu's transport, as a worker uses it."""
    from kombu import Connection

    try:
        if url.startswith("unix://"):
            return ("reads", redis.Redis.from_url(url, socket_timeout=2).get("whoami").decode())
        opts = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0, **options}
        if "sentinel_kwargs" in opts:
            opts["sentinel_kwargs"] = {"socket_timeout": 2.0, **opts["sentinel_kwargs"]}
        conn = Connection(url, transport_options=opts)
        try:
            channel = conn.channel()
            try:
                return ("reads", channel.client.get("whoami").decode())
            finally:
                channel.close()
        finally:
            conn.release()
    except Exception:
        return ("fails",)


def batchctl_reads(url: str, options: dict[str, Any]) -> tuple[str, ...]:
    """What batchctl reads: the config check, then the one client factory."""
    try:
        cfg = parse_config(
            {
                "broker": {"url": url, "timeout_seconds": 2.0, **options},
                "kubernetes": {"enabled": False},
            },
            env={},
        )
    except ConfigError as e:
        assert not any(pw in e.render() for pw in PASSWORDS)
        return ("fails",)
    try:
        client = connect(cfg.broker)
        try:
            return ("reads", client.get("whoami"))
        finally:
            client.close()
    except redis.RedisError as e:
        assert not any(pw in str(e) for pw in PASSWORDS)
        return ("fails",)


def test_batchctl_connects_where_celery_would(brokers: Brokers) -> None:
    forms = _forms(brokers)
    with ThreadPoolExecutor(4) as pool:  # kombu retries a failing connection for seconds
        celery = list(pool.map(lambda f: celery_reads(f[1], f[2]), forms))
    ours = [batchctl_reads(url, opts) for _, url, opts in forms]
    table = {name: (c, o) for (name, _, _), c, o in zip(forms, celery, ours, strict=True)}
    differ = {name: pair for name, pair in table.items() if pair[0] != pair[1]}
    assert differ == {}
    # The table covers both outcomes, on every kind of server.
    reads = {o[1].split("/")[0] for c, o in table.values() if o[0] == "reads"}
    assert reads == {"plain", "acl", "tls", "mtls", "master"}
    assert sum(o == ("fails",) for _, o in table.values()) >= 8


def test_the_sentinels_password_from_the_environment(brokers: Brokers) -> None:
    """The sentinels' password, kept out of the file (the Secret's `sentinel_password`,
    read as BATCHCTL_SENTINEL_PASSWORD), reaches the sentinels that require it."""
    s1, _ = brokers.sentinels
    url = f"sentinel://:{quote(MASTER_PASSWORD, safe='')}@127.0.0.1:{s1}/1"
    broker = {"url": url, "timeout_seconds": 2.0, "sentinel_kwargs": {"socket_timeout": 2}}
    data = {"broker": broker, "kubernetes": {"enabled": False}}

    def whoami(env: dict[str, str]) -> Any:
        client = connect(parse_config(data, env=env).broker)
        try:
            return client.get("whoami")
        finally:
            client.close()

    assert whoami({"BATCHCTL_SENTINEL_PASSWORD": SENTINEL_PASSWORD}) == "master/1"
    with pytest.raises(redis.RedisError) as e:
        whoami({})  # the sentinels refuse a client without their password
    assert SENTINEL_PASSWORD not in str(e.value)
