"""What a Kubernetes API error means, as the store-neutral errors of batchctl/claims/errors.py.

Used by the Lease claim store and the history ring (batchctl/claims/lease_store.py,
ring.py), and by the CLI for what it reads beside the claims through the API server
(the exporter's snapshot through the service proxy), so all of them say the same thing
the same way. Messages name the API server (no credentials) and the namespace, quote
the API's own Status message (free of tokens: batchctl.kube.describe_error scrubs them)
and say what to do.
"""

from __future__ import annotations

from collections.abc import Iterable

import urllib3
from kubernetes.client.exceptions import ApiException

from batchctl.claims.errors import StoreError, StoreFault, StoreRefused, StoreUnavailable
from batchctl.kube import describe_error, scrub, status_message

# Answers that mean "not now" rather than "no": the API server is there but cannot
# serve us at this moment (rate limited, unavailable, timed out).
_TRY_AGAIN = {429, 502, 503, 504}


def api_error(
    where: str, exc: BaseException, secrets: Iterable[str] = (), doing: str = ""
) -> StoreError:
    """`exc`, raised by a request to the API server `where` (URL and namespace), as a
    StoreError whose message is safe to show; `doing` says what the request was for."""
    what = f" ({doing})" if doing else ""
    if isinstance(exc, ApiException) and exc.status:
        message = scrub(status_message(exc), secrets)[:400]
        code = exc.status
        if code == 401:
            return StoreRefused(
                f"the API server at {where} did not accept your credentials{what} "
                f"(HTTP 401: {message}): log in again, or check the kubeconfig and context",
                exc,
            )
        if code == 403:
            return StoreRefused(
                f"the API server at {where} refused{what}: {message}. Claims need the "
                "Role batchctl-claimer (reading them batchctl-viewer) bound to you in this "
                'namespace: ask your cluster admins (docs/deploy.md, "Who may claim")',
                exc,
            )
        if code == 404 and "namespaces" in message:
            return StoreRefused(
                f"the API server at {where} has no such namespace{what} ({message}): "
                "give batchctl's namespace with -n/--namespace or kubernetes.namespace",
                exc,
            )
        if code in _TRY_AGAIN:
            return StoreUnavailable(
                f"cannot reach the API server at {where}{what}: HTTP {code}: {message}", exc
            )
        return StoreFault(
            f"the API server at {where} answered with an error{what}: HTTP {code}: {message}",
            exc,
        )
    if isinstance(exc, (urllib3.exceptions.HTTPError, OSError)) or (
        isinstance(exc, ApiException) and not exc.status
    ):
        return StoreUnavailable(
            f"cannot reach the API server at {where}{what}: {describe_error(exc, secrets)}", exc
        )
    return StoreFault(
        f"unexpected answer from the API server at {where}{what}: {describe_error(exc, secrets)}",
        exc,
    )


__all__ = ["api_error"]
