/* Unit tests for lib/pci: write masks, RW1C, BAR sizing, capabilities,
 * MSI/MSI-X masking and pending bits, INTx gating. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <linux/vfio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "umdev/client.h"
#include "umdev/pci.h"
#include "umdev/dev_testing.h"

struct fixture {
    struct umdev_dev *dev;
    struct umdev_pci *pci;
    uint8_t bar0[4096];
};

static ssize_t
bar0_access(void *opaque, uint64_t off, void *buf, size_t count,
            bool is_write)
{
    struct fixture *f = opaque;

    if (is_write)
        memcpy(f->bar0 + off, buf, count);
    else
        memcpy(buf, f->bar0 + off, count);
    return (ssize_t)count;
}

static int
setup(void **state)
{
    static struct fixture f;
    struct umdev_dev_info info = { .name = "pcitest", .pci = true };
    struct umdev_pci_id id = {
        .vendor_id = 0x1234,
        .device_id = 0x5678,
        .subsystem_vendor_id = 0x1af4,
        .subsystem_id = 0x1100,
        .revision = 3,
        .class_code = 0x070002,
        .interrupt_pin = 1,
    };

    memset(&f, 0, sizeof(f));
    assert_int_equal(umdev_dev_create(&info, &f.dev), 0);
    assert_int_equal(umdev_pci_create(f.dev, &id, &f.pci), 0);
    *state = &f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;

    umdev_pci_destroy(f->pci);
    umdev_dev_destroy(f->dev);
    return 0;
}

static struct umdev_region_desc
trapped(struct fixture *f, uint64_t size)
{
    struct umdev_region_desc d = {
        .size = size,
        .flags = UMDEV_REGION_F_READ | UMDEV_REGION_F_WRITE,
        .access = bar0_access,
        .opaque = f,
    };
    return d;
}

/* Config accesses go through the config region's callback, exactly as a
 * client's REGION_READ/WRITE would; we reach it with a loopback client. */
static uint32_t
cfg_read(struct fixture *f, uint32_t off, size_t len)
{
    uint32_t v = 0;

    assert_int_equal(umdev_pci_config_read(f->pci, off, &v, len), 0);
    return v;
}

/* lib/dev has no in-process region entry point by design (all guest
 * accesses come over the wire), so writes use a socketpair client. */
#include <sys/socket.h>
#include <pthread.h>
#include <unistd.h>

struct wire_pair {
    struct umdev_client *c;
    pthread_t thread;
    struct umdev_dev *dev;
    volatile int stop;
};

static void *
serve(void *arg)
{
    struct wire_pair *p = arg;

    while (!p->stop && umdev_dev_attached(p->dev)) {
        if (umdev_dev_process(p->dev) < 0)
            break;
        usleep(50);
    }
    return NULL;
}

static void
pair_open(struct fixture *f, struct wire_pair *p)
{
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(umdev_dev_attach(f->dev, sv[0]), 0);
    p->dev = f->dev;
    p->stop = 0;
    assert_int_equal(pthread_create(&p->thread, NULL, serve, p), 0);
    assert_int_equal(umdev_client_attach_fd(sv[1], NULL, &p->c), 0);
}

static void
pair_close(struct wire_pair *p)
{
    umdev_client_destroy(p->c);
    p->stop = 1;
    pthread_join(p->thread, NULL);
    umdev_dev_detach(p->dev);
}

static void
cfg_write(struct wire_pair *p, uint32_t off, uint32_t v, size_t len)
{
    assert_int_equal(umdev_client_region_write(p->c, UMDEV_PCI_CONFIG_REGION,
                                               off, &v, len),
                     0);
}

static uint32_t
cfg_read_wire(struct wire_pair *p, uint32_t off, size_t len)
{
    uint32_t v = 0;

    assert_int_equal(umdev_client_region_read(p->c, UMDEV_PCI_CONFIG_REGION,
                                              off, &v, len),
                     0);
    return v;
}

