#!/usr/bin/env bash
# Rampart beside the Express reference (bench/express/) and a bare-axum baseline
# (bench/bare-axum/), in one run, printing one markdown table.
#
#   ./bench/side-by-side.sh                  # SQLite, the embedded default
#   ./bench/side-by-side.sh --postgres       # Rampart on a throwaway PostgreSQL it starts
#   DATABASE_URL=postgres://… ./bench/side-by-side.sh   # Rampart on that (empty) database
#   BENCH_DURATION=2 BENCH_WARMUP=1 ./bench/side-by-side.sh   # a quick check
#   BENCH_RAMPART_BIN=path/to/rampart ./bench/side-by-side.sh  # that binary instead of a fresh build
#
# Each server (and the throwaway PostgreSQL) is pinned to CPU 0 with taskset, wrk to CPU 1.
# Per workload and server: a warm-up of BENCH_WARMUP s (default 2), then BENCH_DURATION s
# (default 8) measured with BENCH_CONNECTIONS connections (default 64), one wrk thread:
#
#   GET /health                                  (also Rampart with RAMPART_LOG=warn: no access log)
#   GET /api/v1/products?q=prod&limit=20         (1 000 products, all matching)
#   GET /api/v1/me                               (EdDSA bearer)
#   POST /api/v1/orders                          (2 lines)
#   POST /api/v1/auth/login                      (Argon2id m=19456 t=2 p=1; BENCH_LOGIN_CONNECTIONS, default 16)
#   GET /health (1 connection) during a 64-connection login flood: its p99
#
# and each server's peak RSS (VmHWM) over the whole run. Bare axum answers the very bytes
# Rampart answered (saved from Rampart's own responses) with no work and no layers; it
# has no login. Every server gets the same data: 1 000 products `prod N` (stock 10^8) and
# one admin account; the global rate limits are on with a quota no run can spend
# (Rampart 100000000/1h, Express's express-rate-limit the same), login limits on (they
# count failures only). Rampart keeps its default log (`info`: one access line per
# request) and Express its pino-http line per request, both to a file.
#
# Servers listen on loopback on free ports in temporary directories and are stopped by
# their PID at the end. Needs: cargo, node ≥ 20 and npm (`npm ci` runs when
# bench/express/node_modules is missing), wrk, taskset, curl, python3; for --postgres
# initdb, pg_ctl and postgres (Debian package `postgresql`).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
duration=${BENCH_DURATION:-8}
warmup=${BENCH_WARMUP:-2}
conns=${BENCH_CONNECTIONS:-64}
login_conns=${BENCH_LOGIN_CONNECTIONS:-16}
start_postgres=${BENCH_POSTGRES:-0}
for arg in "$@"; do
  case $arg in
    --postgres) start_postgres=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done

for tool in wrk taskset curl python3 node npm cargo; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done

# --- processes, stopped by PID at exit ---------------------------------------
declare -A pids=() dirs=() addrs=()
. ./bench/lib.sh # pg_start / pg_stop (its EXIT trap is replaced below)
tmp=$(mktemp -d)

