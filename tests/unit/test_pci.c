/* Unit tests for lib/pci: write masks, RW1C, BAR sizing, capabilities,
 * MSI/MSI-X masking and pending bits, INTx gating. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pci_fixture.h"
#include "umdev/client.h"
#include "umdev/pci.h"
#include "umdev/dev_testing.h"

/* The device's own BAR (BAR0 of 4 KiB in most tests) holds the MSI-X
 * table and PBA at these offsets. */
#define MSIX_TABLE 0x800
#define MSIX_PBA 0xc00
/* Byte @field of MSI-X table entry @v. */
#define MSIX_ENTRY(v, field) (MSIX_TABLE + (v)*PCI_MSIX_ENTRY_SIZE + (field))

static int
setup(void **state)
{
    static struct pci_fixture f;
    const struct umdev_pci_id id = {
        .vendor_id = 0x1234,
        .device_id = 0x5678,
        .subsystem_vendor_id = 0x1af4,
        .subsystem_id = 0x1100,
        .revision = 3,
        .class_code = 0x070002,
        .interrupt_pin = 1,
    };

    pci_fixture_init(&f, "pcitest", &id);
    *state = &f;
    return 0;
}

/* Config reads straight from lib/pci, as the server's config region
 * callback makes them. */
static uint32_t
cfg_read(struct pci_fixture *f, uint32_t off, size_t len)
{
    uint32_t v = 0;

    assert_int_equal(umdev_pci_config_read(f->pci, off, &v, len), 0);
    return v;
}

/* Guest accesses go over the wire, REGION_READ/WRITE from a client on a
 * socketpair whose other end a thread serves: the path a VMM's take, reply
 * included, and the only one that carries SET_IRQS. */
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
pair_open(struct pci_fixture *f, struct wire_pair *p)
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

/* Write @v (@len bytes) at config @off; return what then reads back. */
static uint32_t
cfg_write_read(struct wire_pair *p, uint32_t off, uint32_t v, size_t len)
{
    cfg_write(p, off, v, len);
    return cfg_read_wire(p, off, len);
}

/* Add BAR0, 4 KiB trapped: where the MSI-X tests put table and PBA. */
static void
add_bar0(struct pci_fixture *f)
{
    struct umdev_region_desc r = pci_fixture_trapped(f, 4096);

    assert_int_equal(
        umdev_pci_bar_add(f->pci, 0, UMDEV_PCI_BAR_MEM32, false, 4096, &r), 0);
}

