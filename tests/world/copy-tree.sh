#!/usr/bin/env bash
# copy-tree.sh DEST: the work tree as it is (tracked and untracked files, nothing ignored) into
# DEST, emptied first: what the Debian 13 stage and the package builds work from.
set -euo pipefail
dest=${1:?usage: copy-tree.sh DEST}
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
rm -rf --one-file-system "$dest"
mkdir -p "$dest"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# --ignore-failed-read: a tracked file deleted in the work tree is left out
	git ls-files -z -co --exclude-standard |
		tar --null -T - --ignore-failed-read --warning=no-failed-read -cf - | tar -xf - -C "$dest"
else
	tar --exclude='./build*' --exclude=node_modules --exclude=./tests/artifacts -cf - . | tar -xf - -C "$dest"
fi
