/*
 * libFuzzer target: a stream of register (BAR2), framebuffer (BAR0) and
 * config accesses, DISPI writes by index, whole bochs-drm mode sets,
 * VGA and byte-order pokes, resets and DMA mappings against the display
 * subdevice (devices/display, type display-1024).
 *
 * After every operation: config space keeps its identity and capability
 * chain; the guest-memory canaries are intact (the device does no DMA);
 * DISPI ID still reads as an interface version bochs-drm accepts and the
 * memory size as BAR0's; and the mode display_screen() reports lies
 * inside video memory (op SCREEN and the end of an input also read the
 * first and last visible byte of every row through its pointer). At the end
 * the device answers a REGION_READ over the socket, and no descriptor is
 * left open.
 *
 * Speed: the device and guest memory live for the process; an input is
 * one new client (a socketpair and VERSION). After it the client resets
 * the device over its socket (its own reset path), which is the whole
 * power cycle: a reset display equals a new one (registers at power-on,
 * video memory given back). FUZZ_SELFCHECK=1 compares each reset device
 * with a new one and aborts on a difference.
 *
 * Input: ops until it ends, each an opcode byte (mod OP_COUNT) and its
 * operands (missing operand bytes read as 0):
 *   BAR2_WR / BAR2_RD / BAR0_WR / BAR0_RD / CFG_WR / CFG_RD
 *            u16 offset (mod the region's size), u8 width code (as in
 *            accel_bar.c), the bytes of a write
 *   DISPI    u8 index (mod 16), u16 value: a 2-byte write at 0x500+2i
 *   MODE     u16 xres, u16 yres, u8 bpp: bochs-drm's mode set sequence
 *   SCREEN   display_screen(), each visible row's edges read
 *   VGA      u8 port (mod 32), u8 value, u8: bit 0 read instead
 *   QEXT     u32 written to the byte-order register
 *   RESET    VFIO_USER_DEVICE_RESET over the socket
 *   MAP      u8: DMA_MAP of guest memory (bit 0: read-only)
 *   SOCK_RD  a REGION_READ of DISPI ID over the socket
 * fuzz/corpus/display_bar/ holds hand-made inputs: mode sets as the
 * driver does them, page flips, hostile sizes and offsets, blanking,
 * byte order, EDID reads.
 */
#include <errno.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bar_harness.h"
#include "display.h"
#include "kit_util.h"
#include "umdev/dev_testing.h"
#include "umdev/wire.h"
#include "vbe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define GUEST_PAGES 4u
#define GUEST_IOVA 0x100000ull
#define FB_FUZZ_SIZE 0x10000u /* BAR0 offsets the region ops reach */

enum op {
    OP_BAR2_WR,
    OP_BAR2_RD,
    OP_BAR0_WR,
    OP_BAR0_RD,
    OP_CFG_WR,
    OP_CFG_RD, /* the last of the FUZZ_REGION_OPS */
    OP_DISPI,
    OP_MODE,
    OP_SCREEN,
    OP_VGA,
    OP_QEXT,
    OP_RESET,
    OP_MAP,
    OP_SOCK_RD,
    OP_COUNT,
};

static struct kit_log fuzz_log;

struct harness {
    struct display *d;
    struct umdev_dev *dev;
    struct fuzz_bar b;
};

static void
rw(struct harness *h, uint32_t region, uint64_t off, void *buf, size_t len,
   bool is_write)
{
    /* Refusals (the profile's) are valid answers. */
    (void)umdev_dev_region_rw(h->dev, region, off, buf, len, is_write);
}

static void
dispi(struct harness *h, unsigned int index, uint16_t v)
{
    uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };

    rw(h, UMDEV_PCI_BAR2_REGION, VBE_DISPI_OFFSET + 2 * index, b, 2, true);
}

static void
vga(struct harness *h, unsigned int port, uint8_t v, bool read)
{
    rw(h, UMDEV_PCI_BAR2_REGION, VBE_VGA_OFFSET + port, &v, 1, !read);
}

