/*
 * libFuzzer target: framing, decode and dispatch of a live server (the test
 * device) fed by a "client" over a socketpair, descriptors included.
 *
 * Everything runs on the fuzzer's thread. Each record of the input is
 * written to the client end, then umdev_dev_process() handles it, and the
 * harness reads the client end (without waiting: the device has sent what
 * it will): everything the device sends must decode (an oracle for the
 * encoder), replies are dropped, and the device's own DMA_READ/DMA_WRITE
 * requests (mappings made without an fd) are answered as the input's
 * first byte says. Device DMA by message is asynchronous (lib/dev/dma.c):
 * the device never waits for an answer, so the answers are written
 * between records, as a VMM serves them between its own requests; never
 * between a record's writes, where they would become part of it. What
 * the device reads is thus fixed by the input alone, and a crash replays
 * alone. After each input the device has detached and nothing of the
 * client may be left: LSan checks the heap, the harness counts open
 * descriptors.
 *
 * Speed: the device, the guest memfd and the eventfd live for the whole
 * process; each input gets only a fresh socket pair, i.e. a new client
 * connection, and the device hangs up on its EOF as it would on a client
 * gone. Then testdev_power_cycle() puts the device back to what a new one
 * is (what the client held, lib/dev dropped when it detached), so no
 * input depends on the one before. Guest memory is emptied (truncated to
 * 0 and back) and the eventfd drained after an input that sent them, so
 * what one input's DMA wrote never reaches the next. No thread switch is
 * paid per message or per input.
 *
 * Measured (issue 13 section 6 asks for 10 k inputs a second), the fuzz
 * preset, on a copy of the corpus and from empty, the median of three:
 *   /usr/bin/time -f '%U %S' taskset -c 1 nice -n -5
 *       build/fuzz/fuzz/fuzz_dispatch -max_total_time=60
 *       -print_final_stats=1 COPY_OF_CORPUS_OR_EMPTY_DIR
 * reading stat::average_exec_per_sec, and inputs per CPU second (what the
 * figure is when the fuzzer has the CPU to itself); docs/BUILD.md "A
 * fuzzer" has the figures and what ran beside them.
 *
 * Input:
 *   byte 0    flags: bit 0 skips the harness's VERSION exchange (most
 *             inputs want it, to reach the commands behind negotiation);
 *             bits 1-2 choose the answer to the device's DMA requests:
 *             0 an error reply, 1 a correct reply, 2 a reply of the wrong
 *             length, 3 a reply with an id nobody asked for, then an error.
 *   records   until the input ends, each
 *     ctl     bits 0-1: descriptors sent with the record: 0, 1, 2 or 17
 *                       (more than a message may carry);
 *             bit 2:    the first descriptor is an eventfd, not the memfd
 *                       that backs guest memory (the others are eventfds);
 *             bits 3-5: k != 0: send the record in two writes, the first
 *                       of k/8 of it, with the device run in between (if
 *                       the input ends inside the record, only with bit 7);
 *             bit 6:    do not run the device before the next record (so
 *                       several messages, and their fds, arrive together);
 *             bit 7:    the second of two writes carries the descriptors
 *                       again (fds in the middle of a message: a second
 *                       set for it, or for one being skipped as oversized).
 *     message the next 16 bytes are a header; its msg_size (at least 16)
 *             says how many bytes, header included, the record takes, or
 *             all that is left if fewer remain.
 *   The device's DMA requests so far are answered before each record and,
 *   unless the input ends inside one, until none is left before the client
 *   hangs up (so a DMA the last record started can finish).
 * fuzz/corpus/dispatch/ holds valid and near-valid sequences of every
 * command in this format.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "kit_peer.h"
#include "kit_util.h"
#include "testdev.h"
#include "umdev/wire.h"
#include "umdev/wire_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The memfd behind guest memory. UMDEV_FUZZ_BIG_GUEST=1 makes it as large
 * as a file can be, so that no DMA_MAP offset lies past its end: that lets
 * fuzzing go on past the SIGBUS a mapping beyond the end of the fd causes
 * while lib/dev/dma.c does not check the fd's size. */
#define GUEST_SIZE (1u << 20)
#define BIG_GUEST_SIZE 0x7ffffffffffff000ll
/* Largest message the device may send: a 1 MiB data transfer and its
 * fixed part (what our VERSION allows), with room to spare. */
#define PEER_BUF (UMDEV_WIRE_DEFAULT_MAX_DATA_XFER + 4096)
#define MAX_SEND_FDS 17

