#include "page.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bytebuf.h"
#include "util.h"

/*
 * The page is built in one growing buffer (bytebuf.h), whose sticky failure
 * keeps the renderers linear: page_render() checks for failure once, at the
 * end.
 */

/* Appends s escaped for HTML text and attribute values. */
static void esc(bytebuf *b, const char *s)
{
    const char *run = s;

    for (; *s; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            continue;
        }
        bytebuf_add(b, run, (size_t)(s - run));
        bytebuf_puts(b, rep);
        run = s + 1;
    }
    bytebuf_add(b, run, (size_t)(s - run));
}

/* ---------- reading the status document ---------- */

/* The string member name of obj, or NULL when absent or not a string. */
static const char *str(const cJSON *obj, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

    return cJSON_IsString(item) && item->valuestring ? item->valuestring : NULL;
}

/* Reads a non-negative integer member into *out; returns 0 when absent or not a number. */
static int num(const cJSON *obj, const char *name, long long *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    double v;

    if (!cJSON_IsNumber(item))
        return 0;
    v = item->valuedouble;
    if (isnan(v) || v < 0 || v > 9e15)
        return 0;
    *out = (long long)v;
    return 1;
}

static long long num_or_zero(const cJSON *obj, const char *name)
{
    long long v = 0;

    num(obj, name, &v);
    return v;
}

/* ---------- formatting ---------- */

