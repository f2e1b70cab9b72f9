/*
 * Unit tests for lib/wire, message by message: every sample decodes to
 * the fields it was built from, and every way a message's payload can be
 * wrong is refused with the right errno (the variants table). The
 * header, framing and the checks every message gets are in
 * test_wire_frame.c; the samples are in wire_samples.c.
 */
#include <stdio.h>
#include <stdlib.h>

#include "wire_samples.h"
#include "umdev/wire_codec.h"

/* A change to a sample's payload: @size bytes at @off, little-endian. */
struct patch {
    size_t off, size;
    uint64_t v;
};
#define PATCH(type, f, val)                                                    \
    {                                                                          \
        offsetof(type, f), sizeof(((type *)0)->f), (val)                       \
    }

/* The sample's data, cut to this many bytes (> 0), or none (NO_DATA). */
#define NO_DATA (-1)

/* A sample with changes, and what decoding it must give. */
struct variant {
    const char *sample;
    const char *tag;       /* what is changed */
    struct patch patch[3]; /* size 0 ends the list */
    const void *data;      /* replaces the sample's data (data_len) */
    int data_len;          /* 0: as is; > 0: that many; NO_DATA: none */
    size_t nfds;           /* descriptors it comes with */
    int want;              /* umdev_wire_decode()'s result */
};

#define DMA_MAP_F(f, v) PATCH(struct vfio_user_dma_map, f, v)
#define UNMAP_F(f, v) PATCH(struct unmap_dirty, f, v)
#define IRQS_F(f, v) PATCH(struct vfio_user_irq_set, f, v)
#define ACCESS_F(f, v) PATCH(struct vfio_user_region_access, f, v)
#define DMA_F(f, v) PATCH(struct vfio_user_dma_access, f, v)

