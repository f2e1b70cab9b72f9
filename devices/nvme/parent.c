/*
 * The nvme parent behind the parent-driver interface
 * (include/umdev/parent.h): a storage pool handing out NVMe controllers
 * of 1, 4 or 8 I/O queue pairs, each with one namespace backed by its own
 * sparse file, and building an instance's controller (README.md) inside
 * its worker.
 *
 * As with accel, each instance's worker owns its controller, poller
 * thread and backing file: nothing is shared between instances, and a
 * worker that dies takes only its own controller with it.
 *
 * attrs (all optional; nvme_attrs below for people):
 *   "size":    namespace bytes, NVME_MIN_SIZE..NVME_MAX_SIZE, a multiple
 *              of 4096; an integer, or a string with a K/M/G/T suffix
 *              (powers of 1024). Default NVME_DEFAULT_SIZE.
 *   "backend": "file" (default) or "null".
 *   "dir":     absolute directory of the backing file <uuid>.img
 *              (default $UMDEV_NVME_DIR of umdevd's environment, else
 *              the parent's directory under STATEDIR, args->datadir).
 *   "poll_max_us": the poller's longest poll window, NVME_DEFAULT_POLL_US
 *              to NVME_POLL_MAX_LIMIT_US; an integer or its decimal
 *              string. Default NVME_DEFAULT_POLL_MAX_US.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <uuid/uuid.h>

#include "nvme.h"
#include "nvme_attrs.h"
#include "nvme_host.h"
#include "nvme_parent.h"
#include "umdev/dev.h"
#include "umdev/parent.h"

/* I/O queue pairs the parent hands out: each one a poller's share of
 * work; 32 keeps a few 8-queue controllers on this two-CPU machine. */
#define NVME_POOL_QUEUE_PAIRS 32u

/* Backing storage is counted in MiB (pool units are 32-bit): a namespace
 * claims its size rounded up to one. The declared capacity is the
 * largest namespace's; size_pools lowers it to what the host has. */
#define NVME_MIB (1ull << 20)
#define NVME_POOL_STORAGE_MIB ((uint32_t)(NVME_MAX_SIZE / NVME_MIB))

enum { NVME_POOL_QP, NVME_POOL_STORAGE };

static const struct umdev_parent_pool nvme_pools[] = {
    [NVME_POOL_QP] = { .name = "queue_pairs",
                       .capacity = NVME_POOL_QUEUE_PAIRS },
    [NVME_POOL_STORAGE] = { .name = "storage_mib",
                            .capacity = NVME_POOL_STORAGE_MIB },
};

#define NVME_TYPE(k, qs)                                                       \
    {                                                                          \
        .name = #k "q",                                                        \
        .description = "NVMe controller with " qs ", one namespace on a "      \
                       "sparse file (PCI 1234:11ed, class 010802): the "       \
                       "guest's nvme driver; MSI-X, shadow doorbells",         \
        .costs = { { .pool = "queue_pairs", .amount = k } }, .ncosts = 1,      \
    }

static const struct umdev_parent_type nvme_types[] = {
    NVME_TYPE(1, "1 I/O queue pair"),
    NVME_TYPE(4, "4 I/O queue pairs"),
    NVME_TYPE(8, "8 I/O queue pairs"),
};
#define NVME_NTYPES (sizeof(nvme_types) / sizeof(nvme_types[0]))

static unsigned int
nvme_type_queues(const char *type)
{
    static const char prefix[] = "nvme-";
    unsigned int i;

    if (type == NULL)
        return 0;
    if (strncmp(type, prefix, sizeof(prefix) - 1) == 0)
        type += sizeof(prefix) - 1;
    for (i = 0; i < NVME_NTYPES; i++)
        if (strcmp(type, nvme_types[i].name) == 0)
            return nvme_types[i].costs[0].amount;
    return 0;
}

