/*
 * Helpers every lib module may use (lib/util is the bottom layer): pure
 * functions with no state. Not exported from libumdev.
 */
#ifndef UMDEV_LIB_UTIL_H
#define UMDEV_LIB_UTIL_H

#include <stdint.h>

/** CLOCK_MONOTONIC in milliseconds: deadlines and timers in lib. */
int64_t util_now_ms(void);

/* Read @len (1 or 2) config bytes at @off into *@val, little-endian; 0 or
 * -errno. */
typedef int util_config_read_fn(void *ctx, unsigned int off, unsigned int len,
                                uint16_t *val);

/**
 * util_pci_cap_find() - walk a PCI capability chain (PCI Local Bus 3.0
 * §6.7) through @read: from the start when @after is 0, else from the
 * capability at @after, to the next capability with ID @id (0: any).
 * Pointers are masked to dword alignment as Linux does.
 * Return: its offset (>= 0x40); 0 when there is none (or Status has no
 * capability list); -ELOOP when the chain is broken (a pointer below 0x40
 * or past 0xff, or more links than 192 bytes can hold); @read's error.
 */
int util_pci_cap_find(util_config_read_fn *read, void *ctx, uint8_t id,
                      unsigned int after);

#endif /* UMDEV_LIB_UTIL_H */
