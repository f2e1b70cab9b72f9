/*
 * libFuzzer target: framing, decode and dispatch of a live server (the test
 * device) fed by a "client" over a socketpair, descriptors included.
 *
 * The device runs on the fuzzer's thread: each message of the input is
 * written to the client end, then umdev_dev_process() handles it, so what
 * the device reads is fixed by the input alone. A peer thread reads the
 * client end: it checks that everything the device sends decodes (an
 * oracle for the encoder), discards replies, and answers the device's own
 * DMA_READ/DMA_WRITE requests (mappings made without an fd) as the input's
 * first byte says, so a device waiting for guest memory never stalls.
 * After each input the device has detached and nothing of the client may
 * be left: LSan checks the heap, the harness counts open descriptors.
 *
 * Speed (fuzzing reaches little below 10 k inputs a second): the device,
 * the peer thread, the guest memfd and the eventfd live for the whole
 * process; each input gets only a fresh socket pair, i.e. a new client
 * connection, and the device hangs up on its EOF as it would on a client
 * gone. Then testdev_power_cycle() puts the device back to what a new one
 * is (what the client held, lib/dev dropped when it detached), so no
 * input depends on the one before and a crash replays alone. The memfd
 * is emptied between inputs (truncated to 0 and back), so what one
 * input's DMA wrote never reaches the next. And most inputs need no peer thread
 * at all: unless an input can make the device wait for the client (a
 * DMA_MAP that may arrive without an fd, so device DMA goes by message,
 * or replies that could fill the socket), the fuzzer thread reads the
 * client end itself between device runs (inline), with the same checks,
 * and no thread switch is paid per message or per input.
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
 *                       of k/8 of it, with the device run in between;
 *             bit 6:    do not run the device before the next record (so
 *                       several messages, and their fds, arrive together).
 *     message the next 16 bytes are a header; its msg_size (at least 16)
 *             says how many bytes, header included, the record takes, or
 *             all that is left if fewer remain.
 * fuzz/corpus/dispatch/ holds valid and near-valid sequences of every
 * command in this format.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
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

/*
 * The peer thread serves one input's client end at a time: the fuzzer
 * thread hands it over (fd >= 0, busy), the peer reads it until the
 * device hangs up and then clears busy.
 */
struct peer {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool busy; /* an input's client end is being served */
    int fd;    /* the client end; the fuzzer thread writes it too, but never
                * while the device waits for a DMA answer */
    enum dma_answer answer;
    uint8_t *buf; /* PEER_BUF bytes */
};

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

/* The device asked for guest memory through a mapping without an fd.
 * Errors sending are the device's to notice on its side. */
static void
answer_dma(struct peer *p, const struct umdev_wire_msg *w)
{
    static uint8_t data[PEER_BUF];
    struct vfio_user_dma_access a = w->u.dma_access;
    struct vfio_user_header err;
    size_t data_len = 0;

    switch (p->answer) {
    case DMA_STRAY_ID: {
        struct vfio_user_header req = w->hdr, stray;

        req.msg_id = (uint16_t)(req.msg_id + 0x8000);
        umdev_wire_encode_error(&stray, &req, EFAULT);
        kit_peer_send_bytes(p->fd, &stray, sizeof(stray), NULL, 0, NULL, NULL);
    }
        /* fall through */
    case DMA_ERROR:
        umdev_wire_encode_error(&err, &w->hdr, EFAULT);
        kit_peer_send_bytes(p->fd, &err, sizeof(err), NULL, 0, NULL, NULL);
        return;
    case DMA_CORRECT:
    case DMA_WRONG_LEN:
        if (w->hdr.cmd == VFIO_USER_DMA_READ)
            data_len = (size_t)a.count;
        if (p->answer == DMA_WRONG_LEN)
            data_len = data_len ? data_len - 1 : 1;
        if (data_len > sizeof(data) - 64)
            data_len = sizeof(data) - 64;
        memset(data, 0x5a, data_len);
        kit_peer_send(p->fd, w->hdr.msg_id, w->hdr.cmd, VFIO_USER_F_TYPE_REPLY,
                      &a, sizeof(a), data, data_len, NULL, 0);
        return;
    }
}

/* One whole message from the device: it must decode; DMA requests are
 * answered, replies dropped. */
