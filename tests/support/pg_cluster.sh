#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and benchmarks: never the system's.
#
#   pg_cluster.sh start DIR         initdb (first time) and start; prints the URL
#                                   postgresql://unloc@127.0.0.1:PORT/unloc on stdout
#   pg_cluster.sh stop DIR [MODE]   stop it (MODE: fast, the default, or immediate: a crash)
#   pg_cluster.sh restart DIR       stop -m immediate, then start on the same port (fails
#                                   when DIR holds no cluster)
#   pg_cluster.sh destroy DIR       stop it if running and remove DIR
#
# DIR is created when missing and holds everything: data/, the unix socket, the log,
# the port, and pgpass (a .pgpass line for the user unloc with a random password).
# TCP connections need that password (scram-sha-256): point PGPASSFILE at DIR/pgpass.
# As root (CI), the server runs as the user postgres, which owns DIR (PostgreSQL
# refuses to run as root); otherwise as the current user. PG_BINDIR overrides where
# initdb and pg_ctl are found. Exit 77 when they are not installed.
set -euo pipefail

die() { echo "pg_cluster.sh: $*" >&2; exit 1; }
[[ $# -ge 2 ]] || die "usage: pg_cluster.sh start|stop|restart|destroy DIR [MODE]"
command=$1
dir=$2

bindir=${PG_BINDIR:-}
if [[ -z $bindir ]]; then
  for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [[ -x $candidate/initdb ]] && { bindir=$candidate; break; }
  done
fi
if [[ -z $bindir ]] && command -v initdb >/dev/null; then
  bindir=$(dirname "$(command -v initdb)")
fi
if [[ -z $bindir || ! -x $bindir/initdb || ! -x $bindir/pg_ctl ]]; then
  echo "pg_cluster.sh: initdb and pg_ctl not found (apt-get install postgresql, or set PG_BINDIR)" >&2
  exit 77
fi

as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

running() { [[ -f $dir/data/postmaster.pid ]] && as_owner "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; }

stop() {
  if running; then
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m "$1" -w -t 60 stop >/dev/null
  fi
}

# A port nothing listens on now; start() tries again with another if it is taken meanwhile.
pick_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  die "no free loopback port found"
}

init() {
  mkdir -p "$dir"
  # As root, the server's user must reach DIR: every directory above it searchable by others.
  if [[ $(id -u) -eq 0 ]] && ! runuser -u postgres -- test -x "$(dirname "$dir")"; then
    die "the user postgres cannot reach $(dirname "$dir") (chmod o+x each directory above DIR)"
  fi
  chmod 700 "$dir"
  [[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
  local password
  password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  # The password reaches initdb through a file only DIR's owner reads, never a command line.
  (umask 077; printf '%s\n' "$password" >"$dir/password")
  [[ $(id -u) -eq 0 ]] && chown postgres: "$dir/password"
  as_owner "$bindir/initdb" -D "$dir/data" -U unloc --pwfile="$dir/password" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  (umask 077; printf '127.0.0.1:*:*:unloc:%s\n' "$password" >"$dir/pgpass")
  rm -f "$dir/password"
}

start() {
  [[ -d $dir/data ]] || init
  if running; then
    echo "postgresql://unloc@127.0.0.1:$(cat "$dir/port")/unloc"
    return
  fi
  local port
  for attempt in 1 2 3 4 5; do
    if [[ -f $dir/port && $attempt -eq 1 ]]; then port=$(cat "$dir/port"); else port=$(pick_port); fi
    # fsync stays on: the tests crash the server (-m immediate) and count on its durability.
    if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
         -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c max_connections=200" \
         start >/dev/null; then
      echo "$port" >"$dir/port"
      if [[ ! -f $dir/created ]]; then
        as_owner "$bindir/psql" -h "$dir" -p "$port" -U unloc -d postgres -q -v ON_ERROR_STOP=1 \
          -c "CREATE DATABASE unloc" >/dev/null
        touch "$dir/created"
      fi
      echo "postgresql://unloc@127.0.0.1:$port/unloc"
      return
    fi
    grep -q "could not bind\|could not create listen socket\|already in use" "$dir/server.log" 2>/dev/null \
      || { tail -n 20 "$dir/server.log" >&2 || true; die "pg_ctl start failed"; }
  done
  die "pg_ctl start failed: no free port after 5 attempts"
}

case $command in
  start) start ;;
  stop) stop "${3:-fast}" ;;
  restart)  # only a cluster made by start: else a typo or a skipped step would make one
    [[ -d $dir/data ]] || die "no cluster in $dir to restart (pg_cluster.sh start $dir makes one)"
    stop immediate; start >/dev/null ;;
  destroy) stop immediate; rm -rf "$dir" ;;
  *) die "unknown command '$command'" ;;
esac
