/*
 * bench/soak: umdevd under churn (issue 13, section 7). A private daemon
 * holds N persistent definitions of mixed types (serial-2port and
 * accel-1wq), all started, each with a client attached and traffic
 * flowing, while for --seconds (two rounds of half each, each between a
 * bring-up and a teardown) the benchmark at random
 *   - kills a worker with SIGKILL, acknowledges the failure and starts
 *     the definition again over the control protocol (what umdevctl does);
 *   - drops a client in the middle of a request (a REGION_READ sent and
 *     never read, or half a header) and attaches a new one;
 *   - modifies a definition (an attribute, the start policy);
 *   - runs traffic: a byte through a serial port's loopback, checked, or a
 *     full accel client (MEMMOVE, CRC32C, MSI-X, an address fault).
 * After each round every instance is verified by traffic, every
 * definition is compared with what the benchmark asked for, in the
 * daemon's record and in its file, and once all are stopped and undefined
 * the daemon's open descriptors and the parents' pools are compared with
 * the same daemon after a warm-up round. Its private memory must not grow
 * from the end of round 1 to the end of round 2 (which repeats it) by more
 * than --max-growth: round 1 may raise the allocator's high-water mark,
 * a leak grows every round.
 *
 *   soak [--instances N] [--accel K] [--seconds S] [--seed X]
 *        [--max-growth KIB]
 *
 * Exit 0 when every check held, 1 on any failure (with the reason), 2 on
 * bad arguments. bench/README.md describes the figures.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/vfio.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "bench.h"
#include "fleet.h"
#include "umdev/client.h"
#include "umdev/wire.h"

#ifndef UMDEVD_PATH
#error "UMDEVD_PATH must name the umdevd binary"
#endif
#ifndef ACCEL_CLIENT_PATH
#error "ACCEL_CLIENT_PATH must name the daemon-accel-client binary"
#endif

#define CONNS 16
#define CLIENT_TIMEOUT_MS 5000
#define ATTACH_TRIES 100 /* of 50 ms: a killed worker's socket comes back */
#define STATE_WAIT_MS 10000
#define ACCEL_POOL 16 /* accel's queue pool: one accel-1wq takes one */

/* 16550 registers of port 0 in BAR0 (devices/serial/README.md). */
#define UART_THR 0
#define UART_RBR 0
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_LCR_8N1 0x03 /* reset is 5 bits: bytes would lose 3 */
#define UART_MCR_LOOP 0x10
#define UART_LSR_DR 0x01

enum start_policy { START_MANUAL, START_AUTO };

struct inst {
    char uuid[40];
    bool accel;
    char socket[128];
    pid_t pid;
    struct umdev_client *client; /* serial: the attached VMM stand-in */
    uint8_t next_byte;
    const char *last; /* what churn did to it last, for failure messages */
    /* The definition as the benchmark last set it. */
    enum start_policy start;
    bool port1_none; /* serial: attrs.port1 = "none", else absent */
};

struct counts {
    unsigned long traffic, accel_runs, kills, drops, modifies;
};

