/*
 * The cleaning engine (see clean.h).  What it does to a file, for the README:
 *
 * Input.  Bytes are read in 64 KiB blocks and fed to libcsv (non-strict: a
 * stray quote inside a field is kept as a character rather than failing the
 * file).  Line ends may be LF, CRLF or CR, quoted fields may hold delimiters,
 * doubled quotes and line breaks.  Blank lines, and rows whose fields are all
 * empty (";;;;" left by spreadsheets), are skipped and not counted.
 *
 * Encoding.  Each row is decoded on its own: as UTF-8 when it is valid
 * UTF-8, otherwise as Windows-1252 (the French Excel export; it is a superset
 * of Latin-1's printable characters).  Valid UTF-8 with accents practically
 * never happens by chance in Windows-1252 text (it takes pairs like "Ã©"),
 * so this reads UTF-8 files, Windows-1252 files and files mixing both (a
 * Latin-1 tail appended to a UTF-8 export) right, needs no look-ahead and
 * cannot be fooled by an ASCII-only first block.  A UTF-8 byte order mark is
 * dropped; a UTF-16 mark, or any NUL byte anywhere, makes the file unusable.
 * Output is always UTF-8 without a mark.
 *
 * Header.  The first non-blank row.  Its delimiter is the most frequent of
 * ',' ';' TAB '|' outside quotes (ties in that order; ',' when none appear).
 * Names are folded (trimmed, case and accents removed, other characters to
 * '_') and mapped through the aliases of vocab.c onto order_id, order_date,
 * customer_id, customer_email, product_sku, product_name, quantity,
 * unit_price, currency, status, plus an optional separate time column
 * (order_time, heure, time).  Trailing empty header cells are dropped.  Other
 * columns pass through after the canonical ones under their folded name
 * ("column_N" when empty, "_2", "_3"... appended on a clash).
 *
 * File unusable (DX_ERR_INVALID, one-line reason, no clean output): empty file
 * (no bytes, only blanks, only a byte order mark); "unsupported encoding:
 * UTF-16"; "binary input: NUL byte at offset N"; "too many columns: more
 * than 1024"; "header field too long: over 1 MiB"; "duplicate column: X
 * (columns A and B)" when two header cells name the same column; "missing
 * required column: X" for order_id, order_date, quantity, unit_price.
 *
 * Rows.  Every field is trimmed and its whitespace runs (space, tab, line
 * breaks, no-break and narrow no-break spaces, other Unicode spaces) become
 * one space.  customer_email is lowercased.  order_date becomes YYYY-MM-DD
 * and its time, if any, HH:MM:SS in order_time (see csvdate.h for the forms).
 * quantity must be a positive integer of digits only.  unit_price is parsed
 * exactly into cents (see money.h) and written with a dot and two decimals;
 * negative prices are refused, zero is allowed.  total = quantity *
 * unit_price in integer cents.  currency is uppercased ("€", "euro" ->
 * EUR), and set to EUR when empty and the price carried a euro sign.  status
 * is mapped onto pending, paid, shipped, delivered, cancelled, returned,
 * refunded (vocab.c); an unknown status is kept, lowercased.  A row equal to
 * an earlier clean row, byte for byte after all of this, is a duplicate: it
 * is dropped and counted (order lines sharing an order_id but differing in
 * any field are all kept).
 *
 * Output: RFC 4180, ',' delimited, fields quoted only when needed, '\n' line
 * ends; header order_id, order_date, customer_id, customer_email, product_sku,
 * product_name, quantity, unit_price, currency, status, order_time, total,
 * then the pass-through columns.
 *
 * Rejects: header "line,reason,<original header cells>", then one row per
 * rejected row: the physical line (1-based) where the row starts, a reason
 * code, and the row's original fields (decoded to UTF-8, otherwise as read).
 * Exactly one reason per row, the first that applies in this order:
 *   field_too_long     a field over 1 MiB (fields not written)
 *   row_too_long       a row over 4 MiB in all (fields not written)
 *   field_count        more or fewer fields than the header; extra trailing
 *                      empty fields (trailing delimiters) are fine, missing
 *                      ones are not, since a short row is usually a row cut
 *                      by an unquoted line break (fields not written past
 *                      1024)
 *   missing_order_id   order_id empty after trimming
 *   missing_order_date order_date empty after trimming
 *   invalid_date       order_date not a date in an accepted form, or
 *                      impossible (31/02, month 13, 25:00)
 *   invalid_time       the separate time column is not HH:MM[:SS] (it is only
 *                      read when order_date has no time)
 *   missing_quantity   quantity empty after trimming
 *   invalid_quantity   not a positive integer, or over 2^63-1
 *   missing_unit_price unit_price empty after trimming
 *   invalid_price      not an amount in an accepted form, negative, more
 *                      than two decimals, ambiguous ("1.234"), or too large
 *   currency_mismatch  a euro sign on the price but another currency given
 *   total_overflow     quantity * unit_price over 2^63-1 cents
 * rows_in = rows_out + rows_rejected + rows_duplicate, always.
 *
 * Limits, so that memory stays flat whatever the input: 1 MiB per field,
 * 4 MiB per row, 1024 columns.  Memory is a few MiB of buffers (more only
 * while a row near the limits is processed) plus the duplicate set: 16 bytes
 * per unique clean row and half a byte of index, up to what the buffers
 * leave of clean_io.memory_budget (CLEAN_MEMORY_MB, 24 MiB: a million rows
 * fit); past it the set spills to a file under TMPDIR and stays exact
 * (dupset.h).
 *
 * Speed.  libcsv alone takes about half of the work, so it runs on a second
 * thread while the caller's thread cleans what it parsed before (see
 * "Pipeline"); the output does not depend on how the two threads run, and
 * every clean_io callback is called on the caller's thread.  A field is
 * classified eight bytes at a time as it is copied out of libcsv, and the
 * ones already clean (most of them) are written as they are.
 */
#include "clean.h"

#include <csv.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <xxhash.h>

#include "csvdate.h"
#include "csvout.h"
#include "dupset.h"
#include "encoding.h"
#include "fold.h"
#include "money.h"
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
/* The pipeline between the two threads (see "Pipeline" below): read blocks
 * waiting to be parsed, and batches of parsed records waiting to be cleaned.
 * A batch is handed over at the first record end past BATCH_BYTES of fields,
 * or when fewer than MAX_COLUMNS of its BATCH_FIELDS field slots are left
 * (so a record always fits), or at BATCH_RECORDS records. */
#define BLOCKS        4
#define BATCHES       4
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
} reject_reason;

static const char *const reject_codes[] = {
    [REJECT_NONE] = "",
    [REJECT_FIELD_TOO_LONG] = "field_too_long",
    [REJECT_ROW_TOO_LONG] = "row_too_long",
    [REJECT_FIELD_COUNT] = "field_count",
    [REJECT_MISSING_ORDER_ID] = "missing_order_id",
    [REJECT_MISSING_ORDER_DATE] = "missing_order_date",
    [REJECT_MISSING_QUANTITY] = "missing_quantity",
    [REJECT_MISSING_UNIT_PRICE] = "missing_unit_price",
    [REJECT_INVALID_DATE] = "invalid_date",
    [REJECT_INVALID_TIME] = "invalid_time",
    [REJECT_INVALID_QUANTITY] = "invalid_quantity",
    [REJECT_INVALID_PRICE] = "invalid_price",
    [REJECT_CURRENCY_MISMATCH] = "currency_mismatch",
    [REJECT_TOTAL_OVERFLOW] = "total_overflow",
};

/* A field inside a buffer of fields, by offset since the buffer moves.
 * 32 bits are plenty (a batch holds at most MAX_ROW and BATCH_BYTES), and
 * keep the batches the parser thread hands over small. */
