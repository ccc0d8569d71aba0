#!/usr/bin/env bash
# The TypeScript types of the API's requests and answers now belong to
# @kizuna/next (nextjs/src/api-types.ts, exported as @kizuna/next/api-types):
# this runs its generator. With --check, fails if that file is stale.
set -euo pipefail
exec "$(dirname "$0")/../../nextjs/scripts/api-types.sh" "$@"
