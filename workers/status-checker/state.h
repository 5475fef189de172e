#pragma once

#include <cjson/cJSON.h>
#include <stdint.h>

#include "event.h"
#include "storage.h"
#include "worker.h"

/*
 * The status of every client and date, as a projection of the file-ready and
 * file-failed events: the same event applied twice counts once (a file-ready
 * is identified by client, date, source and sha256; a file-failed by its
 * event_id), so redeliveries and the replay at start-up are harmless.
 * Bounded: the newest STATE_MAX_RUNS runs and STATE_MAX_FAILURES failures.
 */

#define STATE_MAX_RUNS     5000
#define STATE_MAX_FAILURES 1000

typedef struct state state;

/* Returns a new, empty state owned by the caller (state_destroy), or NULL. */
state *state_create(void);

/* Accepts NULL. */
void state_destroy(state *st);

/* Records a run; returns 1 when it is new, 0 when it was already known. */
int state_add_ready(state *st, const event_file_ready *ev, int64_t at_ms);

/* Records a failure; returns 1 when it is new, 0 when already known. */
int state_add_failed(state *st, const event_file_failed *ev, int64_t at_ms);

/*
 * Builds the status document (the JSON of GET /status, see README) from the
 * recorded events and a listing of the depot.  Returns a new cJSON object
 * owned by the caller (NULL only when out of memory).  When the depot cannot
 * be listed the document is still built, with "files_in_depot": null and a
 * "depot_error"; *files_in_depot is then -1 and err says why.
 */
cJSON *state_to_json(state *st, worker *w, int *files_in_depot, char *err, size_t err_len);

/*
 * Re-lists client_id's folder of the depot (only that one) and sets *total
 * to the number of files in the depot as last counted: the other clients'
 * counts come from their last listing (GET /status lists them all).
 */
dx_status state_recount_client(state *st, worker *w, const char *client_id, int *total, char *err,
                               size_t err_len);

/*
 * The entry of client_id in a status document's "clients" object, created
 * empty (no file, no date) when missing; borrowed from clients.
 */
cJSON *state_client_entry(cJSON *clients, const char *client_id);
