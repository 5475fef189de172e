#pragma once

#include <stddef.h>

/*
 * Metrics: one process-wide registry of Prometheus metrics, rendered by
 * GET /metrics in the text exposition format 0.0.4.
 *
 * Every function is thread-safe (one mutex) and never fails loudly: a metric
 * used before it is defined, a wrong number of label values, or an operation
 * that does not fit the metric's type is reported once per metric on stderr
 * and then ignored, so a mistake in instrumentation can never take a worker
 * down.  The registry is bounded: each metric keeps at most
 * METRICS_MAX_SERIES label combinations; updates for new combinations beyond
 * that are dropped and counted in dx_metrics_series_dropped_total{metric}.
 *
 * Labels are passed as one comma-separated string, in the order the metric
 * was defined with: metrics_add(DX_ROWS_IN_TOTAL, "US1", 10).  A label
 * value therefore cannot contain a comma; every other byte is allowed and
 * escaped on output (\\, \", \n).
 *
 * The metrics the workers expose are the rows of METRICS_TABLE below, the
 * one source of their names, types, labels and help: call sites name them
 * by their id (metrics_add(DX_ROWS_IN_TOTAL, client_id, n)), which the
 * compiler checks, and metrics_define_standard() defines them.
 * client_id is the only per-tenant label and no label ever holds a file
 * name or trace id.  The worker itself is told apart by Prometheus' job
 * label, so the duration histogram carries no worker label.
 */

/* The most label combinations one metric keeps. */
#define METRICS_MAX_SERIES 10000

typedef enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM } metric_type;

/*
 * X(id, name, type, labels, scope, help): a new metric is one row here, and
 * one row in the metrics table of docs/operations.md, which
 * tests/unit/test_metrics_docs.py compares with this one.  id is name in
 * capitals; labels are comma-separated ("" for none); scope is the one
 * worker that exposes it, or NULL for every worker.
 */
#define METRICS_TABLE(X)                                                                           \
    X(DX_EVENTS_CONSUMED_TOTAL, "dx_events_consumed_total", METRIC_COUNTER, "subject", NULL,       \
      "Events received from JetStream, by subject.")                                               \
    X(DX_EVENTS_REDELIVERED_TOTAL, "dx_events_redelivered_total", METRIC_COUNTER, "subject", NULL, \
      "Events received again (JetStream delivery count above 1), by subject.")                     \
    X(DX_EVENTS_PUBLISHED_TOTAL, "dx_events_published_total", METRIC_COUNTER, "subject", NULL,     \
      "Events published and acknowledged by JetStream, by subject.")                               \
    X(DX_EVENTS_FAILED_TOTAL, "dx_events_failed_total", METRIC_COUNTER, "subject", NULL,           \
      "Events whose handling failed transiently and were nak'd for redelivery.")                   \
    X(DX_EVENTS_TERMINATED_TOTAL, "dx_events_terminated_total", METRIC_COUNTER, "subject", NULL,   \
      "Events terminated and never redelivered (undecodable, invalid, permanent failure).")        \
    X(DX_ROWS_IN_TOTAL, "dx_rows_in_total", METRIC_COUNTER, "client_id", NULL,                     \
      "CSV data rows read from client drops.")                                                     \
    X(DX_ROWS_OUT_TOTAL, "dx_rows_out_total", METRIC_COUNTER, "client_id", NULL,                   \
      "Clean rows written to the depot.")                                                          \
    X(DX_ROWS_REJECTED_TOTAL, "dx_rows_rejected_total", METRIC_COUNTER, "client_id,reason", NULL,  \
      "Rows written to the rejects file, by reason (the reject code of its second column).")       \
    X(DX_ROWS_DUPLICATE_TOTAL, "dx_rows_duplicate_total", METRIC_COUNTER, "client_id", NULL,       \
      "Rows dropped as duplicates.")                                                               \
    X(DX_CELLS_NEUTRALISED_TOTAL, "dx_cells_neutralised_total", METRIC_COUNTER, "client_id", NULL, \
      "Text cells of clean and rejects files given a leading ' so that a spreadsheet shows them "  \
      "as text (CSV_FORMULA_GUARD).")                                                              \
    X(DX_FILES_PROCESSED_TOTAL, "dx_files_processed_total", METRIC_COUNTER, "client_id", NULL,     \
      "Drops transformed and committed to the depot.")                                             \
    X(DX_FILES_FAILED_TOTAL, "dx_files_failed_total", METRIC_COUNTER, "client_id", NULL,           \
      "Drops that could not be transformed (file-failed events).")                                 \
    X(DX_PROCESSING_DURATION_SECONDS, "dx_processing_duration_seconds", METRIC_HISTOGRAM, "",      \
      NULL, "Time to handle one event, from receipt to acknowledgement.")                          \
    X(DX_LAST_SUCCESS_TIMESTAMP_SECONDS, "dx_last_success_timestamp_seconds", METRIC_GAUGE,        \
      "client_id", NULL, "Unix time of the last successful run of the client.")                    \
    X(DX_NATS_RECONNECTS_TOTAL, "dx_nats_reconnects_total", METRIC_COUNTER, "", NULL,              \
      "Reconnections to the NATS server.")                                                         \
    X(DX_SFTP_ERRORS_TOTAL, "dx_sftp_errors_total", METRIC_COUNTER, "kind", NULL,                  \
      "SFTP errors by kind (connect, auth, host_key, io, timeout).")                               \
    X(DX_HTTP_REQUESTS_TOTAL, "dx_http_requests_total", METRIC_COUNTER, "code", NULL,              \
      "HTTP requests served, by status code.")                                                     \
    X(DX_INVALID_INPUT_TOTAL, "dx_invalid_input_total", METRIC_COUNTER, "kind", NULL,              \
      "Input refused, by kind (undecodable, invalid_event, invalid_client, not_regular_file, "     \
      "oversized, unusable_file, unusable_name, slow_request, invalid_profile).")                  \
    X(DX_SCHEDULED_RUNS_TOTAL, "dx_scheduled_runs_total", METRIC_COUNTER, "triggered_by",          \
      "daily-checker", "Scheduled runs completed; triggered_by: schedule, catch-up, recheck.")     \
    X(DX_SCHEDULED_RUNS_FAILED_TOTAL, "dx_scheduled_runs_failed_total", METRIC_COUNTER,            \
      "triggered_by", "daily-checker",                                                             \
      "Scheduled runs that failed and will be retried as catch-up.")                               \
    X(DX_RUN_CLAIMS_TOTAL, "dx_run_claims_total", METRIC_COUNTER, "outcome", "daily-checker",      \
      "Run claims by outcome: claimed, published_elsewhere, taken_over.")                          \
    X(DX_CATCHUP_SKIPPED_DATES_TOTAL, "dx_catchup_skipped_dates_total", METRIC_COUNTER, "",        \
      "daily-checker",                                                                             \
      "Missed order dates not caught up, older than the newest CATCHUP_MAX_DAYS.")                 \
    X(DX_NOTIFICATIONS_SENT_TOTAL, "dx_notifications_sent_total", METRIC_COUNTER, "target",        \
      "status-checker",                                                                            \
      "Notifications delivered (2xx), by target: global or the profile's webhook NAME.")           \
    X(DX_NOTIFICATIONS_FAILED_TOTAL, "dx_notifications_failed_total", METRIC_COUNTER, "target",    \
      "status-checker",                                                                            \
      "Notification attempts that failed (retried, or given up when permanent), by target.")       \
    X(DX_NOTIFICATIONS_PENDING, "dx_notifications_pending", METRIC_GAUGE, "", "status-checker",    \
      "ClientState events the notifier has not finished (not yet delivered or being retried).")    \
    X(DX_BUILD_INFO, "dx_build_info", METRIC_GAUGE, "worker,version", NULL,                        \
      "Always 1; names the worker and its version.")                                               \
    X(DX_METRICS_SERIES_DROPPED_TOTAL, "dx_metrics_series_dropped_total", METRIC_COUNTER,          \
      "metric", NULL, "Updates dropped because the metric had reached its series limit.")

