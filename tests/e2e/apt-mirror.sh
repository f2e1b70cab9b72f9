#!/bin/bash
# tests/e2e/apt-mirror.sh [OS_RELEASE]
#
# Print the URI of the Debian archive this machine's apt fetches its own
# release from, so that setup.sh fetches the guest environment from the
# same place (the tree names no host). The sources are read as apt reads
# them: the files apt-config names (Dir::Etc::sourcelist, then every
# *.list and *.sources in Dir::Etc::sourceparts, in name order; APT_CONFIG
# is honoured), one-line and deb822 formats, disabled entries skipped.
# The first "deb" source for suite VERSION_CODENAME of OS_RELEASE (default
# /etc/os-release) with component main wins: -updates, -security and
# -backports suites and other vendors' repositories serve other things.
# Exit status 1, with the reason on stderr, when there is none.
set -euo pipefail

OS_RELEASE=${1:-/etc/os-release}
die() { printf 'apt-mirror: %s\n' "$*" >&2; exit 1; }

command -v apt-config >/dev/null || die "apt-config not found (Debian host expected)"
[ -r "$OS_RELEASE" ] || die "cannot read $OS_RELEASE"
CODENAME=$(sed -n 's/^VERSION_CODENAME=//p' "$OS_RELEASE" | tr -d '"' | head -n 1)
[ -n "$CODENAME" ] || die "$OS_RELEASE names no VERSION_CODENAME"

SL='' SP=''
eval "$(apt-config shell SL Dir::Etc::sourcelist/f SP Dir::Etc::sourceparts/d)"
files=()
[ -n "$SL" ] && [ -f "$SL" ] && files+=("$SL")
if [ -n "$SP" ] && [ -d "$SP" ]; then
    while IFS= read -r f; do
        files+=("$f")
    done < <(find "$SP" -maxdepth 1 -type f \( -name '*.list' -o -name '*.sources' \) |
        LC_ALL=C sort)
fi
[ "${#files[@]}" -gt 0 ] || die "apt has no source files (${SL:-sources.list}, ${SP:-sources.list.d})"

# One "URI SUITE COMPONENT..." line per enabled deb source, in file order.
entries() {
    local f

    for f in "${files[@]}"; do
        case $f in
        *.sources)
            # deb822: fields per paragraph; a continuation line starts
            # with a blank; field names are case-insensitive.
            awk '
            function flush(   n, u, s, i, j, t, types, uris, suites) {
                if (enabled != "no" && f["types"] != "") {
                    n = split(f["types"], types, " ")
                    t = 0
                    for (i = 1; i <= n; i++) if (types[i] == "deb") t = 1
                    if (t) {
                        u = split(f["uris"], uris, " ")
                        s = split(f["suites"], suites, " ")
                        for (i = 1; i <= u; i++)
                            for (j = 1; j <= s; j++)
                                print uris[i], suites[j], f["components"]
                    }
                }
                delete f; key = ""; enabled = ""
            }
            /^#/ { next }
            /^[ \t]*$/ { flush(); next }
            /^[ \t]/ { if (key != "") f[key] = f[key] " " $0; next }
            {
                i = index($0, ":"); if (i == 0) next
                key = tolower(substr($0, 1, i - 1))
                f[key] = substr($0, i + 1)
                if (key == "enabled") { enabled = tolower(f[key]); gsub(/[ \t]/, "", enabled) }
            }
            END { flush() }' "$f"
            ;;
        *)
            # One-line: deb [options] URI SUITE COMPONENT...
            sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" |
                awk '$1 == "deb" && NF >= 3 { $1 = ""; sub(/^ /, ""); print }'
            ;;
        esac
    done
}

uri=$(entries | awk -v want="$CODENAME" '
    {
        main = 0
        for (i = 3; i <= NF; i++) if ($i == "main") main = 1
        if ($2 == want && main) { print $1; exit }
    }')
[ -n "$uri" ] || die "no enabled 'deb' source for $CODENAME main in ${files[*]} (set UMDEV_E2E_MIRROR to a Debian archive)"
printf '%s\n' "${uri%/}"
