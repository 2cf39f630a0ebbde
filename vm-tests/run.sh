#!/usr/bin/env bash
# attestd VM tests: real guests under QEMU TCG with OVMF measured boot and a
# swtpm vTPM; attestd runs INSIDE the guest (systemd unit, /dev/tpmrm0) and
# attestd-issuer on the host, reachable only through a QEMU guestfwd.
#
# Usage (as root):   vm-tests/run.sh [--help]
#
# Scenarios, in order (each line of the result is `PASS <name> (<s> s boot)`
# or `FAIL <name>: <reason>`, then a summary; exit 0 only if all pass):
#   clean-boot        the guest attests and a workload (uid 1500) gets its X.509-SVID
#   eventlog-replay   the boot event log captured in the guest replays to the quoted PCRs
#   reboot-same-node  same vTPM and state, strict golden-PCR policy: same node ID
#   changed-cmdline   one more kernel argument: PCR 9 differs, refused by its rule
#   changed-initrd    one more file in the initramfs: PCR 9 differs, refused by its rule
#   unenrolled-ek     a second vTPM from another CA, EK not enrolled: refused
#
# What it needs and does: installs missing Debian packages (qemu-system-x86,
# ovmf, swtpm, swtpm-tools, tpm2-tools, busybox-static, cpio, kmod, socat,
# debootstrap, openssl, dpkg-dev and a kernel); builds the attestd and
# attestd-issuer packages (packaging/build-deb.sh) and the spiffe_fetch
# workload (cargo, release); builds a Debian bookworm guest root with
# debootstrap (cached in target/vm-tests/) and installs the attestd package
# into a copy of it; runs the issuer from the attestd-issuer package on the
# host; boots every scenario once, one QEMU at a time. Progress goes to
# stderr, results to stdout.
#
# Environment:
#   ATTESTD_DEB=FILE      the .deb to install (default: build it with packaging/build-deb.sh
#                         if that exists, else the newest target/debian/attestd_*.deb; none:
#                         FALLBACK, the binary is copied in with a minimal unit;
#                         ATTESTD_DEB=none forces the FALLBACK)
#   ATTESTD_VM_BIN_DIR=D  take attestd, attestd-issuer and spiffe_fetch from D, no cargo build
#   CARGO_TARGET_DIR      where cargo builds (default: <repo>/target)
#   VM_TESTS_CACHE=DIR    guest-root cache (default: <repo>/target/vm-tests)
#   DEBIAN_MIRROR=URL     debootstrap's mirror (default: http://deb.debian.org/debian)
#   KERNEL_VERSION=V      a /boot/vmlinuz-V with modules in /lib/modules/V
#   BOOT_LIMIT=S          a boot over S seconds fails its scenario (default 60)
#   BOOT_TIMEOUT=S        QEMU is killed after S seconds (default 150)
#   KEEP_WORK=1           keep the temp dir (consoles, logs, guest outputs)
set -euo pipefail

