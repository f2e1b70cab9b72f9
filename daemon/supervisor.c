/*
 * The instance table and worker supervision. Each running instance is one
 * forked worker; the supervisor owns its listening socket's path, its
 * resources in the mdev registry, and a SOCK_SEQPACKET channel carrying
 * JSON events and requests. State arcs:
 *
 *   stopped/failed --start--> starting --ready--> running
 *   starting/running --stop--> stopping --exit--> stopped (removed if
 *                                                  transient)
 *   starting --worker dies--> failed (removed if transient: the start
 *                                     request carries the reason)
 *   running --worker dies--> failed (`stop` acknowledges: stopped, or
 *                                    removed if transient)
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "umdevd.h"

static const char *const state_names[] = {
    [ST_STOPPED] = "stopped",   [ST_STARTING] = "starting",
    [ST_RUNNING] = "running",   [ST_STOPPING] = "stopping",
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
        if (strcmp(i->uuid, norm) == 0)
            return i;
    return NULL;
}

int
inst_new(struct daemon *d, const char *uuid, const char *type,
         struct instance **out, char *err, size_t errlen)
{
    struct mdev_type_info info;
    struct instance *inst;

    *out = NULL;
    if (mdev_type_find(d->mdev, type, &info) < 0) {
        snprintf(err, errlen,
                 "unknown type '%s' (umdevctl types lists them)", type);
        return -ENOENT;
    }
    inst = calloc(1, sizeof(*inst));
    if (inst == NULL)
        return -ENOMEM;
    if (uuid != NULL) {
        if (mdev_uuid_parse(uuid, inst->uuid) < 0) {
            free(inst);
            snprintf(err, errlen,
                     "'%s' is not a UUID (expected the form "
                     "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
                     uuid);
            return -EINVAL;
        }
    } else {
        mdev_uuid_generate(inst->uuid);
    }
    if (inst_find(d, inst->uuid) != NULL) {
        snprintf(err, errlen,
                 "instance %s exists already (undefine or stop it, or pick "
                 "another UUID)",
                 inst->uuid);
        free(inst);
        return -EEXIST;
    }
    snprintf(inst->parent, sizeof(inst->parent), "%s", info.parent);
    snprintf(inst->type, sizeof(inst->type), "%s", info.name);
    inst->attrs = json_object_new_object();
    if (inst->attrs == NULL) {
        free(inst);
        return -ENOMEM;
    }
    /* Owner defaults to whoever runs the daemon (root in production). */
    inst->uid = geteuid();
    inst->gid = getegid();
    inst->mode = 0600;
    inst->daemon = d;
    inst->pid = -1;
    inst->status_fd = -1;
    inst->start_timer = -1;
    inst->exit_status = -1;
    inst->exit_signal = -1;
    if (snprintf(inst->sock_path, sizeof(inst->sock_path), "%s/%s.sock",
                 d->opts.rundir, inst->uuid) >= (int)sizeof(inst->sock_path)) {
        json_object_put(inst->attrs);
        free(inst);
        snprintf(err, errlen, "socket path too long (use a shorter --rundir)");
        return -ENAMETOOLONG;
    }
    inst->next = d->instances;
    d->instances = inst;
    d->ninstances++;
    *out = inst;
    return 0;
}

void
inst_free(struct daemon *d, struct instance *inst)
{
    struct instance **pp;

    for (pp = &d->instances; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == inst) {
            *pp = inst->next;
            d->ninstances--;
            break;
        }
    }
    json_object_put(inst->attrs);
    json_object_put(inst->pending.id);
    free(inst);
}

struct json_object *
inst_to_json(const struct instance *inst)
{
    struct json_object *o = json_object_new_object();
    struct json_object *owner = json_object_new_object();
    char mode[8];

    json_object_object_add(o, "uuid", json_object_new_string(inst->uuid));
    json_object_object_add(o, "parent", json_object_new_string(inst->parent));
    json_object_object_add(o, "type", json_object_new_string(inst->type));
    json_object_object_add(o, "defined",
                           json_object_new_boolean(inst->defined));
    json_object_object_add(
        o, "start", json_object_new_string(inst->auto_start ? "auto"
                                                            : "manual"));
    json_object_object_add(o, "state", json_object_new_string(
                                           inst_state_name(inst->state)));
    json_object_object_add(o, "socket",
                           json_object_new_string(inst->sock_path));
    json_object_object_add(owner, "uid", json_object_new_int64(inst->uid));
    json_object_object_add(owner, "gid", json_object_new_int64(inst->gid));
    json_object_object_add(o, "owner", owner);
    snprintf(mode, sizeof(mode), "%04o", (unsigned int)inst->mode);
    json_object_object_add(o, "mode", json_object_new_string(mode));
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
    json_object_object_add(o, "attrs", json_object_get(inst->attrs));
    return o;
}

/* Send one JSON message on the worker channel. */
static int
channel_send(int fd, struct json_object *msg)
{
    const char *s = json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN);
    ssize_t n = send(fd, s, strlen(s), MSG_NOSIGNAL | MSG_DONTWAIT);

    return n < 0 ? -errno : 0;
}

