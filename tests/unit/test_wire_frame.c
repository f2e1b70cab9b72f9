/*
 * Unit tests for lib/wire, across messages: the header, framing
 * (msg_size against the bytes there, every prefix of every message),
 * encoding, error replies, command names, and the checks every message
 * gets (short fixed part, bad argsz, data over the limit, descriptors,
 * unknown commands). The samples are in wire_samples.c; each message's
 * own fields and refusals are in test_wire.c.
 */
#include <stdio.h>
#include <stdlib.h>

#include "wire_samples.h"
#include "umdev/wire_codec.h"

/* Every spec command appears in the table as a command and as a reply. */
static void
test_samples_cover_every_command(void **state)
{
    size_t i, j;

    (void)state;
    for (i = 0; i < n_known_cmds; i++) {
        bool cmd = false, reply = false;

        for (j = 0; j < n_samples; j++) {
            if (samples[j].cmd != known_cmds[i])
                continue;
            if (samples[j].flags & REPLY)
                reply = true;
            else
                cmd = true;
        }
        if (!cmd || !reply)
            fail_msg("%s: command %d reply %d",
                     umdev_wire_cmd_name(known_cmds[i]), cmd, reply);
    }
}

/*
 * The sweeps: each_sample() runs one on every sample, encoded afresh; it
 * says whether the sample has what it changes, and each test checks on
 * how many it ran, so a sample table that lost entries cannot pass
 * quietly.
 */

/* One byte less than the fixed part. */
static bool
short_payload(const struct sample *s, struct msg *m)
{
    if (s->min_fixed == 0)
        return false;
    enc(m, s->cmd, s->flags, s->fixed, s->min_fixed - 1, NULL, 0);
    check_rc(s->name, "short", rc_of(m, s->nfds), -EINVAL);
    return true;
}

static bool
bad_argsz(const struct sample *s, struct msg *m)
{
    if (s->argsz_min == 0)
        return false;
    put32(m, HDR, s->argsz_min - 1);
    check_rc(s->name, "argsz - 1", rc_of(m, s->nfds), -EINVAL);
    put32(m, HDR, 0);
    check_rc(s->name, "argsz 0", rc_of(m, s->nfds), -EINVAL);
    return true;
}

static bool
data_over_limit(const struct sample *s, struct msg *m)
{
    static const struct umdev_wire_limits small = {
        .max_data_xfer_size = 4096,
        .max_msg_fds = UMDEV_WIRE_MAX_MSG_FDS,
    };

    if (s->count_size == 0)
        return false;
    check_rc(s->name, "small limit",
             decode_exact(m->b, m->len, s->nfds, &small), 0);
    put_field(m, s->count_off, s->count_size,
              UMDEV_WIRE_DEFAULT_MAX_DATA_XFER + 1);
    check_rc(s->name, "default limit + 1", rc_of(m, s->nfds), -E2BIG);
    put_field(m, s->count_off, s->count_size, 4097);
    check_rc(s->name, "small limit + 1",
             decode_exact(m->b, m->len, s->nfds, &small), -E2BIG);
    if (s->count_size == 8) {
        put_field(m, s->count_off, 8, (1ull << 32) + 4);
        check_rc(s->name, "2^32 + 4", rc_of(m, s->nfds), -E2BIG);
    }
    return true;
}

static void
test_sweeps_every_message(void **state)
{
    (void)state;
    assert_int_equal(each_sample(short_payload), 36);
    assert_int_equal(each_sample(bad_argsz), 22);
    assert_int_equal(each_sample(data_over_limit), 10);
}

