/*
 * Functional tests of the direct access path: lib/access (umdev/access.h)
 * over the accel parent's embedded provider (devices/accel/accel_access.h).
 * A host "process" (the test) opens queues of one engine, registers its
 * own memfd-backed buffers and drives every operation with its own virtual
 * addresses; bad addresses must fail with address-fault completions and
 * touch nothing. The last test runs two accel subdevices served on real
 * sockets (driven by the umdev client as a VMM) and one access queue on
 * the same engine at once, each checking its own data.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <linux/vfio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "accel.h"
#include "accel_access.h"
#include "accel_guest.h"
#include "accel_serve.h"
#include "umdev/access.h"


#define MB (1024u * 1024u)
#define PAGE 4096u
#define NQUEUES 8u
#define RW (UMDEV_ACCESS_READ | UMDEV_ACCESS_WRITE)

/* ---------------------------------------------------------------- */
/* Fixture: one engine, its access provider; subdevices on demand    */

#define NDEV 2
static const unsigned int dev_queues[NDEV] = { 2, 1 };

struct fixture {
    struct accel_engine *e;
    struct accel_access *p;
    const struct umdev_access_provider *prov;
    struct accel_dev *d[NDEV];
    struct kit_serve serve; /* devs[i].path: subdevice i's socket */
    struct kit_log log;
};

static struct fixture F;

static int
setup(void **state)
{
    struct accel_engine_config ec = {
        .nr_queues = NQUEUES,
        .nr_threads = 2,
        .poll_us = 2000, /* see accel_guest.c */
    };

    (void)state;
    memset(&F, 0, sizeof(F));
    kit_log_init(&F.log, NULL, "UMDEV_FUNC_LOG");
    ec.log = &F.log.logger;
    assert_int_equal(accel_engine_create(&ec, &F.e), 0);
    assert_int_equal(accel_access_create(F.e, &F.log.logger, &F.p), 0);
    F.prov = accel_access_provider(F.p);
    return 0;
}

/* The two subdevices, served on a thread. */
static void
serve_devices(void)
{
    accel_serve(&F.serve, "access", F.e, dev_queues, NDEV, &F.log.logger, F.d);
}

static int
teardown(void **state)
{
    (void)state;
    /* Nothing to do unless serve_devices() ran. */
    assert_int_equal(kit_serve_stop(&F.serve, HARNESS_TIMEOUT_MS), 0);
    assert_int_equal(accel_access_open_queues(F.p), 0);
    assert_int_equal(accel_engine_free_queues(F.e), NQUEUES);
    accel_access_destroy(F.p);
    accel_engine_destroy(F.e);
    return 0;
}

/* ---------------------------------------------------------------- */
/* Helpers                                                           */

static uint64_t
va(const void *p)
{
    return (uint64_t)(uintptr_t)p;
}

static struct umdev_access_desc
adesc(uint8_t op, uint32_t size, const void *src, const void *dst)
{
    struct umdev_access_desc d = {
        .opcode = op,
        .size = size,
        .src = va(src),
        .dst = va(dst),
    };

    return d;
}

static struct umdev_access *
aopen(uint32_t depth)
{
    struct umdev_access_opts o = { .depth = depth, .log = &F.log.logger };
    struct umdev_access *a;

    assert_int_equal(umdev_access_open(F.prov, &o, &a), 0);
    return a;
}

/* Submit one descriptor and poll (bounded) for its completion. */
static struct umdev_access_comp
run1(struct umdev_access *a, struct umdev_access_desc d)
{
    struct umdev_access_comp c;
    int64_t deadline = kit_now_ms() + HARNESS_TIMEOUT_MS;

    assert_int_equal(umdev_access_outstanding(a), 0);
    assert_int_equal(umdev_access_submit(a, &d, 1), 1);
    while (umdev_access_reap(a, &c, 1) == 0) {
        if (kit_now_ms() > deadline)
            fail_msg("opcode %#x never completed", d.opcode);
        usleep(10);
    }
    assert_int_equal(c.tag, d.tag);
    assert_int_equal(c.opcode, d.opcode);
    return c;
}

/* ---------------------------------------------------------------- */
/* Open, close and the engine's queue count                          */