/* poll_max_us: an integer, or its decimal string as --attr gives it. */
static int
parse_poll_max(struct json_object *v, unsigned int *out, char *err,
               size_t errlen)
{
    long long n = -1;

    if (json_object_is_type(v, json_type_int)) {
        n = (long long)json_object_get_int64(v);
    } else if (json_object_is_type(v, json_type_string)) {
        const char *str = json_object_get_string(v);
        char *end;

        errno = 0;
        n = strtoll(str, &end, 10);
        if (errno != 0 || end == str || *end != '\0' || str[0] == '-' ||
            str[0] == '+' || str[0] == ' ')
            n = -1;
    }
    if (n < (long long)NVME_DEFAULT_POLL_US ||
        n > (long long)NVME_POLL_MAX_LIMIT_US) {
        snprintf(err, errlen,
                 "attribute poll_max_us must be microseconds, %u to %u",
                 NVME_DEFAULT_POLL_US, NVME_POLL_MAX_LIMIT_US);
        return -EINVAL;
    }
    *out = (unsigned int)n;
    return 0;
}

static int
parse_size(struct json_object *v, uint64_t *out, char *err, size_t errlen)
{
    uint64_t n, mult = 1;

    if (json_object_is_type(v, json_type_int)) {
        int64_t i = json_object_get_int64(v);

        if (i < 0)
            goto bad;
        n = (uint64_t)i;
    } else if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        char *end;

        if (*s < '0' || *s > '9')
            goto bad;
        errno = 0;
        n = strtoull(s, &end, 10);
        if (errno != 0)
            goto bad;
        switch (*end) {
        case 'K':
            mult = 1ull << 10;
            break;
        case 'M':
            mult = 1ull << 20;
            break;
        case 'G':
            mult = 1ull << 30;
            break;
        case 'T':
            mult = 1ull << 40;
            break;
        case '\0':
            break;
        default:
            goto bad;
        }
        if (*end != '\0' && end[1] != '\0')
            goto bad;
        if (n > UINT64_MAX / mult)
            goto range;
        n *= mult;
    } else {
        goto bad;
    }
    if (n < NVME_MIN_SIZE || n > NVME_MAX_SIZE || n % 4096 != 0)
        goto range;
    *out = n;
    return 0;