stop() { # stop NAME
  local p=${pids[$1]:-}
  if [ -n "$p" ]; then
    kill -TERM "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  fi
  unset "pids[$1]"
}
cleanup() {
  local name
  for name in "${!pids[@]}"; do stop "$name"; done
  pg_stop
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start NAME DIR COMMAND...: run pinned to CPU 0 in DIR, log to DIR/log, wait for the
# `"listen":"ADDR"` every one of the three servers prints once bound.
start() {
  local name=$1 dir=$2
  shift 2
  (cd "$dir" && exec taskset -c 0 "$@" >"$dir/log" 2>&1) &
  pids[$name]=$!
  dirs[$name]=$dir
  local addr="" _
  for _ in $(seq 1 400); do
    addr=$(grep -o '"listen":"[^"]*"' "$dir/log" 2>/dev/null | head -1 | cut -d'"' -f4 || true)
    [ -n "$addr" ] && break
    kill -0 "${pids[$name]}" 2>/dev/null || break
    sleep 0.05
  done
  if [ -z "$addr" ]; then
    echo "$name did not start:" >&2
    cat "$dir/log" >&2
    exit 1
  fi
  addrs[$name]=$addr
}

alive() { # alive NAME: fail with its log when it has exited
  kill -0 "${pids[$1]}" 2>/dev/null && return 0
  echo "$1 exited:" >&2
  cat "${dirs[$1]}/log" >&2
  exit 1
}

peak_rss_mib() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/${pids[$1]}/status"; }

# --- build --------------------------------------------------------------------
target=${CARGO_TARGET_DIR:-$root/target}
bare_bin=$target/release/bare-axum
if [ -n "${BENCH_RAMPART_BIN:-}" ]; then # another rampart binary (an older build, say)
  rampart_bin=$(readlink -f "$BENCH_RAMPART_BIN")
  echo "building bare-axum (release) …" >&2
  cargo build --release --quiet -p bare-axum
else
  rampart_bin=$target/release/rampart
  echo "building rampart and bare-axum (release) …" >&2
  cargo build --release --quiet -p rampart -p bare-axum
fi
if [ ! -d bench/express/node_modules ]; then
  echo "npm ci in bench/express …" >&2
  (cd bench/express && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

# --- PostgreSQL, when asked for ------------------------------------------------
if [ "$start_postgres" = 1 ]; then
  # Durable defaults (fsync, synchronous_commit on): orders answered 201 are on disk.
  pg_start 0
  export DATABASE_URL="postgres://rampart@127.0.0.1:$pg_port/postgres"
fi
database=sqlite
case ${DATABASE_URL:-} in
  postgres://* | postgresql://*) database=postgres ;;
  "") ;;
  *) database=${DATABASE_URL%%:*} ;;
esac

# --- the three servers ---------------------------------------------------------
email=load-test@example.com
password="Bench-Lantern-$(head -c6 /dev/urandom | od -An -tx1 | tr -d ' \n')-Orbit!"
rampart_env=(env -i PATH="$PATH" RAMPART_LISTEN=127.0.0.1:0 RAMPART_RATE_LIMIT_GLOBAL=100000000/1h
  ${DATABASE_URL:+DATABASE_URL=$DATABASE_URL})

mkdir -p "$tmp/rampart" "$tmp/rampart-warn" "$tmp/express" "$tmp/bare" "$tmp/bodies"
(cd "$tmp/rampart" && printf '%s\n' "$password" |
  "${rampart_env[@]}" "$rampart_bin" create-admin --email "$email" --password-stdin >/dev/null)
start rampart "$tmp/rampart" "${rampart_env[@]}" "$rampart_bin" serve
# BENCH_LOGIN_LIMIT: express-rate-limit counts logins in flight (see server.js); raised so
# that concurrent correct logins are hashed, not refused (Rampart counts failures only).
start express "$tmp/express" env -i PATH="$PATH" PORT=0 BENCH_EMAIL="$email" BENCH_PASSWORD="$password" \
  BENCH_LOGIN_LIMIT=100000000 node "$root/bench/express/server.js"

login() { # login ADDR: a fresh access token
  curl -fsS "http://$1/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"$password\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}

