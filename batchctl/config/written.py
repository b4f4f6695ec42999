"""Passwords written in a config file, by key path, and the one the environment writes
in (pure).

`load` masks each of them from then on (logs, errors); `batchctl render k8s` refuses a
config that holds one, since it deploys the file as a ConfigMap in a committed overlay.
The sentinels' password comes instead from $BATCHCTL_SENTINEL_PASSWORD
(`with_sentinel_password`), as the broker URL from $BATCHCTL_BROKER_URL.
"""

from __future__ import annotations

from typing import Any

from batchctl.brokerparse import scheme_of, url_secrets
from batchctl.config.broker import BrokerConfig

# The sentinels' own password (Celery's sentinel_kwargs), from the environment: the base
# Deployment fills it from the Secret batchctl-broker, key sentinel_password (optional).
ENV_SENTINEL_PASSWORD = "BATCHCTL_SENTINEL_PASSWORD"

# How to keep each secret out of the file, with the Secret the Deployment reads ({secret}:
# the base's batchctl-broker, or the site's own, `render k8s --broker-secret`).
_COMMITTED_FIXES = {
    "broker.url": "write it without the password and put the full URL in the Secret "
    "{secret} (key {key}, read as BATCHCTL_BROKER_URL; docs/deploy.md)",
    "broker.management_url": "leave out its user:password@: the API is then read with "
    "the credentials of the broker URL in the Secret {secret}",
    "broker.sentinel_kwargs.password": "remove it and put the password in the Secret "
    f"{{secret}} (key sentinel_password, read as {ENV_SENTINEL_PASSWORD}; "
    "docs/deploy.md)",
}


def broker_secrets(broker: Any) -> dict[str, tuple[str, ...]]:
    """key path -> the passwords written there, of a `broker:` section as read from YAML
    (`broker.url`, `broker.management_url`, `broker.sentinel_kwargs.password`)."""
    out: dict[str, tuple[str, ...]] = {}
    if not isinstance(broker, dict):
        return out
    for key in ("url", "management_url"):
        url = broker.get(key)
        if isinstance(url, str) and url_secrets(url):
            out[f"broker.{key}"] = url_secrets(url)
    kwargs = broker.get("sentinel_kwargs")
    if isinstance(kwargs, dict):
        for k, v in kwargs.items():
            if "password" in str(k) and v:
                out[f"broker.sentinel_kwargs.{k}"] = (str(v),)
    return out


def committed_secrets(data: Any, secret: str = "batchctl-broker", key: str = "url") -> list[str]:
    """One line per key of the config file `data` (as read from YAML) whose password
    would be committed with it, naming the key and the fix (the Secret `secret`, the
    URL under `key`); never the password."""
    written = broker_secrets(data.get("broker") if isinstance(data, dict) else None)
    return [
        f"{path}: holds a password, which the overlay would commit and deploy in a ConfigMap; "
        + fix.format(secret=secret, key=key)
        for path, fix in _COMMITTED_FIXES.items()
        if path in written
    ]


def with_sentinel_password(
    data: dict[str, Any], password: str | None, warnings: list[str]
) -> dict[str, Any]:
    """`data` (a config file as read from YAML) with `password` ($BATCHCTL_SENTINEL_PASSWORD)
    as `broker.sentinel_kwargs.password`, over the file's, the other sentinel_kwargs kept,
    when broker.url is a sentinel:// URL. None or empty: `data` as it is (an optional key
    the Secret lacks leaves the variable unset). With any other URL it is unused, and
    said in `warnings`. A section or key of the wrong type is left for validation."""
    if not password:
        return data
    broker = data.get("broker") or {}
    if not isinstance(broker, dict):
        return data
    url = broker.get("url", BrokerConfig.model_fields["url"].default)
    if isinstance(url, str) and scheme_of(url) != "sentinel":
        warnings.append(
            f"{ENV_SENTINEL_PASSWORD}: set, but broker.url is not a sentinel:// URL: "
            "the sentinels' password is not used"
        )
        return data
    kwargs = broker.get("sentinel_kwargs") or {}
    if not isinstance(kwargs, dict):
        return data
    return {**data, "broker": {**broker, "sentinel_kwargs": {**kwargs, "password": password}}}
