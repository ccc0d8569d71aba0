#!/usr/bin/env bash
# Kizuna's scale-out topology on this machine, every part on loopback (deploy/README.md):
#
#   browser ─HTTPS/h2─▶ nginx :PUBLIC ─▶ web1, web2 (next start) ─▶ nginx :INTERNAL ─▶ api1, api2
#                                                                          (kizuna serve) ─▶ PostgreSQL, Redis
#
# usage: cluster.sh up | down | status | env | clean
#        cluster.sh start|stop|kill|restart PART     PART: pg redis api1 api2 web1 web2 nginx
#
# State lives in the run dir (deploy/cluster/run, git-ignored): pids/PART.pid, logs/PART.log,
# tls/ (CA, server certificate), pg/ (the throwaway PostgreSQL data dir), api-data/ (the key
# ring both API replicas sign with), nginx/ (the rendered configuration), cluster.env (every
# port and path, for scripts) and demo-credentials. `up` starts from fresh data; `down` stops
# every part and keeps the logs until the next `up` (or `clean`).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RUN=${KIZUNA_CLUSTER_RUN:-$HERE/run}
STATE=$RUN/cluster.env
PARTS=(pg redis api1 api2 web1 web2 nginx)

die() { echo "cluster: $*" >&2; exit 1; }
say() { echo "==> $*"; }

# -- settings ------------------------------------------------------------------------------
# Once `up` has run, every other command reads what it chose from cluster.env, so a fault
# script needs no environment of its own.
load_settings() {
  if [ "${1:-}" != "fresh" ] && [ -f "$STATE" ]; then
    # shellcheck disable=SC1090
    . "$STATE"
    tier_env
    return
  fi
  local root=0
  [ "$(id -u)" -eq 0 ] && root=1
  NAME=${KIZUNA_CLUSTER_NAME:-example.test}
  PUBLIC_PORT=${KIZUNA_CLUSTER_PORT:-$([ $root -eq 1 ] && echo 443 || echo 24443)}
  HTTP_PORT=${KIZUNA_CLUSTER_HTTP_PORT:-$([ $root -eq 1 ] && echo 80 || echo 24480)}
  LB_PORT=${KIZUNA_CLUSTER_LB_PORT:-24700}
  API1_PORT=${KIZUNA_CLUSTER_API1_PORT:-24701}
  API2_PORT=${KIZUNA_CLUSTER_API2_PORT:-24702}
  WEB1_PORT=${KIZUNA_CLUSTER_WEB1_PORT:-24711}
  WEB2_PORT=${KIZUNA_CLUSTER_WEB2_PORT:-24712}
  PG_PORT=${KIZUNA_CLUSTER_PG_PORT:-24732}
  REDIS_PORT=${KIZUNA_CLUSTER_REDIS_PORT:-24763}
  ACCESS_TTL=${KIZUNA_CLUSTER_ACCESS_TTL:-300}
  REFRESH_GRACE=${KIZUNA_CLUSTER_REFRESH_GRACE:-10}
  NGINX_WORKERS=${KIZUNA_CLUSTER_NGINX_WORKERS:-1}
  # Loopback is 127.0.0.0/8: nginx connects to the web replicas from 127.0.0.2 and to
  # the API replicas from 127.0.0.3, so each tier can tell its proxy from a client.
  # The web replicas' own calls leave from 127.0.0.1 (the kernel's choice on loopback).
  EDGE_BIND=127.0.0.2
  INTERNAL_BIND=127.0.0.3
  WEB_SOURCE=127.0.0.1
  if [ "$PUBLIC_PORT" = 443 ]; then ORIGIN="https://$NAME"; else ORIGIN="https://$NAME:$PUBLIC_PORT"; fi
  tier_env
}