/* Appends v with thousands separators: 1234567 -> "1,234,567". */
static void put_count(bytebuf *b, long long v)
{
    char digits[32], out[48];
    int n = snprintf(digits, sizeof(digits), "%lld", v), o = 0;

    for (int i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
    bytebuf_puts(b, out);
}

/* A table cell with a count, or a dash when the member is missing. */
static void put_count_cell(bytebuf *b, const cJSON *obj, const char *name, const char *cls)
{
    long long v;

    if (obj && num(obj, name, &v)) {
        /* Zeros are muted so the counts that matter stand out. */
        bytebuf_printf(b, "<td class=\"num %s%s\">", cls, v == 0 ? " zero" : "");
        put_count(b, v);
    } else {
        bytebuf_printf(b, "<td class=\"num %s\"><span class=\"none\">&ndash;</span>", cls);
    }
    bytebuf_puts(b, "</td>");
}

static int is_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/*
 * Appends a timestamp as <time>: "2026-11-24T08:00:04.5Z" reads
 * "2026-11-24 08:00:04 UTC"; anything else is shown as given.
 */
static void put_time(bytebuf *b, const char *at)
{
    if (!at || !*at) {
        bytebuf_puts(b, "<span class=\"none\">&ndash;</span>");
        return;
    }
    bytebuf_puts(b, "<time datetime=\"");
    esc(b, at);
    bytebuf_puts(b, "\">");
    if (strlen(at) >= 19 && is_digits(at, 4) && at[4] == '-' && at[10] == 'T' && at[13] == ':' &&
        at[16] == ':') {
        const char *zone = at + 19;
        bytebuf_add(b, at, 10);
        bytebuf_puts(b, " ");
        bytebuf_add(b, at + 11, 8);
        if (*zone == '.')
            for (zone++; *zone >= '0' && *zone <= '9'; zone++)
                ;
        if (strcmp(zone, "Z") == 0) {
            bytebuf_puts(b, " UTC");
        } else if (*zone) {
            bytebuf_puts(b, " ");
            esc(b, zone);
        }
    } else {
        esc(b, at);
    }
    bytebuf_puts(b, "</time>");
}

/* A text cell: escaped, or a dash when missing. */
static void put_text_cell(bytebuf *b, const char *s, const char *cls)
{
    bytebuf_printf(b, "<td class=\"%s\">", cls);
    if (s && *s) {
        esc(b, s);
    } else {
        bytebuf_puts(b, "<span class=\"none\">&ndash;</span>");
    }
    bytebuf_puts(b, "</td>");
}

/* A trace id cell: the first 8 characters, the whole id in the tooltip and for copying. */
static void put_trace_cell(bytebuf *b, const char *trace)
{
    bytebuf_puts(b, "<td class=\"trace\">");
    if (trace && *trace) {
        bytebuf_puts(b, "<code title=\"");
        esc(b, trace);
        bytebuf_puts(b, "\">");
        if (strlen(trace) > 8) {
            char head[9];
            memcpy(head, trace, 8);
            head[8] = '\0';
            esc(b, head);
            bytebuf_puts(b, "&hellip;");
        } else {
            esc(b, trace);
        }
        bytebuf_puts(b, "</code>");
    } else {
        bytebuf_puts(b, "<span class=\"none\">&ndash;</span>");
    }
    bytebuf_puts(b, "</td>");
}

/* ---------- dates ---------- */

/* The calendar of util.h, in the types of this file. */
static long days_from_civil(long y, unsigned m, unsigned d)
{
    return (long)util_days_from_civil(y, (int)m, (int)d);
}

static void civil_from_days(long z, long *y, unsigned *m, unsigned *d)
{
    int64_t year;
    int month, mday;

    util_civil_from_days(z, &year, &month, &mday);
    *y = (long)year;
    *m = (unsigned)month;
    *d = (unsigned)mday;
}

/* Parses the "YYYY-MM-DD" at the start of s into days since the epoch; returns 0 on failure. */
static int parse_day(const char *s, long *days)
{
    static const unsigned month_days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    long y;
    unsigned m, d;
    long back_y;
    unsigned back_m, back_d;

    if (!s || strlen(s) < 10 || !is_digits(s, 4) || s[4] != '-' || !is_digits(s + 5, 2) ||
        s[7] != '-' || !is_digits(s + 8, 2))
        return 0;
    y = strtol(s, NULL, 10);
    m = (unsigned)((s[5] - '0') * 10 + (s[6] - '0'));
    d = (unsigned)((s[8] - '0') * 10 + (s[9] - '0'));
    if (m < 1 || m > 12 || d < 1 || d > month_days[m - 1])
        return 0;
    *days = days_from_civil(y, m, d);
    /* 29 February of a common year does not survive the round trip. */
    civil_from_days(*days, &back_y, &back_m, &back_d);
    return back_m == m && back_d == d;
}

static void format_day(long days, char out[11])
{
    long y;
    unsigned m, d;

    civil_from_days(days, &y, &m, &d);
    /* The modulos only tell the compiler the fields fit; dates here have 4-digit years. */
    snprintf(out, 11, "%04u-%02u-%02u", (unsigned)((y % 10000 + 10000) % 10000), m % 100, d % 100);
}

/* ---------- runs and the per-day aggregation ---------- */

/* Newest first by "at" (ISO 8601 sorts as text), then by order date; entries without "at" last. */
static int cmp_newest(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    const char *xa = str(x, "at"), *ya = str(y, "at");
    const char *xd = str(x, "order_date"), *yd = str(y, "order_date");
    int c;

    if (!xa || !ya)
        c = (xa == NULL) - (ya == NULL);
    else
        c = -strcmp(xa, ya);
    if (c == 0 && xd && yd)
        c = -strcmp(xd, yd);
    return c;
}

static int cmp_opt(const char *x, const char *y)
{
    return strcmp(x ? x : "", y ? y : "");
}

/* Groups runs by output (client_id, order_date, output), newest first inside a group. */
static int cmp_output(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    int c = cmp_opt(str(x, "client_id"), str(y, "client_id"));

    if (c == 0)
        c = cmp_opt(str(x, "order_date"), str(y, "order_date"));
    if (c == 0)
        c = cmp_opt(str(x, "output"), str(y, "output"));
    if (c == 0)
        c = cmp_newest(a, b);
    return c;
}

/*
 * The members of an array, as a malloc'd array of pointers sorted by cmp
 * (NULL for no sort).  Returns NULL (with *count = 0) for an empty or missing
 * array, and sets *failed when out of memory.
 */
static const cJSON **items(const cJSON *array, int (*cmp)(const void *, const void *),
                           size_t *count, int *failed)
{
    const cJSON **list;
    const cJSON *item;
    size_t n = 0;

    *count = 0;
    if (!cJSON_IsArray(array))
        return NULL;
    cJSON_ArrayForEach(item, array)
    {
        if (cJSON_IsObject(item))
            n++;
    }
    if (n == 0)
        return NULL;
    list = malloc(n * sizeof(*list));
    if (!list) {
        *failed = 1;
        return NULL;
    }
    n = 0;
    cJSON_ArrayForEach(item, array)
    {
        if (cJSON_IsObject(item))
            list[n++] = item;
    }
    if (cmp)
        qsort(list, n, sizeof(*list), cmp);
    *count = n;
    return list;
}

typedef struct day {
    long long rows_in, rows_out, rows_rejected, runs, failures;
} day;

/*
 * Sums the runs per order date into days[0..PAGE_CHART_DAYS-1], days[0]
 * being first_day, counting each output once (its newest run), and counts
 * the failures per order date.
 */
static void aggregate(const cJSON *runs, const cJSON *failures, long first_day, day *days,
                      int *failed)
{
    const cJSON *failure;

    size_t n;
    const cJSON **list = items(runs, cmp_output, &n, failed);

    for (size_t i = 0; i < n; i++) {
        long d;
        if (i > 0 && cmp_opt(str(list[i], "client_id"), str(list[i - 1], "client_id")) == 0 &&
            cmp_opt(str(list[i], "order_date"), str(list[i - 1], "order_date")) == 0 &&
            cmp_opt(str(list[i], "output"), str(list[i - 1], "output")) == 0)
            continue;
        if (!parse_day(str(list[i], "order_date"), &d) || d < first_day ||
            d >= first_day + PAGE_CHART_DAYS)
            continue;
        days[d - first_day].rows_in += num_or_zero(list[i], "rows_in");
        days[d - first_day].rows_out += num_or_zero(list[i], "rows_out");
        days[d - first_day].rows_rejected += num_or_zero(list[i], "rows_rejected");
        days[d - first_day].runs++;
    }
    free(list);
    if (cJSON_IsArray(failures)) {
        cJSON_ArrayForEach(failure, failures)
        {
            long d;
            if (parse_day(str(failure, "order_date"), &d) && d >= first_day &&
                d < first_day + PAGE_CHART_DAYS)
                days[d - first_day].failures++;
        }
    }
}

/* The last day of the chart: the date of generated_at, else the newest order date, else today. */
static long chart_last_day(const cJSON *status)
{
    const cJSON *runs = cJSON_GetObjectItemCaseSensitive(status, "runs"), *run;
    long day_, newest = LONG_MIN;
    time_t now;
    struct tm tm;

    if (parse_day(str(status, "generated_at"), &day_))
        return day_;
    if (cJSON_IsArray(runs)) {
        cJSON_ArrayForEach(run, runs)
        {
            if (parse_day(str(run, "order_date"), &day_) && day_ > newest)
                newest = day_;
        }
    }
    if (newest != LONG_MIN)
        return newest;
    now = time(NULL);
    gmtime_r(&now, &tm);
    return days_from_civil(tm.tm_year + 1900L, (unsigned)tm.tm_mon + 1, (unsigned)tm.tm_mday);
}

/* ---------- sections ---------- */

static const char style[] =
    ":root{--bg:#f4f6fa;--panel:#fff;--text:#1c2434;--muted:#667085;--line:#e4e8ef;"
    "--head:#0f1b33;--in:#3d6fe0;--out:#1f9d6b;--rej:#e8730c;--bad:#d92d50;--ok:#12a150;"
    "--slot:#eef2f8}"
    "@media (prefers-color-scheme:dark){:root{--bg:#0e1320;--panel:#161d2e;--text:#e4e8f0;"
    "--muted:#98a2b3;--line:#263045;--head:#0a0f1a;--slot:#1d2639}}"
    "*{box-sizing:border-box}"
    "body{margin:0;background:var(--bg);color:var(--text);"
    "font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif}"
    "header{background:var(--head);color:#fff;padding:18px 32px}"
    "header h1{margin:0;font-size:20px;font-weight:600;letter-spacing:.2px}"
    "header h1 span{color:#8fb0ff;font-weight:400}"
    "header p{margin:4px 0 0;color:#b7c2d6;font-size:13px}"
    "header code{color:#dfe6f3}"
    "main{max-width:1240px;margin:0 auto;padding:20px 32px 40px}"
    "section{background:var(--panel);border:1px solid var(--line);border-radius:10px;"
    "padding:16px 20px;margin:0 0 18px}"
    "h2{font-size:15px;margin:0 0 12px;font-weight:600}"
    "h2 small{color:var(--muted);font-weight:400;margin-left:6px}"
    "#summary{display:grid;grid-template-columns:repeat(4,1fr);gap:14px;background:none;"
    "border:0;padding:0}"
    ".card{background:var(--panel);border:1px solid var(--line);border-radius:10px;"
    "padding:14px 18px}"
    ".card .label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.5px}"
    ".card .value{font-size:26px;font-weight:600;font-variant-numeric:tabular-nums;margin-top:2px}"
    ".card.bad .value{color:var(--bad)}"
    ".legend{display:flex;gap:16px;font-size:12px;color:var(--muted);margin:-4px 0 6px}"
    ".legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;"
    "vertical-align:-1px}"
    "svg{display:block;width:100%;height:auto}"
    "svg text{fill:var(--muted);font-size:11px}"
    "svg .grid{stroke:var(--line);stroke-width:1}"
    "svg .slot{fill:transparent}"
    "svg .day:hover .slot{fill:var(--slot)}"
    ".in{fill:var(--in);background:var(--in)}"
    ".out{fill:var(--out);background:var(--out)}"
    ".rejected{fill:var(--rej);background:var(--rej)}"
    ".fail-mark{fill:var(--bad);background:var(--bad)}"
    "svg text.failed{fill:var(--bad);font-weight:700}"
    "svg .empty{font-size:14px}"
    "table{width:100%;border-collapse:collapse;font-size:13px}"
    "th{text-align:left;color:var(--muted);font-weight:500;font-size:12px;"
    "border-bottom:1px solid var(--line);padding:6px 8px;white-space:nowrap}"
    "td{border-bottom:1px solid var(--line);padding:7px 8px;vertical-align:top}"
    "tr:last-child td{border-bottom:0}"
    "tbody tr:hover td{background:var(--slot)}"
    "th.num,td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
    "td.num.in,td.num.out,td.num.rejected{background:none}"
    "td.num.rejected{color:var(--rej)}"
    "td.num.zero{color:var(--muted)}"
    ".legend b{color:var(--text);font-weight:600;font-variant-numeric:tabular-nums}"
    "a{color:var(--in);text-decoration:none}a:hover{text-decoration:underline}"
    "td.path,td.reason{word-break:break-all}"
    "td.reasons ul{margin:0;padding:0;list-style:none}td.reasons li{white-space:nowrap}"
    "td.files a{margin-right:.6em}"
    "td.client{font-weight:600;white-space:nowrap}"
    "time{white-space:nowrap}"
    "code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}"
    ".none{color:var(--muted)}"
    ".badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:11px;"
    "font-weight:600;white-space:nowrap}"
    ".badge.ok{background:rgba(18,161,80,.12);color:var(--ok)}"
    ".badge.failed,.badge.permanent{background:rgba(217,45,80,.12);color:var(--bad)}"
    ".badge.transient{background:rgba(232,115,12,.14);color:var(--rej)}"
    ".badge.idle{background:var(--slot);color:var(--muted)}"
    "details summary{cursor:pointer;color:var(--muted)}"
    "details ul{margin:4px 0 0;padding-left:18px}"
    ".more,.empty-note{color:var(--muted);margin:8px 0 0;font-size:12px}"
    "footer{color:var(--muted);font-size:12px;text-align:center;padding:0 0 24px}"
    "@media (max-width:800px){main{padding:12px}#summary{grid-template-columns:repeat(2,1fr)}"
    ".wide{display:none}}";

/* Chart geometry, in SVG user units (the SVG scales to the page width). */
#define CHART_W     1160.0
#define CHART_H     280.0
#define CHART_LEFT  56.0
#define CHART_RIGHT 8.0
#define CHART_TOP   12.0
#define CHART_BASE  236.0 /* y of the x axis */

/* A round axis maximum and tick step (1, 2 or 5 times a power of ten) for values up to max. */
static void axis(long long max, long long *top, long long *step)
{
    long long unit = 1;

    if (max <= 0) {
        *top = 4;
        *step = 1;
        return;
    }
    for (;;) {
        if (max <= unit * 4) {
            *step = unit;
            break;
        }
        if (max <= unit * 2 * 4) {
            *step = unit * 2;
            break;
        }
        if (max <= unit * 5 * 4) {
            *step = unit * 5;
            break;
        }
        unit *= 10;
    }
    *top = (max + *step - 1) / *step * *step;
}

static void render_chart(bytebuf *b, const day *days, long first_day)
{
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    double slot = (CHART_W - CHART_LEFT - CHART_RIGHT) / PAGE_CHART_DAYS;
    double bar = slot * 0.24, height = CHART_BASE - CHART_TOP;
    long long max = 0, top, step, total_in = 0, total_out = 0, total_rejected = 0;
    char first[11], last[11];

    for (int i = 0; i < PAGE_CHART_DAYS; i++) {
        total_in += days[i].rows_in;
        total_out += days[i].rows_out;
        total_rejected += days[i].rows_rejected;
        if (days[i].rows_in > max)
            max = days[i].rows_in;
        if (days[i].rows_out > max)
            max = days[i].rows_out;
        if (days[i].rows_rejected > max)
            max = days[i].rows_rejected;
    }
    axis(max, &top, &step);
    format_day(first_day, first);
    format_day(first_day + PAGE_CHART_DAYS - 1, last);

    bytebuf_printf(
        b,
        "<section id=\"chart\" data-from=\"%s\" data-to=\"%s\">"
        "<h2>Rows per day<small>by order date, %s to %s</small></h2>"
        "<div class=\"legend\"><span><i class=\"in\"></i>rows in <b id=\"chart-total-in\">",
        first, last, first, last);
    put_count(b, total_in);
    bytebuf_puts(b, "</b></span><span><i class=\"out\"></i>rows out <b id=\"chart-total-out\">");
    put_count(b, total_out);
    bytebuf_puts(b, "</b></span><span><i class=\"rejected\"></i>rows rejected "
                    "<b id=\"chart-total-rejected\">");
    put_count(b, total_rejected);
    bytebuf_puts(b, "</b></span><span><i class=\"fail-mark\"></i>day with a failure</span></div>");
    bytebuf_printf(
        b,
        "<svg viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-labelledby=\"chart-title\" "
        "xmlns=\"http://www.w3.org/2000/svg\"><title id=\"chart-title\">Rows in, out and "
        "rejected per order date, %s to %s</title>",
        CHART_W, CHART_H, first, last);

    /* Horizontal grid with its labels. */
    for (long long v = 0; v <= top; v += step) {
        double y = CHART_BASE - height * (double)v / (double)top;
        bytebuf_printf(b, "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>",
                       CHART_LEFT, CHART_W - CHART_RIGHT, y, y);
        bytebuf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", CHART_LEFT - 8,
                       y + 4);
        put_count(b, v);
        bytebuf_puts(b, "</text>");
    }

    for (int i = 0; i < PAGE_CHART_DAYS; i++) {
        const day *d = &days[i];
        double x = CHART_LEFT + slot * i, cx = x + slot / 2;
        const long long values[3] = {d->rows_in, d->rows_out, d->rows_rejected};
        static const char *const classes[3] = {"in", "out", "rejected"};
        char date[11];
        long y_;
        unsigned m, dom;

        format_day(first_day + i, date);
        civil_from_days(first_day + i, &y_, &m, &dom);
        bytebuf_printf(
            b,
            "<g class=\"day\" data-date=\"%s\" data-rows-in=\"%lld\" data-rows-out=\"%lld\" "
            "data-rows-rejected=\"%lld\" data-runs=\"%lld\" data-failures=\"%lld\">"
            "<title>%s: %lld in, %lld out, %lld rejected (%lld run%s, %lld failure%s)</title>"
            "<rect class=\"slot\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>",
            date, d->rows_in, d->rows_out, d->rows_rejected, d->runs, d->failures, date, d->rows_in,
            d->rows_out, d->rows_rejected, d->runs, d->runs == 1 ? "" : "s", d->failures,
            d->failures == 1 ? "" : "s", x + 1, CHART_TOP, slot - 2, CHART_BASE - CHART_TOP);
        /* A day with a failure is underlined in red on the axis. */
        if (d->failures)
            bytebuf_printf(b,
                           "<rect class=\"fail-mark\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                           "height=\"3\" rx=\"1.5\"/>",
                           x + 4, CHART_BASE + 2, slot - 8);
        for (int k = 0; k < 3; k++) {
            double h = height * (double)values[k] / (double)top;
            /* A non-zero value stays visible even next to a much larger one. */
            if (values[k] > 0 && h < 1.5)
                h = 1.5;
            bytebuf_printf(
                b,
                "<rect class=\"bar %s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                "rx=\"1.5\"/>",
                classes[k], cx - bar * 1.5 + bar * k, CHART_BASE - h, bar - 1, h);
        }
        bytebuf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\"%s>%u</text>", cx,
                       CHART_BASE + 16, d->failures ? " class=\"failed\"" : "", dom);
        if (i == 0 || dom == 1)
            bytebuf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>", cx,
                           CHART_BASE + 32, months[(m - 1) % 12]);
        bytebuf_puts(b, "</g>");
    }
    if (max == 0)
        bytebuf_printf(
            b,
            "<text class=\"empty\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">No runs in "
            "these %d days</text>",
            CHART_LEFT + (CHART_W - CHART_LEFT - CHART_RIGHT) / 2, CHART_TOP + height / 2,
            PAGE_CHART_DAYS);
    bytebuf_puts(b, "</svg></section>");
}

