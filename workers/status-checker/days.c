#include "days.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

#define DAYS_TEXT_MAX 256 /* a failure's reason and source as kept (longer ones are cut) */

typedef struct day_failure {
    char event_id[EVENT_ID_MAX];
    char trace_id[EVENT_ID_MAX];
    char source[DAYS_TEXT_MAX];
    char reason[DAYS_TEXT_MAX];
    int64_t at_ms;
    int resolved;
} day_failure;

typedef struct day_announced {
    char state[16];
    char caused_by[EVENT_ID_MAX];
} day_announced;

/* What the events said about one client and order date. */
typedef struct day_rec {
    char order_date[16];
    int64_t civil;  /* the order date as days since 1970-01-01 */
    char check[16]; /* the newest DropCheck's found, "" when none */
    int64_t check_ms;
    char check_source[DAYS_TEXT_MAX];
    char order_date_event[EVENT_ID_MAX];
    int64_t not_stable_since_ms;
    int64_t drop_seen_ms;
    char trace_id[EVENT_ID_MAX];
    int has_ready;
    char ready_event[EVENT_ID_MAX];
    char ready_source[DAYS_TEXT_MAX];
    int64_t ready_ms;
    uint64_t rows_in, rows_out, rows_rejected;
    day_failure failures[DAYS_FAILURES_MAX];
    size_t failure_count;
    day_announced announced[DAYS_ANNOUNCED_MAX];
    size_t announced_count;
    char last_state[16]; /* at the last evaluation */
} day_rec;

/* A day record is about 7 KB: they are allocated one by one as dates are
 * seen, so that a client seen once costs one record, not DAYS_KEEP (100 KB
 * of zeroed pages per new client was a third of a burst's CPU time). */
typedef struct client_rec {
    char client_id[EVENT_CLIENT_MAX];
    day_rec *days[DAYS_KEEP]; /* unordered, the first day_count owned */
    size_t day_count;
    int64_t last_success_ms;
} client_rec;

struct days_book {
    pthread_mutex_t lock;
    client_rec **clients;
    size_t client_count, client_cap;
    days_profile *profiles;
    size_t profile_count;
};

static const char *const state_names[DAYS_STATE_COUNT] = {
    "waiting", "late", "not_stable", "requested", "ok", "failed", "resolved", "missing", "paused",
};

/* The Today order: what needs the operator first. */
static const int state_rank[DAYS_STATE_COUNT] = {
    [DAYS_FAILED] = 0,     [DAYS_LATE] = 1,      [DAYS_MISSING] = 2,
    [DAYS_NOT_STABLE] = 3, [DAYS_REQUESTED] = 4, [DAYS_WAITING] = 5,
    [DAYS_PAUSED] = 6,     [DAYS_RESOLVED] = 7,  [DAYS_OK] = 8,
};

const char *days_state_name(days_state s)
{
    return s >= 0 && s < DAYS_STATE_COUNT ? state_names[s] : NULL;
}

days_book *days_create(void)
{
    days_book *d = calloc(1, sizeof(*d));

    if (d != NULL)
        pthread_mutex_init(&d->lock, NULL);
    return d;
}

void days_destroy(days_book *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->client_count; i++) {
        for (size_t j = 0; j < d->clients[i]->day_count; j++)
            free(d->clients[i]->days[j]);
        free(d->clients[i]);
    }
    free(d->clients);
    free(d->profiles);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

void days_set_profiles(days_book *d, const days_profile *p, size_t n)
{
    days_profile *copy = n > 0 ? malloc(n * sizeof(*copy)) : NULL;

    if (n > 0 && copy == NULL)
        return; /* the previous profiles stay: better than none */
    if (n > 0)
        memcpy(copy, p, n * sizeof(*copy));
    pthread_mutex_lock(&d->lock);
    free(d->profiles);
    d->profiles = copy;
    d->profile_count = n;
    pthread_mutex_unlock(&d->lock);
}

