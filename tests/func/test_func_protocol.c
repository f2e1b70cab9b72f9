/* Functional tests of the protocol edges against the real server: QEMU's
 * VERSION, bad messages of every command, fds where none belong, posted
 * errors, bad streams, mid-message disconnects, a second client, leaks. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "harness.h"

#define QEMU_JSON                                                            \
    "{\"capabilities\":{\"max_msg_fds\":16,\"max_data_xfer_size\":1048576," \
    "\"pgsizes\":4096,\"max_dma_maps\":65535,\"migration\":{\"pgsize\":"     \
    "4096,\"max_bitmap_size\":268435456},\"write_multiple\":true}}"

static struct harness H;
static uint8_t reply[2 * 1024 * 1024];

static int
setup(void **state)
{
    (void)state;
    harness_start(&H);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    harness_stop(&H);
    return 0;
}

static struct vfio_user_header
recv_hdr(int fd)
{
    struct vfio_user_header h;
    long n = raw_recv(fd, reply, sizeof(reply), 5000);

    assert_true(n >= 16);
    memcpy(&h, reply, sizeof(h));
    return h;
}

static void
expect_error(int fd, uint16_t id, int err)
{
    struct vfio_user_header h = recv_hdr(fd);

    assert_int_equal(h.msg_id, id);
    assert_int_equal(h.flags, VFIO_USER_F_TYPE_REPLY | VFIO_USER_F_ERROR);
    assert_int_equal(h.error, err);
    assert_int_equal(h.msg_size, 16);
}

/* A good request after a bad one proves the connection still works. */
static void
expect_alive(int fd, uint16_t id)
{
    struct vfio_user_device_info di = { 16, 0, 0, 0 };
    struct vfio_user_header h;

    raw_send(fd, id, VFIO_USER_DEVICE_GET_INFO, 0, &di, sizeof(di), NULL, 0);
    h = recv_hdr(fd);
    assert_int_equal(h.msg_id, id);
    assert_int_equal(h.flags, VFIO_USER_F_TYPE_REPLY);
    assert_int_equal(h.msg_size, 32);
}

static void
test_qemu_version_exchange(void **state)
{
    struct vfio_user_header h;
    struct json_object *root, *caps, *v;
    uint8_t p[4 + sizeof(QEMU_JSON)] = { 0 };
    const char *json;
    uint16_t major, minor;
    int fd = harness_raw_socket(&H);

    (void)state;
    memcpy(p + 4, QEMU_JSON, sizeof(QEMU_JSON));
    raw_send(fd, 0x2a, VFIO_USER_VERSION, 0, p, sizeof(p), NULL, 0);
    h = recv_hdr(fd);
    assert_int_equal(h.msg_id, 0x2a);
    assert_int_equal(h.cmd, VFIO_USER_VERSION);
    assert_int_equal(h.flags, VFIO_USER_F_TYPE_REPLY);
    memcpy(&major, reply + 16, 2);
    memcpy(&minor, reply + 18, 2);
    assert_int_equal(major, 0);
    assert_int_equal(minor, 0);
    /* NUL-terminated inside the message. */
    assert_int_equal(reply[h.msg_size - 1], '\0');
    json = (const char *)reply + 20;
    assert_int_equal(strlen(json) + 1, h.msg_size - 20);
    root = json_tokener_parse(json);
    assert_non_null(root);
    assert_true(json_object_object_get_ex(root, "capabilities", &caps));
    assert_true(json_object_object_get_ex(caps, "max_msg_fds", &v));
    assert_int_equal(json_object_get_int(v), UMDEV_WIRE_MAX_MSG_FDS);
    assert_true(json_object_object_get_ex(caps, "max_data_xfer_size", &v));
    assert_int_equal(json_object_get_int(v), 1048576);
    assert_true(json_object_object_get_ex(caps, "pgsizes", &v));
    assert_int_equal(json_object_get_int(v), 4096);
    assert_true(json_object_object_get_ex(caps, "max_dma_maps", &v));
    assert_true(json_object_object_get_ex(caps, "write_multiple", &v));
    assert_true(json_object_get_boolean(v));
    /* We do not migrate yet, so we must not claim it. */
    assert_false(json_object_object_get_ex(caps, "migration", &v));
    json_object_put(root);
    /* A second VERSION is refused; the connection goes on. */
    raw_send(fd, 3, VFIO_USER_VERSION, 0, p, sizeof(p), NULL, 0);
    expect_error(fd, 3, EINVAL);
    expect_alive(fd, 4);
    close(fd);
}