echo "seeding Rampart with 1 000 products ($database) …" >&2
python3 - "${addrs[rampart]}" "$(login "${addrs[rampart]}")" <<'PY'
import json, sys, urllib.request
addr, token = sys.argv[1], sys.argv[2]
for i in range(1, 1001):
    body = {"name": f"prod {i}", "description": "<p>a product</p>", "price_cents": 100 + i,
            "currency": "EUR", "stock": 100_000_000}
    req = urllib.request.Request(f"http://{addr}/api/v1/admin/products", data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {token}"})
    urllib.request.urlopen(req).read()
PY

order_body() { # order_body ADDR: two lines, the two newest products of that server
  curl -fsS "http://$1/api/v1/products?q=prod&limit=2" | python3 -c '
import json, sys
a, b = (i["id"] for i in json.load(sys.stdin)["items"])
print(json.dumps({"items": [{"product_id": a, "quantity": 1}, {"product_id": b, "quantity": 2}],
    "shipping_address": {"street": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "DE"}}))'
}

# Bare axum answers what Rampart answers.
r=${addrs[rampart]}
token=$(login "$r")
curl -fsS "http://$r/api/v1/products?q=prod&limit=20" >"$tmp/bodies/products.json"
curl -fsS "http://$r/api/v1/me" -H "authorization: Bearer $token" >"$tmp/bodies/me.json"
curl -fsS "http://$r/api/v1/orders" -H "authorization: Bearer $token" -H 'content-type: application/json' \
  -d "$(order_body "$r")" >"$tmp/bodies/order.json"
start bare "$tmp/bare" env -i PATH="$PATH" BARE_AXUM_LISTEN=127.0.0.1:0 BARE_AXUM_BODIES="$tmp/bodies" "$bare_bin"

# --- wrk -------------------------------------------------------------------------
results=$tmp/results # lines: server workload rps p50_ms p99_ms non2xx socket_errors
parse() { # parse SERVER WORKLOAD < wrk output
  python3 -c '
import re, sys
server, workload = sys.argv[1], sys.argv[2]
text = sys.stdin.read()
def ms(v):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", v)
    if not m: return float("nan")
    return float(m[1]) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m[2]]
def pct(p):
    m = re.search(rf"^\s*{p}%\s+(\S+)", text, re.M)
    return ms(m[1]) if m else float("nan")
rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
print(server, workload, rps[1] if rps else "nan", pct(50), pct(99),
      non2xx[1] if non2xx else 0, sum(map(int, sock.groups())) if sock else 0)
' "$1" "$2"
}

# measure SERVER WORKLOAD CONNECTIONS URL [wrk script]. wrk's timeout is 10 s (not 2 s):
# a queued login is a slow answer, not a socket error.
measure() {
  local server=$1 workload=$2 c=$3 url=$4 script=(--timeout 10s)
  [ -z "${5:-}" ] || script+=(-s "$5")
  alive "$server"
  if [ "$warmup" != 0 ]; then
    taskset -c 1 wrk -t1 -c"$c" -d"${warmup}s" "${script[@]}" "$url" >/dev/null
  fi
  taskset -c 1 wrk -t1 -c"$c" -d"${duration}s" --latency "${script[@]}" "$url" >"$tmp/wrk.txt"
  parse "$server" "$workload" <"$tmp/wrk.txt" >>"$results"
  echo "  $server $workload: $(awk '/Requests\/sec/ {print $2}' "$tmp/wrk.txt") req/s" >&2
}

bearer_script() { # bearer_script FILE ADDR [POST-body]
  local file=$1 token
  token=$(login "$2")
  {
    echo "wrk.headers[\"Authorization\"] = \"Bearer $token\""
    if [ -n "${3:-}" ]; then
      echo 'wrk.method = "POST"'
      echo 'wrk.headers["Content-Type"] = "application/json"'
      echo "wrk.body = '$3'"
    fi
  } >"$file"
}

servers=(express rampart bare)
echo "measuring: ${warmup}s warm-up + ${duration}s per workload and server" >&2
for s in "${servers[@]}"; do measure "$s" health "$conns" "http://${addrs[$s]}/health"; done
# Its own data directory (only /health is asked of it); on PostgreSQL the same database.
start rampart-warn "$tmp/rampart-warn" "${rampart_env[@]}" RAMPART_LOG=warn,rampart::application=info \
  "$rampart_bin" serve
measure rampart-warn health "$conns" "http://${addrs[rampart-warn]}/health"
stop rampart-warn
for s in "${servers[@]}"; do
  measure "$s" products "$conns" "http://${addrs[$s]}/api/v1/products?q=prod&limit=20"
