/*
 * `umdevctl screenshot UUID FILE.png`: the screen of a running display
 * instance as its guest shows it, written as a PNG (docs/CLI.md
 * "screenshot"). umdevd's `screen` answer (docs/CONTROL.md) carries the
 * mode in force and a read-only descriptor of the memory the pixels lie
 * in; this maps it, checks the geometry against the memory's size (the
 * daemon's word is not enough to read past a mapping), converts each
 * visible row with the display parent's own decoder (vbe_row_to_rgb, the
 * one the device documents) and encodes RGB with libpng.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <png.h>

#include "umdev/ctl.h"
#include "umdevctl.h"
#include "vbe.h"

/* What a screen with no mode set is written as: black at the size a
 * VGA monitor shows at power-on (640x480, the EDID's first mode). */
#define SCREENSHOT_NOMODE_W 640u
#define SCREENSHOT_NOMODE_H 480u

static const struct {
    const char *name;
    enum vbe_format fmt;
    uint32_t bytepp;
} formats[] = {
    { "rgb555", VBE_FMT_RGB555, 2 },     { "rgb565", VBE_FMT_RGB565, 2 },
    { "bgr888", VBE_FMT_BGR888, 3 },     { "xrgb8888", VBE_FMT_XRGB8888, 4 },
    { "bgrx8888", VBE_FMT_BGRX8888, 4 },
};