static const struct variant variants[] = {
    /* What a message may also be. */
    { "VERSION reply", "1 fd (the twin socket)", .nfds = 1, .want = 0 },
    { "DMA_MAP", "no fd (reached by DMA_READ/WRITE)", .want = 0 },
    { "SET_IRQS eventfd", "0 fds (de-assign)", .want = 0 },
    { "SET_IRQS none",
      "count 0 disables the index",
      { IRQS_F(index, 2), IRQS_F(start, 0), IRQS_F(count, 0) },
      .want = 0 },
    { "DEVICE_GET_REGION_IO_FDS reply", "argsz too small: no sub-regions",
      .data_len = NO_DATA, .want = 0 },
    /* DMA_MAP */
    { "DMA_MAP",
      "addr+size wraps",
      { DMA_MAP_F(addr, UINT64_MAX - 0xfff) },
      .nfds = 1,
      .want = -EINVAL },
    { "DMA_MAP",
      "addr+size wraps, no fd",
      { DMA_MAP_F(addr, UINT64_MAX - 0xfff) },
      .want = -EINVAL },
    { "DMA_MAP",
      "offset+size wraps",
      { DMA_MAP_F(offset, UINT64_MAX - 0xfff) },
      .nfds = 1,
      .want = -EINVAL },
    { "DMA_MAP", "size 0", { DMA_MAP_F(size, 0) }, .nfds = 1, .want = -EINVAL },
    { "DMA_MAP",
      "unknown flag",
      { DMA_MAP_F(flags, VFIO_USER_DMA_MAP_FLAG_READ |
                             VFIO_USER_DMA_MAP_FLAG_WRITE | (1u << 2)) },
      .nfds = 1,
      .want = -EINVAL },
    { "DMA_MAP",
      "argsz > payload",
      { DMA_MAP_F(argsz, 33) },
      .nfds = 1,
      .want = -EINVAL },
    /* DMA_UNMAP */
    { "DMA_UNMAP all",
      "ALL with a size",
      { UNMAP_F(unmap.size, 0x1000) },
      .want = -EINVAL },
    { "DMA_UNMAP all",
      "ALL with an addr",
      { UNMAP_F(unmap.addr, 0x1000) },
      .want = -EINVAL },
    { "DMA_UNMAP dirty",
      "ALL with bitmap",
      { UNMAP_F(unmap.flags, VFIO_USER_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP |
                                 VFIO_USER_DMA_UNMAP_FLAG_ALL),
        UNMAP_F(unmap.addr, 0), UNMAP_F(unmap.size, 0) },
      .want = -EINVAL },
    { "DMA_UNMAP",
      "unknown flag",
      { UNMAP_F(unmap.flags, 1u << 2) },
      .want = -EINVAL },
    { "DMA_UNMAP", "size 0", { UNMAP_F(unmap.size, 0) }, .want = -EINVAL },
    { "DMA_UNMAP",
      "addr+size wraps",
      { UNMAP_F(unmap.addr, UINT64_MAX) },
      .want = -EINVAL },
    { "DMA_UNMAP dirty",
      "pgsize 0",
      { UNMAP_F(bitmap.pgsize, 0) },
      .want = -EINVAL },
    { "DMA_UNMAP dirty",
      "pgsize not 2^n",
      { UNMAP_F(bitmap.pgsize, 4096 + 512) },
      .want = -EINVAL },
    /* 16 pages need 2 bytes. */
    { "DMA_UNMAP dirty",
      "bitmap too small",
      { UNMAP_F(bitmap.size, 1) },
      .want = -EINVAL },
    { "DMA_UNMAP dirty",
      "bitmap too big",
      { UNMAP_F(bitmap.size, 3) },
      .want = -E2BIG },
    { "DMA_UNMAP dirty",
      "size not whole pages",
      { UNMAP_F(unmap.size, 0x10000 + 512) },
      .want = -EINVAL },
    { "DMA_UNMAP dirty",
      "bitmap > 4 GiB",
      { UNMAP_F(bitmap.size, (uint64_t)UINT32_MAX + 1) },
      .want = -EINVAL },
    /* Reply bitmap data must be exactly bitmap.size bytes. */
    { "DMA_UNMAP dirty reply", "1 of 2 bytes", .data_len = 1, .want = -EINVAL },
    { "DMA_UNMAP dirty reply", "no bitmap", .data_len = NO_DATA,
      .want = -EINVAL },
    /* GET_REGION_IO_FDS: count beyond the sub-regions carried, argsz
     * claiming they are all there. */
    { "DEVICE_GET_REGION_IO_FDS reply",
      "count 3 of 2",
      { PATCH(struct io_fds_reply, head.count, 3) },
      .nfds = 2,
      .want = -EINVAL },
    /* SET_IRQS */
    { "SET_IRQS none",
      "start+count wraps",
      { IRQS_F(start, UINT32_MAX) },
      .want = -EINVAL },
    /* Bools: fewer than count, argsz not covering them, argsz too big. */
    { "SET_IRQS bool", "2 of 3", .data_len = 2, .want = -EINVAL },
    { "SET_IRQS bool", "argsz 22", { IRQS_F(argsz, 22) }, .want = -EINVAL },
    { "SET_IRQS bool",
      "argsz > payload",
      { IRQS_F(argsz, 24) },
      .want = -EINVAL },
    /* Eventfds: neither zero nor count. */
    { "SET_IRQS eventfd", "3 of 4 fds", .nfds = 3, .want = -EBADF },
    { "SET_IRQS eventfd", "5 of 4 fds", .nfds = 5, .want = -EBADF },
    { "SET_IRQS bool", "1 fd", .nfds = 1, .want = -EBADF },
    /* REGION_WRITE data shorter and longer than count. */
    { "REGION_WRITE", "3 of 4 bytes", .data_len = 3, .want = -EINVAL },
    { "REGION_WRITE", "5 of 4 bytes", .data = "wxyz!", .data_len = 5,
      .want = -EINVAL },
    { "REGION_WRITE", "no data", .data_len = NO_DATA, .want = -EINVAL },
    /* REGION_READ: data on the request, and short data in the reply. */
    { "REGION_READ", "with data", .data = k_rr_data, .data_len = 4,
      .want = -EINVAL },
    { "REGION_READ reply", "3 of 4 bytes", .data_len = 3, .want = -EINVAL },
    /* Count 0 and an offset that wraps. */
    { "REGION_READ", "count 0", { ACCESS_F(count, 0) }, .want = -EINVAL },
    { "REGION_READ",
      "offset wraps",
      { ACCESS_F(offset, UINT64_MAX - 1) },
      .want = -EINVAL },
    { "REGION_WRITE_MULTI",
      "entry offset wraps",
      { PATCH(struct multi_req, e[1].offset, UINT64_MAX) },
      .want = -EINVAL },
    /* DMA_READ/WRITE */
    { "DMA_WRITE", "5 of 6 bytes", .data_len = 5, .want = -EINVAL },
    { "DMA_READ", "with data", .data = k_dr_data, .data_len = 8,
      .want = -EINVAL },
    { "DMA_READ reply", "7 of 8 bytes", .data_len = 7, .want = -EINVAL },
    { "DMA_READ", "count 0", { DMA_F(count, 0) }, .want = -EINVAL },
    { "DMA_READ",
      "addr wraps",
      { DMA_F(addr, UINT64_MAX - 3) },
      .want = -EINVAL },
    /* Migration data */
    { "MIG_DATA_WRITE", "4 of 5 bytes", .data_len = 4, .want = -EINVAL },
    { "MIG_DATA_READ", "with data", .data = k_mig_bytes, .data_len = 5,
      .want = -EINVAL },
    { "MIG_DATA_READ reply", "4 of 5 bytes", .data_len = 4, .want = -EINVAL },
};

static void
test_every_sample_round_trips(void **state)
{
    struct umdev_wire_msg w;
    struct msg m;
    size_t i;

    (void)state;
    for (i = 0; i < n_samples; i++)
        round_trip(&samples[i], &m, &w);
}

static void
test_variants(void **state)
{
    size_t i, k;

    (void)state;
    for (i = 0; i < N_ELEM(variants); i++) {
        const struct variant *v = &variants[i];
        const struct sample *s = sample(v->sample);
        const void *data = v->data != NULL ? v->data : s->data;
        size_t data_len = s->data_len;
        struct msg m;

        if (v->data_len == NO_DATA)
            data_len = 0;
        else if (v->data_len > 0)
            data_len = (size_t)v->data_len;
        enc(&m, s->cmd, s->flags, s->fixed, s->fixed_len, data, data_len);
        for (k = 0; k < N_ELEM(v->patch) && v->patch[k].size > 0; k++)
            memcpy(m.b + HDR + v->patch[k].off, &v->patch[k].v,
                   v->patch[k].size);
        check_rc(v->sample, v->tag, rc_of(&m, v->nfds), v->want);
    }
}

