/*
 * Migration v2 on the server side: the device state machine with the
 * kernel's arcs (<linux/vfio.h> enum vfio_device_mig_state, spec
 * "VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE"), and the versioned stream that
 * MIG_DATA_READ/WRITE carry (docs/PROTOCOL.md "Migration stream").
 *
 * Allowed single arcs (P2P states are not used in vfio-user, PRE_COPY
 * only when the device has a precopy hook):
 *   RUNNING -> STOP, PRE_COPY      STOP -> RUNNING, STOP_COPY, RESUMING
 *   STOP_COPY -> STOP              RESUMING -> STOP
 *   PRE_COPY -> RUNNING, STOP_COPY
 * Every other pair between those states is walked through them along the
 * kernel's shortest path (saving states never inside a path), except
 * STOP_COPY -> PRE_COPY and anything from or to ERROR, which are refused
 * with EINVAL as the kernel's vfio_mig_get_next_state() refuses them.
 *
 * Interrupts: in the stopped states (STOP, STOP_COPY, RESUMING, ERROR) a
 * device raises none, as the kernel's "RUNNING_P2P -> STOP" requires.
 * Triggers meanwhile (a config write unmasking a pending vector, a line
 * loaded high, a device thread late) are held per vector in lib/dev
 * (irq.c) and delivered once each when the device runs again; a reset
 * drops them. ERR and REQ, which tell the VMM, pass.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dev_priv.h"
#include "umdev/dev_testing.h"

#define ST_ERROR VFIO_USER_DEVICE_STATE_ERROR
#define ST_STOP VFIO_USER_DEVICE_STATE_STOP
#define ST_RUNNING VFIO_USER_DEVICE_STATE_RUNNING
#define ST_STOP_COPY VFIO_USER_DEVICE_STATE_STOP_COPY
#define ST_RESUMING VFIO_USER_DEVICE_STATE_RESUMING
#define ST_PRE_COPY VFIO_USER_DEVICE_STATE_PRE_COPY

/*
 * The next state on the way from [cur] to [target], P2P states already
 * skipped (the kernel walks through RUNNING_P2P, which behaves as RUNNING
 * or STOP where a device lacks it). ERROR: no way.
 */
static const uint8_t next_state[VFIO_USER_DEVICE_STATE_COUNT]
                               [VFIO_USER_DEVICE_STATE_COUNT] = {
    [ST_STOP] = {
        [ST_STOP] = ST_STOP, [ST_RUNNING] = ST_RUNNING,
        [ST_STOP_COPY] = ST_STOP_COPY, [ST_RESUMING] = ST_RESUMING,
        [ST_PRE_COPY] = ST_RUNNING,
    },
    [ST_RUNNING] = {
        [ST_STOP] = ST_STOP, [ST_RUNNING] = ST_RUNNING,
        [ST_STOP_COPY] = ST_STOP, [ST_RESUMING] = ST_STOP,
        [ST_PRE_COPY] = ST_PRE_COPY,
    },
    [ST_STOP_COPY] = {
        [ST_STOP] = ST_STOP, [ST_RUNNING] = ST_STOP,
        [ST_STOP_COPY] = ST_STOP_COPY, [ST_RESUMING] = ST_STOP,
        [ST_PRE_COPY] = ST_ERROR,
    },
    [ST_RESUMING] = {
        [ST_STOP] = ST_STOP, [ST_RUNNING] = ST_STOP,
        [ST_STOP_COPY] = ST_STOP, [ST_RESUMING] = ST_RESUMING,
        [ST_PRE_COPY] = ST_STOP,
    },
    [ST_PRE_COPY] = {
        [ST_STOP] = ST_RUNNING, [ST_RUNNING] = ST_RUNNING,
        [ST_STOP_COPY] = ST_STOP_COPY, [ST_RESUMING] = ST_RUNNING,
        [ST_PRE_COPY] = ST_PRE_COPY,
    },
};

/* The stream: this header, the configuration, then sections. */
#define MIG_MAGIC "UMDEVMIG"
#define MIG_FORMAT 1u

struct mig_header {
    char magic[8];
    uint32_t format;               /* MIG_FORMAT: the framing below */
    uint32_t dev_version;          /* umdev_mig_ops.version of the source */
    char type[UMDEV_MIG_TYPE_MAX]; /* NUL-padded */
    uint32_t config_len;
    uint32_t reserved;
    uint64_t reserved2;
};
_Static_assert(sizeof(struct mig_header) == 64, "mig header");

