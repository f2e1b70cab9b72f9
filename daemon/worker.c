/*
 * An instance worker: a forked child that keeps only its listening socket,
 * its channel to the supervisor, its adoption socket (and a pre-opened log
 * socket), builds the device through its parent driver, gives up root for
 * good (never serving as uid 0: docs/SANDBOX.md) and serves it. A stop
 * request (or SIGTERM) raises the device request IRQ when a VMM is
 * attached, waits a bounded grace period for it to let go, then exits.
 *
 * Losing the supervisor does not end a worker the supervisor has recorded
 * (supervisor.h, "Surviving umdevd"): its VMM still needs it, so it
 * serves on, for as long as it takes, and waits on its adoption socket
 * for the next umdevd, which proves itself with the record's token. One
 * that was never recorded stops, as no later umdevd could find it.
 *
 * A restart (`umdevctl restart`) replaces a worker under its VMM: the
 * old one hands its device over (hand_over()) to a new one umdevd exec'd
 * from its file on disk (worker_restore()), which restores it before its
 * sandbox and confirms; until then the old one can resume.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "sandbox.h"
#include "audit.h"
#include "parents.h"
#include "worker.h"

#define WORKER_LISTEN_FD 3
#define WORKER_CHANNEL_FD WORKER_RESTORE_CHANNEL_FD
/* With --syslog: /dev/log, connected before the sandbox (which allows
 * neither socket() nor connect()). */
#define WORKER_LOG_FD 5
/* RUNDIR/workers/<uuid>.adopt, bound by umdevd; the worker listens on it
 * itself, so that a connecting umdevd's SO_PEERCRED names the worker. */
#define WORKER_ADOPT_FD 6
/* A restarted worker (umdevd --restore-worker) has the package socket
 * where a forked one has its listening socket: the package carries that. */
#define WORKER_PACKAGE_FD WORKER_LISTEN_FD

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
    /* The supervisor wrote this worker's record: a later umdevd can
     * adopt it, so losing the supervisor is no reason to stop. */
    bool recorded;
    /* A connection on the adoption socket that has not proved itself
     * yet, or -1. */
    int candidate;
    uid_t supervisor_uid;
    /* The device was handed to a restarted worker: nothing is left to
     * serve, the worker exits. */
    bool handed_over;
    /* A restart under way: the package socket to the new worker, until
     * it says it is ready, and the bound on that wait; -1 and 0 when
     * none. */
    int successor;
    int64_t successor_timer;
    uint64_t screens; /* screen requests answered (umdevctl screenshot) */
};

/* The channel to the supervisor: WORKER_CHANNEL_FD, then the connection
 * of the umdevd that adopted this worker; -1 while it has none. */
static int channel_fd = WORKER_CHANNEL_FD;

static void
send_json(struct json_object *o)
{
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);

    if (channel_fd >= 0 && send(channel_fd, s, strlen(s), MSG_NOSIGNAL) < 0) {
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

/* Keep exactly the descriptors a worker needs (@log_fd: -1 for none). */
static void
isolate_fds(int listen_fd, int status_fd, int adopt_fd, int log_fd)
{
    int l = fcntl(listen_fd, F_DUPFD_CLOEXEC, 16);
    int c = fcntl(status_fd, F_DUPFD_CLOEXEC, 16);
    int a = fcntl(adopt_fd, F_DUPFD_CLOEXEC, 16);
    int g = log_fd >= 0 ? fcntl(log_fd, F_DUPFD_CLOEXEC, 16) : -1;

    if (l < 0 || c < 0 || a < 0 || (log_fd >= 0 && g < 0) ||
        dup2(l, WORKER_LISTEN_FD) < 0 || dup2(c, WORKER_CHANNEL_FD) < 0 ||
        dup2(a, WORKER_ADOPT_FD) < 0 || (g >= 0 && dup2(g, WORKER_LOG_FD) < 0))
        _exit(1);
    if (g < 0)
        close(WORKER_LOG_FD);
    /* stdin is not ours to read; 1 and 2 stay for logs. */
    if (close_range(WORKER_ADOPT_FD + 1, ~0u, 0) < 0)
        _exit(1);
}

/* A datagram socket connected to syslog's /dev/log, or -1. */
static int
open_log_socket(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = "/dev/log" };
    int fd;

#ifdef UMDEV_TEST_HOOKS
    /* Test-only: a syslog of the test's own (tests/daemon/
     * test_contain.py), since /dev/log is the machine's. */
    const char *path = getenv("UMDEV_TEST_SYSLOG");

    if (path != NULL && strlen(path) < sizeof(sa.sun_path))
        strcpy(sa.sun_path, path);
#endif
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static void
log_line(void *opaque, int level, const char *line)
{
    (void)opaque;
    umdev_log_stderr(NULL, level, line);
}

/*
 * glibc's syslog() would reconnect (socket, connect) whenever its socket
 * is not there, and read the time zone for its timestamp (open): both
 * outside the sandbox. This writes the RFC 3164 form without a timestamp,
 * which syslog daemons and journald complete with the time received. A
 * line syslog does not take goes to stderr, the daemon's log.
 */
static void
syslog_line(void *opaque, int level, const char *line)
{
    char msg[1200];
    int n;

    (void)opaque;
    n = snprintf(msg, sizeof(msg), "<%d>umdevd[%d]: %s", LOG_DAEMON | level,
                 (int)getpid(), line);
    if (n < 0 || (size_t)n >= sizeof(msg))
        n = (int)sizeof(msg) - 1;
    if (send(WORKER_LOG_FD, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        log_line(NULL, level, line);
}

static int
caps_get(struct __user_cap_data_struct data[2])
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };

    return (int)syscall(SYS_capget, &hdr, data);
}

static int
caps_clear(void)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];

    memset(data, 0, sizeof(data));
    return (int)syscall(SYS_capset, &hdr, data);
}