static void
test_open_close(void **state)
{
    struct umdev_access *a[NQUEUES], *x;
    struct umdev_access_opts o = { .log = &F.log.logger };
    struct umdev_access_provider bad = { .ops = NULL };
    unsigned int i;

    (void)state;
    /* Bad options and providers. */
    o.depth = 3;
    assert_int_equal(umdev_access_open(F.prov, &o, &x), -EINVAL);
    assert_null(x);
    o.depth = UMDEV_ACCESS_RING_MAX * 2;
    assert_int_equal(umdev_access_open(F.prov, &o, &x), -EINVAL);
    o.depth = 8;
    o.priority = UMDEV_ACCESS_PRIO_MAX + 1;
    assert_int_equal(umdev_access_open(F.prov, &o, &x), -EINVAL);
    assert_int_equal(umdev_access_open(&bad, NULL, &x), -EINVAL);
    assert_int_equal(umdev_access_open(NULL, NULL, &x), -EINVAL);
    assert_int_equal(accel_engine_free_queues(F.e), NQUEUES);

    /* Every open claims a queue of the engine; the ninth finds none. */
    for (i = 0; i < NQUEUES; i++) {
        a[i] = aopen(i % 2 ? 1 : 64);
        assert_int_equal(accel_engine_free_queues(F.e), NQUEUES - i - 1);
        assert_int_equal(umdev_access_depth(a[i]), i % 2 ? 1 : 64);
        assert_int_equal(umdev_access_space(a[i]), i % 2 ? 1 : 64);
        assert_true(umdev_access_fd(a[i]) >= 0);
        /* Enabled: the engine asked for a doorbell, HEAD is 0. */
        assert_int_equal(*(const uint32_t *)((const uint8_t *)umdev_access_ring(
                                                 a[i]) +
                                             UMDEV_ACCESS_RING_DOORBELL_NEEDED),
                         1);
    }
    assert_int_equal(accel_access_open_queues(F.p), NQUEUES);
    assert_int_equal(umdev_access_open(F.prov, NULL, &x), -ENOSPC);
    assert_null(x);
    for (i = 0; i < NQUEUES; i++)
        umdev_access_close(a[i]);
    assert_int_equal(accel_engine_free_queues(F.e), NQUEUES);
    umdev_access_close(NULL);
}

/* ---------------------------------------------------------------- */
/* Registration checks                                               */

static void
test_register(void **state)
{
    struct umdev_access *a = aopen(8);
    int fd, fd2, i;
    uint8_t *m = guest_mem(128 * PAGE, &fd);
    uint8_t *m2 = guest_mem(4 * PAGE, &fd2);
    uint8_t *anon, *priv, *ro;
    struct umdev_access_stats st;

    (void)state;
    /* Not page-granular, empty, bad prot. */
    assert_int_equal(umdev_access_mem_register(a, m + 1, PAGE, fd, 0, RW),
                     -EINVAL);
    assert_int_equal(umdev_access_mem_register(a, m, PAGE + 1, fd, 0, RW),
                     -EINVAL);
    assert_int_equal(umdev_access_mem_register(a, m, 0, fd, 0, RW), -EINVAL);
    assert_int_equal(umdev_access_mem_register(a, m, PAGE, fd, 1, RW),
                     -EINVAL);
    assert_int_equal(umdev_access_mem_register(a, m, PAGE, fd, 0, 0), -EINVAL);
    assert_int_equal(umdev_access_mem_register(a, m, PAGE, fd, 0, 4), -EINVAL);
    assert_int_equal(umdev_access_mem_register(a, NULL, PAGE, fd, 0, RW),
                     -EINVAL);
    /* Bad fds; a file smaller than offset + len. */
    assert_int_equal(umdev_access_mem_register(a, m, PAGE, -1, 0, RW), -EBADF);
    assert_int_equal(umdev_access_mem_register(a, m, PAGE, 999, 0, RW),
                     -EBADF);
    /* An eventfd is no file. */
    assert_int_equal(
        umdev_access_mem_register(a, m, PAGE, umdev_access_fd(a), 0, RW),
        -EINVAL);
    assert_int_equal(
        umdev_access_mem_register(a, m, 129 * PAGE, fd, 0, RW), -EINVAL);
    /* Not this fd's mapping: another memfd, a wrong offset, anonymous
     * memory, a private mapping, read-only memory the engine would
     * write. */
    assert_int_equal(umdev_access_mem_register(a, m, PAGE, fd2, 0, RW),
                     -EINVAL);
    assert_int_equal(umdev_access_mem_register(a, m, PAGE, fd, PAGE, RW),
                     -EINVAL);
    anon = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(anon != MAP_FAILED);
    assert_int_equal(umdev_access_mem_register(a, anon, PAGE, fd, 0, RW),
                     -EINVAL);
    priv = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd2, 0);
    assert_true(priv != MAP_FAILED);
    assert_int_equal(umdev_access_mem_register(a, priv, PAGE, fd2, 0, RW),
                     -EINVAL);
    ro = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd2, PAGE);
    assert_true(ro != MAP_FAILED);
    assert_int_equal(umdev_access_mem_register(a, ro, PAGE, fd2, PAGE, RW),
                     -EINVAL);
    assert_int_equal(umdev_access_mem_register(a, ro, PAGE, fd2, PAGE,
                                               UMDEV_ACCESS_READ),
                     0);
    /* The queue memory itself is not the caller's to register. */
    assert_int_equal(umdev_access_mem_register(
                         a, (void *)(uintptr_t)umdev_access_ring(a), PAGE, fd,
                         0, RW),
                     -EINVAL);
    /* Good, then overlapping, then a range inside. */
    assert_int_equal(umdev_access_mem_register(a, m, 16 * PAGE, fd, 0, RW), 0);
    assert_int_equal(
        umdev_access_mem_register(a, m + 15 * PAGE, 2 * PAGE, fd, 15 * PAGE,
                                  RW),
        -EINVAL);
    assert_int_equal(
        umdev_access_mem_register(a, m + PAGE, PAGE, fd, PAGE, RW), -EINVAL);
    /* Up to the limit (two ranges so far), one page each. */
    for (i = 0; i < (int)UMDEV_ACCESS_MAX_REGIONS - 2; i++)
        assert_int_equal(umdev_access_mem_register(
                             a, m + (16 + i) * PAGE, PAGE, fd,
                             (uint64_t)(16 + i) * PAGE, RW),
                         0);
    assert_int_equal(umdev_access_mem_register(a, m + 100 * PAGE, PAGE, fd,
                                               100 * PAGE, RW),
                     -ENOSPC);
    /* Unregister. */
    assert_int_equal(umdev_access_mem_unregister(a, m + PAGE), -ENOENT);
    assert_int_equal(umdev_access_mem_unregister(a, m), 0);
    assert_int_equal(umdev_access_mem_unregister(a, m), -ENOENT);
    assert_int_equal(umdev_access_mem_register(a, m + 100 * PAGE, PAGE, fd,
                                               100 * PAGE, RW),
                     0);
    /* Submission checks: the completion record is the library's. */
    {
        struct umdev_access_desc d = adesc(UMDEV_ACCESS_OP_NOP, 0, 0, 0);

        d.comp = va(m);
        assert_int_equal(umdev_access_submit(a, &d, 1), -EINVAL);
        d.comp = 0;
        d.flags = 0x80;
        assert_int_equal(umdev_access_submit(a, &d, 1), -EINVAL);
        assert_int_equal(umdev_access_outstanding(a), 0);
        assert_int_equal(umdev_access_wait(a, 0), -ENOENT);
    }
    umdev_access_get_stats(a, &st);
    assert_int_equal(st.submitted, 0);
    umdev_access_close(a);
    munmap(anon, PAGE);
    munmap(priv, PAGE);
    munmap(ro, PAGE);
    guest_mem_free(m, 128 * PAGE, fd);
    guest_mem_free(m2, 4 * PAGE, fd2);
}

