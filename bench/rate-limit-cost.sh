#!/usr/bin/env bash
# What the global rate limiter costs (issue 4 target: ≤ 5 % of GET /health throughput with
# the memory store).
#
# The same release binary serves GET /health twice, alternately, `rounds` times each: with
# RAMPART_RATE_LIMIT_GLOBAL=off and with a quota no run can exhaust (every request still
# passes through the limiter, its store and its two headers). The server is pinned to CPU
# 0, wrk (Debian package `wrk`, 64 connections) to CPU 1; each server runs in a temporary
# directory on a free loopback port and is stopped by PID.
#
#   ./bench/rate-limit-cost.sh [seconds-per-run] [rounds]     # default 10 s, 3 rounds
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
rounds=${2:-3}
command -v wrk >/dev/null || { [ "$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null; } || { echo "install wrk"; exit 1; }
cargo build --release --quiet
bin="$PWD/target/release/rampart"
pid=""
work=""
stop() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  pid=""
  [ -n "$work" ] && rm -rf "$work"
  work=""
}
trap stop EXIT

# run LIMIT: prints the requests/s of one wrk run against a fresh server.
run() {
  work=$(mktemp -d)
  (cd "$work" && exec env -i PATH="$PATH" RAMPART_LISTEN=127.0.0.1:0 RAMPART_LOG=warn,rampart::cli=info \
    RAMPART_RATE_LIMIT_GLOBAL="$1" taskset -c 0 "$bin" serve >"$work/log" 2>&1) &
  pid=$!
  local addr="" i
  for i in $(seq 1 200); do
    addr=$(grep -o '"listen":"[^"]*"' "$work/log" 2>/dev/null | head -1 | cut -d'"' -f4 || true)
    [ -n "$addr" ] && break
    sleep 0.05
  done
  [ -n "$addr" ] || { cat "$work/log" >&2; exit 1; }
  local out
  out=$(taskset -c 1 wrk -t1 -c64 -d"${duration}s" --latency "http://$addr/health")
  if grep -q 'Non-2xx' <<<"$out"; then echo "unexpected non-2xx answers:" >&2; echo "$out" >&2; exit 1; fi
  awk '/Requests\/sec/ {print $2}' <<<"$out"
  stop
}

off=() on=()
for r in $(seq 1 "$rounds"); do
  off+=("$(run off)")
  on+=("$(run 10000000/3h)")
  echo "round $r: limiter off ${off[-1]} req/s, limiter on ${on[-1]} req/s"
done
python3 - "${off[*]}" "${on[*]}" <<'PY'
import statistics, sys
off = [float(x) for x in sys.argv[1].split()]
on = [float(x) for x in sys.argv[2].split()]
m_off, m_on = statistics.median(off), statistics.median(on)
print(f"median: limiter off {m_off:.0f} req/s, on {m_on:.0f} req/s, cost {100 * (1 - m_on / m_off):.1f} %")
PY
