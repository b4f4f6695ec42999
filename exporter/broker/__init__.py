"""The broker seam: `BrokerReader` (protocol.py) and `open_reader`, which picks the
implementation for a broker URL.

Implementations live in sub-packages, one per broker, and know nothing of each other:
`redis/` reads Celery's Redis transport (kombu's layout), `rabbitmq/` RabbitMQ's
management API. A new broker adds its
package, a branch here for its URL schemes, and a row in the broker layers contract
(pyproject.toml).
"""

from __future__ import annotations

from batchctl.amqpurl import AMQP_SCHEMES
from batchctl.brokerparse import BrokerURLError, scheme_of
from batchctl.config import BrokerConfig
from exporter.broker.protocol import BrokerReader

# kombu's Redis transport URLs (batchctl.brokerparse reads each of them).
REDIS_SCHEMES = frozenset({"redis", "rediss", "redis+socket", "unix", "sentinel"})


def open_reader(cfg: BrokerConfig) -> BrokerReader:
    """The reader for `cfg.url` (a `;`-joined failover list: its first URL's scheme).
    No I/O for a single URL; a failover list of Redis URLs pings them, as kombu does.

    Raises BrokerURLError for a scheme no reader here understands (the config's
    validation normally refuses it first)."""
    scheme = scheme_of(cfg.url)  # of the first URL of a list
    if scheme in REDIS_SCHEMES:
        # Imported here: a broker's client library loads only when that broker is used.
        from exporter.broker.redis.reader import RedisReader

        return RedisReader(cfg)
    if scheme in AMQP_SCHEMES:
        from exporter.broker.rabbitmq.reader import RabbitReader

        return RabbitReader(cfg)
    what = f"{scheme}://" if scheme else "a URL without a scheme"
    known = ", ".join(f"{s}://" for s in sorted(REDIS_SCHEMES | AMQP_SCHEMES))
    raise BrokerURLError(f"broker.url: no broker reader for {what}; expected one of {known}")
