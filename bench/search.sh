#!/usr/bin/env bash
# Catalog search under load: GET /api/v1/products with q=prod (all of 1 000 products match)
# and with VARIED queries (each request a different word or word prefix of 3–6 letters and a
# page of 1–3, limit 20: a wrk Lua script), at 1 000 products and again after 19 000 more
# products that none of the benchmark's words match. Targets (issue 10): q=prod ≥ 15 000
# req/s; varied ≥ 8 000 req/s at 1 000 products and ≥ 4 000 req/s at 20 000.
#
#   ./bench/search.sh [--postgres] [seconds] [BIN ...]   # default 8 s per run; BIN: the release build
#
# Each BIN (default: this tree's release build) runs `rampart serve` on the embedded
# default (SQLite) in a temporary directory on a free loopback port, pinned to CPU 0, with
# the global rate limit off (a benchmark-only setting; the access log stays at warn, as
# bench/lib.sh starts it); wrk (Debian package `wrk`) runs on CPU 1 with 64 connections
# after a 2 s warm-up. Products are created through the admin API (an admin made with
# `create-admin`), so the index is fed exactly as in production. With two BINs (an old and
# a new build) the table shows both, run after run on the same machine. --postgres runs
# each BIN on its own fresh database in a throwaway PostgreSQL (bench/lib.sh `pg_start`,
# also pinned to CPU 0, durable defaults) instead. SEARCH_PERF=/tmp/search records a
# `perf record --call-graph dwarf` of the server (with --postgres `-a -C 0`: PostgreSQL
# too) during each measured run
# ($SEARCH_PERF.N.SCENARIO.data; give at least 6 s). Servers are stopped by their PID.
set -euo pipefail
cd "$(dirname "$0")/.."
postgres=0
if [ "${1:-}" = --postgres ]; then
  postgres=1
  shift
