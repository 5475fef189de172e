#pragma once

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

/*
 * days: the state of every expected client's day (issue 14), pure logic
 * without I/O.  It is fed the events (DropCheck, FileReady, FileFailed and
 * the ClientState announcements already on the stream) and the profiles,
 * and evaluated against a clock passed in, so that unit tests use a fake
 * one.  Local times are those of the process time zone (TZ).
 *
 * A day is one client and order date.  Its run date (the day the drop is
 * expected) is the order date minus the profile's order_date_offset_days,
 * as daily-checker chooses the order date from the run date; its expected
 * time is expected_drop_time on the run date, and it ends at the next local
 * midnight (so a daylight saving day has 23 or 25 hours).  Expected days:
 * the run dates today and yesterday whose weekday is in expected_drop_days
 * (every weekday when unset), for every client with a profile or with a
 * recorded day; any recorded day that saw a drop or a run.  Bounded: the
 * newest DAYS_KEEP order dates per client, DAYS_MAX_CLIENTS clients.
 * Thread-safe (one mutex).
 */

#define DAYS_KEEP          14
#define DAYS_MAX_CLIENTS   2000
#define DAYS_FAILURES_MAX  8
#define DAYS_ANNOUNCED_MAX 16

typedef enum days_state {
    DAYS_WAITING,
    DAYS_LATE,
    DAYS_NOT_STABLE,
    DAYS_REQUESTED,
    DAYS_OK,
    DAYS_FAILED,
    DAYS_RESOLVED,
    DAYS_MISSING,
    DAYS_PAUSED,
    DAYS_STATE_COUNT
} days_state;

/* What the day machine needs of a client's profile. */
typedef struct days_profile {
    char client_id[EVENT_CLIENT_MAX];
    int enabled;
    int expected_minute;    /* minutes after local midnight, -1: never late */
    unsigned expected_days; /* bit 0 Monday .. bit 6 Sunday, 0: every day */
    int order_date_offset_days;
} days_profile;

/* One evaluated day; times are Unix ms, -1 when unknown. */
typedef struct days_row {
    char client_id[EVENT_CLIENT_MAX];
    char order_date[16];
    days_state state;
    char reason[EVENT_PATH_MAX]; /* "" when none */
    int64_t since_ms;
    int64_t expected_ms;
    int64_t drop_seen_ms;
    int has_rows; /* a run: the rows are known */
    uint64_t rows_in, rows_out, rows_rejected;
    char trace_id[EVENT_ID_MAX];
    /* The event that caused a failed or resolved state ("" for late and
     * missing, which the clock causes). */
    char caused_by[EVENT_ID_MAX];
    int newest;        /* the client's newest expected day (the Today panel) */
    int announce;      /* late/missing/failed/resolved not yet announced */
    char previous[16]; /* the state at the last evaluation, "" when none */
} days_row;

typedef struct days_book days_book;

/* The name of a state ("not_stable"); NULL for an out-of-range value. */
const char *days_state_name(days_state s);

/* A new, empty machine owned by the caller (days_destroy), or NULL. */
days_book *days_create(void);

/* Accepts NULL. */
void days_destroy(days_book *d);

/* Replaces the profiles (p[0..n) is copied). */
void days_set_profiles(days_book *d, const days_profile *p, size_t n);

/*
 * Records an event seen at at_ms (the stream's time, so a replay gives the
 * same times); each returns 1 when it changed something, 0 when it was
 * already known or is out of the bounds (an order date older than the
 * client's DAYS_KEEP newest).
 */
int days_add_check(days_book *d, const event_drop_check *ev, int64_t at_ms);
int days_add_ready(days_book *d, const event_file_ready *ev, int64_t at_ms);
int days_add_failed(days_book *d, const event_file_failed *ev, int64_t at_ms);
int days_add_announced(days_book *d, const event_client_state *ev);

/*
 * Evaluates every expected day at now_ms: *rows is a new array of *count
 * rows the caller frees, failed and late first, then by client and newest
 * order date.  With remember, each state is kept for the next call's
 * "previous" (the announcing tick; a reader of /status passes 0).
 * Returns 0, or -1 when out of memory.
 */
int days_evaluate(days_book *d, int64_t now_ms, int remember, days_row **rows, size_t *count);

/* Unix ms of the client's newest FileReady, -1 when none. */
int64_t days_last_success_ms(days_book *d, const char *client_id);

/* The Nats-Msg-Id of a ClientState: client-state:<client>:<date>:<state>:<caused_by>. */
void days_msg_id(const days_row *r, char *out, size_t out_len);

/*
 * The instant (Unix s) the local clock of TZ first reads minute (0..1439)
 * of the civil day (days since 1970-01-01); a minute skipped by a daylight
 * saving change is the end of the gap.
 */
int64_t days_local_instant(int64_t civil_day, int minute);

/* The "days" array of /status from rows[0..count): a new cJSON array owned
 * by the caller (NULL only when out of memory). */
cJSON *days_rows_json(const days_row *rows, size_t count);

/*
 * The recorded days as one JSON text for the status snapshot: a new string
 * the caller frees, NULL when out of memory.
 */
char *days_encode(days_book *d);

/* Adds the days of a text made by days_encode() (text[0..len) borrowed);
 * -1 when it is not one. */
int days_decode(days_book *d, const char *text, size_t len);
