/*
 * umdev_listen_unix() (lib/util/sock.c): a socket's path appears only
 * once it listens, so a client that connects the moment it sees the path
 * is never refused. The race is run many times against the helper and
 * against umdev_server_create(), which every lib server uses. Binding
 * the path itself and then listening (what the servers did) was refused
 * within some tens of rounds against the server and some hundreds
 * against the bare helper, here. Also the
 * mode (whatever the umask), the owner, what an existing path gets, that
 * no temporary name is left behind, and umdev_peer_pid().
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "umdev/dev.h"
#include "umdev/loop.h"
#include "umdev/umdev.h"

/* Rounds of each race (some seconds under load). */
#define RACE_ROUNDS 2000
#define SERVER_ROUNDS 500

struct fixture {
    char dir[64];
    char path[108];
};

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/umdev-listen-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/s.sock", f->dir);
    *state = f;
    return 0;
}

/* Entries of @dir other than . and .. */
static int
entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;

    unlink(f->path);
    assert_int_equal(entries(f->dir), 0);
    rmdir(f->dir);
    free(f);
    return 0;
}

static int
connect_to(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc;

    assert_true(fd >= 0);
    strcpy(sa.sun_path, path);
    rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    if (rc < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

static const struct umdev_listen_opts plain = { .mode = 0600,
                                                .uid = (uid_t)-1,
                                                .gid = (gid_t)-1 };

/* One side of a race: the server makes the socket the moment the client
 * is spinning on the path, keeps it until the client connected, then
 * takes it away for the next round. */
struct race {
    const char *path;
    int (*make)(struct race *r); /* 0 or -errno */
    void (*unmake)(struct race *r);
    atomic_int round;  /* the client spins for this round */
    atomic_int served; /* the client is done with this round (-1: stop) */
    atomic_int gone;   /* the server took this round's socket away */
    int rounds;
    int err; /* the server's first failure */
    /* For the server race. */
    struct umdev_dev *dev;
    struct umdev_loop *loop;
    struct umdev_server *srv;
    int fd;
};

static void *
race_server(void *arg)
{
    struct race *r = arg;
    int i, rc;

    for (i = 1; i <= r->rounds; i++) {
        while (atomic_load(&r->round) != i)
            sched_yield();
        rc = r->make(r);
        if (rc < 0) {
            r->err = rc;
            atomic_store(&r->served, -1);
            return NULL;
        }
        while (atomic_load(&r->served) != i)
            sched_yield();
        r->unmake(r);
        atomic_store(&r->gone, i);
    }
    return NULL;
}

/* Return: the round whose connect was refused, or 0. */
static int
race(struct race *r)
{
    pthread_t th;
    struct stat st;
    int i, fd, refused = 0, err = 0;

    assert_int_equal(pthread_create(&th, NULL, race_server, r), 0);
    for (i = 1; i <= r->rounds && refused == 0; i++) {
        atomic_store(&r->round, i);
        /* Connect the moment the path is there. */
        while (lstat(r->path, &st) < 0 && atomic_load(&r->served) >= 0)
            ;
        if (atomic_load(&r->served) < 0)
            break;
        fd = connect_to(r->path);
        if (fd < 0) {
            refused = i;
            err = fd;
        } else {
            close(fd);
        }
        atomic_store(&r->served, i);
        while (atomic_load(&r->gone) != i)
            sched_yield();
    }
    if (refused != 0) {
        /* Let the server finish the rounds it waits for. */
        for (; i <= r->rounds; i++) {
            atomic_store(&r->round, i);
            while (lstat(r->path, &st) < 0)
                ;
            atomic_store(&r->served, i);
            while (atomic_load(&r->gone) != i)
                sched_yield();
        }
    }
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(r->err, 0);
    if (refused != 0)
        print_message("round %d: connect refused: %s\n", refused,
                      strerror(-err));
    return refused;
}

static int
make_listener(struct race *r)
{
    r->fd = umdev_listen_unix(-1, r->path, &plain);
    return r->fd < 0 ? r->fd : 0;
}

static void
unmake_listener(struct race *r)
{
    unlink(r->path);
    close(r->fd);
}

static void
test_race_helper(void **state)
{
    struct fixture *f = *state;
    struct race r = { .path = f->path,
                      .make = make_listener,
                      .unmake = unmake_listener,
                      .rounds = RACE_ROUNDS };

    assert_int_equal(race(&r), 0);
}

static int
make_server(struct race *r)
{
    return umdev_server_create(r->dev, r->loop, r->path, &r->srv);
}

static void
unmake_server(struct race *r)
{
    /* Removes the path. */
    umdev_server_destroy(r->srv);
    r->srv = NULL;
}

/* The same race against the library's server (umdev-serve, umdevd's
 * workers and every embedder make their sockets there). */
static void
test_race_server(void **state)
{
    struct fixture *f = *state;
    struct umdev_dev_info info = { .name = "race" };
    struct race r = { .path = f->path,
                      .make = make_server,
                      .unmake = unmake_server,
                      .rounds = SERVER_ROUNDS };

    assert_int_equal(umdev_loop_create(&r.loop), 0);
    assert_int_equal(umdev_dev_create(&info, &r.dev), 0);
    assert_int_equal(race(&r), 0);
    umdev_dev_destroy(r.dev);
    umdev_loop_destroy(r.loop);
}

/* The mode asked for, exactly, whatever the umask takes away or would
 * have let through. */
static void
test_mode_whatever_the_umask(void **state)
{
    struct fixture *f = *state;
    static const struct {
        mode_t umask, mode;
    } cases[] = { { 077, 0666 }, { 0, 0600 }, { 022, 0660 }, { 0, 0666 } };
    struct umdev_listen_opts o = plain;
    struct stat st;
    size_t i;
    int fd;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mode_t old = umask(cases[i].umask);

        o.mode = cases[i].mode;
        fd = umdev_listen_unix(-1, f->path, &o);
        umask(old);
        assert_true(fd >= 0);
        assert_int_equal(lstat(f->path, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));
        assert_int_equal(st.st_mode & 0777, cases[i].mode);
        close(fd);
        unlink(f->path);
    }
}

/* Without replace, anything at the path stays and the call fails; with
 * it, the socket takes the path. Nothing temporary is left either way. */
static void
test_existing_path(void **state)
{
    struct fixture *f = *state;
    struct umdev_listen_opts o = plain;
    struct stat st;
    FILE *file;
    int fd, c;

    file = fopen(f->path, "w");
    assert_non_null(file);
    fclose(file);
    assert_int_equal(umdev_listen_unix(-1, f->path, &o), -EEXIST);
    assert_int_equal(lstat(f->path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(entries(f->dir), 1);

    o.replace = true;
    fd = umdev_listen_unix(-1, f->path, &o);
    assert_true(fd >= 0);
    assert_int_equal(lstat(f->path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(entries(f->dir), 1);
    c = connect_to(f->path);
    assert_true(c >= 0);
    close(c);
    /* A live socket is not replaced without replace either. */
    o.replace = false;
    assert_int_equal(umdev_listen_unix(-1, f->path, &o), -EEXIST);
    c = connect_to(f->path);
    assert_true(c >= 0);
    close(c);
    close(fd);
    assert_int_equal(entries(f->dir), 1);
}

/* A socket of the caller's, nonblocking, and the owner. */
static void
test_callers_socket_and_owner(void **state)
{
    struct fixture *f = *state;
    /* As root, hand it to nobody's usual ids; otherwise to ourselves
     * (the only owner a non-root caller may give). */
    uid_t uid = geteuid() == 0 ? 65534 : geteuid();
    gid_t gid = geteuid() == 0 ? 65534 : getegid();
    struct umdev_listen_opts o = {
        .mode = 0640, .uid = uid, .gid = gid, .backlog = 1
    };
    struct stat st;
    int fd, rc, c;

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_true(fd >= 0);
    assert_int_equal(fchmod(fd, 0640), 0);
    rc = umdev_listen_unix(fd, f->path, &o);
    assert_int_equal(rc, fd);
    assert_int_equal(lstat(f->path, &st), 0);
    assert_int_equal(st.st_uid, uid);
    assert_int_equal(st.st_gid, gid);
    assert_int_equal(st.st_mode & 0777, 0640);
    /* Nonblocking as made: nothing to accept yet. */
    assert_int_equal(accept(fd, NULL, NULL), -1);
    assert_int_equal(errno, EAGAIN);
    c = connect_to(f->path);
    assert_true(c >= 0);
    rc = accept(fd, NULL, NULL);
    assert_true(rc >= 0);
    assert_int_equal(umdev_peer_pid(rc), getpid());
    assert_int_equal(umdev_peer_pid(c), getpid());
    close(rc);
    close(c);
    close(fd);
    /* No socket: no peer. */
    assert_int_equal(umdev_peer_pid(-1), -1);
}

/* A caller's socket survives a failure; one made here does not leak. */
static void
test_failures_leave_nothing(void **state)
{
    struct fixture *f = *state;
    char path[200];
    int fd;

    memset(path, 'a', sizeof(path) - 1);
    path[sizeof(path) - 1] = '\0';
    assert_int_equal(umdev_listen_unix(-1, path, &plain), -ENAMETOOLONG);
    /* A path that fits, in a directory too deep for any temporary name
     * (".XXXXXX" needs 8 more bytes than the directory): refused too. */
    snprintf(
        path, sizeof(path), "%s/%.*s/s", f->dir,
        (int)(sizeof(((struct sockaddr_un *)0)->sun_path) - 4 - strlen(f->dir)),
        "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
        "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
    assert_true(strlen(path) < sizeof(((struct sockaddr_un *)0)->sun_path));
    assert_int_equal(umdev_listen_unix(-1, path, &plain), -ENAMETOOLONG);
    /* No such directory. */
    snprintf(path, sizeof(path), "%s/none/s.sock", f->dir);
    assert_int_equal(umdev_listen_unix(-1, path, &plain), -ENOENT);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(umdev_listen_unix(fd, path, &plain), -ENOENT);
    /* Still the caller's, still usable. */
    assert_int_equal(umdev_listen_unix(fd, f->path, &plain), fd);
    close(fd);
    assert_int_equal(entries(f->dir), 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_race_helper, setup, teardown),
        cmocka_unit_test_setup_teardown(test_race_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode_whatever_the_umask, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_existing_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callers_socket_and_owner, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failures_leave_nothing, setup,
                                        teardown),
    };

    return cmocka_run_group_tests_name("unit.listen", tests, NULL, NULL);
}
