#!/usr/bin/env bash
# Every check Rampart's CI runs, in order:
#
#   fmt       cargo fmt --all -- --check
#   clippy    cargo clippy --all-targets -- -D warnings
#   deny      cargo deny check (advisories, licenses, bans, sources; see deny.toml)
#   sqlite    cargo test --workspace               (RAMPART_TEST_DATABASE unset)
#   postgres  cargo test --workspace against a throwaway PostgreSQL server
#   deploy    the multi-instance deployment test (tests/api/deploy.rs): PostgreSQL,
#             Redis, two `rampart serve` processes and nginx in front of them
#             (the sqlite and postgres stages skip it: its services are set up here)
#
# The Redis tests (rate limits shared by two instances, Redis stopped and restarted under
# load) start their own redis-server on a free loopback port in a temporary directory and
# kill it by PID; this script makes sure the binary is there (Debian package
# `redis-server`, installed when missing and running as root) and answers before any
# test stage runs.
#
# The browser tests (tests/api/browser.rs) drive a real headless Chromium through
# chromedriver, which each test starts on a free loopback port in a temporary directory
# and kills by PID; the sqlite and postgres stages make sure both binaries are there
# (Debian packages `chromium` and `chromium-driver`, installed when missing and running as
# root) and export their paths as RAMPART_TEST_CHROMIUM and RAMPART_TEST_CHROMEDRIVER.
# Without them the browser tests fail; they never skip.
#
# Usage: ./scripts/test.sh            (from any directory)
#
# Environment:
#   RAMPART_TEST_SKIP=deny,postgres   comma-separated stages to skip, for local
#                                     iteration only; the default runs everything.
#
# The deny stage uses the offline RustSec snapshot ../shared/advisory-db.tar.gz
# (next to the repository) when it exists, and installs cargo-deny 0.20.2 with
# `cargo install` when it is missing. The postgres stage needs initdb, pg_ctl and
# postgres (Debian package `postgresql`); as root it installs the package when
# missing and runs the server as the unprivileged `postgres` user. The deploy stage
# also needs nginx (Debian package `nginx-light`, installed as root when missing);
# the test itself starts it on a free loopback port in a temporary directory.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

readonly ALL_STAGES=(fmt clippy deny sqlite postgres deploy)
readonly CARGO_DENY_VERSION=0.20.2

# ---------------------------------------------------------------------------
# Output, timing and cleanup
# ---------------------------------------------------------------------------

