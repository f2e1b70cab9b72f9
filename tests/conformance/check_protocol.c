/*
 * protocol: vfio-user conformance on raw connections, every message type
 * good and bad. Each case is judged twice: by what the spec requires
 * (a reply to every command of its table, the reply's form, the VERSION
 * rules, the order of posted commands) and by umdev's policy (the errno
 * docs/PROTOCOL.md documents, the connection staying up after a refusal).
 * A server may close the connection on a VERSION it cannot support, or on
 * a message breaking a limit it advertised: a spec failure only if it
 * leaves the client hanging instead (rules.c has each rule's basis).
 *
 *  - VERSION exactly as QEMU 11.1.3 sends it: reply 0.0, JSON ending with
 *    its NUL at the end of the message, capabilities a subset of those
 *    proposed; a second VERSION, commands before VERSION, and malformed
 *    VERSIONs are refused and the connection stays usable.
 *  - For each command 1..18: the well-formed message; a short payload;
 *    a bad argsz; an oversized message; descriptors on a message that
 *    takes none; more descriptors than the server's max_msg_fds. Each bad
 *    one gets an error reply (header only, the right errno) and the
 *    connection still answers DEVICE_GET_INFO after it. Unknown commands
 *    get ENOSYS.
 *  - Posted (No_reply) commands never get a reply, even bad ones, and a
 *    posted write is applied before the next reply.
 *  - Region reads and writes outside a region, on absent regions and on
 *    indices past the last are refused; a count over max_data_xfer_size
 *    gets E2BIG.
 *  - An impossible header closes that connection only.
 *  - Refused descriptors are closed by the server (its fd count, when its
 *    /proc entry is readable).
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conform.h"
#include "kit_proto.h"

#define CFG VFIO_PCI_CONFIG_REGION_INDEX
/* How long a posted command's absence of reply is watched. */
#define QUIET_MS 100
/* The most descriptors we send at once (server max + 1 must fit). */
#define MAX_SEND_FDS 64

struct proto {
    struct conform *cf;
    struct cf_result *r;
    struct rawc c;
    bool up;
    unsigned int cases, reconnects;
    /* VERSIONs refused with an error reply / by closing the connection. */
    unsigned int open_refusals, closed_refusals;
    uint32_t rd_region; /* a readable region for good accesses */
    uint32_t irq_index; /* an IRQ index with a vector */
    int efds[MAX_SEND_FDS];
};

/* How long a server that refused something gets to close the connection
 * before the kit takes it as kept open. */
#define CLOSE_GRACE_MS 50

/* The server closed the connection within @ms (and sent nothing). */
static bool
peer_closed(const struct proto *p, int ms)
{
    struct pollfd pfd = { .fd = p->c.fd, .events = POLLIN };
    char b;

    if (poll(&pfd, 1, ms) <= 0)
        return false;
    return recv(p->c.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) <= 0;
}

/* Drop the connection for a fresh one, negotiated if @negotiate (p->up
 * then says whether that worked; a raw one leaves it false). */
static int
connect_fresh(struct proto *p, bool negotiate)
{
    int rc;

    rawc_close(&p->c);
    p->up = false;
    rc = rawc_connect(&p->c, p->cf->socket, p->cf->timeout_ms);
    if (rc == 0 && negotiate)
        rc = rawc_negotiate(&p->c, NULL);
    if (rc < 0) {
        cf_error(p->r, "cannot %s: %s", negotiate ? "attach again" : "connect",
                 cf_errname(-rc));
        return rc;
    }
    p->up = negotiate;
    return 0;
}

static int
reconnect(struct proto *p)
{
    return connect_fresh(p, true);
}

/* The connection answers DEVICE_GET_INFO; if not, say so and start over. */
static void
alive(struct proto *p, const char *after)
{
    struct vfio_user_device_info di = { .argsz = sizeof(di) };
    struct rawc_msg m;
    char o[96];
    int rc;

    if (!p->up)
        return;
    rc = rawc_call(&p->c, VFIO_USER_DEVICE_GET_INFO, 0, &di, sizeof(di), NULL,
                   0, &m);
    if (rc == 0 && !(m.hdr.flags & VFIO_USER_F_ERROR) && m.len >= sizeof(di)) {
        memcpy(&di, m.payload, sizeof(di));
        if (di.num_regions != p->cf->dev.num_regions)
            cf_fail(p->r, R_PROTO_KEEPS_CONNECTION,
                    "after %s, DEVICE_GET_INFO reports %u regions, "
                    "not %u",
                    after, di.num_regions, p->cf->dev.num_regions);
        rawc_msg_free(&m);
        return;
    }
    cf_fail(p->r, R_PROTO_KEEPS_CONNECTION,
            "connection unusable after %s: DEVICE_GET_INFO got %s", after,
            rawc_outcome(rc, &m, o, sizeof(o)));
    rawc_msg_free(&m);
    p->reconnects++;
    reconnect(p);
}

/*
 * Whether the spec requires a reply to @cmd: a client-to-server command
 * of its Commands table (spec "Header"). Unknown commands, the retired 14
 * and DMA_READ/WRITE (server to client) have no such rule.
 */
static bool
spec_command(uint16_t cmd)
{
    return cmd >= VFIO_USER_VERSION && cmd <= VFIO_USER_MIG_DATA_WRITE &&
           cmd != VFIO_USER_DMA_READ && cmd != VFIO_USER_DMA_WRITE &&
           cmd != KIT_CMD_RETIRED;
}

/* A reply's form (spec "Header"), whatever it answers: the Reply type,
 * and an error reply carries nothing but the header. */
static void
reply_form(struct proto *p, const char *what, const struct rawc_msg *m)
{
    if ((m->hdr.flags & ~(uint32_t)VFIO_USER_F_ERROR) != VFIO_USER_F_TYPE_REPLY)
        cf_fail(p->r, R_PROTO_REPLY_FORM, "%s: reply flags 0x%x", what,
                m->hdr.flags);
    if ((m->hdr.flags & VFIO_USER_F_ERROR) && m->len != 0)
        cf_fail(p->r, R_PROTO_REPLY_FORM,
                "%s: error reply carries %zu payload bytes", what, m->len);
    if ((m->hdr.flags & VFIO_USER_F_ERROR) && m->nfds > 0)
        cf_fail(p->r, R_PROTO_REPLY_FORM,
                "%s: error reply carries %zu descriptors", what, m->nfds);
}

