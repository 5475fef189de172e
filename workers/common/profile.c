#include "profile.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *const profile_keys[] = {
    "description",
    "aliases",
    "date_order",
    "decimal_separator",
    "thousands_separator",
    "default_currency",
    "order_date_offset_days",
    "enabled",
    "done_marker",
    "expected_drop_time",
    "expected_drop_days",
    "notify",
    NULL,
};

static const char *const day_names[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

static const char *const date_order_names[] = {
    [PROFILE_DMY] = "DMY",
    [PROFILE_MDY] = "MDY",
    [PROFILE_YMD] = "YMD",
};

void profile_init(profile *p)
{
    memset(p, 0, sizeof(*p));
    p->date_order = PROFILE_DMY;
    p->enabled = 1;
    p->expected_drop_minute = -1;
}

const char *profile_date_order_name(profile_date_order order)
{
    return (unsigned)order <= PROFILE_YMD ? date_order_names[order] : "?";
}

int profile_engine_default(const profile *p)
{
    return p->alias_count == 0 && p->date_order == PROFILE_DMY &&
           p->decimal_separator == PROFILE_SEP_AUTO && p->thousands_separator == PROFILE_SEP_AUTO &&
           p->default_currency[0] == '\0';
}

static dx_status refuse(char *reason, size_t reason_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static dx_status refuse(char *reason, size_t reason_len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, reason_len, fmt, ap);
    va_end(ap);
    return DX_ERR_INVALID;
}

/* The string value of item, or NULL after writing why it is not one. */
static const char *string_of(const cJSON *item, char *reason, size_t reason_len)
{
    if (!cJSON_IsString(item) || item->valuestring == NULL) {
        refuse(reason, reason_len, "%s must be a string", item->string);
        return NULL;
    }
    return item->valuestring;
}

static void list_columns(char *out, size_t len)
{
    size_t used = 0;

    out[0] = '\0';
    for (int c = 0; c < COLUMN_COUNT && used < len; c++)
        used += (size_t)snprintf(out + used, len - used, "%s%s", c ? ", " : "",
                                 column_name((column_id)c));
}

/* Two keys that cJSON keeps apart but a reader would take as one. */
static const char *duplicate_key(const cJSON *doc)
{
    for (const cJSON *a = doc->child; a != NULL; a = a->next) {
        for (const cJSON *b = a->next; b != NULL; b = b->next) {
            if (strcmp(a->string, b->string) == 0)
                return a->string;
        }
    }
    return NULL;
}

static dx_status parse_aliases(profile *p, const cJSON *item, char *reason, size_t reason_len)
{
    const cJSON *a;
    char columns[256];

    if (!cJSON_IsObject(item))
        return refuse(reason, reason_len, "aliases must be an object of header: column");
    if (duplicate_key(item) != NULL)
        return refuse(reason, reason_len, "aliases: header \"%.64s\" appears twice",
                      duplicate_key(item));
    cJSON_ArrayForEach(a, item)
    {
        const char *header = a->string;
        int column;
        size_t n = strlen(header);

        if (p->alias_count == PROFILE_ALIASES_MAX)
            return refuse(reason, reason_len, "aliases: more than %d", PROFILE_ALIASES_MAX);
        if (n == 0 || n >= PROFILE_HEADER_MAX)
            return refuse(reason, reason_len, "aliases: a header must be 1 to %d bytes",
                          PROFILE_HEADER_MAX - 1);
        if (!cJSON_IsString(a))
            return refuse(reason, reason_len, "aliases: \"%s\" must map to a column name", header);
        column = column_of_name(a->valuestring);
        if (column < 0) {
            list_columns(columns, sizeof(columns));
            return refuse(reason, reason_len,
                          "aliases: \"%s\" maps to \"%.64s\", which is not a column (%s)", header,
                          a->valuestring, columns);
        }
        snprintf(p->aliases[p->alias_count].header, PROFILE_HEADER_MAX, "%s", header);
        p->aliases[p->alias_count].column = (column_id)column;
        p->alias_count++;
    }
    return DX_OK;
}

static dx_status parse_date_order(profile *p, const cJSON *item, char *reason, size_t reason_len)
{
    const char *s = string_of(item, reason, reason_len);

    if (s == NULL)
        return DX_ERR_INVALID;
    for (int o = PROFILE_DMY; o <= PROFILE_YMD; o++) {
        if (strcmp(s, date_order_names[o]) == 0) {
            p->date_order = (profile_date_order)o;
            return DX_OK;
        }
    }
    return refuse(reason, reason_len,
                  "date_order must be \"DMY\", \"MDY\" or \"YMD\", not \"%.32s\"", s);
}

static dx_status parse_separator(char *out, const cJSON *item, int thousands, char *reason,
                                 size_t reason_len)
{
    const char *s = string_of(item, reason, reason_len);

    if (s == NULL)
        return DX_ERR_INVALID;
    if (strcmp(s, "auto") == 0)
        *out = PROFILE_SEP_AUTO;
    else if (thousands && strcmp(s, "none") == 0)
        *out = PROFILE_SEP_NONE;
    else if (strcmp(s, ".") == 0 || strcmp(s, ",") == 0 ||
             (thousands && (strcmp(s, " ") == 0 || strcmp(s, "'") == 0)))
        *out = s[0];
    else
        return refuse(reason, reason_len, "%s must be %s, not \"%.32s\"", item->string,
                      thousands ? "\",\", \".\", \" \", \"'\", \"none\" or \"auto\""
                                : "\".\", \",\" or \"auto\"",
                      s);
    return DX_OK;
}

static dx_status parse_currency(profile *p, const cJSON *item, char *reason, size_t reason_len)
{
    const char *s = string_of(item, reason, reason_len);

    if (s == NULL)
        return DX_ERR_INVALID;
    if (strlen(s) != 3 || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' || s[1] > 'Z' || s[2] < 'A' ||
        s[2] > 'Z')
        return refuse(reason, reason_len,
                      "default_currency must be an ISO 4217 code of three capital letters "
                      "(\"USD\"), not \"%.32s\"",
                      s);
    memcpy(p->default_currency, s, 4);
    return DX_OK;
}

static dx_status parse_offset(profile *p, const cJSON *item, char *reason, size_t reason_len)
{
    double v = cJSON_IsNumber(item) ? item->valuedouble : NAN;

    if (!(v == floor(v)) || v < -PROFILE_OFFSET_MAX || v > PROFILE_OFFSET_MAX)
        return refuse(reason, reason_len,
                      "order_date_offset_days must be a whole number from %d to %d",
                      -PROFILE_OFFSET_MAX, PROFILE_OFFSET_MAX);
    p->order_date_offset_days = (int)v;
    return DX_OK;
}

static dx_status parse_enabled(profile *p, const cJSON *item, char *reason, size_t reason_len)
{
    if (!cJSON_IsBool(item))
        return refuse(reason, reason_len, "enabled must be true or false");
    p->enabled = cJSON_IsTrue(item);
    return DX_OK;
}

/*
 * A marker is a suffix appended to the drop's name ("input.csv.done"), as
 * Apache Camel's doneFileName does.  It may not itself end in ".csv", or the
 * marker would be listed as a drop of its own.
 */
static dx_status parse_marker(profile *p, const cJSON *item, char *reason, size_t reason_len)
{
    const char *s = string_of(item, reason, reason_len);
    size_t n;

    if (s == NULL)
        return DX_ERR_INVALID;
    n = strlen(s);
    if (n < 2 || n >= PROFILE_MARKER_MAX || s[0] != '.' ||
        strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n ||
        (n >= 4 && strcasecmp(s + n - 4, ".csv") == 0))
        return refuse(reason, reason_len,
                      "done_marker must be a suffix such as \".done\" or \".ok\" (a dot, then up "
                      "to %d letters, digits, '.', '_' or '-', not ending in .csv)",
                      PROFILE_MARKER_MAX - 2);
    memcpy(p->done_marker, s, n + 1);
    return DX_OK;
}

static dx_status parse_drop_time(profile *p, const cJSON *item, char *reason, size_t reason_len)
{
    const char *s = string_of(item, reason, reason_len);
    int h, m;
    char end;

    if (s == NULL)
        return DX_ERR_INVALID;
    if (strlen(s) != 5 || sscanf(s, "%2d:%2d%c", &h, &m, &end) != 2 || s[2] != ':' || h < 0 ||
        h > 23 || m < 0 || m > 59)
        return refuse(reason, reason_len,
                      "expected_drop_time must be HH:MM in TZ (\"07:30\"), not \"%.32s\"", s);
    p->expected_drop_minute = h * 60 + m;
    return DX_OK;
}

static dx_status parse_drop_days(profile *p, const cJSON *item, char *reason, size_t reason_len)
{
    const cJSON *d;

    if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) == 0)
        return refuse(reason, reason_len,
                      "expected_drop_days must be a non-empty array of \"mon\" .. \"sun\"");
    p->expected_drop_days = 0;
    cJSON_ArrayForEach(d, item)
    {
        int found = -1;

        for (int i = 0; i < 7 && cJSON_IsString(d); i++) {
            if (strcmp(d->valuestring, day_names[i]) == 0)
                found = i;
        }
        if (found < 0)
            return refuse(reason, reason_len,
                          "expected_drop_days: each day must be one of \"mon\" .. \"sun\"");
        if (p->expected_drop_days & (1u << found))
            return refuse(reason, reason_len, "expected_drop_days: \"%s\" appears twice",
                          day_names[found]);
        p->expected_drop_days |= 1u << found;
    }
    return DX_OK;
}

