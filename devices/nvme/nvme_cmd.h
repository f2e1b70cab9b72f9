/*
 * The nvme subdevice's command parser: pure functions over the bytes of a
 * submission queue entry (and of the data a command points to) that
 * decide which command it is and whether its fields are valid, returning
 * the status the NVMe base specification names for each bad field. No
 * controller state, no I/O: guest memory is reached only through a read
 * callback for PRP lists. A libFuzzer target can drive all of it.
 */
#ifndef UMDEV_NVME_CMD_H
#define UMDEV_NVME_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvme_spec.h"

/* A submission queue entry, decoded (4.2). */
struct nvme_sqe {
    uint8_t opcode;
    uint8_t fuse; /* FUSE, bits 9:8 of CDW0 */
    uint8_t psdt; /* PSDT, bits 15:14 of CDW0 */
    uint16_t cid;
    uint32_t nsid;
    uint64_t mptr;
    uint64_t prp1, prp2;
    uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};

void nvme_sqe_decode(const uint8_t raw[NVME_SQE_SIZE], struct nvme_sqe *out);
void nvme_sqe_encode(const struct nvme_sqe *sqe, uint8_t raw[NVME_SQE_SIZE]);

/* The one namespace's shape, and the controller's transfer bound. */
struct nvme_geom {
    uint64_t nlba;      /* NSZE: logical blocks */
    uint32_t lba_shift; /* LBADS */
    uint32_t max_xfer;  /* MDTS in bytes */
};

#define NVME_NSID 1u
#define NVME_NSID_BROADCAST 0xffffffffu

enum nvme_io_kind {
    NVME_IO_FLUSH,
    NVME_IO_WRITE,
    NVME_IO_READ,
    NVME_IO_WRITE_ZEROES,
    NVME_IO_DSM,
};

/* A valid I/O command, in bytes of the backing store. */
struct nvme_io {
    enum nvme_io_kind kind;
    uint64_t offset; /* SLBA in bytes */
    uint64_t len;    /* NLB in bytes (read, write, write zeroes) */
    uint32_t nlb;    /* logical blocks, 1-based */
    bool deallocate; /* write zeroes DEAC, DSM AD */
    bool fua;
    uint32_t nr_ranges; /* DSM: ranges in the data buffer */
};

/**
 * nvme_io_parse() - decode and check an NVM command set I/O command.
 * Return: NVME_SC_SUCCESS with @out filled, or the status: Invalid
 * Command Opcode, Invalid Field (fused, SGLs, a transfer above MDTS),
 * Invalid Namespace, LBA Out of Range. A DSM without the Deallocate
 * attribute is valid (its hints alone complete without effect).
 */
uint16_t nvme_io_parse(const struct nvme_sqe *c, const struct nvme_geom *g,
                       struct nvme_io *out);

/* One DSM range (NVM Command Set Spec., Dataset Management), checked. */
struct nvme_range {
    uint64_t offset, len; /* bytes */
};

/**
 * nvme_dsm_ranges() - check @nr ranges of 16 bytes at @buf against @g.
 * Return: NVME_SC_SUCCESS with @out[0..nr) filled (ranges of length 0
 * have len 0), or LBA Out of Range.
 */
uint16_t nvme_dsm_ranges(const uint8_t *buf, uint32_t nr,
                         const struct nvme_geom *g, struct nvme_range *out);

/* Reads guest memory for the PRP walk: 0, or negative on a fault. */
typedef int nvme_mem_read_fn(void *opaque, uint64_t addr, void *buf,
                             size_t len);

/* A guest-physically contiguous piece of a transfer. */
struct nvme_seg {
    uint64_t addr;
    uint64_t len;
};

/**
 * nvme_prp_walk() - the segments of a @len-byte transfer described by
 * PRP entries @prp1 and @prp2 (4.3) with memory page size @page (a power
 * of two), merging adjacent pages. PRP lists are read through @rd.
 * Return: NVME_SC_SUCCESS with *@nsegs set; PRP Offset Invalid (an entry
 * with an offset where none is allowed, or not dword aligned); Data
 * Transfer Error (a list @rd could not read); Internal Error when more
 * than @max segments are needed (cannot happen when @max covers MDTS),
 * or for a @page that is not a power of two of at least 16 bytes.
 */
uint16_t nvme_prp_walk(uint64_t prp1, uint64_t prp2, uint64_t len,
                       uint32_t page, nvme_mem_read_fn *rd, void *opaque,
                       struct nvme_seg *segs, size_t max, size_t *nsegs);

/* Admin commands' fields, checked where no controller state is needed. */
struct nvme_admin {
    uint8_t opcode;
    uint16_t qid;   /* create/delete queue */
    uint32_t qsize; /* create queue: QSIZE 1-based, up to 65536 */
    uint16_t cqid;  /* create SQ */
    uint16_t iv;    /* create CQ */
    bool ien;       /* create CQ */
    uint8_t qprio;  /* create SQ */
    uint8_t cns;    /* identify */
    uint8_t csi;    /* identify CNS 05h, 06h */
    uint16_t cntid;
    uint8_t lid; /* get log page */
    bool rae;
    uint64_t log_offset; /* bytes */
    uint32_t log_len;    /* bytes */
    uint8_t fid;         /* features */
    uint8_t sel;
    bool save;
    uint16_t abort_sqid, abort_cid;
};

/**
 * nvme_admin_parse() - decode and check the state-free fields of an
 * admin command.
 * Return: NVME_SC_SUCCESS, or Invalid Command Opcode, Invalid Field
 * (fused, SGLs, a create queue without physical contiguity, an unknown
 * CNS or SEL, an unaligned log page offset, a PRP entry the command needs
 * missing or unaligned), Invalid Queue Size, Invalid Queue Identifier
 * (queue 0), Invalid Log Page, Feature Identifier Not Saveable.
 */
uint16_t nvme_admin_parse(const struct nvme_sqe *c, uint32_t page,
                          struct nvme_admin *out);

/* Little-endian accessors for the structures above. */
static inline uint16_t
nvme_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t
nvme_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static inline uint64_t
nvme_le64(const uint8_t *p)
{
    return nvme_le32(p) | (uint64_t)nvme_le32(p + 4) << 32;
}

static inline void
nvme_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void
nvme_put32(uint8_t *p, uint32_t v)
{
    nvme_put16(p, (uint16_t)v);
    nvme_put16(p + 2, (uint16_t)(v >> 16));
}

static inline void
nvme_put64(uint8_t *p, uint64_t v)
{
    nvme_put32(p, (uint32_t)v);
    nvme_put32(p + 4, (uint32_t)(v >> 32));
}

#endif /* UMDEV_NVME_CMD_H */