static void
test_header_identity(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(cfg_read(f, 0x00, 2), 0x1234);
    assert_int_equal(cfg_read(f, 0x02, 2), 0x5678);
    assert_int_equal(cfg_read(f, 0x08, 1), 3);
    assert_int_equal(cfg_read(f, 0x09, 1), 0x02);
    assert_int_equal(cfg_read(f, 0x0a, 2), 0x0700);
    assert_int_equal(cfg_read(f, 0x2c, 2), 0x1af4);
    assert_int_equal(cfg_read(f, 0x2e, 2), 0x1100);
    assert_int_equal(cfg_read(f, 0x3d, 1), 1);
    assert_int_equal(cfg_read(f, 0x0e, 1), 0);
    assert_int_equal(cfg_read(f, 0x34, 1), 0);   /* no capabilities */
    assert_int_equal(cfg_read(f, 0x06, 2) & 0x10, 0);
}

static void
test_write_masks_and_rw1c(void **state)
{
    struct fixture *f = *state;
    struct wire_pair p;

    pair_open(f, &p);
    /* Read-only identity ignores writes. */
    cfg_write(&p, 0x00, 0xffffffff, 4);
    assert_int_equal(cfg_read_wire(&p, 0x00, 4), 0x56781234);
    /* Command: only the defined bits stick. */
    cfg_write(&p, 0x04, 0xffff, 2);
    assert_int_equal(cfg_read_wire(&p, 0x04, 2), 0x0547);
    cfg_write(&p, 0x04, 0x0000, 2);
    assert_int_equal(cfg_read_wire(&p, 0x04, 2), 0);
    /* Interrupt line is RW, pin is RO. */
    cfg_write(&p, 0x3c, 0xffff, 2);
    assert_int_equal(cfg_read_wire(&p, 0x3c, 1), 0xff);
    assert_int_equal(cfg_read_wire(&p, 0x3d, 1), 1);
    /* Status error bits are RW1C: writing 1 to a clear bit keeps it 0,
     * and a write never sets them. */
    cfg_write(&p, 0x06, 0xffff, 2);
    assert_int_equal(cfg_read_wire(&p, 0x06, 2) & 0xf900, 0);
    /* Byte-wide and unaligned writes touch only their bytes. */
    cfg_write(&p, 0x0c, 0x40, 1);
    assert_int_equal(cfg_read_wire(&p, 0x0c, 1), 0x40);
    assert_int_equal(cfg_read_wire(&p, 0x0d, 1), 0);
    pair_close(&p);
}

