"""The `broker:` section: where Celery's broker is and how kombu lays it out.

Names are kombu's and Celery's (`sep`, `priority_steps`, `global_keyprefix`,
`master_name`, `sentinel_kwargs`); URL forms are checked with kombu's own parser
(batchctl/brokerparse.py).
"""

from __future__ import annotations

import math

from pydantic import Field, field_validator

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


class BrokerConfig(_Strict):
    url: str = "redis://localhost:6379/0"
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
            parse_broker_url(v)
        except BrokerURLError as e:
            raise ValueError(str(e).removeprefix("URL: ")) from None
        return v

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
