#!/usr/bin/env bash
# bench.sh: vmaild's lookups side by side with flat-table baselines, in one run against a
# private PostgreSQL.  Every figure is printed next to the baseline it is compared to.
#
#   scripts/bench.sh [-q] [-N ADDRESSES] [-r RUNS] [-c CONNECTIONS] [-T SECONDS]
#                    [-p PG_POOL_SIZE] [-M PGBENCH_MODE] [-s SECTIONS] [--commit REV]
#
# Data: ADDRESSES (default 10 000) addresses in domains dK.lublin.pl of 1000 addresses each,
# each dK with an alias domain eK.lublin.pl (domain alias: every address of dK answers at eK),
# half paid mailboxes userJ@, half aliases aliasJ@ -> userJ@, all entered through the
# administration functions (so every rule trigger runs); the load time is reported.  Beside
# them, in schema bench_flat, what a PostfixAdmin-style setup reads: alias(address, goto)
# with one row per address at dK and one at eK (the copy such a setup makes for a domain
# alias), users(login, password, home, uid, gid, quota_bytes) with one row per mailbox, each
# with a b-tree index on its key.
#
# Keys: a third existing addresses (AliasJ+tU@ or UserJ+tU@, mixed case, a distinct tag),
# two thirds unknown addresses nobodyU@ in hosted domains, half of either at the alias
# domains (mirrored); U is never repeated, so no key is asked twice.  pgbench draws keys the same way from SQL (\set r random(0, 2), u random),
# the existing third without the tag for the flat table (one probe that hits).
# Logins for passdb/userdb: a third mailboxes userJ@, two thirds unknown nobodyU@.
#
# Sections (-s, comma-separated; default uncached,attack,dict,policy,dovecot,fill), each
# repeated RUNS times (default 3), baseline and vmaild alternating; the median run is shown:
#   uncached  socketmap alias, mailbox, sender with cache_size 0  vs  pgbench flat alias
#   attack    socketmap alias, cache on, every key new (a dictionary attack)  vs  the same
#   dict      dict passdb and userdb with cache_size 0  vs  pgbench flat users
#   policy    policy RCPT (never cached)  vs  pgbench flat alias (target 0.5x)
#   dovecot   pgbench vmail.passdb / vmail.userdb_v24 as Dovecot 2.4's sql driver calls them
#             vs  pgbench flat users
#   fill      every address once through a fresh vmaild with the cache on (cache fill)
#             vs  pgbench flat alias
# and, only on request, the issue 6 sections: warm (a warm cache over 3000 keys, and the
# epoll echo server: the ceiling without a database), idle (10 000 idle
# connections), notify (an alias flipped 200 times), memory (one million aliases cached, then
# looked up uncached beside a flat table of as many rows: the growth figures; bulk load
# bypassing the triggers), syscalls (strace -c over 10 000 cached socketmap and dict lookups).
# -q: quick smoke check (2 000 addresses, 1 run, 2 s).  --commit REV: build REV in a
# temporary git worktree and benchmark its schema and vmaild (the client, vmail-bench, stays
# this build's), for the before/after comparison.  -M: pgbench query mode (prepared).
# Defaults: 32 connections, 10 s per run, pg_pool_size 4.  Needs the build (VMAIL_BUILD_DIR,
# default ./build), PostgreSQL, pgbench, psql, curl, python3.  Client, daemon and database
# share this machine's CPUs.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build=${VMAIL_BUILD_DIR:-$repo/build}
conc=32 secs=10 pool=4 naddr=10000 runs=3 mode=prepared commit=""
sections=uncached,attack,dict,policy,dovecot,fill
args=()
while [ $# -gt 0 ]; do
	case $1 in
	--commit) commit=${2:?--commit needs a revision}; shift 2 ;;
	--commit=*) commit=${1#--commit=}; shift ;;
	*) args+=("$1"); shift ;;
	esac
