/*
 * `umdevctl audit --conformance`: start a private transient instance of
 * the audited type owned by the caller, run the conformance kit
 * (umdev-conform) against it with the type's own profile, stop it
 * whatever happened, and hand the kit's verdicts back for the second
 * audit (verbs.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "umdevctl.h"
#include "tool.h"

/* Bound on one conformance run beyond its fuzz time (seconds). */
#define AUDIT_KIT_MARGIN_S 180

/*
 * Where umdev-conform is: next to this umdevctl (where `cmake --install`
 * puts both), else $UMDEV_CONFORM. Return: 0 with @out filled, or -1.
 */
static int
find_conform(char *out, size_t len, char *self, size_t selflen)
{
    const char *env = getenv("UMDEV_CONFORM");
    ssize_t n = readlink("/proc/self/exe", self, selflen - 1);
    char *slash;

    if (n > 0) {
        self[n] = '\0';
        slash = strrchr(self, '/');
        if (slash != NULL &&
            snprintf(out, len, "%.*s/umdev-conform", (int)(slash - self),
                     self) < (int)len &&
            access(out, X_OK) == 0)
            return 0;
    } else {
        /* The kit then finds umdevctl on PATH. */
        snprintf(self, selflen, "umdevctl");
    }
    if (env != NULL && env[0] != '\0' && access(env, X_OK) == 0) {
        snprintf(out, len, "%s", env);
        return 0;
    }
    fprintf(stderr,
            "umdevctl audit: umdev-conform is neither next to umdevctl (%s) "
            "nor named by UMDEV_CONFORM%s%s\n",
            self, env ? ": not executable: " : "", env ? env : "");
    return -1;
}

/* What the kit runs against: the instance, the type's profile, and the
 * plug-in the type comes from ("" for a built-in parent). */
struct kit_target {
    const char *sock, *uuid, *profile, *type, *plugin;
};

/*
 * Run the kit against @t with its arguments, collecting its JSON on
 * stdout. Return: the parsed array (caller puts it), or NULL after a
 * message.
 */
