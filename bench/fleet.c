/*
 * A private umdevd and control connections for the fleet benchmarks
 * (fleet.h): bench/scale and bench/soak.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "fleet.h"

/* The daemon fleet_die() takes down with it. */
static pid_t live_daemon = -1;

void
fleet_die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "%s: ", bench_prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (live_daemon > 0)
        kill(live_daemon, SIGKILL);
    exit(1);
}

/* The socket at @path: it appears only once umdevd listens on it
 * (umdev_listen_unix()). */
static int
listening(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

static void
spawn(struct fleet_daemon *d)
{
    int i;

    d->pid = fork();
    if (d->pid < 0)
        fleet_die("fork: %s", strerror(errno));
    if (d->pid == 0) {
        if (freopen(d->log, "a", stderr) == NULL)
            _exit(127);
        execl(d->umdevd, "umdevd", "--rundir", d->rundir, "--statedir",
              d->statedir, "--control", d->control, (char *)NULL);
        _exit(127);
    }
    live_daemon = d->pid;
    for (i = 0; i < 200; i++) {
        if (listening(d->control))
            return;
        if (waitpid(d->pid, NULL, WNOHANG) == d->pid) {
            live_daemon = -1;
            fleet_die("umdevd exited at start (log: %s)", d->log);
        }
        usleep(50000);
    }
    fleet_die("umdevd did not listen on %s within 10 s (log: %s)", d->control,
              d->log);
}

void
fleet_daemon_start(struct fleet_daemon *d, const char *umdevd, const char *tag)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->dir, sizeof(d->dir), "/tmp/umdev-%s.XXXXXX", tag);
    if (mkdtemp(d->dir) == NULL)
        fleet_die("mkdtemp: %s", strerror(errno));
    snprintf(d->rundir, sizeof(d->rundir), "%s/run", d->dir);
    snprintf(d->statedir, sizeof(d->statedir), "%s/state", d->dir);
    snprintf(d->log, sizeof(d->log), "%s/umdevd.log", d->dir);
    if (snprintf(d->control, sizeof(d->control), "%s/control", d->dir) >=
        (int)sizeof(d->control))
        fleet_die("temporary directory path too long");
    d->umdevd = umdevd;
    spawn(d);
}

void
fleet_daemon_restart(struct fleet_daemon *d)
{
    spawn(d);
}

void
fleet_daemon_stop(struct fleet_daemon *d)
{
    int status;

    kill(d->pid, SIGTERM);
    if (waitpid(d->pid, &status, 0) != d->pid)
        fleet_die("waitpid umdevd: %s", strerror(errno));
    live_daemon = -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fleet_die("umdevd did not exit 0 after SIGTERM (status 0x%x; log: %s)",
                  status, d->log);
}

void
fleet_daemon_remove(struct fleet_daemon *d)
{
    char cmd[200];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "%s: could not remove %s\n", bench_prog, d->dir);
}

void
fleet_conn_open(struct fleet_conn *c, const char *control)
{
    int rc = umdev_ctl_connect(control, FLEET_REQ_TIMEOUT_MS, &c->ctl);

    if (rc < 0)
        fleet_die("connect %s: %s", control, strerror(-rc));
    c->pending = 0;
}

void
fleet_conn_close(struct fleet_conn *c)
{
    umdev_ctl_close(c->ctl);
    c->ctl = NULL;
}

void
fleet_conn_send(struct fleet_conn *c, const char *cmd, const char *args_json)
{
    struct json_object *args = json_tokener_parse(args_json);
    struct umdev_ctl_error e;
    int rc;

    if (args == NULL)
        fleet_die("bad arguments for %s: %s", cmd, args_json);
    rc = umdev_ctl_send(c->ctl, cmd, args, FLEET_REQ_TIMEOUT_MS, &c->pending,
                        &e);
    json_object_put(args);
    if (rc < 0)
        fleet_die("send %s: %s", cmd, e.message);
}

static int
recv_result(struct fleet_conn *c, struct json_object **r,
            struct umdev_ctl_error *e)
{
    int rc = umdev_ctl_recv(c->ctl, c->pending, FLEET_REQ_TIMEOUT_MS, r, e);

    c->pending = 0;
    if (rc < 0 && rc != -EREMOTEIO)
        fleet_die("control connection: %s", e->message);
    return rc < 0 ? -e->err : 0;
}

struct json_object *
fleet_conn_recv(struct fleet_conn *c)
{
    struct json_object *r;
    struct umdev_ctl_error e;

    if (recv_result(c, &r, &e) < 0)
        fleet_die("request refused: %s: %s", e.code, e.message);
    return r;
}

struct json_object *
fleet_call(struct fleet_conn *c, const char *cmd, const char *args_json)
{
    fleet_conn_send(c, cmd, args_json);
    return fleet_conn_recv(c);
}

int
fleet_try_call(struct fleet_conn *c, const char *cmd, const char *args_json,
               struct json_object **result, struct umdev_ctl_error *err)
{
    fleet_conn_send(c, cmd, args_json);
    return recv_result(c, result, err);
}

void
fleet_wave(struct fleet_conn *conns, int k, const char *cmd, int n,
           fleet_args_fn *args, fleet_done_fn *done, void *opaque)
{
    struct pollfd pfd[FLEET_MAX_CONNS];
    int next = 0, finished = 0, i;
    char buf[512];

    if (k > FLEET_MAX_CONNS)
        fleet_die("at most %d connections", FLEET_MAX_CONNS);
    while (finished < n) {
        for (i = 0; i < k && next < n; i++) {
            if (conns[i].pending != 0)
                continue;
            args(opaque, next, buf, sizeof(buf));
            conns[i].index = next++;
            fleet_conn_send(&conns[i], cmd, buf);
        }
        for (i = 0; i < k; i++)
            pfd[i] = (struct pollfd){ .fd = umdev_ctl_fd(conns[i].ctl),
                                      .events = POLLIN };
        if (poll(pfd, (nfds_t)k, FLEET_REQ_TIMEOUT_MS) <= 0)
            fleet_die("%s stalled after %d of %d", cmd, finished, n);
        for (i = 0; i < k; i++) {
            struct json_object *r;

            if (!(pfd[i].revents & POLLIN) || conns[i].pending == 0)
                continue;
            r = fleet_conn_recv(&conns[i]);
            done(opaque, conns[i].index, r);
            json_object_put(r);
            finished++;
        }
    }
}

long
fleet_private_kib(pid_t pid)
{
    char path[64], line[256];
    long total = 0, v;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
    f = fopen(path, "re");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "Private_Clean: %ld kB", &v) == 1 ||
            sscanf(line, "Private_Dirty: %ld kB", &v) == 1)
            total += v;
    }
    fclose(f);
    return total;
}

int
fleet_count_fds(pid_t pid)
{
    char path[64];
    struct dirent *e;
    DIR *d;
    int n = 0;

    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    d = opendir(path);
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}