/* ---------------------------------------------------------------- */
/* Every operation, with data checks                                 */

static void
test_ops(void **state)
{
    static const uint32_t sizes[] = { 1, 63, 4097, 65536 + 5, MB };
    struct umdev_access *a = aopen(16);
    int fd, i;
    size_t len = 8 * MB;
    uint8_t *m = guest_mem(len, &fd);
    uint8_t *src = m, *dst = m + 2 * MB, *dst2 = m + 4 * MB;
    struct umdev_access_comp c;
    struct umdev_access_desc d;

    (void)state;
    assert_int_equal(umdev_access_mem_register(a, m, len, fd, 0, RW), 0);
    for (i = 0; i < 5; i++) {
        uint32_t n = sizes[i], j;
        uint8_t *s = src + i, *t = dst + 3 * i, *t2 = dst2 + 5 * i;

        kit_fill_rand(s, n, (uint32_t)i + 1);
        /* MEMMOVE */
        d = adesc(UMDEV_ACCESS_OP_MEMMOVE, n, s, t);
        d.tag = 0x1000u + (uint64_t)i;
        c = run1(a, d);
        assert_int_equal(c.status, UMDEV_ACCESS_ST_SUCCESS);
        assert_int_equal(c.bytes, n);
        assert_memory_equal(t, s, n);
        /* COMPARE equal, then one byte off */
        c = run1(a, adesc(UMDEV_ACCESS_OP_COMPARE, n, s, t));
        assert_int_equal(c.status, UMDEV_ACCESS_ST_SUCCESS);
        assert_int_equal(c.result, 0);
        t[n / 2] ^= 1;
        c = run1(a, adesc(UMDEV_ACCESS_OP_COMPARE, n, s, t));
        assert_int_equal(c.status, UMDEV_ACCESS_ST_MISMATCH);
        assert_int_equal(c.result, 1);
        assert_int_equal(c.info, n / 2);
        /* CRC32C with a seed, COPY_CRC */
        d = adesc(UMDEV_ACCESS_OP_CRC32C, n, s, NULL);
        d.crc_seed = 0x12345678u;
        c = run1(a, d);
        assert_int_equal(c.status, UMDEV_ACCESS_ST_SUCCESS);
        assert_int_equal(c.value, kit_crc32c(0x12345678u, s, n));
        d.opcode = UMDEV_ACCESS_OP_COPY_CRC;
        d.dst = va(t);
        memset(t, 0, n);
        c = run1(a, d);
        assert_int_equal(c.status, UMDEV_ACCESS_ST_SUCCESS);
        assert_int_equal(c.value, kit_crc32c(0x12345678u, s, n));
        assert_memory_equal(t, s, n);
        /* DUALCAST */
        d = adesc(UMDEV_ACCESS_OP_DUALCAST, n, s, t);
        d.dst2 = va(t2);
        memset(t, 0, n);
        memset(t2, 0, n);
        c = run1(a, d);
        assert_int_equal(c.status, UMDEV_ACCESS_ST_SUCCESS);
        assert_memory_equal(t, s, n);
        assert_memory_equal(t2, s, n);
        /* FILL, COMPARE_PATTERN equal and not */
        d = adesc(UMDEV_ACCESS_OP_FILL, n, NULL, t);
        d.pattern = 0x0102030405060708ull * (uint64_t)(i + 1);
        c = run1(a, d);
        assert_int_equal(c.status, UMDEV_ACCESS_ST_SUCCESS);
        for (j = 0; j < n; j++)
            assert_int_equal(t[j], (uint8_t)(d.pattern >> (8 * (j % 8))));
        d.opcode = UMDEV_ACCESS_OP_COMPARE_PATTERN;
        d.src = va(t);
        d.dst = 0;
        c = run1(a, d);
        assert_int_equal(c.status, UMDEV_ACCESS_ST_SUCCESS);
        t[n - 1] ^= 0xff;
        c = run1(a, d);
        assert_int_equal(c.status, UMDEV_ACCESS_ST_MISMATCH);
        assert_int_equal(c.info, n - 1);
    }
    /* Overlapping MEMMOVE, both directions. */
    kit_fill_rand(src, 8192, 77);
    memcpy(dst, src, 8192);
    c = run1(a, adesc(UMDEV_ACCESS_OP_MEMMOVE, 4096, src, src + 100));
    assert_int_equal(c.status, UMDEV_ACCESS_ST_SUCCESS);
    memmove(dst + 100, dst, 4096);
    assert_memory_equal(src, dst, 8192);
    c = run1(a, adesc(UMDEV_ACCESS_OP_MEMMOVE, 4096, src + 100, src));
    assert_int_equal(c.status, UMDEV_ACCESS_ST_SUCCESS);
    memmove(dst, dst + 100, 4096);
    assert_memory_equal(src, dst, 8192);
    /* BATCH (elements with their own records in our memory), DRAIN, NOP. */
    {
        struct umdev_access_desc *el = (void *)(m + 6 * MB);
        struct umdev_access_comp *ec = (void *)(m + 6 * MB + PAGE);

        el[0] = adesc(UMDEV_ACCESS_OP_FILL, 4096, NULL, dst);
        el[0].pattern = 0x5a5a5a5a5a5a5a5aull;
        el[1] = adesc(UMDEV_ACCESS_OP_MEMMOVE, 4096, dst, dst2);
        el[2] = adesc(UMDEV_ACCESS_OP_COMPARE, 4096, dst, dst2);
        for (i = 0; i < 3; i++) {
            el[i].flags = UMDEV_ACCESS_DF_COMP;
            el[i].comp = va(&ec[i]);
            memset(&ec[i], 0, sizeof(ec[i]));
        }
        c = run1(a, adesc(UMDEV_ACCESS_OP_BATCH, 3, el, NULL));
        assert_int_equal(c.status, UMDEV_ACCESS_ST_SUCCESS);
        assert_int_equal(c.bytes, 3);
        for (i = 0; i < 3; i++)
            assert_int_equal(ec[i].status, UMDEV_ACCESS_ST_SUCCESS);
        assert_int_equal(dst2[4095], 0x5a);
        /* An element outside registered memory: BATCH_PARTIAL. */
        el[1].dst = va(m + len);
        memset(ec, 0, 3 * sizeof(*ec));
        c = run1(a, adesc(UMDEV_ACCESS_OP_BATCH, 3, el, NULL));
        assert_int_equal(c.status, UMDEV_ACCESS_ST_BATCH_PARTIAL);
        assert_int_equal(ec[1].status, UMDEV_ACCESS_ST_ADDR_FAULT);
        assert_int_equal(ec[1].info, va(m + len));
    }
    c = run1(a, adesc(UMDEV_ACCESS_OP_DRAIN, 0, NULL, NULL));
    assert_int_equal(c.status, UMDEV_ACCESS_ST_SUCCESS);
    c = run1(a, adesc(UMDEV_ACCESS_OP_NOP, 0, NULL, NULL));
    assert_int_equal(c.status, UMDEV_ACCESS_ST_SUCCESS);
    /* Errors the engine reports. */
    c = run1(a, adesc(0x7f, 0, NULL, NULL));
    assert_int_equal(c.status, UMDEV_ACCESS_ST_INVALID_OPCODE);
    d = adesc(UMDEV_ACCESS_OP_NOP, 0, NULL, NULL);
    d.rsvd1 = 1;
    c = run1(a, d);
    assert_int_equal(c.status, UMDEV_ACCESS_ST_INVALID_FIELD);
    assert_int_equal(c.info, offsetof(struct umdev_access_desc, rsvd1));
    d = adesc(UMDEV_ACCESS_OP_MEMMOVE, accel_engine_max_transfer(F.e) + 1, src,
              dst);
    c = run1(a, d);
    assert_int_equal(c.status, UMDEV_ACCESS_ST_INVALID_FIELD);
    assert_int_equal(c.info, offsetof(struct umdev_access_desc, size));
    umdev_access_close(a);
    guest_mem_free(m, len, fd);
}

