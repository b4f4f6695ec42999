"""Broker URLs with the meaning Celery's Redis transport gives them (pure, no I/O).

Every form Celery and kombu accept for a Redis broker, read with kombu's own parser
(`kombu.utils.url.parse_url`) and turned into redis-py connection arguments the way
`kombu.transport.redis.Channel._connparams` does:

- `redis://[user:password@]host[:port][/db]`; `rediss://` is the same over TLS;
  `ssl_cert_reqs` (Celery's `CERT_REQUIRED` / `CERT_OPTIONAL` / `CERT_NONE` or the
  lowercase `required` / `optional` / `none`), `ssl_ca_certs`, `ssl_certfile`,
  `ssl_keyfile` and `ssl_check_hostname` as query parameters. As in kombu, a
  `rediss://` URL without `ssl_cert_reqs` does not verify the server's certificate,
  and any `ssl_*` parameter turns TLS on.
- `redis+socket:///path.sock[?virtual_host=N]` (kombu's Unix socket form) and
  redis-py's `unix://[user:password@]/path.sock[?db=N]`.
- `sentinel://[user:password@]host[:port][/db]`, several joined with `;`: the master
  `master_name` is asked of each sentinel in turn; like kombu, the master's
  password, user name and database come from the first URL.

No redis-py here: the config schema uses this module, and the alert and dashboard
generators load the schema without any Redis client (see the import contracts).
`batchctl.brokerurl.connect` turns a `BrokerTarget` into a client.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from kombu.utils.url import parse_url as kombu_parse_url
from kombu.utils.url import url_to_parts

DEFAULT_PORT = 6379
DEFAULT_SENTINEL_PORT = 26379

# The ssl_* query parameters redis-py's SSLConnection takes (kombu passes any ssl_*
# parameter through to it; an unknown one only fails when connecting).
SSL_PARAMS = (
    "ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_path", "ssl_certfile", "ssl_keyfile",
    "ssl_password", "ssl_check_hostname", "ssl_ciphers",
)  # fmt: skip
_CERT_REQS = "CERT_REQUIRED, CERT_OPTIONAL, CERT_NONE, required, optional or none"


class BrokerURLError(ValueError):
    """A URL Celery would not use (or that batchctl cannot). The text never holds a
    password: it names the part of the URL and the fix."""


@dataclass(frozen=True)
class BrokerTarget:
    """Where a broker URL points, as redis-py connection arguments (timeouts aside)."""

    kind: Literal["tcp", "unix", "sentinel"]
    # host/port or path, db, username, password and the ssl_* arguments.
    params: Mapping[str, Any]
    tls: bool = False
    # sentinel: the nodes, in the order given.
    sentinels: tuple[tuple[str, int], ...] = ()
    # Every password in the URL, as written and percent-decoded: for redaction.
    secrets: tuple[str, ...] = ()
    # Things worth a warning at start-up (kombu would do the same, quietly).
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def db(self) -> int:
        return int(self.params.get("db", 0))


def _segments(url: str) -> list[str]:
    return [s.strip() for s in url.split(";") if s.strip()]


def scheme_of(url: str) -> str:
    head, sep, _ = url.strip().partition("://")
    return head.lower() if sep else ""


def _userinfos(segment: str) -> list[tuple[str, str]]:
    """(user, password as written) of one URL: as urllib splits it (up to the last '@'
    of the host part) and, when different, up to the last '@' of the whole URL, so
    that an unencoded '/' or '?' in a password is still found. Empty without one."""
    rest = segment.partition("://")[2]
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    out = []
    for text in (netloc, rest):
        userinfo, at, _ = text.rpartition("@")
        if at and ":" in userinfo:
            user, _, password = userinfo.partition(":")
            if (user, password) not in out:
                out.append((user, password))
    return out


def url_secrets(url: str) -> tuple[str, ...]:
    """Every password in `url` (each `;` part, and `ssl_password`), as written in the
    URL and percent-decoded, longest first."""
    out: set[str] = set()
    for seg in _segments(url):
        for _user, password in _userinfos(seg):
            if password:
                out.update((password, unquote(password)))
        query = seg.partition("?")[2]
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key == "ssl_password" and value:
                out.update((value, unquote(value)))
        for raw in re.findall(r"ssl_password=([^&#;]*)", query):
            if raw:
                out.update((raw, unquote(raw)))
    return tuple(sorted((s for s in out if s), key=len, reverse=True))


def redact_url(url: str) -> str:
    """`url` with every password (of each `;` part, and `ssl_password`) shown as `***`."""
    parts = []
    for seg in url.split(";"):
        infos = _userinfos(seg)
        if infos:
            # The widest reading: everything between the user's ':' and the last '@'.
            user, password = infos[-1]
            if password:
                scheme, sep, rest = seg.partition("://")
                start = len(user) + 1
                seg = scheme + sep + rest[:start] + "***" + rest[start + len(password) :]
        seg = re.sub(r"(ssl_password=)[^&#;]*", r"\1***", seg)
        parts.append(seg)
    return ";".join(parts)


def _db(value: Any, where: str) -> int:
    # kombu's Channel._prepare_virtual_host: '', '/' and None are 0; else an integer.
    if value is None or value in ("", "/"):
        return 0
    text = str(value).removeprefix("/")
    if not text.isdigit():
        raise BrokerURLError(f"{where}: the database must be a number, got {text[:40]!r}")
    return int(text)


def _ssl_params(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in SSL_PARAMS:
            raise BrokerURLError(
                f"{where}: unknown TLS parameter {key!r}; known: {', '.join(SSL_PARAMS)}"
            )
        out[key] = value
    return out


def _kombu_parts(segment: str, where: str) -> dict[str, Any]:
    """kombu.utils.url.parse_url, with its exceptions turned into one clear line."""
    try:
        parts: dict[str, Any] = kombu_parse_url(segment)
    except KeyError:
        raise BrokerURLError(f"{where}: ssl_cert_reqs must be one of {_CERT_REQS}") from None
    except ValueError as e:  # e.g. a port that is not a number
        text = str(e) if "port" in str(e) else "cannot be parsed"
        raise BrokerURLError(f"{where}: {text}") from None
    # kombu's Connection accepts no other URL parameters than its own arguments.
    known = {"transport", "hostname", "port", "userid", "password", "virtual_host", "ssl"}
    unknown = sorted(set(parts) - known)
    if unknown:
        raise BrokerURLError(
            f"{where}: unknown URL parameter {unknown[0]!r} (Celery refuses it too); "
            f"known: virtual_host, {', '.join(SSL_PARAMS)}"
        )
    return parts


def _check_port(segment: str, where: str) -> None:
    try:
        urlsplit(segment).port  # noqa: B018 - raises on a bad port
    except ValueError:
        hint = "e.g. redis://localhost:6379/0"
        if "@" in segment:
            hint += "; a password with '/', '?' or '#' must be percent-encoded (%2F, %3F, %23)"
        raise BrokerURLError(f"{where}: bad port ({hint})") from None


def _tcp(segment: str, scheme: str, where: str) -> BrokerTarget:
    _check_port(segment, where)
    parts = _kombu_parts(segment, where)
    if not parts.get("hostname"):
        raise BrokerURLError(f"{where}: the URL has no host (e.g. redis://localhost:6379/0)")
    params: dict[str, Any] = {
        "host": parts["hostname"],
        "port": parts.get("port") or DEFAULT_PORT,
        "db": _db(parts.get("virtual_host"), where),
        "username": parts.get("userid"),
        "password": parts.get("password"),
    }
    ssl_opts = _ssl_params(parts.get("ssl") or {}, where)
    notes: list[str] = []
    tls = scheme == "rediss" or bool(ssl_opts)
    if scheme == "rediss" and not ssl_opts:
        # kombu.connection.Connection._init_params: "defaulting to insecure SSL behaviour".
        ssl_opts = {"ssl_cert_reqs": ssl.CERT_NONE}
        notes.append(
            "rediss:// without ssl_cert_reqs: the server's certificate is not verified "
            "(as in Celery); add ?ssl_cert_reqs=required&ssl_ca_certs=/path/ca.pem"
        )
    params.update(ssl_opts)
    return BrokerTarget("tcp", params, tls, secrets=url_secrets(segment), notes=tuple(notes))


def _socket(segment: str, where: str) -> BrokerTarget:
    # kombu: 'redis+socket://...' -> transport redis, host 'socket://...'; in
    # Channel._connparams the host is parsed again: path '/' + path, the query merged
    # into the connection arguments, the database from its `virtual_host`.
    inner = "socket://" + segment.partition("://")[2]
    _scheme, _host, _port, user, password, path, query = url_to_parts(inner)
    if not path:
        raise BrokerURLError(f"{where}: needs a socket path (e.g. redis+socket:///run/redis.sock)")
    notes = []
    extra = sorted(set(query) - {"virtual_host", "db"})
    if extra:
        raise BrokerURLError(
            f"{where}: unknown URL parameter {extra[0]!r}; redis+socket:// takes virtual_host"
        )
    if "db" in query:
        notes.append(
            "redis+socket:// ignores ?db= (kombu reads database "
            f"{_db(query.get('virtual_host'), where)}); write ?virtual_host=N instead"
        )
    params = {
        "path": "/" + path,
        "db": _db(query.get("virtual_host"), where),
        "username": user,
        "password": password,
    }
    return BrokerTarget("unix", params, secrets=url_secrets(segment), notes=tuple(notes))


def _unix(segment: str, where: str) -> BrokerTarget:
    # redis-py's form (redis.connection.parse_url); kombu has no `unix` transport.
    parts = urlsplit(segment)
    if not parts.path:
        raise BrokerURLError(f"{where}: needs a socket path (e.g. unix:///run/redis.sock)")
    query = dict(parse_qsl(parts.query))
    extra = sorted(set(query) - {"db"})
    if extra:
        raise BrokerURLError(f"{where}: unknown URL parameter {extra[0]!r}; unix:// takes db")
    try:
        db = int(query.get("db", 0))
    except ValueError:
        raise BrokerURLError(f"{where}: the database must be a number") from None
    params = {
        "path": unquote(parts.path),
        "db": db,
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
    }
    return BrokerTarget("unix", params, secrets=url_secrets(segment))


def _sentinel(segments: list[str]) -> BrokerTarget:
    nodes = []
    first: dict[str, Any] = {}
    notes = []
    for i, seg in enumerate(segments):
        where = f"sentinel URL {i + 1}" if len(segments) > 1 else "sentinel URL"
        if scheme_of(seg) != "sentinel":
            raise BrokerURLError(
                f"{where}: expected sentinel://, got {scheme_of(seg) or 'no'} scheme; "
                "only sentinel:// URLs may be joined with ';'"
            )
        _check_port(seg, where)
        parts = _kombu_parts(seg, where)
        nodes.append((parts.get("hostname") or "127.0.0.1", parts.get("port") or 26379))
        _db(parts.get("virtual_host"), where)  # kombu checks only the first; we check all
        if i == 0:
            first = parts
        elif parts.get("password") not in (None, first.get("password")):
            notes.append(
                "sentinel://: only the first URL's password is used for the master "
                "(as kombu does); the sentinels' own password goes in broker.sentinel_kwargs"
            )
    params: dict[str, Any] = {
        "db": _db(first.get("virtual_host"), "sentinel URL"),
        "username": first.get("userid"),
        "password": first.get("password"),
    }
    ssl_opts = _ssl_params(first.get("ssl") or {}, "sentinel URL")
    params.update(ssl_opts)
    secrets = url_secrets(";".join(segments))
    return BrokerTarget(
        "sentinel",
        params,
        tls=bool(ssl_opts),
        sentinels=tuple(nodes),
        secrets=secrets,
        notes=tuple(dict.fromkeys(notes)),
    )


def parse_broker_url(url: str) -> BrokerTarget:
    """The connection `url` describes, with Celery's meaning; BrokerURLError otherwise."""
    segments = _segments(url)
    if not segments:
        raise BrokerURLError("empty URL (e.g. redis://localhost:6379/0)")
    scheme = scheme_of(segments[0])
    if scheme == "sentinel":
        return _sentinel(segments)
    if len(segments) > 1:
        raise BrokerURLError(
            "only sentinel:// URLs may be joined with ';' (give the one Redis to read)"
        )
    seg = segments[0]
    if scheme in ("redis", "rediss"):
        return _tcp(seg, scheme, "URL")
    if scheme == "redis+socket":
        return _socket(seg, "URL")
    if scheme == "unix":
        return _unix(seg, "URL")
    raise BrokerURLError(
        "expected a redis://, rediss://, redis+socket://, unix:// or sentinel:// URL, "
        f"got scheme {scheme[:20]!r} (e.g. redis://localhost:6379/0)"
    )
