/* umdev_utf8_len() (lib/util/log.c): what umdev_log() and umdevctl
 * pass as a character and what they escape as \xNN; and the lines
 * umdev_log() makes of them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

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

static char last_line[2048];

static void
keep_line(void *opaque, int level, const char *line)
{
    (void)opaque;
    (void)level;
    snprintf(last_line, sizeof(last_line), "%s", line);
}

/* What the sink gets for "%s" of @text: escapes, and the cut at 1023
 * bytes (the line buffer's 1024 with its NUL) at a whole character or
 * escape. */
static void
test_log_escape(void **state)
{
    static const struct {
        const char *text, *want;
    } lines[] = {
        { "plain text, 100% ASCII ~", "plain text, 100% ASCII ~" },
        { "tab\there", "tab\\x09here" },
        { "\x1b[31mred", "\\x1b[31mred" },
        { "del\x7f", "del\\x7f" },
        { "caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac" },
        { "c1 \xc2\x9b", "c1 \\xc2\\x9b" },
        { "bad \xff\xc0\x80 end", "bad \\xff\\xc0\\x80 end" },
        { "", "" },
    };
    struct umdev_logger log = { .fn = keep_line, .max_level = LOG_DEBUG };
    char text[1100], want[1100];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        umdev_log(&log, LOG_INFO, "%s", lines[i].text);
        if (strcmp(last_line, lines[i].want) != 0)
            fail_msg("line %zu: \"%s\", want \"%s\"", i, last_line,
                     lines[i].want);
    }
    /* Cut: ASCII stops at 1023 bytes. */
    memset(text, 'a', 1090);
    text[1090] = '\0';
    umdev_log(&log, LOG_INFO, "%s", text);
    assert_int_equal(strlen(last_line), 1023);
    /* A two-byte character that fits in full is kept, one that would
     * end past 1023 bytes is dropped whole. */
    memset(text, 'a', 1021);
    strcpy(text + 1021, "\xc3\xa9");
    umdev_log(&log, LOG_INFO, "%s", text);
    memcpy(want, text, 1024);
    assert_string_equal(last_line, want);
    memset(text, 'a', 1022);
    strcpy(text + 1022, "\xc3\xa9");
    umdev_log(&log, LOG_INFO, "%s", text);
    want[1022] = '\0';
    memset(want, 'a', 1022);
    assert_string_equal(last_line, want);
    /* An escape (4 bytes) that does not fit is dropped whole. */
    memset(text, 'a', 1020);
    strcpy(text + 1020, "\x01b");
    umdev_log(&log, LOG_INFO, "%s", text);
    memset(want, 'a', 1020);
    want[1020] = '\0';
    assert_string_equal(last_line, want);
    /* With a prefix the text gets what the prefix leaves. */
    log.prefix = "pfx";
    memset(text, 'b', 1090);
    text[1090] = '\0';
    umdev_log(&log, LOG_INFO, "%s", text);
    assert_int_equal(strlen(last_line), 1023);
    assert_memory_equal(last_line, "pfx: bbb", 8);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequences),
        cmocka_unit_test(test_log_escape),
    };

    return cmocka_run_group_tests_name("unit.utf8", tests, NULL, NULL);
}
