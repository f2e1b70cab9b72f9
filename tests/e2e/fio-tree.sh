#!/bin/bash
# tests/e2e/fio-tree.sh [CACHE_DIR]
#
# Prepare (once) and cache Debian trixie's fio for e2e guests, as a tree
# the guest mounts read-only over 9p (the initramfs stays small: fio's
# dependency closure, librados and libgfapi included, is ~100 packages):
#
#   CACHE_DIR/fio/tree/   fio (trixie) and every package it depends on,
#                         down to libc6, each unpacked with dpkg -x; merged
#                         /usr. fio runs from it through the tree's own
#                         loader: LOADER --library-path LIBS BIN (below)
#   CACHE_DIR/fio/tree/.library-path
#                         the loader's library path, relative to the tree,
#                         colon-separated: usr/lib/x86_64-linux-gnu and the
#                         RUNPATH directories of the tree's libraries
#                         (librados' usr/lib/x86_64-linux-gnu/ceph), which
#                         are absolute and so would name the guest's root
#   CACHE_DIR/fio/stamp   versions; written last; present => nothing to do
#
# CACHE_DIR defaults to ${UMDEV_E2E_CACHE:-$HOME/.cache/umdev-e2e} (the
# cache setup.sh prepares; this script needs nothing else from it).
#
# Interface for the scripts that use it (lib.sh's e2e_fio_tree() and
# guest-lib.sh's fio_mount()/fio_run() wrap it):
#   host:  QEMU gets  -virtfs local,path=CACHE_DIR/fio/tree,mount_tag=fio,
#                     security_model=none,readonly=on
#          and the guest's initramfs the modules 9pnet_virtio 9p
#   guest: mount -t 9p -o trans=virtio,version=9p2000.L,ro fio /fio
#          /fio/usr/lib64/ld-linux-x86-64.so.2 --library-path P /fio/usr/bin/fio ARGS
#          where P is .library-path with /fio/ before each directory
# The stamp's fio= line is `fio --version` as run from the tree on the host,
# after the check that the loader finds every library fio needs in the
# tree and none outside it.
#
# Recipe as setup.sh's: apt-get with a private state directory (trixie
# sources, empty dpkg status) resolves the whole dependency closure of the
# package fio and downloads it; nothing on the host is installed. The
# archive is the one the host's own apt sources use (apt-mirror.sh), or
# UMDEV_E2E_MIRROR. Environment: UMDEV_E2E_KEYRING as for setup.sh,
# UMDEV_E2E_FORCE=1 rebuilds.
#
# Exit status 0 when the tree is ready, 1 with a message on stderr if not.
set -euo pipefail

FORMAT=1   # bump when the layout or the package set changes
CACHE_DIR=${1:-${UMDEV_E2E_CACHE:-$HOME/.cache/umdev-e2e}}
HERE=$(cd "$(dirname "$0")" && pwd)
MIRROR=${UMDEV_E2E_MIRROR:-}
KEYRING=${UMDEV_E2E_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}
PACKAGES=(fio)

