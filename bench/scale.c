/*
 * bench/scale: how umdevd behaves with many instances. Starts a private
 * daemon (temporary rundir/statedir/control socket), starts N transient
 * serial instances over the control protocol from several connections at
 * once, then measures:
 *   - time to start all N (wall, from the first request to the last "ok");
 *   - `umdevctl list` latency with N running (the real CLI, median of 9);
 *   - a raw control-protocol "list" round trip (median of 9);
 *   - private memory per idle instance: the workers' Private_Clean +
 *     Private_Dirty from /proc/PID/smaps_rollup, plus the daemon's own
 *     growth, divided by N;
 *   - time to stop all N.
 *
 *   scale [--instances N] [--connections K]
 *
 * Defaults: N=1000, K=16. Targets (issue 4): all start in under 10 s on a
 * 2-core machine, under 512 KiB private memory per idle instance.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#ifndef UMDEVD_PATH
#error "UMDEVD_PATH must name the umdevd binary"
#endif
#ifndef UMDEVCTL_PATH
#error "UMDEVCTL_PATH must name the umdevctl binary"
#endif

#define MAX_CONNS 64
#define REQ_TIMEOUT_MS 30000

struct ctl {
    int fd;
    char buf[4 << 20]; /* a list of 1000 instances is ~0.5 MiB */
    size_t len;
    int outstanding; /* requests sent, responses not yet read */
};

static char dir[] = "/tmp/umdev-scale.XXXXXX";
static char control_path[100]; /* fits sun_path */
static pid_t daemon_pid = -1;

static __attribute__((noreturn, format(printf, 1, 2))) void
die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "scale: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (daemon_pid > 0)
        kill(daemon_pid, SIGKILL);
    exit(1);
}

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double
median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return v[n / 2];
}

static void
ctl_connect(struct ctl *c)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    memset(c, 0, sizeof(*c));
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", control_path);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        die("connect %s: %s", control_path, strerror(errno));
}

static void
ctl_send(struct ctl *c, const char *cmd, const char *args_json, int id)
{
    char line[512];
    int n = snprintf(line, sizeof(line),
                     "{\"version\":1,\"id\":%d,\"cmd\":\"%s\",\"args\":%s}\n",
                     id, cmd, args_json);

    if (n < 0 || (size_t)n >= sizeof(line) ||
        send(c->fd, line, (size_t)n, MSG_NOSIGNAL) != n)
        die("send %s: %s", cmd, strerror(errno));
    c->outstanding++;
}

/* Read one response line (blocking, bounded). Returns the parsed object;
 * dies on error or an "ok": false response. */
static struct json_object *
ctl_recv(struct ctl *c)
{
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
        ssize_t n;

        if (nl != NULL) {
            struct json_object *o, *ok;
            size_t line = (size_t)(nl - c->buf) + 1;

            *nl = '\0';
            o = json_tokener_parse(c->buf);
            if (o == NULL || !json_object_object_get_ex(o, "ok", &ok))
                die("bad response: %s", c->buf);
            if (!json_object_get_boolean(ok))
                die("request failed: %s", c->buf);
            memmove(c->buf, c->buf + line, c->len - line);
            c->len -= line;
            c->outstanding--;
            return o;
        }
        if (c->len == sizeof(c->buf))
            die("response line too long");
        if (poll(&pfd, 1, REQ_TIMEOUT_MS) != 1)
            die("no response within %d ms", REQ_TIMEOUT_MS);
        n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
        if (n <= 0)
            die("control connection closed");
        c->len += (size_t)n;
    }
}

static void
start_daemon(void)
{
    char rundir[256], statedir[256], log[256];
    int i;

    if (mkdtemp(dir) == NULL)
        die("mkdtemp: %s", strerror(errno));
    snprintf(rundir, sizeof(rundir), "%s/run", dir);
    snprintf(statedir, sizeof(statedir), "%s/state", dir);
    if (snprintf(control_path, sizeof(control_path), "%s/control", dir) >=
        (int)sizeof(control_path))
        die("temporary directory path too long");
    snprintf(log, sizeof(log), "%s/umdevd.log", dir);
    daemon_pid = fork();
    if (daemon_pid < 0)
        die("fork: %s", strerror(errno));
    if (daemon_pid == 0) {
        if (freopen(log, "w", stderr) == NULL)
            _exit(127);
        execl(UMDEVD_PATH, "umdevd", "--rundir", rundir, "--statedir",
              statedir, "--control", control_path, (char *)NULL);
        _exit(127);
    }
    for (i = 0; i < 100; i++) {
        struct stat st;

        if (stat(control_path, &st) == 0)
            return;
        usleep(50000);
    }
    die("umdevd did not create %s (log: %s)", control_path, log);
}

/* Private memory of one process in KiB, from smaps_rollup. */
static long
private_kib(pid_t pid)
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