fi
duration=${1:-8}
shift || true
. ./bench/lib.sh
bench_need wrk wrk
bench_need jq jq
bench_need python3 python3
if [ $# -eq 0 ]; then
  bench_build
  set -- "$bin"
fi
results=$(mktemp)
trap 'server_stop; pg_stop; rm -f "$results"' EXIT
db_env=()
[ "$postgres" = 0 ] || pg_start 0
words="amber basil cedar delta ember fjord garnet harbor indigo jasmine kettle lantern meadow
nectar orchid pepper quartz raven saffron thistle umber velvet willow yarrow zephyr almond
birch cobalt dune elm fern ginger hazel iris juniper kelp lilac maple nutmeg olive"

# seed ADDR TOKEN FROM TO KIND: create products FROM..TO-1 through the admin API on one
# keep-alive connection; KIND "match" uses the words, "filler" none of them.
seed() {
  python3 - "$@" "$words" <<'PY'
import http.client, json, sys
addr, token, start, end, kind, words = sys.argv[1:7]
words = words.split()
host, port = addr.rsplit(":", 1)
conn = http.client.HTTPConnection(host, int(port))
for i in range(int(start), int(end)):
    if kind == "match":
        name = f"prod {i} {words[i % len(words)]}"
        description = f"<p>a {words[(i * 7 + 3) % len(words)]} product</p>"
    else:
        name, description = f"item {i} xq{i % 97}", "<p>stock keeping unit</p>"
        text = (name + " " + description).lower()
        assert not any(w[:3] in text for w in words), name
    body = json.dumps({"name": name, "description": description, "price_cents": 100 + i,
                       "currency": "EUR", "stock": 1000000})
    conn.request("POST", "/api/v1/admin/products", body,
                 {"content-type": "application/json", "authorization": f"Bearer {token}"})
    response = conn.getresponse()
    response.read()
    assert response.status == 201, response.status
PY
}

# load LABEL SCENARIO URL [wrk args]: a warm-up, then the measured run.
load() {
  local label=$1 scenario=$2 url=$3
  shift 3
  server_alive
  taskset -c 1 wrk -t1 -c64 -d2s "$@" "$url" >/dev/null
  local out perf_pid=""
  if [ -n "${SEARCH_PERF:-}" ]; then
    # A profile of the server (with --postgres: of all of CPU 0, PostgreSQL too) for 4 s
    # from 1 s into the measured run.
    local what=(--call-graph dwarf -p "$pid")
    [ "$postgres" = 0 ] || what=(-g -a -C 0)
    (sleep 1 && perf record -F 499 "${what[@]}" -o "$SEARCH_PERF.${label%%:*}.$scenario.data" \
      -- sleep 4 >/dev/null 2>&1) &
    perf_pid=$!
  fi
  out=$(taskset -c 1 wrk -t1 -c64 -d"${duration}s" --latency "$@" "$url")
  [ -z "$perf_pid" ] || wait "$perf_pid"
  awk -v l="$label" -v s="$scenario" '
    /Requests\/sec/ {rps=$2} /Non-2xx/ {bad=$NF} $1=="50%" {p50=$2} $1=="99%" {p99=$2}
    END {printf "%s %s %s %s %s %s\n", l, s, rps, p50, p99, bad+0}' <<<"$out" >>"$results"
}

n=0
for bin in "$@"; do
  n=$((n + 1))
  label="$n:$bin"
  work=$(mktemp -d)
  if [ "$postgres" = 1 ]; then
    pg_psql -c "CREATE DATABASE bench_search_$n"
    db_env=(DATABASE_URL="postgres://rampart@127.0.0.1:$pg_port/bench_search_$n")
  fi
  email="bench-$(date +%s)@example.com"
  password="Bench-Lantern-$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')-Orbit!"
  (cd "$work" && printf '%s\n' "$password" | env -i PATH="$PATH" "${db_env[@]}" "$bin" create-admin --email "$email" --password-stdin >/dev/null)
  server_start 0 RAMPART_RATE_LIMIT_GLOBAL=off "${db_env[@]}"
  token=$(curl -fsS -X POST "http://$addr/api/v1/auth/login" -H 'content-type: application/json' \
    -d "$(jq -nc --arg e "$email" --arg p "$password" '{email:$e,password:$p}')" | jq -r .access_token)
  [ -n "$token" ] && [ "$token" != null ] || { echo "login failed"; server_alive; exit 1; }
  lua="$work/varied.lua"
  {
    printf 'local words = {'
    for w in $words; do printf '"%s",' "$w"; done
    printf '}\n'
    cat <<'LUA'
math.randomseed(42)
request = function()
  local w = words[math.random(#words)]
  local q = string.sub(w, 1, math.random(3, math.min(6, #w)))
  local page = math.random(1, 3)
  return wrk.format("GET", "/api/v1/products?q=" .. q .. "&page=" .. page .. "&limit=20")
end
LUA
  } >"$lua"
  seed "$addr" "$token" 0 1000 match
  [ "$(curl -fsS "http://$addr/api/v1/products?q=prod&limit=1" | jq .total)" = 1000 ]
  load "$label" "q=prod@1k" "http://$addr/api/v1/products?q=prod&limit=20"
  load "$label" "varied@1k" "http://$addr/api/v1/products" -s "$lua"
  seed "$addr" "$token" 0 19000 filler
  [ "$(curl -fsS "http://$addr/api/v1/products?limit=1" | jq .total)" = 20000 ]
  [ "$(curl -fsS "http://$addr/api/v1/products?q=prod&limit=1" | jq .total)" = 1000 ]
  load "$label" "q=prod@20k" "http://$addr/api/v1/products?q=prod&limit=20"
  load "$label" "varied@20k" "http://$addr/api/v1/products" -s "$lua"
  awk -v l="$label" '/VmHWM/ {printf "%s peak-rss-mib %.1f - - 0\n", l, $2/1024}' "/proc/$pid/status" >>"$results"
  server_stop
done

echo "| server | scenario | req/s | p50 | p99 | non-2xx |"
echo "|---|---|---|---|---|---|"
awk '{printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6}' "$results"
