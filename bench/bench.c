/*
 * The code bench/rtt and bench/dma share (bench.h): placements, clock,
 * watchdog, options, the device's event-loop callback.
 */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "umdev/dev.h"
#include "umdev/loop.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

const char *bench_prog = "bench";

/* The watchdog's message, built before it is armed (a signal handler may
 * only write()). */
static char timeout_msg[128];
static size_t timeout_len;

int64_t
bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int
bench_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

int
bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

double
bench_median_lat_us(uint32_t *lat, size_t n)
{
    if (n == 0)
        return 0;
    qsort(lat, n, sizeof(*lat), bench_cmp_u32);
    return lat[n / 2] / 1e3;
}

int
bench_first_two_cpus(cpu_set_t *allowed, int *first, int *second)
{
    cpu_set_t own;
    int i, n = 0;

    if (allowed == NULL)
        allowed = &own;
    if (sched_getaffinity(0, sizeof(*allowed), allowed) < 0) {
        fprintf(stderr, "%s: sched_getaffinity: %s\n", bench_prog,
                strerror(errno));
        return -1;
    }
    for (i = 0; i < CPU_SETSIZE && n < 2; i++) {
        if (!CPU_ISSET(i, allowed))
            continue;
        if (n++ == 0)
            *first = *second = i;
        else
            *second = i;
    }
    return 0;
}

int
bench_pin_cpu(int cpu)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) < 0) {
        fprintf(stderr, "%s: cannot pin to CPU %d: %s\n", bench_prog, cpu,
                strerror(errno));
        return -1;
    }
    return 0;
}

bool
bench_parse_count(const char *s, long max, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v <= 0 || v > max)
        return false;
    *out = v;
    return true;
}

int
bench_cpus_init(struct bench_cpus *c)
{
    int cpu, a = -1, b = -1;

    if (sched_getaffinity(0, sizeof(c->allowed), &c->allowed) < 0) {
        fprintf(stderr, "%s: sched_getaffinity: %s\n", bench_prog,
                strerror(errno));
        return -1;
    }
    /* The first two CPUs this process may run on (-1 when there is
     * none): taskset chooses others. */
    for (cpu = 0; cpu < CPU_SETSIZE && b < 0; cpu++) {
        if (!CPU_ISSET(cpu, &c->allowed))
            continue;
        if (a < 0)
            a = cpu;
        else
            b = cpu;
    }
    c->online = (int)sysconf(_SC_NPROCESSORS_ONLN);
    c->usable = CPU_COUNT(&c->allowed);
    c->same = (struct bench_placement){ "same-cpu", a, a };
    c->split = (struct bench_placement){ "split-cpu", a, b };
    c->same_on = c->split_on = true;
    return 0;
}

/* --placement same|split|both. Return: false for anything else. */
static bool
parse_placement(struct bench_cpus *c, const char *arg)
{
    c->same_on = !strcmp(arg, "same") || !strcmp(arg, "both");
    c->split_on = !strcmp(arg, "split") || !strcmp(arg, "both");
    return c->same_on || c->split_on;
}

static void
check_split(struct bench_cpus *c)
{
    if (!c->split_on || c->split.server_cpu >= 0)
        return;
    printf("%s placement=split-cpu skipped: only one CPU (%d) is "
           "available\n",
           bench_prog, c->split.client_cpu);
    c->split_on = false;
}

static void
on_alarm(int sig)
{
    (void)sig;
    if (write(STDERR_FILENO, timeout_msg, timeout_len) < 0) {
        /* Nothing more to do: we exit either way. */
    }
    _exit(1);
}

/* Exit 1 with a message after @seconds; 0 disarms. */
static void
watchdog(unsigned int seconds)
{
    int n = snprintf(timeout_msg, sizeof(timeout_msg),
                     "%s: timed out: a peer stopped answering\n", bench_prog);

    timeout_len = n > 0 && (size_t)n < sizeof(timeout_msg)
                      ? (size_t)n
                      : strlen(timeout_msg);
    signal(SIGALRM, on_alarm);
    alarm(seconds);
}

int
bench_parse_args(int argc, char **argv, const struct option *longopts,
                 void (*usage)(FILE *f), bench_opt_fn *own, void *opaque,
                 struct bench_cpus *c)
{
    static const struct option common[] = {
        { "placement", required_argument, NULL, 'p' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct option all[BENCH_MAX_OWN_OPTS + ARRAY_SIZE(common)];
    size_t n = 0, i;
    int ch, rc;

    for (i = 0; longopts != NULL && longopts[i].name != NULL; i++) {
        assert(n < BENCH_MAX_OWN_OPTS);
        all[n++] = longopts[i];
    }
    for (i = 0; i < ARRAY_SIZE(common); i++)
        all[n++] = common[i];
    while ((ch = getopt_long(argc, argv, "h", all, NULL)) != -1) {
        if (ch == 'p' && !parse_placement(c, optarg)) {
            fprintf(stderr, "%s: bad --placement '%s'\n", bench_prog, optarg);
            return 2;
        }
        if (ch == 'h') {
            usage(stdout);
            return 0;
        }
        if (ch == '?' || (ch != 'p' && own == NULL)) {
            usage(stderr);
            return 2;
        }
        if (ch != 'p' && (rc = own(ch, optarg, opaque)) != 0)
            return rc;
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    return -1;
}

int
bench_run(struct bench_cpus *c, unsigned int seconds,
          int (*run)(const struct bench_placement *pl, void *opaque),
          void *opaque)
{
    bool failed;

    check_split(c);
    watchdog(seconds);
    failed = (c->same_on && run(&c->same, opaque) < 0) ||
             (c->split_on && run(&c->split, opaque) < 0);
    watchdog(0);
    if (sched_setaffinity(0, sizeof(c->allowed), &c->allowed) < 0) {
        fprintf(stderr, "%s: restoring affinity: %s\n", bench_prog,
                strerror(errno));
        failed = true;
    }
    if (failed)
        fprintf(stderr, "%s: FAILED\n", bench_prog);
    return failed ? 1 : 0;
}

void
bench_serve_client(struct umdev_loop *loop, int fd, uint32_t events,
                   void *opaque)
{
    struct umdev_dev *dev = opaque;
    uint32_t want;

    if (umdev_dev_process(dev) == 0) {
        /* Replies waiting for room: watch for it, then for input again
         * (no epoll_ctl on the usual turn). */
        want = umdev_dev_events(dev);
        if (want != UMDEV_LOOP_IN || (events & UMDEV_LOOP_OUT))
            umdev_loop_mod(loop, fd, want);
        return;
    }
    /* Detached: the connection closed the fd already. */
    umdev_loop_del(loop, fd);
    umdev_loop_stop(loop);
}
