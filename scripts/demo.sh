#!/usr/bin/env bash
# The attestd demo: a swtpm whose EK certificates come from a local test CA;
# attestd reads the EK, verifies its certificate and quotes the PCRs (checked by
# tpm2_checkquote); the issuer attests the node over TLS and grants a node SVID;
# a workload gets its selectors and signed evidence (checked by pycose and,
# offline, by attestd-issuer verify); a workload running as another uid gets
# its X.509- and JWT-SVIDs through the standard SPIFFE Workload API (py-spiffe,
# openssl, PyJWT). Everything talks over loopback; nothing persists.
set -euo pipefail

ATTESTD=${1:-target/release/attestd}
[ -x "$ATTESTD" ] || { echo "demo: $ATTESTD is not built (run make demo)" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/attestd-demo.XXXXXX")
# The demo workload runs as another uid (nobody) when we are root; it must
# reach the socket in here.
chmod 755 "$WORK"
SWTPM_PID=""
DAEMON_PID=""
ISSUER_PID=""
cleanup() {
	[ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null || true
	[ -n "$ISSUER_PID" ] && kill "$ISSUER_PID" 2>/dev/null && wait "$ISSUER_PID" 2>/dev/null || true
	[ -n "$SWTPM_PID" ] && kill "$SWTPM_PID" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. Manufacture a software TPM with EK certificates from a local test CA"
mkdir -p "$WORK/ca" "$WORK/tpm"
cat >"$WORK/localca.conf" <<CONF
statedir = $WORK/ca
signingkey = $WORK/ca/signkey.pem
issuercert = $WORK/ca/issuercert.pem
certserial = $WORK/ca/certserial
CONF
cat >"$WORK/localca.options" <<CONF
--platform-manufacturer attestd-demo
--platform-version 2.1
--platform-model swtpm
CONF
cat >"$WORK/swtpm_setup.conf" <<CONF
create_certs_tool = /usr/bin/swtpm_localca
create_certs_tool_config = $WORK/localca.conf
create_certs_tool_options = $WORK/localca.options
CONF
swtpm_setup --tpm2 --tpmstate "$WORK/tpm" --create-ek-cert --config "$WORK/swtpm_setup.conf" \
	--overwrite >"$WORK/setup.log" 2>&1 || { cat "$WORK/setup.log"; exit 1; }
grep -E "EK|certificate" "$WORK/setup.log" | sed 's/^/   /'
echo "   test CA root: $WORK/ca/swtpm-localca-rootca-cert.pem"

step "2. Start it on a free loopback port"
PORT=$(python3 - <<'PY'
import socket
for _ in range(100):
    a = socket.socket(); a.bind(("127.0.0.1", 0)); port = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", port + 1)); print(port); break
    except OSError:
        pass
    finally:
        a.close(); b.close()
PY
)
swtpm socket --tpm2 --tpmstate dir="$WORK/tpm" --flags not-need-init,startup-clear \
	--server type=tcp,port="$PORT",bindaddr=127.0.0.1 \
	--ctrl type=tcp,port=$((PORT + 1)),bindaddr=127.0.0.1 \
	--pid file="$WORK/swtpm.pid" --log file="$WORK/swtpm.log" --daemon
SWTPM_PID=$(cat "$WORK/swtpm.pid")
TCTI="swtpm:host=127.0.0.1,port=$PORT"
echo "   TCTI $TCTI (pid $SWTPM_PID)"
export ATTESTD_TCTI="$TCTI" ATTESTD_STATE_DIR="$WORK/state"

step "3. attestd reads the EK and verifies its certificate chain"
"$ATTESTD" ek show --out "$WORK/ek" \
	--roots "$WORK/ca/swtpm-localca-rootca-cert.pem" \
	--intermediates "$WORK/ca/issuercert.pem" | sed 's/^/   /'

step "4. attestd quotes PCRs 0-7 with its AK over a fresh nonce"
NONCE=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
"$ATTESTD" quote --nonce "$NONCE" --pcrs sha256:0,1,2,3,4,5,6,7 --out "$WORK/quote" | sed 's/^/   /'

step "5. tpm2-tools' tpm2_checkquote checks the same files independently"
tpm2_checkquote -u "$WORK/quote/ak.pem" -m "$WORK/quote/quote.msg" -s "$WORK/quote/quote.sig" \
	-f "$WORK/quote/quote.pcrs" -g sha256 -q "$NONCE" >"$WORK/checkquote.log" 2>&1 \
	&& echo "   tpm2_checkquote: signature, nonce and PCR digest OK" \
	|| { echo "   tpm2_checkquote REJECTED the quote:"; cat "$WORK/checkquote.log"; exit 1; }

step "6. A restart reloads the same AK"
"$ATTESTD" quote --nonce "$NONCE" --out "$WORK/quote2" >/dev/null
if cmp -s "$WORK/quote/ak.name" "$WORK/quote2/ak.name"; then
	echo "   same AK name after restart: $(od -An -tx1 "$WORK/quote/ak.name" | tr -d ' \n')"
else
	echo "   AK name changed across restarts" >&2; exit 1
fi

step "7. attestd-issuer: a CA, the TPM maker's EK CA as trust, and a node policy"
ISSUER=$(dirname "$ATTESTD")/attestd-issuer
ISSUER_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$WORK/issuer/ek-roots"
cp "$WORK/ca/swtpm-localca-rootca-cert.pem" "$WORK/ca/issuercert.pem" "$WORK/issuer/ek-roots/"
PCR0=$(tpm2_pcrread -T "$TCTI" sha256:0 | awk '/0 :/ {print $3}' | sed 's/^0x//' | tr 'A-F' 'a-f')
if [ "$(id -u)" = 0 ]; then WORKLOAD_UID=65534; else WORKLOAD_UID=$(id -u); fi
cat >"$WORK/entries.toml" <<CONF
# Registration entries: which workloads get which SPIFFE ID.
[[entry]]
spiffe_id = "spiffe://demo.example.org/demo/billing"
selectors = ["unix:uid:$WORKLOAD_UID"]
x509_ttl_secs = 600
jwt_ttl_secs = 300
CONF
cat >"$WORK/issuer.toml" <<CONF
listen = "127.0.0.1:$ISSUER_PORT"
trust_domain = "demo.example.org"
node_svid_ttl_secs = 600
entries = "$WORK/entries.toml"
[ca]
cert = "$WORK/issuer/ca.pem"
key = "$WORK/issuer/ca.key"
[ek]
roots_dir = "$WORK/issuer/ek-roots"
[policy]
ek_trust = "certificate"
quote_pcrs = ["sha256:0,1,2,3,4,5,6,7"]
rules = ['pcr.sha256.0 == "$PCR0"']
CONF
"$ISSUER" check-config --config "$WORK/issuer.toml" | sed 's/^/   /'
"$ISSUER" bundle --config "$WORK/issuer.toml" >"$WORK/issuer-bundle.pem"
echo "   CA generated; its key is $(stat -c %a "$WORK/issuer/ca.key") ($WORK/issuer/ca.key)"
echo "   policy: PCR 0 must be $PCR0"
ATTESTD_ISSUER_LOG=info "$ISSUER" run --config "$WORK/issuer.toml" 2>"$WORK/issuer.log" &
ISSUER_PID=$!

step "8. attestd run: the daemon proves the node to the issuer with its TPM alone"
cat >"$WORK/attestd.toml" <<CONF
[api]
socket = "$WORK/api.sock"
[tpm]
tcti = "$TCTI"
state_dir = "$WORK/state"
[issuer]
url = "https://localhost:$ISSUER_PORT"
ca_bundle = "$WORK/issuer-bundle.pem"
CONF
"$ATTESTD" check-config --config "$WORK/attestd.toml" --config-dir "$WORK/attestd.d" | sed 's/^/   /'
STARTED=$(date +%s%N)
ATTESTD_LOG=info "$ATTESTD" run --config "$WORK/attestd.toml" --config-dir "$WORK/attestd.d" \
	2>"$WORK/daemon.log" &
DAEMON_PID=$!
for _ in $(seq 200); do
	[ "$("$ATTESTD" healthcheck --socket "$WORK/api.sock" 2>/dev/null)" = SERVING ] && break
	kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$WORK/daemon.log"; exit 1; }
	sleep 0.05
done
echo "   attestd healthcheck: $("$ATTESTD" healthcheck --socket "$WORK/api.sock" 2>&1 || true)" \
	"($(( ($(date +%s%N) - STARTED) / 1000000 )) ms after start)"
grep "node attested" "$WORK/daemon.log" | head -1 | tr ' ' '\n' | grep -E '^spiffe_id=' | sed 's/^/   node SVID for /'
echo "   the issuer's decisions:"
grep "node attested" "$WORK/daemon.log" | head -1 | sed -e 's/.*decisions=\[//' -e 's/\]$//' \
	| sed 's/", "/\n/g' | sed -e 's/^"//' -e 's/"$//' -e 's/\\"/"/g' -e 's/^/     - /'

step "9. A workload asks who it is: selectors from the kernel, not from the caller"
"$ATTESTD" describe --socket "$WORK/api.sock" | sed 's/^/   /'

step "10. ...and takes away signed evidence for a relying party's nonce"
RP_NONCE=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
"$ATTESTD" evidence --socket "$WORK/api.sock" --nonce "$RP_NONCE" --audience demo-verifier \
	--out "$WORK/evidence.cbor" 2>&1 | sed 's/^/   /'
PYTHON=target/venv/bin/python
if [ -x "$PYTHON" ]; then
	"$PYTHON" tests/python/verify_evidence.py "$WORK/evidence.cbor" "$RP_NONCE" \
		--audience demo-verifier --bundle "$WORK/issuer-bundle.pem" \
		--trust-domain demo.example.org >"$WORK/claims.json" \
		&& echo "   pycose + cryptography: signature, EAT claims and node SVID chain verified" \
		|| { echo "   pycose REJECTED the evidence"; exit 1; }
	"$PYTHON" -m json.tool "$WORK/claims.json" | sed 's/^/   /' | head -40
fi

step "11. An air-gapped relying party checks it with the issuer's CA bundle alone"
cat >"$WORK/offline.toml" <<CONF
trust_domain = "demo.example.org"
bundle = "$WORK/issuer-bundle.pem"
audience = "demo-verifier"
required_selectors = ["unix:uid:$(id -u)"]
CONF
"$ISSUER" verify "$WORK/evidence.cbor" --policy "$WORK/offline.toml" --nonce "$RP_NONCE" \
	| sed 's/^/   /'

step "12. A workload running as uid $WORKLOAD_UID gets its SPIFFE identity through the standard Workload API"
echo "   entry: spiffe://demo.example.org/demo/billing for selector unix:uid:$WORKLOAD_UID"
mkdir -p "$WORK/workload"
chown "$WORKLOAD_UID" "$WORK/workload"
as_workload() {
	if [ "$(id -u)" = 0 ]; then
		setpriv --reuid "$WORKLOAD_UID" --regid "$WORKLOAD_UID" --clear-groups "$@"
	else
		"$@"
	fi
}
if [ -x "$PYTHON" ]; then
	echo "   py-spiffe, unchanged, SPIFFE_ENDPOINT_SOCKET=unix:$WORK/api.sock:"
	as_workload "$PYTHON" tests/python/spiffe_client.py "$WORK/api.sock" x509 "$WORK/workload" \
		| sed 's/^/   X.509-SVID: /'
	echo "   openssl verify -CAfile bundle.pem svid.pem: $(openssl verify -CAfile "$WORK/workload/bundle.pem" \
		"$WORK/workload/svid.pem" 2>&1 | sed 's/.*: //')"
	openssl x509 -in "$WORK/workload/svid.pem" -noout -ext subjectAltName -enddate 2>/dev/null \
		| sed -e 's/^ *//' -e '/^X509v3/d' -e 's/^/   /'
	as_workload "$PYTHON" tests/python/spiffe_client.py "$WORK/api.sock" jwt spiffe://demo.example.org/db \
		| sed 's/^/   JWT-SVID, verified by PyJWT with the JWT bundle: /'
fi

step "Done."
