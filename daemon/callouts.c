/*
 * mdevctl's callout scripts (callouts.h has the contract). A run walks
 * the scripts of the callouts directory one at a time; each script is a
 * process in a group of its own, fed the device JSON on a pipe, its
 * stdout and stderr read from the loop into bounded buffers, its run
 * bounded by a timer, and its end learnt from supervisor_reap(), the one
 * reaper of the daemon. What happens next is decided from the loop, on
 * a timer, never inside the reaper or the caller.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "callouts.h"

extern char **environ;

/* The fd a script's exec failure is reported on, in the child only. */
#define EXEC_REPORT_FD 3

/* The script running for a run now. */
struct callout_proc {
    pid_t pid;                          /* -1 once reaped (or none) */
    int in_fd, out_fd, err_fd, exec_fd; /* -1 when closed */
    size_t in_off;
    char out[CALLOUT_LOG_BYTES + 1];
    char err[CALLOUT_LOG_BYTES + 1];
    size_t out_len, err_len;
    size_t total;   /* bytes read on stdout and stderr together */
    int64_t timer;  /* the time limit, 0 if none */
    bool timed_out; /* killed by the time limit */
    bool flooded;   /* killed for writing too much */
    int status;     /* from waitpid(), once reaped */
};

/* The scripts of one directory that may run, in name order. */
struct script_list {
    char dir[PATH_MAX];
    char **names;
    size_t n;
};

enum callout_event { EV_PRE, EV_POST, EV_NOTIFY };

struct callout_run {
    struct daemon *d;
    struct callout_run *next; /* in d->callout_runs */
    char action[16];
    char uuid[MDEV_UUID_STR_LEN + 1];
    char parent[MDEV_NAME_MAX + 1];
    char type[2 * MDEV_NAME_MAX + 2];
    char *json; /* what callout scripts read on stdin (notifiers: nothing) */
    size_t json_len;
    struct script_list callouts, notifiers;
    enum callout_event event;
    const struct script_list *list; /* the event's scripts */
    /* The walk: scripts [pos, end) of list are still to be run; cur is
     * the one running. */
    size_t pos, end, cur;
    long claimed; /* the script that took the pre event (exit 0), or -1 */
    bool success; /* post, and the notify after it: how the action went */
    /* The notify event follows a pre event that refused: its outcome,
     * for the caller once the notifiers are done. */
    bool vetoed;
    int veto_err;
    char veto_msg[PATH_MAX + 512];
    bool busy; /* an event is in progress */
    callout_done_fn *done;
    void *opaque;
    int64_t step; /* the timer that takes the next step, 0 if none */
    bool running; /* proc is a live script (or one not yet looked at) */
    struct callout_proc proc;
};

static const char *
event_name(const struct callout_run *run)
{
    static const char *const names[] = {
        [EV_PRE] = "pre", [EV_POST] = "post", [EV_NOTIFY] = "notify"
    };

    return names[run->event];
}

/* mdevctl's -s: none before the action (and in the notify after a
 * refusal), then how it went. */
static const char *
state_name(const struct callout_run *run)
{
    if (run->event == EV_PRE || run->vetoed)
        return "none";
    return run->success ? "success" : "failure";
}

/* ---- the directory ------------------------------------------------- */

static int
name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Why the entry @name of @dfd must not run, or NULL. A root daemon runs
 * these as root, so only files that no one but root (or the daemon's own
 * user) can have written: regular files, owned by one of them, writable
 * by no one else. Symbolic links are not followed: where they lead is
 * not held to the same rule. @level: how loud the reason is.
 */
