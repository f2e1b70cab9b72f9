/*
 * umdevd's shared vocabulary: options, the daemon object, the instance
 * record and its states, and small helpers (util.c). Each concern has its
 * own file and header above this one; tests/layers/check_layers.py holds
 * them to this order, lowest first:
 *
 *   umdevd.h/util.c   this vocabulary
 *   parents.c         the parent drivers (built in and plug-ins) and their
 *   plugins.c         pools, types and admission verdicts
 *   sandbox.c         the workers' seccomp filter
 *   defs.c            persistent definitions: files in, files out
 *   worker.c          the forked process serving one instance
 *   callouts.c        mdevctl's callout scripts, run as watched children
 *   supervisor.c      instance states, workers, leases (alone changes them)
 *   audit_job.c       `audit` requests in child processes
 *   admission.c       the plug-in admission gate
 *   handlers.c        the control commands
 *   control.c         the control socket: connections, framing, parking
 *   umdevd.c          options, start-up, signals
 *
 * A lower file never calls a higher one; results travel up through the
 * callbacks in struct daemon_hooks, which the higher files install.
 */
#ifndef UMDEVD_H
#define UMDEVD_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "mdev.h"
#include "umdev/loop.h"
#include "umdev/umdev.h"

#define UMDEVD_PROTOCOL 1
#define UMDEVD_DEFAULT_RUNDIR "/run/umdev"
#define UMDEVD_DEFAULT_STATEDIR "/var/lib/umdev/devices"
#define UMDEVD_DEFAULT_GRACE_MS 5000
/* Who workers of root-owned instances run as when it exists; else
 * nobody (docs/SANDBOX.md). */
#define UMDEVD_DEFAULT_WORKER_USER "umdev"
/* A worker must report ready within this time or the start fails. */
#define UMDEVD_START_TIMEOUT_MS 10000
/* How long one callout script may run before it is killed (a veto when
 * it was asked before the action), unless --callout-timeout says. */
#define UMDEVD_DEFAULT_CALLOUT_TIMEOUT_S 30
#define UMDEVD_MAX_CALLOUT_TIMEOUT_S 3600

/* The secret of a worker's record, in bytes (hex in the record). */
#define UMDEVD_TOKEN_BYTES 32
/* RUNDIR/WORKERS_DIR holds the workers' records and adoption sockets:
 * umdevd's user's alone (0700). */
#define UMDEVD_WORKERS_DIR "workers"
/* How long a starting umdevd waits for one worker to answer its
 * adoption request. */
#define UMDEVD_ADOPT_TIMEOUT_MS 5000

/* How long `umdevd --upgrade` waits for the old umdevd to exit. */
#define UMDEVD_UPGRADE_TIMEOUT_MS 60000

/* Overrides of pool capacities (`--pool PARENT.POOL=N`). */
#define UMDEVD_MAX_POOL_OVERRIDES 16

struct pool_override {
    char parent[MDEV_NAME_MAX + 1];
    char pool[MDEV_NAME_MAX + 1];
    uint32_t capacity;
};

struct daemon_opts {
    char rundir[PATH_MAX];
    char statedir[PATH_MAX];
    char control[PATH_MAX];
    gid_t manage_gid; /* (gid_t)-1: root only */
    /* Who workers of root-owned instances run as (docs/SANDBOX.md): a
     * root daemon resolves it at start-up and never lets it be root. */
    char worker_user[64]; /* "" for the default */
    uid_t worker_uid;
    gid_t worker_gid;
    bool syslog;
    bool sandbox_log; /* workers' seccomp violations logged, not fatal */
    int log_level;
    struct pool_override pools[UMDEVD_MAX_POOL_OVERRIDES];
    size_t npools;
    /* Parent plug-ins (docs/PLUGINS.md): the directory they are loaded
     * from ("" for none), whether they need admission, and what runs it. */
    char plugin_dir[PATH_MAX];
    bool admit_any;
    char umdevctl[PATH_MAX];
    unsigned int admit_fuzz_seconds;
    /* mdevctl's callout and notifier scripts (callouts.h): their
     * directories ("" for none) and how long each may run. */
    char callout_dir[PATH_MAX];
    char notifier_dir[PATH_MAX];
    unsigned int callout_timeout_s;
    /* --upgrade: have the umdevd serving the control socket hand over
     * (SIGUSR2) and take its place. */
    bool upgrade;
};