typedef struct span {
    uint32_t off;
    uint32_t len;
} span;

/* What copy_field() finds in a field. */
#define SHAPE_CLEAN 1 /* no control byte, no leading, trailing or doubled space */
#define SHAPE_PLAIN 2 /* nothing to quote in the output either */
#define SHAPE_HIGH  4 /* some byte over 0x7F (UTF-8 or Windows-1252) */

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

/* The engine's own buffers (read blocks, parsed batches, output and pending
 * rows: about 3 MiB measured with a 10-column file) come out of
 * clean_io.memory_budget first; the duplicate set gets the rest. */
#define ENGINE_BUFFER_BYTES ((size_t)4 << 20)

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
 * Records handed from the parser to the engine, in input order: their field
 * bytes one after the other in raw, their fields, and with the last batch
 * why parsing stopped.
 */
typedef struct batch {
    csvout raw;
    span *fields;          /* BATCH_FIELDS */
    unsigned char *shapes; /* BATCH_FIELDS: copy_field() of each field */
    size_t nfields;
    record *records; /* BATCH_RECORDS */
    size_t nrecords;
    int last;        /* nothing follows */
    failure failure; /* with last: DX_OK at the end of the input */
} batch;

/* A block of input read by the engine's thread, for the parser. */
typedef struct block {
    char data[READ_BLOCK];
    size_t start; /* a byte order mark skipped in the first block */
    size_t len;
    int last;        /* nothing follows */
    failure failure; /* with last: DX_OK at the end of the input */
} block;

/*
 * The two queues between the engine's thread and the parser's, rings under
 * one lock.  The engine fills blocks and cleans batches, the parser parses
 * blocks into batches; each side takes its queue's slots in order, so the
 * records reach the engine exactly in input order.
 */
typedef struct pipeline {
    pthread_mutex_t lock;
    pthread_cond_t parser_wake; /* a block filled, a batch freed, or stop */
    pthread_cond_t engine_wake; /* a batch published, or a block freed */
    block *blocks;              /* BLOCKS */
    size_t block_head;          /* the next block to parse */
    size_t block_count;         /* filled, or being parsed */
    batch *batches;             /* BATCHES */
    size_t batch_head;          /* the next batch to clean */
    size_t batch_count;         /* published, or being cleaned */
    int stop;                   /* the engine gave up: the parser returns */
} pipeline;

/* The parse side: runs on its own thread, and shares nothing with the
 * engine but the pipeline. */
typedef struct parser {
    pipeline *pipe;
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
    batch *batch;
    size_t record_first;    /* the record's first field in the batch */
    size_t record_raw;      /* where the record's bytes start in raw */
    size_t nfields_seen;    /* including those past MAX_COLUMNS */
    int field_over;         /* the field in progress passed MAX_FIELD */
    reject_reason row_over; /* REJECT_FIELD_TOO_LONG or REJECT_ROW_TOO_LONG */
    int have_header;        /* a non-blank record was completed */
} parser;

typedef struct engine {
    const clean_io *io;
    clean_counts *counts;
    dx_status status; /* the first failure; nothing is done once set */
    char *reason;
    size_t reason_len;

    /* The record being cleaned: a record of a batch. */
    const char *raw;            /* the batch's field bytes */
    const span *fields;         /* the record's fields */
    const unsigned char *shape; /* what copy_field() found in each */
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
} engine;

static void fail(engine *e, dx_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_failure(failure *f, dx_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the first failure of a thread that cannot reach the engine. */
static void set_failure(failure *f, dx_status status, const char *fmt, ...)
{
    va_list ap;

    if (f->status != DX_OK)
        return;
    f->status = status;
    va_start(ap, fmt);
    vsnprintf(f->reason, sizeof(f->reason), fmt, ap);
    va_end(ap);
}

/* Records the first failure; later ones are consequences of it. */
static void fail(engine *e, dx_status status, const char *fmt, ...)
{
    va_list ap;

    if (e->status != DX_OK)
        return;
    e->status = status;
    if (e->reason_len > 0) {
        va_start(ap, fmt);
        vsnprintf(e->reason, e->reason_len, fmt, ap);
        va_end(ap);
    }
}

/* ------------------------------------------------------------------ */
/* Field text                                                           */

/* Length of the whitespace character at s, or 0: ASCII blanks and line
 * breaks, and the Unicode spaces spreadsheets put in numbers and names. */
static size_t space_length(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];

    if (c == ' ' || (c >= '\t' && c <= '\r'))
        return 1;
    if (c == 0xC2 && n >= 2 && s[1] == 0xA0)
        return 2; /* no-break space */
    if (c == 0xE2 && n >= 3) {
        if (s[1] == 0x80 &&
            ((s[2] >= 0x80 && s[2] <= 0x8A) || s[2] == 0xA8 || s[2] == 0xA9 || s[2] == 0xAF))
            return 3; /* en/em/thin spaces, line separators, narrow no-break */
        if (s[1] == 0x81 && s[2] == 0x9F)
            return 3; /* medium mathematical space */
    }
    if (c == 0xE3 && n >= 3 && s[1] == 0x80 && s[2] == 0x80)
        return 3; /* ideographic space */
    return 0;
}

/*
 * Trims s[0..n) and collapses its whitespace runs into one space, writing
 * UTF-8 to out; when cp1252 the input is Windows-1252 and is transcoded on
 * the way (3 * n bytes of out suffice, n when not cp1252).  Returns the new
 * length, and sets *plain when the result needs no quotes in the output.
 * A stray byte order mark inside a UTF-8 field, left by concatenated
 * exports, is dropped.
 */
static size_t collapse(const char *in, size_t n, char *out, int cp1252, int *plain)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t w = 0, i = 0, space;
    int gap = 0, quotes = 0;

    while (i < n) {
        unsigned char c = s[i];

        if (c > ' ' && c < 0x80) {
            if (gap) {
                out[w++] = ' ';
                gap = 0;
            }
            quotes |= c == ',' || c == '"';
            out[w++] = (char)c;
            i++;
            continue;
        }
        if (cp1252 && c >= 0x80) {
            space = c == 0xA0; /* the no-break space */
        } else if ((space = space_length(s + i, n - i)) == 0 && c == 0xEF && n - i >= 3 &&
                   s[i + 1] == 0xBB && s[i + 2] == 0xBF) {
            i += 3;
            continue;
        }
        if (space > 0) {
            gap = w > 0;
            i += space;
            continue;
        }
        if (gap) {
            out[w++] = ' ';
            gap = 0;
        }
        if (cp1252) {
            w += encoding_cp1252_to_utf8((const char *)s + i, 1, out + w);
        } else {
            out[w++] = (char)c;
        }
        i++;
    }
    *plain = !quotes;
    return w;
}

#define ONES  UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)
#define LOWS  UINT64_C(0x7F7F7F7F7F7F7F7F)

/* High bit of each byte of v set when v has a zero byte somewhere; exact for
 * "any", not per byte. */
static uint64_t any_zero(uint64_t v)
{
    return (v - ONES) & ~v & HIGHS;
}

/* High bit set in exactly the zero bytes of v. */
static uint64_t zero_bytes(uint64_t v)
{
    return ~(((v & LOWS) + LOWS) | v | LOWS);
}

/* What copy_field() gathers from the words of a field: the high bit of a
 * byte is set for each property some byte of the field has. */
typedef struct shape_bits {
    uint64_t high;    /* a byte over 0x7F */
    uint64_t control; /* a byte under 0x20 */
    uint64_t doubled; /* two spaces in a row */
    uint64_t quotes;  /* a ',' or '"' */
} shape_bits;

/* Adds a word of the field; pairs_ok masks the byte pairs of the word that
 * are neighbours in the field. */