static void
test_bar_sizing(void **state)
{
    struct fixture *f = *state;
    struct umdev_region_desc r8 = trapped(f, 8);
    struct umdev_region_desc r4k = trapped(f, 4096);
    struct umdev_region_desc r64k = {
        .size = 65536,
        .flags = UMDEV_REGION_F_READ | UMDEV_REGION_F_WRITE,
        .shm = true,
    };
    struct umdev_region_desc r1m = trapped(f, 1 << 20);
    struct wire_pair p;

    r1m.access = bar0_access;
    assert_int_equal(umdev_pci_bar_add(f->pci, 0, UMDEV_PCI_BAR_IO, false, 8,
                                       &r8),
                     0);
    assert_int_equal(umdev_pci_bar_add(f->pci, 1, UMDEV_PCI_BAR_MEM32, false,
                                       4096, &r4k),
                     0);
    assert_int_equal(umdev_pci_bar_add(f->pci, 2, UMDEV_PCI_BAR_MEM64, true,
                                       65536, &r64k),
                     0);
    assert_int_equal(umdev_pci_bar_add(f->pci, 4, UMDEV_PCI_BAR_MEM32, true,
                                       1 << 20, &r1m),
                     0);
    /* Refusals: taken, upper half of a 64-bit BAR, non power of two, a
     * 64-bit BAR at index 5, an I/O BAR too large. */
    assert_int_equal(umdev_pci_bar_add(f->pci, 1, UMDEV_PCI_BAR_MEM32, false,
                                       4096, &r4k),
                     -EEXIST);
    assert_int_equal(umdev_pci_bar_add(f->pci, 3, UMDEV_PCI_BAR_MEM32, false,
                                       4096, &r4k),
                     -EEXIST);
    r4k.size = 3000;
    assert_int_equal(umdev_pci_bar_add(f->pci, 5, UMDEV_PCI_BAR_MEM32, false,
                                       3000, &r4k),
                     -EINVAL);
    r4k.size = 4096;
    assert_int_equal(umdev_pci_bar_add(f->pci, 5, UMDEV_PCI_BAR_MEM64, false,
                                       4096, &r4k),
                     -EINVAL);
    r4k.size = 512;
    assert_int_equal(umdev_pci_bar_add(f->pci, 5, UMDEV_PCI_BAR_IO, false,
                                       512, &r4k),
                     -EINVAL);

    /* Type bits at power-on. */
    assert_int_equal(cfg_read(f, 0x10, 4), 0x1);
    assert_int_equal(cfg_read(f, 0x14, 4), 0x0);
    assert_int_equal(cfg_read(f, 0x18, 4), 0xc);
    assert_int_equal(cfg_read(f, 0x20, 4), 0x8);

    pair_open(f, &p);
    /* Size probing: write all ones, read the size mask back. */
    for (uint32_t off = 0x10; off <= 0x24; off += 4)
        cfg_write(&p, off, 0xffffffff, 4);
    assert_int_equal(cfg_read_wire(&p, 0x10, 4), 0xfffffff9);
    assert_int_equal(cfg_read_wire(&p, 0x14, 4), 0xfffff000);
    assert_int_equal(cfg_read_wire(&p, 0x18, 4), 0xffff000c);
    assert_int_equal(cfg_read_wire(&p, 0x1c, 4), 0xffffffff);
    assert_int_equal(cfg_read_wire(&p, 0x20, 4), 0xfff00008);
    assert_int_equal(cfg_read_wire(&p, 0x24, 4), 0);
    /* An address is kept within the mask; low type bits stay. */
    cfg_write(&p, 0x14, 0xfebf1234, 4);
    assert_int_equal(cfg_read_wire(&p, 0x14, 4), 0xfebf1000);
    cfg_write(&p, 0x10, 0xc047, 4);
    assert_int_equal(cfg_read_wire(&p, 0x10, 4), 0xc041);
    /* ROM BAR absent: reads 0 even after all-ones. */
    cfg_write(&p, 0x30, 0xffffffff, 4);
    assert_int_equal(cfg_read_wire(&p, 0x30, 4), 0);
    pair_close(&p);

    /* Reset restores power-on BAR values. */
    umdev_pci_reset(f->pci);
    assert_int_equal(cfg_read(f, 0x14, 4), 0x0);
}

/* Walk the chain like a guest would; return the number of capabilities
 * and their IDs. */
static int
walk_caps(struct fixture *f, uint8_t *ids, int max)
{
    uint32_t off = cfg_read(f, 0x34, 1);
    int n = 0;

    while (off != 0 && n < max) {
        assert_true(off >= 0x40 && off < 256 && off % 4 == 0);
        ids[n++] = (uint8_t)cfg_read(f, off, 1);
        off = cfg_read(f, off + 1, 1);
    }
    assert_int_equal(off, 0);
    return n;
}

