/*
 * The guest of the accel functional tests (test_func_accel_*.c): guest
 * RAM on a memfd, DMA-mapped with its fd at GB (so the engine reaches it
 * only through lib/dev's DMA table), and a driver for the subdevice's
 * queues doing what a guest kernel driver does (rings through the accel
 * ring ABI's driver helpers, completion records, doorbells, MSI-X or
 * INTx), the umdev client acting as the VMM. Also the fixture those tests
 * share: one engine and two subdevices (2 and 4 queues) served on a
 * thread.
 *
 * Every helper fails the running cmocka test on a surprise, except
 * publish_tail(), which other threads use; every wait is bounded by
 * HARNESS_TIMEOUT_MS. One thread drives a guest's rings at a time.
 */
#ifndef UMDEV_FUNC_ACCEL_GUEST_H
#define UMDEV_FUNC_ACCEL_GUEST_H

#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <stdbool.h>
#include <stdint.h>

#include "accel.h"
#include "harness.h"

#define BAR0 UMDEV_PCI_BAR0_REGION
#define BAR2 UMDEV_PCI_BAR2_REGION
#define CONFIG UMDEV_PCI_CONFIG_REGION
#define DMA_RW (VFIO_USER_DMA_MAP_FLAG_READ | VFIO_USER_DMA_MAP_FLAG_WRITE)
#define MB (1024u * 1024u)

/* Guest RAM: one memfd at GB; rings, completions, then data. */
#define GB 0x100000000ull
#define GSIZE (16 * MB)
#define RING(q) (GB + (uint64_t)(q)*0x10000)
#define COMPS(q) (GB + 0x80000 + (uint64_t)(q)*0x10000)
#define COMPS_PER_Q (0x10000 / ACCEL_COMP_SIZE)
#define DATA (GB + 1 * MB)
#define DATA_END (GB + GSIZE)

/* ---- the fixture: one engine (8 queues), two subdevices */

#define AF_NDEV 2
/* Queues of subdevice i. */
extern const unsigned int af_queues[AF_NDEV];

struct accel_fixture {
    struct kit_serve serve; /* devs[i].path: subdevice i's socket */
    struct accel_engine *e;
    struct accel_dev *d[AF_NDEV]; /* borrowed: the server thread's */
    struct kit_log log;
};
extern struct accel_fixture AF;

/* cmocka setup and teardown: the fixture up, then down with every engine
 * queue back. AF_TEST(test_x) names a test with both. */
int af_setup(void **state);
int af_teardown(void **state);
#define AF_TEST(f) cmocka_unit_test_setup_teardown(f, af_setup, af_teardown)

/* ---- the guest */

struct gqueue {
    uint64_t ring; /* its guest address */
    /* Records are placed by gq_post(), not one per slot: tests look at
     * older descriptors' records after the ring wrapped. */
    struct accel_ring_drv r;
};

struct guest {
    unsigned int dev; /* for messages */
    struct umdev_client *c;
    uint8_t *mem;
    int fd;
    unsigned int nq, nvec;
    int efd[ACCEL_DEV_MAX_QUEUES + 1]; /* MSI-X vector i's, or -1 */
    struct gqueue q[ACCEL_DEV_MAX_QUEUES];
};

/*
 * guest_connect() - connect to the subdevice at @path (@nq queues), map
 * guest RAM, enable memory and bus master, MSI-X with an eventfd per
 * vector (unless @intx: the test sets INTx up itself), and the device.
 * guest_open() does it for subdevice @dev of the fixture.
 */
void guest_connect(struct guest *g, const char *path, unsigned int nq,
                   bool intx);
void guest_open(struct guest *g, unsigned int dev, bool intx);
/* What guest_connect() does after a reset too: memory and bus master on,
 * the device enabled. */
void guest_enable_device(struct guest *g);
/* Disconnect, unmap and free guest RAM, close the eventfds. */
void guest_close(struct guest *g);
/* The harness's view of guest address @iova (inside guest RAM). */
void *gp(struct guest *g, uint64_t iova);

/* Queue @q's register at @off: read, or write @n bytes of @v. */
uint32_t qreg(struct guest *g, unsigned int q, unsigned int off);
void qwr(struct guest *g, unsigned int q, unsigned int off, uint64_t v,
         size_t n);
/* A 32-bit word of queue @q's ring, as the engine left it. */
uint32_t rword(struct guest *g, unsigned int q, uint64_t off);

/* Program queue @q (ring at @ring of @size, priority @prio) and enable
 * it; a ring outside guest RAM is never touched. Return: its STATUS. */
uint32_t gq_try_enable(struct guest *g, unsigned int q, uint64_t ring,
                       uint32_t size, uint32_t prio);
/* The same at RING(q), priority 1; it must come up enabled, asking for a
 * doorbell. */
void gq_enable(struct guest *g, unsigned int q, uint32_t size);

/* Completion record of queue @q's descriptor @idx (slots wrap around
 * COMPS(q)): its address, the record, its status. */
uint64_t comp_iova(unsigned int q, uint32_t idx);
struct accel_comp *comp_of(struct guest *g, unsigned int q, uint32_t idx);
uint8_t comp_status(struct guest *g, unsigned int q, uint32_t idx);

/* Put @d in queue @q's ring (waiting for room); with ACCEL_DF_COMP and
 * .comp 0 the queue's record slot is used and zeroed. With @kick, publish
 * it. Return: its ring index. */
uint32_t gq_post(struct guest *g, unsigned int q, struct accel_desc d,
                 bool kick);
/* gq_post() and publish. */
uint32_t gq_submit(struct guest *g, unsigned int q, struct accel_desc d);
/* Publish TAIL and ring the doorbell if the device asks for it. */
void gq_kick(struct guest *g, unsigned int q);
/* The same without assertions, for threads. Return: the doorbell write's
 * result, 0 when none was needed. */
int publish_tail(struct guest *g, unsigned int q);
/* Write queue @q's doorbell whatever the ring says. */
void doorbell(struct guest *g, unsigned int q);
/* Wait for descriptor @idx's record. Return: its status. */
uint8_t gq_wait(struct guest *g, unsigned int q, uint32_t idx);
/* The same with its own bound, for work known to take long. */
uint8_t gq_wait_ms(struct guest *g, unsigned int q, uint32_t idx,
                   int timeout_ms);
/* Wait until the engine's HEAD reached everything posted. */
void gq_wait_head(struct guest *g, unsigned int q);

/* Eventfd counts accumulated until @want or @timeout_ms. */
uint64_t efd_collect(int efd, uint64_t want, int timeout_ms);

#endif /* UMDEV_FUNC_ACCEL_GUEST_H */
