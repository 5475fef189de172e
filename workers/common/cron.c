#include "cron.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/*
 * Parsing turns each expression into one bit set per field.  Evaluation walks
 * local calendar days with integer arithmetic (no mktime(), whose handling of
 * skipped and repeated times varies), and converts a wall-clock minute to an
 * instant only for days that match, using localtime_r() alone.
 */

enum { FIELD_MINUTE, FIELD_HOUR, FIELD_DOM, FIELD_MONTH, FIELD_DOW, FIELD_COUNT };

typedef struct field_spec {
    const char *name;
    int min;
    int max;
    const char *const *names; /* three-letter names for min..min+name_count-1 */
    int name_count;
} field_spec;

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static const field_spec fields[FIELD_COUNT] = {
    {"minute", 0, 59, NULL, 0},          {"hour", 0, 23, NULL, 0},
    {"day-of-month", 1, 31, NULL, 0},    {"month", 1, 12, month_names, 12},
    {"day-of-week", 0, 7, day_names, 7},
};

typedef struct descriptor {
    const char *name;
    const char *fields;
} descriptor;

static const descriptor descriptors[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

typedef struct cron_expr {
    uint64_t bits[FIELD_COUNT]; /* bit v set when value v matches; Sunday is bit 0 only */
    bool dom_star;              /* day-of-month starts with '*' (Vixie's DOM_STAR) */
    bool dow_star;              /* day-of-week starts with '*' (Vixie's DOW_STAR) */
} cron_expr;

struct cron_schedule {
    char *text; /* canonical form, see cron_describe() */
    size_t count;
    cron_expr exprs[];
};

/* Bounds on `after`: the years 1 and 9999, so that no date arithmetic overflows. */
#define TIME_MIN ((int64_t)-62135596800)
#define TIME_MAX ((int64_t)253402300799)

/* Longest field text quoted in an error message. */
#define QUOTE_MAX 40
#define QUOTE_LEN (QUOTE_MAX + 4)

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool is_alpha(char c)
{
    c = lower(c);
    return c >= 'a' && c <= 'z';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * Copies text into out (QUOTE_LEN bytes) for an error message: at most
 * QUOTE_MAX characters, anything unprintable shown as '?', so that the reason
 * stays one safe line.
 */
static void quote(const char *text, size_t len, char out[QUOTE_LEN])
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        if (i == QUOTE_MAX) {
            memcpy(out + n, "...", 3);
            n += 3;
            break;
        }
        out[n++] = (text[i] >= 0x20 && text[i] < 0x7f && text[i] != '"') ? text[i] : '?';
    }
    out[n] = '\0';
}

static void describe_char(char c, char *out, size_t out_len)
{
    if (c >= 0x21 && c < 0x7f)
        snprintf(out, out_len, "'%c'", c);
    else
        snprintf(out, out_len, "byte 0x%02x", (unsigned)(unsigned char)c);
}

/*
 * Parses a value of field f at *p (digits, or a name where the field has
 * names) and advances *p.  On failure writes the reason into why.
 */
static bool parse_value(const char **p, const char *end, const field_spec *f, int *value, char *why,
                        size_t why_len)
{
    const char *start = *p;
    char what[16];

    if (*p < end && is_digit(**p)) {
        long v = 0;

        /* Stop accumulating past any valid value so that long digit runs cannot overflow. */
        for (; *p < end && is_digit(**p); (*p)++)
            if (v <= 1000)
                v = v * 10 + (**p - '0');
        if (v < f->min || v > f->max) {
            char q[QUOTE_LEN];

            quote(start, (size_t)(*p - start), q);
            snprintf(why, why_len, "%s is out of range %d-%d", q, f->min, f->max);
            return false;
        }
        *value = (int)v;
        return true;
    }
    if (*p < end && is_alpha(**p)) {
        char q[QUOTE_LEN];

        while (*p < end && is_alpha(**p))
            (*p)++;
        quote(start, (size_t)(*p - start), q);
        if (f->names == NULL) {
            snprintf(why, why_len, "\"%s\": names are not allowed in this field", q);
            return false;
        }
        if (*p - start == 3) {
            for (int i = 0; i < f->name_count; i++) {
                const char *name = f->names[i];

                if (lower(start[0]) == name[0] && lower(start[1]) == name[1] &&
                    lower(start[2]) == name[2]) {
                    *value = f->min + i;
                    return true;
                }
            }
        }
        snprintf(why, why_len, "unknown name \"%s\" (expected %s to %s)", q, f->names[0],
                 f->names[f->name_count - 1]);
        return false;
    }
    if (*p >= end) {
        snprintf(why, why_len, "a value is missing");
        return false;
    }
    describe_char(**p, what, sizeof(what));
    snprintf(why, why_len, "unexpected %s", what);
    return false;
}

