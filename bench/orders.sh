#!/usr/bin/env bash
# Order throughput: 64 connections POST /api/v1/orders with two lines (bearer verify +
# revocation check, JSON validation into domain types, the write path: on SQLite the
# writer task's group commit) on the embedded default, SQLite in WAL mode. Target
# (issue 10): ≥ 5× the Express reference on SQLite, every 201 durable against SIGKILL.
#
#   ./bench/orders.sh [--postgres] [seconds] [BIN ...]   # default 15 s, the release build
#   ORDERS_ROUNDS=2 ./bench/orders.sh 8 /tmp/old/rampart target/release/rampart
#   ORDERS_SYNCHRONOUS=full ./bench/orders.sh 8     # fsync the WAL at every commit
#   ./bench/orders.sh --postgres 8 /tmp/old/rampart target/release/rampart
#   ORDERS_PERF=/tmp/orders ./bench/orders.sh --postgres 8   # + perf record -a -C 0 -g
#
# --postgres starts a throwaway PostgreSQL (initdb, pg_ctl, postgres: Debian package
# `postgresql`; as root it runs as the `postgres` user) on a free loopback port in a
# temporary directory, pinned to CPU 0 with the server, with its durable defaults
# (fsync = on, synchronous_commit = on: a 201 is in the flushed WAL), and gives every run
# a fresh database in it; it is stopped (pg_ctl, fast) at exit.
#
# With several binaries they run one after the other, ORDERS_ROUNDS times alternating
# (default 1), on the same load, and the median req/s of each is printed with its ratio to
# the first: compare binaries within one run, numbers across runs are noise on a busy box.
# Each server runs in a temporary directory on a free loopback port, pinned to CPU 0, with
# the global rate limit still on but raised out of the way
# (RAMPART_RATE_LIMIT_GLOBAL=100000000/1h; a run that hit it would show 429s among the
# non-2xx answers); wrk (Debian package `wrk`) runs on CPU 1. An admin is created with
# `create-admin`, signs in for a bearer token, and creates two products with a huge stock;
# every request orders 1 of the first and 2 of the second. At the end the stock taken on
# each line must equal the orders stored (the admin's order count), which must lie between
# the 201s wrk counted and those plus the 64 requests in flight when wrk stopped. Servers
# are stopped by their PID.
set -euo pipefail
cd "$(dirname "$0")/.."
postgres=0
if [ "${1:-}" = --postgres ]; then
  postgres=1
  shift
fi
duration=${1:-15}
shift || true
rounds=${ORDERS_ROUNDS:-1}
# ORDERS_SYNCHRONOUS=full measures SQLite's fsync at every commit; unset, the server's
# default (normal) without the URL parameter, which binaries before it do not know.
db_env=()
[ -z "${ORDERS_SYNCHRONOUS:-}" ] ||
  db_env=(DATABASE_URL="sqlite://./data/rampart.db?synchronous=$ORDERS_SYNCHRONOUS")
