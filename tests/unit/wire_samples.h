/*
 * What the lib/wire unit tests share (test_wire.c: each message's fields
 * and refusals; test_wire_frame.c: the header, framing and the checks
 * every message gets): one valid sample of every message in both
 * directions, the constants they are built from, and helpers that encode
 * a sample and decode exact-size copies so ASan sees any read past a
 * message. Helpers fail the running cmocka test, naming the sample.
 */
#ifndef UMDEV_TEST_WIRE_SAMPLES_H
#define UMDEV_TEST_WIRE_SAMPLES_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "kit_peer.h"
#include "umdev/wire.h"
#include "umdev/wire_codec.h"

/* <linux/vfio.h> values the messages use. */
#define IRQ_DATA_NONE (1u << 0)
#define IRQ_DATA_BOOL (1u << 1)
#define IRQ_DATA_EVENTFD (1u << 2)
#define IRQ_ACTION_MASK (1u << 3)
#define IRQ_ACTION_UNMASK (1u << 4)
#define IRQ_ACTION_TRIGGER (1u << 5)
#define REGION_FLAG_READ (1u << 0)
#define REGION_FLAG_WRITE (1u << 1)
#define REGION_FLAG_MMAP (1u << 2)
#define REGION_FLAG_CAPS (1u << 3)
#define FEATURE_GET (1u << 16)
#define FEATURE_PROBE (1u << 18)
#define FEATURE_MIGRATION 1u
#define MIGRATION_STOP_COPY (1u << 0)
#define MIGRATION_PRE_COPY (1u << 2)
#define IOEVENTFD_FLAG_DATAMATCH (1u << 0)

#define REPLY VFIO_USER_F_TYPE_REPLY
#define HDR UMDEV_WIRE_HDR_SIZE
#define MSG_ID 0x5a17u
#define MSG_CAP 8192u
#define N_ELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Return codes in decimal, with the message they came from. */
#define check_rc(name, tag, got, want)                                         \
    do {                                                                       \
        int got_ = (got), want_ = (want);                                      \
                                                                               \
        if (got_ != want_)                                                     \
            fail_msg("%s [%s]: rc %d (%s), want %d (%s)", (name), (tag), got_, \
                     strerror(-got_), want_, strerror(-want_));                \
    } while (0)

/* Equality of a decoded value, naming the sample it came from. */
#define SAMPLE_EQ(s, got, want)                                                \
    do {                                                                       \
        uintmax_t got_ = (uintmax_t)(got), want_ = (uintmax_t)(want);          \
                                                                               \
        if (got_ != want_)                                                     \
            fail_msg("%s: %s = %#jx, want %#jx", (s)->name, #got, got_,        \
                     want_);                                                   \
    } while (0)

struct msg {
    size_t len;
    uint8_t b[MSG_CAP];
};

struct unmap_dirty {
    struct vfio_user_dma_unmap unmap;
    struct vfio_user_bitmap bitmap;
};

/* A GET_REGION_INFO reply: sparse-mmap capability chained to a type one. */
struct region_reply {
    struct vfio_user_region_info info;
    struct vfio_user_cap_sparse_mmap sparse; /* at 32 */
    struct vfio_user_sparse_area areas[2];   /* at 48 */
    struct vfio_user_cap_type type;          /* at 80 */
};

struct io_fds_reply {
    struct vfio_user_region_io_fds_request head;
    struct vfio_user_sub_region_ioeventfd sub[2];
};

struct multi_req {
    uint64_t wr_cnt;
    struct vfio_user_write_multi_entry e[3];
};

/* The spec's DMA_WRITE reply: address and a 4-byte count, 12 bytes. */
struct dma_write_reply {
    uint64_t addr;
    uint32_t count;
};

/* One field of a wire structure, to compare decoded against sent. */
struct field {
    const char *name; /* NULL ends a list */
    size_t off, size;
};
#define FIELD(type, f)                                                         \
    {                                                                          \
#f, offsetof(type, f), sizeof(((type *)0)->f)                          \
    }