static inline void shape_word(shape_bits *b, uint64_t w, uint64_t pairs_ok)
{
    uint64_t spaces = zero_bytes(w ^ (' ' * ONES));

    b->high |= w;
    b->control |= (w - ' ' * ONES) & ~w;
    b->doubled |= spaces & (spaces << 8) & pairs_ok;
    b->quotes |= any_zero(w ^ (',' * ONES)) | any_zero(w ^ ('"' * ONES));
}

/*
 * Copies a field to dst and classifies it on the way (SHAPE_*), eight bytes
 * at a time where cleaning goes one by one: most fields of real files are
 * clean, and then the raw bytes (transcoded for Windows-1252) are the value.
 * The copy's loads serve the classification, so the field is read once.
 * Words overlap at the end of the field rather than read past it; a byte
 * seen twice changes nothing, and pairs across words are checked apart.
 */
static unsigned copy_field(char *dst, const char *src, size_t n)
{
    const unsigned char *s = (const unsigned char *)src;
    shape_bits b = {0, 0, 0, 0};
    uint64_t w;

    if (n == 0)
        return SHAPE_CLEAN | SHAPE_PLAIN;
    if (n >= 8) {
        size_t i;

        for (i = 0; i + 8 <= n; i += 8) {
            memcpy(&w, s + i, sizeof(w));
            memcpy(dst + i, &w, sizeof(w));
            shape_word(&b, w, ~UINT64_C(0));
            if (i > 0 && s[i] == ' ' && s[i - 1] == ' ')
                b.doubled = HIGHS;
        }
        if (i < n) {
            memcpy(&w, s + n - 8, sizeof(w));
            memcpy(dst + n - 8, &w, sizeof(w));
            shape_word(&b, w, ~UINT64_C(0));
        }
    } else if (n >= 4) {
        uint32_t head, tail;

        /* Two overlapping halves in one word; their bytes meeting in the
         * middle are not neighbours in the field. */
        memcpy(&head, s, sizeof(head));
        memcpy(&tail, s + n - 4, sizeof(tail));
        memcpy(dst, &head, sizeof(head));
        memcpy(dst + n - 4, &tail, sizeof(tail));
        shape_word(&b, (uint64_t)head | (uint64_t)tail << 32, ~(UINT64_C(0x80) << 32));
    } else {
        /* Up to three bytes, under letters, which no test flags. */
        w = 'a' * ONES;
        for (size_t i = 0; i < n; i++) {
            dst[i] = src[i];
            w = w << 8 | s[i];
        }
        shape_word(&b, w, ~UINT64_C(0));
    }
    if ((b.control | b.doubled) & HIGHS || s[0] == ' ' || s[n - 1] == ' ')
        return (b.high & HIGHS) ? SHAPE_HIGH : 0;
    return ((b.high & HIGHS) ? SHAPE_HIGH : 0) | SHAPE_CLEAN |
           ((b.quotes & HIGHS) ? 0 : SHAPE_PLAIN);
}

/* 1 when a record's fields must be read as Windows-1252: when one of
 * them, having a byte over 0x7F, is not UTF-8. */
static int record_is_cp1252(const char *raw, const span *fields, const unsigned char *shapes,
                            size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((shapes[i] & SHAPE_HIGH) && !encoding_utf8_valid(raw + fields[i].off, fields[i].len))
            return 1;
    }
    return 0;
}

/*
 * 1 when a field that copy_field() found clean but for bytes over 0x7F
 * reads the same cleaned: in Windows-1252 when it has no no-break space
 * (0xA0); in UTF-8 when it has none of the lead bytes of the Unicode spaces
 * and byte order mark collapse() looks for (0xC2, 0xE2, 0xE3, 0xEF).
 */
static int high_is_clean(const char *in, size_t n, int cp1252)
{
    const unsigned char *s = (const unsigned char *)in;

    if (cp1252)
        return memchr(s, 0xA0, n) == NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == 0xC2 || s[i] == 0xE2 || s[i] == 0xE3 || s[i] == 0xEF)
            return 0;
    }
    return 1;
}

/*
 * Sets value[0..count) to the record's fields cleaned: clean fields point
 * into the raw record, the others are transcoded from Windows-1252 when
 * cp1252, trimmed and collapsed into the clean buffer.  Returns 0, or -1
 * when memory is short.
 */
static int decode_record(engine *e, size_t count, int cp1252)
{
    char *clean;

    /* Reserved up front (Windows-1252 triples at most) so that the pointers
     * taken below stay valid for the whole row. */
    e->clean.len = 0;
    if (csvout_reserve(&e->clean, 3 * e->raw_len + 1) < 0)
        return -1;
    clean = e->clean.data;
    for (size_t i = 0; i < count; i++) {
        const char *s = e->raw + e->fields[i].off;
        size_t n = e->fields[i].len;
        unsigned shape = e->shape[i];
        text *t = &e->value[i];

        if ((shape & SHAPE_CLEAN) && (!(shape & SHAPE_HIGH) || high_is_clean(s, n, cp1252))) {
            /* Transcoding cannot make a quote or a comma: plain stays plain. */
            if ((shape & SHAPE_HIGH) && cp1252) {
                *t = (text){clean, encoding_cp1252_to_utf8(s, n, clean), shape & SHAPE_PLAIN};
                clean += t->len;
            } else {
                *t = (text){s, n, shape & SHAPE_PLAIN};
            }
            continue;
        }
        t->s = clean;
        t->len = collapse(s, n, clean, cp1252, &t->plain);
        clean += t->len;
    }
    return 0;
}

static dx_status flush(csvout *buf, clean_write_fn write, void *ctx, uint64_t *bytes)
{
    dx_status status = DX_OK;

    if (buf->len > 0) {
        status = write(ctx, buf->data, buf->len);
        if (status == DX_OK)
            *bytes += buf->len;
        buf->len = 0;
    }
    return status;
}

/*
 * Runs the duplicate check on the clean rows waiting in the output, in input
 * order, and removes the duplicates from the output.  Exactly as if each row
 * had been checked when written, only faster.
 */
static void resolve_pending(engine *e)
{
    size_t w, n = e->npending;

    if (n == 0)
        return;
    e->npending = 0;
    if (dupset_insert_many(e->seen, e->pending_key, n, e->pending_fresh) < 0) {
        /* Out of memory, or TMPDIR full or unwritable: both may pass. */
        fail(e, DX_ERR_IO, "duplicate set: %s", dupset_error(e->seen));
        return;
    }
    w = e->pending_start[0];
    for (size_t i = 0; i < n; i++) {
        size_t start = e->pending_start[i];
        size_t end = i + 1 < n ? e->pending_start[i + 1] : e->out.len;

        if (!e->pending_fresh[i]) {
            e->counts->rows_duplicate++;
            continue;
        }
        e->counts->rows_out++;
        if (w != start)
            memmove(e->out.data + w, e->out.data + start, end - start);
        w += end - start;
    }
    e->out.len = w;
}

/* Hands full output blocks to the write callbacks. */
static void flush_full(engine *e, int force)
{
    dx_status status;

    if (e->status != DX_OK)
        return;
    if (force || e->out.len >= FLUSH_AT) {
        resolve_pending(e);
        if (e->status != DX_OK)
            return;
        status = flush(&e->out, e->io->write_output, e->io->output_ctx, &e->counts->bytes_out);
        if (status != DX_OK)
            fail(e, status, "writing the clean output failed: %s", status_text(status));
    }
    if (force || e->rejects.len >= FLUSH_AT) {
        status =
            flush(&e->rejects, e->io->write_rejects, e->io->rejects_ctx, &e->counts->bytes_rejects);
        if (status != DX_OK)
            fail(e, status, "writing the rejects failed: %s", status_text(status));
    }
}

