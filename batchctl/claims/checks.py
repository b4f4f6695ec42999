"""A claim request's own parts, checked before any record is read (pure): a holder is a
user name, a TTL is positive and within claims.max_ttl, a purpose, contact or reason is
one line of text. Each raises `ClaimRefused` (exit 2: fix the command) naming what was
given; the rules (batchctl/claims/rules.py) and the CLI call them alike.
"""

from __future__ import annotations

from batchctl.units import format_duration, shown


class ClaimRefused(ValueError):
    """The request cannot be accepted as given (exit 2: fix the command)."""


# A holder becomes a Prometheus label value and a column of `batchctl status`: a user
# name. A purpose, contact or reason is one line of a table, a log line, a page.
HOLDER_MAX_CHARS = 64
TEXT_MAX_CHARS = 200


def check_holder(holder: str, what: str = "--holder") -> None:
    """1 to 64 printable characters, no whitespace: a user name. `what` names where it
    came from in the message."""
    if (
        not 0 < len(holder) <= HOLDER_MAX_CHARS
        or not holder.isprintable()
        or any(c.isspace() for c in holder)
    ):
        raise ClaimRefused(
            f"{what} must be a name of 1 to {HOLDER_MAX_CHARS} printable characters "
            f"without spaces, e.g. your user name; got {shown(holder)}"
        )


def check_ttl(ttl_seconds: float, max_ttl: float | None, what: str = "--ttl") -> None:
    if not ttl_seconds > 0:
        raise ClaimRefused(f"{what} must be positive, got {ttl_seconds:g}")
    if max_ttl is not None and ttl_seconds > max_ttl:
        raise ClaimRefused(
            f"{what} {format_duration(ttl_seconds)} is longer than claims.max_ttl "
            f"({format_duration(max_ttl)}): "
            + (
                "claim for less and renew it when needed"
                if what == "--ttl"
                else "scale for less and run it again when needed"
            )
        )


def given(text: str | None, what: str = "the text") -> str | None:
    """A purpose, contact or reason as given, stripped: None when absent or blank (blank
    never wipes one). One line of at most 200 printable characters, or ClaimRefused."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    if not text.isprintable():
        raise ClaimRefused(
            f"{what} must be one line of printable text: no newlines, tabs or other "
            f"control characters; got {shown(text)}"
        )
    if len(text) > TEXT_MAX_CHARS:
        raise ClaimRefused(
            f"{what} must be at most {TEXT_MAX_CHARS} characters, got {len(text)}: "
            "say it shorter (a link to the details is fine)"
        )
    return text


def check_purpose(purpose: str | None) -> str | None:
    return given(purpose, "--purpose")


PURPOSE_REQUIRED = (
    "--purpose is required for a new claim and must not be blank: say what the batch "
    'is for, e.g. --purpose "reindex dockets"'
)


__all__ = [
    "HOLDER_MAX_CHARS",
    "PURPOSE_REQUIRED",
    "TEXT_MAX_CHARS",
    "ClaimRefused",
    "check_holder",
    "check_purpose",
    "check_ttl",
    "given",
]
