/*
 * The client library's own bounds, against a scripted server on the other
 * end of a socketpair (a thread speaking raw vfio-user through kit_peer):
 * the sparse-mmap areas it takes from a region's info
 * (UMDEV_WIRE_MAX_SPARSE_AREAS), the region-info argsz it follows
 * (UMDEV_WIRE_MAX_CONTROL_PAYLOAD), and how long a request waits for its
 * reply by default (CONN_DEFAULT_TIMEOUT_MS), each at the limit and one
 * past it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <linux/vfio.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "kit_peer.h"
#include "kit_util.h"
#include "umdev/client.h"
#include "umdev/wire.h"

/* docs/PROTOCOL.md "Limits": a request's default wait (lib/conn/conn.h). */
#define DEFAULT_TIMEOUT_MS 5000
#define REGION_SIZE (1024u * 1024)

/* What the scripted server answers. */
struct script {
    int fd;
    uint32_t nr_areas; /* sparse areas in a region's info */
    uint32_t need;     /* argsz a region's info needs (0: what it takes) */
    int info_delay_ms; /* before answering DEVICE_GET_INFO; < 0: never */
    int err;           /* the script's own failure */
    pthread_t thread;
};

static void
reply(struct script *s, const struct vfio_user_header *h, const void *p,
      size_t len)
{
    if (kit_peer_send(s->fd, h->msg_id, h->cmd, VFIO_USER_F_TYPE_REPLY, p, len,
                      NULL, 0, NULL, 0) < 0)
        s->err = -EPIPE;
}

static void
region_info(struct script *s, const struct vfio_user_header *h,
            const uint8_t *payload)
{
    static uint8_t out[sizeof(struct vfio_user_region_info) +
                       sizeof(struct vfio_user_cap_sparse_mmap) +
                       (UMDEV_WIRE_MAX_SPARSE_AREAS + 1) *
                           sizeof(struct vfio_user_sparse_area)];
    struct vfio_user_region_info req, ri = { 0 };
    struct vfio_user_cap_sparse_mmap sp = {
        .header = { .id = VFIO_USER_REGION_CAP_SPARSE_MMAP, .version = 1 },
        .nr_areas = s->nr_areas,
    };
    size_t len = sizeof(ri) + sizeof(sp) +
                 s->nr_areas * sizeof(struct vfio_user_sparse_area);
    uint32_t i;

    memcpy(&req, payload, sizeof(req));
    ri.argsz = s->need ? s->need : (uint32_t)len;
    ri.index = req.index;
    ri.size = REGION_SIZE;
    ri.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
    if (req.argsz < ri.argsz) {
        /* Too small: the argsz needed and no capabilities (the spec). */
        reply(s, h, &ri, sizeof(ri));
        return;
    }
    ri.flags |= VFIO_REGION_INFO_FLAG_MMAP | VFIO_REGION_INFO_FLAG_CAPS;
    ri.cap_offset = sizeof(ri);
    memcpy(out, &ri, sizeof(ri));
    memcpy(out + sizeof(ri), &sp, sizeof(sp));
    for (i = 0; i < s->nr_areas; i++) {
        struct vfio_user_sparse_area a = { 2ull * i * 4096, 4096 };

        memcpy(out + sizeof(ri) + sizeof(sp) + i * sizeof(a), &a, sizeof(a));
    }
    reply(s, h, out, len);
}

static void *
serve(void *arg)
{
    struct script *s = arg;
    static uint8_t buf[128 * 1024];
    struct vfio_user_header h;
    ssize_t n;

    for (;;) {
        n = kit_peer_recv(s->fd, buf, sizeof(buf), 30000, NULL, NULL);
        if (n <= 0)
            break;
        memcpy(&h, buf, sizeof(h));
        switch (h.cmd) {
        case VFIO_USER_VERSION: {
            struct vfio_user_version v = { 0, 0 };

            reply(s, &h, &v, sizeof(v));
            break;
        }
        case VFIO_USER_DEVICE_GET_REGION_INFO:
            region_info(s, &h, buf + sizeof(h));
            break;
        case VFIO_USER_DEVICE_GET_INFO: {
            struct vfio_user_device_info di = { sizeof(di), 0, 1, 0 };

            if (s->info_delay_ms < 0)
                break; /* never answered */
            usleep((useconds_t)s->info_delay_ms * 1000);
            reply(s, &h, &di, sizeof(di));
            break;
        }
        default:
            s->err = -ENOSYS;
            return NULL;
        }
    }
    return NULL;
}

