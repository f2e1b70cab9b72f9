/* Functional tests of the wire protocol's edges against the real server. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <linux/vfio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "harness.h"
#include "kit_proto.h"
#include "umdev/client_testing.h"
#include "umdev/wire_codec.h"

/* A msg_size over 1 MiB + 64 KiB: more than the server takes whole (1 MiB
 * of data plus a fixed part), so it must skip the body and refuse it. */
#define OVERSIZED_PAYLOAD (1024u * 1024u + 64u * 1024u + 1u)

/* A VERSION payload (kit_version_payload()) that must fit @cap. */
static size_t
version_payload(uint8_t *p, size_t cap, uint16_t major, uint16_t minor,
                const char *json, size_t json_len)
{
    size_t n = kit_version_payload(p, cap, major, minor, json, json_len);

    assert_true(n > 0);
    return n;
}

static int64_t
cap_int(struct json_object *caps, const char *key)
{
    struct json_object *v;

    if (!json_object_object_get_ex(caps, key, &v))
        fail_msg("reply lacks \"%s\"", key);
    assert_true(json_object_is_type(v, json_type_int));
    return json_object_get_int64(v);
}

/* Check the JSON of a VERSION reply against what QEMU proposed. */
static void
check_version_json(const char *json)
{
    struct json_object *root, *caps, *v;

    root = json_tokener_parse(json);
    assert_non_null(root);
    assert_true(json_object_is_type(root, json_type_object));
    assert_true(json_object_object_get_ex(root, "capabilities", &caps));
    assert_true(json_object_is_type(caps, json_type_object));
    /* Spec "Version": the reply's capabilities are a subset of those
     * proposed, none above the proposed value. */
    json_object_object_foreach(caps, key, val)
    {
        (void)val;
        if (!kit_qemu_proposes(key))
            fail_msg("reply names \"%s\", which QEMU did not propose", key);
    }
    assert_int_equal(cap_int(caps, "max_msg_fds"), UMDEV_WIRE_MAX_MSG_FDS);
    assert_int_equal(cap_int(caps, "max_data_xfer_size"), 1048576);
    assert_int_equal(cap_int(caps, "pgsizes"), 4096);
    assert_true(cap_int(caps, "max_dma_maps") > 0);
    assert_true(cap_int(caps, "max_dma_maps") <= 65535);
    assert_true(json_object_object_get_ex(caps, "write_multiple", &v));
    assert_true(json_object_is_type(v, json_type_boolean));
    assert_true(json_object_get_boolean(v));
    /* No migration support, so no migration capability. */
    assert_false(json_object_object_get_ex(caps, "migration", &v));
    json_object_put(root);
}

static void
test_version_qemu_replay(void **state)
{
    static const char json[] = KIT_QEMU_VERSION_JSON;
    uint8_t p[sizeof(struct vfio_user_version) + sizeof(json)];
    uint8_t msg[16 + sizeof(p)], reply[4096];
    struct vfio_user_header h = {
        .msg_id = 0, /* QEMU's first message */
        .cmd = VFIO_USER_VERSION,
        .msg_size = sizeof(msg),
    };
    uint16_t major, minor;
    const char *rjson;
    size_t plen;
    long n;
    int fd = harness_raw_socket(&H);

    (void)state;
    plen = version_payload(p, sizeof(p), 0, 0, json, sizeof(json));
    /* The bytes QEMU puts on the wire, built by hand... */
    memcpy(msg, &h, sizeof(h));
    memcpy(msg + sizeof(h), p, plen);
    assert_int_equal(sizeof(msg), 16 + 4 + strlen(KIT_QEMU_VERSION_JSON) + 1);
    /* ...are what umdev_wire_encode() lays out. */
    {
        uint8_t enc[sizeof(msg)];

        assert_int_equal(umdev_wire_encode(enc, sizeof(enc), 0,
                                           VFIO_USER_VERSION, 0, p, plen,
                                           NULL, 0),
                         sizeof(msg));
        assert_memory_equal(enc, msg, sizeof(msg));
    }
    raw_send_all(fd, msg, sizeof(msg));
    n = raw_expect_reply(fd, 0, VFIO_USER_VERSION, reply, sizeof(reply));
    assert_true(n > 16 + 4 + 1);
    memcpy(&major, reply + 16, 2);
    memcpy(&minor, reply + 18, 2);
    assert_int_equal(major, 0);
    assert_int_equal(minor, 0);
    /* The JSON ends with its NUL exactly at the end of the message. */
    rjson = (const char *)reply + 20;
    assert_int_equal(reply[n - 1], '\0');
    assert_int_equal(strlen(rjson) + 1, (size_t)n - 20);
    check_version_json(rjson);
    raw_expect_alive(fd, 1);

    /* A second VERSION is refused; the connection goes on. */
    raw_send(fd, 2, VFIO_USER_VERSION, 0, p, plen, NULL, 0);
    raw_expect_error(fd, 2, VFIO_USER_VERSION, EINVAL);
    raw_expect_alive(fd, 3);
    raw_expect_quiet(fd);
    close(fd);
}