static void
test_version_qemu_replay(void **state)
{
    uint8_t raw[HDR + 4 + sizeof(KIT_QEMU_VERSION_JSON)];
    struct vfio_user_header h = {
        .msg_id = 0,
        .cmd = 1,
        .msg_size = sizeof(raw),
        .flags = 0,
    };
    struct umdev_wire_msg w;

    (void)state;
    memcpy(raw, &h, sizeof(h));
    memset(raw + HDR, 0, 4); /* major 0, minor 0 */
    memcpy(raw + HDR + 4, KIT_QEMU_VERSION_JSON, sizeof(KIT_QEMU_VERSION_JSON));
    assert_int_equal(raw[sizeof(raw) - 1], '\0');
    check_rc("QEMU VERSION", "decode",
             umdev_wire_decode(raw, sizeof(raw), 0, NULL, &w), 0);
    assert_int_equal(w.hdr.cmd, VFIO_USER_VERSION);
    assert_int_equal(w.hdr.msg_size, 16 + 4 + 178 + 1);
    assert_false(w.is_reply);
    assert_int_equal(w.u.version.major, 0);
    assert_int_equal(w.u.version.minor, 0);
    assert_ptr_equal(w.u.version.json, (const char *)raw + HDR + 4);
    assert_string_equal(w.u.version.json, KIT_QEMU_VERSION_JSON);
    assert_int_equal(w.data_len, sizeof(KIT_QEMU_VERSION_JSON));
}

static void
test_version(void **state)
{
    struct umdev_wire_msg w;
    struct msg m;

    (void)state;
    w = round_trip_named("VERSION", &m);
    assert_ptr_equal(w.u.version.json, (const char *)m.b + HDR + 4);
    assert_string_equal(w.u.version.json, KIT_QEMU_VERSION_JSON);
    w = round_trip_named("VERSION no JSON", &m);
    assert_null(w.u.version.json);
    w = round_trip_named("VERSION reply", &m);
    assert_string_equal(w.u.version.json, k_server_json);
}

static void
test_version_json_bounds(void **state)
{
    static char json[UMDEV_WIRE_MAX_VERSION_JSON + 1];
    struct msg m;

    (void)state;
    /* Without its NUL, as command and as reply. */
    enc(&m, VFIO_USER_VERSION, 0, &k_version, 4, KIT_QEMU_VERSION_JSON,
        sizeof(KIT_QEMU_VERSION_JSON) - 1);
    check_rc("VERSION", "no NUL", rc_of(&m, 0), -EINVAL);
    enc(&m, VFIO_USER_VERSION, REPLY, &k_version, 4, KIT_QEMU_VERSION_JSON,
        sizeof(KIT_QEMU_VERSION_JSON) - 1);
    check_rc("VERSION reply", "no NUL", rc_of(&m, 0), -EINVAL);
    /* Bytes after the NUL are not JSON and not allowed. */
    memcpy(json, KIT_QEMU_VERSION_JSON, sizeof(KIT_QEMU_VERSION_JSON));
    json[sizeof(KIT_QEMU_VERSION_JSON)] = 'x';
    json[sizeof(KIT_QEMU_VERSION_JSON) + 1] = '\0';
    enc(&m, VFIO_USER_VERSION, 0, &k_version, 4, json,
        sizeof(KIT_QEMU_VERSION_JSON) + 2);
    check_rc("VERSION", "bytes after NUL", rc_of(&m, 0), -EINVAL);
    /* The longest JSON accepted, and one byte more. */
    memset(json, ' ', sizeof(json));
    json[UMDEV_WIRE_MAX_VERSION_JSON - 1] = '\0';
    enc(&m, VFIO_USER_VERSION, 0, &k_version, 4, json,
        UMDEV_WIRE_MAX_VERSION_JSON);
    check_rc("VERSION", "max JSON", rc_of(&m, 0), 0);
    json[UMDEV_WIRE_MAX_VERSION_JSON] = '\0';
    enc(&m, VFIO_USER_VERSION, 0, &k_version, 4, json, sizeof(json));
    check_rc("VERSION", "JSON too long", rc_of(&m, 0), -E2BIG);
}

static void
test_dma_unmap(void **state)
{
    struct umdev_wire_msg w;
    struct msg m;

    (void)state;
    /* Without GET_DIRTY_BITMAP there is no bitmap. */
    w = round_trip_named("DMA_UNMAP", &m);
    assert_int_equal(w.u.dma_unmap.bitmap.pgsize, 0);
    assert_int_equal(w.u.dma_unmap.bitmap.size, 0);
    /* A reply with no payload at all is accepted too. */
    enc(&m, VFIO_USER_DMA_UNMAP, REPLY, NULL, 0, NULL, 0);
    check_rc("DMA_UNMAP reply", "empty", rc_of(&m, 0), 0);
}

/* What the capability walk saw. */
struct caps_seen {
    size_t n;
    struct {
        struct vfio_user_cap_header h;
        size_t off;   /* from the start of the region info */
        size_t avail; /* bytes the walk said may be read */
        uint8_t body[64];
    } cap[8];
    const uint8_t *base;
    int fail_at; /* return -ENOENT from this call (1-based), 0: never */
};

