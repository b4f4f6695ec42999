"""kombu's key naming on Redis: priority lists, binding members, Celery's own queues.

Pure: how kombu's Redis transport names what it keeps (kombu/transport/redis.py,
`Channel._q_for_pri`, `_queue_bind`, `get_table`), so the reader, the demo and the tests
build the same keys kombu does. The separator and the priority steps are the broker
options `broker.sep` and `broker.priority_steps`; `global_keyprefix` comes first.
"""

from __future__ import annotations

from typing import AnyStr

# kombu's default separator between a queue name and its priority step, and between
# the parts of a binding member (kombu.transport.redis.Channel.sep; `broker.sep`).
PRIORITY_SEP = "\x06\x16"


def priority_list_name(queue: str, step: int, prefix: str = "", sep: str = PRIORITY_SEP) -> str:
    """The Redis key of `queue`'s list for priority `step` (step 0 is the bare name),
    as kombu's `Channel._q_for_pri` names it."""
    return f"{prefix}{queue}{sep}{step}" if step else f"{prefix}{queue}"


def list_key(raw_queue: bytes, step: int, prefix: bytes = b"", sep: bytes = b"\x06\x16") -> bytes:
    """`priority_list_name` on the queue's raw bytes (names need not be UTF-8)."""
    return b"%s%s%s%d" % (prefix, raw_queue, sep, step) if step else prefix + raw_queue


def parse_binding(member: AnyStr, sep: AnyStr) -> tuple[AnyStr, AnyStr, AnyStr] | None:
    """A `_kombu.binding.<exchange>` member -> (routing_key, pattern, queue).

    kombu joins the three with `sep` and splits them the same way
    (`Channel._queue_bind`, `get_table`): any other number of parts is not a binding
    kombu itself could route by.
    """
    parts = member.split(sep)
    if len(parts) != 3 or not parts[2]:
        return None
    return parts[0], parts[1], parts[2]


# Celery's own plumbing: broadcast (fanout, pub/sub) and reply queues, not task queues.
_INTERNAL_EXCHANGES = ("celery.pidbox", "reply.celery.pidbox", "celeryev")


def is_task_queue(exchange: str, queue: str) -> bool:
    if exchange in _INTERNAL_EXCHANGES:
        return False
    return not (queue.endswith(".pidbox") or queue.startswith("celeryev."))
