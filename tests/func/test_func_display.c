/*
 * Functional tests of the display subdevice (devices/display) over real
 * vfio-user sockets with lib/client as the VMM: BAR0 mapped through its
 * sparse-mmap area, a mode set as bochs-drm does it over BAR2, pixels
 * drawn through the mapping with no message, and the screen-out view
 * (display_screen(), read on the server's thread) showing exactly them;
 * page flipping; reset back to power-on through the socket (the
 * mapping sees video memory cleared); migration of mode and framebuffer
 * to a second display.
 */
#include <errno.h>
#include <linux/vfio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "display.h"
#include "harness.h"
#include "kit_serve.h"
#include "umdev/client.h"
#include "vbe.h"

#define UUID_SRC "0c4a2e1f-5b6d-4e8a-9f10-223344556677"

static struct {
    struct kit_serve ks;
    struct kit_log log;
    struct display *disp[2]; /* src, dst */
} F;

static void
destroy_display(void *arg)
{
    display_destroy(arg);
}

static int
fx_setup(void **state)
{
    static const char *const names[2] = { "src", "dst" };
    unsigned int i;

    (void)state;
    memset(&F, 0, sizeof(F));
    kit_log_init(&F.log, "display: ", "UMDEV_FUNC_LOG");
    assert_int_equal(kit_serve_init(&F.ks, "display"), 0);
    for (i = 0; i < 2; i++) {
        struct display_config cfg = { .type = "display-1920",
                                      .uuid = UUID_SRC,
                                      .name = names[i] };

        assert_int_equal(display_create(&cfg, &F.log.logger, &F.disp[i]), 0);
        assert_int_equal(kit_serve_add(&F.ks, names[i], display_dev(F.disp[i]),
                                       destroy_display, F.disp[i]),
                         0);
    }
    assert_int_equal(kit_serve_start(&F.ks), 0);
    return 0;
}

static int
fx_teardown(void **state)
{
    (void)state;
    assert_int_equal(kit_serve_stop(&F.ks, HARNESS_TIMEOUT_MS), 0);
    return 0;
}

static struct umdev_client *
connect_display(unsigned int i)
{
    struct umdev_client *c = NULL;

    assert_int_equal(umdev_client_connect(F.ks.devs[i].path, NULL, &c), 0);
    return c;
}

static void
dispi_wr(struct umdev_client *c, unsigned int index, uint16_t v)
{
    uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };

    assert_int_equal(umdev_client_region_write(c, UMDEV_PCI_BAR2_REGION,
                                               VBE_DISPI_OFFSET + 2 * index, b,
                                               2),
                     0);
}

static uint16_t
dispi_rd(struct umdev_client *c, unsigned int index)
{
    uint8_t b[2];

    assert_int_equal(umdev_client_region_read(c, UMDEV_PCI_BAR2_REGION,
                                              VBE_DISPI_OFFSET + 2 * index, b,
                                              2),
                     0);
    return (uint16_t)(b[0] | b[1] << 8);
}

/* BAR0 through its sparse-mmap area: the whole framebuffer. */
static uint8_t *
map_fb(struct umdev_client *c, size_t *len)
{
    struct umdev_client_region r;
    void *p = NULL;

    assert_int_equal(umdev_client_region_info(c, UMDEV_PCI_BAR0_REGION, &r), 0);
    assert_true(r.flags & VFIO_REGION_INFO_FLAG_MMAP);
    assert_int_equal(r.nr_areas, 1);
    assert_int_equal(
        umdev_client_region_mmap(c, UMDEV_PCI_BAR0_REGION, 0, &p, len), 0);
    assert_int_equal(*len, r.size);
    return p;
}