done
set -- "${args[@]+"${args[@]}"}"
while getopts "qN:r:c:T:p:M:s:h" opt; do
	case $opt in
	q) naddr=2000 runs=1 secs=2 ;;
	N) naddr=$OPTARG ;;
	r) runs=$OPTARG ;;
	c) conc=$OPTARG ;;
	T) secs=$OPTARG ;;
	p) pool=$OPTARG ;;
	M) mode=$OPTARG ;;
	s) sections=$OPTARG ;;
	*) sed -n '2,40p' "$0"; exit 2 ;;
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
	for p in "${pids[@]+"${pids[@]}"}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	"$repo/tests/world/pg.sh" stop "$work/pg" 2>/dev/null || true
	if [ -n "$commit" ]; then git -C "$repo" worktree remove --force "$work/tree" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

# The system under test: this tree, or REV's schema and daemon built in a temporary worktree.
sut=$repo sut_build=$build sut_rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$commit" ]; then
	echo "== building $commit in a temporary worktree"
	git -C "$repo" worktree add --detach "$work/tree" "$commit" >/dev/null
	cmake -S "$work/tree" -B "$work/tree/build" -DBUILD_TESTING=OFF >"$work/cmake.log" 2>&1 &&
		cmake --build "$work/tree/build" -j"$(nproc)" --target vmaild vmailctl >>"$work/cmake.log" 2>&1 ||
		{ tail -n 30 "$work/cmake.log"; exit 1; }
	sut=$work/tree sut_build=$work/tree/build sut_rev=$(git -C "$sut" rev-parse --short HEAD)
fi

ndom=$(( (naddr + 999) / 1000 ))
per=$(( naddr / ndom / 2 )) # mailboxes (and aliases) per domain
echo "== private PostgreSQL, schema of $sut_rev, $((ndom * per * 2)) addresses in $ndom domains ($work)"
dsn=$("$repo/tests/world/pg.sh" start "$work/pg" | tail -n1)
printf 'database = %s\n' "$dsn" >"$work/vmailctl.conf"
"$sut_build/vmailctl" -c "$work/vmailctl.conf" db migrate --schema-dir "$sut/schema" >/dev/null
t0=$(date +%s.%N)
psql -X -q -v ON_ERROR_STOP=1 -v ndom="$ndom" -v per="$per" "$dsn" >/dev/null <<'SQL'
SELECT vmail.customer_add('bench', 'Benchmark');
SELECT vmail.domain_add('bench', 'd' || d || '.lublin.pl'),
       vmail.domain_set_state('d' || d || '.lublin.pl', 'active')
  FROM generate_series(1, :ndom) d;
SELECT count(vmail.account_add('user' || j || '@d' || d || '.lublin.pl', 'paid', 'bench', NULL, 1048576))
  FROM generate_series(1, :ndom) d, generate_series(1, :per) j;
SELECT count(vmail.alias_add('alias' || j || '@d' || d || '.lublin.pl',
                             ARRAY['user' || j || '@d' || d || '.lublin.pl'], false, NULL))
  FROM generate_series(1, :ndom) d, generate_series(1, :per) j;
-- every dK has an alias domain eK (issue 20): half the lookup keys are mirrored (a schema
-- from before domain aliases, benchmarked with --commit, gets the domains unlinked)
SELECT vmail.domain_add('bench', 'e' || d || '.lublin.pl'),
       vmail.domain_set_state('e' || d || '.lublin.pl', 'active')
  FROM generate_series(1, :ndom) d;
DO $$ BEGIN
	IF to_regproc('vmail.domain_alias') IS NOT NULL THEN
		PERFORM vmail.domain_alias('e' || d || '.lublin.pl', 'd' || d || '.lublin.pl')
		   FROM generate_series(1, (SELECT count(*) FROM vmail.domain WHERE name LIKE 'e%.lublin.pl')) d;
	END IF;
END $$;
SQL
load_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
psql -X -q -v ON_ERROR_STOP=1 -v ndom="$ndom" -v per="$per" "$dsn" >/dev/null <<'SQL'
CREATE SCHEMA bench_flat;
CREATE TABLE bench_flat.alias (address text PRIMARY KEY, goto text NOT NULL);
INSERT INTO bench_flat.alias
  SELECT k || j || '@' || e || d || '.lublin.pl', 'user' || j || '@d' || d || '.lublin.pl'
    FROM generate_series(1, :ndom) d, generate_series(1, :per) j, unnest(ARRAY['user', 'alias']) k,
         unnest(ARRAY['d', 'e']) e;
