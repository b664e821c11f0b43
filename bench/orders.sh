#!/usr/bin/env bash
# Order throughput: 64 connections POST /api/v1/orders with two lines (bearer verify +
# revocation check, JSON validation into domain types, the write path: on SQLite the
# writer task's group commit) on the embedded default, SQLite in WAL mode. Target
# (issue 10): ≥ 5× the Express reference on SQLite, every 201 durable against SIGKILL.
#
#   ./bench/orders.sh [seconds] [BIN ...]     # default 15 s, the release build
#   ORDERS_ROUNDS=2 ./bench/orders.sh 8 /tmp/old/rampart target/release/rampart
#   ORDERS_SYNCHRONOUS=full ./bench/orders.sh 8     # fsync the WAL at every commit
#
# With several binaries they run one after the other, ORDERS_ROUNDS times alternating
# (default 1), on the same load, and the median req/s of each is printed with its ratio to
# the first: compare binaries within one run, numbers across runs are noise on a busy box.
# Each server runs in a temporary directory on a free loopback port, pinned to CPU 0, with
# the global rate limit still on but raised out of the way
# (RAMPART_RATE_LIMIT_GLOBAL=100000000/1h; a run that hit it would show 429s among the
# non-2xx answers); wrk (Debian package `wrk`) runs on CPU 1. An admin is created with
# `create-admin`, signs in for a bearer token, and creates two products with a huge stock;
# every request orders 1 of the first and 2 of the second. At the end the stock taken is
# compared with the orders wrk saw succeed. Servers are stopped by their PID.
set -euo pipefail
cd "$(dirname "$0")/.."
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

run_one() { # run_one LABEL BIN
  local label=$1
  bin=$2
  work=$(mktemp -d)
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
  taskset -c 1 wrk -t1 -c64 -d"${duration}s" --latency -s "$work/order.lua" "http://$addr/api/v1/orders" >"$work/wrk.txt"
  server_alive
  local left1 left2 requests failed rps p50 p99
  left1=$(curl -fsS "http://$addr/api/v1/products/$p1" | jq .stock)
  left2=$(curl -fsS "http://$addr/api/v1/products/$p2" | jq .stock)
  requests=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
  failed=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.txt")
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
  p50=$(awk '$1 == "50%" {print $2}' "$work/wrk.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.txt")
  echo "== $label ($bin): ${rps} req/s, p50 $p50, p99 $p99, non-2xx ${failed:-0};" \
    "orders placed (stock taken): $((stock - left1)) and $(((stock - left2) / 2)); wrk requests: $requests"
  [ $((stock - left1)) -eq $(((stock - left2) / 2)) ] || { echo "the two lines' stock disagree"; exit 1; }
  echo "$label $rps" >>"$results"
  server_stop
}

echo "== 64 connections POST /api/v1/orders (2 lines) for ${duration}s (SQLite synchronous=${ORDERS_SYNCHRONOUS:-normal}, server on CPU 0, wrk on CPU 1)"
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
