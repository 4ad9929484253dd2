#!/usr/bin/env bash
# Starts or stops one throwaway PostgreSQL 15 cluster for the tests.
#
#   eval "$(scripts/pgtest.sh start)"   # exports VERITY_TEST_POSTGRES (and VERITY_PGTEST_DIR)
#   scripts/pgtest.sh stop              # stops it and removes its directory
#
# start installs Debian's postgresql-15 package when it is missing, makes a
# cluster in a temporary directory owned by the postgres user (the server
# refuses to run as root), starts it on a free port on 127.0.0.1 with trust
# authentication, and prints the export lines on stdout; everything else
# goes to stderr. Tests then create one database each on it.
set -euo pipefail

BIN=/usr/lib/postgresql/15/bin
STATE="${TMPDIR:-/tmp}/verity-pgtest-$(id -u).dir"

log() { echo "pgtest: $*" >&2; }

# as_pg runs a command as the postgres user when we are root.
as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

install() {
	[ -x "$BIN/initdb" ] && return 0
	if [ "$(id -u)" != 0 ]; then
		log "$BIN/initdb is missing; install Debian's postgresql-15 package (as root: apt-get install postgresql-15)"
		exit 1
	fi
	log "installing postgresql-15"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq postgresql-15 >&2
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() {
	install
	local dir port
	dir="$(mktemp -d "${TMPDIR:-/tmp}/verity-pgtest-XXXXXX")"
	if [ "$(id -u)" = 0 ]; then
		chown postgres:postgres "$dir"
	fi
	as_pg "$BIN/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 || {
		cat "$dir/initdb.log" >&2
		exit 1
	}
	for _ in 1 2 3 4 5 6 7 8; do
		port=$((20000 + RANDOM % 40000))
		port_in_use "$port" && continue
		if as_pg "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
			-o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300" start >&2; then
			echo "$dir" >"$STATE"
			log "PostgreSQL 15 running on 127.0.0.1:$port, data in $dir"
			echo "export VERITY_PGTEST_DIR=$dir"
			echo "export VERITY_TEST_POSTGRES=postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
			return 0
		fi
	done
	cat "$dir/server.log" >&2 || true
	log "could not start PostgreSQL"
	exit 1
}

stop() {
	local dir="${VERITY_PGTEST_DIR:-}"
	if [ -z "$dir" ] && [ -f "$STATE" ]; then
		dir="$(cat "$STATE")"
	fi
	if [ -z "$dir" ] || [ ! -d "$dir" ]; then
		log "no cluster to stop"
		return 0
	fi
	as_pg "$BIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >&2 || true
	rm -rf "$dir"
	if [ -f "$STATE" ] && [ "$(cat "$STATE")" = "$dir" ]; then
		rm -f "$STATE"
	fi
	log "stopped and removed $dir"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*)
	echo "usage: $0 start|stop" >&2
	exit 2
	;;
esac