CREATE TABLE bench_flat.users (login text PRIMARY KEY, password text, home text NOT NULL,
                               uid integer NOT NULL, gid integer NOT NULL, quota_bytes bigint);
INSERT INTO bench_flat.users
  SELECT 'user' || j || '@d' || d || '.lublin.pl',
         '{BLF-CRYPT}$2y$05$' || md5(j || '.' || d) || md5(d || '.' || j),
         '/var/vmail/d' || d || '.lublin.pl/user' || j, 5000, 5000, 1048576
    FROM generate_series(1, :ndom) d, generate_series(1, :per) j;
ANALYZE;
SQL
echo "   loaded through the rule triggers in ${load_s}s"

# The key expressions, in SQL over r (0..2) and u (a number used once): both pgbench and the
# key files vmail-bench reads come from them.
keyexpr() { # keyexpr R U [notag]: half of them at the alias domains eK (mirrored keys)
	local tag="|| '+t' || $2"
	[ "${3:-}" = notag ] && tag=""
	echo "CASE WHEN $1 = 0 THEN CASE WHEN $2 % 2 = 0 THEN 'Alias' ELSE 'User' END
	      || ($2 / 2 % $per + 1) $tag ELSE 'nobody' || $2 END
	      || CASE WHEN $2 / 3 % 2 = 0 THEN '@d' ELSE '@e' END || ($2 / 7 % $ndom + 1) || '.lublin.pl'"
}
mkeyexpr() { # mkeyexpr R U [notag]: the same mix over the memory section's million aliases
	local tag="|| '+t' || $2"
	[ "${3:-}" = notag ] && tag=""
	echo "CASE WHEN $1 = 0 THEN 'Alias' || lpad(($2 % 1000000)::text, 6, '0') $tag ELSE 'nobody' || $2 END
	      || '@m' || ($2 % 1000000 % 500 + 1) || '.lublin.pl'"
}
loginexpr() { # loginexpr R U
	echo "CASE WHEN $1 = 0 THEN 'user' || ($2 / 2 % $per + 1) ELSE 'nobody' || $2 END
	      || '@d' || ($2 / 7 % $ndom + 1) || '.lublin.pl'"
}
# Enough keys that a run does not run out (when it does, vmail-bench stops early; the rate
# is over the time it ran).
nkeys=$(( secs * 40000 ))
keyfile() { # keyfile FILE FIRST-U EXPR-FUNCTION: nkeys keys, U = FIRST-U, FIRST-U + 1, ...
	psql -X -At "$dsn" -c "SELECT $($3 r u) FROM (SELECT floor(random() * 3)::int AS r,
		$2::bigint + i AS u FROM generate_series(1, $nkeys) i) s" >"$1"
}
pg_r='\set r random(0, 2)
\set u random(1, 1000000000000)'
# The flat baseline gets the existing third without the tag, so they are hits: the cheapest a
# flat map can answer them (Postfix itself would first ask for the tagged key and miss).
pg_key=$(keyexpr ':r::int' ':u::bigint' notag)
pg_login=$(loginexpr ':r::int' ':u::bigint')

