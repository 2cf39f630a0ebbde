#!/usr/bin/env bash
# SPIFFE Workload API on swtpm: FetchX509SVID and FetchJWTSVID latency with a
# warm cache (attestd-bench, 1 and 16 clients), and the daemon's RSS idle and
# with COUNT distinct cached workload SVIDs (COUNT processes, each its own uid,
# each fetching once through the Rust spiffe crate). Needs root (setpriv).
# docs/BENCHMARKS.md records the results.
#   usage: scripts/bench-svid.sh [COUNT]
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-1000}
[ "$(id -u)" = 0 ] || { echo "bench-svid: run as root (workloads run as other uids)" >&2; exit 1; }
cargo build --release -q --bins
BIN=${CARGO_TARGET_DIR:-target}/release
WORK=$(mktemp -d "${TMPDIR:-/tmp}/attestd-bench-svid.XXXXXX")
chmod 755 "$WORK"
# shellcheck source=scripts/lib/bench-swtpm.sh
. scripts/lib/bench-swtpm.sh
start_swtpm

# Entries: root (the load generator) and COUNT uids from 20000.
{
	printf '[[entry]]\nspiffe_id = "spiffe://bench.example.org/bench"\nselectors = ["unix:uid:0"]\n'
	for uid in $(seq 20000 $((20000 + COUNT - 1))); do
		printf '[[entry]]\nspiffe_id = "spiffe://bench.example.org/w/%s"\nselectors = ["unix:uid:%s"]\n' "$uid" "$uid"
	done
} >"$WORK/entries.toml"
start_issuer "entries = \"$WORK/entries.toml\""
cat >"$WORK/attestd.toml" <<CONF
[api]
socket = "$WORK/api.sock"
[tpm]
tcti = "swtpm:host=127.0.0.1,port=$PORT"
state_dir = "$WORK/state"
[issuer]
url = "https://localhost:$ISSUER_PORT"
ca_bundle = "$WORK/bundle.pem"
CONF
"$BIN/attestd" run --config "$WORK/attestd.toml" --config-dir "$WORK/conf.d" 2>"$WORK/daemon.log" &
DAEMON=$!
PIDS+=("$DAEMON")
for _ in $(seq 600); do
	[ "$("$BIN/attestd" healthcheck --socket "$WORK/api.sock" 2>/dev/null)" = SERVING ] && break
	kill -0 "$DAEMON" 2>/dev/null || { cat "$WORK/daemon.log"; exit 1; }
	sleep 0.05
done
rss() { awk '/^VmRSS/ {print $2 " kB"}' "/proc/$DAEMON/status"; }

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(uname -r), $COUNT workloads"
echo "daemon RSS, node attested, no workload SVIDs: $(rss)"
for rpc in fetch-x509 fetch-jwt; do
	for clients in 1 16; do
		echo "== $rpc, $clients clients (warm cache)"
		"$BIN/attestd-bench" --socket "$WORK/api.sock" --rpc "$rpc" --clients "$clients" --seconds 5
	done
done
echo "daemon RSS after the latency runs (one cached selector set): $(rss)"

# COUNT distinct workloads, 8 at a time, each its own uid: COUNT cached sets.
fetch_all() { # KIND: x509 | jwt
	seq 20000 $((20000 + COUNT - 1)) | xargs -P 8 -I{} sh -c '
		mkdir -p "$1/out/$2" && chown "$2" "$1/out/$2" &&
		if [ "$5" = jwt ]; then
			setpriv --reuid "$2" --regid "$2" --clear-groups "$3" "$4" jwt bench "$1/out/$2" >/dev/null
		else
			setpriv --reuid "$2" --regid "$2" --clear-groups "$3" "$4" x509 "$1/out/$2" >/dev/null
		fi' _ "$WORK" {} "$BIN/spiffe_fetch" "$WORK/api.sock" "$1"
}
mkdir -p "$WORK/out"
started=$(date +%s%N)
fetch_all x509
elapsed_ms=$(( ($(date +%s%N) - started) / 1000000 ))
echo "$(find "$WORK/out" -name svid.pem | wc -l) distinct workloads fetched their X.509-SVIDs in ${elapsed_ms} ms"
echo "daemon RSS with $COUNT cached X.509-SVID sets: $(rss)"
fetch_all jwt
echo "$(find "$WORK/out" -name token.jwt | wc -l) of them fetched a JWT-SVID too"
echo "daemon RSS with $COUNT X.509-SVID sets and $COUNT JWT-SVID sets cached: $(rss)"
