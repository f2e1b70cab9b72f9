/*
 * The accel PCI subdevice: K work queues of a shared accel engine
 * (engine.h) presented as one PCI function over vfio-user. BAR0 holds the
 * control registers, the MSI-X table and PBA; BAR2 one doorbell page per
 * queue. Descriptor rings and completion records live in guest memory and
 * are reached only through lib/dev's DMA API. The guest-visible interface
 * is documented in devices/accel/README.md; the constants below are its
 * register map.
 *
 * An embedder creates one engine per parent, then any number of devices on
 * it (types accel-1wq/2wq/4wq: 1, 2 or 4 queues), each served on its own
 * socket. Threading: the device runs on the thread serving its umdev_dev;
 * the engine's threads call back into it for DMA, interrupts and errors.
 */
#ifndef UMDEV_ACCEL_ACCEL_H
#define UMDEV_ACCEL_ACCEL_H

#include <stdint.h>

#include "engine.h"
#include "umdev/dev.h"
#include "umdev/pci.h"

/* PCI identity (README "PCI identity" says why). */
#define ACCEL_VENDOR_ID 0x1234
#define ACCEL_DEVICE_ID 0x11ec
#define ACCEL_SUBSYS_VENDOR_ID ACCEL_VENDOR_ID
/* Subsystem ID: the number of queues, so a guest tells the types apart. */
#define ACCEL_REVISION 0x01
#define ACCEL_CLASS 0x088000 /* system peripheral, other */

#define ACCEL_DEV_MAX_QUEUES 8u

/* BAR0: 16 KiB, 64-bit memory, non-prefetchable. Registers take aligned
 * 4- or 8-byte accesses; a 64-bit register may be accessed as two 32-bit
 * halves. Undefined offsets read 0 and ignore writes. */
#define ACCEL_BAR0_SIZE 0x4000u
#define ACCEL_REG_VERSION 0x000    /* RO32 */
#define ACCEL_VERSION 0x00010000u  /* 1.0 */
#define ACCEL_REG_NUM_QUEUES 0x004 /* RO32 */
#define ACCEL_REG_OPCAP 0x008      /* RO64 bit n: opcode n supported */
#define ACCEL_REG_MAX_XFER 0x010   /* RO32 bytes per descriptor */
#define ACCEL_REG_MAX_BATCH 0x014  /* RO32 descriptors per BATCH */
#define ACCEL_REG_MAX_RING 0x018   /* RO32 descriptors per ring */
#define ACCEL_REG_FEATURES 0x01c   /* RO32 */
#define ACCEL_FEAT_EVENT_SUPPRESSION (1u << 0)
#define ACCEL_FEAT_COALESCING (1u << 1)
#define ACCEL_FEAT_INTX (1u << 2)
#define ACCEL_REG_DEVCTL 0x020 /* RW32 */
#define ACCEL_DEVCTL_ENABLE (1u << 0)
#define ACCEL_DEVCTL_RESET (1u << 1) /* write 1: reset; reads 0 */
#define ACCEL_REG_DEVSTS 0x024       /* RO32 */
#define ACCEL_DEVSTS_ENABLED (1u << 0)
#define ACCEL_REG_INTSTS 0x028 /* RW1C32 interrupt causes */
#define ACCEL_INTSTS_QUEUE(q) (1u << (q))
#define ACCEL_INTSTS_ERROR (1u << 31)
#define ACCEL_REG_SWERR_COUNT 0x030 /* RO32 7:0 entries, 31:16 dropped */
#define ACCEL_REG_SWERR_POP 0x034   /* WO32 any value: drop the oldest */
#define ACCEL_REG_SWERR_INFO                                                   \
    0x038                           /* RO32 oldest: 7:0 code 15:8 queue        \
                                     * 23:16 opcode; 0 when empty */
#define ACCEL_REG_SWERR_INDEX 0x03c /* RO32 oldest: descriptor ring index */
#define ACCEL_REG_SWERR_ADDR 0x040  /* RO64 oldest: address/offset */
#define ACCEL_SWERR_DEPTH 16u

#define ACCEL_REG_QUEUE(q) (0x100u + (q)*0x40u)
#define ACCEL_Q_RING_BASE 0x00 /* RW64 */
#define ACCEL_Q_RING_SIZE 0x08 /* RW32 descriptors */
#define ACCEL_Q_PRIORITY 0x0c  /* RW32 1..15 */
#define ACCEL_Q_CTRL 0x10      /* RW32 */
#define ACCEL_Q_CTRL_ENABLE (1u << 0)
#define ACCEL_Q_STATUS 0x14 /* RO32 1:0 state, 15:8 error */
#define ACCEL_Q_STATUS_STATE(v) ((v)&3u)
#define ACCEL_Q_STATUS_ERROR(v) (((v) >> 8) & 0xffu)
#define ACCEL_Q_ERR_ADDR 0x18   /* RO64 */
#define ACCEL_Q_INT_VECTOR 0x20 /* RW32 MSI-X vector */
#define ACCEL_Q_COAL_COUNT 0x24 /* RW32 */
#define ACCEL_Q_COAL_USEC 0x28  /* RW32 */
#define ACCEL_Q_COMPLETED 0x30  /* RO64 */
#define ACCEL_Q_DOORBELLS 0x38  /* RO32 */

/* Queue enable errors the device adds to enum accel_qerr. */
#define ACCEL_QERR_DEV_DISABLED 0x10  /* DEVCTL.ENABLE is 0 */
#define ACCEL_QERR_VECTOR 0x11        /* INT_VECTOR >= MSI-X vectors */
#define ACCEL_QERR_NO_BUS_MASTER 0x12 /* Command.BusMaster is 0 */

#define ACCEL_MSIX_TABLE 0x2000u
#define ACCEL_MSIX_PBA 0x3000u

/* BAR2: 64-bit memory, non-prefetchable, one 4 KiB page per queue
 * (rounded up to a power of two); a 32-bit write at offset 0 of page q is
 * queue q's doorbell. */
#define ACCEL_DOORBELL_STRIDE 0x1000u

struct accel_dev_config {
    const char *name;               /* for logs; NULL: "accel" */
    unsigned int nr_queues;         /* 1..ACCEL_DEV_MAX_QUEUES */
    const struct umdev_logger *log; /* borrowed; may be NULL */
};

struct accel_dev;

/**
 * accel_dev_create() - claim @cfg->nr_queues free queues of @e and build
 * the PCI function around them.
 * @e: borrowed; must outlive the device.
 * Return: 0; -EINVAL bad config; -ENOSPC not enough free queues;
 * -ENOMEM; a lib/dev or lib/pci error.
 */
int accel_dev_create(struct accel_engine *e, const struct accel_dev_config *cfg,
                     struct accel_dev **out);

/** Stop the queues (discarding their work), return them to the engine,
 * destroy the device. NULL is ok. */
void accel_dev_destroy(struct accel_dev *d);

/** The device to serve; owned by @d. */
struct umdev_dev *accel_dev_dev(struct accel_dev *d);

/** Its lib/pci config space (audits read it); owned by @d. */
struct umdev_pci *accel_dev_pci(struct accel_dev *d);

/** The engine queue behind device queue @i (tests, tools); NULL if none. */
struct accel_queue *accel_dev_queue(struct accel_dev *d, unsigned int i);

/* The accel parent (parent.c): pool "queues", types accel-1wq/2wq/4wq. */
struct umdev_parent;
extern const struct umdev_parent accel_parent;

#endif /* UMDEV_ACCEL_ACCEL_H */
