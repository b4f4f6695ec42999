"""A kubeconfig for the fake API server, as the official client loads it."""

from __future__ import annotations

from tests.support.fakekube.routes import JSON


def kubeconfig_dict(
    server: str, token: str, context: str = "fake", namespace: str = "default"
) -> JSON:
    """A kubeconfig with a bearer token for `server`, plus an unreachable second context."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "fake", "cluster": {"server": server}},
            # Port 9 (discard) on loopback: nothing listens, connections are refused.
            {"name": "nowhere", "cluster": {"server": "http://127.0.0.1:9"}},
        ],
        "users": [{"name": "fake-user", "user": {"token": token}}],
        "contexts": [
            {
                "name": context,
                "context": {"cluster": "fake", "user": "fake-user", "namespace": namespace},
            },
            {"name": "nowhere", "context": {"cluster": "nowhere", "user": "fake-user"}},
        ],
        "current-context": context,
    }
