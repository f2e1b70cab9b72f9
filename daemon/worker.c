/*
 * An instance worker: a forked child that keeps only its listening socket
 * and its channel to the supervisor, drops to the instance owner, builds
 * the device through its parent driver and serves it. A stop request (or
 * SIGTERM, or losing the supervisor) raises the device request IRQ when a
 * VMM is attached, waits a bounded grace period for it to let go, then
 * exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sandbox.h"
#include "audit.h"
#include "parents.h"
#include "worker.h"

#define WORKER_LISTEN_FD 3
#define WORKER_CHANNEL_FD 4

struct worker {
    struct daemon *d;
    struct instance *inst;
    const struct umdev_parent *drv;
    struct umdev_instance dev; /* what the parent built */
    struct umdev_loop *loop;
    struct umdev_server *srv;
    struct umdev_logger log;
    int grace_ms;
    bool stopping;
    bool exit_now;
};

static void
send_json(struct json_object *o)
{
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);

    if (send(WORKER_CHANNEL_FD, s, strlen(s), MSG_NOSIGNAL) < 0) {
        /* The supervisor is gone; the loop notices the hangup. */
    }
}

static void
send_event(const char *event, const char *message)
{
    struct json_object *o = json_object_new_object();

    json_object_object_add(o, "event", json_object_new_string(event));
    if (message != NULL)
        json_object_object_add(o, "message", json_object_new_string(message));
    send_json(o);
    json_object_put(o);
}

static void fail(const char *fmt, ...)
    __attribute__((noreturn, format(printf, 1, 2)));

static void
fail(const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    send_event("error", msg);
    _exit(1);
}

/* Keep exactly the descriptors a worker needs. */
static void
isolate_fds(int listen_fd, int channel_fd)
{
    int l = fcntl(listen_fd, F_DUPFD_CLOEXEC, 16);
    int c = fcntl(channel_fd, F_DUPFD_CLOEXEC, 16);

    if (l < 0 || c < 0 || dup2(l, WORKER_LISTEN_FD) < 0 ||
        dup2(c, WORKER_CHANNEL_FD) < 0)
        _exit(1);
    /* stdin is not ours to read; 1 and 2 stay for logs. */
    if (close_range(WORKER_CHANNEL_FD + 1, ~0u, 0) < 0)
        _exit(1);
}

static void
drop_privileges(const struct inst_config *inst)
{
    if (geteuid() != 0)
        return;
    if (inst->uid == 0 && inst->gid == 0)
        return;
    if (setgroups(0, NULL) < 0 || setgid(inst->gid) < 0 ||
        setuid(inst->uid) < 0)
        fail("cannot drop privileges to %u:%u: %s", (unsigned)inst->uid,
             (unsigned)inst->gid, strerror(errno));
    /* A root owner with another group keeps uid 0 by request; anyone
     * else must not be able to get it back. */
    if (inst->uid != 0 && setuid(0) == 0)
        fail("privileges were not dropped");
}

/* The device as `umdevctl info` shows it, with the parent's own facts
 * (host ends, engine settings) under "endpoints". */
static struct json_object *
device_json(struct worker *w)
{
    struct json_object *o = audit_device_object(w->dev.dev, w->dev.pci);

    if (w->drv->ops->describe != NULL)
        json_object_object_add(o, "endpoints", w->drv->ops->describe(&w->dev));
    return o;
}

static void
on_grace(struct umdev_loop *loop, void *opaque)
{
    struct worker *w = opaque;

    (void)loop;
    umdev_log(&w->log, LOG_WARNING,
              "client still attached after the grace period; leaving");
    w->exit_now = true;
}

static void
begin_stop(struct worker *w, int grace_ms)
{
    if (w->stopping)
        return;
    w->stopping = true;
    if (!umdev_dev_attached(w->dev.dev)) {
        w->exit_now = true;
        return;
    }
    /* Ask the VMM to let go (VFIO device request), then give it time. */
    umdev_dev_request_release(w->dev.dev);
    umdev_log(&w->log, LOG_INFO,
              "stop requested with a client attached; waiting up to %d ms",
              grace_ms);
    if (umdev_loop_timer_add(w->loop, (uint64_t)grace_ms, on_grace, w) < 0)
        w->exit_now = true; /* cannot wait: leave now */
}

static void
on_channel(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct worker *w = opaque;
    struct json_object *req, *v;
    char buf[4096];
    ssize_t n;

    (void)loop;
    (void)events;
    n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        /* The supervisor is gone: nobody will manage us; stop. */
        umdev_loop_del(loop, fd);
        begin_stop(w, w->grace_ms);
        return;
    }
    if (n < 0)
        return;
    buf[n] = '\0';
    req = json_tokener_parse(buf);
    if (req == NULL || !json_object_object_get_ex(req, "req", &v)) {
        json_object_put(req);
        return;
    }
    if (strcmp(json_object_get_string(v), "info") == 0) {
        struct json_object *r = json_object_new_object();

        json_object_object_add(r, "reply", json_object_new_string("info"));
        json_object_object_add(r, "device", device_json(w));
        send_json(r);
        json_object_put(r);
    } else if (strcmp(json_object_get_string(v), "stop") == 0) {
        int grace = w->grace_ms;

        if (json_object_object_get_ex(req, "grace_ms", &v))
            grace = json_object_get_int(v);
        begin_stop(w, grace < 0 ? 0 : grace);
    }
    json_object_put(req);
}

static void
on_signal(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct worker *w = opaque;
    struct signalfd_siginfo si;

    (void)loop;
    (void)events;
    if (read(fd, &si, sizeof(si)) == sizeof(si))
        begin_stop(w, w->grace_ms);
}

