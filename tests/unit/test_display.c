/*
 * Unit tests of the display subdevice (devices/display): the register
 * model (vbe.c) driven as Linux's bochs-drm drives it, hostile values,
 * ID negotiation, byte order, blanking, reset and its migration blob;
 * the EDID block (edid.c); and, in-process, the device around them
 * (config space, the profile's refusals, the screen-out view).
 */
#include <errno.h>
#include <linux/pci_regs.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include <cmocka.h>

#include "display.h"
#include "display_parent.h"
#include "edid.h"
#include "umdev/dev_testing.h"
#include "umdev/parent.h"
#include "umdev/pci.h"
#include "vbe.h"

#define UUID_A "3b1f6a8e-9c41-4b7e-a2d5-0f6c1e2d3a4b"
#define UUID_B "3b1f6a8e-9c41-4b7e-a2d5-0f6c1e2d3a4c"

/* ---- the model on its own */

struct model {
    struct vbe v;
    uint8_t *vram;
    struct vbe_limits lim;
};

static int
model_setup(void **state)
{
    struct model *m = calloc(1, sizeof(*m));
    uint8_t edid[VBE_EDID_LEN];

    assert_non_null(m);
    m->lim = (struct vbe_limits){ 1024, 768, 8u << 20 };
    m->vram = malloc(m->lim.vram_size);
    assert_non_null(m->vram);
    memset(m->vram, 0x5a, m->lim.vram_size);
    for (unsigned int i = 0; i < VBE_EDID_LEN; i++)
        edid[i] = (uint8_t)i;
    assert_int_equal(vbe_init(&m->v, &m->lim, m->vram, edid), 0);
    *state = m;
    return 0;
}

static int
model_teardown(void **state)
{
    struct model *m = *state;

    free(m->vram);
    free(m);
    return 0;
}

static void
w16(struct vbe *v, unsigned int index, uint16_t val)
{
    uint8_t b[2] = { (uint8_t)val, (uint8_t)(val >> 8) };

    assert_int_equal(vbe_mmio_write(v, VBE_DISPI_OFFSET + 2 * index, b, 2), 0);
}

static uint16_t
r16(struct vbe *v, unsigned int index)
{
    uint8_t b[2];

    assert_int_equal(vbe_mmio_read(v, VBE_DISPI_OFFSET + 2 * index, b, 2), 0);
    return (uint16_t)(b[0] | b[1] << 8);
}

static void
w8(struct vbe *v, unsigned int port, uint8_t val)
{
    assert_int_equal(vbe_mmio_write(v, VBE_VGA_OFFSET + port - 0x3c0, &val, 1),
                     0);
}

static uint8_t
r8(struct vbe *v, unsigned int port)
{
    uint8_t b;

    assert_int_equal(vbe_mmio_read(v, VBE_VGA_OFFSET + port - 0x3c0, &b, 1), 0);
    return b;
}

static void
w32(struct vbe *v, uint32_t off, uint32_t val)
{
    uint8_t b[4] = { (uint8_t)val, (uint8_t)(val >> 8), (uint8_t)(val >> 16),
                     (uint8_t)(val >> 24) };

    assert_int_equal(vbe_mmio_write(v, off, b, 4), 0);
}

static uint32_t
r32(struct vbe *v, uint32_t off)
{
    uint8_t b[4];

    assert_int_equal(vbe_mmio_read(v, off, b, 4), 0);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
           (uint32_t)b[3] << 24;
}

/* bochs_hw_setmode(): unblank, then the DISPI sequence, for @x x @y. */
static void
bochs_setmode(struct vbe *v, uint32_t fb_size, uint16_t x, uint16_t y)
{
    uint32_t stride = x * 4u;

    w8(v, VGA_MIS_W, VGA_MIS_COLOR);
    (void)r8(v, VGA_IS1_RC);
    w8(v, VGA_ATT_W, 0x20);
    w16(v, VBE_DISPI_INDEX_ENABLE, 0);
    w16(v, VBE_DISPI_INDEX_BPP, 32);
    w16(v, VBE_DISPI_INDEX_XRES, x);
    w16(v, VBE_DISPI_INDEX_YRES, y);
    w16(v, VBE_DISPI_INDEX_BANK, 0);
    w16(v, VBE_DISPI_INDEX_VIRT_WIDTH, x);
    w16(v, VBE_DISPI_INDEX_VIRT_HEIGHT, (uint16_t)(fb_size / stride));
    w16(v, VBE_DISPI_INDEX_X_OFFSET, 0);
    w16(v, VBE_DISPI_INDEX_Y_OFFSET, 0);
    w16(v, VBE_DISPI_INDEX_ENABLE, VBE_DISPI_ENABLED | VBE_DISPI_LFB_ENABLED);
}

