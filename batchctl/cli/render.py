"""`batchctl alerts render` and `batchctl dashboard render`: generated monitoring files."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import click

from batchctl.cli.options import EXIT_USAGE, Printer, config_option, load_or_exit

output_option = click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write to this file instead of standard output (a file, not a format: the "
    "output is YAML or JSON by nature).",
)

# Elsewhere -o takes a format (table|json): here a bare format name is a slip, not a file.
_FORMAT_NAMES = frozenset({"table", "json", "yaml", "yml", "text", "wide"})


def _emit(text: str, output: str | None) -> None:
    if output is None:
        click.echo(text, nl=False)
        return
    if output.lower() in _FORMAT_NAMES:
        Printer().fail(
            f"-o {output}: here -o names the file to write, not a format; leave it out to "
            f"print, or write to ./{output} with -o ./{output}",
            EXIT_USAGE,
        )
    path = Path(output)
    try:
        _write(path, text)
    except OSError as e:
        Printer().fail(f"cannot write {output}: {e.strerror or e}", EXIT_USAGE)
    click.echo(f"wrote {path}", err=True)


def _write(path: Path, text: str) -> None:
    """Write then rename, so Prometheus or Grafana never load a half-written file. The
    file keeps its mode when it exists, else gets 0644 less the umask: Prometheus or
    Grafana, running as another user, must be able to read it (mkstemp's 0600 would not
    let them)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o644 & ~_umask()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@click.group("alerts")
def alerts_group() -> None:
    """Prometheus alerting rules for the batch queues."""


@alerts_group.command("render")
@config_option
@output_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["rules", "prometheusrule"]),
    default="rules",
    show_default=True,
    help="rules: a Prometheus rule file; prometheusrule: the same groups as a "
    "prometheus-operator PrometheusRule object.",
)
def alerts_render(config_path: str | None, output: str | None, fmt: str) -> None:
    """Render the alerting rules (thresholds, durations, selectors from the config).

    Check a rule file with `promtool check rules FILE`.
    """
    from alerts.render import render_prometheus_rule, render_rules

    cfg = load_or_exit(config_path)
    _emit(render_prometheus_rule(cfg) if fmt == "prometheusrule" else render_rules(cfg), output)


@click.group("dashboard")
def dashboard_group() -> None:
    """The Grafana dashboard for the batch queues."""


@dashboard_group.command("render")
@config_option
@output_option
def dashboard_render(config_path: str | None, output: str | None) -> None:
    """Render the Grafana dashboard JSON (uid and thresholds from the config)."""
    cfg = load_or_exit(config_path)
    try:
        from grafana.dashboard import render_dashboard
    except ImportError as e:  # the SDK is a dev extra: say so instead of a traceback
        raise click.ClickException(
            f"cannot build the dashboard: {e}; install with `pip install -e '.[dev]'`"
        ) from None
    _emit(render_dashboard(cfg), output)
