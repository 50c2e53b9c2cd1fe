#!/usr/bin/env bash
# bench.sh: vmaild's lookups side by side with their baselines, in one run against a private
# PostgreSQL with demo data.  Every figure is printed next to the baseline it is compared to.
#
#   scripts/bench.sh [-c CONNECTIONS] [-T SECONDS] [-p PG_POOL_SIZE] [-m MAP] [-s SECTIONS]
#
# Sections (-s, comma-separated; default all):
#   socketmap  pgbench running the map's SQL function vs vmaild with the answer cache (warm)
#              vs vmaild without it (cache_size 0) vs vmail-bench's echo server
#   dict       pgbench running vmail.userdb_json vs vmaild's dict service, cached and not
#   policy     pgbench running vmail.policy_check vs vmaild's policy service (never cached)
#   idle       10 000 idle client connections held, then each asks once
#   notify     an alias flipped 200 times: commit to the first new answer (notify_latency.py)
#   memory     one million distinct aliases (~25-byte keys, ~25-byte answers) looked up once:
#              vmaild's resident memory and cache accounting afterwards
# Defaults: 32 connections, 10 s per run, pg_pool_size 4, map alias.  Needs the build
# (VMAIL_BUILD_DIR, default ./build), PostgreSQL 15, pgbench, psql, curl, python3.  Client,
# daemon and database share this machine's CPUs.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build=${VMAIL_BUILD_DIR:-$repo/build}
conc=32 secs=10 pool=4 map=alias sections=socketmap,dict,policy,idle,notify,memory
while getopts "c:T:p:m:s:h" opt; do
	case $opt in
	c) conc=$OPTARG ;;
	T) secs=$OPTARG ;;
	p) pool=$OPTARG ;;
	m) map=$OPTARG ;;
	s) sections=$OPTARG ;;
	*) sed -n '2,20p' "$0"; exit 2 ;;
	esac
done
want() { [[ ",$sections," == *",$1,"* ]]; }
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
for f in "$build/vmaild" "$build/vmail-bench" "$pgbin/pgbench"; do
	[ -x "$f" ] || { echo "bench.sh: $f not found (build first)" >&2; exit 1; }
done
# 10 000 idle clients need that many descriptors in vmail-bench (vmaild raises its own).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

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
# dict logins: two thirds mailboxes, a third unknown.
loginexpr() {
	local i=$1
	echo "CASE ($i / 10) % 3 WHEN 2 THEN 'nobody' ELSE 'user' END || (($i / 30) % 100 + 1)
	      || '@d' || ($i % 10 + 1) || '.lublin.pl'"
}
nkeys=3000
psql -X -At "$dsn" -c "SELECT $(keyexpr i) FROM generate_series(1, $nkeys) i" >"$work/keys.txt"
psql -X -At "$dsn" -c "SELECT $(loginexpr i) FROM generate_series(1, $nkeys) i" >"$work/logins.txt"