/* Under d->lock.  NULL when absent and create is 0, or when full. */
static client_rec *find_client(days_book *d, const char *client_id, int create)
{
    client_rec *c;

    for (size_t i = 0; i < d->client_count; i++) {
        if (strcmp(d->clients[i]->client_id, client_id) == 0)
            return d->clients[i];
    }
    if (!create || d->client_count == DAYS_MAX_CLIENTS)
        return NULL;
    if (d->client_count == d->client_cap) {
        size_t cap = d->client_cap ? d->client_cap * 2 : 16;
        client_rec **grown = realloc(d->clients, cap * sizeof(*grown));

        if (grown == NULL)
            return NULL;
        d->clients = grown;
        d->client_cap = cap;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    util_copy(c->client_id, sizeof(c->client_id), client_id);
    c->last_success_ms = -1;
    d->clients[d->client_count++] = c;
    return c;
}

/*
 * The record of client_id and order_date (under d->lock), created when
 * missing; a full client gives up its oldest date for a newer one.  NULL for
 * an invalid date, a date older than every kept one, or no memory.
 */
static day_rec *find_day(days_book *d, const char *client_id, const char *order_date)
{
    client_rec *c;
    int64_t civil;
    size_t oldest = 0;
    day_rec *r;

    if (!util_date_to_days(order_date, &civil) || (c = find_client(d, client_id, 1)) == NULL)
        return NULL;
    for (size_t i = 0; i < c->day_count; i++) {
        if (c->days[i]->civil == civil)
            return c->days[i];
        if (c->days[i]->civil < c->days[oldest]->civil)
            oldest = i;
    }
    if (c->day_count < DAYS_KEEP) {
        if ((r = malloc(sizeof(*r))) == NULL)
            return NULL;
        c->days[c->day_count++] = r;
    } else {
        if (civil < c->days[oldest]->civil)
            return NULL;
        r = c->days[oldest];
    }
    memset(r, 0, sizeof(*r));
    util_copy(r->order_date, sizeof(r->order_date), order_date);
    r->civil = civil;
    r->check_ms = r->not_stable_since_ms = r->drop_seen_ms = r->ready_ms = -1;
    return r;
}

int days_add_check(days_book *d, const event_drop_check *ev, int64_t at_ms)
{
    day_rec *r;
    int changed = 0;

    pthread_mutex_lock(&d->lock);
    r = find_day(d, ev->client_id, ev->order_date);
    if (r != NULL && at_ms >= r->check_ms) {
        int not_stable = strcmp(ev->found, "not_stable") == 0;

        if (not_stable && strcmp(r->check, "not_stable") != 0)
            r->not_stable_since_ms = at_ms;
        if ((not_stable || strcmp(ev->found, "taken") == 0) && r->drop_seen_ms < 0)
            r->drop_seen_ms = at_ms;
        if (strcmp(ev->found, "taken") == 0)
            util_copy(r->order_date_event, sizeof(r->order_date_event), ev->order_date_event);
        util_copy(r->check, sizeof(r->check), ev->found);
        util_copy(r->check_source, sizeof(r->check_source), ev->source);
        if (r->trace_id[0] == '\0')
            util_copy(r->trace_id, sizeof(r->trace_id), ev->trace_id);
        r->check_ms = at_ms;
        changed = 1;
    }
    pthread_mutex_unlock(&d->lock);
    return changed;
}

int days_add_ready(days_book *d, const event_file_ready *ev, int64_t at_ms)
{
    day_rec *r;
    client_rec *c;
    int changed = 0;

    pthread_mutex_lock(&d->lock);
    r = find_day(d, ev->client_id, ev->order_date);
    if (r != NULL && strcmp(r->ready_event, ev->event_id) != 0 && at_ms >= r->ready_ms) {
        r->has_ready = 1;
        util_copy(r->ready_event, sizeof(r->ready_event), ev->event_id);
        util_copy(r->ready_source, sizeof(r->ready_source), ev->source);
        util_copy(r->trace_id, sizeof(r->trace_id), ev->trace_id);
        r->ready_ms = at_ms;
        r->rows_in = ev->rows_in;
        r->rows_out = ev->rows_out;
        r->rows_rejected = ev->rows_rejected;
        if (r->drop_seen_ms < 0)
            r->drop_seen_ms = at_ms;
        /* A success resolves the earlier failures of the same drop. */
        for (size_t i = 0; i < r->failure_count; i++) {
            day_failure *f = &r->failures[i];

            if (f->at_ms <= at_ms && strncmp(f->source, ev->source, sizeof(f->source) - 1) == 0)
                f->resolved = 1;
        }
        c = find_client(d, ev->client_id, 0);
        if (c != NULL && at_ms > c->last_success_ms)
            c->last_success_ms = at_ms;
        changed = 1;
    }
    pthread_mutex_unlock(&d->lock);
    return changed;
}

int days_add_failed(days_book *d, const event_file_failed *ev, int64_t at_ms)
{
    day_rec *r;
    int changed = 0;

    pthread_mutex_lock(&d->lock);
    r = find_day(d, ev->client_id, ev->order_date);
    for (size_t i = 0; r != NULL && i < r->failure_count; i++) {
        if (strcmp(r->failures[i].event_id, ev->event_id) == 0)
            r = NULL; /* already known */
    }
    if (r != NULL) {
        day_failure *f;

        if (r->failure_count == DAYS_FAILURES_MAX) {
            memmove(r->failures, r->failures + 1, (DAYS_FAILURES_MAX - 1) * sizeof(*f));
            r->failure_count--;
        }
        f = &r->failures[r->failure_count++];
        memset(f, 0, sizeof(*f));
        util_copy(f->event_id, sizeof(f->event_id), ev->event_id);
        util_copy(f->trace_id, sizeof(f->trace_id), ev->trace_id);
        util_copy(f->source, sizeof(f->source), ev->source);
        util_copy(f->reason, sizeof(f->reason), ev->reason);
        f->at_ms = at_ms;
        /* A success stored after it (a redelivery seen late) resolves it. */
        f->resolved = r->has_ready && r->ready_ms >= at_ms &&
                      strncmp(r->ready_source, ev->source, sizeof(f->source) - 1) == 0;
        if (r->drop_seen_ms < 0)
            r->drop_seen_ms = at_ms;
        if (r->trace_id[0] == '\0')
            util_copy(r->trace_id, sizeof(r->trace_id), ev->trace_id);
        changed = 1;
    }
    pthread_mutex_unlock(&d->lock);
    return changed;
}

static int was_announced(const day_rec *r, const char *state, const char *caused_by)
{
    for (size_t i = 0; i < r->announced_count; i++) {
        if (strcmp(r->announced[i].state, state) == 0 &&
            strcmp(r->announced[i].caused_by, caused_by) == 0)
            return 1;
    }
    return 0;
}

int days_add_announced(days_book *d, const event_client_state *ev)
{
    day_rec *r;
    int changed = 0;

    pthread_mutex_lock(&d->lock);
    r = find_day(d, ev->client_id, ev->order_date);
    if (r != NULL && !was_announced(r, ev->state, ev->caused_by)) {
        /* The oldest announcement makes room: it concerns a state long gone. */
        if (r->announced_count == DAYS_ANNOUNCED_MAX) {
            memmove(r->announced, r->announced + 1,
                    (DAYS_ANNOUNCED_MAX - 1) * sizeof(r->announced[0]));
            r->announced_count--;
        }
        util_copy(r->announced[r->announced_count].state, 16, ev->state);
        util_copy(r->announced[r->announced_count].caused_by, EVENT_ID_MAX, ev->caused_by);
        r->announced_count++;
        if (r->last_state[0] == '\0')
            util_copy(r->last_state, sizeof(r->last_state), ev->state);
        changed = 1;
    }
    pthread_mutex_unlock(&d->lock);
    return changed;
}

int64_t days_last_success_ms(days_book *d, const char *client_id)
{
    int64_t ms = -1;
    client_rec *c;

    pthread_mutex_lock(&d->lock);
    c = find_client(d, client_id, 0);
    if (c != NULL)
        ms = c->last_success_ms;
    pthread_mutex_unlock(&d->lock);
    return ms;
}

void days_msg_id(const days_row *r, char *out, size_t out_len)
{
    snprintf(out, out_len, "client-state:%s:%s:%s:%s", r->client_id, r->order_date,
             days_state_name(r->state), r->caused_by);
}

/* ---------- the local calendar ---------- */

static long gmtoff_at(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (localtime_r(&tt, &tm) == NULL)
        return 0;
    return tm.tm_gmtoff;
}

int64_t days_local_instant(int64_t civil_day, int minute)
{
    int64_t wall = civil_day * 86400 + (int64_t)minute * 60;
    /* The offsets a day around it has: one, or two across a change. */
    long before = gmtoff_at(wall - 86400), after = gmtoff_at(wall + 86400);
    long lo_off = before < after ? before : after, hi_off = before < after ? after : before;
    int64_t lo, hi;

    /* The smaller instant first: on a repeated hour, its first occurrence. */
    if (wall - hi_off + gmtoff_at(wall - hi_off) == wall)
        return wall - hi_off;
    if (wall - lo_off + gmtoff_at(wall - lo_off) == wall)
        return wall - lo_off;
    /* Skipped by the clock: the first instant reading later than it. */
    lo = wall - hi_off;
    hi = wall - lo_off;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;

        if (mid + gmtoff_at(mid) >= wall)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* The local civil day of a Unix time. */
static int64_t local_civil(int64_t t)
{
    int64_t wall = t + gmtoff_at(t);

    return wall >= 0 ? wall / 86400 : (wall - 86399) / 86400;
}

/* "07:30" of a Unix time, in TZ. */
static void local_hhmm(int64_t t, char out[8])
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (localtime_r(&tt, &tm) == NULL || strftime(out, 8, "%H:%M", &tm) == 0)
        util_copy(out, 8, "?");
}

/* ---------- evaluation ---------- */

static const days_profile *find_profile(const days_book *d, const char *client_id)
{
    for (size_t i = 0; i < d->profile_count; i++) {
        if (strcmp(d->profiles[i].client_id, client_id) == 0)
            return &d->profiles[i];
    }
    return NULL;
}

static const day_failure *open_failure(const day_rec *r)
{
    const day_failure *newest = NULL;

    for (size_t i = 0; r != NULL && i < r->failure_count; i++) {
        if (!r->failures[i].resolved)
            newest = &r->failures[i];
    }
    return newest;
}

static void set_state(days_row *row, days_state s, int64_t since_ms, const char *reason)
{
    row->state = s;
    row->since_ms = since_ms;
    util_copy(row->reason, sizeof(row->reason), reason);
}

/* The state once an outcome (a run or a failure) exists; 0 when none. */
static int eval_outcome(const day_rec *r, days_row *row)
{
    const day_failure *f = open_failure(r);
    char reason[EVENT_PATH_MAX];

    if (f != NULL) {
        set_state(row, DAYS_FAILED, f->at_ms, f->reason);
        util_copy(row->caused_by, sizeof(row->caused_by), f->event_id);
        util_copy(row->trace_id, sizeof(row->trace_id), f->trace_id);
        return 1;
    }
    if (r == NULL || !r->has_ready)
        return 0;
    if (r->failure_count > 0) {
        snprintf(reason, sizeof(reason), "resolved: %s", r->failures[r->failure_count - 1].reason);
        set_state(row, DAYS_RESOLVED, r->ready_ms, reason);
        util_copy(row->caused_by, sizeof(row->caused_by), r->ready_event);
    } else {
        set_state(row, DAYS_OK, r->ready_ms, "");
    }
    return 1;
}

/* The state of a day without an outcome, from the checks and the clock. */
static void eval_waiting(const days_profile *p, const day_rec *r, days_row *row, int64_t now_ms,
                         int64_t start_ms, int64_t end_ms)
{
    char reason[EVENT_PATH_MAX], hhmm[8] = "";
    const char *check = r != NULL ? r->check : "";

    if (row->expected_ms >= 0)
        local_hhmm(row->expected_ms / 1000, hhmm);
    if ((p != NULL && !p->enabled) || strcmp(check, "paused") == 0) {
        set_state(row, DAYS_PAUSED, r != NULL && r->check_ms >= 0 ? r->check_ms : start_ms,
                  "the profile is paused (enabled: false)");
    } else if (strcmp(check, "taken") == 0) {
        snprintf(reason, sizeof(reason), "order date event %s is out, no outcome yet",
                 r->order_date_event);
        set_state(row, DAYS_REQUESTED, r->check_ms, reason);
    } else if (now_ms >= end_ms) {
        if (strcmp(check, "not_stable") == 0)
            snprintf(reason, sizeof(reason), "the day ended with %s still changing",
                     r->check_source);
        else
            snprintf(reason, sizeof(reason), "the day ended without a drop");
        set_state(row, DAYS_MISSING, end_ms, reason);
    } else if (strcmp(check, "not_stable") == 0) {
        snprintf(reason, sizeof(reason), "%s is still changing", r->check_source);
        set_state(row, DAYS_NOT_STABLE, r->not_stable_since_ms, reason);
    } else if (row->expected_ms >= 0 && now_ms >= row->expected_ms) {
        snprintf(reason, sizeof(reason), "no drop by %s", hhmm);
        set_state(row, DAYS_LATE, row->expected_ms, reason);
    } else if (row->expected_ms >= 0) {
        snprintf(reason, sizeof(reason), "expected by %s", hhmm);
        set_state(row, DAYS_WAITING, start_ms, reason);
    } else {
        set_state(row, DAYS_WAITING, start_ms, "no expected_drop_time: never late");
    }
}

static int announced_state(days_state s)
{
    return s == DAYS_LATE || s == DAYS_MISSING || s == DAYS_FAILED || s == DAYS_RESOLVED;
}

/*
 * Evaluates one client's order date (r may be NULL: an expected day without
 * events).  Returns 0 when the day has no row (not expected, no drop).
 */
static int eval_day(const days_profile *p, const char *client_id, day_rec *r, int64_t civil,
                    int64_t now_ms, int remember, days_row *row)
{
    int offset = p != NULL ? p->order_date_offset_days : 0;
    int64_t run_day = civil - offset;
    int weekday = (int)(((run_day + 3) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
    unsigned mask = p != NULL ? p->expected_days : 0;
    int expected = mask == 0 || (mask & (1u << weekday)) != 0;
    int dropped = r != NULL && (r->drop_seen_ms >= 0 || r->has_ready || r->failure_count > 0);
    int64_t start_ms = days_local_instant(run_day, 0) * 1000;
    int64_t end_ms = days_local_instant(run_day + 1, 0) * 1000;
    int64_t today = local_civil(now_ms / 1000);

    if (!dropped && (!expected || now_ms < start_ms))
        return 0;
    memset(row, 0, sizeof(*row));
    util_copy(row->client_id, sizeof(row->client_id), client_id);
    util_date_from_days(civil, row->order_date);
    row->expected_ms = p != NULL && p->expected_minute >= 0
                           ? days_local_instant(run_day, p->expected_minute) * 1000
                           : -1;
    row->drop_seen_ms = r != NULL ? r->drop_seen_ms : -1;
    if (r != NULL) {
        util_copy(row->trace_id, sizeof(row->trace_id), r->trace_id);
        row->has_rows = r->has_ready;
        row->rows_in = r->rows_in;
        row->rows_out = r->rows_out;
        row->rows_rejected = r->rows_rejected;
        util_copy(row->previous, sizeof(row->previous), r->last_state);
    }
    if (!eval_outcome(r, row))
        eval_waiting(p, r, row, now_ms, start_ms, end_ms);
    /* Only the days of today's and yesterday's runs are announced: a replay
     * of old failures must not page anyone. */
    row->announce = announced_state(row->state) && run_day >= today - 1 &&
                    (r == NULL || !was_announced(r, state_names[row->state], row->caused_by));
    if (r != NULL && remember)
        util_copy(r->last_state, sizeof(r->last_state), state_names[row->state]);
    return 1;
}

/* The order dates to evaluate for a client: its recorded ones and today's
 * and yesterday's runs.  Returns how many (at most DAYS_KEEP + 2). */
static size_t client_dates(const client_rec *c, const days_profile *p, int64_t now_ms,
                           int64_t out[DAYS_KEEP + 2])
{
    int offset = p != NULL ? p->order_date_offset_days : 0;
    int64_t today = local_civil(now_ms / 1000);
    size_t n = 0;

    for (size_t i = 0; c != NULL && i < c->day_count; i++)
        out[n++] = c->days[i]->civil;
    for (int64_t run = today - 1; run <= today; run++) {
        int known = 0;

        for (size_t i = 0; i < n; i++)
            known |= out[i] == run + offset;
        if (!known)
            out[n++] = run + offset;
    }
    return n;
}

static day_rec *rec_of(client_rec *c, int64_t civil)
{
    for (size_t i = 0; c != NULL && i < c->day_count; i++) {
        if (c->days[i]->civil == civil)
            return c->days[i];
    }
    return NULL;
}

/* Appends client_id's rows to *rows (under d->lock); -1 when out of memory. */
static int eval_client(days_book *d, const char *client_id, int64_t now_ms, int remember,
                       days_row **rows, size_t *count, size_t *cap)
{
    client_rec *c = find_client(d, client_id, 0);
    const days_profile *p = find_profile(d, client_id);
    int64_t dates[DAYS_KEEP + 2];
    size_t n = client_dates(c, p, now_ms, dates), first = *count, newest = (size_t)-1;

    for (size_t i = 0; i < n; i++) {
        if (*count == *cap) {
            size_t grown_cap = *cap ? *cap * 2 : 64;
            days_row *grown = realloc(*rows, grown_cap * sizeof(*grown));

            if (grown == NULL)
                return -1;
            *rows = grown;
            *cap = grown_cap;
        }
        if (eval_day(p, client_id, rec_of(c, dates[i]), dates[i], now_ms, remember,
                     &(*rows)[*count]))
            (*count)++;
    }
    for (size_t i = first; i < *count; i++) {
        if (newest == (size_t)-1 || strcmp((*rows)[i].order_date, (*rows)[newest].order_date) > 0)
            newest = i;
    }
    if (newest != (size_t)-1)
        (*rows)[newest].newest = 1;
    return 0;
}

static int cmp_rows(const void *a, const void *b)
{
    const days_row *x = a, *y = b;
    int c = state_rank[x->state] - state_rank[y->state];

    if (c == 0)
        c = strcmp(x->client_id, y->client_id);
    if (c == 0)
        c = strcmp(y->order_date, x->order_date);
    return c;
}

int days_evaluate(days_book *d, int64_t now_ms, int remember, days_row **rows, size_t *count)
{
    size_t cap = 0;
    int ret = 0;

    *rows = NULL;
    *count = 0;
    pthread_mutex_lock(&d->lock);
    for (size_t i = 0; ret == 0 && i < d->profile_count; i++)
        ret = eval_client(d, d->profiles[i].client_id, now_ms, remember, rows, count, &cap);
    for (size_t i = 0; ret == 0 && i < d->client_count; i++) {
        if (find_profile(d, d->clients[i]->client_id) == NULL)
            ret = eval_client(d, d->clients[i]->client_id, now_ms, remember, rows, count, &cap);
    }
    pthread_mutex_unlock(&d->lock);
    if (ret != 0) {
        free(*rows);
        *rows = NULL;
        *count = 0;
        return -1;
    }
    if (*count > 1)
        qsort(*rows, *count, sizeof(**rows), cmp_rows);
    return 0;
}

/* ---------- JSON: /status and the snapshot ---------- */

static void add_time(cJSON *o, const char *key, int64_t ms)
{
    char at[32];

    if (ms < 0) {
        cJSON_AddNullToObject(o, key);
        return;
    }
    util_rfc3339(at, ms);
    cJSON_AddStringToObject(o, key, at);
}

static void add_text_or_null(cJSON *o, const char *key, const char *text)
{
    if (text[0] == '\0')
        cJSON_AddNullToObject(o, key);
    else
        cJSON_AddStringToObject(o, key, text);
}

cJSON *days_rows_json(const days_row *rows, size_t count)
{
    cJSON *array = cJSON_CreateArray();

    for (size_t i = 0; array != NULL && i < count; i++) {
        const days_row *r = &rows[i];
        cJSON *o = cJSON_CreateObject();

        cJSON_AddStringToObject(o, "client_id", r->client_id);
        cJSON_AddStringToObject(o, "order_date", r->order_date);
        cJSON_AddStringToObject(o, "state", state_names[r->state]);
        add_text_or_null(o, "reason", r->reason);
        add_time(o, "since", r->since_ms);
        add_time(o, "expected_at", r->expected_ms);
        add_time(o, "drop_seen_at", r->drop_seen_ms);
        if (r->has_rows) {
            cJSON_AddNumberToObject(o, "rows_in", (double)r->rows_in);
            cJSON_AddNumberToObject(o, "rows_out", (double)r->rows_out);
            cJSON_AddNumberToObject(o, "rows_rejected", (double)r->rows_rejected);
        } else {
            cJSON_AddNullToObject(o, "rows_in");
            cJSON_AddNullToObject(o, "rows_out");
            cJSON_AddNullToObject(o, "rows_rejected");
        }
        add_text_or_null(o, "trace_id", r->trace_id);
        add_text_or_null(o, "caused_by", r->caused_by);
        cJSON_AddBoolToObject(o, "newest", r->newest);
        cJSON_AddItemToArray(array, o);
    }
    return array;
}

/* The snapshot keeps each record's fields by name: numbers as strings (a
 * double cannot hold every uint64), texts as they are. */
#define DAY_TEXTS(X)                                                                               \
    X(order_date)                                                                                  \
    X(check) X(check_source) X(order_date_event) X(trace_id) X(ready_event) X(ready_source)
#define DAY_NUMBERS(X)                                                                             \
    X(check_ms)                                                                                    \
    X(not_stable_since_ms)                                                                         \
    X(drop_seen_ms) X(has_ready) X(ready_ms) X(rows_in) X(rows_out) X(rows_rejected)

static void put_number(cJSON *o, const char *key, long long v)
{
    char text[32];

    snprintf(text, sizeof(text), "%lld", v);
    cJSON_AddStringToObject(o, key, text);
}

static cJSON *day_json(const day_rec *r)
{
    cJSON *o = cJSON_CreateObject(), *list;

#define PUT_TEXT_(f)   cJSON_AddStringToObject(o, #f, r->f);
#define PUT_NUMBER_(f) put_number(o, #f, (long long)r->f);
    DAY_TEXTS(PUT_TEXT_)
    DAY_NUMBERS(PUT_NUMBER_)
#undef PUT_TEXT_
#undef PUT_NUMBER_
    list = cJSON_AddArrayToObject(o, "failures");
    for (size_t i = 0; i < r->failure_count; i++) {
        const day_failure *f = &r->failures[i];
        cJSON *fo = cJSON_CreateObject();

        cJSON_AddStringToObject(fo, "event_id", f->event_id);
        cJSON_AddStringToObject(fo, "trace_id", f->trace_id);
        cJSON_AddStringToObject(fo, "source", f->source);
        cJSON_AddStringToObject(fo, "reason", f->reason);
        put_number(fo, "at_ms", f->at_ms);
        put_number(fo, "resolved", f->resolved);
        cJSON_AddItemToArray(list, fo);
    }
    list = cJSON_AddArrayToObject(o, "announced");
    for (size_t i = 0; i < r->announced_count; i++) {
        cJSON *ao = cJSON_CreateObject();

        cJSON_AddStringToObject(ao, "state", r->announced[i].state);
        cJSON_AddStringToObject(ao, "caused_by", r->announced[i].caused_by);
        cJSON_AddItemToArray(list, ao);
    }
    return o;
}

char *days_encode(days_book *d)
{
    cJSON *root = cJSON_CreateObject();
    char *text;

    pthread_mutex_lock(&d->lock);
    for (size_t i = 0; root != NULL && i < d->client_count; i++) {
        const client_rec *c = d->clients[i];
        cJSON *co = cJSON_AddObjectToObject(root, c->client_id), *list;

        put_number(co, "last_success_ms", c->last_success_ms);
        list = cJSON_AddArrayToObject(co, "days");
        for (size_t j = 0; j < c->day_count; j++)
            cJSON_AddItemToArray(list, day_json(c->days[j]));
    }
    pthread_mutex_unlock(&d->lock);
    text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

static const char *get_text(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    return cJSON_IsString(v) ? v->valuestring : "";
}

static long long get_number(const cJSON *o, const char *key)
{
    return strtoll(get_text(o, key), NULL, 10);
}

/* Under d->lock. */
static void decode_day(days_book *d, const char *client_id, const cJSON *o)
{
    day_rec *r = find_day(d, client_id, get_text(o, "order_date"));
    const cJSON *item;

    if (r == NULL)
        return;
#define GET_TEXT_(f)   util_copy(r->f, sizeof(r->f), get_text(o, #f));
#define GET_NUMBER_(f) r->f = (__typeof__(r->f))get_number(o, #f);
    DAY_TEXTS(GET_TEXT_)
    DAY_NUMBERS(GET_NUMBER_)
#undef GET_TEXT_
#undef GET_NUMBER_
    r->failure_count = 0;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(o, "failures"))
    {
        day_failure *f = &r->failures[r->failure_count];

        if (r->failure_count == DAYS_FAILURES_MAX)
            break;
        util_copy(f->event_id, sizeof(f->event_id), get_text(item, "event_id"));
        util_copy(f->trace_id, sizeof(f->trace_id), get_text(item, "trace_id"));
        util_copy(f->source, sizeof(f->source), get_text(item, "source"));
        util_copy(f->reason, sizeof(f->reason), get_text(item, "reason"));
        f->at_ms = get_number(item, "at_ms");
        f->resolved = (int)get_number(item, "resolved");
        r->failure_count++;
    }
    r->announced_count = 0;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(o, "announced"))
    {
        if (r->announced_count == DAYS_ANNOUNCED_MAX)
            break;
        util_copy(r->announced[r->announced_count].state, 16, get_text(item, "state"));
        util_copy(r->announced[r->announced_count].caused_by, EVENT_ID_MAX,
                  get_text(item, "caused_by"));
        r->announced_count++;
    }
}

int days_decode(days_book *d, const char *text, size_t len)
{
    cJSON *root = cJSON_ParseWithLength(text, len);
    const cJSON *client, *day;

    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return -1;
    }
    pthread_mutex_lock(&d->lock);
    cJSON_ArrayForEach(client, root)
    {
        client_rec *c = find_client(d, client->string, 1);

        if (c == NULL)
            continue;
        c->last_success_ms = get_number(client, "last_success_ms");
        cJSON_ArrayForEach(day, cJSON_GetObjectItemCaseSensitive(client, "days"))
            decode_day(d, client->string, day);
    }
    pthread_mutex_unlock(&d->lock);
    cJSON_Delete(root);
    return 0;
}