percentiles() { # pgbench per-transaction logs: column 3 is the latency in microseconds
	cat "$@" | awk '{print $3}' | sort -n | awk '
		{ v[NR] = $1 }
		END { if (NR == 0) { print "0 0 0"; exit }
		      printf "%d %d %d\n", v[int(0.50 * (NR - 1)) + 1], v[int(0.99 * (NR - 1)) + 1],
		             v[int(0.999 * (NR - 1)) + 1] }'
}
field() { sed -n "s/.*[ ]$1=\([0-9.]*\).*/\1/p" <<<" $2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

# Every measurement leaves one line "RESULT lookups_per_s=.. p50_us=.. p99_us=.. p999_us=.."
# (plus the reply mix for vmail-bench) in $work/res/NAME.RUN.
mkdir -p "$work/res"
pgbench_run() { # pgbench_run NAME RUN SQL [MODE]
	local d="$work/pgbench-$1-$2"
	mkdir -p "$d"
	printf '%s\n%s\n' "$pg_r" "$3" >"$d/script.sql"
	(cd "$d" && "$pgbin/pgbench" -n -M "${4:-$mode}" -f script.sql -c "$conc" -j 2 \
		-T "$secs" -l --log-prefix=log "$dsn" >out 2>&1) || { cat "$d/out"; exit 1; }
	local tps p50 p99 p999
	tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$d/out" | head -n1)
	read -r p50 p99 p999 < <(percentiles "$d"/log*)
	echo "RESULT lookups_per_s=$tps p50_us=$p50 p99_us=$p99 p999_us=$p999" >"$work/res/$1.$2"
	rm -f "$d"/log*
}
vb_run() { # vb_run NAME RUN vmail-bench-ARGS...: one pass over a key file, at most secs
	local name=$1 run=$2
	shift 2
	"$build/vmail-bench" -c "$conc" "$@" | tee -a "$work/bench.out" | grep '^RESULT' >"$work/res/$name.$run"
}
median() { # median NAME: the RESULT line of the run with the median lookups/s
	for f in "$work/res/$1".*; do echo "$(field lookups_per_s "$(cat "$f")") $f"; done |
		sort -n | awk '{ l[NR] = $2 } END { print l[int((NR + 1) / 2)] }' | xargs cat
}
header() { printf '%-46s %12s %10s %10s %10s\n' "" "lookups/s" "p50 us" "p99 us" "p99.9 us"; }
row() { # row LABEL NAME
	local r
	r=$(median "$2")
	printf '%-46s %12.0f %10s %10s %10s\n' "$1" "$(field lookups_per_s "$r")" "$(field p50_us "$r")" \
		"$(field p99_us "$r")" "$(field p999_us "$r")"
}
rate() { field lookups_per_s "$(median "$1")"; }
mix() { # mix NAME: the reply mix of the median run
	local r
	r=$(median "$1")
	echo "OK $(field ok "$r"), NOTFOUND $(field notfound "$r"), TEMP $(field temp "$r"), PERM $(field perm "$r"), other $(field other "$r"), errors $(field errors "$r")"
}
target() { # target LABEL NAME BASELINE FACTOR [P99-LIMIT-US]
	local v b p99 ok=yes
	v=$(rate "$2") b=$(rate "$3") p99=$(field p99_us "$(median "$2")")
	awk -v v="$v" -v b="$b" -v f="$4" 'BEGIN { exit !(v >= f * b) }' || ok=no
	if [ -n "${5:-}" ] && [ "$p99" -ge "$5" ]; then ok=no; fi
	printf '  %-40s %5sx the baseline (target %s x%s): %s\n' "$1" "$(ratio "$v" "$b")" "$4" \
		"${5:+, p99 < $5 us}" "$ok"
}

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
	"$sut_build/vmaild" -c "$work/$name.conf" 2>"$work/$name.log" &
	pids+=($!)
	eval "${name}_pid=$!"
	for _ in $(seq 100); do [ -S "$work/$name.sm.sock" ] && break; sleep 0.05; done
	sleep 0.5 # let the pool connect and prepare, and the LISTEN connection listen
}
summary=()
section() { # section NAME: print and keep what was written to $work/sec-NAME.txt
	cat "$work/sec-$1.txt"
	summary+=("$(cat "$work/sec-$1.txt")")
}

echo "== vmaild with the answer cache (default cache_size) and without it (cache_size 0)"
vmaild_start cached "metrics_listen = unix:$work/cached.metrics.sock"
vmaild_start uncached "cache_size = 0"
have_dict=false have_policy=false
[ -S "$work/cached.dict.sock" ] && have_dict=true
[ -S "$work/cached.policy.sock" ] && have_policy=true
want dict && ! $have_dict && echo "dict: this vmaild has no dict service; skipped"
want policy && ! $have_policy && echo "policy: this vmaild has no policy service; skipped"