/* bochs_hw_setmode() with the input's sizes and depth. */
static void
mode_set(struct harness *h, struct fuzz_in *in)
{
    uint16_t x = fuzz_u16(in), y = fuzz_u16(in);
    uint8_t bpp = fuzz_u8(in);
    uint32_t stride = (x ? x : 1) * 4u;

    vga(h, 0x02, VGA_MIS_COLOR, false);
    vga(h, 0x1a, 0, true);
    vga(h, 0x00, VGA_AR_ENABLE_DISPLAY, false);
    dispi(h, VBE_DISPI_INDEX_ENABLE, 0);
    dispi(h, VBE_DISPI_INDEX_BPP, bpp);
    dispi(h, VBE_DISPI_INDEX_XRES, x);
    dispi(h, VBE_DISPI_INDEX_YRES, y);
    dispi(h, VBE_DISPI_INDEX_BANK, 0);
    dispi(h, VBE_DISPI_INDEX_VIRT_WIDTH, x);
    dispi(h, VBE_DISPI_INDEX_VIRT_HEIGHT, (uint16_t)((8u << 20) / stride));
    dispi(h, VBE_DISPI_INDEX_X_OFFSET, 0);
    dispi(h, VBE_DISPI_INDEX_Y_OFFSET, 0);
    dispi(h, VBE_DISPI_INDEX_ENABLE, VBE_DISPI_ENABLED | VBE_DISPI_LFB_ENABLED);
}

/* The screen-out view lies inside video memory; with @read_all, the
 * edges of every visible row are read through its pointer. */
static void
screen_check(struct harness *h, bool read_all)
{
    struct display_screen s;
    volatile uint8_t sink = 0;

    display_screen(h->d, &s);
    if (!s.mode.enabled) {
        FUZZ_CHECK(s.pixels == NULL);
        return;
    }
    FUZZ_CHECK(s.mode.width >= 1 && s.mode.height >= 1);
    FUZZ_CHECK(s.mode.pitch >= s.mode.width * s.mode.bytepp);
    FUZZ_CHECK(s.pixels == s.vram + s.mode.offset);
    FUZZ_CHECK(s.mode.offset + (uint64_t)(s.mode.height - 1) * s.mode.pitch +
                   (uint64_t)s.mode.width * s.mode.bytepp <=
               s.vram_size);
    if (!read_all)
        return;
    for (uint32_t y = 0; y < s.mode.height; y++) {
        const uint8_t *row = s.pixels + (uint64_t)y * s.mode.pitch;

        sink ^= row[0];
        sink ^= row[(size_t)s.mode.width * s.mode.bytepp - 1];
    }
    (void)sink;
}

static void
check(void *arg)
{
    struct harness *h = arg;
    uint8_t b[2];

    fuzz_bar_check(&h->b);
    FUZZ_CHECK_EQ(umdev_dev_region_rw(h->dev, UMDEV_PCI_BAR2_REGION,
                                      VBE_DISPI_OFFSET, b, 2, false),
                  0);
    FUZZ_CHECK_EQ((b[0] | b[1] << 8) & 0xfff0, VBE_DISPI_ID0);
    FUZZ_CHECK_EQ(umdev_dev_region_rw(h->dev, UMDEV_PCI_BAR2_REGION,
                                      VBE_DISPI_OFFSET +
                                          2 * VBE_DISPI_INDEX_VIDEO_MEMORY_64K,
                                      b, 2, false),
                  0);
    FUZZ_CHECK_EQ(b[0] | b[1] << 8, 128);
    screen_check(h, false);
}