case "${1:-}" in
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    "") ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
esac

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=vm-tests/lib/modules.sh
. "$REPO/vm-tests/lib/modules.sh"
START_TS=$(date +%s)
log() { printf '[vm-tests %4ss] %s\n' "$(( $(date +%s) - START_TS ))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (swtpm, 9p passthrough of the guest root, chroot)"

BOOT_LIMIT="${BOOT_LIMIT:-60}"
BOOT_TIMEOUT="${BOOT_TIMEOUT:-150}"
CACHE="${VM_TESTS_CACHE:-$REPO/target/vm-tests}"
TRUST_DOMAIN=vmtest.attestd.test
WORKLOAD_UID=1500
ISSUER_NAME=issuer.vmtest
GUEST_ISSUER_ADDR=10.0.2.100
GUEST_ISSUER_PORT=8443
BASE_CMDLINE="console=ttyS0 panic=-1 quiet attestd.vmtest"
QUOTE_PCRS="sha256:0,1,2,3,4,5,6,7,8,9"

# --- Dependencies ---------------------------------------------------------------
DEPS=(qemu-system-x86 ovmf swtpm swtpm-tools tpm2-tools busybox-static cpio kmod socat debootstrap openssl)
# packaging/build-deb.sh needs dpkg-shlibdeps.
[[ -f "$REPO/packaging/build-deb.sh" ]] && DEPS+=(dpkg-dev)
pick_kernel() {
    if [[ -n "${KERNEL_VERSION:-}" ]]; then echo "$KERNEL_VERSION"; return; fi
    local k v
    for k in /boot/vmlinuz-*; do
        [[ -e "$k" ]] || continue
        v="${k#/boot/vmlinuz-}"
        [[ -f "/lib/modules/$v/modules.dep" ]] && echo "$v"
    done | sort -V | tail -1
}
missing=()
for p in "${DEPS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
KVER="$(pick_kernel)"
[[ -n "$KVER" ]] || missing+=(linux-image-amd64)
if [[ ${#missing[@]} -gt 0 ]]; then
    log "installing missing packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    KVER="$(pick_kernel)"
fi
[[ -n "$KVER" && -f "/boot/vmlinuz-$KVER" ]] || die "no kernel with modules in /boot"
OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
for f in "$OVMF_CODE" "$OVMF_VARS" /bin/busybox; do [[ -f "$f" ]] || die "missing $f"; done

# --- Work dir and cleanup -------------------------------------------------------
WORK="$(mktemp -d /tmp/attestd-vm-tests.XXXXXX)"
chmod 0755 "$WORK"
PIDS_DIR="$WORK/pids"
mkdir -p "$PIDS_DIR"
stop_pidfile() {   # stop_pidfile FILE: SIGTERM the process it names, wait up to 10 s, then SIGKILL
    local f="$1" pid
    [[ -s "$f" ]] || return 0
    pid="$(cat "$f")"
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
}
cleanup() {
    local rc=$?
    local f
    for f in "$PIDS_DIR"/*.pid; do [[ -e "$f" ]] && stop_pidfile "$f"; done
    for f in proc sys dev; do mountpoint -q "$WORK/root/$f" 2>/dev/null && umount -l "$WORK/root/$f"; done
    if [[ "${KEEP_WORK:-0}" == 1 ]]; then
        log "work dir kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log "work dir $WORK, kernel $KVER, $(qemu-system-x86_64 --version | head -1)"

# --- The package and the binaries ----------------------------------------------
# Which attestd goes into the guest: ATTESTD_DEB; else the package this tree
# builds (packaging/build-deb.sh, when it exists); else the newest
# target/debian/attestd_*.deb; else the FALLBACK (binary copied in, see below).
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
DEB="${ATTESTD_DEB:-}"
if [[ "$DEB" == none ]]; then
    DEB=""
elif [[ -z "$DEB" && -z "${ATTESTD_VM_BIN_DIR:-}" && -f "$REPO/packaging/build-deb.sh" ]]; then
    log "building the packages: packaging/build-deb.sh (log: $WORK/build-deb.log)"
    (cd "$REPO" && bash packaging/build-deb.sh) >"$WORK/build-deb.log" 2>&1 \
        || { tail -20 "$WORK/build-deb.log" >&2; die "packaging/build-deb.sh failed"; }
fi
if [[ -z "$DEB" && "${ATTESTD_DEB:-}" != none ]]; then
    DEB="$(ls -t "$TARGET_DIR"/debian/attestd_*.deb "$REPO"/target/debian/attestd_*.deb 2>/dev/null | head -1 || true)"
fi
[[ -z "$DEB" || -f "$DEB" ]] || die "ATTESTD_DEB=$DEB does not exist"

# Host side: attestd-issuer and the workload spiffe_fetch (and attestd for the
# FALLBACK). With a package, the issuer is the attestd-issuer package of the
# same build, when it lies next to it. Each cargo build selects one package,
# as cargo-deb does, so their builds share one feature resolution.
cargo_bin() {   # cargo_bin PACKAGE BIN: builds it (release), prints its path
    (cd "$REPO" && cargo build --release --quiet -p "$1" --bin "$2") >&2 || die "cargo build -p $1 --bin $2 failed"
    echo "$TARGET_DIR/release/$2"
}
if [[ -n "${ATTESTD_VM_BIN_DIR:-}" ]]; then
    log "binaries from $ATTESTD_VM_BIN_DIR (ATTESTD_VM_BIN_DIR, not built)"
    ATTESTD_BIN="$ATTESTD_VM_BIN_DIR/attestd"
    ISSUER_BIN="$ATTESTD_VM_BIN_DIR/attestd-issuer"
    SPIFFE_FETCH="$ATTESTD_VM_BIN_DIR/spiffe_fetch"
else
    ISSUER_DEB=""
    if [[ -n "$DEB" ]]; then
        ISSUER_DEB="$(dirname "$DEB")/$(basename "$DEB" | sed 's/^attestd_/attestd-issuer_/')"
        [[ -f "$ISSUER_DEB" ]] || ISSUER_DEB=""
    fi
    if [[ -n "$ISSUER_DEB" ]]; then
        mkdir -p "$WORK/issuer-pkg"
        dpkg-deb -x "$ISSUER_DEB" "$WORK/issuer-pkg"
        ISSUER_BIN="$WORK/issuer-pkg/usr/bin/attestd-issuer"
        log "issuer from $(basename "$ISSUER_DEB"); cargo build --release: spiffe_fetch"
    else
        log "cargo build --release: attestd-issuer, spiffe_fetch$([[ -n "$DEB" ]] || echo ", attestd")"
        ISSUER_BIN="$(cargo_bin attestd-issuer attestd-issuer)"
    fi
    SPIFFE_FETCH="$(cargo_bin attestd-tests spiffe_fetch)"
    ATTESTD_BIN=""
    [[ -n "$DEB" ]] || ATTESTD_BIN="$(cargo_bin attestd attestd)"
fi
for b in "$ISSUER_BIN" "$SPIFFE_FETCH"; do [[ -x "$b" ]] || die "missing $b"; done
[[ -n "$DEB" || -x "$ATTESTD_BIN" ]] || die "missing $ATTESTD_BIN"

# --- Guest root: debootstrap, cached by its recipe --------------------------------
# Runtime libraries of attestd (ldd: libtss2-esys, -tctildr, -mu, -sys, libssl3;
# libtss2-tcti-device is dlopen()ed by the TCTI loader), systemd and udev (the
# tpm-udev rule, pulled in by libtss2, gives /dev/tpmrm0 to group tss), and
# what the attestd package depends on besides (procps, adduser for scripts).
SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
ROOT_PKGS="systemd,udev,adduser,procps,tpm-udev,libtss2-esys-3.0.2-0,libtss2-tctildr0,libtss2-mu0,libtss2-sys1,libtss2-tcti-device0,libssl3"
ROOT_KEY="$(printf '%s\n' "recipe 1" "$SUITE" "$MIRROR" minbase "$ROOT_PKGS" | sha256sum | cut -c1-16)"
BASE_ROOT="$CACHE/root-$SUITE-$ROOT_KEY"
mkdir -p "$CACHE"
(
    flock 9
    if [[ ! -f "$BASE_ROOT/.vmtest-complete" ]]; then
        rm -rf "$BASE_ROOT" "$BASE_ROOT.tmp"
        log "debootstrap --variant=minbase $SUITE (+ $ROOT_PKGS) into $BASE_ROOT (cached for later runs)"
        t0=$(date +%s)
        if ! debootstrap --variant=minbase --include="$ROOT_PKGS" "$SUITE" "$BASE_ROOT.tmp" "$MIRROR" \
            >"$CACHE/debootstrap.log" 2>&1; then
            tail -20 "$CACHE/debootstrap.log" >&2
            rm -rf "$BASE_ROOT.tmp"
            exit 1
        fi
        rm -rf "$BASE_ROOT.tmp/var/cache/apt/archives/"*.deb
        echo "$ROOT_PKGS" >"$BASE_ROOT.tmp/.vmtest-complete"
        mv "$BASE_ROOT.tmp" "$BASE_ROOT"
        log "debootstrap took $(( $(date +%s) - t0 )) s"
    else
        log "guest root from cache: $BASE_ROOT"
    fi
) 9>"$CACHE/.lock" || die "debootstrap failed (log: $CACHE/debootstrap.log)"

# --- Per-run guest root: a copy of the cached one, with attestd installed ----------
ROOT="$WORK/root"
t0=$(date +%s)
cp -a "$BASE_ROOT" "$ROOT"
rm -f "$ROOT/.vmtest-complete"
chroot_run() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
mount -t proc proc "$ROOT/proc"

if [[ -n "$DEB" ]]; then
    INSTALL_MODE="deb $(basename "$DEB")"
    log "installing $DEB into the guest root (dpkg -i in a chroot)"
    cp "$DEB" "$ROOT/tmp/attestd.deb"
    chroot_run dpkg -i /tmp/attestd.deb >"$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log" >&2; die "dpkg -i failed"; }
    rm -f "$ROOT/tmp/attestd.deb"
    [[ -f "$ROOT/lib/systemd/system/attestd.service" || -f "$ROOT/usr/lib/systemd/system/attestd.service" ]] \
        || die "the .deb has no attestd.service"
else
    # FALLBACK until packaging/ produces a .deb: the binary is copied in and a
    # minimal unit stands in for the packaged one (same paths and socket).
    INSTALL_MODE="FALLBACK (no .deb: binary copied, test unit)"
    log "no attestd .deb: FALLBACK, copying $ATTESTD_BIN and a minimal attestd.service"
    install -m 0755 "$ATTESTD_BIN" "$ROOT/usr/bin/attestd"
    mkdir -p "$ROOT/etc/attestd/attestd.d"
    printf '# attestd-vm-tests fallback config: built-in defaults, see attestd.d/\n' >"$ROOT/etc/attestd/attestd.toml"
    cat >"$ROOT/etc/systemd/system/attestd.service" <<'EOF'
# FALLBACK unit written by vm-tests/run.sh because no attestd .deb was found.
[Unit]
Description=attestd (vm-tests fallback unit)
After=network.target
[Service]
Type=exec
ExecStart=/usr/bin/attestd run --config /etc/attestd/attestd.toml
StateDirectory=attestd
RuntimeDirectory=attestd
[Install]
WantedBy=multi-user.target
EOF
fi

install -m 0755 "$SPIFFE_FETCH" "$ROOT/usr/local/bin/spiffe_fetch"
chroot_run useradd --uid "$WORKLOAD_UID" --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin vmworkload
echo vmtest >"$ROOT/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 vmtest\n' >"$ROOT/etc/hosts"
: >"$ROOT/etc/fstab"
# The initramfs names and configures eth0 before systemd starts; keep the name.
mkdir -p "$ROOT/etc/systemd/network"
ln -sf /dev/null "$ROOT/etc/systemd/network/99-default.link"
# Nothing on the serial line, no periodic jobs, no logins, no debug file
# systems: the test unit is the only user, and every second counts under TCG.
for u in getty@.service serial-getty@.service getty.target apt-daily.timer apt-daily-upgrade.timer \
    e2scrub_all.timer e2scrub_reap.service fstrim.timer systemd-logind.service \
    systemd-timesyncd.service dpkg-db-backup.timer systemd-tmpfiles-clean.timer \
    systemd-user-sessions.service systemd-update-utmp.service systemd-update-utmp-runlevel.service \
    sys-kernel-debug.mount sys-kernel-tracing.mount dev-hugepages.mount; do
    ln -sf /dev/null "$ROOT/etc/systemd/system/$u"
done

# Daemon config: the packaged /etc/attestd/attestd.toml is left as shipped;
# the test's settings are a drop-in (config layer 3) and a unit drop-in.
mkdir -p "$ROOT/etc/attestd/attestd.d" "$ROOT/etc/systemd/system/attestd.service.d"
cat >"$ROOT/etc/attestd/attestd.d/50-vmtest.toml" <<EOF
# written by vm-tests/run.sh
[issuer]
url = "https://$GUEST_ISSUER_ADDR:$GUEST_ISSUER_PORT"
ca_bundle = "/etc/attestd/vmtest-issuer-ca.pem"
server_name = "$ISSUER_NAME"
retry_initial_ms = 1000
retry_max_ms = 4000

[tpm]
fresh_pcrs = "$QUOTE_PCRS"
EOF
cat >"$ROOT/etc/systemd/system/attestd.service.d/50-vmtest.conf" <<'EOF'
# written by vm-tests/run.sh: info logs (TPM ready, node attested) in the journal
[Service]
Environment=ATTESTD_LOG=info
EOF

# The test unit: waits for the daemon's verdict, runs the workload as uid 1500,
# collects the evidence and powers off. Type=simple so that boot "finishes" and
# systemd-analyze can report it.
cat >"$ROOT/etc/systemd/system/attestd-vmtest.service" <<'EOF'
[Unit]
Description=attestd VM test driver
After=attestd.service
Wants=attestd.service
[Service]
Type=simple
ExecStart=/usr/local/sbin/attestd-vmtest
StandardOutput=journal+console
StandardError=journal+console
[Install]
WantedBy=multi-user.target
EOF
cat >"$ROOT/usr/local/sbin/attestd-vmtest" <<'EOF'
#!/bin/sh
# Runs in the guest (vm-tests/run.sh). Inputs in /vmtest/in, results to /vmtest/out.
OUT=/vmtest/out
IN=/vmtest/in
say() { echo "[vmtest $(cut -d' ' -f1 /proc/uptime)s] $*"; }
finish() {
    journalctl -b --no-pager -o short-monotonic >$OUT/journal.txt 2>&1
    journalctl -b --no-pager -o cat -u attestd.service >$OUT/attestd.log 2>&1
    systemctl status --no-pager attestd.service >$OUT/attestd-status.txt 2>&1
    cut -d' ' -f1 /proc/uptime >$OUT/uptime-end
    echo "$1" >$OUT/DONE
    sync
    say "done ($1), powering off"
    systemctl poweroff --force
}
cut -d' ' -f1 /proc/uptime >$OUT/uptime-start
cat /proc/cmdline >$OUT/cmdline
cp /sys/kernel/security/tpm0/binary_bios_measurements $OUT/binary_bios_measurements
say "waiting for attestd's verdict"
# Bounded poll: SERVING (attested), or the daemon logged a failed attestation,
# or the daemon is not running.
verdict=timeout
i=0
while [ $i -lt 200 ]; do
    if attestd healthcheck >$OUT/healthcheck.txt 2>&1; then verdict=serving; break; fi
    if journalctl -b --no-pager -o cat -u attestd.service | grep -q 'node attestation failed'; then
        attestd healthcheck >$OUT/healthcheck.txt 2>&1
        verdict=refused; break
    fi
    state=$(systemctl is-active attestd.service)
    case "$state" in failed|inactive) verdict="daemon-$state"; break ;; esac
    i=$((i + 1))
    sleep 0.2
done
say "verdict: $verdict"
cut -d' ' -f1 /proc/uptime >$OUT/uptime-verdict
if [ "$verdict" = serving ]; then
    mkdir -p /tmp/workload && chown vmworkload: /tmp/workload
    setpriv --reuid vmworkload --regid vmworkload --clear-groups \
        /usr/local/bin/spiffe_fetch /run/attestd/api.sock x509 /tmp/workload \
        >$OUT/workload-spiffe-id.txt 2>$OUT/workload-stderr.txt
    echo $? >$OUT/workload-rc
    cp /tmp/workload/svid.pem /tmp/workload/bundle.pem $OUT/ 2>/dev/null
    attestd evidence --hardware-fresh --nonce "$(cat $IN/nonce)" --out $OUT/evidence.cbor >$OUT/evidence.txt 2>&1
    echo $? >$OUT/evidence-rc
fi
# Whatever the verdict: a quote with the daemon's AK (from its state dir), so
# the host can see which PCRs this boot has, refused or not.
attestd quote --nonce "$(cat $IN/nonce)" --pcrs "$(cat $IN/quote-pcrs)" --out $OUT/quote >$OUT/quote.txt 2>&1
echo $? >$OUT/quote-rc
attestd ek show --out $OUT/ek >$OUT/ek.txt 2>&1
ps -o user=,pid=,args= -C attestd >$OUT/ps.txt 2>&1
# Boot time as systemd saw it (the boot has finished by now: this unit is
# Type=simple). `systemd-analyze blame` is left out: without D-Bus it hangs.
timeout 20 systemctl is-system-running --wait >$OUT/system-running.txt 2>&1
timeout 20 systemd-analyze >$OUT/systemd-analyze.txt 2>&1
finish "$verdict"
EOF
chmod 0755 "$ROOT/usr/local/sbin/attestd-vmtest"
mkdir -p "$ROOT/vmtest"
chroot_run systemctl enable attestd.service attestd-vmtest.service >/dev/null 2>&1 \
    || die "systemctl enable failed"
umount "$ROOT/proc"
log "guest root ready in $(( $(date +%s) - t0 )) s: $INSTALL_MODE"

# --- Initramfs ----------------------------------------------------------------------
# busybox /init: load 9p/virtio/overlay/virtio-net modules, mount the guest root
# (9p, read-only) under a tmpfs overlay, the state and transfer shares, set the
# guest's only address, and switch_root to systemd.
build_initramfs() {   # build_initramfs OUT [EXTRA_FILE_CONTENT]
    local out="$1" extra="${2:-}" ird
    ird="$(mktemp -d "$WORK/initramfs.XXXXXX")"
    mkdir -p "$ird"/{bin,dev,proc,sys,modules,lower,upper,newroot}
    cp /bin/busybox "$ird/bin/busybox"
    mknod -m 600 "$ird/dev/console" c 5 1
    mknod -m 666 "$ird/dev/null" c 1 3
    copy_modules "$ird/modules" "$KVER" 9p 9pnet_virtio virtio_pci overlay virtio_net virtio-rng
    cat >"$ird/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say() { echo "[initramfs $(cut -d' ' -f1 /proc/uptime)s] $*" >/dev/console; }
fail() { say "FAILED: $*"; poweroff -f; }
for m in $(cat /modules/order); do insmod /modules/$m || fail "insmod $m"; done
P9=trans=virtio,version=9p2000.L,msize=262144
mount -t 9p -o $P9,ro,cache=loose guestroot /lower || fail "mount guestroot"
mount -t tmpfs -o mode=0755 tmpfs /upper || fail "tmpfs"
mkdir -p /upper/u /upper/w
mount -t overlay overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w /newroot || fail "overlay"
mkdir -p /newroot/var/lib/attestd /newroot/vmtest
mount -t 9p -o $P9,rw attestdstate /newroot/var/lib/attestd || fail "mount attestdstate"
mount -t 9p -o $P9,rw vmtest /newroot/vmtest || fail "mount vmtest"
[ -f /etc/vmtest-extra ] && cp /etc/vmtest-extra /newroot/vmtest/out/initramfs-extra
cp /newroot/vmtest/in/issuer-ca.pem /newroot/etc/attestd/vmtest-issuer-ca.pem || fail "issuer CA"
ip link set lo up
ip link set eth0 up || fail "no eth0"
ip addr add 10.0.2.15/24 dev eth0 || fail "address"
say "switching to systemd"
umount /proc /sys /dev
exec switch_root /newroot /lib/systemd/systemd
EOF
    chmod 0755 "$ird/init"
    if [[ -n "$extra" ]]; then
        mkdir -p "$ird/etc"
        printf '%s\n' "$extra" >"$ird/etc/vmtest-extra"
    fi
    # Reproducible archive: fixed order and mtimes, so the same content gives
    # the same bytes (PCR 9 measures them).
    find "$ird" -exec touch -h -d @0 {} +
    (cd "$ird" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet --reproducible | gzip -9n) >"$out"
    rm -rf "$ird"
}
build_initramfs "$WORK/initrd.img"
build_initramfs "$WORK/initrd-changed.img" "one extra file: changed-initrd scenario"
log "initramfs built ($(stat -c %s "$WORK/initrd.img") bytes; changed one $(stat -c %s "$WORK/initrd-changed.img"))"

# --- vTPMs ----------------------------------------------------------------------------
make_ca() {   # make_ca DIR NAME
    local dir="$1"
    mkdir -p "$dir"
    cat >"$dir/localca.conf" <<EOF
statedir = $dir
signingkey = $dir/signkey.pem
issuercert = $dir/issuercert.pem
certserial = $dir/certserial
EOF
    cat >"$dir/localca.options" <<EOF
--platform-manufacturer attestd-vm-tests
--platform-model qemu-q35-ovmf
--platform-version 1
EOF
    cat >"$dir/swtpm_setup.conf" <<EOF
create_certs_tool = /usr/bin/swtpm_localca
create_certs_tool_config = $dir/localca.conf
create_certs_tool_options = $dir/localca.options
EOF
}
make_vtpm() {   # make_vtpm NAME CA_DIR: TPM state, OVMF vars, daemon state share
    local name="$1" ca="$2" d="$WORK/$1"
    mkdir -p "$d/tpm" "$d/attestd-state"
    chmod 0700 "$d/attestd-state"
    swtpm_setup --tpm2 --tpmstate "$d/tpm" --create-ek-cert --create-platform-cert \
        --config "$ca/swtpm_setup.conf" --pcr-banks sha1,sha256 \
        --logfile "$d/swtpm_setup.log" >/dev/null || die "swtpm_setup $name failed"
    cp "$OVMF_VARS" "$d/OVMF_VARS.fd"
}

# --- Issuer ---------------------------------------------------------------------------
ISSUER_DIR="$WORK/issuer"
mkdir -p "$ISSUER_DIR/ek-roots" "$ISSUER_DIR/state"
ISSUER_PORT=""
write_issuer_config() {   # write_issuer_config NAME EK_TRUST ALLOWLIST_FILE_OR_EMPTY RULES_TOML
    local name="$1" trust="$2" allowlist="$3" rules="$4" cfg="$ISSUER_DIR/$1.toml"
    {
        echo "listen = \"127.0.0.1:0\""
        echo "trust_domain = \"$TRUST_DOMAIN\""
        echo "server_names = [\"$ISSUER_NAME\"]"
        echo "node_svid_ttl_secs = 3600"
        echo "entries = \"$ISSUER_DIR/$name-entries.toml\""
        echo "[ca]"
        echo "cert = \"$ISSUER_DIR/state/ca.pem\""
        echo "key = \"$ISSUER_DIR/state/ca.key\""
        echo "[ek]"
        echo "roots_dir = \"$ISSUER_DIR/ek-roots\""
        [[ -n "$allowlist" ]] && echo "allowlist = \"$allowlist\""
        echo "[policy]"
        echo "ek_trust = \"$trust\""
        echo "quote_pcrs = [\"$QUOTE_PCRS\"]"
        echo "require_event_log = true"
        echo "rules = ["
        printf '%s\n' "$rules"
        echo "]"
    } >"$cfg"
    echo "$cfg"
}
write_entries() {   # write_entries NAME NODE_SELECTORS_TOML_ARRAY
    cat >"$ISSUER_DIR/$1-entries.toml" <<EOF
[[entry]]
spiffe_id = "spiffe://$TRUST_DOMAIN/vm-workload"
node_selectors = $2
selectors = ["unix:uid:$WORKLOAD_UID"]
x509_ttl_secs = 3600
EOF
}
start_issuer() {   # start_issuer CONFIG LOG: runs it, sets ISSUER_PORT from its "serving" line
    local cfg="$1" logf="$2"
    "$ISSUER_BIN" check-config --config "$cfg" >"$logf.check" 2>&1 || { cat "$logf.check" >&2; return 1; }
    NO_COLOR=1 "$ISSUER_BIN" --log info run --config "$cfg" >"$logf" 2>&1 &
    echo $! >"$PIDS_DIR/issuer.pid"
    ISSUER_PORT=""
    for _ in $(seq 300); do
        ISSUER_PORT="$(sed -n 's/\x1b\[[0-9;]*m//g; s/.*serving.*addr=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$logf" | head -1)"
        [[ -n "$ISSUER_PORT" ]] && return 0
        kill -0 "$(cat "$PIDS_DIR/issuer.pid")" 2>/dev/null || break
        sleep 0.1
    done
    tail -5 "$logf" >&2
    return 1
}
stop_issuer() { stop_pidfile "$PIDS_DIR/issuer.pid"; }

# --- One boot --------------------------------------------------------------------------
# boot_guest VTPM INITRD CMDLINE XFER: swtpm + QEMU until the guest powers off.
# Sets BOOT_SECS; returns 1 if QEMU failed or hit BOOT_TIMEOUT.
BOOT_SECS=0
boot_guest() {
    local initrd="$2" cmdline="$3" xfer="$4" d="$WORK/$1"
    swtpm socket --tpm2 --tpmstate dir="$d/tpm" \
        --ctrl type=unixio,path="$d/swtpm.sock" \
        --log file="$d/swtpm.log",level=1 \
        --daemon --pid file="$PIDS_DIR/swtpm.pid" || return 1
    for _ in $(seq 50); do [[ -S "$d/swtpm.sock" ]] && break; sleep 0.1; done
    # shellcheck disable=SC2054 # commas are QEMU's option syntax
    local qemu_args=(
        -nodefaults -nographic -no-user-config
        -accel tcg -machine q35 -m 1024 -smp 1
        -drive if=pflash,format=raw,unit=0,readonly=on,file="$OVMF_CODE"
        -drive if=pflash,format=raw,unit=1,file="$d/OVMF_VARS.fd"
        -chardev socket,id=chrtpm,path="$d/swtpm.sock"
        -tpmdev emulator,id=tpm0,chardev=chrtpm
        -device tpm-tis,tpmdev=tpm0
        -virtfs local,path="$ROOT",mount_tag=guestroot,security_model=none,readonly=on,multidevs=remap
        -virtfs local,path="$d/attestd-state",mount_tag=attestdstate,security_model=mapped-xattr,multidevs=remap
        -virtfs local,path="$xfer",mount_tag=vmtest,security_model=none,multidevs=remap
        # The guest's only network: a user-mode stack with no way out
        # (restrict=on), where 10.0.2.100:8443 is forwarded, one socat per
        # connection, to the issuer on the host's loopback.
        -netdev "user,id=n0,restrict=on,guestfwd=tcp:$GUEST_ISSUER_ADDR:$GUEST_ISSUER_PORT-cmd:socat - TCP:127.0.0.1:$ISSUER_PORT"
        -device virtio-net-pci,netdev=n0
        # Entropy from the host: the guest's CRNG is ready at once instead of
        # after ~10 s of TCG (getrandom() blocks attestd and systemd until then).
        -object rng-random,id=rng0,filename=/dev/urandom -device virtio-rng-pci,rng=rng0
        -kernel "/boot/vmlinuz-$KVER" -initrd "$initrd" -append "$cmdline"
        -serial file:"$xfer/../console.log" -monitor none -no-reboot
        -pidfile "$PIDS_DIR/qemu.pid"
    )
    local t0 t1 rc=0
    t0=$(date +%s%N)
    timeout --kill-after=5 "$BOOT_TIMEOUT" qemu-system-x86_64 "${qemu_args[@]}" \
        >"$xfer/../qemu.out" 2>&1 || rc=$?
    t1=$(date +%s%N)
    BOOT_SECS="$(( (t1 - t0) / 1000000000 )).$(( (t1 - t0) / 100000000 % 10 ))"
    rm -f "$PIDS_DIR/qemu.pid"
    stop_pidfile "$PIDS_DIR/swtpm.pid"
    [[ $rc -eq 0 ]] || { log "QEMU exited with $rc after $BOOT_SECS s"; return 1; }
    return 0
}

# --- Helpers for the checks ---------------------------------------------------------------
RESULTS=()
N_PASS=0
N_FAIL=0
pass() {   # pass NAME [NOTE]
    local line="PASS $1 ($BOOT_SECS s boot${2:+, $2})"
    RESULTS+=("$line"); N_PASS=$((N_PASS + 1)); echo "$line"
}
fail() { RESULTS+=("FAIL $1: $2"); N_FAIL=$((N_FAIL + 1)); echo "FAIL $1: $2"; }
declare -A OK=()

# new_boot NAME: a scenario dir with the transfer share (in/ from the host, out/ from the guest)
new_boot() {
    local sd="$WORK/s-$1"
    mkdir -p "$sd/xfer/in" "$sd/xfer/out"
    cp "$ISSUER_DIR/bundle.pem" "$sd/xfer/in/issuer-ca.pem"
    od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$sd/xfer/in/nonce"
    echo "$QUOTE_PCRS" >"$sd/xfer/in/quote-pcrs"
    chmod -R a+rX "$sd/xfer"
    echo "$sd"
}
# A short account of a guest that did not do what was expected.
guest_tail() {   # guest_tail SCENARIO_DIR
    local sd="$1" o="$1/xfer/out" msg=""
    if [[ -s "$o/attestd.log" ]]; then
        msg="attestd: $(grep -v '^\s*$' "$o/attestd.log" | tail -2 | tr '\n' ' ' | cut -c1-400)"
    elif [[ -s "$sd/console.log" ]]; then
        msg="console: $(sed 's/\x1b\[[0-9;=]*[A-Za-z]//g' "$sd/console.log" | tr -d '\r' | grep -v '^\s*$' | tail -3 | tr '\n' ' ' | cut -c1-400)"
    fi
    echo "$msg"
}
# boot_checked NAME VTPM INITRD CMDLINE SCENARIO_DIR: boots; returns 1 (reason in
# BOOT_FAIL) if QEMU failed, the guest did not finish, or the boot took too long.
BOOT_FAIL=""
boot_checked() {
    local name="$1" sd="$5"
    BOOT_FAIL=""
    log "$name: booting (vTPM $2, cmdline \"$4\")"
    if ! boot_guest "$2" "$3" "$4" "$sd/xfer"; then
        BOOT_FAIL="QEMU failed or was killed after $BOOT_SECS s; $(guest_tail "$sd")"
        return 1
    fi
    if [[ ! -f "$sd/xfer/out/DONE" ]]; then
        BOOT_FAIL="the guest powered off without finishing the test; $(guest_tail "$sd")"
        return 1
    fi
    local up
    up="$(cat "$sd/xfer/out/uptime-start" 2>/dev/null || echo '?')"
    log "$name: guest done in $BOOT_SECS s (verdict $(cat "$sd/xfer/out/DONE"), test unit started at ${up} s guest uptime, $(head -1 "$sd/xfer/out/systemd-analyze.txt" 2>/dev/null))"
    if awk -v s="$BOOT_SECS" -v l="$BOOT_LIMIT" 'BEGIN { exit !(s > l) }'; then
        BOOT_FAIL="the boot took $BOOT_SECS s, over the $BOOT_LIMIT s limit"
        return 1
    fi
    return 0
}
# Values from "key=value" fields of the last log line matching a pattern.
log_field() {   # log_field FILE PATTERN KEY
    grep -- "$2" "$1" 2>/dev/null | tail -1 | grep -o "$3=[^ ]*" | head -1 | cut -d= -f2- | tr -d '"'
}
# "index hex" lines of a bank from tpm2-tools YAML ("  sha256:" then "    0 : 0x...").
pcr_values() {   # pcr_values FILE BANK
    awk -v want="$2" '
        /^ *(sha1|sha256|sha384|sha512):/ { bank = $1; sub(":", "", bank); next }
        /^ +[0-9]+ *: *0x/ {
            if (bank != want) next
            line = $0; gsub(/[ :]+/, " ", line); split(line, f, " ")
            v = f[2]; sub("0x", "", v); print f[1], tolower(v); next
        }
        /^[^ ]/ { bank = "" }
    ' "$1"
}
# check_svid OUT_DIR: the workload's X.509-SVID names vm-workload and chains to the issuer's bundle.
SVID_FAIL=""
check_svid() {
    local o="$1" want="spiffe://$TRUST_DOMAIN/vm-workload" uris
    SVID_FAIL=""
    [[ "$(cat "$o/workload-rc" 2>/dev/null)" == 0 ]] \
        || { SVID_FAIL="the workload got no SVID: $(cat "$o/workload-stderr.txt" 2>/dev/null | head -2)"; return 1; }
    [[ "$(cat "$o/workload-spiffe-id.txt")" == "$want" ]] \
        || { SVID_FAIL="the workload's SPIFFE ID is '$(cat "$o/workload-spiffe-id.txt")', not $want"; return 1; }
    openssl x509 -in "$o/svid.pem" -out "$o/svid-leaf.pem" 2>/dev/null \
        || { SVID_FAIL="svid.pem is not a certificate"; return 1; }
    uris="$(openssl x509 -in "$o/svid-leaf.pem" -noout -ext subjectAltName 2>/dev/null | grep -o 'URI:[^, ]*' || true)"
    [[ "$uris" == "URI:$want" ]] \
        || { SVID_FAIL="the SVID's URI SANs are '$(echo $uris)', not exactly URI:$want"; return 1; }
    openssl verify -CAfile "$ISSUER_DIR/bundle.pem" "$o/svid-leaf.pem" >"$o/openssl-verify.txt" 2>&1 \
        || { SVID_FAIL="openssl verify against the issuer bundle: $(tail -1 "$o/openssl-verify.txt")"; return 1; }
    cmp -s <(openssl x509 -in "$o/bundle.pem" -outform DER) <(openssl x509 -in "$ISSUER_DIR/bundle.pem" -outform DER) \
        || { SVID_FAIL="the bundle the workload received is not the issuer's CA"; return 1; }
    return 0
}

# verify_fresh OUT_DIR NONCE RESULT_DIR: the guest's hardware-fresh evidence,
# checked offline against the issuer's bundle; it must name node NODE1.
FRESH_FAIL=""
verify_fresh() {
    local o="$1" nonce="$2" r="$3"
    FRESH_FAIL=""
    [[ "$(cat "$o/evidence-rc" 2>/dev/null)" == 0 ]] \
        || { FRESH_FAIL="attestd evidence --hardware-fresh failed in the guest: $(tail -2 "$o/evidence.txt" | tr '\n' ' ')"; return 1; }
    cat >"$r/offline.toml" <<EOF
trust_domain = "$TRUST_DOMAIN"
bundle = "$ISSUER_DIR/bundle.pem"
nodes = ["$NODE1"]
hardware_fresh = true
max_age_secs = 600
EOF
    "$ISSUER_BIN" verify "$o/evidence.cbor" --policy "$r/offline.toml" --nonce "$nonce" >"$r/verify.txt" 2>&1 \
        || { FRESH_FAIL="attestd-issuer verify refuses the guest's hardware-fresh evidence: $(tail -1 "$r/verify.txt")"; return 1; }
    grep -qx "node: $NODE1" "$r/verify.txt" \
        || { FRESH_FAIL="the evidence's node SVID names $(grep '^node:' "$r/verify.txt"), not $NODE1"; return 1; }
    return 0
}

# --- Set-up: two CAs, two vTPMs, the issuer's CA ---------------------------------------------
log "manufacturing vTPMs (swtpm_setup, EK certificates from two throwaway local CAs)"
make_ca "$WORK/ca1"
make_ca "$WORK/ca2"
make_vtpm tpm1 "$WORK/ca1"
make_vtpm tpm2 "$WORK/ca2"
cp "$WORK/ca1/swtpm-localca-rootca-cert.pem" "$ISSUER_DIR/ek-roots/ca1-root.pem"
cp "$WORK/ca1/issuercert.pem" "$ISSUER_DIR/ek-roots/ca1-intermediate.pem"
BASE_RULES="  'secure_boot == false',"
write_entries bundle "[]"
BUNDLE_CFG="$(write_issuer_config bundle certificate "" "$BASE_RULES")"
"$ISSUER_BIN" bundle --config "$BUNDLE_CFG" >"$ISSUER_DIR/bundle.pem" 2>"$ISSUER_DIR/bundle.log" \
    || die "attestd-issuer bundle: $(cat "$ISSUER_DIR/bundle.log")"

NODE1=""; EK1=""; AK1=""
declare -A GOLD=()

# --- 1. clean-boot ------------------------------------------------------------------------------
scenario_clean_boot() {
    local s=clean-boot sd o cfg
    sd="$(new_boot $s)"; o="$sd/xfer/out"
    write_entries $s "[]"
    cfg="$(write_issuer_config $s certificate "" "$BASE_RULES")"
    BOOT_SECS=0
    start_issuer "$cfg" "$sd/issuer.log" || { fail $s "the issuer did not start"; return; }
    boot_checked $s tpm1 "$WORK/initrd.img" "$BASE_CMDLINE" "$sd" || { stop_issuer; fail $s "$BOOT_FAIL"; return; }
    stop_issuer
    [[ "$(cat "$o/DONE")" == serving ]] \
        || { fail $s "the daemon did not attest (verdict $(cat "$o/DONE")); $(guest_tail "$sd")"; return; }
    NODE1="$(log_field "$o/attestd.log" 'node attested' spiffe_id)"
    local issuer_node
    issuer_node="$(log_field "$sd/issuer.log" 'node attested' spiffe_id)"
    EK1="$(log_field "$o/attestd.log" 'TPM ready' ek)"
    AK1="$(log_field "$o/attestd.log" 'TPM ready' ak)"
    [[ -n "$NODE1" && "$NODE1" == "spiffe://$TRUST_DOMAIN/attestd/node/$EK1" ]] \
        || { fail $s "the daemon's node SPIFFE ID '$NODE1' is not spiffe://$TRUST_DOMAIN/attestd/node/<its EK hash $EK1>"; return; }
    [[ "$issuer_node" == "$NODE1" ]] \
        || { fail $s "the issuer attested '$issuer_node', the daemon says '$NODE1'"; return; }
    grep 'challenge issued' "$sd/issuer.log" | grep -q 'verdict=EK certificate chains to a trusted CA' \
        || { fail $s "the issuer did not trust the EK by its certificate"; return; }
    grep -q "$EK1" "$o/ek.txt" \
        || { fail $s "\`attestd ek show\` in the guest does not print the EK hash $EK1: $(head -2 "$o/ek.txt" | tr '\n' ' ')"; return; }
    check_svid "$o" || { fail $s "$SVID_FAIL"; return; }
    log "$s: attested as $NODE1; daemon process: $(head -1 "$o/ps.txt" | cut -c1-60)"
    OK[$s]=1
    pass $s
}

# --- 2. eventlog-replay --------------------------------------------------------------------------
# Three views of the same boot must agree on sha256 PCRs 0-9:
#  a. tpm2_eventlog's replay (host, tpm2-tools) of the event log copied in the guest;
#  b. a quote made in the guest with the daemon's AK (`attestd quote`), checked on
#     the host by tpm2_checkquote (signature, nonce, PCR digest), and replayed with -e;
#  c. the daemon's hardware-fresh evidence, verified by `attestd-issuer verify`
#     against the issuer's bundle: a quote by the AK the node SVID names.
scenario_eventlog_replay() {
    local s=eventlog-replay sd="$WORK/s-clean-boot" o r
    o="$sd/xfer/out"; r="$WORK/s-$s"
    mkdir -p "$r"
    BOOT_SECS="$(awk '{print $0}' "$WORK/clean-boot.secs" 2>/dev/null || echo 0)"
    [[ -n "${OK[clean-boot]:-}" ]] || { fail $s "needs the clean-boot outputs, and clean-boot failed"; return; }
    local nonce; nonce="$(cat "$sd/xfer/in/nonce")"
    [[ "$(cat "$o/quote-rc")" == 0 ]] || { fail $s "attestd quote failed in the guest: $(tail -2 "$o/quote.txt")"; return; }
    # The quote's AK is the daemon's (its name as the daemon logged it at start).
    local qak; qak="$(od -An -tx1 -v "$o/quote/ak.name" | tr -d ' \n')"
    [[ "$qak" == "$AK1" ]] || { fail $s "the quote's AK name $qak is not the daemon's AK $AK1"; return; }
    # (a) the replay
    tpm2_eventlog "$o/binary_bios_measurements" >"$r/eventlog.yaml" 2>"$r/eventlog.err" \
        || { fail $s "tpm2_eventlog cannot parse the guest's event log: $(head -2 "$r/eventlog.err")"; return; }
    sed -n '/^pcrs:/,$p' "$r/eventlog.yaml" >"$r/replayed.yaml"
    pcr_values "$r/replayed.yaml" sha256 >"$r/replayed.txt"
    # (b) tpm2_checkquote
    tpm2_checkquote -u "$o/quote/ak.pem" -m "$o/quote/quote.msg" -s "$o/quote/quote.sig" \
        -f "$o/quote/quote.pcrs" -g sha256 -q "$nonce" >"$r/checkquote.yaml" 2>"$r/checkquote.err" \
        || { fail $s "tpm2_checkquote rejects the guest's quote: $(head -2 "$r/checkquote.err")"; return; }
    pcr_values "$r/checkquote.yaml" sha256 >"$r/quoted.txt"
    tpm2_checkquote -u "$o/quote/ak.pem" -m "$o/quote/quote.msg" -s "$o/quote/quote.sig" \
        -f "$o/quote/quote.pcrs" -g sha256 -q "$nonce" -e "$o/binary_bios_measurements" \
        >"$r/checkquote-e.yaml" 2>"$r/checkquote-e.err" \
        || { fail $s "tpm2_checkquote -e (event log replay) fails: $(grep -E 'ERROR|WARN' "$r/checkquote-e.err" | head -2 | tr '\n' ' ')"; return; }
    # (c) hardware-fresh evidence
    verify_fresh "$o" "$nonce" "$r" || { fail $s "$FRESH_FAIL"; return; }
    sed -n 's/^pcr: sha256:\([0-9]*\) \([0-9a-f]*\)$/\1 \2/p' "$r/verify.txt" >"$r/fresh.txt"
    local i q e f zero mism=() n
    zero="$(printf '0%.0s' $(seq 64))"
    n=0
    for i in 0 1 2 3 4 5 6 7 8 9; do
        q="$(awk -v i=$i '$1 == i { print $2 }' "$r/quoted.txt")"
        e="$(awk -v i=$i '$1 == i { print $2 }' "$r/replayed.txt")"
        f="$(awk -v i=$i '$1 == i { print $2 }' "$r/fresh.txt")"
        [[ -n "$e" ]] || e="$zero"   # a PCR with no events replays to its reset value
        [[ -n "$q" && "$q" == "$e" && "$q" == "$f" ]] || mism+=("PCR$i quote=${q:0:12} replay=${e:0:12} fresh=${f:0:12}")
        [[ "$q" != "$zero" ]] && n=$((n + 1))
        GOLD[$i]="$q"
    done
    [[ ${#mism[@]} -eq 0 ]] || { fail $s "replay and quotes differ: ${mism[*]}"; return; }
    [[ $n -ge 6 ]] || { fail $s "only $n of PCRs 0-9 are non-zero: no measured boot?"; return; }
    for i in 0 1 2 3 4 5 6 7 8 9; do echo "$i ${GOLD[$i]}"; done >"$r/golden.txt"
    OK[$s]=1
    pass $s "clean-boot's; no boot of its own"
}

# Strict policy from the clean boot's measured values (PCR 9 first: the one the
# kernel's EFI stub extends with the command line and the initrd).
strict_rules() {
    local i
    for i in 9 4 0 1 2 3 5 6 7; do
        echo "  'pcr.sha256.$i == \"${GOLD[$i]}\"',"
    done
    echo "$BASE_RULES"
}

# --- 3. reboot-same-node ----------------------------------------------------------------------------
scenario_reboot() {
    local s=reboot-same-node sd o cfg
    BOOT_SECS=0
    [[ -n "${OK[eventlog-replay]:-}" ]] || { fail $s "needs the clean boot's verified PCR values, and eventlog-replay failed"; return; }
    sd="$(new_boot $s)"; o="$sd/xfer/out"
    echo "$EK1" >"$ISSUER_DIR/allowlist-ek1"
    write_entries $s "[\"tpm:ek:$EK1\"]"
    cfg="$(write_issuer_config $s allowlist "$ISSUER_DIR/allowlist-ek1" "$(strict_rules)")"
    start_issuer "$cfg" "$sd/issuer.log" || { fail $s "the issuer did not start with the strict policy"; return; }
    boot_checked $s tpm1 "$WORK/initrd.img" "$BASE_CMDLINE" "$sd" || { stop_issuer; fail $s "$BOOT_FAIL"; return; }
    stop_issuer
    [[ "$(cat "$o/DONE")" == serving ]] \
        || { fail $s "the daemon did not attest again (verdict $(cat "$o/DONE")); $(guest_tail "$sd")"; return; }
    local node ak inode
    node="$(log_field "$o/attestd.log" 'node attested' spiffe_id)"
    inode="$(log_field "$sd/issuer.log" 'node attested' spiffe_id)"
    ak="$(log_field "$o/attestd.log" 'TPM ready' ak)"
    [[ "$node" == "$NODE1" && "$inode" == "$NODE1" ]] \
        || { fail $s "node ID changed: first boot $NODE1, now daemon '$node', issuer '$inode'"; return; }
    [[ "$ak" == "$AK1" ]] || { fail $s "the AK changed ($AK1 -> $ak): the daemon's state was not kept"; return; }
    grep 'challenge issued' "$sd/issuer.log" | grep -q 'verdict=EK hash is enrolled' || { fail $s "the issuer did not trust the EK by the allowlist"; return; }
    grep 'node attested' "$sd/issuer.log" | grep -q 'pcr.sha256.9 ==' \
        || { fail $s "the issuer's decisions do not list the PCR 9 rule"; return; }
    check_svid "$o" || { fail $s "$SVID_FAIL"; return; }
    verify_fresh "$o" "$(cat "$sd/xfer/in/nonce")" "$sd" || { fail $s "$FRESH_FAIL"; return; }
    OK[$s]=1
    pass $s
}

# --- 4/5. changed-cmdline, changed-initrd ---------------------------------------------------------------
scenario_changed() {   # scenario_changed NAME INITRD CMDLINE
    local s="$1" sd o cfg
    BOOT_SECS=0
    [[ -n "${OK[eventlog-replay]:-}" ]] || { fail $s "needs the clean boot's verified PCR values, and eventlog-replay failed"; return; }
    sd="$(new_boot "$s")"; o="$sd/xfer/out"
    write_entries "$s" "[\"tpm:ek:$EK1\"]"
    cfg="$(write_issuer_config "$s" allowlist "$ISSUER_DIR/allowlist-ek1" "$(strict_rules)")"
    start_issuer "$cfg" "$sd/issuer.log" || { fail "$s" "the issuer did not start"; return; }
    boot_checked "$s" tpm1 "$2" "$3" "$sd" || { stop_issuer; fail "$s" "$BOOT_FAIL"; return; }
    stop_issuer
    [[ "$(cat "$o/DONE")" == refused ]] \
        || { fail "$s" "expected a refusal, the guest's verdict is $(cat "$o/DONE")"; return; }
    # OVMF's loader appends initrd=initrd to the load options (and PCR 9's event).
    [[ "$(cat "$o/cmdline")" == "$3 initrd=initrd" ]] \
        || { fail "$s" "the guest's /proc/cmdline is '$(cat "$o/cmdline")', not '$3 initrd=initrd'"; return; }
    if [[ "$2" == "$WORK/initrd-changed.img" ]]; then
        [[ -s "$o/initramfs-extra" ]] || { fail "$s" "the guest's initramfs had no extra file"; return; }
    else
        [[ ! -e "$o/initramfs-extra" ]] || { fail "$s" "the guest's initramfs had the extra file"; return; }
    fi
    local rule="policy rule \`pcr.sha256.9 == \"${GOLD[9]}\"\` failed"
    local iline dline
    iline="$(grep 'refused' "$sd/issuer.log" | grep -F "$rule" | head -1)"
    dline="$(grep 'node attestation failed' "$o/attestd.log" | grep -F "$rule" | head -1)"
    [[ -n "$iline" ]] || { fail "$s" "the issuer's log has no refusal naming the PCR 9 rule: $(grep -m1 refused "$sd/issuer.log" | cut -c1-300)"; return; }
    [[ -n "$dline" ]] || { fail "$s" "the daemon's log has no refusal naming the PCR 9 rule: $(grep -m1 'node attestation failed' "$o/attestd.log" | cut -c1-300)"; return; }
    grep -q 'node attested' "$sd/issuer.log" && { fail "$s" "the issuer attested the node anyway"; return; }
    grep -q 'NOT_SERVING' "$o/healthcheck.txt" || { fail "$s" "the daemon's health is not NOT_SERVING"; return; }
    # Which PCRs this boot changed: the guest's own quote, checked here, must
    # show the PCR 9 value the issuer refused.
    local now; now="$(echo "$iline" | grep -o 'the quoted value is [0-9a-f]*' | awk '{print $5}')"
    tpm2_checkquote -u "$o/quote/ak.pem" -m "$o/quote/quote.msg" -s "$o/quote/quote.sig" \
        -f "$o/quote/quote.pcrs" -g sha256 -q "$(cat "$sd/xfer/in/nonce")" >"$sd/checkquote.yaml" 2>&1 \
        || { fail "$s" "tpm2_checkquote rejects the refused guest's quote: $(tail -1 "$sd/checkquote.yaml")"; return; }
    pcr_values "$sd/checkquote.yaml" sha256 >"$sd/quoted.txt"
    local i q changed=()
    for i in 0 1 2 3 4 5 6 7 8 9; do
        q="$(awk -v i=$i '$1 == i { print $2 }' "$sd/quoted.txt")"
        [[ "$q" == "${GOLD[$i]}" ]] || changed+=("$i")
    done
    [[ "$(awk '$1 == 9 { print $2 }' "$sd/quoted.txt")" == "$now" ]] \
        || { fail "$s" "the guest's quote has PCR 9 $(awk '$1 == 9 { print $2 }' "$sd/quoted.txt"), the issuer refused $now"; return; }
    log "$s: refused as expected: PCR 9 ${GOLD[9]:0:16}... -> ${now:0:16}...; PCRs that differ from the clean boot: ${changed[*]}"
    echo "${changed[*]}" >"$sd/changed-pcrs"
    OK[$s]=1
    pass "$s"
}

# --- 6. unenrolled-ek ------------------------------------------------------------------------------------
scenario_unenrolled() {
    local s=unenrolled-ek sd o cfg
    BOOT_SECS=0
    [[ -n "$EK1" ]] || { fail $s "needs the first vTPM's EK hash, and clean-boot failed"; return; }
    sd="$(new_boot $s)"; o="$sd/xfer/out"
    echo "$EK1" >"$ISSUER_DIR/allowlist-ek1"
    write_entries $s "[]"
    # Trust: CA 1's certificates or the allowlist (EK 1); the vTPM is tpm2, from CA 2.
    cfg="$(write_issuer_config $s either "$ISSUER_DIR/allowlist-ek1" "$BASE_RULES")"
    start_issuer "$cfg" "$sd/issuer.log" || { fail $s "the issuer did not start"; return; }
    boot_checked $s tpm2 "$WORK/initrd.img" "$BASE_CMDLINE" "$sd" || { stop_issuer; fail $s "$BOOT_FAIL"; return; }
    stop_issuer
    [[ "$(cat "$o/DONE")" == refused ]] \
        || { fail $s "expected a refusal, the guest's verdict is $(cat "$o/DONE")"; return; }
    local ek2; ek2="$(log_field "$o/attestd.log" 'TPM ready' ek)"
    [[ -n "$ek2" && "$ek2" != "$EK1" ]] || { fail $s "the second vTPM's EK hash '$ek2' is not a new one"; return; }
    local want1="the EK certificate does not chain to a trusted EK CA" want2="EK $ek2 is not enrolled"
    local iline dline
    iline="$(grep 'refused: EK not trusted' "$sd/issuer.log" | grep -F "$want1" | grep -F "$want2" | head -1)"
    dline="$(grep 'node attestation failed' "$o/attestd.log" | grep -F "EK not trusted" | grep -F "$want1" | grep -F "$want2" | head -1)"
    [[ -n "$iline" ]] || { fail $s "the issuer's log has no 'EK not trusted' refusal for $ek2: $(grep -m1 refused "$sd/issuer.log" | cut -c1-300)"; return; }
    [[ -n "$dline" ]] || { fail $s "the daemon's log has no 'EK not trusted' refusal: $(grep -m1 'node attestation failed' "$o/attestd.log" | cut -c1-300)"; return; }
    grep -q 'challenge issued' "$sd/issuer.log" && { fail $s "the issuer issued a challenge to the untrusted EK"; return; }
    OK[$s]=1
    pass $s
}

scenario_clean_boot; echo "$BOOT_SECS" >"$WORK/clean-boot.secs"
scenario_eventlog_replay
scenario_reboot
scenario_changed changed-cmdline "$WORK/initrd.img" "$BASE_CMDLINE attestd.changed=1"
scenario_changed changed-initrd "$WORK/initrd-changed.img" "$BASE_CMDLINE"
scenario_unenrolled

log "total $(( $(date +%s) - START_TS )) s; guest root: $INSTALL_MODE"
echo "vm-tests: $N_PASS passed, $N_FAIL failed"
[[ $N_FAIL -eq 0 ]]
