/*
 * The nvme parent's attribute descriptions (nvme_attrs.h). Pure data, so
 * umdevctl can link it without the device; the numbers in the text are
 * held to the constants the checks use.
 */
#include "nvme.h"
#include "nvme_attrs.h"

_Static_assert(NVME_DEFAULT_POLL_US == 200u &&
                   NVME_DEFAULT_POLL_MAX_US == 8000u &&
                   NVME_POLL_MAX_LIMIT_US == 100000u,
               "update poll_max_us's help");
_Static_assert(NVME_MIN_SIZE == 1048576ull &&
                   NVME_MAX_SIZE == 17592186044416ull &&
                   NVME_DEFAULT_SIZE == 1073741824ull,
               "update size's help");

const struct umdev_parent_attr nvme_attrs[NVME_NATTRS] = {
    { "size", NULL,
      "namespace bytes, 1M to 16T, a multiple of 4096; an integer or "
      "with a K/M/G/T suffix (default 1G)" },
    { "backend", NULL,
      "file: a sparse backing file, io_uring (default); null: discards "
      "writes, reads move nothing (benchmarks)" },
    { "dir", NULL,
      "absolute directory of the backing file UUID.img (default "
      "$UMDEV_NVME_DIR, else STATEDIR/nvme.data)" },
    { "poll_max_us", NULL,
      "longest the poller polls idle queues before it sleeps and asks for "
      "doorbells, in microseconds, 200 to 100000 (default 8000; the "
      "window adapts below it to the guest's pace)" },
};
