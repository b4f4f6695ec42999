"""`batchctl demo --broker-url amqp://...`: the demo's story on a RabbitMQ it is given."""

from __future__ import annotations

import io

import pytest

from batchctl.demo.runner import DemoOptions, run_demo
from tests.support.servers.rabbitmq import RabbitVhost

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(200)]


def test_the_demo_runs_its_story_on_rabbitmq(rabbitmq: RabbitVhost) -> None:
    out = io.StringIO()
    summary = run_demo(
        DemoOptions(
            tasks=200,
            task_seconds=0.2,
            max_replicas=3,
            timeout_seconds=150,
            out=out,
            broker_url=rabbitmq.url,
            management_url=rabbitmq.management_url,
        ),
    )
    text = out.getvalue()
    assert summary.ok, text
    assert summary.completed == 200 and summary.lost == 0
    assert summary.peak_replicas >= 2, text
    assert summary.replicas_at_end == 0
    # The broker named without its password; the embedded Redis only counts task ids.
    assert f"broker           amqp://guest:***@127.0.0.1:{rabbitmq.node.amqp_port}/" in text
    assert "task records     redis://" in text
    assert rabbitmq.queue("batch1")["arguments"] == {"x-max-priority": 9}
