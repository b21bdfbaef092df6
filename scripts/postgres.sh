#!/usr/bin/env bash
# A PostgreSQL server for the store's tests. Prints its SQLAlchemy URL as the only line on
# stdout (progress goes to stderr):
#   export JHDS_TEST_POSTGRES_URL="$(scripts/postgres.sh)"
# - JHDS_TEST_POSTGRES_URL already set and answering: printed back, nothing else done.
# - otherwise a private cluster of this clone (initdb once), listening on 127.0.0.1 only,
#   on port 55432 or, when another cluster holds that one, the next free port; reused
#   while it runs. PostgreSQL is installed with apt (root on Debian) when missing.
#   Run as root, the server runs as `postgres`, which cannot enter the state folder that
#   `make up` makes private (0700), nor a clone in /root: its data, socket and log are then
#   in postgres's home, /var/lib/postgresql/jhds-<key of the state folder>. Otherwise they
#   are in $STATE_DIR/postgres (the server runs as the caller).
# `scripts/postgres.sh stop` stops this clone's cluster (its data is kept); `remove` stops it
# and deletes its data.
source "$(dirname "$0")/lib.sh"
exec 3>&1 1>&2 # stdout is for the URL only
case "${1:-}" in "" | stop | remove) ;; *) fail "usage: $0 [stop|remove]" ;; esac

STATE_DIR="$(cd "$STATE_DIR" && pwd -P)" # absolute: the data folder names the server in `ps`
URL_FILE="$STATE_DIR/postgres.url" # the URL (with the password) of this clone's cluster
DB=jhds_test ROLE=jhds_test FIRST_PORT=55432

answers() { # a SQLAlchemy URL -> does a session open and run a query?
  local url="${1/#postgresql+*:\/\//postgresql://}"
  if command -v psql >/dev/null 2>&1; then
    PGCONNECT_TIMEOUT=5 psql -Atqw -d "$url" -c 'SELECT 1' >/dev/null 2>&1
  else
    "$ROOT/.venv/bin/python" -c 'import psycopg, sys; psycopg.connect(sys.argv[1], connect_timeout=5).close()' \
      "$url" >/dev/null 2>&1
  fi
}

if [ -n "${JHDS_TEST_POSTGRES_URL:-}" ] && [ -z "${1:-}" ]; then
  if answers "$JHDS_TEST_POSTGRES_URL"; then
    echo "$JHDS_TEST_POSTGRES_URL" >&3
    exit 0
  fi
  # Our own cluster may just be stopped (e.g. after a reboot): then start it below.
  if [ "$JHDS_TEST_POSTGRES_URL" != "$(cat "$URL_FILE" 2>/dev/null)" ]; then
    fail "no PostgreSQL answers at JHDS_TEST_POSTGRES_URL (${JHDS_TEST_POSTGRES_URL%%:*}://...${JHDS_TEST_POSTGRES_URL##*@}); start that server or unset the variable"
  fi
fi

# One run at a time per clone (two would race on initdb and the port).
exec 9>"$STATE_DIR/postgres.lock"
flock 9

if [ "$(id -u)" = 0 ]; then
  OWNER=postgres
  as_owner() { runuser -u postgres -- "$@"; }
else
  OWNER="$(id -un)"
  as_owner() { "$@"; }
fi

# Where the cluster lives (set once postgres's account exists; see the top).
cluster_dir() {
  local home
  if [ "$OWNER" = postgres ]; then
    home="$(getent passwd postgres | cut -d: -f6)"
    [ -n "$home" ] && [ -d "$home" ] || fail "the postgres account has no home folder (getent passwd postgres)"
    echo "$home/jhds-$(echo "$STATE_DIR" | sha256sum | cut -c1-16)"
  else
    echo "$STATE_DIR/postgres"
  fi
}

# The newest installed server, or the one of the existing cluster's version.
bindir_for() { # [major]
  if [ -n "${1:-}" ]; then
    [ -x "/usr/lib/postgresql/$1/bin/postgres" ] && echo "/usr/lib/postgresql/$1/bin"
    return 0
  fi
  find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/postgres' 2>/dev/null |
    sort -V | tail -n 1 | xargs -r dirname || true
}

