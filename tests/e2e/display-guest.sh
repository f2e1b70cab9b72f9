# Guest side of tests/e2e/display.sh (busybox sh, run by the initramfs
# /init). /e2e/display.conf sets BDF, SEED, HOLD (seconds each picture is
# held still for the host's screenshot), MODE1 and MODE2 (WxH, two modes
# the EDID lists) and BANNER. Marker lines: E2E-DISPLAY-*; the host
# takes a screenshot at each E2E-DISPLAY-SHOT line, while the guest holds
# the picture.
# shellcheck shell=sh disable=SC1091,SC2154  # display.conf exists only in the guest
MARK=DISPLAY
# shellcheck source=tests/e2e/guest-lib.sh
. /e2e/guest-lib.sh

. /e2e/display.conf || { bad "no /e2e/display.conf"; exit 1; }
echo "E2E-DISPLAY-CONF bdf=$BDF seed=$SEED hold=$HOLD modes=$MODE1,$MODE2"

find_device 0x1234 0x1111 "$BDF"
ids=$(device_ids)
echo "E2E-DISPLAY-IDS $ids"
want='0x1234:0x1111 0x1234:0x1111 0x038000 0x02'
[ "$ids" = "$want" ] || bad "identity '$ids', expected '$want'"

# (a) bochs-drm binds; its DRM device and fbdev emulation appear.
n=0
while [ ! -e /dev/fb0 ] || [ ! -e /dev/dri/card0 ]; do
    n=$((n + 1))
    [ $n -le 100 ] || break
    sleep 0.1
done
drv=$(device_driver)
echo "E2E-DISPLAY-DRIVER ${drv:-none}"
[ "$drv" = bochs-drm ] || bad "driver '${drv:-none}', expected bochs-drm"
[ -c /dev/fb0 ] || bad "no /dev/fb0"
[ -c /dev/dri/card0 ] || bad "no /dev/dri/card0"
[ "$fail" -eq 0 ] || exit 1
echo "E2E-DISPLAY-FBNAME $(cat /sys/class/graphics/fb0/name)"

conn=
for c in /sys/class/drm/card0-*; do
    [ -e "$c/edid" ] && conn=$c
done
[ -n "$conn" ] || { bad "no connector with an EDID under /sys/class/drm"; exit 1; }
echo "E2E-DISPLAY-CONNECTOR ${conn##*/} $(cat "$conn/status")"
echo "E2E-DISPLAY-EDID $(od -An -v -tx1 "$conn/edid" | tr -d ' \n')"
echo "E2E-DISPLAY-MODES $(tr '\n' ' ' <"$conn/modes")"
for m in "$MODE1" "$MODE2"; do
    grep -qx "$m" "$conn/modes" || bad "the connector does not list $m"
done

# Marker and hold: the host's screenshot happens now.
shot() {
    echo "E2E-DISPLAY-SHOT $*"
    sleep "$HOLD"
}

# (a) two modes the EDID lists, set as a DRM client would (the screen
# shows the tool's pattern while it holds).
i=0
for m in "$MODE1" "$MODE2"; do
    i=$((i + 1))
    w=${m%x*} h=${m#*x}
    display-tool mode "$w" "$h" $((SEED + i)) "$HOLD" >/tmp/tool.out 2>&1 &
    tp=$!
    n=0
    until grep -q '^E2E-DISPLAY-TOOL mode' /tmp/tool.out; do
        n=$((n + 1))
        if [ $n -gt 100 ] || ! kill -0 $tp 2>/dev/null; then
            cat /tmp/tool.out
            bad "display-tool mode $m did not set the mode"
            exit 1
        fi
        sleep 0.1
    done
    cat /tmp/tool.out
    echo "E2E-DISPLAY-SHOT mode$i $w $h $((SEED + i))"
    wait $tp || bad "display-tool mode $m failed"
done

# (b) a pattern through /dev/fb0, fbcon unbound so that nothing else
# draws (no cursor blink) while the host looks.
for v in /sys/class/vtconsole/vtcon*; do
    grep -q 'frame buffer' "$v/name" && fbcon=$v
done
[ -n "${fbcon:-}" ] || bad "fbcon is not among the virtual consoles"
[ -n "${fbcon:-}" ] && echo 0 >"$fbcon/bind"
display-tool fb "$SEED" || { bad "display-tool fb failed"; exit 1; }
# fbdev emulation flushes its damage from a worker within a tick or two.
sleep 1
shot fb "$SEED"

# (c) the banner on the framebuffer console.
if [ -n "${fbcon:-}" ]; then
    echo 1 >"$fbcon/bind"
    chvt 1 2>/dev/null
    printf '\033[2J\033[H%s\n' "$BANNER" >/dev/tty1
    sleep 1
    shot banner
fi

[ "$fail" -eq 0 ] && echo "E2E-DISPLAY-PASS"
exit "$fail"
