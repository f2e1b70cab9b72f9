/*
 * `umdevctl import`: mdevctl's definitions, a directory laid out like
 * /etc/mdevctl.d (PARENT/UUID, one JSON definition each), defined in
 * umdevd. Each file becomes one `define` request, so umdevd checks it as
 * any other. mdevctl's parents are host devices (0000:00:02.0), umdev's
 * are not, so a directory's parent is, in this order: the one
 * --parent-map names for it, the directory's own name when umdevd has a
 * parent by that name, else for each file the one parent whose types
 * include the file's mdev_type. What none of these places is reported
 * and left alone, and so is mdevctl's scripts.d (whose callouts umdevd
 * runs only once copied into its --callouts directory).
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
    struct json_object *types; /* umdevd's `types` result list; owned */
};

/* How a directory's files find their parent. */
enum import_by {
    BY_NAME, /* the directory is named after a parent of umdevd */
    BY_MAP,  /* --parent-map names the parent */
    BY_TYPE, /* each file's type names the parent */
};

/*
 * The parent of umdevd that offers type @type, as umdevd takes a type:
 * its full name (PARENT-NAME), or the name without the PARENT- prefix
 * when exactly one parent has a type by that name. Return: the parent
 * (borrowed from @types), or NULL with the reason in @why.
 */
static const char *
parent_of_type(struct json_object *types, const char *type, char *why,
               size_t whylen)
{
    struct json_object *parents = json_object_new_object();
    const char *found = NULL, *sep = "";
    size_t i, n = cli_alen(types), len;

    for (i = 0; i < n; i++) {
        struct json_object *t = json_object_array_get_idx(types, i);

        if (strcmp(cli_jstr(t, "name", ""), type) == 0) {
            found = cli_jstr(t, "parent", "");
            goto out;
        }
    }
    for (i = 0; i < n; i++) {
        struct json_object *t = json_object_array_get_idx(types, i);
        const char *p = cli_jstr(t, "parent", ""),
                   *name = cli_jstr(t, "name", "");
        size_t plen = strlen(p);

        if (strncmp(name, p, plen) == 0 && name[plen] == '-' &&
            strcmp(name + plen + 1, type) == 0) {
            found = p;
            json_object_object_add(parents, p, NULL);
        }
    }
    if (json_object_object_length(parents) > 1) {
        found = NULL;
        len = (size_t)snprintf(why, whylen,
                               "type '%s' is offered by more than one parent "
                               "(",
                               type);
        json_object_object_foreach(parents, p, unused)
        {
            (void)unused;
            if (len < whylen)
                len +=
                    (size_t)snprintf(why + len, whylen - len, "%s%s", sep, p);
            sep = ", ";
        }
        if (len < whylen)
            snprintf(why + len, whylen - len,
                     "): --parent-map HOSTPARENT=PARENT picks one");
    } else if (found == NULL) {
        snprintf(why, whylen,
                 "no parent of umdevd offers type '%s' (umdevctl types "
                 "lists them; --parent-map HOSTPARENT=PARENT names one)",
                 type);
    }
out:
    json_object_put(parents);
    return found;
}

/* Add an entry to @arr; return it, for more fields (borrowed). */
static struct json_object *
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
    return o;
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

static const char *const by_names[] = { "directory", "parent-map", "type" };

/* Define the definition in file @path (@uuid) of a directory whose files
 * find their parent @by (@parent; NULL for BY_TYPE). Return: 0, or
 * EXIT_NODAEMON (umdevd gone: stop). */
static int
import_file(struct cli *c, const char *parent, enum import_by by,
            const char *uuid, const char *path, struct import_report *rep)
{
    struct json_object *args = cli_read_json_file(path), *r = NULL, *v, *o;
    struct umdev_ctl_error e;
    char why[512];
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
    if (by == BY_TYPE) {
        v = json_object_object_get(args, "type");
        if (!json_object_is_type(v, json_type_string))
            snprintf(why, sizeof(why),
                     "it names no type (mdev_type), so no parent of umdevd "
                     "can be told from it");
        else
            parent = parent_of_type(rep->types, json_object_get_string(v), why,
                                    sizeof(why));
        if (parent == NULL) {
            note(rep->skipped, path, uuid, "reason", why);
            json_object_put(args);
            return 0;
        }
    }
    json_object_object_add(args, "uuid", json_object_new_string(uuid));
    json_object_object_add(args, "parent", json_object_new_string(parent));
    rc = umdev_ctl_call(c->ctl, "define", args, -1, &r, &e);
    json_object_put(args);
    json_object_put(r);
    if (rc != 0 && rc != -EREMOTEIO) {
        fputs("umdevctl import: ", stderr);
        cli_fputs_safe(stderr, e.message);
        fputc('\n', stderr);
        return EXIT_NODAEMON;
    }
    /* Importing again leaves what is there: a definition is changed
     * with modify, never by a second import. */
    if (rc == 0)
        o = note(rep->defined, path, uuid, NULL, NULL);
    else if (e.err == EEXIST)
        o = note(rep->skipped, path, uuid, "reason",
                 "umdevd has a definition of this UUID already");
    else
        o = note(rep->refused, path, uuid, "message", e.message);
    json_object_object_add(o, "parent", json_object_new_string(parent));
    json_object_object_add(o, "by", json_object_new_string(by_names[by]));
    return 0;
}

