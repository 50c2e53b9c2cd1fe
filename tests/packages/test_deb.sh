#!/usr/bin/env bash
# test_deb.sh [SUITE...]: the .deb packages of each Debian release as an administrator meets
# them (SUITE: trixie, bookworm; both by default).  Per release:
#   - vmaild and vmail-panel built with dpkg-buildpackage -b inside that release's build root
#     (tests/world/debroot.sh: trixie's is the Debian 13 stage root) from a copy of the work
#     tree with contrib/debian as debian/; lintian on the result: no errors (its warnings and
#     notes are printed as comments);
#   - the same tree rebuilt as a higher version, for the upgrade;
#   - on a fresh copy of the release's pristine minbase root: apt-get install ./*.deb, vmailctl
#     db migrate, vmaild started directly and answering socketmap lookups, the upgrade keeping
#     an edited /etc/vmaild/vmaild.conf, the purge (tests/packages/inside-deb.sh).
# TAP on stdout; the exit status is non-zero when a step failed.  Needs root and the network
# (roots built cold, apt in the fresh root).  VMAIL_KEEP_WORLD=1 keeps the work directory.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache=/var/cache/vmaild-test
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(trixie bookworm)
work=$(mktemp -d /var/tmp/vmaild-deb.XXXXXX)
n=0
failed=0
cleanup() {
	local d
	for d in "$work"/fresh-*; do # a root that is still mounted is left alone (debroot.sh says so)
		[ -d "$d" ] && ! awk -v d="$d/" 'index($2, d) == 1 { f = 1 } END { exit !f }' /proc/self/mounts &&
			rm -rf --one-file-system "$d"
	done
	[ -n "${VMAIL_KEEP_WORLD:-}" ] || rm -rf --one-file-system "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

check() { # check DESC CMD...: one TAP line; the command's output as comments when it fails
	local desc=$1
	shift
	n=$((n + 1))
	if "$@" >"$work/step$n.log" 2>&1; then
		echo "ok $n - $desc"
		return 0
	fi
	echo "not ok $n - $desc"
	tail -40 "$work/step$n.log" | sed 's/^/#   /'
	failed=$((failed + 1))
	return 1
}

root() { # root SUITE KIND debroot.sh-ARGS...
	VMAIL_ROOT_SUITE=$1 VMAIL_ROOT_KIND=$2 "$repo/tests/world/debroot.sh" "${@:3}"
}

build() { # build SUITE KIND DIR OUT [VERSION]: the packages into OUT (VERSION: a new changelog entry)
	local suite=$1 kind=$2 dir=$3 out=$4 version=${5:-} src=$3/var/tmp/vmaild-deb/src
	"$repo/tests/world/copy-tree.sh" "$src" || return 1
	rm -f "$dir"/var/tmp/vmaild-deb/*.deb "$dir"/var/tmp/vmaild-deb/*.changes
	cp -a "$src/contrib/debian" "$src/debian" || return 1
	if [ -n "$version" ]; then
		local who
		who=$(sed -n 's/^ -- \(.*>\)  .*/\1/p' "$src/debian/changelog" | head -1)
		{
			printf 'vmaild (%s) unstable; urgency=medium\n\n' "$version"
			printf '  * Rebuilt by tests/packages/test_deb.sh: the upgrade under test.\n\n'
			printf ' -- %s  %s\n\n' "$who" "$(date -R)"
			cat "$src/contrib/debian/changelog"
		} >"$src/debian/changelog"
	fi
	root "$suite" "$kind" run "$dir" sh -c \
		"cd /var/tmp/vmaild-deb/src && dpkg-buildpackage -b -us -uc -j$(nproc)" || return 1
	mkdir -p "$out" && cp "$dir"/var/tmp/vmaild-deb/*.deb "$dir"/var/tmp/vmaild-deb/*.changes "$out/"
}

lint() { # lint SUITE KIND DIR: lintian of the packages last built in DIR, failing on errors
	root "$1" "$2" run "$3" sh -c 'cd /var/tmp/vmaild-deb && lintian --fail-on error --info *.changes'
}

fresh() { # fresh SUITE: a copy of the pristine minbase root with the packages and the harness
	local suite=$1 f=$work/fresh-$1
	rm -rf --one-file-system "$f" && cp -a "$cache/$suite-minbase" "$f" || return 1
	mkdir -p "$f/var/tmp/pkgtest" && chmod 0755 "$f/var/tmp/pkgtest" &&
		cp -a "$work/$suite/v1" "$work/$suite/v2" "$f/var/tmp/pkgtest/" &&
		cp "$repo/tests/world/pg.sh" "$repo/tests/packages/inside-deb.sh" "$f/var/tmp/pkgtest/" &&
		# apt's downloads of earlier runs: the fresh root fetches only what changed since
		mkdir -p "$cache/$suite-apt" && cp "$cache/$suite-apt"/*.deb "$f/var/cache/apt/archives/" 2>/dev/null
	return 0
}

inside() { # inside SUITE STEP: inside-deb.sh STEP in the fresh root
	root "$1" minbase run "$work/fresh-$1" /var/tmp/pkgtest/inside-deb.sh "$2"
}

for suite in "${suites[@]}"; do
	case $suite in
	trixie) kind=stage dir=${VMAIL_D13_ROOT:-$cache/trixie} ;;
	bookworm) kind=build dir=$cache/bookworm-build ;;
	*) echo "test_deb.sh: unknown suite $suite (trixie, bookworm)" >&2; exit 2 ;;
	esac
	t=$SECONDS
	check "$suite: build root ($dir)" root "$suite" "$kind" root "$dir" || continue
	check "$suite: pristine minbase root" root "$suite" minbase root || continue
	version=$(sed -n '1s/^vmaild (\(.*\)).*/\1/p' "$repo/contrib/debian/changelog")
	check "$suite: dpkg-buildpackage -b (vmaild $version)" build "$suite" "$kind" "$dir" "$work/$suite/v1" || continue
	check "$suite: lintian, no errors" lint "$suite" "$kind" "$dir"
	grep -E '^[EWIN]: ' "$work/step$n.log" | sed 's/^/#   lintian: /'
	check "$suite: rebuilt as $version+pkgtest1" build "$suite" "$kind" "$dir" "$work/$suite/v2" "$version+pkgtest1" || continue
	check "$suite: a fresh copy of the minbase root" fresh "$suite" || continue
	for step in install lookup upgrade purge; do
		check "$suite: $step (inside-deb.sh)" inside "$suite" "$step" || break
		sed -n 's/^  /#   /p' "$work/step$n.log"
	done
	cp -n "$work/fresh-$suite"/var/cache/apt/archives/*.deb "$cache/$suite-apt/" 2>/dev/null
	rm -rf --one-file-system "$work/fresh-$suite"
	echo "# $suite: $((SECONDS - t)) s"
done
echo "1..$n"
echo "# packages: $((n - failed)) passed, $failed failed"
[ "$failed" = 0 ]
