/*
 * umdev-vmm: the VMM stand-in of the migration proof (see vmm.h). This
 * file is the VMM: options, guest memory, connections, and the migration
 * protocol it speaks with whoever drives the move. That is either
 * `umdevctl migrate --handshake` run as a child (--migrate-cmd), or a
 * thread of ours calling umdev_client_migrate() on two manager sockets
 * (--migrate-to): both speak the same lines (docs/CLI.md, umdevctl
 * migrate), so the VMM's side is one piece of code:
 *
 *   stop           -> pause the vCPUs, reply "go"
 *   attach SOCKET  -> connect to the destination, map memory, set IRQ
 *                     eventfds (no register access), reply "go"
 *   done k=v ...   -> resume on the destination, close the source
 *   abort MESSAGE  -> drop the destination, resume on the source
 *
 * Dirty logging: when the migration begins the VMM starts DMA logging on
 * its source connection and copies memory into the shadow; at attach (the
 * source stopped) it takes the report and checks that each page where
 * memory differs from the shadow is in it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/pci_regs.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "umdev/pci.h"
#include "vmm.h"

/* How long the VMM waits for the next line of the protocol while its
 * vCPUs are paused (a stream of state moving on a loaded machine). */
#define CTL_TIMEOUT_MS 120000
#define LOG_PAGE 4096u

/* ---- helpers for workloads */

int
vmm_fail(struct vmm *v, const char *fmt, ...)
{
    va_list ap;

    v->errors++;
    if (v->fail[0] == '\0') {
        va_start(ap, fmt);
        vsnprintf(v->fail, sizeof(v->fail), fmt, ap);
        va_end(ap);
        fprintf(stderr, "umdev-vmm: %s\n", v->fail);
    }
    return -1;
}

