#!/usr/bin/env bash
# What the tests drive besides Python packages, installed when missing (idempotent): Node.js and the
# pinned npm packages in tests/node, Redis, nginx, Debian's chromium. Installing system packages
# needs root (CI runs as root); the serving path (scripts/serve.sh) never calls this.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {  # apt_install PACKAGE WHY
  echo "installing $1 (Debian package) for $2" >&2
  (apt-get -o DPkg::Lock::Timeout=300 update -qq && apt-get -o DPkg::Lock::Timeout=300 install -y -qq "$1" >/dev/null) || { echo "need $1 for $2" >&2; exit 1; }
}

command -v npm >/dev/null 2>&1 || apt_install npm "the TypeScript client tests"
# A real Redis: the machine's at 127.0.0.1:6379, or redis-server, which the tests start on a free port.
if ! command -v redis-server >/dev/null 2>&1 && ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  apt_install redis-server "the Redis backend tests"
fi
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || apt_install nginx-light "the load-balancer tests"
command -v chromium >/dev/null 2>&1 || apt_install chromium "the status page and App tests"
if [ ! -f tests/node/node_modules/.package-lock.json ] || [ tests/node/package-lock.json -nt tests/node/node_modules/.package-lock.json ]; then
  echo "installing the pinned npm packages the tests drive (npm ci in tests/node)" >&2
  (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
fi
