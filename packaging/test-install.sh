#!/usr/bin/env bash
# Installs the attestd and attestd-issuer .debs into a clean Debian 12
# (bookworm) minbase root with apt, so that their Depends are resolved from
# the mirror, checks what they installed, then purges them and checks that
# nothing of theirs is left.
#
#   packaging/test-install.sh [DEB...]
#
# Without arguments it takes the newest attestd_*.deb and attestd-issuer_*.deb
# in $CARGO_TARGET_DIR/debian (target/debian). Needs root (debootstrap,
# chroot) and the network to the Debian mirror ($DEBIAN_MIRROR). The pristine
# root is built once and cached in $CARGO_TARGET_DIR/pkg-test/bookworm
# (remove it to rebuild); each run works on a fresh copy of it (an overlay
# mount where the kernel allows one, else a copy), which is thrown away.
# Prints one `ok`/`FAIL` line per check and exits non-zero if any failed.
set -euo pipefail

cd "$(dirname "$0")/.."
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
CACHE="$TARGET_DIR/pkg-test/bookworm"

[ "$(id -u)" = 0 ] || { echo "test-install: must run as root (debootstrap, chroot)" >&2; exit 2; }

DEBS=("$@")
if [ ${#DEBS[@]} -eq 0 ]; then
	for name in attestd attestd-issuer; do
		deb=$(ls -t "$TARGET_DIR"/debian/"${name}"_*.deb 2>/dev/null | head -n 1 || true)
		[ -n "$deb" ] || { echo "test-install: no ${name}_*.deb in $TARGET_DIR/debian (run packaging/build-deb.sh)" >&2; exit 2; }
		DEBS+=("$deb")
	done
fi
for deb in "${DEBS[@]}"; do [ -f "$deb" ] || { echo "test-install: $deb: no such file" >&2; exit 2; }; done

if ! command -v debootstrap >/dev/null 2>&1; then
	echo "test-install: installing debootstrap" >&2
	apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null
fi

# The pristine root: debootstrap once, then cached. A half-built one (no
# marker) is started over.
if [ ! -f "$CACHE/.attestd-test-root" ]; then
	echo "test-install: debootstrap bookworm (minbase) into $CACHE" >&2
	rm -rf "$CACHE"
	mkdir -p "$CACHE"
	debootstrap --variant=minbase bookworm "$CACHE" "$MIRROR" >"$CACHE.log" 2>&1 \
		|| { tail -n 20 "$CACHE.log" >&2; exit 1; }
	touch "$CACHE/.attestd-test-root"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/attestd-test-install.XXXXXX")
ROOT="$WORK/root"
MOUNTS=()
cleanup() {
	local i
	for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
		umount "${MOUNTS[$i]}" 2>/dev/null || umount -l "${MOUNTS[$i]}" 2>/dev/null || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$ROOT" "$WORK/upper" "$WORK/work"
if mount -t overlay overlay -o "lowerdir=$(realpath "$CACHE"),upperdir=$WORK/upper,workdir=$WORK/work" "$ROOT" 2>/dev/null; then
	MOUNTS+=("$ROOT")
else
	cp -a "$CACHE/." "$ROOT/"
fi

# No service may start inside the chroot (none would: systemd is not running
# there, so /run/systemd/system is absent; this is belt and braces).
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
mkdir -p "$ROOT/tmp/debs"
cp "${DEBS[@]}" "$ROOT/tmp/debs/"

in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LC_ALL=C "$@"; }

PASSED=0 FAILED=0
check() {
	local what=$1 out
	shift
	if out=$("$@" 2>&1); then
		echo "ok   $what"
		PASSED=$((PASSED + 1))
	else
		echo "FAIL $what"
		printf '%s\n' "$out" | tail -n 20 | sed 's/^/     /'
		FAILED=$((FAILED + 1))
	fi
}

echo "test-install: apt-get install ${DEBS[*]##*/}" >&2
in_root apt-get update -qq >"$WORK/apt-update.log" 2>&1 || { cat "$WORK/apt-update.log" >&2; exit 1; }
install_debs=()
for deb in "${DEBS[@]}"; do install_debs+=("/tmp/debs/${deb##*/}"); done
if in_root apt-get install -y -q --no-install-recommends "${install_debs[@]}" >"$WORK/apt-install.log" 2>&1; then
	echo "ok   apt-get install resolves the Depends from the mirror and configures the packages"
	PASSED=$((PASSED + 1))
else
	echo "FAIL apt-get install"
	tail -n 40 "$WORK/apt-install.log" | sed 's/^/     /'
	exit 1
fi

has_pkg() { in_root dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q 'install ok installed'; }
# Checks, each a command that succeeds or prints why not.
system_user() { # NAME [GROUP]: a system user (uid < 1000), optionally in GROUP
	local entry uid
	entry=$(in_root getent passwd "$1") || { echo "no user $1"; return 1; }
	uid=$(echo "$entry" | cut -d: -f3)
	[ "$uid" -lt 1000 ] || { echo "$entry: not a system uid"; return 1; }
	[ -z "${2:-}" ] || in_root id -nG "$1" | tr ' ' '\n' | grep -qx "$2" || { echo "$1 is not in $2: $(in_root id "$1")"; return 1; }
	echo "$entry"
}
conffile() { # PACKAGE PATH
	in_root dpkg-query -W -f='${Conffiles}\n' "$1" | grep -q "^ $2 " || { in_root dpkg-query -W -f='${Conffiles}\n' "$1"; return 1; }
}
exposure() { # UNIT: the overall exposure level systemd-analyze gives it
	in_root systemd-analyze security --offline=true --no-pager "/usr/lib/systemd/system/$1" 2>/dev/null \
		| sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]* [A-Z]*\).*/\1/p'
}
absent() { ! test -e "$ROOT$1" && ! test -L "$ROOT$1"; }
purged() { # PACKAGE: unknown to dpkg, or known as not installed
	local status
	status=$(in_root dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)
	[ -z "$status" ] || [[ $status == *not-installed* ]] || { echo "$status"; return 1; }
}

