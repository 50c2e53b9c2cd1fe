#!/usr/bin/env bash
# run-all.sh: every test of vmaild, from a fresh Debian 12 machine, on Debian 12 and Debian 13.
#
#   tests/run-all.sh            everything, as root (what CI runs): Debian 12, then Debian 13
#   tests/run-all.sh quick      build + unit tests + SQL suites only, on this machine
#   tests/run-all.sh debian12   everything but the Debian 13 stage
#   tests/run-all.sh debian13   only the Debian 13 stage
#   tests/run-all.sh debian13-inside   what the Debian 13 stage runs inside its root
#   tests/run-all.sh packages   only the .deb packages of Debian 13 and Debian 12
#
# Installs the packages it needs, builds twice (developer build with -Werror, and ASan+UBSan),
# runs the Check unit tests under both, starts a private PostgreSQL for the database tests,
# runs the SQL rule tests and every end-to-end suite (real PostgreSQL, Postfix, Dovecot,
# dnsmasq, Chromium, each started by its test), the fuzzers for a bounded time.  The Debian 13
# stage then builds or reuses a Debian 13 root (tests/world/debroot.sh, in $VMAIL_D13_ROOT or
# /var/cache/vmaild-test/trixie), copies the work tree into it and runs this script there in
# mode debian13-inside: both builds with gcc 14, unit tests, SQL suites and every end-to-end
# suite but those on the list d13_cannot_run below.  Last, the packages: built in each release's
# root, installed, upgraded and purged on a fresh one (tests/packages/test_deb.sh).  Prints one
# closing line
# "N passed, N failed".  In CI (CI=true) a skipped test counts as failed; in the Debian 13
# root it always does.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
mode=${1:-all}
case $mode in
all | quick | debian12 | debian13 | debian13-inside | packages) ;;
*) echo "usage: tests/run-all.sh [all|quick|debian12|debian13|packages]" >&2; exit 2 ;;
esac
jobs=$(nproc 2>/dev/null || echo 2)
fuzz_seconds=${VMAIL_FUZZ_SECONDS:-30}
passed=0
failed=0
skipped=0
failures=()
t_start=$(date +%s)

