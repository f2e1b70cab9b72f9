/*
 * The instance table and worker supervision (supervisor.h, where the state
 * arcs are listed). Each running instance is one forked worker; the
 * supervisor owns its listening socket's path, its resources in the mdev
 * registry, and a SOCK_SEQPACKET channel carrying JSON events and
 * requests. Results of requests travel up through
 * daemon_hooks.request_done, never by calling the control layer.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "callouts.h"
#include "defs.h"
#include "parents.h"
#include "supervisor.h"
#include "worker.h"

/* How long a read (info, stats) waits for the worker's answer. A worker
 * that takes longer (busy, or stopped by a debugger) is not harmed: the
 * reader gets an error (docs/CONTROL.md). */
#define INFO_TIMEOUT_MS 2000
/* Past a stop's grace period, how long before the worker is killed. */
#define STOP_MARGIN_MS 2000

static void cleanup_record(struct daemon *d, char kind, const char *path,
                           const char *name);
static void cleanup_forget(struct daemon *d, const char *name);
static void record_remove(struct daemon *d, const char *uuid);

/* A read waiting for the worker's info reply, or (@screen) its screen
 * reply. */
struct info_reader {
    void *waiter; /* the handlers' record, opaque here */
    int64_t due;  /* when it gets an error instead (ms, monotonic) */
    bool screen;
    struct info_reader *next;
};

static const char *const state_names[] = {
    [ST_STOPPED] = "stopped", [ST_STARTING] = "starting",
    [ST_RUNNING] = "running", [ST_STOPPING] = "stopping",
    [ST_FAILED] = "failed",
};

const char *
inst_state_name(enum inst_state s)
{
    return state_names[s];
}

struct instance *
inst_find(struct daemon *d, const char *uuid)
{
    char norm[MDEV_UUID_STR_LEN + 1];
    struct instance *i;

    if (mdev_uuid_parse(uuid, norm) < 0)
        return NULL;
    for (i = d->instances; i != NULL; i = i->next)
        if (strcmp(i->cfg.uuid, norm) == 0)
            return i;
    return NULL;
}

int
inst_add(struct daemon *d, struct inst_config *cfg, bool defined,
         struct instance **out, char *err, size_t errlen)
{
    struct instance *inst;

    *out = NULL;
    if (inst_find(d, cfg->uuid) != NULL) {
        snprintf(err, errlen,
                 "instance %s exists already (undefine or stop it, or pick "
                 "another UUID)",
                 cfg->uuid);
        return -EEXIST;
    }
    inst = calloc(1, sizeof(*inst));
    if (inst == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (snprintf(inst->sock_path, sizeof(inst->sock_path), "%s/%s.sock",
                 d->opts.rundir, cfg->uuid) >= (int)sizeof(inst->sock_path)) {
        free(inst);
        snprintf(err, errlen, "socket path too long (use a shorter --rundir)");
        return -ENAMETOOLONG;
    }
    inst->cfg = *cfg;
    cfg->attrs = NULL;
    inst->defined = defined;
    inst->daemon = d;
    inst->pid = -1;
    inst->pidfd = -1;
    inst->status_fd = -1;
    inst->restart_fd = -1;
    inst->exit_status = -1;
    inst->exit_signal = -1;
    inst->next = d->instances;
    d->instances = inst;
    d->ninstances++;
    *out = inst;
    return 0;
}

/* A transient instance's data (a backing file) goes with it: no
 * definition names it any more (handlers.c's no_kept_data() made sure it
 * was the instance's own). Once gone, a second call finds nothing. */
static void
transient_data_drop(struct daemon *d, struct instance *inst)
{
    if (inst->detached)
        return; /* its worker serves on, for the next umdevd */
    if (!inst->defined && inst->keep_data) {
        umdev_log(&d->log, LOG_INFO,
                  "%s: transient instance gone; its data stays (it moved)",
                  inst->cfg.uuid);
    } else if (!inst->defined) {
        char where[PATH_MAX + 64];

        if (parents_instance_data(d, &inst->cfg, true, where, sizeof(where)) <
            0)
            umdev_log(&d->log, LOG_ERR, "%s: transient instance gone: %s",
                      inst->cfg.uuid, where);
        else if (where[0] != '\0')
            umdev_log(&d->log, LOG_INFO,
                      "%s: transient instance gone: %s "
                      "removed",
                      inst->cfg.uuid, where);
    }
}

void
inst_remove(struct daemon *d, struct instance *inst)
{
    struct instance **pp;

    transient_data_drop(d, inst);

    for (pp = &d->instances; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == inst) {
            *pp = inst->next;
            d->ninstances--;
            break;
        }
    }
    umdev_loop_timer_cancel(d->loop, inst->deadline);
    umdev_loop_timer_cancel(d->loop, inst->info_timer);
    /* Readers are answered when the worker goes, before any removal. */
    while (inst->readers != NULL) {
        struct info_reader *r = inst->readers;

        inst->readers = r->next;
        free(r);
    }
    json_object_put(inst->cfg.attrs);
    json_object_put(inst->live.attrs);
    free(inst);
}

const struct inst_config *
inst_live(const struct instance *inst)
{
    return inst->live.attrs != NULL ? &inst->live : &inst->cfg;
}

/* Take a snapshot of the definition as the worker about to start gets
 * it. Return: 0 or -ENOMEM. */
static int
live_set(struct instance *inst)
{
    struct json_object *attrs = NULL;

    if (json_object_deep_copy(inst->cfg.attrs, &attrs, NULL) < 0)
        return -ENOMEM;
    json_object_put(inst->live.attrs);
    inst->live = inst->cfg;
    inst->live.attrs = attrs;
    return 0;
}

static void
live_clear(struct instance *inst)
{
    json_object_put(inst->live.attrs);
    memset(&inst->live, 0, sizeof(inst->live));
}

/* The attrs a modify of @from would send to make it @to. */
static struct json_object *
attrs_diff(struct json_object *from, struct json_object *to)
{
    struct json_object *diff = json_object_new_object(), *old;

    json_object_object_foreach(to, key, val)
    {
        if (!json_object_object_get_ex(from, key, &old) ||
            !json_object_equal(old, val))
            json_object_object_add(diff, key, json_object_get(val));
    }
    json_object_object_foreach(from, okey, oval)
    {
        (void)oval;
        if (!json_object_object_get_ex(to, okey, NULL))
            json_object_object_add(diff, okey, NULL);
    }
    return diff;
}

struct json_object *
inst_pending(const struct instance *inst)
{
    const struct inst_config *run = &inst->live, *def = &inst->cfg;
    struct json_object *p, *attrs, *full;

    if (inst->live.attrs == NULL)
        return NULL;
    /* The definition's own shape, for the fields that differ. */
    full = defs_to_json(def);
    p = json_object_new_object();
    if (strcmp(run->type, def->type) != 0)
        json_object_object_add(
            p, "type", json_object_get(json_object_object_get(full, "type")));
    if (run->uid != def->uid || run->gid != def->gid)
        json_object_object_add(
            p, "owner", json_object_get(json_object_object_get(full, "owner")));
    if (run->mode != def->mode)
        json_object_object_add(
            p, "mode", json_object_get(json_object_object_get(full, "mode")));
    attrs = attrs_diff(run->attrs, def->attrs);
    if (json_object_object_length(attrs) > 0)
        json_object_object_add(p, "attrs", attrs);
    else
        json_object_put(attrs);
    json_object_put(full);
    if (json_object_object_length(p) == 0) {
        json_object_put(p);
        return NULL;
    }
    return p;
}

void
inst_reconfigure(struct instance *inst, struct inst_config *cfg)
{
    json_object_put(inst->cfg.attrs);
    inst->cfg = *cfg;
    cfg->attrs = NULL;
}

struct json_object *
inst_to_json(const struct instance *inst)
{
    struct json_object *o = defs_to_json(inst_live(inst));
    struct json_object *pending = inst_pending(inst);

    /* The start policy belongs to the definition alone: it says what
     * the next daemon start does. */
    json_object_object_add(
        o, "start",
        json_object_new_string(inst->cfg.auto_start ? "auto" : "manual"));
    if (pending != NULL)
        json_object_object_add(o, "pending", pending);

    json_object_object_add(o, "defined",
                           json_object_new_boolean(inst->defined));
    json_object_object_add(
        o, "state", json_object_new_string(inst_state_name(inst->state)));
    json_object_object_add(o, "socket",
                           json_object_new_string(inst->sock_path));
    if (inst->pid > 0)
        json_object_object_add(o, "pid", json_object_new_int64(inst->pid));
    if (inst->lease)
        json_object_object_add(o, "lease_pid",
                               json_object_new_int64(inst->lease_pid));
    if (inst->state == ST_FAILED) {
        struct json_object *e = json_object_new_object();

        json_object_object_add(e, "status",
                               json_object_new_int(inst->exit_status));
        json_object_object_add(e, "signal",
                               json_object_new_int(inst->exit_signal));
        json_object_object_add(e, "reason",
                               json_object_new_string(inst->exit_reason));
        json_object_object_add(o, "exit", e);
    }
    return o;
}

/* Signal @inst's worker: an adopted one through its pidfd, since its pid
 * is not this daemon's child and could be recycled unseen. */
static void
worker_signal(struct instance *inst, int sig)
{
    if (inst->adopted) {
        if (inst->pidfd >= 0)
            pidfd_send_signal(inst->pidfd, sig, NULL, 0);
    } else if (inst->pid > 0) {
        kill(inst->pid, sig);
    }
}

/* A worker missed its deadline (start, stop grace): end it. */
static void
on_deadline(struct umdev_loop *loop, void *opaque)
{
    struct instance *inst = opaque;

    (void)loop;
    inst->deadline = 0;
    if (inst->pid > 0) {
        snprintf(inst->exit_reason, sizeof(inst->exit_reason),
                 "worker did not respond in time; killed");
        worker_signal(inst, SIGKILL);
    }
}

static void
deadline_set(struct daemon *d, struct instance *inst, int ms)
{
    umdev_loop_timer_cancel(d->loop, inst->deadline);
    inst->deadline =
        umdev_loop_timer_add(d->loop, (uint64_t)ms, on_deadline, inst);
    if (inst->deadline < 0)
        inst->deadline = 0; /* out of memory: the worker is not bounded */
}

static void
deadline_clear(struct daemon *d, struct instance *inst)
{
    umdev_loop_timer_cancel(d->loop, inst->deadline);
    inst->deadline = 0;
}

/*
 * The request in progress is done: tell its waiter, then do what had to
 * wait for it (a lessee that left meanwhile could not have its instance
 * stopped then; it is now).
 */
static void
request_done(struct daemon *d, struct instance *inst, int err, const char *msg,
             struct json_object *extra)
{
    enum inst_request req = inst->request;
    void *waiter = inst->waiter;

    inst->waiter = NULL;
    inst->request = REQ_NONE;
    if (inst->lease && inst->lessee == NULL && inst->state == ST_RUNNING)
        inst_stop(d, inst, 0, NULL);
    if (waiter != NULL)
        d->hooks.request_done(d, inst, waiter, req, err, msg, extra);
}