static void
test_version_must_come_first(void **state)
{
    struct vfio_user_device_info di = { .argsz = sizeof(di) };
    struct vfio_user_region_access ra = { TESTDEV_REG_ID, 0, 4 };
    int fd = harness_raw_socket(&H);

    (void)state;
    raw_send(fd, 1, VFIO_USER_DEVICE_GET_INFO, 0, &di, sizeof(di), NULL, 0);
    raw_expect_error(fd, 1, VFIO_USER_DEVICE_GET_INFO, EINVAL);
    raw_send(fd, 2, VFIO_USER_REGION_READ, 0, &ra, sizeof(ra), NULL, 0);
    raw_expect_error(fd, 2, VFIO_USER_REGION_READ, EINVAL);
    raw_send(fd, 3, VFIO_USER_DEVICE_RESET, 0, NULL, 0, NULL, 0);
    raw_expect_error(fd, 3, VFIO_USER_DEVICE_RESET, EINVAL);
    raw_negotiate(fd, 4);
    raw_expect_alive(fd, 5);
    close(fd);
}

struct bad_version {
    uint16_t major, minor;
    const char *json; /* sent with its NUL unless @no_nul */
    bool no_nul;
    int err;
};

/* Each VERSION in @cases is refused with its errno and leaves the
 * connection up and still not negotiated; then QEMU's VERSION, proposing
 * minor 7, succeeds with a minor at most 7. */
static void
expect_versions_refused(const struct bad_version *cases, size_t n)
{
    uint8_t p[512], reply[1024];
    uint16_t id = 1, minor;
    size_t i, plen;
    long len;
    int fd = harness_raw_socket(&H);

    for (i = 0; i < n; i++) {
        const struct bad_version *b = &cases[i];
        size_t jl = b->json == NULL ? 0 : strlen(b->json) + !b->no_nul;

        print_message("VERSION %u.%u %s%s\n", b->major, b->minor,
                      b->json != NULL ? b->json : "(no JSON)",
                      b->no_nul ? " (no NUL)" : "");
        plen = version_payload(p, sizeof(p), b->major, b->minor, b->json,
                               jl);
        raw_send(fd, id, VFIO_USER_VERSION, 0, p, plen, NULL, 0);
        raw_expect_error(fd, id, VFIO_USER_VERSION, b->err);
        id++;
        /* Still not negotiated: other commands are refused. */
        raw_send(fd, id, VFIO_USER_DEVICE_RESET, 0, NULL, 0, NULL, 0);
        raw_expect_error(fd, id, VFIO_USER_DEVICE_RESET, EINVAL);
        id++;
    }
    plen = version_payload(p, sizeof(p), 0, 7, KIT_QEMU_VERSION_JSON,
                           sizeof(KIT_QEMU_VERSION_JSON));
    raw_send(fd, 0x1234, VFIO_USER_VERSION, 0, p, plen, NULL, 0);
    len = raw_expect_reply(fd, 0x1234, VFIO_USER_VERSION, reply,
                           sizeof(reply));
    assert_true(len > 20);
    memcpy(&minor, reply + 18, 2);
    assert_true(minor <= 7);
    check_version_json((const char *)reply + 20);
    raw_expect_alive(fd, 0x1235);
    raw_expect_quiet(fd);
    close(fd);
}

