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
 * per unique clean row, half a byte of index and a fixed 4 MiB (dupset.h);
 * about 20 MB in all for a million rows.
 */
#include "clean.h"

#include <csv.h>
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

/* A field inside the raw record buffer, by offset since the buffer moves. */
typedef struct span {
    size_t off;
    size_t len;
} span;

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

typedef struct engine {
    const clean_io *io;
    clean_counts *counts;
    dx_status status; /* the first failure; callbacks do nothing once set */
    char *reason;
    size_t reason_len;

    struct csv_parser parser;
    int parser_ready;
    unsigned char delimiter;

    /* Physical line tracking: line of the next byte, and of the current
     * record's first byte once the record has begun. */
    uint64_t line;
    int prev_cr;
    int record_begun;
    uint64_t record_line;

    /* The record being read: its fields as libcsv delivered them. */
    csvout raw;
    span *fields;           /* MAX_COLUMNS */
    size_t nfields;         /* stored in fields */
    size_t nfields_seen;    /* including those past MAX_COLUMNS */
    int field_over;         /* the field in progress passed MAX_FIELD */
    reject_reason row_over; /* REJECT_FIELD_TOO_LONG or REJECT_ROW_TOO_LONG */

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

/* 1 when the record's stored fields must be read as Windows-1252. */
static int record_is_cp1252(const engine *e)
{
    for (size_t i = 0; i < e->nfields; i++) {
        if (!encoding_utf8_valid(e->raw.data + e->fields[i].off, e->fields[i].len))
            return 1;
    }
    return 0;
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

/* What field_shape() found. */
#define SHAPE_CLEAN 1 /* printable ASCII, no leading, trailing or doubled space */
#define SHAPE_PLAIN 2 /* and nothing to quote in the output either */

/*
 * Classifies a field, eight bytes at a time where cleaning goes one by one.
 * Most fields of real files are clean, and then the raw bytes are the value.
 */
static int field_shape(const char *in, size_t n)
{
    const unsigned char *s = (const unsigned char *)in;
    uint64_t dirty = 0, quotes = 0, w, spaces;
    size_t i = 0;

    if (n == 0)
        return SHAPE_CLEAN | SHAPE_PLAIN;
    if (s[0] == ' ' || s[n - 1] == ' ')
        return 0;
    while (i < n) {
        if (n - i >= 8) {
            memcpy(&w, s + i, sizeof(w));
        } else {
            /* The tail, padded with a letter, which no test flags. */
            w = 'a' * ONES;
            memcpy(&w, s + i, n - i);
        }
        dirty |= w | ((w - ' ' * ONES) & ~w); /* >= 0x80, or < 0x20 */
        spaces = zero_bytes(w ^ (' ' * ONES));
        dirty |= spaces & (spaces << 8);
        quotes |= any_zero(w ^ (',' * ONES)) | any_zero(w ^ ('"' * ONES));
        if (i > 0 && s[i] == ' ' && s[i - 1] == ' ')
            return 0;
        i += 8;
    }
    if (dirty & HIGHS)
        return 0;
    return (quotes & HIGHS) ? SHAPE_CLEAN : SHAPE_CLEAN | SHAPE_PLAIN;
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
    if (csvout_reserve(&e->clean, 3 * e->raw.len + 1) < 0)
        return -1;
    clean = e->clean.data;
    for (size_t i = 0; i < count; i++) {
        const char *s = e->raw.data + e->fields[i].off;
        size_t n = e->fields[i].len;
        int shape = field_shape(s, n);
        text *t = &e->value[i];

        if (shape & SHAPE_CLEAN) {
            *t = (text){s, n, shape & SHAPE_PLAIN};
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
        fail(e, DX_ERR_NOMEM, "out of memory in the duplicate set");
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
        at[k].off = names.len;
        at[k].len = strlen(name);
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
    if (cp1252 && csvout_reserve(&e->decoded, 3 * e->raw.len + 1) < 0)
        return -1;
    for (size_t i = 0; i < count; i++) {
        const char *s = e->raw.data + e->fields[i].off;
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
    int cp1252 = record_is_cp1252(e);

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
    int cp1252 = with_fields && record_is_cp1252(e);

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

/* The vocabulary status of a value, or NULL when it is not in it. */
static const char *status_of(engine *e, text value)
{
    const unsigned char *u = (const unsigned char *)value.s;
    size_t slot = (value.len * 31 + u[0] * 7 + u[value.len - 1]) % STATUS_CACHE;
    const char *status;
    char key[64];

    if (e->status_cache[slot].len == value.len &&
        memcmp(e->status_cache[slot].value, value.s, value.len) == 0)
        return e->status_cache[slot].status;
    fold_key(value.s, value.len, key, sizeof(key));
    status = vocab_status_of(key);
    if (value.len <= STATUS_CACHED_MAX) {
        memcpy(e->status_cache[slot].value, value.s, value.len);
        e->status_cache[slot].len = value.len;
        e->status_cache[slot].status = status;
    }
    return status;
}

/* The cleaned value of a canonical column in the current row. */
static text value_of(const engine *e, vocab_column column)
{
    text none = {"", 0, 1};

    return e->column_at[column] >= 0 ? e->value[e->column_at[column]] : none;
}

/* Appends a field to the clean output; the first failure wins, so callers
 * can chain calls and check the flag once. */
static void put(engine *e, int *bad, text t, int first)
{
    if (*bad)
        return;
    if (t.plain ? csvout_plain(&e->out, t.s, t.len, first) < 0
                : csvout_field(&e->out, t.s, t.len, first) < 0)
        *bad = 1;
}

/* Like put(), then changes the case of what was written: quotes and commas
 * have no case, so the CSV framing is untouched. */
static void put_cased(engine *e, int *bad, text t, int upper)
{
    size_t at = e->out.len;

    put(e, bad, t, 0);
    if (*bad)
        return;
    if (!upper) {
        fold_lower(e->out.data + at, e->out.len - at);
        return;
    }
    for (size_t i = at; i < e->out.len; i++) {
        if (e->out.data[i] >= 'a' && e->out.data[i] <= 'z')
            e->out.data[i] = (char)(e->out.data[i] - 32);
    }
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

/*
 * Applies the row rules to the cleaned values and appends the clean row to
 * the output.  Returns the reject reason, with nothing appended, or
 * REJECT_NONE; *nomem is set when memory ran short.  The row buffers are
 * never modified, so a rejected row still has its original fields.
 */
static reject_reason write_clean_row(engine *e, int *nomem)
{
    text v[VOCAB_COLUMNS];
    csvdate date;
    int64_t quantity, cents, total;
    int euro, bad = 0;
    char quantity_text[24], price_text[MONEY_FORMAT_MAX], total_text[MONEY_FORMAT_MAX];
    const char *status = NULL;

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
    if (euro && v[VOCAB_CURRENCY].len > 0 && !is_euro(v[VOCAB_CURRENCY]))
        return REJECT_CURRENCY_MISMATCH;
    if (__builtin_mul_overflow(quantity, cents, &total))
        return REJECT_TOTAL_OVERFLOW;
    if (v[VOCAB_STATUS].len > 0)
        status = status_of(e, v[VOCAB_STATUS]);

    put(e, &bad, v[VOCAB_ORDER_ID], 1);
    put(e, &bad, (text){date.date, 10, 1}, 0);
    put(e, &bad, v[VOCAB_CUSTOMER_ID], 0);
    put_cased(e, &bad, v[VOCAB_CUSTOMER_EMAIL], 0);
    put(e, &bad, v[VOCAB_PRODUCT_SKU], 0);
    put(e, &bad, v[VOCAB_PRODUCT_NAME], 0);
    put(e, &bad, integer_text(quantity, quantity_text), 0);
    put(e, &bad, (text){price_text, money_format(cents, price_text), 1}, 0);
    if (is_euro(v[VOCAB_CURRENCY]) || (euro && v[VOCAB_CURRENCY].len == 0))
        put(e, &bad, (text){"EUR", 3, 1}, 0);
    else
        put_cased(e, &bad, v[VOCAB_CURRENCY], 1);
    if (status != NULL)
        put(e, &bad, (text){status, strlen(status), 1}, 0);
    else
        put_cased(e, &bad, v[VOCAB_STATUS], 0);
    put(e, &bad, (text){date.time, strlen(date.time), 1}, 0);
    put(e, &bad, (text){total_text, money_format(total, total_text), 1}, 0);
    for (size_t k = 0; k < e->npass; k++)
        put(e, &bad, e->value[e->pass[k]], 0);
    if (!bad && csvout_end_row(&e->out) < 0)
        bad = 1;
    *nomem = bad;
    return REJECT_NONE;
}

/* 1 when every field of the record is empty: a spreadsheet's ";;;;" row. */
static int record_is_blank(const engine *e)
{
    if (e->row_over || e->nfields_seen > e->nfields)
        return 0;
    for (size_t i = 0; i < e->nfields; i++) {
        if (e->fields[i].len > 0)
            return 0;
    }
    return 1;
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
    if (decode_record(e, n, record_is_cp1252(e)) < 0) {
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

static void end_record(engine *e)
{
    e->nfields = 0;
    e->nfields_seen = 0;
    e->field_over = 0;
    e->row_over = REJECT_NONE;
    e->record_begun = 0;
    trim_buffer(&e->raw);
    trim_buffer(&e->decoded);
    trim_buffer(&e->clean);
}

/* ------------------------------------------------------------------ */
/* libcsv callbacks and feeding                                         */

static void on_field(void *s, size_t len, void *data)
{
    engine *e = data;

    if (e->status != DX_OK)
        return;
    e->nfields_seen++;
    if (e->field_over || len > MAX_FIELD) {
        e->field_over = 0;
        if (!e->row_over)
            e->row_over = REJECT_FIELD_TOO_LONG;
        return;
    }
    if (e->row_over)
        return;
    if (e->nfields_seen > MAX_COLUMNS) {
        /* Past the limit data rows keep counting (and are rejected), but a
         * header that wide is not an order file. */
        if (!e->have_header)
            fail(e, DX_ERR_INVALID, "too many columns: more than %d", MAX_COLUMNS);
        return;
    }
    if (e->raw.len + len > MAX_ROW) {
        e->row_over = REJECT_ROW_TOO_LONG;
        return;
    }
    e->fields[e->nfields].off = e->raw.len;
    e->fields[e->nfields].len = len;
    if (csvout_raw(&e->raw, s, len) < 0) {
        fail(e, DX_ERR_NOMEM, "out of memory reading line %llu",
             (unsigned long long)e->record_line);
        return;
    }
    e->nfields++;
}

static void on_row(int c, void *data)
{
    engine *e = data;

    (void)c;
    if (e->status == DX_OK && !record_is_blank(e)) {
        if (e->have_header)
            process_row(e);
        else
            process_header(e);
        flush_full(e, 0);
    }
    end_record(e);
}

/*
 * Bounds the field libcsv is accumulating.  libcsv has no call to drop a
 * field in progress, so once it passes MAX_FIELD the row is marked and the
 * parser's buffer rewound through its public struct: entry_pos and spaces
 * are the fields its SUBMIT_FIELD reads, and keeping entry_pos > spaces and
 * spaces' truth value leaves every later parsing decision unchanged.  The
 * buffer thus never holds more than MAX_FIELD plus one read block.
 */
static void bound_field(engine *e)
{
    struct csv_parser *p = &e->parser;

    if (p->entry_pos <= MAX_FIELD)
        return;
    if (!e->have_header) {
        fail(e, DX_ERR_INVALID, "header field too long: over 1 MiB");
        return;
    }
    e->field_over = 1;
    p->spaces = p->spaces ? 1 : 0;
    p->entry_pos = p->spaces + 1;
}

/* 1 when the bytes hold something libcsv would start a record with. */
static int has_content(const engine *e, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c != ' ' && c != '\r' && c != '\n' && (c != '\t' || e->delimiter == '\t'))
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
static void feed(engine *e, const char *buf, size_t n)
{
    size_t pos = 0, next_lf = find(buf, n, 0, '\n'), next_cr = find(buf, n, 0, '\r');

    while (pos < n && e->status == DX_OK) {
        if (next_lf < pos)
            next_lf = find(buf, n, pos, '\n');
        if (next_cr < pos)
            next_cr = find(buf, n, pos, '\r');
        size_t eol = next_lf < next_cr ? next_lf : next_cr;
        size_t end = eol < n ? eol + 1 : n;

        if (!e->record_begun && has_content(e, buf + pos, end - pos)) {
            e->record_begun = 1;
            e->record_line = e->line;
        }
        if (csv_parse(&e->parser, buf + pos, end - pos, on_field, on_row, e) != end - pos)
            fail(e, DX_ERR_NOMEM, "CSV parser failed at line %llu: %s", (unsigned long long)e->line,
                 csv_strerror(csv_error(&e->parser)));
        bound_field(e);
        if (eol < n) {
            /* CRLF is one line end: an LF right after a CR adds nothing. */
            if (buf[eol] == '\r' || !(e->prev_cr && end - pos == 1))
                e->line++;
            e->prev_cr = buf[eol] == '\r';
        } else {
            e->prev_cr = 0;
        }
        pos = end;
    }
}

/* ------------------------------------------------------------------ */
/* Reading                                                              */

/* Fills buf as far as the input allows; *eof is set at the end of input. */
static void read_block(engine *e, char *buf, size_t cap, size_t *got, int *eof)
{
    *got = 0;
    *eof = 0;
    while (*got < cap && e->status == DX_OK) {
        size_t n = 0;
        dx_status status = e->io->read(e->io->read_ctx, buf + *got, cap - *got, &n);

        if (status != DX_OK) {
            fail(e, status, "reading the input failed: %s", status_text(status));
        } else if (n > cap - *got) {
            fail(e, DX_ERR_IO, "reading the input failed: read callback overran its buffer");
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
static void check_binary(engine *e, const char *buf, size_t n, uint64_t offset)
{
    const char *nul = memchr(buf, '\0', n);

    if (nul != NULL)
        fail(e, DX_ERR_INVALID, "binary input: NUL byte at offset %llu",
             (unsigned long long)(offset + (uint64_t)(nul - buf)));
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

static void run(engine *e, char *block)
{
    size_t n, skip = 0;
    int eof;

    /* The first block holds the header line, whose delimiter is needed
     * before parsing starts. */
    read_block(e, block, READ_BLOCK, &n, &eof);
    if (e->status != DX_OK)
        return;
    if (n >= 2 && ((block[0] == '\xFF' && block[1] == '\xFE') ||
                   (block[0] == '\xFE' && block[1] == '\xFF'))) {
        fail(e, DX_ERR_INVALID, "unsupported encoding: UTF-16");
        return;
    }
    check_binary(e, block, n, 0);
    if (n >= 3 && memcmp(block, "\xEF\xBB\xBF", 3) == 0)
        skip = 3;
    e->delimiter = detect_delimiter(block + skip, n - skip);
    csv_set_delim(&e->parser, e->delimiter);
    feed(e, block + skip, n - skip);
    while (!eof && e->status == DX_OK) {
        uint64_t offset = e->counts->bytes_in;
        read_block(e, block, READ_BLOCK, &n, &eof);
        check_binary(e, block, n, offset);
        if (e->status == DX_OK)
            feed(e, block, n);
    }
    if (e->status != DX_OK)
        return;
    csv_fini(&e->parser, on_field, on_row, e);
    if (e->status == DX_OK && !e->have_header)
        fail(e, DX_ERR_INVALID, "empty file");
    flush_full(e, 1);
}

/* Allocates the engine's fixed buffers; returns 0 or -1. */
static int engine_start(engine *e)
{
    e->fields = calloc(MAX_COLUMNS, sizeof(span));
    e->value = calloc(MAX_COLUMNS, sizeof(text));
    e->pass = calloc(MAX_COLUMNS, sizeof(size_t));
    e->seen = dupset_create();
    e->pending_start = calloc(PENDING_MAX, sizeof(size_t));
    e->pending_key = calloc(PENDING_MAX, sizeof(dupset_key));
    e->pending_fresh = calloc(PENDING_MAX, 1);
    if (e->fields == NULL || e->value == NULL || e->pass == NULL || e->seen == NULL ||
        e->pending_start == NULL || e->pending_key == NULL || e->pending_fresh == NULL ||
        csv_init(&e->parser, 0) != 0)
        return -1;
    e->parser_ready = 1;
    csv_set_blk_size(&e->parser, PARSER_STEP);
    return 0;
}

static void engine_stop(engine *e)
{
    if (e->parser_ready)
        csv_free(&e->parser);
    free(e->fields);
    free(e->value);
    free(e->pass);
    free(e->pending_start);
    free(e->pending_key);
    free(e->pending_fresh);
    dupset_destroy(e->seen);
    csvout_finish(&e->raw);
    csvout_finish(&e->decoded);
    csvout_finish(&e->clean);
    csvout_finish(&e->out);
    csvout_finish(&e->rejects);
}

dx_status clean_run(const clean_io *io, clean_counts *counts, char *reason, size_t reason_len)
{
    engine e;
    char *block = malloc(READ_BLOCK);

    memset(&e, 0, sizeof(e));
    memset(counts, 0, sizeof(*counts));
    if (reason_len > 0)
        reason[0] = '\0';
    e.io = io;
    e.counts = counts;
    e.reason = reason;
    e.reason_len = reason_len;
    e.line = 1;
    csvout_init(&e.raw);
    csvout_init(&e.decoded);
    csvout_init(&e.clean);
    csvout_init(&e.out);
    csvout_init(&e.rejects);
    if (block == NULL || engine_start(&e) < 0)
        fail(&e, DX_ERR_NOMEM, "out of memory starting the cleaner");
    else
        run(&e, block);
    engine_stop(&e);
    free(block);
    return e.status;
}