static void
wait_for(struct instance *inst, enum inst_request req, void *waiter)
{
    inst->request = req;
    inst->waiter = waiter;
}

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_info_timer(struct umdev_loop *loop, void *opaque);

/* Bound the oldest reader's wait, if one waits and no timer does. */
static void
info_timer_arm(struct daemon *d, struct instance *inst)
{
    int64_t left;

    if (inst->info_timer > 0 || inst->readers == NULL)
        return;
    left = inst->readers->due - now_ms();
    inst->info_timer = umdev_loop_timer_add(
        d->loop, left > 0 ? (uint64_t)left : 0, on_info_timer, inst);
    if (inst->info_timer < 0)
        inst->info_timer = 0; /* out of memory: the next read re-arms */
}

/* Which readers readers_answer() answers. */
enum reader_kind { READERS_ALL, READERS_INFO, READERS_SCREEN };

/*
 * Answer the readers of @inst whose time is up (@expired), or all of
 * them of @kind, with @err/@msg/@extra (and, for screen readers, the
 * worker's descriptor @fd, borrowed: -1 with an error). The list is
 * detached first: an answer travels up to the control socket, which
 * must find it consistent.
 */
static void
readers_answer_kind(struct daemon *d, struct instance *inst, bool expired,
                    enum reader_kind kind, int err, const char *msg,
                    struct json_object *extra, int fd)
{
    int64_t now = now_ms();
    struct info_reader *done = NULL, **tail = &done, **pp = &inst->readers;

    while (*pp != NULL && (!expired || (*pp)->due <= now)) {
        struct info_reader *r = *pp;

        if ((kind == READERS_INFO && r->screen) ||
            (kind == READERS_SCREEN && !r->screen)) {
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        *tail = r;
        tail = &r->next;
    }
    *tail = NULL;
    while (done != NULL) {
        struct info_reader *r = done;

        done = r->next;
        if (r->screen)
            d->hooks.screen_done(d, inst, r->waiter, err, msg, extra, fd);
        else
            d->hooks.request_done(d, inst, r->waiter, REQ_INFO, err, msg,
                                  extra);
        free(r);
    }
}

static void
readers_answer(struct daemon *d, struct instance *inst, bool expired, int err,
               const char *msg, struct json_object *extra)
{
    readers_answer_kind(d, inst, expired, READERS_ALL, err, msg, extra, -1);
}

static void
on_info_timer(struct umdev_loop *loop, void *opaque)
{
    struct instance *inst = opaque;
    struct daemon *d = inst->daemon;
    char msg[200];

    (void)loop;
    inst->info_timer = 0;
    /* The request stays on the channel: its late reply is dropped or
     * answers the readers then waiting, and no second one piles up
     * behind a worker that does not read. */
    snprintf(msg, sizeof(msg),
             "the worker of %s did not answer within %d ms (busy or "
             "stopped?); it was left running",
             inst->cfg.uuid, INFO_TIMEOUT_MS);
    readers_answer(d, inst, true, -ETIMEDOUT, msg, NULL);
    info_timer_arm(d, inst);
}

static void detach_one(struct daemon *d, struct instance *inst);
static void upgrade_settle(struct daemon *d, struct instance *inst);
static void restart_commit(struct daemon *d, struct instance *inst,
                           int64_t blackout_us);
static void restart_fail(struct daemon *d, struct instance *inst,
                         const char *why);

/* The oldest remaining reader's bound, after some were answered. */
static void
timer_rearm(struct daemon *d, struct instance *inst)
{
    umdev_loop_timer_cancel(d->loop, inst->info_timer);
    inst->info_timer = 0;
    info_timer_arm(d, inst);
}

/*
 * The worker's screen reply (docs/CONTROL.md "screen"): the screen, and
 * with it the descriptor of the memory it lies in (@fd, borrowed), or
 * why it has none ("error"). The screen readers share it.
 */
static void
screen_reply(struct daemon *d, struct instance *inst, struct json_object *ev,
             int fd)
{
    const char *why = json_str(ev, "error");
    struct json_object *v;
    int err = EIO;
    char msg[300];

    /* ENOTSUP: its type has no screen; anything else is the worker's
     * failure. */
    if (json_object_object_get_ex(ev, "errno", &v) &&
        json_object_get_int(v) == ENOTSUP)
        err = ENOTSUP;
    if (why == NULL && fd < 0)
        why = "it sent no descriptor";
    if (why != NULL) {
        snprintf(msg, sizeof(msg), "instance %s shows no screen: %.200s",
                 inst->cfg.uuid, why);
        readers_answer_kind(d, inst, false, READERS_SCREEN, -err, msg, NULL,
                            -1);
    } else {
        readers_answer_kind(d, inst, false, READERS_SCREEN, 0, NULL, ev, fd);
    }
    timer_rearm(d, inst);
}

static void
handle_event(struct daemon *d, struct instance *inst, struct json_object *ev,
             int fd)
{
    struct json_object *v;
    const char *kind = json_str(ev, "event");

    if (kind != NULL && strcmp(kind, "handed_over") == 0 &&
        inst->restart_pid > 0) {
        restart_commit(d, inst,
                       json_object_object_get_ex(ev, "blackout_us", &v)
                           ? json_object_get_int64(v)
                           : -1);
        return;
    }
    if (kind != NULL && strcmp(kind, "handover_aborted") == 0 &&
        inst->request == REQ_RESTART) {
        restart_fail(d, inst, json_str(ev, "message"));
        return;
    }
    if (kind != NULL && strcmp(kind, "ready") == 0 &&
        inst->state == ST_STARTING) {
        inst->state = ST_RUNNING;
        deadline_clear(d, inst);
        umdev_log(&d->log, LOG_INFO, "%s: running (pid %d, socket %s)",
                  inst->cfg.uuid, (int)inst->pid, inst->sock_path);
        request_done(d, inst, 0, NULL, NULL);
        if (d->upgrading && inst->state == ST_RUNNING)
            upgrade_settle(d, inst);
        return;
    }
    if (kind != NULL && strcmp(kind, "error") == 0) {
        if (json_object_object_get_ex(ev, "message", &v))
            snprintf(inst->exit_reason, sizeof(inst->exit_reason), "%s",
                     json_object_get_string(v));
        return;
    }
    if (json_object_object_get_ex(ev, "reply", &v) &&
        strcmp(json_object_get_string(v), "screen") == 0) {
        if (inst->screen_asked) {
            inst->screen_asked = false;
            screen_reply(d, inst, ev, fd);
        }
        return;
    }
    if (json_object_object_get_ex(ev, "reply", &v) && inst->info_asked) {
        inst->info_asked = false;
        json_object_object_del(ev, "reply");
        readers_answer_kind(d, inst, false, READERS_INFO, 0, NULL, ev, -1);
        timer_rearm(d, inst);
    }
}

/*
 * recv() of one message on a worker's channel. A worker that ended with
 * messages of umdevd's unread makes Linux report ECONNRESET once, ahead
 * of what the worker sent before it ended (its verdict on a restart, its
 * last events), which is still queued: read on.
 */
static ssize_t
channel_recv(int fd, void *buf, size_t len)
{
    ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);

    if (n < 0 && errno == ECONNRESET)
        n = recv(fd, buf, len, MSG_DONTWAIT);
    return n;
}

static void
on_channel(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct instance *inst = opaque;
    struct daemon *d = inst->daemon;
    struct json_object *ev;
    char buf[65536];
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) - 1 };
    struct msghdr mh = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = u.buf,
        .msg_controllen = sizeof(u.buf),
    };
    struct cmsghdr *cm;
    int passed = -1;
    ssize_t n;

    (void)events;
    /* A screen reply carries a descriptor; whatever else comes with one
     * is closed. MSG_CTRUNC: more than one came, and the kernel closed
     * the rest. */
    n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == ECONNRESET) {
        /* As channel_recv(): what the worker said is still queued. */
        mh.msg_controllen = sizeof(u.buf);
        n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    }
    for (cm = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL; cm != NULL;
         cm = CMSG_NXTHDR(&mh, cm)) {
        size_t i, nfds;

        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (i = 0; i < nfds; i++) {
            int f;

            memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(f));
            if (passed < 0)
                passed = f;
            else
                close(f);
        }
    }
    if (n <= 0) {
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            /* The worker is going away; its exit is handled on SIGCHLD. */
            umdev_loop_del(loop, fd);
        }
        return;
    }
    buf[n] = '\0';
    ev = json_tokener_parse(buf);
    if (ev == NULL || !json_object_is_type(ev, json_type_object))
        umdev_log(&d->log, LOG_WARNING, "%s: malformed message from worker",
                  inst->cfg.uuid);
    else
        handle_event(d, inst, ev, passed);
    json_object_put(ev);
    if (passed >= 0)
        close(passed);
}

static int
listen_socket(const struct instance *inst, char *err, size_t errlen)
{
    const struct inst_config *cfg = &inst->cfg;
    bool other = cfg->uid != geteuid() || cfg->gid != getegid();
    /* The owner and mode come from the definition (the VMM connects as
     * that user), set before the path appears; a socket an earlier
     * worker left there is replaced in one step. */
    const struct umdev_listen_opts lo = {
        .mode = cfg->mode,
        .uid = other ? cfg->uid : (uid_t)-1,
        .gid = other ? cfg->gid : (gid_t)-1,
        .backlog = 16,
        .replace = true,
    };
    int fd;

    fd = umdev_listen_unix(-1, inst->sock_path, &lo);
    if (fd == -ENAMETOOLONG)
        snprintf(err, errlen,
                 "socket path %s is too long (use a shorter --rundir)",
                 inst->sock_path);
    else if (fd < 0)
        snprintf(err, errlen, "cannot create socket %s: %s", inst->sock_path,
                 strerror(-fd));
    return fd;
}

/* ---- surviving umdevd: workers' records -------------------------------
 *
 * RUNDIR/workers (0700, umdevd's user's) holds, per worker this daemon
 * forked: <uuid>.json, its record, and <uuid>.adopt, the socket it
 * listens on for the next umdevd (supervisor.h, "Surviving umdevd").
 */

