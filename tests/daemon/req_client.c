/*
 * daemon-req-client: a minimal VMM stand-in for the daemon tests. It
 * attaches to an instance socket with lib/client, registers an eventfd for
 * the device request (REQ) IRQ, reads the vendor/device ID to prove the
 * device answers, then waits for REQ. In "release" mode it lets go as soon
 * as REQ fires (a cooperative VMM); in "hold" mode it keeps the connection
 * until the server closes it (a VMM that ignores the request). Every wait
 * is bounded by the timeout argument.
 *
 * Progress goes to stdout one line at a time so a test can follow it:
 *   attached pid=N id=VVVV:DDDD | req | released | disconnected
 * Exit: 0 the expected sequence happened; 1 it did not (the last line says
 * what happened instead); 2 usage.
 */
#include <errno.h>
#include <linux/vfio.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "kit_util.h"
#include "umdev/client.h"

#define USAGE "usage: daemon-req-client SOCKET release|hold TIMEOUT_MS\n"

/* Attach, register REQ, prove the device answers. Return: 0 or -errno. */
static int
attach(const char *path, int timeout_ms, int efd, struct umdev_client **out)
{
    struct umdev_client_opts opts = { .timeout_ms = timeout_ms };
    struct umdev_client_irq_info irq;
    struct umdev_client *c;
    uint32_t id;
    int rc;

    rc = umdev_client_connect(path, &opts, &c);
    if (rc < 0) {
        kit_say("error connect %s: %s", path, strerror(-rc));
        return rc;
    }
    rc = umdev_client_irq_info(c, VFIO_PCI_REQ_IRQ_INDEX, &irq);
    if (rc == 0 && (irq.count < 1 || !(irq.flags & VFIO_IRQ_INFO_EVENTFD)))
        rc = -ENOTSUP;
    if (rc < 0) {
        kit_say("error REQ irq info: %s", strerror(-rc));
        goto fail;
    }
    rc = umdev_client_set_irqs(c, VFIO_PCI_REQ_IRQ_INDEX,
                               VFIO_IRQ_SET_DATA_EVENTFD |
                                   VFIO_IRQ_SET_ACTION_TRIGGER,
                               0, 1, &efd, NULL);
    if (rc < 0) {
        kit_say("error SET_IRQS REQ: %s", strerror(-rc));
        goto fail;
    }
    rc = umdev_client_region_read(c, VFIO_PCI_CONFIG_REGION_INDEX, 0, &id,
                                  sizeof(id));
    if (rc < 0) {
        kit_say("error config read: %s", strerror(-rc));
        goto fail;
    }
    kit_say("attached pid=%d id=%04x:%04x", (int)getpid(), id & 0xffff,
            id >> 16);
    *out = c;
    return 0;
fail:
    umdev_client_destroy(c);
    return rc;
}

/* Wait until the server closes the connection. Return: 0 or -ETIMEDOUT. */
static int
wait_disconnect(struct umdev_client *c, int64_t deadline)
{
    for (;;) {
        int rc = umdev_client_poll(c, kit_left_ms(deadline));

        if (rc < 0 && rc != -ETIMEDOUT)
            return 0; /* the server left (-ECONNRESET or a socket error) */
        if (kit_left_ms(deadline) == 0)
            return -ETIMEDOUT;
    }
}

int
main(int argc, char **argv)
{
    struct umdev_client *c = NULL;
    struct pollfd pfd[2];
    int64_t deadline;
    bool hold;
    uint64_t n;
    int efd, timeout_ms, rc;

    if (argc != 4 || (strcmp(argv[2], "release") != 0 &&
                      strcmp(argv[2], "hold") != 0)) {
        fputs(USAGE, stderr);
        return 2;
    }
    hold = strcmp(argv[2], "hold") == 0;
    timeout_ms = atoi(argv[3]);
    if (timeout_ms <= 0) {
        fputs(USAGE, stderr);
        return 2;
    }
    deadline = kit_now_ms() + timeout_ms;
    efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0) {
        kit_say("error eventfd: %s", strerror(errno));
        return 1;
    }
    if (attach(argv[1], timeout_ms, efd, &c) < 0)
        return 1;
    /* Wait for REQ; the server closing first is a failure. */
    pfd[0] = (struct pollfd){ .fd = efd, .events = POLLIN };
    pfd[1] = (struct pollfd){ .fd = umdev_client_fd(c), .events = POLLIN };
    for (;;) {
        rc = poll(pfd, 2, kit_left_ms(deadline));
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0) {
            kit_say("timeout waiting for REQ");
            goto fail;
        }
        if (pfd[0].revents & POLLIN)
            break;
        if (pfd[1].revents != 0 && umdev_client_poll(c, 0) < 0) {
            kit_say("disconnected before REQ");
            goto fail;
        }
    }
    if (read(efd, &n, sizeof(n)) != sizeof(n) || n == 0) {
        kit_say("error reading the REQ eventfd");
        goto fail;
    }
    kit_say("req");
    if (!hold) {
        umdev_client_destroy(c);
        close(efd);
        kit_say("released");
        return 0;
    }
    if (wait_disconnect(c, deadline) < 0) {
        kit_say("timeout waiting to be disconnected");
        goto fail;
    }
    kit_say("disconnected");
    umdev_client_destroy(c);
    close(efd);
    return 0;
fail:
    umdev_client_destroy(c);
    close(efd);
    return 1;
}