/* bochs_hw_init() probing, then bochs_hw_setmode() at @x x @y. */
static void
bochs_setmode(struct umdev_client *c, size_t fb_size, uint16_t x, uint16_t y)
{
    uint8_t b = VGA_MIS_COLOR;

    assert_int_equal(dispi_rd(c, VBE_DISPI_INDEX_ID) & 0xfff0, VBE_DISPI_ID0);
    assert_int_equal((size_t)dispi_rd(c, VBE_DISPI_INDEX_VIDEO_MEMORY_64K) *
                         65536u,
                     fb_size);
    assert_int_equal(umdev_client_region_write(c, UMDEV_PCI_BAR2_REGION,
                                               VBE_VGA_OFFSET + 2, &b, 1),
                     0);
    assert_int_equal(umdev_client_region_read(c, UMDEV_PCI_BAR2_REGION,
                                              VBE_VGA_OFFSET + 0x1a, &b, 1),
                     0);
    b = VGA_AR_ENABLE_DISPLAY;
    assert_int_equal(umdev_client_region_write(c, UMDEV_PCI_BAR2_REGION,
                                               VBE_VGA_OFFSET, &b, 1),
                     0);
    dispi_wr(c, VBE_DISPI_INDEX_ENABLE, 0);
    dispi_wr(c, VBE_DISPI_INDEX_BPP, 32);
    dispi_wr(c, VBE_DISPI_INDEX_XRES, x);
    dispi_wr(c, VBE_DISPI_INDEX_YRES, y);
    dispi_wr(c, VBE_DISPI_INDEX_BANK, 0);
    dispi_wr(c, VBE_DISPI_INDEX_VIRT_WIDTH, x);
    dispi_wr(c, VBE_DISPI_INDEX_VIRT_HEIGHT, (uint16_t)(fb_size / (x * 4u)));
    dispi_wr(c, VBE_DISPI_INDEX_X_OFFSET, 0);
    dispi_wr(c, VBE_DISPI_INDEX_Y_OFFSET, 0);
    dispi_wr(c, VBE_DISPI_INDEX_ENABLE,
             VBE_DISPI_ENABLED | VBE_DISPI_LFB_ENABLED);
}

/* A seeded test pattern for the pixel at (@x, @y) of frame @seed. */
static uint32_t
pattern(uint32_t seed, uint32_t x, uint32_t y)
{
    uint32_t v = seed * 0x9e3779b1u ^ (x * 0x85ebca6bu) ^ (y * 0xc2b2ae35u);

    v ^= v >> 15;
    return v & 0x00ffffffu; /* XRGB: X is not shown */
}

static void
draw(uint8_t *fb, uint64_t offset, uint32_t pitch, uint32_t w, uint32_t h,
     uint32_t seed)
{
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            uint32_t v = pattern(seed, x, y);

            memcpy(fb + offset + (uint64_t)y * pitch + 4u * x, &v, 4);
        }
}

/* display_screen() on the server's thread, and a copy of what it shows
 * (the visible rows only). */
struct screen_call {
    struct display *d;
    struct display_screen s;
    uint8_t *copy;
};

static void
screen_on_server(void *arg)
{
    struct screen_call *sc = arg;

    display_screen(sc->d, &sc->s);
    if (sc->s.pixels == NULL)
        return;
    sc->copy = malloc((size_t)sc->s.mode.width * sc->s.mode.bytepp *
                      sc->s.mode.height);
    assert_non_null(sc->copy);
    for (uint32_t y = 0; y < sc->s.mode.height; y++)
        memcpy(sc->copy + (size_t)y * sc->s.mode.width * sc->s.mode.bytepp,
               sc->s.pixels + (size_t)y * sc->s.mode.pitch,
               (size_t)sc->s.mode.width * sc->s.mode.bytepp);
}

static void
screen(unsigned int i, struct screen_call *sc)
{
    memset(sc, 0, sizeof(*sc));
    sc->d = F.disp[i];
    assert_int_equal(
        kit_serve_call(&F.ks, screen_on_server, sc, HARNESS_TIMEOUT_MS), 0);
}

/* The screen shows frame @seed at @w x @h, pixel for pixel. */
static void
expect_screen(unsigned int i, uint32_t w, uint32_t h, uint32_t seed)
{
    struct screen_call sc;

    screen(i, &sc);
    assert_true(sc.s.mode.enabled);
    assert_int_equal(sc.s.mode.width, w);
    assert_int_equal(sc.s.mode.height, h);
    assert_int_equal(sc.s.mode.format, VBE_FMT_XRGB8888);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            uint32_t got;

            memcpy(&got, sc.copy + ((size_t)y * w + x) * 4, 4);
            if (got != pattern(seed, x, y))
                fail_msg("pixel (%u, %u): %#x, want %#x", x, y, got,
                         pattern(seed, x, y));
        }
    /* The last row as a screenshot encodes it: R, G, B. */
    uint8_t *rgb = malloc((size_t)w * 3);
    assert_non_null(rgb);
    vbe_row_to_rgb(&sc.s.mode, sc.copy + (size_t)(h - 1) * w * 4, rgb);
    for (uint32_t x = 0; x < w; x++) {
        uint32_t v = pattern(seed, x, h - 1);

        assert_int_equal(rgb[3 * x], (v >> 16) & 0xff);
        assert_int_equal(rgb[3 * x + 1], (v >> 8) & 0xff);
        assert_int_equal(rgb[3 * x + 2], v & 0xff);
    }
    free(rgb);
    /* The test's own thread sees the same mode (any thread may ask). */
    struct display_screen mine;
    display_screen(F.disp[i], &mine);
    assert_memory_equal(&mine.mode, &sc.s.mode, sizeof(mine.mode));
    assert_ptr_equal(mine.pixels, sc.s.pixels);
    free(sc.copy);
}

