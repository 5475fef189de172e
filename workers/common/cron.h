#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "status.h"

/*
 * cron: when the daily-checker runs (SCHEDULE), in the process's local time
 * zone (TZ, e.g. Europe/Paris).
 *
 * Syntax.  A schedule is one or more expressions separated by ';', each
 * either five fields "minute hour day-of-month month day-of-week" or a
 * descriptor:
 *
 *   field          values        names
 *   minute         0-59
 *   hour           0-23
 *   day-of-month   1-31
 *   month          1-12          jan..dec
 *   day-of-week    0-7           sun..sat (0 and 7 are both Sunday)
 *
 * A field is a comma-separated list of items: '*', a value ("5", "mon") or
 * a range ("1-5", "mon-fri"), each optionally followed by a step: "10-50/10",
 * and '*' with "/15" for every 15 minutes; "5/15" means "5-59/15", as in
 * cronie.  Names and descriptors
 * are case-insensitive.  Descriptors: @yearly and @annually (0 0 1 1 *),
 * @monthly (0 0 1 * *), @weekly (0 0 * * 0), @daily and @midnight
 * (0 0 * * *), @hourly (0 * * * *).  Any run of blanks separates fields, and
 * blanks around ';' are ignored, as are empty expressions ("0 8 * * *;").
 *
 * Days follow Vixie cron: when both day-of-month and day-of-week are
 * restricted (neither field starts with '*'), a day matches when either
 * matches ("0 0 13 * fri" runs on every 13th and on every Friday); otherwise
 * both must match.
 *
 * Time.  An expression names wall-clock minutes; each one runs at the first
 * instant the local clock reads that minute or later.  So across daylight
 * saving changes:
 *  - a minute the clock skips (02:30 on the spring-forward day in Paris) runs
 *    once, at the end of the gap (03:00 local); several skipped minutes, and
 *    03:00 itself, all run as that single instant;
 *  - a minute the clock shows twice (02:30 on the fall-back day) runs once,
 *    at its first occurrence; the repeated hour runs nothing, so even an
 *    every-15-minutes expression pauses for one hour that night.
 *
 * The time zone is read by localtime_r(): a process that changes TZ calls
 * tzset() before the next cron_next().  Every function is thread-safe (no
 * global state; a schedule is read-only once parsed).
 */

/* Longest spec accepted, and most expressions in one spec (DX_ERR_TOO_LARGE beyond). */
#define CRON_SPEC_MAX  4096
#define CRON_EXPRS_MAX 64

/* How far ahead cron_next() looks before giving up: every leap day falls within it. */
#define CRON_HORIZON_DAYS (9 * 366)

typedef struct cron_schedule cron_schedule;

/*
 * Parses spec (see above).  On success *out is a new schedule that the caller
 * frees with cron_destroy().  On failure *out is untouched and err (when not
 * NULL and err_len > 0) holds a one-line reason naming the expression (when
 * there are several), the field and the offending text, e.g.
 *   expression 2: hour field "25": 25 is out of range 0-23
 * Returns DX_ERR_INVALID for a bad spec, DX_ERR_TOO_LARGE over CRON_SPEC_MAX
 * characters or CRON_EXPRS_MAX expressions, DX_ERR_NOMEM.
 */
dx_status cron_parse(const char *spec, cron_schedule **out, char *err, size_t err_len);

/* Frees the schedule.  Accepts NULL. */
void cron_destroy(cron_schedule *s);

/*
 * Sets *next to the first scheduled instant strictly after `after`, in the
 * local time zone.  Returns DX_ERR_NOT_FOUND when nothing is scheduled within
 * CRON_HORIZON_DAYS (an impossible spec such as "0 0 30 2 *"), DX_ERR_INVALID
 * for a NULL argument or an `after` outside the years 1 to 9999.  *next is
 * set only on success.
 */
dx_status cron_next(const cron_schedule *s, time_t after, time_t *next);

/*
 * Stores in out[] the scheduled instants in (from, to], oldest first, at most
 * max of them, and returns how many: what a scheduler that was down from
 * `from` to `to` missed.  out may be NULL to only count them (still at most
 * max).  Stops early, without error, where cron_next() would fail.
 */
size_t cron_between(const cron_schedule *s, time_t from, time_t to, time_t *out, size_t max);

/*
 * True when the wall-clock time in local (tm_min, tm_hour, tm_mday, tm_mon,
 * tm_wday as localtime_r() fills them) matches one of the expressions,
 * without any daylight-saving adjustment.  False for NULL or out-of-range fields.
 */
bool cron_matches(const cron_schedule *s, const struct tm *local);

/*
 * The schedule in canonical form, for logs and /status: blanks collapsed,
 * names and descriptors in lower case, expressions joined by "; ", e.g.
 * "0 8 * * mon-fri; @daily".  Parsing it gives the same schedule.  Owned by
 * s, valid until cron_destroy(); "" for NULL.
 */
const char *cron_describe(const cron_schedule *s);
