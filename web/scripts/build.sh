#!/usr/bin/env bash
# Builds the web tier for production (next build). With --if-stale, skips the
# build when web/.next is newer than every source file (used by `make run`;
# the browser tests always build). First brings public/kizuna-refresh.js up to
# date with its TypeScript (it is written only when it changes).
set -euo pipefail
cd "$(dirname "$0")/.."
export NEXT_TELEMETRY_DISABLED=1

node scripts/refresh-script.mjs

if [ "${1:-}" = "--if-stale" ] && [ -f .next/BUILD_ID ]; then
  newer=$(find . \( -path ./node_modules -o -path ./.next -o -path ./test \) -prune -o \
    -type f ! -name '*.tsbuildinfo' ! -name 'next-env.d.ts' -newer .next/BUILD_ID -print -quit)
  if [ -z "$newer" ]; then
    echo "==> web: production build is up to date"
    exit 0
  fi
fi
echo "==> web: next build"
npx next build
