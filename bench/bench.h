/*
 * What bench/rtt and bench/dma share: the two CPU placements they measure
 * (the first two CPUs this process may use), a monotonic clock, a
 * watchdog, option parsing, and the test device served from an event
 * loop the way umdev_server serves it. bench/README.md describes both.
 * bench/scale takes the clock and bench_parse_count() too; bench/accel
 * and bench/nvme the CPU choice, pinning and medians.
 */
#ifndef UMDEV_BENCH_H
#define UMDEV_BENCH_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct option;
struct umdev_loop;

/* Where the client (the benchmark's thread) and the servers run. */
struct bench_placement {
    const char *name; /* "same-cpu" or "split-cpu" */
    int client_cpu, server_cpu;
};

struct bench_cpus {
    cpu_set_t allowed; /* the affinity the process started with */
    int online, usable;
    struct bench_placement same, split;
    bool same_on, split_on; /* --placement */
};

/* Set by main before anything prints: the prefix of every message. */
extern const char *bench_prog;

int64_t bench_now_ns(void);

/* Pin the calling thread to @cpu. Return: 0, or -1 after a message. */
int bench_pin_cpu(int cpu);

/* qsort() comparators for the samples the programs take medians of. */
int bench_cmp_u32(const void *a, const void *b);
int bench_cmp_double(const void *a, const void *b);

/* The median of @n latencies in ns (@lat sorted in place), in us; 0 when
 * there are none. */
double bench_median_lat_us(uint32_t *lat, size_t n);

/* The first two CPUs of this process's affinity (the same one twice when
 * it has one) into *@first and *@second; the affinity into @allowed
 * unless NULL. Return: 0, or -1 after a message. */
int bench_first_two_cpus(cpu_set_t *allowed, int *first, int *second);

/* A count in 1..@max, all of @s. */
bool bench_parse_count(const char *s, long max, long *out);

/*
 * Read the affinity and derive both placements: same-cpu is the first
 * usable CPU for everything, split-cpu the client there and the servers
 * on the second. Both are selected. Return: 0, or -1 after a message.
 */
int bench_cpus_init(struct bench_cpus *c);

/* A program's own option @ch with its argument @arg. Return: 0, or 2
 * after a message. */
typedef int bench_opt_fn(int ch, const char *arg, void *opaque);

/* Own options a program may have besides --placement and --help. */
#define BENCH_MAX_OWN_OPTS 8

/*
 * Parse the command line: --placement and --help here, the program's own
 * options (@longopts, NULL-terminated, without those two; NULL: none)
 * with @own, no operands. @usage prints the program's usage. Return: -1
 * to go on; else the exit status (0 after --help, 2 after a message).
 */
int bench_parse_args(int argc, char **argv, const struct option *longopts,
                     void (*usage)(FILE *f), bench_opt_fn *own, void *opaque,
                     struct bench_cpus *c);

/*
 * Run @run for each selected placement, stopping at the first failure
 * (its message is the last printed), with a watchdog of @seconds (a hung
 * peer must not hang the benchmark), then restore the affinity. With one
 * usable CPU, split-cpu is skipped with a line saying so. Return: the
 * exit status, 0 or 1 (after "PROG: FAILED").
 */
int bench_run(struct bench_cpus *c, unsigned int seconds,
              int (*run)(const struct bench_placement *pl, void *opaque),
              void *opaque);

/* umdev_loop callback for a device's client fd: umdev_dev_process() when
 * it is readable (@opaque is the struct umdev_dev); once the client is
 * gone, stop watching and stop the loop. */
void bench_serve_client(struct umdev_loop *loop, int fd, uint32_t events,
                        void *opaque);

#endif /* UMDEV_BENCH_H */
