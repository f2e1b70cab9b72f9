/*
 * The migration manager (umdev_dev_manage()) and the migration driver
 * (umdev_client_migrate()) against the test device: a manager may drive
 * migration and nothing else; the driver moves a device that a VMM
 * client keeps using, through the hooks where the VMM pauses and
 * re-attaches; each failed step leaves the source running with its
 * state, and a manager that leaves changes no state.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

#define S_STOP VFIO_USER_DEVICE_STATE_STOP
#define S_RUNNING VFIO_USER_DEVICE_STATE_RUNNING
#define S_STOP_COPY VFIO_USER_DEVICE_STATE_STOP_COPY
#define S_RESUMING VFIO_USER_DEVICE_STATE_RESUMING
#define S_PRE_COPY VFIO_USER_DEVICE_STATE_PRE_COPY

struct manage_call {
    struct harness *h;
    int fd;
    int rc;
};

static void
manage_on_server(struct umdev_dev *dev, void *arg)
{
    struct manage_call *m = arg;

    (void)dev;
    m->rc = umdev_server_manage(m->h->serve.devs[0].srv, m->fd);
}

/* A manager of @h's device (its end handed to the server thread). */
static int
manager_fd(struct harness *h, int *rc)
{
    struct manage_call m = { .h = h };
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    m.fd = sv[1];
    harness_call(h, manage_on_server, &m);
    *rc = m.rc;
    return sv[0];
}

static struct umdev_client *
manager(struct harness *h)
{
    struct umdev_client_opts opts = { .precopy_info = true };
    struct umdev_client *m = NULL;
    int rc, fd = manager_fd(h, &rc);

    assert_int_equal(rc, 0);
    assert_int_equal(umdev_client_attach_fd(fd, &opts, &m), 0);
    return m;
}

static uint32_t
state_of(struct umdev_client *c)
{
    uint32_t st = 0xffff;

    assert_int_equal(umdev_client_mig_state(c, &st), 0);
    return st;
}

static void
test_manager_may_only_migrate(void **state)
{
    struct umdev_client *vmm = harness_connect(&H, NULL);
    struct umdev_client *m = manager(&H);
    struct umdev_client_device_info info;
    uint32_t v = 0;
    uint64_t flags = 0;
    int rc, fd;
    char c;

    (void)state;
    assert_int_equal(umdev_client_device_info(m, &info), 0);
    assert_int_equal(umdev_client_mig_flags(m, &flags), 0);
    assert_true(flags & VFIO_USER_MIGRATION_STOP_COPY);
    /* Registers, memory, interrupts, logging and reset are the VMM's. */
    assert_int_equal(umdev_client_region_read(m, UMDEV_PCI_BAR0_REGION,
                                              TESTDEV_REG_ID, &v, 4),
                     -EPERM);
    assert_int_equal(umdev_client_region_write(m, UMDEV_PCI_BAR0_REGION,
                                               TESTDEV_REG_SCRATCH, &v, 4),
                     -EPERM);
    assert_int_equal(umdev_client_dma_log_start(m, 4096, NULL, 0, NULL),
                     -EPERM);
    assert_int_equal(umdev_client_reset(m), -EPERM);
    /* The VMM was not disturbed, and sees what the manager does. */
    reg_wr(vmm, TESTDEV_REG_SCRATCH, 0x5151u, 4);
    assert_int_equal(umdev_client_mig_set_state(m, S_STOP, NULL), 0);
    assert_int_equal(state_of(vmm), S_STOP);
    assert_int_equal(reg_rd32(vmm, TESTDEV_REG_SCRATCH), 0x5151u);
    /* One manager at a time: a second one's socket is closed. */
    fd = manager_fd(&H, &rc);
    assert_int_equal(rc, -EBUSY);
    assert_int_equal(read(fd, &c, 1), 0);
    close(fd);
    /* A manager that leaves changes no state. */
    umdev_client_destroy(m);
    assert_int_equal(state_of(vmm), S_STOP);
    assert_int_equal(umdev_client_mig_set_state(vmm, S_RUNNING, NULL), 0);
    /* And the next one may come. */
    m = manager(&H);
    assert_int_equal(state_of(m), S_RUNNING);
    umdev_client_destroy(m);
    umdev_client_destroy(vmm);
}

/* The VMM of the test: its client, paused or not, and where it goes. */
struct vmm {
    struct umdev_client *src, *dst;
    struct harness *to;
    bool paused;
    int fail_stop, fail_attach; /* errno to return from that hook */
    uint32_t state_at_attach;   /* the destination's, seen by the VMM */
};

static int
vmm_stop(void *opaque)
{
    struct vmm *v = opaque;

    if (v->fail_stop)
        return -v->fail_stop;
    /* Pre-copy ran while the VMM kept working. */
    assert_int_equal(state_of(v->src), S_PRE_COPY);
    v->paused = true;
    return 0;
}

static int
vmm_attach(void *opaque)
{
    struct vmm *v = opaque;

    v->dst = harness_connect(v->to, NULL);
    v->state_at_attach = state_of(v->dst);
    if (v->fail_attach)
        return -v->fail_attach;
    return 0;
}