/* The fixed part of a success reply's payload (spec: each command's Reply
 * section): argsz covers it, and what the request named is echoed. */
static void
reply_payload(struct proto *p, const char *what, uint16_t cmd,
              const uint8_t *req, size_t reqlen, const struct rawc_msg *m)
{
    struct vfio_user_region_access a, ra;
    struct vfio_user_dma_unmap u, ru;
    uint32_t argsz, index;
    size_t need = 0;

    switch (cmd) {
    case VFIO_USER_DEVICE_GET_INFO:
        need = sizeof(struct vfio_user_device_info);
        break;
    case VFIO_USER_DEVICE_GET_REGION_INFO:
        need = sizeof(struct vfio_user_region_info);
        break;
    case VFIO_USER_DEVICE_GET_IRQ_INFO:
        need = sizeof(struct vfio_user_irq_info);
        break;
    case VFIO_USER_REGION_READ:
    case VFIO_USER_REGION_WRITE:
        if (reqlen < sizeof(a))
            return;
        memcpy(&a, req, sizeof(a));
        need = sizeof(a) + (cmd == VFIO_USER_REGION_READ ? a.count : 0);
        if (m->len < sizeof(ra))
            break;
        memcpy(&ra, m->payload, sizeof(ra));
        if (ra.offset != a.offset || ra.region != a.region ||
            ra.count != a.count)
            cf_fail(p->r, R_PROTO_REPLY_PAYLOAD,
                    "%s: reply names %u bytes at region %u+0x%" PRIx64
                    ", asked %u at %u+0x%" PRIx64,
                    what, ra.count, ra.region, ra.offset, a.count, a.region,
                    a.offset);
        if (cmd == VFIO_USER_REGION_READ && m->len != need)
            cf_fail(p->r, R_PROTO_REPLY_PAYLOAD,
                    "%s: reply carries %zu data bytes for a count of %u", what,
                    m->len - sizeof(ra), a.count);
        break;
    case VFIO_USER_DMA_UNMAP:
        /* The spec's unmap has no flags ("unused in this version"). */
        if (reqlen < sizeof(u))
            return;
        memcpy(&u, req, sizeof(u));
        if (u.flags != 0)
            return;
        need = sizeof(u);
        if (m->len < sizeof(ru))
            break;
        memcpy(&ru, m->payload, sizeof(ru));
        if (ru.addr != u.addr || ru.size != u.size)
            cf_fail(p->r, R_PROTO_REPLY_PAYLOAD,
                    "%s: reply entry 0x%" PRIx64 "+0x%" PRIx64
                    ", not the original 0x%" PRIx64 "+0x%" PRIx64,
                    what, ru.addr, ru.size, u.addr, u.size);
        break;
    default:
        return;
    }
    if (m->len < need) {
        cf_fail(p->r, R_PROTO_REPLY_PAYLOAD,
                "%s: reply payload of %zu bytes, the structure needs %zu", what,
                m->len, need);
        return;
    }
    if (cmd == VFIO_USER_DEVICE_GET_INFO ||
        cmd == VFIO_USER_DEVICE_GET_REGION_INFO ||
        cmd == VFIO_USER_DEVICE_GET_IRQ_INFO) {
        memcpy(&argsz, m->payload, sizeof(argsz));
        if (argsz < need)
            cf_fail(p->r, R_PROTO_REPLY_PAYLOAD,
                    "%s: reply argsz %u below its %zu-byte structure", what,
                    argsz, need);
    }
    if ((cmd == VFIO_USER_DEVICE_GET_REGION_INFO ||
         cmd == VFIO_USER_DEVICE_GET_IRQ_INFO) &&
        reqlen >= 12) {
        memcpy(&index, req + 8, sizeof(index));
        if (memcmp(m->payload + 8, &index, sizeof(index)) != 0)
            cf_fail(p->r, R_PROTO_REPLY_PAYLOAD,
                    "%s: reply is for another index than %u", what, index);
    }
}

/*
 * Send one command and judge its reply. The spec: a command of its table
 * (@must_reply: the client broke no limit the server advertised) gets a
 * reply, and every reply has the spec's form. @rule: success when @want
 * is 0, else an error reply carrying @want; then the connection must
 * still work (umdev policy).
 */
static void
expect(struct proto *p, const char *what, uint16_t cmd, const void *payload,
       size_t len, const int *fds, size_t nfds, int want, enum cf_rule_id rule,
       bool must_reply)
{
    struct rawc_msg m;
    char o[96];
    int rc;

    if (!p->up)
        return;
    p->cases++;
    rc = rawc_call(&p->c, cmd, 0, payload, len, fds, nfds, &m);
    if (rc == -EBADMSG) {
        cf_fail(p->r, R_PROTO_REPLY_FORM, "%s: %s", what,
                rawc_outcome(rc, &m, o, sizeof(o)));
    } else if (rc < 0) {
        cf_fail(p->r,
                must_reply && spec_command(cmd) ? R_PROTO_REPLY_REQUIRED : rule,
                "%s: %s, want %s", what, rawc_outcome(rc, &m, o, sizeof(o)),
                want ? cf_errname(want) : "success");
    } else {
        reply_form(p, what, &m);
        if (!(m.hdr.flags & VFIO_USER_F_ERROR) != !want)
            cf_fail(p->r, rule, "%s: %s, want %s", what,
                    rawc_outcome(rc, &m, o, sizeof(o)),
                    want ? cf_errname(want) : "success");
        else if (want && (int)m.hdr.error != want)
            cf_fail(p->r, rule, "%s: error %s, want %s", what,
                    cf_errname((int)m.hdr.error), cf_errname(want));
        else if (!want)
            reply_payload(p, what, cmd, payload, len, &m);
    }
    rawc_msg_free(&m);
    if (rc == -ECONNRESET || rc == -ETIMEDOUT || rc == -EPROTO ||
        rc == -EBADMSG) {
        p->reconnects++;
        reconnect(p);
        return;
    }
    alive(p, what);
}

/* ------------------------------------------------------------------ */
/* VERSION                                                            */

/* A VERSION reply's payload against what QEMU proposed (spec "Version":
 * the version rules and the data's format; pgsizes is umdev policy). */
