"""Alert rules on in-flight work nobody will finish: messages stranded in `unacked`.

kombu restores an `unacked` entry older than the visibility timeout to its queue
(restore_visible) only from a running worker of the broker: at its start, then about
every 100 s. With no worker running, such entries stay where they are for good, counted
in flight but neither waiting nor worked on (docs/design.md, "Stranded in-flight work").
The exporter counts them per queue (`celery_queue_unacked_stranded`: overdue while no
live worker consumes the queue), and the autoscaler starts one replica of a claimed
batch for them; this alert says so for every queue, claimed or not.
"""

from __future__ import annotations

from alerts.common import COUNT, QUEUE, Rule, alert, one_per_site, series
from batchctl import metrics as n
from batchctl.config import Config

UNACKED_STRANDED = "CeleryUnackedStranded"


def unacked_stranded(cfg: Config) -> list[Rule]:
    """Stranded in-flight messages for `alerts.stranded_for`: longer than a worker's
    restore sweep (about 100 s), so a worker that is about to restore them does not page."""
    a = cfg.alerts
    stranded = series(n.QUEUE_UNACKED_STRANDED.name, a.selector)
    vt = f"{cfg.broker.visibility_timeout:g}s"
    return [
        alert(
            UNACKED_STRANDED,
            one_per_site(f"{stranded} > 0", a.replica_labels),
            a.stranded_for,
            "warning",
            f"In-flight messages of Celery queue {QUEUE} are stranded.",
            f"{COUNT} messages of queue {QUEUE} were delivered more than the visibility "
            f"timeout ({vt}) ago and no worker runs to restore them: they are neither "
            "waiting nor being worked on. Start one worker of the broker (the autoscaler "
            "does for a claimed batch: reason stranded); kombu puts them back on the "
            "queue at its start.",
        )
    ]
