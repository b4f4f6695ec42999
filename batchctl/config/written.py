"""Passwords written in a config file, by key path (pure).

`load` masks each of them from then on (logs, errors); `batchctl render k8s` refuses a
config that holds one, since it deploys the file as a ConfigMap in a committed overlay.
"""

from __future__ import annotations

from typing import Any

from batchctl.brokerparse import url_secrets

# How to keep each secret out of the file, with the Secret the base Deployment reads.
_COMMITTED_FIXES = {
    "broker.url": "write it without the password and put the full URL in the Secret "
    "batchctl-broker (key url, read as BATCHCTL_BROKER_URL; docs/deploy.md)",
    "broker.management_url": "leave out its user:password@: the API is then read with "
    "the credentials of the broker URL in the Secret batchctl-broker",
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


def committed_secrets(data: Any) -> list[str]:
    """One line per key of the config file `data` (as read from YAML) whose password
    would be committed with it, naming the key and the fix; never the password.
    `broker.sentinel_kwargs` is not refused: the base has no Secret for it yet."""
    written = broker_secrets(data.get("broker") if isinstance(data, dict) else None)
    return [
        f"{key}: holds a password, which the overlay would commit and deploy in a ConfigMap; {fix}"
        for key, fix in _COMMITTED_FIXES.items()
        if key in written
    ]