# The alternating runs: in each, the baselines first, then vmaild's paths.
for run in $(seq "$runs"); do
	echo "== run $run of $runs"
	keyfile "$work/keys-u.txt" "$(( run * 1000000000 ))" keyexpr
	keyfile "$work/logins.txt" "$(( run * 1000000000 ))" loginexpr
	if want uncached || want attack || want policy || want fill || want warm; then
		pgbench_run flat_alias "$run" "SELECT goto FROM bench_flat.alias WHERE address = lower($pg_key);"
	fi
	if want uncached; then
		for m in alias mailbox sender; do
			vb_run "uncached_$m" "$run" -S -T "$secs" -m "$m" -k "$work/keys-u.txt" "unix:$work/uncached.sm.sock"
		done
	fi
	if want attack; then
		# keys never asked before: U from a range of its own in every run
		keyfile "$work/keys-a.txt" "$(( (run + 100) * 1000000000 ))" keyexpr
		vb_run attack_alias "$run" -S -T "$secs" -m alias -k "$work/keys-a.txt" "unix:$work/cached.sm.sock"
	fi
	if want policy && $have_policy; then
		vb_run policy "$run" -S -T "$secs" -P policy -k "$work/keys-u.txt" "unix:$work/uncached.policy.sock"
	fi
	if want dict || want dovecot; then
		pgbench_run flat_users "$run" \
			"SELECT password, home, uid, gid, quota_bytes FROM bench_flat.users WHERE login = $pg_login;"
	fi
	if want dict && $have_dict; then
		for m in passdb userdb; do
			vb_run "dict_$m" "$run" -S -T "$secs" -P dict -m "$m" -k "$work/logins.txt" "unix:$work/uncached.dict.sock"
		done
	fi
	if want dovecot; then
		# as -M says, and as Dovecot's driver sends them: simple protocol, the login a literal
		# (pgbench writes the values into the text), so every query is parsed and planned
		for m in "$mode" simple; do
			sfx=""
			[ "$m" = "$mode" ] || sfx=_simple
			[ -n "$sfx" ] && pgbench_run "flat_users$sfx" "$run" \
				"SELECT password, home, uid, gid, quota_bytes FROM bench_flat.users WHERE login = $pg_login;" "$m"
			pgbench_run "dovecot_passdb$sfx" "$run" \
				"SELECT username AS user, password FROM vmail.passdb($pg_login);" "$m"
			pgbench_run "dovecot_userdb$sfx" "$run" "SELECT username AS user, home, uid, gid, mail_driver, mail_path,
				mail_inbox_path, mail_index_path, mail_control_path, mailbox_list_layout,
				quota_storage_size, tempfail FROM vmail.userdb_v24($pg_login);" "$m"
			[ "$m" = simple ] && break
		done
	fi
	if want warm; then
		# issue 6's figures: 3000 keys asked at random from a warm cache, and the echo server
		[ -s "$work/keys-w.txt" ] || head -n 3000 "$work/keys-u.txt" >"$work/keys-w.txt"
		"$build/vmail-bench" -S -c "$conc" -m alias -k "$work/keys-w.txt" "unix:$work/cached.sm.sock" >/dev/null
		vb_run warm "$run" -T "$secs" -m alias -k "$work/keys-w.txt" "unix:$work/cached.sm.sock"
		# the echo server: one read, one write per request (vmail-bench --echo-server)
		if [ ! -S "$work/echo.sock" ]; then
			"$build/vmail-bench" --echo-server "unix:$work/echo.sock" 2>/dev/null &
			pids+=($!)
			for _ in $(seq 100); do [ -S "$work/echo.sock" ] && break; sleep 0.05; done
		fi
		vb_run echo "$run" -T "$secs" -m alias -k "$work/keys-w.txt" "unix:$work/echo.sock"
		if $have_dict; then
			# dict userdb hits, the way Dovecot's 2.3 dict passdb/userdb asks: 3000 logins
			[ -s "$work/logins-w.txt" ] || head -n 3000 "$work/logins.txt" >"$work/logins-w.txt"
			"$build/vmail-bench" -S -c "$conc" -P dict -m userdb -k "$work/logins-w.txt" \
				"unix:$work/cached.dict.sock" >/dev/null
			vb_run warm_userdb "$run" -T "$secs" -P dict -m userdb -k "$work/logins-w.txt" \
				"unix:$work/cached.dict.sock"
		fi
	fi
	if want fill; then
		# a fresh vmaild with an empty cache; every address once, in random order
		psql -X -At "$dsn" -c "SELECT address FROM bench_flat.alias ORDER BY random()" >"$work/all.txt"
		vmaild_start "fill$run" ""
		vb_run fill "$run" -S -m alias -k "$work/all.txt" "unix:$work/fill$run.sm.sock"
		eval "kill \$fill${run}_pid"
	fi