write_state() {
  local spki
  spki=$(openssl pkey -in "$RUN/tls/server.key" -pubout -outform der | openssl dgst -sha256 -binary | base64)
  cat > "$STATE" <<EOF
# Written by cluster.sh up: what this cluster runs with (sourced by cluster.sh and the tests).
RUN=$RUN
NAME=$NAME
ORIGIN=$ORIGIN
PUBLIC_PORT=$PUBLIC_PORT
HTTP_PORT=$HTTP_PORT
LB_PORT=$LB_PORT
API1_PORT=$API1_PORT
API2_PORT=$API2_PORT
WEB1_PORT=$WEB1_PORT
WEB2_PORT=$WEB2_PORT
PG_PORT=$PG_PORT
REDIS_PORT=$REDIS_PORT
ACCESS_TTL=$ACCESS_TTL
REFRESH_GRACE=$REFRESH_GRACE
NGINX_WORKERS=$NGINX_WORKERS
EDGE_BIND=$EDGE_BIND
INTERNAL_BIND=$INTERNAL_BIND
WEB_SOURCE=$WEB_SOURCE
CA_CERT=$RUN/tls/ca.crt
SERVER_SPKI=$spki
CREDENTIALS=$RUN/demo-credentials
EOF
}

port_of() {
  case "$1" in
    pg) echo "$PG_PORT" ;; redis) echo "$REDIS_PORT" ;;
    api1) echo "$API1_PORT" ;; api2) echo "$API2_PORT" ;;
    web1) echo "$WEB1_PORT" ;; web2) echo "$WEB2_PORT" ;;
    nginx) echo "$PUBLIC_PORT" ;;
    *) die "unknown part '$1' (one of: ${PARTS[*]})" ;;
  esac
}

# -- processes -----------------------------------------------------------------------------
pidfile() { echo "$RUN/pids/$1.pid"; }

pid_of() {
  local f
  f=$(pidfile "$1")
  if [ "$1" = pg ] && [ -f "$RUN/pg/data/postmaster.pid" ]; then
    head -n 1 "$RUN/pg/data/postmaster.pid"
  elif [ -f "$f" ]; then
    cat "$f"
  fi
}

# Alive, and still ours: every part leads its own session (setsid; pg_ctl does the same for
# the postmaster), so a pid file left by a process killed from outside, whose number has
# since gone to some other program, is not mistaken for the part.
alive() {
  local pid sid
  pid=$(pid_of "$1")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  sid=$(ps -o sid= -p "$pid" 2>/dev/null | tr -d ' ')
  [ "$sid" = "$pid" ]
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Starts a command as the leader of its own process group (setsid), so stop and kill reach
# its children too; its output goes to logs/PART.log.
spawn() {
  local part=$1
  shift
  echo "---- $(date -u +%FT%TZ) start" >> "$RUN/logs/$part.log"
  setsid "$@" >> "$RUN/logs/$part.log" 2>&1 < /dev/null &
  echo $! > "$(pidfile "$part")"
}

signal_group() {
  local sig=$1 pid=$2
  kill "-$sig" -- "-$pid" 2>/dev/null || kill "-$sig" "$pid" 2>/dev/null || true
}

wait_gone() {
  local pid=$1 tries=$2
  for _ in $(seq 1 "$tries"); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_bin() {
  local found
  found=$(compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" | sort -V | tail -n 1)
  [ -n "$found" ] || die "PostgreSQL is not installed: run scripts/setup-services.sh"
  dirname "$found"
}

# -- the parts -----------------------------------------------------------------------------
# The environment of each tier (for `env`): every KIZUNA_* of the caller's environment goes
# through too (e.g. KIZUNA_SIGNUP_PER_IP for a load run); these are the cluster's own and win.
tier_env() {
  API_ENV=(
    KIZUNA_DATA_DIR="$RUN/api-data"
    KIZUNA_DATABASE_URL="postgresql+asyncpg://kizuna@127.0.0.1:$PG_PORT/kizuna"
    KIZUNA_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
    KIZUNA_TRUSTED_PROXIES="$INTERNAL_BIND/32,$WEB_SOURCE/32"
    KIZUNA_ACCESS_TOKEN_TTL="$ACCESS_TTL"
    KIZUNA_REFRESH_GRACE="$REFRESH_GRACE"
  )
  WEB_ENV=(
    KIZUNA_API_URL="http://127.0.0.1:$LB_PORT"
    KIZUNA_PUBLIC_ORIGIN="$ORIGIN"
    KIZUNA_TRUSTED_PROXIES="$EDGE_BIND/32"
    KIZUNA_REFRESH_GRACE="$REFRESH_GRACE"
    NODE_ENV=production
    NEXT_TELEMETRY_DISABLED=1
  )
}

kizuna() { env "${API_ENV[@]}" "$ROOT/.venv/bin/kizuna" "$@"; }

ready() {
  local part=$1 port
  port=$(port_of "$part")
  case "$part" in
    pg) pg_isready -q -h 127.0.0.1 -p "$port" ;;
    redis) [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ] ;;
    api*) curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$port/readyz" ;;
    web*) local code
          code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://127.0.0.1:$port/login" || true)
          [ "${code:-000}" != 000 ] && [ "$code" -lt 500 ] ;;
    nginx) curl -fs -o /dev/null --max-time 3 --cacert "$RUN/tls/ca.crt" \
             --resolve "$NAME:$PUBLIC_PORT:127.0.0.1" "$ORIGIN/login" ;;
  esac
}

