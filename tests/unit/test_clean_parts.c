/*
 * Table-driven tests of the cleaning engine's helper modules: csvdate, money,
 * fold, vocab, encoding, csvout and dupset, and of the field classification
 * of clean_text.c.  The engine as a whole is tested
 * in test_clean.c.
 */
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clean_private.h"
#include "csvdate.h"
#include "csvout.h"
#include "dupset.h"
#include "encoding.h"
#include "fold.h"
#include "money.h"
#include "testing.h"
#include "vocab.h"

static void test_dates(void)
{
    static const struct {
        const char *in, *date, *time; /* date NULL: refused */
    } cases[] = {
        {"2024-03-05", "2024-03-05", ""},
        {"2024-3-5", "2024-03-05", ""},
        {"2024/03/05", "2024-03-05", ""},
        {"2024.03.05", "2024-03-05", ""},
        {"05/03/2024", "2024-03-05", ""},
        {"5/3/2024", "2024-03-05", ""},
        {"05-03-2024", "2024-03-05", ""},
        {"05.03.2024", "2024-03-05", ""},
        {"05/03/2024 14:30", "2024-03-05", "14:30:00"},
        {"05/03/2024 9:05:07", "2024-03-05", "09:05:07"},
        {"05-03-2024 23:59:59", "2024-03-05", "23:59:59"},
        {"05.03.2024 00:00", "2024-03-05", "00:00:00"},
        {"2024-03-05 14:30", "2024-03-05", "14:30:00"},
        {"2024-03-05T14:30:00", "2024-03-05", "14:30:00"},
        {"2024-03-05T14:30:00Z", "2024-03-05", "14:30:00"},
        {"2024-03-05T14:30Z", "2024-03-05", "14:30:00"},
        {"2024-03-05T14:30:00.123Z", "2024-03-05", "14:30:00"},
        {"2024-03-05T00:30:00+01:00", "2024-03-05", "00:30:00"},
        {"2024-03-05T23:30:00-0500", "2024-03-05", "23:30:00"},
        {"2024-03-05T23:30:00+02", "2024-03-05", "23:30:00"},
        {"2024-03-05t10:00:00z", "2024-03-05", "10:00:00"},
        {"2024-02-29", "2024-02-29", ""},
        {"29/02/2000", "2000-02-29", ""},
        {"31/12/1999", "1999-12-31", ""},
        {"31/02/2024", NULL, NULL},
        {"29/02/2023", NULL, NULL},
        {"29/02/1900", NULL, NULL},
        {"2024-04-31", NULL, NULL},
        {"13/13/2024", NULL, NULL},
        {"00/01/2024", NULL, NULL},
        {"2024-00-10", NULL, NULL},
        {"05/03/24", NULL, NULL},
        {"2024-03-05T25:00:00", NULL, NULL},
        {"2024-03-05 12:60", NULL, NULL},
        {"2024-03-05 12:30:60", NULL, NULL},
        {"2024-03-05T12", NULL, NULL},
        {"05/03/2024T12:00", NULL, NULL},
        {"05/03/2024 12:00Z", NULL, NULL},
        {"2024-03-05T12:00:00+1", NULL, NULL},
        {"2024-03-05x", NULL, NULL},
        {"2024-03/05", NULL, NULL},
        {"20240-03-05", NULL, NULL},
        {"123/03/2024", NULL, NULL},
        {"05/03/20245", NULL, NULL},
        {"N/A", NULL, NULL},
        {"45352", NULL, NULL},
        {"", NULL, NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        csvdate d;
        int rc = csvdate_parse(cases[i].in, strlen(cases[i].in), &d);

        if (cases[i].date == NULL) {
            if (rc != -1)
                testing_fail(__FILE__, __LINE__, "date \"%s\" accepted", cases[i].in);
            testing_checks++;
            continue;
        }
        CHECK_EQ_INT(rc, 0);
        if (rc == 0) {
            CHECK_EQ_STR(d.date, cases[i].date);
            CHECK_EQ_STR(d.time, cases[i].time);
        }
    }

    char t[9];
    CHECK_EQ_INT(csvdate_parse_time("7:05", 4, t), 0);
    CHECK_EQ_STR(t, "07:05:00");
    CHECK_EQ_INT(csvdate_parse_time("07:05:09", 8, t), 0);
    CHECK_EQ_STR(t, "07:05:09");
    CHECK_EQ_INT(csvdate_parse_time("24:00", 5, t), -1);
    CHECK_EQ_INT(csvdate_parse_time("12h30", 5, t), -1);
}

static void test_money(void)
{
    static const struct {
        const char *in;
        long long cents; /* -1: refused */
        int euro;
    } cases[] = {
        {"12,50", 1250, 0},
        {"12.50", 1250, 0},
        {"12,5", 1250, 0},
        {"12.5", 1250, 0},
        {"12", 1200, 0},
        {"0", 0, 0},
        {"0,01", 1, 0},
        {"007,10", 710, 0},
        {"1 234,50", 123450, 0},
        {"1 234 567,89", 123456789, 0},
        {"1 234", 123400, 0},
        {"1.234,50", 123450, 0},
        {"1.234.567,89", 123456789, 0},
        {"1.234.567", 123456700, 0},
        {"1,234.50", 123450, 0},
        {"1,234,567.89", 123456789, 0},
        {"1'234.50", 123450, 0},
        {"€12.50", 1250, 1},
        {"€ 12.50", 1250, 1},
        {"12,50 €", 1250, 1},
        {"12,50€", 1250, 1},
        {"EUR 12.50", 1250, 1},
        {"12.50 EUR", 1250, 1},
        {"12.50eur", 1250, 1},
        {"eur12", 1200, 1},
        {"1 234,50 €", 123450, 1},
        {"92233720368547758.07", 9223372036854775807LL, 0},
        {"92233720368547758.08", -1, 0},
        {"1.234", -1, 0},
        {"1,234", -1, 0},
        {"12,345", -1, 0},
        {"12.505", -1, 0},
        {"12.", -1, 0},
        {",50", -1, 0},
        {"-5,00", -1, 0},
        {"+5", -1, 0},
        {"1 23,00", -1, 0},
        {"12 50", -1, 0},
        {"1.234.56", -1, 0},
        {"1.2.3,4", -1, 0},
        {"1,234,56", -1, 0},
        {"1.234 567,00", -1, 0},
        {"1 234'567", -1, 0},
        {"1.234,56.78", -1, 0},
        {"€", -1, 1},
        {"EUR", -1, 1},
        {"€12€", -1, 1},
        {"$12", -1, 0},
        {"N/A", -1, 0},
        {"gratuit", -1, 0},
        {"", -1, 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t cents = -1;
        int euro = -1;
        int rc = money_parse(cases[i].in, strlen(cases[i].in), &cents, &euro);

        if (cases[i].cents < 0) {
            if (rc != -1)
                testing_fail(__FILE__, __LINE__, "amount \"%s\" accepted as %lld", cases[i].in,
                             (long long)cents);
            testing_checks++;
            continue;
        }
        if (rc != 0 || cents != cases[i].cents || euro != cases[i].euro)
            testing_fail(__FILE__, __LINE__, "amount \"%s\": rc %d, %lld cents, euro %d",
                         cases[i].in, rc, (long long)cents, euro);
        testing_checks++;
    }

    static const struct {
        long long cents;
        const char *text;
    } formats[] = {
        {0, "0.00"},
        {5, "0.05"},
        {50, "0.50"},
        {1250, "12.50"},
        {123456789, "1234567.89"},
        {-1250, "-12.50"},
        {9223372036854775807LL, "92233720368547758.07"},
    };
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
        char buf[MONEY_FORMAT_MAX];
        size_t n = money_format(formats[i].cents, buf);
        CHECK_EQ_STR(buf, formats[i].text);
        CHECK_EQ_INT(n, strlen(formats[i].text));
    }
}

static void test_fold(void)
{
    static const struct {
        const char *in, *key;
    } keys[] = {
        {"Order ID", "order_id"},
        {" Quantité (u.) ", "quantite_u"},
        {"QUANTITÉ", "quantite"},
        {"Prix unitaire", "prix_unitaire"},
        {"N° commande", "n_commande"},
        {"Nº commande", "no_commande"},
        {"Réf. produit", "ref_produit"},
        {"Désignation", "designation"},
        {"E-mail", "e_mail"},
        {"__date__commande__", "date_commande"},
        {"Straße", "strasse"},
        {"Œuvre", "oeuvre"},
        {"Livrée", "livree"},
        {"EN COURS", "en_cours"},
        {"Заказ", ""},
        {"", ""},
        {"a\xC3", "a"}, /* a cut sequence folds as a separator */
    };
    char out[64];

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        fold_key(keys[i].in, strlen(keys[i].in), out, sizeof(out));
        CHECK_EQ_STR(out, keys[i].key);
    }
    CHECK_EQ_INT(fold_key("abcdef", 6, out, 4), 3);
    CHECK_EQ_STR(out, "abc");

    static const struct {
        const char *in, *lower;
    } lowers[] = {
        {"Bob@Example.COM", "bob@example.com"},
        {"ÉMILE.ÇA@ÀÉÎÕÜ.FR", "émile.ça@àéîõü.fr"},
        {"ŒUVRE ŠŽŸ", "œuvre šžÿ"},
        {"×÷ stays", "×÷ stays"},
        {"ABCDEFGHIJKLMNOPQRSTUVWXYZ@[`{", "abcdefghijklmnopqrstuvwxyz@[`{"},
        {"日本語 ABC", "日本語 abc"},
    };
    for (size_t i = 0; i < sizeof(lowers) / sizeof(lowers[0]); i++) {
        char buf[128];
        snprintf(buf, sizeof(buf), "%s", lowers[i].in);
        fold_lower(buf, strlen(buf));
        CHECK_EQ_STR(buf, lowers[i].lower);
    }
}

