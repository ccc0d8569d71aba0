#!/usr/bin/env bash
# The web tier's tests: @kizuna/next (nextjs/: its type check, its unit tests
# against its sources and its build) and the app built on it (web/: its type
# check and unit tests), and that the generated API types match the API
# (needs ./.venv: `make test-web` sets it up first).
set -euo pipefail
cd "$(dirname "$0")/.."
export NEXT_TELEMETRY_DISABLED=1

# The package built from its current sources, and web/'s copy of that build
# (a no-op when nothing changed).
./scripts/setup-web.sh

echo "==> @kizuna/next: generated API types"
./nextjs/scripts/api-types.sh --check
echo "==> @kizuna/next: type check"
(cd nextjs && npx tsc --noEmit)
echo "==> @kizuna/next: unit tests"
(cd nextjs && npx vitest run)
echo "==> web: type check"
(cd web && npx tsc --noEmit)
echo "==> web: unit tests"
(cd web && npx vitest run)
