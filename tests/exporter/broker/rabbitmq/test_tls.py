"""RabbitMQ over TLS: amqps:// and the management API over HTTPS, trusted through
broker.use_ssl.ca_certs (Celery's broker_use_ssl), refused clearly without it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from batchctl.config import Config
from exporter.broker import open_reader
from exporter.collect import InProcessSource
from exporter.events.consumer import EventsConsumer
from tests.support.certs import Certs, make_certs
from tests.support.config import config_for
from tests.support.isolation import starts_servers
from tests.support.servers.rabbitmq import RabbitNode, RabbitVhost, new_vhost
from tests.support.servers.redis import free_port
from tests.support.waits import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture
@starts_servers
def tls_node(tmp_path: Path) -> Iterator[tuple[RabbitNode, Certs, int, int]]:
    """A node of its own with an AMQPS listener and the management API over HTTPS."""
    certs = make_certs(tmp_path / "certs")
    amqps, https = free_port(), free_port()
    files = (
        f"cacertfile = {certs.ca}\n", f"certfile = {certs.server_cert}\n",
        f"keyfile = {certs.server_key}\n",
    )  # fmt: skip
    conf = f"listeners.ssl.default = 127.0.0.1:{amqps}\n"
    conf += "".join(f"ssl_options.{line}" for line in files)
    conf += f"management.ssl.ip = 127.0.0.1\nmanagement.ssl.port = {https}\n"
    conf += "".join(f"management.ssl.{line}" for line in files)
    with RabbitNode(tmp_path / "rabbitmq", conf) as node:
        yield node, certs, amqps, https


def cfg_for(v: RabbitVhost, amqps: int, https: int, ca: Path | None) -> Config:
    url = (
        f"amqps://{v.monitor_user}:{quote(v.monitor_password, safe='')}@localhost:{amqps}/"
        + quote(v.vhost, safe="")
    )
    broker: dict[str, object] = {
        "management_url": f"https://localhost:{https}",
        "timeout_seconds": 5,
    }
    if ca is not None:
        broker["use_ssl"] = {"ca_certs": str(ca)}
    return config_for(url, ("batch1",), broker=broker, claims={"store": "sqlite"})


def test_amqps_and_https_with_the_ca_file(tls_node: tuple[RabbitNode, Certs, int, int]) -> None:
    node, certs, amqps, https = tls_node
    v = new_vhost(node)
    cfg = cfg_for(v, amqps, https, certs.ca)
    source = InProcessSource(cfg, open_reader(cfg.broker))
    try:
        snap = source.collect()  # the health check's AMQPS connection, then HTTPS
        assert snap.broker_up, snap.broker_error
        assert snap.queue("batch1").waiting == 0  # type: ignore[union-attr]
    finally:
        source.stop()
    # Celery's event receiver over AMQPS, with the same options.
    consumer = EventsConsumer(cfg.model_copy(update={"events": cfg.events.model_copy(
        update={"enabled": True})}))  # fmt: skip
    consumer.start()
    try:
        wait_for(lambda: consumer.up, 20, what="the events consumer over amqps")
    finally:
        consumer.stop()

    # Without the CA file the server's certificate is not trusted: down, saying the fix.
    untrusted = cfg_for(v, amqps, https, None)
    source = InProcessSource(untrusted, open_reader(untrusted.broker))
    try:
        snap = source.collect()
    finally:
        source.stop()
    assert not snap.broker_up
    assert snap.broker_error is not None and "broker.use_ssl.ca_certs" in snap.broker_error