static void
timer_clear(struct daemon *d, struct instance *inst)
{
    if (inst->start_timer >= 0) {
        umdev_loop_del(d->loop, inst->start_timer);
        close(inst->start_timer);
        inst->start_timer = -1;
    }
}

static void on_timer(struct umdev_loop *loop, int fd, uint32_t events,
                     void *opaque);

static int
timer_arm(struct daemon *d, struct instance *inst, int ms)
{
    struct itimerspec its = {
        .it_value = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L },
    };

    timer_clear(d, inst);
    inst->start_timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    if (inst->start_timer < 0)
        return -errno;
    if (timerfd_settime(inst->start_timer, 0, &its, NULL) < 0 ||
        umdev_loop_add(d->loop, inst->start_timer, UMDEV_LOOP_IN, on_timer,
                       inst) < 0) {
        close(inst->start_timer);
        inst->start_timer = -1;
        return -EIO;
    }
    return 0;
}

/* A worker missed its deadline (start, stop grace, info): end it. */
static void
on_timer(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct instance *inst = opaque;
    uint64_t n;

    (void)loop;
    (void)events;
    if (read(fd, &n, sizeof(n)) < 0)
        return;
    if (inst->pid > 0) {
        snprintf(inst->exit_reason, sizeof(inst->exit_reason),
                 "worker did not respond in time; killed");
        kill(inst->pid, SIGKILL);
    }
}

static void
handle_event(struct daemon *d, struct instance *inst, struct json_object *ev)
{
    struct json_object *v;
    const char *kind = NULL;

    if (json_object_object_get_ex(ev, "event", &v))
        kind = json_object_get_string(v);
    if (kind != NULL && strcmp(kind, "ready") == 0 &&
        inst->state == ST_STARTING) {
        inst->state = ST_RUNNING;
        timer_clear(d, inst);
        umdev_log(&d->log, LOG_INFO, "%s: running (pid %d, socket %s)",
                  inst->uuid, (int)inst->pid, inst->sock_path);
        pending_complete(d, inst, 0, NULL, NULL);
        return;
    }
    if (kind != NULL && strcmp(kind, "error") == 0) {
        if (json_object_object_get_ex(ev, "message", &v))
            snprintf(inst->exit_reason, sizeof(inst->exit_reason), "%s",
                     json_object_get_string(v));
        return;
    }
    if (json_object_object_get_ex(ev, "reply", &v) &&
        inst->pending.kind == PENDING_INFO) {
        timer_clear(d, inst);
        json_object_object_del(ev, "reply");
        pending_complete(d, inst, 0, NULL, ev);
    }
}

static void
on_channel(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct instance *inst = opaque;
    struct daemon *d = inst->daemon;
    char buf[65536];
    ssize_t n;

    (void)events;
    n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    if (n <= 0) {
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            /* The worker is going away; its exit is handled on SIGCHLD. */
            umdev_loop_del(loop, fd);
        }
        return;
    }
    buf[n] = '\0';
    {
        struct json_object *ev = json_tokener_parse(buf);

        if (ev == NULL || !json_object_is_type(ev, json_type_object)) {
            umdev_log(&d->log, LOG_WARNING,
                      "%s: malformed message from worker", inst->uuid);
        } else {
            handle_event(d, inst, ev);
        }
        json_object_put(ev);
    }
}

static int
listen_socket(const struct instance *inst, char *err, size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd, rc;
    mode_t old;

    if (strlen(inst->sock_path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "socket path %s is too long (use a shorter "
                              "--rundir)", inst->sock_path);
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, inst->sock_path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    unlink(inst->sock_path);
    old = umask(077);
    rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc < 0 || listen(fd, 16) < 0)
        goto fail;
    /* The owner and mode come from the definition; the VMM connects as
     * that user. */
    if (chmod(inst->sock_path, inst->mode) < 0)
        goto fail;
    if ((inst->uid != geteuid() || inst->gid != getegid()) &&
        chown(inst->sock_path, inst->uid, inst->gid) < 0)
        goto fail;
    return fd;
fail:
    rc = -errno;
    snprintf(err, errlen, "cannot create socket %s: %s", inst->sock_path,
             strerror(-rc));
    close(fd);
    unlink(inst->sock_path);
    return rc;
}