static void
test_capability_chain(void **state)
{
    struct fixture *f = *state;
    struct umdev_region_desc r = trapped(f, 4096);
    const uint8_t vdata[4] = { 0xde, 0xad, 0xbe, 0xef };
    uint8_t ids[16];
    int pm, msi, msix, exp, vnd;

    assert_int_equal(umdev_pci_bar_add(f->pci, 0, UMDEV_PCI_BAR_MEM32, false,
                                       4096, &r),
                     0);
    pm = umdev_pci_cap_add_pm(f->pci);
    msi = umdev_pci_cap_add_msi(f->pci, 4, true, true);
    msix = umdev_pci_cap_add_msix(f->pci, 8, 0, 0x800, 0, 0xc00);
    exp = umdev_pci_cap_add_pcie(f->pci);
    vnd = umdev_pci_cap_add_vendor(f->pci, vdata, sizeof(vdata));
    assert_int_equal(pm, 0x40);
    assert_true(msi > pm && msix > msi && exp > msix && vnd > exp);
    assert_int_equal(umdev_pci_cap_add_pm(f->pci), -EEXIST);
    assert_int_equal(umdev_pci_cap_add_msi(f->pci, 3, false, false),
                     -EINVAL);
    assert_int_equal(walk_caps(f, ids, 16), 5);
    assert_int_equal(ids[0], 0x01);
    assert_int_equal(ids[1], 0x05);
    assert_int_equal(ids[2], 0x11);
    assert_int_equal(ids[3], 0x10);
    assert_int_equal(ids[4], 0x09);
    assert_int_equal(cfg_read(f, 0x06, 2) & 0x10, 0x10);
    /* MSI: 4 vectors (MMC=2), 64-bit, maskable. */
    assert_int_equal(cfg_read(f, msi + 2, 2), (2 << 1) | 0x80 | 0x100);
    /* MSI-X: table size N-1, BIR and offsets. */
    assert_int_equal(cfg_read(f, msix + 2, 2), 7);
    assert_int_equal(cfg_read(f, msix + 4, 4), 0x800);
    assert_int_equal(cfg_read(f, msix + 8, 4), 0xc00);
    /* Vendor cap: length byte and payload. */
    assert_int_equal(cfg_read(f, vnd + 2, 1), 7);
    assert_int_equal(cfg_read(f, vnd + 3, 4), 0xefbeadde);
    /* PCIe: version 2 endpoint, x1 link. */
    assert_int_equal(cfg_read(f, exp + 2, 2), 2);
    assert_int_equal(cfg_read(f, exp + 18, 2), 0x11);
}

static void
test_msix_mask_and_pending(void **state)
{
    struct fixture *f = *state;
    struct umdev_region_desc r = trapped(f, 4096);
    struct umdev_dev_stats st;
    struct wire_pair p;
    uint32_t v;
    int msix;

    assert_int_equal(umdev_pci_bar_add(f->pci, 0, UMDEV_PCI_BAR_MEM32, false,
                                       4096, &r),
                     0);
    msix = umdev_pci_cap_add_msix(f->pci, 4, 0, 0x800, 0, 0xc00);
    assert_true(msix > 0);
    assert_int_equal(umdev_pci_irq_mode(f->pci), UMDEV_PCI_IRQ_INTX);
    assert_int_equal(umdev_pci_irq_raise(f->pci, 0), -ENODEV);

    pair_open(f, &p);
    /* Enable MSI-X with the function masked. */
    cfg_write(&p, msix + 2, 0xc000, 2);
    assert_int_equal(umdev_pci_irq_mode(f->pci), UMDEV_PCI_IRQ_MSIX);
    assert_int_equal(umdev_pci_irq_raise(f->pci, 2), -EAGAIN);
    assert_int_equal(umdev_client_region_read(p.c, 0, 0xc00, &v, 4), 0);
    assert_int_equal(v, 1u << 2);
    /* Vector controls reset masked; the table is served by lib/pci, not
     * the device's BAR callback. */
    assert_int_equal(umdev_client_region_read(p.c, 0, 0x800 + 2 * 16 + 12,
                                              &v, 4),
                     0);
    assert_int_equal(v, 1);
    assert_int_equal(f->bar0[0x800 + 2 * 16 + 12], 0);
    /* Clearing the function mask with vector 2 still masked (the table
     * has been written through, so its mask bits count): still pending. */
    v = 0x1234;
    assert_int_equal(umdev_client_region_write(p.c, 0, 0x800 + 2 * 16 + 8,
                                               &v, 4),
                     0);
    cfg_write(&p, msix + 2, 0x8000, 2);
    assert_int_equal(umdev_client_region_read(p.c, 0, 0xc00, &v, 4), 0);
    assert_int_equal(v, 1u << 2);
    umdev_dev_get_stats(f->dev, &st);
    assert_int_equal(st.irqs_dropped, 0);
    /* Unmasking the vector delivers the pending interrupt (to the device
     * IRQ index: no eventfd here, so it is counted as dropped) and clears
     * the pending bit. */
    v = 0;
    assert_int_equal(umdev_client_region_write(p.c, 0, 0x800 + 2 * 16 + 12,
                                               &v, 4),
                     0);
    assert_int_equal(umdev_client_region_read(p.c, 0, 0xc00, &v, 4), 0);
    assert_int_equal(v, 0);
    umdev_dev_get_stats(f->dev, &st);
    assert_int_equal(st.irqs_dropped, 1);
    /* PBA is read-only; table accesses must be 4/8 bytes aligned. */
    v = 0xffffffff;
    assert_int_equal(umdev_client_region_write(p.c, 0, 0xc00, &v, 4), 0);
    assert_int_equal(umdev_client_region_read(p.c, 0, 0xc00, &v, 4), 0);
    assert_int_equal(v, 0);
    assert_int_equal(umdev_client_region_read(p.c, 0, 0x801, &v, 2),
                     -EINVAL);
    /* Vector out of range. */
    assert_int_equal(umdev_pci_irq_raise(f->pci, 4), -EINVAL);
    pair_close(&p);
}

