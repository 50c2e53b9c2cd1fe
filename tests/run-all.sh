#!/usr/bin/env bash
# run-all.sh: every test of vmaild, from a fresh Debian 12 machine.
#
#   tests/run-all.sh            everything, as root (what CI runs)
#   tests/run-all.sh quick      build + unit tests + SQL suites only
#
# Installs the packages it needs, builds twice (developer build with -Werror, and ASan+UBSan),
# runs the Check unit tests under both, starts a private PostgreSQL for the database tests,
# runs the SQL rule tests and every end-to-end suite (real PostgreSQL, Postfix, Dovecot,
# dnsmasq, Chromium, each started by its test), the fuzzers for a bounded time, and prints
# one closing line "N passed, N failed".  In CI (CI=true) a skipped test counts as failed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
mode=${1:-all}
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

section "dependencies"
scripts/install-deps.sh || { echo "run-all.sh: installing dependencies failed" >&2; exit 1; }

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

section "build (developer, -Werror)"
build build
record "build" $? || true
if [ ! -x build/vmaild ]; then
	tail -50 build.log
	echo "0 passed, 1 failed"
	exit 1
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
VMAIL_TEST_SCHEMA=upgrade pyrun "sql (upgraded v11)" tests/sql/test_rules.py tests/sql/test_lookups.py

if [ "$mode" != quick ]; then
	for suite in tests/e2e/test_*.py; do
		section "end to end: $(basename "$suite" .py)"
		pyrun "$(basename "$suite" .py)" "$suite"
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
		for suite in tests/e2e/test_*.py; do
			[ "$(basename "$suite")" = test_systemd_units.py ] && continue
			section "end to end under ASan + UBSan: $(basename "$suite" .py)"
			VMAIL_BUILD_DIR="$repo/build-asan" ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
				UBSAN_OPTIONS=print_stacktrace=1 \
				pyrun "$(basename "$suite" .py) (sanitizers)" "$suite"
		done
	fi

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
fi

section "summary"
if [ "${CI:-}" = true ] && [ "$skipped" != 0 ]; then
	echo "  $skipped skipped tests count as failed in CI"
	failed=$((failed + skipped))
fi
for f in "${failures[@]}"; do echo "  failed: $f"; done
echo "elapsed $(( $(date +%s) - t_start ))s"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
