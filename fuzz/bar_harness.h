/*
 * Shared parts of the BAR-stream fuzz targets (accel_bar, serial_bar): a
 * vfio-user client (on the test kit's raw peer) on a socketpair that the
 * target's device serves on the fuzzer's thread, the input reader, BAR
 * accesses and DMA mappings at the device, guest memory with guard pages
 * and canaries, and the config-space invariants every PCI device must
 * keep.
 *
 * Everything aborts on a broken invariant or on a harness failure (so
 * libFuzzer reports it); nothing here is meant for anything but fuzzing.
 */
#ifndef UMDEV_FUZZ_BAR_HARNESS_H
#define UMDEV_FUZZ_BAR_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "check.h"
#include "pci_ro.h"
#include "umdev/dev.h"

#define FUZZ_PAGE 4096u

/* ---- the input, consumed front to back; past its end every read is 0 */

struct fuzz_in {
    const uint8_t *p;
    size_t n;
};

uint8_t fuzz_u8(struct fuzz_in *in);
uint16_t fuzz_u16(struct fuzz_in *in);
/** @len (<= 8) bytes, little-endian. */
uint64_t fuzz_bytes(struct fuzz_in *in, size_t len);
/** An access width from code @w: bit 7 set, (w & 15) + 1 bytes (any
 * width); else 1, 2, 4 or 8 bytes by w & 3. */
size_t fuzz_width(uint8_t w);
/**
 * fuzz_region_access() - one access to @region (@size bytes) of @dev at
 * the device, not over the socket: u16 offset (mod @size), u8 width code,
 * and for a write that many bytes, from @in. Refusals are valid answers.
 */
void fuzz_region_access(struct umdev_dev *dev, struct fuzz_in *in,
                        uint32_t region, uint64_t size, bool is_write);

/* Every target's first ops: 2k writes its region k, 2k + 1 reads it, for
 * its three regions (two BARs and config space). */
#define FUZZ_REGION_OPS 6
struct fuzz_region {
    uint32_t index; /* UMDEV_PCI_*_REGION */
    uint64_t size;
};
/** Op @op (< FUZZ_REGION_OPS) on @regions[@op / 2], as
 * fuzz_region_access(). */
void fuzz_region_op(struct umdev_dev *dev, struct fuzz_in *in, unsigned int op,
                    const struct fuzz_region regions[3]);

/* A target's own operation @op (FUZZ_REGION_OPS <= @op < its count),
 * operands from @in; and its checks after every operation. */
typedef void fuzz_op_fn(void *target, unsigned int op, struct fuzz_in *in);
typedef void fuzz_check_fn(void *target);

/**
 * fuzz_bar_play() - every target's loop: until @in ends, an opcode byte
 * (mod @nops); ops below FUZZ_REGION_OPS go to fuzz_region_op() on @dev's
 * @regions, the others to @op(@target); @check(@target) after each.
 */
void fuzz_bar_play(struct fuzz_in *in, unsigned int nops, struct umdev_dev *dev,
                   const struct fuzz_region regions[3], fuzz_op_fn *op,
                   fuzz_check_fn *check, void *target);

/* ---- the client */

struct fuzz_client {
    struct umdev_dev *dev; /* borrowed */
    int fd;                /* our end; -1 when detached */
    uint16_t next_id;
};

/** Attach @dev to a socketpair and negotiate VERSION. */
void fuzz_client_attach(struct fuzz_client *c, struct umdev_dev *dev);
/** Hang up, let the device notice and detach. */
void fuzz_client_detach(struct fuzz_client *c);

/**
 * fuzz_client_call() - send one command (with @nfds descriptors), run the
 * device, read its reply into @reply (@cap bytes; may be NULL). The reply
 * must be a well-formed reply to this command.
 * Return: 0, or the errno the device replied with.
 */
int fuzz_client_call(struct fuzz_client *c, uint16_t cmd, const void *fixed,
                     size_t fixed_len, const void *data, size_t data_len,
                     const int *fds, size_t nfds, void *reply, size_t cap);

/** A client of its own attaches to @dev, resets it and leaves.
 * Return: as call. */
int fuzz_client_reset_detached(struct umdev_dev *dev);
/** DMA_MAP [@off, @off+@size) of @fd at @iova. Return: as call. */
int fuzz_dma_map(struct fuzz_client *c, int fd, uint64_t off, uint64_t iova,
                 uint64_t size, uint32_t flags);
int fuzz_dma_unmap(struct fuzz_client *c, uint64_t iova, uint64_t size);
/** SET_IRQS: eventfd @efd on vectors [@start, @start+@count) of @index
 * (or, with @efd -1, tear them down). */
int fuzz_set_irqs(struct fuzz_client *c, uint32_t index, uint32_t start,
                  uint32_t count, int efd);
int fuzz_reset(struct fuzz_client *c);
/**
 * fuzz_dma_map_guarded() - fuzz_dma_map() between guard pages (see
 * fuzz_guard_prepare()); a refusal is a valid answer.
 * Return: the sides of the device's mapping left without a guard (0..2).
 */
int fuzz_dma_map_guarded(struct fuzz_client *c, int fd, uint64_t off,
                         uint64_t iova, uint64_t size, uint32_t flags);