. ./bench/lib.sh
bench_need wrk wrk
bench_need jq jq
bins=("$@")
if [ ${#bins[@]} -eq 0 ]; then
  bench_build
  bins=("$bin")
fi
results=$(mktemp)

# --- PostgreSQL, with --postgres ----------------------------------------------
run_no=0
pg_cleanup() {
  server_stop
  pg_stop
  rm -f "$results"
}
trap pg_cleanup EXIT
if [ "$postgres" = 1 ]; then
  pg_start 0
  echo "== PostgreSQL $(pg_psql -c 'SHOW server_version') on CPU 0: fsync=$(pg_psql -c 'SHOW fsync')," \
    "synchronous_commit=$(pg_psql -c 'SHOW synchronous_commit')"
fi

run_one() { # run_one LABEL BIN
  local label=$1
  bin=$2
  work=$(mktemp -d)
  if [ "$postgres" = 1 ]; then
    # A fresh database per run: every binary starts from the same empty schema.
    run_no=$((run_no + 1))
    pg_psql -c "CREATE DATABASE bench_orders_$run_no"
    db_env=(DATABASE_URL="postgres://rampart@127.0.0.1:$pg_port/bench_orders_$run_no")
  fi
  local email password token stock=1000000000 p1 p2
  email="bench-$(date +%s)@example.com"
  password="Bench-Lantern-$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')-Orbit!"
  (cd "$work" && printf '%s\n' "$password" | env -i PATH="$PATH" "${db_env[@]}" "$bin" create-admin --email "$email" --password-stdin >/dev/null)
  server_start 0 RAMPART_RATE_LIMIT_GLOBAL=100000000/1h "${db_env[@]}"
  server_alive
  token=$(curl -fsS -X POST "http://$addr/api/v1/auth/login" -H 'content-type: application/json' \
    -d "$(jq -nc --arg e "$email" --arg p "$password" '{email:$e,password:$p}')" | jq -r .access_token)
  [ -n "$token" ] && [ "$token" != null ] || { echo "login failed"; server_alive; exit 1; }
  product() {
    curl -fsS -X POST "http://$addr/api/v1/admin/products" -H 'content-type: application/json' \
      -H "authorization: Bearer $token" \
      -d "{\"name\":\"Bench $1\",\"description\":\"<p>Loose leaf</p>\",\"price_cents\":1250,\"currency\":\"EUR\",\"stock\":$stock}" |
      jq -r .id
  }
  p1=$(product tea)
  p2=$(product cup)
  cat >"$work/order.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"items":[{"product_id":"$p1","quantity":1},{"product_id":"$p2","quantity":2}],"shipping_address":{"street":"1 Main Street","city":"Berlin","postal_code":"10115","country":"DE"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
LUA
  server_alive
  local commits0=0 syncs0=0 perf_pid=""
  if [ "$postgres" = 1 ]; then
    commits0=$(pg_psql -c "SELECT xact_commit FROM pg_stat_database WHERE datname = 'bench_orders_$run_no'")
    syncs0=$(pg_psql -c "SELECT wal_sync FROM pg_stat_wal")
  fi
  if [ -n "${ORDERS_PERF:-}" ]; then
    # A profile of all of CPU 0 (the server and PostgreSQL) for 5 s in the middle of the run.
    (sleep $((duration / 3)) && perf record -F 999 -a -C 0 -g -o "$ORDERS_PERF.$label.data" -- sleep 5 >/dev/null 2>&1) &
    perf_pid=$!
  fi
  taskset -c 1 wrk -t1 -c64 -d"${duration}s" --latency -s "$work/order.lua" "http://$addr/api/v1/orders" >"$work/wrk.txt"
  [ -z "$perf_pid" ] || wait "$perf_pid"
  server_alive
  local left1 left2 requests failed rps p50 p99 stored ok
  # Orders wrk gave up on at the end may still be committing: read until the count of
  # stored orders is the same before and after reading both stocks.
  local before _
  for _ in $(seq 1 50); do
    before=$(curl -fsS "http://$addr/api/v1/orders?limit=1" -H "authorization: Bearer $token" | jq .total)
    left1=$(curl -fsS "http://$addr/api/v1/products/$p1" | jq .stock)
    left2=$(curl -fsS "http://$addr/api/v1/products/$p2" | jq .stock)
    stored=$(curl -fsS "http://$addr/api/v1/orders?limit=1" -H "authorization: Bearer $token" | jq .total)
    [ "$before" != "$stored" ] || break
    sleep 0.1
  done
  requests=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
  failed=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.txt")
  ok=$((requests - ${failed:-0}))
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
  p50=$(awk '$1 == "50%" {print $2}' "$work/wrk.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.txt")
  echo "== $label ($bin): ${rps} req/s, p50 $p50, p99 $p99, non-2xx ${failed:-0};" \
    "stock taken: $((stock - left1)) and $(((stock - left2) / 2)) orders; orders stored: $stored; 201s wrk saw: $ok"
  [ $((stock - left1)) -eq "$stored" ] && [ $(((stock - left2) / 2)) -eq "$stored" ] ||
    { echo "the stock taken disagrees with the orders stored"; exit 1; }
  [ "$stored" -ge "$ok" ] && [ "$stored" -le $((ok + 64)) ] ||
    { echo "orders stored ($stored) outside [201s, 201s + 64 in flight]"; exit 1; }
  echo "$label $rps" >>"$results"
  server_stop
  if [ "$postgres" = 1 ]; then
    # The server's backends have exited, so their counters are in the statistics.
    sleep 1
    local commits syncs
    commits=$(($(pg_psql -c "SELECT xact_commit FROM pg_stat_database WHERE datname = 'bench_orders_$run_no'") - commits0))
    syncs=$(($(pg_psql -c "SELECT wal_sync FROM pg_stat_wal") - syncs0))
    python3 -c "import sys; o, c, s = map(int, sys.argv[1:]); print(f'   PostgreSQL during the run: {c} transactions (reads included), {s} WAL fsyncs: {o / max(s, 1):.1f} orders per fsync')" \
      "$stored" "$commits" "$syncs"
  fi
}

if [ "$postgres" = 1 ]; then
  echo "== 64 connections POST /api/v1/orders (2 lines) for ${duration}s (PostgreSQL, durable defaults, server and PostgreSQL on CPU 0, wrk on CPU 1)"
else
  echo "== 64 connections POST /api/v1/orders (2 lines) for ${duration}s (SQLite synchronous=${ORDERS_SYNCHRONOUS:-normal}, server on CPU 0, wrk on CPU 1)"
fi
for _ in $(seq 1 "$rounds"); do
  for i in "${!bins[@]}"; do
    run_one "bin$i" "${bins[$i]}"
  done
done
python3 - "$results" "${bins[@]}" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, value = line.split()
    rows[label].append(float(value))
first = statistics.median(rows["bin0"])
for i, path in enumerate(sys.argv[2:]):
    m = statistics.median(rows[f"bin{i}"])
    print(f"{path}: median {m:,.0f} req/s over {len(rows[f'bin{i}'])} run(s), {m / first:.2f}x the first")
PY
