# shellcheck shell=bash
# Sourced by the vm-tests scripts. Needs bash, modprobe (kmod), and xz, zstd
# or gzip for compressed modules.

# copy_modules DIR KVER MODULE...
# Copies the kernel KVER's MODULEs and everything they depend on into DIR,
# decompressed, and lists their file names in DIR/order in load order (each
# once), for an initramfs whose /init insmods them in that order.
copy_modules() {
    local dir="$1" kver="$2" m ko base
    shift 2
    : >"$dir/order"
    for m in "$@"; do modprobe -S "$kver" --show-depends "$m"; done \
        | awk '$1 == "insmod" { print $2 }' | awk '!seen[$0]++' | while read -r ko; do
        base="$(basename "$ko")"
        case "$ko" in
            *.ko) cp "$ko" "$dir/$base" ;;
            *.ko.xz) xz -dc "$ko" >"$dir/${base%.xz}"; base="${base%.xz}" ;;
            *.ko.zst) zstd -qdc "$ko" >"$dir/${base%.zst}"; base="${base%.zst}" ;;
            *.ko.gz) gzip -dc "$ko" >"$dir/${base%.gz}"; base="${base%.gz}" ;;
        esac
        echo "$base" >>"$dir/order"
    done
}
