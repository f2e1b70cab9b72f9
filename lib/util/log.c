/* The logging entry point every module funnels through. */
#include <errno.h>
#include <stdio.h>

#include "umdev/umdev.h"

static const char *const level_names[] = {
    "emerg", "alert", "crit", "error", "warning", "notice", "info", "debug",
};

void
umdev_log_stderr(void *opaque, int level, const char *line)
{
    (void)opaque;
    if (level < 0 || level > LOG_DEBUG)
        level = LOG_ERR;
    fprintf(stderr, "umdev: %s: %s\n", level_names[level], line);
}

void
umdev_vlog(const struct umdev_logger *log, int level, const char *fmt,
           va_list ap)
{
    char line[1024];
    int saved = errno;
    int n = 0;

    if (log == NULL ? level > LOG_WARNING : level > log->max_level)
        goto out;
    if (log != NULL && log->prefix != NULL)
        n = snprintf(line, sizeof(line), "%s: ", log->prefix);
    if (n < 0 || (size_t)n >= sizeof(line))
        n = 0;
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
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
