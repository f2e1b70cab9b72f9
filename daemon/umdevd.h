/*
 * umdevd internals shared by its files: options, the instance table, and
 * the functions each part offers the others.
 */
#ifndef UMDEVD_H
#define UMDEVD_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "parents.h"
#include "umdev/loop.h"
#include "mdev.h"
#include "umdev/umdev.h"

#define UMDEVD_PROTOCOL 1
#define UMDEVD_DEFAULT_RUNDIR "/run/umdev"
#define UMDEVD_DEFAULT_STATEDIR "/etc/umdev/devices"
#define UMDEVD_DEFAULT_GRACE_MS 5000
/* A worker must report ready within this time or the start fails. */
#define UMDEVD_START_TIMEOUT_MS 10000

/* Overrides of built-in pool capacities (`--pool PARENT.POOL=N`). */
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
    bool syslog;
    bool sandbox_log; /* workers' seccomp violations logged, not fatal */
    int log_level;
    struct pool_override pools[UMDEVD_MAX_POOL_OVERRIDES];
    size_t npools;
};

enum inst_state {
    ST_STOPPED,
    ST_STARTING,
    ST_RUNNING,
    ST_STOPPING,
    ST_FAILED,
};

struct ctl_conn;

/* A control request waiting for a worker event (ready, exit, info). */
struct pending {
    struct ctl_conn *conn; /* NULL once the client went away */
    struct json_object *id;
    int kind; /* PENDING_* */
};
enum { PENDING_START = 1, PENDING_STOP, PENDING_INFO };

struct daemon;

struct instance {
    struct daemon *daemon; /* back-pointer for loop callbacks */
    char uuid[MDEV_UUID_STR_LEN + 1];
    char parent[MDEV_NAME_MAX + 1];
    char type[2 * MDEV_NAME_MAX + 2];
    bool defined;    /* has a definition file */
    bool auto_start;
    uid_t uid;
    gid_t gid;
    mode_t mode;
    struct json_object *attrs; /* owned; never NULL */

    enum inst_state state;
    bool claimed; /* holds resources in the mdev registry */
    pid_t pid;
    int status_fd; /* supervisor end of the worker channel, -1 if none */
    int start_timer; /* timerfd bounding ST_STARTING, -1 if none */
    char sock_path[PATH_MAX];
    int exit_status, exit_signal; /* of the last worker, -1 if none */
    char exit_reason[160];
    struct pending pending;
    /* A leased transient instance lives as long as the control connection
     * that started it (the access path's queues): lease_conn is that
     * connection, NULL once it closed; lease_pid its peer. */
    bool lease;
    struct ctl_conn *lease_conn;
    pid_t lease_pid;
    struct instance *next;
};

struct daemon {
    struct daemon_opts opts;
    struct umdev_logger log;
    struct umdev_loop *loop;
    struct mdev *mdev;
    struct instance *instances;
    size_t ninstances;
    int control_fd;
    struct ctl_conn *conns;
    int signal_fd;
    bool stopping; /* SIGTERM received: stop everything, then exit */
};

/* supervisor.c */
struct instance *inst_find(struct daemon *d, const char *uuid);
int inst_new(struct daemon *d, const char *uuid, const char *type,
             struct instance **out, char *err, size_t errlen);
void inst_free(struct daemon *d, struct instance *inst);
int inst_start(struct daemon *d, struct instance *inst, char *err,
               size_t errlen);
int inst_stop(struct daemon *d, struct instance *inst, int grace_ms);
int inst_request_info(struct daemon *d, struct instance *inst);
const char *inst_state_name(enum inst_state s);
struct json_object *inst_to_json(const struct instance *inst);
void supervisor_reap(struct daemon *d);
/* Called by the supervisor when a pending request can be answered. */
void pending_complete(struct daemon *d, struct instance *inst, int err,
                      const char *msg, struct json_object *extra);

/* worker.c */
void worker_run(struct daemon *d, struct instance *inst, int listen_fd,
                int status_fd, int grace_ms) __attribute__((noreturn));

/* defs.c */
int defs_save(struct daemon *d, const struct instance *inst, char *err,
              size_t errlen);
int defs_remove(struct daemon *d, const struct instance *inst);
void defs_load_all(struct daemon *d);
int defs_apply_json(struct daemon *d, struct instance *inst,
                    struct json_object *obj, bool creating, char *err,
                    size_t errlen);

/* control.c */
int control_listen(struct daemon *d);
void control_close_all(struct daemon *d);
void control_send_response(struct ctl_conn *c, struct json_object *id,
                           int err, const char *msg,
                           struct json_object *result);
void control_conn_resume(struct daemon *d, struct ctl_conn *c);
/* The lessee of @inst went away: stop it, or forget it if it is down. */
void control_lease_end(struct daemon *d, struct instance *inst);

/* Helpers. */
int mkdir_p(const char *path, mode_t mode);
const char *errno_name(int err);

#endif /* UMDEVD_H */