/* The visible rectangle of @mode lies inside video memory. */
static void
assert_mode_fits(const struct vbe_mode *m, const struct vbe_limits *lim)
{
    if (!m->enabled)
        return;
    assert_true(m->width >= 1 && m->width <= lim->max_xres);
    assert_true(m->height >= 1 && m->height <= lim->max_yres);
    assert_true(m->virt_width >= m->width);
    assert_true((uint64_t)m->virt_height * m->pitch <= lim->vram_size);
    assert_true(m->offset + (uint64_t)(m->height - 1) * m->pitch +
                    (uint64_t)m->width * m->bytepp <=
                lim->vram_size);
}

static void
test_probe(void **state)
{
    struct model *m = *state;

    /* bochs_hw_init(): the ID's upper 12 bits, memory = BAR0's size,
     * the QEMU extended block's size, then little-endian set. */
    assert_int_equal(r16(&m->v, VBE_DISPI_INDEX_ID) & 0xfff0, VBE_DISPI_ID0);
    assert_int_equal(r16(&m->v, VBE_DISPI_INDEX_VIDEO_MEMORY_64K) * 65536u,
                     m->lim.vram_size);
    assert_int_equal(r32(&m->v, VBE_QEXT_OFFSET), VBE_QEXT_SIZE);
    assert_int_equal(r32(&m->v, VBE_QEXT_OFFSET + 4), VBE_QEXT_LITTLE_ENDIAN);
}

static void
test_setmode_as_bochs(void **state)
{
    struct model *m = *state;
    struct vbe_mode mode;

    bochs_setmode(&m->v, m->lim.vram_size, 800, 600);
    vbe_get_mode(&m->v, &mode);
    assert_true(mode.enabled);
    assert_false(mode.blanked);
    assert_int_equal(mode.width, 800);
    assert_int_equal(mode.height, 600);
    assert_int_equal(mode.bpp, 32);
    assert_int_equal(mode.pitch, 3200);
    assert_int_equal(mode.virt_height, m->lim.vram_size / 3200);
    assert_int_equal(r16(&m->v, VBE_DISPI_INDEX_VIRT_HEIGHT),
                     m->lim.vram_size / 3200);
    assert_int_equal(mode.offset, 0);
    assert_int_equal(mode.format, VBE_FMT_XRGB8888);
    /* The enable cleared the visible frame and nothing past it. */
    assert_int_equal(m->vram[0], 0);
    assert_int_equal(m->vram[3200u * 600 - 1], 0);
    assert_int_equal(m->vram[3200u * 600], 0x5a);
    assert_mode_fits(&mode, &m->lim);
}

static void
test_page_flip(void **state)
{
    struct model *m = *state;
    struct vbe_mode mode;

    bochs_setmode(&m->v, m->lim.vram_size, 1024, 768);
    /* bochs_hw_setbase() for the second buffer: pitch, x, y. */
    w16(&m->v, VBE_DISPI_INDEX_VIRT_WIDTH, 1024);
    w16(&m->v, VBE_DISPI_INDEX_X_OFFSET, 0);
    w16(&m->v, VBE_DISPI_INDEX_Y_OFFSET, 768);
    vbe_get_mode(&m->v, &mode);
    assert_int_equal(mode.y_offset, 768);
    assert_int_equal(mode.offset, 768u * 4096u);
    /* A pitch wider than the mode (a framebuffer with padding). */
    w16(&m->v, VBE_DISPI_INDEX_VIRT_WIDTH, 1280);
    w16(&m->v, VBE_DISPI_INDEX_X_OFFSET, 16);
    w16(&m->v, VBE_DISPI_INDEX_Y_OFFSET, 10);
    vbe_get_mode(&m->v, &mode);
    assert_int_equal(mode.pitch, 5120);
    assert_int_equal(mode.offset, 10u * 5120u + 16u * 4u);
    assert_mode_fits(&mode, &m->lim);
    /* A buffer that does not start a line: bochs_hw_setbase() splits its
     * byte offset into X and Y, X past the width's room; kept, as the
     * frame is addressed linearly. */
    w16(&m->v, VBE_DISPI_INDEX_VIRT_WIDTH, 1024);
    w16(&m->v, VBE_DISPI_INDEX_X_OFFSET, 1000);
    w16(&m->v, VBE_DISPI_INDEX_Y_OFFSET, 700);
    vbe_get_mode(&m->v, &mode);
    assert_int_equal(mode.x_offset, 1000);
    assert_int_equal(mode.y_offset, 700);
    assert_int_equal(mode.offset, 700u * 4096u + 1000u * 4u);
    assert_mode_fits(&mode, &m->lim);
    /* Past the end: Y is lowered to the last line that fits. */
    w16(&m->v, VBE_DISPI_INDEX_Y_OFFSET, 1400);
    vbe_get_mode(&m->v, &mode);
    assert_int_equal(mode.x_offset, 1000);
    assert_int_equal(mode.y_offset,
                     (8u * 1048576u - 767u * 4096u - 4096u - 4000u) / 4096u);
    assert_mode_fits(&mode, &m->lim);
}

