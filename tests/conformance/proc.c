/*
 * The server process as the kit sees it from outside: its PID (given,
 * reported by the daemon, or the socket's SO_PEERCRED), its descriptors,
 * mappings and resident memory from /proc, and, for an instance run by
 * umdevd, the daemon's counters through `umdevctl --json info UUID`.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "conform.h"

/* umdevctl's answer is small; more is not an answer. */
#define INFO_MAX_BYTES (256 * 1024)

int
cf_find_server_pid(struct conform *cf, char *err, size_t errlen)
{
    struct cf_daemon_info di;

    if (cf->server_pid > 0) {
        cf->pid_source = "--server-pid";
        return 0;
    }
    if (cf->daemon_uuid != NULL) {
        if (cf_daemon_info(cf, &di, err, errlen) < 0)
            return -EIO;
        if (di.pid <= 0) {
            snprintf(err, errlen, "umdevctl info reports no worker pid");
            return -ESRCH;
        }
        cf->server_pid = di.pid;
        cf->pid_source = "umdevctl info";
        return 0;
    }
    if (cf->peercred_pid > 0) {
        cf->server_pid = cf->peercred_pid;
        cf->pid_source = "SO_PEERCRED";
        return 0;
    }
    snprintf(err, errlen, "no server pid (SO_PEERCRED gave none)");
    return -ESRCH;
}

int
cf_proc_fd_count(pid_t pid)
{
    char path[64];
    struct dirent *e;
    DIR *d;
    int n = 0;

    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    d = opendir(path);
    if (d == NULL)
        return -errno;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* /proc/@pid/@name, opened for reading; NULL with errno set. */
static FILE *
proc_open(pid_t pid, const char *name)
{
    char path[64];

    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
    return fopen(path, "re");
}

int
cf_proc_map_count(pid_t pid)
{
    FILE *f = proc_open(pid, "maps");
    char line[512];
    int n = 0;

    if (f == NULL)
        return -errno;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strchr(line, '\n') != NULL)
            n++;
    fclose(f);
    return n;
}

long
cf_proc_rss_kib(pid_t pid)
{
    FILE *f = proc_open(pid, "status");
    long kib = -ENOENT;
    char line[256];

    if (f == NULL)
        return -errno;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

bool
cf_proc_alive(pid_t pid)
{
    FILE *f = proc_open(pid, "stat");
    char buf[512], *p;
    size_t n;

    if (f == NULL)
        return false;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* "pid (comm) S ...": the state follows the last ')'. */
    p = strrchr(buf, ')');
    return p != NULL && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

/* Run umdevctl and collect its stdout within the kit's timeout. */
static int
run_umdevctl(const struct conform *cf, char **out, char *err, size_t errlen)
{
    const char *prog = cf->umdevctl != NULL ? cf->umdevctl : "umdevctl";
    double deadline = cf_now() + cf->timeout_ms / 1000.0;
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    int pfd[2], status = 0;
    pid_t pid;

    *out = NULL;
    if (buf == NULL || pipe2(pfd, O_CLOEXEC) < 0) {
        free(buf);
        snprintf(err, errlen, "cannot run %s: %s", prog, strerror(errno));
        return -EIO;
    }
    pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(pfd[0]);
        close(pfd[1]);
        free(buf);
        return -EIO;
    }
    if (pid == 0) {
        dup2(pfd[1], STDOUT_FILENO);
        execlp(prog, prog, "--json", "info", cf->daemon_uuid, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    for (;;) {
        struct pollfd p = { .fd = pfd[0], .events = POLLIN };
        double left = (deadline - cf_now()) * 1000.0;
        ssize_t n;

        if (left <= 0 || poll(&p, 1, (int)left + 1) <= 0) {
            kill(pid, SIGKILL);
            break;
        }
        if (len + 1 >= cap) {
            char *nb = cap >= INFO_MAX_BYTES ? NULL : realloc(buf, cap * 2);

            if (nb == NULL) {
                kill(pid, SIGKILL);
                break;
            }
            buf = nb;
            cap *= 2;
        }
        n = read(pfd[0], buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(pfd[0]);
    buf[len] = '\0';
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        snprintf(err, errlen, "%s --json info %s failed (%s %d)", prog,
                 cf->daemon_uuid, WIFEXITED(status) ? "exit status" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        free(buf);
        return -EIO;
    }
    *out = buf;
    return 0;
}

static uint64_t
counter(struct json_object *counters, const char *key)
{
    struct json_object *v;

    if (counters == NULL || !json_object_object_get_ex(counters, key, &v))
        return 0;
    return json_object_get_uint64(v);
}

int
cf_daemon_info(const struct conform *cf, struct cf_daemon_info *out, char *err,
               size_t errlen)
{
    struct json_object *root, *inst, *dev, *counters = NULL, *v;
    char *text;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = run_umdevctl(cf, &text, err, errlen);
    if (rc < 0)
        return rc;
    root = json_tokener_parse(text);
    free(text);
    if (root == NULL || !json_object_object_get_ex(root, "instance", &inst)) {
        snprintf(err, errlen, "umdevctl info: no \"instance\" in its answer");
        json_object_put(root);
        return -EPROTO;
    }
    if (json_object_object_get_ex(inst, "pid", &v))
        out->pid = (pid_t)json_object_get_int(v);
    if (json_object_object_get_ex(root, "device", &dev))
        json_object_object_get_ex(dev, "counters", &counters);
    if (counters == NULL) {
        snprintf(err, errlen, "umdevctl info: no device counters");
        json_object_put(root);
        return -EPROTO;
    }
    out->msgs = counter(counters, "msgs");
    out->errors = counter(counters, "errors");
    out->region_reads = counter(counters, "region_reads");
    out->region_writes = counter(counters, "region_writes");
    json_object_put(root);
    return 0;
}