static int
collect_cap(const struct vfio_user_cap_header *h, const uint8_t *cap,
            size_t avail, void *opaque)
{
    struct caps_seen *s = opaque;
    size_t n = sizeof(s->cap[0].body);

    if (avail < n)
        n = avail;

    assert_true(s->n < N_ELEM(s->cap));
    s->cap[s->n].h = *h;
    s->cap[s->n].off = (size_t)(cap - s->base);
    s->cap[s->n].avail = avail;
    memcpy(s->cap[s->n].body, cap, n); /* reads inside the walk's bound */
    s->n++;
    if (s->fail_at != 0 && (size_t)s->fail_at == s->n)
        return -ENOENT;
    return 0;
}

/* Walk a heap copy of exactly @len bytes of @info. */
static int
walk_exact(const void *info, size_t len, struct caps_seen *seen)
{
    uint8_t *copy = malloc(len ? len : 1);
    int rc;

    assert_non_null(copy);
    memcpy(copy, info, len);
    seen->n = 0;
    seen->base = copy;
    rc = umdev_wire_region_caps_walk(copy, len, collect_cap, seen);
    free(copy);
    return rc;
}

static void
test_region_info(void **state)
{
    struct vfio_user_cap_sparse_mmap sp;
    struct vfio_user_sparse_area area[2];
    struct vfio_user_cap_type ty;
    struct caps_seen seen = { 0 };
    struct umdev_wire_msg w;
    struct msg m;
    size_t i;

    (void)state;
    w = round_trip_named("DEVICE_GET_REGION_INFO reply", &m);
    check_rc("GET_REGION_INFO reply", "walk",
             walk_exact(w.payload, w.payload_len, &seen), 0);
    assert_int_equal(seen.n, 2);
    assert_int_equal(seen.cap[0].h.id, VFIO_USER_REGION_CAP_SPARSE_MMAP);
    assert_int_equal(seen.cap[0].h.version, 1);
    assert_int_equal(seen.cap[0].h.next, 80);
    assert_int_equal(seen.cap[0].off, 32);
    assert_int_equal(seen.cap[0].avail, sizeof(k_region) - 32);
    assert_int_equal(seen.cap[1].h.id, VFIO_USER_REGION_CAP_TYPE);
    assert_int_equal(seen.cap[1].h.version, 1);
    assert_int_equal(seen.cap[1].h.next, 0);
    assert_int_equal(seen.cap[1].off, 80);
    assert_int_equal(seen.cap[1].avail, sizeof(ty));

    memcpy(&sp, seen.cap[0].body, sizeof(sp));
    memcpy(area, seen.cap[0].body + sizeof(sp), sizeof(area));
    assert_int_equal(sp.nr_areas, 2);
    for (i = 0; i < 2; i++)
        check_fields("sparse area", &area[i], &k_region.areas[i],
                     sparse_area_fields);
    memcpy(&ty, seen.cap[1].body, sizeof(ty));
    check_fields("type cap", &ty, &k_region.type, cap_type_fields);
}

/* Build the region reply with its chain changed, and walk it. */
static int
walk_modified(uint32_t cap_offset, uint32_t sparse_next, uint32_t type_next,
              struct caps_seen *seen)
{
    struct region_reply r = k_region;

    r.info.cap_offset = cap_offset;
    r.sparse.header.next = sparse_next;
    r.type.header.next = type_next;
    return walk_exact(&r, sizeof(r), seen);
}

static void
test_region_caps_walk_bad(void **state)
{
    struct caps_seen seen = { 0 };
    struct region_reply r;

    (void)state;
    /* The unmodified chain walks; the helpers are sound. */
    check_rc("walk", "valid", walk_modified(32, 80, 0, &seen), 0);
    assert_int_equal(seen.n, 2);
    /* Next pointing at itself. */
    check_rc("walk", "type -> itself", walk_modified(32, 80, 80, &seen),
             -EINVAL);
    assert_int_equal(seen.n, 2);
    check_rc("walk", "sparse -> itself", walk_modified(32, 32, 0, &seen),
             -EINVAL);
    assert_int_equal(seen.n, 1);
    /* Backwards: to the first cap, into the region info, below it. */
    check_rc("walk", "type -> sparse", walk_modified(32, 80, 32, &seen),
             -EINVAL);
    assert_int_equal(seen.n, 2);
    check_rc("walk", "type -> info", walk_modified(32, 80, 8, &seen), -EINVAL);
    check_rc("walk", "cap_offset inside info", walk_modified(16, 80, 0, &seen),
             -EINVAL);
    assert_int_equal(seen.n, 0);
    /* Into the middle of the previous header. */
    check_rc("walk", "sparse -> sparse + 4", walk_modified(32, 36, 0, &seen),
             -EINVAL);
    assert_int_equal(seen.n, 1);
    /* Misaligned. */
    check_rc("walk", "misaligned next", walk_modified(32, 82, 0, &seen),
             -EINVAL);
    assert_int_equal(seen.n, 1);
    check_rc("walk", "misaligned cap_offset", walk_modified(34, 80, 0, &seen),
             -EINVAL);
    assert_int_equal(seen.n, 0);
    /* Beyond the buffer: past it, and a header straddling its end. */
    check_rc("walk", "next past end", walk_modified(32, sizeof(r), 0, &seen),
             -EINVAL);
    check_rc("walk", "next straddles end",
             walk_modified(32, sizeof(r) - 4, 0, &seen), -EINVAL);
    check_rc("walk", "next far away", walk_modified(32, 0xfffffff8u, 0, &seen),
             -EINVAL);
    check_rc("walk", "cap_offset past end",
             walk_modified(sizeof(r), 80, 0, &seen), -EINVAL);
    assert_int_equal(seen.n, 0);
    /* argsz below the buffer bounds the chain: the type cap lies past it. */
    r = k_region;
    r.info.argsz = 80;
    check_rc("walk", "argsz cuts chain", walk_exact(&r, sizeof(r), &seen),
             -EINVAL);
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.cap[0].avail, 80 - 32);
    /* Shorter than the region info itself. */
    check_rc("walk", "len 31", walk_exact(&k_region, 31, &seen), -EINVAL);
    /* No CAPS flag, or no cap_offset: nothing to walk. */
    r = k_region;
    r.info.flags &= ~REGION_FLAG_CAPS;
    check_rc("walk", "no CAPS flag", walk_exact(&r, sizeof(r), &seen), 0);
    assert_int_equal(seen.n, 0);
    r = k_region;
    r.info.cap_offset = 0;
    check_rc("walk", "cap_offset 0", walk_exact(&r, sizeof(r), &seen), 0);
    assert_int_equal(seen.n, 0);
    /* A callback error stops the walk and is returned. */
    seen.fail_at = 1;
    check_rc("walk", "callback error", walk_modified(32, 80, 0, &seen),
             -ENOENT);
    assert_int_equal(seen.n, 1);
}

