/*
 * Functional tests of the accel subdevice under a migrating VMM
 * (accel_guest.h): DMA dirty logging against a shadow of guest memory
 * while the engine writes records, ring words and data through held
 * spans; and migration v2 of a subdevice with full rings in flight to a
 * fresh subdevice on a second engine.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "accel_guest.h"
#include "accel_serve.h"

#define PAGE 4096u
#define NPAGES (GSIZE / PAGE)

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t
next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* ---------------------------------------------------------------- */
/* DMA dirty logging                                                 */

/* A random data descriptor of the kinds that write guest memory. */
static struct accel_desc
random_write_desc(void)
{
    static const uint8_t ops[] = { ACCEL_OP_MEMMOVE, ACCEL_OP_FILL,
                                   ACCEL_OP_DUALCAST, ACCEL_OP_COPY_CRC };
    uint8_t op = ops[next_rand() % sizeof(ops)];
    uint32_t size = 1 + (uint32_t)(next_rand() % (3 * PAGE));
    /* Three disjoint thirds of the data area: src, dst, dst2. */
    uint64_t third = (DATA_END - DATA) / 3;
    uint64_t src = DATA + next_rand() % (third - size);
    uint64_t dst = DATA + third + next_rand() % (third - size);
    struct accel_desc d = accel_desc_make(op, size, src, dst);

    d.dst2 = DATA + 2 * third + next_rand() % (third - size);
    d.pattern = next_rand();
    d.flags |= ACCEL_DF_INTR;
    return d;
}

/*
 * Every page that differs from @shadow is in the report (no false
 * negative); reported pages that did not change are counted. The shadow
 * follows memory afterwards.
 */
static unsigned int
check_report(struct guest *g, uint8_t *shadow)
{
    static uint64_t bitmap[NPAGES / 64];
    unsigned int p, fp = 0;

    memset(bitmap, 0, sizeof(bitmap));
    assert_int_equal(umdev_client_dma_log_report(g->c, GB, GSIZE, PAGE, bitmap),
                     0);
    for (p = 0; p < NPAGES; p++) {
        bool got = (bitmap[p / 64] >> (p % 64)) & 1;
        bool changed = memcmp(g->mem + (size_t)p * PAGE,
                              shadow + (size_t)p * PAGE, PAGE) != 0;

        if (changed && !got)
            fail_msg("page %#jx changed by the device, not reported",
                     (uintmax_t)(GB + (uint64_t)p * PAGE));
        fp += got && !changed;
    }
    memcpy(shadow, g->mem, GSIZE);
    return fp;
}

static void
test_dirty_log(void **state)
{
    uint8_t *shadow = malloc(GSIZE);
    unsigned int q, round, i, fp = 0, changed_rounds = 0;
    uint32_t last[4];
    struct guest g;

    (void)state;
    assert_non_null(shadow);
    guest_open(&g, 1, false);
    /* Random data: a copy changes what it writes (zeros over zeros
     * would be a write no shadow can see). */
    for (i = 0; i < (DATA_END - DATA) / 8; i++) {
        uint64_t v = next_rand();

        memcpy(g.mem + (DATA - GB) + (size_t)i * 8, &v, 8);
    }
    for (q = 0; q < 4; q++)
        gq_enable(&g, q, 64);
    assert_int_equal(umdev_client_dma_log_start(g.c, PAGE, NULL, 0, NULL), 0);
    memcpy(shadow, g.mem, GSIZE);
    check_report(&g, shadow);
    for (round = 0; round < 12; round++) {
        /* The guest's own writes (descriptors, zeroed records, TAIL)
         * are in the shadow; only the device's can differ. */
        for (q = 0; q < 4; q++)
            for (i = 0; i < 24; i++)
                last[q] = gq_post(&g, q, random_write_desc(), false);
        for (q = 0; q < 4; q++)
            accel_ring_store_tail(&g.q[q].r);
        memcpy(shadow, g.mem, GSIZE);
        for (q = 0; q < 4; q++)
            doorbell(&g, q);
        for (q = 0; q < 4; q++) {
            assert_int_equal(gq_wait(&g, q, last[q]), ACCEL_ST_SUCCESS);
            gq_wait_head(&g, q);
        }
        /* Asleep, the engine holds no span: a report then clears what it
         * reports (one during a held span keeps its pages for the next,
         * which only adds false positives). */
        for (q = 0; q < 4; q++) {
            int64_t deadline = kit_now_ms() + HARNESS_TIMEOUT_MS;

            while (rword(&g, q, ACCEL_RING_DOORBELL_NEEDED) != 1) {
                assert_true(kit_now_ms() < deadline);
                usleep(100);
            }
        }
        changed_rounds += memcmp(shadow, g.mem, GSIZE) != 0;
        fp += check_report(&g, shadow);
    }
    assert_int_equal(changed_rounds, 12);
    print_message("dirty log: %u pages reported but unchanged in 12 rounds\n",
                  fp);
    assert_int_equal(umdev_client_dma_log_stop(g.c), 0);
    guest_close(&g);
    free(shadow);
}