/* RUNDIR/workers/<uuid><suffix> into @out. Return: 0 or -ENAMETOOLONG. */
static int
worker_path(const struct daemon *d, const char *uuid, const char *suffix,
            char *out, size_t len)
{
    int n = snprintf(out, len, "%s/" UMDEVD_WORKERS_DIR "/%s%s", d->opts.rundir,
                     uuid, suffix);

    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/*
 * /proc/@pid/stat: the process's name (comm) and its start time (field
 * 22, clock ticks since boot), which together with the pid tell one
 * process from a later one given the same pid. Return: 0; -ESRCH gone;
 * -EIO unreadable.
 */
static int
proc_identity(pid_t pid, char *comm, size_t commlen,
              unsigned long long *start_time)
{
    char path[64], buf[1024], *open_paren, *close_paren, *p;
    ssize_t n;
    int fd, field;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? -ESRCH : -EIO;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return n == 0 ? -ESRCH : -EIO;
    buf[n] = '\0';
    /* The name may hold spaces and parentheses: it ends at the last ')'. */
    open_paren = strchr(buf, '(');
    close_paren = strrchr(buf, ')');
    if (open_paren == NULL || close_paren == NULL || close_paren < open_paren)
        return -EIO;
    snprintf(comm, commlen, "%.*s", (int)(close_paren - open_paren - 1),
             open_paren + 1);
    /* Field 3 (state) follows ") "; field 22 is 19 fields further. */
    p = close_paren + 1;
    for (field = 3; field < 22 && p != NULL; field++)
        p = strchr(p + 1, ' ');
    if (p == NULL || sscanf(p + 1, "%llu", start_time) != 1)
        return -EIO;
    /* A zombie has finished: it serves nobody. */
    if (close_paren[1] == ' ' &&
        (close_paren[2] == 'Z' || close_paren[2] == 'X'))
        return -ESRCH;
    return 0;
}

/* Bind (not listen: the worker does, so that the peer credentials a
 * connecting umdevd reads are the worker's) @inst's adoption socket.
 * Return: the fd, or -errno with @err filled. */
static int
adopt_socket(struct daemon *d, const struct instance *inst, const char *suffix,
             char *err, size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char dir[PATH_MAX];
    int fd, rc;

    if (!d->workers_dir) {
        snprintf(err, errlen,
                 "%s/" UMDEVD_WORKERS_DIR " is not umdevd's user's alone (see "
                 "the log): remove it and restart umdevd",
                 d->opts.rundir);
        return -EPERM;
    }
    if (worker_path(d, inst->cfg.uuid, suffix, sa.sun_path,
                    sizeof(sa.sun_path)) < 0) {
        snprintf(err, errlen,
                 "adoption socket path too long (use a shorter --rundir)");
        return -ENAMETOOLONG;
    }
    /* Shorter than the socket's path, which fits. */
    if (worker_path(d, "", "", dir, sizeof(dir)) == 0 && mkdir(dir, 0700) < 0 &&
        errno != EEXIST) {
        rc = -errno;
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(-rc));
        return rc;
    }
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "socket: %s", strerror(-rc));
        return rc;
    }
    /* One an earlier worker of this instance left behind. */
    unlink(sa.sun_path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        chmod(sa.sun_path, 0600) < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot create %s: %s", sa.sun_path,
                 strerror(-rc));
        close(fd);
        unlink(sa.sun_path);
        return rc;
    }
    return fd;
}

static int
token_new(struct instance *inst)
{
    unsigned char raw[UMDEVD_TOKEN_BYTES];
    size_t i;

    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        return -EIO;
    for (i = 0; i < sizeof(raw); i++)
        snprintf(inst->token + 2 * i, 3, "%02x", raw[i]);
    explicit_bzero(raw, sizeof(raw));
    return 0;
}

/*
 * Write @inst's record atomically (temporary file, rename): what a later
 * umdevd needs to prove its worker and take it over as it is. Return: 0
 * or -errno.
 */
static int
record_write(struct daemon *d, struct instance *inst)
{
    struct json_object *o = json_object_new_object(), *claims;
    char path[PATH_MAX], tmp[PATH_MAX + 16];
    const char *text;
    size_t i, len;
    int fd, rc = 0;

    json_object_object_add(o, "version", json_object_new_int(1));
    json_object_object_add(o, "uuid", json_object_new_string(inst->cfg.uuid));
    json_object_object_add(o, "pid", json_object_new_int64(inst->pid));
    json_object_object_add(o, "start_time",
                           json_object_new_uint64(inst->start_time));
    json_object_object_add(o, "socket",
                           json_object_new_string(inst->sock_path));
    json_object_object_add(o, "token", json_object_new_string(inst->token));
    json_object_object_add(o, "umdevd_uid",
                           json_object_new_int64((int64_t)geteuid()));
    json_object_object_add(o, "defined",
                           json_object_new_boolean(inst->defined));
    json_object_object_add(o, "config", defs_to_json(inst_live(inst)));
    /* For the operator's eyes: the next umdevd claims what the
     * configuration costs, as a start would. */
    claims = json_object_new_array();
    for (i = 0; i < inst->nattr_claims; i++) {
        struct json_object *c = json_object_new_object();

        json_object_object_add(
            c, "pool", json_object_new_string(inst->attr_claims[i].pool));
        json_object_object_add(
            c, "amount", json_object_new_int64(inst->attr_claims[i].amount));
        json_object_array_add(claims, c);
    }
    json_object_object_add(o, "claims", claims);
    if (inst->lease)
        json_object_object_add(o, "lease_pid",
                               json_object_new_int64(inst->lease_pid));
    json_object_object_add(o, "keep_data",
                           json_object_new_boolean(inst->keep_data));
    if (worker_path(d, inst->cfg.uuid, ".json", path, sizeof(path)) < 0) {
        json_object_put(o);
        return -ENAMETOOLONG;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY);
    len = strlen(text);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) < 0)
        rc = -errno;
    if (fd >= 0 && close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    json_object_put(o);
    return rc;
}

static void
record_remove(struct daemon *d, const char *uuid)
{
    char path[PATH_MAX];

    if (worker_path(d, uuid, ".json", path, sizeof(path)) == 0)
        unlink(path);
    if (worker_path(d, uuid, ".adopt", path, sizeof(path)) == 0)
        unlink(path);
    if (worker_path(d, uuid, ".adopt.new", path, sizeof(path)) == 0)
        unlink(path);
}

int
inst_start(struct daemon *d, struct instance *inst, void *waiter, char *err,
           size_t errlen)
{
    int sp[2] = { -1, -1 };
    int listen_fd, adopt_fd, rc;
    char comm[32];
    pid_t pid;

    if (inst->state == ST_STARTING || inst->state == ST_RUNNING ||
        inst->state == ST_STOPPING) {
        snprintf(err, errlen, "instance %s is %s already", inst->cfg.uuid,
                 inst_state_name(inst->state));
        return -EALREADY;
    }
    rc = mdev_instance_add(d->mdev, inst->cfg.uuid, inst->cfg.type);
    if (rc == -ENOSPC) {
        snprintf(err, errlen,
                 "parent '%s' has no free resources for %s (stop another "
                 "instance, or pick a smaller type)",
                 inst->cfg.parent, inst->cfg.type);
        return rc;
    }
    if (rc < 0) {
        snprintf(err, errlen, "cannot claim resources: %s", strerror(-rc));
        return rc;
    }
    inst->claimed = true;
    rc = parents_claim(d, inst, err, errlen);
    if (rc < 0) {
        mdev_instance_remove(d->mdev, inst->cfg.uuid);
        inst->claimed = false;
        return rc;
    }
    rc = live_set(inst);
    if (rc < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    listen_fd = listen_socket(inst, err, errlen);
    if (listen_fd < 0) {
        rc = listen_fd;
        goto fail;
    }
    cleanup_record(d, 'I', inst->sock_path, inst->cfg.uuid);
    rc = token_new(inst);
    if (rc < 0) {
        snprintf(err, errlen, "cannot draw a token: %s", strerror(-rc));
        close(listen_fd);
        goto fail;
    }
    adopt_fd = adopt_socket(d, inst, ".adopt", err, errlen);
    if (adopt_fd < 0) {
        rc = adopt_fd;
        close(listen_fd);
        goto fail;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
        rc = -errno;
        snprintf(err, errlen, "socketpair: %s", strerror(-rc));
        close(listen_fd);
        close(adopt_fd);
        goto fail;
    }
    pid = fork();
    if (pid < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot fork a worker: %s", strerror(-rc));
        close(listen_fd);
        close(adopt_fd);
        close(sp[0]);
        close(sp[1]);
        goto fail;
    }
    if (pid == 0) {
        close(sp[0]);
        worker_run(d, inst, listen_fd, sp[1], adopt_fd,
                   UMDEVD_DEFAULT_GRACE_MS);
    }
    close(listen_fd);
    close(adopt_fd);
    close(sp[1]);
    inst->pid = pid;
    inst->adopted = false;
    inst->detached = false;
    inst->status_fd = sp[0];
    /* The record, and only then the worker's leave to outlive this
     * daemon: a worker no record names would serve on unseen. */
    inst->recorded = false;
    if (proc_identity(pid, comm, sizeof(comm), &inst->start_time) == 0 &&
        (rc = record_write(d, inst)) == 0) {
        struct json_object *req = json_object_new_object();

        json_object_object_add(req, "req", json_object_new_string("recorded"));
        inst->recorded = channel_send(inst->status_fd, req) == 0;
        json_object_put(req);
    }
    if (!inst->recorded)
        umdev_log(&d->log, LOG_WARNING,
                  "%s: cannot record its worker (%s); it stops with umdevd",
                  inst->cfg.uuid, strerror(rc < 0 ? -rc : EIO));
    inst->state = ST_STARTING;
    inst->exit_reason[0] = '\0';
    inst->exit_status = inst->exit_signal = -1;
    wait_for(inst, REQ_START, waiter);
    umdev_loop_add(d->loop, inst->status_fd, UMDEV_LOOP_IN, on_channel, inst);
    deadline_set(d, inst, UMDEVD_START_TIMEOUT_MS);
    return 0;
fail:
    parents_release(d, inst);
    mdev_instance_remove(d->mdev, inst->cfg.uuid);
    inst->claimed = false;
    live_clear(inst);
    unlink(inst->sock_path);
    record_remove(d, inst->cfg.uuid);
    cleanup_forget(d, inst->cfg.uuid);
    return rc;
}

int
inst_stop(struct daemon *d, struct instance *inst, int grace_ms, void *waiter)
{
    struct json_object *req;

    if (inst->state != ST_RUNNING && inst->state != ST_STARTING)
        return -ENOENT;
    req = json_object_new_object();
    json_object_object_add(req, "req", json_object_new_string("stop"));
    json_object_object_add(req, "grace_ms", json_object_new_int(grace_ms));
    if (channel_send(inst->status_fd, req) < 0)
        worker_signal(inst, SIGTERM);
    json_object_put(req);
    inst->state = ST_STOPPING;
    if (waiter != NULL)
        wait_for(inst, REQ_STOP, waiter);
    /* The worker ends itself within the grace period; past it plus a
     * margin, it is killed. */
    deadline_set(d, inst, grace_ms + STOP_MARGIN_MS);
    return 0;
}

/* ---- restart: a new worker takes the device over -----------------------
 *
 * The supervisor execs the new worker (umdevd --restore-worker, from the
 * file umdevd was started from) and gives it and the old worker the two
 * ends of a stream socket; they hand the device over between them
 * (worker.c hand_over() and worker_restore()). The old worker's verdict
 * on its channel ends the restart: "handed_over" (the new one serves:
 * swap them) or "handover_aborted" (the old one serves on).
 */

/* Both workers get their own bounds (10 s each way); this one only
 * catches an old worker that never reports. */
#define RESTART_TIMEOUT_MS 30000

static uint64_t
restart_timeout_ms(void)
{
#ifdef UMDEV_TEST_HOOKS
    /* Test-only (tests/daemon/test_restart.py): a bound short enough to
     * run past in a test. */
    const char *ms = getenv("UMDEV_TEST_RESTART_TIMEOUT_MS");

    if (ms != NULL && atoi(ms) > 0)
        return (uint64_t)atoi(ms);
#endif
    return RESTART_TIMEOUT_MS;
}

/* Parents that declare their devices keep everything in what a handover
 * carries (UMDEV_PARENT_F_RESTARTABLE, include/umdev/parent.h): the
 * vfio-user socket and client, DMA maps, IRQ eventfds, the migration
 * stream and the device's own host endpoints. A plug-in of an older
 * ABI, or one that does not say so, is not restarted. */
static bool
restartable(struct daemon *d, const char *parent)
{
    const struct parent_entry *pe = parents_find(d->parents, parent);

    return pe != NULL &&
           (PARENT_FLAGS(pe->drv) & UMDEV_PARENT_F_RESTARTABLE) != 0;
}

/* Keep the reason the new worker gave (its "error" event), if any. */
static void
restart_channel_read(struct instance *inst)
{
    char buf[4096];
    ssize_t n;

    while (inst->restart_fd >= 0 &&
           (n = channel_recv(inst->restart_fd, buf, sizeof(buf) - 1)) > 0) {
        struct json_object *ev;
        const char *kind, *msg;

        buf[n] = '\0';
        ev = json_tokener_parse(buf);
        kind = ev != NULL && json_object_is_type(ev, json_type_object)
                   ? json_str(ev, "event")
                   : NULL;
        msg = kind != NULL ? json_str(ev, "message") : NULL;
        if (kind != NULL && strcmp(kind, "error") == 0 && msg != NULL)
            snprintf(inst->restart_reason, sizeof(inst->restart_reason), "%s",
                     msg);
        json_object_put(ev);
    }
}

static void
on_restart_channel(struct umdev_loop *loop, int fd, uint32_t events,
                   void *opaque)
{
    struct instance *inst = opaque;
    char c;

    (void)events;
    restart_channel_read(inst);
    if (recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK) == 0)
        umdev_loop_del(loop, fd);
}