static void
test_version_refusals(void **state)
{
    static const struct bad_version cases[] = {
        /* Malformed JSON. */
        { 0, 0, "{\"capabilities\":", false, EINVAL },
        { 0, 0, "{\"capabilities\":{,}}", false, EINVAL },
        { 0, 0, "{capabilities:{}}", false, EINVAL },
        { 0, 0, "not json", false, EINVAL },
        { 0, 0, "[1,2]", false, EINVAL },
        /* Well-formed, wrong types or ranges. */
        { 0, 0, "{\"capabilities\":{\"max_msg_fds\":\"16\"}}", false,
          EINVAL },
        { 0, 0, "{\"capabilities\":{\"max_data_xfer_size\":-1}}", false,
          EINVAL },
        { 0, 0, "{\"capabilities\":{\"write_multiple\":1}}", false, EINVAL },
        { 0, 0, "{\"capabilities\":[]}", false, EINVAL },
        /* The JSON must end with a NUL inside the message. */
        { 0, 0, "{\"capabilities\":{}}", true, EINVAL },
        /* A major version we do not speak. */
        { 1, 0, "{\"capabilities\":{}}", false, ENOTSUP },
        { 0xffff, 0, NULL, false, ENOTSUP },
        /* No page size we support. */
        { 0, 0, "{\"capabilities\":{\"pgsizes\":8192}}", false, ENOTSUP },
    };

    (void)state;
    expect_versions_refused(cases, sizeof(cases) / sizeof(cases[0]));
}

/*
 * Capabilities are strict JSON: a trailing comma, junk or a second object
 * after the first is refused (lib/conn/version.c conn_caps_parse() runs
 * json-c's tokener in strict mode and checks it consumed the whole
 * string; it once accepted all three).
 */
static void
test_version_json_strict(void **state)
{
    static const struct bad_version cases[] = {
        { 0, 0, "{\"capabilities\":{\"max_msg_fds\":16,}}", false, EINVAL },
        { 0, 0, "{\"capabilities\":{}}xyz", false, EINVAL },
        { 0, 0, "{\"capabilities\":{}} {\"capabilities\":{}}", false,
          EINVAL },
    };

    (void)state;
    expect_versions_refused(cases, sizeof(cases) / sizeof(cases[0]));
}

/* VERSION without JSON: the spec defaults apply. */
static void
test_version_without_json(void **state)
{
    uint8_t p[4] = { 0 }, reply[1024];
    int fd = harness_raw_socket(&H);

    (void)state;
    raw_send(fd, 9, VFIO_USER_VERSION, 0, p, sizeof(p), NULL, 0);
    assert_true(raw_expect_reply(fd, 9, VFIO_USER_VERSION, reply,
                                 sizeof(reply)) > 20);
    raw_expect_alive(fd, 10);
    close(fd);
}

/* pgsizes is a bitmap: values above INT64_MAX ("every size from 4 KiB
 * up") are valid and accepted. */
static void
test_version_pgsizes_bitmap(void **state)
{
    static const char json[] =
        "{\"capabilities\":{\"pgsizes\":18446744073709547520}}";
    uint8_t p[sizeof(struct vfio_user_version) + sizeof(json)];
    uint8_t reply[1024];
    size_t plen;
    int fd = harness_raw_socket(&H);

    (void)state;
    plen = version_payload(p, sizeof(p), 0, 0, json, sizeof(json));
    raw_send(fd, 3, VFIO_USER_VERSION, 0, p, plen, NULL, 0);
    assert_true(raw_expect_reply(fd, 3, VFIO_USER_VERSION, reply,
                                 sizeof(reply)) > 20);
    raw_expect_alive(fd, 4);
    close(fd);
}

/* Well-formed messages with no lasting effect on the test device: the
 * scratch register, a page mapped without an fd, a software trigger of
 * ERR (which has no eventfd). */
static const struct kit_good harmless = {
    .dma_addr = 0x100000,
    .irq_index = VFIO_PCI_ERR_IRQ_INDEX,
    .read_offset = TESTDEV_REG_SCRATCH,
    .read_region = UMDEV_PCI_BAR0_REGION,
    .read_count = 4,
    .write_offset = TESTDEV_REG_SCRATCH,
    .write_region = UMDEV_PCI_BAR0_REGION,
    .write_count = 4,
};