static void
display_op(void *arg, unsigned int op, struct fuzz_in *in)
{
    struct harness *h = arg;
    uint32_t x;
    uint8_t v, u;

    switch (op) {
    case OP_DISPI:
        v = fuzz_u8(in);
        dispi(h, v % 16u, fuzz_u16(in));
        break;
    case OP_MODE:
        mode_set(h, in);
        break;
    case OP_SCREEN:
        screen_check(h, true);
        break;
    case OP_VGA:
        v = fuzz_u8(in);
        u = fuzz_u8(in);
        vga(h, v % 32u, u, fuzz_u8(in) & 1);
        break;
    case OP_QEXT:
        x = (uint32_t)fuzz_bytes(in, 4);
        rw(h, UMDEV_PCI_BAR2_REGION, VBE_QEXT_OFFSET + 4, &x, 4, true);
        break;
    case OP_RESET:
        FUZZ_CHECK_EQ(fuzz_reset(&h->b.c), 0);
        break;
    case OP_MAP:
        v = fuzz_u8(in);
        fuzz_dma_map_guarded(&h->b.c, h->b.g.fd, FUZZ_PAGE, GUEST_IOVA,
                             GUEST_PAGES * FUZZ_PAGE,
                             VFIO_USER_DMA_MAP_FLAG_READ |
                                 ((v & 1) ? 0 : VFIO_USER_DMA_MAP_FLAG_WRITE));
        break;
    case OP_SOCK_RD: {
        uint8_t b[2];

        FUZZ_CHECK_EQ(fuzz_region_read(&h->b.c, UMDEV_PCI_BAR2_REGION,
                                       VBE_DISPI_OFFSET, b, 2),
                      0);
        break;
    }
    }
}

/* The device, made on first use and kept for the process. */
static struct display *disp;
static struct fuzz_bar bar; /* guest memory, eventfd: the process's */

static void
disp_create(struct display **out)
{
    struct display_config cfg = { .type = "display-1024",
                                  .uuid =
                                      "00112233-4455-6677-8899-aabbccddeeff",
                                  .name = "fuzz" };

    FUZZ_CHECK_EQ(display_create(&cfg, &fuzz_log.logger, out), 0);
}

/* At exit, so that teardown runs under the sanitizers (and LSan) too. */
static void
disp_free(void)
{
    display_destroy(disp);
    disp = NULL;
    fuzz_bar_close(&bar);
}

static void
disp_get(void)
{
    if (disp != NULL)
        return;
    kit_log_init(&fuzz_log, "device", "UMDEV_FUZZ_VERBOSE");
    fuzz_bar_open(&bar, GUEST_PAGES);
    disp_create(&disp);
    atexit(disp_free);
}

/* FUZZ_SELFCHECK: the reset device against a new one. */
static void
selfcheck(void)
{
    static const struct fuzz_cmp_region r[3] = {
        { UMDEV_PCI_BAR2_REGION, VBE_MMIO_SIZE, 2 },
        { UMDEV_PCI_BAR2_REGION, VBE_MMIO_SIZE, 1 },
        { UMDEV_PCI_BAR0_REGION, FB_FUZZ_SIZE, 8 },
    };
    struct display *d;

    disp_create(&d);
    fuzz_dev_compare("display_bar", display_dev(disp), display_dev(d), r, 3);
    display_destroy(d);
    /* The reads toggled IS1 on both: reset ours again. */
    FUZZ_CHECK_EQ(fuzz_client_reset_detached(display_dev(disp)), 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct fuzz_region regions[3] = {
        { UMDEV_PCI_BAR2_REGION, VBE_MMIO_SIZE },
        { UMDEV_PCI_BAR0_REGION, FB_FUZZ_SIZE },
        { UMDEV_PCI_CONFIG_REGION, 256 },
    };
    struct fuzz_in in = { data, size };
    struct harness h;
    uint8_t b[2];

    if (size < 1)
        return 0;
    disp_get();
    h.d = disp;
    h.dev = display_dev(disp);
    h.b = bar;
    fuzz_bar_begin(&h.b, h.dev, display_pci(disp));

    fuzz_bar_play(&in, OP_COUNT, h.dev, regions, display_op, check, &h);

    screen_check(&h, true);
    FUZZ_CHECK_EQ(
        fuzz_region_read(&h.b.c, UMDEV_PCI_BAR2_REGION, VBE_DISPI_OFFSET, b, 2),
        0);
    fuzz_bar_end(&h.b);
    if (fuzz_selfcheck())
        selfcheck();
    fuzz_bar_check_fds(&h.b);
    return 0;
}
