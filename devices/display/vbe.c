/*
 * The Bochs/QEMU display register model (vbe.h): DISPI registers, the
 * VGA attribute controller bits that blank the screen, QEMU's extended
 * registers and the EDID window, with the clamping that keeps any mode
 * a guest can program inside the type's limits and video memory.
 */
#include <errno.h>
#include <string.h>

#include "vbe.h"

static uint32_t
min_u32(uint32_t a, uint32_t b)
{
    return a < b ? a : b;
}

static bool
bpp_valid(uint16_t bpp)
{
    /* 8 bpp needs the VGA DAC's palette, which this device has not. */
    return bpp == 15 || bpp == 16 || bpp == 24 || bpp == 32;
}

static uint32_t
bytes_per_pixel(uint16_t bpp)
{
    return (bpp + 7u) / 8u;
}

/*
 * While a mode is enabled, make the registers describe one that fits:
 * resolution within the type's maximum, the virtual width at least the
 * resolution and at most what video memory holds at that height, the
 * virtual height what video memory holds at that pitch (as QEMU's stdvga
 * computes it, and as bochs-drm writes it), and the offsets such that
 * the visible rectangle lies inside the virtual screen. Disabled, the
 * registers hold what the guest wrote (bochs-drm programs a mode with
 * ENABLE 0 first, register by register) and are checked at enable.
 */
