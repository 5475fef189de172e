#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytebuf.h"
#include "event.h"

#ifndef DX_VERSION
#define DX_VERSION "unknown"
#endif

/*
 * The registry is a short list of metrics (a worker defines about twenty), so
 * metrics are found by a linear scan.  Series can be many (one per client),
 * so each metric indexes its series with an open-addressing hash table keyed
 * by the raw label_values string the caller passes.  Sorting happens only
 * when rendering.
 */

#define DROPPED      (&metrics_table[DX_METRICS_SERIES_DROPPED_TOTAL])
#define MAX_LABELS   8
#define MAX_REPORTED 32 /* unknown names reported once each, up to this many */

static const double default_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                         2.5,   5,    10,    30,   60,  120,  300};

typedef struct series {
    char *key;         /* label values as given, the hash key */
    char **values;     /* label values, split out of a copy of key */
    double value;      /* counter, gauge; histogram sum */
    uint64_t count;    /* histogram observations */
    uint64_t *buckets; /* histogram, per bucket (not cumulative); +Inf is the last */
} series;

typedef struct metric {
    char *name;
    char *help;
    metric_type type;
    size_t label_count;
    char **labels;
    double *bounds; /* histogram upper bounds, increasing, without +Inf */
    size_t bound_count;
    series **series;
    size_t series_count, series_cap;
    size_t *index; /* hash slots: 0 = empty, else position in series + 1 */
    size_t index_cap;
    int reported; /* a misuse of this metric was already logged */
} metric;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static metric **metrics;
static size_t metric_count, metric_cap;
static char *reported_names[MAX_REPORTED];
static size_t reported_count;

/* ---------- small helpers ---------- */

