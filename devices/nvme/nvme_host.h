/*
 * The driver side of an nvme subdevice, on the umdev client: what a
 * guest's nvme driver does to the controller (registers through BAR0,
 * queues and data in guest memory the client has DMA-mapped with its
 * fd, doorbells through BAR0 or the shadow doorbell buffer with its
 * EventIdx, as Linux's nvme driver does), for the programs that stand in
 * for a guest: the conformance kit's load (nvme_exercise()) and
 * umdev-nvme-drive. Polled only: no interrupts. The queue mechanics are
 * nvme_driver.h's, over this connection as its register accessors
 * (doorbells not posted: each waits for the server's reply); what is
 * added here is the client's message counting, the convenience calls
 * for admin commands and I/O, and errors said in words.
 *
 * A struct nvme_host is the caller's; nothing here keeps global state.
 * Functions that talk to the device return 0 (or an NVMe status, where
 * said) or -errno with h->err saying what failed. Not thread-safe: one
 * thread drives one host.
 */
#ifndef UMDEV_NVME_HOST_H
#define UMDEV_NVME_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvme.h"
#include "nvme_cmd.h"
#include "nvme_driver.h"
#include "umdev/parent.h"

struct umdev_client;

#define NVME_HOST_TRACK_DEPTH 64u

/* A queue as the driver tracks it (q.size 0: the queue does not exist),
 * with the times the wake-up accounting below needs. */
struct nvme_host_q {
    struct nvme_driver_q q;
    double empty_s; /* CQ: when the latest poll found no entry (before it) */
    /* SQ: when each entry's tail was published (before the store), for
     * queues of up to NVME_HOST_TRACK_DEPTH entries. */
    double pub_s[NVME_HOST_TRACK_DEPTH];
};

struct nvme_host {
    struct umdev_client *c; /* borrowed */
    uint8_t *mem;           /* borrowed: the guest memory at @iova */
    uint64_t iova, size;
    /* The driver over @c: drv.timeout_s bounds every wait for the device,
     * drv.doorbells counts the doorbells written through BAR0. */
    struct nvme_driver drv;
    struct nvme_host_q sq[NVME_MAX_QUEUES], cq[NVME_MAX_QUEUES];
    /* Shadow doorbells and EventIdx (Doorbell Buffer Config), or 0. */
    uint64_t dbbuf_db, dbbuf_ei;
    uint16_t cid;
    /* Doorbells of I/O queues the EventIdx asked for through BAR0, told
     * apart by how long after @busy_s they came: a time at which the
     * controller is known to have been doing work (it posted a
     * completion the driver had polled for in vain just before, or
     * fetched an entry whose tail the driver published then, as a
     * completion's SQ Head says), never later than it was. Within
     * @poll_window_s of that the controller ought to be polling still; later it
     * may rightly sleep. Seconds, CLOCK_MONOTONIC. */
    double poll_window_s, busy_s;
    uint64_t wakeups_loaded, wakeups_stalled;
    char err[160];
    unsigned int nerr; /* errors said in @err so far */
};

/* Guest memory @mem (@size bytes, the device sees it at @iova, mapped by
 * the caller with its fd) driven through @c, every wait bounded by
 * @timeout_s (0: nvme_driver.h's default). No device access. @h must
 * stay where it is: its driver's accessors point at it. */
void nvme_host_init(struct nvme_host *h, struct umdev_client *c, void *mem,
                    uint64_t iova, uint64_t size, double timeout_s);

/* The caller's view of @len bytes at guest address @iova, or NULL if
 * they are not all inside the guest memory. */
void *nvme_host_ptr(struct nvme_host *h, uint64_t iova, uint64_t len);

/* Messages the client has spent so far: commands sent plus the server's
 * DMA_READ/DMA_WRITE served (what the conformance kit counts). */
uint64_t nvme_host_msgs(const struct nvme_host *h);

int nvme_host_reg_read32(struct nvme_host *h, uint64_t off, uint32_t *v);
int nvme_host_reg_write(struct nvme_host *h, uint64_t off, uint64_t v,
                        size_t len);

/* Memory space and bus mastering on in the PCI command register. */
int nvme_host_bus_master(struct nvme_host *h);

/* Poll CSTS until (CSTS & @mask) == @want; -ETIMEDOUT, or -EIO on
 * CSTS.CFS. @what names the wait in h->err. */
int nvme_host_wait_csts(struct nvme_host *h, uint32_t mask, uint32_t want,
                        const char *what);

/* Bring-up (Base 3.5.1): a controller left enabled is disabled first;
 * then admin queues of @depth entries at @asq and @acq (the CQ zeroed
 * here), CC.EN with 64/16-byte entries, CSTS.RDY. */
