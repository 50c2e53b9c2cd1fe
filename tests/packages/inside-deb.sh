#!/usr/bin/env bash
# inside-deb.sh STEP: one step of tests/packages/test_deb.sh, run inside a fresh copy of a
# release's minbase root (debroot.sh run).  The packages are in /var/tmp/pkgtest/v1 (the first
# build) and v2 (the rebuild, a higher version); pg.sh is tests/world/pg.sh.
#   install   apt-get install ./vmaild_*.deb ./vmail-panel_*.deb: users, modes, nothing started
#   lookup    a PostgreSQL, vmailctl db migrate, vmaild started directly, socketmap lookups
#   upgrade   an edited /etc/vmaild/vmaild.conf, the rebuilt packages: the edit is kept
#   purge     purge both: what they created is gone, the administrator's files and database stay
# Each check that fails says what it saw; the step stops at the first.
set -euo pipefail
t=/var/tmp/pkgtest
export DEBIAN_FRONTEND=noninteractive
apt_get() { apt-get -y -q -o Dpkg::Use-Pty=0 --no-install-recommends "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
want() { # want WHAT GOT EXPECTED
	[ "$2" = "$3" ] || fail "$1: got \"$2\", expected \"$3\""
	echo "  $1: $2"
}
mode_of() { stat -c '%a %U %G' "$1"; }
running() { grep -lx "$1" /proc/[0-9]*/comm 2>/dev/null | wc -l; }

socketmap() { # socketmap QUERY: one netstring request on vmaild's socket, the reply on stdout
	perl -MIO::Socket::UNIX -e '
		my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die "connect: $!\n";
		print $s length($ARGV[1]) . ":" . $ARGV[1] . ",";
		my $r = ""; $s->sysread($r, 4096) or die "no reply\n"; print $r, "\n";' \
		"$t/run/socketmap" "$1"
}

start_pg() { # the private PostgreSQL of the test (pg.sh, initdb once), its DSN in $dsn
	dsn=$("$t/pg.sh" start "$t/pg" | tail -1)
}

lookups() { # vmaild as installed, started directly (no systemd in the root), two lookups
	start_pg
	printf 'database = %s\n' "$dsn" >"$t/ctl.conf"
	vmailctl -c "$t/ctl.conf" db migrate
	if ! vmailctl -c "$t/ctl.conf" customer show acme >/dev/null 2>&1; then
		vmailctl -c "$t/ctl.conf" customer add acme --display "ACME"
		vmailctl -c "$t/ctl.conf" domain add acme acme.example
		vmailctl -c "$t/ctl.conf" domain confirm acme.example
	fi
	mkdir -p "$t/run"
	cat >"$t/vmaild.conf" <<CONF
database = $dsn
socketmap_listen = unix:$t/run/socketmap
user = vmail
group = vmail
socket_mode = 0666
log_target = stderr
CONF
	rm -f "$t/run/socketmap"
	vmaild -c "$t/vmaild.conf" 2>"$t/vmaild.log" &
	local pid=$! i
	for i in $(seq 100); do
		[ -S "$t/run/socketmap" ] && break
		kill -0 "$pid" 2>/dev/null || { cat "$t/vmaild.log" >&2; fail "vmaild exited"; }
		sleep 0.1
	done
	local r
	r=$(socketmap "domain acme.example")
	case $r in [0-9]*:"OK "*,) echo "  socketmap domain acme.example: $r" ;; *) fail "domain acme.example: $r" ;; esac
	r=$(socketmap "domain nowhere.example")
	case $r in [0-9]*:NOTFOUND*,) echo "  socketmap domain nowhere.example: $r" ;; *) fail "domain nowhere.example: $r" ;; esac
	kill "$pid"
	wait "$pid" || true
}