static void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void warn(const char *fmt, ...)
{
    va_list ap;

    fputs("metrics: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Logs a misuse of m once; later misuses stay silent so a hot path cannot flood the log. */
static void report(metric *m, const char *what, const char *label_values)
{
    if (m->reported)
        return;
    m->reported = 1;
    warn("%s: %s (label values \"%s\"); ignored, reported once", m->name, what,
         label_values ? label_values : "");
}

static void report_unknown(const char *name)
{
    for (size_t i = 0; i < reported_count; i++)
        if (strcmp(reported_names[i], name) == 0)
            return;
    if (reported_count < MAX_REPORTED) {
        reported_names[reported_count] = strdup(name);
        if (reported_names[reported_count])
            reported_count++;
    }
    warn("%s: not defined; updates ignored, reported once", name);
}

static int valid_name(const char *s, int colon)
{
    if (!s || !*s)
        return 0;
    for (const char *p = s; *p; p++) {
        int alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
                    (colon && *p == ':');
        int digit = *p >= '0' && *p <= '9';
        if (!alpha && !(digit && p != s))
            return 0;
    }
    return 1;
}

/*
 * Splits a comma-separated list into count parts in one allocation: an array
 * of pointers followed by a copy of the string.  "" means no parts when
 * empty_is_none, else one empty part.  Returns NULL when out of memory or
 * when the list has more than max parts.
 */
static char **split(const char *s, int empty_is_none, size_t max, size_t *count)
{
    size_t n = 1, len;
    char **parts, *copy;

    if (!s)
        s = "";
    if (!*s && empty_is_none) {
        *count = 0;
        return calloc(1, sizeof(char *));
    }
    for (const char *p = s; *p; p++)
        n += *p == ',';
    if (n > max)
        return NULL;
    len = strlen(s);
    parts = malloc(n * sizeof(char *) + len + 1);
    if (!parts)
        return NULL;
    copy = (char *)(parts + n);
    memcpy(copy, s, len + 1);
    parts[0] = copy;
    for (size_t i = 1; *copy; copy++) {
        if (*copy == ',') {
            *copy = '\0';
            parts[i++] = copy + 1;
        }
    }
    *count = n;
    return parts;
}

static size_t count_values(const char *s, size_t label_count)
{
    size_t n = 1;

    if (!s || !*s)
        return label_count == 0 ? 0 : 1;
    for (; *s; s++)
        n += *s == ',';
    return n;
}

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

/* ---------- the registry ---------- */

static metric *find_metric(const char *name)
{
    for (size_t i = 0; i < metric_count; i++)
        if (strcmp(metrics[i]->name, name) == 0)
            return metrics[i];
    return NULL;
}

static void series_destroy(series *s)
{
    if (!s)
        return;
    free(s->key);
    free(s->values);
    free(s->buckets);
    free(s);
}

static void metric_destroy(metric *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->series_count; i++)
        series_destroy(m->series[i]);
    free(m->series);
    free(m->index);
    free(m->name);
    free(m->help);
    free(m->labels);
    free(m->bounds);
    free(m);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Adds a metric; the caller holds the lock.  Returns the metric or NULL (logged). */
static metric *define_locked(const char *name, metric_type type, const char *help,
                             const char *label_names, const double *buckets, size_t bucket_count)
{
    metric *m = find_metric(name);
    size_t i;

    if (m) {
        if (m->type != type)
            warn("%s: defined again with another type; first definition kept", name);
        return m;
    }
    m = calloc(1, sizeof(*m));
    if (!m)
        goto fail;
    m->type = type;
    m->name = strdup(name);
    m->help = strdup(help ? help : "");
    m->labels = split(label_names, 1, MAX_LABELS, &m->label_count);
    if (!m->name || !m->help || !m->labels) {
        warn("%s: out of memory or more than %d labels; not defined", name, MAX_LABELS);
        goto fail;
    }
    for (i = 0; i < m->label_count; i++) {
        const char *l = m->labels[i];
        if (!valid_name(l, 0) || strncmp(l, "__", 2) == 0 ||
            (type == METRIC_HISTOGRAM && strcmp(l, "le") == 0)) {
            warn("%s: invalid label name \"%s\"; not defined", name, l);
            goto fail;
        }
    }
    if (type == METRIC_HISTOGRAM) {
        if (!buckets || bucket_count == 0) {
            buckets = default_buckets;
            bucket_count = sizeof(default_buckets) / sizeof(default_buckets[0]);
        }
        m->bounds = malloc(bucket_count * sizeof(double));
        if (!m->bounds)
            goto fail;
        /* Bounds are kept sorted and unique; +Inf is implicit, so drop it and NaN if given. */
        for (i = 0; i < bucket_count; i++)
            if (!isnan(buckets[i]) && !isinf(buckets[i]))
                m->bounds[m->bound_count++] = buckets[i];
        qsort(m->bounds, m->bound_count, sizeof(double), cmp_double);
        for (i = 1; i < m->bound_count;) {
            if (m->bounds[i] == m->bounds[i - 1]) {
                memmove(m->bounds + i, m->bounds + i + 1,
                        (m->bound_count - i - 1) * sizeof(double));
                m->bound_count--;
            } else {
                i++;
            }
        }
    }
    if (metric_count == metric_cap) {
        size_t cap = metric_cap ? metric_cap * 2 : 32;
        metric **grown = realloc(metrics, cap * sizeof(*grown));
        if (!grown)
            goto fail;
        metrics = grown;
        metric_cap = cap;
    }
    metrics[metric_count++] = m;
    return m;

fail:
    metric_destroy(m);
    return NULL;
}

static int index_grow(metric *m)
{
    size_t cap = m->index_cap ? m->index_cap * 2 : 16;
    size_t *index = calloc(cap, sizeof(size_t));

    if (!index)
        return -1;
    for (size_t i = 0; i < m->series_count; i++) {
        size_t slot = hash(m->series[i]->key) & (cap - 1);
        while (index[slot])
            slot = (slot + 1) & (cap - 1);
        index[slot] = i + 1;
    }
    free(m->index);
    m->index = index;
    m->index_cap = cap;
    return 0;
}

static series *series_create(metric *m, const char *key)
{
    series *s = calloc(1, sizeof(*s));
    size_t n;

    if (!s)
        return NULL;
    s->key = strdup(key);
    s->values = split(key, m->label_count == 0, MAX_LABELS, &n);
    if (m->type == METRIC_HISTOGRAM)
        s->buckets = calloc(m->bound_count + 1, sizeof(uint64_t));
    if (!s->key || !s->values || (m->type == METRIC_HISTOGRAM && !s->buckets)) {
        series_destroy(s);
        return NULL;
    }
    return s;
}

static void count_dropped(const char *name);

/*
 * Finds or creates the series of m for label_values; the caller holds the
 * lock.  Returns NULL when the values do not fit the labels (reported), when
 * the metric is full (counted) or when out of memory.
 */
static series *lookup(metric *m, const char *label_values)
{
    const char *key = label_values ? label_values : "";
    size_t slot;
    series *s;

    if (count_values(key, m->label_count) != m->label_count) {
        report(m, "wrong number of label values", key);
        return NULL;
    }
    if (m->index_cap) {
        slot = hash(key) & (m->index_cap - 1);
        for (; m->index[slot]; slot = (slot + 1) & (m->index_cap - 1)) {
            s = m->series[m->index[slot] - 1];
            if (strcmp(s->key, key) == 0)
                return s;
        }
    }
    if (m->series_count >= METRICS_MAX_SERIES) {
        count_dropped(m->name);
        return NULL;
    }
    /* Keep the table at most half full so probes stay short. */
    if ((m->series_count + 1) * 2 > m->index_cap && index_grow(m) != 0)
        return NULL;
    if (m->series_count == m->series_cap) {
        size_t cap = m->series_cap ? m->series_cap * 2 : 8;
        series **grown = realloc(m->series, cap * sizeof(*grown));
        if (!grown)
            return NULL;
        m->series = grown;
        m->series_cap = cap;
    }
    s = series_create(m, key);
    if (!s)
        return NULL;
    m->series[m->series_count++] = s;
    slot = hash(key) & (m->index_cap - 1);
    while (m->index[slot])
        slot = (slot + 1) & (m->index_cap - 1);
    m->index[slot] = m->series_count;
    return s;
}

static void count_dropped(const char *name)
{
    metric *d;
    series *s;

    /* The dropped counter cannot overflow itself: it has one series per metric. */
    if (strcmp(name, DROPPED->name) == 0)
        return;
    d = define_locked(DROPPED->name, DROPPED->type, DROPPED->help, DROPPED->labels, NULL, 0);
    if (!d)
        return;
    s = lookup(d, name);
    if (s)
        s->value += 1;
}

/* ---------- public API ---------- */

void metrics_define(const char *name, metric_type type, const char *help, const char *label_names,
                    const double *buckets, size_t bucket_count)
{
    metric *m;

    if (!valid_name(name, 1)) {
        warn("invalid metric name \"%s\"; not defined", name ? name : "(null)");
        return;
    }
    if (type != METRIC_COUNTER && type != METRIC_GAUGE && type != METRIC_HISTOGRAM) {
        warn("%s: unknown type %d; not defined", name, (int)type);
        return;
    }
    pthread_mutex_lock(&lock);
    m = define_locked(name, type, help, label_names, buckets, bucket_count);
    /* A metric without labels has exactly one series: expose it from the start. */
    if (m && m->label_count == 0)
        lookup(m, "");
    pthread_mutex_unlock(&lock);
}

enum op { OP_ADD, OP_SET, OP_OBSERVE };

static void update(const char *name, const char *label_values, double value, enum op op)
{
    metric *m;
    series *s;

    if (!name)
        return;
    pthread_mutex_lock(&lock);
    m = find_metric(name);
    if (!m) {
        report_unknown(name);
        goto out;
    }
    if ((op == OP_ADD && m->type == METRIC_HISTOGRAM) ||
        (op == OP_SET && m->type != METRIC_GAUGE) ||
        (op == OP_OBSERVE && m->type != METRIC_HISTOGRAM)) {
        report(m,
               op == OP_ADD   ? "add on a histogram"
               : op == OP_SET ? "set on a counter or histogram"
                              : "observe on a counter or gauge",
               label_values);
        goto out;
    }
    if (op == OP_ADD && m->type == METRIC_COUNTER && !(value >= 0)) {
        report(m, "negative or NaN increment of a counter", label_values);
        goto out;
    }
    s = lookup(m, label_values);
    if (!s)
        goto out;
    switch (op) {
    case OP_ADD:
        s->value += value;
        break;
    case OP_SET:
        s->value = value;
        break;
    case OP_OBSERVE: {
        size_t b = 0;
        while (b < m->bound_count && !(value <= m->bounds[b]))
            b++;
        s->buckets[b]++;
        s->count++;
        s->value += value;
        break;
    }
    }
out:
    pthread_mutex_unlock(&lock);
}

const metric_spec metrics_table[METRICS_COUNT] = {
#define METRICS_SPEC_(id, name, type, labels, scope, help) [id] = {name, type, labels, scope, help},
    METRICS_TABLE(METRICS_SPEC_)
#undef METRICS_SPEC_
};

/* The name of a table row; NULL (reported, then ignored) for an id out of range. */
static const char *name_of(metric_id id)
{
    return (unsigned)id < METRICS_COUNT ? metrics_table[id].name : NULL;
}

void metrics_add(metric_id id, const char *label_values, double value)
{
    update(name_of(id), label_values, value, OP_ADD);
}

void metrics_set(metric_id id, const char *label_values, double value)
{
    update(name_of(id), label_values, value, OP_SET);
}

void metrics_observe(metric_id id, const char *label_values, double value)
{
    update(name_of(id), label_values, value, OP_OBSERVE);
}

void metrics_add_named(const char *name, const char *label_values, double value)
{
    update(name, label_values, value, OP_ADD);
}

void metrics_set_named(const char *name, const char *label_values, double value)
{
    update(name, label_values, value, OP_SET);
}

void metrics_observe_named(const char *name, const char *label_values, double value)
{
    update(name, label_values, value, OP_OBSERVE);
}

void metrics_reset(void)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < metric_count; i++)
        metric_destroy(metrics[i]);
    free(metrics);
    metrics = NULL;
    metric_count = metric_cap = 0;
    for (size_t i = 0; i < reported_count; i++)
        free(reported_names[i]);
    reported_count = 0;
    pthread_mutex_unlock(&lock);
}