/* The restart is over, whichever way: drop what the new worker had. */
static void
restart_clear(struct daemon *d, struct instance *inst)
{
    char path[PATH_MAX];

    umdev_loop_timer_cancel(d->loop, inst->restart_timer);
    inst->restart_timer = 0;
    if (inst->restart_fd >= 0) {
        umdev_loop_del(d->loop, inst->restart_fd);
        close(inst->restart_fd);
        inst->restart_fd = -1;
    }
    if (worker_path(d, inst->cfg.uuid, ".adopt.new", path, sizeof(path)) == 0)
        unlink(path);
    explicit_bzero(inst->restart_token, sizeof(inst->restart_token));
}

/* The new worker was reaped: keep why, for the answer (the old worker
 * reports its verdict once it sees the package socket close). */
static void
restart_reaped(struct instance *inst, int status)
{
    restart_channel_read(inst);
    inst->restart_pid = 0;
    if (inst->restart_reason[0] != '\0')
        return;
    if (WIFEXITED(status))
        snprintf(inst->restart_reason, sizeof(inst->restart_reason),
                 "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(inst->restart_reason, sizeof(inst->restart_reason),
                 "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
}

/* The old worker serves on (or is gone, @why says): end the new one and
 * answer with both reasons. */
static void
restart_fail(struct daemon *d, struct instance *inst, const char *why)
{
    char msg[sizeof(inst->restart_reason) + 300];
    int status, tries;

    restart_channel_read(inst);
    /* The old worker's verdict can come before the new worker's exit is
     * seen: how it ended is the reason to give, so wait a little for a
     * worker that is already going. */
    for (tries = 0; inst->restart_pid > 0 && tries < 20; tries++) {
        if (waitpid(inst->restart_pid, &status, WNOHANG) == inst->restart_pid) {
            restart_reaped(inst, status);
            break;
        }
        nanosleep(&(struct timespec){ .tv_nsec = 5 * 1000 * 1000 }, NULL);
    }
    if (inst->restart_pid > 0)
        kill(inst->restart_pid, SIGKILL); /* reaped as any child */
    snprintf(msg, sizeof(msg), "restart of %s failed: %s; new worker: %s",
             inst->cfg.uuid, why != NULL ? why : "no reason given",
             inst->restart_reason[0] ? inst->restart_reason : "gave no reason");
    umdev_log(&d->log, LOG_WARNING, "%s", msg);
    restart_clear(d, inst);
    if (inst->request == REQ_RESTART)
        request_done(d, inst, -EIO, msg, NULL);
    if (d->upgrading && inst->state == ST_RUNNING)
        upgrade_settle(d, inst);
}

static void
on_restart_timer(struct umdev_loop *loop, void *opaque)
{
    struct instance *inst = opaque;

    (void)loop;
    inst->restart_timer = 0;
    restart_fail(inst->daemon, inst,
                 "the old worker did not report within the time limit");
}

/* The new worker serves: it is the instance's worker from now on. */
static void
restart_commit(struct daemon *d, struct instance *inst, int64_t blackout_us)
{
    struct json_object *extra, *req;
    char from[PATH_MAX], to[PATH_MAX], comm[32];
    pid_t old = inst->pid;
    int rc = -EIO;

    restart_channel_read(inst);
    umdev_loop_del(d->loop, inst->status_fd);
    close(inst->status_fd);
    if (inst->pidfd >= 0) {
        umdev_loop_del(d->loop, inst->pidfd);
        close(inst->pidfd);
        inst->pidfd = -1;
    }
    umdev_loop_del(d->loop, inst->restart_fd);
    inst->status_fd = inst->restart_fd;
    inst->restart_fd = -1;
    umdev_loop_add(d->loop, inst->status_fd, UMDEV_LOOP_IN, on_channel, inst);
    inst->pid = inst->restart_pid;
    inst->restart_pid = 0;
    inst->adopted = false;
    memcpy(inst->token, inst->restart_token, sizeof(inst->token));
    /* The old worker's adoption socket goes with it; the new one's takes
     * its name, and the record names the new worker. */
    if (worker_path(d, inst->cfg.uuid, ".adopt.new", from, sizeof(from)) == 0 &&
        worker_path(d, inst->cfg.uuid, ".adopt", to, sizeof(to)) == 0 &&
        rename(from, to) == 0 &&
        proc_identity(inst->pid, comm, sizeof(comm), &inst->start_time) == 0)
        rc = record_write(d, inst);
    inst->recorded = false;
    if (rc == 0) {
        req = json_object_new_object();
        json_object_object_add(req, "req", json_object_new_string("recorded"));
        inst->recorded = channel_send(inst->status_fd, req) == 0;
        json_object_put(req);
    }
    if (!inst->recorded)
        umdev_log(&d->log, LOG_WARNING,
                  "%s: cannot record the restarted worker (%s); it stops "
                  "with umdevd",
                  inst->cfg.uuid, strerror(rc < 0 ? -rc : EIO));
    /* A stop asked meanwhile (umdevd shutting down) went to the old
     * worker, which only exits: the new one is the one to stop. */
    if (inst->state == ST_STOPPING) {
        req = json_object_new_object();
        json_object_object_add(req, "req", json_object_new_string("stop"));
        json_object_object_add(req, "grace_ms",
                               json_object_new_int(UMDEVD_DEFAULT_GRACE_MS));
        if (channel_send(inst->status_fd, req) < 0)
            worker_signal(inst, SIGTERM);
        json_object_put(req);
    }
    /* A read that went to the old worker is asked of the new one. */
    if (inst->info_asked) {
        req = json_object_new_object();
        json_object_object_add(req, "req", json_object_new_string("info"));
        if (channel_send(inst->status_fd, req) < 0)
            readers_answer(d, inst, false, -EIO,
                           "the restarted worker cannot be reached", NULL);
        json_object_put(req);
    }
    if (inst->screen_asked) {
        req = json_object_new_object();
        json_object_object_add(req, "req", json_object_new_string("screen"));
        if (channel_send(inst->status_fd, req) < 0)
            readers_answer(d, inst, false, -EIO,
                           "the restarted worker cannot be reached", NULL);
        json_object_put(req);
    }
    restart_clear(d, inst);
    umdev_log(&d->log, LOG_INFO,
              "%s: restarted (pid %d, was %d; blackout %lld us)",
              inst->cfg.uuid, (int)inst->pid, (int)old, (long long)blackout_us);
    extra = json_object_new_object();
    json_object_object_add(extra, "uuid",
                           json_object_new_string(inst->cfg.uuid));
    json_object_object_add(extra, "pid", json_object_new_int64(inst->pid));
    json_object_object_add(extra, "old_pid", json_object_new_int64(old));
    json_object_object_add(extra, "blackout_us",
                           json_object_new_int64(blackout_us));
    request_done(d, inst, 0, NULL, extra);
    json_object_put(extra);
    if (d->upgrading && inst->state == ST_RUNNING)
        upgrade_settle(d, inst);
}

int
inst_restart(struct daemon *d, struct instance *inst, void *waiter, char *err,
             size_t errlen)
{
    int pk[2] = { -1, -1 }, ch[2] = { -1, -1 }, adopt_fd = -1, rc, i;
    char saved[sizeof(inst->token)];
    struct json_object *req;
    char **argv = NULL;
    pid_t pid;

    if (inst->state != ST_RUNNING || inst->status_fd < 0) {
        snprintf(err, errlen,
                 "instance %s is %s: only a running instance "
                 "restarts",
                 inst->cfg.uuid, inst_state_name(inst->state));
        return -ENOENT;
    }
    if (!restartable(d, inst_live(inst)->parent)) {
        snprintf(err, errlen,
                 "instance %s cannot be restarted: parent '%s' does not "
                 "declare that its devices keep all their state in what a "
                 "handover carries (docs/CLI.md \"restart\")",
                 inst->cfg.uuid, inst_live(inst)->parent);
        return -ENOTSUP;
    }
    if (d->exe[0] == '\0') {
        snprintf(err, errlen,
                 "umdevd's executable could not be resolved "
                 "at start-up; cannot start a new worker");
        return -ENOTSUP;
    }
    /* exe, --restore-worker, this daemon's arguments, NULL. */
    argv = calloc((size_t)d->argc + 2, sizeof(*argv));
    if (argv == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    argv[0] = d->exe;
    argv[1] = (char *)"--restore-worker";
    for (i = 1; i < d->argc; i++)
        argv[i + 1] = d->argv[i];
    inst->restart_reason[0] = '\0';
    /* The new worker's token; the old worker keeps its own until the
     * swap. */
    memcpy(saved, inst->token, sizeof(saved));
    rc = token_new(inst);
    memcpy(inst->restart_token, inst->token, sizeof(inst->token));
    memcpy(inst->token, saved, sizeof(saved));
    explicit_bzero(saved, sizeof(saved));
    if (rc < 0) {
        snprintf(err, errlen, "cannot draw a token: %s", strerror(-rc));
        goto fail;
    }
    adopt_fd = adopt_socket(d, inst, ".adopt.new", err, errlen);
    if (adopt_fd < 0) {
        rc = adopt_fd;
        goto fail;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pk) < 0 ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ch) < 0) {
        rc = -errno;
        snprintf(err, errlen, "socketpair: %s", strerror(-rc));
        goto fail;
    }
    pid = fork();
    if (pid < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot fork a worker: %s", strerror(-rc));
        goto fail;
    }
    if (pid == 0) {
        /* Out of the way of 3..6 first, then into place (dup2 clears
         * close-on-exec: these three, and nothing else, cross exec). */
        int p = fcntl(pk[1], F_DUPFD_CLOEXEC, 16);
        int c = fcntl(ch[1], F_DUPFD_CLOEXEC, 16);
        int a = fcntl(adopt_fd, F_DUPFD_CLOEXEC, 16);

        if (p < 0 || c < 0 || a < 0 || dup2(p, 3) < 0 || dup2(c, 4) < 0 ||
            dup2(a, 6) < 0)
            _exit(127);
        close(5);
        execv(d->exe, argv);
        _exit(127);
    }
    free(argv);
    argv = NULL;
    close(pk[1]);
    close(ch[1]);
    close(adopt_fd);
    pk[1] = ch[1] = adopt_fd = -1;
    inst->restart_pid = pid;
    inst->restart_fd = ch[0];
    ch[0] = -1;
    req = json_object_new_object();
    json_object_object_add(req, "req", json_object_new_string("restore"));
    json_object_object_add(req, "uuid", json_object_new_string(inst->cfg.uuid));
    json_object_object_add(req, "parent",
                           json_object_new_string(inst_live(inst)->parent));
    json_object_object_add(req, "config", defs_to_json(inst_live(inst)));
    json_object_object_add(req, "token",
                           json_object_new_string(inst->restart_token));
    rc = channel_send(inst->restart_fd, req);
    json_object_put(req);
    if (rc == 0) {
        req = json_object_new_object();
        json_object_object_add(req, "req", json_object_new_string("handover"));
        rc = channel_send_fd(inst->status_fd, req, pk[0]);
        json_object_put(req);
    }
    close(pk[0]);
    pk[0] = -1;
    if (rc < 0) {
        snprintf(err, errlen, "cannot reach the workers of %s: %s",
                 inst->cfg.uuid, strerror(-rc));
        kill(pid, SIGKILL);
        inst->restart_pid = 0; /* reaped as any child */
        restart_clear(d, inst);
        return rc;
    }
    umdev_loop_add(d->loop, inst->restart_fd, UMDEV_LOOP_IN, on_restart_channel,
                   inst);
    inst->restart_timer = umdev_loop_timer_add(d->loop, restart_timeout_ms(),
                                               on_restart_timer, inst);
    if (inst->restart_timer < 0)
        inst->restart_timer = 0;
    wait_for(inst, REQ_RESTART, waiter);
    umdev_log(&d->log, LOG_INFO, "%s: restarting (old pid %d, new pid %d)",
              inst->cfg.uuid, (int)inst->pid, (int)pid);
    return 0;
fail:
    free(argv);
    if (adopt_fd >= 0)
        close(adopt_fd);
    for (i = 0; i < 2; i++) {
        if (pk[i] >= 0)
            close(pk[i]);
        if (ch[i] >= 0)
            close(ch[i]);
    }
    restart_clear(d, inst);
    return rc;
}