# The arguments of a live (not zombie) postgres process, one a line; fails for any other
# pid. A postmaster's are `postgres -D <data folder> ...`; its children rename themselves.
postgres_argv() {
  case "$(cat "/proc/${1:-none}/stat" 2>/dev/null)" in
    *" (postgres) Z "*) return 1 ;;
    *" (postgres) "*) tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null ;;
    *) return 1 ;;
  esac
}
# Does the postmaster of $PGDATA run? (A pid file alone proves nothing: a killed session
# leaves it behind, and its pid may belong to another process by now.)
running() {
  local argv
  argv="$(postgres_argv "$(head -n 1 "$PGDATA/postmaster.pid" 2>/dev/null)")" && grep -qxF -- "$PGDATA" <<<"$argv"
}
# Is the pid in this lock file no server's any more: gone, a zombie that PID 1 did not reap,
# or another program by now? In our postmaster.pid, another cluster's postmaster is also a
# reused pid. A postgres child (of a killed server, still exiting) keeps the file: the
# server refuses to start until that one is gone, and the start below waits for it.
stale_lock() {
  local argv
  [ -f "$1" ] || return 1
  argv="$(postgres_argv "$(head -n 1 "$1")")" || return 0
  [ "$1" = "$PGDATA/postmaster.pid" ] && grep -qx -- -D <<<"$argv" && ! grep -qxF -- "$PGDATA" <<<"$argv"
}

set_paths() {
  PGDATA="$(cluster_dir)"
  LOG="$PGDATA.log"
}

# Before the cluster left the state folder (root): stop that one, it is test data only.
retire_old_cluster() {
  local old="$STATE_DIR/postgres" argv bin
  [ "$OWNER" = postgres ] && [ -d "$old" ] || return 0
  if argv="$(postgres_argv "$(head -n 1 "$old/postmaster.pid" 2>/dev/null)")" && grep -qxF -- "$old" <<<"$argv"; then
    bin="$(bindir_for "$(cat "$old/PG_VERSION" 2>/dev/null)")"
    [ -z "$bin" ] || { say "stopping the old test server in $old (it moved to $PGDATA)"; as_owner "$bin/pg_ctl" -D "$old" -m fast -w stop >/dev/null 2>&1 || true; }
  fi
  rm -rf "$old" "$STATE_DIR/postgres.log" "$STATE_DIR/postgres-initdb.log"
  rm -f "$URL_FILE" # its port and password were the old server's
}

if [ "${1:-}" = stop ] || [ "${1:-}" = remove ]; then
  if ! getent passwd "$OWNER" >/dev/null; then exit 0; fi # never installed: nothing runs
  set_paths
  if running; then
    as_owner "$(bindir_for "$(cat "$PGDATA/PG_VERSION")")/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
    say "stopped PostgreSQL in $PGDATA"
  fi
  if [ "$1" = remove ]; then
    rm -rf "$PGDATA" "$LOG" "$URL_FILE"
    say "removed the test server's data ($PGDATA)"
  fi
  exit 0
fi

if [ -z "$(bindir_for)" ]; then
  if [ "$(id -u)" != 0 ] || [ ! -f /etc/debian_version ]; then
    fail "PostgreSQL is not installed. Install it (Debian: apt-get install postgresql) or set JHDS_TEST_POSTGRES_URL to a server's URL (postgresql+psycopg://user:password@host:port/db)."
  fi
  say "installing postgresql (apt)"
  export DEBIAN_FRONTEND=noninteractive
  with_progress "$STATE_DIR/apt-postgres.log" bash -c 'apt-get update -q && apt-get install -y -q postgresql'
  [ -n "$(bindir_for)" ] || fail "apt installed postgresql but no server is in /usr/lib/postgresql/*/bin"
fi

set_paths
retire_old_cluster
if ! as_owner test -x "$(dirname "$PGDATA")"; then
  fail "user $OWNER cannot reach $(dirname "$PGDATA") (a parent folder is private): set JHDS_TEST_POSTGRES_URL to a server of yours"
fi

if running; then
  BIN="$(bindir_for "$(cat "$PGDATA/PG_VERSION")")"
  PORT="$(sed -n 4p "$PGDATA/postmaster.pid")"
