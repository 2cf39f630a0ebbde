#!/usr/bin/env bash
# Attest latency and throughput over the daemon's real socket, warm cache:
# 1 and 64 concurrent clients, each on its own connection. Results go to stdout;
# docs/BENCHMARKS.md records them with this command.
#   usage: scripts/bench-attest.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-10}
cargo build --release -q -p attestd -p attestd-bench
WORK=$(mktemp -d "${TMPDIR:-/tmp}/attestd-bench.XXXXXX")
DAEMON_PID=""
cleanup() {
	[ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
cat >"$WORK/attestd.toml" <<CONF
[api]
socket = "$WORK/api.sock"
max_connections_per_uid = 1024
max_concurrent_requests = 1024
[tpm]
# Attest does not touch the TPM per request; the UEID is read once at start-up.
enabled = false
CONF
target/release/attestd run --config "$WORK/attestd.toml" --config-dir "$WORK/conf.d" &
DAEMON_PID=$!
for _ in $(seq 100); do
	target/release/attestd describe --socket "$WORK/api.sock" >/dev/null 2>&1 && break
	sleep 0.05
done
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for clients in 1 64; do
	target/release/attestd-bench --socket "$WORK/api.sock" --clients "$clients" --seconds "$SECONDS_PER_RUN"
done
