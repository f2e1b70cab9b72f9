/*
 * Drive a sample-loop instance (loop.c) as its guest driver would: reset
 * it, push a message through the FIFO a burst at a time, poll STATUS, read
 * the bytes back and compare. Built from the installed library with
 * pkg-config, like the plug-in.
 *
 * Usage: umdev-sample-loop-drive SOCKET [BYTES]
 * Exit status: 0 every byte came back, 1 otherwise, 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <umdev/client.h>

#define BURST 16u /* the card's FIFO depth (loop.c LOOP_DEPTH) */

int
main(int argc, char **argv)
{
    struct umdev_client *c = NULL;
    unsigned long total = argc > 2 ? strtoul(argv[2], NULL, 10) : 4096;
    unsigned long done = 0;
    int rc;

    if (argc < 2 || argc > 3 || total == 0) {
        fprintf(stderr, "usage: %s SOCKET [BYTES]\n", argv[0]);
        return 2;
    }
    rc = umdev_client_connect(argv[1], NULL, &c);
    if (rc == 0)
        rc = umdev_client_reset(c);
    while (rc == 0 && done < total) {
        unsigned int n = total - done < BURST ? total - done : BURST, i;
        uint32_t status = 0;

        for (i = 0; i < n && rc == 0; i++) {
            uint8_t b = (uint8_t)(done + i);

            rc = umdev_client_region_write(c, 0, 0x0, &b, 1);
        }
        if (rc == 0)
            rc = umdev_client_region_read(c, 0, 0x4, &status, 4);
        if (rc == 0 && (status >> 8 & 0xff) != n) {
            fprintf(stderr, "fill level %u, expected %u\n", status >> 8 & 0xff,
                    n);
            rc = -1;
        }
        for (i = 0; i < n && rc == 0; i++) {
            uint8_t b = 0;

            rc = umdev_client_region_read(c, 0, 0x0, &b, 1);
            if (rc == 0 && b != (uint8_t)(done + i)) {
                fprintf(stderr, "byte %lu came back as %u\n", done + i, b);
                rc = -1;
            }
        }
        if (rc == 0)
            done += n;
    }
    umdev_client_destroy(c);
    if (rc < 0 && rc != -1)
        fprintf(stderr, "%s: %s\n", argv[1], strerror(-rc));
    printf("looped %lu of %lu bytes\n", done, total);
    return done == total ? 0 : 1;
}