else
  # Initialised once; a cluster of a server version that is no longer installed, or an
  # interrupted initdb, is test data only: start again.
  BIN=""
  if [ -f "$PGDATA/jhds.conf" ]; then
    BIN="$(bindir_for "$(cat "$PGDATA/PG_VERSION" 2>/dev/null)")"
  fi
  if [ -z "$BIN" ]; then
    BIN="$(bindir_for)"
    say "creating a PostgreSQL $("$BIN/postgres" -V | awk '{print $3}') cluster in $PGDATA"
    rm -rf "$PGDATA" && mkdir -p "$PGDATA" && chown "$OWNER:" "$PGDATA" && chmod 700 "$PGDATA"
    as_owner "$BIN/initdb" -D "$PGDATA" -U postgres -E UTF8 --locale=C \
      --auth-local=peer --auth-host=scram-sha-256 >"$STATE_DIR/postgres-initdb.log" 2>&1 ||
      { tail -n 20 "$STATE_DIR/postgres-initdb.log" >&2; fail "initdb failed; log: $STATE_DIR/postgres-initdb.log"; }
    [ "$OWNER" != postgres ] || echo "$STATE_DIR" | as_owner tee "$PGDATA/jhds-state-dir" >/dev/null # whose it is
    # The socket lives in the data folder unless that path is too long for a socket name.
    sockdir="$PGDATA"
    [ "${#sockdir}" -le 80 ] || sockdir=/tmp
    as_owner tee "$PGDATA/jhds.conf" >/dev/null <<CONF
# Written by scripts/postgres.sh: a throw-away server for tests, reachable on 127.0.0.1 only.
listen_addresses = '127.0.0.1'
unix_socket_directories = '$sockdir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
CONF
    echo "include 'jhds.conf'" | as_owner tee -a "$PGDATA/postgresql.conf" >/dev/null
  fi
  sockdir="$(sed -n "s/^unix_socket_directories = '\(.*\)'$/\1/p" "$PGDATA/jhds.conf")"
  as_owner touch "$LOG"

  # pg_ctl's server must not inherit our descriptors: it would hold the lock, and the
  # caller's $(...) pipe open, for as long as it runs.
  without_fds() (
    for fd in "/proc/$BASHPID/fd/"*; do
      fd="${fd##*/}"
      [ "$fd" -le 2 ] || eval "exec $fd>&-"
    done
    "$@"
  )
  port_free() { ! (exec 2>/dev/null 4<>"/dev/tcp/127.0.0.1/$1"); } # nothing accepts a connection
  # The port of the last run, else 55432, else the next free one: another clone's cluster
  # may hold it. Two starting at once may both see a port free: the loser tries the next.
  last="$(sed -n 's|.*@127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$URL_FILE" 2>/dev/null || true)"
  PORT=""
  for p in $last $(seq "$FIRST_PORT" $((FIRST_PORT + 99))); do
    port_free "$p" || continue
    say "starting PostgreSQL on 127.0.0.1:$p (log: $LOG)"
    for _ in $(seq 1 30); do
      for lock in "$PGDATA/postmaster.pid" "$sockdir/.s.PGSQL.$p.lock"; do
        ! stale_lock "$lock" || rm -f "$lock"
      done
      if without_fds as_owner "$BIN/pg_ctl" -D "$PGDATA" -l "$LOG" -o "-p $p" -w -t 60 start >/dev/null 2>&1; then
        PORT="$p"
        break 2
      fi
      case "$(tail -n 5 "$LOG")" in
        *"could not bind"* | *"Address already in use"*) continue 2 ;; # taken meanwhile: next port
        *"already exists"* | *"still in use"*) sleep 1 ;; # an old server's processes are exiting
        *) tail -n 20 "$LOG" >&2 && fail "PostgreSQL did not start; log: $LOG" ;;
      esac
    done
    fail "PostgreSQL did not start: processes of an old server of $PGDATA are still there; log: $LOG"
  done
  [ -n "$PORT" ] || fail "no free port in $FIRST_PORT-$((FIRST_PORT + 99)) on 127.0.0.1"
fi

# The test role and database, created once; the password is this clone's, kept in URL_FILE.
password="$(sed -n 's|^postgresql+psycopg://[^:]*:\([^@]*\)@.*|\1|p' "$URL_FILE" 2>/dev/null || true)"
[ -n "$password" ] || password="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
sockdir="$(sed -n "s/^unix_socket_directories = '\(.*\)'$/\1/p" "$PGDATA/jhds.conf")"
as_owner "$BIN/psql" -h "$sockdir" -p "$PORT" -U postgres -d postgres -Atq -v ON_ERROR_STOP=1 >/dev/null <<SQL
SELECT 'CREATE ROLE $ROLE' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE')
\gexec
ALTER ROLE $ROLE WITH LOGIN PASSWORD '$password';
SELECT 'CREATE DATABASE $DB OWNER $ROLE' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB')
\gexec
SQL

url="postgresql+psycopg://$ROLE:$password@127.0.0.1:$PORT/$DB"
(umask 077 && echo "$url" >"$URL_FILE")
answers "$url" || fail "PostgreSQL runs on port $PORT but $ROLE cannot connect; log: $LOG"
echo "$url" >&3