/* Error replies send_expect() asked for. */
static uint64_t expected_errors;

/* Send, then expect the success reply (@err 0) or the error @err, then a
 * good request on the same connection. */
static void
send_expect(int fd, uint16_t *id, uint16_t cmd, const void *p, size_t len,
            const int *fds, size_t nfds, int err)
{
    static uint8_t reply[64 * 1024];

    raw_send(fd, *id, cmd, 0, p, len, fds, nfds);
    if (err == 0) {
        raw_expect_reply(fd, *id, cmd, reply, sizeof(reply));
    } else {
        raw_expect_error(fd, *id, cmd, err);
        expected_errors++;
    }
    raw_expect_alive(fd, (uint16_t)(*id + 1));
    *id = (uint16_t)(*id + 2);
}

/*
 * For every command 1..18: the well-formed payload gets its answer, a
 * short payload and a bad argsz get EINVAL (ENOSYS for the unknown 14), an
 * fd where none belongs (or two on DMA_MAP) gets EBADF, an oversized
 * message gets E2BIG; and after each one a good request is answered.
 */
static void
test_bad_messages_every_command(void **state)
{
    uint8_t *big = calloc(1, OVERSIZED_PAYLOAD);
    struct harness_state s0, s1;
    uint16_t id = 100;
    size_t i;
    int fd = harness_raw_socket(&H);
    int efds[2] = { efd_new(), efd_new() };
    int fds0;

    (void)state;
    assert_non_null(big);
    raw_negotiate(fd, 1);
    fds0 = kit_open_fds();
    harness_get_state(&H, &s0);
    expected_errors = 0;
    for (i = 0; i < KIT_NCMDS; i++) {
        const struct kit_cmd *k = &kit_cmds[i];
        int bad_err = k->cmd == KIT_CMD_RETIRED ? ENOSYS : EINVAL;
        uint8_t good[KIT_GOOD_MAX], p[KIT_GOOD_MAX];
        size_t len = kit_good_payload(&harmless, k->cmd, good);

        assert_int_equal(k->cmd, i + 1);
        send_expect(fd, &id, k->cmd, good, len, NULL, 0, k->good_err);
        /* Short: one byte short of the fixed part, and empty. */
        if (k->fixed > 0) {
            send_expect(fd, &id, k->cmd, good, k->fixed - 1, NULL, 0,
                        bad_err);
            send_expect(fd, &id, k->cmd, NULL, 0, NULL, 0, bad_err);
        }
        /* argsz below the fixed part, and zero. */
        if (k->has_argsz) {
            uint32_t bad[] = { (uint32_t)k->fixed - 1, 0 };
            size_t j;

            for (j = 0; j < 2; j++) {
                memcpy(p, good, len);
                memcpy(p, &bad[j], 4);
                send_expect(fd, &id, k->cmd, p, len, NULL, 0, EINVAL);
            }
        }
        /* Descriptors where the message takes none: DMA_MAP takes one,
         * so it gets two; SET_IRQS takes them only with DATA_EVENTFD. */
        send_expect(fd, &id, k->cmd, good, len, efds,
                    k->cmd == VFIO_USER_DMA_MAP ? 2 : 1,
                    k->cmd == KIT_CMD_RETIRED ? ENOSYS : EBADF);
        /* Oversized, body sent in full. */
        send_expect(fd, &id, k->cmd, big, OVERSIZED_PAYLOAD, NULL, 0, E2BIG);
    }
    raw_expect_quiet(fd);
    harness_get_state(&H, &s1);
    assert_true(s1.attached);
    /* One error reply per refused request, no more. */
    assert_int_equal(s1.stats.errors - s0.stats.errors, expected_errors);
    /* Every descriptor we sent was closed by the server. */
    assert_int_equal(kit_open_fds(), fds0);
    close(efds[0]);
    close(efds[1]);
    free(big);
    close(fd);
}

/* Data counts over max_data_xfer_size in messages the server could still
 * buffer whole: refused by the decoder with E2BIG. */