enum dma_answer { DMA_ERROR, DMA_CORRECT, DMA_WRONG_LEN, DMA_STRAY_ID };

/* A DMA_READ/DMA_WRITE of the device's, to be answered. */
struct dma_req {
    struct vfio_user_header hdr;
    struct vfio_user_dma_access a;
};

struct harness {
    struct umdev_dev *dev;
    int fd;    /* client end */
    int memfd; /* guest memory */
    int efd;
    bool gone;    /* the device hung up: stop writing */
    bool hung_up; /* the client shut its end for writing */
    enum dma_answer answer;
    /* What is read of a message from the device not yet whole. */
    uint8_t *in;
    size_t in_len;
    bool in_eof;
    /* The device's DMA requests read and not answered yet: answers go
     * out only between records (flush_answers()). */
    struct dma_req *reqs;
    size_t nreqs, reqs_cap;
};

/*
 * Guest memory and the eventfd sent with records: one each for the
 * process. The device reaches them only through a descriptor an input
 * sent it, so only an input that sent one leaves anything to undo.
 */
static struct {
    int memfd, efd;
    bool memfd_sent, efd_sent; /* since the last reset (shared_fds()) */
} guest = { .memfd = -1, .efd = -1 };

/* UMDEV_FUZZ_VERBOSE=1: print the device's log and what it sends, to see
 * what an input does. Every line is formatted (format bugs show under the
 * sanitizers). */
static struct kit_log fuzz_log;
static int verbose = -1;
static bool big_guest;

static void
die(const char *what, const uint8_t *msg, size_t len)
{
    size_t i;

    fprintf(stderr, "fuzz_dispatch: %s; message (%zu bytes):", what, len);
    for (i = 0; i < len && i < 64; i++)
        fprintf(stderr, " %02x", msg[i]);
    fprintf(stderr, "\n");
    abort();
}

/* The harness itself cannot go on (no memory, no descriptors): say what
 * failed, so that a crash report is not taken for the device's. */
static void
fail(const char *what, int err)
{
    fprintf(stderr, "fuzz_dispatch: harness: %s: %s\n", what, strerror(err));
    abort();
}

/* Keep a DMA request of the device's for flush_answers(). */
static void
queue_answer(struct harness *h, const struct umdev_wire_msg *w)
{
    if (h->hung_up)
        return; /* no answer can reach the device any more */
    if (h->nreqs == h->reqs_cap) {
        size_t cap = h->reqs_cap ? 2 * h->reqs_cap : 64;
        struct dma_req *r = realloc(h->reqs, cap * sizeof(*r));

        if (r == NULL)
            fail("realloc", errno);
        h->reqs = r;
        h->reqs_cap = cap;
    }
    h->reqs[h->nreqs].hdr = w->hdr;
    h->reqs[h->nreqs].a = w->u.dma_access;
    h->nreqs++;
}

/* One whole message from the device: it must decode; DMA requests are
 * kept to be answered, replies dropped. */
static void
peer_message(struct harness *h, const uint8_t *msg, size_t len)
{
    struct umdev_wire_msg w;
    struct vfio_user_header hdr;

    memcpy(&hdr, msg, sizeof(hdr));
    if (verbose)
        fprintf(stderr, "peer: %s %s id %u size %u%s error %u\n",
                (hdr.flags & VFIO_USER_F_TYPE_MASK) ? "reply" : "command",
                umdev_wire_cmd_name(hdr.cmd), hdr.msg_id, hdr.msg_size,
                (hdr.flags & VFIO_USER_F_ERROR) ? " ERROR" : "", hdr.error);
    if (hdr.flags & VFIO_USER_F_ERROR) {
        /* Error replies may echo a command we do not know (a stray). */
        if ((hdr.flags & VFIO_USER_F_TYPE_MASK) != VFIO_USER_F_TYPE_REPLY ||
            len != UMDEV_WIRE_HDR_SIZE || hdr.error == 0)
            die("malformed error reply from the device", msg, len);
        return;
    }
    if (umdev_wire_decode(msg, len, 0, NULL, &w) != 0)
        die("the device sent a message that does not decode", msg, len);
    if (!w.is_reply) {
        if (w.hdr.cmd != VFIO_USER_DMA_READ && w.hdr.cmd != VFIO_USER_DMA_WRITE)
            die("the device sent a command other than DMA_READ/WRITE", msg,
                len);
        queue_answer(h, &w);
    }
}