/* Exactly max_data_xfer_size of data is fine; one more byte is not. */
static void
test_data_at_limit(void **state)
{
    const size_t max = UMDEV_WIRE_DEFAULT_MAX_DATA_XFER;
    size_t cap = HDR + 16 + max + 1;
    uint8_t *buf = calloc(1, cap), *zeros = calloc(1, max + 1);
    struct vfio_user_region_access a = { 0, 0, (uint32_t)max };
    struct vfio_user_dma_access d = { 0x100000, max };
    ssize_t n;

    (void)state;
    assert_non_null(buf);
    assert_non_null(zeros);
    n = umdev_wire_encode(buf, cap, 1, VFIO_USER_REGION_WRITE, 0, &a, 16, zeros,
                          max);
    assert_int_equal(n, HDR + 16 + max);
    check_rc("REGION_WRITE", "max", decode_exact(buf, (size_t)n, 0, NULL), 0);
    n = umdev_wire_encode(buf, cap, 1, VFIO_USER_DMA_READ, REPLY, &d, 16, zeros,
                          max);
    check_rc("DMA_READ reply", "max", decode_exact(buf, (size_t)n, 0, NULL), 0);
    a.count++;
    n = umdev_wire_encode(buf, cap, 1, VFIO_USER_REGION_WRITE, 0, &a, 16, zeros,
                          max + 1);
    check_rc("REGION_WRITE", "max + 1", decode_exact(buf, (size_t)n, 0, NULL),
             -E2BIG);
    free(zeros);
    free(buf);
}

static bool
fds(const struct sample *s, struct msg *m)
{
    static const struct umdev_wire_limits no_fds = {
        .max_data_xfer_size = UMDEV_WIRE_DEFAULT_MAX_DATA_XFER,
    };

    check_rc(s->name, "max fds + 1", rc_of(m, UMDEV_WIRE_MAX_MSG_FDS + 1),
             -EBADF);
    check_rc(s->name, "lim: no fds",
             decode_exact(m->b, m->len, s->nfds, &no_fds),
             s->nfds ? -EBADF : 0);
    switch (s->fds) {
    case FDS_NONE:
        check_rc(s->name, "1 fd", rc_of(m, 1), -EBADF);
        break;
    case FDS_MAP:
        check_rc(s->name, "0 fds", rc_of(m, 0), 0);
        check_rc(s->name, "2 fds", rc_of(m, 2), -EBADF);
        break;
    case FDS_EXACT:
        check_rc(s->name, "0 fds", rc_of(m, 0), 0);
        check_rc(s->name, "count + 1", rc_of(m, s->nfds + 1), -EBADF);
        check_rc(s->name, "count - 1", rc_of(m, s->nfds - 1), -EBADF);
        break;
    case FDS_ANY:
        check_rc(s->name, "max fds", rc_of(m, UMDEV_WIRE_MAX_MSG_FDS), 0);
        break;
    }
    return true;
}

static void
test_unknown_commands(void **state)
{
    static const uint16_t unknown[] = { 0, 14, 19, 0xffff };
    struct vfio_user_header req, err;
    struct msg m;
    size_t i;

    (void)state;
    for (i = 0; i < N_ELEM(unknown); i++) {
        char name[16];

        snprintf(name, sizeof(name), "command %u", unknown[i]);
        enc(&m, unknown[i], 0, NULL, 0, NULL, 0);
        check_rc(name, "command", rc_of(&m, 0), -ENOSYS);
        enc(&m, unknown[i], 0, k_rr_data, 4, NULL, 0);
        check_rc(name, "command + payload", rc_of(&m, 0), -ENOSYS);
        enc(&m, unknown[i], REPLY, NULL, 0, NULL, 0);
        check_rc(name, "reply", rc_of(&m, 0), -ENOSYS);
        memcpy(&req, m.b, sizeof(req));
        umdev_wire_encode_error(&err, &req, EIO);
        check_rc(name, "error reply", decode_exact(&err, sizeof(err), 0, NULL),
                 -ENOSYS);
    }
}

static bool
msg_size_mismatch(const struct sample *s, struct msg *m)
{
    m->b[m->len] = 0;
    check_rc(s->name, "len + 1", decode_exact(m->b, m->len + 1, s->nfds, NULL),
             -EPROTO);
    check_rc(s->name, "len - 1", decode_exact(m->b, m->len - 1, s->nfds, NULL),
             -EPROTO);
    put32(m, 4, (uint32_t)m->len + 1);
    check_rc(s->name, "msg_size + 1", rc_of(m, s->nfds), -EPROTO);
    put32(m, 4, UINT32_MAX);
    check_rc(s->name, "msg_size max", rc_of(m, s->nfds), -EPROTO);
    return true;
}

