/*
 * libFuzzer target: arbitrary bytes from a "client" into a live server
 * (the test device) over a socketpair: framing, decode and dispatch, with
 * the device's DMA-by-message path included. The server runs on its own
 * thread as in a worker; the fuzzer thread writes the input, half-closes,
 * and reads until the server hangs up. The first input byte selects
 * whether a valid VERSION exchange comes first (most inputs want it so
 * they reach the commands behind negotiation).
 */
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testdev.h"
#include "umdev/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *
serve(void *arg)
{
    struct umdev_dev *dev = arg;

    while (umdev_dev_attached(dev)) {
        struct pollfd p = { .fd = umdev_dev_client_fd(dev),
                            .events = POLLIN };

        if (poll(&p, 1, 10000) <= 0)
            break;
        umdev_dev_process(dev);
    }
    return NULL;
}

static size_t
version_message(uint8_t *buf, size_t cap)
{
    static const char json[] =
        "{\"capabilities\":{\"max_msg_fds\":16,\"max_data_xfer_size\":"
        "1048576,\"pgsizes\":4096,\"max_dma_maps\":65535,"
        "\"write_multiple\":true}}";
    struct vfio_user_version v = { 0, 0 };
    ssize_t n = umdev_wire_encode(buf, cap, 0, VFIO_USER_VERSION, 0, &v,
                                  sizeof(v), json, sizeof(json));

    return n > 0 ? (size_t)n : 0;
}

static void
pump(int fd, const uint8_t *data, size_t size)
{
    char sink[65536];
    size_t off = 0;

    while (off < size) {
        struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };

        if (poll(&p, 1, 10000) <= 0)
            abort(); /* the server stopped reading: a hang */
        if (p.revents & POLLIN) {
            if (read(fd, sink, sizeof(sink)) == 0)
                return; /* server hung up (bad stream) */
        }
        if (p.revents & POLLOUT) {
            ssize_t n = send(fd, data + off, size - off,
                             MSG_DONTWAIT | MSG_NOSIGNAL);

            if (n < 0)
                return;
            off += (size_t)n;
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct testdev *td;
    uint8_t hello[512];
    char sink[65536];
    pthread_t thread;
    int sv[2];

    if (size < 1)
        return 0;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return 0;
    if (testdev_create(NULL, &td) < 0) {
        close(sv[0]);
        close(sv[1]);
        return 0;
    }
    if (umdev_dev_attach(testdev_dev(td), sv[0]) < 0) {
        close(sv[1]);
        testdev_destroy(td);
        return 0;
    }
    pthread_create(&thread, NULL, serve, testdev_dev(td));
    if (!(data[0] & 1))
        pump(sv[1], hello, version_message(hello, sizeof(hello)));
    pump(sv[1], data + 1, size - 1);
    shutdown(sv[1], SHUT_WR);
    /* Read until the server, having seen EOF, closes its end. */
    for (;;) {
        struct pollfd p = { .fd = sv[1], .events = POLLIN };

        if (poll(&p, 1, 10000) <= 0)
            abort();
        if (read(sv[1], sink, sizeof(sink)) <= 0)
            break;
    }
    pthread_join(thread, NULL);
    close(sv[1]);
    testdev_destroy(td);
    return 0;
}