/*
 * Take what the device sent so far, without waiting, and check each whole
 * message. Its DMA requests wait in h->reqs: this runs between a record's
 * writes too, where an answer would land inside the record.
 */
static void
drain(struct harness *h, bool to_eof)
{
    while (!h->in_eof) {
        union {
            char b[CMSG_SPACE(sizeof(int) * 64)];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = { h->in + h->in_len, PEER_BUF - h->in_len };
        struct msghdr mh = { .msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = ctl.b,
                             .msg_controllen = sizeof(ctl.b) };
        struct cmsghdr *c;
        size_t off = 0;
        bool drained;
        ssize_t n;

        n = recvmsg(h->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN && to_eof) {
            /*
             * The device closed its end, but the socket goes only with
             * the last reference to it, which need not be the device's:
             * whoever reads /proc/PID/fd holds one for a moment. So EOF
             * is waited for, not taken as due at once.
             */
            struct pollfd pf = { .fd = h->fd, .events = POLLIN };

            if (poll(&pf, 1, 10000) == 0)
                die("the device hung up, but its end of the socket stayed "
                    "open for 10 s",
                    h->in, h->in_len);
            continue;
        }
        if (n < 0 && errno == EAGAIN)
            return;
        /* Descriptors from the device are closed: none is expected. */
        for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
            uint8_t *q = CMSG_DATA(c), *end = (uint8_t *)c + c->cmsg_len;
            int fd;

            for (; c->cmsg_type == SCM_RIGHTS && q + sizeof(fd) <= end;
                 q += sizeof(fd)) {
                memcpy(&fd, q, sizeof(fd));
                close(fd);
            }
        }
        if (n <= 0) {
            h->in_eof = true; /* the device closed its end (or reset it) */
            return;
        }
        h->in_len += (size_t)n;
        /* A read stops short only at the end of what is queued or at a
         * write that carried descriptors. The device writes on this
         * thread alone, so a short read without descriptors emptied the
         * socket: asking again would only return EAGAIN. */
        drained = (size_t)n < iov.iov_len && mh.msg_controllen == 0 &&
                  !(mh.msg_flags & MSG_CTRUNC);
        while (h->in_len - off >= UMDEV_WIRE_HDR_SIZE) {
            struct vfio_user_header hdr;

            memcpy(&hdr, h->in + off, sizeof(hdr));
            if (hdr.msg_size < UMDEV_WIRE_HDR_SIZE || hdr.msg_size > PEER_BUF)
                die("impossible message size from the device", h->in + off,
                    UMDEV_WIRE_HDR_SIZE);
            if (h->in_len - off < hdr.msg_size)
                break;
            peer_message(h, h->in + off, hdr.msg_size);
            off += hdr.msg_size;
        }
        memmove(h->in, h->in + off, h->in_len - off);
        h->in_len -= off;
        if (drained && !to_eof)
            return;
    }
}

static void
drain_inline(struct harness *h)
{
    drain(h, false);
}

/* When the socket is full, let the device read. */
static int
run_device_full(void *arg)
{
    struct harness *h = arg;

    int rc = umdev_dev_process(h->dev);

    drain_inline(h);
    if (rc < 0) {
        h->gone = true;
        return -EPIPE;
    }
    return 0;
}

/* Write @len bytes (with @nfds descriptors on the first write); when the
 * socket is full, let the device read. */
static void
feed(struct harness *h, const uint8_t *buf, size_t len, const int *fds,
     size_t nfds)
{
    if (h->gone || len == 0)
        return;
    if (kit_peer_send_bytes(h->fd, buf, len, fds, nfds, run_device_full, h) < 0)
        h->gone = true;
}

static void
run_device(struct harness *h)
{
    if (!h->gone && umdev_dev_process(h->dev) < 0)
        h->gone = true;
    drain_inline(h);
}

