#pragma once

#include <stddef.h>

#include "status.h"
#include "storage.h"

/*
 * What counts as a drop: a regular file directly in <inbox>/<CLIENT>/ whose
 * name ends in ".csv" (any case) and is not marked as still being uploaded:
 * hidden names (".x", which is also how our own temporary files look),
 * "*.part", "*.tmp", "*.filepart" (WinSCP), "*.crdownload" and the like never
 * qualify.  Symbolic links never qualify (storage listings mark them OTHER).
 */

/* True when entry is a candidate drop by name and kind. */
int drops_is_candidate(const storage_entry *entry);

/*
 * Lists the candidate drops of client (a validated client id) in the inbox.
 * On success *entries is a new array of *count entries, sorted by name,
 * freed with storage_entries_free().  A missing client folder gives
 * DX_ERR_NOT_FOUND.
 */
dx_status drops_list(storage *inbox, const char *client_id, storage_entry **entries, size_t *count);

/* Writes the name without its ".csv" suffix into stem (size stem_len). */
void drops_stem(const char *name, char *stem, size_t stem_len);

/*
 * Completion markers (a client profile's done_marker): the drop "input.csv"
 * with the marker ".done" is complete once "input.csv.done" exists.
 * drops_marker_name() writes that name into out; -1 when it does not fit.
 */
int drops_marker_name(const char *name, const char *marker, char *out, size_t out_len);

/* 1 when client_id/<name><marker> exists in the inbox as a regular file. */
int drops_has_marker(storage *inbox, const char *client_id, const char *name, const char *marker);
