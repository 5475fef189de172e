/*
 * Tests of the cleaning engine as a whole: clean_run() fed from memory
 * through its callbacks.  Every table case runs with reads of 1, 7, 4096 and
 * 65536 bytes, which must all give the same bytes, so that no rule depends on
 * where a read ends.  Golden files live in ../data/clean (the test runs in
 * tests/unit).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "clean.h"
#include "testing.h"

#define OUT_HEADER                                                                                 \
    "order_id,order_date,customer_id,customer_email,product_sku,product_name,quantity,unit_price," \
    "currency,status,order_time,total"

/* ------------------------------------------------------------------ */
/* Memory callbacks                                                     */

typedef struct source {
    const char *data;
    size_t len;
    size_t pos;
    size_t chunk;
} source;

static dx_status read_source(void *ctx, void *buf, size_t cap, size_t *got)
{
    source *s = ctx;
    size_t n = s->len - s->pos;

    if (n > cap)
        n = cap;
    if (n > s->chunk)
        n = s->chunk;
    memcpy(buf, s->data + s->pos, n);
    s->pos += n;
    *got = n;
    return DX_OK;
}

typedef struct sink {
    char *data;
    size_t len;
    size_t cap;
    int calls;
} sink;

static dx_status write_sink(void *ctx, const void *buf, size_t len)
{
    sink *s = ctx;

    if (s->len + len + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 1024;
        while (cap < s->len + len + 1)
            cap *= 2;
        s->data = realloc(s->data, cap);
        if (s->data == NULL)
            abort();
        s->cap = cap;
    }
    memcpy(s->data + s->len, buf, len);
    s->len += len;
    s->data[s->len] = '\0';
    s->calls++;
    return DX_OK;
}

typedef struct result {
    dx_status status;
    clean_counts counts;
    char reason[256];
    sink out;
    sink rejects;
} result;

static void result_free(result *r)
{
    free(r->out.data);
    free(r->rejects.data);
    memset(r, 0, sizeof(*r));
}

/* Output text, "" when nothing was written. */
static const char *text_of(const sink *s)
{
    return s->data ? s->data : "";
}

/* The client profile the runs use: NULL (no profile) unless a test sets it. */
static const profile *current_profile;

static void run_with(const clean_io *io, result *r)
{
    r->status = current_profile != NULL ? clean_run_profile(io, current_profile, &r->counts,
                                                            r->reason, sizeof(r->reason))
                                        : clean_run(io, &r->counts, r->reason, sizeof(r->reason));
    if (r->status == DX_OK) {
        CHECK_EQ_INT(r->counts.rows_in,
                     r->counts.rows_out + r->counts.rows_rejected + r->counts.rows_duplicate);
        CHECK_EQ_INT(r->counts.bytes_out, r->out.len);
        CHECK_EQ_INT(r->counts.bytes_rejects, r->rejects.len);
        uint64_t by_reason = 0;
        for (size_t k = 0; k < CLEAN_REJECT_REASONS; k++)
            by_reason += r->counts.rejected_by_reason[k];
        CHECK_EQ_INT(by_reason, r->counts.rows_rejected);
        CHECK_EQ_INT(r->counts.rejected_by_reason[0], 0);
    }
}

/* Runs data read chunk bytes at a time with a memory budget (0: default). */
static void run_budget(const char *data, size_t len, size_t chunk, size_t budget, result *r)
{
    source src = {data, len, 0, chunk};

    memset(r, 0, sizeof(*r));
    clean_io io = {read_source, &src, write_sink, &r->out, write_sink, &r->rejects, 0, budget};
    run_with(&io, r);
    if (r->status == DX_OK)
        CHECK_EQ_INT(r->counts.bytes_in, len);
}

static void run_chunked(const char *data, size_t len, size_t chunk, result *r)
{
    run_budget(data, len, chunk, 0, r);
}

/* Runs data with every read size; all runs must agree; r gets the first. */
static void run_all(const char *data, size_t len, result *r)
{
    static const size_t chunks[] = {4096, 1, 7, 65536};

    run_chunked(data, len, chunks[0], r);
    for (size_t i = 1; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        result other;
        run_chunked(data, len, chunks[i], &other);
        if (other.status != r->status || strcmp(text_of(&other.out), text_of(&r->out)) != 0 ||
            strcmp(text_of(&other.rejects), text_of(&r->rejects)) != 0 ||
            memcmp(&other.counts, &r->counts, sizeof(other.counts)) != 0)
            testing_fail(__FILE__, __LINE__, "reads of %zu bytes differ from reads of %zu",
                         chunks[i], chunks[0]);
        testing_checks++;
        result_free(&other);
    }
}

static void run_text(const char *text, result *r)
{
    run_all(text, strlen(text), r);
}

/* ------------------------------------------------------------------ */
/* The formula guard (CSV_FORMULA_GUARD), clean and rejects               */

#define GUARD_HEADER                                                                               \
    "order_id;order_date;customer_id;customer_email;product_name;quantity;unit_price;"             \
    "currency;status;note\n"
#define GUARD_OUT_HEADER                                                                           \
    "order_id,order_date,customer_id,customer_email,product_sku,product_name,quantity,unit_price," \
    "currency,status,order_time,total,note\n"

typedef struct guard_case {
    const char *row;      /* one input row under GUARD_HEADER */
    const char *guarded;  /* the clean row, or the rejects row, guard on */
    const char *verbatim; /* the same, CSV_FORMULA_GUARD=0 */
    unsigned cells;       /* cells neutralised, guard on */
} guard_case;