say() { printf '%s\n' "$*"; }
header() { printf '\n==> %s\n' "$*"; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# Commands to run on exit, last registered first. Each service start function
# registers its stop function here, so servers are stopped and temp dirs removed
# even when a stage fails or the run is interrupted.
deferred=()
exit_status=0 # the script's exit status, for deferred commands to look at
defer() { deferred+=("$(printf '%q ' "$@")"); }

main_started=0
summary=()           # one line per stage, printed at the end
current_stage=""     # the stage running now, for the failure message
current_stage_start=0
tests_passed=0 tests_failed=0 tests_ignored=0 test_stages_run=0

print_summary() {
    local rc=$1 line
    ((main_started)) || return 0
    header "summary"
    for line in "${summary[@]}"; do say "  $line"; done
    if [[ -n $current_stage ]]; then
        printf '  %-9s FAILED   %4ss\n' "$current_stage" "$((SECONDS - current_stage_start))"
    fi
    if ((test_stages_run > 0)); then
        # Totals over every `test result:` line of the test stages (unit,
        # integration and doc tests, SQLite and PostgreSQL runs together).
        say "tests: ${tests_passed} passed, ${tests_failed} failed, ${tests_ignored} skipped"
    fi
    if ((rc == 0)); then say "all stages passed in ${SECONDS}s"; else say "FAILED (exit ${rc}) after ${SECONDS}s"; fi
}

on_exit() {
    local rc=$? i
    trap - EXIT
    set +e
    exit_status=$rc
    for ((i = ${#deferred[@]} - 1; i >= 0; i--)); do
        eval "${deferred[i]}"
    done
    print_summary "$rc"
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# Stage selection
# ---------------------------------------------------------------------------

skip_list=()
if [[ -n ${RAMPART_TEST_SKIP:-} ]]; then
    IFS=', ' read -r -a skip_list <<<"$RAMPART_TEST_SKIP"
    for s in "${skip_list[@]}"; do
        [[ -n $s ]] || continue
        [[ " ${ALL_STAGES[*]} " == *" $s "* ]] ||
            die "RAMPART_TEST_SKIP: unknown stage '$s' (stages: ${ALL_STAGES[*]})"
    done
    [[ -z ${CI:-} ]] || say "warning: CI run with stages skipped (RAMPART_TEST_SKIP=$RAMPART_TEST_SKIP)" >&2
fi

is_skipped() {
    local s
    for s in "${skip_list[@]+"${skip_list[@]}"}"; do [[ $s == "$1" ]] && return 0; done
    return 1
}

# run_stage NAME FUNCTION: prints the header, times the stage, records the result.
# A failing command inside FUNCTION ends the whole run (set -e).
run_stage() {
    local name=$1 fn=$2
    if is_skipped "$name"; then
        header "$name (skipped: RAMPART_TEST_SKIP)"
        summary+=("$(printf '%-9s skipped' "$name")")
        return 0
    fi
    header "$name"
    current_stage=$name
    current_stage_start=$SECONDS
    "$fn"
    summary+=("$(printf '%-9s ok       %4ss' "$name" "$((SECONDS - current_stage_start))")")
    current_stage=""
}

# cargo_test_counted [ENV=VALUE...] [-- CARGO_TEST_ARGS...]: `cargo test` (by
# default `--workspace`) with its output shown as usual and its `test result:`
# lines added to the totals.
cargo_test_counted() {
    local log vars=()
    while (($# > 0)) && [[ $1 != -- ]]; do
        vars+=("$1")
        shift
    done
    (($# == 0)) || shift
    (($# > 0)) || set -- --workspace
    log=$(mktemp "${TMPDIR:-/tmp}/rampart-test-log.XXXXXX")
    defer rm -f -- "$log"
    test_stages_run=$((test_stages_run + 1))
    local rc=0
    env "${vars[@]}" cargo test "$@" 2>&1 | tee "$log" || rc=$?
    local counts p f g
    counts=$(awk '/^test result: / {
                    for (i = 1; i <= NF; i++) {
                        if ($(i) ~ /^passed;?$/)  p += $(i - 1)
                        if ($(i) ~ /^failed;?$/)  f += $(i - 1)
                        if ($(i) ~ /^ignored;?$/) g += $(i - 1)
                    }
                  }
                  END { printf "%d %d %d", p, f, g }' "$log")
    read -r p f g <<<"$counts"
    tests_passed=$((tests_passed + p))
    tests_failed=$((tests_failed + f))
    tests_ignored=$((tests_ignored + g))
    return "$rc"
}

# ---------------------------------------------------------------------------
# Services used by the test stages.
#
# Each service has NAME_start (which registers NAME_stop with `defer`) and an
# idempotent NAME_stop. A later service (Redis, ...) follows the same pattern:
# add its start/stop functions here and a stage that starts it, exports its URL
# and runs the tests.
# ---------------------------------------------------------------------------

is_root() { [[ $(id -u) -eq 0 ]]; }

# Prints a TCP port on 127.0.0.1 that nothing listens on right now.
pick_free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
        return
    fi
    local port i
    for ((i = 0; i < 100; i++)); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            say "$port"
            return
        fi
    done
    die "could not find a free TCP port"
}

# --- PostgreSQL ------------------------------------------------------------

PG_BIN=""     # directory holding initdb, pg_ctl, postgres
PG_USER=""    # system user the server runs as when we are root; empty otherwise
PG_TMP=""     # temp dir: pgdata/, server log, unix socket
PG_PORT=""
PG_PID=""
PG_URL=""

# Sets PG_BIN: initdb on PATH first, then the newest /usr/lib/postgresql/*/bin.
pg_find_bindir() {
    local initdb dir
    if initdb=$(command -v initdb 2>/dev/null) &&
        command -v pg_ctl >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1; then
        dir=$(dirname "$(readlink -f "$initdb")")
        if [[ -x $dir/pg_ctl && -x $dir/postgres ]]; then
            PG_BIN=$dir
            return 0
        fi
    fi
    while IFS= read -r dir; do
        if [[ -x $dir/initdb && -x $dir/pg_ctl && -x $dir/postgres ]]; then
            PG_BIN=$dir
            return 0
        fi
    done < <(compgen -G '/usr/lib/postgresql/*/bin' | sort -V -r)
    return 1
}

pg_install() {
    is_root || die "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or in /usr/lib/postgresql/*/bin.
Install the Debian package 'postgresql' (sudo apt-get install postgresql), or skip this stage with RAMPART_TEST_SKIP=postgres."
    say "PostgreSQL not found: installing the Debian package 'postgresql'"
    # Keep the package from creating and starting its own 'main' cluster: this
    # script only ever uses a throwaway cluster of its own.
    local dropin=/etc/postgresql-common/createcluster.d/zz-rampart-test-no-main.conf
    mkdir -p "$(dirname "$dropin")"
    printf 'create_main_cluster = false\n' >"$dropin"
    local rc=0
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; } || rc=$?
    rm -f -- "$dropin"
    ((rc == 0)) || die "apt-get install postgresql failed (exit $rc)"
}

# Runs a PostgreSQL program as the server user, from PG_TMP (the server user may
# not be able to read the current directory).
pg_as_server_user() {
    if [[ -z $PG_USER ]]; then
        (cd "$PG_TMP" && "$@")
    elif command -v runuser >/dev/null 2>&1; then
        (cd "$PG_TMP" && runuser -u "$PG_USER" -- "$@")
    else
        (cd "$PG_TMP" && su -s /bin/sh "$PG_USER" -c "$(printf '%q ' "$@")")
    fi
}

# initdb and postgres refuse to run as root: as root, use the `postgres` system
# user from the Debian package, or create an unprivileged one.
pg_pick_server_user() {
    is_root || return 0
    if id -u postgres >/dev/null 2>&1; then
        PG_USER=postgres
    else
        PG_USER=rampart-pg
        id -u "$PG_USER" >/dev/null 2>&1 ||
            useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER" ||
            die "could not create the system user $PG_USER to run PostgreSQL"
    fi
}

# Fails if the server logged a fatal error (other than the "starting up" answer
# to our own readiness probes).
pg_log_has_fatal() {
    [[ -f $PG_TMP/postgres.log ]] || return 1
    awk '/(FATAL|PANIC):/ && !/database system is starting up/ { found = 1 } END { exit !found }' \
        "$PG_TMP/postgres.log"
}

# Polls pg_isready until the server accepts connections, at most $1 seconds.
pg_wait_ready() {
    local deadline=$((SECONDS + $1)) isready=$PG_BIN/pg_isready
    [[ -x $isready ]] || isready=pg_isready
    while ((SECONDS < deadline)); do
        if "$isready" -q -h 127.0.0.1 -p "$PG_PORT" -U rampart -d postgres -t 2; then
            return 0
        fi
        pg_log_has_fatal && return 1
        sleep 0.2
    done
    return 1
}

# Starts a throwaway cluster on 127.0.0.1:$PG_PORT and sets PG_URL.
postgres_start() {
    pg_find_bindir || { pg_install && pg_find_bindir; } ||
        die "PostgreSQL installed, but initdb/pg_ctl/postgres still not found"
    pg_pick_server_user
    say "using $PG_BIN/postgres ($("$PG_BIN/postgres" --version))${PG_USER:+, as user $PG_USER}"

    if is_root; then
        PG_TMP=$(mktemp -d /tmp/rampart-pg.XXXXXX) # traversable by the server user
        chown "$PG_USER" "$PG_TMP"
    else
        PG_TMP=$(mktemp -d "${TMPDIR:-/tmp}/rampart-pg.XXXXXX")
    fi
    defer postgres_stop

    if ! pg_as_server_user "$PG_BIN/initdb" -D "$PG_TMP/pgdata" -U rampart --auth=trust \
        --encoding=UTF8 --locale=C --no-sync >"$PG_TMP/initdb.log" 2>&1; then
        cat "$PG_TMP/initdb.log" >&2
        die "initdb failed"
    fi

    local attempt
    for attempt in 1 2 3; do
        PG_PORT=$(pick_free_port)
        : >"$PG_TMP/postgres.log"
        [[ -z $PG_USER ]] || chown "$PG_USER" "$PG_TMP/postgres.log"
        pg_as_server_user "$PG_BIN/pg_ctl" -D "$PG_TMP/pgdata" -l "$PG_TMP/postgres.log" -W \
            -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_TMP -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
            start >/dev/null
        if pg_wait_ready 30; then
            break
        fi
        pg_stop_server
        if ((attempt < 3)) && grep -q 'could not bind' "$PG_TMP/postgres.log"; then
            say "port $PG_PORT was taken meanwhile; retrying with another port"
            continue
        fi
        cat "$PG_TMP/postgres.log" >&2
        die "PostgreSQL did not become ready on 127.0.0.1:$PG_PORT within 30s"
    done
    PG_PID=$(head -n 1 "$PG_TMP/pgdata/postmaster.pid")
    PG_URL="postgres://rampart@127.0.0.1:$PG_PORT/postgres"

    # One real query, so a broken server fails here rather than in every test.
    local psql=$PG_BIN/psql
    [[ -x $psql ]] || psql=$(command -v psql || true)
    if [[ -n $psql ]]; then
        [[ $("$psql" -X -Atq -h 127.0.0.1 -p "$PG_PORT" -U rampart -d postgres -c 'select 1') == 1 ]] ||
            die "PostgreSQL on port $PG_PORT does not answer 'select 1'"
    fi
    say "PostgreSQL ready on 127.0.0.1:$PG_PORT (pid $PG_PID) in ${PG_TMP}"
}

# Stops the postmaster (fast shutdown, then SIGTERM/SIGKILL by PID as a fallback).
pg_stop_server() {
    local pidfile=$PG_TMP/pgdata/postmaster.pid pid=""
    [[ -f $pidfile ]] && pid=$(head -n 1 "$pidfile")
    [[ -n $pid ]] || pid=$PG_PID
    [[ -n $pid ]] || return 0
    pg_as_server_user "$PG_BIN/pg_ctl" -D "$PG_TMP/pgdata" -m fast -w -t 30 stop >/dev/null 2>&1 || true
    local i sig
    for sig in TERM KILL; do
        kill -0 "$pid" 2>/dev/null || break
        kill "-$sig" "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "warning: PostgreSQL postmaster $pid is still running" >&2
    fi
    PG_PID=""
}

# Idempotent; shows the end of the server log when the run failed.
postgres_stop() {
    [[ -n $PG_TMP && -d $PG_TMP ]] || return 0
    if ((exit_status != 0)) && [[ -s $PG_TMP/postgres.log ]]; then
        say "--- last lines of the PostgreSQL server log ---"
        tail -n 30 "$PG_TMP/postgres.log"
    fi
    pg_stop_server
    rm -rf -- "$PG_TMP"
    say "PostgreSQL stopped"
    PG_TMP=""
}

# --- Redis -------------------------------------------------------------------

REDIS_SERVER="" # path of redis-server, exported to the tests as RAMPART_TEST_REDIS_SERVER

redis_install() {
    is_root || die "redis-server not found on PATH or in /usr/bin.
Install the Debian package 'redis-server' (sudo apt-get install redis-server)."
    say "redis-server not found: installing the Debian package 'redis-server'"
    local rc=0
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server; } || rc=$?
    ((rc == 0)) || die "apt-get install redis-server failed (exit $rc)"
    # The package starts a system-wide server on port 6379; the tests never use it.
    if command -v systemctl >/dev/null 2>&1; then systemctl stop redis-server >/dev/null 2>&1 || true; fi
    if command -v service >/dev/null 2>&1; then service redis-server stop >/dev/null 2>&1 || true; fi
}

# Finds (or installs) redis-server and proves it starts: one throwaway server on a free
# loopback port in a temporary directory, a PING, then a stop by PID.
redis_check() {
    REDIS_SERVER=$(command -v redis-server || true)
    [[ -n $REDIS_SERVER ]] || { redis_install && REDIS_SERVER=$(command -v redis-server || true); }
    [[ -n $REDIS_SERVER ]] || die "redis-server installed, but still not on PATH"
    local dir port pid i
    dir=$(mktemp -d "${TMPDIR:-/tmp}/rampart-redis.XXXXXX")
    port=$(pick_free_port)
    "$REDIS_SERVER" --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
        >"$dir/redis.log" 2>&1 &
    pid=$!
    for ((i = 0; i < 100; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
        sleep 0.1
    done
    local answer=""
    # Bounded: a server that accepts but never answers must not hang the run.
    answer=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "PING\r\n" >&3 && head -c 5 <&3' _ "$port") || true
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [[ $answer != "+PONG" ]]; then
        cat "$dir/redis.log" >&2
        rm -rf -- "$dir"
        die "redis-server on port $port did not answer PING"
    fi
    rm -rf -- "$dir"
    say "using $REDIS_SERVER ($("$REDIS_SERVER" --version | awk '{print $3}'))"
    export RAMPART_TEST_REDIS_SERVER=$REDIS_SERVER
}

# --- chromium (browser tests) ----------------------------------------------------

CHROMEDRIVER="" # path of chromedriver, exported to the tests as RAMPART_TEST_CHROMEDRIVER

chromium_install() {
    is_root || die "chromium or chromedriver not found in /usr/bin.
Install the Debian packages 'chromium' and 'chromium-driver' (sudo apt-get install chromium chromium-driver)."
    say "chromium/chromedriver not found: installing the Debian packages 'chromium' and 'chromium-driver'"
    local rc=0
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver; } || rc=$?
    ((rc == 0)) || die "apt-get install chromium chromium-driver failed (exit $rc)"
}

# Finds (or installs) Chromium and chromedriver and proves both run (their versions).
chromium_check() {
    local chromium=/usr/bin/chromium driver=/usr/bin/chromedriver
    [[ -x $chromium && -x $driver ]] || chromium_install
    [[ -x $chromium && -x $driver ]] || die "chromium installed, but $chromium or $driver is still missing"
    local version driver_version
    version=$(timeout 30 "$chromium" --headless=new --no-sandbox --version 2>/dev/null) ||
        die "$chromium --version failed"
    driver_version=$(timeout 30 "$driver" --version 2>/dev/null) || die "$driver --version failed"
    say "using $version and ${driver_version%% (*}"
    CHROMEDRIVER=$driver
    export RAMPART_TEST_CHROMIUM=$chromium RAMPART_TEST_CHROMEDRIVER=$driver
}

# --- nginx -------------------------------------------------------------------

NGINX="" # path of nginx, exported to the deploy test as RAMPART_TEST_NGINX

nginx_find() {
    NGINX=$(command -v nginx || true)
    [[ -n $NGINX || ! -x /usr/sbin/nginx ]] || NGINX=/usr/sbin/nginx
    [[ -n $NGINX ]]
}

nginx_install() {
    is_root || die "nginx not found on PATH or in /usr/sbin.
Install the Debian package 'nginx-light' (sudo apt-get install nginx-light), or skip this stage with RAMPART_TEST_SKIP=deploy."
    say "nginx not found: installing the Debian package 'nginx-light'"
    local rc=0
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nginx-light; } || rc=$?
    ((rc == 0)) || die "apt-get install nginx-light failed (exit $rc)"
    # The package starts a system-wide server on port 80; the test never uses it.
    if command -v systemctl >/dev/null 2>&1; then systemctl stop nginx >/dev/null 2>&1 || true; fi
    if command -v service >/dev/null 2>&1; then service nginx stop >/dev/null 2>&1 || true; fi
}

# ---------------------------------------------------------------------------
# Stages
# ---------------------------------------------------------------------------

stage_fmt() {
    cargo fmt --all -- --check
}

stage_clippy() {
    cargo clippy --all-targets -- -D warnings
}

ensure_cargo_deny() {
    if cargo deny --version >/dev/null 2>&1; then
        local have
        have=$(cargo deny --version 2>/dev/null | awk '{print $2}')
        [[ $have == "$CARGO_DENY_VERSION" ]] ||
            say "note: cargo-deny $have found; deny.toml is written for $CARGO_DENY_VERSION"
        return 0
    fi
    say "cargo-deny not found: installing cargo-deny@$CARGO_DENY_VERSION (takes a few minutes)"
    cargo install --locked "cargo-deny@$CARGO_DENY_VERSION"
}

# Builds the git repository cargo-deny 0.20 expects from the offline snapshot
# (as ../shared/advisory-db.md describes) under $1, and writes $1/deny.toml: a
# copy of deny.toml whose [advisories] points at it.
deny_offline_config() {
    local root=$1 snapshot=$2
    # The directory name is the one cargo-deny derives from the default db URL.
    local db=$root/advisory-db-3157b0e258782691
    mkdir -p "$db"
    tar -xzf "$snapshot" -C "$db"
    (
        cd "$db"
        git init -q
        git add -A
        GIT_COMMITTER_DATE=2026-08-21T08:28:40+02:00 git -c user.name=snapshot \
            -c user.email=snapshot@localhost -c commit.gpgsign=false commit -qm snapshot
    )
    awk -v dbpath="$root" '
        function add_keys() {
            print "db-path = \047" dbpath "\047"
            print "maximum-db-staleness = \"P3650D\""
            added = 1
        }
        /^[[:space:]]*\[/ {
            in_adv = ($0 ~ /^[[:space:]]*\[advisories\][[:space:]]*(#.*)?$/)
            print
            if (in_adv) add_keys()
            next
        }
        in_adv && /^[[:space:]]*(db-path|maximum-db-staleness)[[:space:]]*=/ { next }
        { print }
        END { if (!added) { print ""; print "[advisories]"; add_keys() } }
    ' deny.toml >"$root/deny.toml"
}

stage_deny() {
    ensure_cargo_deny
    # cargo-deny reads `cargo metadata`, which needs every crate of every target
    # downloaded (in --offline mode it cannot download them itself).
    cargo fetch
    local snapshot=$repo_root/../shared/advisory-db.tar.gz
    if [[ -f $snapshot ]]; then
        local root
        root=$(mktemp -d "${TMPDIR:-/tmp}/rampart-deny.XXXXXX")
        defer rm -rf -- "$root"
        say "advisories: offline snapshot $(cd "$(dirname "$snapshot")" && pwd)/$(basename "$snapshot")"
        deny_offline_config "$root" "$snapshot"
        cargo deny --offline --config "$root/deny.toml" check
    else
        say "advisories: no offline snapshot at $snapshot; cargo-deny fetches the database"
        cargo deny --config deny.toml check
    fi
}

# The deploy test needs services of its own (stage deploy); it fails, not passes, where
# they are absent, so the other test stages skip it by name.
# curl drives the `curl --http2` test (Debian's curl is built with nghttp2).
curl_check() {
    command -v curl >/dev/null 2>&1 && return 0
    is_root || die "curl not found: install the Debian package 'curl'"
    say "curl not found: installing the Debian package 'curl'"
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y curl; } ||
        die "apt-get install curl failed"
}

stage_sqlite() {
    redis_check
    [[ -n $CHROMEDRIVER ]] || chromium_check
    curl_check
    cargo_test_counted -u RAMPART_TEST_DATABASE -- --workspace -- --skip deploy::
}

stage_postgres() {
    [[ -n $REDIS_SERVER ]] || redis_check
    [[ -n $CHROMEDRIVER ]] || chromium_check
    curl_check
    postgres_start
    cargo_test_counted RAMPART_TEST_DATABASE="$PG_URL" -- --workspace -- --skip deploy::
    postgres_stop
}

stage_deploy() {
    [[ -n $REDIS_SERVER ]] || redis_check
    nginx_find || { nginx_install && nginx_find; } || die "nginx installed, but still not found"
    say "using $NGINX ($("$NGINX" -v 2>&1))"
    postgres_start
    cargo_test_counted RAMPART_TEST_DATABASE="$PG_URL" RAMPART_TEST_NGINX="$NGINX" \
        -- -p rampart --test api deploy::
    postgres_stop
}

# ---------------------------------------------------------------------------

main() {
    main_started=1
    say "rampart tests in $repo_root ($(cargo --version))"
    local stage
    for stage in "${ALL_STAGES[@]}"; do
        run_stage "$stage" "stage_$stage"
    done
}

# Sourcing the script (bash -c '. scripts/test.sh; postgres_start; ...') only
# defines the functions, for trying one piece by hand.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main
fi
