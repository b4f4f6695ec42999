"""The Kubernetes client plumbing every room shares: loading, errors, no tokens in text.

The official client provides kubeconfig and in-cluster loading, auth, TLS and the
connection pool; callers make plain `ApiClient.call_api` requests or use the generated
APIs. Errors are summarised from the exception type and the API's Status message, and
scrubbed of the bearer token anyway (it must never reach a log line or a page).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from batchctl.config import KubernetesConfig

IN_CLUSTER_ENV = "KUBERNETES_SERVICE_HOST"
_MAX_ERROR_CHARS = 400
_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s\"',;]+")


class KubeConfigError(Exception):
    """No usable cluster configuration: missing kubeconfig, unknown context, bad file."""


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without bearer tokens: known secrets and anything shaped `Bearer x`."""
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return _BEARER.sub(r"\1 ***", text)


def client_secrets(api_client: client.ApiClient) -> list[str]:
    """The token(s) in a client configuration, with and without the `Bearer ` prefix."""
    keys: Mapping[str, Any] = getattr(api_client.configuration, "api_key", None) or {}
    out = []
    for value in keys.values():
        if isinstance(value, str) and value:
            out.append(value)
            out.append(value.split(" ", 1)[-1])
    return out


def new_api_client(cfg: KubernetesConfig, env: Mapping[str, str] | None = None) -> client.ApiClient:
    """A client for `cfg`: in-cluster when running in a pod and no kubeconfig is given,
    otherwise the kubeconfig (cfg.kubeconfig, else $KUBECONFIG or ~/.kube/config) and
    cfg.context. Raises KubeConfigError with a message that quotes no file contents."""
    env = os.environ if env is None else env
    conf = client.Configuration()
    try:
        if cfg.kubeconfig is None and env.get(IN_CLUSTER_ENV):
            config.load_incluster_config(client_configuration=conf)
        else:
            config.load_kube_config(
                config_file=cfg.kubeconfig,
                context=cfg.context,
                client_configuration=conf,
                persist_config=False,
            )
    except Exception as e:  # any load failure is a config problem
        where = (
            "in-cluster service account"
            if cfg.kubeconfig is None and env.get(IN_CLUSTER_ENV)
            else f"kubeconfig {cfg.kubeconfig or '(default)'}"
            + (f", context {cfg.context}" if cfg.context else "")
        )
        raise KubeConfigError(f"cannot load the {where}: {_load_problem(e)}") from None
    # The callers retry with their own backoff; urllib3's silent retries would only
    # multiply the time a dead API server takes to show.
    conf.retries = 0
    # Idle watches otherwise die silently behind proxies and load balancers.
    conf.keep_alive = True
    return client.ApiClient(conf)


def _load_problem(exc: Exception) -> str:
    """One line on why a kubeconfig did not load, quoting none of it: PyYAML's messages
    end with the offending lines (a token, a key), so only its position is kept."""
    if isinstance(exc, yaml.YAMLError):
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return f"not valid YAML{where}: {getattr(exc, 'problem', None) or type(exc).__name__}"
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    if isinstance(exc, (AttributeError, TypeError, KeyError, IndexError)):
        # A structure the loader did not expect (a list, a string, a missing key).
        text = f"not a kubeconfig ({type(exc).__name__}: {text})"
    return scrub(text)[:300]


def describe_error(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """One short line for logs and the `kubernetes_error` field, free of tokens."""
    if isinstance(exc, ApiException):
        text = f"HTTP {exc.status}: {status_message(exc)}"
    elif isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        text = _describe_urllib3(exc.reason)
    elif isinstance(exc, urllib3.exceptions.HTTPError):
        text = _describe_urllib3(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    return scrub(text, secrets)[:_MAX_ERROR_CHARS]


def status_message(exc: ApiException) -> str:
    """The API's Status message of an error answer (else its HTTP reason)."""
    try:
        body = json.loads(exc.body) if exc.body else None
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(exc.reason or "").strip() or "no message"


def _describe_urllib3(exc: BaseException) -> str:
    text = str(exc)
    # "HTTPConnection(host='h', port=1): Failed to establish a new connection: [Errno 111] ..."
    marker = "Failed to establish a new connection: "
    if marker in text:
        text = "cannot connect: " + text.split(marker, 1)[1]
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        text = f"connection lost: {exc.args[0] if exc.args else text}"
    return f"{type(exc).__name__}: {text}"
