#!/usr/bin/env bash
# Installs the web tier's and the browser tests' npm dependencies from their
# committed lock files (npm ci), after building @kizuna/next (nextjs/), which
# the web tier installs as a copy of its package (web/.npmrc: install-links).
# Idempotent: stamps of each lock file's hash, of the package's sources and of
# the built package make a second run return at once.
set -euo pipefail
cd "$(dirname "$0")/.."

# Playwright drives Debian's chromium (scripts/test-e2e.sh); never download a browser.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
export NEXT_TELEMETRY_DISABLED=1

if ! command -v node >/dev/null 2>&1; then
  echo "setup-web: node is not installed (Node.js 20.9 or newer is needed)" >&2
  exit 1
fi
node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<20||(a===20&&b<9)) { console.error("setup-web: Node.js "+process.versions.node+" is too old; 20.9 or newer is needed"); process.exit(1) }'

# The hash of some files' contents (names included), for the stamps below.
hash_files() { find "$@" -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1; }

installed=no
install() { # dir, wanted stamp value; sets $installed
  local dir=$1 want=$2 stamp="$1/node_modules/.kizuna-lock.sha256"
  installed=no
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  echo "==> installing npm dependencies in $dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$stamp"
  installed=yes
}

# 1. @kizuna/next: its dependencies, then its build (dist/) when its sources changed.
install nextjs "$(cat nextjs/package.json nextjs/package-lock.json | sha256sum | cut -d' ' -f1)"
built=nextjs/node_modules/.kizuna-build.sha256
want=$(hash_files nextjs/src nextjs/package.json nextjs/tsconfig.json nextjs/tsconfig.build.json nextjs/scripts/build.mjs \
  ! -path 'nextjs/src/generated/*')
if [ ! -f "$built" ] || [ "$(cat "$built")" != "$want" ] || [ ! -f nextjs/dist/index.js ]; then
  echo "==> building @kizuna/next"
  (cd nextjs && npm run --silent build)
  echo "$want" > "$built"
fi

# 2. The web tier, whose install holds a copy of the built package (so a new
#    build means a new install), and the browser tests.
package=$(hash_files nextjs/package.json nextjs/README.md nextjs/dist)
install web "$(cat web/package.json web/package-lock.json web/.npmrc | sha256sum | cut -d' ' -f1)-$package"
# web/scripts/build.sh --if-stale rebuilds after a new copy of the package.
[ "$installed" = no ] || echo "$package" > web/node_modules/.kizuna-next.sha256
install e2e "$(cat e2e/package.json e2e/package-lock.json | sha256sum | cut -d' ' -f1)"