static const guard_case guard_cases[] = {
    /* The examples of the issue, in text columns of every kind. */
    {"A1;05/03/2024;;;\"=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\";1;10;;;",
     "A1,2024-03-05,,,,\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",1,10.00,,,,10.00,",
     "A1,2024-03-05,,,,\"=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",1,10.00,,,,10.00,", 1},
    {"A1;05/03/2024;;;=cmd|' /C calc'!A0;1;10;;;",
     "A1,2024-03-05,,,,'=cmd|' /C calc'!A0,1,10.00,,,,10.00,",
     "A1,2024-03-05,,,,=cmd|' /C calc'!A0,1,10.00,,,,10.00,", 1},
    {"A1;05/03/2024;+1+2;;x;1;10;;;-2+3", "A1,2024-03-05,'+1+2,,,x,1,10.00,,,,10.00,'-2+3",
     "A1,2024-03-05,+1+2,,,x,1,10.00,,,,10.00,-2+3", 2},
    {"@SUM(A1);05/03/2024;;=A@B.C;x;1;10;-;=X;",
     "'@SUM(A1),2024-03-05,,'=a@b.c,,x,1,10.00,'-,'=x,,10.00,",
     "@SUM(A1),2024-03-05,,=a@b.c,,x,1,10.00,-,=x,,10.00,", 4},
    /* Trimming first: a TAB that made it text in Excel is gone. */
    {"A1;05/03/2024;;;\"\t=1+2\";1;10;;;", "A1,2024-03-05,,,,'=1+2,1,10.00,,,,10.00,",
     "A1,2024-03-05,,,,=1+2,1,10.00,,,,10.00,", 1},
    /* Not formulas: the character is not first. */
    {"A1;05/03/2024;a=b;x@y.z;1-2;1;10;;;a+b", "A1,2024-03-05,a=b,x@y.z,,1-2,1,10.00,,,,10.00,a+b",
     "A1,2024-03-05,a=b,x@y.z,,1-2,1,10.00,,,,10.00,a+b", 0},
    /* The rejects keep the fields as written: neutralised before and after
     * leading blanks, numbers included. */
    {"=A1;05/03/2024;;;\"\t=1\";-3;-1;;;\"  @x\"",
     "2,invalid_quantity,'=A1,05/03/2024,,,'\t=1,'-3,'-1,,,'  @x",
     "2,invalid_quantity,=A1,05/03/2024,,,\t=1,-3,-1,,,  @x", 5},
};

static void run_guard(const char *text, int verbatim, result *r)
{
    source src = {text, strlen(text), 0, 4096};

    memset(r, 0, sizeof(*r));
    clean_io io = {read_source, &src, write_sink, &r->out, write_sink, &r->rejects, verbatim, 0};
    run_with(&io, r);
}

static void test_formula_guard(void)
{
    for (size_t i = 0; i < sizeof(guard_cases) / sizeof(guard_cases[0]); i++) {
        const guard_case *c = &guard_cases[i];

        for (int verbatim = 0; verbatim <= 1; verbatim++) {
            char input[1024], expected[1024];
            const char *want = verbatim ? c->verbatim : c->guarded;
            const char *got;
            result r;

            snprintf(input, sizeof(input), "%s%s\n", GUARD_HEADER, c->row);
            run_guard(input, verbatim, &r);
            CHECK_EQ_INT(r.status, DX_OK);
            if (r.counts.rows_out == 1) {
                snprintf(expected, sizeof(expected), "%s%s\n", GUARD_OUT_HEADER, want);
                got = text_of(&r.out);
            } else {
                snprintf(expected, sizeof(expected), "%s\n", want);
                got = strchr(text_of(&r.rejects), '\n');
                got = got ? got + 1 : "";
            }
            if (strcmp(got, expected) != 0)
                testing_fail(__FILE__, __LINE__, "row \"%s\" (verbatim %d): got\n%s", c->row,
                             verbatim, got);
            testing_checks++;
            CHECK_EQ_INT(r.counts.cells_neutralised, verbatim ? 0 : c->cells);
            result_free(&r);
        }
    }
}

/* A header cell is text too (in the rejects; the clean header folds it),
 * and a duplicate row's cells are not counted. */
static void test_formula_guard_header(void)
{
    result r;

    run_guard("order_id,order_date,quantity,unit_price,=evil\n"
              "A1,05/03/2024,1,10,-x\nA1,05/03/2024,1,10,-x\nA2,05/03/2024,0,10,+y\n",
              0, &r);
    CHECK_EQ_INT(r.status, DX_OK);
    CHECK_EQ_STR(text_of(&r.rejects), "line,reason,order_id,order_date,quantity,unit_price,'=evil\n"
                                      "4,invalid_quantity,A2,05/03/2024,0,10,'+y\n");
    CHECK(strstr(text_of(&r.out), ",total,evil\nA1,2024-03-05,,,,,1,10.00,,,,10.00,'-x\n") != NULL);
    CHECK_EQ_INT(r.counts.rows_duplicate, 1);
    CHECK_EQ_INT(r.counts.cells_neutralised, 3);
    result_free(&r);
}

/* ------------------------------------------------------------------ */
/* Per-row rules, one row at a time                                     */

#define ROW_HEADER                                                                                 \
    "order_id;order_date;customer_email;product_name;quantity;unit_price;currency;status\n"

typedef struct row_case {
    const char *row;      /* one input row, ';' delimited, under ROW_HEADER */
    const char *clean;    /* the expected clean row, or NULL when rejected */
    const char *rejected; /* the expected reason when rejected */
} row_case;

static const row_case row_cases[] = {
    /* trimming and whitespace */
    {"A1;05/03/2024;;  Chaise   en\tbois  ;1;10;EUR;",
     "A1,2024-03-05,,,,Chaise en bois,1,10.00,EUR,,,10.00", NULL},
    {"A1;05/03/2024;;\"Chaise\n\n bois\";1;10;EUR;",
     "A1,2024-03-05,,,,Chaise bois,1,10.00,EUR,,,10.00", NULL},
    {"A1;05/03/2024;;\xC2\xA0Lampe\xE2\x80\xAF"
     "dor\xC3\xA9"
     "e\xC2\xA0;1;10;EUR;",
     "A1,2024-03-05,,,,Lampe dorée,1,10.00,EUR,,,10.00", NULL},
    {"  A1  ;05/03/2024;;\"  x  \";1;10;;", "A1,2024-03-05,,,,x,1,10.00,,,,10.00", NULL},
    {"A1;05/03/2024;;\"a, \"\"b\"\"\";1;10;;", "A1,2024-03-05,,,,\"a, \"\"b\"\"\",1,10.00,,,,10.00",
     NULL},
    /* email */
    {"A1;05/03/2024; Bob@Example.COM ;x;1;10;;",
     "A1,2024-03-05,,bob@example.com,,x,1,10.00,,,,10.00", NULL},
    {"A1;05/03/2024;\xC3\x89MILE@X.FR;x;1;10;;", "A1,2024-03-05,,émile@x.fr,,x,1,10.00,,,,10.00",
     NULL},
    /* dates and times */
    {"A1;2024-03-05;;x;1;10;;", "A1,2024-03-05,,,,x,1,10.00,,,,10.00", NULL},
    {"A1;05-03-2024;;x;1;10;;", "A1,2024-03-05,,,,x,1,10.00,,,,10.00", NULL},
    {"A1;05.03.2024;;x;1;10;;", "A1,2024-03-05,,,,x,1,10.00,,,,10.00", NULL},
    {"A1;05/03/2024 14:30;;x;1;10;;", "A1,2024-03-05,,,,x,1,10.00,,,14:30:00,10.00", NULL},
    {"A1;2024-03-05 14:30:15;;x;1;10;;", "A1,2024-03-05,,,,x,1,10.00,,,14:30:15,10.00", NULL},
    {"A1;2024-03-05T14:30:15Z;;x;1;10;;", "A1,2024-03-05,,,,x,1,10.00,,,14:30:15,10.00", NULL},
    {"A1;2024-03-05T00:30:00+01:00;;x;1;10;;", "A1,2024-03-05,,,,x,1,10.00,,,00:30:00,10.00", NULL},
    {"A1;29/02/2024;;x;1;10;;", "A1,2024-02-29,,,,x,1,10.00,,,,10.00", NULL},
    {"A1;31/02/2024;;x;1;10;;", NULL, "invalid_date"},
    {"A1;29/02/2023;;x;1;10;;", NULL, "invalid_date"},
    {"A1;15/13/2024;;x;1;10;;", NULL, "invalid_date"},
    {"A1;05/03/24;;x;1;10;;", NULL, "invalid_date"},
    {"A1;05/03/2024 25:00;;x;1;10;;", NULL, "invalid_date"},
    {"A1;N/A;;x;1;10;;", NULL, "invalid_date"},
    {"A1;  ;;x;1;10;;", NULL, "missing_order_date"},
    /* quantity */
    {"A1;05/03/2024;;x;007;10;;", "A1,2024-03-05,,,,x,7,10.00,,,,70.00", NULL},
    {"A1;05/03/2024;;x; 3 ;10;;", "A1,2024-03-05,,,,x,3,10.00,,,,30.00", NULL},
    {"A1;05/03/2024;;x;0;10;;", NULL, "invalid_quantity"},
    {"A1;05/03/2024;;x;-3;10;;", NULL, "invalid_quantity"},
    {"A1;05/03/2024;;x;1.5;10;;", NULL, "invalid_quantity"},
    {"A1;05/03/2024;;x;1,5;10;;", NULL, "invalid_quantity"},
    {"A1;05/03/2024;;x;deux;10;;", NULL, "invalid_quantity"},
    {"A1;05/03/2024;;x;99999999999999999999;10;;", NULL, "invalid_quantity"},
    {"A1;05/03/2024;;x;;10;;", NULL, "missing_quantity"},
    /* money: every accepted form, and exact totals */
    {"A1;05/03/2024;;x;1;12,50;;", "A1,2024-03-05,,,,x,1,12.50,,,,12.50", NULL},
    {"A1;05/03/2024;;x;1;12.50;;", "A1,2024-03-05,,,,x,1,12.50,,,,12.50", NULL},
    {"A1;05/03/2024;;x;1;1 234,50;;", "A1,2024-03-05,,,,x,1,1234.50,,,,1234.50", NULL},
    {"A1;05/03/2024;;x;1;1\xC2\xA0"
     "234,50;;",
     "A1,2024-03-05,,,,x,1,1234.50,,,,1234.50", NULL},
    {"A1;05/03/2024;;x;1;1\xE2\x80\xAF"
     "234,50;;",
     "A1,2024-03-05,,,,x,1,1234.50,,,,1234.50", NULL},
    {"A1;05/03/2024;;x;1;1.234,50;;", "A1,2024-03-05,,,,x,1,1234.50,,,,1234.50", NULL},
    {"A1;05/03/2024;;x;1;1,234.50;;", "A1,2024-03-05,,,,x,1,1234.50,,,,1234.50", NULL},
    {"A1;05/03/2024;;x;1;12,50 \xE2\x82\xAC;;", "A1,2024-03-05,,,,x,1,12.50,EUR,,,12.50", NULL},
    {"A1;05/03/2024;;x;1;\xE2\x82\xAC"
     "12.50;eur;",
     "A1,2024-03-05,,,,x,1,12.50,EUR,,,12.50", NULL},
    {"A1;05/03/2024;;x;1;EUR 12.50;Euros;", "A1,2024-03-05,,,,x,1,12.50,EUR,,,12.50", NULL},
    {"A1;05/03/2024;;x;1;12.50;usd;", "A1,2024-03-05,,,,x,1,12.50,USD,,,12.50", NULL},
    {"A1;05/03/2024;;x;3;0,10;;", "A1,2024-03-05,,,,x,3,0.10,,,,0.30", NULL},
    {"A1;05/03/2024;;x;7;19,99;;", "A1,2024-03-05,,,,x,7,19.99,,,,139.93", NULL},
    {"A1;05/03/2024;;x;1;0;;", "A1,2024-03-05,,,,x,1,0.00,,,,0.00", NULL},
    {"A1;05/03/2024;;x;1;1.234;;", NULL, "invalid_price"},
    {"A1;05/03/2024;;x;1;12,345;;", NULL, "invalid_price"},
    {"A1;05/03/2024;;x;1;-5,00;;", NULL, "invalid_price"},
    {"A1;05/03/2024;;x;1;12.505;;", NULL, "invalid_price"},
    {"A1;05/03/2024;;x;1;gratuit;;", NULL, "invalid_price"},
    {"A1;05/03/2024;;x;1;\"  \";;", NULL, "missing_unit_price"},
    {"A1;05/03/2024;;x;1;12 \xE2\x82\xAC;USD;", NULL, "currency_mismatch"},
    {"A1;05/03/2024;;x;9223372036854775807;1,00;;", NULL, "total_overflow"},
    /* status vocabulary */
    {"A1;05/03/2024;;x;1;1;;livrée", "A1,2024-03-05,,,,x,1,1.00,,delivered,,1.00", NULL},
    {"A1;05/03/2024;;x;1;1;;Livree", "A1,2024-03-05,,,,x,1,1.00,,delivered,,1.00", NULL},
    {"A1;05/03/2024;;x;1;1;;LIVRÉE", "A1,2024-03-05,,,,x,1,1.00,,delivered,,1.00", NULL},
    {"A1;05/03/2024;;x;1;1;; en  cours ", "A1,2024-03-05,,,,x,1,1.00,,pending,,1.00", NULL},
    {"A1;05/03/2024;;x;1;1;;annulée", "A1,2024-03-05,,,,x,1,1.00,,cancelled,,1.00", NULL},
    {"A1;05/03/2024;;x;1;1;;Expédiée", "A1,2024-03-05,,,,x,1,1.00,,shipped,,1.00", NULL},
    {"A1;05/03/2024;;x;1;1;;Canceled", "A1,2024-03-05,,,,x,1,1.00,,cancelled,,1.00", NULL},
    {"A1;05/03/2024;;x;1;1;;payée", "A1,2024-03-05,,,,x,1,1.00,,paid,,1.00", NULL},
    {"A1;05/03/2024;;x;1;1;;En Litige", "A1,2024-03-05,,,,x,1,1.00,,en litige,,1.00", NULL},
    {"A1;05/03/2024;;x;1;1;;ÉTRANGE", "A1,2024-03-05,,,,x,1,1.00,,étrange,,1.00", NULL},
    /* required values and field counts */
    {";05/03/2024;;x;1;1;;", NULL, "missing_order_id"},
    {"A1;05/03/2024;;x;1;1", NULL, "field_count"},
    {"A1;05/03/2024;;x;1;1;;;extra", NULL, "field_count"},
    {"A1;05/03/2024;;x;1;1;;;;;", "A1,2024-03-05,,,,x,1,1.00,,,,1.00", NULL},
    /* the first failing rule wins */
    {";31/02/2024;;x;0;abc;;", NULL, "missing_order_id"},
    {"A1;31/02/2024;;x;0;abc;;", NULL, "invalid_date"},
    {"A1;05/03/2024;;x;0;abc;;", NULL, "invalid_quantity"},
};

static void test_row_rules(void)
{
    for (size_t i = 0; i < sizeof(row_cases) / sizeof(row_cases[0]); i++) {
        const row_case *c = &row_cases[i];
        char input[1024], expected[1024];
        result r;

        snprintf(input, sizeof(input), "%s%s\n", ROW_HEADER, c->row);
        run_text(input, &r);
        CHECK_EQ_INT(r.status, DX_OK);
        CHECK_EQ_INT(r.counts.rows_in, 1);
        if (c->clean != NULL) {
            snprintf(expected, sizeof(expected), "%s\n%s\n", OUT_HEADER, c->clean);
            if (strcmp(text_of(&r.out), expected) != 0)
                testing_fail(__FILE__, __LINE__, "row \"%s\": got\n%s", c->row, text_of(&r.out));
            testing_checks++;
            CHECK_EQ_INT(r.counts.rows_out, 1);
        } else {
            snprintf(expected, sizeof(expected), "2,%s,", c->rejected);
            const char *second = strchr(text_of(&r.rejects), '\n');
            if (second == NULL || strncmp(second + 1, expected, strlen(expected)) != 0)
                testing_fail(__FILE__, __LINE__, "row \"%s\": expected %s, rejects\n%s", c->row,
                             c->rejected, text_of(&r.rejects));
            testing_checks++;
            CHECK_EQ_INT(r.counts.rows_rejected, 1);
            /* The per-reason count (FileReady.rejects_by_reason) names the
             * code written in the rejects file. */
            for (size_t k = 0; k < CLEAN_REJECT_REASONS; k++)
                CHECK_EQ_INT(r.counts.rejected_by_reason[k],
                             strcmp(clean_reject_code(k), c->rejected) == 0);
        }
        result_free(&r);
    }
}

/* ------------------------------------------------------------------ */
/* Whole files                                                          */

typedef struct file_case {
    const char *name;
    const char *input;
    const char *out;     /* expected clean output */
    const char *rejects; /* expected rejects */
} file_case;

static const file_case file_cases[] = {
    {"comma, LF", "order_id,order_date,quantity,unit_price\nA1,2024-03-05,2,\"12,50\"\n",
     OUT_HEADER "\nA1,2024-03-05,,,,,2,12.50,,,,25.00\n",
     "line,reason,order_id,order_date,quantity,unit_price\n"},
    {"semicolon, CRLF, no final line end",
     "order_id;order_date;quantity;unit_price\r\nA1;05/03/2024;2;12,50\r\nA2;06/03/2024;1;1",
     OUT_HEADER "\nA1,2024-03-05,,,,,2,12.50,,,,25.00\nA2,2024-03-06,,,,,1,1.00,,,,1.00\n",
     "line,reason,order_id,order_date,quantity,unit_price\n"},
    {"tab, CR only", "order_id\torder_date\tquantity\tunit_price\rA1\t05/03/2024\t2\t12,50\r",
     OUT_HEADER "\nA1,2024-03-05,,,,,2,12.50,,,,25.00\n",
     "line,reason,order_id,order_date,quantity,unit_price\n"},
    {"pipe, mixed line ends",
     "order_id|order_date|quantity|unit_price\r\nA1|05/03/2024|2|1\nA2|05/03/2024|x|1\rA3|05/03/"
     "2024|0|1\r\n",
     OUT_HEADER "\nA1,2024-03-05,,,,,2,1.00,,,,2.00\n",
     "line,reason,order_id,order_date,quantity,unit_price\n3,invalid_quantity,A2,05/03/2024,x,1\n"
     "4,invalid_quantity,A3,05/03/2024,0,1\n"},
    {"delimiter inside quotes in the header does not count",
     "\"order_id;x\",order_date,quantity,unit_price,order_id\nA1,05/03/2024,1,1,B1\n",
     OUT_HEADER ",order_id_x\nB1,2024-03-05,,,,,1,1.00,,,,1.00,A1\n",
     "line,reason,order_id;x,order_date,quantity,unit_price,order_id\n"},
    {"blank lines, blank rows, line numbers across embedded line breaks",
     "\n\norder_id;order_date;quantity;unit_price;note\r\n\r\n   \r\n;;;;\r\n"
     "A1;05/03/2024;1;1;\"two\r\nlines\"\r\nA2;05/03/2024;0;1;\"x\ny\nz\"\r\n\r\nA3;bad;1;1;\r\n",
     OUT_HEADER ",note\nA1,2024-03-05,,,,,1,1.00,,,,1.00,two lines\n",
     "line,reason,order_id,order_date,quantity,unit_price,note\n"
     "9,invalid_quantity,A2,05/03/2024,0,1,\"x\ny\nz\"\n13,invalid_date,A3,bad,1,1,\n"},
    {"trailing delimiters on header and rows",
     "order_id;order_date;quantity;unit_price;\nA1;05/03/2024;1;1;\nA2;05/03/2024;1;1;;;\nA3;05/03/"
     "2024;1\n",
     OUT_HEADER "\nA1,2024-03-05,,,,,1,1.00,,,,1.00\nA2,2024-03-05,,,,,1,1.00,,,,1.00\n",
     "line,reason,order_id,order_date,quantity,unit_price\n4,field_count,A3,05/03/2024,1\n"},
    {"header aliases in French, accents and spacing",
     "N° Commande;Date de commande;Code client;Courriel;Réf. produit;Désignation;QUANTITÉ;Prix "
     "unitaire;Devise;Statut;Heure\n"
     "C1;05/03/2024;K9;A@B.FR;S1;Lampe;2;3,50;€;Livrée;9:15\n",
     OUT_HEADER "\nC1,2024-03-05,K9,a@b.fr,S1,Lampe,2,3.50,EUR,delivered,09:15:00,7.00\n",
     "line,reason,N° Commande,Date de commande,Code client,Courriel,Réf. produit,Désignation,"
     "QUANTITÉ,Prix unitaire,Devise,Statut,Heure\n"},
    {"header aliases in English, any case",
     "ORDER ID,Order Date,Customer ID,Email,SKU,Product Name,Qty,Unit Price,Currency,Status\n"
     "C1,2024-03-05T10:00:00Z,K9,x@y.com,S1,Lamp,2,3.50,EUR,Shipped\n",
     OUT_HEADER "\nC1,2024-03-05,K9,x@y.com,S1,Lamp,2,3.50,EUR,shipped,10:00:00,7.00\n",
     "line,reason,ORDER ID,Order Date,Customer ID,Email,SKU,Product Name,Qty,Unit Price,Currency,"
     "Status\n"},
    {"time column used only when the date has none",
     "order_id,order_date,time,quantity,unit_price\nA1,05/03/2024 10:00,11:00,1,1\n"
     "A2,05/03/2024,11:00,1,1\nA3,05/03/2024,,1,1\nA4,05/03/2024,11h,1,1\n",
     OUT_HEADER
     "\nA1,2024-03-05,,,,,1,1.00,,,10:00:00,1.00\nA2,2024-03-05,,,,,1,1.00,,,11:00:00,1.00\n"
     "A3,2024-03-05,,,,,1,1.00,,,,1.00\n",
     "line,reason,order_id,order_date,time,quantity,unit_price\n5,invalid_time,A4,05/03/"
     "2024,11h,1,1\n"},
    {"pass-through columns: folded names, clashes, empty names",
     "order_id,order_date,quantity,unit_price,Total,Commentaire client,,total\n"
     "A1,05/03/2024,2,1,99,  très  bien ,x,y\n",
     OUT_HEADER ",total_2,commentaire_client,column_7,total_3\n"
                "A1,2024-03-05,,,,,2,1.00,,,,2.00,99,très bien,x,y\n",
     "line,reason,order_id,order_date,quantity,unit_price,Total,Commentaire client,,total\n"},
    {"exact duplicates after normalisation are dropped, order lines kept",
     "order_id;order_date;customer_email;product_sku;quantity;unit_price\n"
     "A1;05/03/2024;a@b.fr;S1;1;1\nA1;2024-03-05;  A@B.FR ;S1;1;1,00\nA1;05/03/2024;a@b.fr;S2;1;1\n"
     "A1;05/03/2024;a@b.fr;S1;2;1\nA1;05/03/2024;a@b.fr;S1;1;1\n",
     OUT_HEADER
     "\nA1,2024-03-05,,a@b.fr,S1,,1,1.00,,,,1.00\nA1,2024-03-05,,a@b.fr,S2,,1,1.00,,,,1.00\n"
     "A1,2024-03-05,,a@b.fr,S1,,2,1.00,,,,2.00\n",
     "line,reason,order_id,order_date,customer_email,product_sku,quantity,unit_price\n"},
    {"rejected rows are not duplicates of each other",
     "order_id,order_date,quantity,unit_price\nA1,bad,1,1\nA1,bad,1,1\n", OUT_HEADER "\n",
     "line,reason,order_id,order_date,quantity,unit_price\n2,invalid_date,A1,bad,1,1\n"
     "3,invalid_date,A1,bad,1,1\n"},
    {"byte order mark", "\xEF\xBB\xBForder_id,order_date,quantity,unit_price\nA1,05/03/2024,1,1\n",
     OUT_HEADER "\nA1,2024-03-05,,,,,1,1.00,,,,1.00\n",
     "line,reason,order_id,order_date,quantity,unit_price\n"},
    {"header only", "order_id;order_date;quantity;unit_price\r\n", OUT_HEADER "\n",
     "line,reason,order_id,order_date,quantity,unit_price\n"},
    {"header only, blank lines after", "order_id;order_date;quantity;unit_price\r\n\r\n;;;\r\n",
     OUT_HEADER "\n", "line,reason,order_id,order_date,quantity,unit_price\n"},
    {"stray quote inside an unquoted field is kept",
     "order_id,order_date,quantity,unit_price,note\nA1,05/03/2024,1,1,5\" screen\n",
     OUT_HEADER ",note\nA1,2024-03-05,,,,,1,1.00,,,,1.00,\"5\"\" screen\"\n",
     "line,reason,order_id,order_date,quantity,unit_price,note\n"},
    {"Windows-1252 file",
     "N\xB0 commande;Date;Quantit\xE9;Prix unitaire;D\xE9signation;Statut\r\n"
     "A1;05/03/2024;2;1\xA0"
     "234,50 \x80;Caf\xE9 cr\xE8me;Livr\xE9"
     "e\r\n",
     OUT_HEADER "\nA1,2024-03-05,,,,Café crème,2,1234.50,EUR,delivered,,2469.00\n",
     "line,reason,N° commande,Date,Quantité,Prix unitaire,Désignation,Statut\n"},
    {"UTF-8 file with one Windows-1252 row",
     "order_id;order_date;quantity;unit_price;name\n"
     "A1;05/03/2024;1;1;Caf\xC3\xA9\nA2;05/03/2024;1;1;Caf\xE9\nA3;05/03/2024;0;1;Cr\xE8me\n",
     OUT_HEADER
     ",name\nA1,2024-03-05,,,,,1,1.00,,,,1.00,Café\nA2,2024-03-05,,,,,1,1.00,,,,1.00,Café\n",
     "line,reason,order_id,order_date,quantity,unit_price,name\n4,invalid_quantity,A3,05/03/"
     "2024,0,1,"
     "Crème\n"},
};

static void test_files(void)
{
    for (size_t i = 0; i < sizeof(file_cases) / sizeof(file_cases[0]); i++) {
        const file_case *c = &file_cases[i];
        result r;

        run_text(c->input, &r);
        if (r.status != DX_OK)
            testing_fail(__FILE__, __LINE__, "%s: %s: %s", c->name, status_text(r.status),
                         r.reason);
        if (strcmp(text_of(&r.out), c->out) != 0)
            testing_fail(__FILE__, __LINE__, "%s: output\n%s", c->name, text_of(&r.out));
        if (strcmp(text_of(&r.rejects), c->rejects) != 0)
            testing_fail(__FILE__, __LINE__, "%s: rejects\n%s", c->name, text_of(&r.rejects));
        testing_checks += 3;
        result_free(&r);
    }
}

typedef struct unusable_case {
    const char *name;
    const char *input;
    size_t len; /* 0: strlen(input) */
    const char *reason;
} unusable_case;

static const unusable_case unusable_cases[] = {
    {"empty file", "", 0, "empty file"},
    {"only blanks", "  \r\n\n\t\n", 0, "empty file"},
    {"only a byte order mark", "\xEF\xBB\xBF", 0, "empty file"},
    {"only empty rows", ";;;\n;;;\n", 0, "empty file"},
    {"missing order_id", "date;quantity;unit_price\n05/03/2024;1;1\n", 0,
     "missing required column: order_id (header found: \"date\", \"quantity\", \"unit_price\")"},
    {"missing unit_price", "order_id;order_date;quantity;price_total\nA1;05/03/2024;1;1\n", 0,
     "missing required column: unit_price (header found: \"order_id\", \"order_date\", "
     "\"quantity\", \"price_total\")"},
    {"missing quantity, header only", "order_id,order_date,unit_price\n", 0,
     "missing required column: quantity (header found: \"order_id\", \"order_date\", "
     "\"unit_price\")"},
    {"missing three", "Réf;Prix unitaire TTC\nA1;1\n", 0,
     "missing required columns: order_id, order_date, quantity, unit_price (header found: "
     "\"Réf\", \"Prix unitaire TTC\")"},
    {"duplicate column", "order_id;Date;quantity;unit_price;Order Date\n", 0,
     "duplicate column: order_date (columns 2 and 5)"},
    {"UTF-16", "\xFF\xFEo\0r\0", 6, "unsupported encoding: UTF-16"},
    {"NUL byte", "order_id;order_date;quantity;unit_price\nA1;05/03/2024;1\0;1\n", 59,
     "binary input: NUL byte at offset 55"},
};

static void test_unusable(void)
{
    for (size_t i = 0; i < sizeof(unusable_cases) / sizeof(unusable_cases[0]); i++) {
        const unusable_case *c = &unusable_cases[i];
        result r;

        run_all(c->input, c->len ? c->len : strlen(c->input), &r);
        if (r.status != DX_ERR_INVALID || strcmp(r.reason, c->reason) != 0)
            testing_fail(__FILE__, __LINE__, "%s: %s: \"%s\"", c->name, status_text(r.status),
                         r.reason);
        testing_checks++;
        /* Nothing reaches the clean output of an unusable file. */
        CHECK_EQ_INT(r.out.calls, 0);
        result_free(&r);
    }
}

/* ------------------------------------------------------------------ */
/* Limits                                                               */

/* A file built in memory: header, then rows given by a callback. */
static char *build(size_t *len, const char *header, void (*row)(FILE *, size_t), size_t rows)
{
    char *data = NULL;
    FILE *f = open_memstream(&data, len);

    fputs(header, f);
    for (size_t i = 0; i < rows; i++)
        row(f, i);
    fclose(f);
    return data;
}

static void test_long_field(void)
{
    size_t big = 1024 * 1024 + 1, len;
    char *field = malloc(big + 1);
    char *data;
    result r;

    memset(field, 'x', big);
    field[big] = '\0';
    /* A field over 1 MiB rejects its row, and only its row. */
    if (asprintf(&data,
                 "order_id;order_date;quantity;unit_price;note\nA1;05/03/2024;1;1;\"%s\"\n"
                 "A2;05/03/2024;1;1;%s\nA3;05/03/2024;1;1;ok\n",
                 field, field) < 0)
        abort();
    len = strlen(data);
    run_chunked(data, len, 65536, &r);
    CHECK_EQ_INT(r.status, DX_OK);
    CHECK_EQ_INT(r.counts.rows_in, 3);
    CHECK_EQ_INT(r.counts.rows_out, 1);
    CHECK_EQ_INT(r.counts.rows_rejected, 2);
    CHECK_EQ_STR(text_of(&r.rejects),
                 "line,reason,order_id,order_date,quantity,unit_price,note\n2,field_too_long\n"
                 "3,field_too_long\n");
    CHECK_EQ_STR(text_of(&r.out), OUT_HEADER ",note\nA3,2024-03-05,,,,,1,1.00,,,,1.00,ok\n");
    result_free(&r);
    free(data);

    /* Exactly 1 MiB is still fine. */
    field[big - 1] = '\0';
    if (asprintf(&data, "order_id;order_date;quantity;unit_price;note\nA1;05/03/2024;1;1;%s\n",
                 field) < 0)
        abort();
    run_chunked(data, strlen(data), 4096, &r);
    CHECK_EQ_INT(r.counts.rows_out, 1);
    result_free(&r);
    free(data);

    /* Five fields of 900 KB make a row over 4 MiB. */
    field[900 * 1000] = '\0';
    if (asprintf(
            &data,
            "order_id;order_date;quantity;unit_price;a;b;c;d;e\nA1;05/03/2024;1;1;%s;%s;%s;%s;%s\n",
            field, field, field, field, field) < 0)
        abort();
    run_chunked(data, strlen(data), 65536, &r);
    CHECK_EQ_INT(r.counts.rows_rejected, 1);
    CHECK(strstr(text_of(&r.rejects), "\n2,row_too_long\n") != NULL);
    result_free(&r);
    free(data);

    /* In the header, a field that long makes the file unusable. */
    memset(field, 'x', big);
    if (asprintf(&data, "order_id;order_date;quantity;unit_price;%s\n", field) < 0)
        abort();
    run_chunked(data, strlen(data), 65536, &r);
    CHECK_EQ_INT(r.status, DX_ERR_INVALID);
    CHECK_EQ_STR(r.reason, "header field too long: over 1 MiB");
    result_free(&r);
    free(data);
    free(field);
}

static void wide_row(FILE *f, size_t i)
{
    fputs("A1;05/03/2024;1;1", f);
    for (size_t c = 4; c < 2000; c++)
        fputs(";v", f);
    fputc('\n', f);
}

static void test_many_columns(void)
{
    size_t len;
    char *header = malloc(10000 * 12 + 64), *data;
    size_t w = (size_t)sprintf(header, "order_id;order_date;quantity;unit_price");
    result r;

    for (size_t c = 4; c < 10000; c++)
        w += (size_t)sprintf(header + w, ";column %zu", c);
    header[w++] = '\n';
    header[w] = '\0';
    run_chunked(header, w, 65536, &r);
    CHECK_EQ_INT(r.status, DX_ERR_INVALID);
    CHECK_EQ_STR(r.reason, "too many columns: more than 1024");
    result_free(&r);

    /* A data row that wide is rejected, without its fields. */
    data = build(&len, "order_id;order_date;quantity;unit_price\n", wide_row, 2);
    run_chunked(data, len, 65536, &r);
    CHECK_EQ_INT(r.status, DX_OK);
    CHECK_EQ_INT(r.counts.rows_rejected, 2);
    CHECK_EQ_STR(
        text_of(&r.rejects),
        "line,reason,order_id,order_date,quantity,unit_price\n2,field_count\n3,field_count\n");
    result_free(&r);
    free(data);
    free(header);
}

/* 100 MB of one line with no line end, made up as it is read. */
typedef struct endless {
    size_t sent;
    size_t total;
    const char *head;
} endless;

static dx_status read_endless(void *ctx, void *buf, size_t cap, size_t *got)
{
    endless *e = ctx;
    size_t head = strlen(e->head), n = 0;
    char *out = buf;

    while (n < cap && e->sent < e->total) {
        out[n++] = e->sent < head ? e->head[e->sent] : 'z';
        e->sent++;
    }
    *got = n;
    return DX_OK;
}

static long max_rss_kb(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void test_endless_line(void)
{
    endless e = {0, 100u * 1000 * 1000,
                 "order_id;order_date;quantity;unit_price\nA1;05/03/2024;1;"};
    result r;
    long before = max_rss_kb();

    memset(&r, 0, sizeof(r));
    clean_io io = {read_endless, &e, write_sink, &r.out, write_sink, &r.rejects, 0, 0};
    run_with(&io, &r);
    CHECK_EQ_INT(r.status, DX_OK);
    CHECK_EQ_INT(r.counts.bytes_in, e.total);
    CHECK_EQ_INT(r.counts.rows_in, 1);
    CHECK_EQ_INT(r.counts.rows_rejected, 1);
    CHECK_EQ_STR(text_of(&r.rejects),
                 "line,reason,order_id,order_date,quantity,unit_price\n2,field_too_long\n");
    /* The line never sits in memory: a few MiB of buffers at most. */
    if (max_rss_kb() - before > 16 * 1024)
        testing_fail(__FILE__, __LINE__, "RSS grew by %ld KiB", max_rss_kb() - before);
    testing_checks++;
    result_free(&r);
}

/* ------------------------------------------------------------------ */
/* Counts on a generated file with known faults                         */

typedef struct expected {
    size_t rows_in, out, rejected, duplicate;
} expected;

static expected generated;

/* Row i: a valid order line, except for faults at fixed strides; a row
 * repeating the previous valid one in another spelling is a duplicate. */
static void faulty_row(FILE *f, size_t i)
{
    if (i % 97 == 0) {
        fputs(i % 2 ? "\r\n" : ";;;;;\r\n", f); /* blank: not a data row */
        return;
    }
    generated.rows_in++;
    if (i % 13 == 0) {
        generated.rejected++;
        fprintf(f, "C%zu;31/02/2024;x@y.fr;%zu;1;2,50\r\n", i, i % 50);
    } else if (i % 17 == 0) {
        generated.rejected++;
        fprintf(f, "C%zu;05/03/2024;x@y.fr;%zu;0;2,50\r\n", i, i % 50);
    } else if (i % 19 == 0) {
        generated.rejected++;
        fprintf(f, "C%zu;05/03/2024;x@y.fr;%zu;1;2.505\r\n", i, i % 50);
    } else if (i % 23 == 0) {
        generated.rejected++;
        fprintf(f, "C%zu;05/03/2024;x@y.fr\r\n", i);
    } else if (i % 11 == 0) {
        /* The same as row i - 1 once cleaned, if that one was valid. */
        size_t p = i - 1;
        int valid = p % 97 && p % 13 && p % 17 && p % 19 && p % 23;
        if (valid && p % 11 != 0) {
            generated.duplicate++;
            fprintf(f, " C%zu ;%04d-03-05;  X@Y.FR ;\"%zu\";%zu;2.50\r\n", p, 2024, p % 50,
                    p % 5 + 1);
        } else {
            generated.out++;
            fprintf(f, "C%zu;05/03/2024;x@y.fr;%zu;1;2,50\r\n", i, i % 50);
        }
    } else {
        generated.out++;
        fprintf(f, "C%zu;05/03/2024;x@y.fr;%zu;%zu;2,50\r\n", i, i % 50, i % 5 + 1);
    }
}

static void test_counts_add_up(void)
{
    size_t len;
    char *data;
    result r;

    memset(&generated, 0, sizeof(generated));
    data = build(&len, "order_id;order_date;email;sku;qty;prix\r\n", faulty_row, 50000);
    run_chunked(data, len, 65536, &r);
    CHECK_EQ_INT(r.status, DX_OK);
    CHECK_EQ_INT(r.counts.rows_in, generated.rows_in);
    CHECK_EQ_INT(r.counts.rows_out, generated.out);
    CHECK_EQ_INT(r.counts.rows_rejected, generated.rejected);
    CHECK_EQ_INT(r.counts.rows_duplicate, generated.duplicate);
    CHECK(generated.duplicate > 1000 && generated.rejected > 5000);
    result_free(&r);

    /* The same file read a byte at a time gives the same bytes. */
    result a, b;
    run_chunked(data, len, 4096, &a);
    run_chunked(data, len, 1, &b);
    CHECK(strcmp(text_of(&a.out), text_of(&b.out)) == 0);
    CHECK(strcmp(text_of(&a.rejects), text_of(&b.rejects)) == 0);
    result_free(&a);
    result_free(&b);
    free(data);
}

/* Row i of a file of 2 * SPILL_ROWS rows: SPILL_ROWS distinct rows, then
 * every third of them again in another spelling, in scattered order, so
 * that most duplicates repeat a row cleaned long before (spilled, under a
 * small budget); the other rows of the second half are new. */
enum { SPILL_ROWS = 20000 };

static void far_repeat_row(FILE *f, size_t i)
{
    size_t k = i < SPILL_ROWS ? i : (i - SPILL_ROWS) * 7919 % SPILL_ROWS;

    generated.rows_in++;
    if (i >= SPILL_ROWS && k % 3 == 0) {
        generated.duplicate++;
        fprintf(f, " C%zu ;2024-03-05;  X@Y.FR ;\"%zu\";1;2.50\r\n", k, k % 50);
    } else {
        generated.out++;
        fprintf(f, "C%zu%s;05/03/2024;x@y.fr;%zu;1;2,50\r\n", k, i < SPILL_ROWS ? "" : "b", k % 50);
    }
}

/* The duplicate set spilled to TMPDIR many times over (the smallest budget)
 * gives the very bytes and counts of the set held in memory. */
static void test_spilled_identical(void)
{
    size_t len;
    char *data;
    result small, big;

    memset(&generated, 0, sizeof(generated));
    data =
        build(&len, "order_id;order_date;email;sku;qty;prix\r\n", far_repeat_row, 2 * SPILL_ROWS);
    run_budget(data, len, 65536, 1, &small);
    run_budget(data, len, 65536, 0, &big);
    CHECK_EQ_INT(small.status, DX_OK);
    CHECK_EQ_INT(small.counts.rows_out, generated.out);
    CHECK_EQ_INT(small.counts.rows_duplicate, generated.duplicate);
    CHECK_EQ_INT(big.counts.rows_duplicate, generated.duplicate);
    CHECK(generated.duplicate > SPILL_ROWS / 4);
    CHECK(small.out.len == big.out.len && strcmp(text_of(&small.out), text_of(&big.out)) == 0);
    CHECK(strcmp(text_of(&small.rejects), text_of(&big.rejects)) == 0);
    result_free(&small);
    result_free(&big);
    free(data);
}

/* ------------------------------------------------------------------ */
/* Callback failures                                                    */

static dx_status read_failing(void *ctx, void *buf, size_t cap, size_t *got)
{
    *got = 0;
    return DX_ERR_IO;
}

static dx_status write_failing(void *ctx, const void *buf, size_t len)
{
    return DX_ERR_NO_SPACE;
}

static void test_callback_failures(void)
{
    const char *text = "order_id;order_date;quantity;unit_price\nA1;05/03/2024;1;1\n";
    source src = {text, strlen(text), 0, 4096};
    clean_counts counts;
    char reason[128];
    sink s = {0};

    clean_io bad_read = {read_failing, NULL, write_sink, &s, write_sink, &s, 0, 0};
    CHECK_EQ_INT(clean_run(&bad_read, &counts, reason, sizeof(reason)), DX_ERR_IO);
    CHECK(strstr(reason, "reading the input failed") != NULL);

    clean_io bad_write = {read_source, &src, write_failing, NULL, write_sink, &s, 0, 0};
    CHECK_EQ_INT(clean_run(&bad_write, &counts, reason, sizeof(reason)), DX_ERR_NO_SPACE);
    CHECK(strstr(reason, "writing the clean output failed") != NULL);

    /* A reason buffer of zero bytes is never written. */
    src.pos = 0;
    clean_io ok = {read_source, &src, write_sink, &s, write_sink, &s, 0, 0};
    CHECK_EQ_INT(clean_run(&ok, &counts, NULL, 0), DX_OK);
    free(s.data);
}

/* ------------------------------------------------------------------ */
/* Golden files                                                         */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    long size;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        data = malloc((size_t)size + 1);
        if (data != NULL && fread(data, 1, (size_t)size, f) == (size_t)size) {
            data[size] = '\0';
            *len = (size_t)size;
        } else {
            free(data);
            data = NULL;
        }
    }
    fclose(f);
    return data;
}

