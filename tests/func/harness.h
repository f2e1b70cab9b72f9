/* Functional-test harness: the test device served on a real UNIX socket. */
#ifndef UMDEV_FUNC_HARNESS_H
#define UMDEV_FUNC_HARNESS_H

/*
 * The test kit (tests/common) serves the test device on a thread of its
 * own, in a fresh directory under /tmp; tests talk to it through the
 * client library or the kit's raw peer, and inspect server state only on
 * the server thread (harness_call()), so nothing races with message
 * handling. This file adds what the functional tests share on top: the
 * test device, cmocka assertions around the kit, and helpers over a
 * client. Every wait is bounded; the helpers fail the running cmocka test
 * on any surprise. Call them from the test thread only.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kit_cmocka.h" /* kit_open_fds() */
#include "kit_peer.h"
#include "kit_serve.h"
#include "kit_util.h"
#include "testdev.h"
#include "umdev/client.h"
#include "umdev/dev.h"
#include "umdev/wire.h"

/* How long any single expected event may take before the test fails. */
#define HARNESS_TIMEOUT_MS 5000
/* How long we watch for something that must not happen. */
#define HARNESS_QUIET_MS 100

struct CMUnitTest;

struct harness {
    struct kit_serve serve;
    struct testdev *td;
    struct umdev_dev *dev;
    const char *path; /* the device's socket */
    struct kit_log server_log;
    struct kit_log client_log;
};

/* Server state, sampled on the server thread. */
struct harness_state {
    bool attached;
    size_t dma_count;
    size_t dma_pending; /* server DMA requests not answered yet */
    struct umdev_dev_stats stats;
    bool irq_enabled[UMDEV_PCI_NUM_IRQS]; /* vector 0 has an eventfd */
    bool intx_masked;
};

/*
 * The harness of the running test program: harness_setup() starts it
 * before a test, harness_teardown() stops it after (cmocka fixtures;
 * HARNESS_TEST(test_x) names a test with both).
 */
extern struct harness H;
int harness_setup(void **state);
int harness_teardown(void **state);
#define HARNESS_TEST(f)                                                        \
    cmocka_unit_test_setup_teardown(f, harness_setup, harness_teardown)

void harness_start(struct harness *h);
/* Stop the thread, destroy everything, remove the socket and directory. */
void harness_stop(struct harness *h);
/* Run @fn(@arg) on the server thread between two messages and wait. @fn
 * must not use cmocka assertions (they would jump across threads). */
void harness_call(struct harness *h,
                  void (*fn)(struct umdev_dev *dev, void *arg), void *arg);
void harness_get_state(struct harness *h, struct harness_state *out);
/* The same, returned: harness_sample(&H).dma_count. */
struct harness_state harness_sample(struct harness *h);
/* Wait (bounded) until the server has dropped its client. */
void harness_wait_detached(struct harness *h);

/* A negotiated client; @opts may be NULL (the harness logger is used when
 * @opts names none). */
struct umdev_client *harness_connect(struct harness *h,
                                     const struct umdev_client_opts *opts);
/* A raw connected socket with send/receive timeouts, not negotiated. */
int harness_raw_socket(struct harness *h);

/* Raw protocol I/O (kit_peer.h, failing the test on any error). */
void raw_send_all(int fd, const void *buf, size_t len);
/* Send @buf with @fds in one sendmsg() (the rest, if any, after). */
void raw_send_fds(int fd, const void *buf, size_t len, const int *fds,
                  size_t nfds);
/* Header, @payload and @fds, the fds with the first bytes. */
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
/* A SET_IRQS fixed part putting eventfds (DATA_EVENTFD, ACTION_TRIGGER)
 * on vectors [@start, @start + @count) of IRQ index @index. */
struct vfio_user_irq_set raw_irq_eventfds(uint32_t index, uint32_t start,
                                          uint32_t count);
/* VERSION with a minimal JSON; the reply must be a success. */
void raw_negotiate(int fd, uint16_t id);

/* SET_IRQS over a client on vector @sub of @index: eventfd @efd for
 * @action (TRIGGER or UNMASK; @efd -1 de-assigns it), or DATA_NONE
 * @action (MASK, UNMASK or TRIGGER). */
void irq_eventfd(struct umdev_client *c, uint32_t index, uint32_t action,
                 uint32_t sub, int efd);
/* irq_eventfd() for TRIGGER, the usual one. */
void irq_trigger(struct umdev_client *c, uint32_t index, uint32_t sub, int efd);
void irq_action(struct umdev_client *c, uint32_t index, uint32_t action,
                uint32_t sub);

/* Register helpers over a client (BAR0). */
uint32_t reg_rd32(struct umdev_client *c, uint64_t off);
uint64_t reg_rd64(struct umdev_client *c, uint64_t off);
void reg_wr(struct umdev_client *c, uint64_t off, uint64_t v, size_t n);
/* The test device's DMA_STATUS once it no longer reads busy, polled as a
 * driver would (the client serves the device's DMA_READ/DMA_WRITE while
 * it waits for each read); fails the test after HARNESS_TIMEOUT_MS. */
uint32_t dma_status_wait(struct umdev_client *c);
/* Config space over a client: set the Command register to @bits
 * (PCI_COMMAND_* of <linux/pci_regs.h>); find the MSI-X capability and
 * set its Enable bit (the vectors' eventfds are the caller's). */
void cfg_set_command(struct umdev_client *c, uint16_t bits);
/* @len (1, 2 or 4) bytes of config space at @off. */
uint32_t cfg_read(struct umdev_client *c, uint64_t off, size_t len);
void cfg_enable_msix(struct umdev_client *c);

/* An eventfd's counter after it fires within @timeout_ms, or 0. */
uint64_t efd_wait(int efd, int timeout_ms);
int efd_new(void);

/* Shared guest memory: a memfd of @size bytes mapped read-write. */
void *guest_mem(size_t size, int *fd);
void guest_mem_free(void *p, size_t size, int fd);

/* Mappings of guest_mem() memfds in /proc/self/maps (client's and
 * server's: both are this process). */
int count_guest_maps(void);

/* main() of a functional test program: runs @tests, takes no arguments. */
int harness_main(int argc, char **argv, const char *name,
                 const struct CMUnitTest *tests, size_t ntests);
/* That main(), for the file-scope array @tests, as the cmocka group
 * @name (the program's ctest name). */
#define HARNESS_MAIN(name, tests)                                              \
    int main(int argc, char **argv)                                            \
    {                                                                          \
        return harness_main(argc, argv, name, tests,                           \
                            sizeof(tests) / sizeof(tests[0]));                 \
    }

#endif /* UMDEV_FUNC_HARNESS_H */