/*
 * A notification target names where to send, never a secret: a webhook URL
 * carries its token, so the profile names the webhook ("webhook:ops") and the
 * URL stays in the deployment's secrets.
 */
static dx_status parse_notify(profile *p, const cJSON *item, char *reason, size_t reason_len)
{
    const char *s = string_of(item, reason, reason_len);
    const char *name;
    size_t n;

    if (s == NULL)
        return DX_ERR_INVALID;
    n = strlen(s);
    if (n >= PROFILE_NOTIFY_MAX)
        return refuse(reason, reason_len, "notify: longer than %d bytes", PROFILE_NOTIFY_MAX - 1);
    if (strncmp(s, "mailto:", 7) == 0) {
        const char *at = strchr(s + 7, '@');

        if (at == NULL || at == s + 7 || at[1] == '\0' || strchr(at + 1, '@') != NULL ||
            strpbrk(s, " \t\r\n,;<>") != NULL)
            return refuse(reason, reason_len,
                          "notify: \"mailto:\" needs one address (mailto:ops@example.com)");
    } else if (strncmp(s, "webhook:", 8) == 0) {
        name = s + 8;
        if (name[0] == '\0' || strlen(name) > 64 ||
            strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
                strlen(name))
            return refuse(reason, reason_len,
                          "notify: \"webhook:\" needs a name of 1 to 64 letters, digits, '_' or "
                          "'-' (the URL itself is a secret and stays out of the profile)");
    } else {
        return refuse(reason, reason_len,
                      "notify must be \"mailto:ADDRESS\" or \"webhook:NAME\" (a URL is a secret "
                      "and stays out of the profile)");
    }
    memcpy(p->notify, s, n + 1);
    return DX_OK;
}

