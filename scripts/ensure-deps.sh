#!/usr/bin/env bash
# Install what `make test` and `make demo` need on a fresh Debian 12 machine:
# the TPM emulator and tools, build tools for the TSS bindings and protobuf,
# and the Python venv (target/venv) with the independent verifiers.
# Idempotent and silent when everything is already there; one line per action.
set -euo pipefail

readonly APT_PACKAGES=(
    swtpm swtpm-tools tpm2-tools libtss2-dev
    protobuf-compiler pkg-config python3-venv openssl
    dpkg-dev
)

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_ROOT
readonly VENV="$REPO_ROOT/target/venv"
readonly REQUIREMENTS="$REPO_ROOT/tests/python/requirements.txt"
readonly STAMP="$VENV/.requirements.stamp"

log() { printf 'ensure-deps: %s\n' "$*"; }
die() { printf 'ensure-deps: error: %s\n' "$*" >&2; exit 1; }

missing_apt_packages() {
    local pkg status
    for pkg in "${APT_PACKAGES[@]}"; do
        status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
        [[ "$status" == installed ]] || printf '%s\n' "$pkg"
    done
}

ensure_apt_packages() {
    local -a missing
    mapfile -t missing < <(missing_apt_packages)
    ((${#missing[@]} == 0)) && return 0

    local -a as_root=()
    if ((EUID != 0)); then
        if command -v sudo >/dev/null 2>&1; then
            as_root=(sudo)
        else
            die "not root and no sudo; as root run:
  apt-get update && apt-get install -y ${missing[*]}"
        fi
    fi

    log "installing apt packages: ${missing[*]}"
    # `apt-get update` only now: a machine with everything installed must not
    # need the network or root at all.
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

venv_stamp() {
    # The interpreter's version is part of the stamp: a Python upgrade leaves a
    # venv whose bin/python points at an interpreter that is gone.
    { python3 --version; sha256sum "$REQUIREMENTS"; } | sha256sum | cut -d' ' -f1
}

ensure_venv() {
    [[ -f "$REQUIREMENTS" ]] || die "missing $REQUIREMENTS"
    local want
    want="$(venv_stamp)"
    if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
        return 0
    fi

    # Rebuild from scratch rather than upgrade in place, so a package dropped
    # from requirements.txt cannot linger and hide a missing pin.
    if [[ -e "$VENV" ]]; then
        log "requirements changed: recreating $VENV"
        rm -rf "$VENV"
    else
        log "creating $VENV"
    fi
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv "$VENV"
    log "installing $(basename "$REQUIREMENTS") into the venv"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
    "$VENV/bin/pip" check --disable-pip-version-check >/dev/null \
        || die "pip check failed in $VENV: a pin in $REQUIREMENTS is incomplete"
    # Stamp last: an interrupted install is redone on the next run.
    printf '%s\n' "$want" >"$STAMP"
}

main() {
    ensure_apt_packages
    mkdir -p "$REPO_ROOT/target"
    # Two `make` targets may run this at once; only one may build the venv.
    exec 9>"$REPO_ROOT/target/.ensure-deps.lock"
    flock 9
    ensure_venv
}

main "$@"
