#!/usr/bin/env python3
"""The host half of tests/e2e/display.sh's picture checks.

    display-check.py pattern PNG W H SEED
        the screenshot PNG is W x H and shows display-tool's pattern for
        SEED (tests/e2e/display-tool.c: pixel (x, y) is 0x00RRGGBB =
        pattern(x, y, SEED)) pixel for pixel;
    display-check.py banner PNG W H
        the screenshot is W x H, and its top text row has light pixels
        (the banner fbcon drew) on a black background.

Prints one line saying what it found; exit 0 pass, 1 fail.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "common"))
from pngread import png_decode  # noqa: E402

M32 = 0xffffffff


def pattern(x, y, seed):
    v = ((x * 0x9e3779b1) ^ (y * 0x85ebca6b) ^ (seed * 0xc2b2ae35)) & M32
    v ^= v >> 15
    v = (v * 0x2c1b3c6d) & M32
    v ^= v >> 12
    return v & 0xffffff


def check_pattern(rows, w, h, seed):
    for y in range(h):
        row = rows[y]
        for x in range(w):
            v = pattern(x, y, seed)
            got = row[3 * x:3 * x + 3]
            want = bytes((v >> 16, (v >> 8) & 0xff, v & 0xff))
            if got != want:
                return "pixel (%d, %d) is %s, the guest drew %s" % (
                    x, y, got.hex(), want.hex())
    return None


def check_banner(rows, w):
    # fbcon's first text row: 16 pixel rows of an 8x16 font at most.
    lit = sum(1 for y in range(16) for x in range(w)
              if min(rows[y][3 * x:3 * x + 3]) >= 0x80)
    rest = set()
    for y in range(32, len(rows)):
        rest.add(rows[y])
    if lit < 20:
        return "the top text row has %d light pixels: no banner" % lit
    if rest != {bytes(3 * w)}:
        return "the screen below the banner is not black"
    return None


def main():
    kind, path = sys.argv[1], sys.argv[2]
    w, h = int(sys.argv[3]), int(sys.argv[4])
    with open(path, "rb") as f:
        pw, ph, rows = png_decode(f.read())
    if (pw, ph) != (w, h):
        print("%s is %dx%d, the guest's mode is %dx%d" % (path, pw, ph, w, h))
        return 1
    why = (check_pattern(rows, w, h, int(sys.argv[5])) if kind == "pattern"
           else check_banner(rows, w))
    if why:
        print("%s: %s" % (path, why))
        return 1
    print("%s: %dx%d as the guest drew it" % (path, w, h))
    return 0


if __name__ == "__main__":
    sys.exit(main())