/* ------------------------------------------------------------------ */
/* Header                                                               */

/* 1 when name is already an output column name. */
static int name_taken(const csvout *names, const span *at, size_t count, const char *name,
                      size_t len)
{
    for (int c = 0; c < VOCAB_COLUMNS; c++) {
        if (strlen(vocab_column_name((vocab_column)c)) == len &&
            memcmp(vocab_column_name((vocab_column)c), name, len) == 0)
            return 1;
    }
    if (len == 5 && memcmp(name, "total", 5) == 0)
        return 1;
    for (size_t i = 0; i < count; i++) {
        if (at[i].len == len && memcmp(names->data + at[i].off, name, len) == 0)
            return 1;
    }
    return 0;
}

/*
 * Writes the clean header: the canonical columns, order_time, total, and the
 * pass-through columns under unique folded names.  Returns 0 or -1 when
 * memory is short.
 */
static int write_clean_header(engine *e)
{
    csvout names;
    span *at = calloc(e->npass ? e->npass : 1, sizeof(*at));
    int ret = -1;

    csvout_init(&names);
    if (at == NULL)
        goto done;
    for (int c = 0; c < VOCAB_COLUMNS; c++) {
        const char *name = vocab_column_name((vocab_column)c);
        if (csvout_field(&e->out, name, strlen(name), c == 0) < 0)
            goto done;
    }
    if (csvout_field(&e->out, "total", 5, 0) < 0)
        goto done;
    for (size_t k = 0; k < e->npass; k++) {
        const text *cell = &e->value[e->pass[k]];
        char key[256], name[300];
        size_t len = fold_key(cell->s, cell->len, key, sizeof(key));
        int suffix = 1;

        if (len == 0)
            len = (size_t)snprintf(key, sizeof(key), "column_%zu", e->pass[k] + 1);
        memcpy(name, key, len + 1);
        while (name_taken(&names, at, k, name, strlen(name)))
            snprintf(name, sizeof(name), "%s_%d", key, ++suffix);
        at[k].off = (uint32_t)names.len;
        at[k].len = (uint32_t)strlen(name);
        if (csvout_raw(&names, name, at[k].len) < 0 ||
            csvout_field(&e->out, name, at[k].len, 0) < 0)
            goto done;
    }
    if (csvout_end_row(&e->out) < 0)
        goto done;
    ret = 0;
done:
    csvout_finish(&names);
    free(at);
    return ret;
}

/*
 * Appends the record's first count fields as read (decoded to UTF-8 when
 * cp1252) to the rejects, after the line and reason already there.  Uses the
 * decoded buffer, so values of the row are invalid afterwards.  Returns 0 or
 * -1 when memory is short.
 */
static int put_original(engine *e, size_t count, int cp1252)
{
    if (cp1252 && csvout_reserve(&e->decoded, 3 * e->raw_len + 1) < 0)
        return -1;
    for (size_t i = 0; i < count; i++) {
        const char *s = e->raw + e->fields[i].off;
        size_t n = e->fields[i].len;

        if (cp1252) {
            n = encoding_cp1252_to_utf8(s, n, e->decoded.data);
            s = e->decoded.data;
        }
        if (csvout_field(&e->rejects, s, n, 0) < 0)
            return -1;
    }
    return 0;
}

/* Writes the rejects header: line, reason, the original header cells. */
static int write_rejects_header(engine *e, int cp1252)
{
    if (csvout_field(&e->rejects, "line", 4, 1) < 0 ||
        csvout_field(&e->rejects, "reason", 6, 0) < 0 || put_original(e, e->ncols, cp1252) < 0)
        return -1;
    return csvout_end_row(&e->rejects);
}

/* Maps each header cell onto a column; fails the file on a duplicate. */
static void map_columns(engine *e)
{
    for (int c = 0; c < VOCAB_COLUMNS; c++)
        e->column_at[c] = -1;
    e->npass = 0;
    for (size_t i = 0; i < e->ncols; i++) {
        const text *cell = &e->value[i];
        char key[256];
        int column;

        fold_key(cell->s, cell->len, key, sizeof(key));
        column = vocab_column_of(key);
        if (column < 0) {
            e->pass[e->npass++] = i;
        } else if (e->column_at[column] >= 0) {
            fail(e, DX_ERR_INVALID, "duplicate column: %s (columns %d and %zu)",
                 vocab_column_name((vocab_column)column), e->column_at[column] + 1, i + 1);
            return;
        } else {
            e->column_at[column] = (int)i;
        }
    }
    for (int c = 0; c < VOCAB_COLUMNS; c++) {
        if (vocab_column_required((vocab_column)c) && e->column_at[c] < 0) {
            fail(e, DX_ERR_INVALID, "missing required column: %s",
                 vocab_column_name((vocab_column)c));
            return;
        }
    }
}

static void process_header(engine *e)
{
    size_t n = e->nfields;
    int cp1252 = e->cp1252;

    if (e->row_over) {
        fail(e, DX_ERR_INVALID, "header field too long: over 1 MiB");
        return;
    }
    /* Trailing delimiters leave empty cells that name nothing. */
    while (n > 0 && e->fields[n - 1].len == 0)
        n--;
    e->ncols = n;
    if (decode_record(e, n, cp1252) < 0) {
        fail(e, DX_ERR_NOMEM, "out of memory reading the header");
        return;
    }
    map_columns(e);
    if (e->status != DX_OK)
        return;
    if (write_clean_header(e) < 0 || write_rejects_header(e, cp1252) < 0) {
        fail(e, DX_ERR_NOMEM, "out of memory writing the header");
        return;
    }
    e->have_header = 1;
}

/* ------------------------------------------------------------------ */
/* Rows                                                                 */

/* Writes the current record to the rejects; fields are left out for rows
 * over the limits, which were not kept. */
static void reject(engine *e, reject_reason why, int with_fields)
{
    char line[24];
    size_t len = (size_t)snprintf(line, sizeof(line), "%llu", (unsigned long long)e->record_line);
    int cp1252 = with_fields && e->cp1252;

    e->counts->rows_rejected++;
    if (csvout_field(&e->rejects, line, len, 1) < 0 ||
        csvout_field(&e->rejects, reject_codes[why], strlen(reject_codes[why]), 0) < 0)
        goto nomem;
    if (with_fields && put_original(e, e->nfields, cp1252) < 0)
        goto nomem;
    if (csvout_end_row(&e->rejects) < 0)
        goto nomem;
    return;
nomem:
    fail(e, DX_ERR_NOMEM, "out of memory writing the rejects");
}

/* A positive integer of ASCII digits, as in "12" or "007"; returns 0 or -1. */
static int parse_quantity(const char *s, size_t n, int64_t *quantity)
{
    int64_t value = 0;

    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || __builtin_mul_overflow(value, 10, &value) ||
            __builtin_add_overflow(value, s[i] - '0', &value))
            return -1;
    }
    if (value < 1)
        return -1;
    *quantity = value;
    return 0;
}

/* 1 when a currency value is one of the ways to write the euro. */
static int is_euro(text value)
{
    static const char *const spellings[] = {"EUR", "EURO", "EUROS"};

    if (value.len == 3 && memcmp(value.s, "\xE2\x82\xAC", 3) == 0)
        return 1;
    for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
        if (strlen(spellings[i]) == value.len && strncasecmp(spellings[i], value.s, value.len) == 0)
            return 1;
    }
    return 0;
}

/* The vocabulary status of a value (NULL when it is not in it), and its
 * length. */
