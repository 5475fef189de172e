#pragma once

#include <stddef.h>
#include <stdint.h>

#include "columns.h"
#include "status.h"

/*
 * profile: one client's settings, a JSON document kept in the `clients`
 * key-value bucket under the client id.  Every field is optional; a client
 * without a profile, or with an empty one ({}), gets exactly the behaviour
 * of a pipeline without profiles.  A document is parsed and validated as a
 * whole: it is either applied entirely or refused with the reason, never
 * half-applied.  Nothing here allocates.  docs/profiles.md lists the fields.
 */

#define PROFILE_ALIASES_MAX 64
#define PROFILE_HEADER_MAX  128 /* bytes of an alias's header, with its NUL */
#define PROFILE_MARKER_MAX  32
#define PROFILE_NOTIFY_MAX  128
#define PROFILE_TEXT_MAX    65536 /* longest document accepted */
#define PROFILE_OFFSET_MAX  31    /* |order_date_offset_days| */

typedef enum profile_date_order {
    PROFILE_DMY, /* 03/04/2026 is 3 April: the built-in rule */
    PROFILE_MDY, /* 03/04/2026 is 4 March */
    PROFILE_YMD, /* only year-first dates */
} profile_date_order;

/* Separator values besides the characters themselves. */
#define PROFILE_SEP_AUTO 0   /* decided per value, as without a profile */
#define PROFILE_SEP_NONE '-' /* thousands only: amounts have no grouping */

typedef struct profile_alias {
    char header[PROFILE_HEADER_MAX]; /* as written in the profile; the engine folds it */
    column_id column;
} profile_alias;

typedef struct profile {
    uint64_t revision; /* bucket revision it was read at; 0: no profile */
    size_t alias_count;
    profile_alias aliases[PROFILE_ALIASES_MAX];
    profile_date_order date_order;
    char decimal_separator;     /* PROFILE_SEP_AUTO, '.' or ',' */
    char thousands_separator;   /* PROFILE_SEP_AUTO, PROFILE_SEP_NONE, ',', '.', ' ' or '\'' */
    char default_currency[4];   /* ISO 4217 code for rows without one, or "" */
    int order_date_offset_days; /* added to the run date by daily-checker (-1: yesterday) */
    int enabled;                /* 0: daily-checker skips the client (paused) */
    char done_marker[PROFILE_MARKER_MAX]; /* ".done": input.csv is taken once input.csv.done exists
                                           */
    int expected_drop_minute;             /* minutes after midnight in TZ, -1 when unset */
    unsigned expected_drop_days;          /* bit 0 Monday .. bit 6 Sunday; 0 when unset */
    char notify[PROFILE_NOTIFY_MAX];      /* "mailto:ADDRESS" or "webhook:NAME", or "" */
} profile;

/* Sets p to the defaults: the behaviour without a profile. */
void profile_init(profile *p);

/*
 * Parses and validates the JSON document text[0..len) into *out (set only on
 * success).  DX_ERR_INVALID with a one-line reason naming the key and the
 * problem (unknown key, bad value, alias onto a column that does not exist).
 */
dx_status profile_parse(profile *out, const char *text, size_t len, char *reason,
                        size_t reason_len);

/* 1 when the profile changes nothing the cleaning engine does. */
int profile_engine_default(const profile *p);

/* The three-letter name of a date order ("DMY"). */
const char *profile_date_order_name(profile_date_order order);

/* The key names a document may hold, NULL-terminated (for help texts). */
extern const char *const profile_keys[];