typedef enum metric_id {
#define METRICS_ID_(id, name, type, labels, scope, help) id,
    METRICS_TABLE(METRICS_ID_)
#undef METRICS_ID_
        METRICS_COUNT
} metric_id;

/* A row of METRICS_TABLE. */
typedef struct metric_spec {
    const char *name;
    metric_type type;
    const char *labels;
    const char *scope;
    const char *help;
} metric_spec;

/* The rows of METRICS_TABLE, indexed by metric_id. */
extern const metric_spec metrics_table[METRICS_COUNT];

/*
 * Declares a metric in the process-wide registry; idempotent (same name again
 * is a no-op).  name follows Prometheus rules ([a-zA-Z_:][a-zA-Z0-9_:]*);
 * label_names is a comma-separated list of label names ("subject",
 * "client_id", "" or NULL for none).  Histograms use fixed buckets given as
 * upper bounds in seconds, in increasing order: pass NULL for the default
 * (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300);
 * buckets and bucket_count are ignored for other types.  A metric without
 * labels starts at 0 so it is exposed before its first update.  The strings
 * and the bucket array are copied.
 */
void metrics_define(const char *name, metric_type type, const char *help, const char *label_names,
                    const double *buckets, size_t bucket_count);

/* label_values: comma-separated values in the order of label_names ("" or NULL for none). */

/* Counter or gauge += value.  A counter ignores negative values (it never goes down). */
void metrics_add(metric_id id, const char *label_values, double value);

/* Gauge = value.  Ignored (and reported once) for counters and histograms. */
void metrics_set(metric_id id, const char *label_values, double value);

/* Records one observation in a histogram. */
void metrics_observe(metric_id id, const char *label_values, double value);

/* The same by name, for metrics outside METRICS_TABLE (the registry's own
 * tests). */
void metrics_add_named(const char *name, const char *label_values, double value);
void metrics_set_named(const char *name, const char *label_values, double value);
void metrics_observe_named(const char *name, const char *label_values, double value);

/*
 * Renders the registry in the Prometheus text exposition format 0.0.4: for
 * every metric with at least one series, # HELP and # TYPE, then its series;
 * histograms as cumulative _bucket{le="..."} including +Inf, _sum and
 * _count.  Metrics are sorted by name and series by label values, so the
 * output is deterministic.  Returns a malloc'd NUL-terminated string the
 * caller frees, or NULL when out of memory.
 */
char *metrics_render(void);

/* Frees the registry and every metric in it (tests, shutdown). */
void metrics_reset(void);

/*
 * Declares every row of METRICS_TABLE whose scope is NULL or worker, and sets
 * dx_build_info{worker=worker,version=DX_VERSION} to 1. Known label values of bounded kinds
 * (dx_sftp_errors_total{kind}, dx_invalid_input_total{kind}, dx_events_*_total{subject} for the
 * three stream subjects) start at 0, so rate() works from the first scrape. Idempotent.
 */
void metrics_define_standard(const char *worker);