static void
test_region_io_fds(void **state)
{
    struct vfio_user_sub_region_ioeventfd sub;
    struct umdev_wire_msg w;
    struct msg m;
    size_t i;

    (void)state;
    w = round_trip_named("DEVICE_GET_REGION_IO_FDS reply", &m);
    assert_int_equal(w.data_len, 2 * sizeof(sub));
    for (i = 0; i < 2; i++) {
        memcpy(&sub, w.data + i * sizeof(sub), sizeof(sub));
        check_fields("sub-region", &sub, &k_io_fds.sub[i], sub_region_fields);
    }
}

static void
test_set_irqs(void **state)
{
    struct vfio_user_irq_set s;
    struct umdev_wire_msg w;
    struct msg m;

    (void)state;
    w = round_trip_named("SET_IRQS bool", &m);
    assert_int_equal(w.data[0], 1);
    assert_int_equal(w.data[1], 0);
    assert_int_equal(w.data[2], 1);
    /* Bools with MASK, and a trailing byte past count is not data. */
    s = k_irqs_bool;
    s.flags = IRQ_DATA_BOOL | IRQ_ACTION_MASK;
    s.argsz = 24;
    enc(&m, VFIO_USER_DEVICE_SET_IRQS, 0, &s, sizeof(s), "\1\1\0\7", 4);
    check_rc("SET_IRQS bool", "extra byte",
             umdev_wire_decode(m.b, m.len, 0, NULL, &w), 0);
    assert_int_equal(w.data_len, 3);
}

/* QEMU's set_irqs: argsz 20 for eventfds, chunks of valid or of -1 fds. */
static void
test_set_irqs_qemu_chunks(void **state)
{
    struct vfio_user_irq_set s = { 20, IRQ_DATA_EVENTFD | IRQ_ACTION_TRIGGER, 2,
                                   0, 3 };
    struct umdev_wire_msg w;
    struct msg m;

    (void)state;
    enc(&m, VFIO_USER_DEVICE_SET_IRQS, 0, &s, sizeof(s), NULL, 0);
    check_rc("QEMU SET_IRQS", "3 fds",
             umdev_wire_decode(m.b, m.len, 3, NULL, &w), 0);
    check_fields("QEMU SET_IRQS", &w.u.irq_set, &s, irq_set_fields);
    s.start = 3;
    s.count = 2;
    enc(&m, VFIO_USER_DEVICE_SET_IRQS, 0, &s, sizeof(s), NULL, 0);
    check_rc("QEMU SET_IRQS", "2 x -1", rc_of(&m, 0), 0);
}

static void
test_set_irqs_bad_flags(void **state)
{
    static const uint32_t bad_flags[] = {
        IRQ_DATA_NONE | IRQ_DATA_BOOL | IRQ_ACTION_TRIGGER,
        IRQ_DATA_NONE | IRQ_DATA_EVENTFD | IRQ_ACTION_TRIGGER,
        IRQ_DATA_BOOL | IRQ_DATA_EVENTFD | IRQ_ACTION_TRIGGER,
        IRQ_DATA_NONE | IRQ_ACTION_MASK | IRQ_ACTION_UNMASK,
        IRQ_DATA_NONE | IRQ_ACTION_MASK | IRQ_ACTION_TRIGGER,
        IRQ_DATA_NONE | IRQ_ACTION_UNMASK | IRQ_ACTION_TRIGGER,
        IRQ_DATA_NONE,      /* no action */
        IRQ_ACTION_TRIGGER, /* no data type */
        IRQ_DATA_NONE | IRQ_ACTION_TRIGGER | (1u << 6),
        IRQ_DATA_NONE | IRQ_ACTION_TRIGGER | (1u << 31),
    };
    struct vfio_user_irq_set s;
    struct msg m;
    size_t i;

    (void)state;
    for (i = 0; i < N_ELEM(bad_flags); i++) {
        s = k_irqs_none;
        s.flags = bad_flags[i];
        enc(&m, VFIO_USER_DEVICE_SET_IRQS, 0, &s, sizeof(s), NULL, 0);
        if (rc_of(&m, 0) != -EINVAL)
            fail_msg("SET_IRQS flags %#x: rc %d, want %d", bad_flags[i],
                     rc_of(&m, 0), -EINVAL);
    }
}