static const char *
refuse_entry(int dfd, const char *name, char *why, size_t len, int *level)
{
    struct stat st;

    *level = LOG_WARNING;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        snprintf(why, len, "cannot stat it: %s", strerror(errno));
        return why;
    }
    if (S_ISLNK(st.st_mode)) {
        snprintf(why, len,
                 "a symbolic link (not followed: copy the script here)");
        return why;
    }
    if (!S_ISREG(st.st_mode)) {
        *level = LOG_INFO;
        snprintf(why, len, "not a regular file");
        return why;
    }
    if (st.st_uid != 0 && st.st_uid != geteuid()) {
        snprintf(why, len,
                 "owned by uid %u, neither root nor umdevd's user (uid %u)",
                 (unsigned int)st.st_uid, (unsigned int)geteuid());
        return why;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(why, len,
                 "writable by its group or others (mode %04o; chmod go-w "
                 "it)",
                 (unsigned int)(st.st_mode & 07777));
        return why;
    }
    if (faccessat(dfd, name, X_OK, AT_EACCESS) < 0) {
        *level = LOG_INFO;
        snprintf(why, len, "not executable by umdevd");
        return why;
    }
    return NULL;
}

/* The directory itself: whoever may add files to it chooses what runs. */
static bool
dir_trusted(struct daemon *d, const char *what, int dfd, const char *dir)
{
    struct stat st;

    if (fstat(dfd, &st) < 0) {
        umdev_log(&d->log, LOG_WARNING,
                  "%ss directory %s: cannot stat it (%s); no %s runs", what,
                  dir, strerror(errno), what);
        return false;
    }
    if (st.st_uid != 0 && st.st_uid != geteuid()) {
        umdev_log(&d->log, LOG_WARNING,
                  "%ss directory %s is owned by uid %u, neither root nor "
                  "umdevd's user (uid %u); no %s runs",
                  what, dir, (unsigned int)st.st_uid, (unsigned int)geteuid(),
                  what);
        return false;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        umdev_log(&d->log, LOG_WARNING,
                  "%ss directory %s is writable by its group or others "
                  "(mode %04o); no %s runs until it is not (chmod go-w)",
                  what, dir, (unsigned int)(st.st_mode & 07777), what);
        return false;
    }
    return true;
}

static void
free_names(char **names, size_t n)
{
    size_t i;

    for (i = 0; names != NULL && i < n; i++)
        free(names[i]);
    free(names);
}

/*
 * The scripts of directory @dir (of @what: "callout", "notifier") that
 * may run, in name order (as mdevctl sorts them), each refused one
 * logged with its reason. An absent directory has none. Return: 0 or
 * -ENOMEM.
 */
static int
scan(struct daemon *d, const char *what, const char *dir, char ***out,
     size_t *nout)
{
    char **names = NULL;
    size_t n = 0, kept = 0, i;
    struct dirent *e;
    DIR *dh;
    int dfd;

    *out = NULL;
    *nout = 0;
    if (dir[0] == '\0')
        return 0;
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        if (errno != ENOENT)
            umdev_log(&d->log, LOG_WARNING, "%ss directory %s: %s; no %s runs",
                      what, dir, strerror(errno), what);
        return 0;
    }
    if (!dir_trusted(d, what, dfd, dir)) {
        close(dfd);
        return 0;
    }
    dh = fdopendir(dfd);
    if (dh == NULL) {
        close(dfd);
        return 0;
    }
    names = calloc(CALLOUT_MAX_SCRIPTS, sizeof(*names));
    if (names == NULL) {
        closedir(dh);
        return -ENOMEM;
    }
    while ((e = readdir(dh)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n == CALLOUT_MAX_SCRIPTS) {
            umdev_log(&d->log, LOG_WARNING,
                      "%ss directory %s: more than %d entries; those "
                      "after the first %d read are not run",
                      what, dir, CALLOUT_MAX_SCRIPTS, CALLOUT_MAX_SCRIPTS);
            break;
        }
        names[n] = strdup(e->d_name);
        if (names[n] == NULL) {
            closedir(dh);
            free_names(names, n);
            return -ENOMEM;
        }
        n++;
    }
    qsort(names, n, sizeof(*names), name_cmp);
    for (i = 0; i < n; i++) {
        char why[160];
        int level;

        if (refuse_entry(dirfd(dh), names[i], why, sizeof(why), &level) ==
            NULL) {
            names[kept++] = names[i];
            continue;
        }
        umdev_log(&d->log, level, "%s %s/%s: not run: %s", what, dir, names[i],
                  why);
        free(names[i]);
    }
    closedir(dh);
    if (kept == 0) {
        free(names);
        return 0;
    }
    *out = names;
    *nout = kept;
    return 0;
}

