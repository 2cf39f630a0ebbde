#!/usr/bin/env bash
# Hardware-fresh Attest against the TPM's own limit, in one run on one swtpm:
#   1. the raw quote loop: back-to-back TPM2_Quote with the daemon's AK
#      (attestd-bench raw-quote), before the daemon holds the TPM;
#   2. the daemon, attested by a local issuer, under hardware-fresh Attest at
#      1, 16, 64 and 256 clients; every response is verified afterwards with
#      attestd-verifier against its own client's nonce;
#   3. selector-only Attest at 1 and 64 clients on the same daemon;
#   4. daemon RSS idle and the peak under each load; start-up to ready.
# docs/BENCHMARKS.md records the results with this command.
#   usage: scripts/bench-fresh.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-10}
cargo build --release -q -p attestd -p attestd-issuer -p attestd-bench
BIN=${CARGO_TARGET_DIR:-target}/release
WORK=$(mktemp -d "${TMPDIR:-/tmp}/attestd-bench-fresh.XXXXXX")
# shellcheck source=scripts/lib/bench-swtpm.sh
. scripts/lib/bench-swtpm.sh
start_swtpm
TCTI="swtpm:host=127.0.0.1,port=$PORT"
TD=$BENCH_TRUST_DOMAIN

start_issuer

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "## raw quote loop (same swtpm, the daemon's AK, sha256:0-7)"
"$BIN/attestd-bench" --seconds "$SECONDS_PER_RUN" raw-quote --tcti "$TCTI" --state-dir "$WORK/state" | tee "$WORK/raw.txt"

cat >"$WORK/attestd.toml" <<CONF
[api]
socket = "$WORK/api.sock"
max_connections_per_uid = 1024
max_concurrent_requests = 1024
[tpm]
tcti = "$TCTI"
state_dir = "$WORK/state"
[issuer]
url = "https://localhost:$ISSUER_PORT"
ca_bundle = "$WORK/bundle.pem"
CONF
start_daemon() {
	started=$(date +%s%N)
	ATTESTD_LOG=info "$BIN/attestd" run --config "$WORK/attestd.toml" --config-dir "$WORK/conf.d" 2>"$WORK/daemon.log" &
	DAEMON=$!
	until "$BIN/attestd" describe --socket "$WORK/api.sock" >/dev/null 2>&1; do
		kill -0 "$DAEMON" 2>/dev/null || { cat "$WORK/daemon.log"; exit 1; }
		sleep 0.002
	done
	READY_MS=$(( ($(date +%s%N) - started) / 1000000 ))
	until grep -q "node attested" "$WORK/daemon.log"; do
		kill -0 "$DAEMON" 2>/dev/null || { cat "$WORK/daemon.log"; exit 1; }
		sleep 0.01
	done
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# CPU time (user + system) of a process, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
SWTPM_PID=$(cat "$WORK/swtpm.pid")
TICK_US=$((1000000 / $(getconf CLK_TCK)))
# Runs attestd-bench while sampling the daemon's RSS; prints the bench line
# and the peak RSS seen.
measure() {
	local peak=0 sampler daemon_cpu swtpm_cpu requests
	daemon_cpu=$(cpu_ticks "$DAEMON"); swtpm_cpu=$(cpu_ticks "$SWTPM_PID")
	( while kill -0 "$DAEMON" 2>/dev/null; do rss_kb "$DAEMON"; sleep 0.1; done ) >"$WORK/rss.txt" &
	sampler=$!
	"$BIN/attestd-bench" --socket "$WORK/api.sock" --seconds "$SECONDS_PER_RUN" "$@" | tee "$WORK/run.txt"
	kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
	peak=$(sort -n "$WORK/rss.txt" | tail -1)
	requests=$(sed -n 's/.* requests=\([0-9]*\) .*/\1/p' "$WORK/run.txt" | head -1)
	echo "daemon_rss_peak_kb=$peak" \
		"daemon_cpu_us_per_request=$(( ($(cpu_ticks "$DAEMON") - daemon_cpu) * TICK_US / (requests + 1) ))" \
		"swtpm_cpu_us_per_request=$(( ($(cpu_ticks "$SWTPM_PID") - swtpm_cpu) * TICK_US / (requests + 1) ))"
}

start_daemon
PIDS+=("$DAEMON")
echo "## daemon: ready (socket answers) ${READY_MS} ms after start; idle RSS $(rss_kb "$DAEMON") kB"
# Where the idle RSS is: the largest mappings (anonymous heap/stacks vs libraries).
awk '/^[0-9a-f]+-[0-9a-f]+ / {name = ($6 == "" ? "[anon]" : $6)} /^Rss:/ {rss[name] += $2} END {for (n in rss) if (rss[n] >= 256) printf "  %6d kB %s\n", rss[n], n}' "/proc/$DAEMON/smaps" | sort -rn | head -12
echo "## hardware-fresh Attest (every response verified afterwards)"
for clients in ${FRESH_CLIENTS:-1 16 64 256}; do
	measure --clients "$clients" --hardware-fresh --bundle "$WORK/bundle.pem" --trust-domain "$TD"
done
echo "## selector-only Attest"
for clients in ${SELECTOR_CLIENTS:-1 64}; do
	measure --clients "$clients"
done
echo "## idle RSS after the loads: $(rss_kb "$DAEMON") kB"
if command -v strace >/dev/null; then
	# Syscalls the daemon makes per request, one client, 3 s under strace
	# (which slows it down; the counts are what matter, not the rate).
	for label in hardware-fresh selector-only; do
		mode=""
		[ "$label" = hardware-fresh ] && mode="--hardware-fresh --bundle $WORK/bundle.pem --trust-domain $TD"
		strace -f -c -o "$WORK/strace.txt" -p "$DAEMON" 2>"$WORK/strace.err" &
		tracer=$!
		until grep -q attached "$WORK/strace.err"; do sleep 0.05; done
		# shellcheck disable=SC2086
		"$BIN/attestd-bench" --socket "$WORK/api.sock" --seconds 3 --clients 1 --warmup 0 $mode >"$WORK/run.txt"
		kill -INT "$tracer"; wait "$tracer" 2>/dev/null || true
		requests=$(sed -n 's/.* requests=\([0-9]*\) .*/\1/p' "$WORK/run.txt" | head -1)
		echo "## syscalls per request, $label ($requests requests under strace)"
		awk -v n="$requests" '$NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ && $NF != "total" {printf "  %-16s %6.2f\n", $NF, $4 / n}' "$WORK/strace.txt" | sort -k2 -rn | head -10
		awk -v n="$requests" '$NF == "total" {printf "  %-16s %6.2f\n", "total", $4 / n}' "$WORK/strace.txt"
	done
fi
kill "$DAEMON"; wait "$DAEMON" 2>/dev/null || true

echo "## start-up to ready, 5 restarts (AK and EK context reloaded from state)"
for run in 1 2 3 4 5; do
	start_daemon
	echo "run=$run ready_ms=$READY_MS idle_rss_kb=$(rss_kb "$DAEMON")"
	kill "$DAEMON"; wait "$DAEMON" 2>/dev/null || true
done
