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
#include "fleet.h"
#include "umdev/ctl.h"

#ifndef UMDEVD_PATH
#error "UMDEVD_PATH must name the umdevd binary"
#endif
#ifndef UMDEVCTL_PATH
#error "UMDEVCTL_PATH must name the umdevctl binary"
#endif

/* What the waves of requests fill in and read. */
struct roster {
    int n;
    char (*uuids)[40];
    pid_t *pids;
};

static struct fleet_daemon daemon_;

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
start_args(void *opaque, int index, char *buf, size_t len)
{
    (void)opaque;
    (void)index;
    snprintf(buf, len,
             "{\"parent\":\"serial\",\"type\":\"2port\","
             "\"attrs\":{\"port0\":\"none\",\"port1\":\"none\"}}");
}

/* Keep the instance's UUID (to stop it) and its worker's pid. */
static void
started(void *opaque, int index, struct json_object *result)
{
    struct roster *f = opaque;
    struct json_object *inst = json_object_object_get(result, "instance");
    struct json_object *v;

    snprintf(f->uuids[index], sizeof(f->uuids[index]), "%s",
             json_object_get_string(json_object_object_get(inst, "uuid")));
    if (json_object_object_get_ex(inst, "pid", &v))
        f->pids[index] = (pid_t)json_object_get_int(v);
}

static void
stop_args(void *opaque, int index, char *buf, size_t len)
{
    const struct roster *f = opaque;
    snprintf(buf, len, "{\"uuid\":\"%s\"}", f->uuids[index]);
}

static void
stopped(void *opaque, int index, struct json_object *result)
{
    (void)opaque;
    (void)index;
    (void)result;
}

/* Run the real CLI's `list` and time it. */
static double
time_cli_list(void)
{
    double t0 = now_s();
    pid_t pid = fork();
    int status;

    if (pid < 0)
        fleet_die("fork: %s", strerror(errno));
    if (pid == 0) {
        if (freopen("/dev/null", "w", stdout) == NULL)
            _exit(127);
        execl(UMDEVCTL_PATH, "umdevctl", "--control", daemon_.control, "list",
              (char *)NULL);
        _exit(127);
    }
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
        fleet_die("umdevctl list failed");
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
    struct fleet_conn *conns = calloc(FLEET_MAX_CONNS, sizeof(*conns));
    struct roster fleet = { 0 };
    int n = 1000, k = 16, ch, i;
    long v;
    double t0, t_start, t_stop, lat[9];
    long daemon_before, daemon_after, workers = 0;

    while ((ch = getopt_long(argc, argv, "n:k:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'n':
        case 'k':
            if (!bench_parse_count(optarg, ch == 'n' ? 1024 : FLEET_MAX_CONNS,
                                   &v)) {
                fprintf(stderr,
                        "scale: 1 <= N <= 1024 (the serial pool), "
                        "1 <= K <= %d\n",
                        FLEET_MAX_CONNS);
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
        fleet_die("out of memory");
    bench_prog = "scale";
    fleet_daemon_start(&daemon_, UMDEVD_PATH, "scale");
    daemon_before = fleet_private_kib(daemon_.pid);
    printf("scale: %d serial instances, %d control connections, "
           "umdevd pid %d, %ld CPUs online\n",
           n, k, (int)daemon_.pid, sysconf(_SC_NPROCESSORS_ONLN));

    for (i = 0; i < k; i++)
        fleet_conn_open(&conns[i], daemon_.control);
    t0 = now_s();
    fleet_wave(conns, k, "start", n, start_args, started, &fleet);
    t_start = now_s() - t0;
    printf("start %d instances: %.2f s (%.0f/s)\n", n, t_start, n / t_start);

    /* Let the workers settle to idle before measuring memory. */
    sleep(1);
    for (i = 0; i < n; i++) {
        long kib = fleet.pids[i] > 0 ? fleet_private_kib(fleet.pids[i]) : -1;

        if (kib < 0)
            fleet_die("instance %s: no worker pid or smaps", fleet.uuids[i]);
        workers += kib;
    }
    daemon_after = fleet_private_kib(daemon_.pid);
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

        json_object_put(fleet_call(&conns[0], "list", "{}"));
        lat[i] = now_s() - t;
    }
    printf("control list round trip with %d running: median %.1f ms\n", n,
           median(lat, 9) * 1e3);

    t0 = now_s();
    fleet_wave(conns, k, "stop", n, stop_args, stopped, &fleet);
    t_stop = now_s() - t0;
    printf("stop %d instances: %.2f s (%.0f/s)\n", n, t_stop, n / t_stop);

    for (i = 0; i < k; i++)
        fleet_conn_close(&conns[i]);
    fleet_daemon_stop(&daemon_);
    fleet_daemon_remove(&daemon_);
    free(fleet.uuids);
    free(fleet.pids);
    free(conns);
    return 0;
}