/* ---------------------------------------------------------------- */
/* Addresses outside registered memory                               */

static void
test_bad_addresses(void **state)
{
    struct umdev_access *a = aopen(8);
    int fd, gfd, rofd;
    /* 16 pages registered, the 17th mapped but not: a copy crossing the
     * end must fault there and leave it as it was. */
    uint8_t *m = guest_mem(17 * PAGE, &fd);
    uint8_t *guard = guest_mem(4 * PAGE, &gfd); /* mapped, not registered */
    uint8_t *rom = guest_mem(PAGE, &rofd);      /* registered read-only */
    uint8_t before[4 * PAGE], rom_before[PAGE], tail_before[PAGE];
    struct umdev_access_comp c;
    struct umdev_access_desc d;
    struct umdev_access_stats st;

    (void)state;
    assert_int_equal(umdev_access_mem_register(a, m, 16 * PAGE, fd, 0, RW), 0);
    assert_int_equal(
        umdev_access_mem_register(a, rom, PAGE, rofd, 0, UMDEV_ACCESS_READ), 0);
    kit_fill_rand(guard, sizeof(before), 5);
    memcpy(before, guard, sizeof(before));
    kit_fill_rand(rom, PAGE, 6);
    memcpy(rom_before, rom, PAGE);
    kit_fill_rand(m, 17 * PAGE, 7);
    memcpy(tail_before, m + 16 * PAGE, PAGE);

    /* Destination outside: MEMMOVE, FILL, DUALCAST's second. */
    c = run1(a, adesc(UMDEV_ACCESS_OP_MEMMOVE, 64, m, guard));
    assert_int_equal(c.status, UMDEV_ACCESS_ST_ADDR_FAULT);
    assert_int_equal(c.info, va(guard));
    d = adesc(UMDEV_ACCESS_OP_FILL, 2 * PAGE, NULL, guard + PAGE);
    c = run1(a, d);
    assert_int_equal(c.status, UMDEV_ACCESS_ST_ADDR_FAULT);
    d = adesc(UMDEV_ACCESS_OP_DUALCAST, 64, m, m + PAGE);
    d.dst2 = va(guard + 64);
    c = run1(a, d);
    assert_int_equal(c.status, UMDEV_ACCESS_ST_ADDR_FAULT);
    assert_int_equal(c.info, va(guard + 64));
    /* Crossing the end of the registered range. */
    c = run1(a, adesc(UMDEV_ACCESS_OP_MEMMOVE, 2 * PAGE, m,
                      m + 15 * PAGE));
    assert_int_equal(c.status, UMDEV_ACCESS_ST_ADDR_FAULT);
    assert_int_equal(c.info, va(m + 16 * PAGE));
    /* Source outside: the bytes must not be read into our memory. */
    memset(m, 0, PAGE);
    c = run1(a, adesc(UMDEV_ACCESS_OP_MEMMOVE, 64, guard, m));
    assert_int_equal(c.status, UMDEV_ACCESS_ST_ADDR_FAULT);
    assert_int_equal(c.info, va(guard));
    c = run1(a, adesc(UMDEV_ACCESS_OP_CRC32C, 64, guard, NULL));
    assert_int_equal(c.status, UMDEV_ACCESS_ST_ADDR_FAULT);
    /* Kernel-half and NULL addresses. */
    c = run1(a, adesc(UMDEV_ACCESS_OP_MEMMOVE, 64,
                      (void *)(uintptr_t)0xffff800000000000ull, m));
    assert_int_equal(c.status, UMDEV_ACCESS_ST_ADDR_FAULT);
    c = run1(a, adesc(UMDEV_ACCESS_OP_FILL, 64, NULL, NULL));
    assert_int_equal(c.status, UMDEV_ACCESS_ST_ADDR_FAULT);
    assert_int_equal(c.info, 0);
    /* Read-only registration: readable, never written. */
    c = run1(a, adesc(UMDEV_ACCESS_OP_MEMMOVE, 64, rom, m));
    assert_int_equal(c.status, UMDEV_ACCESS_ST_SUCCESS);
    assert_memory_equal(m, rom, 64);
    c = run1(a, adesc(UMDEV_ACCESS_OP_MEMMOVE, 64, m + PAGE, rom));
    assert_int_equal(c.status, UMDEV_ACCESS_ST_ADDR_FAULT);
    assert_int_equal(c.info, va(rom));
    /* After unregister the range faults too. */
    assert_int_equal(umdev_access_mem_unregister(a, rom), 0);
    c = run1(a, adesc(UMDEV_ACCESS_OP_MEMMOVE, 64, rom, m));
    assert_int_equal(c.status, UMDEV_ACCESS_ST_ADDR_FAULT);

    assert_memory_equal(guard, before, sizeof(before));
    assert_memory_equal(m + 16 * PAGE, tail_before, PAGE);
    assert_memory_equal(rom, rom_before, PAGE);
    umdev_access_get_stats(a, &st);
    assert_int_equal(st.queue.errors, 0); /* every fault had a record */
    assert_false(st.queue.halted);
    assert_true(st.queue.failed >= 10);
    /* The queue still works. */
    c = run1(a, adesc(UMDEV_ACCESS_OP_MEMMOVE, 64, m, m + PAGE));
    assert_int_equal(c.status, UMDEV_ACCESS_ST_SUCCESS);
    umdev_access_close(a);
    guest_mem_free(m, 17 * PAGE, fd);
    guest_mem_free(guard, 4 * PAGE, gfd);
    guest_mem_free(rom, PAGE, rofd);
}