want_daemon=false want_issuer=false
has_pkg attestd && want_daemon=true
has_pkg attestd-issuer && want_issuer=true

if $want_daemon; then
	check "user attestd is a system user in group tss" system_user attestd tss
	check "tpm-udev came in as a dependency; its rule gives /dev/tpmrm0 to tss" \
		grep -q 'KERNEL=="tpmrm\[0-9\]\*".*GROUP="tss"' "$ROOT/lib/udev/rules.d/60-tpm-udev.rules"
	for file in /usr/bin/attestd /etc/attestd/attestd.toml /usr/lib/systemd/system/attestd.service \
		/usr/lib/sysusers.d/attestd.conf /etc/attestd/attestd.d/README /usr/share/doc/attestd/packaging.md; do
		check "attestd ships $file" test -f "$ROOT$file"
	done
	check "/etc/attestd/attestd.toml is a conffile" conffile attestd /etc/attestd/attestd.toml
	check "attestd.service is enabled (multi-user.target.wants)" \
		test -L "$ROOT/etc/systemd/system/multi-user.target.wants/attestd.service"
	check "attestd --help runs (its shared libraries resolve)" in_root attestd --help
	check "attestd check-config accepts the shipped config" \
		in_root attestd check-config --config /etc/attestd/attestd.toml
	check "systemd-analyze verify accepts attestd.service" \
		in_root systemd-analyze verify /usr/lib/systemd/system/attestd.service
	check "systemd-analyze security scores attestd.service at most 3.0 ($(exposure attestd.service))" \
		in_root systemd-analyze security --offline=true --threshold=30 --no-pager /usr/lib/systemd/system/attestd.service
fi
if $want_issuer; then
	check "user attestd-issuer is a system user" system_user attestd-issuer
	for file in /usr/bin/attestd-issuer /etc/attestd-issuer/issuer.toml /etc/attestd-issuer/entries.toml \
		/etc/attestd-issuer/ek-allowlist /usr/lib/systemd/system/attestd-issuer.service \
		/usr/lib/sysusers.d/attestd-issuer.conf; do
		check "attestd-issuer ships $file" test -f "$ROOT$file"
	done
	for file in issuer.toml entries.toml ek-allowlist; do
		check "/etc/attestd-issuer/$file is a conffile" conffile attestd-issuer "/etc/attestd-issuer/$file"
	done
	check "attestd-issuer.service is installed disabled" \
		absent /etc/systemd/system/multi-user.target.wants/attestd-issuer.service
	check "attestd-issuer check-config accepts the shipped config" \
		in_root attestd-issuer check-config --config /etc/attestd-issuer/issuer.toml
	check "systemd-analyze verify accepts attestd-issuer.service" \
		in_root systemd-analyze verify /usr/lib/systemd/system/attestd-issuer.service
	check "systemd-analyze security scores attestd-issuer.service at most 3.0 ($(exposure attestd-issuer.service))" \
		in_root systemd-analyze security --offline=true --threshold=30 --no-pager /usr/lib/systemd/system/attestd-issuer.service
fi

# Purge: every file the packages shipped or made goes; the users stay (Debian
# keeps system users), and so does the issuer's CA directory (see its postrm).
mkdir -p "$ROOT/var/lib/attestd" "$ROOT/var/lib/attestd-issuer"
touch "$ROOT/var/lib/attestd/ak-test.bin"
remove=()
$want_daemon && remove+=(attestd)
$want_issuer && remove+=(attestd-issuer)
check "apt-get purge ${remove[*]}" in_root apt-get purge -y -q "${remove[@]}"
for name in "${remove[@]}"; do
	check "$name is purged in dpkg's database" purged "$name"
done
if $want_daemon; then
	for path in /usr/bin/attestd /etc/attestd /var/lib/attestd /usr/lib/systemd/system/attestd.service \
		/etc/systemd/system/multi-user.target.wants/attestd.service /usr/lib/sysusers.d/attestd.conf \
		/usr/share/doc/attestd; do
		check "purge removed $path" absent "$path"
	done
fi
if $want_issuer; then
	for path in /usr/bin/attestd-issuer /etc/attestd-issuer /usr/lib/systemd/system/attestd-issuer.service \
		/usr/lib/sysusers.d/attestd-issuer.conf /usr/share/doc/attestd-issuer; do
		check "purge removed $path" absent "$path"
	done
	check "purge kept /var/lib/attestd-issuer (the CA keys)" test -d "$ROOT/var/lib/attestd-issuer"
fi

echo "test-install: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