/* Answer one DMA request of the device's as h->answer says. */
static void
answer_dma(struct harness *h, const struct dma_req *r)
{
    static uint8_t *out;
    struct vfio_user_header err, hdr = r->hdr;
    size_t data_len = 0, max = PEER_BUF - 64;

    if (out == NULL && (out = malloc(PEER_BUF)) == NULL)
        fail("malloc", errno);
    switch (h->answer) {
    case DMA_STRAY_ID: {
        struct vfio_user_header req = r->hdr, stray;

        req.msg_id = (uint16_t)(req.msg_id + 0x8000);
        umdev_wire_encode_error(&stray, &req, EFAULT);
        feed(h, (const uint8_t *)&stray, sizeof(stray), NULL, 0);
    }
        /* fall through */
    case DMA_ERROR:
        umdev_wire_encode_error(&err, &r->hdr, EFAULT);
        feed(h, (const uint8_t *)&err, sizeof(err), NULL, 0);
        return;
    case DMA_CORRECT:
    case DMA_WRONG_LEN:
        if (r->hdr.cmd == VFIO_USER_DMA_READ)
            data_len = (size_t)r->a.count;
        if (h->answer == DMA_WRONG_LEN)
            data_len = data_len ? data_len - 1 : 1;
        if (data_len > max)
            data_len = max;
        hdr.flags = VFIO_USER_F_TYPE_REPLY;
        hdr.error = 0;
        hdr.msg_size = (uint32_t)umdev_wire_size(sizeof(r->a), data_len);
        memcpy(out, &hdr, sizeof(hdr));
        memcpy(out + sizeof(hdr), &r->a, sizeof(r->a));
        memset(out + sizeof(hdr) + sizeof(r->a), 0x5a, data_len);
        feed(h, out, hdr.msg_size, NULL, 0);
        return;
    }
}

/*
 * Answer the device's DMA requests, oldest first, as a VMM does between
 * its own requests. Only between records: an answer written between a
 * record's writes would become part of that record. Answers that fill
 * the socket run the device, which may ask for more: those are answered
 * too.
 */
static void
flush_answers(struct harness *h)
{
    size_t i;

    for (i = 0; i < h->nreqs && !h->gone; i++) {
        struct dma_req r = h->reqs[i]; /* feed() may grow h->reqs */

        answer_dma(h, &r);
    }
    h->nreqs = 0;
}

static void
send_version(struct harness *h)
{
    static const char json[] =
        "{\"capabilities\":{\"max_msg_fds\":16,\"max_data_xfer_size\":"
        "1048576,\"pgsizes\":4096,\"max_dma_maps\":65535,"
        "\"write_multiple\":true}}";

    if (!h->gone && kit_peer_send_version(h->fd, 0, json) < 0)
        h->gone = true;
    run_device(h);
}

/*
 * Split the input into records and feed them; see the file comment.
 * Before each record, the device's DMA requests so far are answered.
 *
 * Before a record is split, what was coalesced before it is handled
 * first, so the device run between the halves sees the part of that
 * record alone. A last record cut short by the end of the input is left
 * for the caller, which hangs up before running the device again (no
 * answer may follow it).
 * Return: whether the input ended inside a record.
 */
static bool
play(struct harness *h, const uint8_t *data, size_t size)
{
    static const size_t nfds_code[4] = { 0, 1, 2, MAX_SEND_FDS };
    int fds[MAX_SEND_FDS];
    bool pending = false; /* fed, not yet handled */
    bool cut = false;

    while (size > 1 && !h->gone) {
        uint8_t ctl = data[0];
        size_t nfds = nfds_code[ctl & 3], len, first, i;
        unsigned int k = (ctl >> 3) & 7;
        uint32_t msg_size;

        flush_answers(h);
        data++;
        size--;
        len = size;
        cut = true; /* the input ends inside this message */
        if (size >= UMDEV_WIRE_HDR_SIZE) {
            memcpy(&msg_size, data + 4, sizeof(msg_size));
            if (msg_size < UMDEV_WIRE_HDR_SIZE)
                msg_size = UMDEV_WIRE_HDR_SIZE;
            if (msg_size <= size) {
                len = msg_size;
                cut = false;
            }
        }
        for (i = 0; i < nfds; i++)
            fds[i] = h->efd;
        if (nfds > 0 && !(ctl & 4)) {
            fds[0] = h->memfd;
            guest.memfd_sent = true;
        }
        if (nfds > 1 || (nfds == 1 && (ctl & 4)))
            guest.efd_sent = true;
        first = len;
        if (k != 0 && len > 1 && (!cut || (ctl & 0x80))) {
            first = len * k / 8;
            if (first == 0)
                first = 1;
            if (pending)
                run_device(h);
        }
        feed(h, data, first, fds, nfds);
        if (first < len) {
            bool again = (ctl & 0x80) != 0;

            run_device(h);
            feed(h, data + first, len - first, fds, again ? nfds : 0);
        }
        pending = true;
        if (!(ctl & 0x40) && !cut) {
            run_device(h);
            pending = false;
        }
        data += len;
        size -= len;
    }
    return cut;
}

/* Zero guest memory (truncated to 0 and back) and drain the eventfd,
 * if the last input sent them (see @guest). */
