#!/usr/bin/env bash
# The browser tests of the whole system: real Chromium (Debian's package),
# a real API and a real `next start` of the production build, with short
# token lifetimes. e2e/global-setup.ts starts the servers on test ports and
# stops them; this script also stops them should the run be interrupted.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
export NEXT_TELEMETRY_DISABLED=1
export CHROMIUM_PATH=${CHROMIUM_PATH:-/usr/bin/chromium}
export E2E_API_PORT=${E2E_API_PORT:-18000}
export E2E_WEB_PORT=${E2E_WEB_PORT:-13000}
export E2E_OTHER_PORT=${E2E_OTHER_PORT:-13001}
export E2E_ACCESS_TTL=${E2E_ACCESS_TTL:-6}
export E2E_REFRESH_GRACE=${E2E_REFRESH_GRACE:-2}

# 1. The browser: Debian's chromium (Playwright's own downloads are impossible here).
if [ ! -x "$CHROMIUM_PATH" ]; then
  echo "==> installing Debian's chromium"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  if ! $SUDO apt-get install -y --no-install-recommends chromium >/dev/null; then
    $SUDO apt-get update >/dev/null
    $SUDO apt-get install -y --no-install-recommends chromium >/dev/null
  fi
fi

# 2. Dependencies and the production build (always fresh: never test a stale build).
./scripts/setup-web.sh
[ -x .venv/bin/kizuna ] || ./scripts/setup-python.sh
./web/scripts/build.sh

# 3. Run. The servers' process groups are listed in e2e/.logs/pids while they
#    run; if we are interrupted before the global teardown, stop exactly those.
PIDS="$ROOT/e2e/.logs/pids"
cleanup() {
  if [ -f "$PIDS" ]; then
    while read -r pid; do
      [ -n "$pid" ] && kill -TERM -- "-$pid" 2>/dev/null || true
    done < "$PIDS"
    rm -f "$PIDS"
  fi
}
trap cleanup EXIT INT TERM

REPORT="$ROOT/e2e/.logs/report.json"
mkdir -p "$ROOT/e2e/.logs"
rm -f "$REPORT"
status=0
(cd e2e && PLAYWRIGHT_JSON_OUTPUT_NAME="$REPORT" npx playwright test --reporter=list,json "$@") || status=$?

# One plain closing line for whoever reads the log.
if [ -f "$REPORT" ]; then
  node -e '
    const s = require(process.argv[1]).stats;
    const skipped = s.skipped ? `, ${s.skipped} skipped` : "";
    console.log(`e2e: ${s.expected + s.flaky} passed, ${s.unexpected} failed${skipped}`);
  ' "$REPORT" || true
fi
if [ "$status" -ne 0 ]; then
  echo "e2e failed; server logs: e2e/.logs/api.log, e2e/.logs/web.log" >&2
fi
exit "$status"
