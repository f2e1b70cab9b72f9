/*
 * Migration v2 through the client library against the test device on a
 * real socket: every pair of states (the kernel's arcs, walked where it
 * walks them, and every refusal leaving the state as it was), the device
 * really stopped in the stopped states, a save on one server loaded on
 * another with every guest-visible register and byte equal, the pre-copy
 * sizes extension, and each refused stream leaving the device serving.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "umdev/client_testing.h"

#define S_ERROR VFIO_USER_DEVICE_STATE_ERROR
#define S_STOP VFIO_USER_DEVICE_STATE_STOP
#define S_RUNNING VFIO_USER_DEVICE_STATE_RUNNING
#define S_STOP_COPY VFIO_USER_DEVICE_STATE_STOP_COPY
#define S_RESUMING VFIO_USER_DEVICE_STATE_RESUMING
#define S_RUNNING_P2P VFIO_USER_DEVICE_STATE_RUNNING_P2P
#define S_PRE_COPY VFIO_USER_DEVICE_STATE_PRE_COPY
#define S_PRE_COPY_P2P VFIO_USER_DEVICE_STATE_PRE_COPY_P2P

/* Offsets in umdev's stream header (docs/PROTOCOL.md "Migration stream"). */
#define HDR_FORMAT 8
#define HDR_VERSION 12
#define HDR_TYPE 16
#define HDR_SIZE 64

#define STREAM_CAP (1u << 20)
#define N_ELEM(a) (sizeof(a) / sizeof((a)[0]))

static uint32_t
state_of(struct umdev_client *c)
{
    uint32_t st = 0xffff;

    assert_int_equal(umdev_client_mig_state(c, &st), 0);
    return st;
}

static void
set_state(struct umdev_client *c, uint32_t to)
{
    uint32_t now = 0xffff;

    assert_int_equal(umdev_client_mig_set_state(c, to, &now), 0);
    assert_int_equal(now, to);
    assert_int_equal(state_of(c), to);
}

/* The whole stream of a device in a saving state, read to its end. */
static size_t
read_all(struct umdev_client *c, uint8_t *buf, size_t cap)
{
    size_t len = 0;
    ssize_t n;

    /* Small reads, so the stream crosses many messages. */
    do {
        n = umdev_client_mig_read(c, buf + len,
                                  cap - len < 3000 ? cap - len : 3000);
        assert_true(n >= 0);
        len += (size_t)n;
    } while (n == 3000);
    assert_true(len < cap);
    return len;
}

/* A full stream of H's device as it is now (RUNNING before and after). */
static size_t
capture(struct umdev_client *c, uint8_t *buf)
{
    size_t len;

    set_state(c, S_STOP_COPY);
    len = read_all(c, buf, STREAM_CAP);
    set_state(c, S_RUNNING);
    return len;
}

/* Does the device act (RUNNING, PRE_COPY) or not (the stopped states)?
 * Raising the INTx line counts in IRQ_RAISED only when it acts. */
static bool
device_acts(struct umdev_client *c)
{
    uint32_t before = reg_rd32(c, TESTDEV_REG_IRQ_RAISED);
    uint32_t after;

    reg_wr(c, TESTDEV_REG_IRQ_LEVEL, 0, 4);
    reg_wr(c, TESTDEV_REG_IRQ_LEVEL, 1, 4);
    after = reg_rd32(c, TESTDEV_REG_IRQ_RAISED);
    reg_wr(c, TESTDEV_REG_IRQ_LEVEL, 0, 4);
    return after != before;
}

static uint8_t *stream;
static size_t stream_len;

/* From RUNNING to @st by legal arcs (a stream written in RESUMING). */
static void
reach(struct umdev_client *c, uint32_t st)
{
    switch (st) {
    case S_RESUMING:
        set_state(c, S_RESUMING);
        assert_int_equal(umdev_client_mig_write(c, stream, stream_len), 0);
        break;
    default:
        set_state(c, st);
        break;
    }
}

/* What the kernel's arcs allow between the states vfio-user uses. */
static bool
legal(uint32_t from, uint32_t to)
{
    if (to != S_STOP && to != S_RUNNING && to != S_STOP_COPY &&
        to != S_RESUMING && to != S_PRE_COPY)
        return false;
    return !(from == S_STOP_COPY && to == S_PRE_COPY);
}

static void
test_every_pair(void **state)
{
    static const uint32_t from_states[] = { S_STOP, S_RUNNING, S_STOP_COPY,
                                            S_RESUMING, S_PRE_COPY };
    static const uint32_t to_states[] = {
        S_ERROR,       S_STOP,     S_RUNNING,      S_STOP_COPY, S_RESUMING,
        S_RUNNING_P2P, S_PRE_COPY, S_PRE_COPY_P2P, 8,           0xffffffffu
    };
    struct umdev_client *c = harness_connect(&H, NULL);
    uint64_t flags = 0;
    size_t i, j;

    (void)state;
    assert_int_equal(umdev_client_mig_flags(c, &flags), 0);
    assert_int_equal(flags, VFIO_USER_MIGRATION_STOP_COPY |
                                VFIO_USER_MIGRATION_PRE_COPY);
    assert_int_equal(state_of(c), S_RUNNING);
    stream = malloc(STREAM_CAP);
    assert_non_null(stream);
    stream_len = capture(c, stream);
    for (i = 0; i < N_ELEM(from_states); i++) {
        for (j = 0; j < N_ELEM(to_states); j++) {
            uint32_t from = from_states[i], to = to_states[j], now = 0;
            int rc;

            reach(c, from);
            rc = umdev_client_mig_set_state(c, to, &now);
            if (legal(from, to)) {
                if (rc != 0)
                    fail_msg("%u -> %u: %d", from, to, rc);
                assert_int_equal(now, to);
            } else {
                if (rc != -EINVAL)
                    fail_msg("%u -> %u: %d, want EINVAL", from, to, rc);
                to = from; /* nothing changed */
            }
            assert_int_equal(state_of(c), to);
            /* The stopped states do nothing to the guest. */
            assert_int_equal(device_acts(c),
                             to == S_RUNNING || to == S_PRE_COPY);
            /* A reset is the way back to RUNNING from anywhere. */
            assert_int_equal(umdev_client_reset(c), 0);
            assert_int_equal(state_of(c), S_RUNNING);
            assert_true(device_acts(c));
        }
    }
    free(stream);
    umdev_client_destroy(c);
}

/* Guest-visible state to move: registers, the scratch array, BAR2. */
static void
dirty_device(struct umdev_client *c, uint8_t seed)
{
    uint8_t arr[TESTDEV_SCRATCH_ARRAY_SIZE], *bar2 = malloc(TESTDEV_BAR2_SIZE);
    size_t i;

    assert_non_null(bar2);
    for (i = 0; i < sizeof(arr); i++)
        arr[i] = (uint8_t)(seed + i * 7);
    for (i = 0; i < TESTDEV_BAR2_SIZE; i++)
        bar2[i] = (uint8_t)(seed ^ (i * 13) ^ (i >> 8));
    reg_wr(c, TESTDEV_REG_SCRATCH, 0x1000u + seed, 4);
    reg_wr(c, TESTDEV_REG_SCRATCH64, 0x1122334455667700ull + seed, 8);
    reg_wr(c, TESTDEV_REG_DMA_ADDR, 0xabc000ull + seed, 8);
    reg_wr(c, TESTDEV_REG_DMA_LEN, 64u + seed, 4);
    reg_wr(c, TESTDEV_REG_IRQ_LEVEL, 1, 4);
    assert_int_equal(umdev_client_region_write(c, UMDEV_PCI_BAR0_REGION,
                                               TESTDEV_SCRATCH_ARRAY, arr,
                                               sizeof(arr)),
                     0);
    assert_int_equal(umdev_client_region_write(c, UMDEV_PCI_BAR2_REGION, 0,
                                               bar2, TESTDEV_BAR2_SIZE),
                     0);
    free(bar2);
}

struct snapshot {
    uint64_t regs[8];
    uint8_t arr[TESTDEV_SCRATCH_ARRAY_SIZE];
    uint8_t bar2[TESTDEV_BAR2_SIZE];
};