static uint64_t
requests(struct umdev_client *c)
{
    struct umdev_client_stats st;

    umdev_client_get_stats(c, &st);
    return st.requests;
}

static void
test_draw_and_screen_out(void **state)
{
    struct umdev_client *c = connect_display(0);
    size_t len;
    uint8_t *fb = map_fb(c, &len);
    uint64_t before;

    (void)state;
    bochs_setmode(c, len, 1280, 720);
    before = requests(c);
    draw(fb, 0, 1280 * 4, 1280, 720, 1);
    /* A whole frame drawn without a message. */
    assert_int_equal(requests(c) - before, 0);
    expect_screen(0, 1280, 720, 1);
    /* Page flip: draw the second buffer, then point Y_OFFSET at it. */
    draw(fb, (uint64_t)720 * 1280 * 4, 1280 * 4, 1280, 720, 2);
    expect_screen(0, 1280, 720, 1);
    dispi_wr(c, VBE_DISPI_INDEX_VIRT_WIDTH, 1280);
    dispi_wr(c, VBE_DISPI_INDEX_X_OFFSET, 0);
    dispi_wr(c, VBE_DISPI_INDEX_Y_OFFSET, 720);
    expect_screen(0, 1280, 720, 2);
    /* Switch to the largest mode, as a second EDID mode. */
    bochs_setmode(c, len, 1920, 1080);
    draw(fb, 0, 1920 * 4, 1920, 1080, 3);
    expect_screen(0, 1920, 1080, 3);
    umdev_client_destroy(c);
}

static void
test_hostile_mode_clamped(void **state)
{
    struct umdev_client *c = connect_display(0);
    struct screen_call sc;
    size_t len;
    uint8_t *fb = map_fb(c, &len);

    (void)state;
    (void)fb;
    dispi_wr(c, VBE_DISPI_INDEX_ENABLE, 0);
    dispi_wr(c, VBE_DISPI_INDEX_XRES, 4096);
    dispi_wr(c, VBE_DISPI_INDEX_YRES, 4096);
    dispi_wr(c, VBE_DISPI_INDEX_VIRT_WIDTH, 0xffff);
    dispi_wr(c, VBE_DISPI_INDEX_Y_OFFSET, 0xffff);
    dispi_wr(c, VBE_DISPI_INDEX_ENABLE, VBE_DISPI_ENABLED);
    assert_int_equal(dispi_rd(c, VBE_DISPI_INDEX_XRES), 1920);
    assert_int_equal(dispi_rd(c, VBE_DISPI_INDEX_YRES), 1080);
    screen(0, &sc);
    assert_true(sc.s.mode.enabled);
    assert_true(sc.s.mode.offset +
                    (uint64_t)(sc.s.mode.height - 1) * sc.s.mode.pitch +
                    (uint64_t)sc.s.mode.width * 4 <=
                sc.s.vram_size);
    free(sc.copy);
    /* A register the profile does not declare: refused, not served. */
    uint8_t b[4];
    assert_int_equal(
        umdev_client_region_read(c, UMDEV_PCI_BAR2_REGION, 0x700, b, 4),
        -EACCES);
    umdev_client_destroy(c);
}