/* Run the real CLI's `list` and time it. */
static double
time_cli_list(void)
{
    double t0 = now_s();
    pid_t pid = fork();
    int status;

    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        if (freopen("/dev/null", "w", stdout) == NULL)
            _exit(127);
        execl(UMDEVCTL_PATH, "umdevctl", "--control", control_path, "list",
              (char *)NULL);
        _exit(127);
    }
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
        die("umdevctl list failed");
    return now_s() - t0;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "instances", required_argument, NULL, 'n' },
        { "connections", required_argument, NULL, 'k' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct ctl *conns = calloc(MAX_CONNS, sizeof(*conns));
    int n = 1000, k = 16, ch, i, started = 0, next = 0;
    char (*uuids)[40];
    pid_t *pids;
    double t0, t_start, t_stop, lat[9];
    long daemon_before, daemon_after, workers = 0;
    struct json_object *o, *res, *inst, *v;

    while ((ch = getopt_long(argc, argv, "n:k:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'n':
            n = atoi(optarg);
            break;
        case 'k':
            k = atoi(optarg);
            break;
        case 'h':
            printf("usage: scale [--instances N] [--connections K]\n");
            return 0;
        default:
            return 2;
        }
    }
    if (n < 1 || n > 1024 || k < 1 || k > MAX_CONNS) {
        fprintf(stderr, "scale: 1 <= N <= 1024 (the serial pool), "
                        "1 <= K <= %d\n", MAX_CONNS);
        return 2;
    }
    /* Children are forked after printing: no buffered output to copy. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    uuids = calloc((size_t)n, sizeof(*uuids));
    pids = calloc((size_t)n, sizeof(*pids));
    if (uuids == NULL || pids == NULL || conns == NULL)
        die("out of memory");
    start_daemon();
    daemon_before = private_kib(daemon_pid);
    printf("scale: %d serial instances, %d control connections, "
           "umdevd pid %d, %ld CPUs online\n",
           n, k, (int)daemon_pid, sysconf(_SC_NPROCESSORS_ONLN));

    /* Start: each connection keeps one start in flight (the daemon parks
     * a connection until its worker reports ready). */
    for (i = 0; i < k; i++)
        ctl_connect(&conns[i]);
    t0 = now_s();
    for (i = 0; i < k && next < n; i++, next++)
        ctl_send(&conns[i], "start",
                 "{\"parent\":\"serial\",\"type\":\"2port\","
                 "\"attrs\":{\"port0\":\"none\",\"port1\":\"none\"}}",
                 next);
    while (started < n) {
        struct pollfd pfd[MAX_CONNS];

        for (i = 0; i < k; i++)
            pfd[i] = (struct pollfd){ .fd = conns[i].fd, .events = POLLIN };
        if (poll(pfd, (nfds_t)k, REQ_TIMEOUT_MS) <= 0)
            die("starts stalled at %d of %d", started, n);
        for (i = 0; i < k; i++) {
            if (!(pfd[i].revents & POLLIN) || conns[i].outstanding == 0)
                continue;
            o = ctl_recv(&conns[i]);
            res = json_object_object_get(o, "result");
            inst = json_object_object_get(res, "instance");
            snprintf(uuids[started], sizeof(uuids[started]), "%s",
                     json_object_get_string(
                         json_object_object_get(inst, "uuid")));
            if (json_object_object_get_ex(inst, "pid", &v))
                pids[started] = (pid_t)json_object_get_int(v);
            json_object_put(o);
            started++;
            if (next < n) {
                ctl_send(&conns[i], "start",
                         "{\"parent\":\"serial\",\"type\":\"2port\","
                         "\"attrs\":{\"port0\":\"none\",\"port1\":\"none\"}}",
                         next);
                next++;
            }
        }
    }
    t_start = now_s() - t0;
    printf("start %d instances: %.2f s (%.0f/s)\n", n, t_start,
           n / t_start);

    /* Let the workers settle to idle before measuring memory. */
    sleep(1);
    for (i = 0; i < n; i++) {
        long kib = pids[i] > 0 ? private_kib(pids[i]) : -1;

        if (kib < 0)
            die("instance %s: no worker pid or smaps", uuids[i]);
        workers += kib;
    }
    daemon_after = private_kib(daemon_pid);
    printf("private memory: workers %ld KiB total, daemon %+ld KiB; "
           "per idle instance %.0f KiB\n",
           workers, daemon_after - daemon_before,
           (double)(workers + daemon_after - daemon_before) / n);

    for (i = 0; i < 9; i++)
        lat[i] = time_cli_list();
    printf("umdevctl list with %d running: median %.1f ms\n", n,
           median(lat, 9) * 1e3);
    for (i = 0; i < 9; i++) {
        double t = now_s();

        ctl_send(&conns[0], "list", "{}", 1);
        json_object_put(ctl_recv(&conns[0]));
        lat[i] = now_s() - t;
    }
    printf("control list round trip with %d running: median %.1f ms\n", n,
           median(lat, 9) * 1e3);

    /* Stop: again one request in flight per connection. */
    t0 = now_s();
    next = 0;
    started = n; /* now counts instances still running */
    for (i = 0; i < k && next < n; i++, next++) {
        char args[96];

        snprintf(args, sizeof(args), "{\"uuid\":\"%s\"}", uuids[next]);
        ctl_send(&conns[i], "stop", args, next);
    }
    while (started > 0) {
        struct pollfd pfd[MAX_CONNS];

        for (i = 0; i < k; i++)
            pfd[i] = (struct pollfd){ .fd = conns[i].fd, .events = POLLIN };
        if (poll(pfd, (nfds_t)k, REQ_TIMEOUT_MS) <= 0)
            die("stops stalled with %d running", started);
        for (i = 0; i < k; i++) {
            if (!(pfd[i].revents & POLLIN) || conns[i].outstanding == 0)
                continue;
            json_object_put(ctl_recv(&conns[i]));
            started--;
            if (next < n) {
                char args[96];

                snprintf(args, sizeof(args), "{\"uuid\":\"%s\"}",
                         uuids[next]);
                ctl_send(&conns[i], "stop", args, next);
                next++;
            }
        }
    }
    t_stop = now_s() - t0;
    printf("stop %d instances: %.2f s (%.0f/s)\n", n, t_stop, n / t_stop);

    for (i = 0; i < k; i++)
        close(conns[i].fd);
    kill(daemon_pid, SIGTERM);
    waitpid(daemon_pid, NULL, 0);
    {
        char cmd[300];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "scale: could not remove %s\n", dir);
    }
    free(uuids);
    free(pids);
    free(conns);
    return 0;
}