wait_ready() {
  local part=$1 seconds=${2:-60}
  for _ in $(seq 1 $((seconds * 5))); do
    if ready "$part"; then return 0; fi
    alive "$part" || die "$part exited while starting; see $RUN/logs/$part.log"
    sleep 0.2
  done
  die "$part was not ready within ${seconds}s; see $RUN/logs/$part.log"
}

start_part() {
  local part=$1 port
  port=$(port_of "$part")
  if alive "$part"; then echo "$part is running already (pid $(pid_of "$part"))"; return 0; fi
  port_busy "$port" && die "port $port (for $part) is in use by something else"
  case "$part" in
    pg)
      local bin
      bin=$(pg_bin)
      as_postgres "$bin/pg_ctl" -D "$RUN/pg/data" -l "$RUN/pg/postgres.log" -w -t 30 \
        -o "-k $RUN/pg -h 127.0.0.1 -p $port -c fsync=off -c max_connections=300" start > /dev/null
      ;;
    redis)
      spawn redis redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
        --dir "$RUN/redis" --daemonize no --protected-mode yes
      ;;
    api1|api2)
      spawn "$part" env "${API_ENV[@]}" "$ROOT/.venv/bin/kizuna" serve --host 127.0.0.1 --port "$port"
      ;;
    web1|web2)
      (cd "$RUN/web" && spawn "$part" env "${WEB_ENV[@]}" node node_modules/next/dist/bin/next start \
        --port "$port" --hostname 127.0.0.1)
      ;;
    nginx)
      spawn nginx nginx -p "$RUN/nginx/" -c "$RUN/nginx/nginx.conf" -e "$RUN/logs/nginx-error.log"
      ;;
  esac
  wait_ready "$part"
  echo "$part ready (pid $(pid_of "$part"), port $port)"
}

stop_part() {
  local part=$1 pid
  if ! alive "$part"; then rm -f "$(pidfile "$part")"; return 0; fi
  pid=$(pid_of "$part")
  if [ "$part" = pg ]; then
    as_postgres "$(pg_bin)/pg_ctl" -D "$RUN/pg/data" -m fast -w stop > /dev/null || true
  else
    signal_group TERM "$pid"
  fi
  if ! wait_gone "$pid" 150; then
    echo "$part did not stop within 15s: killing it" >&2
    signal_group KILL "$pid"
    wait_gone "$pid" 50 || true
  fi
  rm -f "$(pidfile "$part")"
  echo "$part stopped"
}