/* ---- one script ---------------------------------------------------- */

static void
close_fd(struct daemon *d, int *fd)
{
    if (*fd < 0)
        return;
    umdev_loop_del(d->loop, *fd);
    close(*fd);
    *fd = -1;
}

static void
proc_close(struct callout_run *run)
{
    struct callout_proc *p = &run->proc;

    close_fd(run->d, &p->in_fd);
    close_fd(run->d, &p->out_fd);
    close_fd(run->d, &p->err_fd);
    close_fd(run->d, &p->exec_fd);
    umdev_loop_timer_cancel(run->d->loop, p->timer);
    p->timer = 0;
}

/* Kill the script and whatever it started in its group (it is not
 * reaped yet, so its pid is still its own); the script itself also
 * directly, in case it left the group. */
static void
proc_kill(struct callout_run *run)
{
    if (run->running && run->proc.pid > 0) {
        kill(-run->proc.pid, SIGKILL);
        kill(run->proc.pid, SIGKILL);
    }
}

static const char *
script_name(const struct callout_run *run)
{
    return run->list->names[run->cur];
}

/* Keep what fits of @n bytes read into @buf (@len of CALLOUT_LOG_BYTES
 * used), count all of them, and kill a script past its output limit. */
static void
took_output(struct callout_run *run, char *buf, size_t *len, const char *data,
            size_t n)
{
    struct callout_proc *p = &run->proc;
    size_t room = CALLOUT_LOG_BYTES - *len;

    memcpy(buf + *len, data, n < room ? n : room);
    *len += n < room ? n : room;
    p->total += n;
    if (p->total > CALLOUT_MAX_OUTPUT && !p->flooded) {
        p->flooded = true;
        proc_kill(run);
        close_fd(run->d, &p->out_fd);
        close_fd(run->d, &p->err_fd);
    }
}

/* Read what @fd (stdout or stderr) has now; close it at end of file. */
static void
read_stream(struct callout_run *run, int *fd)
{
    struct callout_proc *p = &run->proc;
    bool is_out = fd == &p->out_fd;
    char chunk[16384];

    while (*fd >= 0) {
        ssize_t n = read(*fd, chunk, sizeof(chunk));

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            close_fd(run->d, fd);
            return;
        }
        took_output(run, is_out ? p->out : p->err,
                    is_out ? &p->out_len : &p->err_len, chunk, (size_t)n);
    }
}

static void
on_output(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct callout_run *run = opaque;

    (void)loop;
    (void)events;
    read_stream(run,
                fd == run->proc.out_fd ? &run->proc.out_fd : &run->proc.err_fd);
}

/* Write what stdin takes of the device JSON; close it when all is out
 * or the script stopped reading (it may: mdevctl's scripts often do). */
static void
write_stdin(struct callout_run *run)
{
    struct callout_proc *p = &run->proc;
    size_t len = run->event == EV_NOTIFY ? 0 : run->json_len;

    while (p->in_fd >= 0 && p->in_off < len) {
        ssize_t n = write(p->in_fd, run->json + p->in_off, len - p->in_off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n < 0) {
            close_fd(run->d, &p->in_fd);
            return;
        }
        p->in_off += (size_t)n;
    }
    close_fd(run->d, &p->in_fd);
}

static void
on_stdin(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    (void)loop;
    (void)fd;
    (void)events;
    write_stdin(opaque);
}

static void
on_time_limit(struct umdev_loop *loop, void *opaque)
{
    struct callout_run *run = opaque;

    (void)loop;
    run->proc.timer = 0;
    run->proc.timed_out = true;
    proc_kill(run);
}

