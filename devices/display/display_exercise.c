/*
 * The display parent's exercise() hook (display_parent.h): the
 * conformance kit's load for display types, driven through the client
 * the kit hands over as bochs-drm drives the device, with every page it
 * draws read back through the device and compared.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "display_parent.h"
#include "umdev/client.h"
#include "vbe.h"

#define EX_PAGE 4096u
/* Read-back chunk: well under any server's max_data_xfer_size. */
#define EX_CHUNK (256u << 10)

static uint64_t
msgs(struct umdev_client *c)
{
    struct umdev_client_stats s;

    umdev_client_get_stats(c, &s);
    return s.requests + s.dma_reads + s.dma_writes;
}

static int
dispi_wr(struct umdev_client *c, unsigned int index, uint16_t val)
{
    uint8_t b[2] = { (uint8_t)val, (uint8_t)(val >> 8) };

    return umdev_client_region_write(c, 2, VBE_DISPI_OFFSET + 2 * index, b, 2);
}

static int
dispi_rd(struct umdev_client *c, unsigned int index, uint16_t *val)
{
    uint8_t b[2];
    int rc = umdev_client_region_read(c, 2, VBE_DISPI_OFFSET + 2 * index, b, 2);

    *val = (uint16_t)(b[0] | b[1] << 8);
    return rc;
}

/* Page @n's pattern: a different word per page and per position. */
static void
fill_page(uint8_t *p, uint64_t n)
{
    uint64_t x = (n + 1) * 0x9e3779b97f4a7c15ull;
    size_t i;

    for (i = 0; i < EX_PAGE; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(p + i, &x, 8);
    }
}

/* The bring-up bochs-drm's bochs_hw_init() and bochs_hw_setmode() do,
 * at the largest mode GETCAPS reports. */
static int
mode_set(struct umdev_client *c, uint64_t vram, char *note, size_t len)
{
    uint16_t id, mem64k, xmax = 0, ymax = 0, x = 0, y = 0;
    int rc;

    rc = dispi_rd(c, VBE_DISPI_INDEX_ID, &id);
    if (rc == 0)
        rc = dispi_rd(c, VBE_DISPI_INDEX_VIDEO_MEMORY_64K, &mem64k);
    if (rc == 0 && ((id & 0xfff0) != VBE_DISPI_ID0 ||
                    (uint64_t)mem64k * 0x10000u != vram)) {
        snprintf(note, len,
                 "ID %#x / video memory %u x 64 KiB: not what bochs-drm "
                 "binds to a %" PRIu64 "-byte BAR0",
                 id, mem64k, vram);
        return -ENODEV;
    }
    if (rc == 0)
        rc = dispi_wr(c, VBE_DISPI_INDEX_ENABLE, VBE_DISPI_GETCAPS);
    if (rc == 0)
        rc = dispi_rd(c, VBE_DISPI_INDEX_XRES, &xmax);
    if (rc == 0)
        rc = dispi_rd(c, VBE_DISPI_INDEX_YRES, &ymax);
    if (rc == 0)
        rc = dispi_wr(c, VBE_DISPI_INDEX_ENABLE, 0);
    if (rc == 0)
        rc = dispi_wr(c, VBE_DISPI_INDEX_BPP, 32);
    if (rc == 0)
        rc = dispi_wr(c, VBE_DISPI_INDEX_XRES, xmax);
    if (rc == 0)
        rc = dispi_wr(c, VBE_DISPI_INDEX_YRES, ymax);
    if (rc == 0)
        rc = dispi_wr(c, VBE_DISPI_INDEX_VIRT_WIDTH, xmax);
    if (rc == 0)
        rc = dispi_wr(c, VBE_DISPI_INDEX_ENABLE,
                      VBE_DISPI_ENABLED | VBE_DISPI_LFB_ENABLED);
    if (rc == 0)
        rc = dispi_rd(c, VBE_DISPI_INDEX_XRES, &x);
    if (rc == 0)
        rc = dispi_rd(c, VBE_DISPI_INDEX_YRES, &y);
    if (rc < 0) {
        snprintf(note, len, "mode set: register access failed: %s",
                 strerror(-rc));
        return rc;
    }
    if (x != xmax || y != ymax || x == 0 || y == 0) {
        snprintf(note, len, "mode set to %ux%u reads back %ux%u", xmax, ymax, x,
                 y);
        return -EIO;
    }
    return 0;
}

int
display_exercise(const struct umdev_exercise_args *args,
                 struct umdev_exercise_result *out)
{
    struct umdev_client *c = args->client;
    struct umdev_client_region r0;
    uint64_t m0, m1, m2, m3, n, pages, i;
    uint8_t *fb = NULL, *chunk = NULL, want[EX_PAGE];
    size_t fblen = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    m0 = msgs(c);
    rc = umdev_client_region_info(c, 0, &r0);
    if (rc == 0)
        rc = umdev_client_region_mmap(c, 0, 0, (void **)&fb, &fblen);
    if (rc < 0) {
        snprintf(out->note, sizeof(out->note),
                 "BAR0 (the framebuffer) cannot be mapped: %s", strerror(-rc));
        return rc;
    }
    if (fblen != r0.size || fblen < EX_PAGE) {
        snprintf(out->note, sizeof(out->note),
                 "BAR0's mappable area is %zu of %" PRIu64 " bytes", fblen,
                 r0.size);
        return -EINVAL;
    }
    rc = mode_set(c, r0.size, out->note, sizeof(out->note));
    if (rc < 0)
        return rc;
    pages = fblen / EX_PAGE;
    m1 = msgs(c);
    /* The data path: the guest's stores into its mapping. */
    for (n = 0; n < args->units; n++)
        fill_page(fb + (n % pages) * EX_PAGE, n);
    m2 = msgs(c);
    /* Read back what the device holds: every page drawn last. */
    chunk = malloc(EX_CHUNK);
    if (chunk == NULL)
        return -ENOMEM;
    n = args->units < pages ? args->units : pages;
    for (i = 0; i < n * EX_PAGE && rc == 0; i += EX_CHUNK) {
        size_t len = n * EX_PAGE - i < EX_CHUNK ? n * EX_PAGE - i : EX_CHUNK;
        uint64_t k;

        rc = umdev_client_region_read(c, 0, i, chunk, len);
        for (k = 0; rc == 0 && k < len / EX_PAGE; k++) {
            uint64_t page = i / EX_PAGE + k;
            /* The last unit drawn into this page. */
            uint64_t unit = page + ((args->units - 1 - page) / pages) * pages;

            fill_page(want, unit);
            if (memcmp(chunk + k * EX_PAGE, want, EX_PAGE) != 0) {
                snprintf(out->note, sizeof(out->note),
                         "page %" PRIu64 " of video memory reads back other "
                         "pixels than the guest drew",
                         page);
                rc = -EIO;
            }
        }
    }
    free(chunk);
    if (rc < 0) {
        if (out->note[0] == '\0')
            snprintf(out->note, sizeof(out->note), "read-back: %s",
                     strerror(-rc));
        return rc;
    }
    m3 = msgs(c);
    out->units = args->units;
    out->waiting_msgs = (m1 - m0) + (m3 - m2);
    snprintf(out->note, sizeof(out->note),
             "%" PRIu64 " pages drawn through the BAR0 mapping in %" PRIu64
             " msgs; waiting: %" PRIu64 " msgs mode set and read-back",
             out->units, m2 - m1, out->waiting_msgs);
    return 0;
}