static const char *status_of(engine *e, text value, size_t *len)
{
    const unsigned char *u = (const unsigned char *)value.s;
    size_t slot = (value.len * 31 + u[0] * 7 + u[value.len - 1]) % STATUS_CACHE;
    const char *status;
    char key[64];

    if (e->status_cache[slot].len == value.len &&
        memcmp(e->status_cache[slot].value, value.s, value.len) == 0) {
        *len = e->status_cache[slot].status_len;
        return e->status_cache[slot].status;
    }
    fold_key(value.s, value.len, key, sizeof(key));
    status = vocab_status_of(key);
    *len = status != NULL ? strlen(status) : 0;
    if (value.len <= STATUS_CACHED_MAX) {
        memcpy(e->status_cache[slot].value, value.s, value.len);
        e->status_cache[slot].len = value.len;
        e->status_cache[slot].status = status;
        e->status_cache[slot].status_len = *len;
    }
    return status;
}

/* The cleaned value of a canonical column in the current row. */
static text value_of(const engine *e, vocab_column column)
{
    text none = {"", 0, 1};

    return e->column_at[column] >= 0 ? e->value[e->column_at[column]] : none;
}

/* A decimal integer, as a plain value backed by buf. */
static text integer_text(int64_t value, char buf[24])
{
    char digits[24];
    size_t n = 0, w = 0;

    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value > 0);
    while (n > 0)
        buf[w++] = digits[--n];
    return (text){buf, w, 1};
}

/* How a field of the clean row is written. */
typedef enum letter_case { CASE_KEEP, CASE_LOWER, CASE_UPPER } letter_case;

typedef struct cell {
    text value;
    letter_case change;
} cell;

/* Output bytes a field can take: itself and its separator, quoted with
 * every byte a doubled quote at worst. */
static size_t room_for(text t)
{
    return t.plain ? t.len + 1 : CSVOUT_ENCODED_MAX(t.len) + 1;
}

/*
 * Writes a field and a ',' at w, which has room_for(t), and returns the end.
 * The case is changed after writing: quotes and commas have no case, so the
 * CSV framing is untouched.
 */
static char *emit(char *w, text t, letter_case change)
{
    size_t n = t.len;

    if (t.plain) {
        csvout_copy(w, t.s, n);
    } else {
        n = csvout_encode(w, t.s, n);
    }
    if (change == CASE_LOWER) {
        fold_lower(w, n);
    } else if (change == CASE_UPPER) {
        for (size_t i = 0; i < n; i++) {
            if (w[i] >= 'a' && w[i] <= 'z')
                w[i] = (char)(w[i] - 32);
        }
    }
    w[n] = ',';
    return w + n + 1;
}

/*
 * Applies the row rules to the cleaned values and appends the clean row to
 * the output.  Returns the reject reason, with nothing appended, or
 * REJECT_NONE; *nomem is set when memory ran short.  The row buffers are
 * never modified, so a rejected row still has its original fields.
 */
static reject_reason write_clean_row(engine *e, int *nomem)
{
    text v[VOCAB_COLUMNS], currency, status;
    letter_case currency_case = CASE_UPPER, status_case = CASE_LOWER;
    csvdate date;
    int64_t quantity, cents, total;
    int euro, currency_is_euro;
    char quantity_text[24], price_text[MONEY_FORMAT_MAX], total_text[MONEY_FORMAT_MAX];
    const char *known = NULL;
    size_t known_len = 0, room = 0;
    char *w;

    *nomem = 0;
    for (int c = 0; c < VOCAB_COLUMNS; c++)
        v[c] = value_of(e, (vocab_column)c);
    if (v[VOCAB_ORDER_ID].len == 0)
        return REJECT_MISSING_ORDER_ID;
    if (v[VOCAB_ORDER_DATE].len == 0)
        return REJECT_MISSING_ORDER_DATE;
    if (csvdate_parse(v[VOCAB_ORDER_DATE].s, v[VOCAB_ORDER_DATE].len, &date) < 0)
        return REJECT_INVALID_DATE;
    if (date.time[0] == '\0' && v[VOCAB_ORDER_TIME].len > 0 &&
        csvdate_parse_time(v[VOCAB_ORDER_TIME].s, v[VOCAB_ORDER_TIME].len, date.time) < 0)
        return REJECT_INVALID_TIME;
    if (v[VOCAB_QUANTITY].len == 0)
        return REJECT_MISSING_QUANTITY;
    if (parse_quantity(v[VOCAB_QUANTITY].s, v[VOCAB_QUANTITY].len, &quantity) < 0)
        return REJECT_INVALID_QUANTITY;
    if (v[VOCAB_UNIT_PRICE].len == 0)
        return REJECT_MISSING_UNIT_PRICE;
    if (money_parse(v[VOCAB_UNIT_PRICE].s, v[VOCAB_UNIT_PRICE].len, &cents, &euro) < 0)
        return REJECT_INVALID_PRICE;
    currency = v[VOCAB_CURRENCY];
    currency_is_euro = is_euro(currency);
    if (euro && currency.len > 0 && !currency_is_euro)
        return REJECT_CURRENCY_MISMATCH;
    if (__builtin_mul_overflow(quantity, cents, &total))
        return REJECT_TOTAL_OVERFLOW;
    if (v[VOCAB_STATUS].len > 0)
        known = status_of(e, v[VOCAB_STATUS], &known_len);

    if (currency_is_euro || (euro && currency.len == 0)) {
        currency = (text){"EUR", 3, 1};
        currency_case = CASE_KEEP;
    }
    status = v[VOCAB_STATUS];
    if (known != NULL) {
        status = (text){known, known_len, 1};
        status_case = CASE_KEEP;
    }

    /* The canonical columns in output order, then order_time and total. */
    const cell cells[] = {
        {v[VOCAB_ORDER_ID], CASE_KEEP},
        {{date.date, 10, 1}, CASE_KEEP},
        {v[VOCAB_CUSTOMER_ID], CASE_KEEP},
        {v[VOCAB_CUSTOMER_EMAIL], CASE_LOWER},
        {v[VOCAB_PRODUCT_SKU], CASE_KEEP},
        {v[VOCAB_PRODUCT_NAME], CASE_KEEP},
        {integer_text(quantity, quantity_text), CASE_KEEP},
        {{price_text, money_format(cents, price_text), 1}, CASE_KEEP},
        {currency, currency_case},
        {status, status_case},
        {{date.time, date.time[0] ? 8 : 0, 1}, CASE_KEEP},
        {{total_text, money_format(total, total_text), 1}, CASE_KEEP},
    };
    size_t ncells = sizeof(cells) / sizeof(cells[0]);

    /* One size check for the whole row, then plain stores. */
    for (size_t k = 0; k < ncells; k++)
        room += room_for(cells[k].value);
    for (size_t k = 0; k < e->npass; k++)
        room += room_for(e->value[e->pass[k]]);
    if (csvout_reserve(&e->out, room) < 0) {
        *nomem = 1;
        return REJECT_NONE;
    }
    w = e->out.data + e->out.len;
    for (size_t k = 0; k < ncells; k++)
        w = emit(w, cells[k].value, cells[k].change);
    for (size_t k = 0; k < e->npass; k++)
        w = emit(w, e->value[e->pass[k]], CASE_KEEP);
    /* The separator after the last field ends the row instead. */
    w[-1] = '\n';
    e->out.len = (size_t)(w - e->out.data);
    return REJECT_NONE;
}

