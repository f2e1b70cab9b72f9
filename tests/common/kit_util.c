/* The test kit's small helpers: see kit_util.h. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "kit_util.h"

int64_t
kit_now_ms(void)
{
    return kit_now_ns() / 1000000;
}

int64_t
kit_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

int
kit_left_ms(int64_t deadline)
{
    int64_t left = deadline - kit_now_ms();

    if (left < 0)
        return 0;
    return left > INT32_MAX ? INT32_MAX : (int)left;
}

int
kit_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -errno;
    /* "." and "..", then one entry a descriptor. */
    for (e = readdir(d); e != NULL; e = readdir(d))
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

void
kit_fill_rand(uint8_t *p, size_t n, uint32_t seed)
{
    size_t i;

    for (i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

uint32_t
kit_crc32c(uint32_t crc, const void *p, size_t n)
{
    const uint8_t *b = p;
    size_t i;
    int k;

    /* Preset to all ones and inverted at the end (RFC 3720 B.4). */
    crc = ~crc;
    for (i = 0; i < n; i++) {
        crc ^= b[i];
        for (k = 0; k < 8; k++)
            crc = (crc & 1) ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
    }
    return ~crc;
}

int
kit_connect_unix(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd, err;

    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

void
kit_say(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void
log_line(void *opaque, int level, const char *line)
{
    struct kit_log *l = opaque;
    const char *watch = atomic_load(&l->watch);

    if (level <= LOG_WARNING)
        atomic_fetch_add(&l->warnings, 1);
    if (watch != NULL && strstr(line, watch) != NULL)
        atomic_fetch_add(&l->watched, 1);
    if (l->print)
        fprintf(stderr, "<%d> %s\n", level, line);
}

void
kit_log_init(struct kit_log *l, const char *prefix, const char *env)
{
    l->logger = (struct umdev_logger){
        .fn = log_line,
        .opaque = l,
        .max_level = LOG_DEBUG,
        .prefix = prefix,
    };
    atomic_store(&l->warnings, 0);
    atomic_store(&l->watch, NULL);
    atomic_store(&l->watched, 0);
    l->print = env != NULL && getenv(env) != NULL;
}

void
kit_log_watch(struct kit_log *l, const char *text)
{
    atomic_store(&l->watch, NULL);
    atomic_store(&l->watched, 0);
    atomic_store(&l->watch, text);
}
