#pragma once

/*
 * What the three files of the cleaning engine share, and nothing else
 * includes: clean.c (the header and row rules, what a new rule touches),
 * clean_text.c (field text: classification, trimming, transcoding) and
 * clean_pipeline.c (reading, libcsv feeding and its callbacks).
 */

#include <csv.h>
#include <stddef.h>
#include <stdint.h>

#include "clean.h"
#include "csvout.h"
#include "dupset.h"
#include "vocab.h"

#define READ_BLOCK  (64 * 1024)
#define MAX_FIELD   (1024 * 1024)
#define MAX_ROW     (4 * 1024 * 1024)
#define MAX_COLUMNS 1024
/* Output is handed to the write callbacks in blocks of about this size. */
#define FLUSH_AT (64 * 1024)
/* Row buffers that grew past this for one huge row are released after it. */
#define KEEP_AT (256 * 1024)
/* libcsv grows its field buffer by this step (its default, 128, would mean
 * thousands of reallocations for a long field). */
#define PARSER_STEP (64 * 1024)
/* Parsed records are cleaned in batches (see clean_pipeline.c): a batch is
 * cleaned at the first record end past BATCH_BYTES of fields, or when fewer
 * than MAX_COLUMNS of its BATCH_FIELDS field slots are left (so a record
 * always fits), or at BATCH_RECORDS records. */
#define BATCH_BYTES   (64 * 1024)
#define BATCH_FIELDS  (8 * MAX_COLUMNS)
#define BATCH_RECORDS 2048
/* Room for a failure's one-line reason until it reaches the caller's. */
#define REASON_MAX 256

typedef enum reject_reason {
    REJECT_NONE,
    REJECT_FIELD_TOO_LONG,
    REJECT_ROW_TOO_LONG,
    REJECT_FIELD_COUNT,
    REJECT_MISSING_ORDER_ID,
    REJECT_MISSING_ORDER_DATE,
    REJECT_MISSING_QUANTITY,
    REJECT_MISSING_UNIT_PRICE,
    REJECT_INVALID_DATE,
    REJECT_INVALID_TIME,
    REJECT_INVALID_QUANTITY,
    REJECT_INVALID_PRICE,
    REJECT_CURRENCY_MISMATCH,
    REJECT_TOTAL_OVERFLOW,
    REJECT_REASONS /* the number of reasons, REJECT_NONE included */
} reject_reason;

/* A field inside a buffer of fields, by offset since the buffer moves.
 * 32 bits are plenty (a batch holds at most MAX_ROW and BATCH_BYTES), and
 * keep the batches small. */
typedef struct span {
    uint32_t off;
    uint32_t len;
} span;

/* What clean_text_copy_field() finds in a field. */
#define SHAPE_CLEAN 1 /* no control byte, no leading, trailing or doubled space */
#define SHAPE_PLAIN 2 /* nothing to quote in the output either */
#define SHAPE_HIGH  4 /* some byte over 0x7F (UTF-8 or Windows-1252) */
/* With SHAPE_HIGH, the bytes that make a clean-looking field need collapse()
 * after all: the no-break space of Windows-1252 (0xA0), and the lead bytes
 * of the Unicode spaces and byte order mark it drops in UTF-8 (0xC2, 0xE2,
 * 0xE3, 0xEF). */
#define SHAPE_NBSP_1252 8
#define SHAPE_LEAD_UTF8 16

/* A cleaned value, pointing into the row buffers (stable while the row is
 * processed); plain when it needs neither cleaning nor quoting. */
typedef struct text {
    const char *s;
    size_t len;
    int plain;
} text;

/* Status cache: slots, and the longest value cached. */
#define STATUS_CACHE      32
#define STATUS_CACHED_MAX 32

/* Clean rows waiting for the duplicate check, done in batches at flush time
 * so that the set's cache misses overlap (dupset_insert_many()).  A clean
 * row is at least 30 bytes, so a 64 KiB block holds fewer than this. */
#define PENDING_MAX 4096

/* A failure: the first one wins. */
typedef struct failure {
    dx_status status;
    char reason[REASON_MAX];
} failure;

/* A record as libcsv delivered it, in a batch.  Blank records (only empty
 * fields) never make it into one: they are skipped and not counted. */
typedef struct record {
    uint64_t line;       /* physical line (1-based) where it starts */
    size_t first;        /* its first field in the batch */
    size_t nfields;      /* fields stored, at most MAX_COLUMNS */
    size_t nfields_seen; /* including those past MAX_COLUMNS */
    size_t bytes;        /* bytes of its stored fields */
    reject_reason over;  /* REJECT_FIELD_TOO_LONG or REJECT_ROW_TOO_LONG */
    int cp1252;          /* its fields are Windows-1252, not UTF-8 */
} record;

/*
 * Records parsed and waiting to be cleaned, in input order: their field
 * bytes one after the other in raw, their fields, and with the last batch
 * why parsing stopped.
 */