static struct json_object *
run_kit(struct cli *c, const char *conform, const char *self,
        const struct kit_target *t, const char *fuzz)
{
    double deadline = tool_now_s() + AUDIT_KIT_MARGIN_S + atol(fuzz);
    struct json_object *kit = NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int p[2] = { -1, -1 }, status = 0;
    bool killed = false;
    pid_t pid = -1;

    if (pipe2(p, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
        perror("umdevctl audit: cannot run the kit");
        if (p[0] >= 0) {
            close(p[0]);
            close(p[1]);
        }
        return NULL;
    }
    if (pid == 0) {
        const char *argv[] = {
            conform,
            t->sock,
            "--json",
            "--profile",
            t->profile,
            "--daemon-uuid",
            t->uuid,
            "--umdevctl",
            self,
            "--fuzz-seconds",
            fuzz,
            /* Each check on stderr as it starts: the run takes a while. */
            "--progress",
            /* A plug-in's type is driven by the plug-in's exercise();
             * for a built-in parent the list ends here. */
            t->plugin[0] ? "--plugin" : NULL,
            t->plugin,
            "--type",
            t->type,
            NULL,
        };

        /* The kit reads counters with `umdevctl info` of this daemon. */
        setenv("UMDEV_CONTROL", c->control, 1);
        dup2(p[1], STDOUT_FILENO);
        execv(conform, (char *const *)argv);
        fprintf(stderr, "umdevctl audit: cannot run %s: %s\n", conform,
                strerror(errno));
        _exit(127);
    }
    close(p[1]);
    for (;;) {
        struct pollfd pfd = { .fd = p[0], .events = POLLIN };
        bool late = tool_now_s() > deadline;
        ssize_t n;

        if (cli_interrupted || late) {
            fprintf(stderr, "umdevctl audit: %s; stopping the kit\n",
                    cli_interrupted ? "interrupted" : "the kit ran too long");
            kill(pid, SIGKILL);
            killed = true;
            break;
        }
        /* The tick bounds how late a signal that came just before the
         * poll, or the deadline, is noticed. */
        if (poll(&pfd, 1, 1000) <= 0)
            continue;
        if (len + 4096 > cap) {
            char *b = realloc(buf, cap ? cap * 2 : 65536);

            if (b == NULL)
                break;
            buf = b;
            cap = cap ? cap * 2 : 65536;
        }
        n = read(p[0], buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(p[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!killed && buf != NULL) {
        buf[len] = '\0';
        kit = json_tokener_parse(buf);
    }
    free(buf);
    if (killed)
        ;
    else if (!WIFEXITED(status) || WEXITSTATUS(status) > 1)
        fprintf(stderr,
                "umdevctl audit: umdev-conform failed (%s %d); see "
                "its messages above\n",
                WIFEXITED(status) ? "exit status" : "signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    else if (kit == NULL || !json_object_is_type(kit, json_type_array))
        fprintf(stderr, "umdevctl audit: umdev-conform printed no JSON "
                        "array\n");
    else
        return kit;
    json_object_put(kit);
    return NULL;
}

/* The plug-in @type comes from, into @out ("" for a built-in parent).
 * Return: 0, or -1 after a message. */
static int
plugin_of(struct cli *c, const char *parent, const char *type, char *out,
          size_t len)
{
    struct json_object *args = json_object_new_object(), *r = NULL, *types;
    size_t i;

    out[0] = '\0';
    json_object_object_add(args, "parent", json_object_new_string(parent));
    if (cli_call(c, "types", args, &r) != 0)
        return -1;
    types = json_object_object_get(r, "types");
    for (i = 0; i < json_object_array_length(types); i++) {
        struct json_object *t = json_object_array_get_idx(types, i);

        if (strcmp(cli_jstr(t, "name", ""), type) == 0)
            snprintf(out, len, "%s", cli_jstr(t, "plugin", ""));
    }
    json_object_put(r);
    return 0;
}

/*
 * --conformance: a private transient instance of the type owned by the
 * caller, the kit against it with the type's own profile, then stopped
 * whatever happened. Return: the kit's array, or NULL after a message.
 */
struct json_object *
cli_conformance_run(struct cli *c, struct json_object *first, const char *fuzz)
{
    char conform[PATH_MAX], self[PATH_MAX],
        profile[] = "/tmp/umdevctl-profile-XXXXXX";
    struct json_object *doc = json_object_object_get(first, "audit");
    struct json_object *prof = json_object_object_get(doc, "profile");
    struct json_object *args, *r = NULL, *inst, *kit = NULL;
    struct sigaction sa = { .sa_handler = cli_on_interrupt }, oi, ot;
    char uuid[64], sock[PATH_MAX], plugin[PATH_MAX];
    struct kit_target t = {
        .sock = sock, .uuid = uuid, .profile = profile, .plugin = plugin
    };
    int fd;

    if (find_conform(conform, sizeof(conform), self, sizeof(self)) < 0)
        return NULL;
    t.type = cli_jstr(first, "type", "");
    if (plugin_of(c, cli_jstr(first, "parent", ""), t.type, plugin,
                  sizeof(plugin)) < 0)
        return NULL;
    if (prof == NULL) {
        fprintf(stderr, "umdevctl audit: the type declares no profile; the "
                        "kit has nothing to check it against\n");
        return NULL;
    }
    fd = mkstemp(profile);
    if (fd < 0 || json_object_to_fd(fd, prof, JSON_C_TO_STRING_PLAIN) < 0) {
        perror("umdevctl audit: profile file");
        if (fd >= 0) {
            close(fd);
            unlink(profile);
        }
        return NULL;
    }
    close(fd);
    args = json_object_new_object();
    json_object_object_add(
        args, "parent", json_object_new_string(cli_jstr(first, "parent", "")));
    json_object_object_add(args, "type",
                           json_object_new_string(cli_jstr(first, "type", "")));
    if (getuid() != 0) {
        /* The kit connects as us: the socket and host ends must be ours. */
        struct json_object *own = json_object_new_object();

        json_object_object_add(own, "uid", json_object_new_int64(getuid()));
        json_object_object_add(own, "gid", json_object_new_int64(getgid()));
        json_object_object_add(args, "owner", own);
    }
    if (cli_call(c, "start", args, &r) != 0) {
        unlink(profile);
        return NULL;
    }
    inst = json_object_object_get(r, "instance");
    snprintf(uuid, sizeof(uuid), "%s", cli_jstr(inst, "uuid", ""));
    snprintf(sock, sizeof(sock), "%s", cli_jstr(inst, "socket", ""));
    json_object_put(r);
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &oi);
    sigaction(SIGTERM, &sa, &ot);
    kit = run_kit(c, conform, self, &t, fuzz);
    sigaction(SIGINT, &oi, NULL);
    sigaction(SIGTERM, &ot, NULL);
    unlink(profile);
    args = json_object_new_object();
    json_object_object_add(args, "uuid", json_object_new_string(uuid));
    json_object_object_add(args, "grace_ms", json_object_new_int(0));
    if (cli_call(c, "stop", args, &r) == 0)
        json_object_put(r);
    else
        fprintf(stderr, "umdevctl audit: could not stop instance %s\n", uuid);
    if (cli_interrupted) {
        json_object_put(kit);
        return NULL;
    }
    return kit;
}
