#include "scheduler.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checker.h"
#include "claims.h"
#include "kv.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

/* cron_between() is asked for this many instants at a time while walking. */
#define WALK_CHUNK 256

/* Delays before retrying a failed run, and before reopening the bucket. */
#define RETRY_MIN_MS 15000
#define RETRY_MAX_MS 300000

size_t scheduler_missed_dates(const cron_schedule *schedule, time_t last, time_t now,
                              scheduler_missed *out, size_t max, size_t *skipped, time_t *newest)
{
    time_t from = last, chunk[WALK_CHUNK];
    size_t count = 0, left_out = 0, n;

    if (newest != NULL)
        *newest = last;
    if (from < now - SCHEDULER_LOOKBACK_S)
        from = now - SCHEDULER_LOOKBACK_S;
    do {
        n = cron_between(schedule, from, now, chunk, WALK_CHUNK);
        for (size_t i = 0; i < n; i++) {
            char date[11];

            util_local_date(chunk[i], date);
            if (newest != NULL)
                *newest = chunk[i];
            /* Instants come in order, so one date's instants are adjacent. */
            if (count > 0 && strcmp(out[count - 1].order_date, date) == 0) {
                out[count - 1].scheduled_at = chunk[i];
                continue;
            }
            if (max == 0) {
                left_out++;
                continue;
            }
            if (count == max) {
                memmove(out, out + 1, (max - 1) * sizeof(*out));
                count--;
                left_out++;
            }
            memcpy(out[count].order_date, date, sizeof(date));
            out[count].scheduled_at = chunk[i];
            count++;
        }
        if (n > 0)
            from = chunk[n - 1];
    } while (n == WALK_CHUNK);
    if (skipped != NULL)
        *skipped = left_out;
    return count;
}

/* A client whose drop was still being written when a run checked it. */
typedef struct recheck {
    char client_id[EVENT_CLIENT_MAX];
    char order_date[11]; /* the run date */
    time_t scheduled_at; /* the run's instant: its claims and check id */
    int done;            /* re-checks made */
    time_t due;
    time_t until; /* the end of the run's local day */
} recheck;

/* The scheduler's state while it runs. */
typedef struct sched {
    worker *w;
    const cron_schedule *schedule;
    kv *store;
    claims *claims;
    time_t last; /* the newest completed run known, from the bucket or from here */
    recheck *rechecks;
    size_t nrechecks;
} sched;

/* Reads the record; DX_ERR_NOT_FOUND when there is none or it is unreadable. */
static dx_status record_read(sched *s, time_t *last, uint64_t *revision)
{
    char *text = NULL;
    dx_status st = kv_get(s->store, SCHEDULER_LAST_RUN_KEY, &text, revision);
    cJSON *o;
    const cJSON *at;

    if (st != DX_OK)
        return st;
    o = cJSON_Parse(text);
    at = cJSON_GetObjectItemCaseSensitive(o, "scheduled_at");
    if (cJSON_IsNumber(at) && at->valuedouble > 0) {
        *last = (time_t)at->valuedouble;
    } else {
        log_printf(LOG_LEVEL_WARN, NULL,
                   "unreadable %s record in key-value bucket %s: replaced by the next run",
                   SCHEDULER_LAST_RUN_KEY, kv_bucket(s->store));
        st = DX_ERR_NOT_FOUND;
    }
    cJSON_Delete(o);
    free(text);
    return st;
}