enum { SEC_PRECOPY = 1, SEC_STATE = 2, SEC_END = 3 };

struct mig_section {
    uint32_t kind;
    uint32_t reserved;
    uint64_t len;
};
_Static_assert(sizeof(struct mig_section) == 16, "mig section");

static const struct umdev_mig_ops *
mig_ops(const struct umdev_dev *dev)
{
    return dev->ops != NULL ? dev->ops->mig : NULL;
}

bool
dev_mig_supported(const struct umdev_dev *dev)
{
    const struct umdev_mig_ops *m = mig_ops(dev);

    return m != NULL && m->type != NULL && m->stop != NULL &&
           m->resume != NULL && m->save != NULL && m->load != NULL &&
           strlen(m->type) < UMDEV_MIG_TYPE_MAX;
}

bool
dev_mig_precopy(const struct umdev_dev *dev)
{
    return dev_mig_supported(dev) && mig_ops(dev)->precopy != NULL;
}

uint64_t
dev_mig_flags(const struct umdev_dev *dev)
{
    return VFIO_USER_MIGRATION_STOP_COPY |
           (dev_mig_precopy(dev) ? VFIO_USER_MIGRATION_PRE_COPY : 0);
}

uint32_t
umdev_dev_mig_state(const struct umdev_dev *dev)
{
    return dev->mig.state;
}

