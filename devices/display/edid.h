/*
 * The EDID 1.4 base block a display subdevice shows its guest (VESA
 * E-EDID Release A, Revision 2): the type's modes, its largest as the
 * preferred detailed timing, a serial number derived from the instance
 * UUID so that it is the same on every start, and the name "umdev".
 * Pure function; README.md lists the bytes and why.
 */
#ifndef UMDEV_DISPLAY_EDID_H
#define UMDEV_DISPLAY_EDID_H

#include <stddef.h>
#include <stdint.h>

#define EDID_BLOCK_LEN 128u

/* A detailed timing (EDID 1.4 section 3.10.2). */
struct edid_timing {
    uint32_t clock_khz;
    uint16_t hactive, hfront, hsync, hback;
    uint16_t vactive, vfront, vsync, vback;
    uint8_t hsync_pos, vsync_pos; /* 1: positive polarity */
};

/* A standard timing (section 3.9): resolution and refresh. */
struct edid_std_mode {
    uint16_t width, height;
    uint8_t refresh; /* Hz */
};

struct edid_desc {
    uint16_t product;        /* ID product code */
    uint32_t serial;         /* ID serial number */
    const char *serial_text; /* up to 13 characters, printable ASCII */
    const char *name;        /* up to 13 characters, printable ASCII */
    const struct edid_timing *preferred;
    uint8_t established[3];          /* bytes 35..37 */
    const struct edid_std_mode *std; /* at most 8 */
    size_t nstd;
};

/* Established timings I and II bits (section 3.8). */
#define EDID_EST_640x480_60 0x20u  /* byte 35 bit 5 */
#define EDID_EST_800x600_60 0x01u  /* byte 35 bit 0 */
#define EDID_EST_1024x768_60 0x08u /* byte 36 bit 3 */

/**
 * edid_build() - the base block for @d into @out.
 * Return: 0, or -EINVAL (a name or serial text too long or not printable,
 * more than 8 standard timings, or one EDID cannot encode).
 */
int edid_build(const struct edid_desc *d, uint8_t out[EDID_BLOCK_LEN]);

/**
 * edid_serial_from_uuid() - a 32-bit serial number from a UUID's 16
 * bytes (FNV-1a): the same instance shows the same monitor on every
 * start, and instances differ in practice.
 */
uint32_t edid_serial_from_uuid(const uint8_t uuid[16]);

/** edid_checksum_ok() - the block's bytes sum to 0 mod 256. */
int edid_checksum_ok(const uint8_t block[EDID_BLOCK_LEN]);

#endif /* UMDEV_DISPLAY_EDID_H */