/* The environment umdevd keeps from its scripts. */
static const char *const daemon_only_env[] = {
    "NOTIFY_SOCKET", "WATCHDOG_PID", "WATCHDOG_USEC",
    "LISTEN_PID",    "LISTEN_FDS",   "LISTEN_FDNAMES",
};

/* In the child: become the script. Never returns. The daemon has one
 * thread, so the child may use what is not async-signal-safe. */
static void __attribute__((noreturn))
exec_script(const char *path, char *const argv[], int in, int out, int err,
            int report, pid_t parent)
{
    sigset_t none;
    int e;

    /* Its own group, so a time limit kills what it started too. */
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127); /* the daemon is gone already */
    /* The daemon blocks the signals its signalfd reads, and ignores
     * SIGPIPE; a script starts with neither. */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    /* What systemd handed the daemon alone: a script must not speak for
     * it (sd_notify) nor take its sockets for its own. */
    for (size_t i = 0; i < sizeof(daemon_only_env) / sizeof(daemon_only_env[0]);
         i++)
        unsetenv(daemon_only_env[i]);
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0 ||
        dup2(report, EXEC_REPORT_FD) < 0 ||
        fcntl(EXEC_REPORT_FD, F_SETFD, FD_CLOEXEC) < 0 ||
        close_range(EXEC_REPORT_FD + 1, ~0u, 0) < 0 || chdir("/") < 0)
        _exit(127);
    execve(path, argv, environ);
    e = errno;
    if (write(EXEC_REPORT_FD, &e, sizeof(e)) < 0)
        _exit(127);
    _exit(127);
}

/*
 * Start script @idx with the device JSON on its stdin. Return: 0, or
 * -errno after logging why it could not start (the search goes on, as
 * mdevctl's does past a script it cannot run).
 */
static int
spawn(struct callout_run *run, size_t idx)
{
    struct daemon *d = run->d;
    struct callout_proc *p = &run->proc;
    int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
    int rep[2] = { -1, -1 };
    char path[PATH_MAX];
    char *argv[14];
    pid_t pid, self;
    int rc = 0;

    memset(p, 0, sizeof(*p));
    p->pid = -1;
    p->in_fd = p->out_fd = p->err_fd = p->exec_fd = -1;
    run->cur = idx;
    if (snprintf(path, sizeof(path), "%s/%s", run->list->dir,
                 run->list->names[idx]) >= (int)sizeof(path)) {
        umdev_log(&d->log, LOG_WARNING, "%s: callout %s/%s: path too long",
                  run->uuid, run->list->dir, run->list->names[idx]);
        return -ENAMETOOLONG;
    }
    argv[0] = path;
    argv[1] = "-t";
    argv[2] = run->type;
    argv[3] = "-e";
    argv[4] = (char *)event_name(run);
    argv[5] = "-a";
    argv[6] = run->action;
    argv[7] = "-s";
    argv[8] = (char *)state_name(run);
    argv[9] = "-u";
    argv[10] = run->uuid;
    argv[11] = "-p";
    argv[12] = run->parent;
    argv[13] = NULL;
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 ||
        pipe2(err, O_CLOEXEC) < 0 || pipe2(rep, O_CLOEXEC) < 0) {
        rc = -errno;
        goto fail;
    }
    self = getpid();
    pid = fork();
    if (pid < 0) {
        rc = -errno;
        goto fail;
    }
    if (pid == 0)
        exec_script(path, argv, in[0], out[1], err[1], rep[1], self);
    /* Both sides set the group: whichever runs first, a kill finds it. */
    setpgid(pid, pid);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    close(rep[1]);
    p->pid = pid;
    p->in_fd = in[1];
    p->out_fd = out[0];
    p->err_fd = err[0];
    p->exec_fd = rep[0];
    run->running = true;
    fcntl(p->in_fd, F_SETFL, O_NONBLOCK);
    fcntl(p->out_fd, F_SETFL, O_NONBLOCK);
    fcntl(p->err_fd, F_SETFL, O_NONBLOCK);
    fcntl(p->exec_fd, F_SETFL, O_NONBLOCK);
    p->timer = umdev_loop_timer_add(d->loop,
                                    (uint64_t)d->opts.callout_timeout_s * 1000,
                                    on_time_limit, run);
    if (p->timer < 0 ||
        umdev_loop_add(d->loop, p->out_fd, UMDEV_LOOP_IN, on_output, run) < 0 ||
        umdev_loop_add(d->loop, p->err_fd, UMDEV_LOOP_IN, on_output, run) < 0) {
        /* Unbounded or unwatched, it may not run: it is reaped and
         * counted as killed. */
        if (p->timer < 0)
            p->timer = 0;
        p->timed_out = true;
        proc_kill(run);
        return 0;
    }
    write_stdin(run);
    if (p->in_fd >= 0 &&
        umdev_loop_add(d->loop, p->in_fd, UMDEV_LOOP_OUT, on_stdin, run) < 0)
        close_fd(d, &p->in_fd);
    umdev_log(&d->log, LOG_DEBUG, "%s: callout %s (%s %s): started, pid %d",
              run->uuid, path, event_name(run), run->action, (int)pid);
    return 0;
