"""Messages as kombu's Redis transport stores them in a queue's list."""

from __future__ import annotations

import json
import uuid


def envelope(queue: str, tag: str | None = None) -> bytes:
    """The smallest kombu envelope routed to `queue`: an empty body, a delivery tag."""
    props = {"delivery_info": {"exchange": "", "routing_key": queue}, "priority": 0}
    props["delivery_tag"] = tag or str(uuid.uuid4())
    return json.dumps({"body": "e30=", "headers": {"id": "x"}, "properties": props}).encode()