static void
test_write_multi(void **state)
{
    struct vfio_user_write_multi_entry e;
    struct umdev_wire_msg w;
    struct msg m;
    size_t i;

    (void)state;
    w = round_trip_named("REGION_WRITE_MULTI", &m);
    assert_int_equal(w.u.write_multi.count, 3);
    for (i = 0; i < 3; i++) {
        umdev_wire_write_multi_entry(&w, i, &e);
        check_fields("entry", &e, &k_multi.e[i], write_multi_entry_fields);
    }
    w = round_trip_named("REGION_WRITE_MULTI reply", &m);
    assert_int_equal(w.u.write_multi.count, 3);
}

/* A WRITE_MULTI of @n copies of entry 0, wr_cnt @wr_cnt, entry @bad_i
 * changed to count @bad_count (when @bad_i < n). */
static int
write_multi_rc(uint64_t wr_cnt, size_t n, size_t bad_i, uint32_t bad_count)
{
    struct vfio_user_write_multi_entry e[UMDEV_WIRE_MAX_WRITE_MULTI + 1];
    struct msg m;
    size_t i;

    assert_true(n <= N_ELEM(e));
    for (i = 0; i < n; i++) {
        e[i] = k_multi.e[0];
        e[i].offset += 4 * i;
    }
    if (bad_i < n)
        e[bad_i].count = bad_count;
    enc(&m, VFIO_USER_REGION_WRITE_MULTI, 0, &wr_cnt, 8, e, n * sizeof(e[0]));
    return rc_of(&m, 0);
}

static void
test_write_multi_bad(void **state)
{
    const size_t max = UMDEV_WIRE_MAX_WRITE_MULTI;

    (void)state;
    check_rc("WRITE_MULTI", "3 entries", write_multi_rc(3, 3, 3, 0), 0);
    check_rc("WRITE_MULTI", "max entries", write_multi_rc(max, max, max, 0), 0);
    check_rc("WRITE_MULTI", "entry count 0", write_multi_rc(3, 3, 1, 0),
             -EINVAL);
    check_rc("WRITE_MULTI", "entry count 9", write_multi_rc(3, 3, 2, 9),
             -EINVAL);
    check_rc("WRITE_MULTI", "entry count 8", write_multi_rc(3, 3, 2, 8), 0);
    check_rc("WRITE_MULTI", "wr_cnt 0", write_multi_rc(0, 0, 0, 0), -EINVAL);
    check_rc("WRITE_MULTI", "wr_cnt 0, 1 entry", write_multi_rc(0, 1, 1, 0),
             -EINVAL);
    check_rc("WRITE_MULTI", "wr_cnt over max",
             write_multi_rc(max + 1, max + 1, max + 1, 0), -EINVAL);
    check_rc("WRITE_MULTI", "wr_cnt 2^32 + 1",
             write_multi_rc((1ull << 32) + 1, 1, 1, 0), -EINVAL);
    check_rc("WRITE_MULTI", "wr_cnt 4, 3 entries", write_multi_rc(4, 3, 3, 0),
             -EINVAL);
    check_rc("WRITE_MULTI", "wr_cnt 2, 3 entries", write_multi_rc(2, 3, 3, 0),
             -EINVAL);
}

/* The spec's 12-byte DMA_WRITE reply; the 16-byte one others send is a
 * sample of its own. */
static void
test_dma_write_reply(void **state)
{
    struct umdev_wire_msg w;
    struct msg m;

    (void)state;
    w = round_trip_named("DMA_WRITE reply", &m);
    assert_int_equal(m.len, HDR + 12);
    assert_int_equal(w.u.dma_access.addr, k_dw_reply.addr);
    assert_int_equal(w.u.dma_access.count, k_dw_reply.count);
}

static void
test_device_reset(void **state)
{
    struct msg m;

    (void)state;
    round_trip_named("DEVICE_RESET", &m);
    assert_int_equal(m.len, 16);
    round_trip_named("DEVICE_RESET reply", &m);
    assert_int_equal(m.len, 16);
}

static void
test_device_feature(void **state)
{
    struct umdev_wire_msg w;
    uint64_t flags;
    struct msg m;

    (void)state;
    w = round_trip_named("DEVICE_FEATURE reply", &m);
    memcpy(&flags, w.data, sizeof(flags));
    assert_int_equal(flags, MIGRATION_STOP_COPY | MIGRATION_PRE_COPY);
}

/* A DEVICE_FEATURE with @flags, argsz @argsz and @data, decoded. */
static int
feature_rc(bool reply, uint32_t argsz, uint32_t flags, const void *data,
           size_t data_len, struct umdev_wire_msg *w)
{
    struct vfio_user_device_feature f = { argsz, flags };
    static struct msg m;
    /* An exact-size copy, so ASan sees a read past the message; it stays
     * alive while @w points into it (until the next call). */
    static uint8_t *copy;
    struct umdev_wire_limits lim = { 4096, 16 };

    enc(&m, VFIO_USER_DEVICE_FEATURE, reply ? REPLY : 0, &f, sizeof(f), data,
        data_len);
    free(copy);
    copy = malloc(m.len);
    assert_non_null(copy);
    memcpy(copy, m.b, m.len);
    return umdev_wire_decode(copy, m.len, 0, &lim, w);
}