static void
test_id_negotiation(void **state)
{
    struct model *m = *state;

    assert_int_equal(r16(&m->v, VBE_DISPI_INDEX_ID), VBE_DISPI_ID5);
    w16(&m->v, VBE_DISPI_INDEX_ID, 0xb0c2);
    assert_int_equal(r16(&m->v, VBE_DISPI_INDEX_ID), 0xb0c2);
    w16(&m->v, VBE_DISPI_INDEX_ID, 0xb0c6); /* newer than we speak */
    assert_int_equal(r16(&m->v, VBE_DISPI_INDEX_ID), 0xb0c2);
    w16(&m->v, VBE_DISPI_INDEX_ID, 0x1234);
    assert_int_equal(r16(&m->v, VBE_DISPI_INDEX_ID), 0xb0c2);
    vbe_reset(&m->v);
    assert_int_equal(r16(&m->v, VBE_DISPI_INDEX_ID), VBE_DISPI_ID5);
}

static void
test_getcaps(void **state)
{
    struct model *m = *state;

    w16(&m->v, VBE_DISPI_INDEX_XRES, 640);
    w16(&m->v, VBE_DISPI_INDEX_ENABLE, VBE_DISPI_GETCAPS);
    assert_int_equal(r16(&m->v, VBE_DISPI_INDEX_XRES), 1024);
    assert_int_equal(r16(&m->v, VBE_DISPI_INDEX_YRES), 768);
    assert_int_equal(r16(&m->v, VBE_DISPI_INDEX_BPP), 32);
    w16(&m->v, VBE_DISPI_INDEX_ENABLE, 0);
    assert_int_equal(r16(&m->v, VBE_DISPI_INDEX_XRES), 640);
}

static void
test_hostile_values(void **state)
{
    struct model *m = *state;
    struct vbe_mode mode;

    /* Larger than the type: clamped to its maximum. */
    w16(&m->v, VBE_DISPI_INDEX_XRES, 0xffff);
    w16(&m->v, VBE_DISPI_INDEX_YRES, 0xffff);
    assert_int_equal(r16(&m->v, VBE_DISPI_INDEX_XRES), 1024);
    assert_int_equal(r16(&m->v, VBE_DISPI_INDEX_YRES), 768);
    /* A depth it has not: the write is ignored; none at all: 32. */
    w16(&m->v, VBE_DISPI_INDEX_BPP, 16);
    w16(&m->v, VBE_DISPI_INDEX_BPP, 7);
    assert_int_equal(r16(&m->v, VBE_DISPI_INDEX_BPP), 16);
    w16(&m->v, VBE_DISPI_INDEX_BPP, 32);
    /* A pitch and offsets far past video memory. */
    w16(&m->v, VBE_DISPI_INDEX_VIRT_WIDTH, 0xffff);
    w16(&m->v, VBE_DISPI_INDEX_X_OFFSET, 0xffff);
    w16(&m->v, VBE_DISPI_INDEX_Y_OFFSET, 0xffff);
    w16(&m->v, VBE_DISPI_INDEX_ENABLE,
        VBE_DISPI_ENABLED | VBE_DISPI_NOCLEARMEM);
    vbe_get_mode(&m->v, &mode);
    assert_true(mode.enabled);
    assert_int_equal(mode.width, 1024);
    assert_int_equal(mode.height, 768);
    assert_int_equal(mode.virt_width, m->lim.vram_size / 768 / 4);
    assert_mode_fits(&mode, &m->lim);
    /* NOCLEARMEM: the picture stays. */
    assert_int_equal(m->vram[0], 0x5a);
    /* Zero sizes while enabled become one pixel, not an empty mode. */
    w16(&m->v, VBE_DISPI_INDEX_XRES, 0);
    w16(&m->v, VBE_DISPI_INDEX_YRES, 0);
    vbe_get_mode(&m->v, &mode);
    assert_int_equal(mode.width, 1);
    assert_int_equal(mode.height, 1);
    assert_mode_fits(&mode, &m->lim);
    /* The bank is kept within video memory; the memory size is not
     * writable; accesses past BAR2 are refused. */
    w16(&m->v, VBE_DISPI_INDEX_BANK, 200);
    assert_int_equal(r16(&m->v, VBE_DISPI_INDEX_BANK), 0);
    w16(&m->v, VBE_DISPI_INDEX_BANK, 127);
    assert_int_equal(r16(&m->v, VBE_DISPI_INDEX_BANK), 127);
    w16(&m->v, VBE_DISPI_INDEX_VIDEO_MEMORY_64K, 0xffff);
    assert_int_equal(r16(&m->v, VBE_DISPI_INDEX_VIDEO_MEMORY_64K), 128);
    uint8_t b[8];
    assert_int_equal(vbe_mmio_read(&m->v, VBE_MMIO_SIZE - 2, b, 4), -EINVAL);
    assert_int_equal(vbe_mmio_write(&m->v, 0xffffffffu, b, 2), -EINVAL);
    /* Past the EDID block, up to the VGA ports: zeros. */
    memset(b, 0x55, sizeof(b));
    assert_int_equal(vbe_mmio_read(&m->v, 0x3f8, b, 8), 0);
    for (unsigned int i = 0; i < 8; i++)
        assert_int_equal(b[i], 0);
    assert_int_equal(vbe_mmio_read(&m->v, 0x7c, b, 8), 0);
    assert_int_equal(b[3], m->v.edid[127]);
    assert_int_equal(b[4], 0);
    /* Wrong widths read as all ones and write nothing. */
    assert_int_equal(vbe_mmio_read(&m->v, VBE_DISPI_OFFSET, b, 4), 0);
    assert_int_equal(b[0], 0xff);
    assert_int_equal(b[3], 0xff);
}