/* ---------- rendering ---------- */

/* Writes s escaped for a label value (label = 1: \\ \" \n) or a HELP text (label = 0: \\ \n). */
static void put_escaped(bytebuf *b, const char *s, int label)
{
    for (; *s; s++) {
        if (*s == '\\')
            bytebuf_puts(b, "\\\\");
        else if (*s == '\n')
            bytebuf_puts(b, "\\n");
        else if (*s == '"' && label)
            bytebuf_puts(b, "\\\"");
        else
            bytebuf_putc(b, *s);
    }
}

/* Formats a sample value: the shortest decimal that reads back as the same double. */
static void format_double(char *out, size_t len, double v)
{
    if (isnan(v)) {
        snprintf(out, len, "NaN");
    } else if (isinf(v)) {
        snprintf(out, len, v > 0 ? "+Inf" : "-Inf");
    } else {
        for (int precision = 15; precision <= 17; precision++) {
            snprintf(out, len, "%.*g", precision, v);
            if (strtod(out, NULL) == v)
                break;
        }
    }
}

static void put_double(bytebuf *b, double v)
{
    char tmp[64];

    format_double(tmp, sizeof(tmp), v);
    bytebuf_puts(b, tmp);
}

static void put_u64(bytebuf *b, uint64_t v)
{
    char tmp[32];

    snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
    bytebuf_puts(b, tmp);
}

