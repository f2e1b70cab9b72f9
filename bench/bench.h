/*
 * What bench/rtt and bench/dma share: the two CPU placements they measure
 * (the first two CPUs this process may use), a monotonic clock, a
 * watchdog, option parsing, and the test device served from an event
 * loop the way umdev_server serves it. bench/README.md describes both.
 */
#ifndef UMDEV_BENCH_H
#define UMDEV_BENCH_H

#include <sched.h>
#include <stdbool.h>
#include <stdint.h>

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

/* A count in 1..@max, all of @s. */
bool bench_parse_count(const char *s, long max, long *out);

/*
 * Read the affinity and derive both placements: same-cpu is the first
 * usable CPU for everything, split-cpu the client there and the servers
 * on the second. Both are selected. Return: 0, or -1 after a message.
 */
int bench_cpus_init(struct bench_cpus *c);

/* --placement same|split|both. Return: false for anything else. */
bool bench_parse_placement(struct bench_cpus *c, const char *arg);

/* With one usable CPU, print "PROG placement=split-cpu skipped: ..." and
 * deselect split-cpu. */
void bench_cpus_check_split(struct bench_cpus *c);

/* Give the process its starting affinity back. Return: 0, or -1 after a
 * message. */
int bench_cpus_restore(const struct bench_cpus *c);

/* A hung peer must not hang the benchmark: exit 1 with a message after
 * @seconds. */
void bench_watchdog(unsigned int seconds);

/* umdev_loop callback for a device's client fd: umdev_dev_process() when
 * it is readable (@opaque is the struct umdev_dev); once the client is
 * gone, stop watching and stop the loop. */
void bench_serve_client(struct umdev_loop *loop, int fd, uint32_t events,
                        void *opaque);

#endif /* UMDEV_BENCH_H */
