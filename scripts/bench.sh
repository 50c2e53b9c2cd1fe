#!/usr/bin/env bash
# bench.sh: socketmap lookups through vmaild, side by side with pgbench running the same
# lookup SQL at the same concurrency and with vmail-bench's echo server (the ceiling of the
# client, framing and loop alone), in one run against a private PostgreSQL with demo data.
#
#   scripts/bench.sh [-c CONNECTIONS] [-T SECONDS] [-p PG_POOL_SIZE] [-m MAP]
#
# Defaults: 32 connections, 10 s per run, vmaild pg_pool_size 4, map alias.  Needs the
# build (VMAIL_BUILD_DIR, default ./build), PostgreSQL 15 and pgbench.  Everything runs on
# this machine, so client, daemon and database share its CPUs.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build=${VMAIL_BUILD_DIR:-$repo/build}
conc=32 secs=10 pool=4 map=alias
while getopts "c:T:p:m:h" opt; do
	case $opt in
	c) conc=$OPTARG ;;
	T) secs=$OPTARG ;;
	p) pool=$OPTARG ;;
	m) map=$OPTARG ;;
	*) sed -n '2,10p' "$0"; exit 2 ;;
	esac
done
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
for f in "$build/vmaild" "$build/vmail-bench" "$pgbin/pgbench"; do
	[ -x "$f" ] || { echo "bench.sh: $f not found (build first)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/vmail-bench-XXXXXX)
chmod 0755 "$work"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	"$repo/tests/world/pg.sh" stop "$work/pg" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

echo "== private PostgreSQL, schema and demo data in $work"
dsn=$("$repo/tests/world/pg.sh" start "$work/pg" | tail -n1)
printf 'database = %s\n' "$dsn" >"$work/vmailctl.conf"
if [ -x "$build/vmailctl" ]; then
	"$build/vmailctl" -c "$work/vmailctl.conf" db migrate --schema-dir "$repo/schema" >/dev/null
else
	for f in "$repo"/schema/*.sql; do psql -X -q -v ON_ERROR_STOP=1 -f "$f" "$dsn"; done
fi
# 10 domains, each with 100 paid mail accounts userJ@ and 100 administrator aliases aliasJ@.
psql -X -q -v ON_ERROR_STOP=1 "$dsn" >/dev/null <<'SQL'
SELECT vmail.customer_add('bench', 'Benchmark');
SELECT vmail.domain_add('bench', 'd' || d || '.lublin.pl'),
       vmail.domain_set_state('d' || d || '.lublin.pl', 'active')
  FROM generate_series(1, 10) d;
SELECT vmail.account_add('user' || j || '@d' || d || '.lublin.pl', 'paid', 'bench', NULL, 1048576)
  FROM generate_series(1, 10) d, generate_series(1, 100) j;
SELECT vmail.alias_add('alias' || j || '@d' || d || '.lublin.pl',
                       ARRAY['user' || j || '@d' || d || '.lublin.pl'], false, NULL)
  FROM generate_series(1, 10) d, generate_series(1, 100) j;
ANALYZE;
SQL

# One key expression for both clients: a third aliases (mixed case), a third mailboxes with
# a sub-address, a third unknown addresses in hosted domains.
keyexpr() {
	local i=$1
	echo "CASE ($i / 10) % 3 WHEN 0 THEN 'Alias' || (($i / 30) % 100 + 1)
	      WHEN 1 THEN 'user' || (($i / 30) % 100 + 1) || '+tag'
	      ELSE 'nobody' || (($i / 30) % 100 + 1) END || '@d' || ($i % 10 + 1) || '.lublin.pl'"
}
nkeys=3000
psql -X -At "$dsn" -c "SELECT $(keyexpr i) FROM generate_series(1, $nkeys) i" >"$work/keys.txt"
cat >"$work/lookup.sql" <<SQL
\set i random(1, $nkeys)
SELECT vmail.lookup_$map($(keyexpr ':i'));
SQL

percentiles() { # pgbench per-transaction logs: column 3 is the latency in microseconds
	cat "$@" | awk '{print $3}' | sort -n | awk '
		{ v[NR] = $1 }
		END { if (NR == 0) { print "0 0 0"; exit }
		      printf "%d %d %d\n", v[int(0.50 * (NR - 1)) + 1], v[int(0.99 * (NR - 1)) + 1],
		             v[int(0.999 * (NR - 1)) + 1] }'
}
field() { sed -n "s/.*$1=\([0-9]*\).*/\1/p" <<<"$2"; }

echo "== pgbench: $conc clients, -M prepared, ${secs}s"
mkdir -p "$work/pgbench"
(cd "$work/pgbench" && "$pgbin/pgbench" -n -M prepared -f "$work/lookup.sql" -c "$conc" -j 2 \
	-T "$secs" -l --log-prefix=log "$dsn" >"$work/pgbench.out" 2>&1) || { cat "$work/pgbench.out"; exit 1; }
pg_tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$work/pgbench.out" | head -n1)
read -r pg_p50 pg_p99 pg_p999 < <(percentiles "$work"/pgbench/log*)

echo "== vmaild: pg_pool_size $pool, vmail-bench $conc connections, ${secs}s"
user_lines=""
if [ "$(id -u)" = 0 ]; then user_lines=$'user = nobody\ngroup = nogroup'; fi
cat >"$work/vmaild.conf" <<CONF
database = $dsn
socketmap_listen = unix:$work/vmaild.sock
socket_mode = 0666
pg_pool_size = $pool
max_pipelined = 64
log_level = warning
$user_lines
CONF
"$build/vmaild" -c "$work/vmaild.conf" 2>"$work/vmaild.log" &
pids+=($!)
for _ in $(seq 100); do [ -S "$work/vmaild.sock" ] && break; sleep 0.05; done
sleep 0.5 # let the pool connect and prepare
vd=$("$build/vmail-bench" -c "$conc" -T "$secs" -m "$map" -k "$work/keys.txt" "unix:$work/vmaild.sock" | tee "$work/vd.out" | grep '^RESULT')

echo "== echo server baseline: vmail-bench $conc connections, ${secs}s"
"$build/vmail-bench" --echo-server "unix:$work/echo.sock" 2>/dev/null &
pids+=($!)
for _ in $(seq 100); do [ -S "$work/echo.sock" ] && break; sleep 0.05; done
echo_res=$("$build/vmail-bench" -c "$conc" -T "$secs" -m "$map" -k "$work/keys.txt" "unix:$work/echo.sock" | grep '^RESULT')

echo
echo "map $map, $nkeys keys, concurrency $conc, ${secs}s each, $(nproc) CPUs, PostgreSQL $("$pgbin/postgres" -V | awk '{print $3}')"
printf '%-34s %12s %10s %10s %10s\n' "" "lookups/s" "p50 us" "p99 us" "p99.9 us"
printf '%-34s %12.0f %10s %10s %10s\n' "pgbench (same SQL, $conc backends)" "$pg_tps" "$pg_p50" "$pg_p99" "$pg_p999"
printf '%-34s %12s %10s %10s %10s\n' "vmaild socketmap (pool $pool)" "$(field lookups_per_s "$vd")" \
	"$(field p50_us "$vd")" "$(field p99_us "$vd")" "$(field p999_us "$vd")"
printf '%-34s %12s %10s %10s %10s\n' "echo server (no database)" "$(field lookups_per_s "$echo_res")" \
	"$(field p50_us "$echo_res")" "$(field p99_us "$echo_res")" "$(field p999_us "$echo_res")"
echo "vmaild replies: OK $(field ok "$vd"), NOTFOUND $(field notfound "$vd"), TEMP $(field temp "$vd"), PERM $(field perm "$vd"), errors $(field errors "$vd")"