static void
peer_message(struct peer *p, const uint8_t *msg, size_t len)
{
    struct umdev_wire_msg w;
    struct vfio_user_header h;

    memcpy(&h, msg, sizeof(h));
    if (verbose)
        fprintf(stderr, "peer: %s %s id %u size %u%s error %u\n",
                (h.flags & VFIO_USER_F_TYPE_MASK) ? "reply" : "command",
                umdev_wire_cmd_name(h.cmd), h.msg_id, h.msg_size,
                (h.flags & VFIO_USER_F_ERROR) ? " ERROR" : "", h.error);
    if (h.flags & VFIO_USER_F_ERROR) {
        /* Error replies may echo a command we do not know (a stray). */
        if ((h.flags & VFIO_USER_F_TYPE_MASK) != VFIO_USER_F_TYPE_REPLY ||
            len != UMDEV_WIRE_HDR_SIZE || h.error == 0)
            die("malformed error reply from the device", msg, len);
        return;
    }
    if (umdev_wire_decode(msg, len, 0, NULL, &w) != 0)
        die("the device sent a message that does not decode", msg, len);
    if (!w.is_reply) {
        if (w.hdr.cmd != VFIO_USER_DMA_READ && w.hdr.cmd != VFIO_USER_DMA_WRITE)
            die("the device sent a command other than DMA_READ/WRITE", msg,
                len);
        answer_dma(p, &w);
    }
}

/* One input's client end, until the device closes its end. */
static void
peer_serve(struct peer *p)
{
    for (;;) {
        /* Descriptors from the device are closed: none is expected. */
        ssize_t n = kit_peer_recv(p->fd, p->buf, PEER_BUF, -1, NULL, NULL);

        if (n == -EPROTO || n == -EMSGSIZE)
            die("impossible message size from the device", p->buf,
                UMDEV_WIRE_HDR_SIZE);
        if (n <= 0)
            break; /* the device closed its end */
        peer_message(p, p->buf, (size_t)n);
    }
}

static void *
peer_thread(void *arg)
{
    struct peer *p = arg;

    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->busy)
            pthread_cond_wait(&p->cond, &p->lock);
        pthread_mutex_unlock(&p->lock);
        peer_serve(p);
        pthread_mutex_lock(&p->lock);
        p->busy = false;
        pthread_cond_broadcast(&p->cond);
    }
    return NULL;
}

/* The process's one peer, started on first use. */
static struct peer *
peer_get(void)
{
    static struct peer p = { .lock = PTHREAD_MUTEX_INITIALIZER,
                             .cond = PTHREAD_COND_INITIALIZER,
                             .fd = -1 };
    static bool started;
    pthread_t thread;

    if (!started) {
        p.buf = malloc(PEER_BUF);
        if (p.buf == NULL || pthread_create(&thread, NULL, peer_thread, &p))
            abort();
        pthread_detach(thread);
        started = true;
    }
    return &p;
}

/* Have the peer serve client end @fd, answering DMA requests with @a. */
static void
peer_start(struct peer *p, int fd, enum dma_answer a)
{
    pthread_mutex_lock(&p->lock);
    p->fd = fd;
    p->answer = a;
    p->busy = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

/* Wait until the peer saw the device hang up. */
static void
peer_wait(struct peer *p)
{
    pthread_mutex_lock(&p->lock);
    while (p->busy)
        pthread_cond_wait(&p->cond, &p->lock);
    p->fd = -1;
    pthread_mutex_unlock(&p->lock);
}

struct harness {
    struct umdev_dev *dev;
    int fd;    /* client end */
    int memfd; /* guest memory */
    int efd;
    bool gone; /* the device hung up: stop writing */
    /* Inline: the fuzzer thread reads the client end (@in holds what is
     * read of a message not yet whole); else the peer thread does. */
    bool inline_peer;
    struct peer *peer;
    uint8_t *in;
    size_t in_len;
    bool in_eof;
};

/*
 * Inline: take what the device sent so far, without waiting, and check
 * each whole message as the peer thread would. A DMA request cannot be
 * answered from here (the device waits for it inside
 * umdev_dev_process()): needs_peer() must have sent such an input to the
 * peer thread.
 */
static void
drain_inline(struct harness *h)
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
        ssize_t n;

        n = recvmsg(h->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
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
        while (h->in_len - off >= UMDEV_WIRE_HDR_SIZE) {
            struct vfio_user_header hdr;

            memcpy(&hdr, h->in + off, sizeof(hdr));
            if (hdr.msg_size < UMDEV_WIRE_HDR_SIZE || hdr.msg_size > PEER_BUF)
                die("impossible message size from the device", h->in + off,
                    UMDEV_WIRE_HDR_SIZE);
            if (h->in_len - off < hdr.msg_size)
                break;
            if (!(hdr.flags & VFIO_USER_F_ERROR) &&
                (hdr.flags & VFIO_USER_F_TYPE_MASK) != VFIO_USER_F_TYPE_REPLY)
                die("harness: a device request on an input judged not to "
                    "need the peer thread (needs_peer() is wrong)",
                    h->in + off, hdr.msg_size);
            peer_message(h->peer, h->in + off, hdr.msg_size);
            off += hdr.msg_size;
        }
        memmove(h->in, h->in + off, h->in_len - off);
        h->in_len -= off;
    }
}