static void process_row(engine *e)
{
    size_t n = e->nfields_seen, start = e->out.len;
    reject_reason why;
    int nomem = 0;
    XXH128_hash_t hash;

    e->counts->rows_in++;
    if (e->row_over) {
        reject(e, e->row_over, 0);
        return;
    }
    if (n > e->nfields) {
        reject(e, REJECT_FIELD_COUNT, 0);
        return;
    }
    /* Trailing delimiters past the header's columns are harmless. */
    while (n > e->ncols && e->fields[n - 1].len == 0)
        n--;
    if (n != e->ncols) {
        reject(e, REJECT_FIELD_COUNT, 1);
        return;
    }
    if (decode_record(e, n, e->cp1252) < 0) {
        fail(e, DX_ERR_NOMEM, "out of memory cleaning line %llu",
             (unsigned long long)e->record_line);
        return;
    }
    why = write_clean_row(e, &nomem);
    if (nomem) {
        fail(e, DX_ERR_NOMEM, "out of memory writing line %llu",
             (unsigned long long)e->record_line);
        return;
    }
    if (why != REJECT_NONE) {
        reject(e, why, 1);
        return;
    }
    hash = XXH3_128bits(e->out.data + start, e->out.len - start);
    e->pending_start[e->npending] = start;
    e->pending_key[e->npending] = (dupset_key){hash.high64, hash.low64};
    if (++e->npending == PENDING_MAX)
        resolve_pending(e);
}

/* Releases a row buffer that one huge row inflated, so that one bad row
 * does not keep its memory for the rest of the file. */
static void trim_buffer(csvout *buf)
{
    if (buf->cap > KEEP_AT)
        csvout_finish(buf);
    buf->len = 0;
}

/* Cleans the records of a batch, then applies why parsing stopped. */
static void clean_batch(engine *e, const batch *b)
{
    for (size_t i = 0; i < b->nrecords && e->status == DX_OK; i++) {
        const record *r = &b->records[i];

        e->raw = b->raw.data;
        e->fields = b->fields + r->first;
        e->shape = b->shapes + r->first;
        e->cp1252 = r->cp1252;
        e->nfields = r->nfields;
        e->nfields_seen = r->nfields_seen;
        e->raw_len = r->bytes;
        e->row_over = r->over;
        e->record_line = r->line;
        if (e->have_header)
            process_row(e);
        else
            process_header(e);
        flush_full(e, 0);
        trim_buffer(&e->decoded);
        trim_buffer(&e->clean);
    }
    if (b->last && b->failure.status != DX_OK)
        fail(e, b->failure.status, "%s", b->failure.reason);
}

/* ------------------------------------------------------------------ */
/* Pipeline                                                             */

/*
 * Parsing (libcsv) and cleaning each take about half of the work, so they
 * run on two threads: the engine's thread (the caller's) reads blocks and
 * cleans and writes batches of records, a parser thread turns blocks into
 * batches.  All callbacks of clean_io are called on the caller's thread,
 * exactly as without the parser thread.  Records reach the engine in input
 * order and it flushes at the same rows, so the output bytes do not depend
 * on how the threads run; memory is the fixed BLOCKS and BATCHES buffers.
 * A failure found while reading (a NUL byte, a read error) is queued after
 * the blocks before it, and one found by the parser after the records before
 * it, so that the first failure in input order wins, as it would in one
 * thread.  Only bytes_in may then count a few blocks read ahead.
 */

/* Parser side: the next block to parse, or NULL once the engine stopped. */
static block *pipeline_next_block(pipeline *q)
{
    block *b = NULL;

    pthread_mutex_lock(&q->lock);
    while (q->block_count == 0 && !q->stop)
        pthread_cond_wait(&q->parser_wake, &q->lock);
    if (!q->stop)
        b = &q->blocks[q->block_head];
    pthread_mutex_unlock(&q->lock);
    return b;
}

/* Parser side: the block from pipeline_next_block() is parsed. */
static void pipeline_done_block(pipeline *q)
{
    pthread_mutex_lock(&q->lock);
    q->block_head = (q->block_head + 1) % BLOCKS;
    q->block_count--;
    pthread_cond_signal(&q->engine_wake);
    pthread_mutex_unlock(&q->lock);
}

/* The batch the parser fills: the slot after the published ones. */
static batch *filling_batch(pipeline *q)
{
    return &q->batches[(q->batch_head + q->batch_count) % BATCHES];
}

static void reset_batch(batch *b)
{
    b->raw.len = 0;
    b->nfields = 0;
    b->nrecords = 0;
    b->last = 0;
    b->failure.status = DX_OK;
}

/*
 * Parser side: publishes the batch being filled and returns the next one,
 * empty, once a slot is free; NULL once the engine stopped, or after the
 * last batch.
 */
static batch *pipeline_publish(pipeline *q)
{
    batch *next = NULL;
    int last;

    pthread_mutex_lock(&q->lock);
    last = filling_batch(q)->last;
    q->batch_count++;
    pthread_cond_signal(&q->engine_wake);
    while (!last && q->batch_count == BATCHES && !q->stop)
        pthread_cond_wait(&q->parser_wake, &q->lock);
    if (!last && !q->stop)
        next = filling_batch(q);
    pthread_mutex_unlock(&q->lock);
    if (next != NULL)
        reset_batch(next);
    return next;
}

/* Engine side: the parser returns at its next wait (the engine failed, or
 * has its last batch). */
static void pipeline_stop(pipeline *q)
{
    pthread_mutex_lock(&q->lock);
    q->stop = 1;
    pthread_cond_signal(&q->parser_wake);
    pthread_mutex_unlock(&q->lock);
}

/* ------------------------------------------------------------------ */
/* Parser: libcsv callbacks and feeding                                 */

/* 1 when every field of the record is empty: a spreadsheet's ";;;;" row. */
static int record_is_blank(const parser *p)
{
    const batch *b = p->batch;

    if (p->row_over || p->nfields_seen > b->nfields - p->record_first)
        return 0;
    for (size_t i = p->record_first; i < b->nfields; i++) {
        if (b->fields[i].len > 0)
            return 0;
    }
    return 1;
}

static void on_field(void *s, size_t len, void *data)
{
    parser *p = data;
    batch *b = p->batch;
    span *field;

    if (p->failure.status != DX_OK)
        return;
    p->nfields_seen++;
    if (p->field_over || len > MAX_FIELD) {
        p->field_over = 0;
        if (!p->row_over)
            p->row_over = REJECT_FIELD_TOO_LONG;
        return;
    }
    if (p->row_over)
        return;
    if (p->nfields_seen > MAX_COLUMNS) {
        /* Past the limit data rows keep counting (and are rejected), but a
         * header that wide is not an order file. */
        if (!p->have_header)
            set_failure(&p->failure, DX_ERR_INVALID, "too many columns: more than %d", MAX_COLUMNS);
        return;
    }
    if (b->raw.len - p->record_raw + len > MAX_ROW) {
        p->row_over = REJECT_ROW_TOO_LONG;
        return;
    }
    /* One more byte, so that the buffer exists even for an empty field. */
    if (csvout_reserve(&b->raw, len + 1) < 0) {
        set_failure(&p->failure, DX_ERR_NOMEM, "out of memory reading line %llu",
                    (unsigned long long)p->record_line);
        return;
    }
    /* The engine's thread last read these lines: claiming them ahead of the
     * stores overlaps the transfers, which otherwise cost the parser thread
     * as much as libcsv itself. */
    __builtin_prefetch(b->raw.data + b->raw.len + 256, 1);
    __builtin_prefetch(&b->fields[b->nfields + 16], 1);
    field = &b->fields[b->nfields++];
    field->off = (uint32_t)b->raw.len;
    field->len = (uint32_t)len;
    b->shapes[b->nfields - 1] = (unsigned char)copy_field(b->raw.data + b->raw.len, s, len);
    b->raw.len += len;
}

/* 1 when the batch must be handed over before the next record. */
static int batch_full(const batch *b)
{
    return b->raw.len >= BATCH_BYTES || BATCH_FIELDS - b->nfields < MAX_COLUMNS ||
           b->nrecords == BATCH_RECORDS;
}

