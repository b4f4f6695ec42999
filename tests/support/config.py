"""Configs for the tests: a test's own Redis, no cluster, a few batches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from batchctl.config import Config, parse_config

TWO_BATCHES = ("batch0", "batch1")


def config_for(
    url: str,
    queues: Sequence[str] = TWO_BATCHES,
    *,
    broker: Mapping[str, object] | None = None,
    **sections: object,
) -> Config:
    """A config read from `url` with no Kubernetes: one batch per queue (its Deployment
    `celery-<queue>`), `broker` keys beside the URL, and whole `sections` (autoscaler,
    events, exporter...) as given. The environment is not read."""
    return parse_config(
        {
            "broker": {"url": url, **(broker or {})},
            "kubernetes": {"enabled": False},
            "batches": [{"queue": q, "deployment": f"celery-{q}"} for q in queues],
            **sections,
        },
        env={},
    )
