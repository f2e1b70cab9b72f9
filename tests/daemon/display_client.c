/*
 * daemon-display-client: a VMM stand-in for the display parent's screen
 * tests. It sets a mode through BAR2 as Linux's bochs-drm does (ENABLE
 * 0, the DISPI registers, ENABLE|LFB), the byte order, optionally blanks
 * the screen through the VGA attribute index, fills all of video memory
 * (mapped from BAR0, no message per byte) with a pseudo-random pattern
 * from SEED, and writes a copy of that memory to DUMP so the test can
 * compute the visible picture itself.
 *
 *   daemon-display-client SOCKET TIMEOUT_MS DUMP XRES YRES BPP VIRT_W
 *                         XOFF YOFF ORDER SEED [blank|off]
 *   ORDER: le or be. "off" leaves the mode disabled (ENABLE 0).
 *
 * Prints the registers as read back ("mode XRES YRES BPP VIRT_W XOFF
 * YOFF"). Exit: 0 done; 1 a step failed; 2 usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "umdev/client.h"

#define USAGE                                                                  \
    "usage: daemon-display-client SOCKET TIMEOUT_MS DUMP XRES YRES BPP "       \
    "VIRT_W XOFF YOFF le|be SEED [blank|off]\n"

/* BAR2 layout (devices/display/README.md). */
#define BAR2 2
#define DISPI(i) (0x500u + ((i) << 1))
#define XRES 1
#define YRES 2
#define BPP 3
#define ENABLE 4
#define VIRT_WIDTH 6
#define X_OFFSET 8
#define Y_OFFSET 9
#define ENABLED 0x01
#define LFB_ENABLED 0x40
#define QEXT_BYTEORDER 0x604u
#define VGA_ATT_W 0x400u
#define VGA_IS1_RC 0x41au

static int
w16(struct umdev_client *c, unsigned int reg, unsigned int v)
{
    uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };

    return umdev_client_region_write(c, BAR2, DISPI(reg), b, 2);
}

static long
r16(struct umdev_client *c, unsigned int reg)
{
    uint8_t b[2];
    int rc = umdev_client_region_read(c, BAR2, DISPI(reg), b, 2);

    return rc < 0 ? rc : (long)(b[0] | b[1] << 8);
}

static int
num(const char *s, long max, long *out)
{
    char *end;

    errno = 0;
    *out = strtol(s, &end, 0);
    return errno == 0 && *end == '\0' && *out >= 0 && *out <= max ? 0 : -1;
}

int
main(int argc, char **argv)
{
    struct umdev_client_opts opts = { 0 };
    struct umdev_client_region ri;
    struct umdev_client *c;
    long v[8], order_be;
    uint64_t x;
    uint8_t *vram, b;
    void *p;
    size_t len, i;
    FILE *f;
    int rc, k;
    const char *extra = argc == 13 ? argv[12] : "";

    if ((argc != 12 && argc != 13) ||
        (strcmp(argv[10], "le") != 0 && strcmp(argv[10], "be") != 0) ||
        (argc == 13 && strcmp(extra, "blank") != 0 && strcmp(extra, "off"))) {
        fputs(USAGE, stderr);
        return 2;
    }
    if (num(argv[2], 600000, &v[0]) < 0 || v[0] < 1) {
        fputs(USAGE, stderr);
        return 2;
    }
    opts.timeout_ms = (int)v[0];
    for (k = 0; k < 6; k++)
        if (num(argv[4 + k], 0xffff, &v[k]) < 0) {
            fputs(USAGE, stderr);
            return 2;
        }
    if (num(argv[11], 0x7fffffff, &v[6]) < 0) {
        fputs(USAGE, stderr);
        return 2;
    }
    order_be = strcmp(argv[10], "be") == 0;
    rc = umdev_client_connect(argv[1], &opts, &c);
    if (rc < 0) {
        fprintf(stderr, "connect %s: %s\n", argv[1], strerror(-rc));
        return 1;
    }
    rc = umdev_client_region_info(c, 0, &ri);
    if (rc == 0)
        rc = umdev_client_region_mmap(c, 0, 0, &p, &len);
    if (rc < 0) {
        fprintf(stderr, "map BAR0: %s\n", strerror(-rc));
        goto fail;
    }
    vram = p;
    /* bochs_hw_setmode(): disable, program, enable. */
    {
        uint8_t bo[4];
        uint32_t val = order_be ? 0xbebebebeu : 0x1e1e1e1eu;

        for (k = 0; k < 4; k++)
            bo[k] = (uint8_t)(val >> (8 * k));
        rc = umdev_client_region_write(c, BAR2, QEXT_BYTEORDER, bo, 4);
    }
    if (rc == 0)
        rc = w16(c, ENABLE, 0);
    if (rc == 0)
        rc = w16(c, BPP, (unsigned int)v[2]);
    if (rc == 0)
        rc = w16(c, XRES, (unsigned int)v[0]);
    if (rc == 0)
        rc = w16(c, YRES, (unsigned int)v[1]);
    if (rc == 0)
        rc = w16(c, VIRT_WIDTH, (unsigned int)v[3]);
    if (rc == 0)
        rc = w16(c, X_OFFSET, (unsigned int)v[4]);
    if (rc == 0)
        rc = w16(c, Y_OFFSET, (unsigned int)v[5]);
    if (rc == 0 && strcmp(extra, "off") != 0)
        rc = w16(c, ENABLE, ENABLED | LFB_ENABLED);
    if (rc == 0 && strcmp(extra, "blank") == 0) {
        /* bochs_hw_blank(): reset the flip-flop, then index 0 (PAS
         * clear). */
        rc = umdev_client_region_read(c, BAR2, VGA_IS1_RC, &b, 1);
        b = 0;
        if (rc == 0)
            rc = umdev_client_region_write(c, BAR2, VGA_ATT_W, &b, 1);
    }
    if (rc < 0) {
        fprintf(stderr, "mode set: %s\n", strerror(-rc));
        goto fail;
    }
    /* Drawn after the enable, which clears the visible frame. xorshift64
     * from the seed: any byte may be anything, so a wrong offset, pitch
     * or byte order shows. */
    x = 0x9e3779b97f4a7c15ull ^ (uint64_t)v[6];
    for (i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        vram[i] = (uint8_t)(x >> 24);
    }
    f = fopen(argv[3], "wb");
    if (f == NULL || fwrite(vram, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "%s: %s\n", argv[3], strerror(errno));
        goto fail;
    }
    printf("mode");
    for (k = XRES; k <= Y_OFFSET; k++) {
        if (k == ENABLE || k == 5 || k == 7)
            continue;
        printf(" %ld", r16(c, (unsigned int)k));
    }
    printf("\n");
    umdev_client_destroy(c);
    return 0;
fail:
    umdev_client_destroy(c);
    return 1;
}