/* ---------------------------------------------------------------- */
/* Waiting on the eventfd, polling, wrap-around, doorbells           */

static void
test_wait_and_poll(void **state)
{
    enum { DEPTH = 8, TOTAL = 1000, SZ = 256 };
    struct umdev_access *a = aopen(DEPTH);
    int fd;
    uint8_t *m = guest_mem(2 * MB, &fd);
    struct umdev_access_comp c[DEPTH];
    struct umdev_access_desc d;
    struct umdev_access_stats st;
    unsigned int sent = 0, done = 0, i, copies;
    int64_t deadline;
    uint64_t t0;
    int rc;

    (void)state;
    assert_int_equal(umdev_access_mem_register(a, m, 2 * MB, fd, 0, RW), 0);
    kit_fill_rand(m, MB, 3);

    /* Wait needs DF_INTR on the oldest; without it -EINVAL. */
    d = adesc(UMDEV_ACCESS_OP_NOP, 0, NULL, NULL);
    assert_int_equal(umdev_access_submit(a, &d, 1), 1);
    assert_int_equal(umdev_access_wait(a, 100), -EINVAL);
    deadline = kit_now_ms() + HARNESS_TIMEOUT_MS;
    while (umdev_access_reap(a, c, DEPTH) == 0)
        assert_true(kit_now_ms() < deadline);

    /* Eventfd: one FILL with DF_INTR; wait sleeps, then reap. */
    d = adesc(UMDEV_ACCESS_OP_FILL, 4096, NULL, m + MB);
    d.flags = UMDEV_ACCESS_DF_INTR;
    d.pattern = 0xa5a5a5a5a5a5a5a5ull;
    d.tag = 42;
    assert_int_equal(umdev_access_submit(a, &d, 1), 1);
    assert_int_equal(umdev_access_wait(a, HARNESS_TIMEOUT_MS), 0);
    assert_int_equal(umdev_access_reap(a, c, DEPTH), 1);
    assert_int_equal(c[0].status, UMDEV_ACCESS_ST_SUCCESS);
    assert_int_equal(c[0].tag, 42);
    assert_int_equal(m[MB + 4095], 0xa5);
    umdev_access_get_stats(a, &st);
    assert_true(st.queue.notifies >= 1);
    assert_int_equal(umdev_access_wait(a, 0), -ENOENT);

    /* A wait that times out: checked right after submitting a 1 MiB
     * copy, which takes the engine far longer than the check, unless this
     * thread was descheduled in between (a loaded machine): then the copy
     * is simply done (wait says 0), and another one is tried. */
    for (copies = 1;; copies++) {
        d = adesc(UMDEV_ACCESS_OP_MEMMOVE, MB, m, m + MB);
        d.flags = UMDEV_ACCESS_DF_INTR;
        assert_int_equal(umdev_access_submit(a, &d, 1), 1);
        rc = umdev_access_wait(a, 0);
        if (rc != 0 || copies == 100)
            break;
        assert_int_equal(umdev_access_reap(a, c, DEPTH), 1);
        assert_int_equal(c[0].status, UMDEV_ACCESS_ST_SUCCESS);
    }
    assert_int_equal(rc, -ETIMEDOUT);
    assert_int_equal(umdev_access_wait(a, HARNESS_TIMEOUT_MS), 0);
    assert_int_equal(umdev_access_reap(a, c, DEPTH), 1);
    assert_int_equal(c[0].status, UMDEV_ACCESS_ST_SUCCESS);
    assert_memory_equal(m + MB, m, MB);

    /* Many more descriptors than slots, reaped by waiting: wrap-around
     * of the ring and of the completion slots. Each MEMMOVE copies its
     * own 256 bytes, checked as they complete. */
    deadline = kit_now_ms() + 4 * HARNESS_TIMEOUT_MS;
    while (done < TOTAL) {
        int n;

        while (sent < TOTAL && umdev_access_space(a) > 0) {
            d = adesc(UMDEV_ACCESS_OP_MEMMOVE, SZ,
                      m + (sent * SZ) % MB, m + MB + (sent * SZ) % MB);
            d.flags = UMDEV_ACCESS_DF_INTR;
            d.tag = sent;
            assert_int_equal(umdev_access_submit(a, &d, 1), 1);
            sent++;
        }
        assert_int_equal(umdev_access_wait(a, HARNESS_TIMEOUT_MS), 0);
        n = umdev_access_reap(a, c, DEPTH);
        assert_true(n >= 1);
        for (i = 0; i < (unsigned int)n; i++, done++) {
            assert_int_equal(c[i].status, UMDEV_ACCESS_ST_SUCCESS);
            assert_int_equal(c[i].tag, done);
            assert_memory_equal(m + MB + (done * SZ) % MB,
                                m + (done * SZ) % MB, SZ);
        }
        assert_true(kit_now_ms() < deadline);
    }
    assert_int_equal(umdev_access_outstanding(a), 0);
    umdev_access_get_stats(a, &st);
    assert_int_equal(st.submitted, TOTAL + 2 + copies);
    assert_int_equal(st.reaped, TOTAL + 2 + copies);
    assert_int_equal(st.queue.completed, TOTAL + 2 + copies);
    /* Event suppression: the doorbells made are the engine's count, and
     * fewer than the submissions (the engine polls while busy). */
    assert_int_equal(st.doorbells, st.queue.doorbells);
    assert_true(st.doorbells < TOTAL);

    /* Polling only: a burst of NOPs with no interrupts, no eventfd
     * signal for them. */
    (void)efd_wait(umdev_access_fd(a), 0);
    umdev_access_get_stats(a, &st);
    t0 = st.queue.notifies;
    {
        struct umdev_access_desc nops[DEPTH];

        memset(nops, 0, sizeof(nops));
        for (i = 0; i < DEPTH; i++)
            nops[i].tag = 5000 + i;
        assert_int_equal(umdev_access_submit(a, nops, DEPTH), DEPTH);
        assert_int_equal(umdev_access_space(a), 0);
        assert_int_equal(umdev_access_submit(a, nops, 1), 0);
        deadline = kit_now_ms() + HARNESS_TIMEOUT_MS;
        for (done = 0; done < DEPTH;) {
            int n = umdev_access_reap(a, c, DEPTH);

            for (i = 0; i < (unsigned int)n; i++, done++)
                assert_int_equal(c[i].tag, 5000 + done);
            assert_true(kit_now_ms() < deadline);
        }
    }
    umdev_access_get_stats(a, &st);
    assert_int_equal(st.queue.notifies, t0);
    assert_int_equal(efd_wait(umdev_access_fd(a), 0), 0);
    umdev_access_close(a);
    guest_mem_free(m, 2 * MB, fd);
}