static void
test_driver_moves_a_device(void **state)
{
    struct harness D;
    struct vmm v = { .to = &D };
    struct umdev_migrate_hooks hooks = { vmm_stop, vmm_attach, &v };
    struct umdev_migrate_stats st;
    struct umdev_client *ms, *md;
    uint8_t bar2[256], back[256];
    char err[256] = "";
    size_t i;

    (void)state;
    v.src = harness_connect(&H, NULL);
    for (i = 0; i < sizeof(bar2); i++)
        bar2[i] = (uint8_t)(i * 37 + 1);
    reg_wr(v.src, TESTDEV_REG_SCRATCH, 0xc0ffeeu, 4);
    reg_wr(v.src, TESTDEV_REG_SCRATCH64, 0x0123456789abcdefull, 8);
    assert_int_equal(umdev_client_region_write(v.src, UMDEV_PCI_BAR2_REGION,
                                               8192, bar2, sizeof(bar2)),
                     0);
    harness_start(&D);
    ms = manager(&H);
    md = manager(&D);
    assert_int_equal(
        umdev_client_migrate(ms, md, &hooks, &st, err, sizeof(err)), 0);
    assert_true(v.paused);
    /* The VMM found the state loaded and the device still stopped. */
    assert_int_equal(v.state_at_attach, S_STOP);
    assert_int_equal(state_of(v.dst), S_RUNNING);
    assert_int_equal(state_of(v.src), S_STOP);
    assert_true(st.precopy_bytes > TESTDEV_BAR2_SIZE);
    assert_true(st.state_bytes > 0);
    assert_true(st.transfer_ns > 0 && st.blackout_ns >= st.transfer_ns);
    /* Everything the VMM had set is on the destination. */
    assert_int_equal(reg_rd32(v.dst, TESTDEV_REG_SCRATCH), 0xc0ffeeu);
    assert_int_equal(reg_rd64(v.dst, TESTDEV_REG_SCRATCH64),
                     0x0123456789abcdefull);
    assert_int_equal(umdev_client_region_read(v.dst, UMDEV_PCI_BAR2_REGION,
                                              8192, back, sizeof(back)),
                     0);
    assert_memory_equal(bar2, back, sizeof(back));
    umdev_client_destroy(ms);
    umdev_client_destroy(md);
    umdev_client_destroy(v.dst);
    umdev_client_destroy(v.src);
    harness_stop(&D);
}

/* Each step that fails leaves the source running with its state. */
static void
test_driver_failures_resume_the_source(void **state)
{
    struct harness D;
    struct vmm v = { .to = &D };
    struct umdev_migrate_hooks hooks = { vmm_stop, vmm_attach, &v };
    struct umdev_migrate_stats st;
    struct umdev_client *ms, *md;
    char err[256] = "";

    (void)state;
    v.src = harness_connect(&H, NULL);
    reg_wr(v.src, TESTDEV_REG_SCRATCH, 0x77u, 4);
    harness_start(&D);
    ms = manager(&H);
    md = manager(&D);

    /* The VMM cannot pause: nothing stopped. */
    v.fail_stop = EINTR;
    assert_int_equal(
        umdev_client_migrate(ms, md, &hooks, &st, err, sizeof(err)), -EINTR);
    assert_non_null(strstr(err, "did not pause"));
    assert_int_equal(state_of(v.src), S_RUNNING);
    assert_int_equal(state_of(md), S_RESUMING);
    /* A destination left in a session is not taken again... */
    assert_int_equal(
        umdev_client_migrate(ms, md, &hooks, &st, err, sizeof(err)), -EBUSY);
    assert_non_null(strstr(err, "not ready"));
    assert_int_equal(state_of(v.src), S_RUNNING);
    /* ...until a reset (the VMM's) ends it. */
    v.dst = harness_connect(&D, NULL);
    assert_int_equal(umdev_client_reset(v.dst), 0);
    umdev_client_destroy(v.dst);
    v.dst = NULL;

    /* The VMM cannot attach to the destination: the source runs again. */
    v.fail_stop = 0;
    v.fail_attach = ENOMEM;
    assert_int_equal(
        umdev_client_migrate(ms, md, &hooks, &st, err, sizeof(err)), -ENOMEM);
    assert_non_null(strstr(err, "could not attach"));
    assert_int_equal(state_of(v.src), S_RUNNING);
    assert_int_equal(reg_rd32(v.src, TESTDEV_REG_SCRATCH), 0x77u);
    umdev_client_destroy(v.dst);
    v.dst = NULL;

    /* A destination that is no longer fresh is taken back to RESUMING
     * and loads the whole stream again. */
    v.fail_attach = 0;
    assert_int_equal(
        umdev_client_migrate(ms, md, &hooks, &st, err, sizeof(err)), 0);
    assert_int_equal(reg_rd32(v.dst, TESTDEV_REG_SCRATCH), 0x77u);

    /* A source that is not running is not moved. */
    assert_int_equal(
        umdev_client_migrate(ms, md, &hooks, &st, err, sizeof(err)), -EBUSY);
    assert_int_equal(state_of(v.src), S_STOP);

    umdev_client_destroy(ms);
    umdev_client_destroy(md);
    umdev_client_destroy(v.dst);
    umdev_client_destroy(v.src);
    harness_stop(&D);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        HARNESS_TEST(test_manager_may_only_migrate),
        HARNESS_TEST(test_driver_moves_a_device),
        HARNESS_TEST(test_driver_failures_resume_the_source),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
