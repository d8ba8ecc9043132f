#!/bin/sh
# Throughput of one backend (already running at $1, e.g. http://127.0.0.1:8000) per endpoint,
# loopback only, 10 s each: wrk with 1 thread and 4 connections (closed loop).
# FINCH_ACCOUNTS must be the number of generated accounts (GET /api/meta says it).
set -eu
url=$1
here=$(dirname "$0")
for case in "summary:$here/summary.lua:" "transactions:$here/transactions.lua:" \
            "create:$here/create.lua:" "compute::/api/compute" "live::/healthz/live"; do
  name=${case%%:*}; rest=${case#*:}; script=${rest%%:*}; path=${rest#*:}
  if [ -n "$script" ]; then set -- -s "$script"; else set --; fi
  rps=$(wrk -t1 -c4 -d10s --latency "$@" "$url$path" | awk '/Requests\/sec/ {print $2}')
  echo "$name $rps"
done
