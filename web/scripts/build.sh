#!/usr/bin/env bash
# Builds the web tier for production (next build). With --if-stale, skips the
# build when web/.next is newer than every source file and than the installed
# @kizuna/next (used by `make run`; the browser tests always build).
set -euo pipefail
cd "$(dirname "$0")/.."
export NEXT_TELEMETRY_DISABLED=1

if [ "${1:-}" = "--if-stale" ] && [ -f .next/BUILD_ID ]; then
  # node_modules is skipped, but @kizuna/next's install stamp (written by
  # scripts/setup-web.sh each time it installs the package) is not: an
  # installed copy's own files carry npm pack's fixed dates.
  newer=$(find . \( -path ./node_modules -o -path ./.next -o -path ./test \) -prune -o \
    -type f ! -name '*.tsbuildinfo' ! -name 'next-env.d.ts' -newer .next/BUILD_ID -print -quit)
  stamp=node_modules/.kizuna-next.sha256
  if [ -z "$newer" ] && { [ ! -f "$stamp" ] || [ ! "$stamp" -nt .next/BUILD_ID ]; }; then
    echo "==> web: production build is up to date"
    exit 0
  fi
fi
echo "==> web: next build"
npx next build
