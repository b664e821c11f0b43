#!/usr/bin/env bash
# Instructions per request of a whole `rampart serve` (every thread: runtime, hyper, the
# layers, the handler, the access-log writer), counted by callgrind while wrk drives one
# route: a figure that holds on a noisy VM where req/s do not. Counting starts after a
# warm-up (the counters are zeroed) and is dumped before shutdown, so neither start-up nor
# shutdown is in it; requests are wrk's count.
#
#   ./bench/instructions.sh BIN [BIN ...]          # GET /health, 4 connections, 8 s
#   ./bench/instructions.sh target/release/bare-axum BIN   # beside the no-work baseline
#   BENCH_PATH=/openapi.json ./bench/instructions.sh BIN
#   BENCH_KEEP=DIR ./bench/instructions.sh BIN     # keep the counts for callgrind_annotate
#   BENCH_LOG=warn,rampart::application=info ./bench/instructions.sh BIN   # access log off
#
# Each server runs on the embedded default in its own temporary directory, access log on
# (`info`), global limit off. Prints one line per binary; compare lines of one run.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_need wrk wrk
bench_need valgrind valgrind
path=${BENCH_PATH:-/health}
duration=${BENCH_DURATION:-8}
for arg in "$@"; do
  bin=$(realpath "$arg")
  work=$(mktemp -d)
  # The bare-axum baseline (bench/bare-axum) is told apart by its name.
  args=(serve) ready='"rampart is serving"'
  case $(basename "$bin") in bare-axum*) args=() ready='"listen"' ;; esac
  (cd "$work" && exec env -i PATH="$PATH" RAMPART_LISTEN=127.0.0.1:0 RAMPART_RATE_LIMIT_GLOBAL=off \
    RAMPART_LOG="${BENCH_LOG:-info}" BARE_AXUM_LISTEN=127.0.0.1:0 valgrind --tool=callgrind \
    --callgrind-out-file="$work/cg" "$bin" "${args[@]}" >"$work/log" 2>"$work/valgrind") &
  pid=$!
  addr=""
  for _ in $(seq 1 600); do
    addr=$(grep "$ready" "$work/log" 2>/dev/null | grep -o '"listen":"[^"]*"' | cut -d'"' -f4 || true)
    [ -n "$addr" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/valgrind" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$addr" ] || { echo "rampart did not start under valgrind" >&2; exit 1; }
  wrk -t1 -c4 -d2s "http://$addr$path" >/dev/null
  callgrind_control -z "$pid" >/dev/null # counting starts here
  requests=$(wrk -t1 -c4 -d"${duration}s" "http://$addr$path" | awk '/requests in/ {print $1}')
  callgrind_control -d "$pid" >/dev/null # the counts since, in cg.1
  total=$(awk '/^summary:/ {print $2}' "$work/cg.1")
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  echo "$arg: $((total / requests)) instructions per GET $path ($requests requests)"
  [ -n "${BENCH_KEEP:-}" ] && cp "$work/cg.1" "$BENCH_KEEP/$(basename "$arg").callgrind"
  rm -rf "$work"
  work=""
  pid=""
done
