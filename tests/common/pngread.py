"""A PNG reader for the tests that check `umdevctl screenshot`
(tests/daemon/test_display.py, tests/e2e/display-check.py): written here
from the PNG specification, not by the library that wrote the file, so a
file libpng wrote wrongly does not read back right by the same mistake."""

import struct
import zlib


def png_decode(data):
    """(width, height, rows of R, G, B bytes) of an 8-bit RGB PNG, read
    here (not by the library that wrote it): chunks, their CRCs, and
    each row's filter (PNG spec section 9)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc, = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        if zlib.crc32(kind + body) != crc:
            raise ValueError("bad CRC in %r" % kind)
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = ihdr
    if (depth, ctype, interlace) != (8, 2, 0):
        raise ValueError("not 8-bit RGB, non-interlaced: %r" % (ihdr,))
    raw, stride, bpp = zlib.decompress(idat), 3 * w, 3
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        cur = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for i in range(bpp, stride):
                cur[i] = (cur[i] + cur[i - bpp]) & 0xff
        elif f == 2:
            cur = bytearray((a + b) & 0xff for a, b in zip(cur, prev))
        elif f == 3:
            for i in range(stride):
                left = cur[i - bpp] if i >= bpp else 0
                cur[i] = (cur[i] + ((left + prev[i]) >> 1)) & 0xff
        elif f == 4:
            for i in range(stride):
                a = cur[i - bpp] if i >= bpp else 0
                b, c = prev[i], prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else b if pb <= pc else c
                cur[i] = (cur[i] + pr) & 0xff
        elif f != 0:
            raise ValueError("row %d: filter %d" % (y, f))
        rows.append(bytes(cur))
        prev = cur
    return w, h, rows
