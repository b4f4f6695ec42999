"""The policy's settings from the config: what `autoscaler.policy.decide` reads, and no more.

The policy takes its own frozen records (`BatchPolicy` per batch, `PolicyConfig` with the
shared budget) so that importing it loads none of the config machinery (pydantic, YAML,
broker URL parsing). The loop, the simulator and the benchmarks build them here, once per
config.
"""

from __future__ import annotations

from dataclasses import fields

from autoscaler.policy import BatchPolicy, PolicyConfig
from batchctl.config import BatchConfig, Config

# BatchPolicy's fields are named as the config's keys (batches[]): copied by name.
_FIELDS = tuple(f.name for f in fields(BatchPolicy))


def batch_policy(batch: BatchConfig) -> BatchPolicy:
    """What the policy reads of `batch` (batches[] in the config)."""
    return BatchPolicy(**{name: getattr(batch, name) for name in _FIELDS})


def policy_config(cfg: Config) -> PolicyConfig:
    """Every batch's `BatchPolicy` and `autoscaler.global_max_replicas`."""
    return PolicyConfig(
        batches=tuple(batch_policy(b) for b in cfg.batches),
        global_max_replicas=cfg.autoscaler.global_max_replicas,
    )