bad:
    snprintf(err, errlen,
             "attribute size must be bytes: an integer or a number with a "
             "K, M, G or T suffix (got %s)",
             json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
    return -EINVAL;
range:
    snprintf(err, errlen,
             "attribute size=%s is out of range: 1M to 16T, a multiple of "
             "4096",
             json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
    return -EINVAL;
}

/* Validate @attrs and, when @out is not NULL, return the settings. */
static int
nvme_parse_attrs(struct json_object *attrs, struct nvme_settings *out,
                 char *err, size_t errlen)
{
    struct nvme_settings s = { .size = NVME_DEFAULT_SIZE,
                               .poll_max_us = NVME_DEFAULT_POLL_MAX_US };
    const char *env = getenv("UMDEV_NVME_DIR");

    /* Empty: the parent's data directory, which create() is given. */
    if (env != NULL && env[0] == '/')
        snprintf(s.dir, sizeof(s.dir), "%s", env);
    if (attrs != NULL && !json_object_is_type(attrs, json_type_object)) {
        snprintf(err, errlen, "attrs must be a JSON object");
        return -EINVAL;
    }
    if (attrs != NULL) {
        json_object_object_foreach(attrs, key, v)
        {
            int rc;

            if (strcmp(key, "size") == 0) {
                rc = parse_size(v, &s.size, err, errlen);
                if (rc < 0)
                    return rc;
            } else if (strcmp(key, "backend") == 0) {
                const char *b = json_object_is_type(v, json_type_string)
                                    ? json_object_get_string(v)
                                    : "";

                if (strcmp(b, "file") != 0 && strcmp(b, "null") != 0) {
                    snprintf(err, errlen,
                             "attribute backend must be file or null");
                    return -EINVAL;
                }
                s.null = strcmp(b, "null") == 0;
            } else if (strcmp(key, "dir") == 0) {
                const char *d = json_object_is_type(v, json_type_string)
                                    ? json_object_get_string(v)
                                    : "";

                if (d[0] != '/' || strlen(d) >= sizeof(s.dir) - 48) {
                    snprintf(err, errlen,
                             "attribute dir must be an absolute directory "
                             "path of at most %zu bytes",
                             sizeof(s.dir) - 49);
                    return -EINVAL;
                }
                snprintf(s.dir, sizeof(s.dir), "%s", d);
                s.dir_set = true;
            } else if (strcmp(key, "poll_max_us") == 0) {
                rc = parse_poll_max(v, &s.poll_max_us, err, errlen);
                if (rc < 0)
                    return rc;
            } else {
                snprintf(err, errlen,
                         "unknown attribute '%s' for an nvme instance "
                         "(allowed: size, backend, dir, poll_max_us)",
                         key);
                return -EINVAL;
            }
        }
    }
    if (out != NULL)
        *out = s;
    return 0;
}

int
nvme_settings_parse(struct json_object *attrs, struct nvme_settings *out,
                    char *err, size_t errlen)
{
    return nvme_parse_attrs(attrs, out, err, errlen);
}

static int
nvme_check_attrs(const char *type, struct json_object *attrs, char *err,
                 size_t errlen)
{
    (void)type;
    return nvme_parse_attrs(attrs, NULL, err, errlen);
}

/* Point @s at @datadir unless the attributes or the environment named a
 * directory. */
static int
default_dir(struct nvme_settings *s, const char *datadir, char *err,
            size_t errlen)
{
    if (s->dir[0] != '\0')
        return 0;
    if (datadir == NULL || datadir[0] != '/' ||
        snprintf(s->dir, sizeof(s->dir), "%s", datadir) >=
            (int)sizeof(s->dir) - 48) {
        snprintf(err, errlen,
                 "no directory for the backing file: set attribute dir");
        return -EINVAL;
    }
    return 0;
}

int
nvme_backing_open(const struct nvme_settings *s, const char *uuid, uid_t uid,
                  gid_t gid, char *path, size_t pathlen, char *err,
                  size_t errlen)
{
    struct statvfs vfs;
    struct stat st;
    int fd, rc;

    /* The directory is made as needed, 0700: only umdevd and the
     * instance's worker (which gets its file) look inside. */
    if (mkdir(s->dir, 0700) < 0 && errno != EEXIST) {
        rc = -errno;
        snprintf(err, errlen, "cannot create backing directory %s: %s", s->dir,
                 strerror(-rc));
        return rc;
    }
    if (snprintf(path, pathlen, "%s/%s.img", s->dir, uuid) >= (int)pathlen) {
        snprintf(err, errlen, "backing file path too long");
        return -ENAMETOOLONG;
    }
    if (statvfs(s->dir, &vfs) == 0 &&
        s->size > (uint64_t)vfs.f_blocks * vfs.f_frsize) {
        snprintf(err, errlen,
                 "size %llu is larger than the file system of %s (%llu "
                 "bytes)",
                 (unsigned long long)s->size, s->dir,
                 (unsigned long long)vfs.f_blocks * vfs.f_frsize);
        return -ENOSPC;
    }
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot open backing file %s: %s", path,
                 strerror(-rc));
        return rc;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "backing file %s is not a regular file", path);
        close(fd);
        return -EINVAL;
    }
    /* A namespace never shrinks under data it had: refuse rather than
     * cut the file (restore the size, or remove the file). */
    if ((uint64_t)st.st_size > s->size) {
        snprintf(err, errlen,
                 "backing file %s holds %llu bytes, more than size=%llu: "
                 "set size back, or remove the file to start empty",
                 path, (unsigned long long)st.st_size,
                 (unsigned long long)s->size);
        close(fd);
        return -EINVAL;
    }
    /* Sparse: ftruncate allocates nothing. */
    if ((uint64_t)st.st_size < s->size && ftruncate(fd, (off_t)s->size) < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot size backing file %s: %s", path,
                 strerror(-rc));
        close(fd);
        return rc;
    }
    if (fchown(fd, uid, gid) < 0 && errno != EPERM) {
        rc = -errno;
        snprintf(err, errlen, "cannot hand backing file %s to its owner: %s",
                 path, strerror(-rc));
        close(fd);
        return rc;
    }
    close(fd);
    return 0;
}

