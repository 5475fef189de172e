#pragma once

#include <cjson/cJSON.h>
#include <time.h>

#include "claims.h"
#include "event.h"
#include "worker.h"

/*
 * daily-checker's work: find the clients with a pending drop for one order
 * date and publish one OrderDate event for each.
 *
 * A drop is pending only when it is complete: it must be a candidate by name
 * (drops.h) and keep the same size and modification time across two
 * listings DROP_MIN_AGE seconds apart.  A drop still changing is logged as
 * drop_not_stable and left for the next run.  A client whose profile has a
 * done_marker is the exception: its drop is pending as soon as its marker
 * exists, and never before, without waiting DROP_MIN_AGE.  A client whose
 * profile says enabled: false is paused: skipped, and logged as such.
 *
 * Every check also publishes one DropCheck (orders.drop-check) per expected
 * client: each client folder of the inbox that matches CLIENT_PATTERN, and
 * each client with a profile, folder or not.  found is "paused", "none" (no
 * candidate drop), "not_stable" (candidates, none complete yet; source is
 * the first still changing) or "taken" (an OrderDate went out, published
 * before the DropCheck; order_date_event is its id, source the first
 * complete drop).  Its Nats-Msg-Id is drop-check:<client>:<order date>:<check
 * id>, the check id being the same for replicas running the same scheduled
 * check, so that the stream keeps one.  A DropCheck that cannot be published
 * is logged and counted (dx_events_failed_total) and the check goes on.
 */

typedef struct checker_request {
    char order_date[16];
    char client_id[EVENT_CLIENT_MAX]; /* "" for every client */
    char trace_id[EVENT_ID_MAX];      /* "" to start a new trace */
    const char *triggered_by;         /* "schedule", "manual", "http", "catch-up", "recheck" */
    /* Names the check in the DropCheck's Nats-Msg-Id: the scheduler's
     * "<scheduled instant>" (".r<n>" for its n-th re-check), the same in
     * every replica; NULL or "" for the trace id (a check of its own). */
    const char *check_id;
    /* The scheduler's runs claim each client's run before publishing it, so
     * that replicas publish it once (claims.h).  NULL for --once and HTTP. */
    claims *claims;
    time_t scheduled_at; /* the scheduled instant the run is for, with claims */
    /* order_date is the run date, not one asked for: each client's profile
     * offset (order_date_offset_days) applies.  An explicit --date is the
     * order date itself. */
    int run_date;
} checker_request;

/*
 * Runs one check.  Appends each published OrderDate (as JSON) to published,
 * and each DropCheck (as JSON, also one that could not be published) to
 * checks when it is not NULL.
 * Returns DX_ERR_INVALID for a refused client id (err says why), a transient
 * status when the inbox or NATS failed, DX_OK otherwise (also when no client
 * had a drop).
 */
dx_status checker_run(worker *w, const checker_request *req, cJSON *published, cJSON *checks,
                      char *err, size_t err_len);

/* Releases what checker_run() keeps between runs (the clients bucket
 * handle).  Call after worker_finish(), once no thread can handle an
 * event; nats.c keeps the connection alive for the handle. */
void checker_finish(void);
