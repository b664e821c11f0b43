#!/usr/bin/env bash
# Login flood: 64 connections hammer POST /api/v1/auth/login (Argon2id, m=19456 KiB, t=2,
# p=1) while a second client measures GET /health latency. Targets (DESIGN.md):
# /health p99 ≤ 10 ms during the flood, because hashing runs in a bounded pool; and the
# server's peak RSS (VmHWM) ≤ 100 MiB, because each of the (cores) hashing threads reuses
# one Argon2 memory buffer instead of allocating 19 MiB per job.
#
#   ./bench/login-flood.sh [seconds]      # default 20 s
#
# The server runs on the embedded default in a temporary directory on a free loopback
# port, pinned to CPU 0; both load generators (wrk, Debian package `wrk`) run on CPU 1.
# Everything is stopped by PID at the end. The global rate limit is raised past what the
# run can spend (successful logins never count towards the login limits).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-20}
. ./bench/lib.sh
bench_need wrk wrk
bench_build
work=$(mktemp -d)

email="bench-$(date +%s)@example.com"
password="Bench-Lantern-$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')-Orbit!"
(cd "$work" && printf '%s\n' "$password" | env -i PATH="$PATH" "$bin" create-admin --email "$email" --password-stdin >/dev/null)
server_start 0 RAMPART_RATE_LIMIT_GLOBAL=10000000/3h

cat >"$work/login.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"email":"$email","password":"$password"}'
wrk.headers["Content-Type"] = "application/json"
LUA

peak_rss() { awk '/VmHWM/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$pid/status"; }
echo "== peak RSS before the flood: $(peak_rss)"
echo "== baseline: GET /health alone (1 connection, ${duration}s)"
taskset -c 1 wrk -t1 -c1 -d"${duration}s" --latency "http://$addr/health" | sed -n '/Latency Distribution/,/Requests\/sec/p'

echo "== flood: 64 connections POST /api/v1/auth/login, with GET /health measured beside it"
taskset -c 1 wrk -t1 -c64 -d"${duration}s" -s "$work/login.lua" "http://$addr/api/v1/auth/login" >"$work/flood.txt" &
flood=$!
taskset -c 1 wrk -t1 -c1 -d"$((duration - 2))s" --latency "http://$addr/health" >"$work/health.txt"
wait "$flood"
echo "-- logins:"; sed -n '/Requests\/sec/p;/Non-2xx/p;/requests in/p' "$work/flood.txt"
echo "-- /health during the flood:"; sed -n '/Latency Distribution/,/Requests\/sec/p' "$work/health.txt"
server_alive
echo "== peak RSS over the whole run (VmHWM): $(peak_rss)   (target: <= 100 MiB)"