# A crash: SIGKILL, no goodbye. For every part but PostgreSQL the whole process group goes
# (an API replica's hashing processes too); PostgreSQL's postmaster alone is killed, as in a
# crash, and its backends notice and exit by themselves.
kill_part() {
  local part=$1 pid
  alive "$part" || { echo "$part is not running"; return 0; }
  pid=$(pid_of "$part")
  if [ "$part" = pg ]; then kill -KILL "$pid"; else signal_group KILL "$pid"; fi
  wait_gone "$pid" 50 || true
  rm -f "$(pidfile "$part")"
  echo "$part killed (pid $pid)"
}

# -- up ------------------------------------------------------------------------------------
make_certificates() {
  local tls=$RUN/tls
  mkdir -p "$tls"
  # A CA of this cluster's own, and a server certificate signed by it for the public name
  # (SAN: browsers ignore the subject's CN).
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -days 30 \
    -subj "/CN=Kizuna local cluster CA" -keyout "$tls/ca.key" -out "$tls/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2> /dev/null
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -subj "/CN=$NAME" -keyout "$tls/server.key" -out "$tls/server.csr" 2> /dev/null
  printf '%s\n' "subjectAltName=DNS:$NAME" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" > "$tls/server.ext"
  openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" \
    -CAcreateserial -days 30 -sha256 -extfile "$tls/server.ext" -out "$tls/server.crt" 2> /dev/null
  cat "$tls/server.crt" "$tls/ca.crt" > "$tls/chain.crt"
  chmod 600 "$tls/ca.key" "$tls/server.key"
}

render_nginx() {
  local dir=$RUN/nginx
  mkdir -p "$dir"
  export KIZUNA_SERVER_NAME=$NAME KIZUNA_PUBLIC_ORIGIN=$ORIGIN
  export KIZUNA_PUBLIC_LISTEN=127.0.0.1:$PUBLIC_PORT KIZUNA_REDIRECT_LISTEN=127.0.0.1:$HTTP_PORT
  export KIZUNA_TLS_CERT=$RUN/tls/chain.crt KIZUNA_TLS_KEY=$RUN/tls/server.key
  export KIZUNA_HSTS=${KIZUNA_CLUSTER_HSTS:-max-age=31536000}
  export KIZUNA_WEB1=127.0.0.1:$WEB1_PORT KIZUNA_WEB2=127.0.0.1:$WEB2_PORT
  export KIZUNA_EDGE_BIND=$EDGE_BIND
  export KIZUNA_INTERNAL_LISTEN=127.0.0.1:$LB_PORT KIZUNA_INTERNAL_ALLOW=127.0.0.0/8
  export KIZUNA_API1=127.0.0.1:$API1_PORT KIZUNA_API2=127.0.0.1:$API2_PORT
  export KIZUNA_INTERNAL_BIND=$INTERNAL_BIND KIZUNA_NGINX_LOGS=$RUN/logs
  local vars='${KIZUNA_SERVER_NAME} ${KIZUNA_PUBLIC_ORIGIN} ${KIZUNA_PUBLIC_LISTEN} ${KIZUNA_REDIRECT_LISTEN} ${KIZUNA_TLS_CERT} ${KIZUNA_TLS_KEY} ${KIZUNA_HSTS} ${KIZUNA_WEB1} ${KIZUNA_WEB2} ${KIZUNA_EDGE_BIND} ${KIZUNA_INTERNAL_LISTEN} ${KIZUNA_INTERNAL_ALLOW} ${KIZUNA_API1} ${KIZUNA_API2} ${KIZUNA_INTERNAL_BIND} ${KIZUNA_NGINX_LOGS}'
  envsubst "$vars" < "$ROOT/deploy/nginx/kizuna.conf.template" > "$dir/kizuna.conf"
  # The main context: what an nginx package's /etc/nginx/nginx.conf would hold, here with
  # every path in the run dir. As root the workers run as nobody (nginx's default).
  cat > "$dir/nginx.conf" <<EOF
daemon off;
worker_processes $NGINX_WORKERS;
worker_rlimit_nofile 16384;
pid $dir/nginx.pid;
error_log $RUN/logs/nginx-error.log warn;
events { worker_connections 8192; }
http {
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    default_type application/octet-stream;
    include $dir/kizuna.conf;
}
EOF
  nginx -t -q -p "$dir/" -c "$dir/nginx.conf" -e "$RUN/logs/nginx-error.log" \
    || die "nginx refused the configuration; see $RUN/logs/nginx-error.log"
}

