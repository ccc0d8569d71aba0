#!/usr/bin/env bash
# The web tier's unit tests (vitest) and its type check.
set -euo pipefail
cd "$(dirname "$0")/../web"
export NEXT_TELEMETRY_DISABLED=1

echo "==> web: type check"
npx tsc --noEmit
echo "==> web: unit tests"
npx vitest run