fail:
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            close(in[i]);
        if (out[i] >= 0)
            close(out[i]);
        if (err[i] >= 0)
            close(err[i]);
        if (rep[i] >= 0)
            close(rep[i]);
    }
    umdev_log(&d->log, LOG_WARNING, "%s: callout %s (%s %s): cannot start: %s",
              run->uuid, path, event_name(run), run->action, strerror(-rc));
    return rc;
}

/* Log what the script wrote, line by line, and how much was left out. */
static void
log_stream(struct callout_run *run, const char *what, int level, char *buf,
           size_t len, size_t total_hint)
{
    char *line = buf, *nl;

    buf[len] = '\0';
    while (*line != '\0') {
        nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        umdev_log(&run->d->log, level, "%s: callout %s (%s %s) %s: %s",
                  run->uuid, script_name(run), event_name(run), run->action,
                  what, line);
        if (nl == NULL)
            break;
        *nl = '\n';
        line = nl + 1;
    }
    if (total_hint)
        umdev_log(&run->d->log, level,
                  "%s: callout %s (%s %s): more output than the %d bytes "
                  "kept of each stream was not logged",
                  run->uuid, script_name(run), event_name(run), run->action,
                  CALLOUT_LOG_BYTES);
}

/* The first line of what the script wrote on stderr ("" if none), for
 * the refusal; at most @len - 1 bytes. */
static void
first_err_line(const struct callout_proc *p, char *out, size_t len)
{
    const char *s = p->err, *end = p->err + p->err_len;
    size_t n;

    while (s < end && (*s == '\n' || *s == '\r' || *s == ' '))
        s++;
    for (n = 0; s + n < end && s[n] != '\n' && s[n] != '\r'; n++)
        ;
    snprintf(out, len, "%.*s", (int)n, s);
}

static void take_step(struct callout_run *run);
static void event_over(struct callout_run *run, int err, const char *msg);
static void abort_event(struct callout_run *run, int err, const char *msg);

/*
 * Script cur is over (reaped): what it said decides whether the search
 * goes on, and how the event ends.
 */
