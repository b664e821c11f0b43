#!/usr/bin/env bash
# Two Rampart binaries side by side, in one run: the same data, the same load, alternating
# rounds, each server pinned to CPU 0 and wrk to CPU 1 (64 connections).
#
#   ./bench/compare.sh OLD_BIN NEW_BIN [seconds] [rounds]     # defaults: 5 s, 2 rounds
#   COMPARE_ROUTES=orders ./bench/compare.sh OLD NEW 6 5     # only some of the routes
#
# Routes: GET /health, GET /api/v1/products?q=prod&limit=20 (1 000 products, all matching),
# GET /api/v1/me (EdDSA bearer), POST /api/v1/orders (2 lines; SQLite). Each server runs
# on the embedded default in its own temporary directory with the global limit off (a
# benchmark-only setting), access log on (the default `info`). Prints req/s per route and
# round, and the NEW/OLD ratio of the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2 duration=${3:-5} rounds=${4:-2}
command -v wrk >/dev/null || { echo "install wrk (Debian package)" >&2; exit 1; }
email=load-test@example.com
password="Bench-Lantern-$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')-Orbit!"
results=$(mktemp)
pid=""
cleanup() { [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; true; }
trap cleanup EXIT

run() { # run LABEL BIN
  local label=$1 bin=$2 dir
  dir=$(mktemp -d)
  (cd "$dir" && printf '%s\n' "$password" | env -i PATH="$PATH" "$bin" create-admin --email "$email" --password-stdin >/dev/null)
  (cd "$dir" && exec env -i PATH="$PATH" RAMPART_LISTEN=127.0.0.1:0 RAMPART_RATE_LIMIT_GLOBAL=off \
    taskset -c 0 "$bin" serve >"$dir/log" 2>&1) &
  pid=$!
  local addr="" _
  for _ in $(seq 1 200); do
    addr=$(grep -o '"listen":"[^"]*"' "$dir/log" 2>/dev/null | head -1 | cut -d'"' -f4 || true)
    [ -n "$addr" ] && break
    sleep 0.05
  done
  [ -n "$addr" ] || { cat "$dir/log" >&2; exit 1; }
  local token product
  token=$(curl -sf "http://$addr/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"$password\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  for i in $(seq 1 1000); do
    printf '{"name":"prod %d","description":"<p>a product</p>","price_cents":%d,"currency":"EUR","stock":1000000}\n' "$i" "$((100 + i))"
  done | python3 -c '
import json, sys, urllib.request
addr, token = sys.argv[1], sys.argv[2]
ids = []
for line in sys.stdin:
    req = urllib.request.Request(f"http://{addr}/api/v1/admin/products", data=line.encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {token}"})
    ids.append(json.load(urllib.request.urlopen(req))["id"])
print(ids[0], ids[1])' "$addr" "$token" >"$dir/ids"
  read -r p1 p2 <"$dir/ids"
  cat >"$dir/me.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
LUA
  cat >"$dir/orders.lua" <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $token"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"items":[{"product_id":"$p1","quantity":1},{"product_id":"$p2","quantity":2}],"shipping_address":{"street":"1 Main St","city":"Springfield","postal_code":"12345","country":"DE"}}'
LUA
  local route
  for route in ${COMPARE_ROUTES:-health products me orders}; do
    local url script=()
    case $route in
      health) url="http://$addr/health" ;;
      products) url="http://$addr/api/v1/products?q=prod&limit=20" ;;
      me) url="http://$addr/api/v1/me"; script=(-s "$dir/me.lua") ;;
      orders) url="http://$addr/api/v1/orders"; script=(-s "$dir/orders.lua") ;;
    esac
    local out rps non2xx
    out=$(taskset -c 1 wrk -t1 -c64 -d"${duration}s" "${script[@]}" "$url")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    echo "$label $route $rps ${non2xx:-0}" >>"$results"
  done
  awk '/VmHWM/ {printf "%s peak-rss-mib %.1f 0\n", L, $2/1024}' L="$label" "/proc/$pid/status" >>"$results"
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  rm -rf "$dir"
}

for r in $(seq 1 "$rounds"); do
  run old "$old"
  run new "$new"
done
python3 - "$results" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
bad = collections.defaultdict(int)
for line in open(sys.argv[1]):
    label, route, value, non2xx = line.split()
    rows[(label, route)].append(float(value)); bad[(label, route)] += int(non2xx)
routes = ["health", "products", "me", "orders", "peak-rss-mib"]
print(f"| route | old (median) | new (median) | new/old | rounds old | rounds new | non-2xx old/new |")
print("|---|---|---|---|---|---|---|")
for r in routes:
    if not rows[("old", r)]:
        continue
    o, n = statistics.median(rows[("old", r)]), statistics.median(rows[("new", r)])
    print(f"| {r} | {o:,.1f} | {n:,.1f} | {n/o:.2f} | {', '.join(f'{v:,.0f}' for v in rows[('old', r)])} | {', '.join(f'{v:,.0f}' for v in rows[('new', r)])} | {bad[('old', r)]}/{bad[('new', r)]} |")
PY