/* Parses one comma-separated item ('*', value or range, optional step) into *bits. */
static bool parse_item(const char *item, size_t len, const field_spec *f, uint64_t *bits, char *why,
                       size_t why_len)
{
    const char *p = item, *end = item + len;
    int lo, hi, step = 1;
    char q[QUOTE_LEN];

    if (len == 0) {
        snprintf(why, why_len, "empty list item");
        return false;
    }
    if (*p == '*') {
        lo = f->min;
        hi = f->max;
        p++;
    } else {
        if (!parse_value(&p, end, f, &lo, why, why_len))
            return false;
        hi = lo;
        if (p < end && *p == '-') {
            p++;
            if (!parse_value(&p, end, f, &hi, why, why_len))
                return false;
        } else if (p < end && *p == '/') {
            hi = f->max;
        }
    }
    if (p < end && *p == '/') {
        const char *digits = ++p;
        long v = 0;
        int span = f->max - f->min + 1;

        for (; p < end && is_digit(*p); p++)
            if (v <= 1000)
                v = v * 10 + (*p - '0');
        if (p == digits) {
            snprintf(why, why_len, "a step is missing after '/'");
            return false;
        }
        if (v < 1 || v > span) {
            quote(digits, (size_t)(p - digits), q);
            snprintf(why, why_len, "step %s is out of range 1-%d", q, span);
            return false;
        }
        step = (int)v;
    }
    if (p < end) {
        char what[16];

        describe_char(*p, what, sizeof(what));
        snprintf(why, why_len, "unexpected %s", what);
        return false;
    }
    if (lo > hi) {
        quote(item, len, q);
        snprintf(why, why_len, "range %s goes backwards", q);
        return false;
    }
    for (int v = lo; v <= hi; v += step)
        *bits |= (uint64_t)1 << v;
    return true;
}

/* Parses one field (a comma-separated list) into *bits. */
static bool parse_field(const char *text, size_t len, const field_spec *f, uint64_t *bits,
                        char *why, size_t why_len)
{
    const char *p = text, *end = text + len;

    *bits = 0;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *item_end = comma ? comma : end;

        if (!parse_item(p, (size_t)(item_end - p), f, bits, why, why_len))
            return false;
        if (comma == NULL)
            return true;
        p = comma + 1;
    }
}

static void set_error(char *err, size_t err_len, const char *prefix, const char *what,
                      const char *text, size_t len, const char *why)
{
    char q[QUOTE_LEN];

    if (err == NULL || err_len == 0)
        return;
    quote(text, len, q);
    snprintf(err, err_len, "%s%s \"%s\": %s", prefix, what, q, why);
}

/* Appends len bytes of text to the canonical form, in lower case. */
static void append_lower(char **dst, const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        *(*dst)++ = lower(text[i]);
}

/*
 * Parses one expression (blanks already trimmed, len > 0) into e and appends
 * its canonical form at *canon.  prefix names the expression in errors.
 */