/*
 * Natural order of client ids: runs of digits compare by value, so US2 comes
 * before US10.
 */
static int natural_cmp(const char *a, const char *b)
{
    while (*a && *b) {
        if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9') {
            const char *ea, *eb;
            size_t la, lb;
            int c;
            while (*a == '0' && a[1] >= '0' && a[1] <= '9')
                a++;
            while (*b == '0' && b[1] >= '0' && b[1] <= '9')
                b++;
            for (ea = a; *ea >= '0' && *ea <= '9'; ea++)
                ;
            for (eb = b; *eb >= '0' && *eb <= '9'; eb++)
                ;
            la = (size_t)(ea - a);
            lb = (size_t)(eb - b);
            if (la != lb)
                return la < lb ? -1 : 1;
            c = strncmp(a, b, la);
            if (c)
                return c;
            a = ea;
            b = eb;
        } else {
            if (*a != *b)
                return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
            a++;
            b++;
        }
    }
    return (*a != '\0') - (*b != '\0');
}

static int cmp_client(const void *a, const void *b)
{
    int c = natural_cmp(*(const char *const *)a, *(const char *const *)b);

    return c ? c : strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The newest failure of client_id in the failures array sorted newest first, or NULL. */
static const cJSON *newest_failure(const cJSON **failures, size_t n, const char *client_id)
{
    for (size_t i = 0; i < n; i++)
        if (cmp_opt(str(failures[i], "client_id"), client_id) == 0)
            return failures[i];
    return NULL;
}

static void render_depot(bytebuf *b, const cJSON *status, const cJSON **failures, size_t nfailures)
{
    const cJSON *clients = cJSON_GetObjectItemCaseSensitive(status, "clients"), *client;
    const char **ids = NULL;
    size_t n = 0, cap = 0;

    /* Clients of the depot, and clients that only ever failed (they need attention most). */
    if (cJSON_IsObject(clients)) {
        cJSON_ArrayForEach(client, clients)
        {
            if (client->string)
                cap++;
        }
    }
    cap += nfailures;
    if (cap) {
        ids = malloc(cap * sizeof(*ids));
        if (!ids) {
            b->failed = 1;
            return;
        }
    }
    if (cJSON_IsObject(clients)) {
        cJSON_ArrayForEach(client, clients)
        {
            if (client->string)
                ids[n++] = client->string;
        }
    }
    for (size_t i = 0; i < nfailures; i++) {
        const char *id = str(failures[i], "client_id");
        size_t k = 0;
        while (id && k < n && strcmp(ids[k], id) != 0)
            k++;
        if (id && k == n)
            ids[n++] = id;
    }
    if (n)
        qsort(ids, n, sizeof(*ids), cmp_client);

    bytebuf_puts(
        b, "<section id=\"depot\"><h2>Depot<small>files and last run per client</small></h2>");
    if (n == 0) {
        bytebuf_puts(b,
                     "<p class=\"empty-note\">No client has files in the depot yet.</p></section>");
        free(ids);
        return;
    }
    bytebuf_puts(b, "<table><thead><tr><th>Client</th><th>State</th><th class=\"num\">Files</th>"
                    "<th>Last order date</th><th>Last output</th><th class=\"num\">In</th>"
                    "<th class=\"num\">Out</th><th class=\"num\">Rejected</th>"
                    "<th class=\"num\">Duplicate</th><th>Finished</th></tr></thead><tbody>");
    for (size_t i = 0; i < n; i++) {
        const cJSON *c =
            cJSON_IsObject(clients) ? cJSON_GetObjectItemCaseSensitive(clients, ids[i]) : NULL;
        const cJSON *last = cJSON_GetObjectItemCaseSensitive(c, "last_run");
        const cJSON *files = cJSON_GetObjectItemCaseSensitive(c, "files");
        const cJSON *failure = newest_failure(failures, nfailures, ids[i]);
        const char *last_at = cJSON_IsObject(last) ? str(last, "at") : NULL;
        const char *fail_at = failure ? str(failure, "at") : NULL;
        long long count;

        if (!cJSON_IsObject(last))
            last = NULL;
        bytebuf_puts(b, "<tr class=\"client\" data-client-id=\"");
        esc(b, ids[i]);
        bytebuf_puts(b, "\"><td class=\"client\">");
        esc(b, ids[i]);
        bytebuf_puts(b, "</td><td>");
        /* A held or paused client says so first: its runs are not coming. */
        if (str(c, "profile_error")) {
            bytebuf_puts(b, "<span class=\"badge failed\" title=\"");
            esc(b, str(c, "profile_error"));
            bytebuf_puts(b, "\">profile refused</span>");
        } else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "paused"))) {
            bytebuf_puts(b, "<span class=\"badge idle\">paused</span>");
        } else if (failure && (!last || (fail_at && (!last_at || strcmp(fail_at, last_at) > 0)))) {
            /* Failing when the newest failure is newer than the last good run. */
            const char *reason = str(failure, "reason");
            bytebuf_puts(b, "<span class=\"badge failed\" title=\"");
            esc(b, reason ? reason : "failed");
            bytebuf_puts(b, "\">failed</span>");
        } else if (last) {
            bytebuf_puts(b, "<span class=\"badge ok\">ok</span>");
        } else {
            bytebuf_puts(b, "<span class=\"badge idle\">no run</span>");
        }
        bytebuf_puts(b, "</td><td class=\"num files\">");
        if (c && num(c, "files_in_depot", &count)) {
            put_count(b, count);
        } else if (cJSON_IsArray(files)) {
            put_count(b, cJSON_GetArraySize(files));
        } else {
            bytebuf_puts(b, "<span class=\"none\">&ndash;</span>");
        }
        bytebuf_puts(b, "</td>");
        put_text_cell(b, last ? str(last, "order_date") : NULL, "date");
        bytebuf_puts(b, "<td class=\"path\">");
        if (last && str(last, "output"))
            esc(b, str(last, "output"));
        else
            bytebuf_puts(b, "<span class=\"none\">&ndash;</span>");
        if (cJSON_IsArray(files) && cJSON_GetArraySize(files) > 0) {
            const cJSON *f;
            int shown = 0, total = cJSON_GetArraySize(files);
            bytebuf_printf(b, "<details><summary>%d file%s</summary><ul>", total,
                           total == 1 ? "" : "s");
            cJSON_ArrayForEach(f, files)
            {
                if (!cJSON_IsString(f) || !f->valuestring)
                    continue;
                if (shown++ == PAGE_MAX_ROWS)
                    break;
                bytebuf_puts(b, "<li>");
                esc(b, f->valuestring);
                bytebuf_puts(b, "</li>");
            }
            bytebuf_puts(b, "</ul>");
            if (total > PAGE_MAX_ROWS)
                bytebuf_printf(b, "<p class=\"more\">and %d more</p>", total - PAGE_MAX_ROWS);
            bytebuf_puts(b, "</details>");
        }
        bytebuf_puts(b, "</td>");
        put_count_cell(b, last, "rows_in", "in");
        put_count_cell(b, last, "rows_out", "out");
        put_count_cell(b, last, "rows_rejected", "rejected");
        put_count_cell(b, last, "rows_duplicate", "duplicate");
        bytebuf_puts(b, "<td>");
        put_time(b, last_at);
        bytebuf_puts(b, "</td></tr>");
    }
    bytebuf_puts(b, "</tbody></table></section>");
    free(ids);
}