static void
test_bad_headers(void **state)
{
    struct vfio_user_header h;
    struct msg m;
    uint32_t v;

    (void)state;
    /* msg_size below the header, and a buffer shorter than one. */
    for (v = 0; v < HDR; v++) {
        enc(&m, VFIO_USER_DEVICE_RESET, 0, NULL, 0, NULL, 0);
        put32(&m, 4, v);
        check_rc("header", "msg_size < 16", umdev_wire_decode_header(m.b, &h),
                 -EPROTO);
        check_rc("header", "msg_size < 16 (decode)", rc_of(&m, 0), -EPROTO);
        enc(&m, VFIO_USER_DEVICE_RESET, 0, NULL, 0, NULL, 0);
        check_rc("header", "len < 16", decode_exact(m.b, v, 0, NULL), -EPROTO);
    }
    /* Unknown type values. */
    for (v = 2; v <= VFIO_USER_F_TYPE_MASK; v++) {
        enc(&m, VFIO_USER_DEVICE_RESET, v, NULL, 0, NULL, 0);
        check_rc("header", "type", umdev_wire_decode_header(m.b, &h), -EPROTO);
        check_rc("header", "type (decode)", rc_of(&m, 0), -EPROTO);
    }
    /* The Error flag on a command. */
    enc(&m, VFIO_USER_DEVICE_RESET, VFIO_USER_F_ERROR, NULL, 0, NULL, 0);
    check_rc("header", "error on command", rc_of(&m, 0), -EPROTO);
    /* Every reserved bit, on a command and on a reply. */
    for (v = 6; v < 32; v++) {
        enc(&m, VFIO_USER_DEVICE_RESET, 1u << v, NULL, 0, NULL, 0);
        check_rc("header", "reserved bit on command", rc_of(&m, 0), -EPROTO);
        enc(&m, VFIO_USER_DEVICE_RESET, REPLY | (1u << v), NULL, 0, NULL, 0);
        check_rc("header", "reserved bit on reply", rc_of(&m, 0), -EPROTO);
    }
    /* A good header decodes field for field. */
    enc(&m, VFIO_USER_REGION_READ, REPLY | VFIO_USER_F_NO_REPLY, NULL, 0, NULL,
        0);
    put32(&m, 12, 0x77);
    check_rc("header", "good", umdev_wire_decode_header(m.b, &h), 0);
    assert_int_equal(h.msg_id, MSG_ID);
    assert_int_equal(h.cmd, VFIO_USER_REGION_READ);
    assert_int_equal(h.msg_size, 16);
    assert_int_equal(h.flags, REPLY | VFIO_USER_F_NO_REPLY);
    assert_int_equal(h.error, 0x77);
}

/* Error replies carry only the header; any command may get one. */
static void
test_error_replies(void **state)
{
    struct vfio_user_header req = { .msg_id = 9, .msg_size = 16 };
    struct vfio_user_header err;
    struct umdev_wire_msg w;
    struct msg m;
    size_t i;

    (void)state;
    for (i = 0; i < n_known_cmds; i++) {
        const char *name = umdev_wire_cmd_name(known_cmds[i]);

        req.cmd = known_cmds[i];
        umdev_wire_encode_error(&err, &req, -EIO);
        check_rc(name, "error reply",
                 umdev_wire_decode(&err, sizeof(err), 0, NULL, &w), 0);
        assert_true(w.is_reply);
        assert_int_equal(w.hdr.msg_id, 9);
        assert_int_equal(w.hdr.cmd, known_cmds[i]);
        assert_int_equal(w.hdr.flags, REPLY | VFIO_USER_F_ERROR);
        assert_int_equal(w.hdr.error, EIO);
        assert_int_equal(w.payload_len, 0);
        assert_int_equal(w.data_len, 0);
        check_rc(name, "error reply + fd",
                 decode_exact(&err, sizeof(err), 1, NULL), -EBADF);
        /* Errno 0 is allowed with the flag; a payload is ignored. */
        enc(&m, known_cmds[i], REPLY | VFIO_USER_F_ERROR, k_rr_data, 3, NULL,
            0);
        check_rc(name, "error reply + 3 bytes", rc_of(&m, 0), 0);
    }
}