done

if want uncached; then
	{
		echo
		echo "(a) socketmap, cache_size 0: ⅓ existing (mixed case, +tag), ⅔ unknown, no key twice"
		header
		row "pgbench flat alias, lower(\$1), $conc backends" flat_alias
		for m in alias mailbox sender; do row "vmaild $m, cache_size 0 (pool $pool)" "uncached_$m"; done
		echo "  replies (alias): $(mix uncached_alias)"
		for m in alias mailbox sender; do target "$m uncached" "uncached_$m" flat_alias 1.0 5000; done
	} >"$work/sec-uncached.txt"
	section uncached
fi
if want attack; then
	{
		echo
		echo "(b) socketmap alias, cache on, dictionary attack: every key new, ⅔ unknown"
		header
		row "pgbench flat alias, lower(\$1), $conc backends" flat_alias
		row "vmaild alias, cache on, keys never seen" attack_alias
		echo "  replies: $(mix attack_alias)"
		target "alias under attack" attack_alias flat_alias 1.0 5000
	} >"$work/sec-attack.txt"
	section attack
fi
if want dict && $have_dict; then
	{
		echo
		echo "dict passdb/userdb, cache_size 0: ⅓ mailboxes, ⅔ unknown logins"
		header
		row "pgbench flat users point select" flat_users
		row "vmaild dict passdb, cache_size 0" dict_passdb
		row "vmaild dict userdb, cache_size 0" dict_userdb
		echo "  replies (userdb): O $(field ok "$(median dict_userdb)"), N $(field notfound "$(median dict_userdb)"), F $(field temp "$(median dict_userdb)"), errors $(field errors "$(median dict_userdb)")"
		target "dict passdb" dict_passdb flat_users 1.0
		target "dict userdb" dict_userdb flat_users 1.0
	} >"$work/sec-dict.txt"
	section dict
fi
if want policy && $have_policy; then
	{
		echo
		echo "policy RCPT recipient=<key> (never cached), keys as (a)"
		header
		row "pgbench flat alias, lower(\$1)" flat_alias
		row "vmaild policy" policy
		echo "  replies: DUNNO $(field ok "$(median policy)"), DEFER $(field temp "$(median policy)"), 4xx $(field notfound "$(median policy)"), 5xx $(field perm "$(median policy)"), errors $(field errors "$(median policy)")"
		target "policy_check" policy flat_alias 0.5
	} >"$work/sec-policy.txt"
	section policy
fi
if want dovecot; then
	{
		echo
		echo "Dovecot 2.4 sql driver's queries through pgbench (contrib/dovecot/2.4), logins as dict"
		header
		row "pgbench flat users point select" flat_users
		row "pgbench vmail.passdb(login)" dovecot_passdb
		row "pgbench vmail.userdb_v24(login)" dovecot_userdb
		target "vmail.passdb" dovecot_passdb flat_users 1.0
		target "vmail.userdb_v24" dovecot_userdb flat_users 1.0
		if [ "$mode" != simple ]; then
			echo "the same, -M simple (Dovecot's pgsql driver: PQsendQuery, the login a literal)"
			header
			row "pgbench flat users point select" flat_users_simple
			row "pgbench vmail.passdb(login)" dovecot_passdb_simple
			row "pgbench vmail.userdb_v24(login)" dovecot_userdb_simple
			target "vmail.passdb, simple" dovecot_passdb_simple flat_users_simple 1.0
			target "vmail.userdb_v24, simple" dovecot_userdb_simple flat_users_simple 1.0
		fi
	} >"$work/sec-dovecot.txt"
	section dovecot
fi
if want fill; then
	{
		echo
		echo "cache fill: all $((ndom * per * 2)) addresses once, fresh vmaild, cache on"
		header
		row "pgbench flat alias, lower(\$1)" flat_alias
		row "vmaild alias, every lookup a miss" fill
		echo "  replies: $(mix fill)"
		target "cache fill" fill flat_alias 0.5
	} >"$work/sec-fill.txt"
	section fill
fi

