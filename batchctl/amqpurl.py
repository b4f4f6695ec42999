"""RabbitMQ broker URLs with the meaning Celery gives them (pure, no I/O).

Celery's AMQP URLs are read with kombu's own parser (`kombu.utils.url.parse_url`) and
kombu's defaults (`kombu.transport.pyamqp.Transport.default_connection_params`):

- `amqp://[user:password@]host[:port][/vhost]`, `pyamqp://` the same, `amqps://` the
  same over TLS (port 5671). kombu's defaults fill whatever the URL leaves out: host
  `localhost`, user `guest`, password `guest`, port 5672 (5671 with TLS). The virtual
  host is the URL's path, percent-decoded: `amqp://h//` and `amqp://h/%2F` are `/`, an
  empty path is `/` too.
- Several URLs joined with `;` are kombu's failover list: the first is used for the
  management API's default address and for the health check; Celery's own connection
  (the events) fails over as kombu does.
- TLS options are not URL parameters for AMQP (kombu hands `ssl_*` query parameters to
  py-amqp, which refuses them): Celery takes them from `broker_use_ssl`, batchctl from
  `broker.use_ssl` (batchctl/config/broker.py).

The management API (`broker.management_url`) defaults to the first URL's host on port
15672 (`http`), or 15671 (`https`) for `amqps://`, RabbitMQ's conventional ports, with
the AMQP URL's user and password unless the management URL names its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from kombu.utils.url import parse_url as kombu_parse_url

from batchctl.brokerparse import BrokerURLError, url_secrets

# Celery's spellings of a RabbitMQ broker (kombu.transport.TRANSPORT_ALIASES).
AMQP_SCHEMES = frozenset({"amqp", "amqps", "pyamqp"})
AMQP_PORT = 5672
AMQPS_PORT = 5671
MANAGEMENT_PORT = 15672
MANAGEMENT_TLS_PORT = 15671
# kombu's pyamqp defaults for a URL that names no user or host.
DEFAULT_USER = "guest"
DEFAULT_PASSWORD = "guest"
DEFAULT_HOST = "localhost"


@dataclass(frozen=True)
class AmqpTarget:
    """Where an AMQP URL points: host, port, credentials, virtual host, TLS."""

    host: str
    port: int
    user: str
    password: str
    vhost: str
    tls: bool

    @property
    def safe(self) -> str:
        """The URL without its password: `amqp://user@host:port/vhost`."""
        scheme = "amqps" if self.tls else "amqp"
        return f"{scheme}://{quote(self.user, safe='')}@{self.host}:{self.port}/" + quote(
            self.vhost, safe=""
        )


@dataclass(frozen=True)
class ManagementTarget:
    """The management HTTP API: its base URL (no credentials, no trailing slash), the
    credentials to send (basic auth) and whether it is HTTPS."""

    base: str
    user: str
    password: str

    @property
    def tls(self) -> bool:
        return self.base.startswith("https://")


def is_amqp(url: str) -> bool:
    """Whether `url` (or the first URL of a `;` list) is one of Celery's AMQP spellings."""
    head, sep, _ = url.strip().partition("://")
    return bool(sep) and head.lower() in AMQP_SCHEMES


def _segments(url: str) -> list[str]:
    return [s.strip() for s in url.split(";") if s.strip()]


def parse_amqp_urls(url: str) -> tuple[AmqpTarget, ...]:
    """Every broker `url` names, in order (one, or kombu's `;` failover list). Raises
    BrokerURLError (no password in its text) for a URL Celery would not use."""
    segments = _segments(url)
    if not segments:
        raise BrokerURLError("empty URL (e.g. amqp://user:password@rabbitmq:5672//)")
    return tuple(
        _parse_one(seg, f"URL {i + 1}" if len(segments) > 1 else "URL")
        for i, seg in enumerate(segments)
    )


