#!/usr/bin/env bash
# Creates ./.venv with the API's pinned dependencies and, editable, the kizuna package (api/)
# and the kizuna-verifier package (verifier/; its few dependencies are in the same lock).
# Idempotent: does nothing when the lock file has not changed since the last run.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.kizuna-lock.sha256
want=$(cat api/requirements.lock api/pyproject.toml verifier/pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "==> installing Python dependencies"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r api/requirements.lock
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e api -e verifier
echo "$want" > "$stamp"
