/*
 * EDID 1.4 base block builder (edid.h). Section numbers are VESA
 * E-EDID Release A, Revision 2's.
 */
#include <errno.h>
#include <string.h>

#include "edid.h"

/* Manufacturer ID "UMD" (3.4.1): three 5-bit letters, 'A' = 1. Not a
 * registered PNP ID; README.md says why that is acceptable here. */
#define EDID_MFG_ID (((('U' - '@') << 10) | (('M' - '@') << 5) | ('D' - '@')))

/* sRGB primaries and D65 white (3.7), in 1/1024ths. */
static const uint16_t srgb_chroma[8] = {
    655, 338, /* red x, y: 0.640, 0.330 */
    307, 614, /* green: 0.300, 0.600 */
    154, 61,  /* blue: 0.150, 0.060 */
    320, 337, /* white: 0.3127, 0.3290 */
};

/* Physical size for a nominal 96 pixels per inch, in millimetres. */
static uint32_t
px_to_mm(uint32_t px)
{
    return (px * 254u + 480u) / 960u;
}

static int
put_text(uint8_t *p, uint8_t tag, const char *s)
{
    size_t n = strlen(s), i;

    if (n > 13)
        return -EINVAL;
    memset(p, 0, 5);
    p[3] = tag;
    for (i = 0; i < 13; i++) {
        if (i < n) {
            if (s[i] < 0x20 || s[i] > 0x7e)
                return -EINVAL;
            p[5 + i] = (uint8_t)s[i];
        } else {
            /* 3.10.3: a short string ends in LF, padded with spaces. */
            p[5 + i] = i == n ? 0x0a : 0x20;
        }
    }
    return 0;
}

static int
put_dtd(uint8_t *p, const struct edid_timing *t)
{
    uint32_t hblank = (uint32_t)t->hfront + t->hsync + t->hback;
    uint32_t vblank = (uint32_t)t->vfront + t->vsync + t->vback;
    uint32_t clk = t->clock_khz / 10; /* 10 kHz units */
    uint32_t hmm = px_to_mm(t->hactive), vmm = px_to_mm(t->vactive);

    if (clk == 0 || clk > 0xffff || t->hactive > 0xfff || hblank > 0xfff ||
        t->vactive > 0xfff || vblank > 0xfff || t->hfront > 0x3ff ||
        t->hsync > 0x3ff || t->vfront > 0x3f || t->vsync > 0x3f ||
        hmm > 0xfff || vmm > 0xfff)
        return -EINVAL;
    p[0] = (uint8_t)clk;
    p[1] = (uint8_t)(clk >> 8);
    p[2] = (uint8_t)t->hactive;
    p[3] = (uint8_t)hblank;
    p[4] = (uint8_t)(((t->hactive >> 8) << 4) | (hblank >> 8));
    p[5] = (uint8_t)t->vactive;
    p[6] = (uint8_t)vblank;
    p[7] = (uint8_t)(((t->vactive >> 8) << 4) | (vblank >> 8));
    p[8] = (uint8_t)t->hfront;
    p[9] = (uint8_t)t->hsync;
    p[10] = (uint8_t)(((t->vfront & 0xf) << 4) | (t->vsync & 0xf));
    p[11] = (uint8_t)(((t->hfront >> 8) << 6) | ((t->hsync >> 8) << 4) |
                      ((t->vfront >> 4) << 2) | (t->vsync >> 4));
    p[12] = (uint8_t)hmm;
    p[13] = (uint8_t)vmm;
    p[14] = (uint8_t)(((hmm >> 8) << 4) | (vmm >> 8));
    p[15] = 0; /* no borders */
    p[16] = 0;
    /* Non-interlaced, digital separate sync (3.10.2 table 3.22). */
    p[17] =
        (uint8_t)(0x18 | (t->vsync_pos ? 0x04 : 0) | (t->hsync_pos ? 0x02 : 0));
    return 0;
}

/* Range limits (3.10.3.3) that hold every mode the block lists: 50 to
 * 75 Hz vertical, 30 kHz to just past the preferred mode's line rate,
 * and its pixel clock rounded up to 10 MHz. */
static void
put_range(uint8_t *p, const struct edid_timing *t)
{
    uint32_t htotal = (uint32_t)t->hactive + t->hfront + t->hsync + t->hback;
    uint32_t hkhz = (t->clock_khz + htotal - 1) / htotal + 1;

    memset(p, 0, 18);
    p[3] = 0xfd;
    p[5] = 50;
    p[6] = 75;
    p[7] = 30;
    p[8] = (uint8_t)(hkhz > 255 ? 255 : hkhz);
    p[9] = (uint8_t)((t->clock_khz + 9999) / 10000);
    p[10] = 0x01; /* range limits only: no timing formula */
    p[11] = 0x0a;
    memset(p + 12, 0x20, 6);
}