static void
test_encode(void **state)
{
    const uint8_t fixed[3] = { 0xf1, 0xf2, 0xf3 }, data[2] = { 0xd1, 0xd2 };
    struct vfio_user_header h;
    uint8_t out[HDR + 5 + 1];
    uint32_t v;

    (void)state;
    memset(out, 0xee, sizeof(out));
    assert_int_equal(umdev_wire_encode(out, HDR + 5, 0x1234,
                                       VFIO_USER_REGION_WRITE,
                                       VFIO_USER_F_NO_REPLY, fixed, 3, data, 2),
                     HDR + 5);
    memcpy(&h, out, sizeof(h));
    assert_int_equal(h.msg_id, 0x1234);
    assert_int_equal(h.cmd, VFIO_USER_REGION_WRITE);
    assert_int_equal(h.msg_size, HDR + 5);
    assert_int_equal(h.flags, VFIO_USER_F_NO_REPLY);
    assert_int_equal(h.error, 0);
    /* The spec's header offsets, read independently of the struct. */
    memcpy(&v, out + 4, 4);
    assert_int_equal(v, HDR + 5);
    memcpy(&v, out + 8, 4);
    assert_int_equal(v, VFIO_USER_F_NO_REPLY);
    assert_memory_equal(out + HDR, fixed, 3);
    assert_memory_equal(out + HDR + 3, data, 2);
    assert_int_equal(out[HDR + 5], 0xee); /* nothing past the message */

    /* Too small by one byte, by everything, and sizes that overflow. */
    assert_int_equal(
        umdev_wire_encode(out, HDR + 4, 1, 1, 0, fixed, 3, data, 2), -E2BIG);
    assert_int_equal(umdev_wire_encode(out, 0, 1, 13, 0, NULL, 0, NULL, 0),
                     -E2BIG);
    assert_int_equal(
        umdev_wire_encode(out, HDR - 1, 1, 13, 0, NULL, 0, NULL, 0), -E2BIG);
    assert_int_equal(
        umdev_wire_encode(out, SIZE_MAX, 1, 1, 0, fixed, SIZE_MAX, data, 2),
        -E2BIG);
    assert_int_equal(
        umdev_wire_encode(out, SIZE_MAX, 1, 1, 0, fixed, 0, data, UINT32_MAX),
        -E2BIG);
    assert_int_equal(umdev_wire_encode(out, HDR, 1, 13, 0, NULL, 0, NULL, 0),
                     HDR);

    assert_int_equal(umdev_wire_size(0, 0), 16);
    assert_int_equal(umdev_wire_size(8, 4), 28);
    assert_int_equal(umdev_wire_size(0, UINT32_MAX - HDR), UINT32_MAX);
    assert_int_equal(umdev_wire_size(0, UINT32_MAX - HDR + 1), 0);
    assert_int_equal(umdev_wire_size(SIZE_MAX, 0), 0);
    assert_int_equal(umdev_wire_size(SIZE_MAX - 8, 16), 0);
}

static void
test_encode_error(void **state)
{
    const struct vfio_user_header req = {
        .msg_id = 42,
        .cmd = VFIO_USER_REGION_READ,
        .msg_size = 32,
        .flags = VFIO_USER_F_NO_REPLY,
        .error = 0x55,
    };
    struct vfio_user_header out;
    struct umdev_wire_msg w;

    (void)state;
    umdev_wire_encode_error(&out, &req, -EINVAL);
    assert_int_equal(sizeof(out), 16);
    assert_int_equal(out.msg_id, 42);
    assert_int_equal(out.cmd, VFIO_USER_REGION_READ);
    assert_int_equal(out.msg_size, 16);
    assert_int_equal(out.flags, VFIO_USER_F_TYPE_REPLY | VFIO_USER_F_ERROR);
    assert_int_equal(out.error, EINVAL);
    umdev_wire_encode_error(&out, &req, ENOSPC);
    assert_int_equal(out.error, ENOSPC);
    check_rc("encode_error", "decodes",
             umdev_wire_decode(&out, sizeof(out), 0, NULL, &w), 0);
    assert_int_equal(w.hdr.error, ENOSPC);
}

