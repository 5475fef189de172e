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

/* The memory budget of one cleaning when clean_io gives none (24 MiB, the
 * default of CLEAN_MEMORY_MB). */
#define CLEAN_DEFAULT_BUDGET ((size_t)24 << 20)

typedef struct clean_io {
    clean_read_fn read;
    void *read_ctx;
    clean_write_fn write_output; /* the clean CSV */
    void *output_ctx;
    clean_write_fn write_rejects; /* the rejects CSV */
    void *rejects_ctx;
    /* 0 (the default): text cells a spreadsheet would evaluate get a
     * leading "'" (see csvout_is_formula); 1: written as they are
     * (CSV_FORMULA_GUARD=0, for consumers that are not spreadsheets). */
    int formulas_verbatim;
    /* Bytes the cleaning may hold (0: CLEAN_DEFAULT_BUDGET): its buffers,
     * and the duplicate set, which spills to TMPDIR past the rest. */
    size_t memory_budget;
} clean_io;

/* The number of reject codes, the empty "no reject" included (see
 * clean_reject_code). */
#define CLEAN_REJECT_REASONS 14

typedef struct clean_counts {
    uint64_t rows_in; /* data rows read (header and blank lines excluded) */
    uint64_t rows_out;
    uint64_t rows_rejected;
    uint64_t rows_duplicate;
    uint64_t bytes_in;
    uint64_t bytes_out;     /* bytes written to the clean CSV */
    uint64_t bytes_rejects; /* bytes written to the rejects CSV */
    /* What the engine found, for reports (dxctl validate). */
    char delimiter;             /* the detected delimiter, 0 before the input was read */
    int utf8_bom;               /* the input began with a UTF-8 byte order mark */
    uint64_t records_cp1252;    /* records read as Windows-1252 (the others are UTF-8) */
    unsigned columns_found;     /* bit c set when canonical column c is in the header */
    uint64_t cells_neutralised; /* text cells written with a leading "'" */
    /* rows_rejected per reason: rejected_by_reason[i] rows got the code
     * clean_reject_code(i) (index 0, no reject, stays 0). */
    uint64_t rejected_by_reason[CLEAN_REJECT_REASONS];
} clean_counts;

/* The reject code of reason index i (written in the rejects file's second
 * column), "" for 0 or an index out of range.  A static string. */
const char *clean_reject_code(size_t i);

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
