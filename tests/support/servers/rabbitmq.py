"""Real RabbitMQ for the tests: Debian's rabbitmq-server, a node of the test run's own.

`RabbitNode` starts a node on loopback with its own node name, ports, data directory,
Erlang cookie and epmd (the Erlang port mapper, started here on a port of its own and
bound to 127.0.0.1, so that no shared daemon is left behind), the distribution port
bound to 127.0.0.1 too, and the management plugin enabled from its own
enabled_plugins file. It boots in 6-15 s; `stop()` ends it by PID (SIGTERM to the
server script, which stops the Erlang VM gracefully), then its epmd. Statistics are
refreshed every second (collect_statistics_interval) instead of five, so that tests
await fresh figures sooner.

`RabbitVhost` is one test's own virtual host on the session's node (the fixtures are
in tests/conftest.py): created empty, deleted with every queue in it afterwards, with
a monitoring user of its own whose password is a secret the tests look for in output.
scripts/ensure-tools.sh installs the package.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil
import urllib3

from tests.support.servers.redis import free_port
from tests.support.tools import require_tool

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # the script Debian's wrapper runs
CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"
ADMIN = ("guest", "guest")  # the default user: allowed from loopback only
_names = itertools.count()


class RabbitNode:
    """A rabbitmq-server node of our own on loopback (AMQP, management, distribution)."""

    def __init__(self, workdir: Path, extra_conf: str = "") -> None:
        if not os.access(SERVER, os.X_OK):  # /usr/sbin may not be on PATH: look for it
            require_tool("rabbitmq-server")  # Debian's package: scripts/ensure-tools.sh
        self.workdir = workdir
        self.extra_conf = extra_conf  # more rabbitmq.conf lines
        self.name = f"batchctl-test-{os.getpid()}-{next(_names)}@localhost"
        self.amqp_port = free_port()
        self.management_port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.server: subprocess.Popen[bytes] | None = None
        self.epmd: subprocess.Popen[bytes] | None = None
        self.http = urllib3.PoolManager(
            headers=urllib3.make_headers(basic_auth=":".join(ADMIN)),
            timeout=urllib3.Timeout(connect=2, read=10),
            retries=False,
        )

    # -- addresses --------------------------------------------------------------------

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"

    def url(self, vhost: str = "/", user: str = ADMIN[0], password: str = ADMIN[1]) -> str:
        return (
            f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:"
            f"{self.amqp_port}/{quote(vhost, safe='')}"
        )

    # -- life -------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        base = self.workdir
        return {
            **os.environ,
            "HOME": str(base),  # its own Erlang cookie
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(base / "plugins-expand"),
            "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_EPMD_PORT": str(self.epmd_port),
            # Else the distribution port listens on every interface.
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def start(self, timeout: float = 90.0) -> RabbitNode:
        base = self.workdir
        base.mkdir(parents=True, exist_ok=True)
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.amqp_port}\n"
            "management.tcp.ip = 127.0.0.1\n"
            f"management.tcp.port = {self.management_port}\n"
            "collect_statistics_interval = 1000\n"
            "log.console = false\n" + self.extra_conf
        )
        (base / "enabled_plugins").write_text("[rabbitmq_management].\n")
        cookie = base / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(f"batchctltest{os.getpid()}{time.time_ns()}")
            cookie.chmod(0o400)
        env = self._env()
        if self.epmd is None or self.epmd.poll() is not None:
            epmd = require_tool("epmd")
            with (base / "epmd.log").open("ab") as out:
                self.epmd = subprocess.Popen(
                    [epmd, "-port", str(self.epmd_port), "-address", "127.0.0.1"],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                )
        with (base / "server.log").open("ab") as out:
            self.server = subprocess.Popen(
                [SERVER], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.server.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited; see {base / 'server.log'}")
            with contextlib.suppress(urllib3.exceptions.HTTPError, OSError):
                r = self.http.request("GET", f"{self.management_url}/api/overview")
                if r.status == 200:
                    return self
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"rabbitmq-server did not start in {timeout:g}s; see {base}")
            time.sleep(0.2)

    def stop(self, *, kill: bool = False) -> None:
        """Stop the node by PID (SIGTERM: a graceful stop; `kill`: SIGKILL the Erlang VM,
        a crash), leaving epmd running for a restart."""
        proc = self.server
        if proc is None or proc.poll() is not None:
            return
        if kill:
            for child in psutil.Process(proc.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    child.send_signal(signal.SIGKILL)
            proc.kill()
        else:
            proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def close(self) -> None:
        """Stop the node and its epmd."""
        self.stop()
        if self.epmd is not None and self.epmd.poll() is None:
            self.epmd.terminate()
            self.epmd.wait(timeout=10)
        self.http.clear()

    def ctl(self, *args: str) -> str:
        """rabbitmqctl against this node (its cookie, epmd and name); raises on failure."""
        done = subprocess.run(
            [CTL, "-n", self.name, *args],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stderr or done.stdout}")
        return done.stdout

    def __enter__(self) -> RabbitNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the management API, as the administrator -------------------------------------

    def api(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = ()) -> Any:
        """One request as guest; raises unless the status is 2xx or in `ok`."""
        r = self.http.request(
            method,
            f"{self.management_url}{path}",
            json=body,
            headers={**self.http.headers, "content-type": "application/json"},
        )
        if not (200 <= r.status < 300 or r.status in ok):
            raise RuntimeError(f"{method} {path}: {r.status} {r.data[:300]!r}")
        return r.json() if r.data else None

    def add_vhost(self, vhost: str) -> None:
        v = quote(vhost, safe="")
        self.api("PUT", f"/api/vhosts/{v}")
        self.api("PUT", f"/api/permissions/{v}/{ADMIN[0]}", _ALL)

    def delete_vhost(self, vhost: str) -> None:
        self.api("DELETE", f"/api/vhosts/{quote(vhost, safe='')}", ok=(404,))

    def add_user(
        self, user: str, password: str, tags: str, vhost: str, perms: dict[str, str]
    ) -> None:
        self.api("PUT", f"/api/users/{quote(user, safe='')}", {"password": password, "tags": tags})
        self.api("PUT", f"/api/permissions/{quote(vhost, safe='')}/{quote(user, safe='')}", perms)

    def delete_user(self, user: str) -> None:
        self.api("DELETE", f"/api/users/{quote(user, safe='')}", ok=(404,))

    def queue(self, vhost: str, name: str) -> dict[str, Any]:
        """One queue as the management API shows it (every column)."""
        return dict(self.api("GET", f"/api/queues/{quote(vhost, safe='')}/{quote(name, safe='')}"))


_ALL = {"configure": ".*", "write": ".*", "read": ".*"}
# What batchctl's monitoring user needs on its vhost, as docs/operations.md says: the
# management API reads with the `monitoring` tag alone; Celery's event receiver declares
# the `celeryev` exchange and its own `celeryev.<uuid>` queue, and asks the workers for
# a heartbeat through the `celery.pidbox` exchange; each worker's queues are asked the same
# way (`active_queues`), the replies coming back through `reply.celery.pidbox` to a queue
# of the asker's own (`<oid>.reply.celery.pidbox`). Nothing else: no task queue.
MONITOR_PERMISSIONS = {
    "configure": (
        r"^(celeryev|celeryev\..+|celery\.pidbox|reply\.celery\.pidbox|.+\.reply\.celery\.pidbox)$"
    ),
    "write": r"^(celeryev\..+|celery\.pidbox|.+\.reply\.celery\.pidbox)$",
    "read": r"^(celeryev|celeryev\..+|reply\.celery\.pidbox|.+\.reply\.celery\.pidbox)$",
}


@dataclass(frozen=True)
class RabbitVhost:
    """One test's own virtual host on the session's node, and its users' URLs."""

    node: RabbitNode
    vhost: str
    monitor_user: str
    monitor_password: str

    @property
    def url(self) -> str:
        """The administrator's (guest's) AMQP URL: for producers, workers and set-up."""
        return self.node.url(self.vhost)

    @property
    def monitor_url(self) -> str:
        """The monitoring user's AMQP URL: what batchctl is given."""
        return self.node.url(self.vhost, self.monitor_user, self.monitor_password)

    @property
    def management_url(self) -> str:
        return self.node.management_url

    def queue(self, name: str) -> dict[str, Any]:
        return self.node.queue(self.vhost, name)

    def broker(self, **keys: object) -> dict[str, object]:
        """The `broker:` section batchctl is given: the monitoring user's URL and the
        management API's address, and `keys`."""
        return {"url": self.monitor_url, "management_url": self.management_url, **keys}


def new_vhost(node: RabbitNode) -> RabbitVhost:
    """A fresh vhost with a monitoring user (the `monitoring` tag, MONITOR_PERMISSIONS)."""
    n = next(_names)
    vhost = f"test-{os.getpid()}-{n}"
    node.add_vhost(vhost)
    user, password = f"monitor-{n}", f"mon-Pw-{os.getpid()}-{n}-s3cret"
    node.add_user(user, password, "monitoring", vhost, MONITOR_PERMISSIONS)
    return RabbitVhost(node, vhost, user, password)


def drop_vhost(v: RabbitVhost) -> None:
    v.node.delete_vhost(v.vhost)
    v.node.delete_user(v.monitor_user)