struct nvme_instance {
    struct nvme_ctrl *ctrl;
    struct nvme_settings s;
    unsigned int nq;
    char path[512];
};

/*
 * The backing file and the backend over it. In the default directory
 * (root's, 0700) root makes the file and hands it to the instance owner;
 * in a directory the definition names (`dir`), everything happens with
 * the owner's filesystem identity (setfsuid/setfsgid, this thread only),
 * so a definition reaches no place its owner could not (docs/SANDBOX.md,
 * "Host ends").
 */
static int
open_backing(struct nvme_instance *ni, const struct umdev_instance_args *args,
             struct nvme_be **be, char *err, size_t errlen)
{
    bool as_owner = ni->s.dir_set && geteuid() == 0;
    uid_t uid = 0;
    gid_t gid = 0;
    int rc;

    if (as_owner) {
        gid = (gid_t)setfsgid(args->gid);
        uid = (uid_t)setfsuid(args->uid);
        /* setfsuid() reports no error: ask again (-1 changes nothing). */
        if ((uid_t)setfsuid((uid_t)-1) != args->uid ||
            (gid_t)setfsgid((gid_t)-1) != args->gid) {
            rc = -EPERM;
            snprintf(err, errlen,
                     "cannot take the instance owner's identity (%u:%u) "
                     "for the backing file",
                     (unsigned int)args->uid, (unsigned int)args->gid);
            goto out;
        }
    }
    rc = nvme_backing_open(&ni->s, args->uuid, args->uid, args->gid, ni->path,
                           sizeof(ni->path), err, errlen);
    if (rc == 0)
        rc = nvme_be_open_file(ni->path, ni->s.size, be, err, errlen);
out:
    if (as_owner) {
        setfsuid(uid);
        setfsgid(gid);
    }
    return rc;
}

static void
nvme_parent_destroy(struct umdev_instance *inst)
{
    struct nvme_instance *ni = inst->priv;

    if (ni == NULL)
        return;
    nvme_ctrl_destroy(ni->ctrl);
    free(ni);
    inst->priv = NULL;
}

static struct json_object *
nvme_parent_describe(struct umdev_instance *inst)
{
    struct nvme_instance *ni = inst->priv;
    struct json_object *o = json_object_new_object();
    struct nvme_ctrl_stats st;
    struct umdev_dev_stats ds;
    struct timespec cpu;

    nvme_ctrl_get_stats(ni->ctrl, &st);
    umdev_dev_get_stats(inst->dev, &ds);
    json_object_object_add(o, "queues", json_object_new_int((int)ni->nq));
    json_object_object_add(o, "size",
                           json_object_new_int64((int64_t)ni->s.size));
    json_object_object_add(
        o, "backend", json_object_new_string(ni->s.null ? "null" : "file"));
    if (!ni->s.null) {
        json_object_object_add(o, "file", json_object_new_string(ni->path));
        json_object_object_add(o, "o_direct",
                               json_object_new_boolean(st.direct));
    }
    json_object_object_add(o, "ready", json_object_new_boolean(st.ready));
    json_object_object_add(o, "fatal", json_object_new_boolean(st.fatal));
    json_object_object_add(o, "shadow_doorbells",
                           json_object_new_boolean(st.shadow));
    json_object_object_add(o, "commands",
                           json_object_new_int64((int64_t)st.commands));
    json_object_object_add(o, "io_commands",
                           json_object_new_int64((int64_t)st.io_commands));
    json_object_object_add(o, "errors",
                           json_object_new_int64((int64_t)st.errors));
    json_object_object_add(o, "read_bytes",
                           json_object_new_int64((int64_t)st.read_bytes));
    json_object_object_add(o, "written_bytes",
                           json_object_new_int64((int64_t)st.written_bytes));
    json_object_object_add(o, "doorbell_writes",
                           json_object_new_int64((int64_t)st.doorbells));
    json_object_object_add(o, "flushes",
                           json_object_new_int64((int64_t)st.flushes));
    json_object_object_add(o, "poller_io_waits",
                           json_object_new_int64((int64_t)st.io_waits));
    json_object_object_add(o, "poller_wakeups",
                           json_object_new_int64((int64_t)st.wakeups));
    json_object_object_add(
        o, "poll_window_us",
        json_object_new_int64((int64_t)(st.poll_window_ns / 1000u)));
    json_object_object_add(
        o, "poll_max_us",
        json_object_new_int64((int64_t)(st.poll_max_ns / 1000u)));
    json_object_object_add(o, "irqs", json_object_new_int64((int64_t)st.irqs));
    json_object_object_add(o, "resets",
                           json_object_new_int64((int64_t)st.resets));
    /* Socket messages per I/O command: the data path's cost in traps. */
    json_object_object_add(
        o, "msgs_per_io",
        json_object_new_double(
            st.io_commands ? (double)ds.msgs / (double)st.io_commands : 0.0));
    /* Its cost in CPU: under umdevd the process is the instance's worker
     * alone (poller, backend and message threads). */
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu) == 0) {
        uint64_t us =
            (uint64_t)cpu.tv_sec * 1000000u + (uint64_t)cpu.tv_nsec / 1000u;

        json_object_object_add(o, "cpu_ms",
                               json_object_new_int64((int64_t)(us / 1000u)));
        json_object_object_add(
            o, "cpu_us_per_io",
            json_object_new_double(
                st.io_commands ? (double)us / (double)st.io_commands : 0.0));
    }
    return o;
}