static void test_vocab(void)
{
    for (size_t i = 1; i < vocab_status_count(); i++)
        CHECK(strcmp(vocab_status_key(i - 1), vocab_status_key(i)) < 0);

    static const struct {
        const char *key;
        int column;
    } columns[] = {
        {"order_id", VOCAB_ORDER_ID},
        {"n_commande", VOCAB_ORDER_ID},
        {"order_date", VOCAB_ORDER_DATE},
        {"date_commande", VOCAB_ORDER_DATE},
        {"quantite", VOCAB_QUANTITY},
        {"qty", VOCAB_QUANTITY},
        {"prix_unitaire", VOCAB_UNIT_PRICE},
        {"unit_price", VOCAB_UNIT_PRICE},
        {"e_mail", VOCAB_CUSTOMER_EMAIL},
        {"heure", VOCAB_ORDER_TIME},
        {"commentaire", -1},
        {"", -1},
    };
    for (size_t i = 0; i < sizeof(columns) / sizeof(columns[0]); i++)
        CHECK_EQ_INT(vocab_column_of(columns[i].key), columns[i].column);
    for (int c = 0; c < VOCAB_COLUMNS; c++)
        CHECK_EQ_INT(vocab_column_of(vocab_column_name((vocab_column)c)), c);
    CHECK(vocab_column_required(VOCAB_UNIT_PRICE));
    CHECK(!vocab_column_required(VOCAB_STATUS));

    static const struct {
        const char *key, *status;
    } statuses[] = {
        {"livree", "delivered"},   {"livre", "delivered"},   {"delivered", "delivered"},
        {"en_cours", "pending"},   {"annulee", "cancelled"}, {"canceled", "cancelled"},
        {"expediee", "shipped"},   {"payee", "paid"},        {"remboursee", "refunded"},
        {"retournee", "returned"}, {"en_litige", NULL},      {"", NULL},
    };
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        const char *got = vocab_status_of(statuses[i].key);
        if (statuses[i].status == NULL)
            CHECK(got == NULL);
        else
            CHECK_EQ_STR(got, statuses[i].status);
    }
}

