#!/usr/bin/env bash
# install-deps.sh: the Debian 12 packages vmaild needs to build, run and be tested.
# Installs only what is missing; safe to run again.  Needs root.
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang libclang-rt-14-dev
      libevent-dev libpq-dev libsodium-dev libcrypt-dev libc-ares-dev uuid-dev check
      postgresql postgresql-contrib postfix
      dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd dovecot-pgsql dovecot-sieve
      dnsmasq-base chromium python3 ca-certificates openssl systemd
      nginx-light) # test_panel_http: contrib/nginx in front of the panel
command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "install-deps: installing ${missing[*]}"
	# Postfix asks a question at install time; "No configuration" leaves /etc/postfix empty.
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The distribution's own instances are not used: tests and the demo start private ones.
for svc in postgresql postfix dovecot; do
	systemctl disable --now "$svc" >/dev/null 2>&1 || true
done