static void
check_version_reply(struct proto *p, const struct rawc_msg *m, char *ev,
                    size_t evlen)
{
    struct json_object *root, *caps;
    uint16_t major, minor;
    const char *json;

    if (m->len < 4) {
        cf_fail(p->r, R_PROTO_VERSION_DATA,
                "VERSION reply has %zu payload bytes", m->len);
        return;
    }
    memcpy(&major, m->payload, 2);
    memcpy(&minor, m->payload + 2, 2);
    if (major != 0 || minor > 0)
        cf_fail(p->r, R_PROTO_VERSION_REPLY,
                "VERSION reply is %u.%u; QEMU proposed 0.0", major, minor);
    if (m->len == 4) {
        snprintf(ev, evlen, "VERSION 0.0 without capabilities");
        return;
    }
    json = (const char *)m->payload + 4;
    if (m->payload[m->len - 1] != '\0' || strlen(json) != m->len - 5) {
        cf_fail(p->r, R_PROTO_VERSION_DATA,
                "VERSION reply JSON does not end with its NUL at the "
                "end of the message");
        return;
    }
    root = json_tokener_parse(json);
    if (root == NULL || !json_object_is_type(root, json_type_object)) {
        cf_fail(p->r, R_PROTO_VERSION_DATA,
                "VERSION reply data is not a JSON object: %.80s", json);
        json_object_put(root);
        return;
    }
    /* Spec "Version": capabilities are optional. */
    if (!json_object_object_get_ex(root, "capabilities", &caps)) {
        snprintf(ev, evlen,
                 "VERSION as QEMU 11.1.3 -> %u.%u without "
                 "capabilities",
                 major, minor);
        json_object_put(root);
        return;
    }
    if (!json_object_is_type(caps, json_type_object)) {
        cf_fail(p->r, R_PROTO_VERSION_DATA,
                "VERSION reply \"capabilities\" is not an object: %.80s", json);
        json_object_put(root);
        return;
    }
    /* Spec "Version": a subset of the capabilities proposed. */
    json_object_object_foreach(caps, key, val)
    {
        if (!kit_qemu_proposes(key))
            cf_fail(p->r, R_PROTO_VERSION_REPLY,
                    "VERSION reply names \"%s\", which QEMU did not "
                    "propose",
                    key);
        else if (strcmp(key, "write_multiple") == 0
                     ? !json_object_is_type(val, json_type_boolean)
                 : strcmp(key, "migration") == 0
                     ? !json_object_is_type(val, json_type_object)
                     : !json_object_is_type(val, json_type_int) ||
                           json_object_get_int64(val) <= 0)
            cf_fail(p->r, R_PROTO_VERSION_DATA,
                    "VERSION reply \"%s\" has a bad value", key);
        else if (strcmp(key, "pgsizes") == 0 &&
                 !(json_object_get_uint64(val) & 4096))
            cf_fail(p->r, R_PROTO_VERSION_PGSIZES,
                    "VERSION reply pgsizes lacks 4096");
    }
    snprintf(ev, evlen, "VERSION as QEMU 11.1.3 -> %u.%u %s", major, minor,
             json);
    json_object_put(root);
}

/* A VERSION payload with @json, and its NUL if @nul (kit_version_payload()). */
static size_t
version_payload(uint8_t *buf, size_t cap, uint16_t major, uint16_t minor,
                const char *json, bool nul)
{
    return kit_version_payload(buf, cap, major, minor, json,
                               json != NULL ? strlen(json) + nul : 0);
}

/*
 * A VERSION the server cannot support, on a connection not negotiated
 * yet. Spec: an answer or a closed connection, and a success answer keeps
 * the version rules; umdev policy: an error reply with @err, the
 * connection left open. Return: true if the connection is still fit for
 * the next attempt (open, not negotiated), else it was replaced by a
 * fresh raw one (false if that failed too: p->up is then false).
 */
static bool
version_refused(struct proto *p, const char *what, const uint8_t *buf,
                size_t len, uint16_t major, int err)
{
    struct rawc_msg m;
    char o[96];
    bool keep = false;
    int rc;

    p->cases++;
    rc = rawc_call(&p->c, VFIO_USER_VERSION, 0, buf, len, NULL, 0, &m);
    if (rc == -ECONNRESET) {
        /* What libvfio-user's servers do: allowed (Connection
         * Initiation), and not what umdev does. */
        cf_fail(p->r, R_PROTO_VERSION_REFUSAL, "%s: connection closed, want %s",
                what, cf_errname(err));
        p->closed_refusals++;
    } else if (rc == -ETIMEDOUT) {
        cf_fail(p->r, R_PROTO_VERSION_REFUSE,
                "%s: no reply within %d ms and the connection left open", what,
                p->cf->timeout_ms);
    } else if (rc < 0) {
        cf_fail(p->r, R_PROTO_REPLY_FORM, "%s: %s", what,
                rawc_outcome(rc, &m, o, sizeof(o)));
    } else if (!(m.hdr.flags & VFIO_USER_F_ERROR)) {
        uint16_t rmajor = 0, rminor = 0;

        reply_form(p, what, &m);
        if (m.len >= 4) {
            memcpy(&rmajor, m.payload, 2);
            memcpy(&rminor, m.payload + 2, 2);
        }
        if (m.len < 4 || rmajor != major || rminor > 0)
            cf_fail(p->r, R_PROTO_VERSION_REPLY,
                    "%s: accepted as %u.%u, proposed %u.0", what, rmajor,
                    rminor, major);
        cf_fail(p->r, R_PROTO_VERSION_REFUSAL, "%s: accepted, want %s", what,
                cf_errname(err));
    } else {
        reply_form(p, what, &m);
        if ((int)m.hdr.error != err)
            cf_fail(p->r, R_PROTO_VERSION_REFUSAL, "%s: error %s, want %s",
                    what, cf_errname((int)m.hdr.error), cf_errname(err));
        /* libvfio-user answers, then closes: both allowed. */
        if (peer_closed(p, CLOSE_GRACE_MS)) {
            cf_fail(p->r, R_PROTO_VERSION_REFUSAL,
                    "%s: error %s, then the connection closed", what,
                    cf_errname((int)m.hdr.error));
            p->closed_refusals++;
        } else {
            p->open_refusals++;
            keep = true;
        }
    }
    rawc_msg_free(&m);
    if (!keep) {
        p->reconnects++;
        if (connect_fresh(p, false) < 0)
            return false;
        p->up = true;
    }
    return keep;
}

