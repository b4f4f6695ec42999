"""One JSON shape for a decision: /api/v1/decisions (batchctl.decisions, which the
exporter's status page reads) and `batchctl autoscaler --once -o json` print the same."""

from __future__ import annotations

import json

from autoscaler.policy import Action, Decision, Reason
from batchctl.cli.autoscaler import decisions_json
from batchctl.decisions import SELF, DecisionRecord, Decisions, decode_compact, encode_compact

DECIDED = [
    Decision("batch0", 3, 1, Reason.BACKLOG, Action.UP, "400 waiting"),
    Decision("batch1", 0, 0, Reason.STEADY, Action.NONE),
]


def test_the_cli_prints_what_the_endpoint_serves() -> None:
    served = Decisions(SELF, 99.0, "a", tuple(DecisionRecord.of(d) for d in DECIDED)).to_json()
    printed = decisions_json(DECIDED)
    assert printed == served["decisions"]
    assert printed[0] == {
        "queue": "batch0",
        "current": 1,
        "desired": 3,
        "action": "up",
        "reason": "backlog",
        "detail": "400 waiting",
    }
    # The status page's reader takes the CLI's document as it is.
    back = Decisions.from_json(json.loads(json.dumps({"source": SELF, "decisions": printed})))
    assert back.decisions == tuple(DecisionRecord.of(d) for d in DECIDED)


def test_the_lease_copy_keeps_the_same_records() -> None:
    records = tuple(DecisionRecord.of(d) for d in DECIDED)
    copy = decode_compact(encode_compact(99.0, "a", records))
    assert copy is not None and copy.decisions == records