static void
test_cmd_names(void **state)
{
    static const char *const names[] = {
        "VERSION",
        "DMA_MAP",
        "DMA_UNMAP",
        "DEVICE_GET_INFO",
        "DEVICE_GET_REGION_INFO",
        "DEVICE_GET_REGION_IO_FDS",
        "DEVICE_GET_IRQ_INFO",
        "DEVICE_SET_IRQS",
        "REGION_READ",
        "REGION_WRITE",
        "DMA_READ",
        "DMA_WRITE",
        "DEVICE_RESET",
        "REGION_WRITE_MULTI",
        "DEVICE_FEATURE",
        "MIG_DATA_READ",
        "MIG_DATA_WRITE",
    };
    size_t i;

    (void)state;
    assert_int_equal(N_ELEM(names), n_known_cmds);
    for (i = 0; i < n_known_cmds; i++)
        assert_string_equal(umdev_wire_cmd_name(known_cmds[i]), names[i]);
    assert_string_equal(umdev_wire_cmd_name(0), "UNKNOWN");
    assert_string_equal(umdev_wire_cmd_name(14), "UNKNOWN");
    assert_string_equal(umdev_wire_cmd_name(19), "UNKNOWN");
    assert_string_equal(umdev_wire_cmd_name(0xffff), "UNKNOWN");
}

/* The spec's DMA_UNMAP reply echoes the request; an empty one is taken. */
static bool
empty_reply_ok(const struct sample *s)
{
    return s->cmd == VFIO_USER_DMA_UNMAP && (s->flags & REPLY);
}

static bool
known_errno(int rc)
{
    return rc == -EPROTO || rc == -EINVAL || rc == -E2BIG || rc == -ENOSYS ||
           rc == -EBADF;
}

/*
 * Every prefix of every sample: as cut off by a short read (msg_size still
 * the full size), and with msg_size claiming the prefix, so the payload
 * checks run on it. Decoding works on exact-size heap copies.
 */
static bool
truncations(const struct sample *s, struct msg *m)
{
    size_t n;

    for (n = 0; n <= m->len; n++) {
        int rc = decode_exact(m->b, n, s->nfds, NULL);

        if (n == m->len)
            check_rc(s->name, "full length", rc, 0);
        else
            check_rc(s->name, "cut", rc, -EPROTO);
    }
    for (n = HDR; n <= m->len; n++) {
        int rc;

        put32(m, 4, (uint32_t)n);
        rc = decode_exact(m->b, n, s->nfds, NULL);
        if (rc != 0 && !known_errno(rc))
            fail_msg("%s: prefix %zu: rc %d", s->name, n, rc);
        if (n == m->len)
            check_rc(s->name, "full length", rc, 0);
        else if (n < HDR + s->min_fixed && rc == 0 &&
                 !(n == HDR && empty_reply_ok(s)))
            fail_msg("%s: accepted with %zu of %zu fixed bytes", s->name,
                     n - HDR, s->min_fixed);
    }
    return true;
}

/* Every sample with every descriptor count, a wrong msg_size, and cut
 * off at every length. */
static void
test_framing_every_message(void **state)
{
    (void)state;
    assert_int_equal(each_sample(fds), n_samples);
    assert_int_equal(each_sample(msg_size_mismatch), n_samples);
    assert_int_equal(each_sample(truncations), n_samples);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_samples_cover_every_command),
        cmocka_unit_test(test_sweeps_every_message),
        cmocka_unit_test(test_data_at_limit),
        cmocka_unit_test(test_framing_every_message),
        cmocka_unit_test(test_unknown_commands),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_error_replies),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_encode_error),
        cmocka_unit_test(test_cmd_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
