#!/usr/bin/env bash
# pg.sh: a private PostgreSQL 15 for tests and the demo, on a unix socket in a directory of its own.
#   pg.sh start DIR   initdb (once) and start; prints the libpq connection string
#   pg.sh stop DIR    fast stop;  pg.sh kill DIR   immediate stop (crash)
#   pg.sh dsn DIR     print the connection string
#   pg.sh standby PRIMARY_DIR DIR   a hot standby of PRIMARY_DIR (pg_basebackup -R, streaming);
#                     prints its connection string.  pg.sh promote DIR   make it a primary
# PostgreSQL refuses root, so it runs as the postgres user; DIR must be reachable by it.
set -euo pipefail
cmd=${1:?usage: pg.sh start|stop|kill|dsn|promote DIR, pg.sh standby PRIMARY_DIR DIR}
dir=${2:?usage: pg.sh start|stop|kill|dsn|promote DIR, pg.sh standby PRIMARY_DIR DIR}
if [ "$cmd" = standby ]; then
	primary=$dir
	dir=${3:?usage: pg.sh standby PRIMARY_DIR DIR}
fi
abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
dir=$(abs "$dir")
[ "$cmd" = standby ] && primary=$(abs "$primary")
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
# The tools run from / : the caller's directory (a checkout in /root, say) may be closed to
# the postgres user, and psql/pg_ctl would complain that they cannot change into it.
as_pg() { if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }
dsn() { echo "host=$dir/sock dbname=vmail user=postgres"; }

case "$cmd" in
start)
	mkdir -p "$dir"
	[ "$(id -u)" = 0 ] && chown postgres: "$dir"
	chmod 0755 "$dir"
	if [ ! -f "$dir/data/PG_VERSION" ]; then
		as_pg mkdir -p "$dir/data" "$dir/sock"
		as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1
		cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$dir/sock'
unix_socket_permissions = 0777
fsync = off
full_page_writes = off
max_connections = 200
shared_buffers = 128MB
log_min_messages = warning
CONF
	fi
	if ! as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
		as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start >/dev/null
	fi
	if ! as_pg "$bin/psql" -h "$dir/sock" -U postgres -Atqc "select 1 from pg_database where datname='vmail'" postgres | grep -q 1; then
		as_pg "$bin/createdb" -h "$dir/sock" -U postgres vmail
	fi
	dsn
	;;
standby)
	mkdir -p "$dir"
	[ "$(id -u)" = 0 ] && chown postgres: "$dir"
	chmod 0755 "$dir"
	if [ ! -f "$dir/data/PG_VERSION" ]; then
		as_pg mkdir -p "$dir/sock"
		# -R writes primary_conninfo and standby.signal; the primary's trust rules allow replication.
		as_pg "$bin/pg_basebackup" -h "$primary/sock" -U postgres -D "$dir/data" -R -X stream \
			-c fast >"$dir/basebackup.log" 2>&1
		# Later lines win: the standby's own socket directory.
		cat >>"$dir/data/postgresql.conf" <<CONF
unix_socket_directories = '$dir/sock'
hot_standby = on
CONF
	fi
	if ! as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
		as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start >/dev/null
	fi
	dsn
	;;
promote) as_pg "$bin/pg_ctl" -D "$dir/data" -w -t 60 promote >/dev/null ;;
stop) as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null ;;
kill) as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null ;;
dsn) dsn ;;
*) echo "pg.sh: unknown command $cmd" >&2; exit 2 ;;
esac
