/*
 * The admission gate (admission.h). For each pending plug-in type, in
 * registration order, one at a time: fork and exec
 *
 *     umdevctl --control CONTROL --json audit TYPE --conformance
 *              --fuzz-seconds N
 *
 * collect its stdout (the audit document) and stderr (why it could not
 * run), bounded in size and time (child.c), and turn the document into the
 * type's verdict: admitted when every criterion passed, refused otherwise,
 * with the failed criteria and their evidence. An audit that cannot run
 * refuses the type too: nothing unaudited is offered.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admission.h"
#include "child.h"
#include "parents.h"

struct admission {
    struct daemon *d;
    struct parent_type *type; /* the one being audited, or NULL */
    const struct parent_entry *entry;
    struct child *child; /* the audit's umdevctl: the only peer that may
                          * use a pending type */
};

static void run_next(struct daemon *d);

int
admission_create(struct daemon *d)
{
    struct admission *a = calloc(1, sizeof(*a));

    if (a == NULL)
        return -ENOMEM;
    a->d = d;
    d->admission = a;
    return 0;
}

/* Forget the audit in progress (killing it if it still runs). */
static void
reset(struct admission *a)
{
    child_cancel(a->child);
    a->child = NULL;
    a->type = NULL;
    a->entry = NULL;
}

void
admission_destroy(struct daemon *d)
{
    if (d->admission == NULL)
        return;
    reset(d->admission);
    free(d->admission);
    d->admission = NULL;
}

bool
admission_peer_may_use(struct daemon *d, const char *type, pid_t pid)
{
    const struct admission *a = d->admission;

    return a != NULL && a->child != NULL && pid > 0 &&
           child_pid(a->child) == pid && strcmp(a->type->name, type) == 0;
}

/* Append "; " and @s to @t's verdict, cutting it short rather than
 * overflowing. */
static void
verdict_add(struct parent_type *t, const char *s)
{
    size_t used = strlen(t->verdict);

    snprintf(t->verdict + used, sizeof(t->verdict) - used, "%s%s",
             used ? "; " : "", s);
}

/* The audit document's criteria into @t's verdict. Return: true when
 * every criterion passed. */
static bool
judge(struct parent_type *t, struct json_object *doc)
{
    struct json_object *crit = NULL;
    bool pass;
    size_t i, n;

    pass = json_str(doc, "verdict") != NULL &&
           strcmp(json_str(doc, "verdict"), "pass") == 0;
    if (!json_object_object_get_ex(doc, "criteria", &crit) ||
        !json_object_is_type(crit, json_type_array))
        return false;
    n = json_object_array_length(crit);
    for (i = 0; i < n; i++) {
        struct json_object *c = json_object_array_get_idx(crit, i), *id = NULL;
        const char *v = json_str(c, "verdict");
        char line[1024];

        if (v != NULL && strcmp(v, "pass") == 0)
            continue;
        json_object_object_get_ex(c, "id", &id);
        snprintf(line, sizeof(line), "criterion %d (%s) %s: %s",
                 json_object_get_int(id),
                 json_str(c, "name") ? json_str(c, "name") : "?",
                 v != NULL && strcmp(v, "not run") == 0 ? "did not run"
                                                        : "failed",
                 json_str(c, "evidence") ? json_str(c, "evidence") : "");
        verdict_add(t, line);
    }
    if (pass)
        snprintf(t->verdict, sizeof(t->verdict),
                 "all %zu criteria passed (umdevctl audit %s --conformance)", n,
                 t->name);
    return pass && n > 0;
}

/* Keep @pass as the verdict of the type being audited, then audit the
 * next one. */
static void
conclude(struct daemon *d, bool pass)
{
    struct admission *a = d->admission;
    struct parent_type *t = a->type;

    t->admission = pass ? ADMIT_PASSED : ADMIT_REFUSED;
    umdev_log(&d->log, pass ? LOG_NOTICE : LOG_ERR,
              "type %s (plug-in %s) %s: %s", t->name, a->entry->plugin,
              pass ? "admitted" : "refused admission", t->verdict);
    reset(a);
    if (pass && d->hooks.admitted != NULL)
        d->hooks.admitted(d, t->name);
    run_next(d);
}

/* The audit is over (child_done_fn): its document on @out, or why not. */
static void
audit_done(void *opaque, const char *failure, const char *out, size_t len,
           const char *err_tail)
{
    struct admission *a = opaque;
    struct daemon *d = a->d;
    struct parent_type *t = a->type;
    struct json_object *doc = NULL;
    bool pass = false;

    a->child = NULL; /* child.c frees it once this returns */
    t->verdict[0] = '\0';
    if (failure == NULL && len > 0)
        doc = json_tokener_parse(out);
    if (failure != NULL) {
        snprintf(t->verdict, sizeof(t->verdict), "the admission audit %s",
                 failure);
    } else if (doc == NULL || !json_object_is_type(doc, json_type_object) ||
               !json_object_object_get_ex(doc, "criteria", NULL)) {
        /* umdevctl --json prints the daemon's error object when the
         * audit was refused (the device could not even be built). */
        snprintf(t->verdict, sizeof(t->verdict),
                 "the admission audit could not run: %s",
                 json_str(doc, "message") != NULL ? json_str(doc, "message")
                 : err_tail[0] != '\0'            ? err_tail
                                                  : "it printed no audit");
    } else {
        pass = judge(t, doc);
    }
    json_object_put(doc);
    conclude(d, pass);
}

/* The audit process (child_main_fn): umdevctl against this daemon. */
static void
exec_audit(void *arg)
{
    const struct admission *a = arg;
    const struct daemon *d = a->d;
    char fuzz[16];

    snprintf(fuzz, sizeof(fuzz), "%u", d->opts.admit_fuzz_seconds);
    execl(d->opts.umdevctl, d->opts.umdevctl, "--control", d->opts.control,
          "--json", "audit", a->type->name, "--conformance", "--fuzz-seconds",
          fuzz, (char *)NULL);
    fprintf(stderr, "cannot run %s: %s\n", d->opts.umdevctl, strerror(errno));
}

/* Start auditing @t. Return: 0, or -errno with the reason in @why. */
static int
launch(struct daemon *d, char *why, size_t len)
{
    struct admission *a = d->admission;
    struct child_spec spec = {
        .name = "umdev-admission",
        .main = exec_audit,
        .arg = a,
        .timeout_ms =
            (uint64_t)d->opts.admit_fuzz_seconds * 1000u + ADMISSION_TIMEOUT_MS,
        .max_out = ADMISSION_MAX_OUTPUT,
        .capture_stderr = true,
        .done = audit_done,
        .opaque = a,
    };

    return child_start(d, &spec, &a->child, why, len);
}

static void
run_next(struct daemon *d)
{
    struct admission *a = d->admission;
    struct parent_entry *e;
    size_t i;

    if (a->type != NULL || d->stopping)
        return;
    for (e = d->parents->list; e != NULL; e = e->next) {
        for (i = 0; i < e->drv->ntypes; i++) {
            struct parent_type *t = &e->types[i];
            char why[256];

            if (t->admission != ADMIT_PENDING)
                continue;
            a->type = t;
            a->entry = e;
            umdev_log(&d->log, LOG_NOTICE,
                      "type %s (plug-in %s): admission audit started", t->name,
                      e->plugin);
            if (launch(d, why, sizeof(why)) < 0) {
                snprintf(t->verdict, sizeof(t->verdict),
                         "the admission audit could not start: %s", why);
                conclude(d, false);
            }
            return;
        }
    }
}

void
admission_start(struct daemon *d)
{
    run_next(d);
}
