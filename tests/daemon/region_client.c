/*
 * daemon-region-client: a VMM stand-in that makes exactly the region
 * accesses it is told to, so a test can compare an instance's trap
 * counters (`umdevctl stats`) with what a client did.
 *
 *   daemon-region-client SOCKET TIMEOUT_MS OP...
 *   OP: rREGION:OFFSET:LEN        read LEN (1..8) bytes
 *       wREGION:OFFSET:LEN:VALUE  write VALUE, little-endian, LEN bytes
 *
 * One line per OP: "ok VALUE" (reads: the value in hex) or "err ENAME"
 * (the server's error reply). Exit: 0 every OP got an answer; 1 the
 * connection failed; 2 usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "umdev/client.h"

#define USAGE                                                                  \
    "usage: daemon-region-client SOCKET TIMEOUT_MS "                           \
    "rREGION:OFFSET:LEN|wREGION:OFFSET:LEN:VALUE...\n"

struct op {
    bool write;
    uint32_t region;
    uint64_t offset, value;
    size_t len;
};

/* Parse one OP; every number is range-checked. Return: 0 or -1. */
static int
parse_op(const char *s, struct op *op)
{
    unsigned long long region, offset, len, value = 0;
    char tail;
    int n;

    if (s[0] != 'r' && s[0] != 'w')
        return -1;
    op->write = s[0] == 'w';
    if (op->write)
        n = sscanf(s + 1, "%llu:%lli:%llu:%lli%c", &region, &offset, &len,
                   (long long *)&value, &tail);
    else
        n = sscanf(s + 1, "%llu:%lli:%llu%c", &region, &offset, &len, &tail);
    if (n != (op->write ? 4 : 3) || region > 0xffffffffull || len < 1 ||
        len > 8)
        return -1;
    op->region = (uint32_t)region;
    op->offset = offset;
    op->len = (size_t)len;
    op->value = value;
    return 0;
}

int
main(int argc, char **argv)
{
    struct umdev_client_opts opts = { 0 };
    struct umdev_client *c;
    char *end;
    long timeout;
    int i, rc;

    if (argc < 4) {
        fputs(USAGE, stderr);
        return 2;
    }
    timeout = strtol(argv[2], &end, 10);
    if (*end != '\0' || timeout < 1 || timeout > 600000) {
        fputs(USAGE, stderr);
        return 2;
    }
    for (i = 3; i < argc; i++) {
        struct op op;

        if (parse_op(argv[i], &op) < 0) {
            fprintf(stderr, "bad OP '%s'\n" USAGE, argv[i]);
            return 2;
        }
    }
    opts.timeout_ms = (int)timeout;
    rc = umdev_client_connect(argv[1], &opts, &c);
    if (rc < 0) {
        fprintf(stderr, "connect %s: %s\n", argv[1], strerror(-rc));
        return 1;
    }
    for (i = 3; i < argc; i++) {
        struct op op;
        uint8_t buf[8] = { 0 };
        uint64_t v = 0;
        size_t k;

        parse_op(argv[i], &op);
        for (k = 0; k < op.len; k++)
            buf[k] = (uint8_t)(op.value >> (8 * k));
        rc = op.write ? umdev_client_region_write(c, op.region, op.offset, buf,
                                                  op.len)
                      : umdev_client_region_read(c, op.region, op.offset, buf,
                                                 op.len);
        if (rc == -ETIMEDOUT || rc == -ECONNRESET || rc == -EPIPE) {
            fprintf(stderr, "%s: %s\n", argv[i], strerror(-rc));
            umdev_client_destroy(c);
            return 1;
        }
        if (rc < 0) {
            printf("err %s\n", strerrorname_np(-rc));
            continue;
        }
        for (k = 0; k < op.len; k++)
            v |= (uint64_t)buf[k] << (8 * k);
        printf("ok 0x%" PRIx64 "\n", v);
    }
    umdev_client_destroy(c);
    return 0;
}