/* Any sequence of register writes leaves a mode inside video memory. */
static void
test_random_writes_stay_inside(void **state)
{
    struct model *m = *state;
    uint64_t x = 0x243f6a8885a308d3ull;
    struct vbe_mode mode;

    for (unsigned int i = 0; i < 200000; i++) {
        unsigned int index;
        uint16_t val;

        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        index = (unsigned int)(x % VBE_DISPI_NUM_REGS);
        val = (uint16_t)(x >> 16);
        if (x & (1ull << 40))
            val &= 0x7ff; /* plausible sizes too, not only huge ones */
        if (index == VBE_DISPI_INDEX_ENABLE)
            val |= VBE_DISPI_NOCLEARMEM; /* keep it fast */
        vbe_dispi_write(&m->v, index, val);
        vbe_get_mode(&m->v, &mode);
        assert_mode_fits(&mode, &m->lim);
    }
}

static void
test_byte_order(void **state)
{
    struct model *m = *state;
    struct vbe_mode mode;

    bochs_setmode(&m->v, m->lim.vram_size, 640, 480);
    w32(&m->v, VBE_QEXT_OFFSET + 4, VBE_QEXT_BIG_ENDIAN);
    assert_int_equal(r32(&m->v, VBE_QEXT_OFFSET + 4), VBE_QEXT_BIG_ENDIAN);
    vbe_get_mode(&m->v, &mode);
    assert_true(mode.big_endian);
    assert_int_equal(mode.format, VBE_FMT_BGRX8888);
    w32(&m->v, VBE_QEXT_OFFSET + 4, 0x12345678); /* neither: ignored */
    assert_int_equal(r32(&m->v, VBE_QEXT_OFFSET + 4), VBE_QEXT_BIG_ENDIAN);
    w32(&m->v, VBE_QEXT_OFFSET + 4, VBE_QEXT_LITTLE_ENDIAN);
    vbe_get_mode(&m->v, &mode);
    assert_int_equal(mode.format, VBE_FMT_XRGB8888);
    /* The size register is read-only. */
    w32(&m->v, VBE_QEXT_OFFSET, 0);
    assert_int_equal(r32(&m->v, VBE_QEXT_OFFSET), VBE_QEXT_SIZE);
}

static void
test_blanking(void **state)
{
    struct model *m = *state;
    struct vbe_mode mode;

    vbe_get_mode(&m->v, &mode);
    assert_false(mode.blanked); /* power-on: shown */
    /* Mono mode: IS1 at 0x3da is not decoded. */
    assert_int_equal(r8(&m->v, VGA_IS1_RC), 0xff);
    /* bochs_hw_blank(true): colour, reset the flip-flop, index 0. */
    w8(&m->v, VGA_MIS_W, VGA_MIS_COLOR);
    assert_int_equal(r8(&m->v, VGA_MIS_R), VGA_MIS_COLOR);
    (void)r8(&m->v, VGA_IS1_RC);
    w8(&m->v, VGA_ATT_W, 0);
    vbe_get_mode(&m->v, &mode);
    assert_true(mode.blanked);
    /* The next 0x3c0 write is data for register 0, not an index. */
    w8(&m->v, VGA_ATT_W, 0x3f);
    assert_int_equal(r8(&m->v, VGA_ATT_R), 0x3f);
    vbe_get_mode(&m->v, &mode);
    assert_true(mode.blanked);
    /* bochs_hw_blank(false). */
    (void)r8(&m->v, VGA_IS1_RC);
    w8(&m->v, VGA_ATT_W, 0x20);
    vbe_get_mode(&m->v, &mode);
    assert_false(mode.blanked);
    /* Retrace toggles from one read to the next. */
    assert_int_not_equal(r8(&m->v, VGA_IS1_RC) & VGA_IS1_VR,
                         r8(&m->v, VGA_IS1_RC) & VGA_IS1_VR);
}