/* Writes {a="x",b="y"} (with le="bound" last when le is not NULL), or nothing without labels. */
static void put_labels(bytebuf *b, const metric *m, const series *s, const char *le)
{
    if (m->label_count == 0 && !le)
        return;
    bytebuf_putc(b, '{');
    for (size_t i = 0; i < m->label_count; i++) {
        if (i)
            bytebuf_putc(b, ',');
        bytebuf_puts(b, m->labels[i]);
        bytebuf_puts(b, "=\"");
        put_escaped(b, s->values[i], 1);
        bytebuf_putc(b, '"');
    }
    if (le) {
        if (m->label_count)
            bytebuf_putc(b, ',');
        bytebuf_puts(b, "le=\"");
        bytebuf_puts(b, le);
        bytebuf_putc(b, '"');
    }
    bytebuf_putc(b, '}');
}

static int cmp_metric(const void *a, const void *b)
{
    return strcmp((*(metric *const *)a)->name, (*(metric *const *)b)->name);
}

/* Label count of the series being sorted; qsort has no context argument in C11. */
static size_t sort_label_count;

static int cmp_series(const void *a, const void *b)
{
    const series *x = *(series *const *)a, *y = *(series *const *)b;

    for (size_t i = 0; i < sort_label_count; i++) {
        int c = strcmp(x->values[i], y->values[i]);
        if (c)
            return c;
    }
    return 0;
}

/* Writes a sample's name (with suffix), its labels (le for a bucket) and the
 * space before its value. */
static void put_sample_name(bytebuf *b, const metric *m, const series *s, const char *suffix,
                            const char *le)
{
    bytebuf_puts(b, m->name);
    bytebuf_puts(b, suffix);
    put_labels(b, m, s, le);
    bytebuf_putc(b, ' ');
}

