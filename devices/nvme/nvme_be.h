/*
 * The nvme subdevice's storage backends: a sparse backing file driven by
 * io_uring (reads and writes straight between the file and guest memory,
 * O_DIRECT where the file system and the buffers allow it), or null
 * (completes everything at once, moves nothing: benchmarks).
 *
 * Asynchronous: operations are queued with a tag, started by
 * nvme_be_submit(), and their results come back through nvme_be_reap().
 * One thread at a time (the controller's lock).
 */
#ifndef UMDEV_NVME_BE_H
#define UMDEV_NVME_BE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct nvme_be;

/* Operations in flight at most (the io_uring's depth). */
#define NVME_BE_DEPTH 256u

/**
 * nvme_be_open_file() - use the existing regular file @path of at least
 * @size bytes. Opens it twice: with O_DIRECT (unless the file system
 * refuses it) and buffered, for transfers that do not meet O_DIRECT's
 * alignment. Return: 0; -errno with @err saying what failed.
 */
int nvme_be_open_file(const char *path, uint64_t size, struct nvme_be **out,
                      char *err, size_t errlen);
/** nvme_be_open_null() - the null backend. Return: 0 or -ENOMEM. */
int nvme_be_open_null(struct nvme_be **out);
/** Waits for operations in flight (their results dropped), frees. */
void nvme_be_close(struct nvme_be *be);

/* Queue an operation: 0, or -EBUSY when NVME_BE_DEPTH are queued or in
 * flight (submit, reap and retry). @iov is borrowed until the tag is
 * reaped. @dsync: durable on completion (FUA, write cache off). */
int nvme_be_readv(struct nvme_be *be, const struct iovec *iov, unsigned int n,
                  uint64_t off, uint64_t tag);
int nvme_be_writev(struct nvme_be *be, const struct iovec *iov, unsigned int n,
                   uint64_t off, bool dsync, uint64_t tag);
/* fdatasync() semantics. */
int nvme_be_flush(struct nvme_be *be, uint64_t tag);
/* Deallocate: the range reads back as zeroes and its blocks are freed
 * (a hole punched in the file). */
int nvme_be_discard(struct nvme_be *be, uint64_t off, uint64_t len,
                    uint64_t tag);

/** Start what is queued. Return: 0 or -errno. */
int nvme_be_submit(struct nvme_be *be);

/* A finished operation: @res is bytes moved (>= 0) or -errno. */
typedef void nvme_be_done_fn(void *opaque, uint64_t tag, int res);

/**
 * nvme_be_reap() - report finished operations through @done; with @wait,
 * block until at least one finishes if any is in flight.
 * Return: how many were reported.
 */
unsigned int nvme_be_reap(struct nvme_be *be, bool wait, nvme_be_done_fn *done,
                          void *opaque);

/**
 * nvme_be_ready() - before sleeping on nvme_be_eventfd(): drain it, and
 * say whether a completion is waiting to be reaped already (then do not
 * sleep). nvme_be_reap() does not drain it.
 */
bool nvme_be_ready(struct nvme_be *be);

/** Operations queued or in flight. */
unsigned int nvme_be_busy(const struct nvme_be *be);

/** An eventfd that becomes readable when completions arrive, or -1. */
int nvme_be_eventfd(const struct nvme_be *be);

/**
 * nvme_be_probe_op() - submit one io_uring operation @opcode with no
 * arguments (fd -1) on an idle file backend and wait for it: what the
 * ring's restrictions make of operations it must refuse (tests).
 * Return: its result (-EACCES when the ring refuses the opcode), or
 * -EBUSY / -ENOTSUP (null backend).
 */
int nvme_be_probe_op(struct nvme_be *be, uint8_t opcode);

/** True if the backend opened its file with O_DIRECT. */
bool nvme_be_direct(const struct nvme_be *be);

/** True for the null backend (no data moves: part of what a guest sees). */
bool nvme_be_is_null(const struct nvme_be *be);
/* The backing file's device and inode numbers (0, 0 for the null
 * backend): migration's configuration, so that a destination over
 * another file refuses the stream instead of showing the guest other
 * data. */
void nvme_be_file_id(const struct nvme_be *be, uint64_t id[2]);

#endif /* UMDEV_NVME_BE_H */
