"""batchctl's observer: reads the Celery broker and the cluster into one snapshot."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("batchctl")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"