/* ---------------------------------------------------------------- */
/* Migration                                                         */

#define S_STOP VFIO_USER_DEVICE_STATE_STOP
#define S_RUNNING VFIO_USER_DEVICE_STATE_RUNNING
#define S_STOP_COPY VFIO_USER_DEVICE_STATE_STOP_COPY
#define S_RESUMING VFIO_USER_DEVICE_STATE_RESUMING
#define S_PRE_COPY VFIO_USER_DEVICE_STATE_PRE_COPY
#define S_ERROR VFIO_USER_DEVICE_STATE_ERROR

/* Two engines, each with an accel-1wq, -2wq and -4wq: subdevice k of
 * engine A migrates to subdevice k of engine B. */
#define MF_NDEV 3
static const unsigned int mf_queues[MF_NDEV] = { 1, 2, 4 };

struct side {
    struct kit_serve serve;
    struct accel_engine *e;
    struct accel_dev *d[MF_NDEV];
};
static struct side A, B;
static struct kit_log mf_log;

static void
side_up(struct side *s, const char *tag, bool crc_soft)
{
    struct accel_engine_config ec = {
        .nr_queues = 8,
        .nr_threads = 2,
        .poll_us = 2000,
        .crc_soft = crc_soft,
        .log = &mf_log.logger,
    };

    memset(s, 0, sizeof(*s));
    assert_int_equal(accel_engine_create(&ec, &s->e), 0);
    accel_serve(&s->serve, tag, s->e, mf_queues, MF_NDEV, &mf_log.logger, s->d);
}

static int
mf_setup(void **state)
{
    (void)state;
    kit_log_init(&mf_log, NULL, "UMDEV_FUNC_LOG");
    /* The source computes CRC32C slowly (the table), so that a stop finds
     * it inside a long BATCH; the destination with the instruction. */
    side_up(&A, "accelA", true);
    side_up(&B, "accelB", false);
    return 0;
}

static int
mf_teardown(void **state)
{
    struct side *s[] = { &A, &B };
    unsigned int i;

    (void)state;
    for (i = 0; i < 2; i++) {
        assert_int_equal(kit_serve_stop(&s[i]->serve, HARNESS_TIMEOUT_MS), 0);
        assert_int_equal(accel_engine_free_queues(s[i]->e), 8);
        accel_engine_destroy(s[i]->e);
    }
    return 0;
}

#define MF_TEST(f) cmocka_unit_test_setup_teardown(f, mf_setup, mf_teardown)

static void
set_state(struct umdev_client *c, uint32_t to)
{
    uint32_t now = 0xffff;

    assert_int_equal(umdev_client_mig_set_state(c, to, &now), 0);
    assert_int_equal(now, to);
}

static uint32_t
state_of(struct umdev_client *c)
{
    uint32_t st = 0xffff;

    assert_int_equal(umdev_client_mig_state(c, &st), 0);
    return st;
}

#define STREAM_CAP (1u << 20)

