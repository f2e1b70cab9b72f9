/*
 * `umdevctl import`: mdevctl's definitions, a directory laid out like
 * /etc/mdevctl.d (PARENT/UUID, one JSON definition each), defined in
 * umdevd for the parents it has. Each file becomes one `define` request,
 * so umdevd checks it as any other; what names no parent of umdevd (a
 * host device such as 0000:00:02.0, mdevctl's scripts.d, whose callouts
 * umdevd runs only once copied into its --callouts directory) is
 * reported and left alone.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "umdev/ctl.h"
#include "umdevctl.h"

#define IMPORT_DEFAULT_DIR "/etc/mdevctl.d"

/* What became of the files, for the summary and --json. */
struct import_report {
    struct json_object *defined, *skipped, *refused; /* arrays */
};

static void
note(struct json_object *arr, const char *path, const char *uuid,
     const char *key, const char *text)
{
    struct json_object *o = json_object_new_object();

    json_object_object_add(o, "path", json_object_new_string(path));
    if (uuid != NULL)
        json_object_object_add(o, "uuid", json_object_new_string(uuid));
    if (key != NULL)
        json_object_object_add(o, key, json_object_new_string(text));
    json_object_array_add(arr, o);
}

/* A lower-case UUID, as mdevctl names its files. */
static bool
is_uuid(const char *s)
{
    size_t i;

    if (strlen(s) != 36)
        return false;
    for (i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;

        if (dash ? s[i] != '-'
                 : !((s[i] >= '0' && s[i] <= '9') ||
                     (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return true;
}

/* Define the definition in file @path (@uuid, of @parent). Return: 0,
 * or EXIT_NODAEMON (umdevd gone: stop). */
static int
import_file(struct cli *c, const char *parent, const char *uuid,
            const char *path, struct import_report *rep)
{
    struct json_object *args = cli_read_json_file(path), *r = NULL, *v;
    struct umdev_ctl_error e;
    int rc;

    if (args != NULL)
        args = cli_from_mdevctl(path, args);
    if (args == NULL) {
        note(rep->refused, path, uuid, "message",
             "not a definition (see the message above)");
        return 0;
    }
    if ((v = json_object_object_get(args, "uuid")) != NULL &&
        strcmp(json_object_get_string(v), uuid) != 0) {
        note(rep->refused, path, uuid, "message",
             "the UUID inside is not the file's name");
        json_object_put(args);
        return 0;
    }
    json_object_object_add(args, "uuid", json_object_new_string(uuid));
    json_object_object_add(args, "parent", json_object_new_string(parent));
    rc = umdev_ctl_call(c->ctl, "define", args, -1, &r, &e);
    json_object_put(args);
    json_object_put(r);
    if (rc == 0) {
        note(rep->defined, path, uuid, NULL, NULL);
        return 0;
    }
    if (rc != -EREMOTEIO) {
        fputs("umdevctl import: ", stderr);
        cli_fputs_safe(stderr, e.message);
        fputc('\n', stderr);
        return EXIT_NODAEMON;
    }
    /* Importing again leaves what is there: a definition is changed
     * with modify, never by a second import. */
    if (e.err == EEXIST)
        note(rep->skipped, path, uuid, "reason",
             "umdevd has a definition of this UUID already");
    else
        note(rep->refused, path, uuid, "message", e.message);
    return 0;
}

/* The definitions in @dir/@parent, in name order. */
static int
import_parent(struct cli *c, const char *dir, const char *parent,
              struct import_report *rep)
{
    char sub[PATH_MAX], path[PATH_MAX];
    struct dirent **names;
    int i, n, rc = 0;

    snprintf(sub, sizeof(sub), "%s/%s", dir, parent);
    n = scandir(sub, &names, NULL, alphasort);
    if (n < 0) {
        note(rep->refused, sub, NULL, "message", strerror(errno));
        return 0;
    }
    for (i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        struct stat st;

        if (rc != 0 || name[0] == '.')
            continue;
        if (snprintf(path, sizeof(path), "%s/%s", sub, name) >=
            (int)sizeof(path))
            note(rep->skipped, sub, NULL, "reason", "path too long");
        else if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
            note(rep->skipped, path, NULL, "reason", "not a regular file");
        else if (!is_uuid(name))
            note(rep->skipped, path, NULL, "reason",
                 "not named by a lower-case UUID");
        else
            rc = import_file(c, parent, name, path, rep);
    }
    for (i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

static void
print_report(const struct import_report *rep)
{
    struct json_object *lists[] = { rep->defined, rep->skipped, rep->refused };
    static const char *const what[] = { "defined", "skipped", "refused" };
    size_t l, i;

    for (l = 0; l < 3; l++) {
        for (i = 0; i < cli_alen(lists[l]); i++) {
            struct json_object *o = json_object_array_get_idx(lists[l], i);

            printf("%s: %s", what[l], cli_jstr(o, "path", ""));
            if (json_object_object_get_ex(o, "uuid", NULL))
                printf(" (%s)", cli_jstr(o, "uuid", ""));
            if (l > 0)
                printf(": %s", cli_jstr(o, l == 1 ? "reason" : "message", ""));
            printf("\n");
        }
    }
    printf("%zu defined, %zu skipped, %zu refused\n", cli_alen(rep->defined),
           cli_alen(rep->skipped), cli_alen(rep->refused));
}

int
cli_import(struct cli *c, const char *dir)
{
    struct import_report rep = { json_object_new_array(),
                                 json_object_new_array(),
                                 json_object_new_array() };
    struct json_object *r, *types, *parents = json_object_new_object();
    struct dirent **names = NULL;
    char path[PATH_MAX];
    int i, n = 0, rc;
    size_t t;

    if (dir == NULL)
        dir = IMPORT_DEFAULT_DIR;
    /* The parents umdevd has: only their definitions can be imported. */
    rc = cli_call(c, "types", json_object_new_object(), &r);
    if (rc != 0)
        goto out;
    types = json_object_object_get(r, "types");
    for (t = 0; t < cli_alen(types); t++)
        json_object_object_add(
            parents,
            cli_jstr(json_object_array_get_idx(types, t), "parent", ""), NULL);
    json_object_put(r);
    n = scandir(dir, &names, NULL, alphasort);
    if (n < 0) {
        fprintf(stderr, "umdevctl import: cannot read %s: %s\n", dir,
                strerror(errno));
        rc = EXIT_USAGE;
        goto out;
    }
    for (i = 0; i < n && rc == 0; i++) {
        const char *name = names[i]->d_name;
        struct stat st;

        if (name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
            note(rep.skipped, path, NULL, "reason", "not a parent directory");
        else if (strcmp(name, "scripts.d") == 0)
            note(rep.skipped, path, NULL, "reason",
                 "mdevctl's scripts, not imported: copy those of "
                 "callouts/ that handle umdev's types into umdevd's "
                 "--callouts directory, those of notifiers/ into its "
                 "--notifiers directory");
        else if (!json_object_object_get_ex(parents, name, NULL))
            note(rep.skipped, path, NULL, "reason",
                 "umdevd has no parent by this name (umdevctl types lists "
                 "them)");
        else
            rc = import_parent(c, dir, name, &rep);
    }
    if (rc == 0 && cli_alen(rep.refused) > 0)
        rc = EXIT_REFUSED;
    if (rc == 0 || rc == EXIT_REFUSED) {
        if (c->json) {
            struct json_object *o = json_object_new_object();

            json_object_object_add(o, "defined", json_object_get(rep.defined));
            json_object_object_add(o, "skipped", json_object_get(rep.skipped));
            json_object_object_add(o, "refused", json_object_get(rep.refused));
            cli_print_json(o);
            json_object_put(o);
        } else {
            struct import_report safe = { cli_safe(rep.defined),
                                          cli_safe(rep.skipped),
                                          cli_safe(rep.refused) };

            print_report(&safe);
            json_object_put(safe.defined);
            json_object_put(safe.skipped);
            json_object_put(safe.refused);
        }
    }
out:
    for (i = 0; i < n; i++)
        free(names[i]);
    free(names);
    json_object_put(parents);
    json_object_put(rep.defined);
    json_object_put(rep.skipped);
    json_object_put(rep.refused);
    return rc;
}