# The web replicas run a copy of the production build, taken once at `up`: a `next build` in
# web/ (the browser tests, a developer) replaces web/.next under a running `next start`, and a
# replica restarted by a fault script would come back on another build than its sibling.
snapshot_web() {
  local src=$ROOT/web dst=$RUN/web before after
  before=$(cat "$src/.next/BUILD_ID" 2> /dev/null || true)
  [ -n "$before" ] || die "web/.next has no production build (is a build running?)"
  mkdir -p "$dst"
  cp -a "$src/.next" "$dst/.next"
  rm -rf "$dst/.next/cache"
  after=$(cat "$src/.next/BUILD_ID" 2> /dev/null || true)
  [ "$before" = "$after" ] || die "web/.next changed while it was copied (a build running?); try again"
  cp "$src/package.json" "$src/next.config.ts" "$src/tsconfig.json" "$src/.env" "$dst/"
  ln -s "$src/node_modules" "$dst/node_modules"
  ln -s "$src/public" "$dst/public"
}

prepare_postgres() {
  local bin
  bin=$(pg_bin)
  mkdir -p "$RUN/pg"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$RUN/pg"
  as_postgres "$bin/initdb" -D "$RUN/pg/data" -A trust -U kizuna > "$RUN/logs/pg-initdb.log" 2>&1 \
    || die "initdb failed; see $RUN/logs/pg-initdb.log"
  # The server writes its log as the postgres user, in a directory it owns.
  ln -sfn ../pg/postgres.log "$RUN/logs/pg.log"
}

create_users() {
  local creds=$RUN/demo-credentials
  gen() { head -c 18 /dev/urandom | base64 | tr '+/' '-_'; }
  local demo_pw admin_pw
  demo_pw=$(gen)
  admin_pw=$(gen)
  (umask 077 && printf 'DEMO_EMAIL=demo@example.com\nDEMO_PASSWORD=%s\nADMIN_EMAIL=admin@example.com\nADMIN_PASSWORD=%s\n' \
    "$demo_pw" "$admin_pw" > "$creds")
  printf '%s' "$demo_pw" | kizuna users create --email demo@example.com --name "Demo User" \
    --password-stdin > /dev/null
  printf '%s' "$admin_pw" | kizuna users create --email admin@example.com --name "Admin" \
    --role admin --password-stdin > /dev/null
}

