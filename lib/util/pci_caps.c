/*
 * The PCI capability-chain walk, shared by lib/pci (the server's own config
 * space) and lib/client (a device's, read over the socket), so both sides
 * apply the same rules to a chain a device or a peer built.
 */
#include <errno.h>

#include <linux/pci_regs.h>

#include "util.h"

/* Each capability takes at least a dword of the 192 bytes after the
 * standard header: more links than that is a loop. */
#define CAP_MAX_LINKS ((PCI_CFG_SPACE_SIZE - PCI_STD_HEADER_SIZEOF) / 4)

int
util_pci_cap_find(util_config_read_fn *read, void *ctx, uint8_t id,
                  unsigned int after)
{
    unsigned int links = 0, pos;
    uint16_t v;
    int rc;

    if (after == 0) {
        rc = read(ctx, PCI_STATUS, 2, &v);
        if (rc < 0)
            return rc;
        if (!(v & PCI_STATUS_CAP_LIST))
            return 0;
        rc = read(ctx, PCI_CAPABILITY_LIST, 1, &v);
    } else {
        if (after < PCI_STD_HEADER_SIZEOF || after >= PCI_CFG_SPACE_SIZE)
            return -ELOOP;
        rc = read(ctx, after + PCI_CAP_LIST_NEXT, 1, &v);
    }
    for (;;) {
        if (rc < 0)
            return rc;
        pos = v & 0xfc;
        if (pos == 0)
            return 0;
        if (pos < PCI_STD_HEADER_SIZEOF || ++links > CAP_MAX_LINKS)
            return -ELOOP;
        rc = read(ctx, pos + PCI_CAP_LIST_ID, 1, &v);
        if (rc < 0)
            return rc;
        if (id == 0 || (v & 0xff) == id)
            return (int)pos;
        rc = read(ctx, pos + PCI_CAP_LIST_NEXT, 1, &v);
    }
}