/* The definitions in @dir/@name, in name order, their parent found @by
 * (@parent, or NULL for BY_TYPE). */
static int
import_dir(struct cli *c, const char *dir, const char *name, const char *parent,
           enum import_by by, struct import_report *rep)
{
    char sub[PATH_MAX], path[PATH_MAX];
    struct dirent **names;
    int i, n, rc = 0;

    snprintf(sub, sizeof(sub), "%s/%s", dir, name);
    n = scandir(sub, &names, NULL, alphasort);
    if (n < 0) {
        note(rep->refused, sub, NULL, "message", strerror(errno));
        return 0;
    }
    for (i = 0; i < n; i++) {
        const char *file = names[i]->d_name;
        struct stat st;

        if (rc != 0 || file[0] == '.')
            continue;
        if (snprintf(path, sizeof(path), "%s/%s", sub, file) >=
            (int)sizeof(path))
            note(rep->skipped, sub, NULL, "reason", "path too long");
        else if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
            note(rep->skipped, path, NULL, "reason", "not a regular file");
        else if (!is_uuid(file))
            note(rep->skipped, path, NULL, "reason",
                 "not named by a lower-case UUID");
        else
            rc = import_file(c, parent, by, file, path, rep);
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
            const char *by = cli_jstr(o, "by", "directory");

            printf("%s: %s", what[l], cli_jstr(o, "path", ""));
            if (json_object_object_get_ex(o, "uuid", NULL))
                printf(" (%s)", cli_jstr(o, "uuid", ""));
            if (l > 0)
                printf(": %s", cli_jstr(o, l == 1 ? "reason" : "message", ""));
            /* Where a parent other than the directory's name came from. */
            if (strcmp(by, "directory") != 0)
                printf(" [parent %s, by %s]", cli_jstr(o, "parent", ""),
                       strcmp(by, "type") == 0 ? "its type" : "--parent-map");
            printf("\n");
        }
    }
    printf("%zu defined, %zu skipped, %zu refused\n", cli_alen(rep->defined),
           cli_alen(rep->skipped), cli_alen(rep->refused));
}

int
cli_import(struct cli *c, const char *dir, struct json_object *map)
{
    struct import_report rep = { json_object_new_array(),
                                 json_object_new_array(),
                                 json_object_new_array(), NULL };
    struct json_object *r, *parents = json_object_new_object();
    struct json_object *seen = json_object_new_object(), *mapped;
    struct dirent **names = NULL;
    char path[PATH_MAX];
    int i, n = 0, rc;
    size_t t;

    if (dir == NULL)
        dir = IMPORT_DEFAULT_DIR;
    /* The parents umdevd has and their types: what can be imported. */
    rc = cli_call(c, "types", json_object_new_object(), &r);
    if (rc != 0)
        goto out;
    rep.types = json_object_get(json_object_object_get(r, "types"));
    json_object_put(r);
    for (t = 0; t < cli_alen(rep.types); t++)
        json_object_object_add(
            parents,
            cli_jstr(json_object_array_get_idx(rep.types, t), "parent", ""),
            NULL);
    /* A map to a parent umdevd lacks is a mistake in the command line:
     * refused before anything is defined. */
    if (map != NULL) {
        json_object_object_foreach(map, host, to)
        {
            if (!json_object_object_get_ex(parents, json_object_get_string(to),
                                           NULL)) {
                rc = cli_usage_error("import",
                                     "--parent-map %s=%s: umdevd has no "
                                     "parent '%s' (umdevctl types lists "
                                     "them)",
                                     host, json_object_get_string(to),
                                     json_object_get_string(to));
                goto out;
            }
        }
    }
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
        mapped = NULL;
        if (map != NULL && json_object_object_get_ex(map, name, &mapped))
            json_object_object_add(seen, name, NULL);
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
            note(rep.skipped, path, NULL, "reason", "not a parent directory");
        else if (mapped != NULL)
            rc = import_dir(c, dir, name, json_object_get_string(mapped),
                            BY_MAP, &rep);
        else if (strcmp(name, "scripts.d") == 0)
            note(rep.skipped, path, NULL, "reason",
                 "mdevctl's scripts, not imported: copy those of "
                 "callouts/ that handle umdev's types into umdevd's "
                 "--callouts directory, those of notifiers/ into its "
                 "--notifiers directory");
        else if (json_object_object_get_ex(parents, name, NULL))
            rc = import_dir(c, dir, name, name, BY_NAME, &rep);
        else
            rc = import_dir(c, dir, name, NULL, BY_TYPE, &rep);
    }
    /* A map that matched nothing is most likely a misspelt device. */
    if (rc == 0 && map != NULL) {
        json_object_object_foreach(map, host, to)
        {
            (void)to;
            if (json_object_object_get_ex(seen, host, NULL))
                continue;
            snprintf(path, sizeof(path), "%s/%s", dir, host);
            note(rep.skipped, path, NULL, "reason",
                 "--parent-map names it, but there is no such directory");
        }
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
                                          cli_safe(rep.refused), NULL };

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
    json_object_put(seen);
    json_object_put(rep.types);
    json_object_put(rep.defined);
    json_object_put(rep.skipped);
    json_object_put(rep.refused);
    return rc;
}
