"""The claim rules as tables: every way a claim can change, and every refusal (pure)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from batchctl.claims import (
    KINDS,
    Claim,
    ClaimConflict,
    ClaimEvent,
    ClaimRefused,
    Override,
    Refused,
    Work,
    WorkLeft,
    decide_claim,
    decide_release,
    last_per_batch,
)
from batchctl.claims.rules import check_ttl, decide_drain_end, decide_expiry_note, decide_override
from tests.support.claims import HOUR, NOW, claim

DAY = 86400.0
MAX = 7 * DAY


LIVE = claim()
EXPIRED = claim(expires=NOW - 2 * HOUR)
DRAINING = claim(draining_since=NOW - 60)
SCALED = claim(override=Override(3, NOW + 600, "alice", "", NOW - 60))

# -- claim ---------------------------------------------------------------------------

# name: (existing, holder, purpose, contact, ttl,
#        want: (event kind, holder, purpose, contact, since, expires, detail part) or error)
CLAIM_CASES: dict[str, tuple[Any, ...]] = {
    "free batch": (None, "bob", "dedupe", None, HOUR, ("claimed", "bob", "dedupe", "", NOW)),
    "purpose is stripped": (None, "bob", "  dedupe ", None, HOUR, ("claimed", "bob", "dedupe")),
    "new claim without purpose": (None, "bob", None, None, HOUR, ClaimRefused),
    "new claim with a blank purpose": (None, "bob", "   ", None, HOUR, ClaimRefused),
    "a purpose of two lines": (None, "bob", "a\nb", None, HOUR, ClaimRefused),
    "a contact of two lines": (None, "bob", "p", "a\nb", HOUR, ClaimRefused),
    "ttl above claims.max_ttl": (None, "bob", "p", None, MAX + 1, ClaimRefused),
    "ttl exactly claims.max_ttl": (None, "bob", "p", None, MAX, ("claimed", "bob", "p")),
    "ttl zero": (None, "bob", "p", None, 0, ClaimRefused),
    "holder with spaces around": (None, " bob", "p", None, HOUR, ClaimRefused),
    "empty holder": (None, "", "p", None, HOUR, ClaimRefused),
    # A holder is a user name (a Prometheus label value, a table column); a purpose or
    # contact is one line of at most 200 printable characters.
    "holder of 64 characters": (None, "b" * 64, "p", None, HOUR, ("claimed", "b" * 64, "p")),
    "holder of 65 characters": (None, "b" * 65, "p", None, HOUR, ClaimRefused),
    "holder of 3000 characters": (None, "b" * 3000, "p", None, HOUR, ClaimRefused),
    "holder with a space inside": (None, "bob smith", "p", None, HOUR, ClaimRefused),
    "holder with a tab": (None, "bob\tx", "p", None, HOUR, ClaimRefused),
    "holder with an escape sequence": (None, "bob\x1b[2J", "p", None, HOUR, ClaimRefused),
    "non-ASCII holder": (None, "zoë", "p", None, HOUR, ("claimed", "zoë", "p")),
    "purpose of 200 characters": (
        None,
        "bob",
        "p" * 200,
        None,
        HOUR,
        ("claimed", "bob", "p" * 200),
    ),
    "purpose of 201 characters": (None, "bob", "p" * 201, None, HOUR, ClaimRefused),
    "purpose with a tab": (None, "bob", "a\tb", None, HOUR, ClaimRefused),
    "purpose with a carriage return": (None, "bob", "a\rb", None, HOUR, ClaimRefused),
    "purpose with an escape sequence": (None, "bob", "\x1b]0;x\x07", None, HOUR, ClaimRefused),
    "non-ASCII purpose": (None, "bob", "café ☕", None, HOUR, ("claimed", "bob", "café ☕")),
    "contact of 201 characters": (None, "bob", "p", "c" * 201, HOUR, ClaimRefused),
    "contact with a tab": (None, "bob", "p", "#a\tb", HOUR, ClaimRefused),
    "renewal with a purpose too long": (LIVE, "alice", "p" * 201, None, HOUR, ClaimRefused),
    "held by another, live": (LIVE, "bob", "dedupe", None, HOUR, ClaimConflict),
    "held by another, live, even with no purpose": (LIVE, "bob", None, None, HOUR, ClaimConflict),
    "held by another, expired: taken over, naming them": (
        EXPIRED,
        "bob",
        "dedupe",
        "@bob",
        HOUR,
        ("taken_over", "bob", "dedupe", "@bob", NOW, NOW + HOUR, "from alice (reindex)"),
    ),
    "taking over needs a purpose of one's own": (EXPIRED, "bob", None, None, HOUR, ClaimRefused),
    "expiry instant counts as expired": (
        claim(expires=NOW),
        "bob",
        "x",
        None,
        HOUR,
        ("taken_over", "bob", "x", "", NOW, NOW + HOUR),
    ),
    "same holder extends, keeps purpose and since": (
        LIVE,
        "alice",
        None,
        None,
        2 * HOUR,
        ("extended", "alice", "reindex", "#infra", NOW - HOUR, NOW + 2 * HOUR),
    ),
    "a blank purpose on renewal keeps it": (
        LIVE,
        "alice",
        "",
        "",
        2 * HOUR,
        ("extended", "alice", "reindex", "#infra"),
    ),
    "same holder updates purpose and contact": (
        LIVE,
        "alice",
        "new purpose",
        "#ops",
        2 * HOUR,
        ("extended", "alice", "new purpose", "#ops", NOW - HOUR, NOW + 2 * HOUR),
    ),
    "renewing for less says shortened": (
        claim(expires=NOW + 4 * HOUR),
        "alice",
        None,
        None,
        HOUR,
        ("shortened", "alice", "reindex", "#infra", NOW - HOUR, NOW + HOUR, "it was due in 4h"),
    ),
    "renewing a draining claim ends the drain": (
        DRAINING,
        "alice",
        None,
        None,
        HOUR,
        ("extended", "alice", "reindex", "#infra", NOW - HOUR, NOW + HOUR, "drain cancelled"),
    ),
    "same holder after expiry claims afresh, keeping the purpose": (
        claim(expires=NOW - 5),
        "alice",
        None,
        None,
        HOUR,
        ("claimed", "alice", "reindex", "#infra", NOW, NOW + HOUR, "expired 5s ago"),
    ),
}


@pytest.mark.parametrize("name", list(CLAIM_CASES))
def test_decide_claim(name: str) -> None:
    existing, holder, purpose, contact, ttl, want = CLAIM_CASES[name]
    if isinstance(want, type):
        with pytest.raises(want) as info:
            decide_claim(existing, "batch1", holder, purpose, contact, ttl, NOW, MAX)
        if want is ClaimConflict:
            assert info.value.existing == existing  # type: ignore[attr-defined]
            assert "held by alice" in str(info.value)
        return
    out = decide_claim(existing, "batch1", holder, purpose, contact, ttl, NOW, MAX)
    c, e = out.claim, out.event
    assert c is not None and e is not None and out.previous == existing
    got = (e.kind, c.holder, c.purpose, c.contact, c.since, c.expires, e.detail)
    assert got[: min(len(want), 6)] == want[:6]
    if len(want) > 6:
        assert want[6] in e.detail, e.detail
    # The event tells the same story as the record.
    assert (e.queue, e.at, e.who, e.holder, e.purpose) == (
        "batch1",
        NOW,
        holder,
        c.holder,
        c.purpose,
    )
    assert not c.draining and not c.expiry_noted


def test_renewal_keeps_the_override_and_a_takeover_drops_it() -> None:
    renewed = decide_claim(SCALED, "batch1", "alice", None, None, HOUR, NOW, MAX).claim
    assert renewed is not None and renewed.override == SCALED.override
    lapsed = replace(SCALED, expires=NOW - 1)
    taken = decide_claim(lapsed, "batch1", "bob", "mine", None, HOUR, NOW, MAX).claim
    assert taken is not None and taken.override is None


# -- release ---------------------------------------------------------------------------

NONE, SOME = Work(0, 0), Work(1200, 8)

# name: (existing, holder, force, work, drain, want: (event kind or None, record after) or error)
RELEASE_CASES: dict[str, tuple[Any, ...]] = {
    "nothing claimed": (None, "alice", False, SOME, False, (None, None)),
    "nothing claimed, drain": (None, "alice", False, SOME, True, (None, None)),
    "own claim, nothing left": (LIVE, "alice", False, NONE, False, ("released", None)),
    "own claim, work not checked": (LIVE, "alice", False, None, False, ("released", None)),
    "own claim, work left": (LIVE, "alice", False, SOME, False, WorkLeft),
    "own claim, work left, drain": (LIVE, "alice", False, SOME, True, ("draining", "draining")),
    "own draining claim, drain again": (DRAINING, "alice", False, SOME, True, (None, DRAINING)),
    "own draining claim, plain release, work left": (
        DRAINING,
        "alice",
        False,
        SOME,
        False,
        WorkLeft,
    ),
    "own draining claim, work done": (DRAINING, "alice", False, NONE, False, ("released", None)),
    "own claim, work left, force": (LIVE, "alice", True, SOME, False, ("forced", None)),
    "own claim, nothing left, drain": (LIVE, "alice", False, NONE, True, ("released", None)),
    "scaled claim, drain drops the override": (
        SCALED,
        "alice",
        False,
        SOME,
        True,
        ("draining", "draining"),
    ),
    "another's claim": (LIVE, "bob", False, NONE, False, ClaimConflict),
    "another's claim, drain": (LIVE, "bob", False, SOME, True, ClaimConflict),
    "another's expired claim still needs force": (
        EXPIRED,
        "bob",
        False,
        NONE,
        False,
        ClaimConflict,
    ),
    "another's claim, forced": (LIVE, "bob", True, NONE, False, ("forced", None)),
    "another's claim, forced with work left": (LIVE, "bob", True, SOME, False, ("forced", None)),
    "another's claim, forced drain": (LIVE, "bob", True, SOME, True, ("draining", "draining")),
    "holder of 65 characters, forced": (LIVE, "b" * 65, True, NONE, False, ClaimRefused),
    # Like scale --force: someone else's claim is released or drained only with a reason.
    "another's claim, forced without a reason": (LIVE, "bob", True, NONE, False, ClaimRefused),
    "another's claim, forced drain without a reason": (LIVE, "bob", True, SOME, True, ClaimRefused),
    "holder with a tab, nothing claimed": (None, "bob\t", False, NONE, False, ClaimRefused),
}


@pytest.mark.parametrize("name", list(RELEASE_CASES))
def test_decide_release(name: str) -> None:
    existing, holder, force, work, drain, want = RELEASE_CASES[name]
    reason = "" if "without a reason" in name else "covering" if force else ""
    if isinstance(want, type):
        with pytest.raises(want) as info:
            decide_release(existing, holder, force, NOW, work=work, drain=drain, reason=reason)
        if want is WorkLeft:
            msg = str(info.value)
            assert "1200 waiting and 8 in flight" in msg and "--drain" in msg and "--force" in msg
        return
    kind, after = want
    out = decide_release(existing, holder, force, NOW, work=work, drain=drain, reason=reason)
    assert out.kind == kind and out.previous == existing
    if after == "draining":
        assert out.claim is not None and out.claim.draining_since == NOW
        assert out.claim.override is None
        assert out.claim.holder == existing.holder and out.claim.expires == existing.expires
    else:
        assert out.claim == after
    e = out.event
    if e is not None:
        assert (e.who, e.holder, e.purpose) == (holder, existing.holder, existing.purpose)
        if holder != existing.holder:
            assert "held by alice" in e.detail
        if work is not None and work.total and e.kind == "forced":
            assert "1200 waiting, 8 in flight left behind" in e.detail


# -- manual scale -------------------------------------------------------------------------

# name: (existing, holder, until, force, reason, want: (kind, until stored) or error)
OVERRIDE_CASES: dict[str, tuple[Any, ...]] = {
    "nobody holds it": (None, "alice", NOW + 600, False, "", Refused),
    "the claim expired": (EXPIRED, "alice", NOW + 600, False, "", Refused),
    "someone else's": (LIVE, "bob", NOW + 600, False, "", ClaimConflict),
    "forced without a reason": (LIVE, "bob", NOW + 600, True, " ", ClaimRefused),
    "forced with a reason": (LIVE, "bob", NOW + 600, True, "db on fire", ("forced", NOW + 600)),
    "the holder's": (LIVE, "alice", NOW + 600, False, "", ("scaled", NOW + 600)),
    "never past the claim's expiry": (
        LIVE,
        "alice",
        NOW + 2 * HOUR,
        False,
        "",
        ("scaled", NOW + HOUR),
    ),
    "a draining claim": (DRAINING, "alice", NOW + 600, False, "", Refused),
    "holder with a space": (LIVE, "bob smith", NOW + 600, True, "why", ClaimRefused),
    "a reason of 201 characters": (LIVE, "bob", NOW + 600, True, "r" * 201, ClaimRefused),
    "a reason of two lines": (LIVE, "alice", NOW + 600, False, "a\nb", ClaimRefused),
    "a reason is stripped": (LIVE, "alice", NOW + 600, False, " why ", ("scaled", NOW + 600)),
}


@pytest.mark.parametrize("name", list(OVERRIDE_CASES))
def test_decide_override(name: str) -> None:
    existing, holder, until, force, reason, want = OVERRIDE_CASES[name]
    if isinstance(want, type):
        with pytest.raises(want):
            decide_override(existing, "batch1", holder, 3, until, NOW, force=force, reason=reason)
        return
    out = decide_override(existing, "batch1", holder, 3, until, NOW, force=force, reason=reason)
    kind, end = want
    assert out.kind == kind and out.claim is not None
    assert out.claim.override == Override(3, end, holder, reason.strip(), NOW)
    # Everything else about the claim stays as it was.
    assert replace(out.claim, override=existing.override) == existing
    assert out.event is not None and "3 replicas for" in out.event.detail
    if end < until:
        assert "until the claim expires" in out.event.detail


def test_an_override_counts_only_while_it_and_the_claim_last() -> None:
    o = SCALED.override
    assert o is not None
    assert SCALED.active_override(NOW) == o
    assert SCALED.active_override(o.until) is None
    assert replace(SCALED, expires=NOW).active_override(NOW) is None
    assert replace(SCALED, draining_since=NOW).active_override(NOW) is None


# -- what the autoscaler records -------------------------------------------------------------


def test_drain_end_only_for_the_draining_claim_seen() -> None:
    out = decide_drain_end(DRAINING, DRAINING, NOW, "done")
    assert out.claim is None and out.kind == "drained" and out.event is not None
    assert (out.event.who, out.event.holder) == ("autoscaler", "alice")
    for existing in (None, LIVE, replace(DRAINING, since=NOW), replace(DRAINING, holder="bob")):
        no = decide_drain_end(existing, DRAINING, NOW, "done")
        assert no.event is None and no.claim == existing


def test_expiry_noted_once_for_the_claim_seen() -> None:
    out = decide_expiry_note(EXPIRED, EXPIRED, NOW)
    assert out.kind == "expired" and out.claim == replace(EXPIRED, expiry_noted=True)
    assert out.event is not None and "expired 2h ago" in out.event.detail
    noted = out.claim
    renewed = replace(EXPIRED, expires=NOW + HOUR)
    for existing in (None, noted, renewed, replace(EXPIRED, holder="bob")):
        no = decide_expiry_note(existing, EXPIRED, NOW)
        assert no.event is None and no.claim == existing


# -- records and events ------------------------------------------------------------------


def test_claim_round_trips_with_drain_and_override() -> None:
    full = replace(SCALED, draining_since=NOW - 5, expiry_noted=True)
    assert Claim.from_fields("batch1", full.to_fields()) == full
    assert Claim.from_json("batch1", full.to_json(NOW)) == full
    # A plain claim's hash has only the five fields it always had.
    assert set(LIVE.to_fields()) == {"holder", "purpose", "contact", "since", "expires"}
    # An older exporter's snapshot has none of the new keys.
    old = {k: v for k, v in LIVE.to_json(NOW).items() if k in ("holder", "since", "expires")}
    assert Claim.from_json("batch1", old) == replace(LIVE, purpose="", contact="")
    # A hand-edited override that cannot be read is no override, not a crash.
    broken = LIVE.to_fields() | {"override_replicas": "three", "draining_since": "soon"}
    assert Claim.from_fields("batch1", broken) == LIVE


def test_event_entries_and_the_last_per_batch() -> None:
    e = ClaimEvent("taken_over", "batch1", NOW, "bob", "bob", "dedupe", "from alice", "")
    raw = {k.encode(): v.encode() for k, v in e.to_fields().items()}
    assert ClaimEvent.from_entry(b"1-0", raw) == replace(e, id="1-0")
    assert ClaimEvent.from_entry("1-0", {"kind": "x"}) is None
    assert ClaimEvent.from_entry("1-0", None) is None
    events = [replace(e, at=NOW + i, queue=f"batch{i % 2}") for i in range(7)]
    last = last_per_batch(events, 2)
    assert [x.at for x in last["batch0"]] == [NOW + 4, NOW + 6]
    assert [x.at for x in last["batch1"]] == [NOW + 3, NOW + 5]
    assert set(KINDS) >= {"claimed", "taken_over", "drained", "scaled", "expired", "forced"}


@pytest.mark.parametrize(
    ("holder", "purpose", "contact", "message"),
    [
        ("b" * 3000, "p", None, "--holder must be a name of 1 to 64 printable characters"),
        ("bob\tx", "p", None, "without spaces, e.g. your user name; got 'bob\\tx'"),
        ("bob", "p" * 3000, None, "--purpose must be at most 200 characters, got 3000"),
        ("bob", "a\tb", None, "--purpose must be one line of printable text"),
        ("bob", "p", "c" * 201, "--contact must be at most 200 characters, got 201"),
        ("bob", "p", "a\nb", "--contact must be one line of printable text"),
    ],
)
def test_text_refusals_name_the_option_and_never_echo_it_whole(
    holder: str, purpose: str, contact: str | None, message: str
) -> None:
    with pytest.raises(ClaimRefused) as info:
        decide_claim(None, "batch1", holder, purpose, contact, HOUR, NOW, MAX)
    assert message in str(info.value)
    assert len(str(info.value)) < 250


def test_a_too_long_duration_gives_advice_for_what_was_asked() -> None:
    with pytest.raises(ClaimRefused, match="claim for less"):
        check_ttl(MAX + 1, MAX)
    with pytest.raises(ClaimRefused, match=r"--for .*scale for less") as e:
        check_ttl(MAX + 1, MAX, what="--for")
    assert "claim for" not in str(e.value)