static void
version_tests(struct proto *p, char *ev, size_t evlen)
{
    static const struct {
        uint16_t major;
        const char *json;
        bool nul;
        int err;
    } bad[] = {
        { 1, "{\"capabilities\":{}}", true, ENOTSUP },
        { 0, "{\"capabilities\":{}}", false, EINVAL },
        { 0, "{\"capabilities\":", true, EINVAL },
        { 0, "[1,2]", true, EINVAL },
        { 0, "{\"capabilities\":{\"max_msg_fds\":\"16\"}}", true, EINVAL },
        { 0, "{\"capabilities\":{\"pgsizes\":8192}}", true, ENOTSUP },
    };
    struct vfio_user_device_info di = { .argsz = sizeof(di) };
    uint8_t buf[8192];
    struct rawc_msg m = { .nfds = 0 };
    char what[96], o[96];
    size_t i, len;
    uint16_t minor;
    int rc;

    /* QEMU's first message, byte for byte: id 0, its JSON. */
    if (connect_fresh(p, false) < 0)
        return;
    len = version_payload(buf, sizeof(buf), 0, 0, CF_QEMU_VERSION_JSON, true);
    rc = rawc_send(&p->c, 0, VFIO_USER_VERSION, 0, buf, len, NULL, 0);
    if (rc == 0)
        rc = rawc_recv_reply(&p->c, p->cf->timeout_ms, &m);
    p->cases++;
    if (rc == 0 && (m.hdr.msg_id != 0 || m.hdr.cmd != VFIO_USER_VERSION)) {
        cf_fail(p->r, R_PROTO_REPLY_FORM,
                "QEMU's VERSION (id 0) answered by %s id %u",
                umdev_wire_cmd_name(m.hdr.cmd), m.hdr.msg_id);
        rawc_msg_free(&m);
        reconnect(p);
        return;
    }
    if (rc < 0 || (m.hdr.flags & VFIO_USER_F_ERROR)) {
        cf_fail(p->r, R_PROTO_VERSION_ACCEPT, "QEMU's VERSION: %s",
                rawc_outcome(rc, &m, o, sizeof(o)));
        if (rc == 0)
            rawc_msg_free(&m);
        reconnect(p);
        return;
    }
    reply_form(p, "QEMU's VERSION", &m);
    check_version_reply(p, &m, ev, evlen);
    rawc_msg_free(&m);
    p->up = true;
    alive(p, "VERSION");
    /* A second VERSION: still a command of the spec's table. */
    len = version_payload(buf, sizeof(buf), 0, 0, CF_QEMU_VERSION_JSON, true);
    expect(p, "second VERSION", VFIO_USER_VERSION, buf, len, NULL, 0, EINVAL,
           R_PROTO_VERSION_SECOND, true);

    /* Before VERSION: refused (policy; the spec leaves it open). */
    if (connect_fresh(p, false) < 0)
        return;
    p->up = true; /* for expect() and alive(): it is the one to use */
    p->cases++;
    rc = rawc_call(&p->c, VFIO_USER_DEVICE_GET_INFO, 0, &di, sizeof(di), NULL,
                   0, &m);
    if (rc == 0)
        reply_form(p, "DEVICE_GET_INFO before VERSION", &m);
    if (rc < 0 || !(m.hdr.flags & VFIO_USER_F_ERROR) || m.hdr.error != EINVAL)
        cf_fail(p->r, R_PROTO_BEFORE_VERSION,
                "DEVICE_GET_INFO before VERSION: %s, want EINVAL",
                rawc_outcome(rc, &m, o, sizeof(o)));
    rawc_msg_free(&m);
    if (rc < 0 || peer_closed(p, CLOSE_GRACE_MS)) {
        if (rc == 0)
            cf_fail(p->r, R_PROTO_BEFORE_VERSION,
                    "DEVICE_GET_INFO before VERSION: the connection closed "
                    "after the reply");
        if (connect_fresh(p, false) < 0)
            return;
        p->up = true;
    }
    /* Each VERSION the server cannot support: refused, by an error reply
     * (umdev; the connection then still negotiates) or by closing it. */
    for (i = 0; i < CF_ARRAY_SIZE(bad) && p->up; i++) {
        len = version_payload(buf, sizeof(buf), bad[i].major, 0, bad[i].json,
                              bad[i].nul);
        snprintf(what, sizeof(what), "VERSION %u.0 %.40s%s", bad[i].major,
                 bad[i].json, bad[i].nul ? "" : " (no NUL)");
        version_refused(p, what, buf, len, bad[i].major, bad[i].err);
    }
    if (!p->up)
        return;
    /* JSON over the 4096-byte limit. */
    memset(buf, ' ', sizeof(buf));
    memset(buf, 0, 4);
    memcpy(buf + 4, "{\"capabilities\":{}", 18);
    buf[5000] = '}';
    buf[5001] = '\0';
    version_refused(p, "VERSION with 4998 bytes of JSON", buf, 5002, 0, E2BIG);
    if (!p->up)
        return;
    /* A good VERSION, minor 7: the spec wants it answered with a minor of
     * at most 7; after refusals on the same connection, umdev policy. */
    len = version_payload(buf, sizeof(buf), 0, 7, CF_QEMU_VERSION_JSON, true);
    p->cases++;
    rc = rawc_call(&p->c, VFIO_USER_VERSION, 0, buf, len, NULL, 0, &m);
    if (rc < 0 || m.hdr.flags != VFIO_USER_F_TYPE_REPLY || m.len < 4) {
        cf_fail(p->r,
                p->open_refusals > 0 ? R_PROTO_VERSION_REFUSAL
                                     : R_PROTO_VERSION_ACCEPT,
                "VERSION 0.7%s: %s",
                p->open_refusals > 0 ? " after refusals" : "",
                rawc_outcome(rc, &m, o, sizeof(o)));
        rawc_msg_free(&m);
        reconnect(p);
        return;
    }
    memcpy(&minor, m.payload + 2, 2);
    if (minor > 7)
        cf_fail(p->r, R_PROTO_VERSION_REPLY,
                "VERSION 0.7 answered with minor %u", minor);
    rawc_msg_free(&m);
    alive(p, "VERSION 0.7");
}

/* ------------------------------------------------------------------ */
/* Every command                                                      */

/* A well-formed payload for @cmd (kit_good_payload()) with no lasting
 * effect: reads, a write of a read-only value back (the Vendor ID), map
 * then unmap, a software trigger. */