static void
test_data_over_limit(void **state)
{
    const uint32_t over = 1024 * 1024 + 1;
    struct vfio_user_region_access ra = { 0, UMDEV_PCI_BAR2_REGION, over };
    uint8_t *p = calloc(1, sizeof(ra) + over);
    uint16_t id = 10;
    int fd = harness_raw_socket(&H);

    (void)state;
    assert_non_null(p);
    raw_negotiate(fd, 1);
    send_expect(fd, &id, VFIO_USER_REGION_READ, &ra, sizeof(ra), NULL, 0,
                E2BIG);
    /* Exactly the limit is fine for the decoder; BAR2 is smaller. */
    ra.count = 1024 * 1024;
    send_expect(fd, &id, VFIO_USER_REGION_READ, &ra, sizeof(ra), NULL, 0,
                EINVAL);
    memcpy(p, &ra, sizeof(ra));
    send_expect(fd, &id, VFIO_USER_REGION_WRITE, p, sizeof(ra) + ra.count,
                NULL, 0, EINVAL);
    free(p);
    close(fd);
}

static void
test_unknown_commands(void **state)
{
    static const uint16_t unknown[] = { 0, 14, 19, 20, 0x7fff, 0xffff };
    uint8_t p[32] = { 0 };
    uint16_t id = 10;
    size_t i;
    int fd = harness_raw_socket(&H);

    (void)state;
    raw_negotiate(fd, 1);
    for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        send_expect(fd, &id, unknown[i], NULL, 0, NULL, 0, ENOSYS);
        send_expect(fd, &id, unknown[i], p, sizeof(p), NULL, 0, ENOSYS);
        /* Posted: no reply at all. */
        raw_send(fd, id, unknown[i], VFIO_USER_F_NO_REPLY, p, sizeof(p),
                 NULL, 0);
        raw_expect_alive(fd, (uint16_t)(id + 1));
        id = (uint16_t)(id + 2);
    }
    raw_expect_quiet(fd);
    close(fd);
}

/* Through the client API: an eventfd on DEVICE_GET_INFO gets EBADF and
 * the server closes its copy. */