static void test_golden(void)
{
    static const char *const names[] = {"fr_excel_cp1252", "en_utf8_bom", "messy_mixed"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char path[256];
        size_t in_len = 0, out_len = 0, rej_len = 0;
        char *in, *out, *rejects;
        result r;

        snprintf(path, sizeof(path), "../data/clean/%s.csv", names[i]);
        in = slurp(path, &in_len);
        snprintf(path, sizeof(path), "../data/clean/%s.out.csv", names[i]);
        out = slurp(path, &out_len);
        snprintf(path, sizeof(path), "../data/clean/%s.rejects.csv", names[i]);
        rejects = slurp(path, &rej_len);
        if (in == NULL || out == NULL || rejects == NULL) {
            testing_fail(__FILE__, __LINE__, "golden files for %s missing", names[i]);
        } else {
            /* Under a profile, one read size: the read sizes were checked
             * without it, and the sanitizer build must stay in its time. */
            if (current_profile != NULL)
                run_chunked(in, in_len, 65536, &r);
            else
                run_all(in, in_len, &r);
            CHECK_EQ_INT(r.status, DX_OK);
            if (r.out.len != out_len || memcmp(text_of(&r.out), out, out_len) != 0)
                testing_fail(__FILE__, __LINE__, "%s: output differs from %s.out.csv", names[i],
                             names[i]);
            if (r.rejects.len != rej_len || memcmp(text_of(&r.rejects), rejects, rej_len) != 0)
                testing_fail(__FILE__, __LINE__, "%s: rejects differ from %s.rejects.csv", names[i],
                             names[i]);
            testing_checks += 2;
            result_free(&r);
        }
        free(in);
        free(out);
        free(rejects);
    }
}