static void
test_before_version_and_bad_versions(void **state)
{
    static const char bad_json[] = "{\"capabilities\":{\"max_msg_fds\":\"x\"}}";
    struct vfio_user_device_info di = { 16, 0, 0, 0 };
    uint8_t p[4 + 64] = { 0 };
    int fd = harness_raw_socket(&H);
    uint16_t major = 1;

    (void)state;
    raw_send(fd, 1, VFIO_USER_DEVICE_GET_INFO, 0, &di, sizeof(di), NULL, 0);
    expect_error(fd, 1, EINVAL);
    memcpy(p + 4, bad_json, sizeof(bad_json));
    raw_send(fd, 2, VFIO_USER_VERSION, 0, p, 4 + sizeof(bad_json), NULL, 0);
    expect_error(fd, 2, EINVAL);
    memcpy(p, &major, 2);
    raw_send(fd, 3, VFIO_USER_VERSION, 0, p, 4, NULL, 0);
    expect_error(fd, 3, ENOTSUP);
    /* And a correct VERSION still succeeds afterwards. */
    raw_negotiate(fd);
    expect_alive(fd, 5);
    close(fd);
}

/* Payload sizes that are one byte short of each command's fixed part,
 * and the argsz below the fixed part (where there is one). */
static const struct {
    uint16_t cmd;
    size_t fixed;
    bool argsz;
} cmds[] = {
    { VFIO_USER_DMA_MAP, 32, true },
    { VFIO_USER_DMA_UNMAP, 24, true },
    { VFIO_USER_DEVICE_GET_INFO, 16, true },
    { VFIO_USER_DEVICE_GET_REGION_INFO, 32, true },
    { VFIO_USER_DEVICE_GET_REGION_IO_FDS, 16, true },
    { VFIO_USER_DEVICE_GET_IRQ_INFO, 16, true },
    { VFIO_USER_DEVICE_SET_IRQS, 20, true },
    { VFIO_USER_REGION_READ, 16, false },
    { VFIO_USER_REGION_WRITE, 16, false },
    { VFIO_USER_DMA_READ, 16, false },
    { VFIO_USER_DMA_WRITE, 16, false },
    { VFIO_USER_REGION_WRITE_MULTI, 8, false },
    { VFIO_USER_DEVICE_FEATURE, 8, true },
    { VFIO_USER_MIG_DATA_READ, 8, true },
    { VFIO_USER_MIG_DATA_WRITE, 8, true },
};

static void
test_bad_messages_every_command(void **state)
{
    uint8_t p[64] = { 0 };
    int fd = harness_raw_socket(&H);
    uint16_t id = 10;
    size_t i;

    (void)state;
    raw_negotiate(fd);
    for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        memset(p, 0, sizeof(p));
        raw_send(fd, id, cmds[i].cmd, 0, p, cmds[i].fixed - 1, NULL, 0);
        expect_error(fd, id, EINVAL);
        expect_alive(fd, id + 1);
        id += 2;
        if (cmds[i].argsz) {
            uint32_t argsz = (uint32_t)cmds[i].fixed - 1;

            memcpy(p, &argsz, 4);
            raw_send(fd, id, cmds[i].cmd, 0, p, cmds[i].fixed, NULL, 0);
            expect_error(fd, id, EINVAL);
            expect_alive(fd, id + 1);
            id += 2;
        }
    }
    /* VERSION (a second one) and RESET with junk: RESET takes any
     * payload, VERSION is refused. */
    raw_send(fd, id, VFIO_USER_VERSION, 0, p, 2, NULL, 0);
    expect_error(fd, id, EINVAL);
    expect_alive(fd, id + 1);
    close(fd);
}

static void
test_unknown_commands(void **state)
{
    static const uint16_t unknown[] = { 0, 14, 19, 0xffff };
    int fd = harness_raw_socket(&H);
    size_t i;

    (void)state;
    raw_negotiate(fd);
    for (i = 0; i < 4; i++) {
        raw_send(fd, (uint16_t)(100 + i), unknown[i], 0, NULL, 0, NULL, 0);
        expect_error(fd, (uint16_t)(100 + i), ENOSYS);
    }
    expect_alive(fd, 200);
    close(fd);
}