static void
test_reset(void **state)
{
    struct model *m = *state;
    struct vbe_mode mode, fresh;
    struct vbe v2;
    uint8_t edid[VBE_EDID_LEN] = { 0 };

    bochs_setmode(&m->v, m->lim.vram_size, 800, 600);
    w32(&m->v, VBE_QEXT_OFFSET + 4, VBE_QEXT_BIG_ENDIAN);
    w8(&m->v, VGA_ATT_W, 0);
    vbe_reset(&m->v);
    vbe_get_mode(&m->v, &mode);
    assert_int_equal(vbe_init(&v2, &m->lim, NULL, edid), 0);
    vbe_get_mode(&v2, &fresh);
    assert_memory_equal(&mode, &fresh, sizeof(mode));
    assert_memory_equal(m->v.regs, v2.regs, sizeof(v2.regs));
    assert_false(mode.enabled);
    assert_int_equal(r32(&m->v, VBE_QEXT_OFFSET + 4), VBE_QEXT_LITTLE_ENDIAN);
}

static void
test_state_roundtrip(void **state)
{
    struct model *m = *state;
    uint8_t blob[VBE_STATE_SIZE], edid[VBE_EDID_LEN] = { 0 };
    struct vbe_mode a, b;
    struct vbe v2;

    bochs_setmode(&m->v, m->lim.vram_size, 1024, 768);
    w16(&m->v, VBE_DISPI_INDEX_Y_OFFSET, 768);
    w32(&m->v, VBE_QEXT_OFFSET + 4, VBE_QEXT_BIG_ENDIAN);
    vbe_state_save(&m->v, blob);
    assert_int_equal(vbe_init(&v2, &m->lim, m->vram, edid), 0);
    memset(m->vram, 0x77, 16);
    assert_int_equal(vbe_state_load(&v2, blob, sizeof(blob) - 1), -EINVAL);
    assert_int_equal(vbe_state_load(&v2, blob, sizeof(blob)), 0);
    vbe_get_mode(&m->v, &a);
    vbe_get_mode(&v2, &b);
    assert_memory_equal(&a, &b, sizeof(a));
    assert_memory_equal(m->v.regs, v2.regs, sizeof(v2.regs));
    /* Loading does not clear the migrated picture. */
    assert_int_equal(m->vram[0], 0x77);
    /* A blob from a larger type is held to this one's limits. */
    blob[2 * VBE_DISPI_INDEX_XRES] = 0x80; /* 1920 */
    blob[2 * VBE_DISPI_INDEX_XRES + 1] = 0x07;
    blob[2 * VBE_DISPI_INDEX_VIRT_WIDTH] = 0x80;
    blob[2 * VBE_DISPI_INDEX_VIRT_WIDTH + 1] = 0x07;
    assert_int_equal(vbe_state_load(&v2, blob, sizeof(blob)), 0);
    vbe_get_mode(&v2, &b);
    assert_int_equal(b.width, 1024);
    assert_mode_fits(&b, &m->lim);
}

