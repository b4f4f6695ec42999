"""batchctl: observe, alert on and autoscale Celery batch queues on Kubernetes.

This package is the core every room may use and that uses no room: the config schema,
logging, the metric and reason tables, claims, broker URLs and the Kubernetes client
plumbing; `batchctl.cli` is the console script, `batchctl.sim` the simulator and
`batchctl.demo` the demo. The rooms: `exporter` observes, `autoscaler` decides and
acts, `alerts` and `grafana` generate the monitoring files.
"""

# The one place the version is written: pyproject.toml reads it from here (setuptools'
# dynamic `attr`), `batchctl --version` prints it, the image's label and the base
# kustomization's tag must equal it (the Dockerfile's build fails otherwise;
# tests/test_release.py), and CHANGELOG.md's newest release names it.
__version__ = "0.3.0"
