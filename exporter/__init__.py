"""batchctl's observer: reads the Celery broker and the cluster into one snapshot, and
serves it as Prometheus metrics, a status page and JSON."""
