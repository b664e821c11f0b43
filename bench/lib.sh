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

# --- a throwaway PostgreSQL ----------------------------------------------------
#   pg_start [taskset-cpu]   # initdb + pg_ctl start on a free loopback port, in a temporary
#                            # directory; sets $pg_port, $pg_bin, $pg_tmp; pg_psql runs SQL
#   pg_stop                  # stops it by pg_ctl (its postmaster PID) and removes it
# Durable defaults (fsync, synchronous_commit on). As root it runs as the `postgres` user.
pg_tmp="" pg_user="" pg_bin="" pg_port=""
as_pg() { # run a PostgreSQL program as the server user (root may not run it)
  if [ -n "$pg_user" ]; then (cd "$pg_tmp" && runuser -u "$pg_user" -- "$@"); else (cd "$pg_tmp" && "$@"); fi
}
pg_start() {
  local cpu=${1:-0}
  pg_bin=$(dirname "$(readlink -f "$(command -v initdb || echo /nonexistent)")")
  if [ ! -x "$pg_bin/pg_ctl" ] || [ ! -x "$pg_bin/postgres" ]; then
    pg_bin=$(compgen -G '/usr/lib/postgresql/*/bin' | sort -V -r | head -1 || true)
  fi
  [ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ] || { echo "install PostgreSQL (Debian package postgresql)" >&2; exit 1; }
  pg_tmp=$(mktemp -d /tmp/bench-pg.XXXXXX)
  if [ "$(id -u)" = 0 ]; then
    pg_user=postgres
    id -u "$pg_user" >/dev/null 2>&1 || { echo "as root, a 'postgres' user must run the server" >&2; exit 1; }
    chown "$pg_user" "$pg_tmp"
  fi
  as_pg "$pg_bin/initdb" -D "$pg_tmp/pgdata" -U rampart --auth=trust --encoding=UTF8 --locale=C >"$pg_tmp/initdb.log" 2>&1 ||
    { cat "$pg_tmp/initdb.log" >&2; exit 1; }
  pg_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  as_pg taskset -c "$cpu" "$pg_bin/pg_ctl" -D "$pg_tmp/pgdata" -l "$pg_tmp/postgres.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_tmp -c max_connections=100" start >/dev/null ||
    { cat "$pg_tmp/postgres.log" >&2; exit 1; }
}
pg_psql() {
  local psql="$pg_bin/psql"
  [ -x "$psql" ] || psql=psql
  "$psql" -X -Atq -h 127.0.0.1 -p "$pg_port" -U rampart -d postgres "$@"
}
pg_stop() {
  if [ -n "$pg_tmp" ] && [ -f "$pg_tmp/pgdata/postmaster.pid" ]; then
    as_pg "$pg_bin/pg_ctl" -D "$pg_tmp/pgdata" -m fast -w stop >/dev/null 2>&1 || true
  fi
  [ -z "$pg_tmp" ] || rm -rf "$pg_tmp"
  pg_tmp=""
}
