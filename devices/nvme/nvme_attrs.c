/*
 * The nvme parent's attribute descriptions (nvme_attrs.h). Pure data, so
 * umdevctl can link it without the device; the numbers in the text are
 * held to the constants the checks use.
 */
#include "nvme_attrs.h"

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
};