static uint64_t
jint(struct json_object *o, const char *key)
{
    struct json_object *v;

    if (!json_object_object_get_ex(o, key, &v) ||
        !json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
        return UINT64_MAX;
    return (uint64_t)json_object_get_int64(v);
}

static bool
jbool(struct json_object *o, const char *key)
{
    struct json_object *v;

    return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

/*
 * The visible rectangle of @scr as a mode vbe_row_to_rgb() decodes, into
 * @m, checked to lie inside @size bytes. Return: 0; -EPROTO with @err
 * for an answer that does not fit.
 */
static int
screen_mode(struct json_object *scr, uint64_t size, struct vbe_mode *m,
            char *err, size_t errlen)
{
    const char *fmt = cli_jstr(scr, "format", "");
    uint64_t w = jint(scr, "width"), h = jint(scr, "height");
    uint64_t pitch = jint(scr, "pitch"), off = jint(scr, "offset");
    size_t i;

    memset(m, 0, sizeof(*m));
    for (i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
        if (strcmp(fmt, formats[i].name) == 0)
            break;
    if (i == sizeof(formats) / sizeof(formats[0]) || w == 0 || h == 0 ||
        w > PNG_UINT_31_MAX || h > PNG_UINT_31_MAX || pitch == UINT64_MAX ||
        off == UINT64_MAX) {
        snprintf(err, errlen,
                 "umdevd described an unknown screen (format "
                 "'%s')",
                 fmt);
        return -EPROTO;
    }
    if (pitch < w * formats[i].bytepp || off > size ||
        (h - 1) * pitch + w * formats[i].bytepp > size - off) {
        snprintf(err, errlen,
                 "the screen (%llux%llu, pitch %llu at %llu) lies outside "
                 "its %llu bytes of memory",
                 (unsigned long long)w, (unsigned long long)h,
                 (unsigned long long)pitch, (unsigned long long)off,
                 (unsigned long long)size);
        return -EPROTO;
    }
    m->enabled = true;
    m->width = (uint32_t)w;
    m->height = (uint32_t)h;
    m->bytepp = formats[i].bytepp;
    m->pitch = (uint32_t)pitch;
    m->offset = off;
    m->format = formats[i].fmt;
    return 0;
}

/*
 * Write @h rows of @w RGB pixels to @path: row y from @pixels + y * @pitch
 * in mode @m, or black when @pixels is NULL. Return: 0, or -errno with
 * @err.
 */
static int
write_png(const char *path, const struct vbe_mode *m, const uint8_t *pixels,
          uint32_t w, uint32_t h, char *err, size_t errlen)
{
    png_structp png = NULL;
    png_infop info = NULL;
    uint8_t *volatile row = NULL;
    FILE *volatile f = NULL;
    volatile int rc = -EIO;
    uint32_t y;

    row = calloc(w, 3);
    if (row == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    f = fopen(path, "wbe");
    if (f == NULL) {
        rc = -errno;
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(-rc));
        free(row);
        return rc;
    }
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    if (png != NULL)
        info = png_create_info_struct(png);
    if (info == NULL) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto out;
    }
    if (setjmp(png_jmpbuf(png))) {
        snprintf(err, errlen, "cannot write %s (libpng failed; disk full?)",
                 path);
        goto out;
    }
    png_init_io(png, f);
    /* Speed over size: a screen is mostly flat areas, which level 1
     * already packs well. */
    png_set_compression_level(png, 1);
    png_set_IHDR(png, info, w, h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (y = 0; y < h; y++) {
        if (pixels != NULL)
            vbe_row_to_rgb(m, pixels + (size_t)y * m->pitch, row);
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    rc = 0;
out:
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0 && rc == 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(-rc));
    }
    if (rc < 0)
        unlink(path);
    free(row);
    return rc;
}

int
cli_verb_screenshot(struct cli *c, struct cli_opts *o)
{
    struct json_object *args, *r = NULL, *scr;
    struct vbe_mode m = { .enabled = false };
    const uint8_t *pixels = NULL;
    void *map = MAP_FAILED;
    uint32_t w = SCREENSHOT_NOMODE_W, h = SCREENSHOT_NOMODE_H;
    char err[512];
    struct stat st;
    int fd = -1, rc, seals;
    bool shown;

    if (o->uuid == NULL)
        return cli_usage_error("screenshot", "UUID is required");
    if (o->file == NULL)
        return cli_usage_error("screenshot", "FILE is required (the PNG "
                                             "to write)");
    args = json_object_new_object();
    json_object_object_add(args, "uuid", json_object_new_string(o->uuid));
    rc = cli_call(c, "screen", args, &r);
    if (rc != 0)
        return rc;
    fd = umdev_ctl_take_fd(c->ctl);
    if (!json_object_object_get_ex(r, "screen", &scr) || fd < 0) {
        rc = cli_refuse(c, "screenshot", EPROTO,
                        "umdevd answered without the screen's memory");
        goto out;
    }
    if (fstat(fd, &st) < 0 || st.st_size <= 0) {
        rc = cli_refuse(c, "screenshot", EPROTO,
                        "the screen's memory cannot be sized");
        goto out;
    }
    /* Its size is sealed (lib/dev seals every shared region), so the
     * mapping below cannot lose pages under the read (SIGBUS). */
    seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
        rc = cli_refuse(c, "screenshot", EPROTO,
                        "the screen's memory is not sealed against "
                        "shrinking; not mapping it");
        goto out;
    }
    shown = jbool(scr, "enabled") && !jbool(scr, "blanked");
    if (jbool(scr, "enabled")) {
        if (screen_mode(scr, (uint64_t)st.st_size, &m, err, sizeof(err)) < 0) {
            rc = cli_refuse(c, "screenshot", EPROTO, "%s", err);
            goto out;
        }
        w = m.width;
        h = m.height;
    }
    if (shown) {
        /* Read-only and shared: the guest's drawing as it happens. */
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED) {
            rc = cli_refuse(c, "screenshot", errno,
                            "cannot map the screen's memory: %s",
                            strerror(errno));
            goto out;
        }
        pixels = (const uint8_t *)map + m.offset;
    }
    if (write_png(o->file, &m, pixels, w, h, err, sizeof(err)) < 0) {
        rc = cli_refuse(c, "screenshot", EIO, "%s", err);
        goto out;
    }
    if (c->json) {
        struct json_object *out = json_object_new_object();

        json_object_object_add(out, "uuid",
                               json_object_new_string(cli_jstr(r, "uuid", "")));
        json_object_object_add(out, "file", json_object_new_string(o->file));
        json_object_object_add(out, "width", json_object_new_int64(w));
        json_object_object_add(out, "height", json_object_new_int64(h));
        json_object_object_add(out, "screen", json_object_get(scr));
        puts(json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN));
        json_object_put(out);
    } else {
        printf("%s: %ux%u%s\n", o->file, w, h,
               !jbool(scr, "enabled") ? " black (no mode set)"
               : !shown               ? " black (blanked)"
                                      : "");
    }
    rc = 0;
out:
    if (map != MAP_FAILED)
        munmap(map, (size_t)st.st_size);
    if (fd >= 0)
        close(fd);
    json_object_put(r);
    return rc;
}