/*
 * The guest-memory layouts the BAR targets map (an input's MAP byte picks
 * one): over @size bytes of guest memory (file offset 0) at @iova,
 * 0 all read-write; 1 two adjacent halves, the second read-only; 2 all
 * read-only; 3 two read-write halves with an unmapped page between them.
 */
struct fuzz_map {
    uint64_t file_off, iova, len;
    uint32_t flags;
};
/** Layout @v's mappings into @out. Return: how many (1 or 2). */
size_t fuzz_layout(uint8_t v, uint64_t iova, uint64_t size,
                   struct fuzz_map out[2]);
/** The range an input's UNMAP byte @v takes away: all, either half, or
 * layout 3's second half. */
void fuzz_unmap_range(uint8_t v, uint64_t iova, uint64_t size,
                      uint64_t *unmap_iova, uint64_t *unmap_len);

/** REGION_READ over the socket. Return: as call. */
int fuzz_region_read(struct fuzz_client *c, uint32_t region, uint64_t off,
                     void *buf, uint32_t count);

/* ---- guest memory: a memfd of @pages pages with one canary page at
 * each end of the file (never DMA-mapped; they must never change) */

struct fuzz_guest {
    int fd;
    uint8_t *map; /* the harness's view of the whole file */
    size_t pages; /* between the canaries */
};

void fuzz_guest_create(struct fuzz_guest *g, size_t pages);
void fuzz_guest_destroy(struct fuzz_guest *g);
/** The first byte the device may see (file offset FUZZ_PAGE). */
uint8_t *fuzz_guest_mem(struct fuzz_guest *g);
void fuzz_guest_check_canaries(const struct fuzz_guest *g);

/**
 * fuzz_guard_prepare() - before a DMA_MAP of @len bytes: leave a hole of
 * @len bytes between two inaccessible pages, where the device's mmap is
 * likely to land. fuzz_guard_settle() then checks where it landed (the
 * device's host address of the mapping's first byte is @host): guard
 * pages are put on both sides of it unless something is there already.
 * @host NULL: the map failed; the hole is given back.
 * Return (settle): the sides left unguarded (0..2).
 */
void fuzz_guard_prepare(size_t len);
int fuzz_guard_settle(void *host, size_t len);
/** Drop every guard (end of an input). */
void fuzz_guard_release(void);

/* ---- what every target keeps around its device
 *
 * The device, its guest memory and the eventfd live for the process; each
 * input is one new client (a socketpair and VERSION), and after it the
 * device is power-cycled: the client resets it (VFIO_USER_DEVICE_RESET,
 * the device's own reset path) and hangs up, then the target restores
 * what a reset leaves and a new device would not have. So no input
 * depends on the one before, and a crash replays alone. */

struct fuzz_bar {
    struct fuzz_client c;
    struct fuzz_guest g;
    struct umdev_pci *pci; /* the device's config space (borrowed) */
    struct fuzz_pci_ro ro; /* its invariants (pci_ro.h) */
    int efd;        /* an eventfd the input may put on IRQs */
    int fds_before; /* descriptors open before the input */
};

/** Once per process: the eventfd and @guest_pages pages of guest
 * memory. */
void fuzz_bar_open(struct fuzz_bar *b, size_t guest_pages);
/** At exit: canaries, then guest memory and eventfd closed. */
void fuzz_bar_close(struct fuzz_bar *b);
/**
 * fuzz_bar_begin() - start an input: guest memory zeroed (not the
 * canaries), the eventfd drained, descriptors counted, a new client
 * attached to @dev (negotiated), its config space @pci snapshot.
 */
void fuzz_bar_begin(struct fuzz_bar *b, struct umdev_dev *dev,
                    struct umdev_pci *pci);
/** After every operation: config-space invariants and the canaries. */
void fuzz_bar_check(struct fuzz_bar *b);
/**
 * fuzz_bar_end() - end an input: canaries; the client resets the device
 * over its socket and hangs up; guards dropped. The target then
 * completes the power cycle and calls fuzz_bar_check_fds().
 */
void fuzz_bar_end(struct fuzz_bar *b);
/** No descriptor left open by the input. */
void fuzz_bar_check_fds(const struct fuzz_bar *b);

/**
 * fuzz_selfcheck() - whether FUZZ_SELFCHECK is set in the environment:
 * then targets compare each power-cycled device with a new one
 * (fuzz_dev_compare()), a debugging check too slow for fuzzing.
 */
bool fuzz_selfcheck(void);

/* A region fuzz_dev_compare() reads, @width bytes at a time. */
struct fuzz_cmp_region {
    uint32_t index;
    uint64_t size;
    size_t width;
};

/**
 * fuzz_dev_compare() - abort, naming the first difference, unless
 * devices @a and @b (no client attached) look the same to a client:
 * config space byte by byte, each of @regions read the same (every
 * aligned access; the same refusals), the same IRQ vectors with the
 * same mask and eventfd state, no DMA mapping. Reads may have side
 * effects: both devices take the same ones, and the caller power-cycles
 * @a again afterwards. @what names the target for the message.
 */
void fuzz_dev_compare(const char *what, struct umdev_dev *a,
                      struct umdev_dev *b,
                      const struct fuzz_cmp_region *regions, size_t n);

#endif /* UMDEV_FUZZ_BAR_HARNESS_H */
