#include "page.h"
#include "testing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * A status document like the one GET /status returns: two clients in the
 * depot, a client that only ever failed, runs over more than 28 days (one
 * outside the chart window), a run reported twice for the same output, and
 * strings that must be escaped.
 */
static const char sample[] =
    "{\"generated_at\":\"2026-11-24T08:00:05Z\",\"depot\":\"file:///srv/depot?a=1&b=<2>\","
    "\"files_in_depot\":7,"
    "\"clients\":{"
    " \"US10\":{\"files_in_depot\":1,\"files\":[\"US10/2026-11-20/input.csv\"],"
    "   \"last_run\":{\"order_date\":\"2026-11-20\",\"output\":\"US10/2026-11-20/input.csv\","
    "   \"rows_in\":1200,\"rows_out\":1100,\"rows_rejected\":60,\"rows_duplicate\":40,"
    "   \"at\":\"2026-11-20T08:00:09Z\",\"trace_id\":\"t-10\"}},"
    " \"US1\":{\"files_in_depot\":4,\"files\":[\"US1/2026-11-23/input.csv\","
    "   \"US1/2026-11-24/input.csv\",\"US1/2026-11-24/input.rejects.csv\","
    "   \"US1/2026-11-24/<b>odd&name.csv\"],"
    "   \"last_run\":{\"order_date\":\"2026-11-24\",\"output\":\"US1/2026-11-24/input.csv\","
    "   \"rows_in\":10,\"rows_out\":8,\"rows_rejected\":1,\"rows_duplicate\":1,"
    "   \"at\":\"2026-11-24T08:00:04Z\",\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\"}},"
    " \"US2\":{\"files_in_depot\":2,\"files\":[\"US2/2026-11-24/input.csv\","
    "   \"US2/2026-11-24/input.rejects.csv\"],"
    "   \"last_run\":{\"order_date\":\"2026-11-24\",\"output\":\"US2/2026-11-24/input.csv\","
    "   \"rows_in\":15,\"rows_out\":12,\"rows_rejected\":3,\"rows_duplicate\":0,"
    "   \"at\":\"2026-11-24T08:00:03Z\",\"trace_id\":\"t-2\"}}},"
    "\"runs\":["
    " {\"client_id\":\"US1\",\"order_date\":\"2026-11-23\",\"source\":\"US1/input.csv\","
    "  \"output\":\"US1/2026-11-23/input.csv\",\"rows_in\":7,\"rows_out\":7,\"rows_rejected\":0,"
    "  \"rows_duplicate\":0,\"trace_id\":\"t-3\",\"at\":\"2026-11-23T08:00:02Z\"},"
    /* The same output reported earlier with other counts: the newest run wins. */
    " {\"client_id\":\"US1\",\"order_date\":\"2026-11-24\",\"source\":\"US1/input.csv\","
    "  \"output\":\"US1/2026-11-24/input.csv\",\"rows_in\":100,\"rows_out\":90,"
    "  \"rows_rejected\":10,\"rows_duplicate\":0,\"trace_id\":\"t-old\","
    "  \"at\":\"2026-11-24T07:00:00Z\"},"
    " {\"client_id\":\"US1\",\"order_date\":\"2026-11-24\",\"source\":\"US1/input.csv\","
    "  \"output\":\"US1/2026-11-24/input.csv\",\"rejects\":\"US1/2026-11-24/input.rejects.csv\","
    "  \"rows_in\":10,\"rows_out\":8,\"rows_rejected\":1,\"rows_duplicate\":1,\"sha256\":\"ab\","
    "  \"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"at\":\"2026-11-24T08:00:04Z\"},"
    " {\"client_id\":\"US2\",\"order_date\":\"2026-11-24\",\"source\":\"US2/input.csv\","
    "  \"output\":\"US2/2026-11-24/input.csv\",\"rows_in\":15,\"rows_out\":12,"
    "  \"rows_rejected\":3,\"rows_duplicate\":0,\"trace_id\":\"t-2\","
    "  \"at\":\"2026-11-24T08:00:03Z\"},"
    /* First day of the window: 2026-11-24 minus 27 days. */
    " {\"client_id\":\"US10\",\"order_date\":\"2026-10-28\",\"source\":\"US10/input.csv\","
    "  \"output\":\"US10/2026-10-28/input.csv\",\"rows_in\":5,\"rows_out\":4,"
    "  \"rows_rejected\":1,\"rows_duplicate\":0,\"at\":\"2026-10-28T08:00:00Z\"},"
    /* One day too old for the chart; still listed in the runs. */
    " {\"client_id\":\"US10\",\"order_date\":\"2026-10-27\",\"source\":\"US10/input.csv\","
    "  \"output\":\"US10/2026-10-27/input.csv\",\"rows_in\":999,\"rows_out\":999,"
    "  \"rows_rejected\":0,\"rows_duplicate\":0,\"at\":\"2026-10-27T08:00:00Z\"},"
    " {\"client_id\":\"US10\",\"order_date\":\"2026-11-20\",\"source\":\"US10/input.csv\","
    "  \"output\":\"US10/2026-11-20/input.csv\",\"rows_in\":1200,\"rows_out\":1100,"
    "  \"rows_rejected\":60,\"rows_duplicate\":40,\"trace_id\":\"t-10\","
    "  \"at\":\"2026-11-20T08:00:09Z\"}"
    "],"
    "\"failures\":["
    " {\"client_id\":\"US2\",\"order_date\":\"2026-11-24\",\"source\":\"US2/input.csv\","
    "  \"reason\":\"<script>alert(\\\"x\\\")</script> & 'more'\",\"permanent\":true,"
    "  \"trace_id\":\"t-f1\",\"at\":\"2026-11-24T08:00:05Z\"},"
    " {\"client_id\":\"US3\",\"order_date\":\"2026-11-24\",\"source\":\"US3/input.csv\","
    "  \"reason\":\"depot unreachable\",\"permanent\":false,\"trace_id\":\"t-f2\","
    "  \"at\":\"2026-11-24T07:59:00Z\"}"
    "]}";

