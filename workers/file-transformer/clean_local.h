#pragma once

#include <stddef.h>

#include "clean.h"

/*
 * The one-shot `file-transformer clean IN OUT REJECTS`: the engine over
 * local files, without the service's storage, bus or HTTP.  It lives apart
 * from transform.c so that the `clean` executable links libcsv and the
 * engine alone and starts in a few milliseconds (docs/development.md,
 * "Start-up").
 */

/*
 * Cleans the local file in_path into out_path and rejects_path (each
 * written to a temporary name and renamed into place), with the formula
 * guard when formula_guard is set, the duplicate set holding at most
 * memory_budget bytes (clean_io.memory_budget).  Prints nothing; fills
 * counts.  Returns DX_ERR_INVALID with reason for an unusable file.
 */
dx_status clean_local_file(const char *in_path, const char *out_path, const char *rejects_path,
                           int formula_guard, size_t memory_budget, clean_counts *counts,
                           char *reason, size_t reason_len);