percentiles() { # pgbench per-transaction logs: column 3 is the latency in microseconds
	cat "$@" | awk '{print $3}' | sort -n | awk '
		{ v[NR] = $1 }
		END { if (NR == 0) { print "0 0 0"; exit }
		      printf "%d %d %d\n", v[int(0.50 * (NR - 1)) + 1], v[int(0.99 * (NR - 1)) + 1],
		             v[int(0.999 * (NR - 1)) + 1] }'
}
field() { sed -n "s/.*[ ]$1=\([0-9.]*\).*/\1/p" <<<" $2"; }
row() { # row LABEL RESULT-LINE
	printf '%-44s %12s %10s %10s %10s\n' "$1" "$(field lookups_per_s "$2")" "$(field p50_us "$2")" \
		"$(field p99_us "$2")" "$(field p999_us "$2")"
}
header() { printf '%-44s %12s %10s %10s %10s\n' "" "lookups/s" "p50 us" "p99 us" "p99.9 us"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

pgbench_run() { # pgbench_run NAME SQL-FILE: sets pg_tps pg_p50 pg_p99 pg_p999
	mkdir -p "$work/pgbench-$1"
	(cd "$work/pgbench-$1" && "$pgbin/pgbench" -n -M prepared -f "$2" -c "$conc" -j 2 \
		-T "$secs" -l --log-prefix=log "$dsn" >"$work/pgbench-$1.out" 2>&1) ||
		{ cat "$work/pgbench-$1.out"; exit 1; }
	pg_tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$work/pgbench-$1.out" | head -n1)
	read -r pg_p50 pg_p99 pg_p999 < <(percentiles "$work/pgbench-$1"/log*)
}
pg_row() { printf '%-44s %12.0f %10s %10s %10s\n' "$1" "$pg_tps" "$pg_p50" "$pg_p99" "$pg_p999"; }

user_lines=""
if [ "$(id -u)" = 0 ]; then user_lines=$'user = nobody\ngroup = nogroup'; fi
vmaild_start() { # vmaild_start NAME EXTRA-CONFIG-LINES: sockets $work/NAME.{sm,dict,policy}.sock
	local name=$1
	cat >"$work/$name.conf" <<CONF
database = $dsn
socketmap_listen = unix:$work/$name.sm.sock
policy_listen = unix:$work/$name.policy.sock
dict_listen = unix:$work/$name.dict.sock
socket_mode = 0666
pg_pool_size = $pool
max_pipelined = 64
max_connections = 12000
socketmap_max_connections = 12000
policy_max_connections = 12000
dict_max_connections = 12000
log_level = warning
$user_lines
$2
CONF
	"$build/vmaild" -c "$work/$name.conf" 2>"$work/$name.log" &
	pids+=($!)
	eval "${name}_pid=$!"
	for _ in $(seq 100); do [ -S "$work/$name.sm.sock" ] && break; sleep 0.05; done
	sleep 0.5 # let the pool connect and prepare, and the LISTEN connection listen
}
bench() { "$build/vmail-bench" -c "$conc" -T "$secs" "$@" | tee -a "$work/bench.out" | grep '^RESULT'; }
summary=()

if want socketmap || want idle || want notify || want dict || want policy; then
	echo "== vmaild with the answer cache (default cache_size) and without it (cache_size 0)"
	vmaild_start cached "metrics_listen = unix:$work/cached.metrics.sock"
	vmaild_start uncached "cache_size = 0"
fi
have_dict=false
[ -S "$work/cached.dict.sock" ] && have_dict=true
have_policy=false
[ -S "$work/cached.policy.sock" ] && have_policy=true

if want socketmap; then
	echo "== socketmap map $map: pgbench, vmaild cached (warm), vmaild uncached, echo server"
	cat >"$work/lookup.sql" <<SQL
\set i random(1, $nkeys)
SELECT vmail.lookup_$map($(keyexpr ':i'));
SQL
	pgbench_run socketmap "$work/lookup.sql"
	"$build/vmail-bench" -S -c "$conc" -m "$map" -k "$work/keys.txt" "unix:$work/cached.sm.sock" >/dev/null
	sm_cached=$(bench -m "$map" -k "$work/keys.txt" "unix:$work/cached.sm.sock")
	sm_uncached=$(bench -m "$map" -k "$work/keys.txt" "unix:$work/uncached.sm.sock")
	"$build/vmail-bench" --echo-server "unix:$work/echo.sock" 2>/dev/null &
	pids+=($!)
	for _ in $(seq 100); do [ -S "$work/echo.sock" ] && break; sleep 0.05; done
	sm_echo=$(bench -m "$map" -k "$work/keys.txt" "unix:$work/echo.sock")
	{
		echo
		echo "socketmap, map $map, $nkeys keys, concurrency $conc, ${secs}s each"
		header
		pg_row "pgbench (same SQL, $conc backends)"
		row "vmaild socketmap, cache warm (pool $pool)" "$sm_cached"
		row "vmaild socketmap, cache_size 0 (pool $pool)" "$sm_uncached"
		row "echo server (no database)" "$sm_echo"
		echo "cached / pgbench $(ratio "$(field lookups_per_s "$sm_cached")" "$pg_tps"), cached / echo" \
			"$(ratio "$(field lookups_per_s "$sm_cached")" "$(field lookups_per_s "$sm_echo")"), uncached / pgbench" \
			"$(ratio "$(field lookups_per_s "$sm_uncached")" "$pg_tps")"
		echo "cached replies: OK $(field ok "$sm_cached"), NOTFOUND $(field notfound "$sm_cached"), TEMP $(field temp "$sm_cached"), errors $(field errors "$sm_cached")"
	} | tee "$work/sec-socketmap.txt"
	summary+=("$(cat "$work/sec-socketmap.txt")")
fi

if want dict; then
	if $have_dict; then
		echo "== dict userdb: pgbench, vmaild cached (warm), vmaild uncached"
		cat >"$work/userdb.sql" <<SQL
\set i random(1, $nkeys)
SELECT vmail.userdb_json($(loginexpr ':i'));
SQL
		pgbench_run dict "$work/userdb.sql"
		"$build/vmail-bench" -P dict -S -c "$conc" -k "$work/logins.txt" "unix:$work/cached.dict.sock" >/dev/null
		d_cached=$(bench -P dict -k "$work/logins.txt" "unix:$work/cached.dict.sock")
		d_uncached=$(bench -P dict -k "$work/logins.txt" "unix:$work/uncached.dict.sock")
		{
			echo
			echo "dict L shared/userdb/<login>, $nkeys logins, concurrency $conc, ${secs}s each"
			header
			pg_row "pgbench userdb_json (same SQL)"
			row "vmaild dict, cache warm" "$d_cached"
			row "vmaild dict, cache_size 0" "$d_uncached"
			echo "cached replies: O $(field ok "$d_cached"), N $(field notfound "$d_cached"), F $(field temp "$d_cached"), other $(field other "$d_cached"), errors $(field errors "$d_cached")"
		} | tee "$work/sec-dict.txt"
	else
		echo "dict: this vmaild has no dict service (dict_listen ignored); skipped" | tee "$work/sec-dict.txt"
	fi
	summary+=("$(cat "$work/sec-dict.txt")")
fi

if want policy; then
	if $have_policy; then
		echo "== policy RCPT: pgbench policy_check vs vmaild policy (never cached)"
		cat >"$work/policy.sql" <<SQL
\set i random(1, $nkeys)
SELECT vmail.policy_check($(keyexpr ':i'), 0);
SQL
		pgbench_run policy "$work/policy.sql"
		p_res=$(bench -P policy -k "$work/keys.txt" "unix:$work/cached.policy.sock")
		{
			echo
			echo "policy RCPT recipient=<key>, $nkeys keys, concurrency $conc, ${secs}s each"
			header
			pg_row "pgbench policy_check (same SQL)"
			row "vmaild policy" "$p_res"
			echo "replies: DUNNO $(field ok "$p_res"), DEFER $(field temp "$p_res"), 4xx $(field notfound "$p_res"), 5xx $(field perm "$p_res"), other $(field other "$p_res"), errors $(field errors "$p_res")"
		} | tee "$work/sec-policy.txt"
	else
		echo "policy: this vmaild has no policy service; skipped" | tee "$work/sec-policy.txt"
	fi
	summary+=("$(cat "$work/sec-policy.txt")")
fi

if want idle; then
	echo "== 10 000 idle connections for ${secs}s, then one request each"
	idle=$("$build/vmail-bench" -I 10000 -T "$secs" -m "$map" -k "$work/keys.txt" \
		"unix:$work/cached.sm.sock" 2>/dev/null | grep '^RESULT')
	rss=$(awk '/VmRSS/ {print $2}' "/proc/$cached_pid/status")
	{
		echo
		echo "idle: 10000 connections held ${secs}s: $(field idle_open "$idle") open at the end," \
			"$(field idle_answered "$idle") answered afterwards (OK $(field ok "$idle"), NOTFOUND $(field notfound "$idle"), TEMP $(field temp "$idle"));" \
			"connect retries (listen backlog full) $(field errors "$idle"); vmaild RSS ${rss} kB"
	} | tee "$work/sec-idle.txt"
	summary+=("$(cat "$work/sec-idle.txt")")
fi

if want notify; then
	echo "== NOTIFY: alias1@d1.lublin.pl flipped 200 times"
	nres=$("$repo/scripts/notify_latency.py" "$work/cached.sm.sock" "$dsn" alias1@d1.lublin.pl \
		user1@d1.lublin.pl user2@d1.lublin.pl 200 | tee -a "$work/bench.out" | grep '^RESULT')
	{
		echo
		echo "notify: changed alias answered anew, ms after the commit: p50 $(field commit_p50_ms "$nres")," \
			"p99 $(field commit_p99_ms "$nres"), max $(field commit_max_ms "$nres");" \
			"after sending the change: p50 $(field send_p50_ms "$nres"), p99 $(field send_p99_ms "$nres")," \
			"max $(field send_max_ms "$nres"); over 100 ms: $(field over_100ms "$nres") of 200"
	} | tee "$work/sec-notify.txt"
	summary+=("$(cat "$work/sec-notify.txt")")
fi

if want memory; then
	echo "== one million aliases (bulk insert, rule triggers off for the load), looked up once"
	# 500 more domains with one mailbox u.kowalski@ each, and 1M administrator aliases
	# aliasNNNNNN@dK.lublin.pl -> u.kowalski@dK.lublin.pl, written straight into the tables
	# the lookup reads (session_replication_role = replica skips the per-row rule triggers,
	# which would take minutes; vmail.lookup_alias answers them like any alias).
	t0=$(date +%s)
	psql -X -q -v ON_ERROR_STOP=1 "$dsn" >/dev/null <<'SQL'
SELECT vmail.domain_add('bench', 'm' || d || '.lublin.pl'),
       vmail.domain_set_state('m' || d || '.lublin.pl', 'active')
  FROM generate_series(1, 500) d;
SELECT vmail.account_add('u.kowalski@m' || d || '.lublin.pl', 'paid', 'bench', NULL, 1048576)
  FROM generate_series(1, 500) d;
BEGIN;
SET LOCAL session_replication_role = replica;
CREATE TEMP TABLE dom ON COMMIT DROP AS
  SELECT d.id AS domain_id, d.name, a.id AS account_id, row_number() OVER (ORDER BY d.id) - 1 AS k
    FROM vmail.domain d JOIN vmail.mail_account a ON a.domain_id = d.id
   WHERE d.name LIKE 'm%' AND a.local_part = 'u.kowalski';
CREATE TEMP TABLE bulk ON COMMIT DROP AS
  SELECT i, nextval('vmail.alias_id_seq') AS alias_id, dom.domain_id, dom.name, dom.account_id,
         'alias' || lpad(i::text, 6, '0') AS local_part
    FROM generate_series(0, 999999) i JOIN dom ON dom.k = i % 500;
INSERT INTO vmail.alias (id, address, domain_id, local_part, customer_id, self_service)
  SELECT alias_id, local_part || '@' || name, domain_id, local_part,
         (SELECT id FROM vmail.customer WHERE name = 'bench'), false FROM bulk;
INSERT INTO vmail.address (domain_id, local_part, kind, alias_id)
  SELECT domain_id, local_part, 'alias', alias_id FROM bulk;
INSERT INTO vmail.alias_target (alias_id, position, mail_account_id)
  SELECT alias_id, 1, account_id FROM bulk;
COMMIT;
ANALYZE;
SQL
	psql -X -At "$dsn" -c "SELECT local_part || '@' || (SELECT name FROM vmail.domain d WHERE d.id = a.domain_id)
		FROM vmail.alias a WHERE local_part LIKE 'alias______' ORDER BY random()" >"$work/million.txt"
	load_s=$(( $(date +%s) - t0 ))
	vmaild_start million "metrics_listen = unix:$work/million.metrics.sock"
	rss0=$(awk '/VmRSS/ {print $2}' "/proc/$million_pid/status")
	t0=$(date +%s)
	fill=$("$build/vmail-bench" -S -c "$conc" -m alias -k "$work/million.txt" "unix:$work/million.sm.sock" | grep '^RESULT')
	fill_s=$(( $(date +%s) - t0 ))
	metrics=$(curl -s --unix-socket "$work/million.metrics.sock" http://vmaild/metrics)
	m() { awk -v n="$1" '$1 == n {printf "%.0f", $2}' <<<"$metrics"; }
	read -r rss anon < <(awk '/VmRSS/ {r=$2} /RssAnon/ {a=$2} END {print r, a}' "/proc/$million_pid/status")
	hot=$(bench -m alias -k "$work/million.txt" "unix:$work/million.sm.sock")
	read -r rss2 anon2 < <(awk '/VmRSS/ {r=$2} /RssAnon/ {a=$2} END {print r, a}' "/proc/$million_pid/status")
	kb=$(awk '{ n++; s += length($0) } END { printf "%.1f", s / n }' "$work/million.txt")
	{
		echo
		echo "memory: $(wc -l <"$work/million.txt") distinct aliases (keys $kb bytes on average," \
			"answers u.kowalski@mK.lublin.pl, 23-25 bytes), loaded in ${load_s}s, looked up once in ${fill_s}s" \
			"(OK $(field ok "$fill"), TEMP $(field temp "$fill"), errors $(field errors "$fill"))"
		echo "  vmaild before: RSS ${rss0} kB; after: RSS ${rss} kB ($(awk -v r="$rss" 'BEGIN {printf "%.1f", r / 1024}') MiB), anonymous ${anon} kB"
		echo "  cache: $(m vmaild_cache_entries) entries, $(m vmaild_cache_bytes) bytes held (slabs + index)," \
			"$(m vmaild_cache_live_bytes) bytes of entries, $(m vmaild_cache_evictions_total) evictions, limit $(m vmaild_cache_max_bytes)"
		echo "  then ${secs}s of random lookups over the million: $(field lookups_per_s "$hot") lookups/s," \
			"p99 $(field p99_us "$hot") us; RSS ${rss2} kB"
	} | tee "$work/sec-memory.txt"
	summary+=("$(cat "$work/sec-memory.txt")")
fi

echo
echo "================ $(nproc) CPUs, PostgreSQL $("$pgbin/postgres" -V | awk '{print $3}'), pg_pool_size $pool"
for s in "${summary[@]}"; do echo "$s"; done
