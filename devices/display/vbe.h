/*
 * The Bochs/QEMU display interface's register model: pure logic over a
 * borrowed video memory buffer, no umdev dependency, so it is
 * unit-tested register by register. display.c forwards every access to
 * the register BAR (BAR2) here; the framebuffer BAR (BAR0) is the video
 * memory itself and never passes through this model.
 *
 * The BAR2 layout is the one Linux's bochs-drm driver and QEMU's
 * bochs-display and stdvga agree on (devices/display/README.md):
 *   0x000 EDID block, 0x400 VGA ports 0x3c0..0x3df (the few bochs-drm
 *   touches to blank the screen), 0x500 DISPI registers (index << 1),
 *   0x600 QEMU extended registers (size, framebuffer byte order).
 *
 * Every register write ends in vbe_fixup(), which keeps the mode inside
 * the type's maximum and inside video memory, as QEMU's stdvga does: the
 * guest reads back the values in force, and vbe_get_mode() can never
 * describe bytes outside video memory.
 *
 * Not thread-safe: one embedder thread owns a struct vbe.
 */
#ifndef UMDEV_DISPLAY_VBE_H
#define UMDEV_DISPLAY_VBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* BAR2 (4 KiB) blocks. */
#define VBE_MMIO_SIZE 0x1000u
#define VBE_EDID_OFFSET 0x000u
#define VBE_EDID_AREA 0x400u /* bochs-drm reads EDID bytes below 0x400 */
#define VBE_VGA_OFFSET 0x400u
#define VBE_VGA_SIZE 0x20u /* ports 0x3c0..0x3df */
#define VBE_DISPI_OFFSET 0x500u
#define VBE_QEXT_OFFSET 0x600u
#define VBE_QEXT_SIZE 8u

/* DISPI register indices (offset 0x500 + (index << 1), 16 bits each). */
#define VBE_DISPI_INDEX_ID 0x0
#define VBE_DISPI_INDEX_XRES 0x1
#define VBE_DISPI_INDEX_YRES 0x2
#define VBE_DISPI_INDEX_BPP 0x3
#define VBE_DISPI_INDEX_ENABLE 0x4
#define VBE_DISPI_INDEX_BANK 0x5
#define VBE_DISPI_INDEX_VIRT_WIDTH 0x6
#define VBE_DISPI_INDEX_VIRT_HEIGHT 0x7
#define VBE_DISPI_INDEX_X_OFFSET 0x8
#define VBE_DISPI_INDEX_Y_OFFSET 0x9
#define VBE_DISPI_INDEX_VIDEO_MEMORY_64K 0xa
#define VBE_DISPI_NUM_REGS 0xb

/* ID values: bochs-drm accepts any with (id & 0xfff0) == ID0. */
#define VBE_DISPI_ID0 0xb0c0
#define VBE_DISPI_ID5 0xb0c5

/* ENABLE bits. */
#define VBE_DISPI_ENABLED 0x01
#define VBE_DISPI_GETCAPS 0x02
#define VBE_DISPI_8BIT_DAC 0x20
#define VBE_DISPI_LFB_ENABLED 0x40
#define VBE_DISPI_NOCLEARMEM 0x80
#define VBE_DISPI_ENABLE_MASK                                                  \
    (VBE_DISPI_ENABLED | VBE_DISPI_GETCAPS | VBE_DISPI_8BIT_DAC |              \
     VBE_DISPI_LFB_ENABLED | VBE_DISPI_NOCLEARMEM)

/* The largest bpp the device offers (what GETCAPS reports). */
#define VBE_MAX_BPP 32

/* QEMU extended registers (offsets inside the block at 0x600). */
#define VBE_QEXT_REG_SIZE 0x0
#define VBE_QEXT_REG_BYTEORDER 0x4
#define VBE_QEXT_LITTLE_ENDIAN 0x1e1e1e1eu
#define VBE_QEXT_BIG_ENDIAN 0xbebebebeu

/* VGA ports bochs-drm uses (include/video/vga.h names). */
#define VGA_ATT_W 0x3c0    /* attribute controller index / data write */
#define VGA_ATT_R 0x3c1    /* attribute controller data read */
#define VGA_MIS_W 0x3c2    /* misc output write (reads: input status 0) */
#define VGA_MIS_R 0x3cc    /* misc output read */
#define VGA_IS1_RC 0x3da   /* input status 1, colour mode */
#define VGA_MIS_COLOR 0x01 /* misc output: CRTC/IS1 at 0x3dx */
#define VGA_AR_ENABLE_DISPLAY 0x20 /* ATT index bit: palette source = CRTC */
#define VGA_ATT_NUM 21u            /* attribute controller registers */
#define VGA_IS1_DE 0x01            /* input status 1: display disabled */
#define VGA_IS1_VR 0x08            /* input status 1: vertical retrace */

