"""Keeping secrets out of logs, metrics, pages and errors: URL passwords and tokens.

Two layers. Structural: every URL's password (each `;`-joined part of a Sentinel URL
included) is shown as `***` (`redact_url`, `scrub_urls`). By value: the passwords of
the loaded configuration (URL passwords, `broker.sentinel_kwargs.password`) are
registered with `register_secret`, and `scrub` replaces them wherever they appear,
inside or outside a URL (the log processor and every error text go through it).
Values shorter than `MIN_SCRUB_LENGTH` are masked only structurally, so that a
one-letter password does not turn every log line into stars.
"""

from __future__ import annotations

import re

from batchctl.brokerparse import redact_url

__all__ = ["MIN_SCRUB_LENGTH", "redact_url", "register_secret", "scrub", "scrub_urls"]

# scheme://user:password@ - the password may itself contain '@' (unencoded), so the
# match runs to the last '@' before whitespace, a quote or the next URL.
_URL_PASSWORD = re.compile(r"(\b[A-Za-z][\w+.-]*://[^:/@\s'\"]*:)[^\s'\";]+@")
_QUERY_SECRET = re.compile(r"(\b(?:ssl_)?password=)[^&\s'\";]+")
MIN_SCRUB_LENGTH = 4

_secrets: tuple[str, ...] = ()


def register_secret(*values: str | None) -> None:
    """Remember secrets to mask by value in every later `scrub` (longest first)."""
    global _secrets
    new = {v for v in values if v and len(v) >= MIN_SCRUB_LENGTH}
    if new - set(_secrets):
        # One assignment of a new tuple: readers see the old or the new set, never half.
        _secrets = tuple(sorted(set(_secrets) | new, key=len, reverse=True))


def scrub_urls(text: str) -> str:
    """`text` with the password of every URL in it replaced by `***`."""
    return _QUERY_SECRET.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", text))


def scrub(text: str) -> str:
    """`text` with every registered secret and every URL password replaced by `***`."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return scrub_urls(text)