/* When the socket is full, let the device read. */
static int
run_device_full(void *arg)
{
    struct harness *h = arg;

    if (umdev_dev_process(h->dev) < 0) {
        h->gone = true;
        return -EPIPE;
    }
    if (h->inline_peer)
        drain_inline(h);
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
    if (h->inline_peer)
        drain_inline(h);
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
 *
 * The device must never wait for a DMA answer behind bytes of a message
 * that will not complete (it would take the answer for that message's
 * body and give up only after its 5 s timeout): so before a record is
 * split, what was coalesced before it is handled first, and a last record
 * cut short by the end of the input is left for the caller, which hangs
 * up before running the device again.
 */
static void
play(struct harness *h, const uint8_t *data, size_t size)
{
    static const size_t nfds_code[4] = { 0, 1, 2, MAX_SEND_FDS };
    int fds[MAX_SEND_FDS];
    bool pending = false; /* fed, not yet handled */

    while (size > 1 && !h->gone) {
        uint8_t ctl = data[0];
        size_t nfds = nfds_code[ctl & 3], len, first, i;
        unsigned int k = (ctl >> 3) & 7;
        bool cut = true; /* the input ends inside this message */
        uint32_t msg_size;

        data++;
        size--;
        len = size;
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
        if (nfds > 0 && !(ctl & 4))
            fds[0] = h->memfd;
        first = len;
        if (k != 0 && len > 1 && !cut) {
            first = len * k / 8;
            if (first == 0)
                first = 1;
            if (pending)
                run_device(h);
        }
        feed(h, data, first, fds, nfds);
        if (first < len) {
            run_device(h);
            feed(h, data + first, len - first, NULL, 0);
        }
        pending = true;
        if (!(ctl & 0x40) && !cut) {
            run_device(h);
            pending = false;
        }
        data += len;
        size -= len;
    }
}

/* A little-endian field of @len bytes at @off of a record's payload, 0
 * past its end. */
static uint64_t
payload_field(const uint8_t *msg, size_t len, size_t off, size_t n)
{
    uint64_t v = 0;

    off += UMDEV_WIRE_HDR_SIZE;
    if (off + n <= len)
        memcpy(&v, msg + off, n);
    return v;
}

/* What all replies may take of the socket (212992 bytes by default):
 * below it the device never waits to send. Each reply counts an skb's
 * overhead and 512 bytes (what a reply without data takes at most),
 * plus the data its command asks for. */
#define INLINE_MAX_REPLIES (160u * 1024)
#define REPLY_OVERHEAD (1024u + 512u)

/*
 * Does the input need the peer thread: can the device wait for the
 * client? It can when device DMA goes by message, which takes a DMA_MAP
 * without an fd (one sent with none, or one whose record is coalesced
 * with the one before, so its fds might go to that one instead) and then
 * a region write (the test device starts DMA on a register write only),
 * and when replies might fill the socket (the largest each command's
 * fields allow, summed). Walks the records as play() does.
 */
static bool
needs_peer(const uint8_t *data, size_t size)
{
    static const size_t nfds_code[4] = { 0, 1, 2, MAX_SEND_FDS };
    uint64_t replies = 0;
    bool coalesced = false; /* the record before was not run alone */
    bool msg_map = false;   /* a mapping may have come without an fd */

    while (size > 1) {
        uint8_t ctl = data[0];
        size_t len = size - 1;
        const uint8_t *m = data + 1;
        struct vfio_user_header hdr = { 0 };
        uint64_t r = REPLY_OVERHEAD;

        if (len >= UMDEV_WIRE_HDR_SIZE) {
            memcpy(&hdr, m, sizeof(hdr));
            if (hdr.msg_size < UMDEV_WIRE_HDR_SIZE)
                hdr.msg_size = UMDEV_WIRE_HDR_SIZE;
            if (hdr.msg_size <= len)
                len = hdr.msg_size;
        }
        switch (hdr.cmd) {
        case VFIO_USER_DMA_MAP:
            if (nfds_code[ctl & 3] == 0 || coalesced)
                msg_map = true;
            break;
        case VFIO_USER_REGION_WRITE:
        case VFIO_USER_REGION_WRITE_MULTI:
            if (msg_map)
                return true;
            break;
        case VFIO_USER_REGION_READ:
            r += payload_field(m, len, 12, 4); /* count */
            break;
        case VFIO_USER_MIG_DATA_READ:
            r += payload_field(m, len, 4, 4); /* size */
            break;
        case VFIO_USER_DMA_UNMAP:
            r += payload_field(m, len, 0, 4);  /* argsz */
            r += payload_field(m, len, 32, 8); /* bitmap size */
            break;
        case VFIO_USER_DEVICE_FEATURE:
        case VFIO_USER_DEVICE_GET_REGION_INFO:
        case VFIO_USER_DEVICE_GET_REGION_IO_FDS:
        case VFIO_USER_DEVICE_GET_IRQ_INFO:
        case VFIO_USER_DEVICE_GET_INFO:
            r += payload_field(m, len, 0, 4); /* argsz */
            break;
        default:
            break;
        }
        replies += r;
        if (replies > INLINE_MAX_REPLIES)
            return true;
        coalesced = (ctl & 0x40) != 0;
        data += 1 + len;
        size -= 1 + len;
    }
    return false;
}

/* Guest memory and the eventfd sent with records: one each for the
 * process. */
static void
shared_fds(struct harness *h)
{
    static int memfd = -1, efd = -1;
    off_t size = big_guest ? BIG_GUEST_SIZE : GUEST_SIZE;
    uint64_t count;

    if (memfd < 0) {
        memfd = memfd_create("fuzz-guest", MFD_CLOEXEC);
        efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (memfd < 0 || efd < 0)
            abort();
    }
    /* Zero guest memory; drain what the last input signalled. */
    if (ftruncate(memfd, 0) < 0 || ftruncate(memfd, size) < 0)
        abort();
    if (read(efd, &count, sizeof(count)) < 0 && errno != EAGAIN)
        abort();
    h->memfd = memfd;
    h->efd = efd;
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
        if (testdev_create(&fuzz_log.logger, &device) < 0)
            abort();
        atexit(device_free);
    }
    return device;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct harness h = { .memfd = -1, .efd = -1 };
    struct testdev *td;
    struct peer *p;
    int sv[2], fds_before, i;

    if (size < 1)
        return 0;
    if (verbose < 0) {
        kit_log_init(&fuzz_log, "device", "UMDEV_FUZZ_VERBOSE");
        verbose = fuzz_log.print;
        big_guest = getenv("UMDEV_FUZZ_BIG_GUEST") != NULL;
    }
    p = peer_get();
    h.peer = p;
    h.inline_peer = !needs_peer(data + 1, size - 1);
    if (h.inline_peer) {
        static uint8_t *in;

        if (in == NULL && (in = malloc(PEER_BUF)) == NULL)
            abort();
        h.in = in;
    }
    shared_fds(&h);
    /* Before the count: the device's own descriptors (BAR2's memfd)
     * outlive the input. */
    td = device_get();
    h.dev = testdev_dev(td);
    fds_before = fuzz_count_fds();
    if (kit_peer_pair(sv) < 0)
        abort();
    h.fd = sv[1];
    if (umdev_dev_attach(h.dev, sv[0]) < 0)
        abort();
    p->answer = (enum dma_answer)((data[0] >> 1) & 3);
    if (!h.inline_peer)
        peer_start(p, sv[1], p->answer);

    if (!(data[0] & 1))
        send_version(&h);
    play(&h, data + 1, size - 1);

    /* End of input: the device sees EOF, handles what it still holds and
     * hangs up; then the peer sees EOF. */
    shutdown(sv[1], SHUT_WR);
    for (i = 0; umdev_dev_attached(h.dev);) {
        /* Replies the peer thread has not taken yet hold the device's
         * reading back (umdev_dev_events()): wait for room, uncounted. */
        bool out = umdev_dev_events(h.dev) == UMDEV_LOOP_OUT;
        struct pollfd pf = { .fd = umdev_dev_client_fd(h.dev),
                             .events = out ? POLLOUT : POLLIN };

        if ((!out && i++ == 100) || poll(&pf, 1, 10000) <= 0) {
            fprintf(stderr, "fuzz_dispatch: the device never noticed the "
                            "client hanging up\n");
            abort();
        }
        umdev_dev_process(h.dev);
    }
    if (h.inline_peer) {
        drain_inline(&h);
        /* The device hung up: everything it sent is in. */
        if (!h.in_eof || h.in_len != 0)
            die("the device hung up in the middle of a message", h.in,
                h.in_len);
    } else {
        peer_wait(p);
    }
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
