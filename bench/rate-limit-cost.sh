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
#   ./bench/rate-limit-cost.sh [seconds-per-run] [rounds]     # default 10 s, 5 rounds
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
rounds=${2:-5}
. ./bench/lib.sh
bench_need wrk wrk
bench_build

# run LIMIT: prints the requests/s of one wrk run against a fresh server.
run() {
  server_start 0 RAMPART_RATE_LIMIT_GLOBAL="$1"
  local out
  out=$(taskset -c 1 wrk -t1 -c64 -d"${duration}s" --latency "http://$addr/health")
  if grep -q 'Non-2xx' <<<"$out"; then echo "unexpected non-2xx answers:" >&2; echo "$out" >&2; exit 1; fi
  awk '/Requests\/sec/ {print $2}' <<<"$out"
  server_stop
}

off=() on=()
for r in $(seq 1 "$rounds"); do
  # Alternate which goes first, so a drift of the machine favours neither.
  if [ $((r % 2)) = 1 ]; then
    off+=("$(run off)")
    on+=("$(run 100000000/1h)")
  else
    on+=("$(run 100000000/1h)")
    off+=("$(run off)")
  fi
  echo "round $r: limiter off ${off[-1]} req/s, limiter on ${on[-1]} req/s"
done
python3 - "${off[*]}" "${on[*]}" <<'PY'
import statistics, sys
off = [float(x) for x in sys.argv[1].split()]
on = [float(x) for x in sys.argv[2].split()]
m_off, m_on = statistics.median(off), statistics.median(on)
print(f"median: limiter off {m_off:.0f} req/s, on {m_on:.0f} req/s, cost {100 * (1 - m_on / m_off):.1f} %")
PY