static size_t
good_payload(const struct proto *p, uint16_t cmd, uint8_t *buf)
{
    struct kit_good g = {
        .dma_addr = 0x7f000000ull,
        .irq_index = p->irq_index,
        .read_region = p->rd_region,
        .read_count = 2,
        .write_offset = PCI_VENDOR_ID,
        .write_region = CFG,
        .write_count = 2,
    };

    cf_put_le(g.write_data, 2, p->cf->dev.vendor);
    return kit_good_payload(&g, cmd, buf);
}

/* The rule a well-formed command's expected answer rests on: the spec
 * for the commands every server must serve, umdev policy for the rest. */
static enum cf_rule_id
good_rule(uint16_t cmd)
{
    switch (cmd) {
    case VFIO_USER_DMA_MAP:
    case VFIO_USER_DEVICE_GET_INFO:
    case VFIO_USER_DEVICE_GET_REGION_INFO:
    case VFIO_USER_DEVICE_GET_IRQ_INFO:
    case VFIO_USER_REGION_READ:
    case VFIO_USER_REGION_WRITE:
        return R_PROTO_COMMAND_CORE;
    case VFIO_USER_VERSION:
        return R_PROTO_VERSION_SECOND;
    case KIT_CMD_RETIRED:
        return R_PROTO_UNKNOWN_COMMAND;
    default:
        return R_PROTO_COMMAND_OTHER;
    }
}

static void
per_command(struct proto *p, uint32_t oversize)
{
    uint32_t nmax = p->cf->dev.server_max_fds + 1;
    uint8_t buf[KIT_GOOD_MAX], *big;
    char what[96];
    size_t i, len;
    int two[2];

    if (nmax > MAX_SEND_FDS) {
        cf_error(p->r, "server max_msg_fds %u: the kit sends at most %d",
                 nmax - 1, MAX_SEND_FDS - 1);
        return;
    }
    big = calloc(1, oversize);
    if (big == NULL) {
        cf_error(p->r, "out of memory for the oversized message");
        return;
    }
    two[0] = p->efds[0];
    two[1] = p->efds[1];
    for (i = 0; i < KIT_NCMDS && p->up; i++) {
        const struct kit_cmd *k = &kit_cmds[i];
        const char *name = umdev_wire_cmd_name(k->cmd);
        bool known = k->cmd != KIT_CMD_RETIRED;
        /* The spec's reply rule covers the commands of its table; the
         * rest is umdev's answer to a message outside it. */
        bool must = spec_command(k->cmd);

        len = good_payload(p, k->cmd, buf);
        snprintf(what, sizeof(what), "well-formed %s", name);
        expect(p, what, k->cmd, buf, len, NULL, 0, k->good_err,
               good_rule(k->cmd), must);
        if (k->cmd == VFIO_USER_DMA_MAP) {
            /* Undo at once: later cases map the same range. */
            uint8_t u[KIT_GOOD_MAX];
            size_t ul = good_payload(p, VFIO_USER_DMA_UNMAP, u);

            expect(p, "DMA_UNMAP ALL", VFIO_USER_DMA_UNMAP, u, ul, NULL, 0, 0,
                   R_PROTO_COMMAND_OTHER, true);
        }
        /* Short. */
        if (k->fixed > 0) {
            snprintf(what, sizeof(what), "%s with %zu payload bytes", name,
                     k->fixed - 1);
            expect(p, what, k->cmd, buf, k->fixed - 1, NULL, 0, EINVAL,
                   R_PROTO_MALFORMED, must);
            snprintf(what, sizeof(what), "%s with no payload", name);
            expect(p, what, k->cmd, NULL, 0, NULL, 0, EINVAL, R_PROTO_MALFORMED,
                   must);
        }
        /* argsz below the fixed part, and (where the request's argsz
         * covers the payload) beyond it. */
        if (k->has_argsz) {
            uint32_t argsz = (uint32_t)k->fixed - 1;

            memcpy(buf, &argsz, 4);
            snprintf(what, sizeof(what), "%s with argsz %u", name, argsz);
            expect(p, what, k->cmd, buf, len, NULL, 0, EINVAL,
                   R_PROTO_MALFORMED, must);
            argsz = 0;
            memcpy(buf, &argsz, 4);
            snprintf(what, sizeof(what), "%s with argsz 0", name);
            expect(p, what, k->cmd, buf, len, NULL, 0, EINVAL,
                   R_PROTO_MALFORMED, must);
            if (k->cmd == VFIO_USER_DMA_MAP ||
                k->cmd == VFIO_USER_DEVICE_SET_IRQS) {
                argsz = (uint32_t)len + 1;
                memcpy(buf, &argsz, 4);
                snprintf(what, sizeof(what),
                         "%s with argsz past the "
                         "payload",
                         name);
                expect(p, what, k->cmd, buf, len, NULL, 0, EINVAL,
                       R_PROTO_MALFORMED, must);
            }
            len = good_payload(p, k->cmd, buf);
        }
        /* Oversized: more than the server takes whole. Past every data
         * limit the server advertised, so it may close instead. */
        memcpy(big, buf, len);
        snprintf(what, sizeof(what), "%s of %u bytes", name,
                 oversize + UMDEV_WIRE_HDR_SIZE);
        expect(p, what, k->cmd, big, oversize, NULL, 0, E2BIG,
               R_PROTO_MALFORMED, false);
        /* A descriptor where none belongs (DMA_MAP takes one: two). */
        snprintf(what, sizeof(what), "%s with %s", name,
                 k->cmd == VFIO_USER_DMA_MAP ? "2 descriptors"
                                             : "a descriptor");
        expect(p, what, k->cmd, buf, len, two,
               k->cmd == VFIO_USER_DMA_MAP ? 2 : 1, known ? EBADF : ENOSYS,
               known ? R_PROTO_MALFORMED : R_PROTO_UNKNOWN_COMMAND, must);
        /* More descriptors than the server takes: refused on arrival,
         * whatever the command. The client broke the server's
         * max_msg_fds: it may close instead. */
        snprintf(what, sizeof(what), "%s with %u descriptors", name, nmax);
        expect(p, what, k->cmd, buf, len, p->efds, nmax, EBADF,
               R_PROTO_MALFORMED, false);
    }
    free(big);
}

/* Spec "VFIO_USER_DMA_MAP": a map over an existing one fails with EEXIST;
 * "VFIO_USER_DMA_UNMAP": unmapping exactly a mapping succeeds and the
 * reply carries the original entry. Mappings without descriptors: the
 * message fallback every server serves. */