/* Drain what the old worker said before it ended: its verdict on a
 * restart may be there (SIGCHLD can be read before it). */
static void
channel_drain(struct daemon *d, struct instance *inst)
{
    char buf[65536];
    int fd = inst->status_fd;
    ssize_t n;

    while (fd >= 0 && inst->status_fd == fd &&
           (n = channel_recv(fd, buf, sizeof(buf) - 1)) > 0) {
        struct json_object *ev;

        buf[n] = '\0';
        ev = json_tokener_parse(buf);
        if (ev != NULL && json_object_is_type(ev, json_type_object))
            handle_event(d, inst, ev, -1);
        json_object_put(ev);
    }
}

static void worker_gone(struct daemon *d, struct instance *inst, int status,
                        bool known);

/* @inst's worker ended (@status as worker_gone() takes it). During a
 * restart that may be the old worker leaving after it handed over; if
 * it ended before, neither worker serves: the new one is ended too, and
 * the instance fails with both reasons. */
static void
worker_ended(struct daemon *d, struct instance *inst, int status, bool known)
{
    pid_t was = inst->pid;

    if (inst->request == REQ_RESTART) {
        channel_drain(d, inst);
        if (inst->pid != was)
            return; /* handed over: the old one leaving */
        if (inst->request == REQ_RESTART) {
            char why[sizeof(inst->exit_reason)];

            if (known && WIFSIGNALED(status))
                snprintf(why, sizeof(why),
                         "the old worker was killed by signal %d during the "
                         "handover",
                         WTERMSIG(status));
            else
                snprintf(why, sizeof(why),
                         "the old worker ended during the handover%s%.160s",
                         inst->exit_reason[0] ? ": " : "", inst->exit_reason);
            restart_fail(d, inst, why);
            /* Both reasons, cut to fit: 150 + 14 + 90 bytes. */
            snprintf(inst->exit_reason, sizeof(inst->exit_reason),
                     "%.150s; new worker: %.90s", why,
                     inst->restart_reason[0] ? inst->restart_reason
                                             : "ended with it");
        }
    }
    worker_gone(d, inst, status, known);
}

static int
request_read(struct daemon *d, struct instance *inst, void *waiter, bool screen)
{
    bool *asked = screen ? &inst->screen_asked : &inst->info_asked;
    struct info_reader *r = calloc(1, sizeof(*r)), **pp;

    if (r == NULL)
        return -ENOMEM;
    /* Readers that come while a request is out share its reply. */
    if (!*asked) {
        struct json_object *req = json_object_new_object();
        int rc;

        json_object_object_add(
            req, "req", json_object_new_string(screen ? "screen" : "info"));
        rc = channel_send(inst->status_fd, req);
        json_object_put(req);
        if (rc < 0) {
            free(r);
            return -EIO;
        }
        *asked = true;
    }
    r->waiter = waiter;
    r->screen = screen;
    r->due = now_ms() + INFO_TIMEOUT_MS;
    for (pp = &inst->readers; *pp != NULL; pp = &(*pp)->next)
        ;
    *pp = r;
    info_timer_arm(d, inst);
    return 0;
}

int
inst_request_info(struct daemon *d, struct instance *inst, void *waiter)
{
    return request_read(d, inst, waiter, false);
}

int
inst_request_screen(struct daemon *d, struct instance *inst, void *waiter)
{
    return request_read(d, inst, waiter, true);
}

int
inst_acknowledge(struct daemon *d, struct instance *inst)
{
    if (inst->state != ST_FAILED)
        return -EINVAL;
    inst->state = ST_STOPPED;
    if (!inst->defined)
        inst_remove(d, inst);
    return 0;
}

void
inst_lease(struct instance *inst, void *lessee, pid_t pid)
{
    inst->lease = true;
    inst->lessee = lessee;
    inst->lease_pid = pid;
}

void
supervisor_lessee_gone(struct daemon *d, void *lessee)
{
    struct instance *inst, *next;

    /* Removing an instance unlinks it: find the next one first. */
    for (inst = d->instances; inst != NULL; inst = next) {
        next = inst->next;
        if (!inst->lease || inst->lessee != lessee)
            continue;
        inst->lessee = NULL;
        umdev_log(&d->log, LOG_INFO, "%s: lessee (pid %d) is gone",
                  inst->cfg.uuid, (int)inst->lease_pid);
        if (inst->request != REQ_NONE)
            continue; /* request_done() stops it */
        if (inst->state == ST_RUNNING)
            /* Its client was the lessee too, or will get the REQ IRQ: no
             * grace, the queue belongs to nobody now. */
            inst_stop(d, inst, 0, NULL);
        else if (inst->state == ST_FAILED || inst->state == ST_STOPPED)
            inst_remove(d, inst);
    }
}

static void
describe_exit(struct instance *inst, int status)
{
    if (WIFEXITED(status)) {
        inst->exit_status = WEXITSTATUS(status);
        inst->exit_signal = 0;
        if (inst->exit_reason[0] == '\0')
            snprintf(inst->exit_reason, sizeof(inst->exit_reason),
                     "worker exited with status %d", inst->exit_status);
    } else if (WIFSIGNALED(status)) {
        inst->exit_status = -1;
        inst->exit_signal = WTERMSIG(status);
        if (inst->exit_reason[0] == '\0')
            snprintf(inst->exit_reason, sizeof(inst->exit_reason),
                     "worker killed by signal %d (%s)%s", inst->exit_signal,
                     strsignal(inst->exit_signal),
                     inst->exit_signal == SIGSYS
                         ? ": a system call outside the sandbox "
                           "(docs/SANDBOX.md)"
                         : "");
    }
}

/*
 * The worker has exited; its last words may still sit in the channel
 * (SIGCHLD can be read before them). Keep the reason a failing worker
 * gave, the rest no longer matters.
 */
static void
channel_last_words(struct instance *inst)
{
    char buf[4096];
    ssize_t n;

    while ((n = recv(inst->status_fd, buf, sizeof(buf) - 1, MSG_DONTWAIT)) >
           0) {
        struct json_object *ev, *v;
        const char *kind;

        buf[n] = '\0';
        ev = json_tokener_parse(buf);
        kind = ev != NULL && json_object_is_type(ev, json_type_object)
                   ? json_str(ev, "event")
                   : NULL;
        if (kind != NULL && strcmp(kind, "error") == 0 &&
            json_object_object_get_ex(ev, "message", &v))
            snprintf(inst->exit_reason, sizeof(inst->exit_reason), "%s",
                     json_object_get_string(v));
        json_object_put(ev);
    }
}

/*
 * A worker can not remove the host ends its parent made in RUNDIR (the
 * sandbox refuses unlink, and it no longer runs as root): they are named
 * RUNDIR/<uuid>.*, so remove them here. RUNDIR is the daemon's alone, so
 * these names lead nowhere else.
 */
static size_t
remove_host_ends_of(const char *rundir, const char *uuid)
{
    size_t len = strlen(uuid), n = 0;
    DIR *dir = opendir(rundir);
    struct dirent *e;

    if (dir == NULL)
        return 0;
    while ((e = readdir(dir)) != NULL) {
        struct stat st;

        if (strncmp(e->d_name, uuid, len) != 0 || e->d_name[len] != '.' ||
            fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !(S_ISSOCK(st.st_mode) || S_ISLNK(st.st_mode)))
            continue;
        if (unlinkat(dirfd(dir), e->d_name, 0) == 0)
            n++;
    }
    closedir(dir);
    return n;
}

static void
remove_host_ends(struct daemon *d, const struct instance *inst)
{
    remove_host_ends_of(d->opts.rundir, inst->cfg.uuid);
}

/* ---- the cleanup process ---------------------------------------------
 *
 * A daemon killed outright (SIGKILL, the OOM killer) cannot remove its
 * sockets; its workers notice and stop, but they may not unlink in
 * RUNDIR (docs/SANDBOX.md). So a small process forked at start does it:
 * the records on its channel say what exists, and the channel's end
 * says the daemon is gone. Records are datagrams:
 *
 *   "S <dev> <ino> <ctime s> <ctime ns> <path>"
 *                           a socket of the daemon's (the control socket)
 *   "I <dev> <ino> <ctime s> <ctime ns> <uuid>"
 *                           an instance's RUNDIR/<uuid>.sock, whose host
 *                           ends RUNDIR/<uuid>.* go with it
 *   "- <path or uuid>"      removed by the daemon itself
 *
 * A path is removed only while it is the same file (device, inode,
 * change time): a daemon started since may have bound its own there.
 */