/* How a message may carry fds. */
enum fd_rule {
    FDS_NONE,  /* none at all */
    FDS_MAP,   /* DMA_MAP: zero or one */
    FDS_EXACT, /* SET_IRQS eventfd: zero or exactly count */
    FDS_ANY,   /* VERSION/GET_REGION_INFO/GET_REGION_IO_FDS replies */
};

/* One valid message and what each sweep may change in it. */
struct sample {
    const char *name;
    uint16_t cmd;
    uint32_t flags;
    const void *fixed;
    size_t fixed_len;
    const void *data;
    size_t data_len;
    size_t nfds; /* fds it is sent with */
    enum fd_rule fds;
    size_t min_fixed;   /* shortest payload its layout allows; 0: none */
    uint32_t argsz_min; /* smallest argsz accepted; 0: no argsz */
    size_t count_off;   /* data count field offset in the payload */
    size_t count_size;  /* its size, 4 or 8; 0: no data count */
    /* Fields of the fixed part that decode to umdev_wire_msg.u (which
     * lays them out as the wire does); NULL: none are checked. */
    const struct field *fields;
};

extern const struct sample samples[];
extern const size_t n_samples;
extern const uint16_t known_cmds[];
extern const size_t n_known_cmds;

extern const struct vfio_user_version k_version;
extern const char k_server_json[];
extern const struct vfio_user_dma_unmap k_unmap;
extern const struct unmap_dirty k_unmap_dirty;
extern const uint8_t k_bitmap[2];
extern const struct region_reply k_region;
extern const struct io_fds_reply k_io_fds;
extern const struct vfio_user_irq_set k_irqs_none, k_irqs_bool;
extern const uint8_t k_bools[3];
extern const struct vfio_user_region_access k_rr;
extern const uint8_t k_rr_data[4];
extern const uint8_t k_dr_data[8];
extern const uint8_t k_mig_bytes[5];
extern const struct vfio_user_dma_access k_dw;
extern const struct dma_write_reply k_dw_reply;
extern const struct multi_req k_multi;

extern const struct field sparse_area_fields[], cap_type_fields[],
    sub_region_fields[], write_multi_entry_fields[], irq_set_fields[];

/* Lay out header, fixed part and data in @m; fails the test if it can't. */
void enc(struct msg *m, uint16_t cmd, uint32_t flags, const void *fixed,
         size_t fixed_len, const void *data, size_t data_len);
void enc_sample(struct msg *m, const struct sample *s);
/*
 * each_sample() - encode every sample into a fresh message and run @check
 * on it, which returns false when the sample has nothing it checks.
 * Return: how many samples it checked.
 */
size_t each_sample(bool (*check)(const struct sample *s, struct msg *m));
/* The sample called @name (fails the test if there is none). */
const struct sample *sample(const char *name);
void put32(struct msg *m, size_t off, uint32_t v);
/* Store @v in the payload field at @off that is @size (4 or 8) bytes. */
void put_field(struct msg *m, size_t off, size_t size, uint64_t v);
/* Decode a heap copy of exactly @len bytes; the result only. */
int decode_exact(const void *buf, size_t len, size_t nfds,
                 const struct umdev_wire_limits *lim);
int rc_of(const struct msg *m, size_t nfds);
/* Compare @got with @want field by field, naming @what on a mismatch. */
void check_fields(const char *what, const void *got, const void *want,
                  const struct field *fields);
/*
 * Encode @s, decode it into @w and check what every decode reports: the
 * header, the payload and data pointers and lengths, the data bytes and
 * the sample's fields.
 */
void round_trip(const struct sample *s, struct msg *m,
                struct umdev_wire_msg *w);
struct umdev_wire_msg round_trip_named(const char *name, struct msg *m);

#endif /* UMDEV_TEST_WIRE_SAMPLES_H */