cmd_up() {
  load_settings fresh
  for part in "${PARTS[@]}"; do
    [ -f "$(pidfile "$part")" ] && alive "$part" && die "the cluster is running already: '$0 down' first"
  done
  [ -f "$RUN/pg/data/postmaster.pid" ] && die "a PostgreSQL of an earlier cluster still runs: '$0 down' first"
  for port in "$PUBLIC_PORT" "$HTTP_PORT" "$LB_PORT" "$API1_PORT" "$API2_PORT" "$WEB1_PORT" "$WEB2_PORT" "$PG_PORT" "$REDIS_PORT"; do
    port_busy "$port" && die "port $port is in use; stop what holds it or set KIZUNA_CLUSTER_*_PORT"
  done
  [ -x "$ROOT/.venv/bin/kizuna" ] || die ".venv is missing: run 'make setup'"
  [ -d "$ROOT/web/node_modules" ] || die "web/node_modules is missing: run 'make setup'"
  for tool in nginx redis-server openssl envsubst curl pg_isready; do
    command -v "$tool" > /dev/null || die "$tool is missing: run scripts/setup-services.sh"
  done

  "$ROOT/web/scripts/build.sh" --if-stale

  rm -rf "$RUN"
  mkdir -p "$RUN/pids" "$RUN/logs" "$RUN/redis"
  (umask 077 && mkdir -p "$RUN/api-data")
  say "certificate for $NAME"
  make_certificates
  write_state
  render_nginx
  snapshot_web

  say "PostgreSQL on 127.0.0.1:$PG_PORT, Redis on 127.0.0.1:$REDIS_PORT"
  prepare_postgres
  start_part pg
  createdb -h 127.0.0.1 -p "$PG_PORT" -U kizuna kizuna
  start_part redis

  say "migrating; the key ring both API replicas sign with; demo users"
  kizuna db upgrade > "$RUN/logs/migrate.log" 2>&1 \
    || die "migration failed; see $RUN/logs/migrate.log"
  kizuna keys list > /dev/null
  create_users

  say "API replicas, web replicas, nginx"
  start_part api1
  start_part api2
  start_part web1
  start_part web2
  start_part nginx

  # shellcheck disable=SC1090
  . "$RUN/demo-credentials"
  cat <<BANNER

  Kizuna cluster is running:  $ORIGIN
  (map $NAME to 127.0.0.1 and trust $RUN/tls/ca.crt in the browser you use;
   curl: curl --cacert $RUN/tls/ca.crt --resolve $NAME:$PUBLIC_PORT:127.0.0.1 $ORIGIN/login)

  Demo user:   $DEMO_EMAIL
  Password:    $DEMO_PASSWORD
  Admin:       $ADMIN_EMAIL
  Password:    $ADMIN_PASSWORD
  (kept in $RUN/demo-credentials)

  Parts and logs: $0 status;  stop it all: $0 down (make cluster-down)

BANNER
}

cmd_down() {
  [ -f "$STATE" ] || { echo "no cluster state in $RUN: nothing to stop"; return 0; }
  load_settings
  local part
  # Front to back, so no tier sees the one behind it vanish under live traffic.
  for part in nginx web1 web2 api1 api2 redis pg; do stop_part "$part"; done
}

cmd_status() {
  [ -f "$STATE" ] || { echo "no cluster in $RUN (cluster.sh up starts one)"; return 0; }
  load_settings
  printf '%-6s %-8s %-6s %-8s %s\n' PART PID PORT STATE LOG
  local part state pid
  for part in "${PARTS[@]}"; do
    pid=$(pid_of "$part" || true)
    if alive "$part"; then
      if ready "$part"; then state=ready; else state=alive; fi
    else
      state=down pid=-
    fi
    printf '%-6s %-8s %-6s %-8s %s\n' "$part" "${pid:--}" "$(port_of "$part")" "$state" "$RUN/logs/$part.log"
  done
  echo "public: $ORIGIN (127.0.0.1:$PUBLIC_PORT); internal API balancer: http://127.0.0.1:$LB_PORT"
}

main() {
  local cmd=${1:-}
  case "$cmd" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) [ -f "$STATE" ] && cat "$STATE" || die "no cluster state in $RUN" ;;
    clean)
      load_settings
      for part in "${PARTS[@]}"; do alive "$part" && die "$part still runs: '$0 down' first"; done
      rm -rf "$RUN"
      ;;
    start|stop|kill|restart)
      [ $# -eq 2 ] || die "usage: $0 $cmd PART (one of: ${PARTS[*]})"
      [ -f "$STATE" ] || die "no cluster state in $RUN: '$0 up' first"
      load_settings
      port_of "$2" > /dev/null
      case "$cmd" in
        start) start_part "$2" ;;
        stop) stop_part "$2" ;;
        kill) kill_part "$2" ;;
        restart) stop_part "$2"; start_part "$2" ;;
      esac
      ;;
    *)
      sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
      [ -z "$cmd" ] || exit 2
      ;;
  esac
}

main "$@"
