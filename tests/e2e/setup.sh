#!/bin/bash
# tests/e2e/setup.sh [CACHE_DIR]
#
# Prepare (once) and cache the guest environment of the end-to-end tests:
#
#   CACHE_DIR/tree/     a Debian trixie tree holding QEMU from trixie-backports
#                       (it has the vfio-user client), linux-image-amd64
#                       (trixie), busybox-static and kmod, with their library
#                       dependencies; nothing is ever run inside it as root and
#                       nothing is chrooted into
#   CACHE_DIR/fw/       QEMU firmware (usr/share/qemu, usr/share/seabios,
#                       usr/lib/ipxe/qemu merged, symlinks resolved)
#   CACHE_DIR/qemu      wrapper: runs the tree's qemu-system-x86_64 through the
#                       tree's dynamic loader; passes "$@"
#   CACHE_DIR/vmlinuz   the guest kernel;  CACHE_DIR/kver: its release
#   CACHE_DIR/busybox   the static busybox the initramfs is built from
#   CACHE_DIR/stamp     versions; written last; present => nothing to do
#
# CACHE_DIR defaults to ${UMDEV_E2E_CACHE:-$HOME/.cache/umdev-e2e}.
# Recipe: apt-get with a private state directory (trixie + trixie-backports
# sources, empty dpkg status) resolves and downloads the .debs, and each is
# unpacked with dpkg -x into tree.tmp, renamed to tree at the end. Nothing on
# the host is installed or upgraded; the host's apt configuration (proxies) is
# honoured, and so is its choice of Debian archive: the one its own sources
# fetch its release from (apt-mirror.sh). apt-get's progress (each package as
# it is fetched, with its size) is shown on stderr and kept in apt/*.log.
#
# Environment: UMDEV_E2E_MIRROR (default: the host's Debian archive),
# UMDEV_E2E_KEYRING (default /usr/share/keyrings/debian-archive-keyring.gpg),
# UMDEV_E2E_FORCE=1 rebuilds everything.
set -euo pipefail

FORMAT=1   # bump when the cache layout or the package set changes
CACHE_DIR=${1:-${UMDEV_E2E_CACHE:-$HOME/.cache/umdev-e2e}}
HERE=$(cd "$(dirname "$0")" && pwd)
MIRROR=${UMDEV_E2E_MIRROR:-}
KEYRING=${UMDEV_E2E_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}
# linux-image-amd64 is pinned to trixie: -t trixie-backports would pull the
# backports kernel too.
PACKAGES=(qemu-system-x86 linux-image-amd64/trixie busybox-static kmod)

