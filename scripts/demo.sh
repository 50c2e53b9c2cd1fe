#!/usr/bin/env bash
# demo.sh: the main job on a fresh Debian 12 machine.  Installs the packages, builds, starts a
# private PostgreSQL, migrates the schema, loads a demo customer, then runs vmaild in the
# foreground (Ctrl-C stops it).  Everything lives in $VMAIL_DEMO_DIR (default
# /var/tmp/vmaild-demo), a place the postgres user can reach.  Run it again: it reuses what
# is there.  "scripts/demo.sh stop" stops the demo's PostgreSQL.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
dir=${VMAIL_DEMO_DIR:-/var/tmp/vmaild-demo}

if [ "${1:-}" = stop ]; then
	tests/world/pg.sh stop "$dir/pg"
	exit 0
fi
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (packages, private PostgreSQL, privilege drop)" >&2; exit 2; }

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
echo "demo: built build/vmaild, build/vmailctl"

mkdir -p "$dir/run"
chmod 0755 "$dir"
dsn=$(tests/world/pg.sh start "$dir/pg" | tail -1)
conf="$dir/vmaild.conf"
cat >"$conf" <<CONF
# vmaild demo configuration (see docs/vmaild.conf.5)
database = $dsn
socketmap_listen = unix:$dir/run/socketmap, inet:127.0.0.1:7225
user = nobody
group = nogroup
socket_mode = 0666
log_level = info
CONF
ctl() { build/vmailctl -c "$conf" --schema-dir "$repo/schema" "$@"; }
ctl db migrate

if ! ctl customer show acme >/dev/null 2>&1; then
	echo "demo: loading customer acme"
	export VMAIL_PWHASH_COST=${VMAIL_PWHASH_COST:-interactive}
	ctl customer add acme --display "ACME sp. z o.o."
	ctl domain add acme acme.lublin.pl
	ctl domain add acme acme.com.pl
	ctl domain confirm acme.lublin.pl
	ctl domain confirm acme.com.pl
	printf 'jan-demo-password\n' | ctl shell add acme jan --uid 20001 --gid 20001 --home /home/jan \
		--disk-limit 100M --mail-domain acme.lublin.pl --password-stdin
	printf 'ewa-demo-password\n' | ctl shell add acme ewa --uid 20002 --gid 20002 --home /home/ewa \
		--disk-limit 200M --mail-domain acme.lublin.pl --password-stdin
	ctl alias add info@acme.lublin.pl jan --owner jan
	ctl alias add kontakt@acme.com.pl jan --owner jan
	printf 'biuro-demo-password\n' | ctl mailbox add biuro@acme.lublin.pl --owner jan --quota 20M --password-stdin
	ctl alias add @acme.com.pl ewa --admin
	ctl usage set jan 12M
fi

echo
ctl customer list
echo
ctl shell list
echo
ctl alias list
echo
ctl mailbox list
echo
ctl usage show jan
cat <<INFO

demo: vmaild answers Postfix on unix:$dir/run/socketmap and inet:127.0.0.1:7225, e.g.
  postmap -q Info+Tag@ACME.lublin.pl socketmap:inet:127.0.0.1:7225:alias
  postmap -q acme.com.pl socketmap:inet:127.0.0.1:7225:domain
demo: administer with  build/vmailctl -c $conf --help
demo: starting vmaild in the foreground (Ctrl-C to stop)
INFO
exec build/vmaild -c "$conf"
