/* The functional-test harness: a served test device on a server thread. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <linux/vfio.h>
#include <linux/pci_regs.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"
#include "umdev/dev_testing.h"

/* Name of guest memory memfds, as /proc/self/maps shows them. */
#define GUEST_MEMFD_NAME "umdev-func-guest"

struct harness H;

int
harness_setup(void **state)
{
    (void)state;
    harness_start(&H);
    return 0;
}

int
harness_teardown(void **state)
{
    (void)state;
    harness_stop(&H);
    return 0;
}

static void
destroy_testdev(void *arg)
{
    testdev_destroy(arg);
}

void
harness_start(struct harness *h)
{
    memset(h, 0, sizeof(*h));
    kit_log_init(&h->server_log, "server", "UMDEV_FUNC_LOG");
    kit_log_init(&h->client_log, "client", "UMDEV_FUNC_LOG");
    assert_int_equal(kit_serve_init(&h->serve, "func"), 0);
    assert_int_equal(testdev_create(&h->server_log.logger, &h->td), 0);
    h->dev = testdev_dev(h->td);
    assert_int_equal(
        kit_serve_add(&h->serve, "dev", h->dev, destroy_testdev, h->td), 0);
    h->path = h->serve.devs[0].path;
    assert_int_equal(kit_serve_start(&h->serve), 0);
}

void
harness_stop(struct harness *h)
{
    /* Also removes the socket and the directory: both must be gone. */
    assert_int_equal(kit_serve_stop(&h->serve, HARNESS_TIMEOUT_MS), 0);
    h->td = NULL;
    h->dev = NULL;
    h->path = NULL;
}

struct call {
    void (*fn)(struct umdev_dev *dev, void *arg);
    struct umdev_dev *dev;
    void *arg;
};

static void
run_call(void *arg)
{
    struct call *c = arg;

    c->fn(c->dev, c->arg);
}

void
harness_call(struct harness *h, void (*fn)(struct umdev_dev *dev, void *arg),
             void *arg)
{
    struct call c = { fn, h->dev, arg };

    assert_int_equal(
        kit_serve_call(&h->serve, run_call, &c, HARNESS_TIMEOUT_MS), 0);
}

static void
sample_state(struct umdev_dev *dev, void *arg)
{
    struct harness_state *s = arg;
    uint32_t i;

    s->attached = umdev_dev_attached(dev);
    s->dma_count = umdev_dma_count(dev);
    s->dma_pending = umdev_dma_pending(dev);
    umdev_dev_get_stats(dev, &s->stats);
    for (i = 0; i < UMDEV_PCI_NUM_IRQS; i++)
        s->irq_enabled[i] = umdev_dev_irq_enabled(dev, i, 0);
    s->intx_masked = umdev_dev_irq_masked(dev, UMDEV_PCI_INTX_IRQ, 0);
}

struct harness_state
harness_sample(struct harness *h)
{
    struct harness_state s;

    harness_get_state(h, &s);
    return s;
}

void
harness_get_state(struct harness *h, struct harness_state *out)
{
    memset(out, 0, sizeof(*out));
    harness_call(h, sample_state, out);
}

void
harness_wait_detached(struct harness *h)
{
    int64_t deadline = kit_now_ms() + HARNESS_TIMEOUT_MS;
    struct harness_state s;

    for (;;) {
        harness_get_state(h, &s);
        if (!s.attached || kit_now_ms() > deadline)
            break;
        usleep(1000);
    }
    assert_false(s.attached);
}

struct umdev_client *
harness_connect(struct harness *h, const struct umdev_client_opts *opts)
{
    struct umdev_client_opts o = { 0 };
    struct umdev_client *c = NULL;

    if (opts != NULL)
        o = *opts;
    if (o.log == NULL)
        o.log = &h->client_log.logger;
    if (o.timeout_ms == 0)
        o.timeout_ms = HARNESS_TIMEOUT_MS;
    assert_int_equal(umdev_client_connect(h->path, &o, &c), 0);
    assert_non_null(c);
    return c;
}

int
harness_raw_socket(struct harness *h)
{
    int fd = kit_peer_connect(h->path, HARNESS_TIMEOUT_MS);

    assert_true(fd >= 0);
    return fd;
}

void
raw_send_all(int fd, const void *buf, size_t len)
{
    assert_int_equal(kit_peer_send_bytes(fd, buf, len, NULL, 0, NULL, NULL), 0);
}