static void
test_oversized_message(void **state)
{
    struct vfio_user_region_access a = { 0, 2, 0 };
    size_t body = 1024 * 1024 + 128 * 1024;
    static uint8_t big[1024 * 1024 + 128 * 1024 + 16];
    struct vfio_user_header h = {
        .msg_id = 77,
        .cmd = VFIO_USER_REGION_WRITE,
        .msg_size = (uint32_t)(16 + body),
    };
    int fd = harness_raw_socket(&H);
    size_t off = 0;

    (void)state;
    raw_negotiate(fd);
    a.count = (uint32_t)(body - sizeof(a));
    memcpy(big, &h, sizeof(h));
    memcpy(big + 16, &a, sizeof(a));
    while (off < sizeof(big)) {
        ssize_t n = send(fd, big + off, sizeof(big) - off, MSG_NOSIGNAL);

        assert_true(n > 0);
        off += (size_t)n;
    }
    expect_error(fd, 77, E2BIG);
    expect_alive(fd, 78);
    close(fd);
}

static void
test_fds_where_none_belong(void **state)
{
    struct vfio_user_device_info di = { 16, 0, 0, 0 };
    struct vfio_user_irq_set s = { 20, (1u << 2) | (1u << 5), 3, 0, 1 };
    int fd = harness_raw_socket(&H);
    int efds[17], before, i;
    struct stat st;

    (void)state;
    raw_negotiate(fd);
    for (i = 0; i < 17; i++)
        efds[i] = eventfd(0, EFD_CLOEXEC);
    before = count_fds();
    raw_send(fd, 20, VFIO_USER_DEVICE_GET_INFO, 0, &di, sizeof(di), efds, 1);
    expect_error(fd, 20, EBADF);
    expect_alive(fd, 21);
    /* 17 fds: one more than any message may carry. */
    s.count = 17;
    raw_send(fd, 22, VFIO_USER_DEVICE_SET_IRQS, 0, &s, sizeof(s), efds, 17);
    expect_error(fd, 22, EBADF);
    expect_alive(fd, 23);
    /* The server closed its copies: the count is back where it was
     * (server and client share this process). */
    assert_int_equal(count_fds(), before);
    for (i = 0; i < 17; i++) {
        assert_int_equal(fstat(efds[i], &st), 0);
        close(efds[i]);
    }
    close(fd);
}

static void
test_posted_error_gets_no_reply(void **state)
{
    uint8_t p[16 + 4];
    struct vfio_user_region_access a = { 0x7fff0, 0, 4 };
    struct vfio_user_region_access r = { TESTDEV_REG_ID, 0, 4 };
    struct vfio_user_header h;
    uint32_t v;
    int fd = harness_raw_socket(&H);

    (void)state;
    raw_negotiate(fd);
    memcpy(p, &a, sizeof(a));
    memset(p + 16, 0, 4);
    raw_send(fd, 30, VFIO_USER_REGION_WRITE, VFIO_USER_F_NO_REPLY, p,
             sizeof(p), NULL, 0);
    /* A bad posted message (short payload) is silent too. */
    raw_send(fd, 31, VFIO_USER_REGION_WRITE, VFIO_USER_F_NO_REPLY, p, 3,
             NULL, 0);
    raw_send(fd, 32, VFIO_USER_REGION_READ, 0, &r, sizeof(r), NULL, 0);
    h = recv_hdr(fd);
    assert_int_equal(h.msg_id, 32);
    assert_int_equal(h.flags, VFIO_USER_F_TYPE_REPLY);
    memcpy(&v, reply + 32, 4);
    assert_int_equal(v, TESTDEV_ID_VALUE);
    close(fd);
}

static void
wait_detached(struct harness *h)
{
    int i;

    for (i = 0; i < 500 && umdev_dev_attached(h->dev); i++)
        usleep(2000);
    assert_false(umdev_dev_attached(h->dev));
}