if want warm; then
	{
		echo
		echo "socketmap alias, cache warm: 3000 keys of (a) at random, after one pass over them"
		header
		row "pgbench flat alias, lower(\$1)" flat_alias
		row "vmaild alias, cache warm" warm
		row "echo server, epoll (no database)" echo
		echo "  replies: $(mix warm)"
		if $have_dict; then
			row "vmaild dict userdb, cache warm" warm_userdb
			echo "  replies: $(mix warm_userdb)"
		fi
		target "alias warm, baseline echo" warm echo 0.8 1000
		target "alias warm, baseline pgbench flat" warm flat_alias 1.5 1000
		if $have_dict; then target "dict userdb warm, baseline echo" warm_userdb echo 0.8 1000; fi
	} >"$work/sec-warm.txt"
	section warm
fi

# System calls per cached lookup, counted by strace over 10 000 warm lookups (issue 19)
if want syscalls; then
	if ! command -v strace >/dev/null; then
		echo "syscalls: strace is not installed; skipped"
	else
		# Existing keys only: a NOTFOUND is cached for cache_negative_ttl (10 s), and one
		# that expires during the count would count the database's round trip instead.
		awk '!/^nobody/ && n++ < 3000' "$work/keys-u.txt" >"$work/keys-s.txt"
		awk '!/^nobody/ && n++ < 3000' "$work/logins.txt" >"$work/logins-s.txt"
		{
			echo
			echo "system calls of vmaild over 10 000 cached lookups (strace -c), $conc connections"
			for p in socketmap dict; do
				sock=$work/cached.sm.sock args=(-m alias -k "$work/keys-s.txt")
				[ $p = dict ] && sock=$work/cached.dict.sock args=(-P dict -m userdb -k "$work/logins-s.txt")
				"$build/vmail-bench" -S -c "$conc" "${args[@]}" "unix:$sock" >/dev/null
				strace -c -f -p "$cached_pid" -o "$work/strace.$p" 2>/dev/null &
				st=$!
				sleep 1
				"$build/vmail-bench" -c "$conc" -n 10000 "${args[@]}" "unix:$sock" >/dev/null
				kill -INT "$st"
				wait "$st" || true
				awk -v p="$p" '$NF == "total" { t = $4 }
					$NF == "epoll_wait" { w = $4 }
					END { printf "  %-10s %6d calls, %.2f per lookup besides epoll_wait (%d epoll_wait)\n",
						p, t, (t - w) / 10000, w }' "$work/strace.$p"
				awk '/^-----/ { body++; next } body == 1 && n++ < 8 {
					printf "             %s %s\n", $4, $NF }' "$work/strace.$p"
			done
		} >"$work/sec-syscalls.txt"
		section syscalls
	fi
fi

# issue 6's sections (only with -s): a random sample of the keys for the idle clients
if want idle || want notify || want memory; then
	head -n 3000 "$work/keys-u.txt" >"$work/keys.txt"
	map=alias
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
	# which would take minutes; vmail.route_rebuild() then fills the routing relation).
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
-- the load bypassed the triggers that keep the routing relation: recompute it (a schema
-- from before the relation, benchmarked with --commit, has none)
DO $$ BEGIN
	IF to_regproc('vmail.route_rebuild') IS NOT NULL THEN EXECUTE 'SELECT vmail.route_rebuild()'; END IF;
END $$;
-- the flat baseline gets as many rows
INSERT INTO bench_flat.alias
  SELECT 'alias' || lpad(i::text, 6, '0') || '@m' || (i % 500 + 1) || '.lublin.pl',
         'u.kowalski@m' || (i % 500 + 1) || '.lublin.pl'
    FROM generate_series(0, 999999) i;
