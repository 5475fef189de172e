#include "money.h"

#include <string.h>

static const char euro_sign[] = "\xE2\x82\xAC";

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int ieq3(const char *s, const char *upper)
{
    for (int i = 0; i < 3; i++) {
        char c = s[i] >= 'a' && s[i] <= 'z' ? (char)(s[i] - 32) : s[i];
        if (c != upper[i])
            return 0;
    }
    return 1;
}

/* Strips one euro marker at either end, then surrounding spaces. */
static void strip_currency(const char **s, size_t *n, int *euro)
{
    const char *p = *s;
    size_t len = *n;

    *euro = 0;
    if (len >= 3 && (memcmp(p, euro_sign, 3) == 0 || ieq3(p, "EUR"))) {
        p += 3;
        len -= 3;
        *euro = 1;
    } else if (len >= 3 && (memcmp(p + len - 3, euro_sign, 3) == 0 || ieq3(p + len - 3, "EUR"))) {
        len -= 3;
        *euro = 1;
    }
    while (len > 0 && *p == ' ') {
        p++;
        len--;
    }
    while (len > 0 && p[len - 1] == ' ')
        len--;
    *s = p;
    *n = len;
}

/* Picks the decimal separator position (n when none) and the thousands
 * separator (0 when none); returns -1 when the layout is ambiguous or mixed. */
static int find_separators(const char *s, size_t n, size_t *decimal, char *thousands)
{
    size_t dots = 0, commas = 0, spaces = 0, quotes = 0, last_dot = 0, last_comma = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            dots++;
            last_dot = i;
        } else if (s[i] == ',') {
            commas++;
            last_comma = i;
        } else if (s[i] == ' ') {
            spaces++;
        } else if (s[i] == '\'') {
            quotes++;
        } else if (!is_digit(s[i])) {
            return -1;
        }
    }
    *decimal = n;
    *thousands = 0;
    if (dots && commas) {
        int dot_last = last_dot > last_comma;
        *decimal = dot_last ? last_dot : last_comma;
        *thousands = dot_last ? ',' : '.';
        if ((dot_last ? dots : commas) != 1)
            return -1;
    } else if (dots + commas == 1) {
        size_t at = dots ? last_dot : last_comma;
        size_t after = n - at - 1;
        if (after == 3)
            return -1; /* "1.234": a thousand or one and a bit? Refuse. */
        *decimal = at;
    } else if (dots || commas) {
        *thousands = dots ? '.' : ',';
    }
    if (spaces || quotes) {
        if (*thousands || (spaces && quotes))
            return -1;
        *thousands = spaces ? ' ' : '\'';
    }
    return 0;
}

static int add_digit(int64_t *value, char digit)
{
    return __builtin_mul_overflow(*value, 10, value) ||
           __builtin_add_overflow(*value, digit - '0', value);
}

/* The integer part, with thousands groups checked when there is a separator. */
static int parse_units(const char *s, size_t n, char thousands, int64_t *units)
{
    size_t group = 0, groups = 0;

    *units = 0;
    for (size_t i = 0; i < n; i++) {
        if (thousands && s[i] == thousands) {
            if (group == 0 || group > 3 || (groups > 0 && group != 3))
                return -1;
            groups++;
            group = 0;
            continue;
        }
        if (!is_digit(s[i]) || add_digit(units, s[i]))
            return -1;
        group++;
    }
    if (group == 0 || (groups > 0 && group != 3))
        return -1;
    return 0;
}

/* The amount once its decimal position (n when none) and thousands
 * separator (0 when none) are known. */
static int parse_amount(const char *s, size_t n, size_t decimal, char thousands, int64_t *cents)
{
    int64_t units, fraction = 0;
    size_t decimals;

    if (parse_units(s, decimal, thousands, &units) < 0)
        return -1;
    decimals = decimal < n ? n - decimal - 1 : 0;
    if (decimal < n && (decimals == 0 || decimals > 2))
        return -1;
    for (size_t i = decimal + 1; i < n; i++) {
        if (!is_digit(s[i]))
            return -1;
        fraction = fraction * 10 + (s[i] - '0');
    }
    if (decimals == 1)
        fraction *= 10;
    if (__builtin_mul_overflow(units, 100, &units) ||
        __builtin_add_overflow(units, fraction, &units))
        return -1;
    *cents = units;
    return 0;
}

