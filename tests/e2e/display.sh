#!/bin/bash
# tests/e2e/display.sh [BUILD_DIR]
#
# e2e.display (issue 18): a display-1024 instance (devices/display, the
# Bochs/QEMU display interface, 1234:1111) started by umdevctl on a private
# umdevd, attached to QEMU with vfio-user-pci, under the guest kernel's
# own bochs-drm, fbdev emulation and fbcon (modules in the initramfs).
# The guest half (display-guest.sh, with the static helper display-tool):
#   (a) bochs-drm binds, /dev/fb0 and /dev/dri/card0 appear, the EDID the
#       guest reads from sysfs is printed (the host compares it with the
#       one `umdevctl info` reports), and display-tool, as a DRM client,
#       sets two modes the connector lists (from the EDID), each showing
#       a seeded pattern;
#   (b) display-tool writes a seeded pattern into /dev/fb0 (fbcon
#       unbound, so nothing else draws);
#   (c) fbcon prints a banner on tty1.
# At each picture the guest prints E2E-DISPLAY-SHOT and holds it; this
# script then runs `umdevctl screenshot` and `umdevctl info`. After the
# run display-check.py decodes each PNG and compares it with the pattern
# pixel for pixel; the device's mode (umdevctl info) must have followed
# the guest's mode changes. The banner's screenshot is kept.
#
# Environment:
#   UMDEV_E2E_DISPLAY_SEED  pattern seed (default: random; printed)
#   UMDEV_E2E_DISPLAY_HOLD  seconds the guest holds each picture (default 4)
#   UMDEV_E2E_TIMEOUT       bound of the QEMU run in seconds (default 150)
#   UMDEV_E2E_ARTIFACTS, UMDEV_E2E_CACHE, CI: as for smoke.sh
#
# Exit 0: pass; 1: fail; 77: skipped (the guest environment cannot be
# prepared) - never with CI=true.
# Artifacts in ${UMDEV_E2E_ARTIFACTS:-BUILD_DIR/e2e/display}: console.log,
# umdevd-0.log, mode1.png, mode2.png, fb.png, banner.png (the fbcon
# banner, for a person to look at), *.info.json (umdevctl info at each
# screenshot), info.txt, result.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$HERE/lib.sh"
e2e_init display "${1:-}"
SEED=${UMDEV_E2E_DISPLAY_SEED:-$(((RANDOM << 15 ^ RANDOM) % 2147483646 + 1))}
HOLD=${UMDEV_E2E_DISPLAY_HOLD:-4}
QEMU_TIMEOUT=${UMDEV_E2E_TIMEOUT:-150}
TYPE=display-1024
# Two modes display-1024's EDID lists (devices/display/README.md) besides
# the preferred 1024x768 fbdev starts with.
MODE1=800x600 MODE2=640x480
BANNER="UMDEV E2E DISPLAY BANNER seed $SEED"
case $SEED$HOLD in
*[!0-9]*) say "FAIL: UMDEV_E2E_DISPLAY_SEED/HOLD must be numbers"; exit 1 ;;
esac

UMDEVD=$BUILD_DIR/daemon/umdevd
UMDEVCTL=$BUILD_DIR/cli/umdevctl
TOOL=$BUILD_DIR/tests/e2e/display-tool
e2e_need "umdevd umdevctl display-tool" "$UMDEVD" "$UMDEVCTL" "$TOOL"
e2e_static "$TOOL"

e2e_guest_env
e2e_artifacts display console.log umdevd-0.log info.txt result mode1.png \
    mode2.png fb.png banner.png mode1.info.json mode2.info.json \
    fb.info.json banner.info.json umdevctl.out umdevctl.err shots.log
# shellcheck source=tests/e2e/umdevd-lib.sh
. "$HERE/umdevd-lib.sh"
umdevd_env display
WATCH_PID=''
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    [ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null
    umdevd_cleanup
}
trap cleanup EXIT

# shellcheck disable=SC2119  # no options beyond DAEMON_ARGS
daemon || { say "FAIL: umdevd did not answer"; cat "$LOG"; exit 1; }
instance_start display "$TYPE"

# ---- boot -----------------------------------------------------------------------
SLOT=6
BDF_WANT=$(printf '0000:00:%02x.0' "$SLOT")
printf 'BDF=%s\nSEED=%s\nHOLD=%s\nMODE1=%s\nMODE2=%s\nBANNER="%s"\n' \
    "$BDF_WANT" "$SEED" "$HOLD" "$MODE1" "$MODE2" "$BANNER" \
    >"$TMP/display.conf"
# No VGA of QEMU's own: bochs-drm would bind it too (the same IDs).
QARGS=(-- -vga none -device "$(e2e_device_json "$SLOT" "$SOCK")")

# The screenshots, taken when the guest says it holds a picture.
watch_shots() {
    local seen=0 n name
    while kill -0 "$SRV_PID" 2>/dev/null; do
        n=$(grep -c '^E2E-DISPLAY-SHOT ' "$ART/console.log" 2>/dev/null)
        while [ "${n:-0}" -gt "$seen" ]; do
            seen=$((seen + 1))
            name=$(grep '^E2E-DISPLAY-SHOT ' "$ART/console.log" |
                sed -n "${seen}p" | awk '{ print $2 }')
            "$UMDEVCTL" --json info "$UUID" >"$ART/$name.info.json" 2>&1
            if "$UMDEVCTL" screenshot "$UUID" "$ART/$name.png" \
                >>"$ART/shots.log" 2>&1; then
                echo "shot $name" >>"$ART/shots.log"
            else
                echo "shot $name FAILED" >>"$ART/shots.log"
            fi
        done
        sleep 0.05
    done
}
: >"$ART/console.log"
watch_shots &
WATCH_PID=$!
say "seed $SEED; modes $MODE1 and $MODE2; each picture held ${HOLD}s"
say "booting the guest (TCG) with vfio-user-pci on $SOCK"
t=$(now)
MODULES="bochs" "$HERE/run-guest.sh" --timeout "$QEMU_TIMEOUT" \
    --log "$ART/console.log" "$HERE/display-guest.sh" "$HERE/guest-lib.sh" \
    "$TOOL" "$TMP/display.conf:/e2e/display.conf" "${QARGS[@]}" >/dev/null
