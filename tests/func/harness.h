/*
 * Functional-test harness: the test device served on a real UNIX socket
 * in a temporary directory by a server thread, plus helpers for raw
 * protocol I/O and descriptor counting.
 */
#ifndef UMDEV_FUNC_HARNESS_H
#define UMDEV_FUNC_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "testdev.h"
#include "umdev/client.h"
#include "umdev/wire.h"

struct harness {
    char dir[64];
    char path[128];
    struct testdev *td;
    struct umdev_dev *dev;
    struct umdev_loop *loop;
    struct umdev_server *srv;
    int wake_fd;
    int thread_started;
    unsigned long thread;
};

void harness_start(struct harness *h);
void harness_stop(struct harness *h);
/* Run @fn on the server thread and wait for it (server state is touched
 * only there). */
void harness_call(struct harness *h, void (*fn)(void *), void *arg);
struct umdev_client *harness_connect(struct harness *h);
/* A raw connected socket (no negotiation). */
int harness_raw_socket(struct harness *h);
/* Encode and send a message on a raw socket; returns its size. */
size_t raw_send(int fd, uint16_t id, uint16_t cmd, uint32_t flags,
                const void *payload, size_t len, const int *fds,
                size_t nfds);
/* Receive one whole message within @timeout_ms; returns its length, 0 on
 * EOF, -1 on timeout. */
long raw_recv(int fd, void *buf, size_t cap, int timeout_ms);
/* A VERSION exchange on a raw socket. */
void raw_negotiate(int fd);
int count_fds(void);

#endif
