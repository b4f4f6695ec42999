"""structlog set-up: JSON lines for machines, a readable console on a TTY.

Every event goes through `batchctl.redact.scrub` last: no password (of any URL, or
registered from the configuration) reaches a log line, exceptions included.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any, Literal, TextIO

import structlog

from batchctl.redact import scrub

Format = Literal["auto", "json", "console"]


def configure_logging(
    level: str = "info", fmt: Format = "auto", file: TextIO | None = None
) -> None:
    out = sys.stderr if file is None else file
    use_console = fmt == "console" or (fmt == "auto" and out.isatty())
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer() if use_console else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _scrub,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list | tuple):
        return [_scrub_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _scrub_value(v) for k, v in value.items()}
    if isinstance(value, int | float | bool) or value is None:
        return value
    return scrub(str(value))


def _scrub(
    _logger: object, _name: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    return {k: _scrub_value(v) for k, v in event.items()}


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)  # type: ignore[no-any-return]


class RepeatedWarning:
    """A failure that may repeat many times a second (a caller polling, a busy scraper):
    one warning when it starts or its error changes, then one every `every` seconds
    while it lasts, with `repeats`, how many were not logged; `recovered` logs once
    when it ends. Not thread-safe: one per serialised caller."""

    def __init__(
        self,
        logger: structlog.typing.FilteringBoundLogger,
        event: str,
        every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger, self.event, self.every, self.clock = logger, event, every, clock
        self._error: str | None = None
        self._logged_at = 0.0
        self._repeats = 0

    def failed(self, error: str, **fields: Any) -> None:
        now = self.clock()
        if error == self._error and now - self._logged_at < self.every:
            self._repeats += 1
            return
        if error == self._error and self._repeats:
            fields["repeats"] = self._repeats
        self._error, self._logged_at, self._repeats = error, now, 0
        self.logger.warning(self.event, error=error, **fields)

    def recovered(self, event: str, **fields: Any) -> None:
        if self._error is not None:
            self._error, self._repeats = None, 0
            self.logger.info(event, **fields)
