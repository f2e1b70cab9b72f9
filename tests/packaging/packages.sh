#!/usr/bin/env bash
# ctest packaging.packages: the Debian packages, built the way a user
# builds them, from a copy of the source tree (what git tracks plus new
# files it does not ignore; never a build directory), then:
#   1. exactly libumdev0, libumdev-dev and umdev (plus -dbgsym) are made;
#   2. each holds the files it must, nothing outside /usr, no static
#      library, object or CMake build file, and no file that names the
#      build directory; every program has its man page, and every
#      program the documentation's examples run is installed;
#   3. lintian reports no error (warnings and notes are printed);
#   4. the three, extracted with dpkg -x into a temporary ROOT, build an
#      outside program (outside.c) with `pkg-config --cflags --libs umdev`
#      (PKG_CONFIG_PATH=ROOT/usr/lib/TRIPLET/pkgconfig) whose paths must
#      point into ROOT, so an umdev.pc carrying its configure-time prefix
#      fails here, and with CMake's find_package(umdev) (outside/); both
#      programs run against ROOT's libumdev; the samples shipped as
#      examples build with their Makefile;
#   5. umdevd, umdevctl and umdev-serve accel print their --help from
#      ROOT, the man pages are there and name their options, and the
#      installed bash completion completes (completion.sh);
#   6. scripts/demo.sh runs from ROOT (UMDEV_DEMO_PREFIX=ROOT/usr).
# The build dependencies are in scripts/deps.sh; without them the test
# is skipped (exit 77), or fails under CI=true.
#
# Usage: packages.sh SOURCE_DIR
set -uo pipefail
# shellcheck disable=SC2034 # read by kit.sh
KIT_NAME=packaging.packages
# shellcheck source=tests/common/kit.sh
. "$(dirname "$0")/../common/kit.sh"
SRC=$(cd "$1" && pwd) || exit 1
HERE=$(cd "$(dirname "$0")" && pwd)
JOBS=2 # CI has two cores

fail() {
    say "FAIL: $*"
    exit 1
}
T0=$(now)
lap() { say "$1 ($(elapsed "$T0" "$(now)") s)"; }

for tool in dpkg-buildpackage dpkg-checkbuilddeps dh lintian scdoc gcc \
    pkg-config cmake ninja; do
    command -v "$tool" >/dev/null ||
        skip_or_fail "$tool is not installed (scripts/deps.sh installs it)"
done

T=$(mktemp -d "${TMPDIR:-/tmp}/umdev-packages.XXXXXX")
trap 'rm -rf "$T"' EXIT
VERSION=$(sed -n '1s/^umdev (\([^)]*\)).*/\1/p' "$SRC/debian/changelog")
[ -n "$VERSION" ] || fail "no version in debian/changelog"
COPY=$T/src/umdev-$VERSION
mkdir -p "$COPY"

# 0. The copy.
if git -C "$SRC" rev-parse --show-toplevel >/dev/null 2>&1; then
    git -C "$SRC" ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do
            # Tracked but deleted in the work tree: not part of it.
            [ -e "$SRC/$f" ] || [ -L "$SRC/$f" ] && printf '%s\0' "$f"
        done | tar -C "$SRC" --null -T - -cf - | tar -C "$COPY" -xf - ||
        fail "copying the source tree"
else
    tar -C "$SRC" --exclude=./build --exclude=./.git --exclude=./obj-\* \
        -cf - . | tar -C "$COPY" -xf - || fail "copying the source tree"
fi
[ -e "$COPY/build" ] && fail "the copy of the source tree holds build/"
lap "copied the source tree ($(find "$COPY" -type f | wc -l) files)"

if ! (cd "$COPY" && dpkg-checkbuilddeps) >"$T/deps.log" 2>&1; then
    cat "$T/deps.log"
    skip_or_fail "build dependencies of debian/control are missing"
fi

# 1. Build.
if ! (cd "$COPY" && nice -n 10 dpkg-buildpackage -b -us -uc -j"$JOBS") \
    >"$T/build.log" 2>&1; then
    tail -n 60 "$T/build.log"
    fail "dpkg-buildpackage -b -us -uc failed (last lines above)"
