/*
 * The cleaning engine (see clean.h): the header and row rules.  What it does
 * to a file (accepted input, the rules per row, the output, the rejects and
 * their reasons, unusable files, limits) is specified in docs/cleaning.md,
 * the one place the rules are written: a change to a rule changes that page
 * in the same commit.  A new row rule goes in write_clean_row(), with its
 * reason in reject_reason (clean_private.h) and reject_codes[] below.
 *
 * Around the rules: clean_text.c classifies, trims and transcodes fields
 * (sixteen bytes at a time with SSE2, eight elsewhere, so the fields
 * already clean, most of them, are written as they are), and
 * clean_pipeline.c reads the input and runs libcsv, handing batches of
 * records to clean_batch(); all of it on the caller's thread.
 *
 * Formula guard (unless clean_io.formulas_verbatim): a text cell that a
 * spreadsheet would evaluate gets a leading "'" (csvout_is_formula); the
 * rule is in docs/cleaning.md, "The formula guard".
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
/* The row hash compiled here rather than called in libxxhash: a short row's
 * hash is then a few dozen inlined instructions, not a library call and its
 * dispatch (the same XXH3 algorithm and version, so the same hashes). */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "clean_private.h"
#include "csvdate.h"
#include "encoding.h"
#include "fold.h"
#include "money.h"

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
_Static_assert(sizeof(reject_codes) / sizeof(reject_codes[0]) == REJECT_REASONS,
               "one reject code per reject_reason");
_Static_assert(CLEAN_REJECT_REASONS == REJECT_REASONS, "clean.h counts every reject_reason");

const char *clean_reject_code(size_t i)
{
    return i < REJECT_REASONS ? reject_codes[i] : "";
}

void clean_fail(engine *e, dx_status status, const char *fmt, ...)
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
        clean_fail(e, DX_ERR_IO, "duplicate set: %s", dupset_error(e->seen));
        return;
    }
    /* Kept rows move down over the duplicates a run at a time: one
     * memmove() per run of kept rows, not one per row. */
    w = e->pending_start[0];
    for (size_t i = 0; i < n;) {
        size_t run = i, start = e->pending_start[i], end;

        if (!e->pending_fresh[i]) {
            e->counts->rows_duplicate++;
            i++;
            continue;
        }
        for (; i < n && e->pending_fresh[i]; i++)
            e->counts->cells_neutralised += e->pending_guarded[i];
        e->counts->rows_out += i - run;
        end = i < n ? e->pending_start[i] : e->out.len;
        if (w != start)
            memmove(e->out.data + w, e->out.data + start, end - start);
        w += end - start;
    }
    e->out.len = w;
}

