#!/usr/bin/env bash
# The token-verifier package (verifier/, distribution kizuna-verifier): installed into ./.venv
# (editable, with its fastapi extra), then ruff, ruff format --check, mypy --strict and pytest.
# Its integration tests start ./.venv/bin/kizuna, which setup-python.sh installs.
# Extra arguments go to pytest (e.g. -k feed).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup-python.sh
echo "==> verifier: pip install -e verifier[fastapi]"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e 'verifier[fastapi]'

cd verifier
echo "==> verifier: ruff"
../.venv/bin/ruff check src tests
../.venv/bin/ruff format --check src tests
echo "==> verifier: mypy --strict"
../.venv/bin/mypy
echo "==> verifier: pytest"
../.venv/bin/pytest -q "$@"