static void
test_row_to_rgb(void **state)
{
    struct model *m = *state;
    struct vbe_mode mode;
    uint8_t rgb[6];
    /* Two pixels: orange-ish (0xff, 0x80, 0x10), then white. */
    static const uint8_t xrgb[] = { 0x10, 0x80, 0xff, 0x00,
                                    0xff, 0xff, 0xff, 0xff };
    static const uint8_t bgrx[] = { 0x00, 0xff, 0x80, 0x10,
                                    0xff, 0xff, 0xff, 0xff };
    static const uint8_t bgr[] = { 0x10, 0x80, 0xff, 0xff, 0xff, 0xff };
    /* 565: r 31, g 32, b 2 -> 0xf802 | 32 << 5 = 0xfc02. */
    static const uint8_t rgb565[] = { 0x02, 0xfc, 0xff, 0xff };
    /* 555: r 31, g 16, b 2 -> 0x7c00 | 0x200 | 2 = 0x7e02. */
    static const uint8_t rgb555[] = { 0x02, 0x7e, 0xff, 0x7f };

    bochs_setmode(&m->v, m->lim.vram_size, 2, 2);
    vbe_get_mode(&m->v, &mode);
    vbe_row_to_rgb(&mode, xrgb, rgb);
    assert_memory_equal(rgb, "\xff\x80\x10\xff\xff\xff", 6);
    w32(&m->v, VBE_QEXT_OFFSET + 4, VBE_QEXT_BIG_ENDIAN);
    vbe_get_mode(&m->v, &mode);
    vbe_row_to_rgb(&mode, bgrx, rgb);
    assert_memory_equal(rgb, "\xff\x80\x10\xff\xff\xff", 6);
    w16(&m->v, VBE_DISPI_INDEX_BPP, 24);
    vbe_get_mode(&m->v, &mode);
    vbe_row_to_rgb(&mode, bgr, rgb);
    assert_memory_equal(rgb, "\xff\x80\x10\xff\xff\xff", 6);
    w16(&m->v, VBE_DISPI_INDEX_BPP, 16);
    vbe_get_mode(&m->v, &mode);
    vbe_row_to_rgb(&mode, rgb565, rgb);
    assert_memory_equal(rgb, "\xff\x82\x10\xff\xff\xff", 6);
    w16(&m->v, VBE_DISPI_INDEX_BPP, 15);
    vbe_get_mode(&m->v, &mode);
    vbe_row_to_rgb(&mode, rgb555, rgb);
    assert_memory_equal(rgb, "\xff\x84\x10\xff\xff\xff", 6);
    /* Disabled: nothing is written. */
    w16(&m->v, VBE_DISPI_INDEX_ENABLE, 0);
    vbe_get_mode(&m->v, &mode);
    memset(rgb, 0x33, sizeof(rgb));
    vbe_row_to_rgb(&mode, xrgb, rgb);
    assert_int_equal(rgb[0], 0x33);
}

/* ---- EDID */

static void
test_edid_block(void **state)
{
    const struct display_type *t = display_type_find("display-1920");
    struct display_config cfg = { .type = "display-1920", .uuid = UUID_A };
    struct display *d;
    const uint8_t *e;
    uuid_t u;
    uint32_t serial;

    (void)state;
    assert_non_null(t);
    assert_int_equal(display_create(&cfg, NULL, &d), 0);
    e = display_edid(d);
    assert_true(edid_checksum_ok(e));
    assert_memory_equal(e, "\x00\xff\xff\xff\xff\xff\xff\x00", 8);
    assert_int_equal(e[18], 1);
    assert_int_equal(e[19], 4);
    assert_int_equal(e[126], 0);
    uuid_parse(UUID_A, u);
    serial = (uint32_t)e[12] | (uint32_t)e[13] << 8 | (uint32_t)e[14] << 16 |
             (uint32_t)e[15] << 24;
    assert_int_equal(serial, edid_serial_from_uuid(u));
    assert_int_not_equal(serial, 0);
    /* Preferred timing: 1920x1080 at 148.5 MHz. */
    assert_int_equal(e[54] | e[55] << 8, 14850);
    assert_int_equal(e[56] | (e[58] >> 4) << 8, 1920);
    assert_int_equal(e[59] | (e[61] >> 4) << 8, 1080);
    /* The display name and serial text descriptors. */
    assert_int_equal(e[90 + 3], 0xfc);
    assert_memory_equal(e + 95, "umdev\n", 6);
    assert_int_equal(e[108 + 3], 0xff);
    assert_memory_equal(e + 113, "3b1f6a8e9c41\n", 13);
    /* Standard timings decode to the type's list, none above its
     * maximum. */
    for (size_t i = 0; i < 8; i++) {
        const uint8_t *s = e + 38 + 2 * i;
        unsigned int w, h, aspect;

        if (i >= t->nstd) {
            assert_int_equal(s[0], 1);
            assert_int_equal(s[1], 1);
            continue;
        }
        w = (s[0] + 31u) * 8u;
        aspect = s[1] >> 6;
        h = aspect == 0   ? w * 10 / 16
            : aspect == 1 ? w * 3 / 4
            : aspect == 2 ? w * 4 / 5
                          : w * 9 / 16;
        assert_int_equal(w, t->std[i].width);
        assert_int_equal(h, t->std[i].height);
        assert_int_equal((s[1] & 0x3f) + 60, 60);
        assert_true(w <= t->max_xres && h <= t->max_yres);
    }
    /* The guest reads the same bytes through BAR2, zeros after them. */
    uint8_t bar[VBE_EDID_AREA];
    assert_int_equal(umdev_dev_region_rw(display_dev(d), UMDEV_PCI_BAR2_REGION,
                                         0, bar, sizeof(bar), false),
                     0);
    assert_memory_equal(bar, e, EDID_BLOCK_LEN);
    for (size_t i = EDID_BLOCK_LEN; i < sizeof(bar); i++)
        assert_int_equal(bar[i], 0);
    display_destroy(d);
}