int nvme_host_enable(struct nvme_host *h, uint16_t depth, uint64_t asq,
                     uint64_t acq);

/* Normal shutdown (CC.SHN, CSTS.SHST complete, Base 3.6.1), then
 * CC.EN=0 and CSTS.RDY clear: afterwards the controller reaches no
 * guest memory. The host's queues are forgotten. */
int nvme_host_shutdown(struct nvme_host *h);

/* Write @s (its cid set here) at SQ @qid's tail, not yet published. The
 * caller keeps fewer commands outstanding than the queue has entries. */
int nvme_host_sq_put(struct nvme_host *h, uint16_t qid, struct nvme_sqe *s);
/* Publish SQ @qid's tail, or CQ @qid's head (@cq), through the shadow
 * doorbell and BAR0 only if its EventIdx asks (I/O queues with the
 * doorbell buffer), else BAR0. */
int nvme_host_doorbell(struct nvme_host *h, uint16_t qid, bool cq);
/* Consume the entry at CQ @qid's head if the device posted it.
 * Return: 1 (@e filled), 0 none yet. The head is published by
 * nvme_host_doorbell(). */
int nvme_host_reap(struct nvme_host *h, uint16_t qid,
                   struct nvme_driver_cqe *e);

/* Submit @s on SQ @qid, wait for its completion on CQ @qid and publish
 * the head (nvme_driver_cmd(): its doorbells and completion are none of
 * the wake-up accounting's, which follows commands kept in flight).
 * Return: the NVMe status (0 success, > 0 an error the device
 * reported), or -errno. */
int nvme_host_cmd(struct nvme_host *h, uint16_t qid, struct nvme_sqe *s,
                  uint32_t *dw0);

/* Admin commands. Return as nvme_host_cmd(), a status > 0 also -EIO
 * with h->err naming the command. */
int nvme_host_admin(struct nvme_host *h, struct nvme_sqe *s, uint32_t *dw0,
                    const char *what);
/* Identify Controller into the page at @buf: its OACS (Base 5.17.2.1),
 * which says whether Doorbell Buffer Config is there. */
int nvme_host_identify_ctrl(struct nvme_host *h, uint64_t buf, uint16_t *oacs);
/* Identify Namespace 1 into the page at @buf: its blocks and their
 * size. */
int nvme_host_identify_ns(struct nvme_host *h, uint64_t buf, uint64_t *nsze,
                          uint32_t *bs);
/* Set Features Number of Queues asking for @want pairs; @got the I/O
 * queue pairs allocated (at most @want). */
int nvme_host_set_queues(struct nvme_host *h, uint16_t want, uint16_t *got);
/* Doorbell Buffer Config with the pages at @db and @ei (zeroed here):
 * from now on I/O queues' doorbells go through them. */
int nvme_host_dbbuf(struct nvme_host *h, uint64_t db, uint64_t ei);
/* I/O CQ and SQ @qid of @depth entries at @cqa and @sqa, polled. */
int nvme_host_create_pair(struct nvme_host *h, uint16_t qid, uint16_t depth,
                          uint64_t sqa, uint64_t cqa);

/* A Read or Write of @nlb blocks at @slba: the entry, its PRPs for the
 * @len bytes at @addr (page-aligned) written with a PRP list at @list
 * (a page) when more than two pages are needed (4.1.1). */
int nvme_host_rw(struct nvme_host *h, uint8_t opc, uint64_t slba, uint32_t nlb,
                 uint64_t addr, uint64_t len, uint64_t list,
                 struct nvme_sqe *s);

/* @n bytes (a multiple of 8) of the xorshift64 stream of @seed written
 * at @p, or with @check compared with it. Return: the offset of the
 * first 8 bytes that differ, or @n. */
size_t nvme_host_pattern(uint8_t *p, size_t n, uint64_t seed, bool check);

/*
 * The conformance kit's load generator for nvme types (the parent's
 * exercise() hook, include/umdev/parent.h): brings the controller up as
 * Linux's driver does (admin queues, Identify, Number of Queues,
 * Doorbell Buffer Config, an I/O queue pair per queue allocated), then
 * writes patterns and reads them back through a different queue than
 * wrote them, every queue used, several commands in flight on each, a
 * Flush per round; verifies every byte; shuts the controller down and
 * disables it. README.md "Conformance" says how messages are counted.
 */
int nvme_exercise(const struct umdev_exercise_args *args,
                  struct umdev_exercise_result *out);

#endif /* UMDEV_NVME_HOST_H */
