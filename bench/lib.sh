# Shared by the bench/ scripts (sourced, not run): build the release binary, start a
# `rampart serve` on the embedded default in a temporary directory on a free loopback
# port, find its address in its log, and stop it by its PID.
#
#   . "$(dirname "$0")/lib.sh"
#   bench_build                                  # sets $bin
#   server_start [taskset-cpu] [VAR=value ...]   # sets $pid, $addr, $work (log: $work/log)
#   server_stop                                  # also runs at exit

bench_need() { # bench_need COMMAND PACKAGE: install the Debian package when root
  command -v "$1" >/dev/null && return 0
  if [ "$(id -u)" = 0 ]; then apt-get install -y -qq "$2" >/dev/null && return 0; fi
  echo "install $2 (Debian package)" >&2
  exit 1
}

bench_build() {
  cargo build --release --quiet
  bin="${CARGO_TARGET_DIR:-$PWD/target}/release/rampart"
}

pid=""
addr=""
work=""

server_stop() {
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  pid=""
  [ -n "$work" ] && rm -rf "$work"
  work=""
}
trap server_stop EXIT

# server_start CPU [VAR=value ...]: CPU is a taskset list ("0"), or "-" for no pinning.
# With $work already set (state prepared by the caller), that directory is used.
server_start() {
  local cpu=$1
  shift
  [ -n "$work" ] || work=$(mktemp -d)
  local pin=()
  [ "$cpu" = - ] || pin=(taskset -c "$cpu")
  (cd "$work" && exec env -i PATH="$PATH" RAMPART_LISTEN=127.0.0.1:0 \
    RAMPART_LOG=warn,rampart::application=info "$@" "${pin[@]}" "$bin" serve >"$work/log" 2>&1) &
  pid=$!
  addr=""
  local _
  for _ in $(seq 1 200); do
    addr=$(grep -o '"listen":"[^"]*"' "$work/log" 2>/dev/null | head -1 | cut -d'"' -f4 || true)
    [ -n "$addr" ] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "rampart did not start:" >&2
  cat "$work/log" >&2
  exit 1
}

# server_alive: fail with the server's log when it has exited.
server_alive() {
  kill -0 "$pid" 2>/dev/null && return 0
  echo "rampart exited:" >&2
  cat "$work/log" >&2
  exit 1
}
