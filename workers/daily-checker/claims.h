#pragma once

#include <stdint.h>
#include <time.h>

#include "kv.h"
#include "log.h"
#include "status.h"

/*
 * claims: a scheduled (or caught-up) run is published once per client, even
 * by several daily-checker replicas, through one key per run in the
 * key-value bucket:
 *
 *   run.<order date>.<client>.<scheduled instant, Unix seconds>
 *   e.g. run.2026-11-24.US1.1795503600
 *
 * The run is the scheduled instant, not only the order date, so that a
 * schedule with two times on the same day ("0 8 * * *; 0 14 * * *", the later
 * one for late drops) still runs both.
 *
 * A claim has a state.  The replica that creates the key (kv_create: exactly
 * one of them succeeds) writes {"state": "claimed", "owner": ..., "at_ms": ...},
 * publishes, then rewrites it as {"state": "published", ...}.  A replica that
 * finds the key:
 *  - "published": skips the client (logged as claimed elsewhere);
 *  - "claimed" by itself (an earlier attempt of this process whose publish
 *    failed): takes it back and publishes;
 *  - "claimed" by another: waits for it to become "published"; when it stays
 *    "claimed" for CLAIMS_LEASE_MS (by the claim's own time or by what this
 *    replica has observed, whichever comes first), the owner is taken to
 *    have crashed between its claim and its publish, and the claim is taken
 *    over with a compare-and-swap on its revision (one taker wins).
 * The taker publishes with the same Nats-Msg-Id (order-date:<client>:<date>)
 * as the owner would have, so if the owner did publish and only failed to
 * mark the claim (or is merely slow), the stream's ten-minute duplicate
 * window drops the second copy: the lease is far shorter than that window.
 * A crash therefore delays a run by about the lease and never loses it (the
 * scheduler's last-run record has not advanced, so the restarted scheduler
 * catches that run up).  The one window left is a crash between the publish
 * and the marking (one key-value round trip) followed by a takeover more than
 * ten minutes later: the OrderDate is then sent twice, and the second finds
 * the drop already archived, which file-transformer logs as "no pending drop".
 */

#define CLAIMS_LEASE_MS 30000

typedef struct claims claims;

/* One claim held by this process, between claims_take() and claims_published(). */
typedef struct claim {
    char key[128];
    uint64_t revision;
    char event_id[64]; /* with DX_ERR_EXISTS: the OrderDate's id, "" when not recorded */
} claim;

/*
 * Creates the claims of this process on store (borrowed: it must outlive the
 * claims).  The owner name is "<hostname>:<pid>:<random>", unique per process.
 * On success *out is freed by the caller with claims_destroy().
 */
dx_status claims_create(claims **out, kv *store);

/* Accepts NULL. */
void claims_destroy(claims *c);

/* This process's owner name (borrowed). */
const char *claims_owner(const claims *c);

/*
 * Claims the run of client_id for order_date scheduled at scheduled_at.
 * DX_OK: the run is this process's to publish (*out is set).
 * DX_ERR_EXISTS: another replica published it; skip (out->event_id is
 * the id of the OrderDate it published, as its claim records it).
 * DX_ERR_IO (bucket unreachable) or DX_ERR_TIMEOUT (worker stopping while
 * waiting on another replica's claim): publish nothing, retry the run later.
 * Logs each decision with lc.
 */
dx_status claims_take(claims *c, const char *order_date, const char *client_id, time_t scheduled_at,
                      claim *out, const log_ctx *lc);

/*
 * Marks a claim taken with claims_take() as published (event_id is the
 * OrderDate's).  A failure is logged, not returned: the event is already in
 * the stream, and a replica taking the claim over later publishes the same
 * Nats-Msg-Id.
 */
void claims_published(claims *c, const claim *cl, const char *event_id, const log_ctx *lc);