/* A run's source, and for a replay (dxctl replay) how many earlier results
 * of the same drop it supersedes. */
static void put_source_cell(bytebuf *b, const cJSON *run)
{
    const cJSON *superseded = cJSON_GetObjectItemCaseSensitive(run, "supersedes");
    const char *by = str(run, "triggered_by");

    bytebuf_puts(b, "<td class=\"path\">");
    if (str(run, "source"))
        esc(b, str(run, "source"));
    else
        bytebuf_puts(b, "<span class=\"none\">&ndash;</span>");
    if (by && strcmp(by, "replay") == 0) {
        int k = cJSON_IsArray(superseded) ? cJSON_GetArraySize(superseded) : 0;

        bytebuf_printf(b,
                       "<br><small class=\"replay\" data-supersedes=\"%d\">replay, supersedes %d "
                       "earlier result%s</small>",
                       k, k, k == 1 ? "" : "s");
    }
    bytebuf_puts(b, "</td>");
}

/* The run's rejects by reason ({"invalid_date": 3, ...}), most first as
 * the engine listed them; a dash when none. */
static void put_reasons_cell(bytebuf *b, const cJSON *run)
{
    const cJSON *reasons = cJSON_GetObjectItemCaseSensitive(run, "rejects_by_reason");
    const cJSON *item;

    bytebuf_puts(b, "<td class=\"reasons\">");
    if (!cJSON_IsObject(reasons) || reasons->child == NULL) {
        bytebuf_puts(b, "<span class=\"none\">&ndash;</span></td>");
        return;
    }
    bytebuf_puts(b, "<ul>");
    cJSON_ArrayForEach(item, reasons)
    {
        bytebuf_puts(b, "<li class=\"reject-reason\" data-reason=\"");
        esc(b, item->string);
        bytebuf_puts(b, "\"><code>");
        esc(b, item->string);
        bytebuf_puts(b, "</code> ");
        if (cJSON_IsNumber(item))
            put_count(b, (long long)item->valuedouble);
        else if (cJSON_IsString(item))
            esc(b, item->valuestring);
        bytebuf_puts(b, "</li>");
    }
    bytebuf_puts(b, "</ul></td>");
}

