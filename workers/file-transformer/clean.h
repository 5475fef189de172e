#pragma once

#include <stddef.h>
#include <stdint.h>

#include "profile.h"
#include "status.h"

/*
 * The cleaning engine: streams one client drop (a CSV export in any of the
 * encodings, delimiters and layouts clients send) into a clean, canonical
 * UTF-8 CSV and a rejects CSV.  It never sees files or storage: bytes come in
 * through a read callback and go out through two write callbacks, so the same
 * code runs on local files, SFTP streams and fuzz inputs, with memory bounded
 * whatever the input size.
 */

/* Returns DX_OK and sets *got (0 at end of input), or an I/O status. */
typedef dx_status (*clean_read_fn)(void *ctx, void *buf, size_t cap, size_t *got);
/* Writes all len bytes or returns an I/O status. */
typedef dx_status (*clean_write_fn)(void *ctx, const void *buf, size_t len);

typedef struct clean_io {
    clean_read_fn read;
    void *read_ctx;
    clean_write_fn write_output; /* the clean CSV */
    void *output_ctx;
    clean_write_fn write_rejects; /* the rejects CSV */
    void *rejects_ctx;
} clean_io;

typedef struct clean_counts {
    uint64_t rows_in; /* data rows read (header and blank lines excluded) */
    uint64_t rows_out;
    uint64_t rows_rejected;
    uint64_t rows_duplicate;
    uint64_t bytes_in;
    uint64_t bytes_out;     /* bytes written to the clean CSV */
    uint64_t bytes_rejects; /* bytes written to the rejects CSV */
    /* What the engine found, for reports (dxctl validate). */
    char delimiter;          /* the detected delimiter, 0 before the input was read */
    int utf8_bom;            /* the input began with a UTF-8 byte order mark */
    uint64_t records_cp1252; /* records read as Windows-1252 (the others are UTF-8) */
    unsigned columns_found;  /* bit c set when canonical column c is in the header */
} clean_counts;

/*
 * Cleans the whole input.  Returns DX_OK when the file was processed (even
 * with rejected rows; rows_in == rows_out + rows_rejected + rows_duplicate),
 * DX_ERR_INVALID when the file as a whole is unusable (reason says why in one
 * line, e.g. "missing required column: unit_price (header found: ...)"), or the status a callback
 * returned.  counts is always filled with what was seen so far.  Output is
 * deterministic: the same input gives the same bytes.
 */
dx_status clean_run(const clean_io *io, clean_counts *counts, char *reason, size_t reason_len);

/*
 * clean_run() with a client's profile (borrowed for the call; NULL is the
 * defaults, which is clean_run()): its header aliases are tried before the
 * built-in vocabulary, after the same folding; its date order, decimal and
 * thousands separators and default currency apply to every row.  A profile
 * that changes nothing gives clean_run()'s bytes.
 */
dx_status clean_run_profile(const clean_io *io, const profile *p, clean_counts *counts,
                            char *reason, size_t reason_len);