/* Close with work outstanding: the queue returns to the engine, the
 * memory is the caller's again. */
static void
test_close_busy(void **state)
{
    struct umdev_access *a = aopen(64);
    int fd, i;
    uint8_t *m = guest_mem(4 * MB, &fd);
    struct umdev_access_desc d[64];

    (void)state;
    assert_int_equal(umdev_access_mem_register(a, m, 4 * MB, fd, 0, RW), 0);
    for (i = 0; i < 64; i++)
        d[i] = adesc(UMDEV_ACCESS_OP_MEMMOVE, 64 * 1024, m, m + 2 * MB);
    assert_int_equal(umdev_access_submit(a, d, 64), 64);
    umdev_access_close(a);
    assert_int_equal(accel_engine_free_queues(F.e), NQUEUES);
    guest_mem_free(m, 4 * MB, fd);
}

/* ---------------------------------------------------------------- */
/* Two subdevices and one access queue at once on one engine         */

#define ROUNDS 400
#define CHUNK 512u
#define VM_RING_SIZE 16u

/* A guest of a subdevice (accel_guest.h) and the checked traffic its
 * thread drives, one descriptor in flight per queue; no cmocka assertions
 * on that thread. */
struct vm {
    struct guest g;
    uint32_t seed;
    int errors;
    uint64_t ops;
    char why[128];
};

