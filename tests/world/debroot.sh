#!/usr/bin/env bash
# debroot.sh: Debian roots kept between runs in a cache directory, built with debootstrap.
# Which root is $VMAIL_ROOT_SUITE (trixie, the default, or bookworm) and $VMAIL_ROOT_KIND:
#   stage    the root tests/run-all.sh's Debian 13 stage runs in (trixie only: Dovecot 2.4,
#            Postfix 3.10, PostgreSQL 17, gcc 14), which also builds trixie's packages
#   build    what building the .deb packages needs (tests/packages/test_deb.sh)
#   minbase  debootstrap's minbase and nothing else: copied, it is the fresh machine the
#            packages are installed on
#   debroot.sh root [DIR]      build DIR from scratch (debootstrap) or bring it to the package
#                               list below; idempotent, about 3 s when nothing is missing
#   debroot.sh run DIR CMD...  run CMD inside DIR (/proc and /dev mounted, a clean
#                               environment); afterwards, also on failure or SIGINT/SIGTERM, kill
#                               every process whose root is DIR and unmount; exits with CMD's status
# DIR defaults to $VMAIL_D13_ROOT, else /var/cache/vmaild-test/trixie for the stage root, and
# /var/cache/vmaild-test/SUITE-KIND for the others.  Both take the lock DIR.lock,
# so two runs never share a root (the second waits); a caller holding that lock itself (run-all.sh,
# across a whole stage) says so with VMAIL_D13_LOCKED=1.  Needs root and, to build, the network.
set -euo pipefail

cmd=${1:?usage: debroot.sh root [DIR] | run DIR CMD...}
shift
suite=${VMAIL_ROOT_SUITE:-trixie}
kind=${VMAIL_ROOT_KIND:-stage}
case $suite/$kind in
trixie/stage) default_dir=${VMAIL_D13_ROOT:-/var/cache/vmaild-test/trixie} ;;
trixie/build | trixie/minbase | bookworm/build | bookworm/minbase)
	default_dir=/var/cache/vmaild-test/$suite-$kind ;;
*) echo "debroot.sh: no root $kind of $suite (stage: trixie; build, minbase: trixie, bookworm)" >&2
   exit 2 ;;
esac
dir=${1:-$default_dir}
[ $# -gt 0 ] && shift
dir=$(realpath -m "$dir")
[ "$dir" != / ] || { echo "debroot.sh: refusing / as the root" >&2; exit 2; }
mirror=http://deb.debian.org/debian

# Everything the Debian 13 stage needs inside the root: scripts/install-deps.sh's Debian 12 list
# without clang (no fuzzers in the root) and with what the remaining suites call (man, systemd),
# and what building and checking the packages calls (debhelper, lintian).
build_pkgs=(build-essential cmake pkgconf libevent-dev libpq-dev libsodium-dev libcrypt-dev
            libc-ares-dev uuid-dev debhelper lintian)
case $kind in
stage)
	pkgs=("${build_pkgs[@]}" check python3 postgresql postfix dovecot-core dovecot-imapd dovecot-lmtpd
	      dovecot-pop3d dovecot-pgsql dovecot-sieve openssl ca-certificates systemd dnsmasq-base man-db nginx
	      chromium nodejs npm) ;; # test_panel_browser: about 100 s more on a cold build, 500 packages
build) pkgs=("${build_pkgs[@]}") ;;
minbase) pkgs=() ;;
esac
# What the root's own environment may carry over from the caller's: nothing else leaks in (the
# host's PATH, a build directory or DSN of the Debian 12 stage would be wrong inside).
passenv=(CI VMAIL_KEEP_WORLD)
# The stamp is written last: without it (or with another list) the root is built or completed.
stamp=$dir/.vmaild-root-stamp
want=$(printf '%s\n' "recipe 2" "$suite" "$kind" "${pkgs[@]}" | sha256sum | cut -d' ' -f1)

lock() {
	if [ -z "${VMAIL_D13_LOCKED:-}" ]; then
		mkdir -p "$(dirname "$dir")"
		exec 9>"$dir.lock"
		if ! flock -n 9; then
			echo "debroot.sh: $dir is in use by another run; waiting" >&2
			in_bg flock 9 # the lock belongs to fd 9's open file, shared with flock
		fi
	fi
	owned=1
}

root_pids() { # the processes whose root directory is DIR
	local p
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/root" 2>/dev/null)" = "$dir" ] && echo "${p#/proc/}"
	done
	return 0
}

mounted_under() { # mount points below DIR, deepest first
	awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r
}

teardown() { # kill what runs in the root (TERM, then KILL), then unmount; idempotent
	local i pids
	for i in 1 2 3 4 5 6; do
		pids=$(root_pids)
		[ -z "$pids" ] && break
		# shellcheck disable=SC2086
		if [ "$i" -le 3 ]; then kill -TERM $pids 2>/dev/null; else kill -KILL $pids 2>/dev/null; fi
		sleep 1
	done
	for m in dev proc; do
		mountpoint -q "$dir/$m" && umount -R "$dir/$m"
	done
	if [ -n "$(mounted_under)" ]; then
		echo "debroot.sh: still mounted under $dir: $(mounted_under | tr "\n" " ")" >&2
		return 1
	fi
}

mount_root() {
	mountpoint -q "$dir/proc" || mount --bind /proc "$dir/proc"
	# --rbind, not a fresh devtmpfs: PostgreSQL 17's posix shared memory needs /dev/shm.
	mountpoint -q "$dir/dev" || mount --rbind /dev "$dir/dev"
}

