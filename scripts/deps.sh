#!/usr/bin/env bash
# Installs the Debian 12 packages umdev needs to build, test and fuzz, if
# any are missing. As root it runs apt-get (apt-get update only when
# something must be installed); otherwise it prints the exact command and
# fails.
#
#   scripts/deps.sh [EXTRA-PACKAGE...]     check and install
#   . scripts/deps.sh; umdev_install_deps  the same from another script
#
# Sourcing defines functions only: it changes no shell options of the
# caller.

UMDEV_PACKAGES=(cmake ninja-build gcc g++ clang libclang-rt-14-dev llvm
    pkg-config libjson-c-dev uuid-dev libcmocka-dev libseccomp-dev python3
    socat libsystemd-dev systemd man-db python3-prometheus-client scdoc
    debhelper dpkg-dev lintian liburing-dev fio libpng-dev
    libdrm-dev)

# Print the packages (UMDEV_PACKAGES plus any arguments) that dpkg does
# not list as installed, space-separated, on one line.
umdev_missing_packages() {
    local p status missing=()

    for p in "${UMDEV_PACKAGES[@]}" "$@"; do
        status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) || status=
        [ "$status" = "install ok installed" ] || missing+=("$p")
    done
    echo "${missing[*]}"
}

# Install what is missing. Return 0 when everything is installed, 1 when
# something is missing and cannot be installed (not root, apt-get failed).
umdev_install_deps() {
    local missing cmd

    if ! command -v dpkg-query >/dev/null 2>&1; then
        echo "umdev: dpkg-query not found: scripts/deps.sh expects Debian 12" >&2
        return 1
    fi
    missing=$(umdev_missing_packages "$@")
    [ -z "$missing" ] && return 0
    cmd="DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing"
    if [ "$(id -u)" -ne 0 ]; then
        echo "umdev: missing Debian packages: $missing" >&2
        echo "umdev: install them as root with:" >&2
        echo "  apt-get update && $cmd" >&2
        return 1
    fi
    echo "umdev: installing missing Debian packages: $missing"
    if ! apt-get update; then
        echo "umdev: apt-get update failed" >&2
        return 1
    fi
    # shellcheck disable=SC2086 # $missing is a list of package names
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y \
        --no-install-recommends $missing; then
        echo "umdev: apt-get install failed: $cmd" >&2
        return 1
    fi
    missing=$(umdev_missing_packages "$@")
    if [ -n "$missing" ]; then
        echo "umdev: still missing after apt-get install: $missing" >&2
        return 1
    fi
    return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    umdev_install_deps "$@"
fi
