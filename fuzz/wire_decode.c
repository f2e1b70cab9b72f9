/*
 * libFuzzer target: umdev_wire_decode() on arbitrary bytes. The first byte
 * picks how many fds "arrived"; the rest is the message. Every decoded
 * field and tail byte is read so a bounds mistake shows under ASan.
 */
#include <stdint.h>
#include <string.h>

#include "umdev/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
touch_cap(const struct vfio_user_cap_header *h, const uint8_t *cap,
          size_t avail, void *opaque)
{
    volatile uint8_t *sum = opaque;
    size_t i;

    (void)h;
    for (i = 0; i < avail && i < 64; i++)
        *sum += cap[i];
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct umdev_wire_limits small = {
        .max_data_xfer_size = 4096,
        .max_msg_fds = 4,
    };
    struct umdev_wire_msg msg;
    volatile uint8_t sum = 0;
    size_t nfds, i;
    uint8_t *copy;

    if (size < 1)
        return 0;
    nfds = data[0] % 17;
    data++;
    size--;
    /* Decode works on a buffer of exactly the message's size. */
    copy = size ? (uint8_t *)__builtin_malloc(size) : NULL;
    if (size && copy == NULL)
        return 0;
    if (size)
        memcpy(copy, data, size);
    for (int pass = 0; pass < 2; pass++) {
        if (umdev_wire_decode(copy, size, nfds, pass ? &small : NULL,
                              &msg) != 0)
            continue;
        for (i = 0; i < msg.data_len; i++)
            sum += msg.data[i];
        if (msg.u.version.json != NULL && msg.hdr.cmd == VFIO_USER_VERSION)
            sum += (uint8_t)strlen(msg.u.version.json);
        if (msg.hdr.cmd == VFIO_USER_REGION_WRITE_MULTI && !msg.is_reply) {
            for (i = 0; i < msg.u.write_multi.count; i++) {
                struct vfio_user_write_multi_entry e;

                umdev_wire_write_multi_entry(&msg, i, &e);
                sum += e.data[0];
            }
        }
        if (msg.hdr.cmd == VFIO_USER_DEVICE_GET_REGION_INFO && msg.is_reply)
            umdev_wire_region_caps_walk(msg.payload, msg.payload_len,
                                        touch_cap, (void *)&sum);
    }
    __builtin_free(copy);
    (void)sum;
    return 0;
}
