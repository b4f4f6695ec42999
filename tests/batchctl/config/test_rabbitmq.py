"""RabbitMQ in the config: Celery's AMQP URLs, the management API's address and
credentials, TLS options, and the claim store a broker without claims needs."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchctl.amqpurl import amqp_secrets, management_target, parse_amqp_urls
from batchctl.brokerparse import BrokerURLError
from batchctl.cli import cli
from batchctl.config import ConfigError, parse_config
from batchctl.redact import redact_url

SQLITE = {"store": "sqlite"}


def problems(data: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigError) as e:
        parse_config({"kubernetes": {"enabled": False}, **data}, env={})
    return e.value.problems


@pytest.mark.parametrize(
    ("url", "host", "port", "user", "password", "vhost", "tls"),
    [
        ("amqp://guest:guest@localhost:5672//", "localhost", 5672, "guest", "guest", "/", False),
        ("amqp://", "localhost", 5672, "guest", "guest", "/", False),  # kombu's defaults
        ("pyamqp://mon:pw@rabbit/", "rabbit", 5672, "mon", "pw", "/", False),
        ("amqp://mon@rabbit", "rabbit", 5672, "mon", "guest", "/", False),  # as kombu fills it
        ("amqps://mon:p%40ss@rabbit/prod%2Fa", "rabbit", 5671, "mon", "p@ss", "prod/a", True),
        ("amqp://u:p@rabbit:6000/%2F", "rabbit", 6000, "u", "p", "/", False),
        ("AMQP://u:p@[::1]:5672/v", "::1", 5672, "u", "p", "v", False),
    ],
)
def test_celerys_amqp_urls_mean_what_kombu_makes_of_them(
    url: str, host: str, port: int, user: str, password: str, vhost: str, tls: bool
) -> None:
    t = parse_amqp_urls(url)[0]
    assert (t.host, t.port, t.user, t.password, t.vhost, t.tls) == (
        host, port, user, password, vhost, tls,
    )  # fmt: skip
    assert ":" not in t.safe.removeprefix(t.safe.split("://")[0] + "://").split("@")[0]


def test_a_failover_list_keeps_its_order() -> None:
    targets = parse_amqp_urls("amqp://a:1@r1:5672//;amqp://a:1@r2:5672//")
    assert [t.host for t in targets] == ["r1", "r2"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("amqp://u:p@h:port//", "URL: bad port"),
        ("amqps://h/?ssl_ca_certs=/ca.pem", "TLS options go in broker.use_ssl"),
        ("amqp://h//;redis://h:6379/0", "URL 2: a ;-joined list holds amqp://"),
    ],
)
def test_bad_urls_name_the_fix(url: str, expected: str) -> None:
    with pytest.raises(BrokerURLError, match=expected):
        parse_amqp_urls(url)


@pytest.mark.parametrize(
    ("broker_url", "management_url", "base", "user", "password"),
    [
        ("amqp://mon:pw@rabbit:5672//", None, "http://rabbit:15672", "mon", "pw"),
        ("amqps://mon:pw@rabbit//", None, "https://rabbit:15671", "mon", "pw"),
        ("amqp://mon:pw@r1//;amqp://mon:pw@r2//", None, "http://r1:15672", "mon", "pw"),
        (
            "amqp://mon:pw@rabbit//",
            "http://mgmt:8080/rabbit/",
            "http://mgmt:8080/rabbit",
            "mon",
            "pw",
        ),
        ("amqp://mon:pw@rabbit//", "https://admin:s%2F@mgmt", "https://mgmt:15671", "admin", "s/"),
        ("amqp://[::1]//", None, "http://[::1]:15672", "guest", "guest"),
    ],
)
def test_the_management_api_defaults_to_the_brokers_host_and_credentials(
    broker_url: str, management_url: str | None, base: str, user: str, password: str
) -> None:
    t = management_target(broker_url, management_url)
    assert (t.base, t.user, t.password) == (base, user, password)


def test_every_password_is_a_secret_but_kombus_default() -> None:
    found = amqp_secrets("amqp://mon:s3cret-pw@h//", "http://admin:other%2Fpw@m")
    assert set(found) == {"s3cret-pw", "other%2Fpw", "other/pw"}
    assert amqp_secrets("amqp://guest:guest@h//", None) == ()
    assert redact_url("amqp://mon:s3cret-pw@h:5672//") == "amqp://mon:***@h:5672//"


def test_an_amqp_config_is_read_as_rabbitmq() -> None:
    cfg = parse_config(
        {
            "broker": {"url": "amqps://mon:pw@rabbit//", "use_ssl": {"ca_certs": "/ca.pem"}},
            "claims": SQLITE,
            "kubernetes": {"enabled": False},
        },
        env={},
    )
    assert cfg.broker.kind == "rabbitmq"
    assert cfg.broker.amqp_ssl() == {"cert_reqs": ssl.CERT_REQUIRED, "ca_certs": "/ca.pem"}
    plain = cfg.broker.model_copy(update={"url": "amqp://mon:pw@rabbit//"})
    assert plain.amqp_ssl() is False
    assert parse_config({"kubernetes": {"enabled": False}}, env={}).broker.kind == "redis"


def test_claims_in_redis_are_refused_with_a_rabbitmq_broker() -> None:
    found = problems({"broker": {"url": "amqp://mon:pw@rabbit//"}})
    assert found == [
        "claims.store: redis keeps claims in the broker's Redis, but broker.url is RabbitMQ, "
        "which keeps no claims; set claims.store: kubernetes (Leases, in a cluster) or "
        "sqlite (a file, for one machine)"
    ]


def test_rabbitmq_keys_are_refused_with_a_redis_broker_and_bad_ones_named() -> None:
    found = problems(
        {"broker": {"url": "redis://h:6379/0", "management_url": "http://m", "use_ssl": {}}}
    )
    assert found == [
        "broker.management_url: only for a RabbitMQ broker (amqp://, amqps://); remove it, "
        "or point broker.url at RabbitMQ",
        "broker.use_ssl: only for a RabbitMQ broker (amqp://, amqps://); remove it, or "
        "point broker.url at RabbitMQ",
    ]
    found = problems(
        {
            "broker": {"url": "amqp://h//", "management_url": "ftp://u:secret-pw@m"},
            "claims": SQLITE,
        }
    )
    assert len(found) == 1 and found[0].startswith("broker.management_url: expected http://")
    assert "secret-pw" not in found[0]
    found = problems(
        {"broker": {"url": "amqp://h//", "use_ssl": {"cert_reqs": "maybe"}}, "claims": SQLITE}
    )
    assert found[0].startswith("broker.use_ssl.cert_reqs: Input should be 'CERT_REQUIRED'")


def test_config_check_refuses_claims_in_redis_with_rabbitmq(tmp_path: Path) -> None:
    path = tmp_path / "batchctl.yml"
    path.write_text("broker: {url: 'amqp://mon:pw-123456@rabbit//'}\n")
    res = CliRunner().invoke(cli, ["config", "check", str(path)], env={"BATCHCTL_BROKER_URL": ""})
    assert res.exit_code == 2
    assert "claims.store: redis keeps claims in the broker's Redis" in res.output + res.stderr
    assert "pw-123456" not in res.output + res.stderr