section() { printf '\n=== %s (%ss)\n' "$*" $(( $(date +%s) - t_start )); }
record() { # record NAME STATUS
	if [ "$2" = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$1"); fi
}

if [ "$(id -u)" != 0 ]; then
	echo "run-all.sh: run as root (it installs packages and starts private PostgreSQL, Postfix and Dovecot instances)" >&2
	exit 2
fi

# Suites the Debian 13 stage cannot run, as "name: reason".  Each has its line in the section
# "Cannot run on Debian 13" of tests/README.md and the README names no other, else the stage
# fails: the list does not grow without a written note.
d13_cannot_run=(
	"test_dovecot_dict: Dovecot 2.4 removed dict passdb/userdb and the dict quota backend (the SQL path, test_dovecot_sql, covers 2.4)"
	"test_quota_recount: its recount runs through Dovecot 2.3's dict quota; 2.4 checks the limit against its own count quota and quota_clone rewrites vmaild's copy at the mailbox's next change (docs/operations.md)"
)
d13_reason() { # d13_reason NAME: print why NAME cannot run on Debian 13; false if it can
	local e
	for e in "${d13_cannot_run[@]}"; do
		[ "${e%%:*}" = "$1" ] && { echo "${e#*: }"; return 0; }
	done
	return 1
}

if [ "$mode" != debian13-inside ]; then
	section "dependencies"
	scripts/install-deps.sh || { echo "run-all.sh: installing dependencies failed" >&2; exit 1; }
fi

# The private servers live under /tmp, which the postgres, postfix and dovecot users can reach
# even when the checkout sits in a 0700 home directory.
work=$(mktemp -d /tmp/vmail-tests.XXXXXX)
chmod 0755 "$work"
cleanup() {
	[ -d "$work/pg" ] && tests/world/pg.sh stop "$work/pg" >/dev/null 2>&1
	[ -n "${VMAIL_KEEP_WORLD:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

build() { # build DIR CMAKE-ARGS...
	local dir=$1
	shift
	cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVMAIL_DEVELOPER=ON "$@" >"$dir.log" 2>&1 &&
		cmake --build "$dir" -j"$jobs" >>"$dir.log" 2>&1
}

ctest_count() { # ctest_count NAME DIR: run the unit tests, record each one
	local name=$1 dir=$2 out
	out=$( (cd "$dir" && ctest -j"$jobs" --output-on-failure --timeout 300) 2>&1)
	echo "$out" | grep -E 'Test +#|tests passed|Failed|\*\*\*' | sed 's/^/  /'
	local n_ok n_bad
	n_ok=$(echo "$out" | grep -cE 'Test +#.*Passed')
	n_bad=$(echo "$out" | grep -cE 'Test +#.*(Failed|\*\*\*|Not Run)')
	passed=$((passed + n_ok))
	failed=$((failed + n_bad))
	if [ "$n_bad" != 0 ] || [ "$n_ok" = 0 ]; then
		failures+=("$name")
		[ "$n_ok" = 0 ] && [ "$n_bad" = 0 ] && failed=$((failed + 1))
		echo "$out" | tail -60
	fi
}

pyrun() { # pyrun NAME FILE...: run Python suites, add up their counts
	local name=$1 out rc
	shift
	out=$(python3 tests/pyrun.py "$@" 2>&1)
	rc=$?
	echo "$out" | grep -vE '^\s*$' | sed 's/^/  /' | tail -400
	local line
	line=$(echo "$out" | grep -E '^pyrun: passed=' | tail -1)
	if [ -z "$line" ]; then
		failed=$((failed + 1))
		failures+=("$name (no result)")
		return
	fi
	local p f s
	# pyrun.py prints passed=-1 for a suite whose setUpClass failed (no test ran, one error):
	# a bare number is expected below, and a negative one counts as none.
	p=$(echo "$line" | sed -E 's/.*passed=(-?[0-9]+).*/\1/')
	f=$(echo "$line" | sed -E 's/.*failed=([0-9]+).*/\1/')
	s=$(echo "$line" | sed -E 's/.*skipped=([0-9]+).*/\1/')
	[ "$p" -lt 0 ] && p=0
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
	if [ "$rc" != 0 ] || [ "$f" != 0 ]; then failures+=("$name"); fi
	if [ "$s" != 0 ]; then failures+=("$name: $s skipped"); fi
}

this_machine() { # the build, unit, SQL and end-to-end tests on this machine (or in the root)
	local suite name reason
	section "releases under test"
	echo "  $(. /etc/os-release && echo "$PRETTY_NAME"), gcc $(gcc -dumpfullversion)," \
		"PostgreSQL $(ls /usr/lib/postgresql | sort -V | tail -1)," \
		"Postfix $(postconf -d -h mail_version 2>/dev/null), Dovecot $(dovecot --version 2>/dev/null)"
	section "build (developer, -Werror)"
	build build
	record "build" $? || true
	if [ ! -x build/vmaild ]; then
		tail -50 build.log
		return
	fi

	section "private PostgreSQL for the database tests"
	export VMAIL_TEST_PGDIR="$work/pg"
	VMAIL_TEST_DSN=$(tests/world/pg.sh start "$VMAIL_TEST_PGDIR" | tail -1)
	export VMAIL_TEST_DSN
	export VMAIL_BUILD_DIR="$repo/build"
	export VMAIL_PWHASH_COST=test
	echo "  $VMAIL_TEST_DSN"

	section "unit tests (Check)"
	ctest_count "unit tests" build

	section "SQL: rules R1-R10, lookups, upgrade"
	pyrun "sql" tests/sql/test_*.py

	section "SQL again, on version-11 databases upgraded by vmailctl db migrate"
	VMAIL_TEST_SCHEMA=upgrade pyrun "sql (upgraded v11)" tests/sql/test_rules.py tests/sql/test_lookups.py tests/sql/test_route.py

	[ "$mode" = quick ] && return
	for suite in tests/e2e/test_*.py; do
		name=$(basename "$suite" .py)
		if [ "$mode" = debian13-inside ] && reason=$(d13_reason "$name"); then
			printf '\n  not run on Debian 13: %s: %s\n' "$name" "$reason"
			continue
		fi
		section "end to end: $name"
		pyrun "$name" "$suite"
	done

	section "build (ASan + UBSan)"
	build build-asan -DVMAIL_SANITIZE=ON
	record "build-asan" $?
	if [ -d build-asan ]; then
		section "unit tests under ASan + UBSan"
		ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest_count "unit tests (sanitizers)" build-asan
		# Every end-to-end suite again with the sanitizer build: the daemons' own checks
		# (world.py fails a test whose vmaild log holds an ASan, LeakSanitizer or UBSan
		# report; the panel's tests require exit status 0, which a leak would change).
		# Once is enough: not again in the Debian 13 root.
		[ "$mode" = debian13-inside ] && return
		for suite in tests/e2e/test_*.py; do
			[ "$(basename "$suite")" = test_systemd_units.py ] && continue
			section "end to end under ASan + UBSan: $(basename "$suite" .py)"
			VMAIL_BUILD_DIR="$repo/build-asan" ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
				UBSAN_OPTIONS=print_stacktrace=1 \
				pyrun "$(basename "$suite" .py) (sanitizers)" "$suite"
		done
	fi
}

fuzzers() {
	local fz name corpus dict
	section "fuzzers (libFuzzer, ${fuzz_seconds}s each)"
	if CC=clang build build-fuzz -DVMAIL_FUZZ=ON -DBUILD_TESTING=OFF; then
		for fz in build-fuzz/fuzz_*; do
			[ -x "$fz" ] || continue
			name=$(basename "$fz")
			corpus="$work/corpus-$name"
			mkdir -p "$corpus"
			cp -r "tests/fuzz/corpus/${name#fuzz_}/." "$corpus/" 2>/dev/null || true
			dict=""
			[ -f "tests/fuzz/${name#fuzz_}.dict" ] && dict="-dict=tests/fuzz/${name#fuzz_}.dict"
			if "$fz" -max_total_time="$fuzz_seconds" -print_final_stats=1 $dict "$corpus" >"$work/$name.log" 2>&1; then
				echo "  PASS $name: $(grep -E 'stat::number_of_executed_units' "$work/$name.log" | awk '{print $2}') executions"
				record "$name" 0
			else
				echo "  FAIL $name"
				tail -30 "$work/$name.log"
				record "$name" 1
			fi
		done
	else
		tail -30 build-fuzz.log
		record "build-fuzz" 1
	fi
}

# The Debian 13 stage.  tests/world/debroot.sh runs in the background and is waited for, so a
# SIGINT or SIGTERM to this script reaches it at once (as SIGTERM: a background job ignores
# SIGINT) and it kills what runs in the root and unmounts before this script exits.
d13_pid=
on_signal() {
	if [ -n "$d13_pid" ]; then
		kill -TERM "$d13_pid" 2>/dev/null
		wait "$d13_pid"
	fi
	exit 130
}
trap on_signal INT TERM

d13() { # d13 LOG ARGS...: tests/world/debroot.sh ARGS, its output shown indented and kept in LOG
	local log=$1 rc=0 tail_pid
	shift
	: >"$log"
	tests/world/debroot.sh "$@" >"$log" 2>&1 &
	d13_pid=$!
	tail -n +1 -f --pid="$d13_pid" "$log" | sed -u 's/^/  /' &
	tail_pid=$!
	wait "$d13_pid" || rc=$?
	d13_pid=
	wait "$tail_pid"
	return "$rc"
}

d13_readme_check() { # the cannot-run list and tests/README.md's section name the same suites
	local listed noted e rc=0
	listed=$(for e in "${d13_cannot_run[@]}"; do echo "${e%%:*}"; done | sort)
	noted=$(awk '/^## /{on = ($0 ~ /^## Cannot run on Debian 13/); next}
		on && match($0, /^- `test_[a-z0-9_]+`/) { print substr($0, 4, RLENGTH - 4) }' tests/README.md | sort)
	for e in $(comm -23 <(echo "$listed") <(echo "$noted")); do
		echo "  $e is on run-all.sh's d13_cannot_run but has no line in tests/README.md (Cannot run on Debian 13)"
		rc=1
	done
	for e in $(comm -13 <(echo "$listed") <(echo "$noted")); do
		echo "  tests/README.md (Cannot run on Debian 13) names $e, which is not on run-all.sh's d13_cannot_run"
		rc=1
	done
	for e in $listed; do
		[ -f "tests/e2e/$e.py" ] || { echo "  d13_cannot_run names $e, which is no suite in tests/e2e"; rc=1; }
	done
	[ "$rc" = 0 ] && echo "  ${#d13_cannot_run[@]} suite(s) cannot run on Debian 13, each with its note"
	return "$rc"
}

d13_source() { tests/world/copy-tree.sh "$1"; } # d13_source DEST

d13_results() { # d13_results LOG: add the inner run's counts and failures to this run's
	local log=$1 line name
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
	if [ -z "$line" ]; then
		failed=$((failed + 1))
		failures+=("debian13: no result line from run-all.sh debian13-inside")
	else
		passed=$((passed + ${line%% passed*}))
		line=${line#*, }
		failed=$((failed + ${line%% failed}))
	fi
	while IFS= read -r line; do
		failures+=("debian13: ${line#  failed: }")
	done < <(sed -n '/^=== summary/,$p' "$log" | grep '^  failed: ')
	# Every suite not on the list ran (a suite that did not would otherwise go unnoticed).
	for suite in tests/e2e/test_*.py; do
		name=$(basename "$suite" .py)
		d13_reason "$name" >/dev/null && continue
		if ! grep -qE "^=== end to end: $name \(" "$log"; then
			failed=$((failed + 1))
			failures+=("debian13: $name did not run")
		fi
	done
}

debian13_stage() {
	local root t rc log="$work/debian13.log" d13_lock
	root=$(realpath -m "${VMAIL_D13_ROOT:-/var/cache/vmaild-test/trixie}")
	section "Debian 13: cannot-run list against tests/README.md"
	d13_readme_check
	record "debian13: cannot-run list and tests/README.md" $?

	section "Debian 13 root ($root)"
	# One lock for the whole stage: another run waits until this one has left the root.
	mkdir -p "$(dirname "$root")"
	exec {d13_lock}>"$root.lock"
	if ! flock -n "$d13_lock"; then
		echo "  $root is in use by another run; waiting"
		flock "$d13_lock" & # in the background: a signal must not wait for the lock
		wait $!
	fi
	export VMAIL_D13_LOCKED=1
	t=$SECONDS
	d13 "$work/debian13-root.log" root "$root"
	rc=$?
	echo "  $((SECONDS - t)) s"
	record "debian13: root" "$rc"
	if [ "$rc" = 0 ]; then
		section "Debian 13: source"
		t=$SECONDS
		d13_source "$root/src/vmaild"
		rc=$?
		echo "  $(du -sh "$root/src/vmaild" | cut -f1) copied to $root/src/vmaild, $((SECONDS - t)) s"
		record "debian13: source" "$rc"
	fi
	if [ "$rc" = 0 ]; then
		section "Debian 13: tests/run-all.sh debian13-inside in the root"
		t=$SECONDS
		d13 "$log" run "$root" /src/vmaild/tests/run-all.sh debian13-inside
		rc=$?
		echo "  inside the root: $((SECONDS - t)) s, status $rc"
		d13_results "$log"
		if [ "$rc" != 0 ] && ! printf '%s\n' "${failures[@]}" | grep -q '^debian13: '; then
			failed=$((failed + 1))
			failures+=("debian13: run-all.sh debian13-inside ended with status $rc")
		fi
	fi
	unset VMAIL_D13_LOCKED
	exec {d13_lock}>&-
}

packages_stage() { # every TAP line of test_deb.sh counts as a test
	local log="$work/packages.log" rc line
	section "Packages: tests/packages/test_deb.sh trixie bookworm"
	tests/packages/test_deb.sh trixie bookworm >"$log" 2>&1 &
	wait $!
	rc=$?
	sed 's/^/  /' "$log"
	while IFS= read -r line; do
		case $line in
		"ok "*) passed=$((passed + 1)) ;;
		"not ok "*) failed=$((failed + 1)); failures+=("packages: ${line#not ok * - }") ;;
		esac
	done <"$log"
	if [ "$rc" != 0 ] && ! grep -q '^not ok ' "$log"; then
		failed=$((failed + 1))
		failures+=("packages: test_deb.sh ended with status $rc")
	fi
}

case $mode in
all | debian12)
	this_machine
	fuzzers
	if [ "$mode" = all ]; then
		debian13_stage
		packages_stage
	fi
	;;
quick | debian13-inside) this_machine ;;
debian13) debian13_stage ;;
packages) packages_stage ;;
esac

section "summary"
if { [ "${CI:-}" = true ] || [ "$mode" = debian13-inside ]; } && [ "$skipped" != 0 ]; then
	echo "  $skipped skipped tests count as failed (CI, or the Debian 13 stage)"
	failed=$((failed + skipped))
fi
for f in "${failures[@]}"; do echo "  failed: $f"; done
echo "elapsed $(( $(date +%s) - t_start ))s"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