log() { printf 'e2e-setup: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=tests/e2e/private-apt.sh
. "$HERE/private-apt.sh"

mkdir -p "$CACHE_DIR"
CACHE_DIR=$(cd "$CACHE_DIR" && pwd)
STAMP=$CACHE_DIR/stamp

stamp_ok() {
    [ -f "$STAMP" ] && grep -qx "format=$FORMAT" "$STAMP" &&
        [ -x "$CACHE_DIR/qemu" ] && [ -f "$CACHE_DIR/vmlinuz" ] &&
        [ -x "$CACHE_DIR/busybox" ] && [ -f "$CACHE_DIR/tree/.complete" ]
}

if [ "${UMDEV_E2E_FORCE:-0}" != 1 ] && stamp_ok; then
    log "up to date ($STAMP)"
    exit 0
fi

# One setup at a time per cache (ctest -j, two shells).
exec 9>"$CACHE_DIR/.lock"
flock 9
if [ "${UMDEV_E2E_FORCE:-0}" != 1 ] && stamp_ok; then
    log "up to date ($STAMP), built by a concurrent run"
    exit 0
fi
rm -f "$STAMP"
T0=$(date +%s.%N)

for tool in apt-get dpkg flock; do
    command -v "$tool" >/dev/null || die "$tool not found (Debian host expected)"
done
[ -r "$KEYRING" ] || die "keyring $KEYRING missing (apt-get install debian-archive-keyring)"

TREE=$CACHE_DIR/tree
if [ "${UMDEV_E2E_FORCE:-0}" = 1 ] || [ ! -f "$TREE/.complete" ]; then
    if [ -z "$MIRROR" ]; then
        MIRROR=$("$HERE/apt-mirror.sh") ||
            die "cannot tell which Debian archive this machine uses; set UMDEV_E2E_MIRROR"
    fi
    log "fetching from $MIRROR (the host's apt sources; UMDEV_E2E_MIRROR overrides)"
    # ---- private apt state ------------------------------------------------
    APT=$CACHE_DIR/apt
    private_apt_init "$APT" "$KEYRING" "$MIRROR" trixie trixie-backports
    # The dpkg status is empty, so the resolver pulls every dependency down to
    # libc6: the tree is self-contained.
    log "resolving and downloading ${PACKAGES[*]} (qemu from trixie-backports)"
    apt-get -q -y "${APTOPT[@]}" -t trixie-backports --download-only \
        install "${PACKAGES[@]}" 2>&1 | tee "$APT/download.log" >&2 ||
        die "apt-get download failed"
    grep '^Inst ' <(apt-get -q "${APTOPT[@]}" -t trixie-backports -s \
        install "${PACKAGES[@]}") | sed -E 's/^Inst ([^ ]+) \(([^ ]+) .*/\1=\2/' \
        >"$APT/packages.txt"
    n=$(wc -l <"$APT/packages.txt")
    [ "$n" -gt 10 ] || die "dependency resolution gave only $n packages"

    # ---- unpack -------------------------------------------------------------
    private_apt_unpack "$APT" "$TREE.tmp"
    printf '%s\n' "$MIRROR" >"$TREE.tmp/.mirror"
    LD=$TREE.tmp/usr/lib64/ld-linux-x86-64.so.2
    LIBS=$TREE.tmp/usr/lib/x86_64-linux-gnu:$TREE.tmp/lib/x86_64-linux-gnu
    [ -x "$LD" ] || die "no dynamic loader in the tree"
    for k in "$TREE.tmp"/usr/lib/modules/*/; do
        k=$(basename "$k")
        "$LD" --library-path "$LIBS" --argv0 depmod "$TREE.tmp/usr/bin/kmod" \
            -b "$TREE.tmp" "$k" || die "depmod $k failed"
    done
    touch "$TREE.tmp/.complete"
    rm -rf "$TREE"
    mv "$TREE.tmp" "$TREE"
    rm -rf "$APT/cache/archives"    # 150 MB of .debs, not needed any more
fi

# ---- derived files (cheap; redone whenever the stamp is missing) -----------
LD=$TREE/usr/lib64/ld-linux-x86-64.so.2
LIBS=$TREE/usr/lib/x86_64-linux-gnu:$TREE/lib/x86_64-linux-gnu

rm -rf "$CACHE_DIR/fw.tmp"
mkdir "$CACHE_DIR/fw.tmp"
for d in usr/share/qemu usr/share/seabios usr/lib/ipxe/qemu; do
    [ -d "$TREE/$d" ] || continue
    # Absolute symlinks point into the tree, not the host: fix them first.
    find "$TREE/$d" -maxdepth 1 -lname '/*' | while read -r l; do
        ln -sfn "$TREE$(readlink "$l")" "$l"
    done
    cp -rL "$TREE/$d/." "$CACHE_DIR/fw.tmp/"
done
[ -f "$CACHE_DIR/fw.tmp/bios-256k.bin" ] || die "seabios bios-256k.bin missing"
rm -rf "$CACHE_DIR/fw"
mv "$CACHE_DIR/fw.tmp" "$CACHE_DIR/fw"

cat >"$CACHE_DIR/qemu.tmp" <<'EOF'
#!/bin/sh
# Generated by tests/e2e/setup.sh: QEMU from the cached trixie tree, no chroot.
D=$(cd "$(dirname "$0")" && pwd)
exec "$D/tree/usr/lib64/ld-linux-x86-64.so.2" \
    --library-path "$D/tree/usr/lib/x86_64-linux-gnu:$D/tree/lib/x86_64-linux-gnu" \
    "$D/tree/usr/bin/qemu-system-x86_64" -L "$D/fw" "$@"
EOF
chmod +x "$CACHE_DIR/qemu.tmp"
mv "$CACHE_DIR/qemu.tmp" "$CACHE_DIR/qemu"

QV=$("$CACHE_DIR/qemu" --version | head -n 1) || die "qemu does not run"
case $QV in
*"version 11."*) ;;
*) die "expected QEMU 11.x, got: $QV" ;;
esac
# Taken whole first: under pipefail, grep -q leaving early would fail the
# pipeline by QEMU's SIGPIPE.
grep -q '"vfio-user-pci"' <<<"$("$CACHE_DIR/qemu" -device help)" ||
    die "this QEMU has no vfio-user-pci device"

KVER=$(find "$TREE/usr/lib/modules" -mindepth 1 -maxdepth 1 -printf "%f\n" | sort -V | tail -n 1)
[ -f "$TREE/boot/vmlinuz-$KVER" ] || die "no vmlinuz-$KVER in the tree"
cp "$TREE/boot/vmlinuz-$KVER" "$CACHE_DIR/vmlinuz.tmp"
mv "$CACHE_DIR/vmlinuz.tmp" "$CACHE_DIR/vmlinuz"
echo "$KVER" >"$CACHE_DIR/kver"
grep -q '^CONFIG_SERIAL_8250_PCI=y' "$TREE/boot/config-$KVER" ||
    log "note: CONFIG_SERIAL_8250_PCI is not built in (use MODULES=8250_pci)"

cp "$TREE/usr/bin/busybox" "$CACHE_DIR/busybox.tmp"
mv "$CACHE_DIR/busybox.tmp" "$CACHE_DIR/busybox"
BV=$("$CACHE_DIR/busybox" 2>&1 | head -n 1)

pkgver() { sed -n "s/^$1=//p" "$TREE/.packages"; }
T1=$(date +%s.%N)
{
    echo "format=$FORMAT"
    echo "qemu=$QV"
    echo "qemu-package=$(pkgver qemu-system-x86)"
    echo "kernel=$KVER"
    echo "linux-image-package=$(pkgver "linux-image-$KVER")"
    echo "busybox=$BV"
    echo "kmod-package=$(pkgver kmod)"
    echo "packages=$(wc -l <"$TREE/.packages")"
    echo "tree-size=$(du -sh "$TREE" | cut -f1)"
    echo "mirror=$(cat "$TREE/.mirror" 2>/dev/null || echo unknown)"
    echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "setup-seconds=$(awk -v a="$T0" -v b="$T1" 'BEGIN{printf "%.1f", b-a}')"
} >"$STAMP.tmp"
mv "$STAMP.tmp" "$STAMP"
log "ready: $CACHE_DIR"
cat "$STAMP" >&2