enum inst_state {
    ST_STOPPED,
    ST_STARTING,
    ST_RUNNING,
    ST_STOPPING,
    ST_FAILED,
};

/* What an instance is, as its definition (or a transient start) says. */
struct inst_config {
    char uuid[MDEV_UUID_STR_LEN + 1];
    char parent[MDEV_NAME_MAX + 1];
    char type[2 * MDEV_NAME_MAX + 2];
    bool auto_start;
    uid_t uid;
    gid_t gid;
    mode_t mode;
    struct json_object *attrs; /* owned; never NULL */
};

/* A request waiting for a worker event (ready, exit, info reply). Start
 * and stop hold an instance's one request slot; info (reads) never do. */
enum inst_request { REQ_NONE, REQ_START, REQ_STOP, REQ_INFO, REQ_RESTART };

struct daemon;
struct info_reader;

struct instance {
    struct daemon *daemon;  /* back-pointer for loop callbacks */
    struct inst_config cfg; /* the definition (or the transient start) */
    bool defined;           /* has a definition file */
    /* What the worker was started with, while one is there (starting,
     * running, stopping): a modify changes cfg only, and what is live
     * must still be reported as it is (docs/CONTROL.md "pending"). Its
     * attrs are a copy of their own; NULL when no worker is there. */
    struct inst_config live;

    enum inst_state state;
    bool claimed; /* holds resources in the mdev registry */
    /* What its attributes claimed on top of its type's costs while it
     * runs (parents_claim()); pool names borrowed from the driver. */
    struct mdev_cost attr_claims[MDEV_MAX_COSTS];
    size_t nattr_claims;
    pid_t pid;
    int status_fd;    /* supervisor end of the worker channel, -1 if none */
    int64_t deadline; /* loop timer bounding a worker reply, 0 if none */
    char sock_path[PATH_MAX];
    int exit_status, exit_signal; /* of the last worker, -1 if none */
    char exit_reason[256];
    /* Who waits for the request in progress (opaque to the supervisor:
     * the handlers' record), and which request it is. */
    void *waiter;
    enum inst_request request;
    /* Reads (info, stats) waiting for the worker's info reply, oldest
     * first; one info request at a time is on the channel for all of
     * them. A reader that waits too long gets an error, the worker is
     * left alone. */
    struct info_reader *readers;
    bool info_asked;    /* an info request awaits its reply */
    bool screen_asked;  /* a screen request awaits its reply */
    int64_t info_timer; /* the oldest reader's time limit, 0 if none */
    /* A leased transient instance lives as long as its lessee (the
     * control connection that started it: the access path's queues);
     * lessee is NULL once that connection closed. */
    bool lease;
    void *lessee;
    pid_t lease_pid;
    /* Stopped with "keep_data" (umdevctl migrate: the instance moved, and
     * its data, a backing file, is the destination's now): a transient
     * instance's data is not removed when it goes. */
    bool keep_data;
    /* The worker's record (RUNDIR/workers/<uuid>.json, supervisor.h
     * "Surviving umdevd"): written once it is forked, it lets a later
     * umdevd prove and adopt the worker. @token is the secret the worker
     * checks; @start_time its /proc/PID/stat start time, so that a
     * recycled pid is never taken for it. */
    bool recorded;
    char token[2 * UMDEVD_TOKEN_BYTES + 1];
    unsigned long long start_time;
    /* Adopted from an earlier umdevd: not this daemon's child, so its
     * exit is heard on @pidfd, not through SIGCHLD. */
    bool adopted;
    int pidfd;
    /* Left running for the next umdevd (upgrade): its data stays. */
    bool detached;
    /* A restart in progress (inst_restart()): the new worker's pid (0
     * when none runs), its channel (-1), the token its record gets, the
     * loop timer bounding the whole, and why it failed if it did. */
    pid_t restart_pid;
    int restart_fd;
    char restart_token[2 * UMDEVD_TOKEN_BYTES + 1];
    int64_t restart_timer;
    char restart_reason[256];
    struct instance *next;
};