static void test_encoding(void)
{
    static const struct {
        const char *in;
        int valid;
    } cases[] = {
        {"plain ascii", 1},
        {"caf\xC3\xA9", 1},
        {"\xE2\x82\xAC 12", 1},
        {"\xF0\x9F\x98\x80", 1},
        {"caf\xE9", 0},          /* Windows-1252 é at the end */
        {"caf\xE9 ", 0},         /* Windows-1252 é */
        {"\xC3", 0},             /* cut at the end */
        {"ab\xE2\x82", 0},       /* cut at the end */
        {"\xC0\xAF", 0},         /* overlong */
        {"\xE0\x80\xAF", 0},     /* overlong */
        {"\xED\xA0\x80", 0},     /* surrogate */
        {"\xF4\x90\x80\x80", 0}, /* above U+10FFFF */
        {"\x80", 0},
        {"\xC3\xA9\xC3", 0},
        {"\xC3(", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = strlen(cases[i].in);
        CHECK_EQ_INT(encoding_utf8_valid(cases[i].in, n), cases[i].valid);
    }

    /* Every byte against glibc's iconv, for the 251 bytes it defines. */
    iconv_t cd = iconv_open("UTF-8", "WINDOWS-1252");
    CHECK(cd != (iconv_t)-1);
    for (int b = 0; b < 256 && cd != (iconv_t)-1; b++) {
        char in[1] = {(char)b}, ours[4], theirs[8];
        char *ip = in, *op = theirs;
        size_t il = 1, ol = sizeof(theirs);
        size_t n = encoding_cp1252_to_utf8(in, 1, ours);

        CHECK(encoding_utf8_valid(ours, n));
        if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1) {
            CHECK(b == 0x81 || b == 0x8D || b == 0x8F || b == 0x90 || b == 0x9D);
            CHECK_EQ_INT(n, 2); /* the C1 control of the same value */
            continue;
        }
        if (n != (size_t)(op - theirs) || memcmp(ours, theirs, n) != 0)
            testing_fail(__FILE__, __LINE__, "byte 0x%02X differs from iconv", b);
        testing_checks++;
    }
    if (cd != (iconv_t)-1)
        iconv_close(cd);
}