static void
vm_open(struct vm *v, unsigned int dev)
{
    unsigned int q;

    memset(v, 0, sizeof(*v));
    v->seed = 1000 + dev;
    /* INTx left off: the thread polls. */
    guest_connect(&v->g, F.serve.devs[dev].path, dev_queues[dev], true);
    v->g.dev = dev;
    for (q = 0; q < v->g.nq; q++)
        gq_enable(&v->g, q, VM_RING_SIZE);
}

static void
vm_fail(struct vm *v, const char *why, uint32_t round)
{
    if (v->errors++ == 0)
        snprintf(v->why, sizeof(v->why), "dev %u round %u: %s", v->g.dev, round,
                 why);
}

/* Guest RAM at @iova, without gp()'s assertion (the thread's). */
static uint8_t *
ram(struct vm *v, uint64_t iova)
{
    return v->g.mem + (iova - GB);
}

/* One MEMMOVE per queue per round, each of a fresh pattern, checked. */
static void *
vm_thread(void *arg)
{
    struct vm *v = arg;
    struct guest *g = &v->g;
    unsigned int q;
    uint32_t r;

    for (r = 0; r < ROUNDS && v->errors == 0; r++) {
        for (q = 0; q < g->nq; q++) {
            uint64_t src = DATA + q * 64 * 1024ull;
            struct accel_desc d = accel_desc_make(ACCEL_OP_MEMMOVE, CHUNK, src, src + MB);

            d.comp = comp_iova(q, g->q[q].r.tail);
            d.tag = r;
            kit_fill_rand(ram(v, src), CHUNK, v->seed + r * 16 + q);
            memset(ram(v, d.dst), 0, CHUNK);
            memset(ram(v, d.comp), 0, ACCEL_COMP_SIZE);
            accel_ring_post(&g->q[q].r, &d);
            if (publish_tail(g, q) < 0) {
                vm_fail(v, "doorbell", r);
                break;
            }
        }
        for (q = 0; q < g->nq && v->errors == 0; q++) {
            uint64_t src = DATA + q * 64 * 1024ull;
            struct accel_comp *c =
                (void *)ram(v, comp_iova(q, g->q[q].r.tail - 1));
            int64_t deadline = kit_now_ms() + HARNESS_TIMEOUT_MS;
            uint8_t st;

            while ((st = accel_comp_status(c)) == ACCEL_ST_NONE) {
                if (kit_now_ms() > deadline) {
                    vm_fail(v, "no completion", r);
                    break;
                }
                usleep(5);
            }
            if (st != ACCEL_ST_SUCCESS || c->tag != r ||
                memcmp(ram(v, src), ram(v, src + MB), CHUNK) != 0)
                vm_fail(v, "bad completion or data", r);
            v->ops++;
        }
    }
    return NULL;
}