static void
test_reset_power_on(void **state)
{
    struct umdev_client *c = connect_display(0);
    struct screen_call sc;
    size_t len, i;
    uint8_t *fb = map_fb(c, &len);
    uint32_t be = VBE_QEXT_BIG_ENDIAN, v;

    (void)state;
    bochs_setmode(c, len, 800, 600);
    draw(fb, 0, 800 * 4, 800, 600, 4);
    assert_int_equal(umdev_client_region_write(c, UMDEV_PCI_BAR2_REGION,
                                               VBE_QEXT_OFFSET + 4, &be, 4),
                     0);
    assert_int_equal(umdev_client_reset(c), 0);
    screen(0, &sc);
    assert_false(sc.s.mode.enabled);
    assert_false(sc.s.mode.blanked);
    assert_false(sc.s.mode.big_endian);
    assert_int_equal(dispi_rd(c, VBE_DISPI_INDEX_ENABLE), 0);
    assert_int_equal(dispi_rd(c, VBE_DISPI_INDEX_XRES), 0);
    assert_int_equal(dispi_rd(c, VBE_DISPI_INDEX_ID), VBE_DISPI_ID5);
    assert_int_equal(umdev_client_region_read(c, UMDEV_PCI_BAR2_REGION,
                                              VBE_QEXT_OFFSET + 4, &v, 4),
                     0);
    assert_int_equal(v, VBE_QEXT_LITTLE_ENDIAN);
    /* Video memory as a new instance's, seen through the mapping. */
    for (i = 0; i < len; i += 4096)
        assert_int_equal(fb[i] | fb[i + 1] | fb[i + 4095], 0);
    umdev_client_destroy(c);
}

/* The guest draws on between pre-copy and stop: a new frame. */
static uint8_t *mig_fb;

static int
draw_after_precopy(void *opaque)
{
    (void)opaque;
    draw(mig_fb, 0, 1024 * 4, 1024, 768, 6);
    return 0;
}

static void
test_migration(void **state)
{
    struct umdev_client *src = connect_display(0), *dst = connect_display(1);
    struct umdev_migrate_hooks hooks = { .stop = draw_after_precopy };
    struct umdev_migrate_stats st;
    char err[256] = "";
    size_t len;
    uint8_t *fb = map_fb(src, &len);

    (void)state;
    bochs_setmode(src, len, 1024, 768);
    draw(fb, 0, 1024 * 4, 1024, 768, 5);
    /* Something past the visible frame travels too. */
    memset(fb + len - 4096, 0xab, 4096);
    mig_fb = fb;
    assert_int_equal(
        umdev_client_migrate(src, dst, &hooks, &st, err, sizeof(err)), 0);
    /* Pre-copy carried all of video memory, the final state only the
     * 768 pages of the frame drawn since (and config, registers). */
    assert_true(st.precopy_bytes >= len);
    assert_true(st.state_bytes > 768u * 4096u);
    assert_true(st.state_bytes < 768u * 4100u + 8192u);
    expect_screen(1, 1024, 768, 6);
    umdev_client_destroy(src);
    fb = map_fb(dst, &len);
    assert_int_equal(fb[len - 1], 0xab);
    assert_int_equal(dispi_rd(dst, VBE_DISPI_INDEX_XRES), 1024);
    umdev_client_destroy(dst);
}

static void
set_state(struct umdev_client *c, uint32_t to)
{
    uint32_t now = 0xffff;

    assert_int_equal(umdev_client_mig_set_state(c, to, &now), 0);
    assert_int_equal(now, to);
}

/* Without pre-copy (STOP, then STOP_COPY) all of video memory is in the
 * state. */
static void
test_migration_stop_copy(void **state)
{
    struct umdev_client *src = connect_display(0), *dst = connect_display(1);
    size_t len, cap = (32u << 20);
    uint8_t *fb = map_fb(src, &len), *stream = malloc(cap);
    ssize_t n;

    (void)state;
    assert_non_null(stream);
    bochs_setmode(src, len, 800, 600);
    draw(fb, 0, 800 * 4, 800, 600, 7);
    memset(fb + len - 4096, 0xcd, 4096);
    set_state(src, VFIO_USER_DEVICE_STATE_STOP);
    set_state(src, VFIO_USER_DEVICE_STATE_STOP_COPY);
    n = umdev_client_mig_read(src, stream, cap);
    assert_true(n > (ssize_t)len && (size_t)n < cap);
    set_state(dst, VFIO_USER_DEVICE_STATE_RESUMING);
    assert_int_equal(umdev_client_mig_write(dst, stream, (size_t)n), 0);
    set_state(dst, VFIO_USER_DEVICE_STATE_STOP);
    set_state(dst, VFIO_USER_DEVICE_STATE_RUNNING);
    expect_screen(1, 800, 600, 7);
    umdev_client_destroy(src);
    fb = map_fb(dst, &len);
    assert_int_equal(fb[len - 1], 0xcd);
    umdev_client_destroy(dst);
    free(stream);
}

/* docs/PROTOCOL.md "Migration": a 64-byte header (config_len at 48),
 * the configuration, then sections of a 16-byte head (kind, reserved,
 * u64 length) and their bytes. */