static void on_row(int c, void *data)
{
    parser *p = data;
    batch *b = p->batch;

    (void)c;
    if (p->failure.status != DX_OK)
        return;
    if (record_is_blank(p)) {
        /* Skipped, and not counted: nothing of it is kept. */
        b->nfields = p->record_first;
        b->raw.len = p->record_raw;
    } else {
        size_t first = p->record_first, n = b->nfields - first;

        b->records[b->nrecords++] = (record){
            .line = p->record_line,
            .first = first,
            .nfields = n,
            .nfields_seen = p->nfields_seen,
            .bytes = b->raw.len - p->record_raw,
            .over = p->row_over,
            .cp1252 = record_is_cp1252(b->raw.data, b->fields + first, b->shapes + first, n),
        };
        p->have_header = 1;
    }
    p->nfields_seen = 0;
    p->field_over = 0;
    p->row_over = REJECT_NONE;
    p->record_begun = 0;
    if (batch_full(b)) {
        p->batch = pipeline_publish(p->pipe);
        if (p->batch == NULL) {
            /* The engine stopped: it reads nothing more. */
            set_failure(&p->failure, DX_ERR_IO, "stopped");
            return;
        }
    }
    p->record_first = p->batch->nfields;
    p->record_raw = p->batch->raw.len;
}

/*
 * Bounds the field libcsv is accumulating.  libcsv has no call to drop a
 * field in progress, so once it passes MAX_FIELD the row is marked and the
 * parser's buffer rewound through its public struct: entry_pos and spaces
 * are the fields its SUBMIT_FIELD reads, and keeping entry_pos > spaces and
 * spaces' truth value leaves every later parsing decision unchanged.  The
 * buffer thus never holds more than MAX_FIELD plus one read block.
 */
static void bound_field(parser *p)
{
    struct csv_parser *csv = &p->csv;

    if (csv->entry_pos <= MAX_FIELD)
        return;
    if (!p->have_header) {
        set_failure(&p->failure, DX_ERR_INVALID, "header field too long: over 1 MiB");
        return;
    }
    p->field_over = 1;
    csv->spaces = csv->spaces ? 1 : 0;
    csv->entry_pos = csv->spaces + 1;
}

/* 1 when the bytes hold something libcsv would start a record with. */
static int has_content(const parser *p, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c != ' ' && c != '\r' && c != '\n' && (c != '\t' || p->delimiter == '\t'))
            return 1;
    }
    return 0;
}

static size_t find(const char *s, size_t n, size_t from, char c)
{
    const char *hit = memchr(s + from, c, n - from);

    return hit ? (size_t)(hit - s) : n;
}

/*
 * Parses a block.  libcsv does not report positions, so the block is fed one
 * physical line at a time (up to and including its CR or LF): the line
 * number is then known when a record begins, for the rejects file, and the
 * field bound is checked at least once per block.
 */
static void feed(parser *p, const char *buf, size_t n)
{
    size_t pos = 0, next_lf = find(buf, n, 0, '\n'), next_cr = find(buf, n, 0, '\r');

    while (pos < n && p->failure.status == DX_OK) {
        if (next_lf < pos)
            next_lf = find(buf, n, pos, '\n');
        if (next_cr < pos)
            next_cr = find(buf, n, pos, '\r');
        size_t eol = next_lf < next_cr ? next_lf : next_cr;
        /* A CRLF within the block goes in one call (half as many calls for
         * Windows files); one cut by the block end is joined by prev_cr. */
        int crlf = eol + 1 < n && buf[eol] == '\r' && buf[eol + 1] == '\n';
        size_t end = eol < n ? eol + 1 + (size_t)crlf : n;

        if (!p->record_begun && has_content(p, buf + pos, end - pos)) {
            p->record_begun = 1;
            p->record_line = p->line;
        }
        if (csv_parse(&p->csv, buf + pos, end - pos, on_field, on_row, p) != end - pos)
            set_failure(&p->failure, DX_ERR_NOMEM, "CSV parser failed at line %llu: %s",
                        (unsigned long long)p->line, csv_strerror(csv_error(&p->csv)));
        bound_field(p);
        if (eol < n) {
            /* CRLF is one line end: an LF right after a CR adds nothing. */
            if (crlf || buf[eol] == '\r' || !(p->prev_cr && end - pos == 1))
                p->line++;
            p->prev_cr = buf[eol] == '\r' && !crlf;
        } else {
            p->prev_cr = 0;
        }
        pos = end;
    }
}

/*
 * The parser thread: parses blocks until the last one, then publishes the
 * last batch with why it stopped (DX_OK at the end of the input).
 */
