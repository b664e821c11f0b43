#!/usr/bin/env bash
# Order throughput: 64 connections POST /api/v1/orders (bearer verify + revocation check,
# JSON validation into domain types, one write transaction with a conditional stock
# update) on the embedded default, SQLite in WAL mode. Target (DESIGN.md): ≥ 10× the
# Express reference; the side-by-side comparison comes with the bench/ reference.
#
#   ./bench/orders.sh [seconds]      # default 15 s
#
# The release server runs in a temporary directory on a free loopback port, pinned to
# CPU 0, with the global rate limit still on but raised out of the way
# (RAMPART_RATE_LIMIT_GLOBAL=100000000/1h, a burst no run spends; a run that hit it would
# show 429s among the non-2xx answers);
# wrk (Debian package `wrk`) runs on CPU 1. An admin is created with `create-admin`, signs
# in for a bearer token, and creates one product with a huge stock; every request orders
# one unit. At the end the stock taken is compared with the orders wrk saw succeed.
# The server is stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-15}
. ./bench/lib.sh
bench_need wrk wrk
bench_need jq jq
bench_build
work=$(mktemp -d)

email="bench-$(date +%s)@example.com"
password="Bench-Lantern-$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')-Orbit!"
(cd "$work" && printf '%s\n' "$password" | env -i PATH="$PATH" "$bin" create-admin --email "$email" --password-stdin >/dev/null)
server_start 0 RAMPART_RATE_LIMIT_GLOBAL=100000000/1h

server_alive
token=$(curl -fsS -X POST "http://$addr/api/v1/auth/login" -H 'content-type: application/json' \
  -d "$(jq -nc --arg e "$email" --arg p "$password" '{email:$e,password:$p}')" | jq -r .access_token)
[ -n "$token" ] && [ "$token" != null ] || { echo "login failed"; server_alive; exit 1; }
stock=1000000000
product=$(curl -fsS -X POST "http://$addr/api/v1/admin/products" -H 'content-type: application/json' \
  -H "authorization: Bearer $token" \
  -d "{\"name\":\"Bench tea\",\"description\":\"<p>Loose leaf</p>\",\"price_cents\":1250,\"currency\":\"EUR\",\"stock\":$stock}" |
  jq -r .id)

cat >"$work/order.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"items":[{"product_id":"$product","quantity":1}],"shipping_address":{"street":"1 Main Street","city":"Berlin","postal_code":"10115","country":"DE"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
LUA

server_alive
echo "== 64 connections POST /api/v1/orders for ${duration}s (SQLite, server on CPU 0, wrk on CPU 1)"
taskset -c 1 wrk -t1 -c64 -d"${duration}s" --latency -s "$work/order.lua" "http://$addr/api/v1/orders" >"$work/wrk.txt"
sed -n '/Latency Distribution/,/99%/p;/requests in/p;/Non-2xx/p;/Socket errors/p;/Requests\/sec/p' "$work/wrk.txt"
left=$(curl -fsS "http://$addr/api/v1/products/$product" | jq .stock)
requests=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
failed=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.txt")
echo "orders placed (stock taken): $((stock - left)); wrk requests: $requests, non-2xx: ${failed:-0}"
echo "p99: $(awk '$1 == "99%" {print $2}' "$work/wrk.txt"); req/s: $(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")"