/* ------------------------------------------------------------------ */
/* Client profiles                                                      */

typedef struct profile_case {
    const char *name;
    const char *profile; /* the JSON document */
    const char *input;   /* a whole file */
    const char *clean;   /* the expected first clean row, or NULL when rejected or unusable */
    const char *problem; /* the reject reason, or the start of the unusable file's reason */
} profile_case;

#define PROFILE_HEADER "order_id;order_date;quantity;unit_price;currency\n"

static const profile_case profile_cases[] = {
    {"no profile is the defaults", "{}", PROFILE_HEADER "A1;03/04/2026;1;2,50;\n",
     "A1,2026-04-03,,,,,1,2.50,,,,2.50", NULL},
    {"alias after folding", "{\"aliases\":{\"Prix unitaire TTC\":\"unit_price\"}}",
     "order_id;order_date;quantity;PRIX  UNITAIRE ttc\nA1;03/04/2026;2;1,25\n",
     "A1,2026-04-03,,,,,2,1.25,,,,2.50", NULL},
    {"without the alias the file is unusable", "{}",
     "order_id;order_date;quantity;Prix unitaire TTC\nA1;03/04/2026;2;1,25\n", NULL,
     "missing required column: unit_price (header found: \"order_id\", \"order_date\", "
     "\"quantity\", \"Prix unitaire TTC\")"},
    {"an alias beats the built-in vocabulary",
     "{\"aliases\":{\"date\":\"order_time\","
     "\"placed\":\"order_date\"}}",
     "order_id;placed;date;quantity;unit_price\nA1;03/04/2026;10:30;1;1\n",
     "A1,2026-04-03,,,,,1,1.00,,,10:30:00,1.00", NULL},
    {"MDY", "{\"date_order\":\"MDY\"}", PROFILE_HEADER "A1;03/04/2026;1;1;\n",
     "A1,2026-03-04,,,,,1,1.00,,,,1.00", NULL},
    {"MDY, a day over 12 in the middle", "{\"date_order\":\"MDY\"}",
     PROFILE_HEADER "A1;12/31/2026 08:05;1;1;\n", "A1,2026-12-31,,,,,1,1.00,,,08:05:00,1.00", NULL},
    {"MDY refuses a DMY date", "{\"date_order\":\"MDY\"}", PROFILE_HEADER "A1;31/12/2026;1;1;\n",
     NULL, "invalid_date"},
    {"MDY keeps ISO dates", "{\"date_order\":\"MDY\"}", PROFILE_HEADER "A1;2026-03-04;1;1;\n",
     "A1,2026-03-04,,,,,1,1.00,,,,1.00", NULL},
    {"YMD accepts year first", "{\"date_order\":\"YMD\"}", PROFILE_HEADER "A1;2026/03/04;1;1;\n",
     "A1,2026-03-04,,,,,1,1.00,,,,1.00", NULL},
    {"YMD refuses day first", "{\"date_order\":\"YMD\"}", PROFILE_HEADER "A1;03/04/2026;1;1;\n",
     NULL, "invalid_date"},
    {"comma decimal, dot thousands: 1.234 is a thousand",
     "{\"decimal_separator\":\",\",\"thousands_separator\":\".\"}",
     PROFILE_HEADER "A1;03/04/2026;1;1.234;\n", "A1,2026-04-03,,,,,1,1234.00,,,,1234.00", NULL},
    {"comma decimal, dot thousands: 1.234,5",
     "{\"decimal_separator\":\",\",\"thousands_separator\":\".\"}",
     PROFILE_HEADER "A1;03/04/2026;2;1.234,5;\n", "A1,2026-04-03,,,,,2,1234.50,,,,2469.00", NULL},
    {"comma decimal refuses a dot decimal",
     "{\"decimal_separator\":\",\",\"thousands_separator\":\".\"}",
     PROFILE_HEADER "A1;03/04/2026;1;12.50;\n", NULL, "invalid_price"},
    {"without the profile 1.234 is ambiguous", "{}", PROFILE_HEADER "A1;03/04/2026;1;1.234;\n",
     NULL, "invalid_price"},
    {"dot decimal, thousands auto", "{\"decimal_separator\":\".\"}",
     PROFILE_HEADER "A1;03/04/2026;1;1,234;\n", "A1,2026-04-03,,,,,1,1234.00,,,,1234.00", NULL},
    {"dot decimal refuses three decimals", "{\"decimal_separator\":\".\"}",
     PROFILE_HEADER "A1;03/04/2026;1;1.234;\n", NULL, "invalid_price"},
    {"no thousands separator", "{\"thousands_separator\":\"none\"}",
     PROFILE_HEADER "A1;03/04/2026;1;1 234;\n", NULL, "invalid_price"},
    {"no thousands separator, comma decimal", "{\"thousands_separator\":\"none\"}",
     PROFILE_HEADER "A1;03/04/2026;1;1234,5;\n", "A1,2026-04-03,,,,,1,1234.50,,,,1234.50", NULL},
    {"space thousands", "{\"thousands_separator\":\" \",\"decimal_separator\":\",\"}",
     PROFILE_HEADER "A1;03/04/2026;1;1 234,50 €;\n", "A1,2026-04-03,,,,,1,1234.50,EUR,,,1234.50",
     NULL},
    {"default currency fills an empty one", "{\"default_currency\":\"USD\"}",
     PROFILE_HEADER "A1;03/04/2026;1;1;\n", "A1,2026-04-03,,,,,1,1.00,USD,,,1.00", NULL},
    {"default currency leaves a given one", "{\"default_currency\":\"USD\"}",
     PROFILE_HEADER "A1;03/04/2026;1;1;gbp\n", "A1,2026-04-03,,,,,1,1.00,GBP,,,1.00", NULL},
    {"a euro sign beats the default currency", "{\"default_currency\":\"USD\"}",
     PROFILE_HEADER "A1;03/04/2026;1;1 €;\n", "A1,2026-04-03,,,,,1,1.00,EUR,,,1.00", NULL},
    {"default currency without a currency column", "{\"default_currency\":\"CAD\"}",
     "order_id;order_date;quantity;unit_price\nA1;03/04/2026;1;1\n",
     "A1,2026-04-03,,,,,1,1.00,CAD,,,1.00", NULL},
};