static void
test_msix_vmm_emulated_table(void **state)
{
    struct fixture *f = *state;
    struct umdev_region_desc r = trapped(f, 4096);
    struct umdev_dev_stats st;
    struct wire_pair p;
    int msix;

    assert_int_equal(umdev_pci_bar_add(f->pci, 0, UMDEV_PCI_BAR_MEM32, false,
                                       4096, &r),
                     0);
    msix = umdev_pci_cap_add_msix(f->pci, 4, 0, 0x800, 0, 0xc00);
    pair_open(f, &p);
    /* A VMM that keeps the table itself only enables MSI-X in config:
     * vectors are delivered (masking is the VMM's), function mask still
     * counts. */
    cfg_write(&p, msix + 2, 0x8000, 2);
    assert_int_equal(umdev_pci_irq_raise(f->pci, 1), -ENOENT);
    umdev_dev_get_stats(f->dev, &st);
    assert_int_equal(st.irqs_dropped, 1);
    cfg_write(&p, msix + 2, 0xc000, 2);
    assert_int_equal(umdev_pci_irq_raise(f->pci, 1), -EAGAIN);
    pair_close(&p);
}

static void
test_msi_mask_and_pending(void **state)
{
    struct fixture *f = *state;
    struct umdev_dev_stats st;
    struct wire_pair p;
    int msi;

    msi = umdev_pci_cap_add_msi(f->pci, 4, true, true);
    assert_true(msi > 0);
    pair_open(f, &p);
    /* Enable with 2 of 4 vectors (MME=1). */
    cfg_write(&p, msi + 2, 0x0001 | (1 << 4), 2);
    assert_int_equal(umdev_pci_irq_mode(f->pci), UMDEV_PCI_IRQ_MSI);
    assert_int_equal(umdev_pci_irq_raise(f->pci, 2), -EINVAL);
    /* Mask vector 1 (mask register at +16 for 64-bit). */
    cfg_write(&p, msi + 16, 0x2, 4);
    assert_int_equal(cfg_read_wire(&p, msi + 16, 4), 0x2);
    cfg_write(&p, msi + 16, 0xffffffff, 4);
    assert_int_equal(cfg_read_wire(&p, msi + 16, 4), 0xf);
    cfg_write(&p, msi + 16, 0x2, 4);
    assert_int_equal(umdev_pci_irq_raise(f->pci, 1), -EAGAIN);
    assert_int_equal(cfg_read_wire(&p, msi + 20, 4), 0x2);
    /* Pending is read-only to the guest. */
    cfg_write(&p, msi + 20, 0, 4);
    assert_int_equal(cfg_read_wire(&p, msi + 20, 4), 0x2);
    umdev_dev_get_stats(f->dev, &st);
    assert_int_equal(st.irqs_dropped, 0);
    cfg_write(&p, msi + 16, 0, 4);
    assert_int_equal(cfg_read_wire(&p, msi + 20, 4), 0);
    umdev_dev_get_stats(f->dev, &st);
    assert_int_equal(st.irqs_dropped, 1);
    /* Address low bits 0-1 are reserved. */
    cfg_write(&p, msi + 4, 0xfee00003, 4);
    assert_int_equal(cfg_read_wire(&p, msi + 4, 4), 0xfee00000);
    pair_close(&p);
}

