/*
 * Small helpers every part of umdevd uses (umdevd.h "util.c").
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "umdevd.h"

int
mkdir_p(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    char *p;

    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return -ENAMETOOLONG;
    for (p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, mode) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static const struct {
    int err;
    const char *name;
} errno_names[] = {
    { EPERM, "EPERM" },
    { ENOENT, "ENOENT" },
    { EIO, "EIO" },
    { E2BIG, "E2BIG" },
    { ENOMEM, "ENOMEM" },
    { EACCES, "EACCES" },
    { EBUSY, "EBUSY" },
    { EEXIST, "EEXIST" },
    { EINVAL, "EINVAL" },
    { ENOSPC, "ENOSPC" },
    { ENAMETOOLONG, "ENAMETOOLONG" },
    { EALREADY, "EALREADY" },
    { EPROTONOSUPPORT, "EPROTONOSUPPORT" },
    { ETIMEDOUT, "ETIMEDOUT" },
    { ENOTSUP, "ENOTSUP" },
    { EAGAIN, "EAGAIN" },
    { EMFILE, "EMFILE" },
    { ENOBUFS, "ENOBUFS" },
    { ECANCELED, "ECANCELED" },
};

const char *
errno_name(int err)
{
    size_t i;

    if (err < 0)
        err = -err;
    for (i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
        if (errno_names[i].err == err)
            return errno_names[i].name;
    return "EUNKNOWN";
}

const char *
json_str(struct json_object *args, const char *key)
{
    struct json_object *v;

    if (args == NULL || !json_object_object_get_ex(args, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

int
json_only_keys(struct json_object *obj, const char *const *allowed,
               const char *what, char *err, size_t errlen)
{
    json_object_object_foreach(obj, key, val)
    {
        size_t i, used;

        (void)val;
        for (i = 0; allowed[i] != NULL; i++)
            if (strcmp(allowed[i], key) == 0)
                break;
        if (allowed[i] != NULL)
            continue;
        used = (size_t)snprintf(err, errlen, "unknown %s '%s' (allowed:",
                                what, key);
        for (i = 0; allowed[i] != NULL && used < errlen; i++)
            used += (size_t)snprintf(err + used, errlen - used, "%s %s",
                                     i ? "," : "", allowed[i]);
        if (used < errlen)
            snprintf(err + used, errlen - used, ")");
        return -EINVAL;
    }
    return 0;
}

int
channel_send(int fd, struct json_object *msg)
{
    const char *s = json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN);
    ssize_t n = send(fd, s, strlen(s), MSG_NOSIGNAL | MSG_DONTWAIT);

    return n < 0 ? -errno : 0;
}

ssize_t
send_with_fd(int sock, const void *buf, size_t len, int pass)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    struct msghdr mh = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = u.buf,
        .msg_controllen = sizeof(u.buf),
    };
    struct cmsghdr *cm;

    memset(&u, 0, sizeof(u));
    cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &pass, sizeof(int));
    return sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
}

int
channel_send_fd(int fd, struct json_object *msg, int pass)
{
    const char *s = json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN);

    return send_with_fd(fd, s, strlen(s), pass) < 0 ? -errno : 0;
}

int
full_type_name(const char *parent, const char *type, char *out, size_t len)
{
    size_t plen = strlen(parent);
    int n;

    if (strncmp(type, parent, plen) == 0 && type[plen] == '-')
        n = snprintf(out, len, "%s", type);
    else
        n = snprintf(out, len, "%s-%s", parent, type);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}