fi
ARCH=$(dpkg-architecture -qDEB_HOST_ARCH)
TRIPLET=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
PACKAGES="libumdev0 libumdev-dev umdev"
made=$(cd "$T/src" && printf '%s\n' *.deb | sort | tr '\n' ' ')
want=$(for p in $PACKAGES; do
    echo "${p}_${VERSION}_$ARCH.deb"
    [ "$p" = libumdev-dev ] || echo "${p}-dbgsym_${VERSION}_$ARCH.deb"
done | sort | tr '\n' ' ')
[ "$made" = "$want" ] || fail "dpkg-buildpackage made '$made', want '$want'"
lap "built: $made"
for p in $PACKAGES; do
    deb=$T/src/${p}_${VERSION}_$ARCH.deb
    say "  $p: $(stat -c %s "$deb") bytes, Installed-Size $(dpkg-deb -f "$deb" Installed-Size) KiB; Depends: $(dpkg-deb -f "$deb" Depends)"
done

# 2. Contents.
L=usr/lib/$TRIPLET
declare -A MUST=(
    [libumdev0]="./$L/libumdev.so.0 ./$L/libumdev.so.$VERSION"
    [libumdev-dev]="./usr/include/umdev/umdev.h ./usr/include/umdev/dev.h
        ./usr/include/umdev/pci.h ./usr/include/umdev/client.h
        ./$L/libumdev.so ./$L/pkgconfig/umdev.pc
        ./$L/cmake/umdev/umdevConfig.cmake
        ./$L/cmake/umdev/umdevConfigVersion.cmake
        ./$L/cmake/umdev/umdevTargets.cmake
        ./usr/share/man/man3/umdev.3.gz
        ./usr/share/doc/libumdev-dev/examples/Makefile
        ./usr/share/doc/libumdev-dev/examples/gpio/gpio.c"
    [umdev]="./usr/sbin/umdevd ./usr/bin/umdevctl ./usr/bin/umdev-conform
        ./usr/bin/umdev-serve ./usr/bin/umdev-probe
        ./usr/bin/umdev-serial-drive ./usr/bin/umdev-access-drive
        ./usr/bin/umdev-nvme-drive
        ./usr/share/man/man8/umdevd.8.gz ./usr/share/man/man8/umdevctl.8.gz
        ./usr/share/man/man1/umdev-serve.1.gz
        ./usr/share/man/man1/umdev-conform.1.gz
        ./usr/share/bash-completion/completions/umdevctl
        ./usr/lib/systemd/system/umdevd.service
        ./usr/lib/sysusers.d/umdev.conf"
)
for h in "$SRC"/include/umdev/*.h; do
    MUST[libumdev-dev]+=" ./usr/include/umdev/$(basename "$h")"
done
for p in $PACKAGES; do
    dpkg-deb -c "$T/src/${p}_${VERSION}_$ARCH.deb" |
        awk '{ print $6 }' >"$T/$p.files"
    for f in ${MUST[$p]}; do
        grep -qxF -- "$f" "$T/$p.files" || fail "$p lacks $f"
    done
    bad=$(grep -vE '^\./(usr/.*|etc/.*|lib/systemd/.*)?$' "$T/$p.files")
    [ -z "$bad" ] || fail "$p installs outside /usr and /etc: $bad"
    bad=$(grep -E '\.(o|a|la)$|CMakeFiles|CMakeCache|obj-|/build/|\.ninja|install_manifest|/tests?/' \
        "$T/$p.files")
    [ -z "$bad" ] || fail "$p holds build-tree files: $bad"
    say "  $p: $(grep -vc '/$' "$T/$p.files") entries, all expected ones present"
done
grep -q 'umdev\.h$' "$T/libumdev0.files" && fail "libumdev0 holds headers"
# Every installed program has its page (docs/man/, checked against its
# --help by packaging.man).
while read -r prog; do
    grep -qE "^\./usr/share/man/man[18]/$prog\.[18]\.gz\$" "$T/umdev.files" ||
        fail "umdev installs $prog without a man page"
done < <(sed -nE 's|^\./usr/s?bin/([^/]+)$|\1|p' "$T/umdev.files")
# Every program the documentation has a user run (a line of a fenced
# block that starts with it) is installed: issue 14 found the accel
# README naming a server that `cmake --install` did not install.
docs=("$SRC"/README.md "$SRC"/docs/*.md "$SRC"/devices/*/README.md
    "$SRC"/samples/README.md "$SRC"/tests/conformance/README.md)
