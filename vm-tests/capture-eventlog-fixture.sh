#!/usr/bin/env bash
# Captures a REAL TPM event-log fixture from a QEMU guest booted with OVMF
# (UEFI measured boot) and a swtpm vTPM, for attestd-verifier's tests.
#
# Usage (as root):
#   vm-tests/capture-eventlog-fixture.sh [--ima-template ima-ng|ima-sig] [--secure-boot] OUT_DIR
#
#   --secure-boot: boot OVMF_CODE_4M.ms.fd (the SMM Secure Boot build) with
#   OVMF_VARS_4M.ms.fd (Microsoft KEK/db, Secure Boot on). NOTE: OVMF does not
#   authenticate the -kernel image (most likely because QEMU patches its setup
#   header), so it falls
#   back to its legacy Linux loader: the kernel is neither verified nor
#   measured into PCR 4 by the firmware. See the fixture README.
#
# What it does:
#   1. installs its Debian dependencies if missing (qemu-system-x86, ovmf,
#      swtpm, swtpm-tools, tpm2-tools, busybox-static, cpio, kmod and a Debian
#      kernel, linux-image-amd64, unless one with modules is already in /boot);
#   2. manufactures a vTPM with swtpm_setup (sha1+sha256 banks, EK and platform
#      certificates from a throwaway local CA) and serves it on a unix socket;
#   3. builds a busybox initramfs whose /init loads the 9p/virtio modules,
#      mounts the host's / read-only over 9p and runs the host's tpm2-tools in a
#      chroot of it, and writes its results to a second, writable 9p share;
#   4. boots the Debian kernel directly (-kernel/-initrd/-append) under OVMF,
#      TCG only, with NO network device at all, under a timeout;
#   5. checks the result on the host (tpm2_eventlog, tpm2_checkquote, PCR
#      replay comparison, IMA replay of PCR 10) and writes OUT_DIR/README.md.
#
# Everything happens in a temp dir that is removed on exit, with swtpm killed.
# Environment overrides: KERNEL_VERSION (a /boot/vmlinuz-<v> with modules),
# QEMU_TIMEOUT (seconds, default 900), KEEP_WORK=1 (keep the temp dir).
set -euo pipefail
# shellcheck source=vm-tests/lib/modules.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/modules.sh"

ORIG_ARGS="$*"
IMA_TEMPLATE=ima-ng
SECURE_BOOT=0
OUT=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --ima-template) IMA_TEMPLATE="$2"; shift 2 ;;
        --secure-boot) SECURE_BOOT=1; shift ;;
        -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) OUT="$1"; shift ;;
    esac
done
[[ -n "$OUT" ]] || { echo "usage: $0 [--ima-template ima-ng|ima-sig] [--secure-boot] OUT_DIR" >&2; exit 2; }
case "$IMA_TEMPLATE" in ima-ng|ima-sig) ;; *) echo "unsupported IMA template $IMA_TEMPLATE" >&2; exit 2 ;; esac
[[ $(id -u) -eq 0 ]] || { echo "must run as root (9p passthrough of /, mknod)" >&2; exit 1; }

QEMU_TIMEOUT="${QEMU_TIMEOUT:-900}"
START_TS=$(date +%s)
log() { printf '[capture %3ss] %s\n' "$(( $(date +%s) - START_TS ))" "$*"; }

# --- 0. Dependencies --------------------------------------------------------
DEPS=(qemu-system-x86 ovmf swtpm swtpm-tools tpm2-tools busybox-static cpio kmod python3)
missing=()
for p in "${DEPS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

pick_kernel() {
    if [[ -n "${KERNEL_VERSION:-}" ]]; then echo "$KERNEL_VERSION"; return; fi
    local k v
    for k in /boot/vmlinuz-*; do
        [[ -e "$k" ]] || continue
        v="${k#/boot/vmlinuz-}"
        [[ -f "/lib/modules/$v/modules.dep" ]] && echo "$v"
    done | sort -V | tail -1
}
KVER="$(pick_kernel)"
[[ -n "$KVER" ]] || missing+=(linux-image-amd64)