static void
snapshot(struct umdev_client *c, struct snapshot *s)
{
    memset(s, 0, sizeof(*s));
    s->regs[0] = reg_rd32(c, TESTDEV_REG_SCRATCH);
    s->regs[1] = reg_rd64(c, TESTDEV_REG_SCRATCH64);
    s->regs[2] = reg_rd64(c, TESTDEV_REG_DMA_ADDR);
    s->regs[3] = reg_rd32(c, TESTDEV_REG_DMA_LEN);
    s->regs[4] = reg_rd32(c, TESTDEV_REG_DMA_STATUS);
    s->regs[5] = reg_rd32(c, TESTDEV_REG_IRQ_LEVEL);
    s->regs[6] = reg_rd32(c, TESTDEV_REG_IRQ_RAISED);
    s->regs[7] = reg_rd32(c, TESTDEV_REG_RESETS);
    assert_int_equal(umdev_client_region_read(c, UMDEV_PCI_BAR0_REGION,
                                              TESTDEV_SCRATCH_ARRAY, s->arr,
                                              sizeof(s->arr)),
                     0);
    assert_int_equal(umdev_client_region_read(c, UMDEV_PCI_BAR2_REGION, 0,
                                              s->bar2, sizeof(s->bar2)),
                     0);
}

static void
assert_same(const struct snapshot *a, const struct snapshot *b)
{
    size_t i;

    for (i = 0; i < N_ELEM(a->regs); i++)
        if (a->regs[i] != b->regs[i])
            fail_msg("register %zu: %#jx, want %#jx", i, (uintmax_t)b->regs[i],
                     (uintmax_t)a->regs[i]);
    assert_memory_equal(a->arr, b->arr, sizeof(a->arr));
    assert_memory_equal(a->bar2, b->bar2, sizeof(a->bar2));
}

/* Load @buf into a fresh second server's device, RUNNING after. */
static void
load_into(struct harness *d, struct umdev_client *dc, const uint8_t *buf,
          size_t len)
{
    (void)d;
    set_state(dc, S_RESUMING);
    assert_int_equal(umdev_client_mig_write(dc, buf, len), 0);
    set_state(dc, S_RUNNING);
}

static void
test_save_load_two_servers(void **state)
{
    struct umdev_client_opts opts = { .precopy_info = true };
    struct umdev_client *c = harness_connect(&H, &opts);
    struct snapshot *src = malloc(sizeof(*src)), *dst = malloc(sizeof(*dst));
    uint8_t *buf = malloc(STREAM_CAP);
    struct umdev_wire_precopy_info pi;
    struct harness D;
    struct umdev_client *dc;
    uint8_t page[64];
    size_t len, all;

    (void)state;
    assert_non_null(src);
    assert_non_null(dst);
    assert_non_null(buf);
    assert_true(umdev_client_caps(c)->precopy_info);
    dirty_device(c, 5);
    reg_wr(c, TESTDEV_REG_IRQ_LEVEL, 0, 4);
    reg_wr(c, TESTDEV_REG_IRQ_LEVEL, 1, 4); /* IRQ_RAISED 2, line high */

    /* Pre-copy: BAR2 goes early; the sizes say so. */
    assert_int_equal(umdev_client_precopy_info(c, &pi), -EINVAL);
    set_state(c, S_PRE_COPY);
    assert_int_equal(umdev_client_precopy_info(c, &pi), 0);
    assert_true(pi.initial_bytes > TESTDEV_BAR2_SIZE);
    assert_int_equal(pi.dirty_bytes, 0);
    len = read_all(c, buf, STREAM_CAP);
    assert_int_equal(len, pi.initial_bytes);
    assert_int_equal(umdev_client_precopy_info(c, &pi), 0);
    assert_int_equal(pi.initial_bytes, 0);
    /* The guest keeps running: one page and a register change. */
    memset(page, 0x5a, sizeof(page));
    assert_int_equal(umdev_client_region_write(c, UMDEV_PCI_BAR2_REGION,
                                               3 * 4096 + 100, page,
                                               sizeof(page)),
                     0);
    reg_wr(c, TESTDEV_REG_SCRATCH, 0xfeedu, 4);
    assert_int_equal(umdev_client_precopy_info(c, &pi), 0);
    assert_int_equal(pi.dirty_bytes, 4096);
    set_state(c, S_STOP_COPY);
    all = len + read_all(c, buf + len, STREAM_CAP - len);
    /* Only the changed page went again. */
    assert_true(all - len < 2 * 4096);
    set_state(c, S_STOP);
    snapshot(c, src);

    harness_start(&D);
    dc = harness_connect(&D, NULL);
    /* Without the extension it is an unknown feature. */
    assert_false(umdev_client_caps(dc)->precopy_info);
    assert_int_equal(umdev_client_precopy_info(dc, &pi), -ENOTSUP);
    load_into(&D, dc, buf, all);
    snapshot(dc, dst);
    assert_same(src, dst);
    assert_int_equal(dst->regs[0], 0xfeedu);
    assert_int_equal(dst->regs[6], 2);

    /* Without pre-copy: STOP -> STOP_COPY carries everything. */
    dirty_device(c, 9);
    snapshot(c, src);
    set_state(c, S_STOP_COPY);
    len = read_all(c, buf, STREAM_CAP);
    assert_int_equal(umdev_client_reset(dc), 0);
    load_into(&D, dc, buf, len);
    snapshot(dc, dst);
    assert_same(src, dst);

    umdev_client_destroy(dc);
    harness_stop(&D);
    umdev_client_destroy(c);
    free(buf);
    free(src);
    free(dst);
}

/*
 * Config space in the stream. What a guest reads of lib/pci's state:
 * config space (the test device's is 256 bytes), the MSI-X table and PBA
 * through BAR0.
 */
struct pci_view {
    uint8_t cfg[256];
    uint32_t table[TESTDEV_MSIX_VECTORS * 4];
    uint64_t pba;
};

static void
pci_view(struct umdev_client *c, struct pci_view *v)
{
    uint32_t i;

    memset(v, 0, sizeof(*v));
    for (i = 0; i < sizeof(v->cfg); i += 4)
        assert_int_equal(umdev_client_region_read(c, UMDEV_PCI_CONFIG_REGION, i,
                                                  v->cfg + i, 4),
                         0);
    for (i = 0; i < N_ELEM(v->table); i++)
        v->table[i] = reg_rd32(c, TESTDEV_MSIX_TABLE + 4 * i);
    v->pba = reg_rd64(c, TESTDEV_MSIX_PBA);
}

static void
assert_same_pci(const struct pci_view *a, const struct pci_view *b)
{
    size_t i;

    for (i = 0; i < sizeof(a->cfg); i++)
        if (a->cfg[i] != b->cfg[i])
            fail_msg("config byte %#zx: %#x, want %#x", i, b->cfg[i],
                     a->cfg[i]);
    for (i = 0; i < N_ELEM(a->table); i++)
        if (a->table[i] != b->table[i])
            fail_msg("MSI-X table dword %zu: %#x, want %#x", i, b->table[i],
                     a->table[i]);
    if (a->pba != b->pba)
        fail_msg("PBA %#jx, want %#jx", (uintmax_t)b->pba, (uintmax_t)a->pba);
}

static void
cfg_wr(struct umdev_client *c, uint64_t off, uint32_t v, size_t len)
{
    assert_int_equal(
        umdev_client_region_write(c, UMDEV_PCI_CONFIG_REGION, off, &v, len), 0);
}

#define MSIX_CTRL(v)                                                           \
    (TESTDEV_MSIX_TABLE + (v)*PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL)

/* What a guest driver sets up: decoding and bus mastering on, INTx
 * disabled (the line held high behind it), BARs placed, MSI-X on with
 * every vector programmed, vector 1 masked and pending. */
