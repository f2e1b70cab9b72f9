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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "bench.h"
#include "umdev/ctl.h"

#ifndef UMDEVD_PATH
#error "UMDEVD_PATH must name the umdevd binary"
#endif
#ifndef UMDEVCTL_PATH
#error "UMDEVCTL_PATH must name the umdevctl binary"
#endif

#define MAX_CONNS 64
#define REQ_TIMEOUT_MS 30000

/* One control connection with at most one request in flight. */
struct conn {
    struct umdev_ctl *ctl;
    int64_t pending; /* the request in flight; 0: none */
    int index;       /* which of a wave's requests it is */
};

/* What the waves of requests fill in and read. */
struct fleet {
    int n;
    char (*uuids)[40];
    pid_t *pids;
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
    return (double)bench_now_ns() / 1e9;
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
conn_open(struct conn *c)
{
    int rc = umdev_ctl_connect(control_path, REQ_TIMEOUT_MS, &c->ctl);

    if (rc < 0)
        die("connect %s: %s", control_path, strerror(-rc));
    c->pending = 0;
}

/* Send @cmd with @args_json; dies on error. */
static void
conn_send(struct conn *c, const char *cmd, const char *args_json)
{
    struct json_object *args = json_tokener_parse(args_json);
    struct umdev_ctl_error e;
    int rc;

    if (args == NULL)
        die("bad arguments for %s: %s", cmd, args_json);
    rc = umdev_ctl_send(c->ctl, cmd, args, REQ_TIMEOUT_MS, &c->pending, &e);
    json_object_put(args);
    if (rc < 0)
        die("send %s: %s", cmd, e.message);
}

/* The result of the request in flight (the caller puts it); dies on an
 * error or a refusal. */
static struct json_object *
conn_recv(struct conn *c)
{
    struct json_object *r;
    struct umdev_ctl_error e;
    int rc = umdev_ctl_recv(c->ctl, c->pending, REQ_TIMEOUT_MS, &r, &e);

    if (rc < 0)
        die("request failed: %s%s%s", e.code, e.code[0] ? ": " : "", e.message);
    c->pending = 0;
    return r;
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
        execl(UMDEVD_PATH, "umdevd", "--rundir", rundir, "--statedir", statedir,
              "--control", control_path, (char *)NULL);
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

/* A wave's request @index: write its arguments to @buf. */
typedef void wave_args_fn(const struct fleet *f, int index, char *buf,
                          size_t len);
/* A wave's request @index succeeded with @result (borrowed). */
typedef void wave_done_fn(struct fleet *f, int index,
                          struct json_object *result);

/*
 * @f->n requests of @cmd over @k connections, each keeping one in flight
 * (the daemon parks a connection until its worker reports ready, so this
 * is how starts and stops overlap). Dies on any failure or a stall.
 */
static void
wave(struct conn *conns, int k, const char *cmd, struct fleet *f,
     wave_args_fn *args, wave_done_fn *done)
{
    struct pollfd pfd[MAX_CONNS];
    int next = 0, finished = 0, i;
    char buf[128];

    while (finished < f->n) {
        for (i = 0; i < k && next < f->n; i++) {
            if (conns[i].pending != 0)
                continue;
            args(f, next, buf, sizeof(buf));
            conns[i].index = next++;
            conn_send(&conns[i], cmd, buf);
        }
        for (i = 0; i < k; i++)
            pfd[i] = (struct pollfd){ .fd = umdev_ctl_fd(conns[i].ctl),
                                      .events = POLLIN };
        if (poll(pfd, (nfds_t)k, REQ_TIMEOUT_MS) <= 0)
            die("%s stalled after %d of %d", cmd, finished, f->n);
        for (i = 0; i < k; i++) {
            struct json_object *r;

            if (!(pfd[i].revents & POLLIN) || conns[i].pending == 0)
                continue;
            r = conn_recv(&conns[i]);
            done(f, conns[i].index, r);
            json_object_put(r);
            finished++;
        }
    }
}

static void
start_args(const struct fleet *f, int index, char *buf, size_t len)
{
    (void)f;
    (void)index;
    snprintf(buf, len,
             "{\"parent\":\"serial\",\"type\":\"2port\","
             "\"attrs\":{\"port0\":\"none\",\"port1\":\"none\"}}");
}

/* Keep the instance's UUID (to stop it) and its worker's pid. */
static void
started(struct fleet *f, int index, struct json_object *result)
{
    struct json_object *inst = json_object_object_get(result, "instance");
    struct json_object *v;

    snprintf(f->uuids[index], sizeof(f->uuids[index]), "%s",
             json_object_get_string(json_object_object_get(inst, "uuid")));
    if (json_object_object_get_ex(inst, "pid", &v))
        f->pids[index] = (pid_t)json_object_get_int(v);
}

static void
stop_args(const struct fleet *f, int index, char *buf, size_t len)
{
    snprintf(buf, len, "{\"uuid\":\"%s\"}", f->uuids[index]);
}

static void
stopped(struct fleet *f, int index, struct json_object *result)
{
    (void)f;
    (void)index;
    (void)result;
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
    struct conn *conns = calloc(MAX_CONNS, sizeof(*conns));
    struct fleet fleet = { 0 };
    int n = 1000, k = 16, ch, i;
    long v;
    double t0, t_start, t_stop, lat[9];
    long daemon_before, daemon_after, workers = 0;

    while ((ch = getopt_long(argc, argv, "n:k:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'n':
        case 'k':
            if (!bench_parse_count(optarg, ch == 'n' ? 1024 : MAX_CONNS, &v)) {
                fprintf(stderr,
                        "scale: 1 <= N <= 1024 (the serial pool), "
                        "1 <= K <= %d\n",
                        MAX_CONNS);
                return 2;
            }
            if (ch == 'n')
                n = (int)v;
            else
                k = (int)v;
            break;
        case 'h':
            printf("usage: scale [--instances N] [--connections K]\n");
            return 0;
        default:
            return 2;
        }
    }
    /* Children are forked after printing: no buffered output to copy. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    fleet.n = n;
    fleet.uuids = calloc((size_t)n, sizeof(*fleet.uuids));
    fleet.pids = calloc((size_t)n, sizeof(*fleet.pids));
    if (fleet.uuids == NULL || fleet.pids == NULL || conns == NULL)
        die("out of memory");
    start_daemon();
    daemon_before = private_kib(daemon_pid);
    printf("scale: %d serial instances, %d control connections, "
           "umdevd pid %d, %ld CPUs online\n",
           n, k, (int)daemon_pid, sysconf(_SC_NPROCESSORS_ONLN));

    for (i = 0; i < k; i++)
        conn_open(&conns[i]);
    t0 = now_s();
    wave(conns, k, "start", &fleet, start_args, started);
    t_start = now_s() - t0;
    printf("start %d instances: %.2f s (%.0f/s)\n", n, t_start, n / t_start);

    /* Let the workers settle to idle before measuring memory. */
    sleep(1);
    for (i = 0; i < n; i++) {
        long kib = fleet.pids[i] > 0 ? private_kib(fleet.pids[i]) : -1;

        if (kib < 0)
            die("instance %s: no worker pid or smaps", fleet.uuids[i]);
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

        conn_send(&conns[0], "list", "{}");
        json_object_put(conn_recv(&conns[0]));
        lat[i] = now_s() - t;
    }
    printf("control list round trip with %d running: median %.1f ms\n", n,
           median(lat, 9) * 1e3);

    t0 = now_s();
    wave(conns, k, "stop", &fleet, stop_args, stopped);
    t_stop = now_s() - t0;
    printf("stop %d instances: %.2f s (%.0f/s)\n", n, t_stop, n / t_stop);

    for (i = 0; i < k; i++)
        umdev_ctl_close(conns[i].ctl);
    kill(daemon_pid, SIGTERM);
    waitpid(daemon_pid, NULL, 0);
    {
        char cmd[300];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "scale: could not remove %s\n", dir);
    }
    free(fleet.uuids);
    free(fleet.pids);
    free(conns);
    return 0;
}