static int
nvme_parent_create(const struct umdev_instance_args *args,
                   struct umdev_instance *out)
{
    const struct umdev_logger *log = args->log;
    struct nvme_ctrl_config cc = { .log = log, .type = args->type };
    struct nvme_instance *ni;
    struct nvme_be *be = NULL;
    uuid_t u;
    char err[320];
    int rc;

    ni = calloc(1, sizeof(*ni));
    if (ni == NULL)
        return -ENOMEM;
    ni->nq = nvme_type_queues(args->type);
    if (ni->nq == 0) {
        umdev_log(log, LOG_ERR, "no nvme type '%s'", args->type);
        rc = -EINVAL;
        goto fail;
    }
    rc = nvme_parse_attrs(args->attrs, &ni->s, err, sizeof(err));
    if (rc == 0)
        rc = default_dir(&ni->s, args->datadir, err, sizeof(err));
    if (rc == 0 && uuid_parse(args->uuid, u) != 0) {
        snprintf(err, sizeof(err), "instance UUID '%s' does not parse",
                 args->uuid);
        rc = -EINVAL;
    }
    if (rc == 0 && ni->s.null)
        rc = nvme_be_open_null(&be);
    else if (rc == 0)
        rc = open_backing(ni, args, &be, err, sizeof(err));
    if (rc < 0) {
        if (rc == -ENOMEM)
            snprintf(err, sizeof(err), "out of memory");
        umdev_log(log, LOG_ERR, "%s", err);
        goto fail;
    }
    cc.name = "nvme";
    cc.nr_io_queues = ni->nq;
    cc.size = ni->s.size;
    cc.be = be;
    cc.poll_max_us = ni->s.poll_max_us;
    memcpy(cc.uuid, u, 16);
    rc = nvme_ctrl_create(&cc, &ni->ctrl);
    if (rc < 0) {
        umdev_log(log, LOG_ERR, "cannot create the NVMe controller: %s",
                  strerror(-rc));
        goto fail;
    }
    out->dev = nvme_ctrl_dev(ni->ctrl);
    out->pci = nvme_ctrl_pci(ni->ctrl);
    out->priv = ni;
    umdev_log(log, LOG_INFO, "nvme: %u I/O queue pair%s, %llu bytes, %s%s%s",
              ni->nq, ni->nq == 1 ? "" : "s", (unsigned long long)ni->s.size,
              ni->s.null ? "null backend" : "backing file ",
              ni->s.null ? "" : ni->path, "");
    return 0;
fail:
    free(ni);
    return rc;
}

/* The storage pool: the free space of the data directory's file system
 * now, in MiB. Files are sparse, so this bounds what the namespaces
 * promise rather than reserving it. */
