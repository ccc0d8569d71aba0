#!/usr/bin/env bash
# The web tier's two benchmarks (see bench/README.md, "Web"):
#   1. proxy cost per request: over HTTP with and without the proxy, and the
#      proxy function in process;
#   2. browser time of an expired-token navigation against a valid-token one.
# Each prints a table with ratios to a baseline measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/../.."
export NEXT_TELEMETRY_DISABLED=1
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

./scripts/setup-web.sh
[ -x .venv/bin/kizuna ] || ./scripts/setup-python.sh
[ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] || { echo "bench: chromium missing; run scripts/test-e2e.sh once (it installs it)" >&2; exit 1; }
./web/scripts/build.sh --if-stale

node bench/web/proxy-cost.mjs
(cd web && npx vitest run --config ../bench/web/vitest.config.mjs --silent=false 2>&1 | sed -n '/^@kizuna.next proxy in process/p;/^|/p;/^target/p')
node bench/web/navigation.mjs