GUEST_RC=$?
T_BOOT=$(elapsed "$t" "$(now)")
kill "$WATCH_PID" 2>/dev/null
wait "$WATCH_PID" 2>/dev/null
WATCH_PID=

# ---- verdict ----------------------------------------------------------------------
fail=0
C=$ART/console.log
e2e_guest_verdict DISPLAY display-tool
"$UMDEVCTL" info "$UUID" >"$ART/info.txt" 2>&1 || fail=1

# jfield FILE EXPR: a value of umdevctl info --json's device.endpoints.
jfield() {
    python3 -c 'import json, sys
e = json.load(open(sys.argv[1]))["device"]["endpoints"]
print(e.get(sys.argv[2], ""))' "$1" "$2" 2>/dev/null
}

# (a) The EDID: what the guest read is what the device declares.
GUEST_EDID=$(sed -n 's/^E2E-DISPLAY-EDID //p' "$C" | head -n 1)
HOST_EDID=$(jfield "$ART/mode1.info.json" edid)
if [ -z "$GUEST_EDID" ] || [ "$GUEST_EDID" != "$HOST_EDID" ]; then
    say "the guest's EDID differs from the device's:"
    say "  guest: ${GUEST_EDID:-<none>}"
    say "  host:  ${HOST_EDID:-<none>}"
    fail=1
else
    say "EDID: the guest read the 128 bytes the device declares"
fi

# check_shot NAME KIND W H [SEED]: the screenshot exists and
# display-check.py finds the picture in it.
check_shot() {
    local name=$1 kind=$2
    shift 2
    if ! grep -qx "shot $name" "$ART/shots.log"; then
        say "no screenshot '$name' (shots.log):"
        sed 's/^/  /' "$ART/shots.log" 2>/dev/null
        fail=1
        return
    fi
    if ! out=$(python3 "$HERE/display-check.py" "$kind" "$ART/$name.png" "$@"); then
        say "FAIL: $out"
        fail=1
        return
    fi
    say "$out"
}

# (a) the two modes: the device followed the guest (umdevctl info's
# mode at the screenshot) and shows the guest's pattern.
i=0
for m in "$MODE1" "$MODE2"; do
    i=$((i + 1))
    mode=$(jfield "$ART/mode$i.info.json" mode)
    [ "$mode" = "$m@32" ] ||
        { say "at the mode$i screenshot the device's mode is '$mode', the guest set $m@32"; fail=1; }
    check_shot "mode$i" pattern "${m%x*}" "${m#*x}" $((SEED + i))
done

# (b) /dev/fb0's pattern at fbdev's mode (display-tool printed it).
read -r _ _ FBW FBH FBBPP _ <<<"$(grep '^E2E-DISPLAY-TOOL fb ' "$C" | head -n 1)"
if [ -z "${FBW:-}" ]; then
    say "display-tool fb printed no geometry"
    fail=1
else
    mode=$(jfield "$ART/fb.info.json" mode)
    [ "$mode" = "${FBW}x${FBH}@$FBBPP" ] ||
        { say "at the fb screenshot the device's mode is '$mode', fbdev's is ${FBW}x${FBH}@$FBBPP"; fail=1; }
    check_shot fb pattern "$FBW" "$FBH" "$SEED"
    # (c) the banner, kept for a person to look at.
    check_shot banner banner "$FBW" "$FBH"
fi
# The worker counted the screenshots before the banner's: three.
SHOTS=$(python3 -c 'import json, sys
print(json.load(open(sys.argv[1]))["device"].get("screenshots", ""))' \
    "$ART/banner.info.json" 2>/dev/null)
[ "$SHOTS" = 3 ] ||
    { say "umdevctl info counted '$SHOTS' screenshots before the banner's, not 3"; fail=1; }

instance_stop
daemon_stop
daemon_log_errors
qemu_silent

T_WALL=$(elapsed "$T_START" "$(now)")
e2e_versions
say "device ${BDF:-<not found>}; guest driver $(sed -n 's/^E2E-DISPLAY-DRIVER //p' "$C" | head -n 1)"
say "banner screenshot: $ART/banner.png"
say "timings: setup ${T_SETUP}s, boot+test ${T_BOOT}s (TCG), wall ${T_WALL}s"
{
    echo "result=$([ $fail -eq 0 ] && echo pass || echo fail)"
    echo "seed=$SEED"
    echo "bdf=$BDF"
    echo "modes=$MODE1,$MODE2"
    echo "fb=${FBW:-}x${FBH:-}"
    echo "boot_seconds=$T_BOOT"
    echo "wall_seconds=$T_WALL"
} >"$ART/result"
e2e_finish "FAIL (UMDEV_E2E_DISPLAY_SEED=$SEED repeats the patterns)"