static void
dma_tests(struct proto *p)
{
    struct vfio_user_dma_map map = {
        .argsz = sizeof(map),
        .flags = VFIO_USER_DMA_MAP_FLAG_READ | VFIO_USER_DMA_MAP_FLAG_WRITE,
        .addr = 0x7e000000ull,
        .size = 0x2000,
    };
    struct vfio_user_dma_unmap unmap = {
        .argsz = sizeof(unmap),
        .addr = map.addr,
        .size = map.size,
    };

    expect(p, "DMA_MAP of 8 KiB without a descriptor", VFIO_USER_DMA_MAP, &map,
           sizeof(map), NULL, 0, 0, R_PROTO_COMMAND_CORE, true);
    expect(p, "DMA_MAP of the same range again", VFIO_USER_DMA_MAP, &map,
           sizeof(map), NULL, 0, EEXIST, R_PROTO_DMA_OVERLAP, true);
    map.addr += 0x1000;
    expect(p, "DMA_MAP overlapping its second page", VFIO_USER_DMA_MAP, &map,
           sizeof(map), NULL, 0, EEXIST, R_PROTO_DMA_OVERLAP, true);
    map.addr -= 0x2000;
    expect(p, "DMA_MAP overlapping its first page", VFIO_USER_DMA_MAP, &map,
           sizeof(map), NULL, 0, EEXIST, R_PROTO_DMA_OVERLAP, true);
    expect(p, "DMA_UNMAP of exactly that mapping", VFIO_USER_DMA_UNMAP, &unmap,
           sizeof(unmap), NULL, 0, 0, R_PROTO_COMMAND_CORE, true);
}

static void
fd_tests(struct proto *p)
{
    uint32_t n = p->cf->dev.server_max_fds + 1;
    struct vfio_user_irq_set s = {
        .argsz = sizeof(s),
        .flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
        .index = p->irq_index,
        .count = 1,
    };
    struct vfio_user_device_info di = { .argsz = sizeof(di) };
    char what[96];

    if (n > MAX_SEND_FDS) {
        cf_error(p->r, "server max_msg_fds %u: the kit sends at most %d", n - 1,
                 MAX_SEND_FDS - 1);
        return;
    }
    snprintf(what, sizeof(what), "DEVICE_GET_INFO with %u descriptors", n);
    expect(p, what, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di), p->efds, n,
           EBADF, R_PROTO_MALFORMED, false);
    snprintf(what, sizeof(what),
             "SET_IRQS eventfd count 1 with %u "
             "descriptors",
             n);
    expect(p, what, VFIO_USER_DEVICE_SET_IRQS, &s, sizeof(s), p->efds, n, EBADF,
           R_PROTO_MALFORMED, false);
    expect(p, "SET_IRQS eventfd count 1 with 2 descriptors",
           VFIO_USER_DEVICE_SET_IRQS, &s, sizeof(s), p->efds, 2, EBADF,
           R_PROTO_MALFORMED, true);
    s.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
    expect(p, "SET_IRQS DATA_NONE with a descriptor", VFIO_USER_DEVICE_SET_IRQS,
           &s, sizeof(s), p->efds, 1, EBADF, R_PROTO_MALFORMED, true);
}

static void
unknown_commands(struct proto *p)
{
    static const uint16_t cmds[] = { 0, 14, 19, 100, 0xffff };
    char what[64];
    size_t i;

    for (i = 0; i < CF_ARRAY_SIZE(cmds); i++) {
        snprintf(what, sizeof(what), "unknown command %u", cmds[i]);
        expect(p, what, cmds[i], NULL, 0, NULL, 0, ENOSYS,
               R_PROTO_UNKNOWN_COMMAND, false);
    }
}

/* ------------------------------------------------------------------ */
/* Posted commands                                                    */

static void
posted(struct proto *p, uint32_t oversize, char *ev, size_t evlen)
{
    struct vfio_user_device_info di = { .argsz = sizeof(di) };
    struct vfio_user_region_access a = { 0, p->rd_region, 1 };
    uint8_t buf[64], *big = calloc(1, oversize);
    unsigned int nposted = 0;
    struct rawc_msg m = { .nfds = 0 };
    uint16_t id;
    char o[96];
    int rc;

    if (big == NULL || !p->up) {
        free(big);
        return;
    }
#define POST(cmd, pl, n, fds, nfds)                                            \
    do {                                                                       \
        nposted++;                                                             \
        rawc_send(&p->c, rawc_id(&p->c), (cmd), VFIO_USER_F_NO_REPLY, (pl),    \
                  (n), (fds), (nfds));                                         \
    } while (0)
    /* Out of the region. */
    a.offset = p->cf->dev.regions[p->rd_region].size;
    memcpy(buf, &a, sizeof(a));
    buf[sizeof(a)] = 0xff;
    POST(VFIO_USER_REGION_WRITE, buf, sizeof(a) + 1, NULL, 0);
    /* An absent region index. */
    a.offset = 0;
    a.region = p->cf->dev.num_regions;
    memcpy(buf, &a, sizeof(a));
    POST(VFIO_USER_REGION_WRITE, buf, sizeof(a) + 1, NULL, 0);
    /* Short, count/data mismatch, oversized, descriptors. */
    POST(VFIO_USER_REGION_WRITE, buf, 3, NULL, 0);
    a.region = p->rd_region;
    a.count = 4;
    memcpy(buf, &a, sizeof(a));
    POST(VFIO_USER_REGION_WRITE, buf, sizeof(a) + 2, NULL, 0);
    memcpy(big, buf, sizeof(a));
    POST(VFIO_USER_REGION_WRITE, big, oversize, NULL, 0);
    a.count = 1;
    memcpy(buf, &a, sizeof(a));
    POST(VFIO_USER_REGION_WRITE, buf, sizeof(a) + 1, p->efds, 1);
    /* Other commands posted bad, and a posted unknown one. */
    POST(VFIO_USER_DEVICE_GET_INFO, &di, 3, NULL, 0);
    POST(19, NULL, 0, NULL, 0);
    POST(VFIO_USER_DMA_READ, buf, 16, NULL, 0);
    /* A posted good read: a reply would be wrong too. */
    a.offset = 0;
    memcpy(buf, &a, sizeof(a));
    POST(VFIO_USER_REGION_READ, buf, sizeof(a), NULL, 0);
#undef POST
    free(big);
    /* The first reply to arrive must be this request's. */
    id = rawc_id(&p->c);
    rc = rawc_send(&p->c, id, VFIO_USER_DEVICE_GET_INFO, 0, &di, sizeof(di),
                   NULL, 0);
    if (rc == 0)
        rc = rawc_recv_reply(&p->c, p->cf->timeout_ms, &m);
    p->cases += nposted + 1;
    if (rc < 0) {
        /* Some of them broke limits the server advertised (oversized,
         * DMA_READ to the server): closing is its right, hanging with
         * the connection open is not. */
        cf_fail(p->r,
                rc == -ETIMEDOUT ? R_PROTO_REPLY_REQUIRED
                                 : R_PROTO_KEEPS_CONNECTION,
                "DEVICE_GET_INFO after %u bad posted commands: %s", nposted,
                rawc_outcome(rc, &m, o, sizeof(o)));
        reconnect(p);
        return;
    }
    if (m.hdr.msg_id != id || m.hdr.cmd != VFIO_USER_DEVICE_GET_INFO) {
        cf_fail(p->r, R_PROTO_POSTED_SILENT,
                "a posted command got a reply (%s id %u, %s)",
                umdev_wire_cmd_name(m.hdr.cmd), m.hdr.msg_id,
                rawc_outcome(0, &m, o, sizeof(o)));
        rawc_msg_free(&m);
        reconnect(p); /* the stream is out of step */
        return;
    }
    reply_form(p, "DEVICE_GET_INFO after posted commands", &m);
    rawc_msg_free(&m);
    if (!rawc_quiet(&p->c, QUIET_MS)) {
        cf_fail(p->r, R_PROTO_POSTED_SILENT,
                "stray message after the posted commands");
        reconnect(p);
        return;
    }
    snprintf(ev, evlen, "%u bad or posted-only commands got no reply", nposted);
}