#define CLEANUP_FD 3
#define CLEANUP_MAX_RECORD (PATH_MAX + 64)

struct cleanup_entry {
    char kind; /* 'S' or 'I' */
    /* Which file: device and inode alone are not enough, as a file
     * system may give a new socket the inode number of one just
     * removed; its change time (set by the daemon's chmod) tells them
     * apart. */
    dev_t dev;
    ino_t ino;
    struct timespec ctime;
    char name[PATH_MAX];
};

static void
cleanup_send(struct daemon *d, const char *rec)
{
    if (!d->has_cleanup)
        return;
    /* Never blocks: a record the channel has no room for is lost, and
     * at worst that file stays behind, as it would without this. */
    if (send(d->cleanup_fd, rec, strlen(rec), MSG_DONTWAIT | MSG_NOSIGNAL) <
            0 &&
        errno != EAGAIN) {
        /* It is gone (killed on its own): said once, then no more. */
        umdev_log(&d->log, LOG_WARNING,
                  "cleanup process unreachable (%s); sockets stay behind if "
                  "umdevd is killed",
                  strerror(errno));
        close(d->cleanup_fd);
        d->has_cleanup = false;
    }
}

/* Tell the cleanup process about socket @path (@kind 'S'), or about the
 * instance socket of @name (@kind 'I'). */
static void
cleanup_record(struct daemon *d, char kind, const char *path, const char *name)
{
    char rec[CLEANUP_MAX_RECORD];
    struct stat st;

    if (!d->has_cleanup || lstat(path, &st) < 0)
        return;
    snprintf(rec, sizeof(rec), "%c %llu %llu %lld %ld %s", kind,
             (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
             (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec, name);
    cleanup_send(d, rec);
}

void
supervisor_cleanup_watch(struct daemon *d, const char *path)
{
    cleanup_record(d, 'S', path, path);
}

static void
cleanup_forget(struct daemon *d, const char *name)
{
    char rec[CLEANUP_MAX_RECORD];

    snprintf(rec, sizeof(rec), "- %s", name);
    cleanup_send(d, rec);
}

/* Unlink @path if it is still the socket @e recorded. */
static bool
cleanup_unlink(const char *path, const struct cleanup_entry *e)
{
    struct stat st;

    return lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
           st.st_dev == e->dev && st.st_ino == e->ino &&
           st.st_ctim.tv_sec == e->ctime.tv_sec &&
           st.st_ctim.tv_nsec == e->ctime.tv_nsec && unlink(path) == 0;
}

static void cleanup_main(struct daemon *d, pid_t daemon_pid)
    __attribute__((noreturn));

static void
cleanup_main(struct daemon *d, pid_t daemon_pid)
{
    struct cleanup_entry *ents = NULL;
    size_t n = 0, cap = 0, removed = 0, kept = 0, i;
    char rec[CLEANUP_MAX_RECORD + 1];

    prctl(PR_SET_NAME, "umdev-cleanup");
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    for (;;) {
        struct cleanup_entry e = { 0 };
        unsigned long long dev, ino;
        long long sec;
        long nsec;
        ssize_t len = recv(CLEANUP_FD, rec, sizeof(rec) - 1, 0);
        int off = 0;

        if (len < 0 && errno == EINTR)
            continue;
        if (len <= 0)
            break; /* the daemon is gone */
        rec[len] = '\0';
        if (rec[0] == '-' && rec[1] == ' ') {
            for (i = 0; i < n; i++) {
                if (strcmp(ents[i].name, rec + 2) == 0) {
                    ents[i] = ents[--n];
                    break;
                }
            }
            continue;
        }
        if ((rec[0] != 'S' && rec[0] != 'I') ||
            sscanf(rec + 1, " %llu %llu %lld %ld %n", &dev, &ino, &sec, &nsec,
                   &off) != 4 ||
            off == 0 || strlen(rec + 1 + off) >= sizeof(e.name))
            continue;
        e.kind = rec[0];
        e.dev = (dev_t)dev;
        e.ino = (ino_t)ino;
        e.ctime.tv_sec = (time_t)sec;
        e.ctime.tv_nsec = nsec;
        snprintf(e.name, sizeof(e.name), "%s", rec + 1 + off);
        if (n == cap) {
            struct cleanup_entry *m =
                realloc(ents, (cap ? cap * 2 : 16) * sizeof(*ents));

            if (m == NULL)
                continue;
            ents = m;
            cap = cap ? cap * 2 : 16;
        }
        ents[n++] = e;
    }
    for (i = 0; i < n; i++) {
        char path[PATH_MAX];

        if (ents[i].kind == 'S') {
            removed += cleanup_unlink(ents[i].name, &ents[i]);
            continue;
        }
        /* A recorded worker outlives the daemon, serving on its socket
         * until the next umdevd adopts it (or finds it gone and removes
         * what it left). */
        if (worker_path(d, ents[i].name, ".json", path, sizeof(path)) < 0 ||
            access(path, F_OK) == 0) {
            kept++;
            continue;
        }
        /* An instance: its socket, and its host ends only while that
         * socket is still this daemon's (else a new daemon runs it). */
        if (snprintf(path, sizeof(path), "%s/%s.sock", d->opts.rundir,
                     ents[i].name) < (int)sizeof(path) &&
            cleanup_unlink(path, &ents[i]))
            removed += 1 + remove_host_ends_of(d->opts.rundir, ents[i].name);
    }
    if (removed > 0)
        umdev_log(&d->log, LOG_NOTICE,
                  "removed %zu sockets and host ends left behind by umdevd "
                  "(pid %d), which ended without stopping its instances",
                  removed, (int)daemon_pid);
    if (kept > 0)
        umdev_log(&d->log, LOG_NOTICE,
                  "umdevd (pid %d) ended leaving %zu instances running; the "
                  "next umdevd adopts them",
                  (int)daemon_pid, kept);
    _exit(0);
}

int
supervisor_cleanup_start(struct daemon *d)
{
    pid_t daemon_pid = getpid(), pid;
    int sp[2];

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
        return -errno;
    pid = fork();
    if (pid < 0) {
        close(sp[0]);
        close(sp[1]);
        return -errno;
    }
    if (pid == 0) {
        /* Nothing of the daemon's but this channel (stdio stays for the
         * log). Not PR_SET_PDEATHSIG: it must outlive the daemon. */
        if (dup2(sp[1], CLEANUP_FD) < 0 || close_range(4, ~0u, 0) < 0)
            _exit(1);
        cleanup_main(d, daemon_pid);
    }
    close(sp[1]);
    d->cleanup_fd = sp[0];
    d->has_cleanup = true;
    return 0;
}

struct instance *
supervisor_worker(struct daemon *d, pid_t pid)
{
    struct instance *inst;

    if (pid <= 0)
        return NULL;
    for (inst = d->instances; inst != NULL; inst = inst->next)
        if (inst->pid == pid || inst->restart_pid == pid)
            return inst;
    return NULL;
}

/*
 * @inst's worker has exited with @status, or, adopted (not this daemon's
 * child), with a status this daemon cannot learn (@known false): a stop
 * it was asked for counts as clean, anything else as a failure.
 */
static void
worker_gone(struct daemon *d, struct instance *inst, int status, bool known)
{
    bool expected = inst->state == ST_STOPPING;
    bool clean =
        known ? WIFEXITED(status) && WEXITSTATUS(status) == 0 : expected;
    pid_t pid = inst->pid;
    enum inst_state was = inst->state;
    enum inst_request req = inst->request;

    deadline_clear(d, inst);
    inst->info_asked = false;
    inst->screen_asked = false;
    umdev_loop_timer_cancel(d->loop, inst->info_timer);
    inst->info_timer = 0;
    if (inst->status_fd >= 0) {
        channel_last_words(inst);
        umdev_loop_del(d->loop, inst->status_fd);
        close(inst->status_fd);
        inst->status_fd = -1;
    }
    if (inst->pidfd >= 0) {
        umdev_loop_del(d->loop, inst->pidfd);
        close(inst->pidfd);
        inst->pidfd = -1;
    }
    unlink(inst->sock_path);
    remove_host_ends(d, inst);
    record_remove(d, inst->cfg.uuid);
    inst->recorded = false;
    inst->adopted = false;
    cleanup_forget(d, inst->cfg.uuid);
    if (inst->claimed) {
        parents_release(d, inst);
        mdev_instance_remove(d->mdev, inst->cfg.uuid);
        inst->claimed = false;
    }
    inst->pid = -1;
    live_clear(inst);
    if (expected && clean) {
        inst->state = ST_STOPPED;
        umdev_log(&d->log, LOG_INFO, "%s: stopped", inst->cfg.uuid);
    } else {
        if (known)
            describe_exit(inst, status);
        else if (inst->exit_reason[0] == '\0')
            snprintf(inst->exit_reason, sizeof(inst->exit_reason),
                     "adopted worker (pid %d) ended unasked; its exit "
                     "status went to its parent, not to this umdevd",
                     (int)pid);
        inst->state = ST_FAILED;
        umdev_log(&d->log, expected ? LOG_WARNING : LOG_ERR, "%s: %s",
                  inst->cfg.uuid, inst->exit_reason);
    }
    if (inst->readers != NULL) {
        char msg[sizeof(inst->exit_reason) + 100];

        snprintf(msg, sizeof(msg),
                 "the worker of %s exited before it answered%s%s",
                 inst->cfg.uuid, inst->exit_reason[0] ? ": " : "",
                 inst->exit_reason);
        readers_answer(d, inst, false, -EIO, msg, NULL);
    }
    /* A transient instance goes (below) once its requests are answered;
     * its data first, so whoever stopped it finds the data gone. */
    if (!inst->defined && (inst->state == ST_STOPPED || was == ST_STARTING))
        transient_data_drop(d, inst);
    if (was == ST_STARTING)
        request_done(d, inst, -EIO,
                     inst->exit_reason[0] ? inst->exit_reason
                                          : "worker failed to start",
                     NULL);
    else if (req != REQ_NONE)
        request_done(d, inst, 0, NULL, NULL);
    /* A transient instance leaves no trace once it stopped cleanly, nor
     * when it never came up: its start request got the reason, and a
     * failed leftover would only hold its UUID. */
    if (!inst->defined && (inst->state == ST_STOPPED || was == ST_STARTING))
        inst_remove(d, inst);
}

void
supervisor_reap(struct daemon *d)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        struct instance *inst;

        for (inst = d->instances; inst != NULL; inst = inst->next)
            if (inst->pid == pid || inst->restart_pid == pid)
                break;
        if (inst != NULL && inst->restart_pid == pid)
            restart_reaped(inst, status);
        else if (inst != NULL && !inst->adopted)
            worker_ended(d, inst, status, true);
        else
            callouts_reaped(d, pid, status);
    }
}