#define GET VFIO_USER_DEVICE_FEATURE_GET
#define SET VFIO_USER_DEVICE_FEATURE_SET
#define PROBE VFIO_USER_DEVICE_FEATURE_PROBE

static void
test_feature_flags(void **state)
{
    struct umdev_wire_msg w;

    (void)state;
    /* GET and SET exclude each other except with PROBE; one is needed. */
    assert_int_equal(feature_rc(false, 8, GET | SET | 2, NULL, 0, &w), -EINVAL);
    assert_int_equal(feature_rc(false, 8, 2, NULL, 0, &w), -EINVAL);
    assert_int_equal(feature_rc(false, 8, PROBE | GET | SET | 2, NULL, 0, &w),
                     0);
    assert_true(w.u.feature.probe && w.u.feature.get && w.u.feature.set);
    assert_int_equal(w.u.feature.index, 2);
    /* Bits above PROBE are not defined. */
    assert_int_equal(feature_rc(false, 8, PROBE | (1u << 19) | 1, NULL, 0, &w),
                     -EINVAL);
    /* An index the spec does not define decodes: the server refuses it. */
    assert_int_equal(feature_rc(false, 8, GET | 0x1234, NULL, 0, &w), 0);
    assert_int_equal(w.u.feature.index, 0x1234);
}

static void
test_feature_mig_state(void **state)
{
    struct vfio_user_feature_mig_state st = { VFIO_USER_DEVICE_STATE_STOP, 0 };
    uint64_t mflags = VFIO_USER_MIGRATION_STOP_COPY;
    const uint32_t ms = VFIO_USER_FEATURE_MIG_DEVICE_STATE;
    struct umdev_wire_msg w;

    (void)state;
    assert_int_equal(feature_rc(false, 16, SET | ms, &st, 8, &w), 0);
    assert_int_equal(w.u.feature.d.mig_state.device_state,
                     VFIO_USER_DEVICE_STATE_STOP);
    /* Short, long, or an argsz that cannot take the reply. */
    assert_int_equal(feature_rc(false, 16, SET | ms, &st, 4, &w), -EINVAL);
    assert_int_equal(feature_rc(false, 24, SET | ms, &mflags, 8, &w), 0);
    assert_int_equal(feature_rc(false, 16, SET | ms, NULL, 0, &w), -EINVAL);
    assert_int_equal(feature_rc(false, 15, SET | ms, &st, 8, &w), -EINVAL);
    /* GET: no data in, argsz for the state out. */
    assert_int_equal(feature_rc(false, 16, GET | ms, NULL, 0, &w), 0);
    assert_int_equal(feature_rc(false, 15, GET | ms, NULL, 0, &w), -EINVAL);
    assert_int_equal(feature_rc(false, 16, GET | ms, &st, 8, &w), -EINVAL);
    /* Replies carry exactly the data the client reads. */
    assert_int_equal(feature_rc(true, 16, GET | ms, &st, 8, &w), 0);
    assert_int_equal(w.u.feature.d.mig_state.device_state, 1);
    assert_int_equal(feature_rc(true, 16, GET | ms, &st, 7, &w), -EINVAL);
    assert_int_equal(
        feature_rc(true, 16, GET | VFIO_USER_FEATURE_MIGRATION, &mflags, 8, &w),
        0);
    assert_int_equal(w.u.feature.d.migration.flags, mflags);
    assert_int_equal(
        feature_rc(false, 15, GET | VFIO_USER_FEATURE_MIGRATION, NULL, 0, &w),
        -EINVAL);
}

