#!/usr/bin/env bash
# `make test-cluster`: the browser tests over HTTPS against the scale-out cluster
# (deploy/cluster: nginx with TLS and HTTP/2 → 2 web replicas → 2 API replicas →
# PostgreSQL + Redis, all on loopback). Brings the cluster up with short token lifetimes,
# runs e2e/cluster (Playwright, Debian's Chromium), and brings it down again, always.
# Extra arguments go to Playwright (e.g. -g "racing tabs").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
export NEXT_TELEMETRY_DISABLED=1
export CHROMIUM_PATH=${CHROMIUM_PATH:-/usr/bin/chromium}
# Short lifetimes, so that the refresh tests wait seconds, not minutes.
export KIZUNA_CLUSTER_ACCESS_TTL=${KIZUNA_CLUSTER_ACCESS_TTL:-6}
export KIZUNA_CLUSTER_REFRESH_GRACE=${KIZUNA_CLUSTER_REFRESH_GRACE:-10}
# Every test signs its users up from 127.0.0.1.
export KIZUNA_SIGNUP_PER_IP=${KIZUNA_SIGNUP_PER_IP:-1000}
CLUSTER=./deploy/cluster/cluster.sh

# 1. What the cluster runs on: PostgreSQL, Redis, nginx, openssl (as root, installed when
#    missing), the Python venv, the web dependencies and Debian's Chromium.
if [ "$(id -u)" -eq 0 ]; then ./scripts/setup-services.sh; fi
[ -x .venv/bin/kizuna ] || ./scripts/setup-python.sh
./scripts/setup-web.sh
if [ ! -x "$CHROMIUM_PATH" ]; then
  echo "==> installing Debian's chromium"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y --no-install-recommends chromium > /dev/null \
    || { $SUDO apt-get update > /dev/null && $SUDO apt-get install -y --no-install-recommends chromium > /dev/null; }
fi

# 2. Up (it builds the web tier when its sources changed: the build is shared with the
#    other browser tests), and down whatever happens next.
if "$CLUSTER" status | grep -qE ' (ready|alive) '; then
  echo "test-cluster: a cluster is running already (make cluster-down first); it is left alone" >&2
  exit 1
fi
trap '"$CLUSTER" down' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
"$CLUSTER" up

# 3. What is shipped but cannot run here (no Docker): compose.yaml must parse, and the
#    nginx template filled in with compose's values must be accepted by nginx -t (its
#    replica host names pointed at loopback, which nginx -t resolves but never calls).
.venv/bin/python -c 'import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); assert {"nginx", "web1", "web2", "api1", "api2", "postgres", "redis"} <= set(d["services"])' \
  deploy/compose.yaml
check=$(mktemp -d)
(
  . deploy/cluster/run/cluster.env
  eval "$(.venv/bin/python -c '
import shlex, sys, yaml
env = yaml.safe_load(open(sys.argv[1]))["services"]["nginx"]["environment"]
for k, v in env.items():
    v = str(v).replace("${KIZUNA_SERVER_NAME}", "example.com").replace("${KIZUNA_HSTS:-max-age=31536000}", "max-age=31536000")
    v = {"web1:3000": "127.0.0.1:3000", "web2:3000": "127.0.0.2:3000", "api1:8000": "127.0.0.1:8000", "api2:8000": "127.0.0.2:8000"}.get(v, v)
    print(f"export {k}={shlex.quote(v)}")
' deploy/compose.yaml)"
  export KIZUNA_TLS_CERT=$RUN/tls/chain.crt KIZUNA_TLS_KEY=$RUN/tls/server.key KIZUNA_NGINX_LOGS=$check
  envsubst "$(env | sed -n 's/^\(KIZUNA_[A-Z0-9_]*\)=.*/${\1}/p' | tr '\n' ' ')" \
    < deploy/nginx/kizuna.conf.template > "$check/kizuna.conf"
  printf 'pid %s/nginx.pid;\nerror_log stderr;\nevents {}\nhttp {\n include %s/kizuna.conf;\n}\n' "$check" "$check" > "$check/nginx.conf"
  nginx -t -q -p "$check/" -c "$check/nginx.conf" -e "$check/error.log"
) || { echo "deploy/compose.yaml's nginx configuration is refused by nginx -t" >&2; rm -rf "$check"; exit 1; }
rm -rf "$check"
echo "==> compose.yaml parses; its nginx configuration passes nginx -t"

# 4. The HTTPS browser tests.
REPORT="$ROOT/e2e/cluster/.logs/report.json"
mkdir -p "$(dirname "$REPORT")"
rm -f "$REPORT"
status=0
(cd e2e && PLAYWRIGHT_JSON_OUTPUT_NAME="$REPORT" npx playwright test -c cluster/playwright.config.ts \
  --reporter=list,json "$@") || status=$?

if [ -f "$REPORT" ]; then
  node -e '
    const s = require(process.argv[1]).stats;
    const skipped = s.skipped ? `, ${s.skipped} skipped` : "";
    console.log(`cluster e2e: ${s.expected + s.flaky} passed, ${s.unexpected} failed${skipped} (${Math.round(s.duration / 1000)} s)`);
  ' "$REPORT" || true
fi
if [ "$status" -ne 0 ]; then
  echo "cluster e2e failed; logs of every part: deploy/cluster/run/logs/ (kept until the next run)" >&2
fi
exit "$status"