/* The profile revision the run used; a dash for none (0). */
static void put_revision_cell(bytebuf *b, const cJSON *run)
{
    long long v;

    if (num(run, "profile_revision", &v) && v > 0)
        bytebuf_printf(b, "<td class=\"num revision\">%lld</td>", v);
    else
        bytebuf_puts(b, "<td class=\"num revision\"><span class=\"none\">&ndash;</span></td>");
}

/* Download links of the run's files ("files" of /status): relative, so the
 * page works behind a path prefix too. */
static void put_files_cell(bytebuf *b, const cJSON *run)
{
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(run, "files");
    const char *kinds[2] = {"clean", "rejects"};

    bytebuf_puts(b, "<td class=\"files\">");
    for (int i = 0; i < 2; i++) {
        const char *link = str(files, kinds[i]);

        if (link == NULL || link[0] != '/')
            continue;
        bytebuf_printf(b, "<a class=\"download %s\" download href=\"", kinds[i]);
        esc(b, link + 1);
        bytebuf_printf(b, "\">%s</a>", kinds[i]);
    }
    bytebuf_puts(b, "</td>");
}

static void render_runs(bytebuf *b, const cJSON **runs, size_t n)
{
    size_t shown = n < PAGE_MAX_ROWS ? n : PAGE_MAX_ROWS;

    bytebuf_printf(b, "<section id=\"runs\"><h2>Last runs<small>newest first");
    if (n > PAGE_MAX_ROWS)
        bytebuf_printf(b, ", %d of %zu", PAGE_MAX_ROWS, n);
    bytebuf_puts(b, "</small></h2>");
    if (n == 0) {
        bytebuf_puts(b, "<p class=\"empty-note\">No run yet.</p></section>");
        return;
    }
    bytebuf_puts(b,
                 "<table><thead><tr><th>Finished</th><th>Client</th><th>Order date</th>"
                 "<th>Source</th><th>Output</th><th class=\"num\">In</th><th class=\"num\">Out</th>"
                 "<th class=\"num\">Rejected</th><th>Rejects by reason</th>"
                 "<th class=\"num\">Duplicate</th><th class=\"num\">Profile rev.</th>"
                 "<th>Download</th><th class=\"wide\">Trace</th></tr></thead><tbody>");
    for (size_t i = 0; i < shown; i++) {
        const cJSON *r = runs[i];
        const char *client = str(r, "client_id");
        bytebuf_puts(b, "<tr class=\"run\" data-client-id=\"");
        esc(b, client ? client : "");
        bytebuf_puts(b, "\" data-order-date=\"");
        esc(b, str(r, "order_date") ? str(r, "order_date") : "");
        bytebuf_puts(b, "\"><td>");
        put_time(b, str(r, "at"));
        bytebuf_puts(b, "</td>");
        put_text_cell(b, client, "client");
        put_text_cell(b, str(r, "order_date"), "date");
        put_source_cell(b, r);
        put_text_cell(b, str(r, "output"), "path");
        put_count_cell(b, r, "rows_in", "in");
        put_count_cell(b, r, "rows_out", "out");
        put_count_cell(b, r, "rows_rejected", "rejected");
        put_reasons_cell(b, r);
        put_count_cell(b, r, "rows_duplicate", "duplicate");
        put_revision_cell(b, r);
        put_files_cell(b, r);
        put_trace_cell(b, str(r, "trace_id"));
        bytebuf_puts(b, "</tr>");
    }
    bytebuf_puts(b, "</tbody></table></section>");
}