if [[ ${#missing[@]} -gt 0 ]]; then
    log "installing missing packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    KVER="$(pick_kernel)"
fi
[[ -n "$KVER" && -f "/boot/vmlinuz-$KVER" ]] || { echo "no usable kernel in /boot" >&2; exit 1; }

if [[ "$SECURE_BOOT" == 1 ]]; then
    OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.ms.fd
    OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.ms.fd
    MACHINE=q35,smm=on
else
    OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
    OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
    MACHINE=q35
fi
for f in "$OVMF_CODE" "$OVMF_VARS" /bin/busybox; do
    [[ -f "$f" ]] || { echo "missing $f" >&2; exit 1; }
done

# --- 1. Temp dir and cleanup ------------------------------------------------
WORK="$(mktemp -d /tmp/capture-eventlog.XXXXXX)"
SWTPM_PID_FILE="$WORK/swtpm.pid"
cleanup() {
    local rc=$?
    if [[ -s "$SWTPM_PID_FILE" ]]; then
        kill "$(cat "$SWTPM_PID_FILE")" 2>/dev/null || true
    fi
    if [[ "${KEEP_WORK:-0}" == 1 ]]; then
        echo "work dir kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
log "work dir $WORK, kernel $KVER, IMA template $IMA_TEMPLATE, Secure Boot $SECURE_BOOT"

# --- 2. Manufacture the vTPM -------------------------------------------------
mkdir -p "$WORK/ca" "$WORK/tpm"
cat >"$WORK/localca.conf" <<EOF
statedir = $WORK/ca
signingkey = $WORK/ca/signkey.pem
issuercert = $WORK/ca/issuercert.pem
certserial = $WORK/ca/certserial
EOF
cat >"$WORK/localca.options" <<EOF
--tpm-manufacturer id:00001014
--tpm-model swtpm
--tpm-version id:20191023
--platform-manufacturer attestd-test
--platform-model qemu-q35-ovmf
--platform-version 1
EOF
cat >"$WORK/swtpm_setup.conf" <<EOF
create_certs_tool = /usr/bin/swtpm_localca
create_certs_tool_config = $WORK/localca.conf
create_certs_tool_options = $WORK/localca.options
EOF
log "swtpm_setup (sha1+sha256 banks, EK + platform certificates)"
swtpm_setup --tpm2 --tpmstate "$WORK/tpm" --create-ek-cert --create-platform-cert \
    --config "$WORK/swtpm_setup.conf" --pcr-banks sha1,sha256 \
    --logfile "$WORK/swtpm_setup.log" >/dev/null

swtpm socket --tpm2 --tpmstate dir="$WORK/tpm" \
    --ctrl type=unixio,path="$WORK/swtpm.sock" \
    --log file="$WORK/swtpm.log",level=1 \
    --daemon --pid file="$SWTPM_PID_FILE"
for _ in $(seq 50); do [[ -S "$WORK/swtpm.sock" ]] && break; sleep 0.1; done
[[ -S "$WORK/swtpm.sock" ]] || { echo "swtpm did not start" >&2; exit 1; }
log "swtpm running (pid $(cat "$SWTPM_PID_FILE"))"

# --- 3. Initramfs -------------------------------------------------------------
NONCE="$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
PCR_SEL_ALL="sha1:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23+sha256:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23"
QUOTE_SEL="sha256:0,1,2,3,4,5,6,7,8,9,10"

IRD="$WORK/initramfs"
mkdir -p "$IRD"/{bin,dev,proc,sys,host,out,modules}
cp /bin/busybox "$IRD/bin/busybox"
mknod -m 600 "$IRD/dev/console" c 5 1
mknod -m 666 "$IRD/dev/null" c 1 3

# Modules the guest needs for 9p over virtio-pci, in dependency order.
copy_modules "$IRD/modules" "$KVER" 9p 9pnet_virtio virtio_pci
log "initramfs modules: $(tr '\n' ' ' <"$IRD/modules/order")"

# The guest's /init. Host tools run via `chroot /host`; everything the guest
# writes goes to a guest tmpfs first (/host/run/fx; tmpfs is never measured by
# IMA's tcb policy) and is copied to the writable 9p share at the very end.
cat >"$IRD/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
NONCE=$NONCE
PCR_SEL_ALL=$PCR_SEL_ALL
QUOTE_SEL=$QUOTE_SEL
EOF
cat >>"$IRD/init" <<'EOF'
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t securityfs securityfs /sys/kernel/security
say() { echo "[guest] $*" >/dev/console; }
finish() {
    sync
    umount /out 2>/dev/null
    say "powering off"
    poweroff -f
}
fail() { say "FAILED: $*"; echo "$*" >/out/FAILED 2>/dev/null; finish; }

for m in $(cat /modules/order); do insmod /modules/$m || fail "insmod $m"; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro hostroot /host || fail "mount hostroot"
mount -t 9p -o trans=virtio,version=9p2000.L,rw out /out || fail "mount out"
mount -t devtmpfs devtmpfs /host/dev || fail "mount /host/dev"
mount -t proc proc /host/proc || fail "mount /host/proc"
mount -t sysfs sysfs /host/sys || fail "mount /host/sys"
mount -t securityfs securityfs /host/sys/kernel/security || fail "mount securityfs"
mount -t tmpfs tmpfs /host/run || fail "mount /host/run"
mount -t tmpfs tmpfs /host/tmp || fail "mount /host/tmp"
mkdir -p /host/run/fx
FX=/host/run/fx
[ -e /dev/tpmrm0 ] || fail "no /dev/tpmrm0"
[ -e /sys/kernel/security/tpm0/binary_bios_measurements ] || fail "no binary_bios_measurements"

# Run a host binary inside the chroot, cwd = the guest tmpfs result dir.
tool() {
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TPM2TOOLS_TCTI=device:/dev/tpmrm0 HOME=/run/fx \
        chroot /host /usr/bin/env --chdir=/run/fx "$@"
}

uname -r >$FX/guest-uname.txt
cat /proc/cmdline >$FX/guest-cmdline.txt
ima_entries() { grep -c . /sys/kernel/security/ima/ascii_runtime_measurements 2>/dev/null || echo 0; }
say "IMA entries before tools: $(ima_entries)"

# Warm-up: every host file the tools load (binary, libraries, TCTI, configs)
# is measured by IMA the first time; make that happen now, so the capture
# sequence below adds no IMA entries between the PCR read and the log copy.
tool tpm2_getcap pcrs >$FX/getcap-pcrs.yaml || fail "tpm2_getcap"
tool tpm2_readpublic -c 0x81010001 -o ek-rsa2048.pub >/dev/null || fail "readpublic EK"
tool tpm2_nvread 0x01c00002 -o ek-rsa2048.cert.der 2>/dev/null || fail "nvread EK cert"
tool tpm2_createak -C 0x81010001 -c ak.ctx -G ecc -g sha256 -s ecdsa \
    -u ak.pub -n ak.name >/dev/null || fail "tpm2_createak"
tool tpm2_readpublic -c ak.ctx -o ak.pub >/dev/null || fail "readpublic AK"
tool tpm2_readpublic -c ak.ctx -f pem -o ak.pem >/dev/null || fail "readpublic AK pem"
tool tpm2_pcrread -o warmup.bin "$PCR_SEL_ALL" >/dev/null || fail "warm-up pcrread"
tool tpm2_quote -c ak.ctx -l "$QUOTE_SEL" -q 00 -m warmup.msg -s warmup.sig \
    -o warmup.pcrs -F serialized -g sha256 >/dev/null || fail "warm-up quote"
rm -f $FX/warmup.*
say "IMA entries after warm-up: $(ima_entries)"

# Capture: boot log, IMA log (before), PCRs, quote, IMA log (after).
cat /sys/kernel/security/tpm0/binary_bios_measurements >$FX/binary_bios_measurements
cat /sys/kernel/security/ima/binary_runtime_measurements >$FX/ima-before-pcrread.bin
tool tpm2_pcrread -o pcrs.bin "$PCR_SEL_ALL" >$FX/pcrs.yaml || fail "tpm2_pcrread"
tool tpm2_quote -c ak.ctx -l "$QUOTE_SEL" -q "$NONCE" -m quote.msg -s quote.sig \
    -o quote.pcrs -F serialized -g sha256 >$FX/quote.yaml || fail "tpm2_quote"
cat /sys/kernel/security/ima/binary_runtime_measurements >$FX/ima_binary_runtime_measurements
say "IMA entries after capture: $(ima_entries)"
echo "$NONCE" >$FX/nonce.hex
rm -f $FX/ak.ctx

cp $FX/* /out/ || fail "copy results"
echo ok >/out/DONE
finish
EOF
chmod 755 "$IRD/init"
(cd "$IRD" && find . -print0 | cpio --null -o -H newc --quiet | gzip -9) >"$WORK/initrd.img"
log "initramfs built ($(stat -c %s "$WORK/initrd.img") bytes)"

# --- 4. Boot -----------------------------------------------------------------
cp "$OVMF_VARS" "$WORK/OVMF_VARS.fd"
KERNEL_IMAGE="/boot/vmlinuz-$KVER"
SB_ARGS=()
if [[ "$SECURE_BOOT" == 1 ]]; then
    SB_ARGS=(-global driver=cfi.pflash01,property=secure,value=on)
fi
mkdir -p "$WORK/out"
CMDLINE="console=ttyS0 panic=-1 ima_policy=tcb ima_template=$IMA_TEMPLATE ima_hash=sha256"
QEMU_VERSION="$(qemu-system-x86_64 --version | head -1)"
log "booting $QEMU_VERSION (TCG, OVMF, swtpm, no network); console log in work dir"
QEMU_ARGS=(
    -nodefaults -nographic -no-user-config
    -accel tcg -machine "$MACHINE" -m 1024 -smp 1 "${SB_ARGS[@]}"
    -drive if=pflash,format=raw,unit=0,readonly=on,file="$OVMF_CODE"
    -drive if=pflash,format=raw,unit=1,file="$WORK/OVMF_VARS.fd"
    -chardev socket,id=chrtpm,path="$WORK/swtpm.sock"
    -tpmdev emulator,id=tpm0,chardev=chrtpm
    -device tpm-tis,tpmdev=tpm0
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap
    -virtfs local,path="$WORK/out",mount_tag=out,security_model=none,multidevs=remap
    -kernel "$KERNEL_IMAGE" -initrd "$WORK/initrd.img" -append "$CMDLINE"
    -serial file:"$WORK/console.log" -monitor none
    -net none -no-reboot
)
BOOT_START=$(date +%s)
if ! timeout "$QEMU_TIMEOUT" qemu-system-x86_64 "${QEMU_ARGS[@]}"; then
    echo "qemu failed or timed out; console tail:" >&2
    tail -30 "$WORK/console.log" >&2 || true
    exit 1
fi
BOOT_SECS=$(( $(date +%s) - BOOT_START ))
grep '^\[guest\]' "$WORK/console.log" | sed 's/^/    /' || true
if [[ ! -f "$WORK/out/DONE" ]]; then
    echo "guest did not finish; console tail:" >&2
    tail -40 "$WORK/console.log" >&2
    exit 1
fi
log "guest run took ${BOOT_SECS}s"

# --- 5. Host-side checks and the fixture ---------------------------------------
G="$WORK/out"
mkdir -p "$OUT"
for f in binary_bios_measurements ima_binary_runtime_measurements pcrs.bin pcrs.yaml \
    quote.msg quote.sig quote.pcrs quote.yaml ak.pub ak.pem ak.name nonce.hex \
    ek-rsa2048.pub ek-rsa2048.cert.der getcap-pcrs.yaml; do
    cp "$G/$f" "$OUT/$f"
done
cp "$WORK/ca/swtpm-localca-rootca-cert.pem" "$OUT/ca-root.pem"
cp "$WORK/ca/issuercert.pem" "$OUT/ca-intermediate.pem"

log "tpm2_eventlog on the host"
tpm2_eventlog "$OUT/binary_bios_measurements" >"$OUT/tpm2_eventlog.yaml"

log "tpm2_checkquote on the host"
CHECKQUOTE="$(tpm2_checkquote -u "$OUT/ak.pub" -m "$OUT/quote.msg" -s "$OUT/quote.sig" \
    -f "$OUT/quote.pcrs" -g sha256 -q "$NONCE" 2>&1)" || {
    echo "tpm2_checkquote FAILED:" >&2; echo "$CHECKQUOTE" >&2; exit 1; }
echo "    tpm2_checkquote: OK"
# The same with the boot event log (-e): tpm2-tools replays it and compares
# every quoted PCR; PCR 10 (IMA) has no events in the boot log, so this is
# expected to report exactly one mismatch, PCR 10.
CHECKQUOTE_E="$(tpm2_checkquote -u "$OUT/ak.pub" -m "$OUT/quote.msg" -s "$OUT/quote.sig" \
    -f "$OUT/quote.pcrs" -g sha256 -q "$NONCE" -e "$OUT/binary_bios_measurements" 2>&1 >/dev/null \
    | grep -E 'WARN|ERROR' | tr '\n' ';' || true)"
echo "    tpm2_checkquote -e binary_bios_measurements: ${CHECKQUOTE_E:-OK}"

# PCR values as "bank index hex" lines from tpm2-tools YAML ("  sha256:" then
# "    0 : 0x...").
pcr_lines() {
    awk '
        /^  (sha1|sha256|sha384|sha512):/ { bank = $1; sub(":", "", bank); next }
        /^    [0-9]+ *: *0x/ {
            if (bank == "") next
            line = $0; gsub(/[ :]+/, " ", line); split(line, f, " ")
            v = f[2]; sub("0x", "", v); print bank, f[1], tolower(v); next
        }
        /^[^ ]/ { bank = "" }
    ' "$1"
}
# tpm2_eventlog prints the replayed PCRs under a top-level "pcrs:" key.
sed -n '/^pcrs:/,$p' "$OUT/tpm2_eventlog.yaml" >"$WORK/replayed.yaml"
pcr_lines "$WORK/replayed.yaml" | sort >"$WORK/replayed.txt"
pcr_lines "$OUT/pcrs.yaml" | sort >"$WORK/read.txt"
COMPARE="$WORK/compare.txt"
: >"$COMPARE"
PCR_MISMATCH=0
while read -r bank idx val; do
    got="$(awk -v b="$bank" -v i="$idx" '$1 == b && $2 == i { print $3 }' "$WORK/read.txt")"
    if [[ "$got" == "$val" ]]; then
        echo "$bank $idx match $val" >>"$COMPARE"
    else
        echo "$bank $idx MISMATCH log=$val read=$got" >>"$COMPARE"
        PCR_MISMATCH=1
    fi
done <"$WORK/replayed.txt"
sed 's/^/    /' "$COMPARE"
SHA256_0_7="$(awk '$1 == "sha256" && $2 <= 7' "$COMPARE" | grep -c ' match ' || true)"
PCR_SUMMARY="sha256 PCRs 0-7: $SHA256_0_7 of 8 replayed values equal the PCRs read in the guest; all compared: $(grep -c ' match ' "$COMPARE" || true) match, $(grep -c MISMATCH "$COMPARE" || true) differ"
log "$PCR_SUMMARY"

# Is PCR 4's EV_EFI_BOOT_SERVICES_APPLICATION (the kernel) the Authenticode
# SHA-256 of the kernel file? (A verifier's golden value would be computed so.)
KERNEL_AUTHENTICODE="$(python3 - "/boot/vmlinuz-$KVER" <<'PY'
import hashlib, struct, sys
d = open(sys.argv[1], "rb").read()
pe = struct.unpack_from("<I", d, 0x3c)[0]; opt = pe + 24
nsec = struct.unpack_from("<H", d, pe + 6)[0]; optsz = struct.unpack_from("<H", d, pe + 20)[0]
magic = struct.unpack_from("<H", d, opt)[0]
dd = opt + (112 if magic == 0x20b else 96)
cks, ctdir = opt + 64, dd + 8 * 4
hdrs = struct.unpack_from("<I", d, opt + 60)[0]
ctoff, ctsz = struct.unpack_from("<II", d, ctdir)
h = hashlib.sha256(); h.update(d[:cks]); h.update(d[cks + 4:ctdir]); h.update(d[ctdir + 8:hdrs])
secs = sorted(struct.unpack_from("<II", d, opt + optsz + 40 * i + 16)[::-1] for i in range(nsec))
total = hdrs
for rp, rs in secs:
    if rs: h.update(d[rp:rp + rs]); total += rs
if len(d) - ctsz > total: h.update(d[total:len(d) - ctsz])
print(h.hexdigest())
PY
)"
PCR4_APP="$(awk '
    /EventType:/ { app = ($2 == "EV_EFI_BOOT_SERVICES_APPLICATION") }
    app && /AlgorithmId: sha256/ { want = 1; next }
    want && /Digest:/ { gsub(/"/, "", $2); print $2; want = 0; app = 0 }
' "$OUT/tpm2_eventlog.yaml" | tr '\n' ' ' | sed 's/ $//')"
if [[ -z "$PCR4_APP" ]]; then
    PCR4_NOTE="PCR 4 has NO EV_EFI_BOOT_SERVICES_APPLICATION event: the firmware did not measure the kernel (the Authenticode SHA-256 of \`/boot/vmlinuz-$KVER\` is $KERNEL_AUTHENTICODE)."
elif [[ " $PCR4_APP " == *" $KERNEL_AUTHENTICODE "* ]]; then
    PCR4_NOTE="PCR 4's EV_EFI_BOOT_SERVICES_APPLICATION sha256 digest equals the Authenticode SHA-256 of \`/boot/vmlinuz-$KVER\` ($KERNEL_AUTHENTICODE)."
else
    PCR4_NOTE="PCR 4's EV_EFI_BOOT_SERVICES_APPLICATION sha256 digest ($PCR4_APP) is NOT the Authenticode SHA-256 of \`/boot/vmlinuz-$KVER\` ($KERNEL_AUTHENTICODE): the firmware hashed the image QEMU handed it over fw_cfg (most likely different because QEMU patches the bzImage setup header before handing it over)."
fi
echo "    $PCR4_NOTE"

# IMA replay of PCR 10 (sha1 and sha256 banks) against the PCRs read in the
# guest, without and with the entries recorded before the PCR read.
cp "$G/ima-before-pcrread.bin" "$WORK/ima-before.bin"
IMA_REPORT="$(python3 - "$OUT/ima_binary_runtime_measurements" "$WORK/ima-before.bin" "$WORK/read.txt" <<'PY' 2>&1 || true
import hashlib, struct, sys
log_path, before_path, read_path = sys.argv[1:4]
read = {}
for line in open(read_path):
    b, i, v = line.split()
    read[(b, int(i))] = v
def entries(path):
    data = open(path, "rb").read()
    off, out = 0, []
    while off < len(data):
        pcr, = struct.unpack_from("<I", data, off); off += 4
        digest = data[off:off + 20]; off += 20
        nlen, = struct.unpack_from("<I", data, off); off += 4
        name = data[off:off + nlen].decode(); off += nlen
        tlen, = struct.unpack_from("<I", data, off); off += 4
        tdata = data[off:off + tlen]; off += tlen
        out.append((pcr, digest, name, tdata))
    return out
ents = entries(log_path)
before = open(before_path, "rb").read()
after = open(log_path, "rb").read()
print(f"IMA entries: {len(ents)} (template {ents[0][2] if ents else '?'}); "
      f"log copied before the PCR read: {len(entries(before_path))} entries, "
      f"{'identical to' if before == after else ('a prefix of' if after.startswith(before) else 'DIFFERENT from')} the one kept")
# boot_aggregate (entry 1): with a sha256 "d-ng" digest the kernel hashes the
# sha256 bank's PCRs 0-7 and, since Linux 5.8, 8-9.
if ents and ents[0][2] in ("ima-ng", "ima-sig"):
    t = ents[0][3]
    flen, = struct.unpack_from("<I", t, 0)
    algo, _, dig = t[4:4 + flen].partition(b"\0")
    if algo == b"sha256:":
        for upto in (8, 10):
            calc = hashlib.sha256(b"".join(bytes.fromhex(read[("sha256", i)]) for i in range(upto))).digest()
            if calc == dig:
                print(f"boot_aggregate = sha256(sha256 PCRs 0-{upto - 1} read in the guest): OK")
                break
        else:
            print("boot_aggregate matches neither sha256(PCR 0-7) nor sha256(PCR 0-9)")
for bank, h, size in (("sha1", hashlib.sha1, 20), ("sha256", hashlib.sha256, 32)):
    pcr = bytes(size)
    ok_at = None
    for n, (idx, d, name, tdata) in enumerate(ents, 1):
        if d == bytes(20):          # violation: extended as all-ones
            m = b"\xff" * size
        elif bank == "sha1":
            m = d
            assert hashlib.sha1(tdata).digest() == d, f"entry {n}: template digest mismatch"
        else:
            m = h(tdata).digest()
        pcr = h(pcr + m).digest()
        if pcr.hex() == read.get((bank, 10)):
            ok_at = n
    print(f"PCR10 {bank}: replay of the first {ok_at} entries equals the PCR read in the guest"
          if ok_at else f"PCR10 {bank}: NO prefix of the IMA log replays to the PCR read in the guest")
PY
)"
echo "$IMA_REPORT" | sed 's/^/    /'

# --- 6. README ------------------------------------------------------------------
OVMF_PKG="$(dpkg-query -W -f='${Package} ${Version}' ovmf)"
SWTPM_VER="$(swtpm --version 2>&1 | head -1)"
SWTPM_PKG="$(dpkg-query -W -f='${Package} ${Version}' swtpm)"
TOOLS_PKG="$(dpkg-query -W -f='${Package} ${Version}' tpm2-tools)"
KPKG="$(dpkg-query -S "/boot/vmlinuz-$KVER" 2>/dev/null | cut -d: -f1 || true)"
KPKG_VER="$( [[ -n "$KPKG" ]] && dpkg-query -W -f='${Version}' "$KPKG" || echo unknown)"
GUEST_UNAME="$(cat "$G/guest-uname.txt")"
GUEST_CMDLINE="$(cat "$G/guest-cmdline.txt")"
NAME="$(basename "$(cd "$OUT" && pwd)")"
if [[ "$SECURE_BOOT" == 1 ]]; then
    SB_TEXT="Secure Boot **on** (SMM build; Debian PK, Microsoft KEK and db, as shipped in \`OVMF_VARS_4M.ms.fd\`)"
    KERNEL_TEXT="/boot/vmlinuz-$KVER"
    LOAD_TEXT="OVMF could not authenticate the kernel it got over fw_cfg and fell back to its legacy Linux loader (EFI handover protocol): the kernel was not verified and not measured by the firmware, see the notes"
else
    SB_TEXT="Secure Boot off (no keys enrolled)"
    KERNEL_TEXT="/boot/vmlinuz-$KVER"
    LOAD_TEXT="OVMF \`LoadImage\`s the EFI-stub kernel from fw_cfg and measures it into PCR 4"
fi

{
cat <<EOF
# Event-log fixture \`$NAME\`

Real output of a QEMU guest with UEFI measured boot (OVMF) and a swtpm vTPM,
captured by \`vm-tests/capture-eventlog-fixture.sh $ORIG_ARGS\`
on $(date -u +%Y-%m-%d) (UTC). Nothing here was edited by hand; rerunning the
script makes a new, different but equivalent fixture (fresh TPM, keys, nonce,
and the initramfs, which embeds the nonce, is measured into PCR 9).

## How it was made

| what | value |
| --- | --- |
| QEMU | $QEMU_VERSION (\`-accel tcg -machine $MACHINE -m 1024 -smp 1 ${SB_ARGS[*]}\`, no network device: \`-net none -nodefaults\`) |
| firmware | \`$OVMF_PKG\`: \`$OVMF_CODE\` (read-only pflash) + a copy of \`$OVMF_VARS\`; $SB_TEXT |
| vTPM | $SWTPM_VER (\`$SWTPM_PKG\`), \`swtpm socket --tpm2 --ctrl type=unixio\`, \`-device tpm-tis\` |
| TPM manufacture | \`swtpm_setup --tpm2 --create-ek-cert --create-platform-cert --pcr-banks sha1,sha256\` with a throwaway \`swtpm_localca\` |
| guest kernel | \`$GUEST_UNAME\` (Debian \`$KPKG\` $KPKG_VER), \`/boot/vmlinuz-$KVER\` |
| boot path | direct kernel boot: \`-kernel $KERNEL_TEXT -initrd <busybox initramfs> -append "$CMDLINE"\` (no disk, no GRUB; $LOAD_TEXT) |
| guest /proc/cmdline | \`$GUEST_CMDLINE\` |
| guest userland | busybox-static initramfs; tpm2-tools ($TOOLS_PKG) are the host's, run in the guest via \`chroot\` into the host's \`/\` shared read-only over 9p (virtio) |
| TCTI in the guest | \`device:/dev/tpmrm0\` (kernel resource manager) |
| guest run time | ${BOOT_SECS}s under TCG |

## Files

| file | what |
| --- | --- |
| \`binary_bios_measurements\` | the guest's \`/sys/kernel/security/tpm0/binary_bios_measurements\`, byte for byte (TCG PC Client crypto-agile log, sha1+sha256) |
| \`ima_binary_runtime_measurements\` | the guest's \`/sys/kernel/security/ima/binary_runtime_measurements\`, byte for byte (template \`$IMA_TEMPLATE\`, policy \`tcb\`, PCR 10) |
| \`pcrs.yaml\` | \`tpm2_pcrread $PCR_SEL_ALL\` in the guest (YAML on stdout) |
| \`pcrs.bin\` | the same read's \`-o\` output: the digests only, sha1 0–23 then sha256 0–23, concatenated |
| \`getcap-pcrs.yaml\` | \`tpm2_getcap pcrs\` in the guest: the active PCR banks |
| \`ak.pub\` / \`ak.pem\` / \`ak.name\` | the AK (TPM2B_PUBLIC, PEM, TPM Name): \`tpm2_createak -C 0x81010001 -G ecc -g sha256 -s ecdsa\` under the RSA EK |
| \`ek-rsa2048.pub\` / \`ek-rsa2048.cert.der\` | the RSA EK (TPM2B_PUBLIC) and its certificate from NV \`0x01c00002\` |
| \`ca-root.pem\` / \`ca-intermediate.pem\` | the throwaway swtpm_localca root and issuer that signed the EK certificate |
| \`nonce.hex\` | the quote's qualifying data (32 random bytes, hex) |
| \`quote.msg\` / \`quote.sig\` / \`quote.pcrs\` | \`tpm2_quote -l $QUOTE_SEL -q \$(cat nonce.hex) -g sha256 -F serialized\`: TPMS_ATTEST, TPMT_SIGNATURE, and the quoted PCRs (TPML_PCR_SELECTION + TPML_DIGEST, tpm2-tools "serialized" format) |
| \`quote.yaml\` | \`tpm2_quote\`'s stdout |
| \`tpm2_eventlog.yaml\` | \`tpm2_eventlog binary_bios_measurements\` run on the HOST ($TOOLS_PKG) |

## Capture order inside the guest

IMA's \`tcb\` policy measures every file root reads or executes, so the order
matters for PCR 10:

1. warm-up: \`tpm2_getcap\`, \`tpm2_readpublic\`, \`tpm2_nvread\`, \`tpm2_createak\`,
   a throw-away \`tpm2_pcrread\` and \`tpm2_quote\` — this makes IMA measure every
   host file the tools load (binary, libraries, TCTI modules, configuration)
   before the capture starts;
2. copy \`binary_bios_measurements\` (busybox \`cat\`; initramfs and securityfs
   are never measured);
3. copy the IMA log (kept only for the check below, not in the fixture);
4. \`tpm2_pcrread\` (all 24 PCRs, both banks), then \`tpm2_quote\`;
5. copy the IMA log again: this is \`ima_binary_runtime_measurements\`.

Any IMA entry added after the PCR read would simply be extra at the end of the
log; a verifier replays until it reaches the quoted PCR 10.

## Checks made on the host when the fixture was captured

- \`tpm2_checkquote -u ak.pub -m quote.msg -s quote.sig -f quote.pcrs -g sha256 -q \$(cat nonce.hex)\`: **OK**
- the same with \`-e binary_bios_measurements\`: \`${CHECKQUOTE_E:-OK}\` (expected: PCR 10
  is quoted but is extended by IMA only, so it has no events in the boot log)
- PCRs replayed by \`tpm2_eventlog\` versus PCRs read in the guest (\`pcrs.yaml\`);
  \`tpm2_eventlog\` lists only PCRs that have events. $PCR_SUMMARY:

\`\`\`
$(cat "$COMPARE")
\`\`\`

- kernel measurement: $PCR4_NOTE
- IMA replay (PCR 10; the sha1 bank takes each entry's template digest, the
  sha256 bank the SHA-256 of the entry's template data; violations extend all-ones):

\`\`\`
$IMA_REPORT
\`\`\`
EOF
if [[ -f "$(dirname "$0")/eventlog-fixture-notes.md" ]]; then
    echo
    cat "$(dirname "$0")/eventlog-fixture-notes.md"
fi
} >"$OUT/README.md"

chmod 0644 "$OUT"/*
log "fixture written to $OUT:"
ls -l "$OUT" | sed 's/^/    /'
echo "    total $(du -sb "$OUT" | cut -f1) bytes"
[[ "$PCR_MISMATCH" == 0 ]] || log "WARNING: some replayed PCRs differ from the PCRs read in the guest (see README)"
log "done in $(( $(date +%s) - START_TS ))s"
