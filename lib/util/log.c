/* The logging entry point every module funnels through. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "umdev/umdev.h"

static const char *const level_names[] = {
    "emerg", "alert", "crit", "error", "warning", "notice", "info", "debug",
};

/*
 * systemd connects a service's stderr to journald and names that stream
 * in $JOURNAL_STREAM ("DEVICE:INODE"). The variable is inherited by
 * whatever the service runs, stderr redirected or not, so only a stderr
 * with exactly that device and inode is the journal. Checked on each
 * call: the library keeps no global state, and a log line is rare enough
 * for one getenv() and fstat().
 */
int
umdev_log_stderr_is_journal(void)
{
    const char *env = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    int end = 0;

    if (env == NULL || sscanf(env, "%llu:%llu%n", &dev, &ino, &end) != 2 ||
        env[end] != '\0')
        return 0;
    return fstat(STDERR_FILENO, &st) == 0 &&
           (unsigned long long)st.st_dev == dev &&
           (unsigned long long)st.st_ino == ino;
}

void
umdev_log_stderr(void *opaque, int level, const char *line)
{
    (void)opaque;
    if (level < 0 || level > LOG_DEBUG)
        level = LOG_ERR;
    /* journald reads a leading "<N>" as the line's priority and adds the
     * time and the unit's name itself. */
    if (umdev_log_stderr_is_journal())
        fprintf(stderr, "<%d>%s\n", level, line);
    else
        fprintf(stderr, "umdev: %s: %s\n", level_names[level], line);
}

size_t
umdev_utf8_len(const unsigned char *p)
{
    size_t n, i;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        n = 2;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        n = 3;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        n = 4;
    else
        return 0;
    for (i = 1; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) ||
        (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))
        return 0;
    return n;
}

/*
 * Copy @in to @out (@outlen bytes) with every control character (C0,
 * DEL, and C1 as UTF-8) and every byte that is not UTF-8 written as
 * \xNN: a message carries strings from devices, definitions and peers
 * (paths, names), and one log call must stay one line that cannot drive
 * a terminal. Cut at a whole character or escape when @out is full.
 */
static void
escape_line(const char *in, char *out, size_t outlen)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t o = 0;

    while (*p != '\0') {
        size_t n, i, need, run = 0;
        bool ctl;

        /* Printable ASCII, nearly all of every line, goes as one run:
         * testing it byte by byte as below is a measurable share of
         * what a fuzz target's input costs (each comparison traced). */
        while ((unsigned char)(p[run] - 0x20) < 0x5f)
            run++;
        if (run > 0) {
            if (run >= outlen - o)
                run = outlen - o - 1;
            memcpy(out + o, p, run);
            o += run;
            p += run;
            if (o + 1 >= outlen)
                break;
            continue;
        }
        n = umdev_utf8_len(p);
        ctl =
            *p < 0x20 || *p == 0x7f || n == 0 || (p[0] == 0xc2 && p[1] < 0xa0);
        need = ctl ? 4 * (n ? n : 1) : n;
        if (o + need >= outlen)
            break;
        if (!ctl) {
            memcpy(out + o, p, n);
            o += n;
            p += n;
            continue;
        }
        for (i = 0; i < (n ? n : 1); i++, p++)
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", *p);
    }
    out[o] = '\0';
}

void
umdev_vlog(const struct umdev_logger *log, int level, const char *fmt,
           va_list ap)
{
    char line[1024], text[1024];
    int saved = errno;
    int n = 0;

    if (log == NULL ? level > LOG_WARNING : level > log->max_level)
        goto out;
    if (log != NULL && log->prefix != NULL)
        n = snprintf(line, sizeof(line), "%s: ", log->prefix);
    if (n < 0 || (size_t)n >= sizeof(line))
        n = 0;
    vsnprintf(text, sizeof(text), fmt, ap);
    escape_line(text, line + n, sizeof(line) - (size_t)n);
    if (log != NULL && log->fn != NULL)
        log->fn(log->opaque, level, line);
    else
        umdev_log_stderr(NULL, level, line);
out:
    errno = saved;
}

void
umdev_log(const struct umdev_logger *log, int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    umdev_vlog(log, level, fmt, ap);
    va_end(ap);
}
