/*
 * Field text for the cleaning engine (see clean_private.h): fields are
 * classified eight bytes at a time as they are copied out of libcsv, and
 * only those that need it are trimmed, collapsed and transcoded.
 */
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "clean_private.h"
#include "encoding.h"

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

#if defined(__SSE2__)

/* Bit i set when byte i of v has the property. */
typedef struct lanes {
    unsigned high;    /* over 0x7F */
    unsigned control; /* under 0x20 */
    unsigned space;
    unsigned quote; /* ',' or '"' */
} lanes;

static inline lanes classify16(__m128i v)
{
    lanes m;

    m.high = (unsigned)_mm_movemask_epi8(v);
    m.control =
        (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1F)), v));
    m.space = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(' ')));
    m.quote = (unsigned)_mm_movemask_epi8(
        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(',')), _mm_cmpeq_epi8(v, _mm_set1_epi8('"'))));
    return m;
}

/* SHAPE_NBSP_1252 and SHAPE_LEAD_UTF8 of the bytes of v. */
static inline unsigned high_spaces16(__m128i v)
{
    __m128i lead = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8((char)0xC2)),
                                             _mm_cmpeq_epi8(v, _mm_set1_epi8((char)0xE2))),
                                _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8((char)0xE3)),
                                             _mm_cmpeq_epi8(v, _mm_set1_epi8((char)0xEF))));

    return (_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8((char)0xA0))) ? SHAPE_NBSP_1252 : 0) |
           (_mm_movemask_epi8(lead) ? SHAPE_LEAD_UTF8 : 0);
}

/* The SHAPE_* bits of a field: high, control and quote are "some byte is
 * one", spaced "a space leads, trails or follows another". */
static inline unsigned shape_of(unsigned high, unsigned control, int spaced, unsigned quote)
{
    unsigned shape = high ? SHAPE_HIGH : 0;

    if (control || spaced)
        return shape;
    return shape | SHAPE_CLEAN | (quote ? 0 : SHAPE_PLAIN);
}

/* spaced for a field of n bytes (1 to 16) whose spaces are bit i of space. */
static inline int spaced_of(unsigned space, size_t n)
{
    return (space & (space >> 1)) || (space & 1) || ((space >> (n - 1)) & 1);
}

/* The n bits of a field of n (h to 2h) bytes from the lanes of its first h
 * bytes (lanes 0..h-1) and its last h bytes (lanes 8..8+h-1), which
 * overlap when n < 2h. */
static inline unsigned join_halves(unsigned m, size_t n, unsigned h)
{
    unsigned half = (1u << h) - 1;

    return (m & half) | (((m >> 8) & half) << (n - h));
}

/* The SHAPE_* bits of a field of n bytes (under sixteen) loaded into v:
 * the lanes in valid are its bytes, as two halves of h bytes (see
 * join_halves()) or, when h is 0, in field order. */
static inline unsigned short_shape(__m128i v, unsigned valid, size_t n, unsigned h)
{
    lanes m = classify16(v);
    unsigned space = h ? join_halves(m.space, n, h) : m.space & valid;
    unsigned high = m.high & valid;

    return shape_of(high, m.control & valid, spaced_of(space, n), m.quote & valid) |
           (high ? high_spaces16(v) : 0);
}

/* Copies a field of n bytes (h to 2h - 1, h being 4 or 8) to dst as two
 * overlapping halves of h bytes, and returns its SHAPE_* bits.  With h = 4
 * lanes 4..7 and 12..15 hold zero bytes, not of the field. */
static inline unsigned halves_shape(const unsigned char *s, char *dst, size_t n, unsigned h)
{
    uint64_t head = 0, tail = 0;

    memcpy(&head, s, h);
    memcpy(&tail, s + n - h, h);
    memcpy(dst, &head, h);
    memcpy(dst + n - h, &tail, h);
    return short_shape(_mm_set_epi64x((long long)tail, (long long)head), h == 8 ? 0xFFFF : 0x0F0F,
                       n, h);
}

/* What the sixteen-byte chunks of a long field have shown so far. */
typedef struct chunks {
    unsigned high, control, quote; /* some byte is one */
    unsigned doubled;              /* two spaces in a row inside a chunk */
    unsigned spaces;               /* SHAPE_NBSP_1252 and SHAPE_LEAD_UTF8 */
} chunks;

/* Copies the sixteen bytes at s to dst and adds them to c. */
static inline void add_chunk(chunks *c, const unsigned char *s, char *dst)
{
    __m128i v = _mm_loadu_si128((const __m128i *)s);
    lanes m = classify16(v);

    _mm_storeu_si128((__m128i *)dst, v);
    c->high |= m.high;
    c->control |= m.control;
    c->doubled |= m.space & (m.space >> 1);
    c->quote |= m.quote;
    if (m.high)
        c->spaces |= high_spaces16(v);
}