static bool parse_expr(const char *text, size_t len, cron_expr *e, char **canon, const char *prefix,
                       char *err, size_t err_len)
{
    const char *tok[FIELD_COUNT];
    size_t tok_len[FIELD_COUNT];
    size_t n = 0;
    char why[160];
    const char *p = text, *end = text + len;

    if (text[0] == '@') {
        const descriptor *d = NULL;
        size_t name_len = 0;

        while (name_len < len && !is_blank(text[name_len]))
            name_len++;
        for (size_t i = 0; i < sizeof(descriptors) / sizeof(descriptors[0]); i++) {
            const char *name = descriptors[i].name;
            size_t j = 0;

            if (strlen(name) != name_len)
                continue;
            while (j < name_len && lower(text[j]) == name[j])
                j++;
            if (j == name_len) {
                d = &descriptors[i];
                break;
            }
        }
        if (d == NULL) {
            set_error(err, err_len, prefix, "descriptor", text, name_len,
                      "unknown (expected @yearly, @annually, @monthly, @weekly, @daily, "
                      "@midnight or @hourly)");
            return false;
        }
        if (name_len != len) {
            set_error(err, err_len, prefix, "descriptor", text, len,
                      "a descriptor stands alone, without fields");
            return false;
        }
        /* The descriptor's own fields are valid by construction; it stays as written. */
        if (!parse_expr(d->fields, strlen(d->fields), e, NULL, prefix, err, err_len))
            return false;
        if (canon != NULL)
            append_lower(canon, text, len);
        return true;
    }

    while (p < end) {
        const char *start;

        while (p < end && is_blank(*p))
            p++;
        if (p == end)
            break;
        start = p;
        while (p < end && !is_blank(*p))
            p++;
        if (n < FIELD_COUNT) {
            tok[n] = start;
            tok_len[n] = (size_t)(p - start);
        }
        n++;
    }
    if (n != FIELD_COUNT) {
        char q[QUOTE_LEN];

        quote(text, len, q);
        if (err != NULL && err_len > 0)
            snprintf(err, err_len,
                     "%s\"%s\": expected 5 fields (minute hour day-of-month month "
                     "day-of-week), got %zu",
                     prefix, q, n);
        return false;
    }
    memset(e, 0, sizeof(*e));
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        char field_name[32];

        if (!parse_field(tok[i], tok_len[i], &fields[i], &e->bits[i], why, sizeof(why))) {
            snprintf(field_name, sizeof(field_name), "%s field", fields[i].name);
            set_error(err, err_len, prefix, field_name, tok[i], tok_len[i], why);
            return false;
        }
    }
    /* Sunday is 0 and 7 in the syntax, bit 0 only in the set. */
    if (e->bits[FIELD_DOW] & ((uint64_t)1 << 7))
        e->bits[FIELD_DOW] = (e->bits[FIELD_DOW] & ~((uint64_t)1 << 7)) | 1;
    e->dom_star = tok[FIELD_DOM][0] == '*';
    e->dow_star = tok[FIELD_DOW][0] == '*';
    if (canon != NULL) {
        for (size_t i = 0; i < FIELD_COUNT; i++) {
            if (i > 0)
                *(*canon)++ = ' ';
            append_lower(canon, tok[i], tok_len[i]);
        }
    }
    return true;
}

/* Trims blanks around [*start, *end). */
static void trim(const char **start, const char **end)
{
    while (*start < *end && is_blank(**start))
        (*start)++;
    while (*end > *start && is_blank((*end)[-1]))
        (*end)--;
}

dx_status cron_parse(const char *spec, cron_schedule **out, char *err, size_t err_len)
{
    cron_schedule *s = NULL;
    size_t spec_len, count = 0, index = 0;
    const char *p, *end;
    char *canon;
    dx_status status = DX_ERR_INVALID;

    if (err != NULL && err_len > 0)
        err[0] = '\0';
    if (spec == NULL || out == NULL) {
        if (err != NULL && err_len > 0)
            snprintf(err, err_len, "no schedule given");
        return DX_ERR_INVALID;
    }
    spec_len = strnlen(spec, CRON_SPEC_MAX + 1);
    if (spec_len > CRON_SPEC_MAX) {
        if (err != NULL && err_len > 0)
            snprintf(err, err_len, "schedule is longer than %d characters", CRON_SPEC_MAX);
        return DX_ERR_TOO_LARGE;
    }
    end = spec + spec_len;

    /* Count the non-empty expressions first, to size the schedule and to name them in errors. */
    for (p = spec; p <= end;) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *seg_start = p, *seg_end = semi ? semi : end;

        trim(&seg_start, &seg_end);
        if (seg_start < seg_end)
            count++;
        if (semi == NULL)
            break;
        p = semi + 1;
    }
    if (count == 0) {
        if (err != NULL && err_len > 0)
            snprintf(err, err_len, "schedule is empty");
        return DX_ERR_INVALID;
    }
    if (count > CRON_EXPRS_MAX) {
        if (err != NULL && err_len > 0)
            snprintf(err, err_len, "schedule has %zu expressions, at most %d are allowed", count,
                     CRON_EXPRS_MAX);
        return DX_ERR_TOO_LARGE;
    }

    s = calloc(1, sizeof(*s) + count * sizeof(s->exprs[0]));
    if (s == NULL)
        goto nomem;
    s->count = count;
    /*
     * The canonical form is never longer than the spec plus one character per
     * expression: each "; " replaces at least one ';', each field separator at
     * least one blank, and a descriptor is kept as written.
     */
    s->text = malloc(spec_len + count + 1);
    if (s->text == NULL)
        goto nomem;
    canon = s->text;

    for (p = spec; p <= end;) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *seg_start = p, *seg_end = semi ? semi : end;

        trim(&seg_start, &seg_end);
        if (seg_start < seg_end) {
            char prefix[32] = "";

            if (count > 1)
                snprintf(prefix, sizeof(prefix), "expression %zu: ", index + 1);
            if (index > 0) {
                *canon++ = ';';
                *canon++ = ' ';
            }
            if (!parse_expr(seg_start, (size_t)(seg_end - seg_start), &s->exprs[index], &canon,
                            prefix, err, err_len))
                goto fail;
            index++;
        }
        if (semi == NULL)
            break;
        p = semi + 1;
    }
    *canon = '\0';
    *out = s;
    return DX_OK;

