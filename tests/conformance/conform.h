/*
 * umdev-conform: the conformance kit's shared state and helpers. The kit
 * connects to one device's vfio-user socket as a client (many times over:
 * the server serves one client at a time) and runs named checks; each
 * check fills a struct cf_result with a verdict and its evidence.
 *
 * Files: main.c (command line, discovery, running, output), rawc.c (a raw
 * vfio-user connection for malformed and random traffic), profile.c (the
 * optional mediation profile), proc.c (the server process: PID, /proc,
 * daemon counters), rules.c (the rules failures are judged by, spec or
 * policy), one check_*.c per check. README.md says what each check does
 * and its pass rule.
 */
#ifndef UMDEV_CONFORM_H
#define UMDEV_CONFORM_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "umdev/client.h"
#include "umdev/parent.h"
#include "umdev/wire.h"

/* Regions and IRQ indices the kit keeps track of (PCI has 9 and 5). */
#define CF_MAX_REGIONS 16u
#define CF_MAX_IRQS 8u
/* Config space the kit reads: conventional or PCI Express. */
#define CF_CFG_MAX 4096u
/* Trapped bytes of one region probed for registers without a profile. */
#define CF_PROBE_MAX 4096u
/* Registers the reset check compares, at most. */
#define CF_MAX_REGS 4096u
/* Default bound on every wait for the server, in milliseconds. */
#define CF_DEFAULT_TIMEOUT_MS 5000
#define CF_DEFAULT_FUZZ_SECONDS 10
#define CF_DEFAULT_LEAK_CYCLES 200
/* Evidence text kept per check. */
#define CF_EVIDENCE_MAX 2048u

#define CF_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* QEMU 11.1.3's VERSION capabilities, byte for byte as it sends them. */
#define CF_QEMU_VERSION_JSON                                                   \
    "{\"capabilities\":{\"max_msg_fds\":16,\"max_data_xfer_size\":1048576,"    \
    "\"pgsizes\":4096,\"max_dma_maps\":65535,\"migration\":{\"pgsize\":"       \
    "4096,\"max_bitmap_size\":268435456},\"write_multiple\":true}}"

struct cf_profile;

/* One region as GET_REGION_INFO described it. */
struct cf_region {
    uint32_t flags; /* VFIO_REGION_INFO_FLAG_* */
    uint64_t size;
    size_t nr_areas; /* mmappable areas (none if not mappable) */
    struct vfio_user_sparse_area areas[UMDEV_WIRE_MAX_SPARSE_AREAS];
};

/* What the kit learned at its first attach. */
struct cf_device {
    uint32_t flags; /* VFIO_DEVICE_FLAGS_* */
    uint32_t num_regions, num_irqs;
    struct cf_region regions[CF_MAX_REGIONS];
    struct umdev_client_irq_info irqs[CF_MAX_IRQS];
    uint32_t server_max_fds;  /* the server's max_msg_fds */
    uint32_t server_max_xfer; /* the server's max_data_xfer_size */
    bool pci;
    uint8_t cfg[CF_CFG_MAX]; /* config space at attach (PCI only) */
    size_t cfg_len;
    uint16_t vendor, device;
};

/* A register the reset check reads back. */
struct cf_reg {
    uint32_t region;
    uint64_t offset;
    uint32_t width;   /* 1, 2, 4 or 8 */
    bool is_volatile; /* changes by itself: not compared */
    bool writable;    /* the reset check may mutate it */
    char name[40];
    uint64_t value; /* as read at attach */
    int read_err;   /* a failed read at attach (positive errno), or 0 */
};

struct cf_baseline {
    struct cf_reg *regs;
    size_t nregs;
    const char *source; /* "profile" or "probe" */
    size_t probe_reads; /* reads the probe spent */
};

/*
 * What a failure rests on. SPEC: a requirement ("must") of the vfio-user
 * specification (QEMU docs/interop/vfio-user.rst) or of the PCI
 * specifications it defers to for a PCI device's config space. POLICY:
 * what umdev holds its own servers to beyond that (docs/PROTOCOL.md, the
 * devices' contracts, the mediation profile, "should" passages of the
 * spec). ERROR is no rule: the kit could not carry the check out (it
 * cannot attach, set up, or has nothing to drive the type with), so it
 * cannot judge, and that fails the run at every level.
 */