static void
script_over(struct callout_run *run)
{
    struct daemon *d = run->d;
    struct callout_proc *p = &run->proc;
    int status = p->status, exec_err = 0, level;
    char line[200], msg[PATH_MAX + 512], how[96];
    bool next = false, ok = false;

    /* Whatever it wrote before it ended is in the pipes now; a process
     * it left behind holding them is not waited for. */
    read_stream(run, &p->out_fd);
    read_stream(run, &p->err_fd);
    if (p->exec_fd >= 0 && read(p->exec_fd, &exec_err, sizeof(exec_err)) !=
                               (ssize_t)sizeof(exec_err))
        exec_err = 0;
    proc_close(run);
    run->running = false;
    log_stream(run, "stdout", LOG_INFO, p->out, p->out_len, 0);
    log_stream(run, "stderr", LOG_NOTICE, p->err, p->err_len,
               p->total > p->out_len + p->err_len);
    first_err_line(p, line, sizeof(line));
    if (exec_err != 0) {
        snprintf(how, sizeof(how), "cannot be run: %s", strerror(exec_err));
        next = true;
    } else if (p->flooded) {
        snprintf(how, sizeof(how), "wrote more than %d bytes; killed",
                 CALLOUT_MAX_OUTPUT);
    } else if (p->timed_out) {
        snprintf(how, sizeof(how), "did not finish within %u s; killed",
                 d->opts.callout_timeout_s);
    } else if (WIFSIGNALED(status)) {
        snprintf(how, sizeof(how), "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
        next = true;
    } else if (WEXITSTATUS(status) == 2) {
        snprintf(how, sizeof(how), "exit status 2: not its device type");
        next = true;
    } else {
        snprintf(how, sizeof(how), "exit status %d", WEXITSTATUS(status));
        ok = WEXITSTATUS(status) == 0;
    }
    if (ok)
        level = LOG_INFO;
    else if (next)
        level = exec_err != 0 || WIFSIGNALED(status) ? LOG_WARNING : LOG_INFO;
    else
        level = run->event == EV_PRE ? LOG_NOTICE : LOG_WARNING;
    umdev_log(&d->log, level, "%s: callout %s/%s (%s %s, state %s): %s%s",
              run->uuid, run->list->dir, script_name(run), event_name(run),
              run->action, state_name(run), how,
              next && run->event != EV_NOTIFY && run->pos < run->end
                  ? "; trying the next script"
                  : "");
    /* Every notifier runs, whatever the others said. */
    if (next || run->event == EV_NOTIFY) {
        take_step(run);
        return;
    }
    if (run->event == EV_PRE && ok)
        run->claimed = (long)run->cur;
    if (ok || run->event == EV_POST) {
        event_over(run, 0, NULL);
        return;
    }
    snprintf(msg, sizeof(msg), "callout %s/%s (pre %s) refused: %s%s%s",
             run->list->dir, script_name(run), run->action, how,
             line[0] ? ": " : " (nothing on stderr)", line);
    event_over(run, -ECANCELED, msg);
}

static void
on_step(struct umdev_loop *loop, void *opaque)
{
    struct callout_run *run = opaque;

    (void)loop;
    run->step = 0;
    if (run->running) {
        script_over(run);
        return;
    }
    while (run->pos < run->end) {
        if (run->d->stopping) {
            abort_event(run, -ECANCELED, "umdevd is stopping");
            return;
        }
        if (spawn(run, run->pos++) == 0)
            return;
    }
    /* Every script was asked: for pre, none claimed the device, and the
     * action goes on, as in mdevctl. */
    event_over(run, 0, NULL);
}

/* Take the next step from the loop; when no timer can be had, now
 * (the callers are the loop's own callbacks). */
static void
take_step(struct callout_run *run)
{
    if (run->step > 0)
        return;
    run->step = umdev_loop_timer_add(run->d->loop, 0, on_step, run);
    if (run->step < 0) {
        run->step = 0;
        on_step(run->d->loop, run);
    }
}

/* An event's first step, which must come from the loop: its callback
 * may not be called from within the call that starts it. */
static int
first_step(struct callout_run *run)
{
    run->step = umdev_loop_timer_add(run->d->loop, 0, on_step, run);
    if (run->step < 0) {
        run->step = 0;
        run->busy = false;
        return -ENOMEM;
    }
    return 0;
}

static void
run_unlink(struct callout_run *run)
{
    struct callout_run **pp;

    for (pp = &run->d->callout_runs; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == run) {
            *pp = run->next;
            break;
        }
    }
}