int
inst_start(struct daemon *d, struct instance *inst, char *err, size_t errlen)
{
    int sp[2] = { -1, -1 };
    int listen_fd, rc;
    pid_t pid;

    if (inst->state == ST_STARTING || inst->state == ST_RUNNING ||
        inst->state == ST_STOPPING) {
        snprintf(err, errlen, "instance %s is %s already", inst->uuid,
                 inst_state_name(inst->state));
        return -EALREADY;
    }
    rc = mdev_instance_add(d->mdev, inst->uuid, inst->type);
    if (rc == -ENOSPC) {
        snprintf(err, errlen,
                 "parent '%s' has no free resources for %s (stop another "
                 "instance, or pick a smaller type)",
                 inst->parent, inst->type);
        return rc;
    }
    if (rc < 0) {
        snprintf(err, errlen, "cannot claim resources: %s", strerror(-rc));
        return rc;
    }
    inst->claimed = true;
    listen_fd = listen_socket(inst, err, errlen);
    if (listen_fd < 0) {
        rc = listen_fd;
        goto fail;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
        rc = -errno;
        snprintf(err, errlen, "socketpair: %s", strerror(-rc));
        close(listen_fd);
        goto fail;
    }
    pid = fork();
    if (pid < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot fork a worker: %s", strerror(-rc));
        close(listen_fd);
        close(sp[0]);
        close(sp[1]);
        goto fail;
    }
    if (pid == 0) {
        close(sp[0]);
        worker_run(d, inst, listen_fd, sp[1], UMDEVD_DEFAULT_GRACE_MS);
    }
    close(listen_fd);
    close(sp[1]);
    inst->pid = pid;
    inst->status_fd = sp[0];
    inst->state = ST_STARTING;
    inst->exit_reason[0] = '\0';
    inst->exit_status = inst->exit_signal = -1;
    umdev_loop_add(d->loop, inst->status_fd, UMDEV_LOOP_IN, on_channel, inst);
    timer_arm(d, inst, UMDEVD_START_TIMEOUT_MS);
    return 0;
fail:
    mdev_instance_remove(d->mdev, inst->uuid);
    inst->claimed = false;
    unlink(inst->sock_path);
    return rc;
}

int
inst_stop(struct daemon *d, struct instance *inst, int grace_ms)
{
    struct json_object *req;

    if (inst->state != ST_RUNNING && inst->state != ST_STARTING)
        return -ENOENT;
    req = json_object_new_object();
    json_object_object_add(req, "req", json_object_new_string("stop"));
    json_object_object_add(req, "grace_ms", json_object_new_int(grace_ms));
    if (channel_send(inst->status_fd, req) < 0)
        kill(inst->pid, SIGTERM);
    json_object_put(req);
    inst->state = ST_STOPPING;
    /* The worker ends itself within the grace period; past it plus a
     * margin, it is killed. */
    timer_arm(d, inst, grace_ms + 2000);
    return 0;
}

int
inst_request_info(struct daemon *d, struct instance *inst)
{
    struct json_object *req = json_object_new_object();
    int rc;

    json_object_object_add(req, "req", json_object_new_string("info"));
    rc = channel_send(inst->status_fd, req);
    json_object_put(req);
    if (rc == 0)
        timer_arm(d, inst, 2000);
    return rc;
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

    while ((n = recv(inst->status_fd, buf, sizeof(buf) - 1,
                     MSG_DONTWAIT)) > 0) {
        struct json_object *ev, *v;

        buf[n] = '\0';
        ev = json_tokener_parse(buf);
        if (ev != NULL && json_object_is_type(ev, json_type_object) &&
            json_object_object_get_ex(ev, "event", &v) &&
            json_object_is_type(v, json_type_string) &&
            strcmp(json_object_get_string(v), "error") == 0 &&
            json_object_object_get_ex(ev, "message", &v))
            snprintf(inst->exit_reason, sizeof(inst->exit_reason), "%s",
                     json_object_get_string(v));
        json_object_put(ev);
    }
}

static void
worker_gone(struct daemon *d, struct instance *inst, int status)
{
    bool expected = inst->state == ST_STOPPING;
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    enum inst_state was = inst->state;

    timer_clear(d, inst);
    if (inst->status_fd >= 0) {
        channel_last_words(inst);
        umdev_loop_del(d->loop, inst->status_fd);
        close(inst->status_fd);
        inst->status_fd = -1;
    }
    unlink(inst->sock_path);
    if (inst->claimed) {
        mdev_instance_remove(d->mdev, inst->uuid);
        inst->claimed = false;
    }
    inst->pid = -1;
    if (expected && clean) {
        inst->state = ST_STOPPED;
        umdev_log(&d->log, LOG_INFO, "%s: stopped", inst->uuid);
    } else {
        describe_exit(inst, status);
        inst->state = ST_FAILED;
        umdev_log(&d->log, expected ? LOG_WARNING : LOG_ERR, "%s: %s",
                  inst->uuid, inst->exit_reason);
    }
    if (inst->pending.kind != 0) {
        if (was == ST_STARTING)
            pending_complete(d, inst, -EIO,
                             inst->exit_reason[0] ? inst->exit_reason
                                                  : "worker failed to start",
                             NULL);
        else if (inst->pending.kind == PENDING_INFO)
            pending_complete(d, inst, -EIO, inst->exit_reason, NULL);
        else
            pending_complete(d, inst, 0, NULL, NULL);
    }
    /* A transient instance leaves no trace once it stopped cleanly, nor
     * when it never came up: its start request got the reason, and a
     * failed leftover would only hold its UUID. */
    if (!inst->defined && (inst->state == ST_STOPPED || was == ST_STARTING))
        inst_free(d, inst);
}

void
supervisor_reap(struct daemon *d)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        struct instance *inst;

        for (inst = d->instances; inst != NULL; inst = inst->next)
            if (inst->pid == pid)
                break;
        if (inst != NULL)
            worker_gone(d, inst, status);
    }
}
