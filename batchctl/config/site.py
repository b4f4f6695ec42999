"""The part of a site's config that the CLI needs on an engineer's machine.

With the claims in Kubernetes an engineer needs only a kubeconfig: `batchctl claim`,
`release`, `scale`, `status`, `history` and `plan` run without a config file by
taking the site's from the exporter, through the API server's service proxy (its
/api/v1/config, which serves `site_json`). That is the batches, the depth tiers, the
claims section, the prices (`cost:`), the global replica budget and where batchctl
runs, nothing else: no broker URL, no guard's query, nothing secret. `parse_site`
reads it back leniently: keys this version does not know (a newer exporter's) are
dropped, so a CLI a release behind still works.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args

from pydantic import BaseModel

from batchctl.config.load import parse_config
from batchctl.config.model import Config

# The sections served whole, and the keys served of the others.
WHOLE = ("batches", "thresholds", "claims", "other_queues", "cost")
KEYS = {
    "kubernetes": ("namespace", "exporter_service", "request_timeout_seconds"),
    # The global budget caps what `plan` and `claim --finish-by` may count on.
    "autoscaler": ("backend", "interval_seconds", "global_max_replicas"),
}


def site_json(cfg: Config) -> dict[str, Any]:
    """What /api/v1/config serves: the config's non-secret parts the CLI uses."""
    full = cfg.model_dump(mode="json")
    out: dict[str, Any] = {k: full[k] for k in WHOLE}
    for section, keys in KEYS.items():
        out[section] = {k: full[section][k] for k in keys}
    # The store is named even when it is the default: the CLI must not guess it.
    out["claims"]["store"] = cfg.claims.store
    return out


def _known(model: type[BaseModel], data: Any) -> Any:
    """`data` with the keys `model` does not know removed, recursively."""
    if not isinstance(data, Mapping):
        return data
    out = {}
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            continue
        out[key] = _prune(field.annotation, value)
    return out


def _prune(annotation: Any, value: Any) -> Any:
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            if isinstance(value, list):
                return [_known(candidate, v) for v in value]
            return _known(candidate, value)
        inner = get_args(candidate)
        model = next((a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if model is not None and isinstance(value, list):
            return [_known(model, v) for v in value]
    return value


def parse_site(data: Any, source: str = "the exporter's /api/v1/config") -> Config:
    """A Config from what `site_json` served (unknown keys dropped); raises ConfigError."""
    return parse_config(_known(Config, data), source, env={})


__all__ = ["parse_site", "site_json"]
