#!/usr/bin/env bash
# Instructions the global rate limiter adds to one GET /health through the whole pipeline,
# in process (benches/pipeline.rs), counted by callgrind: repeatable on a noisy VM where
# wall-clock throughput is not. Each configuration runs twice, with N and 2N requests, so
# the start-up (migrations, key generation) cancels out of the per-request figure.
#
#   ./bench/limiter-instructions.sh [N]        # default 5000
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-5000}
command -v valgrind >/dev/null || { [ "$(id -u)" = 0 ] && apt-get install -y -qq valgrind >/dev/null; } || { echo "install valgrind"; exit 1; }
cargo bench -p rampart --bench pipeline --no-run --quiet 2>/dev/null
bin=$(ls -t "${CARGO_TARGET_DIR:-target}"/release/deps/pipeline-* | grep -v '\.d$' | head -1)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
count() { # count MODE REQUESTS: total instructions of one run
  valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$bin" "$1" "$2" >/dev/null 2>"$out/log"
  awk '/^summary:/ {print $2}' "$out/cg"
}
declare -A per
for mode in off on; do
  a=$(count "$mode" "$n")
  b=$(count "$mode" "$((2 * n))")
  per[$mode]=$(( (b - a) / n ))
  echo "$mode: ${per[$mode]} instructions per request"
done
awk -v on="${per[on]}" -v off="${per[off]}" 'BEGIN {
  printf "the limiter adds %d instructions per request (%.1f %% of the in-process pipeline)\n", on - off, 100 * (on - off) / off
}'
