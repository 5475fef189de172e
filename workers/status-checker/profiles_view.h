#pragma once

#include <cjson/cJSON.h>

#include "days.h"
#include "worker.h"

/*
 * The clients' profiles on /status: for every client with a profile in the
 * `clients` bucket, its entry in doc's "clients" gets "profile_revision",
 * "paused" (enabled: false) and, for a document the workers refuse,
 * "profile_error" with the reason.  A client with a profile but no run yet
 * gets an entry too, so that a paused client is shown as such.  Nothing is
 * added when the bus is not connected or the bucket cannot be read.
 */
void profiles_view_annotate(cJSON *doc, worker *w);

/*
 * The day expectations of every valid profile in the `clients` bucket: *out
 * is a new array of *count the caller frees.  -1 (nothing set) when the bus
 * is not connected or the bucket cannot be opened: the caller keeps the
 * expectations it had.
 */
int profiles_view_expectations(worker *w, days_profile **out, size_t *count);

/* Releases the bucket handle; call after worker_finish(). */
void profiles_view_finish(void);
