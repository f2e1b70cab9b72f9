/*
 * umdev-handover-server (tests only): the test device served from a
 * process that, on command, hands its live client over to a new process
 * it starts by exec of this same program (docs/PROTOCOL.md "Handover").
 *
 *   handover_server serve LISTEN_FD CTL_FD [FAULT]
 *   handover_server restore PKG_FD CTL_FD [other]    (started by serve)
 *
 * CTL_FD is a stream socket to the test. Commands (one byte): 'H' hand
 * over now, 'Q' quit. Once its device is stopped and saved the old
 * process says 'S'; after the handover it answers 'C'
 * (committed: the new process serves; the old one exits) or 'A' (aborted:
 * the new one refused or died; the old one serves on). FAULT damages the
 * package the next process gets, once: "cut" (blob cut short), "flip" (a
 * byte changed), "fds" (one descriptor fewer), "other" (the next process
 * builds a device of another type). With UMDEV_HANDOVER_DUMP=DIR each
 * package is also written to DIR (fuzz/handover_load.c's seeds).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testdev.h"
#include "umdev/dev.h"
#include "umdev/wire.h"

struct state {
    struct umdev_loop *loop;
    struct testdev *td;
    struct umdev_dev *dev; /* td's, or the other type's */
    struct umdev_server *srv;
    int ctl;
    const char *fault;
    const char *self;
    bool handed_over;
};

static struct umdev_logger logger = { .fn = umdev_log_stderr,
                                      .max_level = LOG_NOTICE };

/* A device of another type, for the refused package. */
static int
other_stop(void *o)
{
    (void)o;
    return 0;
}
static void
other_resume(void *o)
{
    (void)o;
}
static int
other_save(void *o, struct umdev_mig_buf *b)
{
    (void)o;
    (void)b;
    return 0;
}
static int
other_load(void *o, uint32_t v, const void *e, size_t el, const void *s,
           size_t l)
{
    (void)o, (void)v, (void)e, (void)el, (void)s, (void)l;
    return 0;
}
static const struct umdev_mig_ops other_mig = {
    .type = "handover-other",
    .version = 1,
    .stop = other_stop,
    .resume = other_resume,
    .save = other_save,
    .load = other_load,
};
static const struct umdev_dev_ops other_ops = { .mig = &other_mig };

static void
reply(struct state *s, char c)
{
    if (write(s->ctl, &c, 1) != 1)
        fprintf(stderr, "handover_server: cannot answer the test\n");
}

/* Damage @pkg as the fault asks; returns the package to send. */
static struct umdev_handover *
damage(struct state *s, struct umdev_handover *pkg)
{
    struct umdev_handover *bad = NULL;
    const int *fds;
    int *copy;
    size_t len, nfds;
    const uint8_t *blob = umdev_handover_blob(pkg, &len);
    uint8_t *b;

    fds = umdev_handover_fds(pkg, &nfds);
    if (s->fault == NULL || strcmp(s->fault, "other") == 0)
        return pkg;
    b = malloc(len);
    copy = malloc(nfds * sizeof(int));
    if (b == NULL || copy == NULL)
        abort();
    memcpy(b, blob, len);
    for (size_t i = 0; i < nfds; i++)
        copy[i] = dup(fds[i]);
    if (strcmp(s->fault, "cut") == 0)
        len /= 2;
    else if (strcmp(s->fault, "flip") == 0)
        b[len / 2] ^= 0x40;
    else if (strcmp(s->fault, "fds") == 0)
        close(copy[--nfds]);
    if (umdev_handover_wrap(b, len, copy, nfds, &bad) < 0)
        abort();
    free(b);
    free(copy);
    umdev_handover_free(pkg);
    return bad;
}

/* The seed corpus of fuzz/handover_load.c: each package as sent, when
 * UMDEV_HANDOVER_DUMP names a directory. */
static void
dump(const struct umdev_handover *pkg)
{
    const char *dir = getenv("UMDEV_HANDOVER_DUMP");
    char path[512];
    const void *blob;
    size_t len;
    FILE *f;

    if (dir == NULL)
        return;
    blob = umdev_handover_blob(pkg, &len);
    snprintf(path, sizeof(path), "%s/pkg-%d", dir, (int)getpid());
    f = fopen(path, "wb");
    if (f == NULL || fwrite(blob, 1, len, f) != len)
        fprintf(stderr, "handover_server: cannot write %s\n", path);
    if (f != NULL)
        fclose(f);
}

