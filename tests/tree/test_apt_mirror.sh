#!/bin/bash
# tests/tree/test_apt_mirror.sh APT_MIRROR_SH: tests/e2e/apt-mirror.sh
# finds the Debian archive in apt configurations made up here (APT_CONFIG
# points apt-config at them): deb822 and one-line sources, options,
# comments, disabled entries, other suites and vendors, file order. The
# sample archives are local paths (file: URIs, as apt takes them), so the
# tree names no host even as an example.
set -uo pipefail

PROG=$1
T=$(mktemp -d "${TMPDIR:-/tmp}/umdev-apt-mirror.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail=0

# setup: a fresh configuration with os-release codename bookworm.
setup() {
    rm -rf "${T:?}/etc"
    mkdir -p "$T/etc/sources.list.d" "$T/etc/apt.conf.d"
    cat >"$T/apt.conf" <<EOC
Dir::Etc "$T/etc";
Dir::Etc::sourcelist "sources.list";
Dir::Etc::sourceparts "sources.list.d";
EOC
    printf 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_CODENAME=bookworm\n' \
        >"$T/os-release"
}

# expect NAME URI|- [WHY]: apt-mirror.sh prints URI (or, for -, fails
# saying WHY, default: that no source serves the release).
expect() {
    local out rc

    out=$(APT_CONFIG=$T/apt.conf "$PROG" "$T/os-release" 2>"$T/err")
    rc=$?
    if [ "$2" = - ]; then
        if [ "$rc" -eq 0 ] ||
            ! grep -q "${3:-no enabled 'deb' source for bookworm main}" "$T/err"; then
            echo "FAIL $1: expected a refusal, got rc=$rc out='$out' err='$(cat "$T/err")'"
            fail=1
            return
        fi
    elif [ "$rc" -ne 0 ] || [ "$out" != "$2" ]; then
        echo "FAIL $1: expected '$2', got rc=$rc out='$out' err='$(cat "$T/err")'"
        fail=1
        return
    fi
    echo "ok $1"
}

setup
cat >"$T/etc/sources.list.d/10-vendor.list" <<'EOF2'
deb file:///srv/vendor-repo/apt cloud-sdk-bookworm main
EOF2
cat >"$T/etc/sources.list.d/20-debian.sources" <<'EOF2'
# The security archive first: other suite.
Types: deb
URIs: file:///srv/security-archive/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: file:///srv/disabled-archive/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb-src
URIs: file:///srv/source-archive/debian
Suites: bookworm
Components: main

types: deb
uris: file:///srv/archive-a/debian/
suites: bookworm
 bookworm-updates
components: contrib
 main
EOF2
expect deb822 file:///srv/archive-a/debian

cat >"$T/etc/sources.list" <<'EOF2'
# comment
deb-src file:///srv/source-archive/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] file:///srv/archive-b bookworm contrib main # trailing
EOF2
expect "sources.list first, one-line with options" file:///srv/archive-b

setup
cat >"$T/etc/sources.list" <<'EOF2'
deb file:///srv/archive-c/debian bookworm contrib
deb file:///srv/archive-c/debian bookworm-updates main
deb file:///srv/archive-c/debian-security bookworm-security main
EOF2
cat >"$T/etc/sources.list.d/nodesource.sources" <<'EOF2'
Types: deb
URIs: file:///srv/node-repo/node_20.x
Suites: nodistro
Components: main
EOF2
echo "deb file:///srv/ignored-archive/debian bookworm main" \
    >"$T/etc/sources.list.d/x.list.disabled"
expect "no main for the release" -

setup
expect "no sources at all" - "apt has no source files"

exit $fail
