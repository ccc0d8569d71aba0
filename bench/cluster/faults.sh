#!/usr/bin/env bash
# Load and faults against the cluster of deploy/cluster (issue 11): each scenario runs the load
# generator (bench/web/load.mjs: racing tabs, 2-second access tokens, the revoked-token prober)
# through nginx for a while, breaks one part in the middle, brings it back, and then checks the
# store: no session forked (two live refresh tokens), none revoked for anything but a sign-out.
#
#   bench/cluster/faults.sh [--users 200] [--tabs 3] [--seconds 600] [SCENARIO...]
#
# SCENARIO: steady (no fault; the soak), api (kill -9 one API replica), pg (restart PostgreSQL),
# redis (stop Redis for a while), web (kill -9 one web replica). Default: all five.
# The cluster must not be running: each scenario brings up a fresh one (2-second access
# tokens) and takes it down. Every table goes to stdout and to bench/cluster/results/.
# Loopback only; bounded: each scenario lasts --seconds plus start-up.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CLUSTER=$ROOT/deploy/cluster/cluster.sh
OUT=$ROOT/bench/cluster/results
USERS=200 TABS=3 SECONDS_=600
SCENARIOS=()
while [ $# -gt 0 ]; do
  case $1 in
    --users) USERS=$2; shift 2 ;;
    --tabs) TABS=$2; shift 2 ;;
    --seconds) SECONDS_=$2; shift 2 ;;
    steady|api|pg|redis|web) SCENARIOS+=("$1"); shift ;;
    *) echo "usage: $0 [--users N] [--tabs N] [--seconds N] [steady|api|pg|redis|web ...]" >&2; exit 2 ;;
  esac
done
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(steady api pg redis web)
mkdir -p "$OUT"

# The fault starts a third into the run and lasts 8 s (Redis: 15 s), leaving the rest of the
# run to show that everything came back by itself.
FAULT_AT=$((SECONDS_ / 3))
[ "$FAULT_AT" -ge 12 ] || FAULT_AT=12

break_part() {
  case $1 in
    steady) ;;
    api) "$CLUSTER" kill api1; sleep 8; "$CLUSTER" start api1 ;;
    pg) "$CLUSTER" stop pg; sleep 8; "$CLUSTER" start pg ;;
    redis) "$CLUSTER" stop redis; sleep 15; "$CLUSTER" start redis ;;
    web) "$CLUSTER" kill web1; sleep 8; "$CLUSTER" start web1 ;;
  esac
}

describe() {
  case $1 in
    steady) echo "no fault" ;;
    api) echo "kill -9 api1 at ${FAULT_AT} s, restarted 8 s later" ;;
    pg) echo "PostgreSQL stopped at ${FAULT_AT} s, started 8 s later" ;;
    redis) echo "Redis stopped at ${FAULT_AT} s, started 15 s later" ;;
    web) echo "kill -9 web1 at ${FAULT_AT} s, restarted 8 s later" ;;
  esac
}

psql_cluster() {
  # shellcheck disable=SC1091
  (. "$ROOT/deploy/cluster/run/cluster.env" && psql -h 127.0.0.1 -p "$PG_PORT" -U kizuna -d kizuna -At -F ' ' -c "$1")
}

failed=0
trap '"$CLUSTER" down > /dev/null 2>&1 || true' EXIT
for scenario in "${SCENARIOS[@]}"; do
  stamp=$(date -u +%Y%m%dT%H%MZ)
  result=$OUT/$stamp-$scenario.md
  echo "==> $scenario: $(describe "$scenario") — $USERS users × $TABS tabs, $SECONDS_ s"
  KIZUNA_CLUSTER_ACCESS_TTL=2 KIZUNA_SIGNUP_PER_IP=1000000 KIZUNA_LOG_LEVEL=warning \
    "$CLUSTER" up > "$OUT/$stamp-$scenario.up.log"
  # shellcheck disable=SC1091
  . "$ROOT/deploy/cluster/run/cluster.env"
  victims=$OUT/$stamp-$scenario.victims
  node "$ROOT/bench/web/load.mjs" --web "$ORIGIN" --api "http://127.0.0.1:$LB_PORT" --ca "$CA_CERT" \
    --users "$USERS" --tabs "$TABS" --seconds "$SECONDS_" --victims "$victims" \
    --label "nginx (TLS, h1.1 from the generator) → 2 web → 2 API, PostgreSQL + Redis; fault: $(describe "$scenario")" \
    > "$result" 2> "$OUT/$stamp-$scenario.load.log" &
  load=$!
  sleep "$FAULT_AT"
  break_part "$scenario"
  status=0
  wait "$load" || status=$?
  {
    echo
    echo "store after the run:"
    echo "- sessions with more than one live refresh token (forked): $(psql_cluster "SELECT count(*) FROM (SELECT session_id FROM refresh_tokens WHERE rotated_at IS NULL AND revoked_at IS NULL GROUP BY session_id HAVING count(*) > 1) f")"
    echo "- sessions ended, by reason: $(psql_cluster "SELECT r || ': ' || n FROM (SELECT coalesce(revoke_reason, '?') AS r, count(*) AS n FROM sessions WHERE revoked_at IS NOT NULL GROUP BY 1) c ORDER BY 1" | paste -sd, -)"
  } >> "$result"
  cat "$result"
  forked=$(psql_cluster "SELECT count(*) FROM (SELECT session_id FROM refresh_tokens WHERE rotated_at IS NULL AND revoked_at IS NULL GROUP BY session_id HAVING count(*) > 1) f")
  # Sessions of users nobody signed out must still be live; the prober's may end either way.
  [ -f "$victims" ] || : > "$victims"
  in_list=$(sed "s/'/''/g; s/.*/'&'/" "$victims" | paste -sd, -)
  stolen=$(psql_cluster "SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.revoked_at IS NOT NULL AND u.email NOT IN (${in_list:-''})")
  if [ "$status" -ne 0 ] || [ "$forked" != 0 ] || [ "$stolen" != 0 ]; then
    echo "!! $scenario: load exit $status, forked sessions $forked, sessions ended of users nobody signed out $stolen"
    failed=1
  fi
  "$CLUSTER" down > /dev/null
done
exit $failed
