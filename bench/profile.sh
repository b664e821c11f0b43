#!/usr/bin/env bash
# Where each benchmark route spends its time: `perf record -g` (cpu-clock; this VM has no
# hardware counters) on a release `rampart serve` pinned to CPU 0 while wrk (CPU 1, 64
# connections) drives one route, then the top of `perf report` per route, by symbol and by
# shared object (kernel / rampart / libc).
#
#   ./bench/profile.sh [BIN] [seconds]      # default: builds target/release/rampart, 5 s
#
# Routes: /health, products q=prod (1 000 products, all matching), /me (EdDSA bearer),
# POST /orders (2 lines). Access log on (`info`), global limit off. Output: one
# summary per route on stdout; the raw perf.data files are left in $PROFILE_DIR
# (default: a temporary directory, printed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_need wrk wrk
bench_need perf linux-perf
if [ -n "${1:-}" ]; then bin=$(realpath "$1"); else bench_build; fi
duration=${2:-5}
out=${PROFILE_DIR:-$(mktemp -d)}
email=profile@example.com
password="Bench-Lantern-$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')-Orbit!"

work=$(mktemp -d)
(cd "$work" && printf '%s\n' "$password" | env -i PATH="$PATH" "$bin" create-admin --email "$email" --password-stdin >/dev/null)
server_start 0 RAMPART_RATE_LIMIT_GLOBAL=off RAMPART_LOG=info
token=$(curl -sf "http://$addr/api/v1/auth/login" -H 'content-type: application/json' \
  -d "{\"email\":\"$email\",\"password\":\"$password\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
python3 - "$addr" "$token" >"$work/ids" <<'PY'
import json, sys, urllib.request
addr, token = sys.argv[1], sys.argv[2]
ids = []
for i in range(1, 1001):
    body = json.dumps({"name": f"prod {i}", "description": "<p>a product</p>",
                       "price_cents": 100 + i, "currency": "EUR", "stock": 100000000}).encode()
    req = urllib.request.Request(f"http://{addr}/api/v1/admin/products", data=body,
        headers={"content-type": "application/json", "authorization": f"Bearer {token}"})
    ids.append(json.load(urllib.request.urlopen(req))["id"])
print(ids[0], ids[1])
PY
read -r p1 p2 <"$work/ids"
printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$token" >"$work/me.lua"
cat >"$work/orders.lua" <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $token"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"items":[{"product_id":"$p1","quantity":1},{"product_id":"$p2","quantity":2}],"shipping_address":{"street":"1 Main St","city":"Springfield","postal_code":"12345","country":"DE"}}'
LUA
report() { # report ROUTE SORT LINES
  perf report -q -i "$out/$1.data" --no-children --sort "$2" --stdio -g none 2>/dev/null \
    | grep -v '^$' | head -"$3" || true
}
for route in health products me orders; do
  script=()
  case $route in
    health) url="http://$addr/health" ;;
    products) url="http://$addr/api/v1/products?q=prod&limit=20" ;;
    me) url="http://$addr/api/v1/me"; script=(-s "$work/me.lua") ;;
    orders) url="http://$addr/api/v1/orders"; script=(-s "$work/orders.lua") ;;
  esac
  taskset -c 1 wrk -t1 -c64 -d1s "${script[@]}" "$url" >/dev/null # warm-up
  perf record -q -g -o "$out/$route.data" -p "$pid" -- sleep "$duration" 2>/dev/null &
  perf_pid=$!
  rps=$(taskset -c 1 wrk -t1 -c64 -d"${duration}s" "${script[@]}" "$url" | awk '/Requests\/sec/ {print $2}')
  wait "$perf_pid" || true
  echo "== $route: $rps req/s under perf"
  echo "-- by shared object"
  report "$route" dso 8
  echo "-- by symbol (self time, top 25)"
  report "$route" sym 25
done
echo "perf data: $out"