enum cf_level {
    CF_LEVEL_SPEC,
    CF_LEVEL_POLICY,
    CF_LEVEL_ERROR,
    CF_NLEVELS,
};

/* Every rule a check judges by (rules.c; the table in README.md). */
enum cf_rule_id {
    R_PROTO_VERSION_ACCEPT,
    R_PROTO_VERSION_REPLY,
    R_PROTO_VERSION_DATA,
    R_PROTO_VERSION_PGSIZES,
    R_PROTO_VERSION_REFUSE,
    R_PROTO_VERSION_REFUSAL,
    R_PROTO_VERSION_SECOND,
    R_PROTO_BEFORE_VERSION,
    R_PROTO_REPLY_REQUIRED,
    R_PROTO_REPLY_FORM,
    R_PROTO_COMMAND_CORE,
    R_PROTO_REPLY_PAYLOAD,
    R_PROTO_DMA_OVERLAP,
    R_PROTO_COMMAND_OTHER,
    R_PROTO_MALFORMED,
    R_PROTO_KEEPS_CONNECTION,
    R_PROTO_UNKNOWN_COMMAND,
    R_PROTO_POSTED_SILENT,
    R_PROTO_POSTED_ORDER,
    R_PROTO_REGION_BOUNDS,
    R_PROTO_BAD_HEADER,
    R_PROTO_FDS_CLOSED,
    R_CONFIG_ACCESS,
    R_CONFIG_WRITE_ACCEPTED,
    R_CONFIG_HEADER_RO,
    R_CONFIG_COMMAND_STATUS,
    R_CONFIG_INTERRUPT_LINE,
    R_CONFIG_BAR,
    R_CONFIG_BAR_SIZE,
    R_CONFIG_CAPABILITIES,
    R_CONFIG_MSI,
    R_CONFIG_MSIX,
    R_RESET_OFFERED,
    R_RESET_SUCCEEDS,
    R_RESET_POWER_ON,
    R_RESET_REGISTERS,
    R_DATAPATH_DATA,
    R_DATAPATH_MSGS_PER_IO,
    R_DATAPATH_COUNTERS,
    R_FUZZ_REPLY,
    R_FUZZ_POSTED_SILENT,
    R_FUZZ_PROFILE,
    R_FUZZ_IDENTITY,
    R_FUZZ_SURVIVES,
    R_LEAKS_DETACH,
    R_LEAKS_MEMORY,
    CF_NRULES,
};

struct cf_rule {
    const char *id; /* "protocol.version.refuse" */
    enum cf_level level;
    const char *rule;  /* what holds when it passes */
    const char *basis; /* the spec passage, or what the policy rests on */
};

extern const struct cf_rule cf_rules[CF_NRULES];
const char *cf_level_name(enum cf_level level);
/* --list-rules: the table, as text or JSON, on stdout. */
void cf_rules_print(bool json);

struct cf_level_result {
    unsigned int nfail;
    char fails[CF_EVIDENCE_MAX];
};

struct cf_result {
    const char *name;
    bool pass; /* no failure of any level so far */
    struct cf_level_result level[CF_NLEVELS];
    unsigned int rule_fails[CF_NRULES];
    char notes[CF_EVIDENCE_MAX];
    double seconds;
};

struct conform {
    /* Options. */
    const char *socket;
    const char *profile_path;
    const char *host_end;    /* serial load generator's port-0 host end */
    const char *daemon_uuid; /* read the server's counters and PID there */
    const char *umdevctl;    /* the CLI to ask (default: from PATH) */
    pid_t server_pid;        /* 0: find it */
    int timeout_ms;
    int fuzz_seconds;
    uint64_t seed;
    bool seed_given;
    unsigned int leak_cycles;
    bool verbose;
    /* A parent plug-in whose exercise() drives the datapath check
     * (instead of a built-in generator), and the type under test. */
    const char *plugin_path;
    const char *type;

