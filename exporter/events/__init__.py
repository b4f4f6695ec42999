"""Celery's task and worker events: the consumer (Celery's own receiver, in a thread),
the aggregation into bounded per-queue counts, and the data the snapshot carries."""