/*
 * How results travel up: the supervisor and the audit jobs report to the
 * handlers, the handlers answer through the control socket. Each hook is
 * installed by the layer that implements it.
 */
struct daemon_hooks {
    /* supervisor -> handlers: request @req, which @waiter waited for, is
     * done (@extra: the worker's reply, for info). */
    void (*request_done)(struct daemon *d, struct instance *inst, void *waiter,
                         enum inst_request req, int err, const char *msg,
                         struct json_object *extra);
    /* supervisor -> handlers: the worker's screen reply @extra for
     * @waiter, with the descriptor of the memory the screen lies in
     * (@fd, borrowed; -1 with an error). */
    void (*screen_done)(struct daemon *d, struct instance *inst, void *waiter,
                        int err, const char *msg, struct json_object *extra,
                        int fd);
    /* handlers -> control: as respond, the answer carrying descriptor
     * @fd (taken). */
    void (*respond_fd)(struct daemon *d, void *conn, struct json_object *id,
                       int err, const char *msg, struct json_object *result,
                       int fd);
    /* handlers -> control: answer request @id parked on connection @conn
     * and resume reading it. Takes @result. */
    void (*respond)(struct daemon *d, void *conn, struct json_object *id,
                    int err, const char *msg, struct json_object *result);
    /* admission -> start-up: plug-in type @type passed its audit, so its
     * definitions marked auto may start now. */
    void (*admitted)(struct daemon *d, const char *type);
};

struct parents;
struct admission;
struct control;
struct waiter;
struct callout_run;

struct daemon {
    struct daemon_opts opts;
    struct umdev_logger log;
    struct umdev_loop *loop;
    struct mdev *mdev;
    struct parents *parents;
    struct admission *admission;
    struct instance *instances;
    size_t ninstances;
    struct daemon_hooks hooks;
    struct control *control;
    struct waiter *waiters;           /* parked requests (handlers.c) */
    struct callout_run *callout_runs; /* callouts.c */
    /* Auto-starts whose pre callouts still run: they count as starting
     * for systemd's READY=1. */
    unsigned int auto_pending;
    int signal_fd;
    bool stopping; /* SIGTERM received: stop everything, then exit */
    /* SIGUSR2 (umdevd --upgrade): leave the workers running for the next
     * umdevd, then exit. */
    bool upgrading;
    /* RUNDIR/workers is this daemon's (checked at start): it may remove
     * it at exit. */
    bool workers_dir;
    /* The channel to the cleanup process (supervisor.c), valid when
     * has_cleanup: it removes what this daemon leaves behind if it is
     * killed outright. */
    bool has_cleanup;
    int cleanup_fd;
    /* What a restart (inst_restart()) execs for the new worker: the
     * umdevd file as resolved at start-up (its path, so that an upgraded
     * package's binary is the one that runs) and this daemon's
     * arguments, so the new worker sees the same options. */
    char exe[PATH_MAX];
    int argc;
    char **argv;
};

/* util.c */
int mkdir_p(const char *path, mode_t mode);
const char *errno_name(int err);
/* The argument @key of @args if it is a string, else NULL. */
const char *json_str(struct json_object *args, const char *key);
/* Every key of object @obj is one of @allowed (NULL-terminated); else
 * -EINVAL with @err "unknown WHAT 'KEY' (allowed: ...)". */
int json_only_keys(struct json_object *obj, const char *const *allowed,
                   const char *what, char *err, size_t errlen);
/* Send one JSON message on a SOCK_SEQPACKET channel, without blocking.
 * Return: 0 or -errno. */
int channel_send(int fd, struct json_object *msg);
/* The same with descriptor @pass attached (the caller keeps its copy). */
int channel_send_fd(int fd, struct json_object *msg, int pass);
/* send() of @len bytes with descriptor @pass attached to the first
 * (SCM_RIGHTS), without blocking; as sendmsg() returns. */
ssize_t send_with_fd(int sock, const void *buf, size_t len, int pass);
/* Normalise the type @type names for @parent: "2port" and
 * "serial-2port" both give "serial-2port". Return: 0 or -ENAMETOOLONG. */
int full_type_name(const char *parent, const char *type, char *out, size_t len);

#endif /* UMDEVD_H */
