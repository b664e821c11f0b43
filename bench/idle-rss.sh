#!/usr/bin/env bash
# Idle memory of `rampart serve` on the embedded default (DESIGN.md target: ≤ 20 MiB).
#
# Starts the release binary with no configuration in a temporary directory on a free
# loopback port, waits until /health answers, sends a few requests (so the pools and the
# first connections exist), then reads the kernel's peak resident set (VmHWM) and current
# RSS of that PID, split into file-backed pages (the binary's own code and data, shared
# with every other process running it) and anonymous memory (heap, stacks), and stops it
# by its PID.
#
#   ./bench/idle-rss.sh            # prints VmHWM and VmRSS in KiB and MiB
set -euo pipefail
cd "$(dirname "$0")/.."
. ./bench/lib.sh
bench_build
server_start -
for _ in $(seq 1 20); do
  curl -fsS "http://$addr/health" >/dev/null
  curl -fsS "http://$addr/api/v1/products?q=tea" >/dev/null
done
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
anon=$(awk '/RssAnon/ {print $2}' "/proc/$pid/status")
file=$(awk '/RssFile/ {print $2}' "/proc/$pid/status")
printf 'idle rampart serve (pid %s, %s): VmHWM %s KiB (%.1f MiB), VmRSS %s KiB (%.1f MiB)\n' \
  "$pid" "$addr" "$hwm" "$(echo "$hwm/1024" | bc -l)" "$rss" "$(echo "$rss/1024" | bc -l)"
printf '  of it: anonymous (heap, stacks) %.1f MiB, file-backed (the binary and libraries) %.1f MiB\n' \
  "$(echo "$anon/1024" | bc -l)" "$(echo "$file/1024" | bc -l)"
limit_kib=$((20 * 1024))
if [ "$hwm" -gt "$limit_kib" ]; then
  echo "ABOVE: peak RSS above 20 MiB"
  exit 1
fi
echo "OK: peak RSS within 20 MiB"
