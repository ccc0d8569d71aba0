#!/usr/bin/env bash
# The API's whole test suite twice, with the same tests and the same expectations: on SQLite
# stores, then on PostgreSQL (one server on loopback for the run, a database per test; see
# api/README.md, "Tests on both databases"). Both runs always run; it fails if either failed.
# Extra arguments go to pytest in both runs (e.g. -k rotation, or tests/test_flow.py).
set -uo pipefail
cd "$(dirname "$0")/../api"

failed=()
for database in sqlite postgres; do
    echo "==> API tests on $database"
    time KIZUNA_TEST_DATABASE=$database ../.venv/bin/pytest -q "$@" || failed+=("$database")
done
if ((${#failed[@]})); then
    echo "API tests failed on: ${failed[*]}" >&2
    exit 1
fi
