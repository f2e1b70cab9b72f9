/*
 * `umdevctl stats --openmetrics`: instances' stats objects (docs/CONTROL.md)
 * in the OpenMetrics 1.0 text format, which Prometheus scrapes (a
 * node_exporter textfile collector, or any exporter that runs a command).
 *
 * The format wants every sample of a family together, after the family's
 * TYPE/HELP/UNIT lines, so the walk is family by family over all
 * instances, not instance by instance. Counters' samples carry the
 * `_total` suffix; the exposition ends with `# EOF`.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "umdevctl.h"

/* One label value, escaped as the format says (\\, \", \n). */
static void
put_label_value(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\' || *s == '"')
            fprintf(f, "\\%c", *s);
        else if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

/* `{uuid="..",type="..",parent=".."` plus @extra (pairs, NULL-ended),
 * then `}`. */
static void
put_labels(FILE *f, struct json_object *inst, const char *const *extra)
{
    static const char *const base[] = { "uuid", "type", "parent" };
    size_t i;

    fputc('{', f);
    for (i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
        fprintf(f, "%s%s=\"", i ? "," : "", base[i]);
        put_label_value(f, cli_jstr(inst, base[i], ""));
        fputc('"', f);
    }
    for (i = 0; extra != NULL && extra[i] != NULL; i += 2) {
        fprintf(f, ",%s=\"", extra[i]);
        put_label_value(f, extra[i + 1]);
        fputc('"', f);
    }
    fputc('}', f);
}

static void
put_sample(FILE *f, const char *family, const char *suffix,
           struct json_object *inst, const char *const *extra, int64_t v)
{
    fprintf(f, "%s%s", family, suffix);
    put_labels(f, inst, extra);
    fprintf(f, " %lld\n", (long long)v);
}

static int64_t
get_i64(struct json_object *o, const char *key)
{
    return json_object_get_int64(json_object_object_get(o, key));
}

/* The instance's stats object, or NULL if its worker did not answer. */
static struct json_object *
stats_of(struct json_object *inst)
{
    return json_object_object_get(inst, "counters") != NULL ? inst : NULL;
}

/* The counters every device keeps (the stats object's "counters"). */
static const struct {
    const char *key, *family, *unit, *help;
} counters[] = {
    { "msgs", "umdev_vfio_user_messages", NULL,
      "vfio-user messages the instance's server handled" },
    { "errors", "umdev_vfio_user_errors", NULL,
      "messages answered with an error (or dropped as malformed)" },
    { "region_reads", "umdev_region_reads", NULL,
      "REGION_READ commands served (trapped register reads)" },
    { "region_writes", "umdev_region_writes", NULL,
      "REGION_WRITE commands served (trapped register writes)" },
    { "dma_bytes", "umdev_dma_bytes", "bytes",
      "bytes the device moved to or from guest memory" },
    { "irqs", "umdev_irqs_raised", NULL,
      "interrupts the device raised to the client" },
    { "irqs_dropped", "umdev_irqs_dropped", NULL,
      "interrupts raised while no eventfd was set (lost)" },
    { "attaches", "umdev_client_attaches", NULL,
      "clients that attached to the instance" },
};

static void
put_head(FILE *f, const char *family, const char *type, const char *unit,
         const char *help)
{
    fprintf(f, "# TYPE %s %s\n", family, type);
    if (unit != NULL)
        fprintf(f, "# UNIT %s %s\n", family, unit);
    fprintf(f, "# HELP %s %s\n", family, help);
}

void
cli_print_openmetrics(FILE *f, struct json_object *instances)
{
    size_t n = cli_alen(instances), i, j, k, c;

    put_head(f, "umdev_instance", "info", NULL,
             "a running instance: its type, parent and state");
    for (i = 0; i < n; i++) {
        struct json_object *inst = json_object_array_get_idx(instances, i);
        const char *extra[] = { "state", cli_jstr(inst, "state", ""), NULL };

        put_sample(f, "umdev_instance", "_info", inst, extra, 1);
    }
    put_head(f, "umdev_stats_up", "gauge", NULL,
             "1 if the instance's worker answered for this scrape, else 0");
    for (i = 0; i < n; i++) {
        struct json_object *inst = json_object_array_get_idx(instances, i);

        put_sample(f, "umdev_stats_up", "", inst, NULL, stats_of(inst) != NULL);
    }
    for (c = 0; c < sizeof(counters) / sizeof(counters[0]); c++) {
        put_head(f, counters[c].family, "counter", counters[c].unit,
                 counters[c].help);
        for (i = 0; i < n; i++) {
            struct json_object *s =
                stats_of(json_object_array_get_idx(instances, i));

            if (s != NULL)
                put_sample(f, counters[c].family, "_total", s, NULL,
                           get_i64(json_object_object_get(s, "counters"),
                                   counters[c].key));
        }
    }
    put_head(f, "umdev_refused_accesses", "counter", NULL,
             "accesses the mediation profile refused");
    for (i = 0; i < n; i++) {
        struct json_object *s =
            stats_of(json_object_array_get_idx(instances, i));

        if (s != NULL)
            put_sample(f, "umdev_refused_accesses", "_total", s, NULL,
                       get_i64(s, "refused"));
    }
    put_head(f, "umdev_irq_vectors", "gauge", NULL,
             "vectors of each IRQ index the device offers");
    for (i = 0; i < n; i++) {
        struct json_object *s =
            stats_of(json_object_array_get_idx(instances, i));
        struct json_object *irqs = json_object_object_get(s, "irqs");

        for (j = 0; s != NULL && j < cli_alen(irqs); j++) {
            struct json_object *q = json_object_array_get_idx(irqs, j);
            const char *extra[] = { "irq", cli_jstr(q, "name", "?"), NULL };

            put_sample(f, "umdev_irq_vectors", "", s, extra,
                       get_i64(q, "count"));
        }
    }
    /* Trapped accesses per region, then per declared register. */
    for (k = 0; k < 4; k++) {
        bool reg = k >= 2;
        const char *what = k % 2 ? "writes" : "reads";
        char family[64];

        snprintf(family, sizeof(family), "umdev_%s_trapped_%s",
                 reg ? "register" : "region", what);
        put_head(f, family, "counter", NULL,
                 reg ? (k % 2 ? "trapped writes of one declared register"
                              : "trapped reads of one declared register")
                     : (k % 2 ? "trapped writes of one region"
                              : "trapped reads of one region"));
        for (i = 0; i < n; i++) {
            struct json_object *s =
                stats_of(json_object_array_get_idx(instances, i));
            struct json_object *regions = json_object_object_get(s, "regions");

            for (j = 0; s != NULL && j < cli_alen(regions); j++) {
                struct json_object *r = json_object_array_get_idx(regions, j);
                struct json_object *regs =
                    json_object_object_get(r, "registers");
                const char *region = cli_jstr(r, "name", "?");
                size_t t;

                if (!reg) {
                    const char *extra[] = { "region", region, NULL };

                    put_sample(f, family, "_total", s, extra, get_i64(r, what));
                    continue;
                }
                for (t = 0; t < cli_alen(regs); t++) {
                    struct json_object *x = json_object_array_get_idx(regs, t);
                    char offset[24];
                    const char *extra[] = {
                        "region", region, "register", cli_jstr(x, "name", "?"),
                        "offset", offset, NULL
                    };

                    snprintf(offset, sizeof(offset), "0x%llx",
                             (unsigned long long)get_i64(x, "offset"));
                    put_sample(f, family, "_total", s, extra, get_i64(x, what));
                }
            }
        }
    }
    fputs("# EOF\n", f);
    fflush(f);
}