/* A client attached to a fresh scripted server. */
static struct umdev_client *
start(struct script *s)
{
    struct umdev_client *c;
    int sv[2];

    assert_int_equal(kit_peer_pair(sv), 0);
    s->fd = sv[0];
    assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
    assert_int_equal(umdev_client_attach_fd(sv[1], NULL, &c), 0);
    return c;
}

static void
finish(struct script *s, struct umdev_client *c)
{
    umdev_client_destroy(c); /* the server sees the end */
    assert_int_equal(pthread_join(s->thread, NULL), 0);
    close(s->fd);
    assert_int_equal(s->err, 0);
}

static void
test_sparse_areas_received(void **state)
{
    struct script s = { .nr_areas = UMDEV_WIRE_MAX_SPARSE_AREAS };
    struct umdev_client_region r;
    struct umdev_client *c;
    uint32_t i;

    (void)state;
    c = start(&s);
    assert_int_equal(umdev_client_region_info(c, 0, &r), 0);
    assert_int_equal(r.nr_areas, UMDEV_WIRE_MAX_SPARSE_AREAS);
    for (i = 0; i < r.nr_areas; i++) {
        assert_int_equal(r.areas[i].offset, 2ull * i * 4096);
        assert_int_equal(r.areas[i].size, 4096);
    }
    /* One more area than a region may have: the reply is refused. */
    s.nr_areas = UMDEV_WIRE_MAX_SPARSE_AREAS + 1;
    assert_int_equal(umdev_client_region_info(c, 1, &r), -EPROTO);
    finish(&s, c);
}

static void
test_region_info_argsz_followed(void **state)
{
    struct script s = { .nr_areas = 1, .need = UMDEV_WIRE_MAX_CONTROL_PAYLOAD };
    struct umdev_client_region r;
    struct umdev_client *c;

    (void)state;
    c = start(&s);
    /* Asked again with the argsz the server needs, up to the bound. */
    assert_int_equal(umdev_client_region_info(c, 0, &r), 0);
    assert_int_equal(r.nr_areas, 1);
    assert_int_equal(r.size, REGION_SIZE);
    s.need = UMDEV_WIRE_MAX_CONTROL_PAYLOAD + 1;
    assert_int_equal(umdev_client_region_info(c, 1, &r), -EPROTO);
    finish(&s, c);
}

static void
test_default_timeout(void **state)
{
    struct script s = { .info_delay_ms = DEFAULT_TIMEOUT_MS - 1000 };
    struct umdev_client_device_info di;
    struct umdev_client *c;
    int64_t t0;

    (void)state;
    c = start(&s);
    t0 = kit_now_ms();
    assert_int_equal(umdev_client_device_info(c, &di), 0);
    assert_int_equal(di.num_regions, 1);
    assert_true(kit_now_ms() - t0 >= DEFAULT_TIMEOUT_MS - 1000);
    finish(&s, c);

    s = (struct script){ .info_delay_ms = -1 };
    c = start(&s);
    t0 = kit_now_ms();
    assert_int_equal(umdev_client_device_info(c, &di), -ETIMEDOUT);
    assert_true(kit_now_ms() - t0 >= DEFAULT_TIMEOUT_MS);
    finish(&s, c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sparse_areas_received),
        cmocka_unit_test(test_region_info_argsz_followed),
        cmocka_unit_test(test_default_timeout),
    };

    return cmocka_run_group_tests_name("func.client", tests, NULL, NULL);
}
