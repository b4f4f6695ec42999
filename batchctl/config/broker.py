"""The `broker:` section: where Celery's broker is and how kombu lays it out.

Names are kombu's and Celery's (`sep`, `priority_steps`, `global_keyprefix`,
`master_name`, `sentinel_kwargs`, `use_ssl`); URL forms are checked with kombu's own
parser (batchctl/brokerparse.py for Redis, batchctl/amqpurl.py for RabbitMQ). A
RabbitMQ broker (amqp://, amqps://, pyamqp://) is read through its management API
(`management_url`); the Redis layout keys (`sep`, `priority_steps`...) do not apply
to it.
"""

from __future__ import annotations

import math
import ssl
from typing import Any, Literal

from pydantic import Field, field_validator

from batchctl.amqpurl import is_amqp, management_target, parse_amqp_urls
from batchctl.brokerparse import BrokerURLError, parse_broker_url
from batchctl.config.base import _Strict

DEFAULT_PRIORITY_STEPS = (0, 3, 6, 9)
# kombu's default separator between a queue name and its priority step, and in the
# members of its binding sets (kombu.transport.redis.Channel.sep).
DEFAULT_SEP = "\x06\x16"
# Keys of Celery's `sentinel_kwargs` transport option that batchctl passes on: the
# connection arguments redis-py takes for the sentinels themselves.
SENTINEL_KWARGS = (
    "password", "username", "socket_timeout", "socket_connect_timeout", "ssl",
    "ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname",
    "client_name",
)  # fmt: skip


class UseSSL(_Strict):
    """TLS for an amqps:// broker and an https:// management API: Celery's
    `broker_use_ssl` keys (py-amqp's), file paths as strings."""

    ca_certs: str | None = None  # PEM file of the CAs to trust (else the system's)
    certfile: str | None = None  # a client certificate, for brokers that ask for one
    keyfile: str | None = None
    # Celery's spellings of ssl.CERT_*; CERT_NONE skips checking the server (not advised).
    cert_reqs: Literal[
        "CERT_REQUIRED", "CERT_OPTIONAL", "CERT_NONE", "required", "optional", "none"
    ] = "CERT_REQUIRED"

    @property
    def verify(self) -> bool:
        return self.cert_reqs not in ("CERT_NONE", "none")

    def py_amqp(self) -> dict[str, Any]:
        """As Celery hands `broker_use_ssl` to py-amqp: ssl.CERT_* for `cert_reqs`."""
        reqs = self.cert_reqs.upper().removeprefix("CERT_")
        out: dict[str, Any] = {"cert_reqs": getattr(ssl, f"CERT_{reqs}")}
        for key in ("ca_certs", "certfile", "keyfile"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


class BrokerConfig(_Strict):
    url: str = "redis://localhost:6379/0"
    # RabbitMQ only: the management plugin's HTTP API, where queue figures come from.
    # None: the AMQP URL's host on 15672 (15671, https, for amqps://), its credentials.
    management_url: str | None = None
    # RabbitMQ only: TLS options for amqps:// and an https:// management_url (Celery's
    # broker_use_ssl); None: the system's CAs, as Celery does.
    use_ssl: UseSSL | None = None
    # kombu's transport options, under kombu's names (Celery's broker_transport_options).
    global_keyprefix: str = ""
    sep: str = DEFAULT_SEP
    priority_steps: tuple[int, ...] = DEFAULT_PRIORITY_STEPS
    # With sentinel:// URLs: the monitored master, and the sentinels' own connection
    # arguments (e.g. their password), as in Celery's transport options.
    master_name: str = "mymaster"
    sentinel_kwargs: dict[str, str | int | float | bool] | None = None
    discover_queues: bool = True
    discovery_interval_seconds: float = Field(30.0, gt=0)
    max_queues: int = Field(2000, ge=1)
    timeout_seconds: float = Field(1.0, gt=0, le=60)
    memory_sample_interval_seconds: float = Field(30.0, ge=0)
    # kombu's transport option: an `unacked` entry older than this is restored to its
    # queue by a running worker (restore_visible); with none running it stays stranded.
    visibility_timeout: float = Field(3600.0, gt=0)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        # The same reading the connection uses: Celery's meaning, kombu's parser.
        try:
            if is_amqp(v):
                parse_amqp_urls(v)
            else:
                parse_broker_url(v)
        except BrokerURLError as e:
            raise ValueError(str(e).removeprefix("URL: ")) from None
        return v

    def amqp_ssl(self) -> bool | dict[str, Any]:
        """kombu's `ssl` argument for this AMQP broker, as Celery builds it: False for
        amqp://, True for amqps:// (the system's CAs), py-amqp's options with use_ssl."""
        if not any(t.tls for t in parse_amqp_urls(self.url)):
            return False
        return self.use_ssl.py_amqp() if self.use_ssl is not None else True

    @property
    def kind(self) -> Literal["redis", "rabbitmq"]:
        """Which broker the URL names: the reader, the claim store and the alerts'
        words depend on it."""
        return "rabbitmq" if is_amqp(self.url) else "redis"

    def rabbitmq_problems(self) -> list[str]:
        """The RabbitMQ keys' problems, one line each naming its key (checked across the
        section, with the URL: Config._across_sections)."""
        if self.kind == "rabbitmq":
            try:
                management_target(self.url, self.management_url)
            except BrokerURLError as e:
                return [str(e)]  # names broker.management_url; never echoes it (a password)
            return []
        return [
            f"broker.{key}: only for a RabbitMQ broker (amqp://, amqps://); remove it, or "
            "point broker.url at RabbitMQ"
            for key in ("management_url", "use_ssl")
            if getattr(self, key) is not None
        ]

    @field_validator("sep")
    @classmethod
    def _sep(cls, v: str) -> str:
        if not v:
            raise ValueError('must not be empty (kombu\'s default is "\\x06\\x16")')
        return v

    @field_validator("master_name")
    @classmethod
    def _master(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must name the master the sentinels monitor, e.g. mymaster")
        return v

    @field_validator("sentinel_kwargs", mode="before")
    @classmethod
    def _sentinel_kwargs(cls, v: object) -> object:
        # Checked by hand so that no value (a password) is ever echoed in a problem.
        if v is None:
            return v
        if not isinstance(v, dict):
            raise ValueError(
                f"expected a mapping such as {{password: ...}}, got {type(v).__name__}"
            )
        for key, value in v.items():
            if key not in SENTINEL_KWARGS:
                known = ", ".join(SENTINEL_KWARGS)
                raise ValueError(f"unknown key {str(key)[:40]!r}; known: {known}")
            if not isinstance(value, str | int | float | bool):
                raise ValueError(f"{key}: expected a string, number or boolean")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{key}: must be a finite number (not .inf or .nan)")
        return v

    @field_validator("priority_steps")
    @classmethod
    def _steps(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v:
            raise ValueError("needs at least one step, e.g. [0, 3, 6, 9]")
        if list(v) != sorted(set(v)):
            raise ValueError("steps must be unique and ascending, e.g. [0, 3, 6, 9]")
        if v[0] != 0 or v[-1] > 255:
            raise ValueError(
                "steps must start at 0 and stay within 0..255 (kombu's default: [0, 3, 6, 9])"
            )
        return v
