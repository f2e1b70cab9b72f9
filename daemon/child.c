/*
 * Children whose output the loop collects (child.h): two non-blocking
 * pipes read from the loop, a loop timer, a pidfd for the kill. The
 * outcome is known when both pipes reach end of file (the child closed
 * them, normally by exiting), or earlier when a bound is crossed.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "child.h"

/* How much of stderr is kept: its last line is the reason. */
#define CHILD_ERR_TAIL 1024

struct child {
    struct daemon *d;
    struct child_spec spec;
    pid_t pid;
    int pidfd;
    int out_fd, err_fd; /* -1 once at end of file (or not collected) */
    int64_t timer;
    char *out;
    size_t out_len, out_cap;
    char err[CHILD_ERR_TAIL];
    size_t err_len;
};

static void
close_pipe(struct child *c, int *fd)
{
    if (*fd < 0)
        return;
    umdev_loop_del(c->d->loop, *fd);
    close(*fd);
    *fd = -1;
}

static void
child_free(struct child *c)
{
    close_pipe(c, &c->out_fd);
    close_pipe(c, &c->err_fd);
    umdev_loop_timer_cancel(c->d->loop, c->timer);
    if (c->pidfd >= 0)
        close(c->pidfd);
    free(c->out);
    free(c);
}

pid_t
child_pid(const struct child *c)
{
    return c->pid;
}

void
child_cancel(struct child *c)
{
    if (c == NULL)
        return;
    if (c->pidfd >= 0)
        pidfd_send_signal(c->pidfd, SIGKILL, NULL, 0);
    child_free(c);
}

/* The last line of what the child wrote on stderr. */
static const char *
err_tail(struct child *c)
{
    char *end = c->err + c->err_len, *start;

    *end = '\0';
    while (end > c->err && (end[-1] == '\n' || end[-1] == ' '))
        *--end = '\0';
    start = strrchr(c->err, '\n');
    return start != NULL ? start + 1 : c->err;
}

static void
finish(struct child *c, const char *failure)
{
    if (failure != NULL && c->pidfd >= 0)
        pidfd_send_signal(c->pidfd, SIGKILL, NULL, 0);
    if (c->out == NULL)
        c->out = calloc(1, 1);
    if (c->out != NULL)
        c->out[c->out_len] = '\0';
    c->spec.done(c->spec.opaque,
                 failure != NULL || c->out != NULL ? failure
                                                   : "ran out of memory",
                 c->out != NULL ? c->out : "", c->out_len, err_tail(c));
    child_free(c);
}

static void
on_out(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct child *c = opaque;
    ssize_t n;

    (void)loop;
    (void)events;
    if (c->out_cap - c->out_len < 4096) {
        size_t cap = c->out_cap ? c->out_cap * 2 : 16384;
        char *b;

        if (cap > c->spec.max_out + 1) {
            finish(c, "wrote more than it may");
            return;
        }
        b = realloc(c->out, cap);
        if (b == NULL) {
            finish(c, "ran out of memory");
            return;
        }
        c->out = b;
        c->out_cap = cap;
    }
    n = read(fd, c->out + c->out_len, c->out_cap - c->out_len - 1);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0) {
        c->out_len += (size_t)n;
        return;
    }
    close_pipe(c, &c->out_fd);
    if (c->err_fd < 0)
        finish(c, NULL);
}

static void
on_err(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct child *c = opaque;
    char buf[512];
    size_t room = sizeof(c->err) - 1;
    ssize_t n;

    (void)loop;
    (void)events;
    n = read(fd, buf, sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0) {
        /* Keep the tail: drop the oldest bytes that do not fit. */
        size_t take = (size_t)n < room ? (size_t)n : room;
        size_t drop = c->err_len + take > room ? c->err_len + take - room : 0;

        memmove(c->err, c->err + drop, c->err_len - drop);
        c->err_len -= drop;
        memcpy(c->err + c->err_len, buf + (size_t)n - take, take);
        c->err_len += take;
        return;
    }
    close_pipe(c, &c->err_fd);
    if (c->out_fd < 0)
        finish(c, NULL);
}

static void
on_timeout(struct umdev_loop *loop, void *opaque)
{
    struct child *c = opaque;

    (void)loop;
    c->timer = 0;
    finish(c, "did not finish in time");
}

static void __attribute__((noreturn))
run_child(const struct child_spec *spec, int out, int err)
{
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_NAME, spec->name);
    /* Nothing of the daemon's survives but the standard streams. */
    if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 ||
        (err >= 0 && dup2(err, 2) < 0) || close_range(3, ~0u, 0) < 0)
        _exit(127);
    spec->main(spec->arg);
    _exit(127);
}

int
child_start(struct daemon *d, const struct child_spec *spec, struct child **out,
            char *err, size_t errlen)
{
    int po[2] = { -1, -1 }, pe[2] = { -1, -1 };
    struct child *c;
    pid_t pid;

    *out = NULL;
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    c->d = d;
    c->spec = *spec;
    c->pidfd = c->out_fd = c->err_fd = -1;
    if (pipe2(po, O_CLOEXEC | O_NONBLOCK) < 0 ||
        (spec->capture_stderr && pipe2(pe, O_CLOEXEC | O_NONBLOCK) < 0)) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        goto fail;
    }
    pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "cannot fork %s: %s", spec->name,
                 strerror(errno));
        goto fail;
    }
    if (pid == 0)
        run_child(spec, po[1], pe[1]);
    close(po[1]);
    if (pe[1] >= 0)
        close(pe[1]);
    c->pid = pid;
    c->out_fd = po[0];
    c->err_fd = pe[0];
    /* Reaping happens only from the loop, so the pid is still ours. */
    c->pidfd = pidfd_open(pid, 0);
    c->timer = umdev_loop_timer_add(d->loop, spec->timeout_ms, on_timeout, c);
    if (c->pidfd < 0 || c->timer < 0 ||
        umdev_loop_add(d->loop, c->out_fd, UMDEV_LOOP_IN, on_out, c) < 0 ||
        (c->err_fd >= 0 &&
         umdev_loop_add(d->loop, c->err_fd, UMDEV_LOOP_IN, on_err, c) < 0)) {
        if (c->pidfd < 0)
            kill(pid, SIGKILL);
        child_cancel(c);
        snprintf(err, errlen, "cannot watch %s", spec->name);
        return -EIO;
    }
    *out = c;
    return 0;
fail:
    for (int i = 0; i < 2; i++) {
        if (po[i] >= 0)
            close(po[i]);
        if (pe[i] >= 0)
            close(pe[i]);
    }
    free(c);
    return -EIO;
}
