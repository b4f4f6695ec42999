"""batchctl: observe, alert on and autoscale Celery batch queues on Kubernetes.

This package is the core every room may use and that uses no room: the config schema,
logging, the metric and reason tables, claims, broker URLs and the Kubernetes client
plumbing; `batchctl.cli` is the console script, `batchctl.sim` the simulator and
`batchctl.demo` the demo. The rooms: `exporter` observes, `autoscaler` decides and
acts, `alerts` and `grafana` generate the monitoring files.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("batchctl")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"