void
supervisor_stop_all(struct daemon *d)
{
    struct instance *i;

    for (i = d->instances; i != NULL; i = i->next)
        if (i->state == ST_RUNNING || i->state == ST_STARTING)
            inst_stop(d, i, UMDEVD_DEFAULT_GRACE_MS, NULL);
}

bool
supervisor_all_stopped(const struct daemon *d)
{
    const struct instance *i;

    for (i = d->instances; i != NULL; i = i->next)
        if (i->pid > 0)
            return false;
    return true;
}

void
supervisor_free_all(struct daemon *d)
{
    char path[PATH_MAX];

    while (d->instances != NULL)
        inst_remove(d, d->instances);
    /* Left only when it still holds records: workers serving on. */
    if (d->workers_dir && snprintf(path, sizeof(path), "%s/" UMDEVD_WORKERS_DIR,
                                   d->opts.rundir) < (int)sizeof(path))
        rmdir(path);
}

/* ---- surviving umdevd: upgrade and adoption --------------------------- */

/* Let go of @inst's recorded worker: it serves on for the next umdevd. */
static void
detach_one(struct daemon *d, struct instance *inst)
{
    umdev_log(&d->log, LOG_NOTICE,
              "%s: left %s for the next umdevd (worker pid %d)", inst->cfg.uuid,
              inst_state_name(inst->state), (int)inst->pid);
    /* Its sockets are not this daemon's to remove any more. */
    cleanup_forget(d, inst->cfg.uuid);
    deadline_clear(d, inst);
    umdev_loop_timer_cancel(d->loop, inst->info_timer);
    inst->info_timer = 0;
    if (inst->readers != NULL)
        readers_answer(d, inst, false, -ECANCELED,
                       "umdevd is handing over to its successor", NULL);
    if (inst->request != REQ_NONE)
        request_done(d, inst, -ECANCELED,
                     "umdevd is handing over to its successor", NULL);
    umdev_loop_del(d->loop, inst->status_fd);
    close(inst->status_fd);
    inst->status_fd = -1;
    if (inst->pidfd >= 0) {
        umdev_loop_del(d->loop, inst->pidfd);
        close(inst->pidfd);
        inst->pidfd = -1;
    }
    inst->detached = true;
    inst->pid = -1;
}

/* While umdevd hands over (SIGUSR2): let @inst's worker go for the next
 * umdevd, or stop it when no later umdevd could find it (it has no
 * record). */
static void
upgrade_settle(struct daemon *d, struct instance *inst)
{
    if (inst->pid <= 0)
        return;
    if (!inst->recorded) {
        if (inst->state == ST_RUNNING || inst->state == ST_STARTING)
            inst_stop(d, inst, UMDEVD_DEFAULT_GRACE_MS, NULL);
        return;
    }
    /* One still starting is let go once it is ready (handle_event()),
     * so that the next umdevd finds it answering; one that fails to
     * start is reaped here as usual. A restart under way is let go once
     * it ends (restart_commit(), restart_fail()): until then the record
     * names a worker that may be about to exit, and the new one, which
     * has none yet, would stop with this umdevd. */
    if (inst->state != ST_STARTING && inst->request != REQ_RESTART)
        detach_one(d, inst);
}

void
supervisor_detach_all(struct daemon *d)
{
    struct instance *inst;

    for (inst = d->instances; inst != NULL; inst = inst->next)
        upgrade_settle(d, inst);
}

/* An adopted worker ended (its pidfd became readable). */
static void
on_pidfd(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct instance *inst = opaque;

    (void)loop;
    (void)fd;
    (void)events;
    worker_ended(inst->daemon, inst, 0, false);
}

/* One record, as read from RUNDIR/workers/<uuid>.json. */
struct record {
    char uuid[MDEV_UUID_STR_LEN + 1];
    pid_t pid;
    unsigned long long start_time;
    char token[2 * UMDEVD_TOKEN_BYTES + 1];
    bool defined;
    bool lease;
    pid_t lease_pid;
    bool keep_data;
    struct json_object *config; /* borrowed from the parsed file */
};

/* Read and check record @name of directory @dirfd; @rec->config points
 * into *@obj, which the caller puts. Return: 0 or -errno with @why. */
static int
record_read(int dirfd, const char *name, struct record *rec,
            struct json_object **obj, char *why, size_t whylen)
{
    char text[65536], norm[MDEV_UUID_STR_LEN + 1];
    struct json_object *o, *v;
    struct stat st;
    size_t len = strlen(name) - strlen(".json");
    ssize_t n;
    int fd;

    *obj = NULL;
    memset(rec, 0, sizeof(*rec));
    if (len != MDEV_UUID_STR_LEN) {
        snprintf(why, whylen, "its name is not <uuid>.json");
        return -EINVAL;
    }
    memcpy(rec->uuid, name, len);
    if (mdev_uuid_parse(rec->uuid, norm) < 0 || strcmp(norm, rec->uuid) != 0) {
        snprintf(why, whylen, "its name is not <uuid>.json");
        return -EINVAL;
    }
    fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(why, whylen, "cannot read it: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -EIO;
    }
    /* Only umdevd's user can have written it, and only it can read the
     * token: else it proves nothing. */
    if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & 077) != 0) {
        close(fd);
        snprintf(why, whylen,
                 "it is not a regular file of umdevd's user (uid %u) that "
                 "only that user can read",
                 (unsigned)geteuid());
        return -EPERM;
    }
    n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n < 0) {
        snprintf(why, whylen, "cannot read it: %s", strerror(errno));
        return -EIO;
    }
    text[n] = '\0';
    o = json_tokener_parse(text);
    *obj = o;
    if (o == NULL || !json_object_is_type(o, json_type_object)) {
        snprintf(why, whylen, "it is not a JSON object");
        return -EINVAL;
    }
    if (!json_object_object_get_ex(o, "uuid", &v) ||
        !json_object_is_type(v, json_type_string) ||
        strcmp(json_object_get_string(v), rec->uuid) != 0 ||
        !json_object_object_get_ex(o, "pid", &v) ||
        !json_object_is_type(v, json_type_int) ||
        json_object_get_int64(v) <= 1 || json_object_get_int64(v) > INT_MAX) {
        snprintf(why, whylen, "its uuid or pid is missing or wrong");
        return -EINVAL;
    }
    rec->pid = (pid_t)json_object_get_int64(v);
    if (!json_object_object_get_ex(o, "start_time", &v) ||
        !json_object_is_type(v, json_type_int)) {
        snprintf(why, whylen, "its start_time is missing");
        return -EINVAL;
    }
    rec->start_time = json_object_get_uint64(v);
    if (!json_object_object_get_ex(o, "token", &v) ||
        !json_object_is_type(v, json_type_string) ||
        strlen(json_object_get_string(v)) != 2 * UMDEVD_TOKEN_BYTES) {
        snprintf(why, whylen, "its token is missing");
        return -EINVAL;
    }
    snprintf(rec->token, sizeof(rec->token), "%s", json_object_get_string(v));
    rec->defined = json_object_object_get_ex(o, "defined", &v) &&
                   json_object_get_boolean(v);
    rec->keep_data = json_object_object_get_ex(o, "keep_data", &v) &&
                     json_object_get_boolean(v);
    if (json_object_object_get_ex(o, "lease_pid", &v)) {
        rec->lease = true;
        rec->lease_pid = (pid_t)json_object_get_int64(v);
    }
    if (!json_object_object_get_ex(o, "config", &rec->config) ||
        !json_object_is_type(rec->config, json_type_object)) {
        snprintf(why, whylen, "its configuration is missing");
        return -EINVAL;
    }
    return 0;
}

/*
 * Prove the worker @rec names: connect to its adoption socket, check the
 * peer is the recorded pid, and hand it the token; it answers "adopted"
 * only when the token is its own. Return: the channel, or -errno with
 * @why.
 */
static int
adopt_handshake(struct daemon *d, const struct record *rec, bool *stopping,
                char *why, size_t whylen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct ucred cred = { .pid = 0 };
    socklen_t clen = sizeof(cred);
    struct json_object *req, *ev = NULL, *v;
    struct pollfd pfd;
    char buf[1024], comm[64];
    unsigned long long started;
    int64_t deadline;
    ssize_t n;
    int fd, rc;

    if (worker_path(d, rec->uuid, ".adopt", sa.sun_path, sizeof(sa.sun_path)) <
        0) {
        snprintf(why, whylen, "its adoption socket path is too long");
        return -ENAMETOOLONG;
    }
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        snprintf(why, whylen, "socket: %s", strerror(-rc));
        return rc;
    }
    /* Refused: bound but not listened on yet, by a worker its umdevd
     * left while it was still building its device. */
    deadline = now_ms() + UMDEVD_START_TIMEOUT_MS;
    while ((rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa))) < 0 &&
           errno == ECONNREFUSED && now_ms() < deadline &&
           proc_identity(rec->pid, comm, sizeof(comm), &started) == 0 &&
           started == rec->start_time)
        nanosleep(&(struct timespec){ .tv_nsec = 20 * 1000 * 1000 }, NULL);
    if (rc < 0) {
        rc = -errno;
        snprintf(why, whylen, "its adoption socket %s does not answer: %s",
                 sa.sun_path, strerror(-rc));
        close(fd);
        return rc;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 ||
        cred.pid != rec->pid) {
        snprintf(why, whylen,
                 "its adoption socket is served by pid %d, not by the "
                 "recorded pid %d",
                 (int)cred.pid, (int)rec->pid);
        close(fd);
        return -EPERM;
    }
    req = json_object_new_object();
    json_object_object_add(req, "req", json_object_new_string("adopt"));
    json_object_object_add(req, "token", json_object_new_string(rec->token));
    rc = channel_send(fd, req);
    json_object_put(req);
    pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
    if (rc == 0 && poll(&pfd, 1, UMDEVD_ADOPT_TIMEOUT_MS) != 1)
        rc = -ETIMEDOUT;
    n = rc == 0 ? recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT) : -1;
    if (n > 0) {
        buf[n] = '\0';
        ev = json_tokener_parse(buf);
    }
    if (ev == NULL || !json_object_is_type(ev, json_type_object) ||
        json_str(ev, "event") == NULL ||
        strcmp(json_str(ev, "event"), "adopted") != 0 ||
        !json_object_object_get_ex(ev, "pid", &v) ||
        json_object_get_int64(v) != rec->pid) {
        if (rc == -ETIMEDOUT)
            snprintf(why, whylen, "it did not answer within %d ms",
                     UMDEVD_ADOPT_TIMEOUT_MS);
        else
            snprintf(why, whylen,
                     "it refused the record's token (or is no worker of "
                     "this record)");
        json_object_put(ev);
        close(fd);
        return -EPERM;
    }
    /* A stop its old umdevd asked for goes on. */
    *stopping = json_str(ev, "state") != NULL &&
                strcmp(json_str(ev, "state"), "stopping") == 0;
    json_object_put(ev);
    return fd;
}

/* The instance a record names, configured as its record says (a defined
 * one keeps its definition, with the record's configuration live), or
 * NULL with @why. */
