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
    except ImportError as e:  # a broken install: say so instead of a traceback
        raise click.ClickException(
            f"cannot build the dashboard: {e}; reinstall batchctl (it needs grafana-foundation-sdk)"
        ) from None
    _emit(render_dashboard(cfg), output)


@click.group("render")
def render_group() -> None:
    """Render what a site deploys from its config."""


@render_group.command("k8s")
@config_option
@click.option(
    "--base",
    "base",
    required=True,
    metavar="REF",
    help="batchctl's kustomize base: a directory (k8s/base of a checkout of this "
    "version) or a remote git URL, e.g. "
    "https://github.com/ORG/batchctl//k8s/base?ref=v0.3.0 (pin the ref to the image's "
    "version).",
)
@click.option(
    "--output",
    "output",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The directory to write the overlay to (created; files of an earlier render "
    "that no longer apply are removed, nothing else is touched).",
)
@click.option(
    "--namespace",
    default=None,
    help="Where the workers and batchctl run (default: kubernetes.namespace of the config).",
)
@click.option(
    "--image",
    required=True,
    metavar="IMAGE",
    help="Where you pushed batchctl's image: REGISTRY/NAME[:TAG][@sha256:DIGEST] "
    "(no tag: this version's).",
)
@click.option(
    "--prometheus-namespace",
    default="monitoring",
    show_default=True,
    help="The namespace Prometheus scrapes from (the NetworkPolicy admits it only).",
)
@click.option(
    "--apiserver-cidr",
    "apiserver_cidrs",
    multiple=True,
    metavar="CIDR",
    help="The API server's addresses (repeatable): the NetworkPolicy admits them to the "
    "exporter's port, for the CLI's reads through the service proxy.",
)
@click.option(
    "--prometheus-operator/--no-prometheus-operator",
    default=True,
    show_default=True,
    help="Include a ServiceMonitor and a PrometheusRule (the operator's CRDs must exist); "
    "the rules ConfigMap is always included.",
)
@click.option(
    "--broker-secret",
    default="batchctl-broker",
    show_default=True,
    metavar="NAME",
    help="The Secret in the namespace that holds the broker URL (and, with Sentinel, "
    "the key sentinel_password): a site's existing Secret, used under its own name.",
)
@click.option(
    "--broker-secret-key",
    default="url",
    show_default=True,
    metavar="KEY",
    help="The key of --broker-secret that holds the broker URL.",
)
def render_k8s(
    config_path: str | None,
    base: str,
    output: Path,
    namespace: str | None,
    image: str,
    prometheus_namespace: str,
    apiserver_cidrs: tuple[str, ...],
    prometheus_operator: bool,
    broker_secret: str,
    broker_secret_key: str,
) -> None:
    """Write a complete kustomize overlay for the site described by the config.

    \b
    The overlay takes batchctl's base from REF and adds what depends on the site:
    its config (a ConfigMap), the alert rules (a ConfigMap, and a PrometheusRule with
    the prometheus-operator), the dashboard, a Role that may scale exactly its batch
    Deployments, the namespace and the image. Commit it, never edit it: render
    again after changing the config. Nothing else is needed (no checkout, no make),
    so it runs from the image as well:
      docker run --rm -v $PWD:/site -w /site IMAGE render k8s -c site.yml \\
        --base https://github.com/ORG/batchctl//k8s/base?ref=v0.3.0 \\
        --image registry.example.com/platform/batchctl:0.3.0 --output batchctl
    The Secret batchctl-broker (key url, the broker URL; with Sentinel, key
    sentinel_password, the sentinels' own) must exist in the namespace (docs/deploy.md);
    a site whose Secret has another name or key says so, and both containers read it:
      --broker-secret redis-credentials --broker-secret-key broker-url
    A password written in the config is refused: it would be committed.
    """
    from batchctl.overlay import (
        OverlayError,
        Site,
        base_ref,
        namespace_of,
        notes,
        render_overlay,
        write_overlay,
    )

    printer = Printer()
    if config_path is None:
        printer.fail("-c/--config: required: the site's config (batchctl.yml)", EXIT_USAGE)
    cfg = load_or_exit(config_path)
    try:
        text = Path(config_path).read_text()
        site = Site(
            base=base_ref(base, output),
            namespace=namespace_of(cfg, namespace),
            image=image,
            prometheus_namespace=prometheus_namespace,
            prometheus_operator=prometheus_operator,
            apiserver_cidrs=apiserver_cidrs,
            broker_secret=broker_secret,
            broker_secret_key=broker_secret_key,
        )
        files = render_overlay(cfg, text, site)
    except OverlayError as e:
        printer.fail(str(e), EXIT_USAGE)
    try:
        write_overlay(files, output)
    except OSError as e:
        printer.fail(f"cannot write {output}: {e.strerror or e}", EXIT_USAGE)
    click.echo(f"wrote {len(files)} files to {output}: kubectl apply -k {output}", err=True)
    for note in notes(cfg, site):
        click.echo(f"note: {note}", err=True)