/*
 * Copies a field to dst and classifies it on the way (SHAPE_*), sixteen
 * bytes at a time where cleaning goes one by one: most fields of real files
 * are clean, and then the raw bytes (transcoded for Windows-1252) are the
 * value.  The copy's loads serve the classification, so the field is read
 * once, and never past its end: a field shorter than sixteen bytes is
 * loaded as two overlapping halves, whose lanes are then put back in field
 * order.  A longer one goes in sixteen-byte chunks, the last one
 * overlapping the one before; a byte seen twice changes nothing, and the
 * space pairs across chunks are checked apart.
 */
unsigned clean_text_copy_field(char *dst, const char *src, size_t n)
{
    const unsigned char *s = (const unsigned char *)src;

    if (n >= 16) {
        chunks c = {0, 0, 0, 0, 0};
        size_t i;

        for (i = 0; i + 16 <= n; i += 16) {
            add_chunk(&c, s + i, dst + i);
            if (i > 0 && s[i] == ' ' && s[i - 1] == ' ')
                c.doubled = 1;
        }
        if (i < n)
            add_chunk(&c, s + n - 16, dst + n - 16);
        return shape_of(c.high, c.control, c.doubled || s[0] == ' ' || s[n - 1] == ' ', c.quote) |
               c.spaces;
    }
    if (n >= 8)
        return halves_shape(s, dst, n, 8);
    if (n >= 4)
        return halves_shape(s, dst, n, 4);
    if (n > 0) {
        uint32_t word = 0;

        for (size_t i = 0; i < n; i++) {
            dst[i] = src[i];
            word |= (uint32_t)s[i] << (8 * i);
        }
        return short_shape(_mm_cvtsi32_si128((int)word), (1u << n) - 1, n, 0);
    }
    return SHAPE_CLEAN | SHAPE_PLAIN;
}

#else

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

/* What clean_text_copy_field() gathers from the words of a field: the high bit of a
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

/* SHAPE_NBSP_1252 and SHAPE_LEAD_UTF8 of s[0..n). */
static unsigned high_spaces(const unsigned char *s, size_t n)
{
    unsigned bits = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == 0xA0)
            bits |= SHAPE_NBSP_1252;
        else if (s[i] == 0xC2 || s[i] == 0xE2 || s[i] == 0xE3 || s[i] == 0xEF)
            bits |= SHAPE_LEAD_UTF8;
    }
    return bits;
}

/*
 * Copies a field to dst and classifies it on the way (SHAPE_*), eight bytes
 * at a time where cleaning goes one by one: most fields of real files are
 * clean, and then the raw bytes (transcoded for Windows-1252) are the value.
 * The copy's loads serve the classification, so the field is read once.
 * Words overlap at the end of the field rather than read past it; a byte
 * seen twice changes nothing, and pairs across words are checked apart.
 */
unsigned clean_text_copy_field(char *dst, const char *src, size_t n)
{
    const unsigned char *s = (const unsigned char *)src;
    shape_bits b = {0, 0, 0, 0};
    unsigned spaces = 0;
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
    if (b.high & HIGHS)
        spaces = high_spaces(s, n);
    if ((b.control | b.doubled) & HIGHS || s[0] == ' ' || s[n - 1] == ' ')
        return (b.high & HIGHS) ? SHAPE_HIGH | spaces : 0;
    return ((b.high & HIGHS) ? SHAPE_HIGH : 0) | SHAPE_CLEAN |
           ((b.quotes & HIGHS) ? 0 : SHAPE_PLAIN) | spaces;
}

#endif

/*
 * Sets value[0..count) to the record's fields cleaned: clean fields point
 * into the raw record, the others are transcoded from Windows-1252 when
 * cp1252, trimmed and collapsed into the clean buffer.  Returns 0, or -1
 * when memory is short.
 */
int clean_text_decode(engine *e, size_t count, int cp1252)
{
    char *clean;

    /* Reserved up front (Windows-1252 triples at most) so that the pointers
     * taken below stay valid for the whole row. */
    e->clean.len = 0;
    if (bytebuf_reserve(&e->clean, 3 * e->raw_len + 1) < 0)
        return -1;
    clean = e->clean.data;
    /* In locals: the stores through t could alias e, and the compiler would
     * reload every pointer for every field. */
    const char *raw = e->raw;
    const span *fields = e->fields;
    const unsigned char *shapes = e->shape;
    text *values = e->value;
    for (size_t i = 0; i < count; i++) {
        const char *s = raw + fields[i].off;
        size_t n = fields[i].len;
        unsigned shape = shapes[i];
        text *t = &values[i];

        /* A clean field reads the same cleaned unless it has one of the
         * bytes collapse() looks for past 0x7F in its encoding. */
        if ((shape & SHAPE_CLEAN) && !(shape & (cp1252 ? SHAPE_NBSP_1252 : SHAPE_LEAD_UTF8))) {
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