static void render_metric(bytebuf *b, metric *m)
{
    static const char *type_names[] = {"counter", "gauge", "histogram"};

    if (m->series_count == 0)
        return;
    bytebuf_puts(b, "# HELP ");
    bytebuf_puts(b, m->name);
    bytebuf_putc(b, ' ');
    put_escaped(b, m->help, 0);
    bytebuf_puts(b, "\n# TYPE ");
    bytebuf_puts(b, m->name);
    bytebuf_putc(b, ' ');
    bytebuf_puts(b, type_names[m->type]);
    bytebuf_putc(b, '\n');

    /* Sorting reorders the series array only; the hash index is rebuilt to match. */
    sort_label_count = m->label_count;
    qsort(m->series, m->series_count, sizeof(series *), cmp_series);
    if (m->index_cap) {
        memset(m->index, 0, m->index_cap * sizeof(size_t));
        for (size_t i = 0; i < m->series_count; i++) {
            size_t slot = hash(m->series[i]->key) & (m->index_cap - 1);
            while (m->index[slot])
                slot = (slot + 1) & (m->index_cap - 1);
            m->index[slot] = i + 1;
        }
    }

    for (size_t i = 0; i < m->series_count; i++) {
        series *s = m->series[i];
        if (m->type != METRIC_HISTOGRAM) {
            put_sample_name(b, m, s, "", NULL);
            put_double(b, s->value);
            bytebuf_putc(b, '\n');
            continue;
        }
        uint64_t cumulative = 0;
        char le[64];
        for (size_t k = 0; k <= m->bound_count; k++) {
            cumulative += s->buckets[k];
            if (k < m->bound_count)
                format_double(le, sizeof(le), m->bounds[k]);
            else
                snprintf(le, sizeof(le), "+Inf");
            put_sample_name(b, m, s, "_bucket", le);
            put_u64(b, cumulative);
            bytebuf_putc(b, '\n');
        }
        put_sample_name(b, m, s, "_sum", NULL);
        put_double(b, s->value);
        bytebuf_putc(b, '\n');
        put_sample_name(b, m, s, "_count", NULL);
        put_u64(b, s->count);
        bytebuf_putc(b, '\n');
    }
}

char *metrics_render(void)
{
    bytebuf b = BYTEBUF_INIT;

    pthread_mutex_lock(&lock);
    if (metric_count)
        qsort(metrics, metric_count, sizeof(metric *), cmp_metric);
    for (size_t i = 0; i < metric_count; i++)
        render_metric(&b, metrics[i]);
    pthread_mutex_unlock(&lock);
    /* An empty registry renders as "", not NULL. */
    return bytebuf_take(&b);
}

/* ---------- the standard families ---------- */

void metrics_define_standard(const char *worker)
{
    static const char *const sftp_kinds[] = {"connect", "auth", "host_key", "io", "timeout"};
    static const char *const input_kinds[] = {
        "undecodable",   "invalid_event",    "invalid_client", "oversized",      "unusable_file",
        "unusable_name", "not_regular_file", "slow_request",   "invalid_profile"};
    static const metric_id event_families[] = {DX_EVENTS_CONSUMED_TOTAL, DX_EVENTS_PUBLISHED_TOTAL,
                                               DX_EVENTS_FAILED_TOTAL, DX_EVENTS_TERMINATED_TOTAL,
                                               DX_EVENTS_REDELIVERED_TOTAL};
    char labels[256];

    for (size_t i = 0; i < METRICS_COUNT; i++) {
        const metric_spec *m = &metrics_table[i];

        if (m->scope == NULL || (worker != NULL && strcmp(m->scope, worker) == 0))
            metrics_define(m->name, m->type, m->help, m->labels, NULL, 0);
    }
    for (size_t i = 0; i < sizeof(sftp_kinds) / sizeof(sftp_kinds[0]); i++)
        metrics_add(DX_SFTP_ERRORS_TOTAL, sftp_kinds[i], 0);
    for (size_t i = 0; i < sizeof(input_kinds) / sizeof(input_kinds[0]); i++)
        metrics_add(DX_INVALID_INPUT_TOTAL, input_kinds[i], 0);
    /* The subjects are bounded too; a counter that only appears at its first
     * failure would hide that failure from increase() and rate(). */
    for (size_t i = 0; i < sizeof(event_families) / sizeof(event_families[0]); i++)
        for (size_t j = 0; j < EVENT_TYPE_COUNT; j++)
            metrics_add(event_families[i], event_subjects[j], 0);
    snprintf(labels, sizeof(labels), "%s,%s", worker ? worker : "unknown", DX_VERSION);
    metrics_set(DX_BUILD_INFO, labels, 1);
}
