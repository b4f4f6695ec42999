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
  `master_name` is asked of each sentinel in turn; the master's password, user name
  and database come from the first URL, and from the next one if that fails (kombu's
  failover), as with a `;`-joined list of `redis://` URLs.

No redis-py here: the config schema uses this module, and the alert and dashboard
generators load the schema without any Redis client (see the import contracts).
`batchctl.brokerurl.connect` turns a `BrokerTarget` into a client.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
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


def _bare_user(segment: str) -> str:
    """The user of `redis://NAME@host` (a user and no password), else "". Almost always
    a password written without its ':' (kombu reads NAME as the user name): kept out of
    every log line and error like a password."""
    rest = segment.partition("://")[2]
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    userinfo, at, _ = netloc.rpartition("@")
    return userinfo if at and userinfo and ":" not in userinfo else ""


BARE_USER_NOTE = (
    "a user name without a password (redis://NAME@host): kombu reads NAME as the user, "
    "not as a password; if it is the password, put a ':' before it (NAME is shown as ***)"
)


def url_secrets(url: str) -> tuple[str, ...]:
    """Every password in `url` (each `;` part, and `ssl_password`), as written in the
    URL and percent-decoded, longest first."""
    out: set[str] = set()
    for seg in _segments(url):
        for _user, password in _userinfos(seg):
            if password:
                out.update((password, unquote(password)))
        bare = _bare_user(seg)
        if bare:
            out.update((bare, unquote(bare)))
        query = seg.partition("?")[2]
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key == "ssl_password" and value:
                out.update((value, unquote(value)))
        for raw in re.findall(r"ssl_password=([^&#;]*)", query):
            if raw:
                out.update((raw, unquote(raw)))
    return tuple(sorted((s for s in out if s), key=len, reverse=True))


def redact_url(url: str) -> str:
    """`url` with every password (of each `;` part, and `ssl_password`) shown as `***`,
    and a user without a password too (`redis://***@host`: see _bare_user)."""
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
        elif _bare_user(seg):
            scheme, sep, rest = seg.partition("://")
            seg = scheme + sep + "***" + rest[len(_bare_user(seg)) :]
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
    except TypeError:  # a query parameter that clashes with a part of the URL
        raise BrokerURLError(
            f"{where}: a URL parameter repeats a part of the URL (Celery refuses it too); "
            f"known parameters: {', '.join(SSL_PARAMS)}"
        ) from None
    # kombu's Connection accepts no other URL parameters than its own arguments.
    known = {"transport", "hostname", "port", "userid", "password", "virtual_host", "ssl"}
    unknown = sorted(set(parts) - known)
    if unknown:
        raise BrokerURLError(
            f"{where}: unknown URL parameter {unknown[0]!r} (Celery refuses it too); "
            f"known: {', '.join(SSL_PARAMS)}"
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
    if _bare_user(segment):
        notes.append(BARE_USER_NOTE)
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


def _sentinels(segments: list[str]) -> tuple[BrokerTarget, ...]:
    """One target per URL, each asking all the sentinels (kombu's
    `SentinelChannel._sentinel_managed_pool` takes the nodes from every alternate URL,
    the master's credentials and database from the URL it is connected with)."""
    nodes, parsed = [], []
    for i, seg in enumerate(segments):
        where = f"sentinel URL {i + 1}" if len(segments) > 1 else "sentinel URL"
        if scheme_of(seg) != "sentinel":
            raise BrokerURLError(
                f"{where}: expected sentinel://, got {scheme_of(seg) or 'no'} scheme; "
                "a ;-joined list holds sentinel:// URLs only, or redis:// URLs only"
            )
        _check_port(seg, where)
        parts = _kombu_parts(seg, where)
        nodes.append((parts.get("hostname") or "127.0.0.1", parts.get("port") or 26379))
        parsed.append((seg, where, parts))
    out = []
    for seg, where, parts in parsed:
        params: dict[str, Any] = {
            "db": _db(parts.get("virtual_host"), where),
            "username": parts.get("userid"),
            "password": parts.get("password"),
        }
        ssl_opts = _ssl_params(parts.get("ssl") or {}, where)
        params.update(ssl_opts)
        out.append(
            BrokerTarget(
                "sentinel",
                params,
                tls=bool(ssl_opts),
                sentinels=tuple(nodes),
                secrets=url_secrets(seg),
                notes=(BARE_USER_NOTE,) if _bare_user(seg) else (),
            )
        )
    return tuple(out)


def parse_broker_urls(url: str) -> tuple[BrokerTarget, ...]:
    """Every connection `url` describes, in order, with Celery's meaning: one, or a
    `;`-joined failover list (kombu tries the next URL when one fails). Raises
    BrokerURLError for a URL Celery would refuse (or batchctl cannot read)."""
    segments = _segments(url)
    if not segments:
        raise BrokerURLError("empty URL (e.g. redis://localhost:6379/0)")
    if scheme_of(segments[0]) == "sentinel":
        return _sentinels(segments)
    out = []
    for i, seg in enumerate(segments):
        where = f"URL {i + 1}" if len(segments) > 1 else "URL"
        scheme = scheme_of(seg)
        if scheme in ("redis", "rediss"):
            out.append(_tcp(seg, scheme, where))
        elif len(segments) > 1:
            raise BrokerURLError(
                f"{where}: a ;-joined list holds redis:// and rediss:// URLs only, "
                "or sentinel:// URLs only"
            )
        elif scheme == "redis+socket":
            out.append(_socket(seg, where))
        elif scheme == "unix":
            out.append(_unix(seg, where))
        else:
            raise BrokerURLError(
                "expected a redis://, rediss://, redis+socket://, unix:// or sentinel:// URL, "
                f"got scheme {scheme[:20]!r} (e.g. redis://localhost:6379/0)"
            )
    return tuple(out)


def parse_broker_url(url: str) -> BrokerTarget:
    """The first connection `url` describes (see `parse_broker_urls`), with the notes of
    all of them."""
    targets = parse_broker_urls(url)
    notes = tuple(dict.fromkeys(n for t in targets for n in t.notes))
    return replace(targets[0], notes=notes)
