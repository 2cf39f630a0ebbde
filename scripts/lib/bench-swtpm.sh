# shellcheck shell=bash
# Sourced by the bench scripts, after they set WORK: process cleanup, free
# loopback ports, and a swtpm whose EK certificates come from a local CA (as
# in the demo), with that CA's root and intermediate in $WORK/issuer/ek-roots.
# start_swtpm sets PORT (the TPM port; the control port is PORT + 1);
# start_issuer sets ISSUER_PORT and writes the issuer's CA to $WORK/bundle.pem.

PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start_swtpm() {
	mkdir -p "$WORK/ca" "$WORK/tpm" "$WORK/issuer/ek-roots"
	printf 'statedir = %s\nsigningkey = %s/signkey.pem\nissuercert = %s/issuercert.pem\ncertserial = %s/certserial\n' \
		"$WORK/ca" "$WORK/ca" "$WORK/ca" "$WORK/ca" >"$WORK/localca.conf"
	printf -- '--platform-manufacturer bench\n--platform-version 2.1\n--platform-model swtpm\n' >"$WORK/localca.options"
	printf 'create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = %s\ncreate_certs_tool_options = %s\n' \
		"$WORK/localca.conf" "$WORK/localca.options" >"$WORK/swtpm_setup.conf"
	swtpm_setup --tpm2 --tpmstate "$WORK/tpm" --create-ek-cert --config "$WORK/swtpm_setup.conf" --overwrite >/dev/null
	PORT=$(free_port)
	swtpm socket --tpm2 --tpmstate dir="$WORK/tpm" --flags not-need-init,startup-clear \
		--server type=tcp,port="$PORT",bindaddr=127.0.0.1 --ctrl type=tcp,port=$((PORT + 1)),bindaddr=127.0.0.1 \
		--pid file="$WORK/swtpm.pid" --daemon
	PIDS+=("$(cat "$WORK/swtpm.pid")")
	cp "$WORK/ca/swtpm-localca-rootca-cert.pem" "$WORK/ca/issuercert.pem" "$WORK/issuer/ek-roots/"
}

BENCH_TRUST_DOMAIN=bench.example.org

# start_issuer [TOML_LINE...]: an attestd-issuer on a free loopback port for
# BENCH_TRUST_DOMAIN, trusting the swtpm's EK CA; each TOML_LINE goes into the
# config's top level (e.g. an entries file).
start_issuer() {
	ISSUER_PORT=$(free_port)
	{
		printf 'listen = "127.0.0.1:%s"\ntrust_domain = "%s"\n' "$ISSUER_PORT" "$BENCH_TRUST_DOMAIN"
		for line in "$@"; do printf '%s\n' "$line"; done
		printf '[ca]\ncert = "%s"\nkey = "%s"\n[ek]\nroots_dir = "%s"\n' \
			"$WORK/issuer/ca.pem" "$WORK/issuer/ca.key" "$WORK/issuer/ek-roots"
	} >"$WORK/issuer.toml"
	"$BIN/attestd-issuer" bundle --config "$WORK/issuer.toml" >"$WORK/bundle.pem" 2>/dev/null
	"$BIN/attestd-issuer" run --config "$WORK/issuer.toml" 2>"$WORK/issuer.log" &
	PIDS+=("$!")
}