static void
test_intx_status_and_disable(void **state)
{
    struct fixture *f = *state;
    struct wire_pair p;
    uint64_t n;
    int efd;

    pair_open(f, &p);
    /* Asserted before the client listens: held, not masked, not lost. */
    umdev_pci_intx_set(f->pci, true);
    assert_int_equal(cfg_read_wire(&p, 0x06, 2) & 0x8, 0x8);
    assert_false(umdev_dev_irq_masked(f->dev, UMDEV_PCI_INTX_IRQ, 0));
    efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert_true(efd >= 0);
    /* Installing the eventfd delivers the high line, which automasks. */
    assert_int_equal(umdev_client_set_irqs(p.c, UMDEV_PCI_INTX_IRQ,
                                           VFIO_IRQ_SET_DATA_EVENTFD |
                                               VFIO_IRQ_SET_ACTION_TRIGGER,
                                           0, 1, &efd, NULL),
                     0);
    assert_int_equal(read(efd, &n, sizeof(n)), sizeof(n));
    assert_int_equal(n, 1);
    assert_true(umdev_dev_irq_masked(f->dev, UMDEV_PCI_INTX_IRQ, 0));
    umdev_pci_intx_set(f->pci, false);
    assert_int_equal(cfg_read_wire(&p, 0x06, 2) & 0x8, 0);
    /* Guest EOI: unmask. Then disable INTx in Command: a raised line shows
     * in Status but is not delivered (vector stays unmasked). */
    assert_int_equal(umdev_client_set_irqs(p.c, UMDEV_PCI_INTX_IRQ,
                                           (1 << 0) | (1 << 4), 0, 1, NULL,
                                           NULL),
                     0);
    cfg_write(&p, 0x04, 0x0400, 2);
    umdev_pci_intx_set(f->pci, true);
    assert_int_equal(cfg_read_wire(&p, 0x06, 2) & 0x8, 0x8);
    assert_false(umdev_dev_irq_masked(f->dev, UMDEV_PCI_INTX_IRQ, 0));
    /* Re-enabling delivers the held interrupt. */
    cfg_write(&p, 0x04, 0x0000, 2);
    assert_true(umdev_dev_irq_masked(f->dev, UMDEV_PCI_INTX_IRQ, 0));
    assert_int_equal(read(efd, &n, sizeof(n)), sizeof(n));
    assert_int_equal(n, 1);
    pair_close(&p);
    close(efd);
}

static void
test_bad_ids_refused(void **state)
{
    struct umdev_dev_info info = { .name = "bad", .pci = true };
    struct umdev_pci_id id = { .vendor_id = 0xffff, .device_id = 1 };
    struct umdev_dev *dev;
    struct umdev_pci *pci;

    (void)state;
    assert_int_equal(umdev_dev_create(&info, &dev), 0);
    assert_int_equal(umdev_pci_create(dev, &id, &pci), -EINVAL);
    id.vendor_id = 0x1234;
    id.interrupt_pin = 5;
    assert_int_equal(umdev_pci_create(dev, &id, &pci), -EINVAL);
    id.interrupt_pin = 0;
    id.class_code = 0x1000000;
    assert_int_equal(umdev_pci_create(dev, &id, &pci), -EINVAL);
    umdev_dev_destroy(dev);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_header_identity, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_write_masks_and_rw1c, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bar_sizing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capability_chain, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_msix_mask_and_pending, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_msix_vmm_emulated_table, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_msi_mask_and_pending, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_intx_status_and_disable, setup,
                                        teardown),
        cmocka_unit_test(test_bad_ids_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
