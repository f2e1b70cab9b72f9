/*
 * Parent plug-ins (parents.h, docs/PLUGINS.md): shared objects in the
 * plug-in directory, each exporting UMDEV_PARENT_PLUGIN_SYMBOL. A plug-in
 * is first loaded in a throw-away child that calls its entry point and
 * checks what it returns; only when the child says so does the daemon
 * load it itself. A plug-in whose constructor or entry point crashes,
 * hangs or lies about its ABI version is refused and never touches the
 * daemon's address space.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "parents.h"

/* A plug-in must load within this time. */
#define PLUGIN_PROBE_TIMEOUT_MS 5000
#define PLUGIN_MAX 64

static int
open_plugin(const char *path, void **dl, const struct umdev_parent **drv,
            char *err, size_t errlen)
{
    umdev_parent_plugin_fn *entry;

    *drv = NULL;
    *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (*dl == NULL) {
        snprintf(err, errlen, "cannot load: %s", dlerror());
        return -EINVAL;
    }
    entry = (umdev_parent_plugin_fn *)dlsym(*dl, UMDEV_PARENT_PLUGIN_SYMBOL);
    if (entry == NULL) {
        snprintf(err, errlen, "exports no %s() (UMDEV_PARENT_PLUGIN)",
                 UMDEV_PARENT_PLUGIN_SYMBOL);
        return -EINVAL;
    }
    *drv = entry();
    if (*drv == NULL) {
        snprintf(err, errlen, "%s() returned no parent",
                 UMDEV_PARENT_PLUGIN_SYMBOL);
        return -EINVAL;
    }
    if ((*drv)->abi_version < UMDEV_PARENT_ABI_MIN_VERSION ||
        (*drv)->abi_version > UMDEV_PARENT_ABI_VERSION) {
        snprintf(err, errlen,
                 "built for parent ABI version %u; this umdevd takes "
                 "versions %u to %u (rebuild it against this umdev)",
                 (unsigned int)(*drv)->abi_version,
                 (unsigned int)UMDEV_PARENT_ABI_MIN_VERSION,
                 (unsigned int)UMDEV_PARENT_ABI_VERSION);
        return -EINVAL;
    }
    return 0;
}

/* In the child: load @path and write "" (fine) or the reason to @fd. */
static void __attribute__((noreturn)) probe_child(const char *path, int fd)
{
    const struct umdev_parent *drv;
    char err[512] = "";
    void *dl;

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    open_plugin(path, &dl, &drv, err, sizeof(err));
    if (write(fd, err, strlen(err)) < 0)
        _exit(1);
    _exit(0);
}

/* Load @path in a child. Return: 0, or -EINVAL with @err saying why. */
static int
probe(const char *path, char *err, size_t errlen)
{
    struct pollfd pfd;
    char buf[512];
    size_t len = 0;
    int p[2], status = 0, rc;
    pid_t pid;

    if (pipe2(p, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -errno;
    }
    pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(p[0]);
        close(p[1]);
        return -EIO;
    }
    if (pid == 0) {
        close(p[0]);
        probe_child(path, p[1]);
    }
    close(p[1]);
    pfd.fd = p[0];
    pfd.events = POLLIN;
    for (;;) {
        ssize_t n;

        rc = poll(&pfd, 1, PLUGIN_PROBE_TIMEOUT_MS);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0) {
            kill(pid, SIGKILL);
            snprintf(err, errlen, "did not load within %d ms",
                     PLUGIN_PROBE_TIMEOUT_MS);
            break;
        }
        n = read(p[0], buf + len, sizeof(buf) - 1 - len);
        if (n <= 0 || (len += (size_t)n) == sizeof(buf) - 1)
            break;
    }
    close(p[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    buf[len] = '\0';
    if (rc <= 0)
        return -EINVAL;
    if (WIFSIGNALED(status)) {
        snprintf(err, errlen, "crashed while loading (signal %d, %s)",
                 WTERMSIG(status), strsignal(WTERMSIG(status)));
        return -EINVAL;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || len > 0) {
        snprintf(err, errlen, "%s", len > 0 ? buf : "failed to load");
        return -EINVAL;
    }
    return 0;
}

static void
refuse(struct daemon *d, const char *path, const char *reason)
{
    struct refused_plugin *r = calloc(1, sizeof(*r)), **tail;

    umdev_log(&d->log, LOG_ERR, "plug-in %s refused: %s", path, reason);
    if (r == NULL)
        return;
    snprintf(r->path, sizeof(r->path), "%s", path);
    snprintf(r->reason, sizeof(r->reason), "%s", reason);
    for (tail = &d->parents->refused; *tail != NULL; tail = &(*tail)->next)
        ;
    *tail = r;
}

static int
by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int
plugins_load(struct daemon *d, const char *dir)
{
    char *names[PLUGIN_MAX];
    size_t n = 0, i;
    struct dirent *de;
    int loaded = 0;
    DIR *dp;

    dp = opendir(dir);
    if (dp == NULL)
        return -errno;
    while ((de = readdir(dp)) != NULL) {
        size_t len = strlen(de->d_name);

        if (len < 4 || de->d_name[0] == '.' ||
            strcmp(de->d_name + len - 3, ".so") != 0)
            continue;
        if (n == PLUGIN_MAX) {
            umdev_log(&d->log, LOG_ERR,
                      "more than %d plug-ins in %s: %s and later ignored",
                      PLUGIN_MAX, dir, de->d_name);
            continue;
        }
        names[n] = strdup(de->d_name);
        if (names[n] != NULL)
            n++;
    }
    closedir(dp);
    /* The same order every start, whatever the directory's. */
    qsort(names, n, sizeof(names[0]), by_name);
    for (i = 0; i < n; i++) {
        const struct umdev_parent *drv;
        char path[PATH_MAX], err[512];
        void *dl;

        if (snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >=
            (int)sizeof(path)) {
            refuse(d, names[i], "path too long");
        } else if (probe(path, err, sizeof(err)) < 0) {
            refuse(d, path, err);
        } else if (open_plugin(path, &dl, &drv, err, sizeof(err)) < 0) {
            if (dl != NULL)
                dlclose(dl);
            refuse(d, path, err);
        } else if (parents_add(d, drv, path, dl, err, sizeof(err)) < 0) {
            refuse(d, path, err);
        } else {
            umdev_log(&d->log, LOG_NOTICE,
                      "plug-in %s: parent %s, %zu type%s%s", path, drv->name,
                      drv->ntypes, drv->ntypes == 1 ? "" : "s",
                      d->opts.admit_any ? " (admission waived: --admit any)"
                                        : ", pending admission");
            loaded++;
        }
        free(names[i]);
    }
    return loaded;
}