static void render_failures(bytebuf *b, const cJSON **failures, size_t n)
{
    size_t shown = n < PAGE_MAX_ROWS ? n : PAGE_MAX_ROWS;

    bytebuf_printf(b, "<section id=\"failures\"><h2>Failures<small>newest first");
    if (n > PAGE_MAX_ROWS)
        bytebuf_printf(b, ", %d of %zu", PAGE_MAX_ROWS, n);
    bytebuf_puts(b, "</small></h2>");
    if (n == 0) {
        bytebuf_puts(b, "<p class=\"empty-note\">No failure.</p></section>");
        return;
    }
    bytebuf_puts(b, "<table><thead><tr><th>When</th><th>Client</th><th>Order date</th>"
                    "<th>Source</th><th>Reason</th><th>Kind</th><th class=\"wide\">Trace</th>"
                    "</tr></thead><tbody>");
    for (size_t i = 0; i < shown; i++) {
        const cJSON *f = failures[i];
        const cJSON *permanent = cJSON_GetObjectItemCaseSensitive(f, "permanent");
        const char *client = str(f, "client_id");
        bytebuf_puts(b, "<tr class=\"failure\" data-client-id=\"");
        esc(b, client ? client : "");
        bytebuf_puts(b, "\"><td>");
        put_time(b, str(f, "at"));
        bytebuf_puts(b, "</td>");
        put_text_cell(b, client, "client");
        put_text_cell(b, str(f, "order_date"), "date");
        put_text_cell(b, str(f, "source"), "path");
        put_text_cell(b, str(f, "reason"), "reason");
        if (cJSON_IsTrue(permanent))
            bytebuf_puts(
                b, "<td><span class=\"badge permanent\" title=\"retrying cannot help: fix the "
                   "drop and trigger again\">permanent</span></td>");
        else
            bytebuf_puts(b, "<td><span class=\"badge transient\" title=\"retried "
                            "automatically\">transient</span></td>");
        put_trace_cell(b, str(f, "trace_id"));
        bytebuf_puts(b, "</tr>");
    }
    bytebuf_puts(b, "</tbody></table></section>");
}