static void test_profiles(void)
{
    for (size_t i = 0; i < sizeof(profile_cases) / sizeof(profile_cases[0]); i++) {
        const profile_case *c = &profile_cases[i];
        char reason[256], want[1024];
        profile p;
        result r;

        if (profile_parse(&p, c->profile, strlen(c->profile), reason, sizeof(reason)) != DX_OK) {
            testing_fail(__FILE__, __LINE__, "%s: profile refused: %s", c->name, reason);
            continue;
        }
        /* One read size: the rules do not depend on it (checked above
         * without a profile), and the sanitizer build must stay in its time. */
        current_profile = &p;
        run_chunked(c->input, strlen(c->input), 4096, &r);
        current_profile = NULL;
        if (c->clean != NULL) {
            snprintf(want, sizeof(want), "%s\n%s\n", OUT_HEADER, c->clean);
            if (r.status != DX_OK || strcmp(text_of(&r.out), want) != 0)
                testing_fail(__FILE__, __LINE__, "%s: %s %s, got\n%s", c->name,
                             status_text(r.status), r.reason, text_of(&r.out));
        } else if (r.status != DX_OK) {
            if (strcmp(r.reason, c->problem) != 0)
                testing_fail(__FILE__, __LINE__, "%s: reason \"%s\"", c->name, r.reason);
        } else {
            const char *second = strchr(text_of(&r.rejects), '\n');

            snprintf(want, sizeof(want), "2,%s,", c->problem);
            if (second == NULL || strncmp(second + 1, want, strlen(want)) != 0)
                testing_fail(__FILE__, __LINE__, "%s: expected %s, rejects\n%s", c->name,
                             c->problem, text_of(&r.rejects));
        }
        testing_checks++;
        result_free(&r);
    }
}

int main(void)
{
    test_row_rules();
    test_files();
    test_unusable();
    test_long_field();
    test_many_columns();
    test_endless_line();
    test_counts_add_up();
    test_spilled_identical();
    test_callback_failures();
    test_golden();
    test_profiles();
    {
        /* A profile that changes nothing the engine does gives the golden
         * bytes too (daily-checker-only fields set). */
        static const char doc[] = "{\"enabled\":false,\"order_date_offset_days\":-1,"
                                  "\"done_marker\":\".ok\",\"expected_drop_time\":\"07:00\"}";
        char reason[256];
        profile p;

        CHECK_EQ_INT(profile_parse(&p, doc, strlen(doc), reason, sizeof(reason)), DX_OK);
        CHECK(profile_engine_default(&p));
        current_profile = &p;
        test_golden();
        current_profile = NULL;
    }
    test_formula_guard();
    test_formula_guard_header();
    return testing_finish("clean");
}
