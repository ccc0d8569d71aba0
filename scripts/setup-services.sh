#!/usr/bin/env bash
# Installs the server packages the tests start themselves, when missing: PostgreSQL, Redis,
# nginx (the TLS load balancer of the cluster tests), faketime (replicas whose clocks disagree)
# and openssl (the cluster's certificate). The tests start and stop their own instances on
# loopback with throwaway data; nothing runs system-wide.
set -euo pipefail

need=()
compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" > /dev/null || need+=(postgresql)
command -v psql > /dev/null || need+=(postgresql-client)
command -v runuser > /dev/null || need+=(util-linux)
command -v redis-server > /dev/null || need+=(redis-server)
command -v nginx > /dev/null || need+=(nginx-light)
command -v faketime > /dev/null || need+=(faketime)
command -v openssl > /dev/null || need+=(openssl)

if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Debian's packages start system-wide services on install; nothing here wants them.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" > /dev/null
fi
id postgres > /dev/null
