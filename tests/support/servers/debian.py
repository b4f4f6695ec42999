"""Real servers for the broker tests: Debian's redis-server (built with TLS; also runs as
redis-sentinel), certificates made in the test, and listeners that never answer.

Debian ships the server binary in `redis-tools` as `redis-check-rdb` (redis-server
picks its role from the name it is started under), so it is linked into a temporary
directory as `redis-server` and `redis-sentinel`. scripts/ensure-tools.sh installs it.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.support.servers.redis import free_port
from tests.support.tools import require_tool


def debian_redis(bin_dir: Path) -> tuple[Path, Path]:
    """(redis-server, redis-sentinel) from Debian's redis-tools, linked into `bin_dir`."""
    binary = require_tool("redis-check-rdb")
    bin_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for name in ("redis-server", "redis-sentinel"):
        link = bin_dir / name
        if not link.exists():
            link.symlink_to(binary)
        out.append(link)
    return out[0], out[1]


@dataclass(frozen=True)
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_certs(directory: Path) -> Certs:
    """A CA, a server certificate for localhost/127.0.0.1 and a client certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return path

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("batchctl test CA"))
        .issuer_name(name("batchctl test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(
        cn: str, usage: x509.ObjectIdentifier
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        return cert, key

    def write_cert(cert: x509.Certificate, path: Path) -> Path:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    server, server_key = leaf("localhost", ExtendedKeyUsageOID.SERVER_AUTH)
    client, client_key = leaf("batchctl", ExtendedKeyUsageOID.CLIENT_AUTH)
    return Certs(
        ca=write_cert(ca, directory / "ca.pem"),
        server_cert=write_cert(server, directory / "server.pem"),
        server_key=write_key(server_key, directory / "server.key"),
        client_cert=write_cert(client, directory / "client.pem"),
        client_key=write_key(client_key, directory / "client.key"),
    )


class Proc:
    """A server process started with `args`, ready once `probe()` succeeds."""

    def __init__(self, args: Sequence[str | Path], probe: Callable[[], object], log: Path) -> None:
        self.args = [str(a) for a in args]
        self.probe = probe
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> Proc:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.probe()
                return self
            except (redis.RedisError, OSError) as e:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{self.args[0]} did not start: {e}; see {self.log}") from e
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def redis_args(
    server: Path, port: int, workdir: Path, *extra: str | Path, tls_port: int | None = None
) -> list[str | Path]:
    args: list[str | Path] = [
        server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no", "--dir", workdir, *extra,
    ]  # fmt: skip
    if tls_port is not None:
        args += ["--tls-port", str(tls_port)]
    return args


@contextmanager
def silent_listener(*, accept: bool = True) -> Iterator[int]:
    """A TCP port that accepts connections (or only queues them) and never answers:
    a half-open peer, or a TLS server whose handshake stalls."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def loop() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=loop, daemon=True)
    if accept:
        thread.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        stop.set()
        if accept:
            thread.join(5)
        for conn in held:
            conn.close()
        sock.close()


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    return free_port()