static size_t count(const char *text, const char *needle)
{
    size_t n = 0, len = strlen(needle);

    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += len)
        n++;
    return n;
}

/* Position of needle in text, or -1 (for ordering checks). */
static long pos(const char *text, const char *needle)
{
    const char *p = strstr(text, needle);

    return p ? (long)(p - text) : -1;
}

#define CHECK_HAS(text, needle)                                                                    \
    do {                                                                                           \
        testing_checks++;                                                                          \
        if (!strstr(text, needle))                                                                 \
            testing_fail(__FILE__, __LINE__, "missing: %s", needle);                               \
    } while (0)

/* The <section> with the given id, as a new string (or an empty string). */
static char *section(const char *html, const char *id)
{
    char open[64];
    const char *start, *end;
    char *out;

    snprintf(open, sizeof(open), "<section id=\"%s\"", id);
    start = strstr(html, open);
    end = start ? strstr(start, "</section>") : NULL;
    if (!start || !end)
        return strdup("");
    out = strndup(start, (size_t)(end - start));
    return out;
}

static void test_sample(void)
{
    cJSON *status = cJSON_Parse(sample);
    char *html, *chart, *depot, *runs, *failures;
    const char *out = getenv("PAGE_HTML_OUT");

    CHECK(status != NULL);
    if (!status)
        return;
    html = page_render(status);
    CHECK(html != NULL);
    if (!html) {
        cJSON_Delete(status);
        return;
    }
    /* Lets a developer (or a screenshot script) look at the page. */
    if (out) {
        FILE *f = fopen(out, "w");
        if (f) {
            fputs(html, f);
            fclose(f);
        }
    }

    CHECK(strncmp(html, "<!DOCTYPE html>", 15) == 0);
    CHECK_HAS(html, "</html>\n");
    /* Self-contained: no script, no external asset. */
    CHECK(strstr(html, "<script") == NULL);
    CHECK(strstr(html, "src=") == NULL);
    CHECK(strstr(html, "<link") == NULL);
    CHECK_EQ_INT(count(html, "http://"), 1); /* the SVG namespace, never fetched */
    CHECK_HAS(html, "xmlns=\"http://www.w3.org/2000/svg\"");

    /* Escaping: header, reasons, file names, attributes. */
    CHECK_HAS(html, "file:///srv/depot?a=1&amp;b=&lt;2&gt;");
    CHECK_HAS(html, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;more&#39;");
    CHECK_HAS(html, "<li>US1/2026-11-24/&lt;b&gt;odd&amp;name.csv</li>");
    CHECK(strstr(html, "<b>odd") == NULL);

    CHECK_HAS(html, "<time datetime=\"2026-11-24T08:00:05Z\">2026-11-24 08:00:05 UTC</time>");
    CHECK_HAS(html, "<div class=\"value\" id=\"summary-clients\">3</div>");
    CHECK_HAS(html, "<div class=\"value\" id=\"summary-files\">7</div>");
    CHECK_HAS(html, "<div class=\"value\" id=\"summary-failures\">2</div>");
    /* 4 + 7 + 8 + 12 + 1,100: the 2026-10-27 run is outside the window. */
    CHECK_HAS(html, "<div class=\"value\" id=\"summary-rows-out\">1,131</div>");

    /* The chart: 28 days, oldest first, each output counted once (its newest run). */
    chart = section(html, "chart");
    CHECK_HAS(chart, "data-from=\"2026-10-28\" data-to=\"2026-11-24\"");
    CHECK_HAS(chart, "<b id=\"chart-total-in\">1,237</b>");
    CHECK_HAS(chart, "<b id=\"chart-total-rejected\">65</b>");
    CHECK_EQ_INT(count(chart, "<g class=\"day\""), 28);
    CHECK_EQ_INT(count(chart, "<rect class=\"bar "), 28 * 3);
    CHECK_HAS(chart, "<g class=\"day\" data-date=\"2026-11-24\" data-rows-in=\"25\" "
                     "data-rows-out=\"20\" data-rows-rejected=\"4\" data-runs=\"2\" "
                     "data-failures=\"2\">");
    CHECK_HAS(chart, "<g class=\"day\" data-date=\"2026-11-23\" data-rows-in=\"7\" "
                     "data-rows-out=\"7\" data-rows-rejected=\"0\" data-runs=\"1\" "
                     "data-failures=\"0\">");
    CHECK_HAS(chart, "<g class=\"day\" data-date=\"2026-11-20\" data-rows-in=\"1200\" "
                     "data-rows-out=\"1100\" data-rows-rejected=\"60\" data-runs=\"1\" "
                     "data-failures=\"0\">");
    CHECK_HAS(chart, "<g class=\"day\" data-date=\"2026-10-28\" data-rows-in=\"5\" "
                     "data-rows-out=\"4\" data-rows-rejected=\"1\" data-runs=\"1\" "
                     "data-failures=\"0\">");
    CHECK_HAS(chart, "<g class=\"day\" data-date=\"2026-11-01\" data-rows-in=\"0\" "
                     "data-rows-out=\"0\" data-rows-rejected=\"0\" data-runs=\"0\" "
                     "data-failures=\"0\">");
    CHECK(strstr(chart, "2026-10-27") == NULL);
    CHECK_EQ_INT(count(chart, "<rect class=\"fail-mark\""), 1);
    CHECK(pos(chart, "data-date=\"2026-10-28\"") < pos(chart, "data-date=\"2026-11-24\""));
    /* The axis rounds 1,200 up to a whole step of 500. */
    CHECK_HAS(chart, ">1,000</text>");
    CHECK_HAS(chart, ">1,500</text>");
    CHECK(strstr(chart, "No runs") == NULL);

    /* The depot: one row per client in natural order, failing clients included. */
    depot = section(html, "depot");
    CHECK_EQ_INT(count(depot, "<tr class=\"client\""), 4);
    CHECK(pos(depot, "data-client-id=\"US1\"") < pos(depot, "data-client-id=\"US2\""));
    CHECK(pos(depot, "data-client-id=\"US2\"") < pos(depot, "data-client-id=\"US3\""));
    CHECK(pos(depot, "data-client-id=\"US3\"") < pos(depot, "data-client-id=\"US10\""));
    CHECK_HAS(depot, "<tr class=\"client\" data-client-id=\"US1\"><td class=\"client\">US1</td>"
                     "<td><span class=\"badge ok\">ok</span></td>"
                     "<td class=\"num files\">4</td><td class=\"date\">2026-11-24</td>");
    CHECK_HAS(depot, "<td class=\"num in\">1,200</td><td class=\"num out\">1,100</td>"
                     "<td class=\"num rejected\">60</td><td class=\"num duplicate\">40</td>");
    CHECK_HAS(depot, "<td class=\"num duplicate zero\">0</td>");
    /* US2's failure is newer than its last run; US3 never succeeded. */
    CHECK_HAS(depot, "data-client-id=\"US2\"><td class=\"client\">US2</td><td><span "
                     "class=\"badge failed\"");
    CHECK_HAS(depot, "data-client-id=\"US3\"><td class=\"client\">US3</td><td><span "
                     "class=\"badge failed\" title=\"depot unreachable\">failed</span>");
    CHECK_HAS(depot, "<summary>4 files</summary>");

    /* The runs: newest first, all of them (fewer than 50), duplicates included. */
    runs = section(html, "runs");
    CHECK_EQ_INT(count(runs, "<tr class=\"run\""), 7);
    CHECK(pos(runs, "2026-11-24T08:00:04Z") < pos(runs, "2026-11-24T08:00:03Z"));
    CHECK(pos(runs, "2026-11-24T08:00:03Z") < pos(runs, "2026-11-24T07:00:00Z"));
    CHECK(pos(runs, "2026-11-24T07:00:00Z") < pos(runs, "2026-11-23T08:00:02Z"));
    CHECK(pos(runs, "2026-11-20T08:00:09Z") < pos(runs, "2026-10-28T08:00:00Z"));
    CHECK(pos(runs, "2026-10-28T08:00:00Z") < pos(runs, "2026-10-27T08:00:00Z"));
    CHECK_HAS(runs, "<code title=\"4bf92f3577b34da6a3ce929d0e0e4736\">4bf92f35&hellip;</code>");
    CHECK_HAS(runs, "<td class=\"path\">US10/2026-10-27/input.csv</td>");

    /* Failures come before the runs: they are what an operator looks for. */
    CHECK(pos(html, "<section id=\"failures\"") < pos(html, "<section id=\"runs\""));

    /* The failures: newest first, with their kind. */
    failures = section(html, "failures");
    CHECK_EQ_INT(count(failures, "<tr class=\"failure\""), 2);
    CHECK(pos(failures, "data-client-id=\"US2\"") < pos(failures, "data-client-id=\"US3\""));
    CHECK_HAS(failures, "<span class=\"badge permanent\"");
    CHECK_HAS(failures, "<span class=\"badge transient\"");
    CHECK_HAS(failures, "<td class=\"reason\">depot unreachable</td>");

    free(chart);
    free(depot);
    free(runs);
    free(failures);
    free(html);
    cJSON_Delete(status);
}

static void test_many_runs(void)
{
    cJSON *status = cJSON_CreateObject(), *runs = cJSON_AddArrayToObject(status, "runs");
    char text[64], *html, *section_runs;

    cJSON_AddStringToObject(status, "generated_at", "2026-03-01T06:00:00Z");
    /* 60 runs on 60 days, one a day up to 2026-03-01 (2026 is not a leap year). */
    for (int i = 0; i < 60; i++) {
        cJSON *run = cJSON_CreateObject();
        int day = 60 - i; /* 2026-01-01 + day - 1 */
        int month = day <= 31 ? 1 : day <= 59 ? 2 : 3;
        int dom = day <= 31 ? day : day <= 59 ? day - 31 : day - 59;
        snprintf(text, sizeof(text), "2026-%02d-%02d", month, dom);
        cJSON_AddStringToObject(run, "order_date", text);
        cJSON_AddStringToObject(run, "client_id", i % 2 ? "US1" : "US2");
        cJSON_AddStringToObject(run, "output", "out.csv");
        cJSON_AddNumberToObject(run, "rows_in", day);
        cJSON_AddNumberToObject(run, "rows_out", day);
        cJSON_AddNumberToObject(run, "rows_rejected", 0);
        snprintf(text, sizeof(text), "2026-%02d-%02dT08:00:00Z", month, dom);
        cJSON_AddStringToObject(run, "at", text);
        cJSON_AddItemToArray(runs, run);
    }
    html = page_render(status);
    CHECK(html != NULL);
    if (!html) {
        cJSON_Delete(status);
        return;
    }
    section_runs = section(html, "runs");
    CHECK_EQ_INT(count(section_runs, "<tr class=\"run\""), PAGE_MAX_ROWS);
    CHECK_HAS(section_runs, "newest first, 50 of 60");
    CHECK_HAS(section_runs, "2026-03-01T08:00:00Z");
    CHECK(strstr(section_runs, "2026-01-10T08:00:00Z") == NULL); /* the 51st newest */
    /* The window crosses a month end: 2026-02-02 .. 2026-03-01. */
    CHECK_HAS(html, "data-from=\"2026-02-02\" data-to=\"2026-03-01\"");
    CHECK_HAS(html, "<g class=\"day\" data-date=\"2026-02-28\" data-rows-in=\"59\"");
    CHECK_HAS(html, "<g class=\"day\" data-date=\"2026-03-01\" data-rows-in=\"60\"");
    CHECK_HAS(html, "<g class=\"day\" data-date=\"2026-02-02\" data-rows-in=\"33\"");
    CHECK(strstr(html, "data-date=\"2026-02-01\"") == NULL);
    CHECK(strstr(html, "data-date=\"2026-02-29\"") == NULL);
    free(section_runs);
    free(html);
    cJSON_Delete(status);
}

static void test_empty_and_odd(void)
{
    cJSON *status;
    char *html;

    /* No document at all still renders a page, on today's window. */
    html = page_render(NULL);
    CHECK(html != NULL);
    if (html) {
        CHECK_EQ_INT(count(html, "<g class=\"day\""), PAGE_CHART_DAYS);
        CHECK_HAS(html, "No runs in these 28 days");
        CHECK_HAS(html, "No run yet.");
        CHECK_HAS(html, "No failure.");
        CHECK_HAS(html, "No client has files in the depot yet.");
    }
    free(html);

    /* Mistyped fields render as dashes; a bad generated_at falls back to the newest run. */
    status = cJSON_Parse("{\"generated_at\":\"yesterday\",\"files_in_depot\":\"many\","
                         "\"clients\":{\"US1\":{\"files\":\"nope\",\"last_run\":7}},"
                         "\"runs\":[3,{\"client_id\":5,\"order_date\":\"2026-02-30\"},"
                         "{\"order_date\":\"2026-05-05\",\"rows_in\":\"12\",\"rows_out\":-4,"
                         "\"at\":\"soon\"}],\"failures\":{}}");
    CHECK(status != NULL);
    html = page_render(status);
    CHECK(html != NULL);
    if (html) {
        CHECK_HAS(html, "data-to=\"2026-05-05\"");
        CHECK_HAS(html, "<g class=\"day\" data-date=\"2026-05-05\" data-rows-in=\"0\" "
                        "data-rows-out=\"0\" data-rows-rejected=\"0\" data-runs=\"1\" "
                        "data-failures=\"0\">");
        CHECK_EQ_INT(count(html, "<tr class=\"run\""), 2);
        CHECK_HAS(html, "<time datetime=\"soon\">soon</time>");
        CHECK_HAS(html, "<span class=\"badge idle\">no run</span>");
        CHECK_HAS(html, "id=\"summary-files\">&ndash;</div>");
    }
    free(html);
    cJSON_Delete(status);
}

/* Issue 13: a paused client, a held one (refused profile), and a replay with
 * what it superseded are visible on the page, not only in /status. */
static void test_profiles_and_replays(void)
{
    cJSON *status = cJSON_Parse(
        "{\"generated_at\":\"2026-11-24T09:00:00Z\",\"clients\":{"
        "\"US1\":{\"paused\":true},\"US2\":{\"profile_error\":\"date_order: must be DMY\"},"
        "\"US3\":{\"paused\":false}},"
        "\"runs\":[{\"client_id\":\"US3\",\"order_date\":\"2026-11-24\",\"source\":\"US3/"
        "input.csv\","
        "\"triggered_by\":\"replay\",\"supersedes\":[{\"kind\":\"file-failed\"}],"
        "\"at\":\"2026-11-24T08:30:00Z\"},"
        "{\"client_id\":\"US3\",\"order_date\":\"2026-11-23\",\"source\":\"US3/input.csv\","
        "\"triggered_by\":\"schedule\",\"at\":\"2026-11-23T08:30:00Z\"}],\"failures\":[]}");
    char *html;

    CHECK(status != NULL);
    html = page_render(status);
    CHECK(html != NULL);
    if (html) {
        CHECK_HAS(html, "<span class=\"badge idle\">paused</span>");
        CHECK_HAS(html, "<span class=\"badge failed\" title=\"date_order: must be DMY\">"
                        "profile refused</span>");
        CHECK_HAS(html, "data-supersedes=\"1\">replay, supersedes 1 earlier result</small>");
        CHECK_EQ_INT(count(html, "class=\"replay\""), 1);
    }
    free(html);
    cJSON_Delete(status);
}

int main(void)
{
    test_profiles_and_replays();
    test_sample();
    test_many_runs();
    test_empty_and_odd();
    return testing_finish("page");
}
