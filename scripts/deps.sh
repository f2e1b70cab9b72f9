#!/usr/bin/env bash
# Installs the Debian packages umdev needs to build and test, if missing.
# As root it runs apt-get; otherwise it prints the exact command and fails.
set -euo pipefail

UMDEV_PACKAGES=(cmake ninja-build gcc clang libclang-rt-14-dev llvm
    pkg-config libjson-c-dev uuid-dev libcmocka-dev libseccomp-dev python3
    socat)

umdev_missing_packages() {
    local p missing=()
    for p in "${UMDEV_PACKAGES[@]}" "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
            grep -q "install ok installed"; then
            missing+=("$p")
        fi
    done
    echo "${missing[@]}"
}

umdev_install_deps() {
    local missing
    missing=$(umdev_missing_packages "$@")
    [ -z "$missing" ] && return 0
    local cmd="apt-get install -y --no-install-recommends $missing"
    if [ "$(id -u)" -ne 0 ]; then
        echo "umdev: missing Debian packages: $missing" >&2
        echo "umdev: run as root:  apt-get update && $cmd" >&2
        return 1
    fi
    echo "umdev: installing $missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    umdev_install_deps "$@"
fi
