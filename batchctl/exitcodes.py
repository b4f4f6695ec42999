"""The exit codes of every batchctl command, defined once (pure, no I/O).

The CLI's helpers (batchctl/cli/options.py) and the autoscaler's `--once`
(autoscaler/runtime.py) exit with these; the root group's --help and the epilog of
every command's --help are written from `EXIT_CODES`; docs/cli.md gives examples of
each (tests/batchctl/cli/test_help.py keeps the three in step).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


@dataclass(frozen=True)
class ExitCode:
    code: int
    meaning: str  # what it says, in a few words
    examples: str = ""  # in brackets in the root --help


EXIT_CODES = (
    ExitCode(EXIT_OK, "done"),
    ExitCode(
        EXIT_REFUSED,
        "refused or conflict",
        "someone else holds the batch, work is left, unexpected data in Redis, ...",
    ),
    ExitCode(EXIT_USAGE, "usage or config error", "fix the command or the file"),
    ExitCode(EXIT_UNREACHABLE, "backend unreachable", "Redis, the Kubernetes API, the exporter"),
)

# The epilog of every command's --help (batchctl/cli/__init__.py); docs/cli.md has more.
EXIT_CODES_HELP = (
    "Exit codes: " + ", ".join(f"{c.code} {c.meaning}" for c in EXIT_CODES) + " (docs/cli.md)."
)


def exit_codes_block(width: int = 72) -> str:
    """The codes one per line, as the root --help lists them (a click `\\b` block, so
    the lines are kept as written): wrapped at `width`, continuations under the text."""
    lines = []
    for c in EXIT_CODES:
        text = f"{c.meaning} ({c.examples})" if c.examples else c.meaning
        lines.extend(
            textwrap.wrap(text, width, initial_indent=f"  {c.code}  ", subsequent_indent=" " * 5)
        )
    return "\n".join(lines)


__all__ = [
    "EXIT_CODES",
    "EXIT_CODES_HELP",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "ExitCode",
    "exit_codes_block",
]