static void
test_edid_stable_serial(void **state)
{
    struct display_config a = { .type = "display-1024", .uuid = UUID_A };
    struct display_config b = { .type = "display-1024", .uuid = UUID_B };
    struct display *d1, *d2, *d3;

    (void)state;
    assert_int_equal(display_create(&a, NULL, &d1), 0);
    assert_int_equal(display_create(&a, NULL, &d2), 0);
    assert_int_equal(display_create(&b, NULL, &d3), 0);
    assert_memory_equal(display_edid(d1), display_edid(d2), EDID_BLOCK_LEN);
    assert_memory_not_equal(display_edid(d1) + 12, display_edid(d3) + 12, 4);
    /* 1024's preferred mode is its maximum, 65 MHz DMT. */
    assert_int_equal(display_edid(d1)[54] | display_edid(d1)[55] << 8, 6500);
    assert_int_equal(display_edid(d1)[36] & EDID_EST_1024x768_60,
                     EDID_EST_1024x768_60);
    assert_true(edid_checksum_ok(display_edid(d3)));
    display_destroy(d1);
    display_destroy(d2);
    display_destroy(d3);
}

static void
test_edid_refuses(void **state)
{
    struct edid_timing t = { 65000, 1024, 24, 136, 160, 768, 3, 6, 29, 0, 0 };
    struct edid_std_mode bad = { 1366, 768, 60 }; /* not a multiple of 8 */
    struct edid_desc d = { .name = "umdev",
                           .serial_text = "x",
                           .preferred = &t };
    uint8_t out[EDID_BLOCK_LEN];
    struct display_config c = { .uuid = "not-a-uuid" };
    struct display *disp = NULL;

    (void)state;
    assert_int_equal(edid_build(&d, out), 0);
    d.name = "fourteen chars";
    assert_int_equal(edid_build(&d, out), -EINVAL);
    d.name = "umdev";
    d.std = &bad;
    d.nstd = 1;
    assert_int_equal(edid_build(&d, out), -EINVAL);
    assert_int_equal(display_create(&c, NULL, &disp), -EINVAL);
    assert_null(disp);
    c.uuid = NULL;
    c.type = "display-800";
    assert_int_equal(display_create(&c, NULL, &disp), -EINVAL);
}

/* ---- the device in-process */

static void
test_device_identity(void **state)
{
    struct display_config cfg = { .type = "display-1920", .uuid = UUID_A };
    struct display *d;
    struct umdev_pci *pci;
    uint16_t v16;
    uint32_t v32;
    uint8_t rev;

    (void)state;
    assert_int_equal(display_create(&cfg, NULL, &d), 0);
    pci = display_pci(d);
    umdev_pci_config_read(pci, PCI_VENDOR_ID, &v16, 2);
    assert_int_equal(v16, 0x1234);
    umdev_pci_config_read(pci, PCI_DEVICE_ID, &v16, 2);
    assert_int_equal(v16, 0x1111);
    umdev_pci_config_read(pci, PCI_REVISION_ID, &rev, 1);
    assert_int_equal(rev, 2);
    umdev_pci_config_read(pci, PCI_CLASS_REVISION, &v32, 4);
    assert_int_equal(v32 >> 8, 0x038000);
    umdev_pci_config_read(pci, PCI_BASE_ADDRESS_0, &v32, 4);
    assert_int_equal(v32 & 0xf, PCI_BASE_ADDRESS_MEM_PREFETCH);
    struct umdev_dev_region_info ri;
    assert_int_equal(umdev_dev_region_info(display_dev(d), 0, &ri), 0);
    assert_true(ri.present && ri.shm);
    assert_int_equal(ri.size, 16u << 20);
    /* All of it mappable. */
    assert_int_equal(ri.nr_areas, 1);
    assert_int_equal(ri.areas[0].offset, 0);
    assert_int_equal(ri.areas[0].size, 16u << 20);
    assert_int_equal(umdev_dev_region_info(display_dev(d), 2, &ri), 0);
    assert_true(ri.trapped && !ri.shm);
    display_destroy(d);
}