    /* State. */
    struct cf_profile *profile;
    struct cf_device dev;
    struct cf_baseline base;
    pid_t peercred_pid;     /* SO_PEERCRED of the first connection */
    const char *pid_source; /* how server_pid was found */
    /* The plug-in's parent, once loaded (plugin.c); NULL if none. */
    const struct umdev_parent *plugin;
    void *plugin_dl;
};

/* ------------------------------------------------------------------ */
/* A parent plug-in's load generator (plugin.c)                       */

/* Load cf->plugin_path and check it offers cf->type. Return: 0, or
 * -errno with @err saying why. */
int cf_plugin_load(struct conform *cf, char *err, size_t errlen);
void cf_plugin_unload(struct conform *cf);

/* ------------------------------------------------------------------ */
/* Results (main.c)                                                   */

/* A failure against @rule, counted at its level; the first few of each
 * level are kept word for word. */
void cf_fail(struct cf_result *r, enum cf_rule_id rule, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The kit could not carry the check out: no verdict, the run fails. */
void cf_error(struct cf_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Evidence that is not a failure. */
void cf_note(struct cf_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A progress line on stderr with --verbose. */
void cf_log(const struct conform *cf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "EINVAL" for 22, "E#1234" for an unknown number (static buffer for the
 * latter: one at a time). */
const char *cf_errname(int err);
double cf_now(void);

/* A negotiated client with the kit's timeout; logs only errors. */
int cf_client_connect(const struct conform *cf, struct umdev_client **out);

/* Region @index is present (listed and of nonzero size). */
bool cf_region_present(const struct conform *cf, uint32_t index);
/* [@off, @off+@len) lies inside one mmappable area of @index. */
bool cf_in_mmap_area(const struct conform *cf, uint32_t index, uint64_t off,
                     uint64_t len);

/* Little-endian config helpers over a byte buffer. */
uint32_t cf_le(const uint8_t *p, unsigned int len);
void cf_put_le(uint8_t *p, unsigned int len, uint64_t v);

/* ------------------------------------------------------------------ */
/* Raw connection (rawc.c)                                            */

struct rawc_dma {
    uint64_t iova, size;
    uint8_t *host; /* our view; NULL: none (answered with EFAULT) */
    uint32_t prot;
};

/*
 * A vfio-user connection that sends exactly the bytes it is told to and
 * checks replies itself. While it waits it serves the server's
 * DMA_READ/DMA_WRITE from the ranges registered with rawc_dma_add().
 */
struct rawc {
    int fd;
    uint16_t next_id;
    int timeout_ms;
    struct rawc_dma *dma;
    size_t ndma, cap_dma;
    uint64_t served;   /* server commands answered */
    uint64_t unserved; /* of those, answered with an error */
};

/* A received message: header, then the payload (malloc'd, owned). */
struct rawc_msg {
    struct vfio_user_header hdr;
    uint8_t *payload;
    size_t len; /* payload bytes */
    int fds[8]; /* descriptors that came with it (closed by free) */
    size_t nfds;
    size_t dropped_fds; /* beyond fds[] (closed on arrival) */
};

int rawc_connect(struct rawc *c, const char *path, int timeout_ms);
void rawc_close(struct rawc *c);
void rawc_msg_free(struct rawc_msg *m);
/* A fresh message id. */
uint16_t rawc_id(struct rawc *c);

/* Send header (msg_size = 16 + @len) and @payload, @fds with the first
 * byte. Return: 0 or -errno. */
int rawc_send(struct rawc *c, uint16_t id, uint16_t cmd, uint32_t flags,
              const void *payload, size_t len, const int *fds, size_t nfds);
/* Send raw bytes (stream-level tests). */
int rawc_send_bytes(struct rawc *c, const void *buf, size_t len, const int *fds,
                    size_t nfds);
/*
 * Receive the next reply within @timeout_ms, serving server commands in
 * between. Return: 0 with *@m filled; -ETIMEDOUT; -ECONNRESET on EOF;
 * -EPROTO on a message that cannot be framed.
 */
int rawc_recv_reply(struct rawc *c, int timeout_ms, struct rawc_msg *m);
/* Nothing arrives (other than served server commands) within @ms. */
bool rawc_quiet(struct rawc *c, int ms);

/* Register guest memory the server may reach through messages. */
int rawc_dma_add(struct rawc *c, uint64_t iova, uint64_t size, void *host,
                 uint32_t prot);
void rawc_dma_del(struct rawc *c, uint64_t iova, uint64_t size);

/*
 * Send a command and wait for its reply. Return: 0 and *@m on a reply with
 * the same id and command (error or not); -EBADMSG if another reply came
 * (*@m holds it); the transport errors of rawc_recv_reply().
 */
int rawc_call(struct rawc *c, uint16_t cmd, uint32_t flags, const void *payload,
              size_t len, const int *fds, size_t nfds, struct rawc_msg *m);
/* VERSION with @json (NULL: QEMU's); the reply must be a success. */
int rawc_negotiate(struct rawc *c, const char *json);

/* Describe a reply for evidence: "ok", "EINVAL", "no reply", ... */
const char *rawc_outcome(int rc, const struct rawc_msg *m, char *buf,
                         size_t len);

/* ------------------------------------------------------------------ */
/* Profile (profile.c)                                                */

enum cf_access {
    CF_ACCESS_R = 1,
    CF_ACCESS_W = 2,
};

struct cf_profile_reg {
    char *name;
    uint64_t offset;
    uint64_t size;
    uint32_t widths; /* bit n: n-byte accesses allowed */
    bool bulk;       /* memory-like: any length inside, any alignment */
    uint32_t access; /* CF_ACCESS_* */
    bool data_path;
    bool is_volatile;
};

struct cf_profile_region {
    uint32_t index;
    char *name; /* "BAR0"; made up when absent */
    uint64_t size;
    bool has_size;
    struct cf_profile_reg *regs;
    size_t nregs;
    struct vfio_user_sparse_area *mmap;
    size_t nmmap;
};

struct cf_profile {
    char *type;
    struct cf_profile_region *regions;
    size_t nregions;
    char *dp_kind; /* "pio", "ring", or NULL */
    bool has_max_msgs;
    double max_msgs_per_io;
};

/* Load @path. Return: 0, or -errno with @err saying what and where. */
int cf_profile_load(const char *path, struct cf_profile **out, char *err,
                    size_t errlen);
void cf_profile_free(struct cf_profile *p);
const struct cf_profile_region *cf_profile_region(const struct cf_profile *p,
                                                  uint32_t index);
/*
 * Whether the profile allows a @width-byte access at @off of region @index
 * in direction @access: inside one mmap area, or inside one declared
 * register with that width and direction. Config space is not covered
 * (lib/pci's write masks govern it): always true.
 */
bool cf_profile_allows(const struct cf_profile *p, uint32_t index, uint64_t off,
                       uint32_t width, uint32_t access);

/* ------------------------------------------------------------------ */
/* The server process (proc.c)                                        */

/* Find the server's PID (option, daemon, or SO_PEERCRED). */
int cf_find_server_pid(struct conform *cf, char *err, size_t errlen);
/* Descriptors open in @pid, or -errno. */
int cf_proc_fd_count(pid_t pid);
/* Lines of /proc/PID/maps, or -errno. */
int cf_proc_map_count(pid_t pid);
/* VmRSS in KiB, or -errno. */
long cf_proc_rss_kib(pid_t pid);
bool cf_proc_alive(pid_t pid);

/* The daemon's view of the instance (umdevctl --json info UUID). */
struct cf_daemon_info {
    pid_t pid;
    uint64_t msgs, errors, region_reads, region_writes;
};
int cf_daemon_info(const struct conform *cf, struct cf_daemon_info *out,
                   char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/* Checks                                                             */

void check_protocol(struct conform *cf, struct cf_result *r);
void check_config(struct conform *cf, struct cf_result *r);
void check_reset(struct conform *cf, struct cf_result *r);
void check_datapath(struct conform *cf, struct cf_result *r);
void check_fuzz(struct conform *cf, struct cf_result *r);
void check_leaks(struct conform *cf, struct cf_result *r);

/* The reset check's register set (check_reset.c), read at first attach. */
int cf_baseline_collect(struct conform *cf, struct umdev_client *c, char *err,
                        size_t errlen);
int cf_reg_read(struct umdev_client *c, const struct cf_reg *reg, uint64_t *v);

#endif /* UMDEV_CONFORM_H */