/* Config byte @off: read it (Return: 0-255, or -1), or write @v, posted
 * or not. */
static int
cfg_byte_read(struct proto *p, unsigned int off)
{
    struct vfio_user_region_access a = { off, CFG, 1 };
    struct rawc_msg m;
    int rc;

    rc = rawc_call(&p->c, VFIO_USER_REGION_READ, 0, &a, sizeof(a), NULL, 0, &m);
    if (rc == 0 && m.len == sizeof(a) + 1 && !(m.hdr.flags & VFIO_USER_F_ERROR))
        rc = m.payload[sizeof(a)];
    else
        rc = rc < 0 ? rc : -EPROTO;
    rawc_msg_free(&m);
    return rc;
}

static void
cfg_byte_write(struct proto *p, unsigned int off, uint8_t v, bool posted)
{
    struct vfio_user_region_access a = { off, CFG, 1 };
    uint8_t buf[sizeof(a) + 1];
    struct rawc_msg m;

    memcpy(buf, &a, sizeof(a));
    buf[sizeof(a)] = v;
    if (posted) {
        rawc_send(&p->c, rawc_id(&p->c), VFIO_USER_REGION_WRITE,
                  VFIO_USER_F_NO_REPLY, buf, sizeof(buf), NULL, 0);
        return;
    }
    rawc_call(&p->c, VFIO_USER_REGION_WRITE, 0, buf, sizeof(buf), NULL, 0, &m);
    rawc_msg_free(&m);
}

/* A posted write is applied before the next reply (spec "Command
 * Concurrency"): Interrupt Line (or Cache Line Size) as the witness, once
 * a plain write showed it holds what is written (a device may hardwire
 * Cache Line Size). */
static void
posted_ordering(struct proto *p)
{
    unsigned int off = p->cf->dev.cfg[PCI_INTERRUPT_PIN] ? PCI_INTERRUPT_LINE
                                                         : PCI_CACHE_LINE_SIZE;
    int orig, v;
    uint8_t inv;

    if (!p->up || !p->cf->dev.pci)
        return;
    orig = cfg_byte_read(p, off);
    if (orig < 0)
        return;
    inv = (uint8_t)~orig;
    cfg_byte_write(p, off, inv, false);
    v = cfg_byte_read(p, off);
    cfg_byte_write(p, off, (uint8_t)orig, false);
    if (v != inv) {
        cf_note(p->r,
                "posted-write order not checked: config 0x%02x does not "
                "hold a written 0x%02x",
                off, inv);
        return;
    }
    cfg_byte_write(p, off, inv, true);
    v = cfg_byte_read(p, off);
    p->cases++;
    if (v < 0)
        cf_fail(p->r,
                v == -EPROTO    ? R_PROTO_COMMAND_CORE
                : v == -EBADMSG ? R_PROTO_REPLY_FORM
                                : R_PROTO_REPLY_REQUIRED,
                "read after a posted write: %s",
                v == -EPROTO ? "bad reply" : cf_errname(-v));
    else if (v != inv)
        cf_fail(p->r, R_PROTO_POSTED_ORDER,
                "a posted write to config 0x%02x (0x%02x) was not "
                "applied before the next reply (read 0x%02x)",
                off, inv, v);
    cfg_byte_write(p, off, (uint8_t)orig, false);
}

/* ------------------------------------------------------------------ */
/* Region ranges                                                      */

/* Out-of-range accesses: the answer is umdev policy; a reply is the
 * spec's rule unless the count breaks the server's max_data_xfer_size. */
static void
range_one(struct proto *p, uint32_t region, uint64_t off, uint32_t count,
          bool write, int want, const char *why)
{
    struct vfio_user_region_access a = { off, region, count };
    uint8_t buf[sizeof(a) + 8] = { 0 };
    char what[128];

    memcpy(buf, &a, sizeof(a));
    snprintf(what, sizeof(what), "%s of %u at region %u+0x%" PRIx64 " (%s)",
             write ? "write" : "read", count, region, off, why);
    expect(p, what, write ? VFIO_USER_REGION_WRITE : VFIO_USER_REGION_READ, buf,
           sizeof(a) + (write ? (count <= 8 ? count : 0) : 0), NULL, 0, want,
           R_PROTO_REGION_BOUNDS, count <= p->cf->dev.server_max_xfer);
}

