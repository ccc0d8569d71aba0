#!/usr/bin/env bash
# The web tier's unit tests (vitest), its type check, and that its generated
# API types match the API (needs ./.venv: `make test-web` sets it up first).
set -euo pipefail
cd "$(dirname "$0")/../web"
export NEXT_TELEMETRY_DISABLED=1

echo "==> web: generated API types"
./scripts/api-types.sh --check
echo "==> web: type check"
npx tsc --noEmit
echo "==> web: unit tests"
npx vitest run
