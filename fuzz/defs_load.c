/*
 * libFuzzer target: the definition loader of umdevd (daemon/defs.c), fed
 * the text of one persisted definition file, STATEDIR/<parent>/<uuid>,
 * as umdevd reads it at start: defs_load_text() (the file's checks), then
 * what umdevd's callback does with a definition before it becomes an
 * instance, defs_from_json() (type, owner, mode, start and the parent's
 * attribute rules). The daemon here has the built-in parents registered
 * and nothing else: no socket, no worker, no file.
 *
 * Oracle: a definition that is taken must survive its own round trip.
 * What defs_save() would write for it (defs_to_json(), printed the same
 * way) is loaded again and must be taken and give the same configuration;
 * a definition the daemon writes but refuses to read back is lost at the
 * next start. LSan checks that nothing leaks.
 *
 * Input:
 *   byte 0  the directory the file lies in: bits 0-1 pick "serial",
 *           "accel", "nope" (no such parent) or "serial" again
 *   rest    the file's bytes (umdevd reads at most 64 KiB; what follows
 *           a NUL byte is ignored, as it is by umdevd)
 * The file is named FUZZ_UUID; fuzz/corpus/defs_load/ holds definitions
 * the daemon writes, of both parents, and near misses.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "defs.h"
#include "kit_util.h"
#include "parents.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_UUID "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
/* daemon/defs.c reads no bigger file. */
#define DEF_MAX_SIZE (64 * 1024)

static struct kit_log fuzz_log;
static struct daemon daemon_obj;

/* The configuration the first load gave, for the round trip. */
static struct inst_config first;

static void
check_same(const struct inst_config *a, const struct inst_config *b)
{
    FUZZ_CHECK(strcmp(a->uuid, b->uuid) == 0);
    FUZZ_CHECK(strcmp(a->parent, b->parent) == 0);
    FUZZ_CHECK(strcmp(a->type, b->type) == 0);
    FUZZ_CHECK_EQ(a->auto_start, b->auto_start);
    FUZZ_CHECK_EQ(a->uid, b->uid);
    FUZZ_CHECK_EQ(a->gid, b->gid);
    FUZZ_CHECK_EQ(a->mode, b->mode);
    FUZZ_CHECK(json_object_equal(a->attrs, b->attrs));
}

/* The round trip's callback: the written-back definition. */
static int
found_again(struct daemon *d, const char *parent, const char *uuid,
            struct json_object *obj, char *err, size_t errlen)
{
    struct inst_config cfg;
    int rc;

    rc = defs_from_json(d, parent, uuid, obj, &cfg, err, errlen);
    if (rc < 0)
        return rc;
    check_same(&first, &cfg);
    json_object_put(cfg.attrs);
    return 0;
}

/* umdevd's callback minus inst_add(): the definition as a configuration,
 * then its round trip. */
static int
found(struct daemon *d, const char *parent, const char *uuid,
      struct json_object *obj, char *err, size_t errlen)
{
    struct json_object *saved;
    char err2[512] = "";
    int rc;

    rc = defs_from_json(d, parent, uuid, obj, &first, err, errlen);
    if (rc < 0)
        return rc;
    FUZZ_CHECK(first.attrs != NULL);
    saved = defs_to_json(&first);
    /* As defs_save() prints it. */
    rc = defs_load_text(
        d, parent, uuid,
        json_object_to_json_string_ext(
            saved, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE),
        found_again, err2, sizeof(err2));
    if (rc != 0) {
        fprintf(stderr,
                "fuzz_defs_load: a definition the daemon took does "
                "not load back: %s\n%s\n",
                err2,
                json_object_to_json_string_ext(saved, JSON_C_TO_STRING_PRETTY));
        abort();
    }
    json_object_put(saved);
    json_object_put(first.attrs);
    first.attrs = NULL;
    return 0;
}

static void
setup(void)
{
    struct daemon *d = &daemon_obj;

    kit_log_init(&fuzz_log, "umdevd", "UMDEV_FUZZ_VERBOSE");
    d->log = fuzz_log.logger;
    d->signal_fd = -1;
    if (mdev_create(&d->mdev) < 0 || parents_create(d, &d->parents) < 0)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const dirs[4] = { "serial", "accel", "nope", "serial" };
    static bool ready;
    char err[512] = "";
    char *text;
    int rc;

    if (size < 1 || size - 1 > DEF_MAX_SIZE)
        return 0;
    if (!ready) {
        setup();
        ready = true;
    }
    /* umdevd reads the file into a buffer it terminates. */
    text = malloc(size);
    if (text == NULL)
        abort();
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    rc = defs_load_text(&daemon_obj, dirs[data[0] & 3], FUZZ_UUID, text, found,
                        err, sizeof(err));
    /* Refused: with a reason a person can act on. */
    if (rc < 0)
        FUZZ_CHECK(err[0] != '\0');
    free(text);
    return 0;
}