static void
test_bad_stream_closes_only_that_connection(void **state)
{
    struct vfio_user_header h = { 5, VFIO_USER_DEVICE_GET_INFO, 8, 0, 0 };
    int fd = harness_raw_socket(&H);
    char c;

    (void)state;
    raw_negotiate(fd);
    assert_int_equal(send(fd, &h, sizeof(h), MSG_NOSIGNAL), sizeof(h));
    /* The server hangs up. */
    {
        struct pollfd p = { .fd = fd, .events = POLLIN };

        assert_int_equal(poll(&p, 1, 5000), 1);
        assert_true(recv(fd, &c, 1, 0) <= 0);
    }
    close(fd);
    wait_detached(&H);
    fd = harness_raw_socket(&H);
    raw_negotiate(fd);
    expect_alive(fd, 6);
    close(fd);
}

struct dma_count {
    struct umdev_dev *dev;
    size_t n;
};

static void
get_dma_count(void *arg)
{
    struct dma_count *d = arg;

    d->n = umdev_dma_count(d->dev);
}

static void
test_disconnect_mid_message(void **state)
{
    struct vfio_user_dma_map m = { 32, 3, 0, 0x100000, 0x1000 };
    struct vfio_user_region_access a = { 0, 2, 64 };
    struct vfio_user_header h = { 9, VFIO_USER_REGION_WRITE, 16 + 16 + 64, 0,
                                  0 };
    struct dma_count dc = { .dev = H.dev };
    uint8_t partial[16 + 16 + 10];
    int fd, i;

    (void)state;
    for (i = 0; i < 2; i++) {
        fd = harness_raw_socket(&H);
        raw_negotiate(fd);
        raw_send(fd, 8, VFIO_USER_DMA_MAP, 0, &m, sizeof(m), NULL, 0);
        recv_hdr(fd);
        if (i == 0) {
            /* Half a header. */
            assert_int_equal(send(fd, &h, 7, MSG_NOSIGNAL), 7);
        } else {
            /* A header and part of the body. */
            memcpy(partial, &h, 16);
            memcpy(partial + 16, &a, 16);
            assert_int_equal(send(fd, partial, sizeof(partial),
                                  MSG_NOSIGNAL),
                             sizeof(partial));
        }
        close(fd);
        wait_detached(&H);
        harness_call(&H, get_dma_count, &dc);
        assert_int_equal(dc.n, 0);
    }
    fd = harness_raw_socket(&H);
    raw_negotiate(fd);
    expect_alive(fd, 10);
    close(fd);
}

static void
test_second_client_waits(void **state)
{
    struct umdev_client *first = harness_connect(&H);
    uint8_t p[4] = { 0 };
    int second = harness_raw_socket(&H);

    (void)state;
    raw_send(second, 1, VFIO_USER_VERSION, 0, p, sizeof(p), NULL, 0);
    /* Served only once the first client leaves. */
    assert_int_equal(raw_recv(second, reply, sizeof(reply), 200), -1);
    umdev_client_destroy(first);
    assert_true(raw_recv(second, reply, sizeof(reply), 2000) > 16);
    expect_alive(second, 2);
    close(second);
}

static void
test_no_fd_leaks(void **state)
{
    struct harness h2;
    int before, i;

    (void)state;
    harness_stop(&H);
    before = count_fds();
    harness_start(&h2);
    for (i = 0; i < 50; i++) {
        struct umdev_client *c = harness_connect(&h2);
        int efd = eventfd(0, EFD_CLOEXEC);
        int mfd = memfd_create("g", MFD_CLOEXEC);
        void *map;
        size_t len;

        assert_int_equal(ftruncate(mfd, 8192), 0);
        assert_int_equal(umdev_client_dma_map(c, 0x1000, 8192, NULL, mfd, 0,
                                              3),
                         0);
        assert_int_equal(umdev_client_set_irqs(c, 3, (1u << 2) | (1u << 5),
                                               0, 1, &efd, NULL),
                         0);
        assert_int_equal(umdev_client_region_mmap(c, 2, 0, &map, &len), 0);
        close(efd);
        close(mfd);
        umdev_client_destroy(c);
    }
    harness_stop(&h2);
    assert_int_equal(count_fds(), before);
    harness_start(&H);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_qemu_version_exchange, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_before_version_and_bad_versions,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_messages_every_command,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_commands, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_oversized_message, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fds_where_none_belong, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_posted_error_gets_no_reply,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_bad_stream_closes_only_that_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disconnect_mid_message, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_second_client_waits, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_no_fd_leaks, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