static dx_status parse_description(profile *p, const cJSON *item, char *reason, size_t reason_len)
{
    (void)p;
    if (string_of(item, reason, reason_len) == NULL)
        return DX_ERR_INVALID;
    if (strlen(item->valuestring) > 1024)
        return refuse(reason, reason_len, "description: longer than 1024 bytes");
    return DX_OK;
}

typedef dx_status (*field_fn)(profile *p, const cJSON *item, char *reason, size_t reason_len);

static dx_status parse_decimal(profile *p, const cJSON *item, char *reason, size_t reason_len)
{
    return parse_separator(&p->decimal_separator, item, 0, reason, reason_len);
}

static dx_status parse_thousands(profile *p, const cJSON *item, char *reason, size_t reason_len)
{
    return parse_separator(&p->thousands_separator, item, 1, reason, reason_len);
}

/* In the order of profile_keys. */
static const field_fn parsers[] = {
    parse_description, parse_aliases,   parse_date_order, parse_decimal,
    parse_thousands,   parse_currency,  parse_offset,     parse_enabled,
    parse_marker,      parse_drop_time, parse_drop_days,  parse_notify,
};

_Static_assert(sizeof(parsers) / sizeof(parsers[0]) ==
                   sizeof(profile_keys) / sizeof(profile_keys[0]) - 1,
               "one parser per key");

static dx_status parse_field(profile *p, const cJSON *item, char *reason, size_t reason_len)
{
    for (size_t k = 0; profile_keys[k] != NULL; k++) {
        if (strcmp(item->string, profile_keys[k]) == 0)
            return parsers[k](p, item, reason, reason_len);
    }
    return refuse(reason, reason_len, "unknown key \"%.64s\"", item->string);
}

static dx_status check_separators(const profile *p, char *reason, size_t reason_len)
{
    if (p->decimal_separator != PROFILE_SEP_AUTO && p->decimal_separator == p->thousands_separator)
        return refuse(reason, reason_len,
                      "decimal_separator and thousands_separator are both \"%c\"",
                      p->decimal_separator);
    return DX_OK;
}

dx_status profile_parse(profile *out, const char *text, size_t len, char *reason, size_t reason_len)
{
    profile p;
    cJSON *doc = NULL;
    const cJSON *item;
    const char *dup;
    dx_status s = DX_OK;

    profile_init(&p);
    if (len > PROFILE_TEXT_MAX)
        return refuse(reason, reason_len, "longer than %d bytes", PROFILE_TEXT_MAX);
    doc = cJSON_ParseWithLength(text, len);
    if (doc == NULL || !cJSON_IsObject(doc)) {
        s = refuse(reason, reason_len, "%s", doc == NULL ? "not valid JSON" : "not a JSON object");
        goto done;
    }
    dup = duplicate_key(doc);
    if (dup != NULL) {
        s = refuse(reason, reason_len, "key \"%.64s\" appears twice", dup);
        goto done;
    }
    cJSON_ArrayForEach(item, doc)
    {
        s = parse_field(&p, item, reason, reason_len);
        if (s != DX_OK)
            goto done;
    }
    s = check_separators(&p, reason, reason_len);
    if (s == DX_OK)
        *out = p;
done:
    cJSON_Delete(doc);
    return s;
}