ANALYZE;
SQL
	psql -X -At "$dsn" -c "SELECT local_part || '@' || (SELECT name FROM vmail.domain d WHERE d.id = a.domain_id)
		FROM vmail.alias a WHERE local_part LIKE 'alias______' ORDER BY random()" >"$work/million.txt"
	mload_s=$(( $(date +%s) - t0 ))
	vmaild_start million "metrics_listen = unix:$work/million.metrics.sock"
	rss0=$(awk '/VmRSS/ {print $2}' "/proc/$million_pid/status")
	t0=$(date +%s)
	fill=$("$build/vmail-bench" -S -c "$conc" -m alias -k "$work/million.txt" "unix:$work/million.sm.sock" | grep '^RESULT')
	fill_s=$(( $(date +%s) - t0 ))
	metrics=$(curl -s --unix-socket "$work/million.metrics.sock" http://vmaild/metrics)
	m() { awk -v n="$1" '$1 == n {printf "%.0f", $2}' <<<"$metrics"; }
	read -r rss anon < <(awk '/VmRSS/ {r=$2} /RssAnon/ {a=$2} END {print r, a}' "/proc/$million_pid/status")
	hot=$("$build/vmail-bench" -c "$conc" -T "$secs" -m alias -k "$work/million.txt" "unix:$work/million.sm.sock" | grep "^RESULT")
	read -r rss2 anon2 < <(awk '/VmRSS/ {r=$2} /RssAnon/ {a=$2} END {print r, a}' "/proc/$million_pid/status")
	kb=$(awk '{ n++; s += length($0) } END { printf "%.1f", s / n }' "$work/million.txt")
	{
		echo
		echo "memory: $(wc -l <"$work/million.txt") distinct aliases (keys $kb bytes on average," \
			"answers u.kowalski@mK.lublin.pl, 23-25 bytes), loaded in ${mload_s}s, looked up once in ${fill_s}s" \
			"(OK $(field ok "$fill"), TEMP $(field temp "$fill"), errors $(field errors "$fill"))"
		echo "  vmaild before: RSS ${rss0} kB; after: RSS ${rss} kB ($(awk -v r="$rss" 'BEGIN {printf "%.1f", r / 1024}') MiB), anonymous ${anon} kB"
		echo "  cache: $(m vmaild_cache_entries) entries, $(m vmaild_cache_bytes) bytes held (slabs + index)," \
			"$(m vmaild_cache_live_bytes) bytes of entries, $(m vmaild_cache_evictions_total) evictions, limit $(m vmaild_cache_max_bytes)"
		echo "  then ${secs}s of random lookups over the million: $(field lookups_per_s "$hot") lookups/s," \
			"p99 $(field p99_us "$hot") us; RSS ${rss2} kB"
	} | tee "$work/sec-memory.txt"
	# Growth: the uncached path over the million, beside the flat table of as many rows, keys
	# drawn as in (a) from the million aliases (aliasNNNNNN@mK, K = NNNNNN mod 500 + 1).
	for run in $(seq "$runs"); do
		keyfile "$work/keys-m.txt" "$(( (run + 200) * 1000000000 ))" mkeyexpr
		pgbench_run flat_alias_m "$run" "SELECT goto FROM bench_flat.alias WHERE address = lower($(mkeyexpr ':r::int' ':u::bigint' notag));"
		vb_run uncached_m "$run" -S -T "$secs" -m alias -k "$work/keys-m.txt" "unix:$work/uncached.sm.sock"
	done
	flat_m=$(rate flat_alias_m)
	{
		echo "  cache fill: $(field lookups_per_s "$fill") lookups/s," \
			"$(ratio "$(field lookups_per_s "$fill")" "$flat_m")x the flat alias baseline at 1 000 000 rows ($(printf %.0f "$flat_m")/s, the median of the runs below; target 0.5x)"
		echo
		echo "growth: alias, cache_size 0, keys as in (a) over the million aliases"
		header
		row "pgbench flat alias, 1 000 000 rows" flat_alias_m
		row "vmaild alias, cache_size 0, 1 000 000 aliases" uncached_m
		echo "  replies: $(mix uncached_m)"
		echo "  alias uncached at 1 000 000: $(ratio "$(rate uncached_m)" "$flat_m")x the flat baseline of as many rows"
	} >>"$work/sec-memory.txt"
	tail -n 8 "$work/sec-memory.txt"
	summary+=("$(cat "$work/sec-memory.txt")")
fi

echo
echo "================ $(nproc) CPUs, PostgreSQL $("$pgbin/postgres" -V | awk '{print $3}'), vmaild $sut_rev," \
	"pg_pool_size $pool, $conc connections, $runs run(s) of ${secs}s, median shown"
echo "data: $((ndom * per * 2)) addresses ($((ndom * per)) mailboxes, $((ndom * per)) aliases, $ndom domains)," \
	"loaded through the rule triggers in ${load_s}s"
for s in "${summary[@]+"${summary[@]}"}"; do echo "$s"; done
