#!/usr/bin/env bash
# The example's browser tests, run from INSTALLED packages, as a team would have them:
#   packages/kizuna-<v>-py3-none-any.whl             Kizuna's API server (and notes_api.embedded)
#   packages/kizuna_verifier-<v>-py3-none-any.whl    the token verifier (notes API)
#   packages/kizuna-next-<v>.tgz                     @kizuna/next (web)
# The repository's scripts/test-packages.sh builds those (python -m build, npm pack) and runs
# this script in a copy of the example. Installs into ./.venv and the npm folders here; starts
# and stops every server itself (e2e/global-setup.ts). Needs Debian's chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
export NEXT_TELEMETRY_DISABLED=1
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

one() {  # exactly one file matches
  local found=("$@")
  if [ ${#found[@]} -ne 1 ] || [ ! -f "${found[0]}" ]; then
    echo "examples/notes: expected one of $* in packages/ (see README.md)" >&2
    exit 1
  fi
  echo "${found[0]}"
}
server=$(one packages/kizuna-[0-9]*.whl)
verifier=$(one packages/kizuna_verifier-[0-9]*.whl)
one packages/kizuna-next-[0-9]*.tgz >/dev/null

echo "==> notes: Python packages into .venv"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check "$server" "$verifier[fastapi]" "./api[embedded]" pytest httpx

echo "==> notes: the API with Kizuna embedded (pytest)"
(cd api && ../.venv/bin/python -m pytest -q -p no:cacheprovider tests)

echo "==> notes: web (npm install, next build)"
(cd web && npm install --no-audit --no-fund --loglevel=error && npx next build)

echo "==> notes: browser tests"
(cd e2e && npm install --no-audit --no-fund --loglevel=error && npx playwright test "$@")