void
callout_run_free(struct callout_run *run)
{
    if (run == NULL)
        return;
    run_unlink(run);
    proc_kill(run);
    proc_close(run);
    umdev_loop_timer_cancel(run->d->loop, run->step);
    free_names(run->callouts.names, run->callouts.n);
    free_names(run->notifiers.names, run->notifiers.n);
    free(run->json);
    free(run);
}

/* Walk @list for @event from the loop. */
static void
walk(struct callout_run *run, enum callout_event event,
     const struct script_list *list)
{
    run->event = event;
    run->list = list;
    run->pos = 0;
    run->end = list->n;
    take_step(run);
}

/*
 * The notifiers are done too: the caller hears how its pre event ended
 * (a refusal; the run is the caller's again), or that the post event is
 * over (the run is freed first).
 */
static void
finish(struct callout_run *run)
{
    callout_done_fn *done = run->done;
    void *opaque = run->opaque;

    run->busy = false;
    if (run->vetoed) {
        done(opaque, run->veto_err, run->veto_msg);
        return;
    }
    callout_run_free(run);
    done(opaque, 0, NULL);
}

/*
 * The event's walk is over (@err: a pre event refused, @msg why). As
 * mdevctl does it: a pre event that lets the action go on is over at
 * once; a refusal, and every post event, are followed by the notify
 * event, which runs every notifier.
 */
static void
event_over(struct callout_run *run, int err, const char *msg)
{
    switch (run->event) {
    case EV_PRE:
        if (err == 0) {
            run->busy = false;
            run->done(run->opaque, 0, NULL);
            return;
        }
        run->vetoed = true;
        run->veto_err = err;
        snprintf(run->veto_msg, sizeof(run->veto_msg), "%s", msg);
        walk(run, EV_NOTIFY, &run->notifiers);
        return;
    case EV_POST:
        walk(run, EV_NOTIFY, &run->notifiers);
        return;
    case EV_NOTIFY:
        finish(run);
        return;
    }
}

/* umdevd is stopping: the event ends now, and no notifier runs. */
static void
abort_event(struct callout_run *run, int err, const char *msg)
{
    if (run->event == EV_PRE) {
        run->busy = false;
        run->done(run->opaque, err, msg);
        return;
    }
    finish(run);
}

/* ---- the interface ------------------------------------------------- */

/* mdevctl's device JSON (its MDev::to_json(false)): type, start policy
 * and the attributes as a list of one-key objects with string values. */
