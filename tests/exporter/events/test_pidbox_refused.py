"""A broker user that may not publish to Celery's pidbox (issue 19, least privilege).

The exporter reads as a real Redis ACL user without `+publish`; a real `celery worker -E`
(as the default user) consumes `batch1`. Celery's `active_queues` request and the
receiver's heartbeat broadcast are PUBLISHes to the `celery.pidbox` channel, so both are
refused: the events still flow (`celery_events_up` 1), the worker is counted under
`queue="unknown"` and never under `batch1` (no guess from its name or from the only
configured batch), and the refusal is logged once with `add +publish`, however often the
learner asks again.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog

from batchctl.config import parse_config
from exporter.events.model import UNKNOWN
from exporter.events.queues import pidbox_permission
from exporter.http.exposition import render_snapshot
from exporter.runtime import build_source
from tests.support.metrics import sample
from tests.support.servers.redis import EmbeddedRedis
from tests.support.waits import wait_for
from tests.support.workers import Worker, workers

QUEUE = "batch1"
NO_PUBLISH_ACL = ["~*", "&*", "+@all", "-publish"]


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_user_that_may_not_publish_to_the_pidbox_leaves_worker_queues_unknown(
    own_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    admin = own_redis.client()
    admin.execute_command("ACL", "SETUSER", "monitor", "on", ">monpw", *NO_PUBLISH_ACL)
    url = f"redis://monitor:monpw@127.0.0.1:{own_redis.port}/0"
    cfg = parse_config(
        {
            "broker": {"url": url},
            "kubernetes": {"enabled": False},
            "events": {"enabled": True, "control_timeout_seconds": 0.5},
            "exporter": {"autoscaler_url": None},
            "batches": [{"queue": QUEUE, "deployment": "celery-batch1"}],
        },
        env={},
    )
    with structlog.testing.capture_logs() as logs:
        source = build_source(cfg, background=False)
        try:
            consumer = source.live.consumer  # type: ignore[union-attr]
            learner = consumer.learner if consumer is not None else None
            assert learner is not None
            with workers(tmp_path) as started:
                started.append(
                    Worker(own_redis.url, QUEUE, "celery@batch1-7d9f8-x2x4q", tmp_path / "w.log")
                )

                def unknown_worker() -> bool:
                    text = render_snapshot(source.collect(), version="t", kubernetes_enabled=False)
                    return sample(text, "celery_queue_workers", {"queue": UNKNOWN}) == 1

                wait_for(unknown_worker, 60, 0.2, what="the worker counted under queue=unknown")
                # Asked again and again (1 s, 2 s ... apart), refused every time.
                wait_for(lambda: learner.requests >= 3, 30, what="three requests")
                text = render_snapshot(source.collect(), version="t", kubernetes_enabled=False)
        finally:
            source.stop()
    assert sample(text, "celery_events_up") == 1
    assert sample(text, "celery_broker_up") == 1
    assert sample(text, "celery_queue_workers", {"queue": UNKNOWN}) == 1
    assert sample(text, "celery_queue_workers", {"queue": QUEUE}) == 0
    said = [e for e in logs if str(e.get("command", "")).startswith("active_queues")]
    assert len(said) == 1, logs
    assert said[0]["user"] == "monitor"
    assert said[0]["fix"].startswith("add +publish ")
    assert "unknown" in said[0]["unknown"]
    assert "monpw" not in repr(logs)


def _noperm(text: str) -> Exception:
    """kombu's wrapping of redis-py's NOPERM error, as a refused PUBLISH raises it."""
    import kombu.exceptions
    import redis

    try:
        try:
            raise redis.exceptions.NoPermissionError(text)
        except redis.exceptions.NoPermissionError as e:
            raise kombu.exceptions.OperationalError(text) from e
    except kombu.exceptions.OperationalError as wrapped:
        return wrapped


@pytest.mark.parametrize(
    ("error", "permission"),
    [
        ("this user has no permissions to run the 'publish' command", "+publish"),
        (
            "this user has no permissions to access one of the channels used as arguments",
            "&app:/3.celery.pidbox",
        ),
        (
            "this user has no permissions to access one of the keys used as arguments",
            "~app:_kombu.binding.* ~app:*.reply.celery.pidbox",
        ),
    ],
)
def test_the_permission_to_add_names_what_redis_refused(error: str, permission: str) -> None:
    broker = parse_config(
        {"broker": {"url": "redis://u:p@h:6379/3", "global_keyprefix": "app:"}}, env={}
    ).broker
    assert pidbox_permission(_noperm(error), broker) == permission
    assert pidbox_permission(ConnectionError("Connection refused"), broker) is None
