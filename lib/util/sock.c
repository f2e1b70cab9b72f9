/*
 * UNIX listening sockets that appear only once they listen, and the peer
 * of a connection (umdev.h). Every server in the tree makes its sockets
 * here: the library's, the daemon's control socket and instance sockets,
 * and the serial parent's host ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "umdev/umdev.h"

/* Names tried for the temporary socket before giving up. */
#define LISTEN_TMP_TRIES 16

/* Six characters of a temporary name. */
static void
tmp_suffix(char out[7])
{
    static const char chars[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    unsigned char r[6];
    struct timespec ts;
    int i;

    if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
        /* No entropy yet: the clock is enough to avoid a collision, and
         * a collision only costs another try (bind() says EADDRINUSE). */
        clock_gettime(CLOCK_MONOTONIC, &ts);
        for (i = 0; i < 6; i++)
            r[i] = (unsigned char)(ts.tv_nsec >> (i * 5));
    }
    for (i = 0; i < 6; i++)
        out[i] = chars[r[i] % (sizeof(chars) - 1)];
    out[6] = '\0';
}

/* The temporary name beside @path into @sa: ".NAME.XXXXXX" or, when
 * that does not fit, ".XXXXXX". Return: 0 or -ENAMETOOLONG. */
static int
tmp_name(const char *path, struct sockaddr_un *sa)
{
    const char *slash = strrchr(path, '/');
    int dirlen = slash != NULL ? (int)(slash - path + 1) : 0;
    char sfx[7];
    int n;

    tmp_suffix(sfx);
    n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%.*s.%s.%s", dirlen, path,
                 path + dirlen, sfx);
    if (n > 0 && (size_t)n < sizeof(sa->sun_path))
        return 0;
    n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%.*s.%s", dirlen, path,
                 sfx);
    return n > 0 && (size_t)n < sizeof(sa->sun_path) ? 0 : -ENAMETOOLONG;
}

/* Move @tmp to @path: over anything there, or only if nothing is. */
static int
put_in_place(const char *tmp, const char *path, bool replace)
{
    if (replace)
        return rename(tmp, path) < 0 ? -errno : 0;
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -errno;
    /* A filesystem without RENAME_NOREPLACE: a hard link is just as
     * exclusive, and the socket answers under either name. */
    if (link(tmp, path) < 0)
        return -errno;
    unlink(tmp);
    return 0;
}

/* Give the file at @tmp (just bound by us) exactly @mode, unless the
 * umask left it so already. */
static int
set_mode(const char *tmp, mode_t mode)
{
    struct stat st;

    if (lstat(tmp, &st) < 0)
        return -errno;
    if (!S_ISSOCK(st.st_mode))
        return -EEXIST; /* not ours any more */
    if ((st.st_mode & 0777) == mode)
        return 0;
    return chmod(tmp, mode) < 0 ? -errno : 0;
}

int
umdev_listen_unix(int fd, const char *path,
                  const struct umdev_listen_opts *opts)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    mode_t mode = opts->mode & 0777;
    int own = -1, rc, tries;

    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    if (fd < 0) {
        own = socket(AF_UNIX,
                     SOCK_STREAM | SOCK_CLOEXEC |
                         (opts->nonblock ? SOCK_NONBLOCK : 0),
                     0);
        if (own < 0)
            return -errno;
        /*
         * Linux gives the file the socket inode's mode less the umask:
         * the mode from the start, the umask only ever taking bits away
         * (set_mode() puts them back), so not even the temporary name is
         * more open than asked for.
         */
        if (fchmod(own, mode) < 0) {
            rc = -errno;
            close(own);
            return rc;
        }
        fd = own;
    }
    for (tries = 0;; tries++) {
        rc = tmp_name(path, &sa);
        if (rc < 0)
            goto fail;
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            break;
        rc = -errno;
        if (rc != -EADDRINUSE || tries == LISTEN_TMP_TRIES)
            goto fail;
    }
    if (listen(fd, opts->backlog > 0 ? opts->backlog : 16) < 0) {
        rc = -errno;
        goto fail_tmp;
    }
    rc = set_mode(sa.sun_path, mode);
    if (rc == 0 && (opts->uid != (uid_t)-1 || opts->gid != (gid_t)-1) &&
        lchown(sa.sun_path, opts->uid, opts->gid) < 0)
        rc = -errno;
    if (rc == 0)
        rc = put_in_place(sa.sun_path, path, opts->replace);
    if (rc == 0)
        return fd;
fail_tmp:
    unlink(sa.sun_path);
fail:
    if (own >= 0)
        close(own);
    return rc;
}

pid_t
umdev_peer_pid(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return -1;
    return cred.pid;
}
