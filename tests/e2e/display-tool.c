/*
 * display-tool: static guest helper of tests/e2e/display.sh. It draws a
 * seeded test pattern the host can compute from the seed alone, through
 * the guest's own display stack:
 *
 *   display-tool fb SEED
 *       into /dev/fb0 (bochs-drm's fbdev emulation) at its current mode:
 *       "E2E-DISPLAY-TOOL fb W H BPP STRIDE XOFF YOFF" once drawn;
 *   display-tool mode W H SEED HOLD_S
 *       as a DRM client of /dev/dri/card0: the connector's mode W x H (it
 *       must be one of those the EDID gave the connector), a dumb buffer
 *       (XRGB8888) with the pattern, SETCRTC; "E2E-DISPLAY-TOOL mode W H
 *       PITCH" once shown, then holds it HOLD_S seconds (the host takes
 *       its screenshot) and exits, which gives the display back to fbdev.
 *
 * The pattern: pixel (x, y) is 0x00RRGGBB = pattern(x, y, SEED) below;
 * display.sh computes the same.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fb.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <drm.h>
#include <drm_mode.h>

/* "display-tool: message[: errno text]" and exit 1. */
static void __attribute__((format(printf, 2, 3), noreturn))
die(int e, const char *fmt, ...)
{
    va_list ap;

    fputs("display-tool: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (e != 0)
        fprintf(stderr, ": %s", strerror(e));
    fputc('\n', stderr);
    exit(1);
}

static uint32_t
pattern(uint32_t x, uint32_t y, uint32_t seed)
{
    uint32_t v = x * 0x9e3779b1u ^ y * 0x85ebca6bu ^ seed * 0xc2b2ae35u;

    v ^= v >> 15;
    v *= 0x2c1b3c6du;
    v ^= v >> 12;
    return v & 0xffffffu;
}

static int
draw_fb(uint32_t seed)
{
    struct fb_var_screeninfo var;
    struct fb_fix_screeninfo fix;
    uint8_t *fb;
    uint32_t x, y;
    int fd = open("/dev/fb0", O_RDWR);

    if (fd < 0 || ioctl(fd, FBIOGET_VSCREENINFO, &var) < 0 ||
        ioctl(fd, FBIOGET_FSCREENINFO, &fix) < 0)
        die(errno, "/dev/fb0");
    if (var.bits_per_pixel != 32)
        die(0, "/dev/fb0 is %u bpp, not 32", var.bits_per_pixel);
    fb = mmap(NULL, fix.smem_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (fb == MAP_FAILED)
        die(errno, "mmap /dev/fb0");
    for (y = 0; y < var.yres; y++)
        for (x = 0; x < var.xres; x++) {
            uint32_t v = pattern(x, y, seed);

            memcpy(fb + (size_t)(y + var.yoffset) * fix.line_length +
                       (size_t)(x + var.xoffset) * 4,
                   &v, 4);
        }
    /* fbdev emulation copies damage to the device from a worker. */
    msync(fb, fix.smem_len, MS_SYNC);
    printf("E2E-DISPLAY-TOOL fb %u %u %u %u %u %u\n", var.xres, var.yres,
           var.bits_per_pixel, fix.line_length, var.xoffset, var.yoffset);
    return 0;
}

static int
set_mode(uint32_t w, uint32_t h, uint32_t seed, unsigned int hold)
{
    struct drm_mode_card_res res = { 0 };
    struct drm_mode_get_connector conn = { 0 };
    struct drm_mode_modeinfo *modes, *m = NULL;
    struct drm_mode_create_dumb dumb = { 0 };
    struct drm_mode_map_dumb map = { 0 };
    struct drm_mode_fb_cmd fbc = { 0 };
    struct drm_mode_crtc crtc = { 0 };
    uint32_t conn_id, crtc_id, x, y, i;
    uint32_t conns[8], crtcs[8], encs[8];
    uint8_t *px;
    int fd = open("/dev/dri/card0", O_RDWR | O_CLOEXEC);

    if (fd < 0 || ioctl(fd, DRM_IOCTL_SET_MASTER, 0) < 0)
        die(errno, "/dev/dri/card0 (master)");
    if (ioctl(fd, DRM_IOCTL_MODE_GETRESOURCES, &res) < 0 ||
        res.count_connectors < 1 || res.count_crtcs < 1 ||
        res.count_connectors > 8 || res.count_crtcs > 8)
        die(0, "card0: %u connectors, %u CRTCs", res.count_connectors,
            res.count_crtcs);
    res.connector_id_ptr = (uintptr_t)conns;
    res.crtc_id_ptr = (uintptr_t)crtcs;
    res.count_fbs = res.count_encoders = 0;
    if (ioctl(fd, DRM_IOCTL_MODE_GETRESOURCES, &res) < 0)
        die(errno, "GETRESOURCES");
    conn_id = conns[0];
    crtc_id = crtcs[0];
    conn.connector_id = conn_id;
    if (ioctl(fd, DRM_IOCTL_MODE_GETCONNECTOR, &conn) < 0)
        die(errno, "GETCONNECTOR");
    modes = calloc(conn.count_modes + 1, sizeof(*modes));
    if (modes == NULL || conn.count_encoders > 8)
        die(0, "connector: %u modes, %u encoders", conn.count_modes,
            conn.count_encoders);
    conn.modes_ptr = (uintptr_t)modes;
    conn.encoders_ptr = (uintptr_t)encs;
    conn.count_props = 0;
    if (ioctl(fd, DRM_IOCTL_MODE_GETCONNECTOR, &conn) < 0)
        die(errno, "GETCONNECTOR");
    for (i = 0; i < conn.count_modes; i++)
        if (modes[i].hdisplay == w && modes[i].vdisplay == h) {
            m = &modes[i];
            break;
        }
    if (m == NULL)
        die(0, "the connector offers no %ux%u mode", w, h);
    dumb.width = w;
    dumb.height = h;
    dumb.bpp = 32;
    if (ioctl(fd, DRM_IOCTL_MODE_CREATE_DUMB, &dumb) < 0)
        die(errno, "CREATE_DUMB");
    fbc.width = w;
    fbc.height = h;
    fbc.pitch = dumb.pitch;
    fbc.bpp = 32;
    fbc.depth = 24;
    fbc.handle = dumb.handle;
    if (ioctl(fd, DRM_IOCTL_MODE_ADDFB, &fbc) < 0)
        die(errno, "ADDFB");
    map.handle = dumb.handle;
    if (ioctl(fd, DRM_IOCTL_MODE_MAP_DUMB, &map) < 0)
        die(errno, "MAP_DUMB");
    px = mmap(NULL, dumb.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
              (off_t)map.offset);
    if (px == MAP_FAILED)
        die(errno, "mmap dumb buffer");
    for (y = 0; y < h; y++)
        for (x = 0; x < w; x++) {
            uint32_t v = pattern(x, y, seed);

            memcpy(px + (size_t)y * dumb.pitch + (size_t)x * 4, &v, 4);
        }
    crtc.crtc_id = crtc_id;
    crtc.fb_id = fbc.fb_id;
    crtc.set_connectors_ptr = (uintptr_t)&conn_id;
    crtc.count_connectors = 1;
    crtc.mode = *m;
    crtc.mode_valid = 1;
    if (ioctl(fd, DRM_IOCTL_MODE_SETCRTC, &crtc) < 0)
        die(errno, "SETCRTC %ux%u", w, h);
    printf("E2E-DISPLAY-TOOL mode %u %u %u\n", w, h, dumb.pitch);
    fflush(stdout);
    sleep(hold);
    close(fd);
    return 0;
}

int
main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && strcmp(argv[1], "fb") == 0)
        return draw_fb((uint32_t)strtoul(argv[2], NULL, 0));
    if (argc == 6 && strcmp(argv[1], "mode") == 0)
        return set_mode((uint32_t)strtoul(argv[2], NULL, 0),
                        (uint32_t)strtoul(argv[3], NULL, 0),
                        (uint32_t)strtoul(argv[4], NULL, 0),
                        (unsigned int)strtoul(argv[5], NULL, 0));
    fprintf(stderr, "usage: display-tool fb SEED | mode W H SEED HOLD_S\n");
    return 2;
}
