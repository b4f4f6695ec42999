"""What every config section shares: strict models, and the name and duration rules."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,200}$")
# RFC 1123 label, which is what Kubernetes requires of a Deployment name.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# RFC 1123 subdomain: most other object names (a Lease's).
_DNS_SUBDOMAIN = re.compile(
    r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)


class _Strict(BaseModel):
    # No NaN or +/-Inf in any number: `.inf` seconds is a claim that never expires or a
    # thread that sleeps forever, and `.nan` compares false with every bound.
    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False
    )


# A Prometheus duration such as 30s, 5m, 1h30m (what a rule's `for` and a range accept).
_PROM_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
