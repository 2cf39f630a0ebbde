# The two commands a newcomer needs: `make demo` and `make test`.
# Both install what they need first (scripts/ensure-deps.sh).

CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: all deps build demo test lint unit bench clean package package-test vm-test

all: build

deps:
	@bash scripts/ensure-deps.sh

build: deps
	$(CARGO) build --release --bins

# swtpm with EK certificates from a local test CA, attestd's TPM attestation,
# the issuer granting a node SVID, and a workload's evidence checked by pycose.
demo: build
	@bash scripts/demo.sh target/release/attestd

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Every test: unit, swtpm integration, the Python/keylime cross-checks, and
# the VM tests (skipped, with the reason printed, where QEMU cannot run).
test: lint
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --no-fail-fast; \
	else \
		$(CARGO) test --workspace --no-fail-fast; \
	fi

# The benchmark suite (docs/BENCHMARKS.md): criterion for the hot functions
# (Merkle batches, evidence signing, binary hashing cold and warm), then the
# load generator against a daemon on swtpm (raw quote loop, hardware-fresh
# and selector-only Attest, RSS, start-up). About 6 minutes on 2 cores.
CRITERION_QUICK = -- --warm-up-time 1 --measurement-time 3
bench: deps
	$(CARGO) bench -p attestd-verifier --bench merkle $(CRITERION_QUICK)
	$(CARGO) bench -p attestd --bench evidence $(CRITERION_QUICK)
	$(CARGO) bench -p attestd-attestors --bench binary_digest $(CRITERION_QUICK)
	@bash scripts/bench-fresh.sh 10

# The Debian packages attestd and attestd-issuer, into target/debian/
# (docs/packaging.md). Installs cargo-deb 3.8.0 if it is missing.
package: deps
	@bash packaging/build-deb.sh

# Installs both packages into a clean Debian 12 root (debootstrap, cached in
# target/pkg-test), checks them, then purges them. Needs root and the Debian mirror.
package-test: package
	@bash packaging/test-install.sh

# The VM tests (vm-tests/README.md): QEMU guests under TCG with OVMF measured
# boot and a swtpm vTPM, the attestd package inside, attestd-issuer on the
# host; one PASS/FAIL line per scenario. Needs root. `make test` runs them too
# (tests/tests/vm.rs) when it can, and says why when it cannot.
vm-test: deps
	@bash vm-tests/run.sh

clean:
	$(CARGO) clean
