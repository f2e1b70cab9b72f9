/*
 * What a client knows of the vfio-user commands and of VERSION as QEMU
 * proposes it, for the tests that probe a server's edges: every command's
 * fixed part and how a server answers a well-formed one, the capabilities
 * QEMU names, the VERSION payload. Used by tests/func/test_func_protocol.c
 * (against the test device) and compiled into the conformance kit's
 * protocol check (against any device), so it is pure data and byte
 * building: no I/O, no allocation, no assertions, no mutable state, and
 * nothing else of the kit. Thread-safe.
 */
#ifndef UMDEV_KIT_PROTO_H
#define UMDEV_KIT_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* QEMU 11.1.3's VERSION capabilities, byte for byte (its NUL included
 * when sent with sizeof). */
#define KIT_QEMU_VERSION_JSON                                                  \
    "{\"capabilities\":{\"max_msg_fds\":16,\"max_data_xfer_size\":1048576,"    \
    "\"pgsizes\":4096,\"max_dma_maps\":65535,\"migration\":{\"pgsize\":"       \
    "4096,\"max_bitmap_size\":268435456},\"write_multiple\":true}}"

/* Commands 1..18 of the spec, 14 (the retired DIRTY_PAGES) among them. */
#define KIT_NCMDS 18
/* The command number 14 had; a server answers it ENOSYS. */
#define KIT_CMD_RETIRED 14

struct kit_cmd {
    uint16_t cmd;
    size_t fixed;   /* its fixed part's size */
    bool has_argsz; /* argsz is the fixed part's first word */
    int good_err;   /* a server's answer to a well-formed one (0: success) */
};

/* Command i + 1 at [i]. */
extern const struct kit_cmd kit_cmds[KIT_NCMDS];

/* What a well-formed message may touch (kit_good_payload()): a test
 * picks accesses that leave nothing behind. */
struct kit_good {
    uint64_t dma_addr;    /* DMA_MAP of one page here (no fd), and the
                           * address of DMA_READ/DMA_WRITE (4 bytes) */
    uint32_t irq_index;   /* SET_IRQS: a software trigger of its vector 0 */
    uint64_t read_offset; /* REGION_READ of read_count bytes */
    uint32_t read_region, read_count;
    uint64_t write_offset; /* REGION_WRITE and REGION_WRITE_MULTI */
    uint32_t write_region, write_count; /* 1..8 */
    uint8_t write_data[8];
};

/* The largest payload kit_good_payload() builds. */
#define KIT_GOOD_MAX 64

/**
 * kit_good_payload() - a well-formed payload for @cmd (one of kit_cmds[])
 * in @buf, zeroed first: VERSION 0.0 with no JSON, DMA_UNMAP of all,
 * argsz alone for the queries and migration data, a probe of feature 0
 * (not defined by vfio-user) for FEATURE, the rest from @g.
 * Return: its length (0 for DEVICE_RESET, and for a command not in
 * kit_cmds[]).
 */
size_t kit_good_payload(const struct kit_good *g, uint16_t cmd,
                        uint8_t buf[KIT_GOOD_MAX]);

/** Whether QEMU's VERSION (KIT_QEMU_VERSION_JSON) proposes capability
 * @key: what a reply may name (spec "Version"). */
bool kit_qemu_proposes(const char *key);

/**
 * kit_version_payload() - a VERSION payload in @buf: @major, @minor, then
 * @json_len bytes of @json (its NUL counted in @json_len if it is sent).
 * Return: its length, or 0 if it does not fit @cap bytes.
 */
size_t kit_version_payload(uint8_t *buf, size_t cap, uint16_t major,
                           uint16_t minor, const char *json, size_t json_len);

#endif /* UMDEV_KIT_PROTO_H */