static void
test_device_profile(void **state)
{
    struct display_config cfg = { .type = "display-1024" };
    struct umdev_dev *dev;
    struct display *d;
    uint8_t b[4] = { 0 };

    (void)state;
    assert_int_equal(display_create(&cfg, NULL, &d), 0);
    dev = display_dev(d);
    /* DISPI answers 16-bit accesses only; the memory size is read-only;
     * nothing undeclared is reachable. */
    assert_int_equal(umdev_dev_region_rw(dev, 2, VBE_DISPI_OFFSET, b, 2, false),
                     0);
    assert_int_equal(umdev_dev_region_rw(dev, 2, VBE_DISPI_OFFSET, b, 4, false),
                     -EACCES);
    assert_int_equal(
        umdev_dev_region_rw(dev, 2, VBE_DISPI_OFFSET + 1, b, 1, false),
        -EACCES);
    assert_int_equal(
        umdev_dev_region_rw(dev, 2, VBE_DISPI_OFFSET + 0x14, b, 2, true),
        -EACCES);
    assert_int_equal(umdev_dev_region_rw(dev, 2, 0x800, b, 4, false), -EACCES);
    assert_int_equal(umdev_dev_region_rw(dev, 2, 0, b, 2, true), -EACCES);
    /* BAR0 is all mappable: any access inside it. */
    assert_int_equal(umdev_dev_region_rw(dev, 0, 12345, b, 3, true), 0);
    display_destroy(d);
}

static void
test_screen_out(void **state)
{
    struct display_config cfg = { .type = "display-1024" };
    struct display_screen s;
    struct umdev_dev *dev;
    struct display *d;
    uint8_t px[4] = { 0x11, 0x22, 0x33, 0x00 };

    (void)state;
    assert_int_equal(display_create(&cfg, NULL, &d), 0);
    dev = display_dev(d);
    display_screen(d, &s);
    assert_false(s.mode.enabled);
    assert_null(s.pixels);
    assert_int_equal(s.vram_size, 8u << 20);
    /* 640x480, second page shown: the pixel at (5, 7) of that page. */
    static const uint16_t seq[][2] = {
        { VBE_DISPI_INDEX_ENABLE, 0 },       { VBE_DISPI_INDEX_BPP, 32 },
        { VBE_DISPI_INDEX_XRES, 640 },       { VBE_DISPI_INDEX_YRES, 480 },
        { VBE_DISPI_INDEX_VIRT_WIDTH, 640 }, { VBE_DISPI_INDEX_ENABLE, 0x41 },
        { VBE_DISPI_INDEX_Y_OFFSET, 480 },
    };
    for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
        uint8_t b[2] = { (uint8_t)seq[i][1], (uint8_t)(seq[i][1] >> 8) };

        assert_int_equal(umdev_dev_region_rw(dev, 2,
                                             VBE_DISPI_OFFSET + 2 * seq[i][0],
                                             b, 2, true),
                         0);
    }
    assert_int_equal(
        umdev_dev_region_rw(dev, 0, (480u + 7) * 2560u + 5 * 4u, px, 4, true),
        0);
    display_screen(d, &s);
    assert_true(s.mode.enabled);
    assert_int_equal(s.mode.width, 640);
    assert_int_equal(s.mode.pitch, 2560);
    assert_ptr_equal(s.pixels, s.vram + 480u * 2560u);
    assert_memory_equal(s.pixels + 7 * s.mode.pitch + 5 * 4, px, 4);
    display_destroy(d);
}

static void
test_parent(void **state)
{
    char err[160];
    size_t n;
    const struct display_type *t = display_types(&n);

    (void)state;
    /* Each type's pool cost is its video memory. */
    assert_int_equal(display_parent.ntypes, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(display_parent.types[i].name, t[i].name);
        assert_int_equal(display_parent.types[i].costs[0].amount,
                         t[i].vram_mib);
        assert_true((uint64_t)t[i].max_xres * t[i].max_yres * 4 <=
                    (uint64_t)t[i].vram_mib << 20);
    }
    assert_int_equal(
        display_parent.ops->check_attrs("display-1920", NULL, err, sizeof(err)),
        0);
    assert_int_equal(
        display_parent.ops->check_attrs("display-99", NULL, err, sizeof(err)),
        -EINVAL);
}

int
main(void)
{
#define MT(f) cmocka_unit_test_setup_teardown(f, model_setup, model_teardown)
    const struct CMUnitTest tests[] = {
        MT(test_probe),
        MT(test_setmode_as_bochs),
        MT(test_page_flip),
        MT(test_id_negotiation),
        MT(test_getcaps),
        MT(test_hostile_values),
        MT(test_random_writes_stay_inside),
        MT(test_byte_order),
        MT(test_blanking),
        MT(test_reset),
        MT(test_state_roundtrip),
        MT(test_row_to_rgb),
        cmocka_unit_test(test_edid_block),
        cmocka_unit_test(test_edid_stable_serial),
        cmocka_unit_test(test_edid_refuses),
        cmocka_unit_test(test_device_identity),
        cmocka_unit_test(test_device_profile),
        cmocka_unit_test(test_screen_out),
        cmocka_unit_test(test_parent),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