nomem:
    status = DX_ERR_NOMEM;
    if (err != NULL && err_len > 0)
        snprintf(err, err_len, "out of memory");
fail:
    cron_destroy(s);
    return status;
}

void cron_destroy(cron_schedule *s)
{
    if (s == NULL)
        return;
    free(s->text);
    free(s);
}

const char *cron_describe(const cron_schedule *s)
{
    return s != NULL ? s->text : "";
}

/*
 * The local clock's reading at instant t, as seconds since 1970-01-01 00:00
 * of the local calendar ("wall seconds").
 */
static bool wall_at(int64_t t, int64_t *wall)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (localtime_r(&tt, &tm) == NULL)
        return false;
    *wall = util_days_from_civil(tm.tm_year + (int64_t)1900, tm.tm_mon + 1, tm.tm_mday) * 86400 +
            tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
    return true;
}

/*
 * The first instant at which the local clock reads wall seconds w or later:
 * the instant of w when the clock shows it once, its first occurrence when
 * the clock goes back over it, and the end of the gap when the clock jumps
 * over it.  This is monotonic in w, which cron_next() relies on.
 *
 * The UTC offsets a day before and after w (and at w) give the candidate
 * instants; one is right unless two transitions fall within a day of each
 * other, which no time zone does.
 */
static bool first_instant(int64_t w, int64_t *out)
{
    int64_t probes[3] = {w - 86400, w, w + 86400};
    int64_t offsets[3], lo_off = 0, hi_off = 0, best = 0, lo, hi;
    size_t n = 0;
    bool found = false;

    for (size_t i = 0; i < 3; i++) {
        int64_t wall, off;
        bool seen = false;

        if (!wall_at(probes[i], &wall))
            return false;
        off = wall - probes[i];
        for (size_t j = 0; j < n; j++)
            seen = seen || offsets[j] == off;
        if (!seen)
            offsets[n++] = off;
    }
    for (size_t i = 0; i < n; i++) {
        int64_t t = w - offsets[i], wall;

        if (i == 0 || offsets[i] < lo_off)
            lo_off = offsets[i];
        if (i == 0 || offsets[i] > hi_off)
            hi_off = offsets[i];
        if (!wall_at(t, &wall))
            return false;
        if (wall == w && (!found || t < best)) {
            best = t;
            found = true;
        }
    }
    if (found) {
        *out = best;
        return true;
    }

    /*
     * w is in a gap: the clock reads less than w at w - hi_off and more at
     * w - lo_off.  Search the second at which it jumps past w.
     */
    lo = w - hi_off;
    hi = w - lo_off;
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2, wall;

        if (!wall_at(mid, &wall))
            return false;
        if (wall >= w)
            hi = mid;
        else
            lo = mid;
    }
    *out = hi;
    return true;
}

static int64_t floor_mod(int64_t a, int64_t b)
{
    int64_t r = a % b;

    return r < 0 ? r + b : r;
}

/* Whether the local calendar day (days since 1970-01-01) matches e's date fields. */
static bool day_matches(const cron_expr *e, int64_t day)
{
    int64_t year;
    int month, mday;
    bool dom_ok, dow_ok;

    util_civil_from_days(day, &year, &month, &mday);
    if (!(e->bits[FIELD_MONTH] & ((uint64_t)1 << month)))
        return false;
    dom_ok = (e->bits[FIELD_DOM] >> mday) & 1;
    dow_ok = (e->bits[FIELD_DOW] >> floor_mod(day + 4, 7)) & 1; /* 1970-01-01 was a Thursday */
    if (e->dom_star || e->dow_star)
        return dom_ok && dow_ok;
    return dom_ok || dow_ok;
}