int money_parse(const char *s, size_t n, int64_t *cents, int *euro)
{
    size_t decimal;
    char thousands;

    strip_currency(&s, &n, euro);
    if (n == 0 || find_separators(s, n, &decimal, &thousands) < 0)
        return -1;
    return parse_amount(s, n, decimal, thousands, cents);
}

static int is_grouping(char c)
{
    return c == '.' || c == ',' || c == ' ' || c == '\'';
}

/*
 * The separators under a client's rule: the one it names is the only
 * meaning that character has, so "1.234" with decimal "," is a thousand and
 * not ambiguous.  An unnamed decimal is the one '.' or ',' that is not the
 * thousands separator; an unnamed thousands separator is any one grouping
 * character other than the decimal one.
 */
static int find_fixed_separators(const char *s, size_t n, char decimal_sep, char thousands_sep,
                                 size_t *decimal, char *thousands)
{
    char d = decimal_sep, t = thousands_sep == PROFILE_SEP_NONE ? 0 : thousands_sep;
    int t_auto = thousands_sep == PROFILE_SEP_AUTO;

    if (d == PROFILE_SEP_AUTO && (t == '.' || t == ','))
        d = t == '.' ? ',' : '.';
    *decimal = n;
    *thousands = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (is_digit(c))
            continue;
        if (d == PROFILE_SEP_AUTO && !t_auto && (c == '.' || c == ',') && c != t)
            d = c;
        if (c == d) {
            if (*decimal != n)
                return -1;
            *decimal = i;
        } else if (t_auto && is_grouping(c) && (*thousands == 0 || *thousands == c)) {
            *thousands = c;
        } else if (!t_auto && t != 0 && c == t) {
            *thousands = c;
        } else {
            return -1;
        }
    }
    return 0;
}

int money_parse_with(const char *s, size_t n, char decimal_sep, char thousands_sep, int64_t *cents,
                     int *euro)
{
    size_t decimal;
    char thousands;

    if (decimal_sep == PROFILE_SEP_AUTO && thousands_sep == PROFILE_SEP_AUTO)
        return money_parse(s, n, cents, euro);
    strip_currency(&s, &n, euro);
    if (n == 0 || find_fixed_separators(s, n, decimal_sep, thousands_sep, &decimal, &thousands) < 0)
        return -1;
    return parse_amount(s, n, decimal, thousands, cents);
}

size_t money_format(int64_t cents, char *out)
{
    /* "00" to "99": two digits per division halves the slow part. */
    static const char pairs[201] = "00010203040506070809101112131415161718192021222324"
                                   "25262728293031323334353637383940414243444546474849"
                                   "50515253545556575859606162636465666768697071727374"
                                   "75767778798081828384858687888990919293949596979899";
    char digits[MONEY_FORMAT_MAX];
    uint64_t magnitude = cents < 0 ? (uint64_t)0 - (uint64_t)cents : (uint64_t)cents;
    size_t n = sizeof(digits), w = 0;

    /* Build the digits backwards, at least three so "0.05" keeps its zeros. */
    while (magnitude >= 100) {
        n -= 2;
        memcpy(digits + n, pairs + 2 * (magnitude % 100), 2);
        magnitude /= 100;
    }
    n -= 2;
    memcpy(digits + n, pairs + 2 * magnitude, 2);
    if (sizeof(digits) - n == 2)
        digits[--n] = '0';
    else if (digits[n] == '0')
        n++;
    if (cents < 0)
        out[w++] = '-';
    memcpy(out + w, digits + n, sizeof(digits) - n - 2);
    w += sizeof(digits) - n - 2;
    out[w++] = '.';
    out[w++] = digits[sizeof(digits) - 2];
    out[w++] = digits[sizeof(digits) - 1];
    out[w] = '\0';
    return w;
}
