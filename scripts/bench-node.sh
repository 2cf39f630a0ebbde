#!/usr/bin/env bash
# Node attestation time on swtpm: from starting `attestd run` to the daemon
# holding its node SVID, RUNS times, ECC P-256 AK (the default) and RSA-2048 EK.
# Also prints the exchange alone (challenge, activation, quote, verdict), which
# the daemon logs as took_ms. docs/BENCHMARKS.md records the results.
#   usage: scripts/bench-node.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-20}
cargo build --release -q --bins
BIN=${CARGO_TARGET_DIR:-target}/release
WORK=$(mktemp -d "${TMPDIR:-/tmp}/attestd-bench-node.XXXXXX")
# shellcheck source=scripts/lib/bench-swtpm.sh
. scripts/lib/bench-swtpm.sh
start_swtpm

start_issuer
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

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(uname -r), $RUNS daemon starts"
for run in $(seq "$RUNS"); do
	started=$(date +%s%N)
	ATTESTD_LOG=info "$BIN/attestd" run --config "$WORK/attestd.toml" \
		--config-dir "$WORK/conf.d" 2>"$WORK/daemon.log" &
	daemon=$!
	# The daemon logs "node attested" with a microsecond timestamp; wait for it.
	for _ in $(seq 2000); do
		grep -q "node attested" "$WORK/daemon.log" && break
		kill -0 "$daemon" 2>/dev/null || { cat "$WORK/daemon.log"; exit 1; }
		sleep 0.01
	done
	line=$(grep -m1 "node attested" "$WORK/daemon.log")
	attested=$(date -d "$(echo "$line" | cut -d' ' -f1)" +%s%N)
	took=$(echo "$line" | tr ' ' '\n' | sed -n 's/^took_ms=//p')
	echo "run=$run start_to_svid_ms=$(( (attested - started) / 1000000 )) exchange_ms=$took"
	kill "$daemon"; wait "$daemon" 2>/dev/null || true
done | tee "$WORK/runs.txt"
python3 - "$WORK/runs.txt" <<'PY'
import sys, statistics
rows = [dict(f.split("=") for f in line.split()) for line in open(sys.argv[1]) if line.startswith("run=")]
for key in ("start_to_svid_ms", "exchange_ms"):
    values = sorted(int(r[key]) for r in rows)
    p = lambda q: values[min(len(values) - 1, round(q * (len(values) - 1)))]
    print(f"{key}: p50={p(0.5)} p90={p(0.9)} max={values[-1]} (n={len(values)})")
PY
