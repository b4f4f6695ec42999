"""The AMQP health check: can Celery's producers and workers connect at all?

The management API can answer while the AMQP listener does not (another port, another
certificate), so the reader's `ping` also opens an AMQP connection as Celery would
(py-amqp, the URL's credentials and virtual host, `broker.use_ssl` for amqps://), and
closes it at once: no channel is opened, nothing is declared, consumed or published.
A `;` failover list is tried in order, as kombu fails over, within one
`broker.timeout_seconds` in all.
"""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Any

import amqp

from batchctl.amqpurl import AmqpTarget
from exporter.broker.protocol import BrokerError, BrokerRefused, BrokerUnavailable


def check_amqp(targets: tuple[AmqpTarget, ...], ssl: bool | dict[str, Any], timeout: float) -> None:
    """Connect to the first target that accepts us and close again. Raises BrokerRefused
    (credentials, virtual host) or BrokerUnavailable (nothing answers in time)."""
    deadline = time.monotonic() + timeout
    failure: BrokerError | None = None
    for target in targets:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            _connect_once(target, ssl, left)
            return
        except BrokerRefused as e:
            failure = failure if isinstance(failure, BrokerRefused) else e
        except BrokerUnavailable as e:
            failure = failure or e
    raise failure or BrokerUnavailable(
        f"no answer from the AMQP broker within {timeout:g}s (broker.timeout_seconds)"
    )


def _connect_once(target: AmqpTarget, ssl: bool | dict[str, Any], timeout: float) -> None:
    host = f"[{target.host}]" if ":" in target.host else target.host
    conn = amqp.Connection(
        host=f"{host}:{target.port}",
        userid=target.user,
        password=target.password,
        virtual_host=target.vhost,
        ssl=(dict(ssl) if isinstance(ssl, dict) else ssl) if target.tls else False,
        connect_timeout=timeout,
        read_timeout=timeout,
        write_timeout=timeout,
        client_properties={"connection_name": "batchctl health check"},
    )
    where = f"the AMQP broker at {target.safe}"
    try:
        conn.connect()
    except amqp.exceptions.AccessRefused:
        _drop(conn)
        raise BrokerRefused(
            f"{where} refused the user or password (ACCESS_REFUSED): fix them in broker.url"
        ) from None
    except amqp.exceptions.NotAllowed:
        _drop(conn)
        raise BrokerRefused(
            f"{where} does not let the user into virtual host {target.vhost!r} (NOT_ALLOWED): "
            "does it exist, and does the user have permissions on it? It is broker.url's path"
        ) from None
    except (amqp.exceptions.AMQPError, OSError) as e:
        _drop(conn)
        text = str(e) or type(e).__name__
        if isinstance(e, socket.timeout) or "timed out" in text.lower():
            text = f"timed out after {timeout:.1f}s"
        raise BrokerUnavailable(f"cannot reach {where}: {text}"[:400]) from None
    try:
        conn.close()  # Connection.Close and its -ok: the broker logs no abrupt close
    except (amqp.exceptions.AMQPError, OSError):
        _drop(conn)


def _drop(conn: amqp.Connection) -> None:
    """Let go of the socket, without a close handshake."""
    # Nothing more to do about a socket that will not close.
    with contextlib.suppress(Exception):
        conn.collect()