log() { printf 'fio-tree: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=tests/e2e/private-apt.sh
. "$HERE/private-apt.sh"

mkdir -p "$CACHE_DIR/fio" || die "cannot create $CACHE_DIR/fio"
DIR=$(cd "$CACHE_DIR/fio" && pwd)
TREE=$DIR/tree
STAMP=$DIR/stamp
LD=usr/lib64/ld-linux-x86-64.so.2

stamp_ok() {
    [ -f "$STAMP" ] && grep -qx "format=$FORMAT" "$STAMP" &&
        [ -f "$TREE/.complete" ] && [ -x "$TREE/usr/bin/fio" ] &&
        [ -x "$TREE/$LD" ] && [ -s "$TREE/.library-path" ]
}

if [ "${UMDEV_E2E_FORCE:-0}" != 1 ] && stamp_ok; then
    exit 0
fi
# One preparation at a time per cache.
exec 9>"$DIR/.lock"
flock 9
if [ "${UMDEV_E2E_FORCE:-0}" != 1 ] && stamp_ok; then
    exit 0
fi
rm -f "$STAMP"
T0=$(date +%s.%N)

for tool in apt-get dpkg flock readelf; do
    command -v "$tool" >/dev/null || die "$tool not found (Debian host expected; readelf: binutils)"
done
[ -r "$KEYRING" ] || die "keyring $KEYRING missing (apt-get install debian-archive-keyring)"
if [ -z "$MIRROR" ]; then
    MIRROR=$("$HERE/apt-mirror.sh") ||
        die "cannot tell which Debian archive this machine uses; set UMDEV_E2E_MIRROR"
fi
log "fetching ${PACKAGES[*]} and its dependencies from $MIRROR (trixie)"

APT=$DIR/apt
private_apt_init "$APT" "$KEYRING" "$MIRROR" trixie
# The dpkg status is empty, so the resolver gives the whole closure.
apt-get -q -y "${APTOPT[@]}" --download-only install "${PACKAGES[@]}" 2>&1 |
    tee "$APT/download.log" >&2 || die "apt-get download failed"
grep '^Inst ' <(apt-get -q "${APTOPT[@]}" -s install "${PACKAGES[@]}") |
    sed -E 's/^Inst ([^ ]+) \(([^ ]+) .*/\1=\2/' >"$APT/packages.txt"
n=$(wc -l <"$APT/packages.txt")
grep -q '^fio=' "$APT/packages.txt" || die "the resolution has no fio"
[ "$n" -gt 10 ] || die "dependency resolution gave only $n packages"

private_apt_unpack "$APT" "$TREE.tmp"
[ -x "$TREE.tmp/$LD" ] || die "no dynamic loader in the tree"
[ -x "$TREE.tmp/usr/bin/fio" ] || die "no usr/bin/fio in the tree"
# Library directories: the multiarch one, and every RUNPATH/RPATH the
# tree's libraries carry (absolute paths: the guest's root is the
# initramfs, not the tree), kept if the tree has them.
dirs=usr/lib/x86_64-linux-gnu
while read -r d; do
    d=${d#/}
    [ -d "$TREE.tmp/$d" ] && [[ ":$dirs:" != *":$d:"* ]] && dirs=$dirs:$d
done < <(find "$TREE.tmp/usr/lib/x86_64-linux-gnu" "$TREE.tmp/usr/bin" \
    -type f \( -name '*.so*' -o -name fio \) -print0 |
    xargs -0 readelf -d 2>/dev/null |
    sed -n 's/.*(R\(UN\)\{0,1\}PATH).*\[\(.*\)\]/\2/p' | tr ':' '\n' |
    grep '^/' | sort -u)
printf '%s\n' "$dirs" >"$TREE.tmp/.library-path"
LIBS=$(printf '%s' "$dirs" | sed "s|\([^:]*\)|$TREE.tmp/\1|g")
# Every library fio needs must come from the tree: one the loader cannot
# find, or finds on the host instead (the host may have its own), would be
# missing in the guest.
if ! list=$("$TREE.tmp/$LD" --library-path "$LIBS" --list \
    "$TREE.tmp/usr/bin/fio" 2>&1); then
    printf '%s\n' "$list" >&2
    die "the loader cannot resolve fio's libraries"
fi
outside=$(printf '%s\n' "$list" | grep '=>' | grep -v "=> $TREE.tmp/" || true)
if [ -n "$outside" ]; then
    printf '%s\n' "$outside" >&2
    die "fio's libraries are not all in the tree (above: missing or the host's)"
fi
V=$("$TREE.tmp/$LD" --library-path "$LIBS" "$TREE.tmp/usr/bin/fio" \
    --version) || die "fio from the tree does not run"
touch "$TREE.tmp/.complete"
rm -rf "$TREE"
mv "$TREE.tmp" "$TREE"
rm -rf "$APT/cache/archives" # the .debs, unpacked now

T1=$(date +%s.%N)
{
    echo "format=$FORMAT"
    echo "fio=$V"
    echo "fio-package=$(sed -n 's/^fio=//p' "$TREE/.packages")"
    echo "packages=$n"
    echo "tree-size=$(du -sh "$TREE" | cut -f1)"
    echo "mirror=$MIRROR"
    echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "setup-seconds=$(awk -v a="$T0" -v b="$T1" 'BEGIN{printf "%.1f", b-a}')"
} >"$STAMP.tmp"
mv "$STAMP.tmp" "$STAMP"
log "ready: $TREE"
cat "$STAMP" >&2
