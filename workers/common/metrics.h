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
 * was defined with: metrics_add("dx_rows_in_total", "US1", 10).  A label
 * value therefore cannot contain a comma; every other byte is allowed and
 * escaped on output (\\, \", \n).
 *
 * The families every worker exposes (metrics_define_standard()); client_id is
 * the only per-tenant label and no label ever holds a file name or trace id:
 *
 *   dx_events_consumed_total{subject}          counter    Events received from JetStream.
 *   dx_events_published_total{subject}         counter    Events published and acked by JetStream.
 *   dx_events_failed_total{subject}            counter    Events whose handling failed transiently
 *                                                         and were nak'd for redelivery.
 *   dx_events_terminated_total{subject}        counter    Events terminated, never redelivered
 *                                                         (undecodable, invalid, permanent).
 *   dx_rows_in_total{client_id}                counter    CSV data rows read from client drops.
 *   dx_rows_out_total{client_id}               counter    Clean rows written to the depot.
 *   dx_rows_rejected_total{client_id}          counter    Rows written to the rejects file.
 *   dx_rows_duplicate_total{client_id}         counter    Rows dropped as duplicates.
 *   dx_cells_neutralised_total{client_id}      counter    Text cells given a leading ' (formula guard).
 *   dx_files_processed_total{client_id}        counter    Drops transformed and committed.
 *   dx_files_failed_total{client_id}           counter    Drops that failed (file-failed events).
 *   dx_processing_duration_seconds             histogram  Time to handle one event, receipt to ack.
 *   dx_last_success_timestamp_seconds{client_id} gauge    Unix time of the client's last good run.
 *   dx_nats_reconnects_total                   counter    Reconnections to the NATS server.
 *   dx_sftp_errors_total{kind}                 counter    SFTP errors; kind: connect, auth,
 *                                                         host_key, io, timeout.
 *   dx_http_requests_total{code}               counter    HTTP requests served, by status code.
 *   dx_invalid_input_total{kind}               counter    Input refused; kind: undecodable,
 *                                                         invalid_event, invalid_client, oversized,
 *                                                         unusable_file, unusable_name.
 *   dx_build_info{worker,version}              gauge      Always 1; names the worker and version.
 *   dx_metrics_series_dropped_total{metric}    counter    Updates dropped because the metric had
 *                                                         METRICS_MAX_SERIES series already.
 *
 * The worker itself is told apart by Prometheus' job label, so the duration
 * histogram carries no worker label.
 */

/* The most label combinations one metric keeps. */
#define METRICS_MAX_SERIES 10000

typedef enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM } metric_type;

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
void metrics_add(const char *name, const char *label_values, double value);

/* Gauge = value.  Ignored (and reported once) for counters and histograms. */
void metrics_set(const char *name, const char *label_values, double value);

/* Records one observation in a histogram. */
void metrics_observe(const char *name, const char *label_values, double value);

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
 * Declares every family in the table above, so all three workers expose the
 * same names, and sets dx_build_info{worker=worker,version=DX_VERSION} to 1.
 * Known label values of bounded kinds (dx_sftp_errors_total{kind},
 * dx_invalid_input_total{kind}, dx_events_*_total{subject} for the three
 * stream subjects) start at 0, so rate() works from the first scrape.
 * Idempotent.
 */
void metrics_define_standard(const char *worker);
