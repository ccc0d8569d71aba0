#!/usr/bin/env bash
# `make test-scale`: the short versions of issue 11's scale-out runs, for CI (the full ones are
# documented commands in bench/README.md):
#   1. load through the cluster (nginx → 2 web → 2 API → PostgreSQL + Redis) with racing tabs,
#      2-second tokens and the revoked-token prober, once without a fault and once with each
#      fault (kill -9 an API replica, restart PostgreSQL, stop Redis, kill -9 a web replica):
#      0 spurious logouts, 0 accepted revoked tokens, no 5xx but 503, no session forked or
#      ended by anything but a sign-out;
#   2. refresh and userinfo with 10 k and 20 k stored sessions on PostgreSQL, and a purge while
#      rotations run (no errors);
#   3. the admin list, search and user pages with 2 k and 20 k users on PostgreSQL.
# Loopback only; every part stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
export NEXT_TELEMETRY_DISABLED=1
if [ "$(id -u)" -eq 0 ]; then ./scripts/setup-services.sh; fi
[ -x .venv/bin/kizuna ] || ./scripts/setup-python.sh
./scripts/setup-web.sh

if ./deploy/cluster/cluster.sh status 2> /dev/null | grep -qE ' (ready|alive) '; then
  echo "test-scale: a cluster is running already (make cluster-down first)" >&2
  exit 1
fi

echo "==> scale: load and faults through the cluster (short)"
./bench/cluster/faults.sh --users 20 --tabs 2 --seconds 30 steady api pg redis web
echo "==> scale: stored sessions (quick)"
.venv/bin/python bench/api/scale.py --quick
echo "==> scale: admin pages (quick)"
.venv/bin/python bench/api/admin.py --quick --store postgres
