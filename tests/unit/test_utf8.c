/* umdev_utf8_len() (lib/util/log.c): what umdev_log() and umdevctl
 * pass as a character and what they escape as \xNN. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "umdev/umdev.h"

struct sample {
    const char *bytes; /* NUL-terminated */
    size_t len;        /* what umdev_utf8_len() must say */
};

static void
test_sequences(void **state)
{
    static const struct sample samples[] = {
        { "A", 1 },
        { "\x7f", 1 },     /* DEL is a character (escaped as control) */
        { "\xc2\xa0", 2 }, /* U+00A0, the first non-C1 above ASCII */
        { "\xc2\x9b", 2 }, /* C1 CSI: a character, escaped as control */
        { "\xdf\xbf", 2 },
        { "\xe0\xa0\x80", 3 }, /* U+0800 */
        { "\xed\x9f\xbf", 3 }, /* U+D7FF, below the surrogates */
        { "\xef\xbf\xbf", 3 },
        { "\xf0\x90\x80\x80", 4 }, /* U+10000 */
        { "\xf4\x8f\xbf\xbf", 4 }, /* U+10FFFF */
        { "\x80", 0 },             /* a continuation byte alone */
        { "\xc0\x80", 0 },         /* overlong NUL */
        { "\xc1\xbf", 0 },         /* overlong */
        { "\xe0\x9f\xbf", 0 },     /* overlong 3-byte */
        { "\xed\xa0\x80", 0 },     /* U+D800, a surrogate */
        { "\xf0\x8f\xbf\xbf", 0 }, /* overlong 4-byte */
        { "\xf4\x90\x80\x80", 0 }, /* past U+10FFFF */
        { "\xf5\x80\x80\x80", 0 },
        { "\xff", 0 },
        { "\xe2\x82", 0 }, /* cut short by the NUL */
        { "\xe2\x82"
          "A",
          0 }, /* cut short by ASCII */
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        size_t got = umdev_utf8_len((const unsigned char *)samples[i].bytes);

        if (got != samples[i].len)
            fail_msg("sample %zu: %zu, want %zu", i, got, samples[i].len);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequences),
    };

    return cmocka_run_group_tests_name("unit.utf8", tests, NULL, NULL);
}
