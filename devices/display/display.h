/*
 * The display subdevice: the Bochs/QEMU display interface (PCI 1234:1111,
 * what Linux's bochs-drm binds unchanged) served over vfio-user. BAR0 is
 * the framebuffer, shared memory the client maps whole (no message per
 * pixel); BAR2 holds the trapped registers (vbe.h). Guest-visible
 * interface: devices/display/README.md.
 *
 * Threading: everything runs on the device's serving thread, except
 * display_screen() and reading the pixels it points at (see there).
 */
#ifndef UMDEV_DISPLAY_DISPLAY_H
#define UMDEV_DISPLAY_DISPLAY_H

#include <stdbool.h>
#include <stdint.h>

#include "edid.h"
#include "umdev/dev.h"
#include "umdev/pci.h"
#include "vbe.h"

/* PCI identity (README.md "PCI identity"). */
#define DISPLAY_VENDOR_ID 0x1234 /* bochs-drm's id table: 1234:1111 */
#define DISPLAY_DEVICE_ID 0x1111
#define DISPLAY_SUBSYS_VENDOR_ID 0x1234
#define DISPLAY_SUBSYS_ID 0x1111
#define DISPLAY_REVISION 2     /* bochs-drm reads QEMU ext regs from 2 */
#define DISPLAY_CLASS 0x038000 /* display controller, other (not VGA) */

/* Video memory per type, in MiB: the type's cost in the parent's pool
 * (parent.c) and its BAR0 size. */
#define DISPLAY_1024_VRAM_MIB 8u
#define DISPLAY_1920_VRAM_MIB 16u

/* Migration state format (README.md "Migration"). */
#define DISPLAY_MIG_VERSION 2u

/* A display type: its largest mode, video memory and EDID modes. */
struct display_type {
    const char *name; /* short: "1024"; full: "display-1024" */
    uint16_t max_xres, max_yres;
    uint32_t vram_mib;
    struct edid_timing preferred;
    uint8_t established[3];
    struct edid_std_mode std[8];
    size_t nstd;
};

/** The type named @type (full "display-1024" or short "1024"), or NULL. */
const struct display_type *display_type_find(const char *type);
/** The types, in the order the parent offers them; *@n set. */
const struct display_type *display_types(size_t *n);

struct display_config {
    const char *type; /* a display type's name; NULL: "display-1024" */
    /* The instance UUID (text); the EDID serial number derives from it.
     * NULL: serial 0. Borrowed. */
    const char *uuid;
    const char *name; /* for logs; NULL: "display" */
};

struct display;

/**
 * display_create() - build the device: config space, BAR0 (video memory
 * as a shared-memory region the client may mmap whole), BAR2 (trapped
 * registers), the mediation profile, migration hooks.
 * @log: borrowed; may be NULL.
 * Return: 0; -EINVAL (unknown type, a UUID that does not parse);
 * -ENOMEM; or lib/dev's error for the shared memory.
 */
int display_create(const struct display_config *cfg,
                   const struct umdev_logger *log, struct display **out);

/** Free; NULL is ok. */
void display_destroy(struct display *d);

/** The device to serve; owned by @d. */
struct umdev_dev *display_dev(struct display *d);
/** Its lib/pci config space (for audits); owned by @d. */
struct umdev_pci *display_pci(struct display *d);
/** The EDID block the guest reads (EDID_BLOCK_LEN bytes); owned by @d. */
const uint8_t *display_edid(struct display *d);

/*
 * The screen as the guest shows it, for screenshots and live views.
 * @pixels points at the top left visible pixel inside video memory;
 * rows are @mode.pitch bytes apart and @mode.width * @mode.bytepp bytes
 * of each are visible, @mode.height rows. The guest writes video memory
 * through its own mapping at any time, so a reader on another thread
 * sees a picture that may be mid-update (as a real scan-out does); the
 * geometry read here always lies inside video memory, which never moves
 * or shrinks while @d exists, so reading it stays in bounds whatever
 * the guest does meanwhile.
 */
struct display_screen {
    struct vbe_mode mode;
    const uint8_t *pixels; /* NULL when !mode.enabled */
    const uint8_t *vram;   /* all of video memory */
    uint64_t vram_size;
};

/**
 * display_screen() - the current mode and where its pixels are, as of
 * the guest's last register write. Any thread (a live view polls from
 * its own); the mode is copied under a lock.
 */
void display_screen(struct display *d, struct display_screen *out);

#endif /* UMDEV_DISPLAY_DISPLAY_H */