static struct fleet_daemon daemon_;
static struct fleet_conn conns[CONNS];
static struct inst *insts;
static int n_insts = 1000, n_accel = 16;
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t
rng(void)
{
    /* xorshift64*: reproducible from --seed, which is all a soak needs */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static int
pick(int n)
{
    return (int)(rng() % (uint64_t)n);
}

static double
now_s(void)
{
    return (double)bench_now_ns() / 1e9;
}

/* ---- definitions -------------------------------------------------------- */

static void
define_args(void *opaque, int i, char *buf, size_t len)
{
    (void)opaque;
    if (insts[i].accel)
        snprintf(buf, len,
                 "{\"parent\":\"accel\",\"type\":\"accel-1wq\","
                 "\"start\":\"manual\",\"attrs\":{\"engine_threads\":1}}");
    else
        snprintf(buf, len,
                 "{\"parent\":\"serial\",\"type\":\"serial-2port\","
                 "\"start\":\"manual\",\"attrs\":{\"port0\":\"none\","
                 "\"port1\":\"none\"}}");
}

static void
defined(void *opaque, int i, struct json_object *result)
{
    struct json_object *inst = json_object_object_get(result, "instance");

    (void)opaque;
    snprintf(insts[i].uuid, sizeof(insts[i].uuid), "%s",
             json_object_get_string(json_object_object_get(inst, "uuid")));
    insts[i].start = START_MANUAL;
    insts[i].port1_none = !insts[i].accel;
}

static void
uuid_args(void *opaque, int i, char *buf, size_t len)
{
    (void)opaque;
    snprintf(buf, len, "{\"uuid\":\"%s\"}", insts[i].uuid);
}

static void
record_start(int i, struct json_object *result)
{
    struct json_object *inst = json_object_object_get(result, "instance");
    struct json_object *v;

    snprintf(insts[i].socket, sizeof(insts[i].socket), "%s",
             json_object_get_string(json_object_object_get(inst, "socket")));
    insts[i].pid = json_object_object_get_ex(inst, "pid", &v)
                       ? (pid_t)json_object_get_int(v)
                       : -1;
    if (insts[i].pid <= 0)
        fleet_die("instance %s started without a worker pid", insts[i].uuid);
}

static void
started(void *opaque, int i, struct json_object *result)
{
    (void)opaque;
    record_start(i, result);
}

static void
ignored(void *opaque, int i, struct json_object *result)
{
    (void)opaque;
    (void)i;
    (void)result;
}

/* ---- traffic ------------------------------------------------------------ */

static int
attach(struct inst *in)
{
    struct umdev_client_opts opts = { .timeout_ms = CLIENT_TIMEOUT_MS };
    uint8_t lcr = UART_LCR_8N1, mcr = UART_MCR_LOOP;
    int tries, rc = -1;

    /* Until the worker has seen the previous client go, a new one waits
     * or is refused: retry within a bound. */
    for (tries = 0; tries < ATTACH_TRIES; tries++) {
        rc = umdev_client_connect(in->socket, &opts, &in->client);
        if (rc == 0)
            break;
        usleep(50000);
    }
    if (rc < 0) {
        fprintf(stderr, "soak: attach %s: %s\n", in->uuid, strerror(-rc));
        return -1;
    }
    rc = umdev_client_region_write(in->client, VFIO_PCI_BAR0_REGION_INDEX,
                                   UART_LCR, &lcr, 1);
    if (rc == 0)
        rc = umdev_client_region_write(in->client, VFIO_PCI_BAR0_REGION_INDEX,
                                       UART_MCR, &mcr, 1);
    if (rc < 0) {
        fprintf(stderr, "soak: %s: LCR 8N1, MCR.LOOP: %s\n", in->uuid,
                strerror(-rc));
        return -1;
    }
    return 0;
}

static void
detach(struct inst *in)
{
    umdev_client_destroy(in->client);
    in->client = NULL;
}

/* One byte out through THR and back through RBR in loopback. */
static int
serial_traffic(struct inst *in)
{
    uint8_t out = in->next_byte++, lsr = 0, got;
    int64_t deadline = bench_now_ns() + 2000000000ll;
    int rc;

    rc = umdev_client_region_write(in->client, VFIO_PCI_BAR0_REGION_INDEX,
                                   UART_THR, &out, 1);
    while (rc == 0 && !(lsr & UART_LSR_DR) && bench_now_ns() < deadline) {
        rc = umdev_client_region_read(in->client, VFIO_PCI_BAR0_REGION_INDEX,
                                      UART_LSR, &lsr, 1);
        if (rc == 0 && !(lsr & UART_LSR_DR))
            usleep(200);
    }
    if (rc == 0 && !(lsr & UART_LSR_DR))
        rc = -ETIMEDOUT;
    if (rc == 0)
        rc = umdev_client_region_read(in->client, VFIO_PCI_BAR0_REGION_INDEX,
                                      UART_RBR, &got, 1);
    if (rc < 0) {
        fprintf(stderr, "soak: %s: loopback byte: %s\n", in->uuid,
                strerror(-rc));
        return -1;
    }
    if (got != out) {
        fprintf(stderr,
                "soak: %s: loopback sent 0x%02x, received 0x%02x (LSR 0x%02x; "
                "last churn: %s)\n",
                in->uuid, out, got, lsr, in->last ? in->last : "none");
        return -1;
    }
    return 0;
}

/* The accel client attaches, drives one queue and checks everything. */
static int
accel_traffic(const struct inst *in)
{
    char timeout[16], out[200], line[256];
    int status;
    pid_t pid;

    snprintf(timeout, sizeof(timeout), "%d", CLIENT_TIMEOUT_MS);
    snprintf(out, sizeof(out), "%s/accel-client.out", daemon_.dir);
    pid = fork();
    if (pid < 0)
        fleet_die("fork: %s", strerror(errno));
    if (pid == 0) {
        if (freopen(out, "w", stdout) == NULL)
            _exit(127);
        execl(ACCEL_CLIENT_PATH, "daemon-accel-client", in->socket, "1",
              timeout, (char *)NULL);
        _exit(127);
    }
    if (waitpid(pid, &status, 0) != pid)
        fleet_die("waitpid: %s", strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        FILE *f = fopen(out, "re");

        fprintf(stderr, "soak: %s: accel client failed (status 0x%x):\n",
                in->uuid, status);
        while (f != NULL && fgets(line, sizeof(line), f) != NULL)
            fprintf(stderr, "  %s", line);
        if (f != NULL)
            fclose(f);
        return -1;
    }
    return 0;
}

static void
traffic_or_die(struct inst *in, struct counts *c)
{
    if (in->accel) {
        if (accel_traffic(in) < 0)
            fleet_die("traffic on %s failed", in->uuid);
        c->accel_runs++;
    } else {
        if (serial_traffic(in) < 0)
            fleet_die("traffic on %s failed", in->uuid);
        c->traffic++;
    }
}

/* ---- churn -------------------------------------------------------------- */

static const char *
state_of(const char *uuid)
{
    static char state[32];
    char args[80];
    struct json_object *r, *list, *inst;

    snprintf(args, sizeof(args), "{\"uuid\":\"%s\",\"defined\":true}", uuid);
    r = fleet_call(&conns[0], "list", args);
    list = json_object_object_get(r, "instances");
    if (json_object_array_length(list) != 1)
        fleet_die("list -u %s: %zu instances", uuid,
                  json_object_array_length(list));
    inst = json_object_array_get_idx(list, 0);
    snprintf(state, sizeof(state), "%s",
             json_object_get_string(json_object_object_get(inst, "state")));
    json_object_put(r);
    return state;
}

static void
kill_and_restart(struct inst *in)
{
    int64_t deadline = bench_now_ns() + STATE_WAIT_MS * 1000000ll;
    char args[80];
    struct json_object *r;

    if (kill(in->pid, SIGKILL) < 0)
        fleet_die("kill worker %d of %s: %s", (int)in->pid, in->uuid,
                  strerror(errno));
    while (strcmp(state_of(in->uuid), "failed") != 0) {
        if (bench_now_ns() > deadline)
            fleet_die("%s: not failed %d ms after its worker was killed",
                      in->uuid, STATE_WAIT_MS);
        usleep(10000);
    }
    if (in->client != NULL)
        detach(in);
    snprintf(args, sizeof(args), "{\"uuid\":\"%s\"}", in->uuid);
    json_object_put(fleet_call(&conns[0], "stop", args)); /* acknowledge */
    r = fleet_call(&conns[0], "start", args);
    record_start((int)(in - insts), r);
    json_object_put(r);
    if (!in->accel && attach(in) < 0)
        fleet_die("no new client on %s after its restart", in->uuid);
}

/* Leave with a request unanswered (or half sent), then come back. */
static void
drop_mid_request(struct inst *in)
{
    struct vfio_user_header hdr = {
        .msg_id = 0x7777,
        .cmd = VFIO_USER_REGION_READ,
        .msg_size = sizeof(hdr) + sizeof(struct vfio_user_region_access),
    };
    struct vfio_user_region_access ra = {
        .offset = UART_LSR,
        .region = VFIO_PCI_BAR0_REGION_INDEX,
        .count = 1,
    };
    uint8_t msg[sizeof(hdr) + sizeof(ra)];
    size_t len = sizeof(msg);
    int fd = umdev_client_fd(in->client);

    memcpy(msg, &hdr, sizeof(hdr));
    memcpy(msg + sizeof(hdr), &ra, sizeof(ra));
    if (rng() & 1)
        len = sizeof(hdr) / 2;
    if (write(fd, msg, len) != (ssize_t)len)
        fleet_die("%s: raw request: %s", in->uuid, strerror(errno));
    detach(in);
    if (attach(in) < 0)
        fleet_die("no new client on %s after a dropped one", in->uuid);
}

static void
modify(struct inst *in)
{
    char args[200];

    if (!in->accel && (rng() & 1)) {
        in->port1_none = !in->port1_none;
        snprintf(args, sizeof(args),
                 "{\"uuid\":\"%s\",\"attrs\":{\"port1\":%s}}", in->uuid,
                 in->port1_none ? "\"none\"" : "null");
    } else {
        /* Auto would start it at the daemon's next start; nothing here
         * restarts the daemon, so the policy is only a recorded field. */
        in->start = in->start == START_AUTO ? START_MANUAL : START_AUTO;
        snprintf(args, sizeof(args), "{\"uuid\":\"%s\",\"start\":\"%s\"}",
                 in->uuid, in->start == START_AUTO ? "auto" : "manual");
    }
    json_object_put(fleet_call(&conns[0], "modify", args));
}

/* ---- the checks afterwards ---------------------------------------------- */

static const char *
want_start(const struct inst *in)
{
    return in->start == START_AUTO ? "auto" : "manual";
}

/* @o (an instance object or a definition file) says what @in should. */
static int
definition_matches(const struct inst *in, struct json_object *o,
                   const char *where)
{
    struct json_object *attrs = json_object_object_get(o, "attrs"), *v;
    const char *type = in->accel ? "accel-1wq" : "serial-2port";
    const char *start =
        json_object_get_string(json_object_object_get(o, "start"));
    const char *got_type =
        json_object_get_string(json_object_object_get(o, "type"));
    bool port1 = json_object_object_get_ex(attrs, "port1", &v);

    if (got_type == NULL || strcmp(got_type, type) != 0 || start == NULL ||
        strcmp(start, want_start(in)) != 0) {
        fprintf(stderr, "soak: %s in %s: type %s start %s, want %s %s\n",
                in->uuid, where, got_type ? got_type : "(none)",
                start ? start : "(none)", type, want_start(in));
        return -1;
    }
    if (in->accel) {
        if (!json_object_object_get_ex(attrs, "engine_threads", &v) ||
            json_object_get_int(v) != 1) {
            fprintf(stderr, "soak: %s in %s: engine_threads lost\n", in->uuid,
                    where);
            return -1;
        }
        return 0;
    }
    if (!json_object_object_get_ex(attrs, "port0", &v) ||
        strcmp(json_object_get_string(v), "none") != 0 ||
        port1 != in->port1_none ||
        (port1 &&
         strcmp(json_object_get_string(json_object_object_get(attrs, "port1")),
                "none") != 0)) {
        fprintf(stderr, "soak: %s in %s: attrs %s, want port0 none%s\n",
                in->uuid, where, json_object_to_json_string(attrs),
                in->port1_none ? ", port1 none" : "");
        return -1;
    }
    return 0;
}

static void
check_definitions(void)
{
    struct json_object *r, *list;
    size_t i, n;
    int k, bad = 0;

    r = fleet_call(&conns[0], "list", "{\"defined\":true}");
    list = json_object_object_get(r, "instances");
    n = json_object_array_length(list);
    if (n != (size_t)n_insts)
        fleet_die("the daemon has %zu definitions, want %d", n, n_insts);
    for (k = 0; k < n_insts; k++) {
        struct inst *in = &insts[k];
        struct json_object *found = NULL, *file;
        char path[300];

        for (i = 0; i < n && found == NULL; i++) {
            struct json_object *o = json_object_array_get_idx(list, i);
            const char *u =
                json_object_get_string(json_object_object_get(o, "uuid"));

            if (u != NULL && strcmp(u, in->uuid) == 0)
                found = o;
        }
        if (found == NULL) {
            fprintf(stderr, "soak: %s: no longer defined\n", in->uuid);
            bad++;
            continue;
        }
        bad += definition_matches(in, found, "the daemon's record") < 0;
        snprintf(path, sizeof(path), "%s/%s/%s", daemon_.statedir,
                 in->accel ? "accel" : "serial", in->uuid);
        file = json_object_from_file(path);
        if (file == NULL) {
            fprintf(stderr, "soak: %s: unreadable\n", path);
            bad++;
            continue;
        }
        bad += definition_matches(in, file, path) < 0;
        json_object_put(file);
    }
    json_object_put(r);
    if (bad > 0)
        fleet_die("%d definitions differ from what was asked", bad);
}

/* Each parent's available instances, in `types` order. */
static int
pools(int *out, int max)
{
    struct json_object *r = fleet_call(&conns[0], "types", "{}");
    struct json_object *types = json_object_object_get(r, "types");
    int i, n = (int)json_object_array_length(types);

    if (n > max)
        fleet_die("more than %d types", max);
    for (i = 0; i < n; i++)
        out[i] = json_object_get_int(json_object_object_get(
            json_object_array_get_idx(types, i), "available_instances"));
    json_object_put(r);
    return n;
}

/* ---- rounds ------------------------------------------------------------- */

static void
bring_up(void)
{
    int i;

    fleet_wave(conns, CONNS, "define", n_insts, define_args, defined, NULL);
    fleet_wave(conns, CONNS, "start", n_insts, uuid_args, started, NULL);
    for (i = 0; i < n_insts; i++)
        if (!insts[i].accel && attach(&insts[i]) < 0)
            fleet_die("cannot attach to %s", insts[i].uuid);
}

static void
tear_down(void)
{
    int i;

    for (i = 0; i < n_insts; i++)
        if (insts[i].client != NULL)
            detach(&insts[i]);
    fleet_wave(conns, CONNS, "stop", n_insts, uuid_args, ignored, NULL);
    fleet_wave(conns, CONNS, "undefine", n_insts, uuid_args, ignored, NULL);
}

/* One round: everything defined, started and attached, @seconds of
 * churn, then every instance and definition checked and all torn down. */
static void
soak_round(int round, double seconds, struct counts *c)
{
    double t0 = now_s(), t_end;
    long mem_running;
    int i;

    bring_up();
    printf("round %d: defined, started and attached %d: %.1f s\n", round,
           n_insts, now_s() - t0);
    for (i = 0; i < n_insts; i++)
        traffic_or_die(&insts[i], c);
    mem_running = fleet_private_kib(daemon_.pid);

    t0 = now_s();
    t_end = t0 + seconds;
    while (now_s() < t_end) {
        struct inst *in = &insts[pick(n_insts)];
        int roll = pick(100);

        if (roll < 8) {
            kill_and_restart(in);
            in->last = "worker killed and restarted";
            c->kills++;
        } else if (roll < 20) {
            if (in->accel)
                continue; /* its client comes and goes with each run */
            drop_mid_request(in);
            in->last = "client dropped mid-request";
            c->drops++;
        } else if (roll < 30) {
            modify(in);
            in->last = "definition modified";
            c->modifies++;
        } else {
            traffic_or_die(in, c);
        }
    }
    printf("round %d: churn %.1f s: %lu workers killed and restarted, %lu "
           "clients dropped mid-request, %lu definitions modified, %lu "
           "serial round trips, %lu accel client runs\n",
           round, now_s() - t0, c->kills, c->drops, c->modifies, c->traffic,
           c->accel_runs);

    for (i = 0; i < n_insts; i++) {
        if (strcmp(state_of(insts[i].uuid), "running") != 0)
            fleet_die("%s is %s after the churn", insts[i].uuid,
                      state_of(insts[i].uuid));
        traffic_or_die(&insts[i], c);
    }
    check_definitions();
    printf("round %d: all %d instances running and verified by traffic, all "
           "definitions intact (the daemon's record and the files; %ld KiB "
           "private with all running)\n",
           round, n_insts, mem_running);
    tear_down();
}

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: soak [--instances N] [--accel K] [--seconds S] "
            "[--seed X] [--max-growth KIB]\n"
            "  N instances (default 1000, at most 1024 + K), K of them "
            "accel-1wq (default 16, at most %d),\n"
            "  S seconds of churn (default 60), X the random seed, "
            "KIB the daemon's allowed private\n"
            "  memory growth from round 1 to round 2 (default 2048)\n",
            ACCEL_POOL);
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "instances", required_argument, NULL, 'n' },
        { "accel", required_argument, NULL, 'a' },
        { "seconds", required_argument, NULL, 's' },
        { "seed", required_argument, NULL, 'x' },
        { "max-growth", required_argument, NULL, 'g' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct counts c = { 0 };
    int pool0[16], pool1[16], npool, i, ch, fds0, fds[3], round;
    long v, seconds = 60, max_growth = 2048, mem0, mem[3];
    struct rlimit rl;

    bench_prog = "soak";
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'n':
        case 'a':
        case 's':
        case 'g':
            if (!bench_parse_count(optarg, 1L << 30, &v)) {
                usage(stderr);
                return 2;
            }
            if (ch == 'n')
                n_insts = (int)v;
            else if (ch == 'a')
                n_accel = (int)v;
            else if (ch == 's')
                seconds = v;
            else
                max_growth = v;
            break;
        case 'x':
            if (!bench_parse_count(optarg, LONG_MAX, &v)) {
                usage(stderr);
                return 2;
            }
            rng_state ^= (uint64_t)v;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc || n_accel > ACCEL_POOL || n_accel >= n_insts ||
        n_insts - n_accel > 1024) {
        usage(stderr);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* One client socket per serial instance, plus the regions' fds. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    insts = calloc((size_t)n_insts, sizeof(*insts));
    if (insts == NULL)
        fleet_die("out of memory");
    /* The accel ones spread over the list, so churn meets both kinds. */
    for (i = 0; i < n_accel; i++)
        insts[(int)((long)i * n_insts / n_accel)].accel = true;

    fleet_daemon_start(&daemon_, UMDEVD_PATH, "soak");
    for (i = 0; i < CONNS; i++)
        fleet_conn_open(&conns[i], daemon_.control);
    printf("soak: %d instances (%d serial-2port, %d accel-1wq), %ld s of "
           "churn, umdevd pid %d, %ld CPUs online\n",
           n_insts, n_insts - n_accel, n_accel, seconds, (int)daemon_.pid,
           sysconf(_SC_NPROCESSORS_ONLN));

    /* Warm-up round: the daemon's allocator reaches the size N instances
     * and a list of all of them need, so what stays after the soak is
     * what the churn left. */
    bring_up();
    for (i = 0; i < n_insts; i++)
        traffic_or_die(&insts[i], &c);
    check_definitions(); /* the largest responses the daemon builds */
    tear_down();
    memset(&c, 0, sizeof(c));
    npool = pools(pool0, 16);
    fds0 = fleet_count_fds(daemon_.pid);
    mem0 = fleet_private_kib(daemon_.pid);
    printf("baseline after a warm-up round: daemon %d fds, %ld KiB private\n",
           fds0, mem0);

    for (round = 1; round <= 2; round++) {
        c = (struct counts){ 0 };
        soak_round(round, (double)seconds / 2, &c);
        if (pools(pool1, 16) != npool ||
            memcmp(pool0, pool1, sizeof(int) * (size_t)npool) != 0)
            fleet_die("a parent's pool did not come back whole");
        fds[round] = fleet_count_fds(daemon_.pid);
        mem[round] = fleet_private_kib(daemon_.pid);
        printf("round %d, all stopped and undefined: daemon %d fds "
               "(baseline %d), %ld KiB private (baseline %ld), pools whole\n",
               round, fds[round], fds0, mem[round], mem0);
        if (fds[round] != fds0)
            fleet_die("the daemon leaked %d descriptors", fds[round] - fds0);
    }
    printf("private memory: round 1 %+ld KiB over the warm baseline (the "
           "allocator's high-water mark under churn), round 2 %+ld KiB over "
           "round 1\n",
           mem[1] - mem0, mem[2] - mem[1]);
    if (mem[2] - mem[1] > max_growth)
        fleet_die("the daemon grew by %ld KiB in a round that repeated the "
                  "previous one (allowed %ld)",
                  mem[2] - mem[1], max_growth);

    for (i = 0; i < CONNS; i++)
        fleet_conn_close(&conns[i]);
    fleet_daemon_stop(&daemon_);
    fleet_daemon_remove(&daemon_);
    free(insts);
    printf("soak: PASSED\n");
    return 0;
}