static struct instance *
record_instance(struct daemon *d, const struct record *rec, char *why,
                size_t whylen)
{
    struct instance *inst = inst_find(d, rec->uuid);
    struct inst_config cfg;
    const char *parent = json_str(rec->config, "parent");
    int rc;

    if (parent == NULL) {
        snprintf(why, whylen, "its configuration names no parent");
        return NULL;
    }
    rc = defs_from_json(d, parent, rec->uuid, rec->config, &cfg, why, whylen);
    if (rc < 0)
        return NULL;
    if (inst == NULL) {
        rc = inst_add(d, &cfg, false, &inst, why, whylen);
        if (rc < 0) {
            json_object_put(cfg.attrs);
            return NULL;
        }
        rc = live_set(inst);
    } else {
        json_object_put(inst->live.attrs);
        inst->live = cfg;
        rc = 0;
    }
    if (rc < 0) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    return inst;
}

/* Claim what @inst's live configuration costs, as its start did. */
static int
adopt_claim(struct daemon *d, struct instance *inst, char *why, size_t whylen)
{
    struct inst_config def = inst->cfg;
    int rc;

    rc = mdev_instance_add(d->mdev, inst->cfg.uuid, inst->live.type);
    if (rc < 0) {
        snprintf(why, whylen, "cannot claim its resources: %s",
                 rc == -ENOSPC ? "the parent has none free" : strerror(-rc));
        return rc;
    }
    inst->claimed = true;
    /* parents_claim() reads the configuration a start would: here the
     * one the worker runs with. */
    inst->cfg = inst->live;
    rc = parents_claim(d, inst, why, whylen);
    inst->cfg = def;
    if (rc < 0) {
        mdev_instance_remove(d->mdev, inst->cfg.uuid);
        inst->claimed = false;
    }
    return rc;
}

/* The record names no live worker: remove it and what its worker left. */
static void
record_stale(struct daemon *d, const struct record *rec, const char *why)
{
    struct instance *inst = inst_find(d, rec->uuid);
    char sock[PATH_MAX];

    umdev_log(&d->log, LOG_NOTICE,
              "%s: worker record removed: %s; it ended while no umdevd "
              "supervised it",
              rec->uuid, why);
    record_remove(d, rec->uuid);
    if (snprintf(sock, sizeof(sock), "%s/%s.sock", d->opts.rundir, rec->uuid) <
        (int)sizeof(sock))
        unlink(sock);
    remove_host_ends_of(d->opts.rundir, rec->uuid);
    if (inst != NULL && inst->defined) {
        inst->state = ST_FAILED;
        inst->exit_status = inst->exit_signal = -1;
        snprintf(inst->exit_reason, sizeof(inst->exit_reason),
                 "its worker (pid %d) ended while no umdevd supervised it",
                 (int)rec->pid);
    }
}

/* A worker this daemon does not take over, perhaps alive: its instance
 * shows why, and nothing of it is touched. */
static void
record_refused(struct daemon *d, const struct record *rec, const char *why)
{
    struct instance *inst = inst_find(d, rec->uuid);

    umdev_log(&d->log, LOG_ERR,
              "%s: worker pid %d not adopted: %s; left alone (record kept: "
              "stop that process and remove the record to start the "
              "instance again)",
              rec->uuid, (int)rec->pid, why);
    if (inst != NULL) {
        inst->state = ST_FAILED;
        inst->exit_status = inst->exit_signal = -1;
        snprintf(inst->exit_reason, sizeof(inst->exit_reason),
                 "worker pid %d not adopted: %s", (int)rec->pid, why);
    }
}

/* Is @pid's executable an umdevd (when it can be read at all: a worker
 * is not dumpable, so only a root umdevd may)? An upgrade may have
 * replaced the file since: " (deleted)". */
static bool
exe_is_umdevd(pid_t pid, char *exe, size_t len)
{
    char path[64];
    ssize_t n;
    const char *base;
    size_t blen;

    snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
    n = readlink(path, exe, len - 1);
    if (n < 0) {
        snprintf(exe, len, "(unreadable)");
        return errno == EACCES || errno == EPERM;
    }
    exe[n] = '\0';
    base = strrchr(exe, '/');
    base = base != NULL ? base + 1 : exe;
    blen = strcspn(base, " ");
    return blen == strlen("umdevd") && strncmp(base, "umdevd", blen) == 0 &&
           (base[blen] == '\0' || strcmp(base + blen, " (deleted)") == 0);
}

static void
adopt_one(struct daemon *d, int dirfd, const char *name)
{
    struct json_object *obj = NULL;
    struct instance *inst;
    struct record rec;
    char why[256], comm[64], exe[PATH_MAX];
    unsigned long long started;
    bool stopping = false;
    int fd, rc;

    rc = record_read(dirfd, name, &rec, &obj, why, sizeof(why));
    if (rc < 0) {
        umdev_log(&d->log, LOG_ERR,
                  "worker record %s/" UMDEVD_WORKERS_DIR "/%s ignored: %s",
                  d->opts.rundir, name, why);
        json_object_put(obj);
        return;
    }
    rc = proc_identity(rec.pid, comm, sizeof(comm), &started);
    if (rc == -ESRCH) {
        snprintf(why, sizeof(why), "its worker (pid %d) is gone", (int)rec.pid);
        record_stale(d, &rec, why);
        goto out;
    }
    if (rc < 0) {
        snprintf(why, sizeof(why), "/proc/%d/stat cannot be read",
                 (int)rec.pid);
        record_refused(d, &rec, why);
        goto out;
    }
    if (started != rec.start_time) {
        /* Another process took the pid: the worker is gone. */
        snprintf(why, sizeof(why),
                 "pid %d is another process now (started at %llu, the "
                 "worker at %llu)",
                 (int)rec.pid, started, rec.start_time);
        record_stale(d, &rec, why);
        goto out;
    }
    if (strcmp(comm, "umdev-worker") != 0 ||
        !exe_is_umdevd(rec.pid, exe, sizeof(exe))) {
        snprintf(why, sizeof(why),
                 "pid %d is no umdevd worker (it is '%.20s', executable "
                 "%.120s)",
                 (int)rec.pid, comm, exe);
        record_refused(d, &rec, why);
        goto out;
    }
    fd = adopt_handshake(d, &rec, &stopping, why, sizeof(why));
    if (fd < 0) {
        record_refused(d, &rec, why);
        goto out;
    }
    /* Proven: from here on it is this daemon's worker. */
    inst = record_instance(d, &rec, why, sizeof(why));
    if (inst == NULL) {
        struct json_object *req = json_object_new_object();

        umdev_log(&d->log, LOG_ERR,
                  "%s: worker pid %d adopted but unusable (%s): stopping it",
                  rec.uuid, (int)rec.pid, why);
        json_object_object_add(req, "req", json_object_new_string("stop"));
        json_object_object_add(req, "grace_ms",
                               json_object_new_int(UMDEVD_DEFAULT_GRACE_MS));
        channel_send(fd, req);
        json_object_put(req);
        close(fd);
        goto out;
    }
    inst->pid = rec.pid;
    inst->start_time = rec.start_time;
    snprintf(inst->token, sizeof(inst->token), "%s", rec.token);
    inst->recorded = true;
    inst->adopted = true;
    inst->keep_data = rec.keep_data;
    inst->status_fd = fd;
    inst->state = stopping ? ST_STOPPING : ST_RUNNING;
    inst->exit_reason[0] = '\0';
    inst->exit_status = inst->exit_signal = -1;
    umdev_loop_add(d->loop, fd, UMDEV_LOOP_IN, on_channel, inst);
    inst->pidfd = (int)pidfd_open(rec.pid, 0);
    if (inst->pidfd < 0 ||
        umdev_loop_add(d->loop, inst->pidfd, UMDEV_LOOP_IN, on_pidfd, inst) < 0)
        umdev_log(&d->log, LOG_WARNING,
                  "%s: cannot watch the adopted worker's exit (%s); its end "
                  "is seen when its channel closes",
                  rec.uuid, strerror(errno));
    cleanup_record(d, 'I', inst->sock_path, inst->cfg.uuid);
    umdev_log(&d->log, LOG_NOTICE, "%s: adopted %s worker (pid %d, socket %s)",
              rec.uuid, inst_state_name(inst->state), (int)rec.pid,
              inst->sock_path);
    if (stopping)
        /* Bounded as the stop it is: its grace, then the margin. */
        deadline_set(d, inst, UMDEVD_DEFAULT_GRACE_MS + STOP_MARGIN_MS);
    if (adopt_claim(d, inst, why, sizeof(why)) < 0) {
        snprintf(inst->exit_reason, sizeof(inst->exit_reason), "%.*s",
                 (int)sizeof(inst->exit_reason) - 1, why);
        umdev_log(&d->log, LOG_ERR, "%s: %s: stopping it", rec.uuid, why);
        inst_stop(d, inst, UMDEVD_DEFAULT_GRACE_MS, NULL);
        goto out;
    }
    if (rec.lease) {
        /* Its lessee's control connection ended with the umdevd that
         * granted the lease: as when a lessee goes, the instance stops. */
        inst_lease(inst, NULL, rec.lease_pid);
        umdev_log(&d->log, LOG_INFO,
                  "%s: lessee (pid %d) lost its connection with the previous "
                  "umdevd",
                  rec.uuid, (int)rec.lease_pid);
        inst_stop(d, inst, 0, NULL);
    }
out:
    json_object_put(obj);
}

/* RUNDIR/workers must be umdevd's user's alone, or a record there proves
 * nothing. It is made when the first worker starts (adopt_socket()), so
 * a daemon that runs none leaves RUNDIR as it was. Return: its fd;
 * -ENOENT none yet; or -errno after saying why. */
static int
workers_dir_open(struct daemon *d)
{
    char path[PATH_MAX];
    struct stat st;
    int fd;

    if (snprintf(path, sizeof(path), "%s/" UMDEVD_WORKERS_DIR,
                 d->opts.rundir) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return -ENOENT;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int rc = -errno;

        umdev_log(&d->log, LOG_ERR, "cannot open %s: %s", path, strerror(-rc));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
        umdev_log(&d->log, LOG_ERR,
                  "%s is not umdevd's user's alone (uid %u, mode %04o): no "
                  "worker is adopted, and no instance starts until it is "
                  "removed and umdevd restarted",
                  path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
        close(fd);
        return -EPERM;
    }
    return fd;
}

void
supervisor_adopt_all(struct daemon *d)
{
    struct dirent *e;
    DIR *dir;
    int fd = workers_dir_open(d);

    if (fd == -ENOENT)
        d->workers_dir = true;
    if (fd < 0)
        return;
    d->workers_dir = true;
    dir = fdopendir(fd);
    if (dir == NULL) {
        close(fd);
        return;
    }
    while ((e = readdir(dir)) != NULL) {
        size_t len = strlen(e->d_name);

        if (e->d_name[0] == '.')
            continue;
        if (len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0) {
            /* A record whose write was cut short. */
            unlinkat(dirfd(dir), e->d_name, 0);
            continue;
        }
        if (len <= 5 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        adopt_one(d, dirfd(dir), e->d_name);
    }
    closedir(dir);
}