static void
program_pci(struct umdev_client *c, uint32_t seed)
{
    uint32_t v;

    cfg_set_command(c, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
                           PCI_COMMAND_INTX_DISABLE);
    cfg_wr(c, PCI_BASE_ADDRESS_0, 0xfe000000u + (seed << 12), 4);
    cfg_wr(c, PCI_BASE_ADDRESS_2, 0xc0000000u, 4);
    cfg_wr(c, PCI_BASE_ADDRESS_3, seed, 4);
    cfg_wr(c, PCI_CACHE_LINE_SIZE, 0x10, 1);
    cfg_wr(c, PCI_INTERRUPT_LINE, 10 + seed, 1);
    for (v = 0; v < TESTDEV_MSIX_VECTORS; v++) {
        uint64_t e = TESTDEV_MSIX_TABLE + v * PCI_MSIX_ENTRY_SIZE;

        reg_wr(c, e + PCI_MSIX_ENTRY_LOWER_ADDR, 0xfee00000u + 4 * v, 4);
        reg_wr(c, e + PCI_MSIX_ENTRY_UPPER_ADDR, 0, 4);
        reg_wr(c, e + PCI_MSIX_ENTRY_DATA, 0x4000u + 16 * seed + v, 4);
        reg_wr(c, MSIX_CTRL(v), v == 1 ? PCI_MSIX_ENTRY_CTRL_MASKBIT : 0, 4);
    }
    cfg_enable_msix(c);
    reg_wr(c, TESTDEV_REG_MSIX_TRIGGER, 1, 4);
    assert_int_equal(reg_rd64(c, TESTDEV_MSIX_PBA), 1u << 1);
    reg_wr(c, TESTDEV_REG_IRQ_LEVEL, 1, 4);
    assert_true(cfg_read(c, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
}

static void
test_config_space_migrates(void **state)
{
    struct umdev_client *c = harness_connect(&H, NULL);
    struct pci_view *src = malloc(sizeof(*src)), *dst = malloc(sizeof(*dst));
    uint8_t *buf = malloc(STREAM_CAP);
    struct umdev_client *dc;
    struct harness D;
    int efd = efd_new();
    size_t len;

    (void)state;
    assert_non_null(src);
    assert_non_null(dst);
    assert_non_null(buf);
    program_pci(c, 3);
    pci_view(c, src);
    len = capture(c, buf);

    harness_start(&D);
    dc = harness_connect(&D, NULL);
    irq_trigger(dc, VFIO_PCI_MSIX_IRQ_INDEX, 1, efd);
    load_into(&D, dc, buf, len);
    pci_view(dc, dst);
    assert_same_pci(src, dst);
    /* Still masked: the pending bit waits. */
    assert_int_equal(efd_wait(efd, 50), 0);
    /* The guest unmasks it on the destination: it arrives there. */
    reg_wr(dc, MSIX_CTRL(1), 0, 4);
    assert_int_equal(efd_wait(efd, HARNESS_TIMEOUT_MS), 1);
    assert_int_equal(reg_rd64(dc, TESTDEV_MSIX_PBA), 0);
    /* And the destination's MSI-X works as programmed. */
    reg_wr(dc, TESTDEV_REG_MSIX_TRIGGER, 1, 4);
    assert_int_equal(efd_wait(efd, HARNESS_TIMEOUT_MS), 1);

    close(efd);
    umdev_client_destroy(dc);
    harness_stop(&D);
    umdev_client_destroy(c);
    free(buf);
    free(src);
    free(dst);
}

/* lib/pci's blob inside a testdev stream (docs/PROTOCOL.md): after the
 * device's registers and the blob's uint32_t length. */
#define PCI_BLOB_CFG 128
#define PCI_BLOB_VERSION 8
#define TESTDEV_MIG_REGS 296

static size_t
pci_blob_at(const uint8_t *s, size_t len)
{
    const uint8_t *m = memmem(s, len, "UMDEVPCI", 8);

    assert_non_null(m);
    return (size_t)(m - s);
}

/* Copy @good (@len bytes) to @out with the last @cut bytes of the PCI blob
 * dropped, its length and the state section's fixed to match, so only
 * lib/pci sees a short blob. Returns the new length. */
static size_t
cut_blob(const uint8_t *good, size_t len, uint8_t *out, uint32_t cut)
{
    size_t at = pci_blob_at(good, len);
    size_t sect = at - 4 - TESTDEV_MIG_REGS - 16;
    uint32_t blen;
    uint64_t slen;

    memcpy(&blen, good + at - 4, 4);
    memcpy(out, good, at + blen - cut);
    memcpy(out + at + blen - cut, good + at + blen, len - at - blen);
    blen -= cut;
    memcpy(out + at - 4, &blen, 4);
    memcpy(&slen, out + sect + 8, 8);
    slen -= cut;
    memcpy(out + sect + 8, &slen, 8);
    return len - cut;
}

/* @good as the test device's state version 1 wrote it: no PCI blob. */
static size_t
to_version1(const uint8_t *good, size_t len, uint8_t *out)
{
    size_t at = pci_blob_at(good, len);
    size_t sect = at - 4 - TESTDEV_MIG_REGS - 16;
    uint32_t blen, v1 = 1;
    uint64_t slen;

    memcpy(&blen, good + at - 4, 4);
    memcpy(out, good, at - 4);
    memcpy(out + at - 4, good + at + blen, len - at - blen);
    memcpy(out + HDR_VERSION, &v1, 4);
    memcpy(&slen, out + sect + 8, 8);
    slen -= 4 + blen;
    memcpy(out + sect + 8, &slen, 8);
    return len - 4 - blen;
}

/* The destination, programmed differently, refuses @buf when leaving
 * RESUMING with @err; its device is in ERROR and lib/pci's state reads
 * exactly as before. */
static void
pci_refused(struct umdev_client *dc, const uint8_t *buf, size_t len, int err)
{
    struct pci_view before, after;
    uint32_t now = 0;

    assert_int_equal(umdev_client_reset(dc), 0);
    program_pci(dc, 7);
    set_state(dc, S_STOP);
    pci_view(dc, &before);
    set_state(dc, S_RESUMING);
    assert_int_equal(umdev_client_mig_write(dc, buf, len), 0);
    assert_int_equal(umdev_client_mig_set_state(dc, S_RUNNING, &now), err);
    assert_int_equal(state_of(dc), S_ERROR);
    pci_view(dc, &after);
    assert_same_pci(&before, &after);
    assert_int_equal(umdev_client_reset(dc), 0);
    assert_int_equal(state_of(dc), S_RUNNING);
}

static void
test_config_space_refusals(void **state)
{
    struct umdev_client *c = harness_connect(&H, NULL);
    uint8_t *good = malloc(STREAM_CAP), *bad = malloc(STREAM_CAP);
    struct umdev_client *dc;
    struct harness D;
    size_t len, at, n;
    int msix;

    (void)state;
    assert_non_null(good);
    assert_non_null(bad);
    program_pci(c, 3);
    len = capture(c, good);
    at = pci_blob_at(good, len);
    msix = umdev_client_pci_cap_find(c, PCI_CAP_ID_MSIX, 0);
    assert_true(msix > 0);

    harness_start(&D);
    dc = harness_connect(&D, NULL);
    /* Another vendor. */
    memcpy(bad, good, len);
    bad[at + PCI_BLOB_CFG + PCI_VENDOR_ID] ^= 0x01;
    pci_refused(dc, bad, len, -EINVAL);
    /* Another capability layout: the MSI-X table size, the chain. */
    memcpy(bad, good, len);
    bad[at + PCI_BLOB_CFG + msix + PCI_MSIX_FLAGS] ^= 0x04;
    pci_refused(dc, bad, len, -EINVAL);
    memcpy(bad, good, len);
    bad[at + PCI_BLOB_CFG + msix + PCI_CAP_LIST_NEXT] = 0x60;
    pci_refused(dc, bad, len, -EINVAL);
    /* A blob cut short (the stream around it whole). */
    n = cut_blob(good, len, bad, 8);
    pci_refused(dc, bad, n, -EINVAL);
    /* A newer blob version. */
    memcpy(bad, good, len);
    bad[at + PCI_BLOB_VERSION]++;
    pci_refused(dc, bad, len, -ENOTSUP);
    /* A version 1 stream (before config space was carried) loads the
     * device's registers and leaves config space as it was. */
    {
        struct pci_view before, after;

        assert_int_equal(umdev_client_reset(dc), 0);
        program_pci(dc, 7);
        pci_view(dc, &before);
        reg_wr(c, TESTDEV_REG_SCRATCH, 0x5151u, 4);
        len = capture(c, good);
        n = to_version1(good, len, bad);
        load_into(&D, dc, bad, n);
        assert_int_equal(reg_rd32(dc, TESTDEV_REG_SCRATCH), 0x5151u);
        pci_view(dc, &after);
        assert_same_pci(&before, &after);
    }
    /* The stream as sent still loads. */
    assert_int_equal(umdev_client_reset(dc), 0);
    load_into(&D, dc, good, len);
    assert_int_equal(reg_rd64(dc, TESTDEV_MSIX_PBA), 1u << 1);

    umdev_client_destroy(dc);
    harness_stop(&D);
    umdev_client_destroy(c);
    free(good);
    free(bad);
}

/*
 * Interrupts while the device is stopped (docs/PROTOCOL.md, "RUNNING_P2P
 * -> STOP" in <linux/vfio.h>): none reaches an eventfd in STOP, STOP_COPY
 * or RESUMING; each held one arrives once when the device runs again,
 * and a reset forgets them. The test thread stands in for a device
 * thread: umdev_dev_irq_trigger() is callable from any thread.
 */
static void
test_irq_held_while_stopped(void **state)
{
    struct umdev_client *c = harness_connect(&H, NULL);
    int efd = efd_new(), err = efd_new(), req = efd_new();

    (void)state;
    irq_trigger(c, VFIO_PCI_MSIX_IRQ_INDEX, 0, efd);
    assert_int_equal(umdev_dev_irq_trigger(H.dev, UMDEV_PCI_MSIX_IRQ, 0), 0);
    assert_int_equal(efd_wait(efd, HARNESS_TIMEOUT_MS), 1);

    /* Two triggers in STOP: nothing, then one interrupt on RUNNING. */
    set_state(c, S_STOP);
    assert_int_equal(umdev_dev_irq_trigger(H.dev, UMDEV_PCI_MSIX_IRQ, 0), 0);
    assert_int_equal(umdev_dev_irq_trigger(H.dev, UMDEV_PCI_MSIX_IRQ, 0), 0);
    assert_int_equal(efd_wait(efd, HARNESS_QUIET_MS), 0);
    set_state(c, S_RUNNING);
    assert_int_equal(efd_wait(efd, HARNESS_TIMEOUT_MS), 1);
    assert_int_equal(efd_wait(efd, HARNESS_QUIET_MS), 0);

    /* Held through STOP_COPY and back to STOP, and through RESUMING. */
    set_state(c, S_STOP_COPY);
    assert_int_equal(umdev_dev_irq_trigger(H.dev, UMDEV_PCI_MSIX_IRQ, 0), 0);
    set_state(c, S_STOP);
    set_state(c, S_RESUMING);
    assert_int_equal(efd_wait(efd, HARNESS_QUIET_MS), 0);
    assert_int_equal(umdev_client_reset(c), 0);
    /* The reset dropped it. */
    assert_int_equal(state_of(c), S_RUNNING);
    assert_int_equal(efd_wait(efd, HARNESS_QUIET_MS), 0);

    /* PRE_COPY runs: delivered at once. */
    set_state(c, S_PRE_COPY);
    assert_int_equal(umdev_dev_irq_trigger(H.dev, UMDEV_PCI_MSIX_IRQ, 0), 0);
    assert_int_equal(efd_wait(efd, HARNESS_TIMEOUT_MS), 1);
    /* PRE_COPY -> STOP_COPY stops it; RUNNING (via STOP) delivers. */
    set_state(c, S_STOP_COPY);
    assert_int_equal(umdev_dev_irq_trigger(H.dev, UMDEV_PCI_MSIX_IRQ, 0), 0);
    assert_int_equal(efd_wait(efd, HARNESS_QUIET_MS), 0);
    set_state(c, S_RUNNING);
    assert_int_equal(efd_wait(efd, HARNESS_TIMEOUT_MS), 1);
    assert_int_equal(efd_wait(efd, HARNESS_QUIET_MS), 0);

    /* ERR and REQ are the VMM's, not the guest's: a paused VM (devices
     * in STOP) still hears of an error, and that the device is wanted
     * back. */
    irq_trigger(c, VFIO_PCI_ERR_IRQ_INDEX, 0, err);
    irq_trigger(c, VFIO_PCI_REQ_IRQ_INDEX, 0, req);
    set_state(c, S_STOP);
    assert_int_equal(umdev_dev_irq_trigger(H.dev, UMDEV_PCI_ERR_IRQ, 0), 0);
    assert_int_equal(efd_wait(err, HARNESS_TIMEOUT_MS), 1);
    assert_int_equal(umdev_dev_request_release(H.dev), 0);
    assert_int_equal(efd_wait(req, HARNESS_TIMEOUT_MS), 1);
    set_state(c, S_RUNNING);
    assert_int_equal(efd_wait(err, HARNESS_QUIET_MS), 0);
    assert_int_equal(efd_wait(req, HARNESS_QUIET_MS), 0);
    close(err);
    close(req);
    close(efd);
    umdev_client_destroy(c);
}

/* The guest's (or the restoring VMM's) unmask of a pending MSI-X vector
 * while the device is stopped fires when it runs, not before: through the
 * vector's mask bit in the table, and through Function Mask in config. */
static void
test_msix_unmask_while_stopped(void **state)
{
    struct umdev_client *c = harness_connect(&H, NULL);
    int msix = umdev_client_pci_cap_find(c, PCI_CAP_ID_MSIX, 0);
    int efd = efd_new();
    uint32_t flags;

    (void)state;
    assert_true(msix > 0);
    program_pci(c, 1); /* vector 1 masked and pending */
    irq_trigger(c, VFIO_PCI_MSIX_IRQ_INDEX, 1, efd);
    set_state(c, S_STOP);
    reg_wr(c, MSIX_CTRL(1), 0, 4);
    assert_int_equal(efd_wait(efd, HARNESS_QUIET_MS), 0);
    set_state(c, S_RUNNING);
    assert_int_equal(efd_wait(efd, HARNESS_TIMEOUT_MS), 1);
    assert_int_equal(efd_wait(efd, HARNESS_QUIET_MS), 0);
    assert_int_equal(reg_rd64(c, TESTDEV_MSIX_PBA), 0);

    /* Pending behind Function Mask, cleared in config space in STOP. */
    flags = cfg_read(c, (uint64_t)msix + PCI_MSIX_FLAGS, 2);
    cfg_wr(c, (uint64_t)msix + PCI_MSIX_FLAGS, flags | PCI_MSIX_FLAGS_MASKALL,
           2);
    reg_wr(c, TESTDEV_REG_MSIX_TRIGGER, 1, 4);
    assert_int_equal(reg_rd64(c, TESTDEV_MSIX_PBA), 1u << 1);
    set_state(c, S_STOP);
    cfg_wr(c, (uint64_t)msix + PCI_MSIX_FLAGS, flags, 2);
    assert_int_equal(efd_wait(efd, HARNESS_QUIET_MS), 0);
    set_state(c, S_RUNNING);
    assert_int_equal(efd_wait(efd, HARNESS_TIMEOUT_MS), 1);
    assert_int_equal(efd_wait(efd, HARNESS_QUIET_MS), 0);
    close(efd);
    umdev_client_destroy(c);
}

/* A source holding INTx high (delivery enabled): on the destination the
 * loaded line reaches the eventfd only once the device runs, once,
 * automasked; the guest's EOI with the line still high brings it again. */
static void
test_intx_loaded_high(void **state)
{
    struct umdev_client *c = harness_connect(&H, NULL);
    uint8_t *buf = malloc(STREAM_CAP);
    struct umdev_client *dc;
    struct harness D;
    int efd = efd_new();
    size_t len;

    (void)state;
    assert_non_null(buf);
    cfg_set_command(c, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    reg_wr(c, TESTDEV_REG_IRQ_LEVEL, 1, 4);
    len = capture(c, buf);

    harness_start(&D);
    dc = harness_connect(&D, NULL);
    irq_trigger(dc, VFIO_PCI_INTX_IRQ_INDEX, 0, efd);
    set_state(dc, S_RESUMING);
    assert_int_equal(umdev_client_mig_write(dc, buf, len), 0);
    set_state(dc, S_STOP);
    assert_true(cfg_read(dc, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
    assert_int_equal(efd_wait(efd, HARNESS_QUIET_MS), 0);
    set_state(dc, S_RUNNING);
    assert_int_equal(efd_wait(efd, HARNESS_TIMEOUT_MS), 1);
    assert_int_equal(efd_wait(efd, HARNESS_QUIET_MS), 0);
    assert_true(harness_sample(&D).intx_masked);
    irq_action(dc, VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_UNMASK, 0);
    assert_int_equal(efd_wait(efd, HARNESS_TIMEOUT_MS), 1);

    close(efd);
    umdev_client_destroy(dc);
    harness_stop(&D);
    umdev_client_destroy(c);
    free(buf);
}

/* A device thread raising interrupts without pause while the client
 * stops and restarts the device: once STOP is answered no signal lands,
 * and what was raised meanwhile arrives after RUNNING. */
struct storm {
    atomic_bool stop;
    atomic_ulong sent;
};

static void *
storm_thread(void *arg)
{
    struct storm *s = arg;

    while (!atomic_load(&s->stop)) {
        if (umdev_dev_irq_trigger(H.dev, UMDEV_PCI_MSIX_IRQ, 0) == 0)
            atomic_fetch_add(&s->sent, 1);
    }
    return NULL;
}

static void
test_irq_hold_races(void **state)
{
    struct umdev_client *c = harness_connect(&H, NULL);
    struct storm s = { .stop = false };
    uint64_t got = 0;
    pthread_t t;
    int efd = efd_new(), i;

    (void)state;
    irq_trigger(c, VFIO_PCI_MSIX_IRQ_INDEX, 0, efd);
    assert_int_equal(pthread_create(&t, NULL, storm_thread, &s), 0);
    for (i = 0; i < 20; i++) {
        unsigned long before;

        set_state(c, S_STOP);
        /* Whatever was signalled before the reply is there now. */
        got += efd_wait(efd, 0);
        before = atomic_load(&s.sent);
        assert_int_equal(efd_wait(efd, 20), 0);
        /* The storm went on meanwhile, into the hold. */
        while (atomic_load(&s.sent) == before)
            sched_yield();
        set_state(c, S_RUNNING);
        got += efd_wait(efd, HARNESS_TIMEOUT_MS);
        assert_true(got > 0);
    }
    atomic_store(&s.stop, true);
    assert_int_equal(pthread_join(t, NULL), 0);
    got += efd_wait(efd, 0);
    /* Coalesced, never more than were raised. */
    assert_true(got <= atomic_load(&s.sent));
    close(efd);
    umdev_client_destroy(c);
}

/* @buf refused by a fresh RESUMING device with @err (at the write if
 * @at_write, else leaving RESUMING); the device is as it was and serves. */
static void
refused(struct umdev_client *c, const uint8_t *buf, size_t len, int err,
        bool at_write)
{
    uint32_t now = 0;

    reg_wr(c, TESTDEV_REG_SCRATCH, 0x77u, 4);
    set_state(c, S_RESUMING);
    assert_int_equal(umdev_client_mig_write(c, buf, len), at_write ? err : 0);
    if (at_write)
        /* A refused stream stays refused. */
        assert_int_equal(umdev_client_mig_write(c, buf, 1), err);
    assert_int_equal(umdev_client_mig_set_state(c, S_RUNNING, &now), err);
    assert_int_equal(state_of(c), S_RESUMING);
    assert_int_equal(reg_rd32(c, TESTDEV_REG_SCRATCH), 0x77u);
    assert_int_equal(reg_rd32(c, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
    assert_int_equal(umdev_client_reset(c), 0);
    assert_int_equal(state_of(c), S_RUNNING);
}

static void
test_stream_refusals(void **state)
{
    struct umdev_client *c = harness_connect(&H, NULL);
    uint8_t *good = malloc(STREAM_CAP), *bad = malloc(STREAM_CAP);
    uint8_t one = 0;
    uint32_t v;
    size_t len;

    (void)state;
    assert_non_null(good);
    assert_non_null(bad);
    dirty_device(c, 3);
    len = capture(c, good);
    assert_true(len > HDR_SIZE);

    /* Outside their states. */
    assert_int_equal(umdev_client_mig_write(c, good, 16), -EINVAL);
    assert_int_equal(umdev_client_mig_read(c, bad, 16), -EINVAL);
    set_state(c, S_STOP);
    assert_int_equal(umdev_client_mig_write(c, good, 16), -EINVAL);
    assert_int_equal(umdev_client_mig_read(c, bad, 16), -EINVAL);
    set_state(c, S_RUNNING);

    /* Another device type. */
    memcpy(bad, good, len);
    memcpy(bad + HDR_TYPE, "serial", 7);
    refused(c, bad, len, -EINVAL, true);
    /* A newer state version, and a newer stream format. */
    memcpy(bad, good, len);
    memcpy(&v, bad + HDR_VERSION, 4);
    v++;
    memcpy(bad + HDR_VERSION, &v, 4);
    refused(c, bad, len, -ENOTSUP, true);
    memcpy(bad, good, len);
    memcpy(&v, bad + HDR_FORMAT, 4);
    v++;
    memcpy(bad + HDR_FORMAT, &v, 4);
    refused(c, bad, len, -ENOTSUP, true);
    /* Another configuration (BAR2's size). */
    memcpy(bad, good, len);
    bad[HDR_SIZE + 5] ^= 1;
    refused(c, bad, len, -EINVAL, true);
    /* Not a stream at all. */
    memset(bad, 0, HDR_SIZE);
    refused(c, bad, HDR_SIZE, -EINVAL, true);
    /* Truncated: header fine, sections cut, refused when it ends. */
    refused(c, good, len - 1, -EINVAL, false);
    refused(c, good, HDR_SIZE + 12, -EINVAL, false);
    refused(c, good, 10, -EINVAL, false);
    /* Trailing bytes after the end section. */
    memcpy(bad, good, len);
    memcpy(bad + len, &one, 1);
    refused(c, bad, len + 1, -EINVAL, false);

    /* The good one still loads, and the device runs afterwards. */
    set_state(c, S_RESUMING);
    assert_int_equal(umdev_client_mig_write(c, good, len), 0);
    set_state(c, S_RUNNING);
    assert_true(device_acts(c));
    free(good);
    free(bad);
    umdev_client_destroy(c);
}

/* An incoming stream is held whole until it is loaded: at most
 * UMDEV_MIG_MAX_STATE bytes, one more is EFBIG and the stream refused. */
static void
test_stream_size_bound(void **state)
{
    struct umdev_client *c = harness_connect(&H, NULL);
    uint8_t *good = malloc(STREAM_CAP), *pad = calloc(1, STREAM_CAP);
    size_t len, head, sent;

    (void)state;
    assert_non_null(good);
    assert_non_null(pad);
    len = capture(c, good);
    head = len - 16; /* all but the end section: still incomplete */
    set_state(c, S_RESUMING);
    assert_int_equal(umdev_client_mig_write(c, good, head), 0);
    for (sent = head; sent < UMDEV_MIG_MAX_STATE; sent += STREAM_CAP) {
        size_t n = UMDEV_MIG_MAX_STATE - sent < STREAM_CAP
                       ? UMDEV_MIG_MAX_STATE - sent
                       : STREAM_CAP;

        assert_int_equal(umdev_client_mig_write(c, pad, n), 0);
    }
    assert_int_equal(umdev_client_mig_write(c, pad, 1), -EFBIG);
    assert_int_equal(umdev_client_mig_set_state(c, S_STOP, NULL), -EFBIG);
    assert_int_equal(umdev_client_reset(c), 0);
    assert_int_equal(reg_rd32(c, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
    free(good);
    free(pad);
    umdev_client_destroy(c);
}

static void
destroy_dev(void *arg)
{
    umdev_dev_destroy(arg);
}

/* A device without migration hooks offers none of it. */
static void
test_no_migration_hooks(void **state)
{
    struct umdev_dev_info info = { .name = "bare" };
    struct kit_serve s;
    struct umdev_dev *dev;
    struct umdev_client *c;
    struct umdev_client_opts opts = { .precopy_info = true };
    struct umdev_wire_precopy_info pi;
    uint64_t flags;
    uint32_t st;
    uint8_t b[8];

    (void)state;
    memset(&s, 0, sizeof(s));
    assert_int_equal(kit_serve_init(&s, "mig"), 0);
    assert_int_equal(umdev_dev_create(&info, &dev), 0);
    assert_int_equal(kit_serve_add(&s, "bare", dev, destroy_dev, dev), 0);
    assert_int_equal(kit_serve_start(&s), 0);
    opts.log = &H.client_log.logger;
    assert_int_equal(umdev_client_connect(s.devs[0].path, &opts, &c), 0);
    assert_false(umdev_client_caps(c)->precopy_info);
    assert_int_equal(umdev_client_mig_flags(c, &flags), -ENOTSUP);
    assert_int_equal(umdev_client_mig_state(c, &st), -ENOTSUP);
    assert_int_equal(umdev_client_mig_set_state(c, S_STOP, &st), -ENOTSUP);
    assert_int_equal(umdev_client_precopy_info(c, &pi), -ENOTSUP);
    assert_int_equal(umdev_client_mig_read(c, b, sizeof(b)), -EINVAL);
    assert_int_equal(umdev_client_mig_write(c, b, sizeof(b)), -EINVAL);
    umdev_client_destroy(c);
    assert_int_equal(kit_serve_stop(&s, HARNESS_TIMEOUT_MS), 0);
}

/* Every target state, legal or not, P2P and out of range included. */
static const uint32_t all_targets[] = {
    S_ERROR,       S_STOP,     S_RUNNING,      S_STOP_COPY, S_RESUMING,
    S_RUNNING_P2P, S_PRE_COPY, S_PRE_COPY_P2P, 8,           0xffffffffu
};

/* ERROR (a load that failed) leaves by DEVICE_RESET only: every arc out
 * of it is refused with EINVAL and it stays ERROR (mig.c's header,
 * <linux/vfio.h>); meanwhile it raises no interrupt, and the reset
 * drops what it held. test_every_pair covers the other states. */
static void
test_error_refuses_every_arc(void **state)
{
    struct umdev_client *c = harness_connect(&H, NULL);
    uint8_t *buf = malloc(STREAM_CAP);
    int efd = efd_new();
    uint32_t now = 0;
    size_t len, i;

    (void)state;
    assert_non_null(buf);
    irq_trigger(c, VFIO_PCI_MSIX_IRQ_INDEX, 0, efd);
    len = capture(c, buf);
    /* lib/pci's blob for another vendor: the device's load refuses. */
    buf[pci_blob_at(buf, len) + PCI_BLOB_CFG + PCI_VENDOR_ID] ^= 0x01;
    set_state(c, S_RESUMING);
    assert_int_equal(umdev_client_mig_write(c, buf, len), 0);
    assert_int_equal(umdev_client_mig_set_state(c, S_RUNNING, &now), -EINVAL);
    assert_int_equal(state_of(c), S_ERROR);
    assert_int_equal(umdev_dev_irq_trigger(H.dev, UMDEV_PCI_MSIX_IRQ, 0), 0);
    for (i = 0; i < N_ELEM(all_targets); i++) {
        int rc = umdev_client_mig_set_state(c, all_targets[i], &now);

        if (rc != -EINVAL)
            fail_msg("ERROR -> %u: %d, want EINVAL", all_targets[i], rc);
        assert_int_equal(state_of(c), S_ERROR);
    }
    assert_int_equal(umdev_client_mig_write(c, buf, 16), -EINVAL);
    assert_int_equal(efd_wait(efd, HARNESS_QUIET_MS), 0);
    assert_int_equal(umdev_client_reset(c), 0);
    assert_int_equal(state_of(c), S_RUNNING);
    assert_int_equal(efd_wait(efd, HARNESS_QUIET_MS), 0);
    assert_true(device_acts(c));
    close(efd);
    free(buf);
    umdev_client_destroy(c);
}

/* A device with migration but no pre-copy hook: PRE_COPY is not
 * offered, and every arc to it (or through it) is refused, the state
 * unchanged; the rest of the machine works. */
static int
nop_stop(void *opaque)
{
    (void)opaque;
    return 0;
}

static void
nop_resume(void *opaque)
{
    (void)opaque;
}

static int
nop_save(void *opaque, struct umdev_mig_buf *out)
{
    (void)opaque;
    return umdev_mig_buf_put(out, "s", 1);
}

static int
nop_load(void *opaque, uint32_t version, const void *early, size_t early_len,
         const void *st, size_t len)
{
    (void)opaque;
    (void)version;
    (void)early;
    (void)early_len;
    return len == 1 && memcmp(st, "s", 1) == 0 ? 0 : -EINVAL;
}

static void
test_no_precopy_hook(void **state)
{
    static const struct umdev_mig_ops mig = {
        .type = "noprecopy",
        .version = 1,
        .stop = nop_stop,
        .resume = nop_resume,
        .save = nop_save,
        .load = nop_load,
    };
    static const struct umdev_dev_ops ops = { .mig = &mig };
    static const uint32_t from[] = { S_STOP, S_RUNNING, S_STOP_COPY,
                                     S_RESUMING };
    struct umdev_dev_info info = { .name = "noprecopy", .ops = &ops };
    struct umdev_client_opts opts = { .log = &H.client_log.logger };
    uint8_t *buf = malloc(STREAM_CAP);
    struct kit_serve s;
    struct umdev_dev *dev;
    struct umdev_client *c;
    uint64_t flags = 0;
    uint32_t now = 0;
    size_t len, i, j;

    (void)state;
    assert_non_null(buf);
    memset(&s, 0, sizeof(s));
    assert_int_equal(kit_serve_init(&s, "mig"), 0);
    assert_int_equal(umdev_dev_create(&info, &dev), 0);
    assert_int_equal(kit_serve_add(&s, "noprecopy", dev, destroy_dev, dev), 0);
    assert_int_equal(kit_serve_start(&s), 0);
    assert_int_equal(umdev_client_connect(s.devs[0].path, &opts, &c), 0);
    assert_int_equal(umdev_client_mig_flags(c, &flags), 0);
    assert_int_equal(flags, VFIO_USER_MIGRATION_STOP_COPY);
    len = capture(c, buf);
    stream = buf;
    stream_len = len;
    for (i = 0; i < N_ELEM(from); i++) {
        for (j = 0; j < N_ELEM(all_targets); j++) {
            uint32_t to = all_targets[j];
            bool ok = to == S_STOP || to == S_RUNNING || to == S_STOP_COPY ||
                      to == S_RESUMING;
            int rc;

            reach(c, from[i]);
            rc = umdev_client_mig_set_state(c, to, &now);
            if (ok ? rc != 0 : rc != -EINVAL)
                fail_msg("%u -> %u: %d, want %d", from[i], to, rc,
                         ok ? 0 : -EINVAL);
            assert_int_equal(state_of(c), ok ? to : from[i]);
            assert_int_equal(umdev_client_reset(c), 0);
            assert_int_equal(state_of(c), S_RUNNING);
        }
    }
    stream = NULL;
    stream_len = 0;
    umdev_client_destroy(c);
    assert_int_equal(kit_serve_stop(&s, HARNESS_TIMEOUT_MS), 0);
    free(buf);
}

/* DMA dirty logging: guest memory in two adjacent mappings. */
#define G_IOVA 0x100000ull
#define G_SIZE (1u << 20)
#define G_HALF (G_SIZE / 2)
#define G_PAGES (G_SIZE / 4096)

struct guest {
    uint8_t *mem;
    int fd;
    uint8_t *shadow;    /* memory as the last report left it */
    bool want[G_PAGES]; /* pages the device wrote since (its commands) */
};

static void
guest_setup(struct umdev_client *c, struct guest *g)
{
    uint32_t prot = VFIO_USER_DMA_MAP_FLAG_READ | VFIO_USER_DMA_MAP_FLAG_WRITE;

    memset(g, 0, sizeof(*g));
    g->mem = guest_mem(G_SIZE, &g->fd);
    g->shadow = malloc(G_SIZE);
    assert_non_null(g->shadow);
    assert_int_equal(
        umdev_client_dma_map(c, G_IOVA, G_HALF, g->mem, g->fd, 0, prot), 0);
    assert_int_equal(umdev_client_dma_map(c, G_IOVA + G_HALF, G_HALF,
                                          g->mem + G_HALF, g->fd, G_HALF, prot),
                     0);
    memcpy(g->shadow, g->mem, G_SIZE);
}

static void
guest_free(struct guest *g)
{
    guest_mem_free(g->mem, G_SIZE, g->fd);
    free(g->shadow);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t
next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* The device writes @len bytes of fresh BAR2 data at guest offset @off. */
static void
device_writes(struct umdev_client *c, struct guest *g, uint64_t off,
              uint32_t len)
{
    uint8_t buf[8192];
    uint64_t p;
    size_t i;

    assert_true(len <= sizeof(buf));
    for (i = 0; i < len; i++)
        buf[i] = (uint8_t)(g->mem[off + i] + 1 + (next_rand() % 255));
    assert_int_equal(
        umdev_client_region_write(c, UMDEV_PCI_BAR2_REGION, 0, buf, len), 0);
    reg_wr(c, TESTDEV_REG_DMA_ADDR, G_IOVA + off, 8);
    reg_wr(c, TESTDEV_REG_DMA_LEN, len, 4);
    reg_wr(c, TESTDEV_REG_DMA_CMD, TESTDEV_DMA_FROM_DEVICE, 4);
    assert_int_equal(dma_status_wait(c), 0);
    for (p = off / 4096; p <= (off + len - 1) / 4096; p++)
        g->want[p] = true;
}

/*
 * A report of all guest memory at @pgsize against what the commands wrote
 * (exactly: nothing else writes) and against the shadow (every page that
 * changed is in it); the shadow and the expectations move on.
 */
static void
check_report(struct umdev_client *c, struct guest *g, uint64_t pgsize)
{
    static uint64_t bitmap[G_SIZE / 512 / 64];
    uint64_t bits = G_SIZE / pgsize, b;
    size_t p;

    memset(bitmap, 0, sizeof(bitmap));
    assert_int_equal(
        umdev_client_dma_log_report(c, G_IOVA, G_SIZE, pgsize, bitmap), 0);
    for (b = 0; b < bits; b++) {
        bool got = (bitmap[b / 64] >> (b % 64)) & 1, want = false;
        uint64_t lo = b * pgsize, hi = lo + pgsize;

        for (p = lo / 4096; p <= (hi - 1) / 4096; p++)
            want |= g->want[p];
        if (got != want)
            fail_msg("page size %ju, bit %ju: reported %d, written %d",
                     (uintmax_t)pgsize, (uintmax_t)b, got, want);
        if (!got && memcmp(g->mem + lo, g->shadow + lo, pgsize) != 0)
            fail_msg("page size %ju, bit %ju: changed, not reported",
                     (uintmax_t)pgsize, (uintmax_t)b);
    }
    /* Bits past the range are zero. */
    for (b = bits; b < sizeof(bitmap) * 8; b++)
        assert_false((bitmap[b / 64] >> (b % 64)) & 1);
    memcpy(g->shadow, g->mem, G_SIZE);
    memset(g->want, 0, sizeof(g->want));
}

static void
test_dma_log_shadow(void **state)
{
    static const uint64_t sizes[] = { 4096, 512, 65536, 1u << 20, 8192 };
    struct umdev_client *c = harness_connect(&H, NULL);
    struct guest g;
    uint64_t chosen = 0;
    size_t round, i;

    (void)state;
    guest_setup(c, &g);
    assert_int_equal(umdev_client_dma_log_start(c, 4096, NULL, 0, &chosen), 0);
    assert_int_equal(chosen, 4096);
    for (round = 0; round < N_ELEM(sizes); round++) {
        for (i = 0; i < 24; i++) {
            uint32_t len = 1 + (uint32_t)(next_rand() % 8192);
            uint64_t off = next_rand() % (G_SIZE - len + 1);

            device_writes(c, &g, off, len);
        }
        /* Across the two mappings' edge too. */
        device_writes(c, &g, G_HALF - 100, 300);
        check_report(c, &g, sizes[round]);
        /* Reported pages are cleared: nothing written, nothing shown. */
        check_report(c, &g, 4096);
    }
    assert_int_equal(umdev_client_dma_log_stop(c), 0);
    guest_free(&g);
    umdev_client_destroy(c);
}

static void
test_dma_log_refusals(void **state)
{
    struct umdev_client *c = harness_connect(&H, NULL);
    struct vfio_user_dma_logging_range r = { G_IOVA, G_HALF };
    uint64_t bitmap[G_SIZE / 4096 / 64] = { 0 };
    struct guest g;

    (void)state;
    guest_setup(c, &g);
    /* Not started. */
    assert_int_equal(
        umdev_client_dma_log_report(c, G_IOVA, G_SIZE, 4096, bitmap), -EINVAL);
    assert_int_equal(umdev_client_dma_log_start(c, 4096, &r, 1, NULL), 0);
    /* A second start before a stop. */
    assert_int_equal(umdev_client_dma_log_start(c, 4096, NULL, 0, NULL),
                     -EBUSY);
    device_writes(c, &g, 10, 20);
    /* Outside the range asked for; partly unmapped; not mapped at all. */
    assert_int_equal(
        umdev_client_dma_log_report(c, G_IOVA + G_HALF, 4096, 4096, bitmap),
        -EINVAL);
    assert_int_equal(umdev_client_dma_log_stop(c), 0);
    assert_int_equal(umdev_client_dma_log_start(c, 4096, NULL, 0, NULL), 0);
    device_writes(c, &g, 10, 20);
    assert_int_equal(
        umdev_client_dma_log_report(c, G_IOVA - 4096, 8192, 4096, bitmap),
        -ENOENT);
    assert_int_equal(
        umdev_client_dma_log_report(c, 0x10000000, 4096, 4096, bitmap),
        -ENOENT);
    /* A page size that is not a power of two, on the wire. */
    {
        struct {
            struct vfio_user_device_feature f;
            struct vfio_user_dma_logging_report r;
        } req = { { 8 + 24 + 8, VFIO_USER_DEVICE_FEATURE_GET |
                                    VFIO_USER_FEATURE_DMA_LOGGING_REPORT },
                  { G_IOVA, 4096, 3000 } };
        assert_int_equal(umdev_client_raw(c, VFIO_USER_DEVICE_FEATURE, 0, &req,
                                          sizeof(req), NULL, 0, NULL, 0, NULL,
                                          NULL),
                         -EINVAL);
    }
    /* The refusals lost nothing and the device serves. */
    assert_int_equal(reg_rd32(c, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
    check_report(c, &g, 4096);
    assert_int_equal(umdev_client_dma_log_stop(c), 0);
    assert_int_equal(
        umdev_client_dma_log_report(c, G_IOVA, G_SIZE, 4096, bitmap), -EINVAL);
    guest_free(&g);
    umdev_client_destroy(c);
}

/*
 * The dirty bitmaps are bounded per device (UMDEV_DMA_LOG_MAX_BITMAP_BYTES,
 * a bit per 4 KiB): mappings the client sized past them are refused at
 * DMA_LOGGING_START, and a DMA_MAP while logging that would pass them is
 * refused, each with E2BIG and nothing changed. Mappings without an fd
 * cost the client nothing, so they make the test's terabytes.
 */
static void
test_dma_log_bitmap_bound(void **state)
{
    struct umdev_client *c = harness_connect(&H, NULL);
    const uint64_t covered =
        (uint64_t)UMDEV_DMA_LOG_MAX_BITMAP_BYTES * 8 * 4096;
    const uint64_t base = 1ull << 44;
    const uint32_t prot =
        VFIO_USER_DMA_MAP_FLAG_READ | VFIO_USER_DMA_MAP_FLAG_WRITE;
    static uint8_t never_touched[4096];

    (void)state;
    /* Exactly at the bound: logging starts. */
    assert_int_equal(
        umdev_client_dma_map(c, base, covered, never_touched, -1, 0, prot), 0);
    assert_int_equal(umdev_client_dma_log_start(c, 4096, NULL, 0, NULL), 0);
    /* One page more while it runs: refused, logging goes on. */
    assert_int_equal(umdev_client_dma_map(c, base + covered, 4096,
                                          never_touched, -1, 0, prot),
                     -E2BIG);
    assert_int_equal(umdev_client_dma_log_start(c, 4096, NULL, 0, NULL),
                     -EBUSY);
    assert_int_equal(umdev_client_dma_log_stop(c), 0);
    /* The page mapped with logging off; now all of it is past the bound. */
    assert_int_equal(umdev_client_dma_map(c, base + covered, 4096,
                                          never_touched, -1, 0, prot),
                     0);
    assert_int_equal(umdev_client_dma_log_start(c, 4096, NULL, 0, NULL),
                     -E2BIG);
    assert_int_equal(reg_rd32(c, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
    /* Unmapped, the room comes back. */
    assert_int_equal(umdev_client_dma_unmap(c, base + covered, 4096), 0);
    assert_int_equal(umdev_client_dma_log_start(c, 4096, NULL, 0, NULL), 0);
    assert_int_equal(umdev_client_dma_log_stop(c), 0);
    assert_int_equal(umdev_client_dma_unmap(c, base, covered), 0);
    umdev_client_destroy(c);
}

/* Logging belongs to the client that started it: the next client starts
 * its own; the migration state stays with the device until a reset. */
static void
test_detach(void **state)
{
    struct umdev_client *c = harness_connect(&H, NULL);
    struct guest g;
    uint64_t bitmap[G_SIZE / 4096 / 64] = { 0 };

    (void)state;
    guest_setup(c, &g);
    assert_int_equal(umdev_client_dma_log_start(c, 4096, NULL, 0, NULL), 0);
    set_state(c, S_STOP);
    umdev_client_destroy(c);
    harness_wait_detached(&H);
    c = harness_connect(&H, NULL);
    assert_int_equal(state_of(c), S_STOP);
    assert_int_equal(umdev_client_dma_log_report(c, G_IOVA, 4096, 4096, bitmap),
                     -EINVAL);
    assert_int_equal(umdev_client_reset(c), 0);
    assert_int_equal(state_of(c), S_RUNNING);
    guest_free(&g);
    guest_setup(c, &g);
    assert_int_equal(umdev_client_dma_log_start(c, 4096, NULL, 0, NULL), 0);
    device_writes(c, &g, 4096, 10);
    check_report(c, &g, 4096);
    guest_free(&g);
    umdev_client_destroy(c);
}

/* A write hold on the server thread, and writes through its pointer. */
struct hold_op {
    enum { HOLD_GET, HOLD_WRITE, HOLD_PUT, HOLD_MARK_FAR } op;
    struct umdev_dma_hold h;
    uint64_t iova;
    int rc;
};

static void
hold_run(struct umdev_dev *dev, void *arg)
{
    struct hold_op *o = arg;

    switch (o->op) {
    case HOLD_GET:
        o->rc = umdev_dma_get(dev, o->iova, 64, UMDEV_DMA_WRITE, &o->h);
        break;
    case HOLD_WRITE:
        memset(o->h.ptr, 0xa5, 64);
        o->rc = 0;
        break;
    case HOLD_PUT:
        umdev_dma_put(dev, &o->h);
        o->rc = 0;
        break;
    case HOLD_MARK_FAR:
        /* Elsewhere in the span (page 9), as a device that reuses a hold
         * writes, reported with umdev_dma_mark(); outside the span is
         * refused. */
        memset((uint8_t *)o->h.ptr + (9 - 5) * 4096, 0x3c, 16);
        o->rc = umdev_dma_mark(dev, &o->h, G_IOVA + 9 * 4096 + 8, 16);
        if (o->rc == 0 &&
            umdev_dma_mark(dev, &o->h, G_IOVA + G_HALF, 1) != -EFAULT)
            o->rc = -EINVAL;
        if (o->rc == 0 && umdev_dma_mark(dev, &o->h, G_IOVA - 1, 2) != -EFAULT)
            o->rc = -EINVAL;
        break;
    }
}

static void
hold_do(struct hold_op *o, int op)
{
    o->op = op;
    o->rc = -1;
    harness_call(&H, hold_run, o);
    assert_int_equal(o->rc, 0);
}

static void
test_dma_log_holds(void **state)
{
    struct umdev_client *c = harness_connect(&H, NULL);
    struct hold_op o = { .iova = G_IOVA + 5 * 4096 + 8 };
    struct guest g;
    size_t p;

    (void)state;
    guest_setup(c, &g);
    /* Taken for writing while logging: marked at once, and a report
     * while it is out keeps the bits (the writes may come after it). */
    assert_int_equal(umdev_client_dma_log_start(c, 4096, NULL, 0, NULL), 0);
    hold_do(&o, HOLD_GET);
    g.want[5] = true;
    check_report(c, &g, 4096);
    hold_do(&o, HOLD_WRITE);
    g.want[5] = true;
    check_report(c, &g, 4096);
    hold_do(&o, HOLD_PUT);
    g.want[5] = true; /* still kept from the report during the hold */
    check_report(c, &g, 4096);
    check_report(c, &g, 4096); /* and now gone */

    /* Writes elsewhere in a hold's span, marked by the device. */
    hold_do(&o, HOLD_GET);
    hold_do(&o, HOLD_MARK_FAR);
    hold_do(&o, HOLD_PUT);
    g.want[5] = g.want[9] = true;
    check_report(c, &g, 4096);
    assert_int_equal(umdev_client_dma_log_stop(c), 0);

    /* Taken before logging started, written after: every page of its
     * mapping counts as dirty, nothing is missed. */
    hold_do(&o, HOLD_GET);
    assert_int_equal(umdev_client_dma_log_start(c, 4096, NULL, 0, NULL), 0);
    hold_do(&o, HOLD_WRITE);
    hold_do(&o, HOLD_PUT);
    for (p = 0; p < G_HALF / 4096; p++)
        g.want[p] = true;
    check_report(c, &g, 4096);
    check_report(c, &g, 4096);
    assert_int_equal(umdev_client_dma_log_stop(c), 0);
    guest_free(&g);
    umdev_client_destroy(c);
}

static const struct CMUnitTest tests[] = {
    HARNESS_TEST(test_dma_log_shadow),
    HARNESS_TEST(test_dma_log_refusals),
    HARNESS_TEST(test_dma_log_holds),
    HARNESS_TEST(test_detach),
    HARNESS_TEST(test_every_pair),
    HARNESS_TEST(test_save_load_two_servers),
    HARNESS_TEST(test_config_space_migrates),
    HARNESS_TEST(test_config_space_refusals),
    HARNESS_TEST(test_irq_held_while_stopped),
    HARNESS_TEST(test_msix_unmask_while_stopped),
    HARNESS_TEST(test_intx_loaded_high),
    HARNESS_TEST(test_irq_hold_races),
    HARNESS_TEST(test_stream_refusals),
    HARNESS_TEST(test_stream_size_bound),
    HARNESS_TEST(test_no_migration_hooks),
    HARNESS_TEST(test_error_refuses_every_arc),
    HARNESS_TEST(test_no_precopy_hook),
    HARNESS_TEST(test_dma_log_bitmap_bound),
};

HARNESS_MAIN("func.migration", tests)
