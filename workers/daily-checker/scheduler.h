#pragma once

#include <stddef.h>
#include <time.h>

#include "cron.h"
#include "worker.h"

/*
 * scheduler: daily-checker's SCHEDULE loop, with catch-up after downtime and
 * claims shared by replicas.
 *
 * State lives in the JetStream key-value bucket SCHEDULER_BUCKET, so that it
 * survives restarts and every replica sees the same:
 *  - key SCHEDULER_LAST_RUN_KEY: the last completed scheduled run, as JSON
 *    {"scheduled_at": <Unix seconds of the scheduled instant>, "order_date":
 *    "YYYY-MM-DD", "completed_at": "<RFC 3339>", "by": "<owner>"}.  Only
 *    scheduled_at is read back.  It only moves forward (compare and swap), so
 *    replicas finishing the same run in any order agree.  The first start,
 *    with no record, writes one at "now": nothing before it is caught up.
 *  - keys run.<date>.<client>.<instant>: the run claims (claims.h).
 *
 * Loop: read the record; every scheduled instant in (record, now] was missed
 * (the scheduler was down, or the run failed): the missed instants are
 * grouped by order date (their local date in TZ), only the newest
 * CATCHUP_MAX_DAYS order dates are kept (the older ones are logged and
 * skipped), and each is run once, oldest first, as "catch-up", advancing the
 * record after each.  Then wait for the next scheduled instant, run it as
 * "schedule", record it, and loop.  A failed run leaves the record where it
 * was, so it is retried as a catch-up after a growing delay (15 s to 5 min).
 */

#define SCHEDULER_BUCKET       "daily-checker"
#define SCHEDULER_LAST_RUN_KEY "last-run"
/* Claims and the record expire when untouched for longer than any catch-up. */
#define SCHEDULER_TTL_S (400LL * 24 * 3600)
/* Missed instants older than this are never looked at, whatever the record says. */
#define SCHEDULER_LOOKBACK_S (367LL * 24 * 3600)

/* One order date to catch up, and the latest missed instant of that date. */
typedef struct scheduler_missed {
    char order_date[11];
    time_t scheduled_at;
} scheduler_missed;

/*
 * The missed runs in (last, now], grouped by local order date, oldest first,
 * at most max of them: the newest ones.  Writes up to max entries to out and
 * returns how many.  *skipped gets the number of older order dates left out
 * and *newest the latest missed instant (last when none); both may be NULL.
 * Instants before now - SCHEDULER_LOOKBACK_S are not considered.
 */
size_t scheduler_missed_dates(const cron_schedule *schedule, time_t last, time_t now,
                              scheduler_missed *out, size_t max, size_t *skipped, time_t *newest);

/*
 * Runs the schedule until worker_stop: opens the bucket (retrying while it
 * cannot), catches up, then runs at each scheduled instant.  w->bus must be
 * connected.  Every failure is logged; the loop keeps going.
 */
void scheduler_run(worker *w, const cron_schedule *schedule);