#ifdef UMDEV_TEST_HOOKS
/*
 * Test-only (tests/daemon/test_sandbox.py), never built into release
 * binaries. Once a VMM is attached, the worker of the instance named by
 * UMDEV_TEST_FORBIDDEN_SYSCALL behaves like a compromised device: it
 * tries a network connection, and the sandbox must kill it there. In a
 * sanitizer build the one named by UMDEV_TEST_MEMORY_ERROR overflows a
 * heap buffer: the sanitizer's report must arrive whole through the
 * filter.
 */
enum test_hook { HOOK_NONE, HOOK_SYSCALL, HOOK_MEMORY };

static bool
names(const char *env, const struct instance *inst)
{
    const char *uuid = getenv(env);

    return uuid != NULL && strcmp(uuid, inst->cfg.uuid) == 0;
}

static enum test_hook
test_hook_armed(const struct instance *inst)
{
    if (names("UMDEV_TEST_FORBIDDEN_SYSCALL", inst))
        return HOOK_SYSCALL;
#ifdef UMDEV_SANITIZER
    if (names("UMDEV_TEST_MEMORY_ERROR", inst))
        return HOOK_MEMORY;
#endif
    return HOOK_NONE;
}

#ifdef UMDEV_SANITIZER
static void
test_hook_memory_error(struct worker *w)
{
    volatile char *p = malloc(8);

    umdev_log(&w->log, LOG_ERR, "test hook: writing past a heap buffer");
    if (p != NULL)
        p[8] = 1; /* the sanitizer stops the worker here */
    free((void *)p);
}
#endif

/* A device that phones home. (Not open(): sanitizer builds let it fail
 * softly, docs/SANDBOX.md.) */
static void
test_hook_forbidden_syscall(struct worker *w)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    /* Reached only when the filter let it through (--sandbox log). */
    umdev_log(&w->log, LOG_ERR, "test hook: socket(AF_INET) returned %d", fd);
    if (fd >= 0)
        close(fd);
}

static void
test_hook_fire(struct worker *w, enum test_hook hook)
{
#ifdef UMDEV_SANITIZER
    if (hook == HOOK_MEMORY) {
        test_hook_memory_error(w);
        return;
    }
#endif
    if (hook == HOOK_SYSCALL)
        test_hook_forbidden_syscall(w);
}
#endif

static void
log_line(void *opaque, int level, const char *line)
{
    (void)opaque;
    umdev_log_stderr(NULL, level, line);
}

void
worker_run(struct daemon *d, struct instance *inst, int listen_fd,
           int status_fd, int grace_ms)
{
    struct worker w = {
        .d = d,
        .inst = inst,
        .grace_ms = grace_ms,
    };
    struct umdev_instance_args args;
    const struct parent_entry *pe;
    sigset_t mask;
    int sfd, rc;
#ifdef UMDEV_TEST_HOOKS
    enum test_hook hook = test_hook_armed(inst);
#endif

    isolate_fds(listen_fd, status_fd);
    prctl(PR_SET_NAME, "umdev-worker");
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    w.log = d->log;
    w.log.fn = d->opts.syslog ? d->log.fn : log_line;
    w.log.prefix = inst->cfg.uuid;
    pe = parents_find(d->parents, inst->cfg.parent);
    if (pe == NULL)
        fail("no driver for parent '%s'", inst->cfg.parent);
    w.drv = pe->drv;
    if (umdev_loop_create(&w.loop) < 0)
        fail("cannot create an event loop");
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0)
        fail("cannot create a signalfd: %s", strerror(errno));
    /* Host endpoints are created (and handed to the owner) before the
     * worker gives up root, since RUNDIR belongs to the supervisor. */
    args.type = inst->cfg.type;
    args.uuid = inst->cfg.uuid;
    args.rundir = d->opts.rundir;
    args.uid = inst->cfg.uid;
    args.gid = inst->cfg.gid;
    args.attrs = inst->cfg.attrs;
    args.loop = w.loop;
    args.log = &w.log;
    rc = w.drv->ops->create(&args, &w.dev);
    if (rc < 0)
        fail("cannot create the device: %s", strerror(-rc));
    drop_privileges(&inst->cfg);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        fail("cannot set no_new_privs: %s", strerror(errno));
    rc = umdev_server_create_fd(w.dev.dev, w.loop, WORKER_LISTEN_FD, &w.srv);
    if (rc < 0)
        fail("cannot serve: %s", strerror(-rc));
    umdev_loop_add(w.loop, WORKER_CHANNEL_FD, UMDEV_LOOP_IN, on_channel, &w);
    umdev_loop_add(w.loop, sfd, UMDEV_LOOP_IN, on_signal, &w);
    /* Last: from here on the worker only serves (daemon/sandbox.c). */
    rc = sandbox_apply(d->opts.sandbox_log);
    if (rc < 0)
        fail("cannot install the seccomp filter: %s", strerror(-rc));
    send_event("ready", NULL);
    while (!w.exit_now) {
        if (umdev_loop_run_once(w.loop, -1) < 0)
            break;
#ifdef UMDEV_TEST_HOOKS
        if (hook != HOOK_NONE && umdev_dev_attached(w.dev.dev)) {
            test_hook_fire(&w, hook);
            hook = HOOK_NONE;
        }
#endif
        if (w.stopping && !umdev_dev_attached(w.dev.dev))
            w.exit_now = true;
    }
    umdev_server_destroy(w.srv);
    w.drv->ops->destroy(&w.dev);
    umdev_loop_destroy(w.loop);
    _exit(0);
}