static void
test_header_identity(void **state)
{
    struct pci_fixture *f = *state;

    assert_int_equal(cfg_read(f, PCI_VENDOR_ID, 2), 0x1234);
    assert_int_equal(cfg_read(f, PCI_DEVICE_ID, 2), 0x5678);
    assert_int_equal(cfg_read(f, PCI_REVISION_ID, 1), 3);
    assert_int_equal(cfg_read(f, PCI_CLASS_PROG, 1), 0x02);
    assert_int_equal(cfg_read(f, PCI_CLASS_DEVICE, 2), 0x0700);
    assert_int_equal(cfg_read(f, PCI_SUBSYSTEM_VENDOR_ID, 2), 0x1af4);
    assert_int_equal(cfg_read(f, PCI_SUBSYSTEM_ID, 2), 0x1100);
    assert_int_equal(cfg_read(f, PCI_INTERRUPT_PIN, 1), 1);
    assert_int_equal(cfg_read(f, PCI_HEADER_TYPE, 1), PCI_HEADER_TYPE_NORMAL);
    /* No capabilities: no list, no pointer, nothing to find. */
    assert_int_equal(cfg_read(f, PCI_CAPABILITY_LIST, 1), 0);
    assert_int_equal(cfg_read(f, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST, 0);
    assert_int_equal(umdev_pci_cap_find(f->pci, 0, 0), 0);
}

static void
test_write_masks_and_rw1c(void **state)
{
    struct pci_fixture *f = *state;
    struct wire_pair p;

    pair_open(f, &p);
    /* Read-only identity ignores writes. */
    assert_int_equal(cfg_write_read(&p, PCI_VENDOR_ID, 0xffffffff, 4),
                     0x56781234);
    /* Command: only the defined bits stick. */
    assert_int_equal(cfg_write_read(&p, PCI_COMMAND, 0xffff, 2),
                     PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
                         PCI_COMMAND_PARITY | PCI_COMMAND_SERR |
                         PCI_COMMAND_INTX_DISABLE);
    assert_int_equal(cfg_write_read(&p, PCI_COMMAND, 0x0000, 2), 0);
    /* Interrupt line is RW, pin is RO. */
    cfg_write(&p, PCI_INTERRUPT_LINE, 0xffff, 2);
    assert_int_equal(cfg_read_wire(&p, PCI_INTERRUPT_LINE, 1), 0xff);
    assert_int_equal(cfg_read_wire(&p, PCI_INTERRUPT_PIN, 1), 1);
    /* Status error bits are RW1C: writing 1 to a clear bit keeps it 0,
     * and a write never sets them. */
    assert_int_equal(
        cfg_write_read(&p, PCI_STATUS, 0xffff, 2) &
            (PCI_STATUS_PARITY | PCI_STATUS_SIG_TARGET_ABORT |
             PCI_STATUS_REC_TARGET_ABORT | PCI_STATUS_REC_MASTER_ABORT |
             PCI_STATUS_SIG_SYSTEM_ERROR | PCI_STATUS_DETECTED_PARITY),
        0);
    /* Byte-wide and unaligned writes touch only their bytes. */
    assert_int_equal(cfg_write_read(&p, PCI_CACHE_LINE_SIZE, 0x40, 1), 0x40);
    assert_int_equal(cfg_read_wire(&p, PCI_CACHE_LINE_SIZE + 1, 1), 0);
    pair_close(&p);
}

static void
test_bar_sizing(void **state)
{
    struct pci_fixture *f = *state;
    struct umdev_region_desc r8 = pci_fixture_trapped(f, 8);
    struct umdev_region_desc r4k = pci_fixture_trapped(f, 4096);
    struct umdev_region_desc r64k = {
        .size = 65536,
        .flags = UMDEV_REGION_F_READ | UMDEV_REGION_F_WRITE,
        .shm = true,
    };
    struct umdev_region_desc r1m = pci_fixture_trapped(f, 1 << 20);
    struct wire_pair p;

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
    assert_int_equal(cfg_read(f, PCI_BASE_ADDRESS_0, 4),
                     PCI_BASE_ADDRESS_SPACE_IO);
    assert_int_equal(cfg_read(f, PCI_BASE_ADDRESS_1, 4),
                     PCI_BASE_ADDRESS_MEM_TYPE_32);
    assert_int_equal(cfg_read(f, PCI_BASE_ADDRESS_2, 4),
                     PCI_BASE_ADDRESS_MEM_TYPE_64 |
                         PCI_BASE_ADDRESS_MEM_PREFETCH);
    assert_int_equal(cfg_read(f, PCI_BASE_ADDRESS_4, 4),
                     PCI_BASE_ADDRESS_MEM_PREFETCH);

    pair_open(f, &p);
    /* Size probing: write all ones, read the size mask back. */
    for (uint32_t off = PCI_BASE_ADDRESS_0; off <= PCI_BASE_ADDRESS_5; off += 4)
        cfg_write(&p, off, 0xffffffff, 4);
    assert_int_equal(cfg_read_wire(&p, PCI_BASE_ADDRESS_0, 4), 0xfffffff9);
    assert_int_equal(cfg_read_wire(&p, PCI_BASE_ADDRESS_1, 4), 0xfffff000);
    assert_int_equal(cfg_read_wire(&p, PCI_BASE_ADDRESS_2, 4), 0xffff000c);
    assert_int_equal(cfg_read_wire(&p, PCI_BASE_ADDRESS_3, 4), 0xffffffff);
    assert_int_equal(cfg_read_wire(&p, PCI_BASE_ADDRESS_4, 4), 0xfff00008);
    assert_int_equal(cfg_read_wire(&p, PCI_BASE_ADDRESS_5, 4), 0);
    /* An address is kept within the mask; low type bits stay. */
    assert_int_equal(cfg_write_read(&p, PCI_BASE_ADDRESS_1, 0xfebf1234, 4),
                     0xfebf1000);
    assert_int_equal(cfg_write_read(&p, PCI_BASE_ADDRESS_0, 0xc047, 4), 0xc041);
    /* ROM BAR absent: reads 0 even after all-ones. */
    assert_int_equal(cfg_write_read(&p, PCI_ROM_ADDRESS, 0xffffffff, 4), 0);
    pair_close(&p);

    /* Reset restores power-on BAR values. */
    umdev_pci_reset(f->pci);
    assert_int_equal(cfg_read(f, PCI_BASE_ADDRESS_1, 4), 0x0);
}

/*
 * Walk the chain with umdev_pci_cap_find() and check each link as a guest
 * would see it in config space: the pointer register leads to the first,
 * every offset is dword-aligned past the header, its ID byte is what
 * find() matched and its next byte leads to the one find() returns next.
 * Return: the number of capabilities; their IDs in @ids.
 */
static int
walk_caps(struct pci_fixture *f, uint8_t *ids, int max)
{
    unsigned int link = PCI_CAPABILITY_LIST;
    int at, n = 0;

    for (at = umdev_pci_cap_find(f->pci, 0, 0); at > 0 && n < max;
         at = umdev_pci_cap_find(f->pci, 0, (unsigned int)at)) {
        assert_true(at >= 0x40 && at < 256 && at % 4 == 0);
        assert_int_equal(cfg_read(f, link, 1), at);
        ids[n] = (uint8_t)cfg_read(f, (uint32_t)at + PCI_CAP_LIST_ID, 1);
        assert_int_equal(umdev_pci_cap_find(f->pci, ids[n], 0), at);
        link = (unsigned int)at + PCI_CAP_LIST_NEXT;
        n++;
    }
    assert_int_equal(at, 0);
    assert_int_equal(cfg_read(f, link, 1), 0);
    return n;
}

static void
test_capability_chain(void **state)
{
    struct pci_fixture *f = *state;
    const uint8_t vdata[4] = { 0xde, 0xad, 0xbe, 0xef };
    uint8_t ids[16];
    int pm, msi, msix, exp, vnd;

    add_bar0(f);
    pm = umdev_pci_cap_add_pm(f->pci);
    msi = umdev_pci_cap_add_msi(f->pci, 4, true, true);
    msix = umdev_pci_cap_add_msix(f->pci, 8, 0, MSIX_TABLE, 0, MSIX_PBA);
    exp = umdev_pci_cap_add_pcie(f->pci);
    vnd = umdev_pci_cap_add_vendor(f->pci, vdata, sizeof(vdata));
    assert_int_equal(pm, 0x40);
    assert_true(msi > pm && msix > msi && exp > msix && vnd > exp);
    assert_int_equal(umdev_pci_cap_add_pm(f->pci), -EEXIST);
    assert_int_equal(umdev_pci_cap_add_msi(f->pci, 3, false, false),
                     -EINVAL);
    assert_int_equal(walk_caps(f, ids, 16), 5);
    assert_int_equal(ids[0], PCI_CAP_ID_PM);
    assert_int_equal(ids[1], PCI_CAP_ID_MSI);
    assert_int_equal(ids[2], PCI_CAP_ID_MSIX);
    assert_int_equal(ids[3], PCI_CAP_ID_EXP);
    assert_int_equal(ids[4], PCI_CAP_ID_VNDR);
    /* Each found where its builder put it; an absent ID is not found. */
    assert_int_equal(umdev_pci_cap_find(f->pci, PCI_CAP_ID_MSI, 0), msi);
    assert_int_equal(umdev_pci_cap_find(f->pci, PCI_CAP_ID_MSIX, pm), msix);
    assert_int_equal(umdev_pci_cap_find(f->pci, PCI_CAP_ID_VNDR, 0), vnd);
    assert_int_equal(umdev_pci_cap_find(f->pci, PCI_CAP_ID_AGP, 0), 0);
    assert_int_equal(
        umdev_pci_cap_find(f->pci, PCI_CAP_ID_PM, (unsigned int)pm), 0);
    assert_int_equal(cfg_read(f, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST,
                     PCI_STATUS_CAP_LIST);
    /* MSI: 4 vectors (MMC=2), 64-bit, maskable. */
    assert_int_equal(cfg_read(f, msi + PCI_MSI_FLAGS, 2),
                     (2 << 1) | PCI_MSI_FLAGS_64BIT | PCI_MSI_FLAGS_MASKBIT);
    /* MSI-X: table size N-1, BIR and offsets. */
    assert_int_equal(cfg_read(f, msix + PCI_MSIX_FLAGS, 2), 7);
    assert_int_equal(cfg_read(f, msix + PCI_MSIX_TABLE, 4), MSIX_TABLE);
    assert_int_equal(cfg_read(f, msix + PCI_MSIX_PBA, 4), MSIX_PBA);
    /* Vendor cap: length byte and payload. */
    assert_int_equal(cfg_read(f, vnd + PCI_CAP_FLAGS, 1), 7);
    assert_int_equal(cfg_read(f, vnd + 3, 4), 0xefbeadde);
    /* PCIe: version 2 endpoint, x1 link at 2.5 GT/s. */
    assert_int_equal(cfg_read(f, exp + PCI_EXP_FLAGS, 2), 2);
    assert_int_equal(cfg_read(f, exp + PCI_EXP_LNKSTA, 2),
                     PCI_EXP_LNKSTA_NLW_X1 | PCI_EXP_LNKSTA_CLS_2_5GB);
}

static void
test_msix_mask_and_pending(void **state)
{
    struct pci_fixture *f = *state;
    struct umdev_dev_stats st;
    struct wire_pair p;
    uint32_t v;
    int msix;

    add_bar0(f);
    msix = umdev_pci_cap_add_msix(f->pci, 4, 0, MSIX_TABLE, 0, MSIX_PBA);
    assert_true(msix > 0);
    assert_int_equal(umdev_pci_irq_mode(f->pci), UMDEV_PCI_IRQ_INTX);
    assert_int_equal(umdev_pci_irq_raise(f->pci, 0), -ENODEV);

    pair_open(f, &p);
    /* Enable MSI-X with the function masked. */
    cfg_write(&p, msix + PCI_MSIX_FLAGS,
              PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL, 2);
    assert_int_equal(umdev_pci_irq_mode(f->pci), UMDEV_PCI_IRQ_MSIX);
    assert_int_equal(umdev_pci_irq_raise(f->pci, 2), -EAGAIN);
    assert_int_equal(umdev_client_region_read(p.c, 0, MSIX_PBA, &v, 4), 0);
    assert_int_equal(v, 1u << 2);
    /* Vector controls reset masked; the table is served by lib/pci, not
     * the device's BAR callback. */
    assert_int_equal(
        umdev_client_region_read(
            p.c, 0, MSIX_ENTRY(2, PCI_MSIX_ENTRY_VECTOR_CTRL), &v, 4),
        0);
    assert_int_equal(v, PCI_MSIX_ENTRY_CTRL_MASKBIT);
    assert_int_equal(f->bar0[MSIX_ENTRY(2, PCI_MSIX_ENTRY_VECTOR_CTRL)], 0);
    /* Clearing the function mask with vector 2 still masked (the table
     * has been written through, so its mask bits count): still pending. */
    v = 0x1234;
    assert_int_equal(umdev_client_region_write(
                         p.c, 0, MSIX_ENTRY(2, PCI_MSIX_ENTRY_DATA), &v, 4),
                     0);
    cfg_write(&p, msix + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE, 2);
    assert_int_equal(umdev_client_region_read(p.c, 0, MSIX_PBA, &v, 4), 0);
    assert_int_equal(v, 1u << 2);
    umdev_dev_get_stats(f->dev, &st);
    assert_int_equal(st.irqs_dropped, 0);
    /* Unmasking the vector delivers the pending interrupt (to the device
     * IRQ index: no eventfd here, so it is counted as dropped) and clears
     * the pending bit. */
    v = 0;
    assert_int_equal(
        umdev_client_region_write(
            p.c, 0, MSIX_ENTRY(2, PCI_MSIX_ENTRY_VECTOR_CTRL), &v, 4),
        0);
    assert_int_equal(umdev_client_region_read(p.c, 0, MSIX_PBA, &v, 4), 0);
    assert_int_equal(v, 0);
    umdev_dev_get_stats(f->dev, &st);
    assert_int_equal(st.irqs_dropped, 1);
    /* PBA is read-only; table accesses must be 4/8 bytes aligned. */
    v = 0xffffffff;
    assert_int_equal(umdev_client_region_write(p.c, 0, MSIX_PBA, &v, 4), 0);
    assert_int_equal(umdev_client_region_read(p.c, 0, MSIX_PBA, &v, 4), 0);
    assert_int_equal(v, 0);
    assert_int_equal(umdev_client_region_read(p.c, 0, MSIX_TABLE + 1, &v, 2),
                     -EINVAL);
    /* Vector out of range. */
    assert_int_equal(umdev_pci_irq_raise(f->pci, 4), -EINVAL);
    pair_close(&p);
}

static void
test_msix_vmm_emulated_table(void **state)
{
    struct pci_fixture *f = *state;
    struct umdev_dev_stats st;
    struct wire_pair p;
    int msix;

    add_bar0(f);
    msix = umdev_pci_cap_add_msix(f->pci, 4, 0, MSIX_TABLE, 0, MSIX_PBA);
    pair_open(f, &p);
    /* A VMM that keeps the table itself only enables MSI-X in config:
     * vectors are delivered (masking is the VMM's), function mask still
     * counts. */
    cfg_write(&p, msix + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE, 2);
    assert_int_equal(umdev_pci_irq_raise(f->pci, 1), -ENOENT);
    umdev_dev_get_stats(f->dev, &st);
    assert_int_equal(st.irqs_dropped, 1);
    cfg_write(&p, msix + PCI_MSIX_FLAGS,
              PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL, 2);
    assert_int_equal(umdev_pci_irq_raise(f->pci, 1), -EAGAIN);
    pair_close(&p);
}

static void
test_msi_mask_and_pending(void **state)
{
    struct pci_fixture *f = *state;
    struct umdev_dev_stats st;
    struct wire_pair p;
    unsigned int mask, pending;
    int msi;

    msi = umdev_pci_cap_add_msi(f->pci, 4, true, true);
    assert_true(msi > 0);
    mask = (unsigned int)msi + PCI_MSI_MASK_64;
    pending = (unsigned int)msi + PCI_MSI_PENDING_64;
    pair_open(f, &p);
    /* Enable with 2 of 4 vectors (MME=1). */
    cfg_write(&p, msi + PCI_MSI_FLAGS, PCI_MSI_FLAGS_ENABLE | (1 << 4), 2);
    assert_int_equal(umdev_pci_irq_mode(f->pci), UMDEV_PCI_IRQ_MSI);
    assert_int_equal(umdev_pci_irq_raise(f->pci, 2), -EINVAL);
    /* Mask vector 1; only the 4 implemented bits stick. */
    assert_int_equal(cfg_write_read(&p, mask, 0x2, 4), 0x2);
    assert_int_equal(cfg_write_read(&p, mask, 0xffffffff, 4), 0xf);
    cfg_write(&p, mask, 0x2, 4);
    assert_int_equal(umdev_pci_irq_raise(f->pci, 1), -EAGAIN);
    assert_int_equal(cfg_read_wire(&p, pending, 4), 0x2);
    /* Pending is read-only to the guest. */
    assert_int_equal(cfg_write_read(&p, pending, 0, 4), 0x2);
    umdev_dev_get_stats(f->dev, &st);
    assert_int_equal(st.irqs_dropped, 0);
    cfg_write(&p, mask, 0, 4);
    assert_int_equal(cfg_read_wire(&p, pending, 4), 0);
    umdev_dev_get_stats(f->dev, &st);
    assert_int_equal(st.irqs_dropped, 1);
    /* Address low bits 0-1 are reserved. */
    assert_int_equal(
        cfg_write_read(&p, msi + PCI_MSI_ADDRESS_LO, 0xfee00003, 4),
        0xfee00000);
    pair_close(&p);
}

static void
test_intx_status_and_disable(void **state)
{
    struct pci_fixture *f = *state;
    struct wire_pair p;
    uint64_t n;
    int efd;

    pair_open(f, &p);
    /* Asserted before the client listens: held, not masked, not lost. */
    umdev_pci_intx_set(f->pci, true);
    assert_int_equal(cfg_read_wire(&p, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT,
                     PCI_STATUS_INTERRUPT);
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
    assert_int_equal(cfg_read_wire(&p, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT,
                     0);
    /* Guest EOI: unmask. Then disable INTx in Command: a raised line shows
     * in Status but is not delivered (vector stays unmasked). */
    assert_int_equal(umdev_client_set_irqs(p.c, UMDEV_PCI_INTX_IRQ,
                                           VFIO_IRQ_SET_DATA_NONE |
                                               VFIO_IRQ_SET_ACTION_UNMASK,
                                           0, 1, NULL, NULL),
                     0);
    cfg_write(&p, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE, 2);
    umdev_pci_intx_set(f->pci, true);
    assert_int_equal(cfg_read_wire(&p, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT,
                     PCI_STATUS_INTERRUPT);
    assert_false(umdev_dev_irq_masked(f->dev, UMDEV_PCI_INTX_IRQ, 0));
    /* Re-enabling delivers the held interrupt. */
    cfg_write(&p, PCI_COMMAND, 0, 2);
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

/* Config space is 256 bytes until a PCI Express capability makes it 4 KiB
 * (as QEMU's vfio-pci needs to keep the function PCI Express), whose
 * extended part reads zero (no extended capabilities) and ignores
 * writes; the size cannot change under a client. */
static void
test_pcie_extended_space(void **state)
{
    struct pci_fixture *f = *state;
    struct umdev_dev_region_info ri;
    struct umdev_client_region cr;
    struct wire_pair p;

    add_bar0(f);
    assert_int_equal(umdev_pci_config_size(f->pci), UMDEV_PCI_CONFIG_SIZE);
    assert_int_equal(
        umdev_dev_region_info(f->dev, UMDEV_PCI_CONFIG_REGION, &ri), 0);
    assert_int_equal(ri.size, UMDEV_PCI_CONFIG_SIZE);
    assert_true(umdev_pci_cap_add_pcie(f->pci) > 0);
    assert_int_equal(umdev_pci_config_size(f->pci), UMDEV_PCI_CONFIG_SIZE_EXP);
    assert_int_equal(
        umdev_dev_region_info(f->dev, UMDEV_PCI_CONFIG_REGION, &ri), 0);
    assert_int_equal(ri.size, UMDEV_PCI_CONFIG_SIZE_EXP);
    /* An absent region (BAR1) has no size to change. */
    assert_int_equal(umdev_dev_region_resize(f->dev, 1, 4096), -EINVAL);
    assert_int_equal(
        umdev_dev_region_resize(f->dev, UMDEV_PCI_CONFIG_REGION, 0), -EINVAL);

    pair_open(f, &p);
    assert_int_equal(
        umdev_client_region_info(p.c, UMDEV_PCI_CONFIG_REGION, &cr), 0);
    assert_int_equal(cr.size, UMDEV_PCI_CONFIG_SIZE_EXP);
    assert_int_equal(cfg_read_wire(&p, 0x100, 4), 0);
    assert_int_equal(cfg_write_read(&p, 0x100, 0xffffffffu, 4), 0);
    assert_int_equal(cfg_write_read(&p, 0xffc, 0x12345678u, 4), 0);
    assert_int_equal(umdev_dev_region_resize(f->dev, UMDEV_PCI_CONFIG_REGION,
                                             UMDEV_PCI_CONFIG_SIZE),
                     -EBUSY);
    pair_close(&p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        PCI_FIXTURE_TEST(test_header_identity, setup),
        PCI_FIXTURE_TEST(test_write_masks_and_rw1c, setup),
        PCI_FIXTURE_TEST(test_bar_sizing, setup),
        PCI_FIXTURE_TEST(test_capability_chain, setup),
        PCI_FIXTURE_TEST(test_pcie_extended_space, setup),
        PCI_FIXTURE_TEST(test_msix_mask_and_pending, setup),
        PCI_FIXTURE_TEST(test_msix_vmm_emulated_table, setup),
        PCI_FIXTURE_TEST(test_msi_mask_and_pending, setup),
        PCI_FIXTURE_TEST(test_intx_status_and_disable, setup),
        cmocka_unit_test(test_bad_ids_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