static void
shared_fds(struct harness *h)
{
    off_t size = big_guest ? BIG_GUEST_SIZE : GUEST_SIZE;
    uint64_t count;

    if (guest.memfd < 0) {
        guest.memfd = memfd_create("fuzz-guest", MFD_CLOEXEC);
        guest.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (guest.memfd < 0 || guest.efd < 0 ||
            ftruncate(guest.memfd, size) < 0)
            fail("guest memfd and eventfd", errno);
    }
    if (guest.memfd_sent &&
        (ftruncate(guest.memfd, 0) < 0 || ftruncate(guest.memfd, size) < 0))
        fail("ftruncate of the guest memfd", errno);
    if (guest.efd_sent && read(guest.efd, &count, sizeof(count)) < 0 &&
        errno != EAGAIN)
        fail("read of the eventfd", errno);
    guest.memfd_sent = guest.efd_sent = false;
    h->memfd = guest.memfd;
    h->efd = guest.efd;
}

/* The device: one for the process, power-cycled after each input. */
static struct testdev *device;

/* At exit, so that its teardown runs under the sanitizers too. */
static void
device_free(void)
{
    testdev_destroy(device);
    device = NULL;
}

static struct testdev *
device_get(void)
{
    if (device == NULL) {
        int rc = testdev_create(&fuzz_log.logger, &device);

        if (rc < 0)
            fail("testdev_create", -rc);
        atexit(device_free);
    }
    return device;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t *in;
    static struct dma_req *reqs;
    static size_t reqs_cap;
    struct harness h = { .memfd = -1, .efd = -1 };
    struct testdev *td;
    int sv[2], fds_before, i, rc;

    if (size < 1)
        return 0;
    if (verbose < 0) {
        kit_log_init(&fuzz_log, "device", "UMDEV_FUZZ_VERBOSE");
        verbose = fuzz_log.print;
        big_guest = getenv("UMDEV_FUZZ_BIG_GUEST") != NULL;
    }
    if (in == NULL && (in = malloc(PEER_BUF)) == NULL)
        fail("malloc", errno);
    h.in = in;
    h.reqs = reqs;
    h.reqs_cap = reqs_cap;
    h.answer = (enum dma_answer)((data[0] >> 1) & 3);
    shared_fds(&h);
    /* Before the count: the device's own descriptors (BAR2's memfd)
     * outlive the input. */
    td = device_get();
    h.dev = testdev_dev(td);
    fds_before = fuzz_count_fds();
    if ((rc = kit_peer_pair(sv)) < 0)
        fail("socketpair", -rc);
    h.fd = sv[1];
    if ((rc = umdev_dev_attach(h.dev, sv[0])) < 0)
        fail("umdev_dev_attach", -rc);

    if (!(data[0] & 1))
        send_version(&h);
    /* Unless the input ended inside a message, what the device asked for
     * is answered before the client hangs up, and what that starts too,
     * so a DMA the last record started can finish. */
    if (!play(&h, data + 1, size - 1)) {
        while (h.nreqs > 0 && !h.gone) {
            flush_answers(&h);
            run_device(&h);
        }
    }

    /* End of input: the device sees EOF, handles what it still holds and
     * hangs up; meanwhile what it sends is read. */
    shutdown(sv[1], SHUT_WR);
    h.hung_up = true;
    h.nreqs = 0;
    for (i = 0; umdev_dev_attached(h.dev);) {
        /* Replies not read yet hold the device's reading back
         * (umdev_dev_events()): reading them is progress, uncounted. */
        if (umdev_dev_events(h.dev) != UMDEV_LOOP_OUT && i++ == 100) {
            fprintf(stderr, "fuzz_dispatch: the device never noticed the "
                            "client hanging up\n");
            abort();
        }
        umdev_dev_process(h.dev);
        drain_inline(&h);
    }
    /* The device hung up: everything it sent is in, then EOF. */
    drain(&h, true);
    if (h.in_len != 0)
        die("the device hung up in the middle of a message", h.in, h.in_len);
    reqs = h.reqs;
    reqs_cap = h.reqs_cap;
    close(sv[1]);
    /* What the client set up went with it (DMA mappings, IRQ fds, queued
     * messages: the descriptor count below checks); what it did to the
     * device goes now, so no input sees the last one's state. */
    testdev_power_cycle(td);
    if (fuzz_count_fds() != fds_before) {
        fprintf(stderr, "fuzz_dispatch: %d descriptors leaked\n",
                fuzz_count_fds() - fds_before);
        abort();
    }
    return 0;
}