/* A standard timing's two bytes (3.9.1). */
static int
put_std(uint8_t *p, const struct edid_std_mode *m)
{
    uint8_t aspect;

    if (m->width < 256 || m->width > 2288 || m->width % 8 != 0 ||
        m->refresh < 60 || m->refresh > 123)
        return -EINVAL;
    if ((uint32_t)m->height * 16 == (uint32_t)m->width * 10)
        aspect = 0;
    else if ((uint32_t)m->height * 4 == (uint32_t)m->width * 3)
        aspect = 1;
    else if ((uint32_t)m->height * 5 == (uint32_t)m->width * 4)
        aspect = 2;
    else if ((uint32_t)m->height * 16 == (uint32_t)m->width * 9)
        aspect = 3;
    else
        return -EINVAL;
    p[0] = (uint8_t)(m->width / 8 - 31);
    p[1] = (uint8_t)((aspect << 6) | (m->refresh - 60));
    return 0;
}

int
edid_build(const struct edid_desc *d, uint8_t out[EDID_BLOCK_LEN])
{
    static const uint8_t header[8] = { 0x00, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0xff, 0x00 };
    uint8_t *b = out, sum = 0;
    size_t i;
    int rc;

    if (d->nstd > 8 || d->preferred == NULL)
        return -EINVAL;
    memset(b, 0, EDID_BLOCK_LEN);
    memcpy(b, header, sizeof(header));
    b[8] = (uint8_t)(EDID_MFG_ID >> 8); /* big-endian (3.4.1) */
    b[9] = (uint8_t)EDID_MFG_ID;
    b[10] = (uint8_t)d->product; /* little-endian (3.4.2) */
    b[11] = (uint8_t)(d->product >> 8);
    for (i = 0; i < 4; i++)
        b[12 + i] = (uint8_t)(d->serial >> (8 * i));
    b[16] = 0xff; /* week 0xff: byte 17 is the model year (3.4.4) */
    b[17] = 2026 - 1990;
    b[18] = 1; /* EDID 1.4 */
    b[19] = 4;
    /* Digital input, 8 bits per colour, interface not named (3.6.1). */
    b[20] = 0xa0;
    b[21] = (uint8_t)((px_to_mm(d->preferred->hactive) + 5) / 10);
    b[22] = (uint8_t)((px_to_mm(d->preferred->vactive) + 5) / 10);
    b[23] = 120; /* gamma 2.2: (2.2 * 100) - 100 */
    /* RGB 4:4:4, sRGB the default colour space, the preferred timing is
     * the native format; no DPMS, not continuous frequency, so the
     * guest infers no modes beyond those listed (3.6.4). */
    b[24] = 0x06;
    b[25] =
        (uint8_t)(((srgb_chroma[0] & 3) << 6) | ((srgb_chroma[1] & 3) << 4) |
                  ((srgb_chroma[2] & 3) << 2) | (srgb_chroma[3] & 3));
    b[26] =
        (uint8_t)(((srgb_chroma[4] & 3) << 6) | ((srgb_chroma[5] & 3) << 4) |
                  ((srgb_chroma[6] & 3) << 2) | (srgb_chroma[7] & 3));
    for (i = 0; i < 8; i++)
        b[27 + i] = (uint8_t)(srgb_chroma[i] >> 2);
    memcpy(b + 35, d->established, 3);
    for (i = 0; i < 8; i++) {
        if (i < d->nstd) {
            rc = put_std(b + 38 + 2 * i, &d->std[i]);
            if (rc < 0)
                return rc;
        } else {
            b[38 + 2 * i] = 0x01; /* unused (3.9) */
            b[39 + 2 * i] = 0x01;
        }
    }
    rc = put_dtd(b + 54, d->preferred);
    if (rc == 0)
        put_range(b + 72, d->preferred);
    if (rc == 0)
        rc = put_text(b + 90, 0xfc, d->name);
    if (rc == 0)
        rc = put_text(b + 108, 0xff, d->serial_text);
    if (rc < 0)
        return rc;
    b[126] = 0; /* no extension blocks */
    for (i = 0; i < EDID_BLOCK_LEN - 1; i++)
        sum = (uint8_t)(sum + b[i]);
    b[127] = (uint8_t)(0x100 - sum);
    return 0;
}

uint32_t
edid_serial_from_uuid(const uint8_t uuid[16])
{
    uint32_t h = 2166136261u;
    size_t i;

    for (i = 0; i < 16; i++) {
        h ^= uuid[i];
        h *= 16777619u;
    }
    return h;
}

int
edid_checksum_ok(const uint8_t block[EDID_BLOCK_LEN])
{
    uint8_t sum = 0;
    size_t i;

    for (i = 0; i < EDID_BLOCK_LEN; i++)
        sum = (uint8_t)(sum + block[i]);
    return sum == 0;
}
