"""RabbitMQ's management HTTP API, read-only: GET requests with basic auth, bounded in time.

One persistent connection (urllib3, keep-alive) to `broker.management_url`; every
request's connect and read are bounded by `broker.timeout_seconds`, with no retries
(the snapshot source bounds the whole read as well, exporter/collect.py). Listings of
queues are paginated as the API asks for more than one page (`page`, `page_size`, at
most 500 per page; the answer is then `{items, page_count, ...}`), and trimmed to the
`columns` asked for, so one collection of a vhost with up to 500 queues is one request.

Failures are the protocol's error kinds (exporter/broker/protocol.py), each naming the
API's address (without credentials) and the fix:

- BrokerUnavailable: no connection, a timeout (a TLS handshake that stalls included),
  or the API answering 5xx (a node still booting).
- BrokerRefused: 401 "Login failed" (user or password), other 401s and 403s (the user
  lacks the `monitoring` tag, or the vhost's permissions), 404 for the vhost (it does
  not exist),
  a certificate the CA file does not vouch for.
- BrokerFault: anything else, e.g. an answer that is not the API's JSON.

Nothing here writes: the only method is GET.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import urllib3
from urllib3.exceptions import HTTPError, SSLError

from batchctl.amqpurl import ManagementTarget
from batchctl.config.broker import UseSSL
from exporter.broker.protocol import BrokerFault, BrokerRefused, BrokerUnavailable

# The management API refuses larger pages (400 invalid_pagination_parameters).
PAGE_SIZE = 500


class Forbidden(BrokerRefused):
    """403: the user may not read this path (a tag or a permission it lacks)."""


class Management:
    """GETs on one management API; not thread-safe (one read at a time, as the
    snapshot source guarantees)."""

    def __init__(
        self, target: ManagementTarget, timeout: float, use_ssl: UseSSL | None = None
    ) -> None:
        self.target = target
        self.timeout = timeout
        headers = urllib3.make_headers(
            basic_auth=f"{target.user}:{target.password}", keep_alive=True
        )
        headers["Accept"] = "application/json"
        tls: dict[str, Any] = {}
        if target.tls:
            opts = use_ssl or UseSSL()
            tls["cert_reqs"] = "CERT_REQUIRED" if opts.verify else "CERT_NONE"
            tls["assert_hostname"] = None if opts.verify else False
            if opts.ca_certs:
                tls["ca_certs"] = opts.ca_certs
            if opts.certfile:
                tls["cert_file"] = opts.certfile
                tls["key_file"] = opts.keyfile
        # One connection, kept alive: a collection costs a request, not a handshake.
        self.pool = urllib3.connection_from_url(
            target.base,
            maxsize=1,
            headers=headers,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            retries=False,
            **tls,
        )
        self.prefix = urllib3.util.parse_url(target.base).path or ""
        self.requests = 0  # sent, for tests and benchmarks

    @property
    def where(self) -> str:
        return f"the RabbitMQ management API at {self.target.base}"

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        """The JSON answer to GET `path` (under /api/...). Raises the protocol's errors."""
        url = self.prefix + path + ("?" + urlencode(params) if params else "")
        try:
            response = self.pool.request("GET", url, preload_content=True)
        except SSLError as e:
            if _verify_failed(e):
                raise BrokerRefused(
                    f"{self.where} presented a certificate that is not trusted ({_reason(e)}): "
                    "set broker.use_ssl.ca_certs to the CA that signed it"
                ) from None
            raise BrokerUnavailable(f"cannot reach {self.where}: TLS: {_reason(e)}") from None
        except (HTTPError, OSError) as e:
            raise BrokerUnavailable(f"cannot reach {self.where}: {_reason(e)}") from None
        finally:
            self.requests += 1
        status = response.status
        if status == 200:
            try:
                return json.loads(response.data)
            except ValueError:
                raise BrokerFault(
                    f"{self.where} answered {path} with something that is not JSON: is "
                    "broker.management_url the management plugin's address?"
                ) from None
        raise self._refusal(status, path, response.data)

    def _refusal(self, status: int, path: str, body: bytes) -> Exception:
        reason = _api_reason(body)
        if status == 401 and "login failed" in reason.lower():
            return BrokerRefused(
                f"{self.where} refused the user or password ({reason}): fix them in "
                "broker.url, or in broker.management_url when it names its own"
            )
        if status in (401, 403):  # RabbitMQ answers 401 to a user it knows but refuses, too
            return Forbidden(
                f"{self.where} refused {path.split('?')[0]} ({reason}): give the user the "
                "`monitoring` tag (rabbitmqctl set_user_tags USER monitoring) and read "
                "permissions on the virtual host"
            )
        if status == 404:
            return BrokerRefused(
                f"{self.where} has no {path.split('?')[0]} ({reason}): does the virtual host "
                "exist? It is broker.url's path (amqp://host:5672// is '/', %2F-encoded)"
            )
        if status >= 500:
            return BrokerUnavailable(f"{self.where} answered {status} ({reason})")
        return BrokerFault(f"{self.where} answered {status} to {path} ({reason})")

    def pages(self, path: str, columns: Sequence[str]) -> Iterator[list[dict[str, Any]]]:
        """The items of a paginated listing, one page at a time (`PAGE_SIZE` each), with
        only `columns`. Raises the protocol's errors; BrokerFault for an unexpected shape."""
        page, count = 1, 1
        while page <= count:
            params = {"page": str(page), "page_size": str(PAGE_SIZE), "columns": ",".join(columns)}
            answer = self.get(path, params)
            if not isinstance(answer, dict) or not isinstance(answer.get("items"), list):
                raise BrokerFault(f"{self.where} answered {path} without a page of items")
            yield answer["items"]
            count = int(answer.get("page_count") or 1)
            page += 1

    def close(self) -> None:
        self.pool.close()


def vhost_path(vhost: str) -> str:
    """A vhost as one path segment: `/` is %2F."""
    return quote(vhost, safe="")


def _verify_failed(e: BaseException) -> bool:
    while e is not None:
        if isinstance(e, ssl.SSLCertVerificationError):
            return True
        e = e.__cause__ or e.__context__  # type: ignore[assignment]
    return "CERTIFICATE_VERIFY_FAILED" in str(e)


def _reason(e: BaseException) -> str:
    """The innermost cause's text, without urllib3's pool repr (host and port only)."""
    reason = getattr(e, "reason", None)
    inner = reason if isinstance(reason, BaseException) else e
    text = str(inner)
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return "timed out"
    return f"{type(inner).__name__}: {text}"[:300]


def _api_reason(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return "no reason given"
    if isinstance(doc, dict):
        return str(doc.get("reason") or doc.get("error") or "no reason given")[:200]
    return "no reason given"
