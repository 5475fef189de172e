#pragma once

#include <cjson/cJSON.h>

/*
 * The status page: GET / on status-checker.  One self-contained HTML document
 * (inline CSS, inline SVG, no script, no external asset), so it works offline
 * and behind any proxy.  It shows, from the status document of GET /status:
 *
 *   - id="summary":  clients, files in the depot, rows over the chart window, failures;
 *   - id="chart":    rows in / out / rejected per order date over the last PAGE_CHART_DAYS
 *                    days up to the date of generated_at, one
 *                    <g class="day" data-date="YYYY-MM-DD" data-rows-in=".." data-rows-out=".."
 *                    data-rows-rejected=".." data-runs=".."> per day, oldest first;
 *   - id="depot":    one <tr class="client" data-client-id=".."> per client, in natural order
 *                    (US2 before US10), with its files and its last run;
 *   - id="runs":     the last PAGE_MAX_ROWS runs, newest first (<tr class="run">);
 *   - id="failures": the last PAGE_MAX_ROWS failures, newest first (<tr class="failure">).
 *
 * The chart counts each output once (client_id, order_date, output), keeping
 * its newest run, so a redelivered file-ready event or a re-run of the same
 * drop does not count its rows twice.  Every string taken from the document
 * is HTML-escaped; missing or mistyped fields render as a dash.
 */

#define PAGE_CHART_DAYS 28
#define PAGE_MAX_ROWS   50

/*
 * Renders the self-contained HTML status page from the status JSON document
 * (the same object GET /status returns; borrowed, not modified).  Returns a
 * malloc'd NUL-terminated string the caller frees, or NULL when out of memory.
 */
char *page_render(const cJSON *status);