#define MIG_HEADER 64u
#define MIG_SECTION 16u

static uint64_t
le64_at(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t
le32_at(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* Load @stream (@len bytes) into display 1: the load must be refused and
 * leave it as it was (no mode). */
static void
expect_refused(const uint8_t *stream, size_t len)
{
    struct umdev_client *dst = connect_display(1);
    struct screen_call sc;
    uint32_t now = 0;

    set_state(dst, VFIO_USER_DEVICE_STATE_RESUMING);
    assert_int_equal(umdev_client_mig_write(dst, stream, len), 0);
    assert_int_not_equal(
        umdev_client_mig_set_state(dst, VFIO_USER_DEVICE_STATE_STOP, &now), 0);
    screen(1, &sc);
    assert_false(sc.s.mode.enabled);
    assert_int_equal(umdev_client_reset(dst), 0);
    umdev_client_destroy(dst);
}

/* A stream of changed pages is only taken with the pre-copy section it
 * applies to, and with page numbers inside video memory. */
static void
test_migration_hostile_pages(void **state)
{
    struct umdev_client *src = connect_display(0);
    size_t len, cap = (40u << 20), n, hdr, pre, st;
    uint8_t *fb = map_fb(src, &len), *stream = malloc(cap), *cut;
    ssize_t r;

    (void)state;
    assert_non_null(stream);
    bochs_setmode(src, len, 640, 480);
    draw(fb, 0, 640 * 4, 640, 480, 8);
    set_state(src, VFIO_USER_DEVICE_STATE_PRE_COPY);
    r = umdev_client_mig_read(src, stream, cap);
    assert_true(r > (ssize_t)len);
    n = (size_t)r;
    draw(fb, 0, 640 * 4, 640, 2, 9); /* two lines: 2 pages change */
    set_state(src, VFIO_USER_DEVICE_STATE_STOP_COPY);
    r = umdev_client_mig_read(src, stream + n, cap - n);
    assert_true(r > 0);
    n += (size_t)r;
    umdev_client_destroy(src);

    hdr = MIG_HEADER + le32_at(stream + 48);
    assert_int_equal(le32_at(stream + hdr), 1); /* pre-copy */
    pre = MIG_SECTION + le64_at(stream + hdr + 8);
    assert_int_equal(pre, MIG_SECTION + len);
    st = hdr + pre;
    assert_int_equal(le32_at(stream + st), 2); /* state */
    {
        const uint8_t *body = stream + st + MIG_SECTION;
        size_t vb = 4 + le32_at(body) + VBE_STATE_SIZE;

        assert_int_equal(body[vb], 1); /* changed pages */
        assert_int_equal(le32_at(body + vb + 1), 2);
    }

    /* Without the pre-copy section. */
    cut = malloc(n - pre);
    assert_non_null(cut);
    memcpy(cut, stream, hdr);
    memcpy(cut + hdr, stream + st, n - st);
    expect_refused(cut, n - pre);
    free(cut);
    /* A page number past video memory. */
    {
        uint8_t *body = stream + st + MIG_SECTION;
        size_t vb = 4 + le32_at(body) + VBE_STATE_SIZE;
        uint8_t keep[4];

        memcpy(keep, body + vb + 5, 4);
        memset(body + vb + 5, 0xff, 4);
        expect_refused(stream, n);
        memcpy(body + vb + 5, keep, 4);
    }
    /* Untouched, it loads, and shows the frame with the two new lines. */
    {
        struct umdev_client *dst = connect_display(1);
        struct screen_call sc;

        set_state(dst, VFIO_USER_DEVICE_STATE_RESUMING);
        assert_int_equal(umdev_client_mig_write(dst, stream, n), 0);
        set_state(dst, VFIO_USER_DEVICE_STATE_STOP);
        screen(1, &sc);
        assert_true(sc.s.mode.enabled);
        for (uint32_t x = 0; x < 640; x++) {
            uint32_t top, below;

            memcpy(&top, sc.copy + 4u * x, 4);
            memcpy(&below, sc.copy + 640u * 4u * 2u + 4u * x, 4);
            assert_int_equal(top, pattern(9, x, 0));
            assert_int_equal(below, pattern(8, x, 2));
        }
        free(sc.copy);
        umdev_client_destroy(dst);
    }
    free(stream);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_draw_and_screen_out), T(test_hostile_mode_clamped),
        T(test_reset_power_on),      T(test_migration),
        T(test_migration_stop_copy), T(test_migration_hostile_pages),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