#define VBE_EDID_LEN 128u

struct vbe_limits {
    uint16_t max_xres, max_yres; /* the type's largest mode */
    uint32_t vram_size;          /* a multiple of 64 KiB */
};

/* Pixel layouts the screen-out side decodes. */
enum vbe_format {
    VBE_FMT_NONE,     /* no valid mode */
    VBE_FMT_RGB555,   /* 15 bpp, little-endian 16-bit words */
    VBE_FMT_RGB565,   /* 16 bpp, little-endian 16-bit words */
    VBE_FMT_BGR888,   /* 24 bpp: bytes B, G, R */
    VBE_FMT_XRGB8888, /* 32 bpp little-endian: bytes B, G, R, X */
    VBE_FMT_BGRX8888, /* 32 bpp big-endian: bytes X, R, G, B */
};

/* The mode in force, as the screen shows it. */
struct vbe_mode {
    bool enabled; /* DISPI enabled: a mode is shown */
    bool blanked; /* the VGA attribute controller blanks the screen */
    uint32_t width, height, bpp;
    uint32_t bytepp, pitch; /* bytes per pixel, bytes per line */
    uint32_t virt_width, virt_height;
    uint32_t x_offset, y_offset;
    uint64_t offset; /* video memory byte of the top left visible pixel */
    bool big_endian; /* the byte-order register says big */
    enum vbe_format format;
};

struct vbe {
    struct vbe_limits lim;
    uint8_t *vram; /* borrowed, lim.vram_size bytes */
    uint8_t edid[VBE_EDID_LEN];
    uint16_t regs[VBE_DISPI_NUM_REGS];
    bool big_endian;
    uint8_t misc;     /* VGA misc output */
    uint8_t ar_index; /* attribute controller index, PAS bit included */
    bool ar_data;     /* the next 0x3c0 write is data, not an index */
    uint8_t ar[VGA_ATT_NUM];
    uint8_t is1; /* input status 1: its retrace bits toggle per read */
};

/**
 * vbe_init() - power on: registers as after vbe_reset().
 * @lim: the largest mode must fit video memory at VBE_MAX_BPP.
 * @vram: borrowed, @lim->vram_size bytes.
 * @edid: copied, VBE_EDID_LEN bytes.
 * Return: 0, or -EINVAL for limits no mode fits in.
 */
int vbe_init(struct vbe *v, const struct vbe_limits *lim, uint8_t *vram,
             const uint8_t *edid);

/** vbe_reset() - registers to power-on; video memory is the caller's. */
void vbe_reset(struct vbe *v);

/**
 * vbe_mmio_read() / vbe_mmio_write() - an access of @len bytes at @off of
 * BAR2. Registers answer their own width only (DISPI 2 bytes, VGA 1,
 * QEMU extended 4, EDID any); other accesses read as all ones and
 * writes to them are dropped, like unclaimed bus cycles.
 * Return: 0, or -EINVAL for an access past BAR2.
 */
int vbe_mmio_read(struct vbe *v, uint32_t off, void *buf, size_t len);
int vbe_mmio_write(struct vbe *v, uint32_t off, const void *buf, size_t len);

/** vbe_dispi_read() / vbe_dispi_write() - one DISPI register by index. */
uint16_t vbe_dispi_read(struct vbe *v, unsigned int index);
void vbe_dispi_write(struct vbe *v, unsigned int index, uint16_t val);

/** vbe_get_mode() - the mode in force (width 0 and FMT_NONE when none). */
void vbe_get_mode(const struct vbe *v, struct vbe_mode *out);

/**
 * vbe_row_to_rgb() - the @m->width pixels at @row, in @m's format, as
 * 8-bit R, G, B triples into @out (3 * @m->width bytes): what a
 * screenshot or a live view encodes. 5- and 6-bit channels are widened
 * by repeating their top bits (full white stays 255). Nothing for a
 * mode that is not enabled.
 */
void vbe_row_to_rgb(const struct vbe_mode *m, const uint8_t *row, uint8_t *out);

/* Migration: every register, little-endian, in a fixed-size blob. */
#define VBE_STATE_SIZE (2u * VBE_DISPI_NUM_REGS + 1u + 4u + VGA_ATT_NUM)

void vbe_state_save(const struct vbe *v, uint8_t *buf);
/**
 * vbe_state_load() - take a saved blob; values this device's limits
 * would not accept are fixed up as a guest write would be.
 * Return: 0, or -EINVAL (@len wrong, changing nothing).
 */
int vbe_state_load(struct vbe *v, const uint8_t *buf, size_t len);

#endif /* UMDEV_DISPLAY_VBE_H */
