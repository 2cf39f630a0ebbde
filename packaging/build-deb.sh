#!/usr/bin/env bash
# Builds the Debian packages attestd and attestd-issuer (release profile) with
# cargo-deb, from the [package.metadata.deb] sections of daemon/Cargo.toml
# and issuer/Cargo.toml, and prints the path of each .deb (one per line, last
# on stdout). Installs the pinned cargo-deb first when it is missing or
# another version. `make package` runs this; docs/packaging.md describes
# what the packages hold.
#
# The .debs land in $CARGO_TARGET_DIR/debian (target/debian by default).
# dpkg-shlibdeps (dpkg-dev) computes the shared-library dependencies; the
# build itself needs what `make build` needs (scripts/ensure-deps.sh).
set -euo pipefail

CARGO_DEB_VERSION=3.8.0
CARGO=${CARGO:-cargo}
cd "$(dirname "$0")/.."

if [ "$("$CARGO" deb --version 2>/dev/null | awk '{print $2}')" != "$CARGO_DEB_VERSION" ]; then
	echo "build-deb: installing cargo-deb $CARGO_DEB_VERSION" >&2
	"$CARGO" install cargo-deb --version "$CARGO_DEB_VERSION" --locked
fi
if ! command -v dpkg-shlibdeps >/dev/null 2>&1; then
	echo "build-deb: dpkg-shlibdeps is missing; install dpkg-dev" >&2
	exit 1
fi

TARGET_DIR=${CARGO_TARGET_DIR:-target}
OUT="$TARGET_DIR/debian"
mkdir -p "$OUT"
for package in attestd attestd-issuer; do
	# cargo-deb prints the path of the .deb it wrote.
	deb=$("$CARGO" deb --locked -p "$package" --output "$OUT" | tail -n 1)
	[ -f "$deb" ] || { echo "build-deb: cargo deb -p $package wrote no .deb ($deb)" >&2; exit 1; }
	echo "$deb"
done
