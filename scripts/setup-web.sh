#!/usr/bin/env bash
# Installs the web tier's and the browser tests' npm dependencies from their
# committed lock files (npm ci). Idempotent: a stamp of each lock file's hash
# makes a second run return at once.
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

for dir in web e2e; do
  stamp="$dir/node_modules/.kizuna-lock.sha256"
  want=$(cat "$dir/package.json" "$dir/package-lock.json" | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    continue
  fi
  echo "==> installing npm dependencies in $dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$stamp"
done
