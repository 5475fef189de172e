/*
 * The cleaning engine's pipeline (see clean_private.h): reading the input,
 * feeding libcsv and its callbacks, which hand batches of records to the
 * rules of clean.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clean_private.h"
#include "encoding.h"

static void set_failure(failure *f, dx_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records f's first failure: later ones are consequences of it. */
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

/*
 * One thread does everything, the caller's: it reads a block, feeds it to
 * libcsv, and cleans the parsed records each time their batch is full.
 * Parsing once ran on a second thread, which halved the wall time of one
 * big file but cost more CPU time than it saved: every hand-over between the
 * threads was a futex wake-up and a context switch, and the records crossed
 * from one core's cache to the other's.  A worker cleaning several drops at
 * once, on a machine whose other cores are busy, only has CPU time to spend.
 * Failures keep their input order: a failure found while reading (a NUL
 * byte, a read error) ends the input after the blocks before it, and one
 * found by the parser comes after the records before it.
 */

static void reset_batch(batch *b)
{
    b->raw.len = 0;
    b->nfields = 0;
    b->nrecords = 0;
    b->last = 0;
    b->failure.status = DX_OK;
}

/* Cleans the batch and empties it for the next records; once the engine
 * has failed, parsing stops. */
static void hand_over(parser *p)
{
    clean_batch(p->engine, p->batch);
    clean_trim_buffer(&p->batch->raw);
    reset_batch(p->batch);
    if (p->engine->status != DX_OK)
        set_failure(&p->failure, DX_ERR_IO, "stopped");
}

/* ------------------------------------------------------------------ */
/* Parser: libcsv callbacks and feeding                                 */

/* 1 when every field of the record is empty: a spreadsheet's ";;;;" row. */
static int record_is_blank(const parser *p)
{
    const batch *b = p->batch;

    return !p->row_over && p->nfields_seen <= b->nfields - p->record_first && !p->record_content;
}

static void on_field(void *s, size_t len, void *data)
{
    parser *p = data;
    batch *b = p->batch;
    span *field;
    unsigned shape;

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
    if (bytebuf_reserve(&b->raw, len + 1) < 0) {
        set_failure(&p->failure, DX_ERR_NOMEM, "out of memory reading line %llu",
                    (unsigned long long)p->record_line);
        return;
    }
    field = &b->fields[b->nfields++];
    field->off = (uint32_t)b->raw.len;
    field->len = (uint32_t)len;
    shape = clean_text_copy_field(b->raw.data + b->raw.len, s, len);
    b->shapes[b->nfields - 1] = (unsigned char)shape;
    /* What on_row() needs to know of the record, found while the field is
     * at hand rather than in a second pass over the record. */
    p->record_content |= len > 0;
    if ((shape & SHAPE_HIGH) && !p->record_cp1252 &&
        !encoding_utf8_valid(b->raw.data + b->raw.len, len))
        p->record_cp1252 = 1;
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
            .cp1252 = p->record_cp1252,
        };
        p->have_header = 1;
    }
    p->nfields_seen = 0;
    p->record_content = 0;
    p->record_cp1252 = 0;
    p->field_over = 0;
    p->row_over = REJECT_NONE;
    p->record_begun = 0;
    if (batch_full(b))
        hand_over(p);
    p->record_first = b->nfields;
    p->record_raw = b->raw.len;
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
 * Parses the blocks from the first one on, cleaning batches as they fill,
 * until the last block or a failure; then cleans the last batch with why
 * parsing stopped (DX_OK at the end of the input).
 */
static void parse_all(engine *e, parser *p)
{
    block *b = p->block;

    for (;;) {
        feed(p, b->data + b->start, b->len - b->start);
        if (b->last && p->failure.status == DX_OK) {
            if (b->failure.status != DX_OK)
                p->failure = b->failure;
            else
                csv_fini(&p->csv, on_field, on_row, p);
        }
        if (b->last || p->failure.status != DX_OK)
            break;
        fill_block(e, b);
    }
    p->batch->last = 1;
    p->batch->failure = p->failure;
    clean_batch(e, p->batch);
}

void clean_pipeline_run(engine *e, parser *p)
{
    block *first = p->block;

    /* The first block holds the header line, whose delimiter is needed
     * before parsing starts. */
    read_into(e, first);
    if (first->failure.status != DX_OK) {
        clean_fail(e, first->failure.status, "%s", first->failure.reason);
        return;
    }
    if (first->len >= 2 && ((first->data[0] == '\xFF' && first->data[1] == '\xFE') ||
                            (first->data[0] == '\xFE' && first->data[1] == '\xFF'))) {
        clean_fail(e, DX_ERR_INVALID, "unsupported encoding: UTF-16");
        return;
    }
    check_binary(first->data, first->len, 0, &first->failure);
    if (first->failure.status != DX_OK) {
        clean_fail(e, first->failure.status, "%s", first->failure.reason);
        return;
    }
    if (first->len >= 3 && memcmp(first->data, "\xEF\xBB\xBF", 3) == 0)
        first->start = 3;
    p->delimiter = detect_delimiter(first->data + first->start, first->len - first->start);
    e->counts->delimiter = (char)p->delimiter;
    e->counts->utf8_bom = first->start == 3;
    csv_set_delim(&p->csv, p->delimiter);
    parse_all(e, p);
    if (e->status != DX_OK)
        return;
    if (!e->have_header)
        clean_fail(e, DX_ERR_INVALID, "empty file");
    clean_flush(e, 1);
}

int clean_pipeline_init(parser *p, engine *e)
{
    p->engine = e;
    p->block = malloc(sizeof(block));
    p->batch = calloc(1, sizeof(batch));
    if (p->block == NULL || p->batch == NULL)
        return -1;
    bytebuf_init(&p->batch->raw);
    /* Not zeroed: slots are written before they are read (see engine_init()
     * in clean.c for why that matters). */
    p->batch->fields = malloc(BATCH_FIELDS * sizeof(span));
    p->batch->shapes = malloc(BATCH_FIELDS);
    p->batch->records = malloc(BATCH_RECORDS * sizeof(record));
    if (p->batch->fields == NULL || p->batch->shapes == NULL || p->batch->records == NULL)
        return -1;
    p->line = 1;
    if (csv_init(&p->csv, 0) != 0)
        return -1;
    p->csv_ready = 1;
    csv_set_blk_size(&p->csv, PARSER_STEP);
    return 0;
}

void clean_pipeline_finish(parser *p)
{
    if (p->csv_ready)
        csv_free(&p->csv);
    if (p->batch != NULL) {
        bytebuf_finish(&p->batch->raw);
        free(p->batch->fields);
        free(p->batch->shapes);
        free(p->batch->records);
    }
    free(p->batch);
    free(p->block);
}