void clean_flush(engine *e, int force)
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
            clean_fail(e, status, "writing the clean output failed: %s", status_text(status));
    }
    if (force || e->rejects.len >= FLUSH_AT) {
        status =
            flush(&e->rejects, e->io->write_rejects, e->io->rejects_ctx, &e->counts->bytes_rejects);
        if (status != DX_OK)
            clean_fail(e, status, "writing the rejects failed: %s", status_text(status));
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

    bytebuf_init(&names);
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
    bytebuf_finish(&names);
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
    int guard = !e->io->formulas_verbatim, guarded;

    if (cp1252 && bytebuf_reserve(&e->decoded, 3 * e->raw_len + 1) < 0)
        return -1;
    for (size_t i = 0; i < count; i++) {
        const char *s = e->raw + e->fields[i].off;
        size_t n = e->fields[i].len;

        if (cp1252) {
            n = encoding_cp1252_to_utf8(s, n, e->decoded.data);
            s = e->decoded.data;
        }
        /* Every original field is text as the client wrote it. */
        if (csvout_text_field(&e->rejects, s, n, 0, guard, &guarded) < 0)
            return -1;
        e->counts->cells_neutralised += (uint64_t)guarded;
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
/* The column a folded header key names: the client's aliases first, so
 * that a profile can also give a built-in spelling another meaning. */
static int column_of(const engine *e, const char *key)
{
    char alias[256];

    for (size_t a = 0; a < e->profile->alias_count; a++) {
        const profile_alias *pa = &e->profile->aliases[a];

        fold_key(pa->header, strlen(pa->header), alias, sizeof(alias));
        if (strcmp(alias, key) == 0)
            return (int)pa->column;
    }
    return vocab_column_of(key);
}

/* Appends s to out (of size len, used bytes at *used), truncated with "...". */
static void append(char *out, size_t len, size_t *used, const char *s, size_t n)
{
    if (*used + 4 >= len)
        return;
    if (*used + n + 4 >= len) {
        n = len - *used - 4;
        memcpy(out + *used, s, n);
        memcpy(out + *used + n, "...", 4);
        *used = len - 1;
        return;
    }
    memcpy(out + *used, s, n);
    *used += n;
    out[*used] = '\0';
}

/*
 * Fails the file naming every missing required column and the header as it
 * was found, so that one reading of the reason is enough to write the alias
 * that fixes it.
 */
static void fail_missing(engine *e, const int *missing, size_t nmissing)
{
    char names[128] = "", header[REASON_MAX] = "";
    size_t used = 0, hused = 0;

    for (size_t m = 0; m < nmissing; m++) {
        const char *name = vocab_column_name((vocab_column)missing[m]);

        append(names, sizeof(names), &used, ", ", m ? 2 : 0);
        append(names, sizeof(names), &used, name, strlen(name));
    }
    for (size_t i = 0; i < e->ncols; i++) {
        append(header, sizeof(header), &hused, ", ", i ? 2 : 0);
        append(header, sizeof(header), &hused, "\"", 1);
        append(header, sizeof(header), &hused, e->value[i].s, e->value[i].len);
        append(header, sizeof(header), &hused, "\"", 1);
    }
    clean_fail(e, DX_ERR_INVALID, "missing required column%s: %s (header found: %s)",
               nmissing > 1 ? "s" : "", names, header);
}

static void map_columns(engine *e)
{
    int missing[VOCAB_COLUMNS];
    size_t nmissing = 0;

    for (int c = 0; c < VOCAB_COLUMNS; c++)
        e->column_at[c] = -1;
    e->npass = 0;
    for (size_t i = 0; i < e->ncols; i++) {
        const text *cell = &e->value[i];
        char key[256];
        int column;

        fold_key(cell->s, cell->len, key, sizeof(key));
        column = column_of(e, key);
        if (column < 0) {
            e->pass[e->npass++] = i;
        } else if (e->column_at[column] >= 0) {
            clean_fail(e, DX_ERR_INVALID, "duplicate column: %s (columns %d and %zu)",
                       vocab_column_name((vocab_column)column), e->column_at[column] + 1, i + 1);
            return;
        } else {
            e->column_at[column] = (int)i;
            e->counts->columns_found |= 1u << column;
        }
    }
    for (int c = 0; c < VOCAB_COLUMNS; c++) {
        if (vocab_column_required((vocab_column)c) && e->column_at[c] < 0)
            missing[nmissing++] = c;
    }
    if (nmissing > 0)
        fail_missing(e, missing, nmissing);
}

static void process_header(engine *e)
{
    size_t n = e->nfields;
    int cp1252 = e->cp1252;

    if (e->row_over) {
        clean_fail(e, DX_ERR_INVALID, "header field too long: over 1 MiB");
        return;
    }
    /* Trailing delimiters leave empty cells that name nothing. */
    while (n > 0 && e->fields[n - 1].len == 0)
        n--;
    e->ncols = n;
    if (clean_text_decode(e, n, cp1252) < 0) {
        clean_fail(e, DX_ERR_NOMEM, "out of memory reading the header");
        return;
    }
    map_columns(e);
    if (e->status != DX_OK)
        return;
    if (write_clean_header(e) < 0 || write_rejects_header(e, cp1252) < 0) {
        clean_fail(e, DX_ERR_NOMEM, "out of memory writing the header");
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
    e->counts->rejected_by_reason[why]++;
    if (csvout_field(&e->rejects, line, len, 1) < 0 ||
        csvout_field(&e->rejects, reject_codes[why], strlen(reject_codes[why]), 0) < 0)
        goto nomem;
    if (with_fields && put_original(e, e->nfields, cp1252) < 0)
        goto nomem;
    if (csvout_end_row(&e->rejects) < 0)
        goto nomem;
    return;
nomem:
    clean_fail(e, DX_ERR_NOMEM, "out of memory writing the rejects");
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

/* Whether the formula guard looks at a cell: text from the client, not a
 * number or date the engine writes itself. */
typedef enum cell_kind { CELL_ENGINE, CELL_TEXT } cell_kind;

typedef struct cell {
    text value;
    letter_case change;
    cell_kind kind;
} cell;

/* Output bytes a field can take: itself and its separator, quoted with
 * every byte a doubled quote at worst, and the formula guard's "'". */
static size_t room_for(text t)
{
    return (t.plain ? t.len + 1 : CSVOUT_ENCODED_MAX(t.len) + 1) + 1;
}

/*
 * Writes a field and a ',' at w, which has room_for(t), and returns the end;
 * with guard, a formula gets its leading "'" and *guarded is counted.  The
 * case is changed after writing: quotes, commas and "'" have no case, so the
 * CSV framing is untouched.
 */
static char *emit(char *w, text t, letter_case change, int guard, unsigned *guarded)
{
    size_t n = t.len;

    if (guard && csvout_is_formula(t.s, t.len)) {
        n = csvout_encode_guarded(w, t.s, n);
        (*guarded)++;
    } else if (t.plain) {
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
    int guard = !e->io->formulas_verbatim;
    unsigned guarded = 0;
    char *w;

    *nomem = 0;
    for (int c = 0; c < VOCAB_COLUMNS; c++)
        v[c] = value_of(e, (vocab_column)c);
    if (v[VOCAB_ORDER_ID].len == 0)
        return REJECT_MISSING_ORDER_ID;
    if (v[VOCAB_ORDER_DATE].len == 0)
        return REJECT_MISSING_ORDER_DATE;
    if (csvdate_parse_order(v[VOCAB_ORDER_DATE].s, v[VOCAB_ORDER_DATE].len, e->profile->date_order,
                            &date) < 0)
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
    if (money_parse_with(v[VOCAB_UNIT_PRICE].s, v[VOCAB_UNIT_PRICE].len,
                         e->profile->decimal_separator, e->profile->thousands_separator, &cents,
                         &euro) < 0)
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
    } else if (currency.len == 0 && e->profile->default_currency[0] != '\0') {
        currency = (text){e->profile->default_currency, 3, 1};
        currency_case = CASE_KEEP;
    }
    status = v[VOCAB_STATUS];
    if (known != NULL) {
        status = (text){known, known_len, 1};
        status_case = CASE_KEEP;
    }

    /* The canonical columns in the order of vocab_column (the clean
     * header's), then total: positional, so that the count below ties them
     * to the enum. */
    const cell cells[] = {
        {v[VOCAB_ORDER_ID], CASE_KEEP, CELL_TEXT},
        {{date.date, 10, 1}, CASE_KEEP, CELL_ENGINE},
        {v[VOCAB_CUSTOMER_ID], CASE_KEEP, CELL_TEXT},
        {v[VOCAB_CUSTOMER_EMAIL], CASE_LOWER, CELL_TEXT},
        {v[VOCAB_PRODUCT_SKU], CASE_KEEP, CELL_TEXT},
        {v[VOCAB_PRODUCT_NAME], CASE_KEEP, CELL_TEXT},
        {integer_text(quantity, quantity_text), CASE_KEEP, CELL_ENGINE},
        {{price_text, money_format(cents, price_text), 1}, CASE_KEEP, CELL_ENGINE},
        {currency, currency_case, CELL_TEXT},
        {status, status_case, CELL_TEXT},
        {{date.time, date.time[0] ? 8 : 0, 1}, CASE_KEEP, CELL_ENGINE},
        {{total_text, money_format(total, total_text), 1}, CASE_KEEP, CELL_ENGINE},
    };
    size_t ncells = sizeof(cells) / sizeof(cells[0]);
    _Static_assert(sizeof(cells) / sizeof(cells[0]) == VOCAB_COLUMNS + 1,
                   "one cell per vocab_column, then total");

    /* One size check for the whole row, then plain stores. */
    for (size_t k = 0; k < ncells; k++)
        room += room_for(cells[k].value);
    for (size_t k = 0; k < e->npass; k++)
        room += room_for(e->value[e->pass[k]]);
    if (bytebuf_reserve(&e->out, room) < 0) {
        *nomem = 1;
        return REJECT_NONE;
    }
    w = e->out.data + e->out.len;
    for (size_t k = 0; k < ncells; k++)
        w = emit(w, cells[k].value, cells[k].change, guard && cells[k].kind == CELL_TEXT, &guarded);
    for (size_t k = 0; k < e->npass; k++)
        w = emit(w, e->value[e->pass[k]], CASE_KEEP, guard, &guarded);
    /* The separator after the last field ends the row instead. */
    w[-1] = '\n';
    e->out.len = (size_t)(w - e->out.data);
    e->pending_guarded[e->npending] = (uint16_t)guarded;
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
    if (clean_text_decode(e, n, e->cp1252) < 0) {
        clean_fail(e, DX_ERR_NOMEM, "out of memory cleaning line %llu",
                   (unsigned long long)e->record_line);
        return;
    }
    why = write_clean_row(e, &nomem);
    if (nomem) {
        clean_fail(e, DX_ERR_NOMEM, "out of memory writing line %llu",
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

/* Releasing a buffer that one huge row inflated keeps one bad row from
 * holding its memory for the rest of the file. */
void clean_trim_buffer(csvout *buf)
{
    if (buf->cap > KEEP_AT)
        bytebuf_finish(buf);
    buf->len = 0;
}

void clean_batch(engine *e, const batch *b)
{
    for (size_t i = 0; i < b->nrecords && e->status == DX_OK; i++) {
        const record *r = &b->records[i];

        e->raw = b->raw.data;
        e->fields = b->fields + r->first;
        e->shape = b->shapes + r->first;
        e->cp1252 = r->cp1252;
        e->counts->records_cp1252 += r->cp1252 != 0;
        e->nfields = r->nfields;
        e->nfields_seen = r->nfields_seen;
        e->raw_len = r->bytes;
        e->row_over = r->over;
        e->record_line = r->line;
        if (e->have_header)
            process_row(e);
        else
            process_header(e);
        clean_flush(e, 0);
        clean_trim_buffer(&e->decoded);
        clean_trim_buffer(&e->clean);
    }
    if (b->last && b->failure.status != DX_OK)
        clean_fail(e, b->failure.status, "%s", b->failure.reason);
}

/* The engine's own buffers (read blocks, parsed batches, output and pending
 * rows: about 3 MiB measured with a 10-column file) come out of
 * clean_io.memory_budget first; the duplicate set gets the rest. */
#define ENGINE_BUFFER_BYTES ((size_t)4 << 20)

/* The duplicate set's share of a cleaning budget (0: the default). */
static size_t dupset_budget(size_t memory_budget)
{
    if (memory_budget == 0)
        memory_budget = CLEAN_DEFAULT_BUDGET;
    return memory_budget > ENGINE_BUFFER_BYTES ? memory_budget - ENGINE_BUFFER_BYTES
                                               : DUPSET_MIN_BUDGET;
}

/* Allocates the engine's fixed buffers; returns 0 or -1. */
static int engine_init(engine *e)
{
    /* malloc(), not calloc(): each slot is written before it is read, and
     * zeroing them would touch (fault in) pages a small file never uses,
     * which is most of a one-row clean's start-up. */
    e->value = malloc(MAX_COLUMNS * sizeof(text));
    e->pass = malloc(MAX_COLUMNS * sizeof(size_t));
    e->seen = dupset_create(dupset_budget(e->io->memory_budget));
    e->pending_start = malloc(PENDING_MAX * sizeof(size_t));
    e->pending_key = malloc(PENDING_MAX * sizeof(dupset_key));
    e->pending_fresh = malloc(PENDING_MAX);
    e->pending_guarded = malloc(PENDING_MAX * sizeof(uint16_t));
    if (e->value == NULL || e->pass == NULL || e->seen == NULL || e->pending_start == NULL ||
        e->pending_key == NULL || e->pending_fresh == NULL || e->pending_guarded == NULL)
        return -1;
    return 0;
}

static void engine_finish(engine *e)
{
    free(e->value);
    free(e->pass);
    free(e->pending_start);
    free(e->pending_key);
    free(e->pending_fresh);
    free(e->pending_guarded);
    dupset_destroy(e->seen);
    bytebuf_finish(&e->decoded);
    bytebuf_finish(&e->clean);
    bytebuf_finish(&e->out);
    bytebuf_finish(&e->rejects);
}

dx_status clean_run(const clean_io *io, clean_counts *counts, char *reason, size_t reason_len)
{
    return clean_run_profile(io, NULL, counts, reason, reason_len);
}

dx_status clean_run_profile(const clean_io *io, const profile *client, clean_counts *counts,
                            char *reason, size_t reason_len)
{
    profile defaults;
    engine e;
    parser p;

    memset(&e, 0, sizeof(e));
    memset(&p, 0, sizeof(p));
    memset(counts, 0, sizeof(*counts));
    if (reason_len > 0)
        reason[0] = '\0';
    e.io = io;
    if (client == NULL) {
        profile_init(&defaults);
        client = &defaults;
    }
    e.profile = client;
    e.counts = counts;
    e.reason = reason;
    e.reason_len = reason_len;
    bytebuf_init(&e.decoded);
    bytebuf_init(&e.clean);
    bytebuf_init(&e.out);
    bytebuf_init(&e.rejects);
    if (engine_init(&e) < 0 || clean_pipeline_init(&p, &e) < 0)
        clean_fail(&e, DX_ERR_NOMEM, "out of memory starting the cleaner");
    else
        clean_pipeline_run(&e, &p);
    clean_pipeline_finish(&p);
    engine_finish(&e);
    return e.status;
}
