#!/usr/bin/env bash
# GET /api/v1/me with one token and with 1 000 distinct tokens (1 000 sessions), for two
# Rampart binaries side by side in one run: alternating rounds, each server pinned to CPU 0
# and wrk to CPU 1 (64 connections), access log on (the default `info`), global limit off.
#
#   ./bench/tokens.sh OLD_BIN NEW_BIN [seconds] [rounds]      # defaults: 5 s, 2 rounds
#
# The 1 000 tokens come from 1 000 real logins of one account (create-admin through the
# CLI), so each token has its own session family, as 1 000 clients would: logins count
# only failures against their limits, and the seeding runs before the server is pinned, on
# both cores, 4 at a time (~20 s: Argon2id at its default cost). wrk cycles through the
# tokens with bench/tokens.lua. Prints req/s per scenario and round, and NEW/OLD ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
old=$1 new=$2 duration=${3:-5} rounds=${4:-2}
command -v wrk >/dev/null || { echo "install wrk (Debian package)" >&2; exit 1; }
email=token-bench@example.com
password="Bench-Lantern-$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')-Orbit!"
results=$(mktemp)
pid=""
dir=""
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  [ -n "$dir" ] && rm -rf "$dir"
  true
}
trap cleanup EXIT

run() { # run LABEL BIN
  local label=$1 bin=$2
  dir=$(mktemp -d)
  (cd "$dir" && printf '%s\n' "$password" | env -i PATH="$PATH" "$bin" create-admin --email "$email" --password-stdin >/dev/null)
  (cd "$dir" && exec env -i PATH="$PATH" RAMPART_LISTEN=127.0.0.1:0 RAMPART_RATE_LIMIT_GLOBAL=off \
    "$bin" serve >"$dir/log" 2>&1) &
  pid=$!
  local addr="" _
  for _ in $(seq 1 200); do
    addr=$(grep -o '"listen":"[^"]*"' "$dir/log" 2>/dev/null | head -1 | cut -d'"' -f4 || true)
    [ -n "$addr" ] && break
    sleep 0.05
  done
  [ -n "$addr" ] || { cat "$dir/log" >&2; exit 1; }
  python3 - "$addr" "$email" "$password" >"$dir/tokens.txt" <<'PY'
import json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
addr, email, password = sys.argv[1:4]
body = json.dumps({"email": email, "password": password}).encode()
def login(_):
    req = urllib.request.Request(f"http://{addr}/api/v1/auth/login", data=body,
        headers={"content-type": "application/json"})
    return json.load(urllib.request.urlopen(req))["access_token"]
with ThreadPoolExecutor(4) as pool:
    tokens = list(pool.map(login, range(1000)))
assert len(set(tokens)) == 1000
print("\n".join(tokens))
PY
  # Every thread of the server onto CPU 0 for the measurement.
  taskset -a -p -c 0 "$pid" >/dev/null
  head -1 "$dir/tokens.txt" >"$dir/one.txt"
  local scenario out rps non2xx
  for scenario in one many; do
    local file="$dir/tokens.txt"
    [ "$scenario" = one ] && file="$dir/one.txt"
    out=$(cd "$dir" && TOKENS="$file" taskset -c 1 wrk -t1 -c64 -d"${duration}s" \
      -s "$root/bench/tokens.lua" "http://$addr/api/v1/me")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    echo "$label $scenario $rps ${non2xx:-0}" >>"$results"
  done
  awk '/VmHWM/ {printf "%s peak-rss-mib %.1f 0\n", L, $2/1024}' L="$label" "/proc/$pid/status" >>"$results"
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  rm -rf "$dir"; dir=""
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
names = {"one": "/me, 1 token", "many": "/me, 1 000 tokens", "peak-rss-mib": "peak RSS MiB"}
print("| scenario | old (median) | new (median) | new/old | rounds old | rounds new | non-2xx old/new |")
print("|---|---|---|---|---|---|---|")
for r in ["one", "many", "peak-rss-mib"]:
    o, n = statistics.median(rows[("old", r)]), statistics.median(rows[("new", r)])
    print(f"| {names[r]} | {o:,.1f} | {n:,.1f} | {n/o:.2f} | {', '.join(f'{v:,.0f}' for v in rows[('old', r)])} | {', '.join(f'{v:,.0f}' for v in rows[('new', r)])} | {bad[('old', r)]}/{bad[('new', r)]} |")
PY