static void
vbe_fixup(struct vbe *v)
{
    uint16_t *r = v->regs;
    uint32_t bpp, xres, yres, vw, vh, line, fit;
    uint64_t span, start, room;

    if (!(r[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_ENABLED))
        return;
    if (!bpp_valid(r[VBE_DISPI_INDEX_BPP]))
        r[VBE_DISPI_INDEX_BPP] = VBE_MAX_BPP;
    bpp = bytes_per_pixel(r[VBE_DISPI_INDEX_BPP]);
    xres = min_u32(r[VBE_DISPI_INDEX_XRES], v->lim.max_xres);
    yres = min_u32(r[VBE_DISPI_INDEX_YRES], v->lim.max_yres);
    if (xres == 0)
        xres = 1;
    if (yres == 0)
        yres = 1;
    /* Pixels per line that fit yres lines: at least xres, because the
     * type's largest mode fits at 32 bpp (vbe_init()). */
    fit = v->lim.vram_size / yres / bpp;
    vw = r[VBE_DISPI_INDEX_VIRT_WIDTH];
    if (vw < xres)
        vw = xres;
    vw = min_u32(vw, min_u32(fit, 0xffff));
    line = vw * bpp;
    vh = min_u32(v->lim.vram_size / line, 0xffff);
    r[VBE_DISPI_INDEX_XRES] = (uint16_t)xres;
    r[VBE_DISPI_INDEX_YRES] = (uint16_t)yres;
    r[VBE_DISPI_INDEX_VIRT_WIDTH] = (uint16_t)vw;
    r[VBE_DISPI_INDEX_VIRT_HEIGHT] = (uint16_t)vh;
    /*
     * The offsets address video memory linearly: the frame starts at
     * Y_OFFSET * pitch + X_OFFSET * bpp and X_OFFSET + XRES may pass the
     * virtual width (bochs-drm sets them from a buffer's byte offset,
     * which need not start a line). What must hold is that the last
     * visible byte lies in video memory: else Y_OFFSET, then X_OFFSET,
     * is lowered to the largest that fits (the frame at offset 0 fits).
     */
    span = (uint64_t)(yres - 1) * line + (uint64_t)xres * bpp;
    start = (uint64_t)r[VBE_DISPI_INDEX_Y_OFFSET] * line +
            (uint64_t)r[VBE_DISPI_INDEX_X_OFFSET] * bpp;
    if (start + span <= v->lim.vram_size)
        return;
    room = v->lim.vram_size - span;
    if ((uint64_t)r[VBE_DISPI_INDEX_X_OFFSET] * bpp <= room) {
        room -= (uint64_t)r[VBE_DISPI_INDEX_X_OFFSET] * bpp;
        r[VBE_DISPI_INDEX_Y_OFFSET] = (uint16_t)(room / line);
        return;
    }
    r[VBE_DISPI_INDEX_Y_OFFSET] = 0;
    r[VBE_DISPI_INDEX_X_OFFSET] = (uint16_t)min_u32(room / bpp, 0xffff);
}

void
vbe_reset(struct vbe *v)
{
    memset(v->regs, 0, sizeof(v->regs));
    /* The newest interface version until the guest asks for another. */
    v->regs[VBE_DISPI_INDEX_ID] = VBE_DISPI_ID5;
    v->big_endian = false;
    v->misc = 0;
    /* Not blanked: a guest driver written for QEMU's bochs-display,
     * which has no VGA ports, never unblanks (README.md "VGA ports"). */
    v->ar_index = VGA_AR_ENABLE_DISPLAY;
    v->ar_data = false;
    memset(v->ar, 0, sizeof(v->ar));
    v->is1 = 0;
}

int
vbe_init(struct vbe *v, const struct vbe_limits *lim, uint8_t *vram,
         const uint8_t *edid)
{
    if (lim->max_xres == 0 || lim->max_yres == 0 ||
        lim->vram_size % 0x10000u != 0 || lim->vram_size / 0x10000u > 0xffff ||
        (uint64_t)lim->max_xres * lim->max_yres * (VBE_MAX_BPP / 8) >
            lim->vram_size)
        return -EINVAL;
    memset(v, 0, sizeof(*v));
    v->lim = *lim;
    v->vram = vram;
    memcpy(v->edid, edid, VBE_EDID_LEN);
    vbe_reset(v);
    return 0;
}

uint16_t
vbe_dispi_read(struct vbe *v, unsigned int index)
{
    const uint16_t *r = v->regs;

    /* GETCAPS: the resolution and depth registers report the maxima
     * (how a VBE BIOS learns them). */
    if (r[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_GETCAPS) {
        switch (index) {
        case VBE_DISPI_INDEX_XRES:
            return v->lim.max_xres;
        case VBE_DISPI_INDEX_YRES:
            return v->lim.max_yres;
        case VBE_DISPI_INDEX_BPP:
            return VBE_MAX_BPP;
        }
    }
    if (index == VBE_DISPI_INDEX_VIDEO_MEMORY_64K)
        return (uint16_t)(v->lim.vram_size / 0x10000u);
    if (index >= VBE_DISPI_NUM_REGS)
        return 0xffff;
    return r[index];
}

/* Clear the frame an enable shows, unless the guest said NOCLEARMEM
 * (VBE's "clear display memory" on a mode set). */
static void
clear_visible(struct vbe *v)
{
    struct vbe_mode m;
    uint64_t len;

    vbe_get_mode(v, &m);
    if (!m.enabled || v->vram == NULL)
        return;
    len = (uint64_t)m.pitch * m.height;
    if (m.offset + len > v->lim.vram_size)
        len = v->lim.vram_size - m.offset;
    memset(v->vram + m.offset, 0, len);
}

void
vbe_dispi_write(struct vbe *v, unsigned int index, uint16_t val)
{
    uint16_t *r = v->regs;
    bool was;

    switch (index) {
    case VBE_DISPI_INDEX_ID:
        /* ID negotiation: the guest writes the version it speaks; any
         * of ID0..ID5 is taken and read back, others are ignored. */
        if (val >= VBE_DISPI_ID0 && val <= VBE_DISPI_ID5)
            r[index] = val;
        return;
    case VBE_DISPI_INDEX_XRES:
        r[index] = (uint16_t)min_u32(val, v->lim.max_xres);
        break;
    case VBE_DISPI_INDEX_YRES:
        r[index] = (uint16_t)min_u32(val, v->lim.max_yres);
        break;
    case VBE_DISPI_INDEX_BPP:
        if (val == 0)
            val = VBE_MAX_BPP;
        if (!bpp_valid(val))
            return;
        r[index] = val;
        break;
    case VBE_DISPI_INDEX_ENABLE:
        was = r[index] & VBE_DISPI_ENABLED;
        r[index] = val & VBE_DISPI_ENABLE_MASK;
        vbe_fixup(v);
        if (!was && (val & VBE_DISPI_ENABLED) && !(val & VBE_DISPI_NOCLEARMEM))
            clear_visible(v);
        return;
    case VBE_DISPI_INDEX_BANK:
        /* The 64 KiB window at 0xa0000 does not exist here (no legacy
         * VGA memory); the bank number is kept for the guest to read,
         * within video memory. */
        if (val < v->lim.vram_size / 0x10000u)
            r[index] = val;
        return;
    case VBE_DISPI_INDEX_VIRT_WIDTH:
    case VBE_DISPI_INDEX_VIRT_HEIGHT:
    case VBE_DISPI_INDEX_X_OFFSET:
    case VBE_DISPI_INDEX_Y_OFFSET:
        r[index] = val;
        break;
    default: /* VIDEO_MEMORY_64K is read-only; nothing lies beyond */
        return;
    }
    vbe_fixup(v);
}

static uint8_t
vga_read(struct vbe *v, unsigned int port)
{
    switch (port) {
    case VGA_ATT_W:
        return v->ar_index;
    case VGA_ATT_R:
        return (v->ar_index & 0x1f) < VGA_ATT_NUM ? v->ar[v->ar_index & 0x1f]
                                                  : 0;
    case VGA_MIS_W: /* input status 0: no switch sense, no interrupt */
        return 0;
    case VGA_MIS_R:
        return v->misc;
    case VGA_IS1_RC:
        /* Decoded only in colour mode: bochs-drm sets VGA_MIS_COLOR
         * first for that reason. A read resets the attribute flip-flop;
         * retrace toggles so that a guest waiting for it goes on. */
        if (!(v->misc & VGA_MIS_COLOR))
            return 0xff;
        v->ar_data = false;
        v->is1 ^= VGA_IS1_VR | VGA_IS1_DE;
        return v->is1;
    default:
        return 0xff;
    }
}

static void
vga_write(struct vbe *v, unsigned int port, uint8_t val)
{
    switch (port) {
    case VGA_ATT_W:
        if (!v->ar_data)
            v->ar_index = val & 0x3f;
        else if ((v->ar_index & 0x1f) < VGA_ATT_NUM)
            v->ar[v->ar_index & 0x1f] = val;
        v->ar_data = !v->ar_data;
        return;
    case VGA_MIS_W:
        v->misc = val;
        return;
    default: /* the rest of the VGA does not exist here */
        return;
    }
}

static uint32_t
get_le(const void *buf, size_t len)
{
    const uint8_t *b = buf;
    uint32_t x = 0;
    size_t i;

    for (i = 0; i < len; i++)
        x |= (uint32_t)b[i] << (8 * i);
    return x;
}

static void
put_le(void *buf, size_t len, uint32_t x)
{
    uint8_t *b = buf;
    size_t i;

    for (i = 0; i < len; i++)
        b[i] = (uint8_t)(x >> (8 * i));
}

int
vbe_mmio_read(struct vbe *v, uint32_t off, void *buf, size_t len)
{
    uint32_t x;

    if (off > VBE_MMIO_SIZE || len > VBE_MMIO_SIZE - off)
        return -EINVAL;
    if (off + len <= VBE_EDID_AREA) {
        /* The EDID block, then zeros up to the VGA ports. */
        size_t n = off < VBE_EDID_LEN ? min_u32(len, VBE_EDID_LEN - off) : 0;

        /* v->edid + off is formed only inside the block. */
        if (n > 0)
            memcpy(buf, v->edid + off, n);
        memset((uint8_t *)buf + n, 0, len - n);
        return 0;
    }
    if (len == 1 && off >= VBE_VGA_OFFSET &&
        off < VBE_VGA_OFFSET + VBE_VGA_SIZE) {
        *(uint8_t *)buf = vga_read(v, 0x3c0 + off - VBE_VGA_OFFSET);
        return 0;
    }
    if (len == 2 && off % 2 == 0 && off >= VBE_DISPI_OFFSET &&
        off < VBE_DISPI_OFFSET + 2 * VBE_DISPI_NUM_REGS) {
        put_le(buf, 2, vbe_dispi_read(v, (off - VBE_DISPI_OFFSET) / 2));
        return 0;
    }
    if (len == 4 && off % 4 == 0 && off >= VBE_QEXT_OFFSET &&
        off < VBE_QEXT_OFFSET + VBE_QEXT_SIZE) {
        if (off - VBE_QEXT_OFFSET == VBE_QEXT_REG_SIZE)
            x = VBE_QEXT_SIZE;
        else
            x = v->big_endian ? VBE_QEXT_BIG_ENDIAN : VBE_QEXT_LITTLE_ENDIAN;
        put_le(buf, 4, x);
        return 0;
    }
    memset(buf, 0xff, len);
    return 0;
}

int
vbe_mmio_write(struct vbe *v, uint32_t off, const void *buf, size_t len)
{
    uint32_t x;

    if (off > VBE_MMIO_SIZE || len > VBE_MMIO_SIZE - off)
        return -EINVAL;
    if (len == 1 && off >= VBE_VGA_OFFSET &&
        off < VBE_VGA_OFFSET + VBE_VGA_SIZE) {
        vga_write(v, 0x3c0 + off - VBE_VGA_OFFSET, *(const uint8_t *)buf);
        return 0;
    }
    if (len == 2 && off % 2 == 0 && off >= VBE_DISPI_OFFSET &&
        off < VBE_DISPI_OFFSET + 2 * VBE_DISPI_NUM_REGS) {
        vbe_dispi_write(v, (off - VBE_DISPI_OFFSET) / 2,
                        (uint16_t)get_le(buf, 2));
        return 0;
    }
    if (len == 4 && off == VBE_QEXT_OFFSET + VBE_QEXT_REG_BYTEORDER) {
        /* Only the two magic values mean something (QEMU's rule). */
        x = get_le(buf, 4);
        if (x == VBE_QEXT_BIG_ENDIAN)
            v->big_endian = true;
        else if (x == VBE_QEXT_LITTLE_ENDIAN)
            v->big_endian = false;
        return 0;
    }
    return 0; /* EDID and everything unclaimed: read-only / ignored */
}

void
vbe_get_mode(const struct vbe *v, struct vbe_mode *out)
{
    const uint16_t *r = v->regs;

    memset(out, 0, sizeof(*out));
    out->big_endian = v->big_endian;
    out->blanked = !(v->ar_index & VGA_AR_ENABLE_DISPLAY);
    if (!(r[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_ENABLED))
        return;
    /* vbe_fixup() ran at the enable and at every write since. */
    out->enabled = true;
    out->bpp = r[VBE_DISPI_INDEX_BPP];
    out->bytepp = bytes_per_pixel(r[VBE_DISPI_INDEX_BPP]);
    out->width = r[VBE_DISPI_INDEX_XRES];
    out->height = r[VBE_DISPI_INDEX_YRES];
    out->virt_width = r[VBE_DISPI_INDEX_VIRT_WIDTH];
    out->virt_height = r[VBE_DISPI_INDEX_VIRT_HEIGHT];
    out->x_offset = r[VBE_DISPI_INDEX_X_OFFSET];
    out->y_offset = r[VBE_DISPI_INDEX_Y_OFFSET];
    out->pitch = out->virt_width * out->bytepp;
    out->offset = (uint64_t)out->y_offset * out->pitch +
                  (uint64_t)out->x_offset * out->bytepp;
    switch (out->bpp) {
    case 15:
        out->format = VBE_FMT_RGB555;
        break;
    case 16:
        out->format = VBE_FMT_RGB565;
        break;
    case 24:
        out->format = VBE_FMT_BGR888;
        break;
    default:
        out->format = v->big_endian ? VBE_FMT_BGRX8888 : VBE_FMT_XRGB8888;
        break;
    }
}

static uint8_t
widen(uint32_t x, unsigned int bits)
{
    return (uint8_t)((x << (8 - bits)) | (x >> (2 * bits - 8)));
}

void
vbe_row_to_rgb(const struct vbe_mode *m, const uint8_t *row, uint8_t *out)
{
    uint32_t x, w = m->enabled ? m->width : 0;

    for (x = 0; x < w; x++, out += 3) {
        const uint8_t *p = row + (size_t)x * m->bytepp;
        uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8;

        switch (m->format) {
        case VBE_FMT_RGB555:
            out[0] = widen((v >> 10) & 0x1f, 5);
            out[1] = widen((v >> 5) & 0x1f, 5);
            out[2] = widen(v & 0x1f, 5);
            break;
        case VBE_FMT_RGB565:
            out[0] = widen(v >> 11, 5);
            out[1] = widen((v >> 5) & 0x3f, 6);
            out[2] = widen(v & 0x1f, 5);
            break;
        case VBE_FMT_BGR888:
        case VBE_FMT_XRGB8888:
            out[0] = p[2];
            out[1] = p[1];
            out[2] = p[0];
            break;
        case VBE_FMT_BGRX8888:
            out[0] = p[1];
            out[1] = p[2];
            out[2] = p[3];
            break;
        case VBE_FMT_NONE:
            return;
        }
    }
}

void
vbe_state_save(const struct vbe *v, uint8_t *buf)
{
    size_t i, o = 0;

    for (i = 0; i < VBE_DISPI_NUM_REGS; i++, o += 2)
        put_le(buf + o, 2, v->regs[i]);
    buf[o++] = v->big_endian;
    buf[o++] = v->misc;
    buf[o++] = v->ar_index;
    buf[o++] = v->ar_data;
    buf[o++] = v->is1;
    memcpy(buf + o, v->ar, VGA_ATT_NUM);
}

int
vbe_state_load(struct vbe *v, const uint8_t *buf, size_t len)
{
    uint16_t regs[VBE_DISPI_NUM_REGS];
    size_t i, o = 0;

    if (len != VBE_STATE_SIZE)
        return -EINVAL;
    for (i = 0; i < VBE_DISPI_NUM_REGS; i++, o += 2)
        regs[i] = (uint16_t)get_le(buf + o, 2);
    vbe_reset(v);
    /* Through the guest's own write path, mode registers first and
     * ENABLE last with NOCLEARMEM, so that the source's values are
     * checked against our limits and the migrated picture stays. */
    vbe_dispi_write(v, VBE_DISPI_INDEX_ID, regs[VBE_DISPI_INDEX_ID]);
    for (i = VBE_DISPI_INDEX_XRES; i < VBE_DISPI_NUM_REGS; i++)
        if (i != VBE_DISPI_INDEX_ENABLE)
            vbe_dispi_write(v, (unsigned int)i, regs[i]);
    vbe_dispi_write(v, VBE_DISPI_INDEX_ENABLE,
                    regs[VBE_DISPI_INDEX_ENABLE] | VBE_DISPI_NOCLEARMEM);
    /* NOCLEARMEM was ours, not the source's. */
    v->regs[VBE_DISPI_INDEX_ENABLE] =
        regs[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_ENABLE_MASK;
    /* Offsets and virtual size again, now that the mode is enabled. */
    for (i = VBE_DISPI_INDEX_VIRT_WIDTH; i <= VBE_DISPI_INDEX_Y_OFFSET; i++)
        vbe_dispi_write(v, (unsigned int)i, regs[i]);
    v->big_endian = buf[o++] != 0;
    v->misc = buf[o++];
    v->ar_index = buf[o++] & 0x3f;
    v->ar_data = buf[o++] != 0;
    v->is1 = buf[o++] & (VGA_IS1_VR | VGA_IS1_DE);
    memcpy(v->ar, buf + o, VGA_ATT_NUM);
    return 0;
}