case ${1:?usage: inside-deb.sh install|lookup|upgrade|purge} in
install)
	# Like the Debian 13 stage's root: nothing a package installs may start a daemon on the
	# network this machine shares, and postgresql makes no cluster (the test starts its own).
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	apt_get update
	apt_get install postgresql-common
	sed -i 's/^#* *create_main_cluster *=.*/create_main_cluster = false/' \
		/etc/postgresql-common/createcluster.conf
	apt_get install postgresql
	cd "$t/v1"
	apt_get install ./vmaild_*.deb ./vmail-panel_*.deb
	want "vmaild installed" "$(dpkg-query -W -f '${db:Status-Status}' vmaild)" installed
	want "vmail-panel installed" "$(dpkg-query -W -f '${db:Status-Status}' vmail-panel)" installed
	want "user vmail" "$(getent passwd vmail | cut -d: -f6,7)" "/:/usr/sbin/nologin"
	want "user vmail-panel" "$(getent passwd vmail-panel | cut -d: -f6,7)" "/:/usr/sbin/nologin"
	want "/etc/vmaild/vmaild.conf" "$(mode_of /etc/vmaild/vmaild.conf)" "640 root vmail"
	want "/etc/vmaild/vmail-panel.conf" "$(mode_of /etc/vmaild/vmail-panel.conf)" "640 root vmail-panel"
	want "/run/vmaild" "$(mode_of /run/vmaild)" "755 vmail vmail"
	want "/run/vmail-panel" "$(mode_of /run/vmail-panel)" "2750 vmail-panel www-data"
	for u in vmaild.service vmaild-socketmap.socket vmail-usage-recount.timer vmail-panel.service; do
		want "$u" "$(systemctl is-enabled "$u" 2>&1 || true)" disabled
	done
	want "vmaild processes" "$(running vmaild)" 0
	want "vmail-panel processes" "$(running vmail-panel)" 0
	for f in /usr/share/man/man8/vmaild.8.gz /usr/share/man/man5/vmaild.conf.5.gz \
		/usr/share/man/man8/vmailctl.8.gz /usr/share/man/man8/vmail-panel.8.gz \
		/usr/share/vmaild/schema/grants.sql /usr/share/doc/vmaild/README.Debian; do
		[ -f "$f" ] || fail "$f is missing"
	done
	vmaild -t -c /etc/vmaild/vmaild.conf
	;;
lookup) lookups ;;
upgrade)
	before=$(dpkg-query -W -f '${Version}' vmaild)
	echo "# edited by the administrator (tests/packages/test_deb.sh)" >>/etc/vmaild/vmaild.conf
	cd "$t/v2"
	apt_get install ./vmaild_*.deb ./vmail-panel_*.deb
	after=$(dpkg-query -W -f '${Version}' vmaild)
	dpkg --compare-versions "$after" gt "$before" || fail "vmaild $before -> $after is no upgrade"
	echo "  vmaild $before -> $after"
	want "vmail-panel version" "$(dpkg-query -W -f '${Version}' vmail-panel)" "$after"
	want "the edit" "$(tail -1 /etc/vmaild/vmaild.conf)" "# edited by the administrator (tests/packages/test_deb.sh)"
	want "/etc/vmaild/vmaild.conf" "$(mode_of /etc/vmaild/vmaild.conf)" "640 root vmail"
	[ ! -e /etc/vmaild/vmaild.conf.dpkg-new ] || fail "dpkg left vmaild.conf.dpkg-new"
	lookups
	;;
purge)
	start_pg
	printf 'database = %s\n' "$dsn" >/etc/vmaild/vmailctl.conf # the administrator's own file
	install -d -o vmail -g vmail -m 0700 /var/lib/vmaild       # as vmaild.service leaves it
	apt_get purge vmail-panel vmaild
	for f in /etc/vmaild/vmaild.conf /etc/vmaild/vmail-panel.conf /var/lib/vmaild /run/vmaild \
		/run/vmail-panel /usr/sbin/vmaild /usr/bin/vmailctl /usr/sbin/vmail-panel \
		/usr/lib/sysusers.d/vmaild.conf /usr/share/vmaild; do
		[ ! -e "$f" ] || fail "$f is still there after the purge"
	done
	[ -f /etc/vmaild/vmailctl.conf ] || fail "the purge removed the administrator's vmailctl.conf"
	want "domains in the database" "$(runuser -u postgres -- psql -h "$t/pg/sock" -d vmail -tAc \
		"SELECT count(*) FROM vmail.domain WHERE name = 'acme.example'")" 1
	;;
*) fail "unknown step $1" ;;
esac
