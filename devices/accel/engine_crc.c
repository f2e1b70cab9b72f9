/*
 * The accel engine's CRC32C (Castagnoli, reflected 0x82F63B78): a
 * slicing-by-8 table, and the SSE4.2 instruction where the CPU has one;
 * the engine chooses once (engine_priv.h), tests compare both.
 */
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#include "engine_priv.h"

#define CRC32C_POLY 0x82f63b78u /* reflected Castagnoli */

/* ------------------------------------------------------------------ */
/* CRC32C                                                              */

void
engine_crc_init(uint32_t t[8][256])
{
    unsigned int i, k;

    for (i = 0; i < 256; i++) {
        uint32_t c = i;

        for (k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        t[0][i] = c;
    }
    /* t[k][i]: byte i followed by k zero bytes (slicing by 8). */
    for (i = 0; i < 256; i++)
        for (k = 1; k < 8; k++)
            t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
}

/* The raw register update (no inversions). */
static uint32_t
crc_soft_update(const uint32_t t[8][256], uint32_t crc, const uint8_t *p,
                size_t len)
{
    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        len--;
    }
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (len >= 8) {
        uint64_t v;

        memcpy(&v, p, 8);
        v ^= crc;
        crc = t[7][v & 0xff] ^ t[6][(v >> 8) & 0xff] ^ t[5][(v >> 16) & 0xff] ^
              t[4][(v >> 24) & 0xff] ^ t[3][(v >> 32) & 0xff] ^
              t[2][(v >> 40) & 0xff] ^ t[1][(v >> 48) & 0xff] ^ t[0][v >> 56];
        p += 8;
        len -= 8;
    }
#endif
    while (len > 0) {
        crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        len--;
    }
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t
crc_hw_update(uint32_t crc, const uint8_t *p, size_t len)
{
    uint64_t c;

    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        crc = _mm_crc32_u8(crc, *p++);
        len--;
    }
    c = crc;
    while (len >= 8) {
        uint64_t v;

        memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
        p += 8;
        len -= 8;
    }
    crc = (uint32_t)c;
    while (len > 0) {
        crc = _mm_crc32_u8(crc, *p++);
        len--;
    }
    return crc;
}

bool
engine_crc_hw_present(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
}
#else
bool
engine_crc_hw_present(void)
{
    return false;
}
#endif

bool
accel_crc32c_hw(uint32_t crc, const void *buf, size_t len, uint32_t *out)
{
#if defined(__x86_64__)
    if (!engine_crc_hw_present())
        return false;
    *out = ~crc_hw_update(~crc, buf, len);
    return true;
#else
    (void)crc;
    (void)buf;
    (void)len;
    (void)out;
    return false;
#endif
}

uint32_t
accel_crc32c_soft(const struct accel_engine *e, uint32_t crc, const void *buf,
                  size_t len)
{
    return ~crc_soft_update(e->crc_table, ~crc, buf, len);
}

/* Raw update with the engine's choice. */
uint32_t
engine_crc_update(const struct accel_engine *e, uint32_t crc, const uint8_t *p,
                  size_t len)
{
#if defined(__x86_64__)
    if (e->crc_hw)
        return crc_hw_update(crc, p, len);
#endif
    return crc_soft_update(e->crc_table, crc, p, len);
}

uint32_t
accel_crc32c(const struct accel_engine *e, uint32_t crc, const void *buf,
             size_t len)
{
    return ~engine_crc_update(e, ~crc, buf, len);
}