void
raw_send_fds(int fd, const void *buf, size_t len, const int *fds,
             size_t nfds)
{
    assert_int_equal(kit_peer_send_bytes(fd, buf, len, fds, nfds, NULL, NULL),
                     0);
}

void
raw_send(int fd, uint16_t id, uint16_t cmd, uint32_t flags,
         const void *payload, size_t len, const int *fds, size_t nfds)
{
    assert_int_equal(
        kit_peer_send(fd, id, cmd, flags, payload, len, NULL, 0, fds, nfds), 0);
}

long
raw_recv(int fd, void *buf, size_t cap, int timeout_ms, int *fds,
         size_t *nfds)
{
    ssize_t n = kit_peer_recv(fd, buf, cap, timeout_ms, fds, nfds);

    if (n == -ETIMEDOUT)
        return -1;
    /* -EPROTO, -EMSGSIZE: a header no server should send. */
    assert_true(n >= 0);
    return (long)n;
}

long
raw_expect_reply(int fd, uint16_t id, uint16_t cmd, void *buf, size_t cap)
{
    struct vfio_user_header h;
    long n = raw_recv(fd, buf, cap, HARNESS_TIMEOUT_MS, NULL, NULL);

    assert_true(n >= (long)sizeof(h));
    memcpy(&h, buf, sizeof(h));
    assert_int_equal(h.msg_id, id);
    assert_int_equal(h.cmd, cmd);
    assert_int_equal(h.flags, VFIO_USER_F_TYPE_REPLY);
    assert_int_equal(h.error, 0);
    assert_int_equal(h.msg_size, n);
    return n;
}

void
raw_expect_error(int fd, uint16_t id, uint16_t cmd, int err)
{
    uint8_t buf[256];
    struct vfio_user_header h;
    long n = raw_recv(fd, buf, sizeof(buf), HARNESS_TIMEOUT_MS, NULL, NULL);

    assert_true(n >= (long)sizeof(h));
    memcpy(&h, buf, sizeof(h));
    assert_int_equal(h.msg_id, id);
    assert_int_equal(h.cmd, cmd);
    assert_int_equal(h.flags, VFIO_USER_F_TYPE_REPLY | VFIO_USER_F_ERROR);
    assert_int_equal(h.error, err);
    /* Spec "Header": an error reply carries only the header. */
    assert_int_equal(h.msg_size, sizeof(h));
    assert_int_equal(n, sizeof(h));
}

void
raw_expect_alive(int fd, uint16_t id)
{
    struct vfio_user_device_info di = { .argsz = sizeof(di) };
    uint8_t buf[256];

    raw_send(fd, id, VFIO_USER_DEVICE_GET_INFO, 0, &di, sizeof(di), NULL,
             0);
    assert_int_equal(raw_expect_reply(fd, id, VFIO_USER_DEVICE_GET_INFO,
                                      buf, sizeof(buf)),
                     sizeof(struct vfio_user_header) + sizeof(di));
    memcpy(&di, buf + sizeof(struct vfio_user_header), sizeof(di));
    assert_int_equal(di.num_regions, UMDEV_PCI_NUM_REGIONS);
    assert_int_equal(di.num_irqs, UMDEV_PCI_NUM_IRQS);
}

void
raw_expect_quiet(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };

    assert_int_equal(poll(&p, 1, HARNESS_QUIET_MS), 0);
}

struct vfio_user_irq_set
raw_irq_eventfds(uint32_t index, uint32_t start, uint32_t count)
{
    struct vfio_user_irq_set s = {
        .argsz = sizeof(s),
        .flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
        .index = index,
        .start = start,
        .count = count,
    };

    return s;
}

void
raw_negotiate(int fd, uint16_t id)
{
    uint8_t reply[1024];

    assert_int_equal(kit_peer_send_version(
                         fd, id, "{\"capabilities\":{\"max_msg_fds\":16}}"),
                     0);
    assert_true(raw_expect_reply(fd, id, VFIO_USER_VERSION, reply,
                                 sizeof(reply)) >
                (long)(sizeof(struct vfio_user_header) +
                       sizeof(struct vfio_user_version)));
}

void
irq_eventfd(struct umdev_client *c, uint32_t index, uint32_t action,
            uint32_t sub, int efd)
{
    assert_int_equal(
        umdev_client_set_irqs(c, index, VFIO_IRQ_SET_DATA_EVENTFD | action, sub,
                              1, efd >= 0 ? &efd : NULL, NULL),
        0);
}

void
irq_trigger(struct umdev_client *c, uint32_t index, uint32_t sub, int efd)
{
    irq_eventfd(c, index, VFIO_IRQ_SET_ACTION_TRIGGER, sub, efd);
}

