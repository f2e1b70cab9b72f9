/* Functional-test harness: the test device served on a real UNIX socket. */
#ifndef UMDEV_FUNC_HARNESS_H
#define UMDEV_FUNC_HARNESS_H

/*
 * The server (umdev_loop + testdev + umdev_server) runs on its own thread,
 * listening in a fresh mkdtemp() directory under /tmp. Tests talk to it
 * through the client library or raw sockets, and inspect server state only
 * on the server thread (harness_call()), so nothing races with message
 * handling. Every wait is bounded; the helpers fail the running cmocka test
 * on any surprise. Call them from the test thread only.
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "testdev.h"
#include "umdev/client.h"
#include "umdev/dev.h"
#include "umdev/wire.h"

/* How long any single expected event may take before the test fails. */
#define HARNESS_TIMEOUT_MS 5000
/* How long we watch for something that must not happen. */
#define HARNESS_QUIET_MS 100

struct CMUnitTest;

struct harness_log {
    struct umdev_logger logger;
    atomic_int warnings; /* lines at LOG_WARNING or worse */
};

struct harness {
    char dir[64];
    char path[128];
    struct testdev *td;
    struct umdev_dev *dev;
    struct umdev_loop *loop;
    struct umdev_server *srv;
    int wake_fd; /* eventfd in the loop: calls and stop requests */
    pthread_t thread;
    bool running;

    pthread_mutex_t lock; /* guards the call slot and the stop flag */
    void (*call_fn)(struct umdev_dev *dev, void *arg);
    void *call_arg;
    int call_done_fd;
    bool stop;

    struct harness_log server_log;
    struct harness_log client_log;
};

/* Server state, sampled on the server thread. */
struct harness_state {
    bool attached;
    size_t dma_count;
    struct umdev_dev_stats stats;
    bool irq_enabled[UMDEV_PCI_NUM_IRQS]; /* vector 0 has an eventfd */
    bool intx_masked;
};

void harness_start(struct harness *h);
/* Stop the thread, destroy everything, remove the socket and directory. */
void harness_stop(struct harness *h);
/* Run @fn(@arg) on the server thread between two messages and wait. @fn
 * must not use cmocka assertions (they would jump across threads). */
void harness_call(struct harness *h,
                  void (*fn)(struct umdev_dev *dev, void *arg), void *arg);
void harness_get_state(struct harness *h, struct harness_state *out);
/* Wait (bounded) until the server has dropped its client. */
void harness_wait_detached(struct harness *h);

/* A negotiated client; @opts may be NULL (the harness logger is used when
 * @opts names none). */
struct umdev_client *harness_connect(struct harness *h,
                                     const struct umdev_client_opts *opts);
/* A raw connected socket with send/receive timeouts, not negotiated. */
int harness_raw_socket(struct harness *h);

/* Raw protocol I/O. */
void raw_send_all(int fd, const void *buf, size_t len);
/* Send @buf with @fds in one sendmsg() (the rest, if any, after). */
void raw_send_fds(int fd, const void *buf, size_t len, const int *fds,
                  size_t nfds);
/* Encode with umdev_wire_encode() and send with @fds in one sendmsg(). */
void raw_send(int fd, uint16_t id, uint16_t cmd, uint32_t flags,
              const void *payload, size_t len, const int *fds, size_t nfds);
/*
 * Receive one whole message into @buf within @timeout_ms. Descriptors
 * that come with it are stored in @fds (up to *@nfds, which is updated) or
 * closed when @fds is NULL. Return: its length; 0 on EOF or connection
 * reset; -1 on timeout.
 */
long raw_recv(int fd, void *buf, size_t cap, int timeout_ms, int *fds,
              size_t *nfds);
/* Receive a reply and check its header: id, command, type, no error. */
long raw_expect_reply(int fd, uint16_t id, uint16_t cmd, void *buf,
                      size_t cap);
/* Receive an error reply: header only, Reply|Error, this errno. */
void raw_expect_error(int fd, uint16_t id, uint16_t cmd, int err);
/* A good DEVICE_GET_INFO round trip on a negotiated socket. */
void raw_expect_alive(int fd, uint16_t id);
/* Nothing arrives within HARNESS_QUIET_MS. */
void raw_expect_quiet(int fd);
/* VERSION with a minimal JSON; the reply must be a success. */
void raw_negotiate(int fd, uint16_t id);

/* Register helpers over a client (BAR0). */
uint32_t reg_rd32(struct umdev_client *c, uint64_t off);
uint64_t reg_rd64(struct umdev_client *c, uint64_t off);
void reg_wr(struct umdev_client *c, uint64_t off, uint64_t v, size_t n);

/* An eventfd's counter after it fires within @timeout_ms, or 0. */
uint64_t efd_wait(int efd, int timeout_ms);
int efd_new(void);

/* Shared guest memory: a memfd of @size bytes mapped read-write. */
void *guest_mem(size_t size, int *fd);
void guest_mem_free(void *p, size_t size, int fd);

/* Entries in /proc/self/fd (the directory's own fd not counted). */
int count_fds(void);
/* Mappings of guest_mem() memfds in /proc/self/maps (client's and
 * server's: both are this process). */
int count_guest_maps(void);

/* main() of a functional test program: runs @tests, takes no arguments. */
int harness_main(int argc, char **argv, const char *name,
                 const struct CMUnitTest *tests, size_t ntests);

#endif /* UMDEV_FUNC_HARNESS_H */
