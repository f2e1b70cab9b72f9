/*
 * Replays a fuzz target's corpus without libFuzzer, so each corpus runs
 * under ctest (and under the asan preset): a main() that calls
 * LLVMFuzzerTestOneInput() once per input. Arguments: files or
 * directories; every regular file below a directory is one input, taken
 * in name order. Each input's path goes to stderr before it runs, so a
 * crash names its input.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        if (f != NULL)
            fclose(f);
        return -1;
    }
    rewind(f);
    /* Exactly the input's size, so ASan sees reads past its end. */
    buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    fprintf(stderr, "replay: %s (%ld bytes)\n", path, n);
    LLVMFuzzerTestOneInput(buf, (size_t)n);
    free(buf);
    return 0;
}

static int
skip_dot(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

static int
run_path(const char *path, int *count)
{
    struct dirent **names;
    struct stat st;
    int i, n, rc = 0;

    if (stat(path, &st) < 0) {
        fprintf(stderr, "replay: %s: no such file\n", path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        (*count)++;
        return run_file(path);
    }
    n = scandir(path, &names, skip_dot, alphasort);
    if (n < 0) {
        fprintf(stderr, "replay: cannot list %s\n", path);
        return -1;
    }
    for (i = 0; i < n; i++) {
        char sub[4096];

        snprintf(sub, sizeof(sub), "%s/%s", path, names[i]->d_name);
        if (run_path(sub, count) < 0)
            rc = -1;
        free(names[i]);
    }
    free(names);
    return rc;
}

int
main(int argc, char **argv)
{
    int i, count = 0, rc = 0;

    for (i = 1; i < argc; i++)
        if (run_path(argv[i], &count) < 0)
            rc = 1;
    printf("replayed %d inputs\n", count);
    /* An empty corpus proves nothing. */
    return rc != 0 || count == 0 ? 1 : 0;
}