void
irq_action(struct umdev_client *c, uint32_t index, uint32_t action,
           uint32_t sub)
{
    assert_int_equal(umdev_client_set_irqs(c, index,
                                           VFIO_IRQ_SET_DATA_NONE | action, sub,
                                           1, NULL, NULL),
                     0);
}

uint32_t
reg_rd32(struct umdev_client *c, uint64_t off)
{
    uint32_t v = 0xdeadbeef;

    assert_int_equal(umdev_client_region_read(c, UMDEV_PCI_BAR0_REGION, off,
                                              &v, sizeof(v)),
                     0);
    return v;
}

uint64_t
reg_rd64(struct umdev_client *c, uint64_t off)
{
    uint64_t v = 0xdeadbeefdeadbeefull;

    assert_int_equal(umdev_client_region_read(c, UMDEV_PCI_BAR0_REGION, off,
                                              &v, sizeof(v)),
                     0);
    return v;
}

uint32_t
dma_status_wait(struct umdev_client *c)
{
    int64_t deadline = kit_now_ms() + HARNESS_TIMEOUT_MS;
    uint32_t v;

    while ((v = reg_rd32(c, TESTDEV_REG_DMA_STATUS)) == TESTDEV_DMA_BUSY) {
        if (kit_now_ms() > deadline)
            fail_msg("DMA_STATUS still busy after %d ms", HARNESS_TIMEOUT_MS);
        assert_true(umdev_client_poll(c, 1) >= 0);
    }
    return v;
}

void
reg_wr(struct umdev_client *c, uint64_t off, uint64_t v, size_t n)
{
    assert_true(n == 4 || n == 8);
    assert_int_equal(umdev_client_region_write(c, UMDEV_PCI_BAR0_REGION, off,
                                               &v, n),
                     0);
}

uint32_t
cfg_read(struct umdev_client *c, uint64_t off, size_t len)
{
    uint32_t v = 0;

    assert_true(len == 1 || len == 2 || len == 4);
    assert_int_equal(
        umdev_client_region_read(c, UMDEV_PCI_CONFIG_REGION, off, &v, len), 0);
    return v;
}

void
cfg_set_command(struct umdev_client *c, uint16_t bits)
{
    assert_int_equal(umdev_client_region_write(c, UMDEV_PCI_CONFIG_REGION,
                                               PCI_COMMAND, &bits, 2),
                     0);
}

void
cfg_enable_msix(struct umdev_client *c)
{
    uint16_t ctl = PCI_MSIX_FLAGS_ENABLE;
    int at = umdev_client_pci_cap_find(c, PCI_CAP_ID_MSIX, 0);

    if (at <= 0)
        fail_msg("no MSI-X capability: %d", at);
    assert_int_equal(umdev_client_region_write(c, UMDEV_PCI_CONFIG_REGION,
                                               (uint64_t)at + PCI_MSIX_FLAGS,
                                               &ctl, 2),
                     0);
}

uint64_t
efd_wait(int efd, int timeout_ms)
{
    struct pollfd p = { .fd = efd, .events = POLLIN };
    uint64_t n = 0;

    if (poll(&p, 1, timeout_ms) != 1)
        return 0;
    assert_int_equal(read(efd, &n, sizeof(n)), sizeof(n));
    return n;
}

int
efd_new(void)
{
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

    assert_true(fd >= 0);
    return fd;
}

void *
guest_mem(size_t size, int *fd)
{
    void *p;

    *fd = memfd_create(GUEST_MEMFD_NAME, MFD_CLOEXEC);
    assert_true(*fd >= 0);
    assert_int_equal(ftruncate(*fd, (off_t)size), 0);
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
    assert_true(p != MAP_FAILED);
    return p;
}

void
guest_mem_free(void *p, size_t size, int fd)
{
    assert_int_equal(munmap(p, size), 0);
    assert_int_equal(close(fd), 0);
}

int
count_guest_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "re");
    char line[512];
    int n = 0;

    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL)
        if (strstr(line, "/memfd:" GUEST_MEMFD_NAME) != NULL)
            n++;
    fclose(f);
    return n;
}

int
harness_main(int argc, char **argv, const char *name,
             const struct CMUnitTest *tests, size_t ntests)
{
    if (argc != 1) {
        fprintf(stderr, "usage: %s\n", argv[0]);
        return 2;
    }
    return _cmocka_run_group_tests(name, tests, ntests, NULL, NULL);
}