static char *
device_json(const struct callout_device *dev, size_t *len)
{
    struct json_object *o = json_object_new_object();
    struct json_object *attrs = json_object_new_array();
    char *s;

    json_object_object_add(o, "mdev_type", json_object_new_string(dev->type));
    json_object_object_add(
        o, "start",
        json_object_new_string(dev->auto_start ? "auto" : "manual"));
    if (dev->attrs != NULL) {
        json_object_object_foreach(dev->attrs, key, val)
        {
            struct json_object *one = json_object_new_object();

            json_object_object_add(
                one, key, json_object_new_string(json_object_get_string(val)));
            json_object_array_add(attrs, one);
        }
    }
    json_object_object_add(o, "attrs", attrs);
    s = strdup(json_object_to_json_string_ext(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    if (s != NULL)
        *len = strlen(s);
    return s;
}

int
callout_run_create(struct daemon *d, const char *action,
                   const struct callout_device *dev, struct callout_run **out,
                   char *err, size_t errlen)
{
    struct script_list callouts = { .n = 0 }, notifiers = { .n = 0 };
    struct callout_run *run;
    int rc;

    *out = NULL;
    rc = scan(d, "callout", d->opts.callout_dir, &callouts.names, &callouts.n);
    if (rc == 0)
        rc = scan(d, "notifier", d->opts.notifier_dir, &notifiers.names,
                  &notifiers.n);
    if (rc < 0 || callouts.n + notifiers.n == 0) {
        free_names(callouts.names, callouts.n);
        if (rc < 0)
            snprintf(err, errlen, "out of memory reading the callouts");
        return rc;
    }
    run = calloc(1, sizeof(*run));
    if (run == NULL || (run->json = device_json(dev, &run->json_len)) == NULL) {
        free(run);
        free_names(callouts.names, callouts.n);
        free_names(notifiers.names, notifiers.n);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    run->d = d;
    run->callouts = callouts;
    run->notifiers = notifiers;
    snprintf(run->callouts.dir, sizeof(run->callouts.dir), "%s",
             d->opts.callout_dir);
    snprintf(run->notifiers.dir, sizeof(run->notifiers.dir), "%s",
             d->opts.notifier_dir);
    run->claimed = -1;
    run->proc.pid = -1;
    run->proc.in_fd = run->proc.out_fd = run->proc.err_fd = -1;
    run->proc.exec_fd = -1;
    snprintf(run->action, sizeof(run->action), "%s", action);
    snprintf(run->uuid, sizeof(run->uuid), "%s", dev->uuid);
    snprintf(run->parent, sizeof(run->parent), "%s", dev->parent);
    snprintf(run->type, sizeof(run->type), "%s", dev->type);
    run->next = d->callout_runs;
    d->callout_runs = run;
    *out = run;
    return 0;
}

int
callout_run_pre(struct callout_run *run, callout_done_fn *done, void *opaque)
{
    run->event = EV_PRE;
    run->list = &run->callouts;
    run->busy = true;
    run->done = done;
    run->opaque = opaque;
    run->pos = 0;
    run->end = run->callouts.n;
    return first_step(run);
}

bool
callout_run_post(struct callout_run *run, bool success, callout_done_fn *done,
                 void *opaque)
{
    if (run->d->stopping) {
        umdev_log(&run->d->log, LOG_NOTICE,
                  "%s: post callouts of %s not run: umdevd is stopping",
                  run->uuid, run->action);
        callout_run_free(run);
        return false;
    }
    run->event = EV_POST;
    run->list = &run->callouts;
    run->success = success;
    run->busy = true;
    run->done = done;
    run->opaque = opaque;
    /* mdevctl's rule: the script that took the pre event takes the
     * post event alone; without one, the search starts over. */
    if (run->claimed >= 0) {
        run->pos = (size_t)run->claimed;
        run->end = run->pos + 1;
    } else {
        run->pos = 0;
        run->end = run->callouts.n;
    }
    if (first_step(run) < 0) {
        umdev_log(&run->d->log, LOG_ERR,
                  "%s: post callouts of %s not run: out of memory", run->uuid,
                  run->action);
        callout_run_free(run);
        return false;
    }
    return true;
}

bool
callouts_reaped(struct daemon *d, pid_t pid, int status)
{
    struct callout_run *run;

    for (run = d->callout_runs; run != NULL; run = run->next) {
        if (!run->running || run->proc.pid != pid)
            continue;
        run->proc.status = status;
        /* Reaped: the pid may be another process's from now on. */
        run->proc.pid = -1;
        umdev_loop_timer_cancel(d->loop, run->proc.timer);
        run->proc.timer = 0;
        take_step(run);
        return true;
    }
    return false;
}

void
callouts_stop_all(struct daemon *d)
{
    struct callout_run *run;

    /* A callback may free any run: look again from the start each time. */
    for (;;) {
        for (run = d->callout_runs; run != NULL && !run->busy; run = run->next)
            ;
        if (run == NULL)
            return;
        umdev_log(&d->log, LOG_NOTICE,
                  "%s: %s callouts of %s ended: umdevd is stopping", run->uuid,
                  event_name(run), run->action);
        proc_kill(run);
        proc_close(run);
        run->running = false;
        umdev_loop_timer_cancel(d->loop, run->step);
        run->step = 0;
        abort_event(run, -ECANCELED, "umdevd is stopping");
    }
}
