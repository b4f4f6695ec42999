"""What a claim store raises when the store itself fails, whatever keeps the claims.

The rules' own refusals (`ClaimConflict`, `ClaimRefused`, `Refused`, batchctl/claims/
rules.py) say no to the request; these say the store could not do its job. Callers
tell three cases apart, because each asks for a different fix (the CLI's exit code in
brackets, batchctl/exitcodes.py):

- `StoreUnavailable` [3]: the store cannot be reached (connection refused, timeout,
  a name that does not resolve): try again later.
- `StoreRefused` [2]: it was reached and refuses us as configured (a password it
  refuses or requires, a database or namespace it does not have, a permission we
  lack): the config must change; trying again does not help.
- `StoreFault` [1]: it was reached and answered with an error about what it holds
  (a record of another type under a claim's name) or another error: look at the data.

Each store translates its backend's errors into these (the Redis store:
batchctl/claims/redis_errors.py). The message is the whole story and safe to print,
log or serve: it names where (a URL with its password removed) and why (the
backend's text with secrets scrubbed). The backend's own error is kept as `cause`
(also `__cause__`) for logs and tests; never print it.
"""

from __future__ import annotations


class StoreError(Exception):
    """The claim store failed; `str(e)` is safe to show, `cause` is the backend's error."""

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause


class StoreUnavailable(StoreError):
    """The store cannot be reached (or did not answer in time): try again later."""


class StoreRefused(StoreError):
    """The store was reached and refuses us as configured: the config must change."""


class StoreFault(StoreError):
    """The store was reached and answered with an error: unexpected data, or another."""


__all__ = ["StoreError", "StoreFault", "StoreRefused", "StoreUnavailable"]