typedef struct batch {
    csvout raw;
    span *fields;          /* BATCH_FIELDS */
    unsigned char *shapes; /* BATCH_FIELDS: clean_text_copy_field() of each field */
    size_t nfields;
    record *records; /* BATCH_RECORDS */
    size_t nrecords;
    int last;        /* nothing follows */
    failure failure; /* with last: DX_OK at the end of the input */
} batch;

/* A block of input, for the parser. */
typedef struct block {
    char data[READ_BLOCK];
    size_t start; /* a byte order mark skipped in the first block */
    size_t len;
    int last;        /* nothing follows */
    failure failure; /* with last: DX_OK at the end of the input */
} block;

/* The parse side: libcsv and the batch it fills, which is cleaned (by
 * clean_batch() on engine) whenever it is full. */
typedef struct engine engine;

typedef struct parser {
    engine *engine; /* where full batches go */
    block *block;   /* the one read block */
    struct csv_parser csv;
    int csv_ready;
    unsigned char delimiter;
    failure failure; /* callbacks do nothing once set */

    /* Physical line tracking: line of the next byte, and of the current
     * record's first byte once the record has begun. */
    uint64_t line;
    int prev_cr;
    int record_begun;
    uint64_t record_line;

    /* The batch being filled, and the record being read in it. */
    batch *batch;           /* the one batch */
    size_t record_first;    /* the record's first field in the batch */
    size_t record_raw;      /* where the record's bytes start in raw */
    size_t nfields_seen;    /* including those past MAX_COLUMNS */
    int record_content;     /* a stored field of the record is not empty */
    int record_cp1252;      /* a stored field of the record is not UTF-8 */
    int field_over;         /* the field in progress passed MAX_FIELD */
    reject_reason row_over; /* REJECT_FIELD_TOO_LONG or REJECT_ROW_TOO_LONG */
    int have_header;        /* a non-blank record was completed */
} parser;

struct engine {
    const clean_io *io;
    const profile *profile; /* the client's settings; never NULL */
    clean_counts *counts;
    dx_status status; /* the first failure; nothing is done once set */
    char *reason;
    size_t reason_len;

    /* The record being cleaned: a record of a batch. */
    const char *raw;            /* the batch's field bytes */
    const span *fields;         /* the record's fields */
    const unsigned char *shape; /* what clean_text_copy_field() found in each */
    int cp1252;                 /* the fields are Windows-1252 */
    size_t nfields;             /* stored in fields */
    size_t nfields_seen;        /* including those past MAX_COLUMNS */
    size_t raw_len;             /* bytes of the stored fields */
    reject_reason row_over;     /* REJECT_FIELD_TOO_LONG or REJECT_ROW_TOO_LONG */
    uint64_t record_line;

    /* The header. */
    int have_header;
    size_t ncols;
    int column_at[VOCAB_COLUMNS]; /* input index of each column, or -1 */
    size_t *pass;                 /* input indexes of the pass-through columns */
    size_t npass;

    /* Per-row scratch: fields trimmed and collapsed (and transcoded), the
     * cleaned value of each field, original fields transcoded for rejects. */
    csvout clean;
    text *value; /* MAX_COLUMNS */
    csvout decoded;

    /* Status values seen recently, with their mapping (NULL: not in the
     * vocabulary): files repeat a handful of spellings a million times. */
    struct {
        char value[STATUS_CACHED_MAX];
        size_t len;
        const char *status;
        size_t status_len;
    } status_cache[STATUS_CACHE];

    csvout out;
    csvout rejects;
    dupset *seen;
    size_t npending;
    size_t *pending_start;        /* PENDING_MAX offsets of rows in out */
    dupset_key *pending_key;      /* PENDING_MAX */
    unsigned char *pending_fresh; /* PENDING_MAX */
    /* Cells given a leading "'" in each pending row (PENDING_MAX), counted
     * only for the rows that are kept. */
    uint16_t *pending_guarded;
};

/* clean.c */

/* Records the engine's first failure; later ones are consequences of it. */
void clean_fail(engine *e, dx_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Cleans the records of a batch, then applies why parsing stopped. */
void clean_batch(engine *e, const batch *b);
/* Hands full output blocks to the write callbacks, all of them when force. */
void clean_flush(engine *e, int force);
/* Empties a row buffer, and frees its memory when one huge row inflated it. */
void clean_trim_buffer(csvout *buf);

/* clean_text.c */

/* Copies n bytes of a field from src to dst and returns its SHAPE_* bits. */
unsigned clean_text_copy_field(char *dst, const char *src, size_t n);
/*
 * Sets e->value[0..count) to the current record's fields cleaned; values
 * point into the record or into e->clean, valid until the next call.
 * Returns 0, or -1 when memory is short.
 */
int clean_text_decode(engine *e, size_t count, int cp1252);

/* clean_pipeline.c */

/*
 * Allocates the parser's block, batch and libcsv into p (zeroed by the
 * caller), for the engine e; returns 0 or -1.  clean_pipeline_finish()
 * releases them, also after a failure here.
 */
int clean_pipeline_init(parser *p, engine *e);
void clean_pipeline_finish(parser *p);
/* Reads, parses and cleans the whole input; failures are recorded in e. */
void clean_pipeline_run(engine *e, parser *p);