void
vmm_log(struct vmm *v, const char *fmt, ...)
{
    va_list ap;

    if (!v->verbose)
        return;
    va_start(ap, fmt);
    fputs("umdev-vmm: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

uint64_t
vmm_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void *
vmm_gpa(struct vmm *v, uint64_t gpa, size_t len)
{
    /* Workloads compute addresses inside the RAM they laid out; one
     * outside is a bug of the stand-in, not of the device. */
    if (gpa < VMM_GPA_BASE || gpa - VMM_GPA_BASE > v->mem_size ||
        len > v->mem_size - (gpa - VMM_GPA_BASE)) {
        fprintf(stderr,
                "umdev-vmm: BUG: guest address 0x%" PRIx64
                "+%zu outside guest RAM\n",
                gpa, len);
        abort();
    }
    return v->mem + (gpa - VMM_GPA_BASE);
}

void
vmm_gwrite(struct vmm *v, uint64_t gpa, const void *buf, size_t len)
{
    uint64_t off = gpa - VMM_GPA_BASE;

    memcpy(vmm_gpa(v, gpa, len), buf, len);
    memcpy(v->shadow + off, buf, len);
    memcpy(v->model + off, buf, len);
}

void
vmm_accept(struct vmm *v, uint64_t gpa, size_t len)
{
    memcpy(v->model + (gpa - VMM_GPA_BASE), vmm_gpa(v, gpa, len), len);
}

void
vmm_device_owned(struct vmm *v, uint64_t gpa, size_t len)
{
    vmm_gpa(v, gpa, len); /* inside guest RAM */
    if (v->nowned == VMM_MAX_OWNED) {
        fprintf(stderr, "umdev-vmm: BUG: more than %u device-owned ranges\n",
                VMM_MAX_OWNED);
        abort();
    }
    v->owned[v->nowned].off = gpa - VMM_GPA_BASE;
    v->owned[v->nowned].len = len;
    v->nowned++;
}

int
vmm_rd(struct vmm *v, uint32_t region, uint64_t off, void *buf, size_t len)
{
    int rc = umdev_client_region_read(v->c, region, off, buf, len);

    if (rc < 0)
        vmm_fail(v, "read of region %u at 0x%" PRIx64 "+%zu: %s", region, off,
                 len, strerror(-rc));
    return rc;
}

int
vmm_wr(struct vmm *v, uint32_t region, uint64_t off, const void *buf,
       size_t len)
{
    int rc = umdev_client_region_write(v->c, region, off, buf, len);

    if (rc < 0)
        vmm_fail(v, "write of region %u at 0x%" PRIx64 "+%zu: %s", region, off,
                 len, strerror(-rc));
    return rc;
}

uint32_t
vmm_rd32(struct vmm *v, uint32_t region, uint64_t off)
{
    uint32_t val = 0xffffffffu;

    vmm_rd(v, region, off, &val, 4);
    return val;
}

int
vmm_wr32(struct vmm *v, uint32_t region, uint64_t off, uint32_t val)
{
    return vmm_wr(v, region, off, &val, 4);
}

int
vmm_msix_enable(struct vmm *v, uint32_t bar, uint64_t table,
                unsigned int vectors)
{
    int at = umdev_client_pci_cap_find(v->c, PCI_CAP_ID_MSIX, 0);
    uint16_t ctl = PCI_MSIX_FLAGS_ENABLE;
    unsigned int i;
    int rc = 0;

    if (at <= 0)
        return vmm_fail(v, "no MSI-X capability (%d)", at);
    rc = vmm_wr(v, UMDEV_PCI_CONFIG_REGION, (uint64_t)at + PCI_MSIX_FLAGS, &ctl,
                2);
    /* A guest kernel gives each vector a message before it unmasks it;
     * the address and data mean nothing here (the VMM routes by eventfd)
     * but make the entries what a driver leaves. */
    for (i = 0; i < vectors && rc == 0; i++) {
        uint32_t e[4] = { 0xfee00000u, 0, 0x4000u + i, 0 };
        unsigned int d;

        /* Dword by dword, the control word last, as Linux writes them. */
        for (d = 0; d < 4 && rc == 0; d++)
            rc = vmm_wr32(v, bar,
                          table + (uint64_t)i * PCI_MSIX_ENTRY_SIZE + 4 * d,
                          e[d]);
    }
    return rc < 0 ? -1 : 0;
}

uint64_t
vmm_efd_wait(int efd, int timeout_ms)
{
    struct pollfd p = { .fd = efd, .events = POLLIN };
    uint64_t n = 0;

    if (poll(&p, 1, timeout_ms) != 1)
        return 0;
    if (read(efd, &n, sizeof(n)) != sizeof(n))
        return 0;
    return n;
}

void
vmm_rng_init(struct vmm_rng *r, uint64_t seed, uint64_t stream)
{
    /* splitmix64 of the pair: streams of nearby seeds do not overlap. */
    uint64_t z = seed * 0x9e3779b97f4a7c15ull + stream + 1;

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    r->s = (z ^ (z >> 31)) | 1;
}

uint64_t
vmm_rng_next(struct vmm_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545f4914f6cdd1dull;
}

void
vmm_rng_fill(struct vmm_rng *r, uint8_t *buf, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        buf[i] = (uint8_t)(vmm_rng_next(r) >> 56);
}

/* ---- connections */

/* Connect to @path and map guest RAM. Return: 0 or -errno (said). */
static int
vmm_attach_to(struct vmm *v, const char *path, struct umdev_client **out)
{
    struct umdev_client_opts opts = { .timeout_ms = VMM_TIMEOUT_MS };
    struct umdev_client *c = NULL;
    int rc;

    *out = NULL;
    rc = umdev_client_connect(path, &opts, &c);
    if (rc < 0) {
        fprintf(stderr, "umdev-vmm: cannot connect to %s: %s\n", path,
                strerror(-rc));
        return rc;
    }
    rc = umdev_client_dma_map(c, VMM_GPA_BASE, v->mem_size, v->mem, v->memfd, 0,
                              VFIO_USER_DMA_MAP_FLAG_READ |
                                  VFIO_USER_DMA_MAP_FLAG_WRITE);
    if (rc < 0) {
        umdev_client_destroy(c);
        fprintf(stderr, "umdev-vmm: DMA_MAP on %s: %s\n", path, strerror(-rc));
        return rc;
    }
    *out = c;
    return 0;
}

/* ---- the migration controller: a child (umdevctl) or our thread */

struct ctl {
    int in;  /* its lines */
    int out; /* our replies */
    pid_t pid;
    bool thread;
    pthread_t tid;
    char buf[4096];
    size_t len;
    bool eof;
};

/* The in-process controller's (mode b) sockets and its end of the pipes. */
struct inproc {
    const char *src_mgr, *dst_mgr, *dst_path;
    int to_vmm, from_vmm;
    int rc;
};

static int
inproc_say(struct inproc *ip, const char *line)
{
    size_t n = strlen(line);

    return write(ip->to_vmm, line, n) == (ssize_t)n ? 0 : -EPIPE;
}

/* Wait for the VMM's "go". Return: 0; -ECANCELED another answer;
 * -ECONNRESET none (the errors umdevctl gives the driver too). */
static int
inproc_go(struct inproc *ip)
{
    char reply[8];
    size_t n = 0;

    while (n < sizeof(reply)) {
        ssize_t r = read(ip->from_vmm, reply + n, 1);

        if (r <= 0)
            return -ECONNRESET;
        if (reply[n] == '\n')
            return n == 2 && !memcmp(reply, "go", 2) ? 0 : -ECANCELED;
        n++;
    }
    return -ECANCELED;
}

static int
inproc_stop(void *opaque)
{
    struct inproc *ip = opaque;
    int rc = inproc_say(ip, "stop\n");

    return rc < 0 ? rc : inproc_go(ip);
}

static int
inproc_attach(void *opaque)
{
    struct inproc *ip = opaque;
    char line[4200];
    int rc;

    snprintf(line, sizeof(line), "attach %s\n", ip->dst_path);
    rc = inproc_say(ip, line);
    return rc < 0 ? rc : inproc_go(ip);
}

static void *
inproc_main(void *arg)
{
    struct inproc *ip = arg;
    struct umdev_client_opts opts = { .timeout_ms = CTL_TIMEOUT_MS,
                                      .precopy_info = true };
    struct umdev_migrate_hooks hooks = { inproc_stop, inproc_attach, ip };
    struct umdev_migrate_stats st = { 0 };
    struct umdev_client *ms = NULL, *md = NULL;
    char err[512] = "", line[1024];
    int rc;

    rc = umdev_client_connect(ip->src_mgr, &opts, &ms);
    if (rc < 0)
        snprintf(err, sizeof(err), "source manager %s: %s", ip->src_mgr,
                 strerror(-rc));
    if (rc == 0) {
        rc = umdev_client_connect(ip->dst_mgr, &opts, &md);
        if (rc < 0)
            snprintf(err, sizeof(err), "destination manager %s: %s",
                     ip->dst_mgr, strerror(-rc));
    }
    if (rc == 0)
        rc = umdev_client_migrate(ms, md, &hooks, &st, err, sizeof(err));
    if (rc == 0)
        snprintf(line, sizeof(line),
                 "done blackout_us=%" PRIu64 " transfer_us=%" PRIu64
                 " precopy_bytes=%" PRIu64 " state_bytes=%" PRIu64 "\n",
                 st.blackout_ns / 1000, st.transfer_ns / 1000, st.precopy_bytes,
                 st.state_bytes);
    else
        snprintf(line, sizeof(line), "abort %s\n", err);
    inproc_say(ip, line);
    umdev_client_destroy(md);
    umdev_client_destroy(ms);
    ip->rc = rc;
    close(ip->to_vmm);
    close(ip->from_vmm);
    return NULL;
}

static int
ctl_start_thread(struct vmm *v, struct ctl *ctl, struct inproc *ip)
{
    int a[2], b[2];

    if (pipe2(a, O_CLOEXEC) < 0)
        return vmm_fail(v, "pipe: %s", strerror(errno));
    if (pipe2(b, O_CLOEXEC) < 0) {
        close(a[0]);
        close(a[1]);
        return vmm_fail(v, "pipe: %s", strerror(errno));
    }
    ctl->in = a[0];
    ip->to_vmm = a[1];
    ip->from_vmm = b[0];
    ctl->out = b[1];
    errno = pthread_create(&ctl->tid, NULL, inproc_main, ip);
    if (errno != 0) {
        close(a[1]);
        close(b[0]);
        return vmm_fail(v, "pthread_create: %s", strerror(errno));
    }
    ctl->thread = true;
    return 0;
}

static int
ctl_start_cmd(struct vmm *v, struct ctl *ctl, const char *cmd)
{
    int in[2], out[2];

    if (pipe2(in, O_CLOEXEC) < 0)
        return vmm_fail(v, "pipe: %s", strerror(errno));
    if (pipe2(out, O_CLOEXEC) < 0) {
        close(in[0]);
        close(in[1]);
        return vmm_fail(v, "pipe: %s", strerror(errno));
    }
    fflush(NULL);
    ctl->pid = fork();
    if (ctl->pid < 0) {
        vmm_fail(v, "fork: %s", strerror(errno));
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        return -1;
    }
    if (ctl->pid == 0) {
        /* Its stdout is our input, its stdin our replies; its stderr is
         * ours, so what it says on failure reaches the test's log. */
        if (dup2(in[1], STDOUT_FILENO) < 0 || dup2(out[0], STDIN_FILENO) < 0)
            _exit(127);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(in[1]);
    close(out[0]);
    ctl->in = in[0];
    ctl->out = out[1];
    return 0;
}

/*
 * The next line from the controller within @timeout_ms, into @line.
 * Return: 1 a line; 0 none yet; -1 EOF (the controller is gone).
 */
static int
ctl_line(struct ctl *ctl, char *line, size_t cap, int timeout_ms)
{
    for (;;) {
        char *nl = memchr(ctl->buf, '\n', ctl->len);
        struct pollfd p = { .fd = ctl->in, .events = POLLIN };
        ssize_t r;

        if (nl != NULL) {
            size_t n = (size_t)(nl - ctl->buf);

            snprintf(line, cap, "%.*s", (int)n, ctl->buf);
            memmove(ctl->buf, nl + 1, ctl->len - n - 1);
            ctl->len -= n + 1;
            return 1;
        }
        if (ctl->eof)
            return -1;
        if (ctl->len == sizeof(ctl->buf)) {
            /* A line longer than any the protocol has: drop it. */
            ctl->len = 0;
        }
        if (poll(&p, 1, timeout_ms) <= 0)
            return 0;
        r = read(ctl->in, ctl->buf + ctl->len, sizeof(ctl->buf) - ctl->len);
        if (r <= 0)
            ctl->eof = true;
        else
            ctl->len += (size_t)r;
        timeout_ms = 0;
    }
}

static void
ctl_reply(struct ctl *ctl, const char *word)
{
    char line[16];
    int n = snprintf(line, sizeof(line), "%s\n", word);

    /* A controller that went away sees EOF instead; SIGPIPE is ignored. */
    if (write(ctl->out, line, (size_t)n) != n)
        return;
}

/* ---- migration, the VMM's side */

struct mig {
    struct ctl ctl;
    struct inproc ip;
    bool active, done, aborted;
    struct umdev_client *dst;
    uint64_t log_page;
    uint64_t t_pause, pause_us;
    unsigned long pause_unit;
    char abort_msg[512];
    /* From the controller's done line. */
    uint64_t blackout_us, transfer_us, precopy_bytes, state_bytes;
    /* Dirty-log proof. */
    uint64_t pages_dirty, pages_reported, false_neg, false_pos;
    /* Inside the blackout, the stand-in's own share: the dirty check
     * (a real VMM copies the last dirty RAM there instead) and the
     * attach proper (connect, DMA_MAP, SET_IRQS). */
    uint64_t check_us, attach_us;
    const char *selftest;
    /* --selftest corrupt found no output the guest has yet to check
     * when the source stopped (nothing had completed since the last
     * reap): the flip waits for the first such output at the
     * destination. */
    bool corrupt_pending;
    uint64_t *bitmap; /* the union of the reports */
    unsigned long report_every, reports;
    const char *refuse; /* "stop" or "attach": answer that with "fail" */
};

/*
 * Take a dirty report of all guest RAM, ORed into m->bitmap: what a VMM
 * does in each pass of its RAM pre-copy, and once more after the stop.
 * The server clears what it reports, so the union of the reports is what
 * the device wrote since logging started.
 */
static int
mig_report(struct vmm *v, struct mig *m)
{
    uint64_t pg = m->log_page, chunk = 64 * pg * 1024, off;
    int rc = 0;

    /* In pieces of whole bitmap words, smaller when one is too big for a
     * message. */
    for (off = 0; off < v->mem_size;) {
        uint64_t len = v->mem_size - off < chunk ? v->mem_size - off : chunk;

        rc = umdev_client_dma_log_report(v->c, VMM_GPA_BASE + off, len, pg,
                                         m->bitmap + off / pg / 64);
        if (rc == -E2BIG && chunk > 64 * pg) {
            chunk /= 2;
            continue;
        }
        if (rc < 0)
            return vmm_fail(v, "DMA_LOGGING_REPORT: %s", strerror(-rc));
        off += len;
    }
    m->reports++;
    return 0;
}

static int
mig_begin(struct vmm *v, struct mig *m)
{
    uint64_t words;
    int rc;

    rc = umdev_client_dma_log_start(v->c, LOG_PAGE, NULL, 0, &m->log_page);
    if (rc < 0)
        return vmm_fail(v, "DMA_LOGGING_START: %s", strerror(-rc));
    if (m->log_page == 0 || m->log_page > v->mem_size ||
        (m->log_page & (m->log_page - 1)))
        return vmm_fail(v, "DMA logging at page size %" PRIu64, m->log_page);
    words = umdev_wire_log_bitmap_size(v->mem_size, m->log_page) / 8;
    m->bitmap = calloc(words ? words : 1, 8);
    if (m->bitmap == NULL)
        return vmm_fail(v, "out of memory for the dirty bitmap");
    /* After the start: a device write between the two is both logged
     * and copied, a false positive at worst, never a miss. */
    memcpy(v->shadow, v->mem, v->mem_size);
    m->active = true;
    return 0;
}

/* Flip bit 0 of guest byte @off in memory alone, as a device would. */
static void
selftest_flip(struct vmm *v, uint64_t off, const char *what)
{
    fprintf(stderr,
            "umdev-vmm: self-test: flipping guest byte 0x%" PRIx64 " (%s)\n",
            VMM_GPA_BASE + off, what);
    v->mem[off] ^= 1;
}

/*
 * The source is stopped: every page it wrote since logging started must
 * be in its report. Self-tests: "unlogged" writes a page the report
 * leaves out before the check (it must fail); "corrupt" changes a byte
 * the device wrote after it (the workload's checks must fail).
 */
static int
mig_dirty_check(struct vmm *v, struct mig *m)
{
    uint64_t pg = m->log_page, npages = v->mem_size / pg;
    uint64_t off, p, first_miss = UINT64_MAX, *bm = m->bitmap;

    if (mig_report(v, m) < 0)
        return -1;
    if (m->selftest && !strcmp(m->selftest, "unlogged")) {
        for (p = 0; p < npages; p++)
            if (!(bm[p / 64] >> (p % 64) & 1))
                break;
        if (p < npages)
            selftest_flip(v, p * pg, "a page the report leaves out");
    }
    for (p = 0; p < npages; p++) {
        bool differs = memcmp(v->mem + p * pg, v->shadow + p * pg, pg) != 0;
        bool reported = bm[p / 64] >> (p % 64) & 1;

        m->pages_dirty += differs;
        m->pages_reported += reported;
        if (differs && !reported) {
            m->false_neg++;
            if (first_miss == UINT64_MAX)
                first_miss = p;
        }
        if (!differs && reported)
            m->false_pos++;
    }
    if (m->false_neg)
        vmm_fail(v,
                 "dirty log missed %" PRIu64 " page(s) the device wrote, "
                 "the first at 0x%" PRIx64,
                 m->false_neg, VMM_GPA_BASE + first_miss * pg);
    if (m->selftest && !strcmp(m->selftest, "corrupt")) {
        uint64_t gpa;

        /* Output the guest has yet to check, which the workload knows
         * (when there is none yet, the first at the destination: output
         * it checked already may be rewritten by the device as it reuses
         * the buffer, and a rewritten flip proves nothing); a workload
         * without that knowledge: output it checked already, which must
         * stay as it is. */
        if (v->wl->corrupt && v->wl->corrupt(v, &gpa) == 0) {
            selftest_flip(v, gpa - VMM_GPA_BASE,
                          "device output not yet checked");
        } else if (v->wl->corrupt) {
            m->corrupt_pending = true;
            vmm_log(v, "self-test: no unchecked device output at the stop; "
                       "corrupting the first at the destination");
        } else {
            for (off = 0; off < v->mem_size; off++)
                if (v->mem[off] != v->shadow[off] &&
                    v->mem[off] == v->model[off])
                    break;
            if (off < v->mem_size)
                selftest_flip(v, off, "device output checked already");
            else
                vmm_fail(v, "self-test: no device output to corrupt");
        }
    }
    vmm_log(v,
            "dirty log: %" PRIu64 " pages written, %" PRIu64
            " reported, %" PRIu64 " missed, %" PRIu64 " false positives",
            m->pages_dirty, m->pages_reported, m->false_neg, m->false_pos);
    return m->false_neg ? -1 : 0;
}

static int
mig_attach(struct vmm *v, struct mig *m, const char *path)
{
    uint64_t t0 = vmm_now_us();

    if (mig_dirty_check(v, m) < 0)
        return -1;
    m->check_us = vmm_now_us() - t0;
    t0 = vmm_now_us();
    /* A destination we cannot reach fails the move, not the run: the
     * controller aborts and the guest goes on at the source. */
    if (vmm_attach_to(v, path, &m->dst) < 0)
        return -1;
    if (v->wl->irqs(v, m->dst) < 0 || (v->wl->attach && v->wl->attach(v) < 0)) {
        umdev_client_destroy(m->dst);
        m->dst = NULL;
        return -1;
    }
    m->attach_us = vmm_now_us() - t0;
    return 0;
}

static void
parse_done(struct mig *m, const char *s)
{
    static const struct {
        const char *key;
        size_t off;
    } keys[] = {
        { "blackout_us=", offsetof(struct mig, blackout_us) },
        { "transfer_us=", offsetof(struct mig, transfer_us) },
        { "precopy_bytes=", offsetof(struct mig, precopy_bytes) },
        { "state_bytes=", offsetof(struct mig, state_bytes) },
    };
    size_t i;

    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *at = strstr(s, keys[i].key);

        if (at != NULL)
            *(uint64_t *)((char *)m + keys[i].off) =
                strtoull(at + strlen(keys[i].key), NULL, 10);
    }
}

static int
mig_resume(struct vmm *v, struct mig *m)
{
    m->pause_us = vmm_now_us() - m->t_pause;
    if (v->wl->pause && v->wl->pause(v, false) < 0)
        return -1;
    return 0;
}

/* The move failed: the guest goes on at the source, which runs again. */
static void
mig_aborted(struct vmm *v, struct mig *m, const char *msg)
{
    m->aborted = true;
    snprintf(m->abort_msg, sizeof(m->abort_msg), "%s",
             msg[0] == ' ' ? msg + 1 : msg);
    fprintf(stderr, "umdev-vmm: migration aborted: %s\n", m->abort_msg);
    umdev_client_destroy(m->dst);
    m->dst = NULL;
    umdev_client_dma_log_stop(v->c);
}

/*
 * Handle one controller line. "stop" pauses and holds the vCPUs (this
 * thread) until the move ends either way. Return: 0, or -1 when the run
 * must end.
 */
static int
mig_line(struct vmm *v, struct mig *m, const char *line, unsigned long unit)
{
    bool paused = false;
    char buf[4200];
    int rc;

    if (strcmp(line, "stop") != 0) {
        /* Only "stop" may come while the vCPUs run; the rest is
         * progress. An ending before it is a failed start. */
        if (!strncmp(line, "abort", 5)) {
            mig_aborted(v, m, line + 5);
            return 0;
        }
        vmm_log(v, "controller: %s", line);
        return 0;
    }
    m->t_pause = vmm_now_us();
    m->pause_unit = unit;
    if (m->refuse && !strcmp(m->refuse, "stop")) {
        ctl_reply(&m->ctl, "fail");
    } else if (v->wl->pause && v->wl->pause(v, true) < 0) {
        ctl_reply(&m->ctl, "fail");
    } else {
        paused = true;
        ctl_reply(&m->ctl, "go");
    }
    for (;;) {
        rc = ctl_line(&m->ctl, buf, sizeof(buf), CTL_TIMEOUT_MS);
        if (rc == 0)
            return vmm_fail(v,
                            "the migration controller said nothing for "
                            "%d s",
                            CTL_TIMEOUT_MS / 1000);
        if (rc < 0) {
            snprintf(buf, sizeof(buf), "abort the controller ended");
        }
        if (!strncmp(buf, "attach ", 7) && m->refuse &&
            !strcmp(m->refuse, "attach")) {
            /* The log is still checked: the source did stop. */
            mig_dirty_check(v, m);
            ctl_reply(&m->ctl, "fail");
        } else if (!strncmp(buf, "attach ", 7)) {
            ctl_reply(&m->ctl, mig_attach(v, m, buf + 7) == 0 ? "go" : "fail");
        } else if (!strncmp(buf, "done", 4) &&
                   (buf[4] == ' ' || buf[4] == '\0')) {
            if (m->dst == NULL)
                return vmm_fail(v, "done without an attach");
            parse_done(m, buf + 4);
            umdev_client_destroy(v->c);
            v->c = m->dst;
            m->dst = NULL;
            v->migrated = true;
            m->done = true;
            if (v->wl->switched && v->wl->switched(v) < 0)
                return -1;
            return mig_resume(v, m);
        } else if (!strncmp(buf, "abort", 5)) {
            mig_aborted(v, m, buf + 5);
            return paused ? mig_resume(v, m) : 0;
        } else {
            vmm_log(v, "controller: %s", buf);
        }
    }
}

/* Reap the controller. Return: 0, or -1 if it failed. */
static int
mig_end(struct vmm *v, struct mig *m)
{
    int status = 0;

    if (m->ctl.out >= 0)
        close(m->ctl.out);
    m->ctl.out = -1;
    if (m->ctl.thread) {
        pthread_join(m->ctl.tid, NULL);
        m->ctl.thread = false;
    } else if (m->ctl.pid > 0) {
        if (waitpid(m->ctl.pid, &status, 0) < 0)
            status = -1;
        m->ctl.pid = 0;
        if (status != 0 && m->done)
            vmm_fail(v,
                     "the migration command exited with status 0x%x "
                     "after done",
                     status);
    }
    if (m->ctl.in >= 0)
        close(m->ctl.in);
    m->ctl.in = -1;
    return 0;
}

/* ---- the run */

static const struct vmm_workload *const workloads[] = {
    &vmm_wl_testdev,
    &vmm_wl_accel,
    &vmm_wl_serial,
    &vmm_wl_nvme,
};

/* ,"@key":"@s" with the characters JSON needs escaped escaped. */
static void
json_str(const char *key, const char *s)
{
    printf(",\"%s\":\"", key);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", (unsigned char)*s);
        else
            putchar(*s);
    }
    putchar('"');
}

static void
summary(struct vmm *v, struct mig *m, unsigned long units,
        unsigned long units_dst, uint64_t mem_mismatch)
{
    printf("{\"workload\":\"%s\",\"ok\":%s,\"errors\":%lu,\"units\":%lu,"
           "\"units_dst\":%lu,\"migrated\":%s",
           v->wl->name, v->errors ? "false" : "true", v->errors, units,
           units_dst, v->migrated ? "true" : "false");
    if (m->aborted)
        json_str("abort", m->abort_msg);
    if (m->active)
        printf(",\"pause_at_unit\":%lu,\"vm_pause_us\":%" PRIu64
               ",\"blackout_us\":%" PRIu64 ",\"transfer_us\":%" PRIu64
               ",\"precopy_bytes\":%" PRIu64 ",\"state_bytes\":%" PRIu64
               ",\"log_page\":%" PRIu64 ",\"log_reports\":%lu"
               ",\"pages_dirty\":%" PRIu64 ",\"pages_reported\":%" PRIu64
               ",\"false_negatives\":%" PRIu64 ",\"false_positives\":%" PRIu64,
               m->pause_unit, m->pause_us, m->blackout_us, m->transfer_us,
               m->precopy_bytes, m->state_bytes, m->log_page, m->reports,
               m->pages_dirty, m->pages_reported, m->false_neg, m->false_pos);
    if (m->active)
        printf(",\"dirty_check_us\":%" PRIu64 ",\"attach_us\":%" PRIu64,
               m->check_us, m->attach_us);
    printf(",\"memory_mismatch_bytes\":%" PRIu64, mem_mismatch);
    if (v->wl->summary)
        v->wl->summary(v, stdout);
    if (v->fail[0])
        json_str("first_error", v->fail);
    printf("}\n");
    fflush(stdout);
}

/* Memory must be the model everywhere. Return: bytes that are not. */
static uint64_t
memory_check(struct vmm *v)
{
    uint64_t off, bad = 0, first = 0;
    unsigned int i;

    for (off = 0; off < v->mem_size; off++) {
        for (i = 0; i < v->nowned; i++)
            if (off - v->owned[i].off < v->owned[i].len)
                break;
        if (i < v->nowned)
            continue;
        if (v->mem[off] != v->model[off]) {
            if (!bad)
                first = off;
            bad++;
        }
    }
    if (bad)
        vmm_fail(v,
                 "guest memory differs from what the guest and the checked "
                 "device output put there in %" PRIu64
                 " byte(s), the first at 0x%" PRIx64 " (0x%02x, expected "
                 "0x%02x)",
                 bad, VMM_GPA_BASE + first, v->mem[first], v->model[first]);
    return bad;
}

static void
usage(FILE *f)
{
    fprintf(
        f,
        "usage: umdev-vmm --workload testdev|serial|accel|nvme --socket PATH\n"
        "         [--mem-size BYTES] [--units N] [--after N] [--seed N]\n"
        "         [--precopy-units N] [--report-every N]\n"
        "         [--migrate-after N (--migrate-cmd 'COMMAND' |\n"
        "          --migrate-to DEST-SOCKET --manage SRC-MGR-SOCKET\n"
        "          --dest-manage DST-MGR-SOCKET)]\n"
        "         [--host-src PATH --host-dst PATH] [--serial-port 0|1]\n"
        "         [--queues N]\n"
        "         [--depth N] [--intx] [--selftest corrupt|unlogged]\n"
        "         [--refuse stop|attach] [--until-signal]\n"
        "         [--verbose]\n");
}

/* --until-signal: the workload runs until SIGUSR1, however long that is
 * (a test that restarts the server meanwhile cannot know how many units
 * its restarts take), then drains and checks as after its last unit.
 * The signal is blocked and looked for between units, so it interrupts
 * no wait of the workload's. */
static bool until_signal;

static bool
end_asked(void)
{
    sigset_t pending;

    return sigpending(&pending) == 0 && sigismember(&pending, SIGUSR1) == 1;
}

static int
parse_u64(const char *s, uint64_t *out)
{
    char *end;

    errno = 0;
    *out = strtoull(s, &end, 0);
    if (errno || end == s || *end != '\0' || *s == '-')
        return -1;
    return 0;
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "workload", required_argument, NULL, 'w' },
        { "socket", required_argument, NULL, 's' },
        { "mem-size", required_argument, NULL, 'm' },
        { "units", required_argument, NULL, 'n' },
        { "after", required_argument, NULL, 'A' },
        { "precopy-units", required_argument, NULL, 'P' },
        { "seed", required_argument, NULL, 'S' },
        { "migrate-after", required_argument, NULL, 'k' },
        { "migrate-cmd", required_argument, NULL, 'c' },
        { "migrate-to", required_argument, NULL, 't' },
        { "manage", required_argument, NULL, 'M' },
        { "dest-manage", required_argument, NULL, 'D' },
        { "host-src", required_argument, NULL, 'h' },
        { "host-dst", required_argument, NULL, 'H' },
        { "serial-port", required_argument, NULL, 'p' },
        { "queues", required_argument, NULL, 'q' },
        { "depth", required_argument, NULL, 'd' },
        { "intx", no_argument, NULL, 'i' },
        { "selftest", required_argument, NULL, 'T' },
        { "refuse", required_argument, NULL, 'R' },
        { "report-every", required_argument, NULL, 'E' },
        { "verbose", no_argument, NULL, 'v' },
        { "until-signal", no_argument, NULL, 'U' },
        { "help", no_argument, NULL, '?' + 256 },
        { 0 },
    };
    struct vmm v = { .mem_size = 16u << 20,
                     .units = 200,
                     .after = 16,
                     .precopy_units = 16,
                     .migrate_after = -1,
                     .depth = 32,
                     .memfd = -1 };
    struct mig m = { .ctl = { .in = -1, .out = -1 }, .report_every = 4 };
    const char *wl = NULL, *cmd = NULL;
    unsigned long unit = 0, units_dst = 0;
    uint64_t n, mismatch = 0;
    char line[4200];
    int opt, rc = 0;

    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        bool bad = false;

        switch (opt) {
        case 'w':
            wl = optarg;
            break;
        case 's':
            v.src_path = optarg;
            break;
        case 'c':
            cmd = optarg;
            break;
        case 't':
            m.ip.dst_path = optarg;
            break;
        case 'M':
            m.ip.src_mgr = optarg;
            break;
        case 'D':
            m.ip.dst_mgr = optarg;
            break;
        case 'h':
            v.host_src = optarg;
            break;
        case 'H':
            v.host_dst = optarg;
            break;
        case 'i':
            v.intx = true;
            break;
        case 'v':
            v.verbose++;
            break;
        case 'U':
            until_signal = true;
            break;
        case 'R':
            m.refuse = optarg;
            bad = strcmp(optarg, "stop") && strcmp(optarg, "attach");
            break;
        case 'T':
            m.selftest = optarg;
            bad = strcmp(optarg, "corrupt") && strcmp(optarg, "unlogged");
            break;
        case 'm':
            bad = parse_u64(optarg, &v.mem_size) || v.mem_size < (1u << 20) ||
                  v.mem_size % (1u << 20) || v.mem_size > (1ull << 32);
            break;
        case 'n':
        case 'E':
        case 'P':
        case 'A':
        case 'k':
        case 'q':
        case 'd':
        case 'p':
        case 'S':
            bad = parse_u64(optarg, &n) != 0 || n > (1ull << 31);
            if (opt == 'n')
                v.units = n;
            else if (opt == 'A')
                v.after = n;
            else if (opt == 'P')
                v.precopy_units = n;
            else if (opt == 'E')
                m.report_every = n;
            else if (opt == 'k')
                v.migrate_after = (long)n;
            else if (opt == 'q')
                v.queues = (unsigned int)n;
            else if (opt == 'p')
                bad = bad || n > 1, v.serial_port = (unsigned int)n;
            else if (opt == 'd')
                bad = bad || n == 0, v.depth = (unsigned int)n;
            else
                bad = false, v.seed = strtoull(optarg, NULL, 0);
            break;
        case '?' + 256:
            usage(stdout);
            return 0;
        default:
            bad = true;
            break;
        }
        if (bad) {
            if (opt != '?')
                fprintf(stderr, "umdev-vmm: bad value: %s\n", optarg);
            usage(stderr);
            return 2;
        }
    }
    if (wl == NULL || v.src_path == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    for (size_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++)
        if (!strcmp(wl, workloads[i]->name))
            v.wl = workloads[i];
    if (v.wl == NULL) {
        fprintf(stderr, "umdev-vmm: unknown workload %s\n", wl);
        return 2;
    }
    {
        bool inproc = m.ip.dst_path || m.ip.src_mgr || m.ip.dst_mgr;

        if (inproc && !(m.ip.dst_path && m.ip.src_mgr && m.ip.dst_mgr)) {
            fprintf(stderr, "umdev-vmm: --migrate-to needs --manage and "
                            "--dest-manage\n");
            return 2;
        }
        if ((inproc || cmd) != (v.migrate_after >= 0) || (inproc && cmd)) {
            fprintf(stderr, "umdev-vmm: --migrate-after goes with one of "
                            "--migrate-cmd and --migrate-to\n");
            return 2;
        }
        if ((m.selftest || m.refuse) && v.migrate_after < 0) {
            fprintf(stderr, "umdev-vmm: --selftest and --refuse need a "
                            "migration\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    if (until_signal) {
        sigset_t usr1;

        if (v.migrate_after >= 0) {
            fprintf(stderr, "umdev-vmm: --until-signal runs no migration\n");
            return 2;
        }
        /* Before any thread: they inherit the mask. */
        sigemptyset(&usr1);
        sigaddset(&usr1, SIGUSR1);
        pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    }

    v.memfd = memfd_create("umdev-vmm-ram", MFD_CLOEXEC);
    if (v.memfd < 0 || ftruncate(v.memfd, (off_t)v.mem_size) < 0) {
        fprintf(stderr, "umdev-vmm: guest RAM: %s\n", strerror(errno));
        return 1;
    }
    v.mem =
        mmap(NULL, v.mem_size, PROT_READ | PROT_WRITE, MAP_SHARED, v.memfd, 0);
    v.shadow = calloc(1, v.mem_size);
    v.model = calloc(1, v.mem_size);
    if (v.mem == MAP_FAILED || v.shadow == NULL || v.model == NULL) {
        fprintf(stderr, "umdev-vmm: guest RAM: out of memory\n");
        return 1;
    }

    if (vmm_attach_to(&v, v.src_path, &v.c) < 0) {
        vmm_fail(&v, "cannot attach to the source %s", v.src_path);
        goto out;
    }
    if (v.wl->open(&v) < 0)
        goto out;
    /* The workload runs until it has done --units and, when migrating,
     * the move is over and --after more ran on the destination. */
    for (;; unit++) {
        if ((long)unit == v.migrate_after) {
            if (mig_begin(&v, &m) < 0)
                break;
            rc = cmd ? ctl_start_cmd(&v, &m.ctl, cmd)
                     : ctl_start_thread(&v, &m.ctl, &m.ip);
            if (rc < 0)
                break;
        }
        /* Reports while the device runs, as a VMM's RAM passes take
         * them: each clears what it reports, so a write the device makes
         * while one is taken must show in a later one. */
        if (m.active && !m.done && !m.aborted && m.report_every &&
            unit > (unsigned long)v.migrate_after &&
            (unit - (unsigned long)v.migrate_after) % m.report_every == 0 &&
            mig_report(&v, &m) < 0)
            break;
        /* The VMM pauses when its own pre-copy (of RAM, in a real one)
         * has converged: here, after --precopy-units more units. */
        if (m.active && !m.done && !m.aborted &&
            unit - (unsigned long)v.migrate_after >= v.precopy_units) {
            while ((rc = ctl_line(&m.ctl, line, sizeof(line), 0)) == 1)
                if (mig_line(&v, &m, line, unit) < 0 || m.done || m.aborted)
                    break;
            if (v.errors)
                break;
            if (rc < 0 && !m.done && !m.aborted) {
                vmm_fail(&v, "the migration controller ended before the "
                             "move");
                break;
            }
        }
        if (until_signal
                ? end_asked()
                : unit >= v.units && (v.migrate_after < 0 || m.aborted ||
                                      (m.done && units_dst >= v.after)))
            break;
        if (m.corrupt_pending && v.migrated) {
            uint64_t gpa;

            if (v.wl->corrupt(&v, &gpa) == 0) {
                selftest_flip(&v, gpa - VMM_GPA_BASE,
                              "device output not yet checked, at the "
                              "destination");
                m.corrupt_pending = false;
            }
        }
        if (v.wl->step(&v, unit) < 0)
            break;
        units_dst += v.migrated;
    }
    if (m.corrupt_pending && v.errors == 0)
        vmm_fail(&v, "self-test: no device output to corrupt");
    if (v.errors == 0)
        v.wl->finish(&v);
    if (v.errors == 0)
        mismatch = memory_check(&v);
out:
    if (m.active)
        mig_end(&v, &m);
    free(m.bitmap);
    summary(&v, &m, unit, units_dst, mismatch);
    if (v.wl->close)
        v.wl->close(&v);
    umdev_client_destroy(v.c);
    munmap(v.mem, v.mem_size);
    close(v.memfd);
    free(v.shadow);
    free(v.model);
    /* 3: everything checked out, but the device did not move. */
    return v.errors ? 1 : v.migrate_after >= 0 && !v.migrated ? 3 : 0;
}