int
umdev_mig_buf_put(struct umdev_mig_buf *b, const void *data, size_t len)
{
    size_t cap;
    uint8_t *p;

    if (len > UMDEV_MIG_MAX_STATE || b->len > UMDEV_MIG_MAX_STATE - len)
        return -EFBIG;
    if (b->len + len > b->cap) {
        cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len)
            cap *= 2;
        p = realloc(b->data, cap);
        if (p == NULL)
            return -ENOMEM;
        b->data = p;
        b->cap = cap;
    }
    if (len != 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

static void
buf_free(struct umdev_mig_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* A section: its header, then what @fill writes, its length patched. */
static int
put_section(struct umdev_dev *dev, struct umdev_mig_buf *b, uint32_t kind,
            int (*fill)(void *opaque, struct umdev_mig_buf *out))
{
    struct mig_section sec = { .kind = kind };
    size_t at = b->len;
    int rc;

    rc = umdev_mig_buf_put(b, &sec, sizeof(sec));
    if (rc == 0 && fill != NULL)
        rc = fill(dev->opaque, b);
    if (rc < 0) {
        b->len = at;
        return rc;
    }
    sec.len = b->len - at - sizeof(sec);
    memcpy(b->data + at, &sec, sizeof(sec));
    return 0;
}

/* This device's configuration bytes, in @out (freed by the caller). */
static int
own_config(struct umdev_dev *dev, struct umdev_mig_buf *out)
{
    const struct umdev_mig_ops *m = mig_ops(dev);

    return m->config != NULL ? m->config(dev->opaque, out) : 0;
}

static int
put_header(struct umdev_dev *dev, struct umdev_mig_buf *b)
{
    const struct umdev_mig_ops *m = mig_ops(dev);
    struct umdev_mig_buf cfg = { 0 };
    struct mig_header h = { .format = MIG_FORMAT, .dev_version = m->version };
    int rc;

    memcpy(h.magic, MIG_MAGIC, sizeof(h.magic));
    strncpy(h.type, m->type, sizeof(h.type) - 1);
    rc = own_config(dev, &cfg);
    if (rc == 0 && cfg.len > UINT32_MAX)
        rc = -EFBIG;
    if (rc == 0) {
        h.config_len = (uint32_t)cfg.len;
        rc = umdev_mig_buf_put(b, &h, sizeof(h));
    }
    if (rc == 0)
        rc = umdev_mig_buf_put(b, cfg.data, cfg.len);
    buf_free(&cfg);
    return rc;
}

/*
 * Check the header and configuration of an incoming stream, once they
 * are all there. Return: 0 (*@done once checked), or why the stream
 * cannot be loaded here, logged.
 */
static int
check_header(struct umdev_dev *dev, const struct umdev_mig_buf *in, bool *done)
{
    const struct umdev_mig_ops *m = mig_ops(dev);
    struct umdev_mig_buf cfg = { 0 };
    struct mig_header h;
    int rc;

    *done = false;
    if (in->len < sizeof(h))
        return 0;
    memcpy(&h, in->data, sizeof(h));
    if (memcmp(h.magic, MIG_MAGIC, sizeof(h.magic)) != 0) {
        umdev_log(dev->log, LOG_ERR,
                  "%s: migration stream refused: not a "
                  "umdev stream",
                  dev->name);
        return -EINVAL;
    }
    if (h.format > MIG_FORMAT || h.dev_version > m->version) {
        umdev_log(dev->log, LOG_ERR,
                  "%s: migration stream refused: format "
                  "%u, %s version %u; this server reads format %u, "
                  "version %u and older",
                  dev->name, h.format, m->type, h.dev_version, MIG_FORMAT,
                  m->version);
        return -ENOTSUP;
    }
    if (h.format == 0 || memchr(h.type, 0, sizeof(h.type)) == NULL ||
        strcmp(h.type, m->type) != 0) {
        umdev_log(dev->log, LOG_ERR,
                  "%s: migration stream refused: it is "
                  "for a device of type \"%.*s\", this is \"%s\"",
                  dev->name, (int)sizeof(h.type), h.type, m->type);
        return -EINVAL;
    }
    if (h.config_len > UMDEV_MIG_MAX_STATE)
        return -EINVAL;
    if (in->len - sizeof(h) < h.config_len)
        return 0;
    rc = own_config(dev, &cfg);
    /* A device without configuration has none to compare (and no
     * buffer: memcmp() must not see its NULL). */
    if (rc == 0 && (cfg.len != h.config_len ||
                    (cfg.len != 0 &&
                     memcmp(cfg.data, in->data + sizeof(h), cfg.len) != 0))) {
        umdev_log(dev->log, LOG_ERR,
                  "%s: migration stream refused: the "
                  "source's configuration (queues, sizes, attributes) "
                  "differs from this device's",
                  dev->name);
        rc = -EINVAL;
    }
    buf_free(&cfg);
    if (rc == 0)
        *done = true;
    return rc;
}

int
dev_mig_write(struct umdev_dev *dev, const void *data, size_t len)
{
    struct dev_mig *mig = &dev->mig;
    int rc;

    if (mig->state != ST_RESUMING)
        return -EINVAL;
    if (mig->in_error)
        return mig->in_error;
    rc = umdev_mig_buf_put(&mig->in, data, len);
    if (rc == 0 && !mig->in_checked)
        rc = check_header(dev, &mig->in, &mig->in_checked);
    /* A stream refused once stays refused: later bytes cannot mend it,
     * and loading part of it would be worse. */
    if (rc < 0 && rc != -ENOMEM)
        mig->in_error = rc;
    return rc;
}

/* Find the sections of a complete stream. Return: 0 or -EINVAL. */
static int
parse_sections(struct umdev_dev *dev, const struct umdev_mig_buf *in,
               const uint8_t **early, size_t *early_len, const uint8_t **state,
               size_t *state_len, uint32_t *version)
{
    struct mig_header h;
    struct mig_section sec;
    size_t off;
    bool have_state = false;

    memcpy(&h, in->data, sizeof(h));
    *version = h.dev_version;
    *early = *state = NULL;
    *early_len = *state_len = 0;
    off = sizeof(h) + h.config_len;
    for (;;) {
        if (in->len - off < sizeof(sec))
            goto truncated;
        memcpy(&sec, in->data + off, sizeof(sec));
        off += sizeof(sec);
        if (sec.len > in->len - off)
            goto truncated;
        switch (sec.kind) {
        case SEC_PRECOPY:
            if (*early != NULL || have_state)
                goto bad;
            *early = in->data + off;
            *early_len = sec.len;
            break;
        case SEC_STATE:
            if (have_state)
                goto bad;
            have_state = true;
            *state = in->data + off;
            *state_len = sec.len;
            break;
        case SEC_END:
            if (!have_state || sec.len != 0 || off != in->len)
                goto bad;
            return 0;
        default:
            goto bad;
        }
        off += sec.len;
    }
truncated:
    umdev_log(dev->log, LOG_ERR,
              "%s: migration stream refused: it ends "
              "early (%zu bytes)",
              dev->name, in->len);
    return -EINVAL;
bad:
    umdev_log(dev->log, LOG_ERR,
              "%s: migration stream refused: malformed "
              "section at byte %zu",
              dev->name, off - sizeof(sec));
    return -EINVAL;
}

static int
parse_stream(struct umdev_dev *dev, const uint8_t **early, size_t *early_len,
             const uint8_t **state, size_t *state_len, uint32_t *version)
{
    /* A stream refused at its header is refused again, for that reason. */
    if (dev->mig.in_error)
        return dev->mig.in_error;
    if (!dev->mig.in_checked) {
        umdev_log(dev->log, LOG_ERR,
                  "%s: migration stream refused: it ends early (%zu bytes)",
                  dev->name, dev->mig.in.len);
        return -EINVAL;
    }
    return parse_sections(dev, &dev->mig.in, early, early_len, state, state_len,
                          version);
}

int
dev_mig_check_stream(struct umdev_dev *dev, const void *data, size_t len)
{
    /* Only read: the cast lets the checks share the buffer type. */
    const struct umdev_mig_buf in = { .data = (uint8_t *)data, .len = len };
    const uint8_t *early, *state;
    size_t early_len, state_len;
    uint32_t version;
    bool done;
    int rc;

    if (!dev_mig_supported(dev))
        return -ENOTSUP;
    rc = check_header(dev, &in, &done);
    if (rc < 0)
        return rc;
    if (!done) {
        umdev_log(dev->log, LOG_ERR,
                  "%s: migration stream refused: it ends early (%zu bytes)",
                  dev->name, len);
        return -EINVAL;
    }
    return parse_sections(dev, &in, &early, &early_len, &state, &state_len,
                          &version);
}

static void
drop_streams(struct dev_mig *mig)
{
    buf_free(&mig->out);
    buf_free(&mig->in);
    mig->in_checked = false;
    mig->in_error = 0;
}

/* Does the device act in @st? The rest are the stopped states, in which
 * it raises no interrupt (lib/dev holds them) and touches no memory. */
static bool
running(uint32_t st)
{
    return st == ST_RUNNING || st == ST_PRE_COPY;
}

/* One arc; on failure nothing changed, except a failed load (ERROR). */
static int
step(struct umdev_dev *dev, uint32_t to)
{
    const struct umdev_mig_ops *m = mig_ops(dev);
    struct dev_mig *mig = &dev->mig;
    struct umdev_mig_buf out = { 0 };
    /* Set by parse_stream() when it succeeds; initialised for the
     * compiler, which cannot see that they are read only then. */
    const uint8_t *early = NULL, *state = NULL;
    size_t early_len = 0, state_len = 0;
    uint32_t version = 0;
    int rc = 0;

    switch (mig->state * 16 + to) {
    case ST_RUNNING * 16 + ST_STOP:
        rc = m->stop(dev->opaque);
        break;
    case ST_STOP * 16 + ST_RUNNING:
        /* What was held goes first, then the device runs: its own
         * interrupts from then on are signalled one by one, as a running
         * device's are, not folded into the held ones. */
        dev_irq_release(dev);
        m->resume(dev->opaque);
        break;
    case ST_RUNNING * 16 + ST_PRE_COPY:
        rc = put_header(dev, &out);
        if (rc == 0)
            rc = put_section(dev, &out, SEC_PRECOPY, m->precopy);
        if (rc < 0) {
            buf_free(&out);
            break;
        }
        mig->out = out;
        break;
    case ST_STOP * 16 + ST_STOP_COPY:
        rc = put_header(dev, &out);
        if (rc == 0)
            rc = put_section(dev, &out, SEC_STATE, m->save);
        if (rc == 0)
            rc = put_section(dev, &out, SEC_END, NULL);
        if (rc < 0) {
            buf_free(&out);
            break;
        }
        mig->out = out;
        break;
    case ST_PRE_COPY * 16 + ST_STOP_COPY: {
        size_t at = mig->out.len;

        /* The rest of the stream the client is reading: the final state
         * after what pre-copy sent. */
        rc = m->stop(dev->opaque);
        if (rc < 0)
            break;
        rc = put_section(dev, &mig->out, SEC_STATE, m->save);
        if (rc == 0)
            rc = put_section(dev, &mig->out, SEC_END, NULL);
        if (rc < 0) {
            mig->out.len = at;
            m->resume(dev->opaque);
        }
        break;
    }
    case ST_PRE_COPY * 16 + ST_RUNNING:
    case ST_STOP_COPY * 16 + ST_STOP:
        /* The saving session ends; what was not read is dropped. */
        buf_free(&mig->out);
        break;
    case ST_STOP * 16 + ST_RESUMING:
        drop_streams(mig);
        break;
    case ST_RESUMING * 16 + ST_STOP:
        rc =
            parse_stream(dev, &early, &early_len, &state, &state_len, &version);
        if (rc < 0)
            break; /* nothing loaded: still RESUMING, the device as it was */
        rc = m->load(dev->opaque, version, early, early_len, state, state_len);
        if (rc < 0) {
            umdev_log(dev->log, LOG_ERR,
                      "%s: loading the migrated state "
                      "failed: %s; the device needs a reset",
                      dev->name, strerror(-rc));
            drop_streams(mig);
            mig->state = ST_ERROR;
            return rc;
        }
        drop_streams(mig);
        break;
    default:
        return -EINVAL; /* not an arc: a bug in next_state */
    }
    if (rc < 0)
        return rc;
    /*
     * The hold starts once the device's stop hook has returned (what it
     * raised while stopping was raised by a running device) and ends
     * just before its resume hook (above: STOP -> RUNNING is the only
     * arc from a stopped state to a running one).
     */
    if (running(mig->state) && !running(to))
        dev_irq_hold(dev);
    mig->state = to;
    return 0;
}

int
dev_mig_set_state(struct umdev_dev *dev, uint32_t target)
{
    struct dev_mig *mig = &dev->mig;
    uint32_t next;
    int rc;

    if (!dev_mig_supported(dev))
        return -ENOTSUP;
    if (target >= VFIO_USER_DEVICE_STATE_COUNT || target == ST_ERROR ||
        target == VFIO_USER_DEVICE_STATE_RUNNING_P2P ||
        target == VFIO_USER_DEVICE_STATE_PRE_COPY_P2P ||
        (target == ST_PRE_COPY && !dev_mig_precopy(dev)))
        return -EINVAL;
    if (mig->state == ST_ERROR)
        return -EINVAL;
    /* Refuse an impossible path before taking any of its steps. */
    for (next = mig->state; next != target;) {
        next = next_state[next][target];
        if (next == ST_ERROR || (next == ST_PRE_COPY && !dev_mig_precopy(dev)))
            return -EINVAL;
    }
    while (mig->state != target) {
        rc = step(dev, next_state[mig->state][target]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

ssize_t
dev_mig_read(struct umdev_dev *dev, void *out, size_t size)
{
    struct umdev_mig_buf *b = &dev->mig.out;
    size_t n;

    if (dev->mig.state != ST_PRE_COPY && dev->mig.state != ST_STOP_COPY)
        return -EINVAL;
    n = b->len - b->pos;
    if (n > size)
        n = size;
    if (n != 0)
        memcpy(out, b->data + b->pos, n);
    b->pos += n;
    return (ssize_t)n;
}

int
dev_mig_precopy_info(struct umdev_dev *dev, struct umdev_wire_precopy_info *out)
{
    const struct umdev_mig_ops *m = mig_ops(dev);

    if (!dev_mig_precopy(dev))
        return -ENOTSUP;
    /* As the kernel's VFIO_MIG_GET_PRECOPY_INFO: only in PRE_COPY. */
    if (dev->mig.state != ST_PRE_COPY)
        return -EINVAL;
    out->initial_bytes = dev->mig.out.len - dev->mig.out.pos;
    out->dirty_bytes =
        m->precopy_dirty != NULL ? m->precopy_dirty(dev->opaque) : 0;
    return 0;
}

void
dev_mig_reset(struct umdev_dev *dev, bool *stopped)
{
    struct dev_mig *mig = &dev->mig;

    *stopped = !running(mig->state);
    drop_streams(mig);
    /* What a stopped device had raised belongs to the state the reset
     * discards. */
    dev_irq_drop_held(dev);
    mig->state = ST_RUNNING;
}

void
umdev_dev_mig_power_on(struct umdev_dev *dev)
{
    drop_streams(&dev->mig);
    dev_irq_drop_held(dev);
    dev->mig.state = ST_RUNNING;
}

void
dev_mig_fini(struct umdev_dev *dev)
{
    drop_streams(&dev->mig);
}