static void render_summary(bytebuf *b, const cJSON *status, const day *days, size_t nfailures)
{
    const cJSON *clients = cJSON_GetObjectItemCaseSensitive(status, "clients");
    long long files = 0, rows_out = 0;

    for (int i = 0; i < PAGE_CHART_DAYS; i++)
        rows_out += days[i].rows_out;
    bytebuf_puts(b, "<section id=\"summary\">");
    bytebuf_printf(b,
                   "<div class=\"card\"><div class=\"label\">Clients</div>"
                   "<div class=\"value\" id=\"summary-clients\">%d</div></div>",
                   cJSON_IsObject(clients) ? cJSON_GetArraySize(clients) : 0);
    bytebuf_puts(b, "<div class=\"card\"><div class=\"label\">Files in depot</div>"
                    "<div class=\"value\" id=\"summary-files\">");
    if (num(status, "files_in_depot", &files))
        put_count(b, files);
    else
        bytebuf_puts(b, "&ndash;");
    bytebuf_printf(b,
                   "</div></div><div class=\"card\"><div class=\"label\">Rows out, %d days</div>"
                   "<div class=\"value\" id=\"summary-rows-out\">",
                   PAGE_CHART_DAYS);
    put_count(b, rows_out);
    bytebuf_puts(b, "</div></div><div class=\"card");
    if (nfailures)
        bytebuf_puts(b, " bad");
    bytebuf_puts(
        b, "\"><div class=\"label\">Failures</div><div class=\"value\" id=\"summary-failures\">");
    put_count(b, (long long)nfailures);
    bytebuf_puts(b, "</div></div></section>");
}