static void *parser_main(void *arg)
{
    parser *p = arg;
    block *b;
    int last = 0;

    while (!last && (b = pipeline_next_block(p->pipe)) != NULL) {
        last = b->last;
        feed(p, b->data + b->start, b->len - b->start);
        if (last && p->failure.status == DX_OK) {
            if (b->failure.status != DX_OK)
                p->failure = b->failure;
            else
                csv_fini(&p->csv, on_field, on_row, p);
        }
        pipeline_done_block(p->pipe);
        if (p->failure.status != DX_OK)
            last = 1;
    }
    /* After a stop the engine reads nothing more, and the batch may be gone. */
    if (last && p->batch != NULL) {
        p->batch->last = 1;
        p->batch->failure = p->failure;
        pipeline_publish(p->pipe);
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Reading                                                              */

/* Fills buf as far as the input allows; *eof is set at the end of input.
 * A failure is recorded in f (the block's). */
static void read_block(engine *e, char *buf, size_t cap, size_t *got, int *eof, failure *f)
{
    *got = 0;
    *eof = 0;
    while (*got < cap && f->status == DX_OK) {
        size_t n = 0;
        dx_status status = e->io->read(e->io->read_ctx, buf + *got, cap - *got, &n);

        if (status != DX_OK) {
            set_failure(f, status, "reading the input failed: %s", status_text(status));
        } else if (n > cap - *got) {
            set_failure(f, DX_ERR_IO, "reading the input failed: read callback overran its buffer");
        } else if (n == 0) {
            *eof = 1;
            break;
        } else {
            *got += n;
            e->counts->bytes_in += n;
        }
    }
}

/* Fails the file on a NUL byte: nothing a client exports as text has one. */
static void check_binary(const char *buf, size_t n, uint64_t offset, failure *f)
{
    const char *nul = memchr(buf, '\0', n);

    if (nul != NULL)
        set_failure(f, DX_ERR_INVALID, "binary input: NUL byte at offset %llu",
                    (unsigned long long)(offset + (uint64_t)(nul - buf)));
}

/* Reads a block as far as the input allows; a read failure is recorded in
 * the block. */
static void read_into(engine *e, block *b)
{
    int eof;

    b->start = 0;
    b->failure.status = DX_OK;
    read_block(e, b->data, READ_BLOCK, &b->len, &eof, &b->failure);
    b->last = eof;
}

/* Reads and checks the next block.  A failing block ends the input, with
 * nothing of it parsed. */
static void fill_block(engine *e, block *b)
{
    uint64_t offset = e->counts->bytes_in;

    read_into(e, b);
    if (b->failure.status == DX_OK)
        check_binary(b->data, b->len, offset, &b->failure);
    if (b->failure.status != DX_OK) {
        b->last = 1;
        b->len = 0;
    }
}

/* The most frequent candidate outside quotes on the first non-blank line. */
static unsigned char detect_delimiter(const char *s, size_t n)
{
    static const char candidates[] = {',', ';', '\t', '|'};
    size_t count[4] = {0, 0, 0, 0}, i = 0, best = 0;
    int quoted = 0;

    while (i < n && (s[i] == '\r' || s[i] == '\n' || s[i] == ' '))
        i++;
    for (; i < n; i++) {
        if (s[i] == '"')
            quoted = !quoted;
        else if (!quoted && (s[i] == '\r' || s[i] == '\n'))
            break;
        for (size_t k = 0; !quoted && k < 4; k++)
            count[k] += s[i] == candidates[k];
    }
    for (size_t k = 1; k < 4; k++) {
        if (count[k] > count[best])
            best = k;
    }
    return (unsigned char)candidates[best];
}

/*
 * The engine's side of the pipeline: keeps the parser supplied with blocks
 * and cleans its batches as they come, until the last one or a failure.
 */
static void pump(engine *e, pipeline *q, int input_done)
{
    for (;;) {
        block *free_block = NULL;
        batch *ready = NULL;
        int done;

        pthread_mutex_lock(&q->lock);
        for (;;) {
            /* Reading first, so that the parser never waits for input. */
            if (!input_done && q->block_count < BLOCKS) {
                free_block = &q->blocks[(q->block_head + q->block_count) % BLOCKS];
                break;
            }
            if (q->batch_count > 0) {
                ready = &q->batches[q->batch_head];
                break;
            }
            pthread_cond_wait(&q->engine_wake, &q->lock);
        }
        pthread_mutex_unlock(&q->lock);

        if (free_block != NULL) {
            fill_block(e, free_block);
            input_done = free_block->last;
            pthread_mutex_lock(&q->lock);
            q->block_count++;
            pthread_cond_signal(&q->parser_wake);
            pthread_mutex_unlock(&q->lock);
            continue;
        }
        clean_batch(e, ready);
        done = ready->last || e->status != DX_OK;
        trim_buffer(&ready->raw);
        pthread_mutex_lock(&q->lock);
        q->batch_head = (q->batch_head + 1) % BATCHES;
        q->batch_count--;
        pthread_cond_signal(&q->parser_wake);
        pthread_mutex_unlock(&q->lock);
        if (done)
            return;
    }
}

static void run(engine *e, pipeline *q, parser *p)
{
    block *first = &q->blocks[0];
    pthread_t thread;
    int err;

    /* The first block holds the header line, whose delimiter is needed
     * before parsing starts. */
    read_into(e, first);
    if (first->failure.status != DX_OK) {
        fail(e, first->failure.status, "%s", first->failure.reason);
        return;
    }
    if (first->len >= 2 && ((first->data[0] == '\xFF' && first->data[1] == '\xFE') ||
                            (first->data[0] == '\xFE' && first->data[1] == '\xFF'))) {
        fail(e, DX_ERR_INVALID, "unsupported encoding: UTF-16");
        return;
    }
    check_binary(first->data, first->len, 0, &first->failure);
    if (first->failure.status != DX_OK) {
        fail(e, first->failure.status, "%s", first->failure.reason);
        return;
    }
    if (first->len >= 3 && memcmp(first->data, "\xEF\xBB\xBF", 3) == 0)
        first->start = 3;
    p->delimiter = detect_delimiter(first->data + first->start, first->len - first->start);
    csv_set_delim(&p->csv, p->delimiter);
    q->block_count = 1;
    p->batch = filling_batch(q);

    err = pthread_create(&thread, NULL, parser_main, p);
    if (err != 0) {
        fail(e, DX_ERR_NOMEM, "cannot start the parser thread: %s", strerror(err));
        return;
    }
    pump(e, q, first->last);
    pipeline_stop(q);
    pthread_join(thread, NULL);
    if (e->status != DX_OK)
        return;
    if (!e->have_header)
        fail(e, DX_ERR_INVALID, "empty file");
    flush_full(e, 1);
}

/* Allocates the pipeline and the parser's libcsv; returns 0 or -1. */
static int pipeline_start(pipeline *q, parser *p)
{
    q->blocks = calloc(BLOCKS, sizeof(block));
    q->batches = calloc(BATCHES, sizeof(batch));
    if (q->blocks == NULL || q->batches == NULL)
        return -1;
    for (size_t i = 0; i < BATCHES; i++) {
        csvout_init(&q->batches[i].raw);
        q->batches[i].fields = calloc(BATCH_FIELDS, sizeof(span));
        q->batches[i].shapes = calloc(BATCH_FIELDS, 1);
        q->batches[i].records = calloc(BATCH_RECORDS, sizeof(record));
        if (q->batches[i].fields == NULL || q->batches[i].shapes == NULL ||
            q->batches[i].records == NULL)
            return -1;
    }
    if (pthread_mutex_init(&q->lock, NULL) != 0)
        return -1;
    if (pthread_cond_init(&q->parser_wake, NULL) != 0 ||
        pthread_cond_init(&q->engine_wake, NULL) != 0)
        return -1;
    p->pipe = q;
    p->line = 1;
    if (csv_init(&p->csv, 0) != 0)
        return -1;
    p->csv_ready = 1;
    csv_set_blk_size(&p->csv, PARSER_STEP);
    return 0;
}

static void pipeline_finish(pipeline *q, parser *p)
{
    if (p->csv_ready)
        csv_free(&p->csv);
    if (q->batches != NULL) {
        for (size_t i = 0; i < BATCHES; i++) {
            csvout_finish(&q->batches[i].raw);
            free(q->batches[i].fields);
            free(q->batches[i].shapes);
            free(q->batches[i].records);
        }
    }
    free(q->batches);
    free(q->blocks);
}

/* The duplicate set's share of a cleaning budget (0: the default). */
static size_t dupset_budget(size_t memory_budget)
{
    if (memory_budget == 0)
        memory_budget = CLEAN_DEFAULT_BUDGET;
    return memory_budget > ENGINE_BUFFER_BYTES ? memory_budget - ENGINE_BUFFER_BYTES
                                               : DUPSET_MIN_BUDGET;
}

/* Allocates the engine's fixed buffers; returns 0 or -1. */
static int engine_start(engine *e)
{
    e->value = calloc(MAX_COLUMNS, sizeof(text));
    e->pass = calloc(MAX_COLUMNS, sizeof(size_t));
    e->seen = dupset_create(dupset_budget(e->io->memory_budget));
    e->pending_start = calloc(PENDING_MAX, sizeof(size_t));
    e->pending_key = calloc(PENDING_MAX, sizeof(dupset_key));
    e->pending_fresh = calloc(PENDING_MAX, 1);
    if (e->value == NULL || e->pass == NULL || e->seen == NULL || e->pending_start == NULL ||
        e->pending_key == NULL || e->pending_fresh == NULL)
        return -1;
    return 0;
}

static void engine_stop(engine *e)
{
    free(e->value);
    free(e->pass);
    free(e->pending_start);
    free(e->pending_key);
    free(e->pending_fresh);
    dupset_destroy(e->seen);
    csvout_finish(&e->decoded);
    csvout_finish(&e->clean);
    csvout_finish(&e->out);
    csvout_finish(&e->rejects);
}

dx_status clean_run(const clean_io *io, clean_counts *counts, char *reason, size_t reason_len)
{
    engine e;
    pipeline q;
    parser p;

    memset(&e, 0, sizeof(e));
    memset(&q, 0, sizeof(q));
    memset(&p, 0, sizeof(p));
    memset(counts, 0, sizeof(*counts));
    if (reason_len > 0)
        reason[0] = '\0';
    e.io = io;
    e.counts = counts;
    e.reason = reason;
    e.reason_len = reason_len;
    csvout_init(&e.decoded);
    csvout_init(&e.clean);
    csvout_init(&e.out);
    csvout_init(&e.rejects);
    if (engine_start(&e) < 0 || pipeline_start(&q, &p) < 0)
        fail(&e, DX_ERR_NOMEM, "out of memory starting the cleaner");
    else
        run(&e, &q, &p);
    pipeline_finish(&q, &p);
    engine_stop(&e);
    return e.status;
}
