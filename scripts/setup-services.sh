#!/usr/bin/env bash
# Installs the server packages the tests start themselves (PostgreSQL), when missing.
# The tests start and stop their own instances on loopback; nothing runs system-wide.
set -euo pipefail

need=()
compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" > /dev/null || need+=(postgresql)
command -v psql > /dev/null || need+=(postgresql-client)
command -v runuser > /dev/null || need+=(util-linux)

if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" > /dev/null
fi
# The Debian package may start a cluster of its own; the tests do not use it.
id postgres > /dev/null
