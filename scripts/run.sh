#!/usr/bin/env bash
# `make run`: the whole system on this machine, in production mode.
#   migrates the SQLite store, creates a demo user and an admin if absent,
#   starts the API on 127.0.0.1:8000 and the web tier on localhost:3000,
#   prints the URL and the demo credentials, and stops both on Ctrl-C.
# Dependencies are installed by `make setup` (scripts/setup-python.sh and
# scripts/setup-web.sh), which `make run` runs first.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

export NEXT_TELEMETRY_DISABLED=1
export KIZUNA_DATA_DIR=${KIZUNA_DATA_DIR:-$ROOT/data}
API_HOST=127.0.0.1
API_PORT=${KIZUNA_API_PORT:-8000}
WEB_PORT=${PORT:-3000}
KIZUNA="$ROOT/.venv/bin/kizuna"
DEMO_EMAIL=${KIZUNA_DEMO_EMAIL:-demo@example.com}
ADMIN_EMAIL=${KIZUNA_DEMO_ADMIN_EMAIL:-admin@example.com}

die() { echo "run: $*" >&2; exit 1; }
[ -x "$KIZUNA" ] || die "$KIZUNA is missing: run 'make setup' (or scripts/setup-python.sh)"
[ -d web/node_modules ] || die "web/node_modules is missing: run 'make setup' (or scripts/setup-web.sh)"
for port in "$API_PORT" "$WEB_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "port $port is already in use; stop what holds it (or set PORT / KIZUNA_API_PORT)"
  fi
done

./web/scripts/build.sh --if-stale

mkdir -p "$KIZUNA_DATA_DIR"
echo "==> migrating the store in $KIZUNA_DATA_DIR"
"$KIZUNA" db upgrade

# Demo accounts: random passwords, made once and kept beside the data they
# belong to (never a well-known password, even in development).
CREDS="$KIZUNA_DATA_DIR/demo-credentials"
if [ ! -f "$CREDS" ]; then
  existing=$("$KIZUNA" users list 2>/dev/null || true)
  gen() { head -c 18 /dev/urandom | base64 | tr '+/' '-_'; }
  demo_pw=$(gen)
  admin_pw=$(gen)
  (umask 077 && printf 'DEMO_PASSWORD=%s\nADMIN_PASSWORD=%s\n' "$demo_pw" "$admin_pw" > "$CREDS")
  for pair in "$DEMO_EMAIL:user" "$ADMIN_EMAIL:admin"; do
    email=${pair%%:*}
    if grep -q "\"$email\"" <<<"$existing"; then
      echo "run: $email exists already with a password not on file; $CREDS does not apply to it" >&2
    fi
  done
fi
# shellcheck disable=SC1090
. "$CREDS"
printf '%s' "$DEMO_PASSWORD" | "$KIZUNA" users create --email "$DEMO_EMAIL" --name "Demo User" --password-stdin --if-missing >/dev/null
printf '%s' "$ADMIN_PASSWORD" | "$KIZUNA" users create --email "$ADMIN_EMAIL" --name "Admin" --role admin --password-stdin --if-missing >/dev/null

api_pid=""
web_pid=""
stop() {
  trap - INT TERM EXIT
  echo
  echo "==> stopping"
  for pid in $web_pid $api_pid; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in $web_pid $api_pid; do wait "$pid" 2>/dev/null || true; done
  echo "==> stopped"
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

echo "==> starting the API on http://$API_HOST:$API_PORT"
"$KIZUNA" serve --host "$API_HOST" --port "$API_PORT" &
api_pid=$!
echo "==> starting the web tier on http://localhost:$WEB_PORT"
(cd web && KIZUNA_API_URL="http://$API_HOST:$API_PORT" NODE_ENV=production \
  exec node node_modules/next/dist/bin/next start --port "$WEB_PORT" --hostname 127.0.0.1) &
web_pid=$!

ready() {
  node -e 'fetch(process.argv[1], { redirect: "manual", signal: AbortSignal.timeout(2000) })
    .then((r) => process.exit(r.status < 500 ? 0 : 1), () => process.exit(1))' "$1"
}
for _ in $(seq 1 150); do
  if ready "http://$API_HOST:$API_PORT/readyz" && ready "http://127.0.0.1:$WEB_PORT/login"; then break; fi
  kill -0 "$api_pid" 2>/dev/null || die "the API exited; see its output above"
  kill -0 "$web_pid" 2>/dev/null || die "the web tier exited; see its output above"
  sleep 0.2
done

cat <<BANNER

  Kizuna is running:  http://localhost:$WEB_PORT

  Demo user:   $DEMO_EMAIL
  Password:    $DEMO_PASSWORD
  Admin:       $ADMIN_EMAIL
  Password:    $ADMIN_PASSWORD
  (kept in $CREDS)

  Press Ctrl-C to stop.

BANNER

# Stay up until Ctrl-C, or until either server stops by itself.
set +e
wait -n "$api_pid" "$web_pid"
code=$?
# 130/143: Ctrl-C or a TERM reached the servers too; anything else is news.
case "$code" in 130|143) ;; *) echo "run: a server stopped by itself (exit $code)" >&2 ;; esac
exit "$code"