/*
 * Before anything else (in particular before the device starts threads,
 * since these sets are per thread and inherited): empty the capability
 * bounding set and the ambient set, and drop root's supplementary
 * groups. The worker keeps its effective capabilities until
 * drop_privileges(), for building the device.
 */
static void
harden_early(void)
{
    int cap;

    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    if (geteuid() != 0) {
        /* Nothing to build as root: whatever capabilities an
         * unprivileged daemon holds, a worker needs none. */
        if (caps_clear() < 0)
            fail("cannot clear capabilities: %s", strerror(errno));
        return;
    }
    if (setgroups(0, NULL) < 0)
        fail("cannot drop supplementary groups: %s", strerror(errno));
    for (cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
            fail("cannot drop capability %d from the bounding set: %s", cap,
                 strerror(errno));
}

/*
 * Who the worker serves as. A worker never serves as root: the owner's
 * identity when it has neither uid 0 nor gid 0 (the owner may use the
 * instance anyway, so the worker holds nothing the owner lacks), else the
 * worker user umdevd resolved at start-up (--worker-user).
 */
static void
worker_identity(const struct daemon *d, const struct inst_config *inst,
                uid_t *uid, gid_t *gid)
{
    if (inst->uid != 0 && inst->gid != 0) {
        *uid = inst->uid;
        *gid = inst->gid;
    } else {
        *uid = d->opts.worker_uid;
        *gid = d->opts.worker_gid;
    }
}

static void
drop_privileges(const struct daemon *d, const struct inst_config *inst)
{
    struct __user_cap_data_struct caps[2];
    uid_t uid, ruid, euid, suid;
    gid_t gid, rgid, egid, sgid;

    if (geteuid() == 0) {
        worker_identity(d, inst, &uid, &gid);
        if (uid == 0 || gid == 0)
            fail("no unprivileged user to serve as (umdevd "
                 "--worker-user)");
        /* glibc applies each to every thread of the process. */
        if (setgid(gid) < 0 || setuid(uid) < 0)
            fail("cannot drop privileges to %u:%u: %s", (unsigned)uid,
                 (unsigned)gid, strerror(errno));
    }
    /* Inheritable capabilities survive setuid(); none is needed. */
    if (caps_clear() < 0)
        fail("cannot clear capabilities: %s", strerror(errno));
    /* Whatever happened above: serve as root, or with a capability, or
     * with a way back to either, never. */
    if (getresuid(&ruid, &euid, &suid) < 0 ||
        getresgid(&rgid, &egid, &sgid) < 0 || ruid == 0 || euid == 0 ||
        suid == 0 || rgid == 0 || egid == 0 || sgid == 0)
        fail("a worker may not serve as root (uid %u, gid %u)",
             (unsigned)geteuid(), (unsigned)getegid());
    if (caps_get(caps) < 0 || caps[0].effective || caps[0].permitted ||
        caps[0].inheritable || caps[1].effective || caps[1].permitted ||
        caps[1].inheritable)
        fail("capabilities were not dropped");
    if (setuid(0) == 0)
        fail("privileges were not dropped");
    /* Changing uids made it undumpable only if fs.suid_dumpable is 0: a
     * process of the same user (the owner's VMM) must not ptrace it or
     * read its memory whatever that setting says. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        fail("cannot make the worker undumpable: %s", strerror(errno));
}

/* The device as `umdevctl info` shows it, with the parent's own facts
 * (host ends, engine settings) under "endpoints". */
static struct json_object *
device_json(struct worker *w)
{
    struct json_object *o = audit_device_object(w->dev.dev, w->dev.pci);

    if (w->drv->ops->describe != NULL)
        json_object_object_add(o, "endpoints", w->drv->ops->describe(&w->dev));
    if (PARENT_OP5(w->drv, screen) != NULL)
        json_object_object_add(o, "screenshots",
                               json_object_new_int64((int64_t)w->screens));
    return o;
}

static const char *const screen_formats[] = {
    [UMDEV_SCREEN_FMT_NONE] = "none",
    [UMDEV_SCREEN_FMT_RGB555] = "rgb555",
    [UMDEV_SCREEN_FMT_RGB565] = "rgb565",
    [UMDEV_SCREEN_FMT_BGR888] = "bgr888",
    [UMDEV_SCREEN_FMT_XRGB8888] = "xrgb8888",
    [UMDEV_SCREEN_FMT_BGRX8888] = "bgrx8888",
};

/* Whether @s (shown or not) lies inside a region of @size bytes, in a
 * format this umdevd knows. */
static bool
screen_fits(const struct umdev_screen *s, uint64_t size)
{
    static const unsigned int bytepp[] = {
        [UMDEV_SCREEN_FMT_RGB555] = 2,   [UMDEV_SCREEN_FMT_RGB565] = 2,
        [UMDEV_SCREEN_FMT_BGR888] = 3,   [UMDEV_SCREEN_FMT_XRGB8888] = 4,
        [UMDEV_SCREEN_FMT_BGRX8888] = 4,
    };
    uint64_t row, last;

    /* A format this umdevd does not know is refused shown or not: its
     * name is looked up from it. */
    if ((size_t)s->format >= sizeof(bytepp) / sizeof(bytepp[0]))
        return false;
    if (!s->enabled)
        return true;
    if (bytepp[s->format] == 0 || s->width == 0 || s->height == 0)
        return false;
    row = (uint64_t)s->width * bytepp[s->format];
    if (s->pitch < row || s->offset > size)
        return false;
    last = (uint64_t)(s->height - 1) * s->pitch + row;
    return last <= size - s->offset;
}

/*
 * Answer the supervisor's screen request (docs/CONTROL.md "screen"):
 * what the parent's screen operation says is shown, with the memfd of
 * the region it lies in. umdevd hands the caller a read-only reopening
 * of it, never this descriptor. The geometry is checked against the
 * region here too, so a parent's mistake is an error, not a reader
 * mapping past the memory.
 */
static void
send_screen(struct worker *w)
{
    int (*screen)(struct umdev_instance *, struct umdev_screen *) =
        PARENT_OP5(w->drv, screen);
    struct json_object *r = json_object_new_object(), *o;
    struct umdev_dev_region_info ri;
    struct umdev_screen s;
    const char *why = NULL;
    int fd = -1, rc, err = EIO;

    json_object_object_add(r, "reply", json_object_new_string("screen"));
    if (screen == NULL || w->dev.dev == NULL) {
        why = "its type has no screen";
        err = ENOTSUP;
    } else if ((rc = screen(&w->dev, &s)) < 0) {
        why = strerror(-rc);
    } else if ((fd = umdev_dev_region_shm_fd(w->dev.dev, s.region)) < 0 ||
               umdev_dev_region_info(w->dev.dev, s.region, &ri) < 0) {
        why = "its screen is not in shared memory";
        fd = -1;
    } else if (!screen_fits(&s, ri.size)) {
        why = "its parent described a screen outside its memory or in an "
              "unknown format";
        fd = -1;
    }
    if (why != NULL) {
        json_object_object_add(r, "error", json_object_new_string(why));
        json_object_object_add(r, "errno", json_object_new_int(err));
        send_json(r);
        json_object_put(r);
        return;
    }
    w->screens++;
    o = json_object_new_object();
    json_object_object_add(o, "enabled", json_object_new_boolean(s.enabled));
    json_object_object_add(o, "blanked", json_object_new_boolean(s.blanked));
    json_object_object_add(o, "format",
                           json_object_new_string(screen_formats[s.format]));
    json_object_object_add(o, "width", json_object_new_int64(s.width));
    json_object_object_add(o, "height", json_object_new_int64(s.height));
    json_object_object_add(o, "pitch", json_object_new_int64(s.pitch));
    json_object_object_add(o, "offset",
                           json_object_new_int64((int64_t)s.offset));
    json_object_object_add(o, "size", json_object_new_int64((int64_t)ri.size));
    json_object_object_add(r, "screen", o);
    if (channel_fd >= 0)
        (void)channel_send_fd(channel_fd, r, fd);
    json_object_put(r);
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

#ifdef UMDEV_TEST_HOOKS
static bool names(const char *env, const struct instance *inst);
#endif

/* The restart ends here with this worker serving: tell the supervisor
 * why. */
static void
handover_refused(struct worker *w, int sock, const char *why)
{
    struct json_object *o;

    close(sock);
    umdev_log(&w->log, LOG_WARNING, "restart refused, serving on: %s", why);
    o = json_object_new_object();
    json_object_object_add(o, "event",
                           json_object_new_string("handover_aborted"));
    json_object_object_add(o, "message", json_object_new_string(why));
    send_json(o);
    json_object_put(o);
}

/*
 * `umdevctl restart` (docs/CLI.md): hand the device, its socket and its
 * client to the new worker at the other end of @sock (the supervisor
 * started it from the umdevd on disk), and tell the supervisor how it
 * went. The worker is blocked meanwhile, which costs nothing: the device
 * is stopped from the save on, and what the client sends waits in its
 * socket for whichever worker serves next. Committed, this worker only
 * exits; refused, timed out or dead, the new one is given up and this
 * one serves on from where it stopped.
 */
static void
hand_over(struct worker *w, int sock)
{
    struct umdev_handover *pkg = NULL;
    struct pollfd p = { .fd = sock, .events = POLLIN };
    struct timespec t0, t1;
    struct json_object *o;
    char why[200] = "", ans = 0;
    int rc, arc;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = umdev_server_handover_save(w->srv, &pkg);
    if (rc < 0) {
        snprintf(why, sizeof(why), "the device cannot be saved: %s",
                 strerror(-rc));
        goto refused;
    }
#ifdef UMDEV_TEST_HOOKS
    /* Test-only (tests/daemon/test_restart.py): the worker of the
     * instance UMDEV_TEST_QUIESCE_HANG names stays stopped and silent
     * for 3 s, past the bound umdevd gives it in that test. */
    if (names("UMDEV_TEST_QUIESCE_HANG", w->inst))
        nanosleep(&(struct timespec){ .tv_sec = 3 }, NULL);
#endif
    rc = umdev_handover_send(sock, pkg, WORKER_HANDOVER_TIMEOUT_MS);
    umdev_handover_free(pkg);
    if (rc < 0) {
        snprintf(why, sizeof(why), "cannot send the package: %s",
                 strerror(-rc));
    } else {
        /* The new worker answers 'K' once it serves; EOF is its end. */
        rc = poll(&p, 1, WORKER_HANDOVER_TIMEOUT_MS);
        if (rc == 0)
            snprintf(why, sizeof(why),
                     "the new worker did not confirm within %d ms",
                     WORKER_HANDOVER_TIMEOUT_MS);
        else if (rc < 0 || read(sock, &ans, 1) != 1 || ans != 'K')
            snprintf(why, sizeof(why),
                     "the new worker did not take the device (see its "
                     "reason)");
    }
    if (why[0] == '\0') {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        umdev_server_handover_commit(w->srv);
        w->srv = NULL;
        w->handed_over = true;
        w->exit_now = true;
        close(sock);
        o = json_object_new_object();
        json_object_object_add(o, "event",
                               json_object_new_string("handed_over"));
        json_object_object_add(
            o, "blackout_us",
            json_object_new_int64((int64_t)(t1.tv_sec - t0.tv_sec) * 1000000 +
                                  (t1.tv_nsec - t0.tv_nsec) / 1000));
        send_json(o);
        json_object_put(o);
        umdev_log(&w->log, LOG_INFO, "handed over to a restarted worker");
        return;
    }
    arc = umdev_server_handover_abort(w->srv);
#ifdef UMDEV_TEST_HOOKS
    /* Test-only (tests/daemon/test_restart.py): the worker of the
     * instance UMDEV_TEST_RESUME_FAIL names cannot resume. */
    if (arc == 0 && names("UMDEV_TEST_RESUME_FAIL", w->inst))
        arc = -EIO;
#endif
    if (arc < 0) {
        close(sock);
        /* Neither worker serves. The VMM learns it from the device before
         * the connection ends: an error (QEMU stops the guest on it
         * rather than let its driver time out against a dead device)
         * and the request to let go. Neither is ever held. */
        umdev_dev_irq_trigger(w->dev.dev, UMDEV_PCI_ERR_IRQ, 0);
        umdev_dev_request_release(w->dev.dev);
        fail("cannot resume (%s) after a failed restart: %s", strerror(-arc),
             why);
    }
refused:
    handover_refused(w, sock, why);
}

static void
successor_forget(struct worker *w)
{
    umdev_loop_del(w->loop, w->successor);
    umdev_loop_timer_cancel(w->loop, w->successor_timer);
    w->successor = -1;
    w->successor_timer = 0;
}

/* The new worker said it is ready for the package ('R'), or ended. */
static void
on_successor(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct worker *w = opaque;
    char c = 0;
    ssize_t n;

    (void)loop;
    (void)events;
    n = recv(fd, &c, 1, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    successor_forget(w);
    if (n != 1 || c != 'R')
        handover_refused(w, fd,
                         "the new worker ended before it was ready (see its "
                         "reason)");
    else if (w->stopping)
        handover_refused(w, fd, "this worker is stopping");
    else
        hand_over(w, fd);
}

static void
on_successor_timeout(struct umdev_loop *loop, void *opaque)
{
    struct worker *w = opaque;
    int sock = w->successor;
    char why[100];

    (void)loop;
    w->successor_timer = 0;
    successor_forget(w);
    snprintf(why, sizeof(why), "the new worker was not ready within %d ms",
             WORKER_HANDOVER_TIMEOUT_MS);
    handover_refused(w, sock, why);
}

/*
 * A restart begins: the new worker at the other end of @sock starts and
 * builds its device while this one serves on, and says when it is ready
 * for the package. Only then is the device stopped (hand_over()), so the
 * guest's blackout holds neither an exec nor a device's construction.
 */
static void
await_successor(struct worker *w, int sock)
{
    if (w->successor >= 0) {
        handover_refused(w, sock, "another restart is under way");
        return;
    }
    w->successor = sock;
    if (umdev_loop_add(w->loop, sock, UMDEV_LOOP_IN, on_successor, w) < 0) {
        w->successor = -1;
        handover_refused(w, sock, "cannot watch the package socket");
        return;
    }
    w->successor_timer = umdev_loop_timer_add(
        w->loop, WORKER_HANDOVER_TIMEOUT_MS, on_successor_timeout, w);
    if (w->successor_timer < 0) {
        successor_forget(w);
        handover_refused(w, sock, "cannot bound the wait for the new worker");
    }
}

static void
on_channel(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct worker *w = opaque;
    struct json_object *req, *v;
    char buf[4096];
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

    (void)loop;
    (void)events;
    n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == ECONNRESET) {
        /* umdevd closed the channel with messages of ours unread. Linux
         * reports that once, ahead of what umdevd sent before it closed,
         * which is still queued ("recorded", a stop): read on. */
        mh.msg_controllen = sizeof(u.buf);
        n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    }
    for (cm = n >= 0 ? CMSG_FIRSTHDR(&mh) : NULL; cm != NULL;
         cm = CMSG_NXTHDR(&mh, cm)) {
        int *fds = (int *)CMSG_DATA(cm);
        size_t i, nfds;

        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (i = 0; i < nfds; i++) {
            int f;

            memcpy(&f, fds + i, sizeof(f));
            if (passed < 0)
                passed = f;
            else
                close(f);
        }
    }
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        if (passed >= 0)
            close(passed);
        umdev_loop_del(loop, fd);
        close(fd);
        channel_fd = -1;
        if (w->recorded) {
            /* Its VMM still needs it; the next umdevd adopts it. A stop
             * already under way goes on. */
            if (!w->stopping)
                umdev_log(&w->log, LOG_NOTICE,
                          "umdevd is gone; serving on until a umdevd adopts "
                          "this worker");
            return;
        }
        /* No later umdevd could find it: stop. */
        begin_stop(w, w->grace_ms);
        return;
    }
    if (n < 0) {
        if (passed >= 0)
            close(passed);
        return;
    }
    buf[n] = '\0';
    req = json_tokener_parse(buf);
    if (req == NULL || !json_object_object_get_ex(req, "req", &v)) {
        json_object_put(req);
        if (passed >= 0)
            close(passed);
        return;
    }
    if (strcmp(json_object_get_string(v), "manage") == 0 && passed >= 0) {
        int rc = umdev_server_manage(w->srv, passed);

        /* Refused, the manager finds its socket closed; the reason is
         * here. */
        umdev_log(&w->log, rc < 0 ? LOG_WARNING : LOG_INFO,
                  "migration manager %s%s", rc < 0 ? "refused: " : "attached",
                  rc < 0 ? strerror(-rc) : "");
        passed = -1;
    } else if (strcmp(json_object_get_string(v), "handover") == 0 &&
               passed >= 0 && !w->stopping && w->srv != NULL) {
        await_successor(w, passed);
        passed = -1;
    }
    if (passed >= 0)
        close(passed);
    if (strcmp(json_object_get_string(v), "recorded") == 0) {
        w->recorded = true;
    } else if (strcmp(json_object_get_string(v), "info") == 0) {
        struct json_object *r = json_object_new_object();

        json_object_object_add(r, "reply", json_object_new_string("info"));
        json_object_object_add(r, "device", device_json(w));
        send_json(r);
        json_object_put(r);
    } else if (strcmp(json_object_get_string(v), "screen") == 0) {
        send_screen(w);
    } else if (strcmp(json_object_get_string(v), "stop") == 0) {
        int grace = w->grace_ms;

        if (json_object_object_get_ex(req, "grace_ms", &v))
            grace = json_object_get_int(v);
        begin_stop(w, grace < 0 ? 0 : grace);
    }
    json_object_put(req);
}

/*
 * Read what the channel holds before deciding whether a umdevd
 * supervises this worker. A umdevd that died leaves its messages and the
 * end of the channel queued; a worker that was busy (building its
 * device) may meet the next umdevd's adoption in the same wake-up, and
 * must see the old channel's end first or it turns the newcomer away.
 */
static void
catch_up_channel(struct worker *w)
{
    int bound = 64;

    while (channel_fd >= 0 && bound-- > 0) {
        struct pollfd pfd = { .fd = channel_fd, .events = POLLIN };

        if (poll(&pfd, 1, 0) != 1)
            return;
        on_channel(w->loop, channel_fd, UMDEV_LOOP_IN, w);
    }
}

/* Compare two tokens in a time that does not depend on where they
 * differ. */
static bool
token_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i;
    unsigned char diff = la != lb;

    for (i = 0; i < la && i < lb; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0 && la > 0;
}

/*
 * The candidate's first message: {"req": "adopt", "token": T}. From a
 * process of umdevd's user holding the record's token, it becomes the
 * channel; anything else is refused, logged, and the worker carries on
 * as it was.
 */
static void
on_candidate(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct worker *w = opaque;
    struct json_object *req = NULL, *r;
    struct ucred cred = { .pid = 0 };
    socklen_t clen = sizeof(cred);
    const char *why = NULL, *tok;
    char buf[512];
    ssize_t n;

    (void)events;
    n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0)
        why = "its credentials cannot be read";
    else if (cred.uid != w->supervisor_uid)
        why = "it does not run as umdevd's user";
    else if (n <= 0)
        why = "it sent nothing";
    if (why == NULL) {
        buf[n] = '\0';
        req = json_tokener_parse(buf);
        tok = req != NULL && json_object_is_type(req, json_type_object)
                  ? json_object_get_string(json_object_object_get(req, "token"))
                  : NULL;
        if (tok == NULL ||
            !json_object_is_type(json_object_object_get(req, "req"),
                                 json_type_string) ||
            strcmp(json_object_get_string(json_object_object_get(req, "req")),
                   "adopt") != 0)
            why = "it did not ask for adoption";
        else if (!token_equal(tok, w->inst->token))
            why = "its token is not the record's";
    }
    json_object_put(req);
    umdev_loop_del(loop, fd);
    w->candidate = -1;
    catch_up_channel(w);
    if (why != NULL || channel_fd >= 0) {
        umdev_log(&w->log, LOG_WARNING,
                  "adoption by pid %d (uid %u) refused: %s", (int)cred.pid,
                  (unsigned)cred.uid,
                  why != NULL ? why : "a umdevd supervises it already");
        close(fd);
        return;
    }
    channel_fd = fd;
    umdev_loop_add(loop, fd, UMDEV_LOOP_IN, on_channel, w);
    umdev_log(&w->log, LOG_NOTICE, "adopted by umdevd (pid %d)", (int)cred.pid);
    r = json_object_new_object();
    json_object_object_add(r, "event", json_object_new_string("adopted"));
    json_object_object_add(r, "pid", json_object_new_int64(getpid()));
    json_object_object_add(
        r, "state",
        json_object_new_string(w->stopping ? "stopping" : "running"));
    send_json(r);
    json_object_put(r);
}

/* A umdevd connects to adopt this worker. While one supervises it, or
 * another is still proving itself, a newcomer is turned away at once. */
static void
on_adopt(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct worker *w = opaque;
    int c;

    (void)events;
    c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0)
        return;
    catch_up_channel(w);
    if (channel_fd >= 0 || w->candidate >= 0) {
        close(c);
        return;
    }
    w->candidate = c;
    if (umdev_loop_add(loop, c, UMDEV_LOOP_IN, on_candidate, w) < 0) {
        close(c);
        w->candidate = -1;
    }
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
 * filter. The one named by UMDEV_TEST_HOSTILE tries what a device taken
 * over by its guest would try against the host (tests/daemon/
 * test_contain.py): removing the file UMDEV_TEST_UNLINK names, then
 * defining an instance over the control socket.
 */
enum test_hook { HOOK_NONE, HOOK_SYSCALL, HOOK_MEMORY, HOOK_HOSTILE };

/* HOOK_HOSTILE's socket, made before the filter so that only connect()
 * meets it. */
static int hostile_fd = -1;

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
    if (names("UMDEV_TEST_HOSTILE", inst))
        return HOOK_HOSTILE;
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
test_hook_prepare(enum test_hook hook)
{
    if (hook == HOOK_HOSTILE)
        hostile_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

static void
test_hook_hostile(struct worker *w)
{
    static const char req[] =
        "{\"version\": 1, \"id\": 1, \"cmd\": \"define\", \"args\": "
        "{\"parent\": \"serial\", \"type\": \"serial-2port\", "
        "\"start\": \"auto\", \"mode\": \"0666\"}}\n";
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    const char *victim = getenv("UMDEV_TEST_UNLINK");
    struct pollfd pfd = { .fd = hostile_fd, .events = POLLIN };
    char reply[1024];
    ssize_t n;

    if (victim != NULL) {
        int rc = unlink(victim);

        umdev_log(&w->log, LOG_ERR, "test hook: unlink(%s) = %d (%s)", victim,
                  rc, rc < 0 ? strerror(errno) : "removed");
    }
    /* umdevd bound it, so it fits. */
    memcpy(sa.sun_path, w->d->opts.control,
           strnlen(w->d->opts.control, sizeof(sa.sun_path) - 1));
    umdev_log(&w->log, LOG_ERR, "test hook: connecting to the control socket");
    if (connect(hostile_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        umdev_log(&w->log, LOG_ERR, "test hook: connect: %s", strerror(errno));
        return;
    }
    n = send(hostile_fd, req, sizeof(req) - 1, MSG_NOSIGNAL);
    if (n == (ssize_t)sizeof(req) - 1 && poll(&pfd, 1, 5000) == 1)
        n = recv(hostile_fd, reply, sizeof(reply) - 1, MSG_DONTWAIT);
    else
        n = -1;
    if (n < 0)
        n = 0;
    reply[n] = '\0';
    reply[strcspn(reply, "\n")] = '\0';
    umdev_log(&w->log, LOG_ERR, "test hook: control replied: %s", reply);
}

static void
test_hook_fire(struct worker *w, enum test_hook hook)
{
    if (hook == HOOK_HOSTILE) {
        test_hook_hostile(w);
        return;
    }
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

/*
 * Common to a forked and a restarted worker, before privileges go: name
 * the process, drop what root holds that no worker needs, and build the
 * device of @w->inst through its parent driver on a new loop;
 * @restoring: for a handover (the parent creates no host endpoint, which
 * come with the package).
 */
static void
worker_build(struct worker *w, int log_fd, bool restoring)
{
    struct umdev_instance_args args = { .type = NULL };
    struct instance *inst = w->inst;
    struct daemon *d = w->d;
    char datadir[PATH_MAX];
    const struct parent_entry *pe;
    int rc;

    /* The name is part of what a later umdevd checks before it adopts
     * this worker. No PR_SET_PDEATHSIG: a worker outlives its umdevd. */
    prctl(PR_SET_NAME, "umdev-worker");
    harden_early();
    w->log = d->log;
    w->log.fn = log_fd >= 0 ? syslog_line : log_line;
    w->log.prefix = inst->cfg.uuid;
    pe = parents_find(d->parents, inst->cfg.parent);
    if (pe == NULL)
        fail("no driver for parent '%s'", inst->cfg.parent);
    w->drv = pe->drv;
    if (umdev_loop_create(&w->loop) < 0)
        fail("cannot create an event loop");
    /* Host endpoints are created (and handed to the owner) before the
     * worker gives up root, since RUNDIR belongs to the supervisor. */
    args.type = inst->cfg.type;
    args.uuid = inst->cfg.uuid;
    args.rundir = d->opts.rundir;
    args.uid = inst->cfg.uid;
    args.gid = inst->cfg.gid;
    args.attrs = inst->cfg.attrs;
    args.loop = w->loop;
    args.log = &w->log;
    args.restoring = restoring;
    if (PARENT_OP3(pe->drv, instance_data) != NULL &&
        parents_datadir(d, pe->drv->name, datadir, sizeof(datadir)) == 0)
        args.datadir = datadir;
    rc = w->drv->ops->create(&args, &w->dev);
    if (rc < 0)
        fail("cannot create the device: %s", strerror(-rc));
}

/*
 * Common to both once the server exists and privileges are gone: listen
 * for adoption, install the sandbox, say ready (a restarted worker first
 * confirms to its predecessor on @confirm_fd, -1 for none) and serve
 * until told to stop. Never returns.
 */
static void __attribute__((noreturn))
worker_serve(struct worker *w, int confirm_fd)
{
    sigset_t mask;
    int sfd, rc;
#ifdef UMDEV_TEST_HOOKS
    enum test_hook hook = test_hook_armed(w->inst);
#endif

    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0)
        fail("cannot create a signalfd: %s", strerror(errno));
    /* Listening here, not in umdevd, makes the peer credentials a
     * connecting umdevd reads the worker's own (pid, serving uid). */
    if (listen(WORKER_ADOPT_FD, 4) < 0)
        fail("cannot listen for adoption: %s", strerror(errno));
#ifdef UMDEV_TEST_HOOKS
    /* The slow starter's new umdevd, which waits for this listen,
     * connects before the loop first looks: its adoption and the old
     * channel's end then arrive in one wake-up. */
    if (names("UMDEV_TEST_SLOW_START", w->inst))
        nanosleep(&(struct timespec){ .tv_nsec = 200 * 1000 * 1000 }, NULL);
#endif
    umdev_loop_add(w->loop, WORKER_CHANNEL_FD, UMDEV_LOOP_IN, on_channel, w);
    umdev_loop_add(w->loop, WORKER_ADOPT_FD, UMDEV_LOOP_IN, on_adopt, w);
    umdev_loop_add(w->loop, sfd, UMDEV_LOOP_IN, on_signal, w);
    /* After the privileges went (the watcher thread is born without
     * them) and before the filter, which allows neither sigaction nor
     * epoll_create. */
    rc = umdev_loop_sleep_in_read(w->loop, SIGRTMIN);
    if (rc < 0)
        fail("cannot set up sleeping reads: %s", strerror(-rc));
#ifdef UMDEV_TEST_HOOKS
    test_hook_prepare(hook);
#endif
    /* Last: from here on the worker only serves (daemon/sandbox.c). */
    rc = sandbox_apply(w->d->opts.sandbox_log);
    if (rc < 0)
        fail("cannot install the seccomp filter: %s", strerror(-rc));
    if (confirm_fd >= 0) {
        char ok = 'K';

        /* From this byte on the predecessor lets go (commit): the
         * device is this worker's. */
        if (write(confirm_fd, &ok, 1) != 1)
            fail("cannot confirm the handover: %s", strerror(errno));
        close(confirm_fd);
    }
    send_event("ready", NULL);
    while (!w->exit_now) {
        if (umdev_loop_run_once(w->loop, -1) < 0)
            break;
#ifdef UMDEV_TEST_HOOKS
        if (hook != HOOK_NONE && umdev_dev_attached(w->dev.dev)) {
            test_hook_fire(w, hook);
            hook = HOOK_NONE;
        }
#endif
        if (w->stopping && !umdev_dev_attached(w->dev.dev))
            w->exit_now = true;
    }
    /* Handed over: the package's share is closed already (commit); the
     * device is stopped and has no client, so destroying it touches
     * nothing the new worker serves. */
    umdev_server_destroy(w->srv);
    w->drv->ops->destroy(&w->dev);
    umdev_loop_destroy(w->loop);
    _exit(0);
}

void
worker_run(struct daemon *d, struct instance *inst, int listen_fd,
           int status_fd, int adopt_fd, int grace_ms)
{
    struct worker w = {
        .d = d,
        .inst = inst,
        .grace_ms = grace_ms,
        .candidate = -1,
        .supervisor_uid = geteuid(),
        .successor = -1,
    };
    int rc, log_fd;

    log_fd = d->opts.syslog ? open_log_socket() : -1;
    isolate_fds(listen_fd, status_fd, adopt_fd, log_fd);
    worker_build(&w, log_fd, false);
    drop_privileges(d, &inst->cfg);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        fail("cannot set no_new_privs: %s", strerror(errno));
    rc = umdev_server_create_fd(w.dev.dev, w.loop, WORKER_LISTEN_FD, &w.srv);
    if (rc < 0)
        fail("cannot serve: %s", strerror(-rc));
#ifdef UMDEV_TEST_HOOKS
    /* Test-only (tests/daemon/test_upgrade.py): the worker of the
     * instance UMDEV_TEST_SLOW_START names takes 3 s to build its
     * device, so that its umdevd can be upgraded or killed meanwhile. */
    if (names("UMDEV_TEST_SLOW_START", inst))
        nanosleep(&(struct timespec){ .tv_sec = 3 }, NULL);
#endif
    worker_serve(&w, -1);
}

#ifdef UMDEV_TEST_HOOKS
/* @pkg with the last byte before its END record flipped (the tail of the
 * device's state): the same descriptors, a blob that no longer fits. */
static struct umdev_handover *
test_corrupt_package(struct umdev_handover *pkg)
{
    struct umdev_handover *bad = NULL;
    const int *fds;
    size_t len, nfds;
    const unsigned char *blob = umdev_handover_blob(pkg, &len);
    unsigned char *copy = malloc(len);
    int *dup_fds;
    size_t i;

    fds = umdev_handover_fds(pkg, &nfds);
    dup_fds = calloc(nfds ? nfds : 1, sizeof(*dup_fds));
    if (copy == NULL || dup_fds == NULL || len < 17)
        fail("test hook: cannot corrupt the package");
    memcpy(copy, blob, len);
    copy[len - 17] ^= 0x5a;
    for (i = 0; i < nfds; i++)
        dup_fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
    if (umdev_handover_wrap(copy, len, dup_fds, nfds, &bad) < 0)
        fail("test hook: cannot rewrap the package");
    free(copy);
    free(dup_fds);
    umdev_handover_free(pkg);
    return bad;
}
#endif

void
worker_restore(struct daemon *d, struct instance *inst, int grace_ms)
{
    struct worker w = {
        .d = d,
        .inst = inst,
        .grace_ms = grace_ms,
        .candidate = -1,
        .supervisor_uid = geteuid(),
        .successor = -1,
        /* Its record is rewritten for it once the handover is done. */
        .recorded = false,
    };
    struct umdev_handover *pkg = NULL;
    int rc, log_fd;

    /* umdevd exec'd it with exactly these open (supervisor.c): the
     * package socket, the channel, the adoption socket. */
    if (close_range(WORKER_ADOPT_FD + 1, ~0u, 0) < 0)
        fail("cannot close inherited descriptors: %s", strerror(errno));
    log_fd = d->opts.syslog ? open_log_socket() : -1;
    if (log_fd >= 0 && dup3(log_fd, WORKER_LOG_FD, O_CLOEXEC) < 0)
        fail("cannot keep the log socket: %s", strerror(errno));
    if (log_fd >= 0 && log_fd != WORKER_LOG_FD)
        close(log_fd);
    worker_build(&w, log_fd >= 0 ? WORKER_LOG_FD : -1, true);
#ifdef UMDEV_TEST_HOOKS
    /* The one UMDEV_TEST_READY_FAIL names dies before it is ready: its
     * predecessor must never have stopped its device. */
    if (names("UMDEV_TEST_READY_FAIL", inst))
        fail("test hook: dying before it is ready");
#endif
    /* The predecessor stops its device only now (await_successor()). */
    if (write(WORKER_PACKAGE_FD, "R", 1) != 1)
        fail("cannot tell the old worker it is ready: %s", strerror(errno));
    rc = umdev_handover_recv(WORKER_PACKAGE_FD, WORKER_HANDOVER_TIMEOUT_MS,
                             &pkg);
    if (rc < 0)
        fail("cannot receive the package: %s", strerror(-rc));
#ifdef UMDEV_TEST_HOOKS
    /* Test-only (tests/daemon/test_restart.py): the restarted worker of
     * the instance UMDEV_TEST_RESTORE_FAIL names dies holding the
     * package, unconfirmed: its predecessor must resume. */
    if (names("UMDEV_TEST_RESTORE_FAIL", inst))
        fail("test hook: dying before the restore");
    /* The one UMDEV_TEST_RESTORE_SLOW names takes 1.5 s to restore, so
     * that umdevd can be signalled or asked again meanwhile; the one
     * UMDEV_TEST_RESTORE_CORRUPT names gets a package with one byte of
     * the device's state changed, which the loader must refuse. */
    if (names("UMDEV_TEST_RESTORE_SLOW", inst))
        nanosleep(&(struct timespec){ .tv_sec = 1, .tv_nsec = 500000000 },
                  NULL);
    if (names("UMDEV_TEST_RESTORE_CORRUPT", inst))
        pkg = test_corrupt_package(pkg);
#endif
    /* Before the sandbox: the restore maps guest memory and takes the
     * descriptors in (mmap, fstat, fcntl, epoll_ctl, getsockopt). */
    rc = umdev_server_handover_restore(w.dev.dev, w.loop, pkg, &w.srv);
    umdev_handover_free(pkg);
    if (rc < 0)
        fail("the package was refused: %s", strerror(-rc));
    drop_privileges(d, &inst->cfg);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        fail("cannot set no_new_privs: %s", strerror(errno));
    worker_serve(&w, WORKER_PACKAGE_FD);
}