static void
test_feature_logging(void **state)
{
    struct {
        struct vfio_user_dma_logging_control c;
        struct vfio_user_dma_logging_range r[2];
    } start = { { 4096, 2, 0 }, { { 0x10000, 0x4000 }, { 0x40000, 0x1000 } } };
    struct vfio_user_dma_logging_range r;
    struct {
        struct vfio_user_dma_logging_report r;
        uint64_t bitmap[2];
    } rep = { { 0x10000, 65 * 4096, 4096 }, { 0, 0 } };
    const uint32_t st = SET | VFIO_USER_FEATURE_DMA_LOGGING_START;
    const uint32_t rp = GET | VFIO_USER_FEATURE_DMA_LOGGING_REPORT;
    struct umdev_wire_msg w;

    (void)state;
    assert_int_equal(feature_rc(false, 8, st, &start, sizeof(start), &w), 0);
    assert_int_equal(w.u.feature.d.log_start.num_ranges, 2);
    umdev_wire_log_range(&w, 1, &r);
    assert_int_equal(r.iova, 0x40000);
    /* Ranges: exactly num_ranges, none empty or wrapping. */
    assert_int_equal(feature_rc(false, 8, st, &start, sizeof(start) - 1, &w),
                     -EINVAL);
    assert_int_equal(feature_rc(false, 8, st, &start, 16 + 16, &w), -EINVAL);
    start.c.num_ranges = UMDEV_WIRE_MAX_LOG_RANGES + 1;
    assert_int_equal(feature_rc(false, 8, st, &start, sizeof(start), &w),
                     -E2BIG);
    {
        /* At the limit, every range there. */
        static struct {
            struct vfio_user_dma_logging_control c;
            struct vfio_user_dma_logging_range r[UMDEV_WIRE_MAX_LOG_RANGES];
        } many;
        size_t i;

        many.c = (struct vfio_user_dma_logging_control){
            4096, UMDEV_WIRE_MAX_LOG_RANGES, 0
        };
        for (i = 0; i < UMDEV_WIRE_MAX_LOG_RANGES; i++)
            many.r[i] = (struct vfio_user_dma_logging_range){ i << 20, 4096 };
        assert_int_equal(feature_rc(false, 8, st, &many, sizeof(many), &w), 0);
        umdev_wire_log_range(&w, UMDEV_WIRE_MAX_LOG_RANGES - 1, &r);
        assert_int_equal(r.iova, (uint64_t)(UMDEV_WIRE_MAX_LOG_RANGES - 1)
                                     << 20);
    }
    start.c.num_ranges = 2;
    start.r[1].length = 0;
    assert_int_equal(feature_rc(false, 8, st, &start, sizeof(start), &w),
                     -EINVAL);
    start.r[1] =
        (struct vfio_user_dma_logging_range){ UINT64_MAX - 4095, 8192 };
    assert_int_equal(feature_rc(false, 8, st, &start, sizeof(start), &w),
                     -EINVAL);
    start.r[1].length = 4096; /* ends exactly at 2^64: wraps to 0 */
    assert_int_equal(feature_rc(false, 8, st, &start, sizeof(start), &w),
                     -EINVAL);
    start.r[1].length = 4095;
    assert_int_equal(feature_rc(false, 8, st, &start, sizeof(start), &w), 0);
    start.c.page_size = 4096 + 512;
    assert_int_equal(feature_rc(false, 8, st, &start, sizeof(start), &w),
                     -EINVAL);
    start.c = (struct vfio_user_dma_logging_control){ 4096, 0, 0 };
    assert_int_equal(feature_rc(false, 8, st, &start, 16, &w), 0);
    /* STOP takes no data. */
    assert_int_equal(feature_rc(false, 8,
                                SET | VFIO_USER_FEATURE_DMA_LOGGING_STOP,
                                &start, 16, &w),
                     -EINVAL);

    /* REPORT: 65 pages need two words; argsz must take them. */
    assert_int_equal(umdev_wire_log_bitmap_size(65 * 4096, 4096), 16);
    assert_int_equal(umdev_wire_log_bitmap_size(1, 1u << 30), 8);
    assert_int_equal(umdev_wire_log_bitmap_size(UINT64_MAX, 1),
                     (UINT64_MAX / 64 + 1) * 8);
    assert_int_equal(feature_rc(false, 8 + 24 + 16, rp, &rep, 24, &w), 0);
    assert_int_equal(w.u.feature.d.log_report.length, 65 * 4096);
    assert_int_equal(feature_rc(false, 8 + 24 + 15, rp, &rep, 24, &w), -EINVAL);
    assert_int_equal(feature_rc(false, 64, rp, &rep, 23, &w), -EINVAL);
    assert_int_equal(feature_rc(true, 8 + 24 + 16, rp, &rep, sizeof(rep), &w),
                     0);
    assert_int_equal(w.u.feature.tail_len, 16);
    assert_int_equal(feature_rc(true, 48, rp, &rep, sizeof(rep) - 8, &w),
                     -EINVAL);
    rep.r.page_size = 3 * 4096;
    assert_int_equal(feature_rc(false, 64, rp, &rep, 24, &w), -EINVAL);
    rep.r.page_size = 4096;
    rep.r.iova = UINT64_MAX - 4095;
    assert_int_equal(feature_rc(false, 64, rp, &rep, 24, &w), -EINVAL);
    /* A bitmap larger than one message can carry (4096 here). */
    rep.r =
        (struct vfio_user_dma_logging_report){ 0, 4097ull * 8 * 4096, 4096 };
    assert_int_equal(feature_rc(false, UINT32_MAX, rp, &rep, 24, &w), -E2BIG);
    rep.r.length = 4096ull * 8 * 4096;
    assert_int_equal(feature_rc(false, UINT32_MAX, rp, &rep, 24, &w), 0);
    rep.r.length = 0;
    assert_int_equal(feature_rc(false, UINT32_MAX, rp, &rep, 24, &w), -EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_sample_round_trips),
        cmocka_unit_test(test_variants),
        cmocka_unit_test(test_version_qemu_replay),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_version_json_bounds),
        cmocka_unit_test(test_dma_unmap),
        cmocka_unit_test(test_region_info),
        cmocka_unit_test(test_region_caps_walk_bad),
        cmocka_unit_test(test_region_io_fds),
        cmocka_unit_test(test_set_irqs),
        cmocka_unit_test(test_set_irqs_qemu_chunks),
        cmocka_unit_test(test_set_irqs_bad_flags),
        cmocka_unit_test(test_write_multi),
        cmocka_unit_test(test_write_multi_bad),
        cmocka_unit_test(test_dma_write_reply),
        cmocka_unit_test(test_device_reset),
        cmocka_unit_test(test_device_feature),
        cmocka_unit_test(test_feature_flags),
        cmocka_unit_test(test_feature_mig_state),
        cmocka_unit_test(test_feature_logging),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
