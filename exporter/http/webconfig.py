"""The exporter's own endpoints: TLS and basic auth from `--web.config.file`.

The file has the Prometheus exporter-toolkit format (the one node_exporter and
redis_exporter read), the parts batchctl supports:

    tls_server_config:
      cert_file: /etc/batchctl/tls.crt
      key_file: /etc/batchctl/tls.key
      client_auth_type: RequireAndVerifyClientCert   # or NoClientCert (default),
      client_ca_file: /etc/batchctl/ca.crt           #    VerifyClientCertIfGiven
      min_version: TLS12                             # TLS10 .. TLS13
    basic_auth_users:
      prometheus: $2y$10$...                         # bcrypt hashes (htpasswd -B)

Every problem is reported at once, one line each (exit 2). A password is checked
with bcrypt once; a match is remembered by its SHA-256 so scrapes do not pay bcrypt's
cost each time. Unknown users are checked against a dummy hash, so that the answer
takes as long for them. The TLS handshake runs in the request's own thread, with a
timeout, never in the accept loop.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import yaml

CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
TLS_KEYS = ("cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version")
HANDSHAKE_TIMEOUT = 10.0
_DUMMY = bcrypt.hashpw(b"batchctl-dummy", bcrypt.gensalt(rounds=10))


class WebConfigError(Exception):
    def __init__(self, problems: list[str], source: str) -> None:
        self.problems = problems
        self.source = source
        super().__init__(self.render())

    def render(self) -> str:
        if len(self.problems) == 1:
            return f"{self.source}: {self.problems[0]}"
        head = f"{self.source}: {len(self.problems)} problem(s)"
        return "\n".join([head, *(f"  - {p}" for p in self.problems)])


@dataclass
class WebConfig:
    context: ssl.SSLContext | None = None
    users: dict[str, bytes] = field(default_factory=dict)
    _ok: set[tuple[str, bytes]] = field(default_factory=set, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def scheme(self) -> str:
        return "https" if self.context is not None else "http"

    def wrap(self, sock: socket.socket) -> socket.socket:
        """The accepted connection, with TLS when configured (handshake done here)."""
        if self.context is None:
            return sock
        sock.settimeout(HANDSHAKE_TIMEOUT)
        return self.context.wrap_socket(sock, server_side=True)

    def authorized(self, header: str | None) -> bool:
        """Does an Authorization header name a user with the right password?"""
        if not self.users:
            return True
        scheme, _, encoded = (header or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        if not sep:
            return False
        digest = hashlib.sha256(password.encode()).digest()
        with self._lock:
            if (user, digest) in self._ok:
                return True
        hashed = self.users.get(user)
        ok = bcrypt.checkpw(password.encode(), hashed or _DUMMY) and hashed is not None
        if ok:
            with self._lock:
                if len(self._ok) > 1000:
                    self._ok.clear()
                self._ok.add((user, digest))
        return ok


def _file(base: Path, value: Any, key: str, problems: list[str]) -> Path | None:
    if not isinstance(value, str) or not value:
        problems.append(f"{key}: expected a file path")
        return None
    path = base / value
    if not path.is_file():
        problems.append(f"{key}: no such file: {value}")
        return None
    return path


def _tls(base: Path, data: Any, problems: list[str]) -> ssl.SSLContext | None:
    where = "tls_server_config"
    if not isinstance(data, dict):
        problems.append(f"{where}: expected a mapping with cert_file and key_file")
        return None
    for key in data:
        if key not in TLS_KEYS:
            problems.append(
                f"{where}.{key}: not supported by batchctl; known: {', '.join(TLS_KEYS)}"
            )
    cert = _file(base, data.get("cert_file"), f"{where}.cert_file", problems)
    key = _file(base, data.get("key_file"), f"{where}.key_file", problems)
    auth = data.get("client_auth_type", "NoClientCert")
    if auth not in CLIENT_AUTH:
        problems.append(f"{where}.client_auth_type: one of {', '.join(CLIENT_AUTH)}, got {auth!r}")
    ca = None
    if auth in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert"):
        ca = _file(base, data.get("client_ca_file"), f"{where}.client_ca_file", problems)
    version = data.get("min_version", "TLS12")
    if version not in VERSIONS:
        problems.append(f"{where}.min_version: one of {', '.join(VERSIONS)}, got {version!r}")
    if cert is None or key is None or problems:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = VERSIONS[version]
    try:
        ctx.load_cert_chain(cert, key)
        if ca is not None:
            ctx.load_verify_locations(ca)
    except (ssl.SSLError, OSError) as e:
        problems.append(f"{where}: cannot load the certificate or key: {e.strerror or e}")
        return None
    ctx.verify_mode = CLIENT_AUTH[auth]
    return ctx


def _users(data: Any, problems: list[str]) -> dict[str, bytes]:
    if not isinstance(data, dict):
        problems.append("basic_auth_users: expected a mapping of user name to bcrypt hash")
        return {}
    users = {}
    for user, hashed in data.items():
        # Never echo the hash: it is a secret too.
        if not isinstance(user, str) or not user or ":" in user:
            problems.append("basic_auth_users: a user name must be text without ':'")
        elif not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            problems.append(f"basic_auth_users.{user}: expected a bcrypt hash ($2y$...)")
        else:
            users[user] = hashed.encode()
    return users


def load_web_config(path: str | Path) -> WebConfig:
    """Read and check `--web.config.file`; WebConfigError lists every problem."""
    source = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8")
        data = yaml.safe_load(text)
    except OSError as e:
        raise WebConfigError([f"cannot read the file: {e.strerror}"], source) from None
    except UnicodeDecodeError:
        raise WebConfigError(["not UTF-8 text"], source) from None
    except yaml.YAMLError as e:
        raise WebConfigError(
            [f"not valid YAML: {getattr(e, 'problem', None) or e}"], source
        ) from None
    if data is None:
        return WebConfig()  # exporter-toolkit: an empty file means no TLS, no auth
    if not isinstance(data, dict):
        raise WebConfigError(["expected a mapping of keys"], source)
    problems: list[str] = []
    known = ("tls_server_config", "basic_auth_users")
    for key in data:
        if key not in known:
            problems.append(f"{key}: not supported by batchctl; known: {', '.join(known)}")
    base = Path(path).parent
    context = (
        _tls(base, data["tls_server_config"], problems) if "tls_server_config" in data else None
    )
    users = _users(data["basic_auth_users"], problems) if "basic_auth_users" in data else {}
    if problems:
        raise WebConfigError(problems, source)
    return WebConfig(context, users)