/* What the device has for the stream now, appended at @buf + *@len. */
static void
read_stream(struct umdev_client *c, uint8_t *buf, size_t *len)
{
    ssize_t n;

    do {
        n = umdev_client_mig_read(c, buf + *len, STREAM_CAP - *len);
        assert_true(n >= 0);
        *len += (size_t)n;
    } while (n > 0);
    assert_true(*len < STREAM_CAP);
}

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * The VMM on the destination: connected to @path with the source's guest
 * RAM (@src's memfd: RAM that migrated) and eventfds of its own, before
 * the state arrives. Config space (MSI-X, bus master) comes in the state.
 */
static void
guest_attach(struct guest *g, const struct guest *src, const char *path)
{
    struct umdev_client_opts o = { .timeout_ms = HARNESS_TIMEOUT_MS };
    unsigned int i;

    memset(g, 0, sizeof(*g));
    g->nq = src->nq;
    g->nvec = src->nvec;
    g->mem = src->mem;
    g->fd = -1;
    memcpy(g->q, src->q, sizeof(g->q));
    for (i = 0; i <= ACCEL_DEV_MAX_QUEUES; i++)
        g->efd[i] = i < g->nvec ? efd_new() : -1;
    assert_int_equal(umdev_client_connect(path, &o, &g->c), 0);
    assert_int_equal(
        umdev_client_dma_map(g->c, GB, GSIZE, g->mem, src->fd, 0, DMA_RW), 0);
    assert_int_equal(umdev_client_set_irqs(g->c, VFIO_PCI_MSIX_IRQ_INDEX,
                                           VFIO_IRQ_SET_DATA_EVENTFD |
                                               VFIO_IRQ_SET_ACTION_TRIGGER,
                                           0, g->nvec, g->efd, NULL),
                     0);
}

static void
guest_detach(struct guest *g)
{
    unsigned int i;

    umdev_client_destroy(g->c);
    for (i = 0; i <= ACCEL_DEV_MAX_QUEUES; i++)
        if (g->efd[i] >= 0)
            close(g->efd[i]);
}

#define DEPTH 32u
#define XFER (1u * MB)

static uint64_t
crc_src(unsigned int q, uint32_t i)
{
    return DATA + (uint64_t)((q * DEPTH + i) % 8) * XFER;
}

static uint32_t
crc_seed(unsigned int q, uint32_t i)
{
    return 0x5eed0000u ^ (q << 8) ^ i;
}

/* Stream bytes, stop+save time. */
struct mig_result {
    size_t stream_len, state_len;
    uint64_t stop_save_ns;
    unsigned int pending_at_stop;
};

/* Offsets in umdev's stream (docs/PROTOCOL.md "Migration stream"). */
#define HDR_SIZE 64u
#define HDR_CONFIG_LEN 48u
#define SEC_HDR 16u
#define SEC_STATE 2u

/* The state section of @s: its offset and length. */
static size_t
state_section(const uint8_t *s, size_t len, size_t *state_len)
{
    uint32_t cfg_len, kind;
    uint64_t sec_len;
    size_t off;

    memcpy(&cfg_len, s + HDR_CONFIG_LEN, 4);
    for (off = HDR_SIZE + cfg_len; off + SEC_HDR <= len;
         off += SEC_HDR + sec_len) {
        memcpy(&kind, s + off, 4);
        memcpy(&sec_len, s + off + 8, 8);
        if (kind == SEC_STATE) {
            *state_len = (size_t)sec_len;
            return off + SEC_HDR;
        }
    }
    fail_msg("no state section");
    return 0;
}

/*
 * Subdevice @k of A with DEPTH descriptors (CRC32C over XFER bytes, each
 * with a record and an interrupt) posted on every queue, a doorbell only
 * on odd queues (even ones stay wholly in flight: the engine sleeps),
 * migrated at once (@precopy: through PRE_COPY) to subdevice k of B,
 * which finishes them. Every descriptor completes exactly once, with its
 * result and its interrupt, on one side or the other; the stopped source
 * writes nothing and signals nothing; the destination goes on.
 */
static void
migrate_in_flight(unsigned int k, bool precopy, struct mig_result *res)
{
    uint8_t *stream = malloc(STREAM_CAP), *snap = malloc(GSIZE);
    uint32_t expect[4][DEPTH], i;
    uint64_t src_irq[4] = { 0 }, dst_irq[4] = { 0 };
    unsigned int nq = mf_queues[k], q, src_done[4] = { 0 }, other;
    struct guest g, h, o;
    uint64_t t0;

    assert_non_null(stream);
    assert_non_null(snap);
    memset(res, 0, sizeof(*res));
    guest_connect(&g, A.serve.devs[k].path, nq, false);
    for (i = 0; i < 8 * XFER; i++)
        g.mem[DATA - GB + i] = (uint8_t)(i * 131u ^ (i >> 9) ^ k);
    for (q = 0; q < nq; q++) {
        gq_enable(&g, q, DEPTH);
        for (i = 0; i < DEPTH; i++) {
            struct accel_desc d =
                accel_desc_make(ACCEL_OP_CRC32C, XFER, crc_src(q, i), 0);

            d.flags |= ACCEL_DF_INTR;
            d.crc_seed = crc_seed(q, i);
            d.tag = 0x7a600000ull + q * DEPTH + i;
            expect[q][i] =
                accel_crc32c(A.e, crc_seed(q, i), gp(&g, crc_src(q, i)), XFER);
            gq_post(&g, q, d, false);
        }
    }
    if (precopy) {
        set_state(g.c, S_PRE_COPY);
        read_stream(g.c, stream, &res->stream_len);
    }
    for (q = 0; q < nq; q++) {
        accel_ring_store_tail(&g.q[q].r);
        if (q % 2 == 1)
            doorbell(&g, q);
    }
    /* Stop while the engine is inside the odd queues' rings. */
    for (q = 1; q < nq; q += 2) {
        int64_t deadline = kit_now_ms() + HARNESS_TIMEOUT_MS;

        while (rword(&g, q, ACCEL_RING_HEAD) == 0) {
            assert_true(kit_now_ms() < deadline);
            usleep(10);
        }
    }
    t0 = now_ns();
    set_state(g.c, S_STOP_COPY);
    res->stop_save_ns = now_ns() - t0;
    read_stream(g.c, stream, &res->stream_len);
    state_section(stream, res->stream_len, &res->state_len);

    /* Stopped: what is done is done, with its interrupts signalled; the
     * rest stays in the ring. */
    for (q = 0; q < nq; q++) {
        uint32_t head = rword(&g, q, ACCEL_RING_HEAD);

        src_irq[q] = efd_wait(g.efd[q], 0);
        for (i = 0; i < DEPTH; i++) {
            const struct accel_comp *c = comp_of(&g, q, i);

            if (accel_comp_status(c) == ACCEL_ST_NONE)
                continue;
            assert_true(i < head);
            assert_int_equal(c->status, ACCEL_ST_SUCCESS);
            assert_int_equal(c->value, expect[q][i]);
            src_done[q]++;
        }
        assert_int_equal(src_done[q], head);
        assert_int_equal(src_irq[q], head);
        res->pending_at_stop += DEPTH - head;
        /* An even queue never had a doorbell. */
        if (q % 2 == 0)
            assert_int_equal(head, 0);
    }
    assert_true(res->pending_at_stop >= DEPTH);
    /* Quiet: no byte of guest memory changes, no interrupt. Meanwhile
     * another subdevice of the same engine keeps working. */
    memcpy(snap, g.mem, GSIZE);
    other = (k + 1) % MF_NDEV;
    guest_connect(&o, A.serve.devs[other].path, mf_queues[other], false);
    gq_enable(&o, 0, 16);
    i = gq_submit(&o, 0, accel_desc_make(ACCEL_OP_NOP, 0, 0, 0));
    assert_int_equal(gq_wait(&o, 0, i), ACCEL_ST_SUCCESS);
    for (q = 0; q < nq; q++)
        doorbell(&g, q); /* ignored until resume, and it never comes */
    /* A disable would write ABORTED records and HEAD: ignored while
     * stopped, as is clearing DEVCTL.ENABLE. */
    kit_log_watch(&mf_log, "while migration-stopped ignored");
    qwr(&g, 0, ACCEL_Q_CTRL, 0, 4);
    reg_wr(g.c, ACCEL_REG_DEVCTL, 0, 4);
    assert_int_equal(atomic_load(&mf_log.watched), 2);
    kit_log_watch(&mf_log, NULL);
    assert_int_equal(qreg(&g, 0, ACCEL_Q_STATUS), ACCEL_QS_ENABLED);
    usleep(HARNESS_QUIET_MS * 1000);
    assert_int_equal(umdev_client_reset(o.c), 0);
    guest_close(&o);
    assert_memory_equal(snap, g.mem, GSIZE);
    for (q = 0; q < g.nvec; q++)
        assert_int_equal(efd_wait(g.efd[q], 0), 0);
    /* The guest consumed those records: zero them, so that running one
     * again on the destination shows. */
    for (q = 0; q < nq; q++)
        for (i = 0; i < src_done[q]; i++)
            memset(comp_of(&g, q, i), 0, ACCEL_COMP_SIZE);

    /* The destination: a fresh subdevice on another engine. */
    guest_attach(&h, &g, B.serve.devs[k].path);
    set_state(h.c, S_RESUMING);
    assert_int_equal(umdev_client_mig_write(h.c, stream, res->stream_len), 0);
    set_state(h.c, S_RUNNING);
    for (q = 0; q < nq; q++) {
        for (i = src_done[q]; i < DEPTH; i++) {
            const struct accel_comp *c;

            assert_int_equal(gq_wait(&h, q, i), ACCEL_ST_SUCCESS);
            c = comp_of(&h, q, i);
            assert_int_equal(c->value, expect[q][i]);
            assert_int_equal(c->tag, 0x7a600000ull + q * DEPTH + i);
            assert_int_equal(c->bytes, XFER);
        }
        gq_wait_head(&h, q);
        for (i = 0; i < src_done[q]; i++)
            assert_int_equal(comp_status(&h, q, i), ACCEL_ST_NONE);
        dst_irq[q] =
            efd_collect(h.efd[q], DEPTH - src_done[q], HARNESS_TIMEOUT_MS);
        assert_int_equal(src_irq[q] + dst_irq[q], DEPTH);
        /* COMPLETED counts each descriptor once over both sides. */
        assert_int_equal(qreg(&h, q, ACCEL_Q_COMPLETED), DEPTH);
        assert_int_equal(qreg(&h, q, ACCEL_Q_STATUS), ACCEL_QS_ENABLED);
    }
    for (q = 0; q < h.nvec; q++)
        assert_int_equal(efd_wait(h.efd[q], HARNESS_QUIET_MS / 4), 0);
    /* It goes on: more work, its interrupt on the destination's vector. */
    for (q = 0; q < nq; q++) {
        struct accel_desc d = accel_desc_make(ACCEL_OP_FILL, 4096, 0, DATA);

        d.pattern = 0x0102030405060708ull + q;
        d.flags |= ACCEL_DF_INTR;
        i = gq_submit(&h, q, d);
        assert_int_equal(i, DEPTH);
        assert_int_equal(gq_wait(&h, q, i), ACCEL_ST_SUCCESS);
        assert_int_equal(efd_wait(h.efd[q], HARNESS_TIMEOUT_MS), 1);
        assert_int_equal(qreg(&h, q, ACCEL_Q_COMPLETED), DEPTH + 1);
    }
    /* The source never did anything after its stop. */
    assert_int_equal(state_of(g.c), S_STOP_COPY);
    for (q = 0; q < g.nvec; q++)
        assert_int_equal(efd_wait(g.efd[q], 0), 0);
    /* Both subdevices as new for the next run. */
    assert_int_equal(umdev_client_reset(h.c), 0);
    assert_int_equal(umdev_client_reset(g.c), 0);
    guest_detach(&h);
    guest_close(&g);
    free(snap);
    free(stream);
}

static void
report(unsigned int k, bool precopy, const struct mig_result *r)
{
    print_message("accel-%uwq%s: %u descriptors in flight at stop, stream %zu "
                  "bytes (state section %zu), stop+save %.3f ms\n",
                  mf_queues[k], precopy ? " (pre-copy)" : "",
                  r->pending_at_stop, r->stream_len, r->state_len,
                  (double)r->stop_save_ns / 1e6);
}

static void
test_migrate_in_flight(void **state)
{
    struct mig_result r;
    unsigned int k;

    (void)state;
    for (k = 0; k < MF_NDEV; k++) {
        migrate_in_flight(k, false, &r);
        report(k, false, &r);
        /* Bounded: the stop waits for one descriptor per queue at most
         * (the figure printed is the blackout; the target is 20 ms). */
        assert_true(r.stop_save_ns < HARNESS_TIMEOUT_MS * 1000000ull / 5);
    }
}

static void
test_migrate_precopy(void **state)
{
    struct mig_result r;
    unsigned int k;

    (void)state;
    for (k = 0; k < MF_NDEV; k++) {
        migrate_in_flight(k, true, &r);
        report(k, true, &r);
    }
}

/* Every BAR0 word the guest reads (README "BAR0 registers"), and
 * config space. */
static const uint8_t dev_words[] = { 0x00, 0x04, 0x08, 0x0c, 0x10, 0x14,
                                     0x18, 0x1c, 0x20, 0x24, 0x28, 0x30,
                                     0x38, 0x3c, 0x40, 0x44 };
static const uint8_t queue_words[] = {
    0x00, 0x04, 0x08, 0x0c, 0x10, 0x14, 0x18,
    0x1c, 0x20, 0x24, 0x28, 0x30, 0x34, 0x38
};
#define DUMP_WORDS (sizeof(dev_words) + 4 * sizeof(queue_words) + 256 / 4)

static void
dump(struct guest *g, uint32_t *out)
{
    unsigned int i, n = 0, q;

    for (i = 0; i < sizeof(dev_words); i++)
        out[n++] = reg_rd32(g->c, dev_words[i]);
    for (q = 0; q < 4; q++)
        for (i = 0; i < sizeof(queue_words); i++)
            out[n++] = q < g->nq ? qreg(g, q, queue_words[i]) : 0;
    for (i = 0; i < 256; i += 4)
        out[n++] = cfg_read(g->c, i, 4);
    assert_int_equal(n, DUMP_WORDS);
}

/* A destination in use: device on, queues 0 and 1 running with work
 * done, queue 2 (if any) programmed but disabled. */
static void
dest_prepare(struct guest *h)
{
    unsigned int q;
    uint32_t i;

    cfg_enable_msix(h->c);
    guest_enable_device(h);
    for (q = 0; q < 2 && q < h->nq; q++) {
        gq_enable(h, q, 16);
        for (i = 0; i < 3; i++)
            gq_submit(h, q, accel_desc_make(ACCEL_OP_NOP, 0, 0, 0));
        assert_int_equal(gq_wait(h, q, 2), ACCEL_ST_SUCCESS);
        gq_wait_head(h, q);
    }
    if (h->nq > 2) {
        qwr(h, 2, ACCEL_Q_RING_BASE, GB + 0x7000, 8);
        qwr(h, 2, ACCEL_Q_RING_SIZE, 7, 4); /* disabled: any value */
        qwr(h, 2, ACCEL_Q_COAL_COUNT, 9, 4);
    }
}

/* @bad written to @h (RESUMING) and loaded: refused, with a log line
 * containing @why, and every register and config byte as before. Then a
 * reset, and the destination serves again. */
static void
expect_refused(struct guest *h, const uint8_t *bad, size_t len, int write_rc,
               const char *why)
{
    uint32_t before[DUMP_WORDS], after[DUMP_WORDS], now = 0;
    int rc;

    dump(h, before);
    kit_log_watch(&mf_log, why);
    set_state(h->c, S_RESUMING);
    assert_int_equal(umdev_client_mig_write(h->c, bad, len), write_rc);
    rc = umdev_client_mig_set_state(h->c, S_RUNNING, &now);
    assert_true(rc < 0);
    assert_true(state_of(h->c) == S_RESUMING || state_of(h->c) == S_ERROR);
    assert_true(atomic_load(&mf_log.watched) >= 1);
    kit_log_watch(&mf_log, NULL);
    dump(h, after);
    assert_memory_equal(before, after, sizeof(before));
    assert_int_equal(umdev_client_reset(h->c), 0);
    assert_int_equal(state_of(h->c), S_RUNNING);
    dest_prepare(h);
}

/* A copy of @s with the u32 at state offset @off set to @v. */
static uint8_t *
patched(const uint8_t *s, size_t len, size_t off, uint32_t v)
{
    uint8_t *p = malloc(len);
    size_t st, st_len = 0;

    assert_non_null(p);
    memcpy(p, s, len);
    st = state_section(p, len, &st_len);
    assert_true(off + 4 <= st_len);
    memcpy(p + st + off, &v, 4);
    return p;
}

/* State offsets (README "Migration"), for an accel-4wq. */
#define ST_SWERR_HEAD 12u
#define ST_QUEUES 280u
#define ST_QSIZE 56u
#define ST_QUEUE_STATE(q) (ST_QUEUES + (q)*ST_QSIZE)
#define ST_QUEUE_BATCH_NEXT(q) (ST_QUEUE_STATE(q) + 40u)
#define ST_QUEUE_BATCH_OK(q) (ST_QUEUE_STATE(q) + 44u)
#define ST_NCFG (ST_QUEUES + 4 * ST_QSIZE)
#define ST_CFG(i) (ST_NCFG + 4 + (i)*32u)

static void
test_refused(void **state)
{
    uint8_t *stream = malloc(STREAM_CAP), *bad;
    uint32_t src_dump[DUMP_WORDS], dst_dump[DUMP_WORDS];
    size_t len = 0, st, st_len = 0;
    struct guest g, h, h2;
    unsigned int q, i;

    (void)state;
    assert_non_null(stream);
    /* A running accel-4wq's stream. */
    guest_connect(&g, A.serve.devs[2].path, 4, false);
    for (q = 0; q < 4; q++) {
        gq_enable(&g, q, DEPTH);
        i = gq_submit(&g, q, accel_desc_make(ACCEL_OP_NOP, 0, 0, 0));
        assert_int_equal(gq_wait(&g, q, i), ACCEL_ST_SUCCESS);
        gq_wait_head(&g, q);
    }
    set_state(g.c, S_STOP_COPY);
    read_stream(g.c, stream, &len);
    dump(&g, src_dump);

    /* A 2-queue destination refuses a 4-queue stream at its header. */
    guest_connect(&h2, B.serve.devs[1].path, 2, false);
    dest_prepare(&h2);
    expect_refused(&h2, stream, len, -EINVAL, "configuration");
    guest_close(&h2);

    guest_connect(&h, B.serve.devs[2].path, 4, false);
    dest_prepare(&h);
    /* Truncated: the stream ends before its end section. */
    expect_refused(&h, stream, len - 1, 0, "ends early");
    /* Truncated inside the state (the framing says so). */
    bad = malloc(len);
    assert_non_null(bad);
    memcpy(bad, stream, len);
    st = state_section(bad, len, &st_len);
    {
        uint64_t shorter = st_len - 8;

        memcpy(bad + st - 8, &shorter, 8);
        memmove(bad + st + shorter, bad + st + st_len, len - st - st_len);
    }
    expect_refused(&h, bad, len - 8, 0, "config space state length");
    free(bad);
    /* Indices out of range: the error log's, a configuration's queue
     * index and count, a running queue's ring size and vector, a queue
     * state. */
    bad = patched(stream, len, ST_SWERR_HEAD, ACCEL_SWERR_DEPTH);
    expect_refused(&h, bad, len, 0, "error log indices");
    free(bad);
    bad = patched(stream, len, ST_CFG(1), 4);
    expect_refused(&h, bad, len, 0, "index out of range");
    free(bad);
    bad = patched(stream, len, ST_NCFG, 5);
    expect_refused(&h, bad, len, 0, "count out of range");
    free(bad);
    bad = patched(stream, len, ST_CFG(0) + 4, 3); /* ring_size */
    expect_refused(&h, bad, len, 0, "queue 0 cannot be");
    free(bad);
    bad = patched(stream, len, ST_CFG(3) + 20, 5); /* vector */
    expect_refused(&h, bad, len, 0, "queue 3 cannot be");
    free(bad);
    bad = patched(stream, len, ST_QUEUE_STATE(2), 3);
    expect_refused(&h, bad, len, 0, "queue 2 cannot be");
    free(bad);
    /* A batch position past MAX_BATCH, or more elements succeeded than
     * ran. */
    bad = patched(stream, len, ST_QUEUE_BATCH_NEXT(1), ACCEL_BATCH_MAX);
    expect_refused(&h, bad, len, 0, "queue 1 cannot be");
    free(bad);
    bad = patched(stream, len, ST_QUEUE_BATCH_OK(1), 1);
    expect_refused(&h, bad, len, 0, "queue 1 cannot be");
    free(bad);
    /* A damaged config space blob (its first byte). */
    bad = malloc(len);
    assert_non_null(bad);
    memcpy(bad, stream, len);
    st = state_section(bad, len, &st_len);
    bad[st + ST_CFG(4) + 4] ^= 0xff;
    expect_refused(&h, bad, len, 0, "config space");
    free(bad);

    /* The stream itself loads, and the destination (over the source's
     * guest RAM, as after a real migration) then reads as the source
     * did. */
    assert_int_equal(umdev_client_reset(h.c), 0);
    guest_close(&h);
    guest_attach(&h, &g, B.serve.devs[2].path);
    set_state(h.c, S_RESUMING);
    assert_int_equal(umdev_client_mig_write(h.c, stream, len), 0);
    set_state(h.c, S_RUNNING);
    dump(&h, dst_dump);
    assert_memory_equal(src_dump, dst_dump, sizeof(src_dump));
    assert_int_equal(umdev_client_reset(h.c), 0);
    assert_int_equal(umdev_client_reset(g.c), 0);
    guest_detach(&h);
    guest_close(&g);
    free(stream);
}

/* Pre-copy sends every queue's configuration; the sizes extension then
 * counts what the guest changed since, and the final state carries only
 * that. */
static void
test_precopy_dirty(void **state)
{
    struct umdev_client_opts o = { .timeout_ms = HARNESS_TIMEOUT_MS,
                                   .precopy_info = true };
    uint32_t src_dump[DUMP_WORDS], dst_dump[DUMP_WORDS], ncfg;
    uint8_t *stream = malloc(STREAM_CAP);
    struct umdev_wire_precopy_info pi;
    struct guest g = { .nq = 2 }, h = { .nq = 2 };
    size_t len = 0, early, st, st_len = 0;

    (void)state;
    assert_non_null(stream);
    assert_int_equal(umdev_client_connect(A.serve.devs[1].path, &o, &g.c), 0);
    assert_true(umdev_client_caps(g.c)->precopy_info);
    qwr(&g, 0, ACCEL_Q_RING_BASE, GB + 0x40000, 8);
    qwr(&g, 1, ACCEL_Q_PRIORITY, 5, 4);
    set_state(g.c, S_PRE_COPY);
    assert_int_equal(umdev_client_precopy_info(g.c, &pi), 0);
    early = (size_t)pi.initial_bytes;
    read_stream(g.c, stream, &len);
    assert_int_equal(len, early);
    assert_int_equal(umdev_client_precopy_info(g.c, &pi), 0);
    assert_int_equal(pi.initial_bytes, 0);
    assert_int_equal(pi.dirty_bytes, 0);
    /* One queue's configuration changes, and changes back. */
    qwr(&g, 1, ACCEL_Q_COAL_USEC, 50, 4);
    assert_int_equal(umdev_client_precopy_info(g.c, &pi), 0);
    assert_int_equal(pi.dirty_bytes, 32);
    qwr(&g, 1, ACCEL_Q_COAL_USEC, 0, 4);
    assert_int_equal(umdev_client_precopy_info(g.c, &pi), 0);
    assert_int_equal(pi.dirty_bytes, 0);
    qwr(&g, 0, ACCEL_Q_INT_VECTOR, 2, 4);
    assert_int_equal(umdev_client_precopy_info(g.c, &pi), 0);
    assert_int_equal(pi.dirty_bytes, 32);
    set_state(g.c, S_STOP_COPY);
    read_stream(g.c, stream, &len);
    st = state_section(stream, len, &st_len);
    memcpy(&ncfg, stream + st + ST_QUEUES + 2 * ST_QSIZE, 4);
    assert_int_equal(ncfg, 1);
    dump(&g, src_dump);

    assert_int_equal(umdev_client_connect(B.serve.devs[1].path, &o, &h.c), 0);
    set_state(h.c, S_RESUMING);
    assert_int_equal(umdev_client_mig_write(h.c, stream, len), 0);
    set_state(h.c, S_RUNNING);
    dump(&h, dst_dump);
    assert_memory_equal(src_dump, dst_dump, sizeof(src_dump));
    assert_int_equal(qreg(&h, 0, ACCEL_Q_INT_VECTOR), 2);
    assert_int_equal(qreg(&h, 1, ACCEL_Q_PRIORITY), 5);
    assert_int_equal(umdev_client_reset(h.c), 0);
    assert_int_equal(umdev_client_reset(g.c), 0);
    umdev_client_destroy(h.c);
    umdev_client_destroy(g.c);
    free(stream);
}

/*
 * A BATCH of MAX_BATCH elements (CRC32C of MAX_XFER bytes each) is running
 * when the source stops: the stop waits for one element, not the batch;
 * the state carries the batch's position and the destination runs the
 * rest. Each element completes once, with its interrupt; the batch's
 * record counts all of them; the descriptor after it runs after it.
 */
static void
test_migrate_batch(void **state)
{
    const uint64_t list = DATA, recs = DATA + 64 * 1024, bufs = DATA + MB;
    const uint32_t xfer = ACCEL_DEFAULT_MAX_TRANSFER, n = ACCEL_BATCH_MAX;
    uint8_t *stream = malloc(STREAM_CAP), *snap = malloc(GSIZE);
    struct accel_desc *el = malloc(n * sizeof(*el));
    uint32_t expect[4], i, done = 0, ib, inop;
    uint64_t t0, stop_ns, src_irq, dst_irq;
    struct accel_desc bd, nop;
    const struct accel_comp *c;
    struct guest g, h;
    size_t len = 0;
    int64_t deadline;

    (void)state;
    assert_non_null(stream);
    assert_non_null(snap);
    assert_non_null(el);
    guest_connect(&g, A.serve.devs[0].path, 1, false);
    for (i = 0; i < 4 * xfer; i++)
        g.mem[bufs - GB + i] = (uint8_t)(i * 151u ^ (i >> 11));
    for (i = 0; i < 4; i++)
        expect[i] = accel_crc32c(B.e, 0, gp(&g, bufs + i * xfer), xfer);
    for (i = 0; i < n; i++) {
        el[i] =
            accel_desc_make(ACCEL_OP_CRC32C, xfer, bufs + (i % 4) * xfer, 0);
        el[i].flags |= ACCEL_DF_INTR;
        el[i].comp = recs + (uint64_t)i * ACCEL_COMP_SIZE;
        el[i].tag = i;
    }
    memcpy(gp(&g, list), el, n * sizeof(*el));
    memset(gp(&g, recs), 0, n * ACCEL_COMP_SIZE);
    gq_enable(&g, 0, DEPTH);
    bd = accel_desc_make(ACCEL_OP_BATCH, n, list, 0);
    bd.flags |= ACCEL_DF_INTR;
    nop = accel_desc_make(ACCEL_OP_NOP, 0, 0, 0);
    nop.flags |= ACCEL_DF_INTR;
    ib = gq_post(&g, 0, bd, false);
    inop = gq_post(&g, 0, nop, false);
    gq_kick(&g, 0);
    deadline = kit_now_ms() + HARNESS_TIMEOUT_MS;
    while (accel_comp_status(gp(&g, recs)) == ACCEL_ST_NONE) {
        assert_true(kit_now_ms() < deadline);
        usleep(10);
    }
    t0 = now_ns();
    set_state(g.c, S_STOP_COPY);
    stop_ns = now_ns() - t0;
    read_stream(g.c, stream, &len);

    /* A prefix of the elements is done, the batch is not. */
    assert_int_equal(comp_status(&g, 0, ib), ACCEL_ST_NONE);
    assert_int_equal(rword(&g, 0, ACCEL_RING_HEAD), 0);
    while (done < n &&
           accel_comp_status(gp(&g, recs + done * ACCEL_COMP_SIZE)) != 0)
        done++;
    for (i = 0; i < n; i++) {
        c = gp(&g, recs + (uint64_t)i * ACCEL_COMP_SIZE);
        if (i >= done) {
            assert_int_equal(c->status, ACCEL_ST_NONE);
            continue;
        }
        assert_int_equal(c->status, ACCEL_ST_SUCCESS);
        assert_int_equal(c->value, expect[i % 4]);
    }
    assert_true(done >= 1 && done < n);
    src_irq = efd_wait(g.efd[0], 0);
    assert_int_equal(src_irq, done);
    print_message("batch: stopped after %u of %u elements, stop+save %.3f ms\n",
                  done, n, (double)stop_ns / 1e6);
    memcpy(snap, g.mem, GSIZE);
    usleep(HARNESS_QUIET_MS * 1000);
    assert_memory_equal(snap, g.mem, GSIZE);
    assert_int_equal(efd_wait(g.efd[0], 0), 0);
    memset(gp(&g, recs), 0, done * ACCEL_COMP_SIZE);

    guest_attach(&h, &g, B.serve.devs[0].path);
    set_state(h.c, S_RESUMING);
    assert_int_equal(umdev_client_mig_write(h.c, stream, len), 0);
    set_state(h.c, S_RUNNING);
    /* The rest of the batch is some 2 GiB of CRC32C: under a sanitizer
     * on a shared 2-CPU machine that took more than the usual 5 s. */
    assert_int_equal(gq_wait_ms(&h, 0, inop, 60000), ACCEL_ST_SUCCESS);
    c = comp_of(&h, 0, ib);
    assert_int_equal(c->status, ACCEL_ST_SUCCESS);
    assert_int_equal(c->bytes, n); /* elements that succeeded: all */
    for (i = 0; i < n; i++) {
        c = gp(&g, recs + (uint64_t)i * ACCEL_COMP_SIZE);
        if (i < done) {
            assert_int_equal(c->status, ACCEL_ST_NONE); /* not run again */
            continue;
        }
        assert_int_equal(c->status, ACCEL_ST_SUCCESS);
        assert_int_equal(c->value, expect[i % 4]);
        assert_int_equal(c->tag, i);
    }
    /* Every element, the batch and the NOP: one interrupt and one count
     * each, over both sides. */
    dst_irq = efd_collect(h.efd[0], n + 2 - done, HARNESS_TIMEOUT_MS);
    assert_int_equal(src_irq + dst_irq, n + 2);
    assert_int_equal(efd_wait(h.efd[0], HARNESS_QUIET_MS), 0);
    assert_int_equal(qreg(&h, 0, ACCEL_Q_COMPLETED), n + 2);
    assert_int_equal(umdev_client_reset(h.c), 0);
    assert_int_equal(umdev_client_reset(g.c), 0);
    guest_detach(&h);
    guest_close(&g);
    free(el);
    free(snap);
    free(stream);
}

static const struct CMUnitTest tests[] = {
    AF_TEST(test_dirty_log),       MF_TEST(test_migrate_in_flight),
    MF_TEST(test_migrate_precopy), MF_TEST(test_refused),
    MF_TEST(test_precopy_dirty),   MF_TEST(test_migrate_batch),
};

HARNESS_MAIN("func.accel_mig", tests)