struct host {
    struct umdev_access *a;
    uint8_t *mem;
    int fd;
    int errors;
    uint64_t ops;
    char why[128];
};

static void *
host_thread(void *arg)
{
    struct host *h = arg;
    uint32_t r;

    for (r = 0; r < ROUNDS * 2 && h->errors == 0; r++) {
        uint8_t *s = h->mem + (r % 8) * CHUNK;
        uint8_t *t = h->mem + MB + (r % 8) * 4096;
        struct umdev_access_desc d = {
            .opcode = UMDEV_ACCESS_OP_COPY_CRC,
            .flags = UMDEV_ACCESS_DF_INTR,
            .size = CHUNK,
            .src = va(s),
            .dst = va(t),
            .tag = r,
        };
        struct umdev_access_comp c;

        kit_fill_rand(s, CHUNK, 7000 + r);
        memset(t, 0, CHUNK);
        if (umdev_access_submit(h->a, &d, 1) != 1 ||
            umdev_access_wait(h->a, HARNESS_TIMEOUT_MS) != 0 ||
            umdev_access_reap(h->a, &c, 1) != 1) {
            snprintf(h->why, sizeof(h->why), "round %u: no completion", r);
            h->errors++;
            break;
        }
        if (c.status != UMDEV_ACCESS_ST_SUCCESS || c.tag != r ||
            c.value != kit_crc32c(0, s, CHUNK) || memcmp(s, t, CHUNK) != 0) {
            snprintf(h->why, sizeof(h->why), "round %u: status %u or data",
                     r, c.status);
            h->errors++;
        }
        h->ops++;
    }
    return NULL;
}

static void
test_concurrent_no_crosstalk(void **state)
{
    struct vm v[NDEV];
    struct host h = { 0 };
    pthread_t tv[NDEV], th;
    uint8_t *sentinel;
    int i;

    (void)state;
    serve_devices();
    assert_int_equal(accel_engine_free_queues(F.e), NQUEUES - 3);
    h.a = aopen(16);
    assert_int_equal(accel_engine_free_queues(F.e), NQUEUES - 4);
    h.mem = guest_mem(2 * MB, &h.fd);
    assert_int_equal(umdev_access_mem_register(h.a, h.mem, 2 * MB, h.fd, 0, RW),
                     0);
    for (i = 0; i < NDEV; i++)
        vm_open(&v[i], (unsigned int)i);
    /* Untouched areas of every party, to check after the run. */
    sentinel = malloc(MB);
    assert_non_null(sentinel);
    for (i = 0; i < NDEV; i++)
        memset(v[i].g.mem + 3 * MB, 0x30 + i, MB);
    memset(h.mem + MB + 64 * 1024, 0x55, 512 * 1024);

    for (i = 0; i < NDEV; i++)
        assert_int_equal(pthread_create(&tv[i], NULL, vm_thread, &v[i]), 0);
    assert_int_equal(pthread_create(&th, NULL, host_thread, &h), 0);
    for (i = 0; i < NDEV; i++)
        assert_int_equal(pthread_join(tv[i], NULL), 0);
    assert_int_equal(pthread_join(th, NULL), 0);

    for (i = 0; i < NDEV; i++) {
        if (v[i].errors != 0)
            fail_msg("%s", v[i].why);
        assert_int_equal(v[i].ops, (uint64_t)ROUNDS * dev_queues[i]);
        memset(sentinel, 0x30 + i, MB);
        assert_memory_equal(v[i].g.mem + 3 * MB, sentinel, MB);
    }
    if (h.errors != 0)
        fail_msg("host: %s", h.why);
    assert_int_equal(h.ops, ROUNDS * 2);
    memset(sentinel, 0x55, 512 * 1024);
    assert_memory_equal(h.mem + MB + 64 * 1024, sentinel, 512 * 1024);
    free(sentinel);
    for (i = 0; i < NDEV; i++)
        guest_close(&v[i].g);
    umdev_access_close(h.a);
    guest_mem_free(h.mem, 2 * MB, h.fd);
    assert_int_equal(accel_engine_free_queues(F.e), NQUEUES - 3);
}

/* Each test on a fresh engine and provider (setup, teardown). */
#define ACCESS_TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

static const struct CMUnitTest tests[] = {
    ACCESS_TEST(test_open_close),
    ACCESS_TEST(test_register),
    ACCESS_TEST(test_ops),
    ACCESS_TEST(test_bad_addresses),
    ACCESS_TEST(test_wait_and_poll),
    ACCESS_TEST(test_close_busy),
    ACCESS_TEST(test_concurrent_no_crosstalk),
};

HARNESS_MAIN("func.access", tests)