static void
hand_over(struct state *s)
{
    struct umdev_handover *pkg;
    int sp[2], rc, status;
    char ans = 0, fdarg[16], ctlarg[16];
    pid_t pid;
    struct pollfd p;

    rc = umdev_server_handover_save(s->srv, &pkg);
    if (rc < 0) {
        fprintf(stderr, "handover_server: save: %s\n", strerror(-rc));
        reply(s, 'E');
        return;
    }
    /* Stopped and saved: what the client sends from now on waits for
     * whichever process serves next. */
    reply(s, 'S');
    dump(pkg);
    pkg = damage(s, pkg);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
        abort();
    pid = fork();
    if (pid == 0) {
        /* The new image gets the package socket and the test's control
         * socket, nothing else. */
        int pfd = dup(sp[1]), cfd = dup(s->ctl);

        snprintf(fdarg, sizeof(fdarg), "%d", pfd);
        snprintf(ctlarg, sizeof(ctlarg), "%d", cfd);
        execl(s->self, s->self, "restore", fdarg, ctlarg,
              s->fault != NULL && strcmp(s->fault, "other") == 0 ? "other"
                                                                 : NULL,
              (char *)NULL);
        _exit(127);
    }
    close(sp[1]);
    rc = pid < 0 ? -errno : umdev_handover_send(sp[0], pkg, 10000);
    umdev_handover_free(pkg);
    p = (struct pollfd){ .fd = sp[0], .events = POLLIN };
    /* The new process confirms once it serves; EOF is its death. */
    if (rc == 0 && poll(&p, 1, 20000) == 1 && read(sp[0], &ans, 1) != 1)
        ans = 0;
    close(sp[0]);
    s->fault = NULL;
    if (ans == 'K') {
        umdev_server_handover_commit(s->srv);
        s->srv = NULL;
        s->handed_over = true;
        reply(s, 'C');
        umdev_loop_stop(s->loop);
        return;
    }
    if (pid > 0)
        waitpid(pid, &status, 0);
    rc = umdev_server_handover_abort(s->srv);
    reply(s, rc == 0 ? 'A' : 'E');
}

static void
on_ctl(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct state *s = opaque;
    char c;

    (void)events;
    if (read(fd, &c, 1) != 1 || c == 'Q') {
        umdev_loop_stop(loop);
        return;
    }
    if (c == 'H')
        hand_over(s);
}

static int
make_device(struct state *s, bool other)
{
    struct umdev_dev_info info = {
        .name = "other", .pci = true, .ops = &other_ops, .log = &logger
    };

    if (other)
        return umdev_dev_create(&info, &s->dev);
    if (testdev_create(&logger, &s->td) < 0)
        return -1;
    s->dev = testdev_dev(s->td);
    return 0;
}

int
main(int argc, char **argv)
{
    struct state s = { .ctl = -1, .self = "/proc/self/exe" };
    struct umdev_handover *pkg = NULL;
    bool restore;
    int fd, rc;

    if (argc < 4 || (strcmp(argv[1], "serve") && strcmp(argv[1], "restore"))) {
        fprintf(stderr, "usage: %s serve|restore FD CTL_FD [FAULT]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    restore = strcmp(argv[1], "restore") == 0;
    fd = atoi(argv[2]);
    s.ctl = atoi(argv[3]);
    if (!restore && argc > 4)
        s.fault = argv[4];
    if (umdev_loop_create(&s.loop) < 0 ||
        make_device(&s, restore && argc > 4 && !strcmp(argv[4], "other")) < 0)
        return 1;
    if (restore) {
        char ok = 'K';

        rc = umdev_handover_recv(fd, 10000, &pkg);
        if (rc == 0)
            rc = umdev_server_handover_restore(s.dev, s.loop, pkg, &s.srv);
        umdev_handover_free(pkg);
        if (rc < 0) {
            fprintf(stderr, "handover_server: restore: %s\n", strerror(-rc));
            return 1; /* EOF on the package socket: the old one resumes */
        }
        if (write(fd, &ok, 1) != 1)
            return 1;
        close(fd);
    } else {
        rc = umdev_server_create_fd(s.dev, s.loop, fd, &s.srv);
        if (rc < 0)
            return 1;
    }
    if (umdev_loop_add(s.loop, s.ctl, UMDEV_LOOP_IN, on_ctl, &s) < 0)
        return 1;
    umdev_loop_run(s.loop);
    umdev_server_destroy(s.srv);
    if (s.td != NULL)
        testdev_destroy(s.td);
    else
        umdev_dev_destroy(s.dev);
    umdev_loop_destroy(s.loop);
    return 0;
}