static void test_csvout(void)
{
    csvout out;

    bytebuf_init(&out);
    CHECK_EQ_INT(csvout_field(&out, "a", 1, 1), 0);
    CHECK_EQ_INT(csvout_field(&out, "b,c", 3, 0), 0);
    CHECK_EQ_INT(csvout_field(&out, "say \"hi\"", 8, 0), 0);
    CHECK_EQ_INT(csvout_field(&out, "two\nlines", 9, 0), 0);
    CHECK_EQ_INT(csvout_field(&out, "cr\r", 3, 0), 0);
    CHECK_EQ_INT(csvout_field(&out, "", 0, 0), 0);
    CHECK_EQ_INT(csvout_plain(&out, "plain", 5, 0), 0);
    CHECK_EQ_INT(csvout_end_row(&out), 0);
    CHECK_EQ_INT(csvout_raw(&out, "", 1), 0); /* a NUL, to read the buffer as a string */
    CHECK_EQ_STR(out.data, "a,\"b,c\",\"say \"\"hi\"\"\",\"two\nlines\",\"cr\r\",,plain\n");
    bytebuf_finish(&out);
    CHECK(out.data == NULL);

    /* Every length the short-copy paths handle. */
    char src[40], dst[40];
    for (size_t n = 0; n <= 32; n++) {
        for (size_t i = 0; i < sizeof(src); i++) {
            src[i] = (char)('a' + i % 26);
            dst[i] = '.';
        }
        csvout_copy(dst, src, n);
        CHECK(memcmp(dst, src, n) == 0);
        CHECK(dst[n] == '.');
    }
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t next_random(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_dupset(void)
{
    enum { N = 400000 };
    dupset_key *keys = malloc(N * sizeof(*keys));
    unsigned char *fresh = malloc(N);
    dupset *one = dupset_create(0), *many = dupset_create(0);
    size_t got_fresh = 0;

    CHECK(keys != NULL && fresh != NULL && one != NULL && many != NULL);
    if (keys == NULL || fresh == NULL || one == NULL || many == NULL)
        goto done;
    /* One key in eight repeats an earlier one (some within a batch), and the
     * all-zero key, which the set stores specially, appears too. */
    for (size_t i = 0; i < N; i++) {
        if (i > 0 && next_random() % 8 == 0) {
            keys[i] = keys[next_random() % i];
        } else {
            keys[i].high = next_random();
            keys[i].low = next_random();
        }
    }
    keys[N / 2].high = keys[N / 2].low = 0;
    keys[N / 2 + 1] = keys[N / 2];

    size_t individually = 0;
    for (size_t i = 0; i < N; i++) {
        int r = dupset_insert(one, keys[i]);
        CHECK(r == 0 || r == 1);
        individually += r == 1;
    }
    for (size_t at = 0; at < N; at += 997) {
        size_t n = N - at < 997 ? N - at : 997;
        CHECK_EQ_INT(dupset_insert_many(many, keys + at, n, fresh + at), 0);
    }
    for (size_t i = 0; i < N; i++)
        got_fresh += fresh[i];
    CHECK_EQ_INT(got_fresh, individually);
    CHECK_EQ_INT(dupset_count(one), individually);
    CHECK_EQ_INT(dupset_count(many), individually);
    /* Everything is found again, and unrelated keys are not. */
    for (size_t i = 0; i < N; i += 101)
        CHECK_EQ_INT(dupset_insert(many, keys[i]), 0);
    size_t false_hits = 0;
    for (size_t i = 0; i < 10000; i++) {
        dupset_key k = {next_random(), next_random()};
        false_hits += dupset_insert(one, k) == 0;
    }
    CHECK_EQ_INT(false_hits, 0);
    /* 16 bytes per key plus the directory and the fixed recent table. */
    CHECK(dupset_bytes(one) < 2 * 16 * (size_t)N + (5u << 20));
    CHECK_EQ_INT(dupset_count_spilled(one), 0);
done:
    dupset_destroy(one);
    dupset_destroy(many);
    dupset_destroy(NULL);
    free(keys);
    free(fresh);
}

/* The model the spilling set is checked against: every key inserted so far,
 * in a plain open-addressing table.  Keys are random, so the low bits do. */
typedef struct model {
    dupset_key *slot;
    unsigned char *used;
    size_t mask;
} model;

static int model_insert(model *m, dupset_key k)
{
    size_t i = (size_t)(k.low ^ (k.high >> 7)) & m->mask;

    while (m->used[i]) {
        if (m->slot[i].high == k.high && m->slot[i].low == k.low)
            return 0;
        i = (i + 1) & m->mask;
    }
    m->used[i] = 1;
    m->slot[i] = k;
    return 1;
}

/*
 * The set under a budget of 64 KiB: it spills every few thousand keys, and
 * every answer must still be the model's.  Repeats come from anywhere in
 * the past (most of them from keys long spilled) and from the batch itself,
 * and near-misses (same high half, or same filter bits) must stay distinct.
 */
static void test_dupset_spill(void)
{
    enum { N = 300000, BATCH = 509 };
    model m = {calloc(1 << 20, sizeof(dupset_key)), calloc(1 << 20, 1), (1 << 20) - 1};
    dupset_key *keys = malloc(N * sizeof(*keys));
    unsigned char *fresh = malloc(N);
    dupset *set = dupset_create(DUPSET_MIN_BUDGET);
    size_t wrong = 0, expected = 0;

    CHECK(m.slot != NULL && m.used != NULL && keys != NULL && fresh != NULL && set != NULL);
    if (m.slot == NULL || m.used == NULL || keys == NULL || fresh == NULL || set == NULL)
        goto done;
    for (size_t i = 0; i < N; i++) {
        uint64_t r = next_random();
        if (i > 0 && r % 5 == 0) {
            keys[i] = keys[next_random() % i];
        } else if (i > 0 && r % 5 == 1) {
            keys[i] = keys[next_random() % i];
            keys[i].low ^= (uint64_t)1 << 63; /* same high half, same filter bits */
        } else {
            keys[i].high = next_random();
            keys[i].low = next_random();
        }
    }
    for (size_t at = 0; at < N; at += BATCH) {
        size_t n = N - at < BATCH ? N - at : BATCH;
        CHECK_EQ_INT(dupset_insert_many(set, keys + at, n, fresh + at), 0);
    }
    for (size_t i = 0; i < N; i++) {
        int want = model_insert(&m, keys[i]);
        expected += (size_t)want;
        wrong += fresh[i] != want;
    }
    CHECK_EQ_INT(wrong, 0);
    CHECK_EQ_INT(dupset_count(set), expected);
    /* It did spill, and kept within its budget. */
    CHECK(dupset_count_spilled(set) > expected / 2);
    CHECK(dupset_bytes(set) <= DUPSET_MIN_BUDGET + 64 * 1024);
    /* Every key is found again, one at a time too. */
    for (size_t i = 0; i < N; i += 37)
        CHECK_EQ_INT(dupset_insert(set, keys[i]), 0);
done:
    dupset_destroy(set);
    free(m.slot);
    free(m.used);
    free(keys);
    free(fresh);
}

/* A spill that cannot be written fails the insert with a reason naming the
 * spill file, instead of losing keys. */
static void test_dupset_spill_fails(void)
{
    const char *saved = getenv("TMPDIR");
    char *old = saved ? strdup(saved) : NULL;
    dupset *set = dupset_create(DUPSET_MIN_BUDGET);
    int r = 1;

    setenv("TMPDIR", "/nonexistent/dx-test", 1);
    for (size_t i = 0; i < 100000 && r == 1; i++)
        r = dupset_insert(set, (dupset_key){next_random(), next_random()});
    CHECK_EQ_INT(r, -1);
    CHECK(strstr(dupset_error(set), "spill file") != NULL);
    CHECK(strstr(dupset_error(set), "/nonexistent/dx-test") != NULL);
    if (old != NULL)
        setenv("TMPDIR", old, 1);
    else
        unsetenv("TMPDIR");
    free(old);
    dupset_destroy(set);
}

/* What clean_text_copy_field() must say of a field, byte by byte. */
static unsigned reference_shape(const unsigned char *s, size_t n)
{
    unsigned high = 0, dirty = 0, quotes = 0, spaces = 0;

    for (size_t i = 0; i < n; i++) {
        high |= s[i] > 0x7F;
        spaces |= s[i] == 0xA0 ? SHAPE_NBSP_1252 : 0;
        spaces |=
            s[i] == 0xC2 || s[i] == 0xE2 || s[i] == 0xE3 || s[i] == 0xEF ? SHAPE_LEAD_UTF8 : 0;
        dirty |= s[i] < 0x20 || (s[i] == ' ' && (i == 0 || i == n - 1 || s[i - 1] == ' '));
        quotes |= s[i] == ',' || s[i] == '"';
    }
    if (dirty)
        return high ? SHAPE_HIGH | spaces : 0;
    return (high ? SHAPE_HIGH | spaces : 0) | SHAPE_CLEAN | (quotes ? 0 : SHAPE_PLAIN);
}

/* The word-at-a-time classification against the byte loop above, on fields
 * of every length up to past three chunks, made of the bytes that matter
 * (and their neighbours in value), at every alignment. */
static void test_copy_field(void)
{
    static const unsigned char alphabet[] = {' ',  'a',  ',',  '"',  '\t', 0x1F, 0x20,
                                             0x21, 0x7F, 0x80, 0xE9, '\n', '0',  0xFF,
                                             0xA0, 0xC2, 0xE2, 0xE3, 0xEF};
    unsigned char src[80], dst[80];
    unsigned seed = 12345, mismatches = 0, copies = 0;

    for (int round = 0; round < 200000; round++) {
        size_t n = (size_t)(round % 70), at = (size_t)(round / 70 % 8);

        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            /* Mostly letters, so that a lone space or quote is tested too. */
            src[at + i] = (seed >> 16) % 4 ? 'a' : alphabet[(seed >> 20) % sizeof(alphabet)];
        }
        memset(dst, 0xAA, sizeof(dst));
        unsigned got = clean_text_copy_field((char *)dst + at, (const char *)src + at, n);
        mismatches += got != reference_shape(src + at, n);
        copies += memcmp(dst + at, src + at, n) != 0 || (at > 0 && dst[at - 1] != 0xAA) ||
                  dst[at + n] != 0xAA;
    }
    CHECK_EQ_INT(mismatches, 0);
    CHECK_EQ_INT(copies, 0);
    /* The cases a chunked reader is likeliest to miss. */
    CHECK_EQ_INT(clean_text_copy_field((char *)dst, "aaaaaaaaaaaaaaa  bbbbbbbbbbbbbbb", 32), 0);
    CHECK_EQ_INT(clean_text_copy_field((char *)dst, "aaaaaaa  b", 10), 0);
    CHECK_EQ_INT(clean_text_copy_field((char *)dst, "aaaaaaaaaaaaaaaa ", 17), 0);
    CHECK_EQ_INT(clean_text_copy_field((char *)dst, "abc d", 5), SHAPE_CLEAN | SHAPE_PLAIN);
}

int main(void)
{
    test_dates();
    test_money();
    test_fold();
    test_vocab();
    test_encoding();
    test_csvout();
    test_dupset();
    test_dupset_spill();
    test_dupset_spill_fails();
    test_copy_field();
    return testing_finish("clean_parts");
}