inside() { # inside CMD...: run CMD in the mounted root with a clean environment
	local envs=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
	            LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive) v
	for v in "${passenv[@]}"; do
		[ -n "${!v+set}" ] && envs+=("$v=${!v}")
	done
	chroot "$dir" /usr/bin/env -i "${envs[@]}" "$@"
}

# Cleanup on every way out; the work runs in the background and is waited for, so SIGTERM from
# run-all.sh is handled at once, not when the command ends.
owned=
on_exit() { [ -z "$owned" ] || teardown || true; } # never tear down a root another run holds
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
in_bg() { # in_bg CMD...: run CMD in the background, wait, return its status
	"$@" &
	local pid=$! rc=0
	wait "$pid" || rc=$?
	return "$rc"
}

apt_in() { inside apt-get -y -q -o Dpkg::Use-Pty=0 --no-install-recommends "$@"; }

debootstrap_root() {
	# debootstrap deletes DIR/debootstrap when it has finished: its presence means an
	# interrupted run, which is started again from nothing.
	if [ -d "$dir" ] && { [ -d "$dir/debootstrap" ] || [ ! -x "$dir/usr/bin/apt-get" ]; }; then
		echo "root: $dir is half built; starting again"
		teardown
		rm -rf --one-file-system "$dir"
	fi
	[ -x "$dir/usr/bin/apt-get" ] && return
	if ! command -v debootstrap >/dev/null || [ ! -f /usr/share/keyrings/debian-archive-keyring.gpg ]; then
		echo "root: installing debootstrap on this machine"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			debootstrap debian-archive-keyring >/dev/null
	fi
	mkdir -p "$dir"
	echo "root: debootstrap $suite (minbase) into $dir"
	in_bg debootstrap --variant=minbase "$suite" "$dir" "$mirror" >"$dir.debootstrap.log" 2>&1 || {
		tail -20 "$dir.debootstrap.log" >&2
		return 1
	}
}

install_packages() { # called in an `||` list, where errexit is off: every step says so itself
	# Package scripts would start the daemons on the network this machine shares with the
	# Debian 12 stage: policy-rc.d refuses every start, Postfix stays unconfigured and
	# postgresql makes no cluster (tests start private instances of all three).
	printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d" &&
		chmod 755 "$dir/usr/sbin/policy-rc.d" &&
		echo "postfix postfix/main_mailer_type select No configuration" |
		chroot "$dir" debconf-set-selections || return 1
	mount_root || return 1
	in_bg apt_in update || return 1
	if [ "$kind" != stage ]; then
		in_bg apt_in install "${pkgs[@]}" && in_bg apt_in clean || return 1
		teardown
		return
	fi
	in_bg apt_in install postgresql-common || return 1
	sed -i 's/^#* *create_main_cluster *=.*/create_main_cluster = false/' \
		"$dir/etc/postgresql-common/createcluster.conf" &&
		grep -q '^create_main_cluster = false' "$dir/etc/postgresql-common/createcluster.conf" ||
		return 1
	in_bg apt_in install "${pkgs[@]}" || return 1
	in_bg apt_in clean || return 1
	teardown
}

host_cas() { # the root trusts the certificate authorities this machine added locally
	# (behind a TLS-inspecting proxy, npm in the root reaches its registry only so)
	local cas=/usr/local/share/ca-certificates
	[ -d "$cas" ] || return 0
	[ -x "$dir/usr/sbin/update-ca-certificates" ] || return 0 # minbase: apt speaks plain http
	diff -rq "$cas" "$dir$cas" >/dev/null 2>&1 && return 0
	rm -rf "${dir:?}$cas" && cp -a "$cas" "$dir$cas" &&
		chroot "$dir" update-ca-certificates --fresh >/dev/null
}

cmd_root() {
	local t0=$SECONDS
	lock
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ ! -d "$dir/debootstrap" ]; then
		host_cas
		echo "root: cached ($dir), $((SECONDS - t0)) s"
		return
	fi
	local how=cold
	[ -x "$dir/usr/bin/apt-get" ] && [ ! -d "$dir/debootstrap" ] && how="package list changed"
	teardown
	rm -f "$stamp"
	debootstrap_root
	local t1=$SECONDS
	[ "$kind" = minbase ] || install_packages >"$dir.install.log" 2>&1 || { tail -30 "$dir.install.log" >&2; return 1; }
	host_cas
	echo "$want" >"$stamp"
	echo "root: $how: debootstrap $((t1 - t0)) s, packages $((SECONDS - t1)) s, total $((SECONDS - t0)) s"
}

cmd_run() {
	[ $# -gt 0 ] || { echo "usage: debroot.sh run DIR CMD..." >&2; exit 2; }
	[ -f "$stamp" ] || { echo "debroot.sh: $dir is not a finished root (run: debroot.sh root $dir)" >&2; exit 2; }
	lock
	teardown # what an earlier run killed with SIGKILL may have left
	# Nothing runs in the root now: what earlier runs' tests left in its /tmp goes.
	find "$dir/tmp" -xdev -mindepth 1 -delete
	mount_root
	local rc=0
	in_bg inside "$@" || rc=$?
	return "$rc"
}

case $cmd in
root) cmd_root ;;
run) cmd_run "$@" ;;
*) echo "debroot.sh: unknown command $cmd (root, run)" >&2; exit 2 ;;
esac