static char *record_value(sched *s, time_t scheduled_at)
{
    cJSON *o = cJSON_CreateObject();
    char date[11], at[32], done[32];
    char *text;

    util_local_date(scheduled_at, date);
    util_rfc3339(at, (int64_t)scheduled_at * 1000);
    util_rfc3339(done, util_now_ms());
    cJSON_AddNumberToObject(o, "scheduled_at", (double)scheduled_at);
    cJSON_AddStringToObject(o, "scheduled_at_utc", at);
    cJSON_AddStringToObject(o, "order_date", date);
    cJSON_AddStringToObject(o, "completed_at", done);
    cJSON_AddStringToObject(o, "by", claims_owner(s->claims));
    text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

/*
 * Moves the record forward to scheduled_at (never back: another replica may
 * have recorded a later run meanwhile).  A failure is logged and the run is
 * remembered here, so this process does not repeat it.
 */
static void record_advance(sched *s, time_t scheduled_at)
{
    char *value = record_value(s, scheduled_at);
    dx_status st = value != NULL ? DX_ERR_EXISTS : DX_ERR_NOMEM;

    if (scheduled_at > s->last)
        s->last = scheduled_at;
    for (int attempt = 0; attempt < 10 && st == DX_ERR_EXISTS; attempt++) {
        time_t recorded = 0;
        uint64_t rev = 0;

        st = record_read(s, &recorded, &rev);
        if (st == DX_OK && recorded >= scheduled_at)
            break;
        if (st == DX_ERR_NOT_FOUND && rev == 0)
            st = kv_create(s->store, SCHEDULER_LAST_RUN_KEY, value, NULL);
        else if (st == DX_OK || st == DX_ERR_NOT_FOUND) /* unreadable: overwrite it */
            st = kv_update(s->store, SCHEDULER_LAST_RUN_KEY, value, rev, NULL);
        if (st == DX_ERR_NOT_FOUND)
            st = DX_ERR_EXISTS; /* deleted meanwhile: read again */
    }
    free(value);
    if (st != DX_OK)
        log_printf(LOG_LEVEL_WARN, NULL,
                   "cannot record the last run in key-value bucket %s (%s): a restart may "
                   "repeat it, its claims keep it from being published twice",
                   kv_bucket(s->store), status_text(st));
}

/* Refreshes s->last from the bucket (another replica may be ahead). */
static void record_refresh(sched *s)
{
    time_t recorded = 0;

    if (record_read(s, &recorded, NULL) == DX_OK && recorded > s->last)
        s->last = recorded;
}

/* Opens the bucket and the claims, and loads or creates the record. */
static dx_status sched_open(sched *s, char *err, size_t err_len)
{
    time_t recorded = 0;
    dx_status st = kv_open(&s->store, s->w->bus, SCHEDULER_BUCKET, s->w->cfg.stream_replicas,
                           SCHEDULER_TTL_S, err, err_len);

    if (st == DX_OK)
        st = claims_create(&s->claims, s->store);
    if (st == DX_OK) {
        uint64_t rev = 0;

        st = record_read(s, &recorded, &rev);
        if (st == DX_OK) {
            char at[32];

            s->last = recorded;
            util_rfc3339(at, (int64_t)recorded * 1000);
            log_printf(LOG_LEVEL_INFO, NULL, "last scheduled run recorded: %s", at);
        } else if (st == DX_ERR_NOT_FOUND) {
            /* First start: nothing before now is owed.  Another replica
             * starting at the same time may write its own "now": the
             * record only moves forward, so the later one stays. */
            s->last = time(NULL);
            record_advance(s, s->last);
            log_printf(LOG_LEVEL_INFO, NULL,
                       "no scheduled run recorded yet: catch-up starts from now");
            st = DX_OK;
        } else {
            snprintf(err, err_len, "cannot read %s from key-value bucket %s",
                     SCHEDULER_LAST_RUN_KEY, SCHEDULER_BUCKET);
        }
    }
    if (st != DX_OK) {
        claims_destroy(s->claims);
        kv_destroy(s->store);
        s->claims = NULL;
        s->store = NULL;
    }
    return st;
}

/* The first instant of the local day after the one of t. */
static time_t local_day_end(time_t t)
{
    struct tm tm;

    localtime_r(&t, &tm);
    tm.tm_mday += 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    return mktime(&tm);
}

/* Adds a re-check of client_id for the run (order_date, scheduled_at), due
 * in RECHECK_SECONDS, unless done re-checks were the last allowed or it
 * would fall after the run's local day.  Logs the decision. */
static void recheck_plan(sched *s, const char *client_id, const char *order_date,
                         time_t scheduled_at, int done)
{
    const config *cfg = &s->w->cfg;
    time_t due = time(NULL) + cfg->recheck_seconds, until = local_day_end(scheduled_at);
    log_ctx lc = {NULL, NULL, client_id, order_date};
    recheck *grown;

    if (cfg->recheck_seconds == 0 || done >= cfg->recheck_max || due >= until) {
        if (cfg->recheck_seconds > 0 && cfg->recheck_max > 0)
            log_printf(LOG_LEVEL_WARN, &lc,
                       "drop of %s still not stable after %d re-checks or at the end of the day: "
                       "left for the next scheduled run",
                       client_id, done);
        return;
    }
    grown = realloc(s->rechecks, (s->nrechecks + 1) * sizeof(*grown));
    if (grown == NULL) {
        log_printf(LOG_LEVEL_ERROR, &lc, "out of memory: no re-check of %s", client_id);
        return;
    }
    s->rechecks = grown;
    grown = &s->rechecks[s->nrechecks++];
    memset(grown, 0, sizeof(*grown));
    util_copy(grown->client_id, sizeof(grown->client_id), client_id);
    util_copy(grown->order_date, sizeof(grown->order_date), order_date);
    grown->scheduled_at = scheduled_at;
    grown->done = done;
    grown->due = due;
    grown->until = until;
    log_printf(LOG_LEVEL_INFO, &lc, "drop of %s not stable yet: re-checked in %d s (%d of %d)",
               client_id, cfg->recheck_seconds, done + 1, cfg->recheck_max);
}

/* Plans a re-check of each client a run found not_stable (checks: its DropCheck events). */
static void recheck_plan_all(sched *s, const cJSON *checks, const char *order_date,
                             time_t scheduled_at, int done)
{
    const cJSON *ev;

    cJSON_ArrayForEach(ev, checks)
    {
        const cJSON *found = cJSON_GetObjectItemCaseSensitive(ev, "found");
        const cJSON *client = cJSON_GetObjectItemCaseSensitive(ev, "client_id");

        if (cJSON_IsString(found) && strcmp(found->valuestring, "not_stable") == 0 &&
            cJSON_IsString(client))
            recheck_plan(s, client->valuestring, order_date, scheduled_at, done);
    }
}

/* Drops every planned re-check: a new run checks every client again. */
static void recheck_clear(sched *s)
{
    free(s->rechecks);
    s->rechecks = NULL;
    s->nrechecks = 0;
}

/* The run for one order date, and one DropCheck per client of it; with
 * client_id (a re-check) only that client.  DX_OK when every client was
 * handled.  checks gets the DropCheck events. */
static dx_status run_check(sched *s, const char *order_date, time_t scheduled_at,
                           const char *triggered_by, const char *client_id, const char *check_id,
                           cJSON *checks)
{
    checker_request req = {.triggered_by = triggered_by,
                           .check_id = check_id,
                           .claims = s->claims,
                           .scheduled_at = scheduled_at,
                           .run_date = 1};
    cJSON *published = cJSON_CreateArray();
    char err[512] = "";
    dx_status st;

    util_copy(req.order_date, sizeof(req.order_date), order_date);
    if (client_id != NULL)
        util_copy(req.client_id, sizeof(req.client_id), client_id);
    st = checker_run(s->w, &req, published, checks, err, sizeof(err));
    cJSON_Delete(published);
    if (st != DX_OK) {
        log_ctx lc = {NULL, NULL, client_id, order_date};

        metrics_add(DX_SCHEDULED_RUNS_FAILED_TOTAL, triggered_by, 1);
        log_printf(LOG_LEVEL_ERROR, &lc, "%s run failed, retried later: %s", triggered_by, err);
        return st;
    }
    metrics_add(DX_SCHEDULED_RUNS_TOTAL, triggered_by, 1);
    return DX_OK;
}

/* One run for an order date; DX_OK when every client was handled.  The
 * clients it found with a drop still being written are re-checked. */
static dx_status run_once(sched *s, const char *order_date, time_t scheduled_at,
                          const char *triggered_by)
{
    cJSON *checks = cJSON_CreateArray();
    char check_id[32];
    dx_status st;

    snprintf(check_id, sizeof(check_id), "%lld", (long long)scheduled_at);
    recheck_clear(s);
    st = run_check(s, order_date, scheduled_at, triggered_by, NULL, check_id, checks);
    recheck_plan_all(s, checks, order_date, scheduled_at, 0);
    cJSON_Delete(checks);
    if (st == DX_OK)
        record_advance(s, scheduled_at);
    return st;
}

/*
 * Runs the re-checks that are due, each as the same run (its claim key, so
 * that of replicas re-checking the same drop one publishes its OrderDate)
 * with a check id of its own, "<instant>.r<n>", the same in every replica.
 * A client still not stable is planned again; a failed re-check counts as
 * one made.
 */
static void recheck_due(sched *s)
{
    recheck *due = NULL;
    size_t ndue = 0, kept = 0;
    time_t now = time(NULL);

    for (size_t i = 0; i < s->nrechecks; i++)
        if (s->rechecks[i].due <= now)
            ndue++;
    if (ndue == 0 || (due = calloc(ndue, sizeof(*due))) == NULL)
        return;
    ndue = 0;
    for (size_t i = 0; i < s->nrechecks; i++) {
        if (s->rechecks[i].due <= now)
            due[ndue++] = s->rechecks[i];
        else
            s->rechecks[kept++] = s->rechecks[i];
    }
    s->nrechecks = kept;
    for (size_t i = 0; i < ndue && !atomic_load(&worker_stop); i++) {
        cJSON *checks = cJSON_CreateArray();
        char check_id[48];

        snprintf(check_id, sizeof(check_id), "%lld.r%d", (long long)due[i].scheduled_at,
                 due[i].done + 1);
        if (run_check(s, due[i].order_date, due[i].scheduled_at, "recheck", due[i].client_id,
                      check_id, checks) != DX_OK) {
            cJSON_Delete(checks);
            checks = cJSON_CreateArray();
            cJSON *again = cJSON_CreateObject();

            cJSON_AddStringToObject(again, "client_id", due[i].client_id);
            cJSON_AddStringToObject(again, "found", "not_stable");
            cJSON_AddItemToArray(checks, again);
        }
        recheck_plan_all(s, checks, due[i].order_date, due[i].scheduled_at, due[i].done + 1);
        cJSON_Delete(checks);
    }
    free(due);
}

/* Sleeps until `until` (wall clock) or worker_stop, making the re-checks
 * that fall due meanwhile. */
static void wait_rechecking(sched *s, time_t until)
{
    for (time_t now = time(NULL); !atomic_load(&worker_stop) && now < until; now = time(NULL)) {
        recheck_due(s);
        now = time(NULL);
        if (now < until)
            worker_sleep(until - now > 1 ? 1000 : 200);
    }
}

/* Runs every missed order date, oldest first; DX_OK when all succeeded. */
static dx_status catch_up(sched *s, time_t now)
{
    size_t max = (size_t)s->w->cfg.catchup_max_days, skipped = 0, count;
    scheduler_missed *missed = calloc(max > 0 ? max : 1, sizeof(*missed));
    time_t newest = s->last;
    dx_status st = DX_OK;

    if (missed == NULL)
        return DX_ERR_NOMEM;
    count = scheduler_missed_dates(s->schedule, s->last, now, missed, max, &skipped, &newest);
    if (skipped > 0) {
        char from[32];

        util_rfc3339(from, (int64_t)s->last * 1000);
        log_printf(LOG_LEVEL_WARN, NULL,
                   "catch-up: %zu missed order dates since %s are older than the newest %d "
                   "(CATCHUP_MAX_DAYS) and are not run",
                   skipped, from, s->w->cfg.catchup_max_days);
        metrics_add(DX_CATCHUP_SKIPPED_DATES_TOTAL, "", (double)skipped);
    }
    if (count > 0)
        log_printf(LOG_LEVEL_INFO, NULL, "catch-up: %zu missed order dates, %s to %s, oldest first",
                   count, missed[0].order_date, missed[count - 1].order_date);
    for (size_t i = 0; i < count && st == DX_OK && !atomic_load(&worker_stop); i++)
        st = run_once(s, missed[i].order_date, missed[i].scheduled_at, "catch-up");
    if (st == DX_OK && count == 0 && newest > s->last)
        record_advance(s, newest); /* everything missed was skipped */
    free(missed);
    return st;
}

void scheduler_run(worker *w, const cron_schedule *schedule)
{
    sched s = {.w = w, .schedule = schedule};
    int64_t retry_ms = RETRY_MIN_MS;
    char err[512];

    log_printf(LOG_LEVEL_INFO, NULL, "schedule: %s (in TZ), catch-up up to %d order dates",
               cron_describe(schedule), w->cfg.catchup_max_days);
    while (!atomic_load(&worker_stop) && sched_open(&s, err, sizeof(err)) != DX_OK) {
        log_printf(LOG_LEVEL_ERROR, NULL, "scheduler waits for its state: %s", err);
        worker_sleep(retry_ms);
        retry_ms = retry_ms * 2 < RETRY_MAX_MS ? retry_ms * 2 : RETRY_MAX_MS;
    }
    retry_ms = RETRY_MIN_MS;
    while (!atomic_load(&worker_stop)) {
        time_t now = time(NULL), next;
        char date[11], at[32];
        dx_status st;

        record_refresh(&s);
        st = catch_up(&s, now);
        if (st == DX_OK) {
            if (cron_next(schedule, now > s.last ? now : s.last, &next) != DX_OK) {
                log_printf(LOG_LEVEL_ERROR, NULL, "SCHEDULE never fires; idle");
                while (!atomic_load(&worker_stop))
                    worker_sleep(1000);
                break;
            }
            util_rfc3339(at, (int64_t)next * 1000);
            log_printf(LOG_LEVEL_INFO, NULL, "next scheduled run at %s", at);
            wait_rechecking(&s, next);
            if (atomic_load(&worker_stop))
                break;
            record_refresh(&s);
            if (s.last >= next)
                continue; /* another replica ran it, and we were late */
            util_local_date(next, date);
            st = run_once(&s, date, next, "schedule");
        }
        if (st != DX_OK && !atomic_load(&worker_stop)) {
            worker_sleep(retry_ms);
            retry_ms = retry_ms * 2 < RETRY_MAX_MS ? retry_ms * 2 : RETRY_MAX_MS;
        } else if (st == DX_OK) {
            retry_ms = RETRY_MIN_MS;
        }
    }
    recheck_clear(&s);
    claims_destroy(s.claims);
    kv_destroy(s.store);
}