told=$(awk '/^```/ { code = !code; next }
    code { sub(/^[ \t]*\$ /, ""); if ($1 ~ /^umdev[a-z-]*$/) print $1 }' \
    "${docs[@]}" | sort -u)
[ -n "$told" ] || fail "found no programs in the documentation's examples"
for prog in $told; do
    grep -qE "^\./usr/s?bin/$prog\$" "$T/umdev.files" ||
        fail "the documentation runs $prog, which umdev does not install"
done
say "  the programs the documentation runs are installed: ${told//$'\n'/ }"

# 3. lintian.
lintian --display-info --pedantic "$T/src/umdev_${VERSION}_$ARCH.changes" \
    >"$T/lintian.log" 2>&1
rc=$? # 0 clean, 1 tags at its fail-on level (error), 2 lintian failed
grep -E '^[EWIP]: ' "$T/lintian.log" | sort >"$T/lintian.tags"
say "lintian: $(grep -c '^E:' "$T/lintian.tags") errors, $(grep -c '^W:' "$T/lintian.tags") warnings, $(grep -c '^[IP]:' "$T/lintian.tags") notes"
sed 's/^/  /' "$T/lintian.tags"
if [ "$rc" -gt 1 ]; then
    cat "$T/lintian.log"
    fail "lintian itself failed (exit $rc)"
fi
if [ "$rc" -ne 0 ] || grep -q '^E:' "$T/lintian.tags"; then
    fail "lintian reports errors (above)"
fi
lap "contents and lintian checked"

# 4. The -dev files, extracted.
ROOT=$T/root
mkdir "$ROOT"
for p in $PACKAGES; do
    dpkg -x "$T/src/${p}_${VERSION}_$ARCH.deb" "$ROOT" || fail "dpkg -x $p"
done
grep -rlF -- "$T/src" "$ROOT" >"$T/leaks"
[ -s "$T/leaks" ] && fail "files name the build directory: $(cat "$T/leaks")"
LIBDIR=$ROOT/$L
# One version everywhere: the package's (less a Debian revision), the
# library's pkg-config and header version; and the SONAME the library
# package is named after (libumdev.so.N -> libumdevN).
UPSTREAM=${VERSION%-*}
got=$(PKG_CONFIG_PATH=$LIBDIR/pkgconfig pkg-config --modversion umdev)
[ "$got" = "$UPSTREAM" ] || fail "umdev.pc says version $got, the package $UPSTREAM"
grep -qF "#define UMDEV_VERSION_STRING \"$UPSTREAM\"" "$ROOT/usr/include/umdev/umdev.h" ||
    fail "umdev.h's UMDEV_VERSION_STRING is not \"$UPSTREAM\""
soname=$(objdump -p "$LIBDIR/libumdev.so.$UPSTREAM" | awk '$1 == "SONAME" { print $2 }')
if [ "$soname" != libumdev.so.0 ] || [ ! -L "$LIBDIR/$soname" ]; then
    fail "libumdev's SONAME is '$soname', but the library package is" \
        "libumdev0 with libumdev.so.0 (a new SOVERSION renames it)"
fi
PC=$(PKG_CONFIG_PATH=$LIBDIR/pkgconfig pkg-config --cflags --libs umdev) ||
    fail "pkg-config --cflags --libs umdev with PKG_CONFIG_PATH=$LIBDIR/pkgconfig"
say "pkg-config: $PC"
# Every -I and -L of umdev must lead into ROOT (json-c's are the
# system's): an umdev.pc with an absolute prefix names /usr instead.
inc=no lib=no
for w in $PC; do
    case $w in
    -I*/json-c) ;;
    -I*) [ "$(realpath -m "${w#-I}")" = "$ROOT/usr/include" ] ||
        fail "pkg-config gives $w, not $ROOT/usr/include"
        inc=yes ;;
    -L*) [ "$(realpath -m "${w#-L}")" = "$LIBDIR" ] ||
        fail "pkg-config gives $w, not $LIBDIR"
        lib=yes ;;
    esac
done
# (pkg-config drops -I/usr/include and -L/usr/lib/TRIPLET altogether.)
[ "$inc$lib" = yesyes ] ||
    fail "pkg-config gives no -I or no -L into $ROOT for umdev"
# shellcheck disable=SC2086 # $PC is a list of flags
gcc -std=gnu11 -Wall -Wextra -Werror -o "$T/outside-pc" "$HERE/outside.c" \
    $PC || fail "the outside program does not build with pkg-config"
mkdir "$T/run"
# ldd's output is taken whole before it is searched: grep -q would stop
# reading at the first match, and under pipefail ldd's SIGPIPE then
# failed the check now and then.
libs=$(LD_LIBRARY_PATH=$LIBDIR ldd "$T/outside-pc")
grep -qF "$LIBDIR/libumdev.so.0" <<<"$libs" ||
    fail "the outside program does not load ROOT's libumdev: $libs"
LD_LIBRARY_PATH=$LIBDIR timeout 30 "$T/outside-pc" "$T/run" ||
    fail "the outside program built with pkg-config failed"
if ! cmake -S "$HERE/outside" -B "$T/cmake" -G Ninja \
    -DCMAKE_PREFIX_PATH="$ROOT/usr" >"$T/cmake.log" 2>&1 ||
    ! cmake --build "$T/cmake" >>"$T/cmake.log" 2>&1; then
    cat "$T/cmake.log"
    fail "the outside program does not build with find_package(umdev)"
fi
grep -qF "umdev_DIR=$LIBDIR/cmake/umdev" "$T/cmake.log" ||
    fail "find_package(umdev) did not take ROOT's package: $(grep umdev_DIR "$T/cmake.log")"
LD_LIBRARY_PATH=$LIBDIR timeout 30 "$T/cmake/outside" "$T/run" ||
    fail "the outside program built with find_package(umdev) failed"
# The samples the -dev package ships, built with their own Makefile.
EX=$ROOT/usr/share/doc/libumdev-dev/examples
mkdir "$T/samples"
if ! make -C "$EX" O="$T/samples" PKG_CONFIG_PATH="$LIBDIR/pkgconfig" \
    >"$T/samples.log" 2>&1; then
    cat "$T/samples.log"
    fail "the examples of libumdev-dev do not build against it"
fi
libs=$(LD_LIBRARY_PATH=$LIBDIR ldd "$T/samples/umdev-sample-gpio")
grep -qF "$LIBDIR/libumdev.so.0" <<<"$libs" ||
    fail "umdev-sample-gpio does not load ROOT's libumdev: $libs"
lap "outside programs built with pkg-config and CMake, and run; examples built"

# 5. The programs and pages.
export LD_LIBRARY_PATH=$LIBDIR
for cmd in "usr/sbin/umdevd --help" "usr/bin/umdevctl --help" \
    "usr/bin/umdev-serve accel --help"; do
    # shellcheck disable=SC2086 # split into program and arguments
    set -- $cmd
    out=$(timeout 30 "$ROOT/$1" "${@:2}" 2>&1) ||
        fail "$cmd from ROOT exited $?: $out"
    grep -q '^usage:' <<<"$out" || fail "$cmd printed no usage: $out"
    libs=$(ldd "$ROOT/$1")
    grep -q 'not found' <<<"$libs" && fail "$1: $libs"
done
grep -q 'rundir' <<<"$(zcat "$ROOT/usr/share/man/man8/umdevd.8.gz")" ||
    fail "umdevd.8.gz does not document --rundir"
grep -q '^\.SH VERBS' <<<"$(zcat "$ROOT/usr/share/man/man8/umdevctl.8.gz")" ||
    fail "umdevctl.8.gz has no VERBS section"
# The installed completion, with the installed programs.
"$HERE/completion.sh" "$ROOT/usr/share/bash-completion/completions/umdevctl" \
    "$ROOT/usr/sbin/umdevd" "$ROOT/usr/bin/umdevctl" >"$T/completion.log" 2>&1 || {
    cat "$T/completion.log"
    fail "the installed bash completion (above)"
}
lap "umdevd, umdevctl, umdev-serve accel and the completion run from ROOT"

# 6. The demo, from ROOT.
if ! UMDEV_DEMO_PREFIX=$ROOT/usr "$COPY/scripts/demo.sh" >"$T/demo.log" 2>&1; then
    tail -n 60 "$T/demo.log"
    fail "scripts/demo.sh with UMDEV_DEMO_PREFIX=$ROOT/usr"
fi
grep -A7 '^== per device' "$T/demo.log" | sed 's/^/  /'
lap "scripts/demo.sh passed from ROOT"
say "PASS"