done
# Bare axum has no login: it gets a Rampart token (and body) to send the same bytes.
auth_of() { if [ "$1" = bare ]; then echo "${addrs[rampart]}"; else echo "${addrs[$1]}"; fi; }
for s in "${servers[@]}"; do
  bearer_script "$tmp/me-$s.lua" "$(auth_of "$s")"
  measure "$s" me "$conns" "http://${addrs[$s]}/api/v1/me" "$tmp/me-$s.lua"
done
for s in "${servers[@]}"; do
  bearer_script "$tmp/orders-$s.lua" "$(auth_of "$s")" "$(order_body "$(auth_of "$s")")"
  measure "$s" orders "$conns" "http://${addrs[$s]}/api/v1/orders" "$tmp/orders-$s.lua"
done
cat >"$tmp/login.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"$email","password":"$password"}'
LUA
for s in express rampart; do
  measure "$s" login "$login_conns" "http://${addrs[$s]}/api/v1/auth/login" "$tmp/login.lua"
done
# /health measured on one connection while 64 connections flood the login; the flood
# counts its answers by status and problem code (printed under the table).
{
  cat "$tmp/login.lua"
  cat <<'LUA'
statuses = {}
response = function(status, headers, body)
  -- A problem's stable `code` says which refusal it is (two 503s may differ).
  local key = tostring(status)
  local code = status >= 300 and body and body:match('"code":"([^"]+)"')
  if code then key = key .. " " .. code end
  local retry = headers["retry-after"] or headers["Retry-After"]
  if status >= 300 and retry then key = key .. " (Retry-After: " .. retry .. ")" end
  statuses[key] = (statuses[key] or 0) + 1
end
local threads = {}
setup = function(thread)
  table.insert(threads, thread)
end
done = function()
  local all = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      all[status] = (all[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(all) do
    table.insert(parts, status .. ": " .. n)
  end
  table.sort(parts)
  io.write("statuses " .. table.concat(parts, ", ") .. "\n")
end
LUA
} >"$tmp/flood.lua"
flood_statuses=""
for s in express rampart; do
  alive "$s"
  taskset -c 1 wrk -t1 -c64 -d"${duration}s" --timeout 10s -s "$tmp/flood.lua" "http://${addrs[$s]}/api/v1/auth/login" >"$tmp/flood.txt" &
  flood=$!
  taskset -c 1 wrk -t1 -c1 -d"${duration}s" --timeout 10s --latency "http://${addrs[$s]}/health" >"$tmp/wrk.txt"
  wait "$flood"
  parse "$s" flood-health <"$tmp/wrk.txt" >>"$results"
  parse "$s" flood-login <"$tmp/flood.txt" >>"$results"
  echo "  $s /health during the login flood: p99 $(awk '$1 == "99%" {print $2}' "$tmp/wrk.txt")" >&2
  flood_statuses+="${flood_statuses:+; }$s $(sed -n 's/^statuses //p' "$tmp/flood.txt")"
done
for s in "${servers[@]}"; do
  alive "$s"
  echo "$s rss $(peak_rss_mib "$s") nan nan 0 0" >>"$results"
done

# --- the table --------------------------------------------------------------------
echo
echo "Side by side on $(nproc) CPUs ($(uname -m)), $(date -u '+%Y-%m-%d %H:%M UTC'): Rampart on $database," \
  "servers on CPU 0, wrk on CPU 1, ${conns} connections (login ${login_conns}), ${warmup} s warm-up + ${duration} s each;" \
  "p50/p99 in ms; \`./bench/side-by-side.sh$([ "$start_postgres" = 1 ] && echo ' --postgres')\`"
echo
python3 - "$results" "$conns" "$login_conns" <<'PY'
import math, sys
rows = {}
for line in open(sys.argv[1]):
    server, workload, rps, p50, p99, non2xx, sock = line.split()
    r = dict(rps=float(rps), p50=float(p50), p99=float(p99), bad=int(non2xx), sock=int(sock))
    if r["rps"] == 0:  # nothing answered within the run: wrk's latencies are not measurements
        r["p50"] = r["p99"] = float("nan")
    rows[(server, workload)] = r
conns, login_conns = sys.argv[2], sys.argv[3]

def num(v, digits=0):
    if v is None or math.isnan(v): return "—"
    return f"{v:,.{digits}f}".replace(",", " ")
def ratio(a, b):
    if a is None or b is None or math.isnan(a) or math.isnan(b) or b == 0: return "—"
    return f"{a / b:.2f}×"
def get(server, workload, key):
    r = rows.get((server, workload))
    return None if r is None else r[key]
def lat(server, workload):
    r = rows.get((server, workload))
    return "—" if r is None else f"{num(r['p50'], 2)} / {num(r['p99'], 2)}"
def bad(server, workload):
    r = rows.get((server, workload))
    if r is None: return "—"
    return str(r["bad"]) + (f" (+{r['sock']} socket errors)" if r["sock"] else "")

print("| workload | Express req/s | Rampart req/s | Rampart / Express | bare axum req/s | Rampart / bare axum "
      "| p50 / p99 Express | p50 / p99 Rampart | p50 / p99 bare axum | non-2xx Express / Rampart / bare |")
print("|---|---|---|---|---|---|---|---|---|---|")
def row(label, workload, rampart="rampart", bare=True):
    e, r = get("express", workload, "rps"), get(rampart, workload, "rps")
    b = get("bare", workload, "rps") if bare else None
    print(f"| {label} | {num(e)} | {num(r)} | {ratio(r, e)} | {num(b)} | {ratio(r, b)} "
          f"| {lat('express', workload)} | {lat(rampart, workload)} | {lat('bare', workload) if bare else '—'} "
          f"| {bad('express', workload)} / {bad(rampart, workload)} / {bad('bare', workload) if bare else '—'} |")
row("`GET /health`", "health")
# The log-off variant against the same run's Express and bare axum.
e, r, b = get("express", "health", "rps"), get("rampart-warn", "health", "rps"), get("bare", "health", "rps")
print(f"| `GET /health`, Rampart with `RAMPART_LOG=warn` | {num(e)} | {num(r)} | {ratio(r, e)} | {num(b)} | {ratio(r, b)} "
      f"| {lat('express', 'health')} | {lat('rampart-warn', 'health')} | {lat('bare', 'health')} "
      f"| {bad('express', 'health')} / {bad('rampart-warn', 'health')} / {bad('bare', 'health')} |")
row("`GET /api/v1/products?q=prod&limit=20` (1 000 products)", "products")
row("`GET /api/v1/me` (EdDSA bearer)", "me")
row("`POST /api/v1/orders` (2 lines)", "orders")
row(f"`POST /api/v1/auth/login` (Argon2id m=19456 t=2, {login_conns} conns)", "login", bare=False)
row("`POST /api/v1/auth/login` during the flood (64 conns)", "flood-login", bare=False)
e, r = get("express", "flood-health", "p99"), get("rampart", "flood-health", "p99")
print(f"| `GET /health` p99 (ms) during the 64-connection login flood | {num(e, 2)} | {num(r, 2)} | {ratio(r, e)} | — | — "
      f"| {lat('express', 'flood-health')} | {lat('rampart', 'flood-health')} | — "
      f"| {bad('express', 'flood-health')} / {bad('rampart', 'flood-health')} / — |")
e, r, b = get("express", "rss", "rps"), get("rampart", "rss", "rps"), get("bare", "rss", "rps")
print(f"| peak RSS over the run (MiB, VmHWM) | {num(e, 1)} | {num(r, 1)} | {ratio(r, e)} | {num(b, 1)} | {ratio(r, b)} | — | — | — | — |")
PY
echo
echo "Login flood answers by status (and problem code): $flood_statuses."
