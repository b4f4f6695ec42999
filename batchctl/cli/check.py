"""`batchctl config check [FILE]`: validate a config file before deploying it.

The file is checked as written. $BATCHCTL_BROKER_URL, which replaces broker.url in every
other command, is checked too when it is set, and reported on a line of its own: a
file is never passed because of the variable, nor blamed for it.
"""

from __future__ import annotations

import os
import sys

import click

from batchctl.cli.options import EXIT_USAGE, Printer, output_option
from batchctl.config import ENV_BROKER_URL, Config, ConfigError, load_config, parse_config
from batchctl.config.load import ENV_CLAIMS_STORE, env_blamed
from batchctl.log import get_logger
from batchctl.redact import redact_url

OVERRIDES = "(overrides broker.url)"


def check_env_url(url: str, warnings: list[str]) -> str | None:
    """The problem with $BATCHCTL_BROKER_URL (one line, no password), or None."""
    notes: list[str] = []
    try:
        parse_config({"broker": {"url": url}}, ENV_BROKER_URL, env={}, warnings=notes)
    except ConfigError as e:
        return "; ".join(env_blamed(p) for p in e.problems)
    warnings.extend(env_blamed(n) for n in notes)
    return None


@click.group("config")
def config_group() -> None:
    """Check the configuration file."""


@config_group.command("check")
# Plain strings: a directory or a missing file is a problem of the file, reported as
# one line like the others (`FILE: cannot read the file: ...`), not click's usage text.
@click.argument("file", required=False)
@click.option(
    "--config",
    "-c",
    "config_path",
    metavar="FILE",
    help="The file, as the other commands take it (the same as FILE).",
)
@output_option
def config_check(file: str | None, config_path: str | None, output: str) -> None:
    """Validate FILE (default: $BATCHCTL_CONFIG); print every problem with its key path
    and exit 2 if any. FILE is checked as written; $BATCHCTL_BROKER_URL, which overrides
    broker.url, is checked on a line of its own when it is set; $BATCHCTL_CLAIMS_STORE
    stands for claims.store when the file names none. Valid settings that keep less than
    batchctl promises (claims.history_max_events below 1112 in the kubernetes store) are
    warnings in the log, exit 0.

    \b
      batchctl config check k8s/overlays/example/batchctl.yml
      batchctl config check -c batchctl.yaml -o json
    """
    out = Printer.of(output)
    if file and config_path and file != config_path:
        out.fail(f"two files to check: {file} and {config_path}; give one", EXIT_USAGE)
    path = file or config_path or os.environ.get("BATCHCTL_CONFIG") or None
    if path is None:
        out.fail("no file to check: give FILE or set BATCHCTL_CONFIG", EXIT_USAGE)
    warnings: list[str] = []
    cfg: Config | None = None
    error: ConfigError | None = None
    try:
        # The file as written, but with the claim store the pods give it by variable
        # (k8s/base sets BATCHCTL_CLAIMS_STORE): what the store needs is checked too.
        store = os.environ.get(ENV_CLAIMS_STORE)
        cfg = load_config(path, env={ENV_CLAIMS_STORE: store} if store else {}, warnings=warnings)
    except ConfigError as e:
        error = e
    env_url = os.environ.get(ENV_BROKER_URL) or None
    env_problem = check_env_url(env_url, warnings) if env_url else None
    for w in warnings:
        get_logger("batchctl.config").warning("config", problem=w, source=path)
    problems = (error.problems if error else []) + ([env_problem] if env_problem else [])
    if out.json:
        if problems:
            head = error.render().splitlines()[0] if error else env_problem
            out.fail(str(head), EXIT_USAGE, problems=problems)
        assert cfg is not None
        doc: dict[str, object] = {
            "file": path,
            "ok": True,
            "batches": [b.queue for b in cfg.batches],
            "broker": redact_url(cfg.broker.url),
        }
        if env_url:
            doc["env"] = {ENV_BROKER_URL: redact_url(env_url)}
        out.data(doc, "")
        return
    # For people: the file, then the variable, each on its own line(s).
    if error is not None:
        click.echo(error.render(), err=True)
    elif cfg is not None:
        click.echo(_ok(path, cfg))
    if env_problem is not None:
        click.echo(env_problem, err=True)
    elif env_url:
        click.echo(f"{ENV_BROKER_URL}: OK, {redact_url(env_url)} {OVERRIDES}")
    if problems:
        sys.exit(EXIT_USAGE)


def _ok(path: str, cfg: Config) -> str:
    return f"{path}: OK ({len(cfg.batches)} batches, broker {redact_url(cfg.broker.url)})"
