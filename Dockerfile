# syntax=docker/dockerfile:1
# batchctl in one image: `batchctl exporter` and `batchctl autoscaler` are its two
# containers in k8s/base/deployment.yaml. Build and push it (docs/deploy.md):
#   docker build -t REGISTRY/batchctl:0.3.0 \
#     --build-arg VERSION=0.3.0 --build-arg REVISION="$(git rev-parse HEAD)" .
# VERSION must be the package's own (batchctl/__init__.py): the build fails otherwise,
# so the image's version label never disagrees with `batchctl --version`.
# Python packages come only from requirements.lock: pyproject.toml's runtime
# dependencies (not the dev extra), pinned with their hashes. Regenerate it with
# `make lock` after changing dependencies; tests/test_image.py proves that it installs
# into an empty virtualenv by itself and that batchctl then runs.

# The Python base, pinned to its minor version and Debian release. Pin the digest too
# where you build (`docker buildx imagetools inspect python:3.11-slim-bookworm`):
#   --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:...
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG VERSION=0.3.0
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Dependencies first, in a layer of their own that survives code changes. --no-deps:
# the lock must be complete (pip check below fails otherwise); --require-hashes: every
# file must match the lock.
COPY requirements.lock ./
RUN python -m venv /opt/batchctl \
 && /opt/batchctl/bin/pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md LICENSE ./
COPY batchctl ./batchctl
COPY exporter ./exporter
COPY autoscaler ./autoscaler
COPY alerts ./alerts
COPY grafana ./grafana
# batchctl itself: built with the lock's setuptools, from nothing but this directory.
RUN /opt/batchctl/bin/pip install --no-cache-dir --no-deps --no-build-isolation --no-index . \
 && /opt/batchctl/bin/pip check \
 && test "$(/opt/batchctl/bin/batchctl --version)" = "batchctl, version ${VERSION}" \
 && /opt/batchctl/bin/python -m compileall -q /opt/batchctl/lib

# The final stage: the same slim base (no compilers), the virtualenv, a non-root user.
FROM ${PYTHON_IMAGE}
ARG PYTHON_IMAGE
ARG VERSION=0.3.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="batchctl" \
      org.opencontainers.image.description="Prometheus exporter, alerts and autoscaler for Celery batch queues on Redis and Kubernetes" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/batchctl/batchctl" \
      org.opencontainers.image.documentation="https://github.com/batchctl/batchctl/blob/main/docs/deploy.md" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"
COPY --from=build /opt/batchctl /opt/batchctl
# The root filesystem is read-only in the pod: nothing writes bytecode at run time
# (it was compiled in the build stage).
ENV PATH=/opt/batchctl/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# 65532: the conventional "nonroot" uid; the manifests run as it too (runAsNonRoot
# needs a numeric user).
USER 65532:65532
EXPOSE 9808 9809
ENTRYPOINT ["batchctl"]
CMD ["--help"]