static void
test_fd_where_none_belongs(void **state)
{
    struct umdev_client *c = harness_connect(&H, NULL);
    struct vfio_user_device_info di = { .argsz = sizeof(di) };
    struct umdev_client_device_info info;
    struct vfio_user_header rh;
    uint8_t reply[64];
    int efd = efd_new();
    size_t len;
    int fds0;

    (void)state;
    fds0 = kit_open_fds();
    assert_int_equal(umdev_client_raw(c, VFIO_USER_DEVICE_GET_INFO, 0, &di,
                                      sizeof(di), &efd, 1, reply,
                                      sizeof(reply), &len, &rh),
                     -EBADF);
    assert_int_equal(umdev_client_device_info(c, &info), 0);
    assert_int_equal(info.num_regions, UMDEV_PCI_NUM_REGIONS);
    /* The server's copy is gone (closed after its reply, so before the
     * next one); ours is intact. */
    assert_int_equal(kit_open_fds(), fds0);
    assert_int_equal(efd_wait(efd, 0), 0);
    /* A large message carrying one: the fd arrives with its first part. */
    {
        size_t n = sizeof(struct vfio_user_region_access) + 60 * 1024;
        struct vfio_user_region_access a = { 0x1000, UMDEV_PCI_BAR2_REGION,
                                             60 * 1024 };
        uint8_t *big = calloc(1, n);

        assert_non_null(big);
        memcpy(big, &a, sizeof(a));
        assert_int_equal(umdev_client_raw(c, VFIO_USER_REGION_WRITE, 0, big,
                                          n, &efd, 1, NULL, 0, NULL, NULL),
                         -EBADF);
        free(big);
        /* The server closes after replying: count after a round trip. */
        assert_int_equal(reg_rd32(c, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
        assert_int_equal(kit_open_fds(), fds0);
    }
    /* And the same request without the fd is fine. */
    assert_int_equal(umdev_client_raw(c, VFIO_USER_DEVICE_GET_INFO, 0, &di,
                                      sizeof(di), NULL, 0, reply,
                                      sizeof(reply), &len, &rh),
                     0);
    assert_int_equal(len, sizeof(di));
    assert_int_equal(atomic_load(&H.client_log.warnings), 0);
    close(efd);
    umdev_client_destroy(c);
}

/* 17 descriptors: one more than any message may carry. */
static void
test_too_many_fds(void **state)
{
    struct vfio_user_irq_set s = raw_irq_eventfds(VFIO_PCI_MSIX_IRQ_INDEX, 0,
                                                  UMDEV_WIRE_MAX_MSG_FDS + 1);
    int efds[UMDEV_WIRE_MAX_MSG_FDS + 1];
    struct harness_state st;
    uint16_t id = 10;
    size_t i;
    int fd = harness_raw_socket(&H);
    int fds0;

    (void)state;
    raw_negotiate(fd, 1);
    for (i = 0; i < UMDEV_WIRE_MAX_MSG_FDS + 1; i++)
        efds[i] = efd_new();
    fds0 = kit_open_fds();
    send_expect(fd, &id, VFIO_USER_DEVICE_SET_IRQS, &s, sizeof(s), efds,
                UMDEV_WIRE_MAX_MSG_FDS + 1, EBADF);
    /* Also when the count matches the 16 that fit, or is smaller. */
    s.count = UMDEV_WIRE_MAX_MSG_FDS;
    send_expect(fd, &id, VFIO_USER_DEVICE_SET_IRQS, &s, sizeof(s), efds,
                UMDEV_WIRE_MAX_MSG_FDS + 1, EBADF);
    s.count = 2;
    send_expect(fd, &id, VFIO_USER_DEVICE_SET_IRQS, &s, sizeof(s), efds,
                UMDEV_WIRE_MAX_MSG_FDS + 1, EBADF);
    assert_int_equal(kit_open_fds(), fds0);
    harness_get_state(&H, &st);
    assert_false(st.irq_enabled[UMDEV_PCI_MSIX_IRQ]);
    /* Exactly as many as allowed is fine when the count matches. */
    s.index = VFIO_PCI_ERR_IRQ_INDEX;
    s.count = 1;
    send_expect(fd, &id, VFIO_USER_DEVICE_SET_IRQS, &s, sizeof(s), efds, 1,
                0);
    harness_get_state(&H, &st);
    assert_true(st.irq_enabled[UMDEV_PCI_ERR_IRQ]);
    for (i = 0; i < UMDEV_WIRE_MAX_MSG_FDS + 1; i++)
        close(efds[i]);
    close(fd);
}

struct dma_peek {
    uint64_t iova;
    uint8_t data[64];
    int rc;
};

static void
dma_peek(struct umdev_dev *dev, void *arg)
{
    struct dma_peek *d = arg;

    d->rc = umdev_dma_read(dev, d->iova, d->data, sizeof(d->data));
}

/*
 * Commands sent back to back without waiting, some with descriptors: every
 * reply comes in order, and each descriptor lands with its own message
 * (the ERR eventfd fires for ERR, the REQ one for REQ, the memfd backs the
 * DMA mapping).
 */
static void
test_pipelined_commands_with_fds(void **state)
{
    struct vfio_user_irq_set set =
        raw_irq_eventfds(VFIO_PCI_ERR_IRQ_INDEX, 0, 1);
    struct vfio_user_dma_map map = { sizeof(map), 3, 0, 0x100000, 4096 };
    struct vfio_user_device_info di = { .argsz = sizeof(di) };
    struct vfio_user_region_access ra = { TESTDEV_REG_ID,
                                          UMDEV_PCI_BAR0_REGION, 4 };
    struct dma_peek peek = { .iova = 0x100000 + 128 };
    struct harness_state st;
    uint8_t reply[256], *mem, wr[20];
    uint32_t one = 1;
    int err = efd_new(), req = efd_new(), mfd, fd, base, fds0;
    uint16_t id;

    (void)state;
    mem = guest_mem(4096, &mfd);
    memset(mem + 128, 0x3c, 64);
    base = kit_open_fds();
    fd = harness_raw_socket(&H);
    raw_negotiate(fd, 1);
    fds0 = kit_open_fds();
    raw_send(fd, 10, VFIO_USER_DEVICE_SET_IRQS, 0, &set, sizeof(set), &err,
             1);
    raw_send(fd, 11, VFIO_USER_DEVICE_GET_INFO, 0, &di, sizeof(di), NULL, 0);
    raw_send(fd, 12, VFIO_USER_DMA_MAP, 0, &map, sizeof(map), &mfd, 1);
    set.index = VFIO_PCI_REQ_IRQ_INDEX;
    raw_send(fd, 13, VFIO_USER_DEVICE_SET_IRQS, 0, &set, sizeof(set), &req,
             1);
    raw_send(fd, 14, VFIO_USER_REGION_READ, 0, &ra, sizeof(ra), NULL, 0);
    map.addr = 0x200000;
    raw_send(fd, 15, VFIO_USER_DMA_MAP, 0, &map, sizeof(map), NULL, 0);
    /* ERR, by a posted register write. */
    ra.offset = TESTDEV_REG_ERR_TRIGGER;
    memcpy(wr, &ra, sizeof(ra));
    memcpy(wr + sizeof(ra), &one, 4);
    raw_send(fd, 16, VFIO_USER_REGION_WRITE, VFIO_USER_F_NO_REPLY, wr,
             sizeof(wr), NULL, 0);
    for (id = 10; id <= 15; id++) {
        static const uint16_t cmds[] = {
            VFIO_USER_DEVICE_SET_IRQS, VFIO_USER_DEVICE_GET_INFO,
            VFIO_USER_DMA_MAP,         VFIO_USER_DEVICE_SET_IRQS,
            VFIO_USER_REGION_READ,     VFIO_USER_DMA_MAP,
        };

        raw_expect_reply(fd, id, cmds[id - 10], reply, sizeof(reply));
    }
    raw_expect_quiet(fd);
    harness_get_state(&H, &st);
    assert_int_equal(st.dma_count, 2);
    assert_true(st.irq_enabled[UMDEV_PCI_ERR_IRQ]);
    assert_true(st.irq_enabled[UMDEV_PCI_REQ_IRQ]);
    /* The server keeps the two eventfds and one descriptor of the memfd
     * both mappings come from (for a handover). */
    assert_int_equal(kit_open_fds(), fds0 + 3);
    assert_int_equal(efd_wait(err, HARNESS_TIMEOUT_MS), 1);
    assert_int_equal(efd_wait(req, 0), 0);
    harness_call(&H, dma_peek, &peek);
    assert_int_equal(peek.rc, 0);
    assert_memory_equal(peek.data, mem + 128, sizeof(peek.data));
    close(fd);
    harness_wait_detached(&H);
    assert_int_equal(kit_open_fds(), base);
    guest_mem_free(mem, 4096, mfd);
    close(err);
    close(req);
}

/* A posted (No_reply) command gets no reply, not even an error: the first
 * reply to arrive must be the next request's. */
static void
test_posted_errors_are_silent(void **state)
{
    struct vfio_user_region_access bad = { 0x7fff0, UMDEV_PCI_BAR0_REGION,
                                           4 };
    struct vfio_user_region_access good = { TESTDEV_REG_SCRATCH,
                                            UMDEV_PCI_BAR0_REGION, 4 };
    struct vfio_user_region_access rd = { TESTDEV_REG_SCRATCH,
                                          UMDEV_PCI_BAR0_REGION, 4 };
    uint8_t *big = calloc(1, OVERSIZED_PAYLOAD);
    struct harness_state s0, s1;
    uint8_t p[32], reply[64];
    uint32_t v = 0x5ca1ab1e;
    int fd = harness_raw_socket(&H);

    (void)state;
    assert_non_null(big);
    raw_negotiate(fd, 1);
    harness_get_state(&H, &s0);
    /* A write to an invalid offset. */
    memcpy(p, &bad, sizeof(bad));
    memset(p + 16, 0xff, 4);
    raw_send(fd, 10, VFIO_USER_REGION_WRITE, VFIO_USER_F_NO_REPLY, p, 20,
             NULL, 0);
    /* A malformed one (short payload). */
    raw_send(fd, 11, VFIO_USER_REGION_WRITE, VFIO_USER_F_NO_REPLY, p, 3,
             NULL, 0);
    /* An oversized one. */
    raw_send(fd, 12, VFIO_USER_REGION_WRITE, VFIO_USER_F_NO_REPLY, big,
             OVERSIZED_PAYLOAD, NULL, 0);
    /* A reply nobody asked for. */
    raw_send(fd, 13, VFIO_USER_REGION_READ, VFIO_USER_F_TYPE_REPLY, p, 16,
             NULL, 0);
    /* A good posted write, applied before the next request. */
    memcpy(p, &good, sizeof(good));
    memcpy(p + 16, &v, 4);
    raw_send(fd, 14, VFIO_USER_REGION_WRITE, VFIO_USER_F_NO_REPLY, p, 20,
             NULL, 0);
    raw_send(fd, 15, VFIO_USER_REGION_READ, 0, &rd, sizeof(rd), NULL, 0);
    assert_int_equal(raw_expect_reply(fd, 15, VFIO_USER_REGION_READ, reply,
                                      sizeof(reply)),
                     16 + 16 + 4);
    memcpy(&v, reply + 32, 4);
    assert_int_equal(v, 0x5ca1ab1e);
    raw_expect_quiet(fd);
    /* The three bad commands and the stray reply were counted. */
    harness_get_state(&H, &s1);
    assert_int_equal(s1.stats.errors - s0.stats.errors, 4);
    free(big);
    close(fd);
}

/* An impossible header is a bad stream: that connection is closed, the
 * server serves the next one. */
static void
test_impossible_header_closes_connection(void **state)
{
    static const struct vfio_user_header bad[] = {
        { 5, VFIO_USER_DEVICE_GET_INFO, 0, 0, 0 },
        { 5, VFIO_USER_DEVICE_GET_INFO, 8, 0, 0 },
        { 5, VFIO_USER_DEVICE_GET_INFO, 15, 0, 0 },
    };
    struct umdev_client *c;
    uint8_t buf[64];
    size_t i;

    (void)state;
    /* Through the client API. */
    c = harness_connect(&H, NULL);
    assert_int_equal(reg_rd32(c, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
    assert_int_equal(umdev_client_send_bytes(c, &bad[1], sizeof(bad[1])), 0);
    assert_int_equal(umdev_client_region_read(c, UMDEV_PCI_BAR0_REGION,
                                              TESTDEV_REG_ID, buf, 4),
                     -ECONNRESET);
    umdev_client_destroy(c);
    harness_wait_detached(&H);
    /* On raw sockets, before and after negotiation. */
    for (i = 0; i < 2 * sizeof(bad) / sizeof(bad[0]); i++) {
        int fd = harness_raw_socket(&H);

        if (i % 2)
            raw_negotiate(fd, 1);
        raw_send_all(fd, &bad[i / 2], sizeof(bad[i / 2]));
        assert_int_equal(raw_recv(fd, buf, sizeof(buf), HARNESS_TIMEOUT_MS,
                                  NULL, NULL),
                         0);
        close(fd);
        harness_wait_detached(&H);
    }
    c = harness_connect(&H, NULL);
    assert_int_equal(reg_rd32(c, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
    umdev_client_destroy(c);
}

static const struct CMUnitTest tests[] = {
    HARNESS_TEST(test_version_qemu_replay),
    HARNESS_TEST(test_version_must_come_first),
    HARNESS_TEST(test_version_refusals),
    HARNESS_TEST(test_version_without_json),
    HARNESS_TEST(test_version_pgsizes_bitmap),
    HARNESS_TEST(test_bad_messages_every_command),
    HARNESS_TEST(test_data_over_limit),
    HARNESS_TEST(test_unknown_commands),
    HARNESS_TEST(test_fd_where_none_belongs),
    HARNESS_TEST(test_too_many_fds),
    HARNESS_TEST(test_pipelined_commands_with_fds),
    HARNESS_TEST(test_posted_errors_are_silent),
    HARNESS_TEST(test_impossible_header_closes_connection),
    HARNESS_TEST(test_version_json_strict),
};

HARNESS_MAIN("func.protocol", tests)
