#!/usr/bin/env bash
# ctest packaging.completion: the bash completion of umdevctl
# (cli/completion/umdevctl) sourced into a bash, asked for the words of a
# few command-line prefixes the way bash's programmable completion asks
# (COMP_WORDS, COMP_CWORD), against a private umdevd that has one
# defined and one running instance.
#
# Usage: completion.sh COMPLETION_FILE UMDEVD UMDEVCTL
set -uo pipefail
# shellcheck disable=SC2034 # read by kit.sh
KIT_NAME=packaging.completion
# shellcheck source=tests/common/kit.sh
. "$(dirname "$0")/../common/kit.sh"
COMP_FILE=$1 UMDEVD=$2 CTL=$3

T=$(mktemp -d "${TMPDIR:-/tmp}/umdev-completion.XXXXXX")
DAEMON=
cleanup() {
    [ -n "$DAEMON" ] && stop_server "$DAEMON" 100
    rm -rf "$T"
}
trap cleanup EXIT
export UMDEV_RUNDIR=$T/run UMDEV_STATEDIR=$T/state UMDEV_CONTROL=$T/control
"$UMDEVD" >"$T/umdevd.log" 2>&1 &
DAEMON=$!
if ! wait_for_sockets "$DAEMON" 200 "$UMDEV_CONTROL"; then
    cat "$T/umdevd.log"
    say "FAIL: umdevd did not listen on $UMDEV_CONTROL"
    exit 1
fi
DEFINED=$("$CTL" define -p serial -t 2port) || exit 1
RUNNING=4b1f0c5e-6d7a-4c3b-9e2f-0a1b2c3d4e5f
"$CTL" start -p serial -t 2port -u "$RUNNING" >/dev/null || exit 1

# shellcheck source=cli/completion/umdevctl
. "$COMP_FILE" || {
    say "FAIL: sourcing $COMP_FILE"
    exit 1
}
complete -p umdevctl >/dev/null || {
    say "FAIL: $COMP_FILE registers no completion for umdevctl"
    exit 1
}

failures=0
# expect WANT WORD...: complete the last WORD of "umdevctl WORD..." and
# compare the sorted candidates with WANT (words separated by blanks).
# WANT of the form "+A B" only requires A and B among the candidates.
expect() {
    local want=$1 got need w missing=

    shift
    COMP_WORDS=("$CTL" "$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    # EXPECT_LINE: the line as typed, when COMP_WORDS is split at bash's
    # COMP_WORDBREAKS (':' and '=') as bash splits it.
    COMP_LINE=${EXPECT_LINE:-"${COMP_WORDS[*]}"}
    COMP_POINT=${#COMP_LINE}
    COMPREPLY=()
    _umdevctl
    got=$(printf '%s\n' "${COMPREPLY[@]}" | sort -u | tr '\n' ' ')
    got=${got% }
    if [[ $want == +* ]]; then
        for w in ${want#+}; do
            [[ " $got " == *" $w "* ]] || missing+=" $w"
        done
        need="at least${want#+}"
    else
        # shellcheck disable=SC2086 # split WANT into its words
        need=$(printf '%s\n' $want | sort -u | tr '\n' ' ')
        need=${need% }
        [ "$got" = "$need" ] || missing=" (exactly)"
    fi
    if [ -n "$missing" ]; then
        say "FAIL: umdevctl $*<TAB>: want $need, got '$got'"
        failures=$((failures + 1))
    else
        say "ok: umdevctl $*<TAB> -> $got"
    fi
}

expect "types" ty
expect "--delete-data" undefine --del
expect "undefine" und
expect "+start stats stop" st
expect "--control" --con
expect "+--defined --dumpjson" list --d
expect "--owner" define --ow
expect "+--delattr --attr" modify --
expect "$RUNNING" stop ""
expect "$RUNNING" info -u 4b
expect "$DEFINED $RUNNING" start ""
expect "$DEFINED" undefine "${DEFINED:0:3}"
expect "serial" define -p se
expect "+accel-1wq accel-2wq accel-4wq" start -p accel -t accel
expect "+serial-2port accel-2wq" audit ""
expect "root" define --owner roo
# screenshot UUID FILE: a running instance, then a file.
touch "$T/shot.png"
expect "$RUNNING" screenshot ""
expect "$T/shot.png" screenshot "$RUNNING" "$T/sh"
expect "$T/shot.png" screenshot -u "$RUNNING" "$T/sh"
# import: DIR is a directory, --parent-map HOSTPARENT=PARENT takes
# mdevctl's parents from DIR (scripts.d is none) and umdevd's parents.
mkdir -p "$T/mdevctl.d/0000:00:02.0" "$T/mdevctl.d/scripts.d"
expect "+--parent-map" import --pa
expect "$T/mdevctl.d" import "$T/mdevctl"
expect "0000:00:02.0=" import "$T/mdevctl.d" --parent-map ""
expect "0000:00:02.0=" import --parent-map 0 "$T/mdevctl.d" --parent-map 0
expect "0000:00:02.0=accel 0000:00:02.0=display 0000:00:02.0=nvme 0000:00:02.0=serial" \
    import "$T/mdevctl.d" --parent-map 0000:00:02.0=
EXPECT_LINE="$CTL import $T/mdevctl.d --parent-map 0000:00:02.0=se" \
    expect "serial" import "$T/mdevctl.d" --parent-map 0000 : 00 : 02.0 = se
EXPECT_LINE="$CTL import $T/mdevctl.d --parent-map 0000:00:02.0=" \
    expect "=accel =display =nvme =serial" import "$T/mdevctl.d" --parent-map 0000 : 00 : 02.0 =
# A number is not completed from anything.
expect "" stop --grace ""
# The queries go to the daemon --control names, not to UMDEV_CONTROL.
(
    failures=0
    export UMDEV_CONTROL=$T/nothing-here UMDEV_RUNDIR=$T/nowhere
    expect "$RUNNING" --control "$T/control" stats ""
    expect "" stats ""
    exit "$failures"
) || failures=$((failures + $?))

if [ "$failures" -ne 0 ]; then
    say "FAIL: $failures completion(s) wrong"
    exit 1
fi
say "PASS"