static bool minute_matches(const cron_expr *e, int minute_of_day)
{
    return ((e->bits[FIELD_HOUR] >> (minute_of_day / 60)) & 1) &&
           ((e->bits[FIELD_MINUTE] >> (minute_of_day % 60)) & 1);
}

static dx_status next_expr(const cron_expr *e, time_t after, int64_t *next)
{
    struct tm tm;
    int64_t first_day;

    if (localtime_r(&after, &tm) == NULL)
        return DX_ERR_INVALID;
    /*
     * Start on the local date of `after`: a minute whose first instant is
     * after `after` is one the clock had not yet reached, so not on an earlier date.
     */
    first_day = util_days_from_civil(tm.tm_year + (int64_t)1900, tm.tm_mon + 1, tm.tm_mday);
    for (int64_t day = first_day; day <= first_day + CRON_HORIZON_DAYS; day++) {
        int64_t base = day * 86400, t;
        int lo, hi;

        if (!day_matches(e, day))
            continue;
        /*
         * Find the first minute of the day whose instant is after `after` by
         * bisection (first_instant() is monotonic), then the first matching
         * minute from there.
         */
        if (!first_instant(base, &t))
            return DX_ERR_INVALID;
        if (t > after) {
            lo = 0;
        } else {
            if (!first_instant(base + 1439 * 60, &t))
                return DX_ERR_INVALID;
            if (t <= after)
                continue;
            lo = 1;
            hi = 1439;
            while (lo < hi) {
                int mid = lo + (hi - lo) / 2;

                if (!first_instant(base + mid * 60, &t))
                    return DX_ERR_INVALID;
                if (t > after)
                    hi = mid;
                else
                    lo = mid + 1;
            }
        }
        for (int minute = lo; minute < 1440; minute++) {
            if (minute_matches(e, minute)) {
                if (!first_instant(base + minute * 60, &t))
                    return DX_ERR_INVALID;
                *next = t;
                return DX_OK;
            }
        }
    }
    return DX_ERR_NOT_FOUND;
}

dx_status cron_next(const cron_schedule *s, time_t after, time_t *next)
{
    int64_t best = 0;
    bool found = false;

    if (s == NULL || next == NULL || (int64_t)after < TIME_MIN || (int64_t)after > TIME_MAX)
        return DX_ERR_INVALID;
    for (size_t i = 0; i < s->count; i++) {
        int64_t t;
        dx_status status = next_expr(&s->exprs[i], after, &t);

        if (status == DX_ERR_NOT_FOUND)
            continue;
        if (status != DX_OK)
            return status;
        if (!found || t < best) {
            best = t;
            found = true;
        }
    }
    if (!found)
        return DX_ERR_NOT_FOUND;
    *next = (time_t)best;
    return DX_OK;
}

size_t cron_between(const cron_schedule *s, time_t from, time_t to, time_t *out, size_t max)
{
    size_t n = 0;
    time_t t = from, next;

    while (n < max && t < to && cron_next(s, t, &next) == DX_OK && next <= to) {
        if (out != NULL)
            out[n] = next;
        n++;
        t = next;
    }
    return n;
}

bool cron_matches(const cron_schedule *s, const struct tm *local)
{
    if (s == NULL || local == NULL || local->tm_min < 0 || local->tm_min > 59 ||
        local->tm_hour < 0 || local->tm_hour > 23 || local->tm_mday < 1 || local->tm_mday > 31 ||
        local->tm_mon < 0 || local->tm_mon > 11 || local->tm_wday < 0 || local->tm_wday > 6)
        return false;
    for (size_t i = 0; i < s->count; i++) {
        const cron_expr *e = &s->exprs[i];
        bool dom_ok = (e->bits[FIELD_DOM] >> local->tm_mday) & 1;
        bool dow_ok = (e->bits[FIELD_DOW] >> local->tm_wday) & 1;
        bool day_ok = (e->dom_star || e->dow_star) ? (dom_ok && dow_ok) : (dom_ok || dow_ok);

        if (day_ok && ((e->bits[FIELD_MONTH] >> (local->tm_mon + 1)) & 1) &&
            minute_matches(e, local->tm_hour * 60 + local->tm_min))
            return true;
    }
    return false;
}