def _parse_one(segment: str, where: str) -> AmqpTarget:
    scheme = segment.partition("://")[0].lower()
    if scheme not in AMQP_SCHEMES:
        raise BrokerURLError(
            f"{where}: a ;-joined list holds amqp://, amqps:// or pyamqp:// URLs only, "
            f"got {scheme[:20]!r}"
        )
    try:
        port = urlsplit(segment).port
    except ValueError:
        hint = "e.g. amqp://rabbitmq:5672//"
        if "@" in segment:
            hint += "; a password with '/', '?' or '#' must be percent-encoded (%2F, %3F, %23)"
        raise BrokerURLError(f"{where}: bad port ({hint})") from None
    try:
        parts = kombu_parse_url(segment)
    except (KeyError, ValueError, TypeError):
        raise BrokerURLError(f"{where}: cannot be parsed (e.g. amqp://rabbitmq:5672//)") from None
    extra = sorted(k for k, _ in parse_qsl(urlsplit(segment).query, keep_blank_values=True))
    if extra or any(k not in _KOMBU_PARTS for k in parts):
        extra = extra or sorted(k for k in parts if k not in _KOMBU_PARTS)
        raise BrokerURLError(
            f"{where}: unknown URL parameter {extra[0]!r}: AMQP takes no URL parameters; "
            "TLS options go in broker.use_ssl (Celery's broker_use_ssl)"
        )
    tls = scheme == "amqps"
    return AmqpTarget(
        host=parts.get("hostname") or DEFAULT_HOST,
        port=port or (AMQPS_PORT if tls else AMQP_PORT),
        user=parts.get("userid") or DEFAULT_USER,
        password=parts.get("password") or DEFAULT_PASSWORD,
        vhost=parts.get("virtual_host") or "/",
        tls=tls,
    )


_KOMBU_PARTS = frozenset({"transport", "hostname", "port", "userid", "password", "virtual_host"})


def management_target(broker_url: str, management_url: str | None) -> ManagementTarget:
    """The management API for the broker at `broker_url`: `management_url` when given
    (its own credentials, else the broker URL's), else the first broker URL's host on
    15672 (15671 over HTTPS for amqps://). Raises BrokerURLError naming
    `broker.management_url` for a URL that is not http(s)://host[:port][/path]."""
    first = parse_amqp_urls(broker_url)[0]
    if management_url is None:
        scheme, port = ("https", MANAGEMENT_TLS_PORT) if first.tls else ("http", MANAGEMENT_PORT)
        host = f"[{first.host}]" if ":" in first.host else first.host
        return ManagementTarget(f"{scheme}://{host}:{port}", first.user, first.password)
    return _management(management_url.strip(), first)


def _management(url: str, first: AmqpTarget) -> ManagementTarget:
    where = "broker.management_url"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise BrokerURLError(
            f"{where}: bad port (e.g. http://rabbitmq:15672); a password with '/', '?' or "
            "'#' must be percent-encoded"
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BrokerURLError(
            f"{where}: expected http://host:15672 or https://host:15671 (the RabbitMQ "
            "management plugin's address)"
        )
    if parts.query or parts.fragment:
        raise BrokerURLError(f"{where}: takes no query or fragment (e.g. http://rabbitmq:15672)")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = MANAGEMENT_TLS_PORT if parts.scheme == "https" else MANAGEMENT_PORT
    base = f"{parts.scheme}://{host}:{port or default}{parts.path.rstrip('/')}"
    if parts.username is not None:
        return ManagementTarget(base, unquote(parts.username), unquote(parts.password or ""))
    return ManagementTarget(base, first.user, first.password)


def amqp_secrets(broker_url: str, management_url: str | None) -> tuple[str, ...]:
    """Every password in the broker and management URLs, as written and decoded: kombu's
    default `guest` is no secret and is left out."""
    found = set(url_secrets(broker_url))
    if management_url:
        found.update(url_secrets(management_url))
    found.discard(DEFAULT_PASSWORD)
    return tuple(sorted(found, key=len, reverse=True))


__all__ = [
    "AMQP_SCHEMES",
    "AmqpTarget",
    "ManagementTarget",
    "amqp_secrets",
    "is_amqp",
    "management_target",
    "parse_amqp_urls",
]