static unsigned int
ranges(struct proto *p)
{
    const struct cf_device *d = &p->cf->dev;
    unsigned int before = p->cases;
    uint32_t i;

    for (i = 0; i < d->num_regions && i < CF_MAX_REGIONS && p->up; i++) {
        uint64_t size = d->regions[i].size;
        int w;

        if (size == 0) {
            range_one(p, i, 0, 1, false, EINVAL, "absent region");
            range_one(p, i, 0, 1, true, EINVAL, "absent region");
            continue;
        }
        for (w = 0; w < 2; w++) {
            int perm = (d->regions[i].flags & (w ? VFIO_REGION_INFO_FLAG_WRITE
                                                 : VFIO_REGION_INFO_FLAG_READ))
                           ? 0
                           : EPERM;

            range_one(p, i, size, 1, w, perm ? perm : EINVAL, "at the end");
            range_one(p, i, size - 1, 2, w, perm ? perm : EINVAL,
                      "across the end");
            range_one(p, i, size + 0x100000000ull, 1, w, perm ? perm : EINVAL,
                      "far past the end");
            range_one(p, i, UINT64_MAX - 3, 8, w, EINVAL, "wrapping");
            range_one(p, i, 0, 0, w, EINVAL, "count 0");
        }
    }
    range_one(p, d->num_regions, 0, 1, false, EINVAL, "index past the last");
    range_one(p, 16, 0, 1, false, EINVAL, "index 16");
    range_one(p, 0xffffffffu, 0, 1, true, EINVAL, "index 0xffffffff");
    range_one(p, p->rd_region, 0, d->server_max_xfer + 1, false, E2BIG,
              "over max_data_xfer_size");
    return p->cases - before;
}

/* An impossible header (msg_size below 16) ends that connection only. */
static void
bad_stream(struct proto *p)
{
    struct vfio_user_header h = { 5, VFIO_USER_DEVICE_GET_INFO, 8, 0, 0 };
    struct rawc s;
    struct rawc_msg m;
    int rc;

    p->cases++;
    rc = rawc_connect(&s, p->cf->socket, p->cf->timeout_ms);
    if (rc == 0)
        rc = rawc_negotiate(&s, NULL);
    if (rc == 0)
        rc = rawc_send_bytes(&s, &h, sizeof(h), NULL, 0);
    if (rc < 0) {
        cf_error(p->r, "bad-stream connection: %s", cf_errname(-rc));
    } else {
        rc = rawc_recv_reply(&s, p->cf->timeout_ms, &m);
        if (rc != -ECONNRESET)
            cf_fail(p->r, R_PROTO_BAD_HEADER,
                    "a header with msg_size 8 did not close the "
                    "connection (%s)",
                    rc == 0 ? "a reply came" : cf_errname(-rc));
        if (rc == 0)
            rawc_msg_free(&m);
    }
    rawc_close(&s);
}

void
check_protocol(struct conform *cf, struct cf_result *r)
{
    struct proto p = { .cf = cf, .r = r };
    char ev_version[512] = "", ev_posted[128] = "", err[128];
    uint32_t oversize;
    int fds_before = -1, fds_after = -1;
    unsigned int nranges = 0;
    size_t i;

    memset(p.efds, -1, sizeof(p.efds));
    p.c.fd = -1;
    for (i = 0; i < MAX_SEND_FDS; i++) {
        p.efds[i] = eventfd(0, EFD_CLOEXEC);
        if (p.efds[i] < 0) {
            cf_error(r, "eventfd: %s", strerror(errno));
            goto out;
        }
    }
    p.rd_region = cf->dev.pci ? CFG : 0;
    if (!cf_region_present(cf, p.rd_region)) {
        cf_error(r, "no config region to address well-formed accesses to");
        goto out;
    }
    p.irq_index = VFIO_PCI_ERR_IRQ_INDEX;
    if (p.irq_index >= cf->dev.num_irqs || cf->dev.irqs[p.irq_index].count == 0)
        for (p.irq_index = 0;
             p.irq_index < cf->dev.num_irqs && p.irq_index < CF_MAX_IRQS &&
             cf->dev.irqs[p.irq_index].count == 0;
             p.irq_index++)
            ;
    /* Largest message received whole (docs/PROTOCOL.md), plus one. */
    oversize =
        (cf->dev.server_max_xfer + 64 > 65536 ? cf->dev.server_max_xfer + 64
                                              : 65536) +
        1;
    version_tests(&p, ev_version, sizeof(ev_version));
    if (!p.up && reconnect(&p) < 0)
        goto out;
    if (cf->server_pid > 0 || cf_find_server_pid(cf, err, sizeof(err)) == 0)
        fds_before = cf_proc_fd_count(cf->server_pid);
    per_command(&p, oversize);
    dma_tests(&p);
    fd_tests(&p);
    unknown_commands(&p);
    posted(&p, oversize, ev_posted, sizeof(ev_posted));
    posted_ordering(&p);
    nranges = ranges(&p);
    if (fds_before >= 0 && p.reconnects == 0)
        fds_after = cf_proc_fd_count(cf->server_pid);
    rawc_close(&p.c);
    bad_stream(&p);
    if (reconnect(&p) == 0)
        alive(&p, "a bad stream on another connection");
    if (fds_before >= 0 && fds_after >= 0 && fds_after != fds_before)
        cf_fail(r, R_PROTO_FDS_CLOSED,
                "server pid %d holds %d descriptors after the refused "
                "ones, %d before",
                (int)cf->server_pid, fds_after, fds_before);
    cf_note(r, "%s", ev_version);
    cf_note(r,
            "unsupported VERSIONs refused %u times by an error reply, %u "
            "by closing the connection",
            p.open_refusals, p.closed_refusals);
    cf_note(r,
            "%u cases over %zu commands: good, short, bad argsz, "
            "oversized (%u B), stray and too many (%u) descriptors, "
            "unknown",
            p.cases, (size_t)KIT_NCMDS, oversize + UMDEV_WIRE_HDR_SIZE,
            cf->dev.server_max_fds + 1);
    if (ev_posted[0])
        cf_note(r, "%s", ev_posted);
    cf_note(r, "%u out-of-range region accesses checked", nranges);
    if (fds_before >= 0 && fds_after >= 0)
        cf_note(r, "server fds %d -> %d", fds_before, fds_after);
    else
        cf_note(r, "server fds not checked");
out:
    rawc_close(&p.c);
    for (i = 0; i < MAX_SEND_FDS; i++)
        if (p.efds[i] >= 0)
            close(p.efds[i]);
}
