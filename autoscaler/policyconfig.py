"""The policy's settings from the config: what `autoscaler.policy.decide` reads, and no more.

The policy takes its own frozen records (`BatchPolicy` per batch, `PolicyConfig` with the
shared budget) so that importing it loads none of the config machinery (pydantic, YAML,
broker URL parsing). The loop, the simulator and the benchmarks build them here, once per
config.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from autoscaler.policy import BatchPolicy, PolicyConfig
from batchctl.config import BatchConfig, Config

# BatchPolicy's fields are named as the config's keys (batches[]): copied by name, but
# for those whose default depends on other sections (Config says what they come to).
_DERIVED = ("from_zero_interval_seconds",)
_FIELDS = tuple(f.name for f in fields(BatchPolicy) if f.name not in _DERIVED)


def batch_policy(batch: BatchConfig, cfg: Config | None = None) -> BatchPolicy:
    """What the policy reads of `batch` (batches[] in the config); `cfg`, the whole
    config, settles the keys whose default depends on another section (without it:
    the batch's own value, else the policy's default)."""
    given: dict[str, Any] = {name: getattr(batch, name) for name in _FIELDS}
    if cfg is not None:
        given["from_zero_interval_seconds"] = cfg.from_zero_interval_of(batch)
    elif batch.from_zero_interval_seconds is not None:
        given["from_zero_interval_seconds"] = batch.from_zero_interval_seconds
    return BatchPolicy(**given)


def policy_config(cfg: Config) -> PolicyConfig:
    """Every batch's `BatchPolicy` and `autoscaler.global_max_replicas`."""
    return PolicyConfig(
        batches=tuple(batch_policy(b, cfg) for b in cfg.batches),
        global_max_replicas=cfg.autoscaler.global_max_replicas,
    )