char *page_render(const cJSON *status)
{
    bytebuf b = BYTEBUF_INIT;
    day days[PAGE_CHART_DAYS];
    size_t nruns = 0, nfailures = 0;
    const cJSON **runs, **failures;
    const char *generated = str(status, "generated_at"), *depot = str(status, "depot");
    long last_day = chart_last_day(status), first_day = last_day - (PAGE_CHART_DAYS - 1);

    memset(days, 0, sizeof(days));
    runs = items(cJSON_GetObjectItemCaseSensitive(status, "runs"), cmp_newest, &nruns, &b.failed);
    failures = items(cJSON_GetObjectItemCaseSensitive(status, "failures"), cmp_newest, &nfailures,
                     &b.failed);
    aggregate(cJSON_GetObjectItemCaseSensitive(status, "runs"),
              cJSON_GetObjectItemCaseSensitive(status, "failures"), first_day, days, &b.failed);

    bytebuf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                     "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
                     /* Operators leave the page open: it refreshes itself, without any script. */
                     "<meta http-equiv=\"refresh\" content=\"60\">"
                     "<title>DataRetailX pipeline status</title><style>");
    bytebuf_puts(&b, style);
    bytebuf_puts(&b, "</style></head><body><header><h1>DataRetailX <span>order pipeline</span></h1>"
                     "<p>Status generated ");
    put_time(&b, generated);
    if (depot) {
        bytebuf_puts(&b, " &middot; depot <code id=\"depot-url\">");
        esc(&b, depot);
        bytebuf_puts(&b, "</code>");
    }
    bytebuf_puts(&b, "</p></header><main>");
    render_summary(&b, status, days, nfailures);
    render_chart(&b, days, first_day);
    render_depot(&b, status, failures, nfailures);
    /* Failures before runs: they are what an operator opens the page for. */
    render_failures(&b, failures, nfailures);
    render_runs(&b, runs, nruns);
    bytebuf_puts(&b, "</main><footer>status-checker &middot; refreshes every minute &middot; "
                     "<a href=\"status\">status JSON</a> &middot; <a href=\"metrics\">metrics</a>"
                     "</footer></body></html>\n");
    free(runs);
    free(failures);
    return bytebuf_take(&b);
}
