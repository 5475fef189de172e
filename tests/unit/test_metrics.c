#include "metrics.h"
#include "testing.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Renders the registry and compares it with the expected text, exactly. */
#define CHECK_RENDER(expected)                                                                     \
    do {                                                                                           \
        char *text_ = metrics_render();                                                            \
        CHECK_EQ_STR(text_, expected);                                                             \
        free(text_);                                                                               \
    } while (0)

static size_t count_lines_with(const char *text, const char *prefix)
{
    size_t n = 0, len = strlen(prefix);

    for (const char *p = text; p && *p;) {
        if (strncmp(p, prefix, len) == 0)
            n++;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return n;
}

static void test_empty(void)
{
    metrics_reset();
    CHECK_RENDER("");
}

static void test_counter(void)
{
    metrics_reset();
    metrics_define("dx_test_total", METRIC_COUNTER, "Things counted.", "", NULL, 0);
    /* A metric without labels is exposed at 0 before its first update. */
    CHECK_RENDER("# HELP dx_test_total Things counted.\n"
                 "# TYPE dx_test_total counter\n"
                 "dx_test_total 0\n");
    metrics_add_named("dx_test_total", "", 1);
    metrics_add_named("dx_test_total", NULL, 2.5);
    /* A counter never goes down: a negative increment is ignored. */
    metrics_add_named("dx_test_total", "", -10);
    CHECK_RENDER("# HELP dx_test_total Things counted.\n"
                 "# TYPE dx_test_total counter\n"
                 "dx_test_total 3.5\n");
    /* Defining again is a no-op that keeps the value. */
    metrics_define("dx_test_total", METRIC_COUNTER, "Other help.", "", NULL, 0);
    metrics_add_named("dx_test_total", "", 1);
    CHECK_RENDER("# HELP dx_test_total Things counted.\n"
                 "# TYPE dx_test_total counter\n"
                 "dx_test_total 4.5\n");
}

static void test_labels_sorted(void)
{
    metrics_reset();
    metrics_define("dx_rows_in_total", METRIC_COUNTER, "Rows in.", "client_id", NULL, 0);
    metrics_define("dx_a_total", METRIC_COUNTER, "First by name.", "subject,code", NULL, 0);
    /* A labelled metric without series is not rendered at all. */
    CHECK_RENDER("");
    metrics_add_named("dx_rows_in_total", "US2", 5);
    metrics_add_named("dx_rows_in_total", "US10", 7);
    metrics_add_named("dx_rows_in_total", "US1", 1);
    metrics_add_named("dx_rows_in_total", "US2", 5);
    metrics_add_named("dx_a_total", "orders.file-ready,500", 1);
    metrics_add_named("dx_a_total", "orders.file-ready,200", 2);
    metrics_add_named("dx_a_total", "orders.file-failed,200", 3);
    CHECK_RENDER("# HELP dx_a_total First by name.\n"
                 "# TYPE dx_a_total counter\n"
                 "dx_a_total{subject=\"orders.file-failed\",code=\"200\"} 3\n"
                 "dx_a_total{subject=\"orders.file-ready\",code=\"200\"} 2\n"
                 "dx_a_total{subject=\"orders.file-ready\",code=\"500\"} 1\n"
                 "# HELP dx_rows_in_total Rows in.\n"
                 "# TYPE dx_rows_in_total counter\n"
                 "dx_rows_in_total{client_id=\"US1\"} 1\n"
                 "dx_rows_in_total{client_id=\"US10\"} 7\n"
                 "dx_rows_in_total{client_id=\"US2\"} 10\n");
    /* Updates after a render still find their series (the index follows the sort). */
    metrics_add_named("dx_rows_in_total", "US2", 1);
    metrics_add_named("dx_rows_in_total", "US10", 1);
    metrics_add_named("dx_rows_in_total", "US1", 1);
    CHECK_RENDER("# HELP dx_a_total First by name.\n"
                 "# TYPE dx_a_total counter\n"
                 "dx_a_total{subject=\"orders.file-failed\",code=\"200\"} 3\n"
                 "dx_a_total{subject=\"orders.file-ready\",code=\"200\"} 2\n"
                 "dx_a_total{subject=\"orders.file-ready\",code=\"500\"} 1\n"
                 "# HELP dx_rows_in_total Rows in.\n"
                 "# TYPE dx_rows_in_total counter\n"
                 "dx_rows_in_total{client_id=\"US1\"} 2\n"
                 "dx_rows_in_total{client_id=\"US10\"} 8\n"
                 "dx_rows_in_total{client_id=\"US2\"} 11\n");
}

static void test_gauge(void)
{
    metrics_reset();
    metrics_define("dx_last_success_timestamp_seconds", METRIC_GAUGE, "Last success.", "client_id",
                   NULL, 0);
    metrics_set_named("dx_last_success_timestamp_seconds", "US1", 1795939204);
    metrics_set_named("dx_last_success_timestamp_seconds", "US2", 0.1);
    metrics_add_named("dx_last_success_timestamp_seconds", "US2", -1.1);
    metrics_set_named("dx_last_success_timestamp_seconds", "US3", 1e21);
    CHECK_RENDER("# HELP dx_last_success_timestamp_seconds Last success.\n"
                 "# TYPE dx_last_success_timestamp_seconds gauge\n"
                 "dx_last_success_timestamp_seconds{client_id=\"US1\"} 1795939204\n"
                 "dx_last_success_timestamp_seconds{client_id=\"US2\"} -1\n"
                 "dx_last_success_timestamp_seconds{client_id=\"US3\"} 1e+21\n");
    metrics_set_named("dx_last_success_timestamp_seconds", "US2", 0.1);
    metrics_set_named("dx_last_success_timestamp_seconds", "US3", 1.0 / 0.0);
    CHECK_RENDER("# HELP dx_last_success_timestamp_seconds Last success.\n"
                 "# TYPE dx_last_success_timestamp_seconds gauge\n"
                 "dx_last_success_timestamp_seconds{client_id=\"US1\"} 1795939204\n"
                 "dx_last_success_timestamp_seconds{client_id=\"US2\"} 0.1\n"
                 "dx_last_success_timestamp_seconds{client_id=\"US3\"} +Inf\n");
}

static void test_histogram(void)
{
    static const double buckets[] = {1, 0.25, 10};

    metrics_reset();
    metrics_define("dx_duration_seconds", METRIC_HISTOGRAM, "Durations.", "", buckets, 3);
    CHECK_RENDER("# HELP dx_duration_seconds Durations.\n"
                 "# TYPE dx_duration_seconds histogram\n"
                 "dx_duration_seconds_bucket{le=\"0.25\"} 0\n"
                 "dx_duration_seconds_bucket{le=\"1\"} 0\n"
                 "dx_duration_seconds_bucket{le=\"10\"} 0\n"
                 "dx_duration_seconds_bucket{le=\"+Inf\"} 0\n"
                 "dx_duration_seconds_sum 0\n"
                 "dx_duration_seconds_count 0\n");
    metrics_observe_named("dx_duration_seconds", "", 0.125);
    metrics_observe_named("dx_duration_seconds", "", 0.25); /* upper bounds are inclusive */
    metrics_observe_named("dx_duration_seconds", "", 5);
    metrics_observe_named("dx_duration_seconds", "", 100);
    CHECK_RENDER("# HELP dx_duration_seconds Durations.\n"
                 "# TYPE dx_duration_seconds histogram\n"
                 "dx_duration_seconds_bucket{le=\"0.25\"} 2\n"
                 "dx_duration_seconds_bucket{le=\"1\"} 2\n"
                 "dx_duration_seconds_bucket{le=\"10\"} 3\n"
                 "dx_duration_seconds_bucket{le=\"+Inf\"} 4\n"
                 "dx_duration_seconds_sum 105.375\n"
                 "dx_duration_seconds_count 4\n");
}

static void test_histogram_default_labels(void)
{
    char *text;

    metrics_reset();
    metrics_define("dx_h_seconds", METRIC_HISTOGRAM, "H.", "client_id", NULL, 0);
    metrics_observe_named("dx_h_seconds", "US1", 0.003);
    metrics_observe_named("dx_h_seconds", "US1", 42);
    text = metrics_render();
    CHECK(text != NULL);
    if (!text)
        return;
    CHECK_EQ_INT(count_lines_with(text, "dx_h_seconds_bucket{client_id=\"US1\",le="), 16);
    CHECK(strstr(text, "\n"
                       "dx_h_seconds_bucket{client_id=\"US1\",le=\"0.005\"} 1\n"
                       "dx_h_seconds_bucket{client_id=\"US1\",le=\"0.01\"} 1\n"
                       "dx_h_seconds_bucket{client_id=\"US1\",le=\"0.025\"} 1\n") != NULL);
    CHECK(strstr(text, "dx_h_seconds_bucket{client_id=\"US1\",le=\"30\"} 1\n"
                       "dx_h_seconds_bucket{client_id=\"US1\",le=\"60\"} 2\n") != NULL);
    CHECK(strstr(text, "dx_h_seconds_bucket{client_id=\"US1\",le=\"300\"} 2\n"
                       "dx_h_seconds_bucket{client_id=\"US1\",le=\"+Inf\"} 2\n"
                       "dx_h_seconds_sum{client_id=\"US1\"} 42.003\n"
                       "dx_h_seconds_count{client_id=\"US1\"} 2\n") != NULL);
    free(text);
}

static void test_escaping(void)
{
    metrics_reset();
    metrics_define("dx_esc_total", METRIC_COUNTER, "Help with \\ and\nnewline and \"quotes\".",
                   "kind", NULL, 0);
    metrics_add_named("dx_esc_total", "a\\b\"c\nd", 1);
    CHECK_RENDER("# HELP dx_esc_total Help with \\\\ and\\nnewline and \"quotes\".\n"
                 "# TYPE dx_esc_total counter\n"
                 "dx_esc_total{kind=\"a\\\\b\\\"c\\nd\"} 1\n");
}

static void test_misuse(void)
{
    static const double one[] = {1};

    metrics_reset();
    metrics_define("dx_c_total", METRIC_COUNTER, "Counter.", "", NULL, 0);
    metrics_define("dx_g", METRIC_GAUGE, "Gauge.", "a,b", NULL, 0);
    metrics_define("dx_h", METRIC_HISTOGRAM, "Histogram.", "", one, 1);
    metrics_set_named("dx_g", "x,y", 1);

    /* Unknown names, twice (reported once). */
    metrics_add_named("dx_unknown_total", "", 1);
    metrics_add_named("dx_unknown_total", "", 1);
    metrics_observe_named("dx_unknown_seconds", "", 1);
    metrics_add_named(NULL, "", 1);
    /* Wrong number of label values. */
    metrics_set_named("dx_g", "x", 2);
    metrics_set_named("dx_g", "x,y,z", 2);
    metrics_set_named("dx_g", "", 2);
    metrics_add_named("dx_c_total", "US1", 1);
    metrics_add_named("dx_c_total", ",", 1);
    metrics_set_named("dx_g", "a,b,c,d,e,f,g,h,i,j,k", 2);
    /* Operations that do not fit the type. */
    metrics_set_named("dx_c_total", "", 5);
    metrics_observe_named("dx_c_total", "", 5);
    metrics_add_named("dx_h", "", 5);
    metrics_set_named("dx_h", "", 5);
    metrics_observe_named("dx_g", "x,y", 5);
    /* Invalid definitions are refused. */
    metrics_define("9bad", METRIC_COUNTER, "Bad.", "", NULL, 0);
    metrics_define("dx_bad_label", METRIC_COUNTER, "Bad.", "ok,not-ok", NULL, 0);
    metrics_define("dx_bad_reserved", METRIC_COUNTER, "Bad.", "__name", NULL, 0);
    metrics_define("dx_bad_le", METRIC_HISTOGRAM, "Bad.", "le", NULL, 0);
    metrics_define(NULL, METRIC_COUNTER, "Bad.", "", NULL, 0);
    /* Another type under an existing name keeps the first definition. */
    metrics_define("dx_c_total", METRIC_GAUGE, "Other.", "", NULL, 0);

    /* Rendered sorted by name: dx_c_total < dx_g < dx_h. */
    CHECK_RENDER("# HELP dx_c_total Counter.\n"
                 "# TYPE dx_c_total counter\n"
                 "dx_c_total 0\n"
                 "# HELP dx_g Gauge.\n"
                 "# TYPE dx_g gauge\n"
                 "dx_g{a=\"x\",b=\"y\"} 1\n"
                 "# HELP dx_h Histogram.\n"
                 "# TYPE dx_h histogram\n"
                 "dx_h_bucket{le=\"1\"} 0\n"
                 "dx_h_bucket{le=\"+Inf\"} 0\n"
                 "dx_h_sum 0\n"
                 "dx_h_count 0\n");
}

static void test_empty_label_value(void)
{
    metrics_reset();
    metrics_define("dx_e_total", METRIC_COUNTER, "E.", "a,b", NULL, 0);
    metrics_add_named("dx_e_total", ",", 1);
    metrics_add_named("dx_e_total", "x,", 2);
    CHECK_RENDER("# HELP dx_e_total E.\n"
                 "# TYPE dx_e_total counter\n"
                 "dx_e_total{a=\"\",b=\"\"} 1\n"
                 "dx_e_total{a=\"x\",b=\"\"} 2\n");
}

static void test_cap(void)
{
    char value[32], *text;

    metrics_reset();
    metrics_define("dx_capped_total", METRIC_COUNTER, "Capped.", "client_id", NULL, 0);
    for (int i = 0; i < METRICS_MAX_SERIES + 5; i++) {
        snprintf(value, sizeof(value), "C%05d", i);
        metrics_add_named("dx_capped_total", value, 1);
    }
    /* Existing series still count once the metric is full. */
    metrics_add_named("dx_capped_total", "C00000", 1);
    metrics_add_named("dx_capped_total", "C09999", 1);
    metrics_add_named("dx_capped_total", "C10000", 1); /* dropped: a new series */
    text = metrics_render();
    CHECK(text != NULL);
    if (!text)
        return;
    CHECK_EQ_INT(count_lines_with(text, "dx_capped_total{"), METRICS_MAX_SERIES);
    CHECK(strstr(text, "dx_capped_total{client_id=\"C00000\"} 2\n") != NULL);
    CHECK(strstr(text, "dx_capped_total{client_id=\"C09999\"} 2\n") != NULL);
    CHECK(strstr(text, "C10000") == NULL);
    CHECK(strstr(text, "# HELP dx_metrics_series_dropped_total Updates dropped because the metric "
                       "had reached its series limit.\n"
                       "# TYPE dx_metrics_series_dropped_total counter\n"
                       "dx_metrics_series_dropped_total{metric=\"dx_capped_total\"} 6\n") != NULL);
    free(text);
}

enum { THREADS = 8, ROUNDS = 20000 };

static void *hammer(void *arg)
{
    char label[16];

    snprintf(label, sizeof(label), "T%d", (int)(long)arg);
    for (int i = 0; i < ROUNDS; i++) {
        metrics_add_named("dx_shared_total", "", 1);
        metrics_add_named("dx_per_thread_total", label, 1);
        metrics_observe_named("dx_obs_seconds", "", 0.5);
        if (i % 1000 == 0)
            free(metrics_render());
    }
    return NULL;
}

static void test_concurrency(void)
{
    static const double buckets[] = {1};
    pthread_t threads[THREADS];
    char *text, line[128];

    metrics_reset();
    metrics_define("dx_shared_total", METRIC_COUNTER, "Shared.", "", NULL, 0);
    metrics_define("dx_per_thread_total", METRIC_COUNTER, "Per thread.", "thread", NULL, 0);
    metrics_define("dx_obs_seconds", METRIC_HISTOGRAM, "Observed.", "", buckets, 1);
    for (long i = 0; i < THREADS; i++)
        CHECK_EQ_INT(pthread_create(&threads[i], NULL, hammer, (void *)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    text = metrics_render();
    CHECK(text != NULL);
    if (!text)
        return;
    snprintf(line, sizeof(line), "\ndx_shared_total %d\n", THREADS * ROUNDS);
    CHECK(strstr(text, line) != NULL);
    for (int i = 0; i < THREADS; i++) {
        snprintf(line, sizeof(line), "dx_per_thread_total{thread=\"T%d\"} %d\n", i, ROUNDS);
        CHECK(strstr(text, line) != NULL);
    }
    snprintf(line, sizeof(line), "dx_obs_seconds_bucket{le=\"1\"} %d\n", THREADS * ROUNDS);
    CHECK(strstr(text, line) != NULL);
    snprintf(line, sizeof(line), "dx_obs_seconds_sum %d\n", THREADS * ROUNDS / 2);
    CHECK(strstr(text, line) != NULL);
    snprintf(line, sizeof(line), "dx_obs_seconds_count %d\n", THREADS * ROUNDS);
    CHECK(strstr(text, line) != NULL);
    free(text);
}

static void test_standard(void)
{
    static const char *const families[] = {
        "dx_events_consumed_total counter",
        "dx_events_published_total counter",
        "dx_events_failed_total counter",
        "dx_events_terminated_total counter",
        "dx_rows_in_total counter",
        "dx_rows_out_total counter",
        "dx_rows_rejected_total counter",
        "dx_rows_duplicate_total counter",
        "dx_files_processed_total counter",
        "dx_files_failed_total counter",
        "dx_processing_duration_seconds histogram",
        "dx_last_success_timestamp_seconds gauge",
        "dx_nats_reconnects_total counter",
        "dx_sftp_errors_total counter",
        "dx_http_requests_total counter",
        "dx_invalid_input_total counter",
        "dx_build_info gauge",
    };
    char *text, line[128];

    metrics_reset();
    metrics_define_standard("file-transformer");
    metrics_define_standard("file-transformer"); /* idempotent */
    /* Every family becomes visible once it has a series. */
    metrics_add_named("dx_events_consumed_total", "orders.order-date", 1);
    metrics_add_named("dx_events_published_total", "orders.file-ready", 1);
    metrics_add_named("dx_events_failed_total", "orders.order-date", 1);
    metrics_add_named("dx_events_terminated_total", "orders.order-date", 1);
    metrics_add_named("dx_rows_in_total", "US1", 10);
    metrics_add_named("dx_rows_out_total", "US1", 8);
    metrics_add_named("dx_rows_rejected_total", "US1,invalid_date", 1);
    metrics_add_named("dx_rows_duplicate_total", "US1", 1);
    metrics_add_named("dx_files_processed_total", "US1", 1);
    metrics_add_named("dx_files_failed_total", "US2", 1);
    metrics_observe_named("dx_processing_duration_seconds", "", 0.2);
    metrics_set_named("dx_last_success_timestamp_seconds", "US1", 1795939204);
    metrics_add_named("dx_nats_reconnects_total", "", 1);
    metrics_add_named("dx_sftp_errors_total", "timeout", 1);
    metrics_add_named("dx_http_requests_total", "200", 1);
    metrics_add_named("dx_invalid_input_total", "oversized", 1);
    text = metrics_render();
    CHECK(text != NULL);
    if (!text)
        return;
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        snprintf(line, sizeof(line), "# TYPE %s\n", families[i]);
        if (!strstr(text, line))
            testing_fail(__FILE__, __LINE__, "missing family: %s", line);
        testing_checks++;
    }
    CHECK(strstr(text, "dx_build_info{worker=\"file-transformer\",version=\"") != NULL);
    CHECK(strstr(text, "dx_sftp_errors_total{kind=\"auth\"} 0\n"
                       "dx_sftp_errors_total{kind=\"connect\"} 0\n"
                       "dx_sftp_errors_total{kind=\"host_key\"} 0\n"
                       "dx_sftp_errors_total{kind=\"io\"} 0\n"
                       "dx_sftp_errors_total{kind=\"timeout\"} 1\n") != NULL);
    CHECK(strstr(text, "dx_invalid_input_total{kind=\"invalid_client\"} 0\n"
                       "dx_invalid_input_total{kind=\"invalid_event\"} 0\n"
                       "dx_invalid_input_total{kind=\"invalid_profile\"} 0\n"
                       "dx_invalid_input_total{kind=\"not_regular_file\"} 0\n"
                       "dx_invalid_input_total{kind=\"oversized\"} 1\n"
                       "dx_invalid_input_total{kind=\"slow_request\"} 0\n"
                       "dx_invalid_input_total{kind=\"undecodable\"} 0\n"
                       "dx_invalid_input_total{kind=\"unusable_file\"} 0\n") != NULL);
    CHECK(strstr(text, "\ndx_nats_reconnects_total 1\n") != NULL);
    CHECK(strstr(text, "\ndx_processing_duration_seconds_bucket{le=\"0.25\"} 1\n") != NULL);
    CHECK(strstr(text, "\ndx_last_success_timestamp_seconds{client_id=\"US1\"} 1795939204\n") !=
          NULL);
    /* Nothing unbounded: no label but these appears. */
    CHECK(strstr(text, "trace") == NULL);
    free(text);
}

int main(void)
{
    test_empty();
    test_counter();
    test_labels_sorted();
    test_gauge();
    test_histogram();
    test_histogram_default_labels();
    test_escaping();
    test_misuse();
    test_empty_label_value();
    test_cap();
    test_concurrency();
    test_standard();
    metrics_reset();
    return testing_finish("metrics");
}