static int
nvme_size_pools(const char *datadir, uint32_t *cap, size_t npools)
{
    struct statvfs vfs;
    uint64_t mib;

    if (datadir == NULL || npools <= NVME_POOL_STORAGE)
        return -EINVAL;
    if (statvfs(datadir, &vfs) < 0)
        return -errno;
    mib = (uint64_t)vfs.f_bavail * vfs.f_frsize / NVME_MIB;
    if (mib < cap[NVME_POOL_STORAGE])
        cap[NVME_POOL_STORAGE] = (uint32_t)mib;
    return 0;
}

static int
nvme_attr_costs(const char *type, struct json_object *attrs,
                struct umdev_parent_cost *out, size_t max, char *err,
                size_t errlen)
{
    struct nvme_settings s;
    int rc;

    (void)type;
    rc = nvme_parse_attrs(attrs, &s, err, errlen);
    if (rc < 0)
        return rc;
    /* A null namespace stores nothing. */
    if (s.null)
        return 0;
    if (max < 1)
        return -EINVAL;
    out[0].pool = nvme_pools[NVME_POOL_STORAGE].name;
    out[0].amount = (uint32_t)((s.size + NVME_MIB - 1) / NVME_MIB);
    return 1;
}

/* The backing file: named, and removed on request, with the same
 * filesystem identity that made it (open_backing). */
static int
nvme_instance_data(const struct umdev_instance_args *args, bool remove,
                   char *where, size_t len)
{
    struct nvme_settings s;
    char path[4160];
    uid_t uid = 0;
    gid_t gid = 0;
    bool as_owner;
    int rc;

    where[0] = '\0';
    rc = nvme_parse_attrs(args->attrs, &s, where, len);
    if (rc == 0)
        rc = default_dir(&s, args->datadir, where, len);
    if (rc < 0 || s.null)
        return rc;
    snprintf(path, sizeof(path), "%s/%s.img", s.dir, args->uuid);
    as_owner = s.dir_set && geteuid() == 0;
    if (!remove) {
        if (access(path, F_OK) == 0)
            snprintf(where, len, "backing file %s", path);
        return 0;
    }
    if (as_owner) {
        gid = (gid_t)setfsgid(args->gid);
        uid = (uid_t)setfsuid(args->uid);
        if ((uid_t)setfsuid((uid_t)-1) != args->uid ||
            (gid_t)setfsgid((gid_t)-1) != args->gid) {
            snprintf(where, len,
                     "cannot take the instance owner's identity (%u:%u) "
                     "to remove %s",
                     (unsigned int)args->uid, (unsigned int)args->gid, path);
            rc = -EPERM;
            goto out;
        }
    }
    if (unlink(path) == 0) {
        snprintf(where, len, "backing file %s", path);
    } else if (errno != ENOENT) {
        rc = -errno;
        snprintf(where, len, "cannot remove backing file %s: %s", path,
                 strerror(-rc));
    }
out:
    if (as_owner) {
        setfsuid(uid);
        setfsgid(gid);
    }
    return rc;
}

static const struct umdev_parent_ops nvme_parent_ops = {
    .check_attrs = nvme_check_attrs,
    .create = nvme_parent_create,
    .destroy = nvme_parent_destroy,
    .describe = nvme_parent_describe,
    .exercise = nvme_exercise,
    .size_pools = nvme_size_pools,
    .attr_costs = nvme_attr_costs,
    .instance_data = nvme_instance_data,
};

const struct umdev_parent nvme_parent = {
    .abi_version = UMDEV_PARENT_ABI_VERSION,
    .name = "nvme",
    .pools = nvme_pools,
    .npools = sizeof(nvme_pools) / sizeof(nvme_pools[0]),
    .types = nvme_types,
    .ntypes = NVME_NTYPES,
    .ops = &nvme_parent_ops,
    .attrs = nvme_attrs,
    .nattrs = NVME_NATTRS,
    /* Everything a restart needs is in the handover: its state through
     * the migration hooks, its backing file opened again by path. */
    .flags = UMDEV_PARENT_F_RESTARTABLE,
};
