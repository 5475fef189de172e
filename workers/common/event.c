#include "event.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.pb-c.h"
#include "util.h"

/* FIELD_REJECTS: an event_reject_counts (FileReady.rejects_by_reason). */
typedef enum field_kind { FIELD_STRING, FIELD_UINT64, FIELD_BOOL, FIELD_REJECTS } field_kind;

/* One member of our C struct, named as in proto/events.proto. */
typedef struct field_desc {
    const char *name;
    const char *camel; /* the proto3 JSON name, also accepted on input */
    field_kind kind;
    size_t offset;
    size_t size; /* capacity for strings */
} field_desc;

#define STR(type, member, camel)                                                                   \
    {                                                                                              \
#member, camel, FIELD_STRING, offsetof(type, member), sizeof(((type *)0)->member)          \
    }
#define U64(type, member, camel)                                                                   \
    {                                                                                              \
#member, camel, FIELD_UINT64, offsetof(type, member), 0                                    \
    }

static const field_desc order_date_fields[] = {
    STR(event_order_date, event_id, "eventId"),
    STR(event_order_date, trace_id, "traceId"),
    STR(event_order_date, order_date, "orderDate"),
    STR(event_order_date, client_id, "clientId"),
    STR(event_order_date, triggered_by, "triggeredBy"),
    STR(event_order_date, created_at, "createdAt"),
};

static const field_desc file_ready_fields[] = {
    STR(event_file_ready, event_id, "eventId"),
    STR(event_file_ready, trace_id, "traceId"),
    STR(event_file_ready, caused_by, "causedBy"),
    STR(event_file_ready, client_id, "clientId"),
    STR(event_file_ready, order_date, "orderDate"),
    STR(event_file_ready, source, "source"),
    STR(event_file_ready, output, "output"),
    STR(event_file_ready, rejects, "rejects"),
    U64(event_file_ready, rows_in, "rowsIn"),
    U64(event_file_ready, rows_out, "rowsOut"),
    U64(event_file_ready, rows_rejected, "rowsRejected"),
    U64(event_file_ready, rows_duplicate, "rowsDuplicate"),
    U64(event_file_ready, bytes_out, "bytesOut"),
    STR(event_file_ready, sha256, "sha256"),
    U64(event_file_ready, profile_revision, "profileRevision"),
    STR(event_file_ready, triggered_by, "triggeredBy"),
    {"rejects_by_reason", "rejectsByReason", FIELD_REJECTS,
     offsetof(event_file_ready, rejects_by_reason), 0},
};

static const field_desc file_failed_fields[] = {
    STR(event_file_failed, event_id, "eventId"),
    STR(event_file_failed, trace_id, "traceId"),
    STR(event_file_failed, caused_by, "causedBy"),
    STR(event_file_failed, client_id, "clientId"),
    STR(event_file_failed, order_date, "orderDate"),
    STR(event_file_failed, source, "source"),
    STR(event_file_failed, reason, "reason"),
    {"permanent", "permanent", FIELD_BOOL, offsetof(event_file_failed, permanent), 0},
};

static const field_desc drop_check_fields[] = {
    STR(event_drop_check, event_id, "eventId"),
    STR(event_drop_check, trace_id, "traceId"),
    STR(event_drop_check, client_id, "clientId"),
    STR(event_drop_check, order_date, "orderDate"),
    STR(event_drop_check, found, "found"),
    STR(event_drop_check, source, "source"),
    STR(event_drop_check, order_date_event, "orderDateEvent"),
    STR(event_drop_check, checked_at, "checkedAt"),
    STR(event_drop_check, triggered_by, "triggeredBy"),
    U64(event_drop_check, profile_revision, "profileRevision"),
};

static const field_desc client_state_fields[] = {
    STR(event_client_state, event_id, "eventId"),
    STR(event_client_state, trace_id, "traceId"),
    STR(event_client_state, client_id, "clientId"),
    STR(event_client_state, order_date, "orderDate"),
    STR(event_client_state, state, "state"),
    STR(event_client_state, previous, "previous"),
    STR(event_client_state, reason, "reason"),
    STR(event_client_state, at, "at"),
    STR(event_client_state, caused_by, "causedBy"),
};

typedef struct message_desc {
    const char *name;
    const ProtobufCMessageDescriptor *proto;
    const field_desc *fields;
    size_t field_count;
    size_t struct_size;
} message_desc;

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const message_desc messages[] = {
    [EVENT_ORDER_DATE] = {"OrderDate", &orders__order_date__descriptor, order_date_fields,
                          COUNT(order_date_fields), sizeof(event_order_date)},
    [EVENT_FILE_READY] = {"FileReady", &orders__file_ready__descriptor, file_ready_fields,
                          COUNT(file_ready_fields), sizeof(event_file_ready)},
    [EVENT_FILE_FAILED] = {"FileFailed", &orders__file_failed__descriptor, file_failed_fields,
                           COUNT(file_failed_fields), sizeof(event_file_failed)},
    [EVENT_DROP_CHECK] = {"DropCheck", &orders__drop_check__descriptor, drop_check_fields,
                          COUNT(drop_check_fields), sizeof(event_drop_check)},
    [EVENT_CLIENT_STATE] = {"ClientState", &orders__client_state__descriptor, client_state_fields,
                            COUNT(client_state_fields), sizeof(event_client_state)},
};

const char *event_subjects[EVENT_TYPE_COUNT] = {
    [EVENT_ORDER_DATE] = EVENT_SUBJECT_ORDER_DATE, /* daily-checker: a client's day to transform */
    [EVENT_FILE_READY] = EVENT_SUBJECT_FILE_READY, /* file-transformer: a run's outcome */
    [EVENT_FILE_FAILED] = EVENT_SUBJECT_FILE_FAILED,   /* file-transformer: a run's outcome */
    [EVENT_DROP_CHECK] = EVENT_SUBJECT_DROP_CHECK,     /* daily-checker: what each check found */
    [EVENT_CLIENT_STATE] = EVENT_SUBJECT_CLIENT_STATE, /* status-checker: day states */
};

int event_type_of_subject(const char *subject, event_type *type)
{
    for (int t = 0; t < EVENT_TYPE_COUNT; t++) {
        if (strcmp(subject, event_subjects[t]) == 0) {
            *type = (event_type)t;
            return 1;
        }
    }
    return 0;
}

const char *event_error_kind(const char *err)
{
    return strncmp(err, "undecodable", 11) == 0 ? "undecodable" : "invalid_event";
}

const char *event_content_type(int json)
{
    return json ? "application/json" : "application/protobuf";
}

static int looks_like_json(const void *data, size_t len, const char *content_type)
{
    const unsigned char *p = data;

    if (content_type != NULL && content_type[0] != '\0') {
        if (strstr(content_type, "json") != NULL)
            return 1;
        if (strstr(content_type, "protobuf") != NULL || strstr(content_type, "octet") != NULL)
            return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (!isspace(p[i]))
            return p[i] == '{';
    }
    return 0;
}

static dx_status set_string(const field_desc *f, void *ev, const char *value, char *err,
                            size_t err_len)
{
    char *dst = (char *)ev + f->offset;
    size_t len = strlen(value);

    if (len >= f->size) {
        snprintf(err, err_len, "field %s is too long (%zu bytes, at most %zu)", f->name, len,
                 f->size - 1);
        return DX_ERR_INVALID;
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)value[i] < 0x20) {
            snprintf(err, err_len, "field %s contains a control character", f->name);
            return DX_ERR_INVALID;
        }
    }
    memcpy(dst, value, len + 1);
    return DX_OK;
}

static dx_status json_field(const field_desc *f, const cJSON *item, void *ev, char *err,
                            size_t err_len);

/*
 * Adds one reason's count to *rc, refusing an empty, over-long or repeated
 * reason and more than EVENT_REJECT_REASONS_MAX entries.
 */
static dx_status rejects_add(event_reject_counts *rc, const char *reason, uint64_t rows, char *err,
                             size_t err_len)
{
    static const field_desc reason_field = STR(event_reject_count, reason, "reason");
    event_reject_count *item;

    if (rc->count >= EVENT_REJECT_REASONS_MAX) {
        snprintf(err, err_len, "field rejects_by_reason has more than %d entries",
                 EVENT_REJECT_REASONS_MAX);
        return DX_ERR_INVALID;
    }
    if (reason == NULL || reason[0] == '\0') {
        snprintf(err, err_len, "field rejects_by_reason has an entry without a reason");
        return DX_ERR_INVALID;
    }
    for (size_t i = 0; i < rc->count; i++) {
        if (strcmp(rc->items[i].reason, reason) == 0) {
            snprintf(err, err_len, "field rejects_by_reason names reason %.32s twice", reason);
            return DX_ERR_INVALID;
        }
    }
    item = &rc->items[rc->count];
    if (set_string(&reason_field, item, reason, err, err_len) != DX_OK)
        return DX_ERR_INVALID;
    item->rows = rows;
    rc->count++;
    return DX_OK;
}

/*
 * rejects_by_reason in JSON: an object from reason to rows, {"invalid_date":
 * 3, ...}, the shape /status shows (a repeated key is refused like a
 * repeated reason in protobuf).
 */
static dx_status json_rejects(const field_desc *f, const cJSON *item, void *ev, char *err,
                              size_t err_len)
{
    static const field_desc rows_field = U64(event_reject_count, rows, "rows");
    event_reject_counts *rc = (event_reject_counts *)((char *)ev + f->offset);
    const cJSON *entry;

    if (!cJSON_IsObject(item)) {
        snprintf(err, err_len, "field %s must be an object of reason: rows", f->name);
        return DX_ERR_INVALID;
    }
    cJSON_ArrayForEach(entry, item)
    {
        event_reject_count one = {.rows = 0};

        if (json_field(&rows_field, entry, &one, err, err_len) != DX_OK) {
            snprintf(err, err_len, "field %s: rows of %.32s must be a non-negative integer",
                     f->name, entry->string);
            return DX_ERR_INVALID;
        }
        if (rejects_add(rc, entry->string, one.rows, err, err_len) != DX_OK)
            return DX_ERR_INVALID;
    }
    return DX_OK;
}

static dx_status json_field(const field_desc *f, const cJSON *item, void *ev, char *err,
                            size_t err_len)
{
    void *dst = (char *)ev + f->offset;

    switch (f->kind) {
    case FIELD_STRING:
        if (!cJSON_IsString(item)) {
            snprintf(err, err_len, "field %s must be a string", f->name);
            return DX_ERR_INVALID;
        }
        return set_string(f, ev, item->valuestring, err, err_len);
    case FIELD_UINT64:
        /* proto3 JSON writes 64-bit integers as strings; accept both forms. */
        if (cJSON_IsNumber(item) && item->valuedouble >= 0 &&
            item->valuedouble <= 9007199254740992.0 &&
            item->valuedouble == (double)(uint64_t)item->valuedouble) {
            *(uint64_t *)dst = (uint64_t)item->valuedouble;
            return DX_OK;
        }
        /* Up to 2^64-1, which has 20 digits; strtoull says when it is over. */
        if (cJSON_IsString(item) && item->valuestring[0] != '\0' &&
            strspn(item->valuestring, "0123456789") == strlen(item->valuestring) &&
            strlen(item->valuestring) <= 20) {
            errno = 0;
            *(uint64_t *)dst = strtoull(item->valuestring, NULL, 10);
            if (errno == 0)
                return DX_OK;
        }
        snprintf(err, err_len, "field %s must be a non-negative integer", f->name);
        return DX_ERR_INVALID;
    case FIELD_BOOL:
        if (!cJSON_IsBool(item)) {
            snprintf(err, err_len, "field %s must be true or false", f->name);
            return DX_ERR_INVALID;
        }
        *(int *)dst = cJSON_IsTrue(item);
        return DX_OK;
    case FIELD_REJECTS:
        return json_rejects(f, item, ev, err, err_len);
    }
    return DX_ERR_INVALID;
}

/*
 * Whether JSON text holds a NUL character, raw or escaped as \u0000.  cJSON
 * would keep it inside a string, and the C string would then end there:
 * "US1\u0000/../x" would read as "US1".  Such an event is refused instead.
 */
static int json_has_nul(const char *s, size_t len)
{
    if (memchr(s, '\0', len) != NULL)
        return 1;
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] != '\\')
            continue;
        if (s[i + 1] == 'u' && len - i >= 6 && memcmp(s + i + 2, "0000", 4) == 0)
            return 1;
        i++; /* the escaped character, so that "\\u0000" is text */
    }
    return 0;
}

/*
 * Events are flat objects: a few levels of nesting are plenty.  cJSON stops
 * at its own limit (1000) and then only says "cannot parse", so the depth is
 * measured first, brackets inside strings not counted, and the scan stops
 * at the first level over the limit (a hostile body costs no more).
 */
#define JSON_MAX_DEPTH 32

static int json_too_deep(const char *s, size_t len)
{
    int depth = 0, in_string = 0;

    for (size_t i = 0; i < len; i++) {
        char c = s[i];

        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > JSON_MAX_DEPTH)
                return 1;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return 0;
}

static dx_status decode_json(const message_desc *m, const void *data, size_t len, void *ev,
                             char *err, size_t err_len)
{
    cJSON *root;
    dx_status s = DX_OK;

    if (json_has_nul(data, len)) {
        snprintf(err, err_len, "undecodable %s: JSON holds a NUL character", m->name);
        return DX_ERR_INVALID;
    }
    if (json_too_deep(data, len)) {
        snprintf(err, err_len, "undecodable %s: JSON nested too deeply (more than %d levels)",
                 m->name, JSON_MAX_DEPTH);
        return DX_ERR_INVALID;
    }
    root = cJSON_ParseWithLength(data, len);
    if (root == NULL || !cJSON_IsObject(root)) {
        snprintf(err, err_len, "undecodable %s: not a JSON object", m->name);
        cJSON_Delete(root);
        return DX_ERR_INVALID;
    }
    for (size_t i = 0; i < m->field_count && s == DX_OK; i++) {
        const field_desc *f = &m->fields[i];
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, f->name);

        if (item == NULL)
            item = cJSON_GetObjectItemCaseSensitive(root, f->camel);
        if (item != NULL && !cJSON_IsNull(item))
            s = json_field(f, item, ev, err, err_len);
    }
    cJSON_Delete(root);
    return s;
}

/* Reads one varint at *pos; returns 0, or -1 when it runs past the end. */
static int read_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *value)
{
    *value = 0;
    for (unsigned shift = 0; *pos < len && shift < 64; shift += 7) {
        uint8_t b = p[(*pos)++];

        *value |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0)
            return 0;
    }
    return -1;
}

/*
 * The name of the first string field of the message whose bytes hold a NUL,
 * or NULL.  protobuf-c ends its C strings at the first NUL, so "US1\0/../x"
 * would read as "US1": such an event is refused instead.  Only called on
 * data protobuf-c has unpacked, so the walk may stop at anything odd.
 */
static const char *protobuf_nul_field(const ProtobufCMessageDescriptor *m, const uint8_t *p,
                                      size_t len)
{
    size_t pos = 0;

    while (pos < len) {
        uint64_t key, n;
        const ProtobufCFieldDescriptor *pf;

        if (read_varint(p, len, &pos, &key) < 0)
            return NULL;
        switch (key & 7) {
        case 0:
            if (read_varint(p, len, &pos, &n) < 0)
                return NULL;
            break;
        case 1:
        case 5:
            if (len - pos < ((key & 7) == 1 ? 8u : 4u))
                return NULL;
            pos += (key & 7) == 1 ? 8 : 4;
            break;
        case 2:
            if (read_varint(p, len, &pos, &n) < 0 || n > len - pos)
                return NULL;
            pf = key >> 3 <= UINT32_MAX
                     ? protobuf_c_message_descriptor_get_field(m, (unsigned)(key >> 3))
                     : NULL;
            if (pf != NULL && pf->type == PROTOBUF_C_TYPE_STRING && memchr(p + pos, '\0', n))
                return pf->name;
            /* A nested message (RejectCount) has strings of its own. */
            if (pf != NULL && pf->type == PROTOBUF_C_TYPE_MESSAGE &&
                protobuf_nul_field(pf->descriptor, p + pos, n) != NULL)
                return pf->name;
            pos += n;
            break;
        default:
            return NULL;
        }
    }
    return NULL;
}

static dx_status decode_protobuf(const message_desc *m, const void *data, size_t len, void *ev,
                                 char *err, size_t err_len)
{
    ProtobufCMessage *msg = protobuf_c_message_unpack(m->proto, NULL, len, data);
    const char *nul_field;
    dx_status s = DX_OK;

    if (msg == NULL) {
        snprintf(err, err_len, "undecodable %s: neither protobuf nor JSON", m->name);
        return DX_ERR_INVALID;
    }
    if ((nul_field = protobuf_nul_field(m->proto, data, len)) != NULL) {
        snprintf(err, err_len, "field %s contains a NUL character", nul_field);
        protobuf_c_message_free_unpacked(msg, NULL);
        return DX_ERR_INVALID;
    }
    for (size_t i = 0; i < m->field_count && s == DX_OK; i++) {
        const field_desc *f = &m->fields[i];
        const ProtobufCFieldDescriptor *pf =
            protobuf_c_message_descriptor_get_field_by_name(m->proto, f->name);
        const char *src = (const char *)msg + pf->offset;

        switch (f->kind) {
        case FIELD_STRING:
            s = set_string(f, ev, *(char *const *)src, err, err_len);
            break;
        case FIELD_UINT64:
            *(uint64_t *)((char *)ev + f->offset) = *(const uint64_t *)src;
            break;
        case FIELD_BOOL:
            *(int *)((char *)ev + f->offset) = *(const protobuf_c_boolean *)src != 0;
            break;
        case FIELD_REJECTS: {
            size_t n = *(const size_t *)((const char *)msg + pf->quantifier_offset);
            Orders__RejectCount *const *items = *(Orders__RejectCount *const *const *)src;

            for (size_t k = 0; k < n && s == DX_OK; k++)
                s = rejects_add((event_reject_counts *)((char *)ev + f->offset), items[k]->reason,
                                items[k]->rows, err, err_len);
            break;
        }
        }
    }
    protobuf_c_message_free_unpacked(msg, NULL);
    return s;
}

static dx_status validate(event_type type, const void *ev, char *err, size_t err_len)
{
    const char *order_date = "";
    const char *client_id = "";

    switch (type) {
    case EVENT_ORDER_DATE:
        order_date = ((const event_order_date *)ev)->order_date;
        break;
    case EVENT_FILE_READY:
        order_date = ((const event_file_ready *)ev)->order_date;
        client_id = ((const event_file_ready *)ev)->client_id;
        break;
    case EVENT_FILE_FAILED:
        order_date = ((const event_file_failed *)ev)->order_date;
        client_id = ((const event_file_failed *)ev)->client_id;
        break;
    case EVENT_DROP_CHECK:
        order_date = ((const event_drop_check *)ev)->order_date;
        client_id = ((const event_drop_check *)ev)->client_id;
        break;
    case EVENT_CLIENT_STATE:
        order_date = ((const event_client_state *)ev)->order_date;
        client_id = ((const event_client_state *)ev)->client_id;
        break;
    }
    if (order_date[0] == '\0') {
        snprintf(err, err_len, "invalid %s: order_date is missing", messages[type].name);
        return DX_ERR_INVALID;
    }
    if (!util_date_valid(order_date)) {
        snprintf(err, err_len, "invalid %s: order_date \"%s\" is not a YYYY-MM-DD date",
                 messages[type].name, order_date);
        return DX_ERR_INVALID;
    }
    if (type != EVENT_ORDER_DATE && client_id[0] == '\0') {
        snprintf(err, err_len, "invalid %s: client_id is missing", messages[type].name);
        return DX_ERR_INVALID;
    }
    return DX_OK;
}

dx_status event_decode(event_type type, const void *data, size_t len, const char *content_type,
                       void *out, char *err, size_t err_len)
{
    const message_desc *m = &messages[type];
    void *ev = calloc(1, m->struct_size);
    dx_status s;

    if (ev == NULL)
        return DX_ERR_NOMEM;
    if (looks_like_json(data, len, content_type))
        s = decode_json(m, data, len, ev, err, err_len);
    else
        s = decode_protobuf(m, data, len, ev, err, err_len);
    if (s == DX_OK)
        s = validate(type, ev, err, err_len);
    if (s == DX_OK)
        memcpy(out, ev, m->struct_size);
    free(ev);
    return s;
}

static void add_u64(cJSON *obj, const char *name, uint64_t value);

/* Returns a new JSON object of rc, reason -> rows (owned by the caller). */
static cJSON *rejects_to_json(const event_reject_counts *rc)
{
    cJSON *obj = cJSON_CreateObject();

    for (size_t i = 0; obj != NULL && i < rc->count; i++)
        add_u64(obj, rc->items[i].reason, rc->items[i].rows);
    return obj;
}

cJSON *event_to_json(event_type type, const void *ev)
{
    const message_desc *m = &messages[type];
    cJSON *root = cJSON_CreateObject();

    if (root == NULL)
        return NULL;
    for (size_t i = 0; i < m->field_count; i++) {
        const field_desc *f = &m->fields[i];
        const char *src = (const char *)ev + f->offset;

        switch (f->kind) {
        case FIELD_STRING:
            cJSON_AddStringToObject(root, f->name, src);
            break;
        case FIELD_UINT64:
            add_u64(root, f->name, *(const uint64_t *)src);
            break;
        case FIELD_BOOL:
            cJSON_AddBoolToObject(root, f->name, *(const int *)src);
            break;
        case FIELD_REJECTS:
            cJSON_AddItemToObject(root, f->name, rejects_to_json((const event_reject_counts *)src));
            break;
        }
    }
    return root;
}

static void add_u64(cJSON *obj, const char *name, uint64_t value)
{
    char digits[24];

    /* cJSON prints numbers with 15 significant digits (and keeps that when
     * it reads back "close enough"), so an integer of 16 digits or more
     * would come back changed: those are written as strings, as proto3 JSON
     * allows. */
    if (value <= 999999999999999ull) {
        cJSON_AddNumberToObject(obj, name, (double)value);
    } else {
        snprintf(digits, sizeof(digits), "%" PRIu64, value);
        cJSON_AddStringToObject(obj, name, digits);
    }
}

/* The repeated RejectCount of a message being packed: it borrows rc's
 * strings; items and ptrs (EVENT_REJECT_REASONS_MAX each) are the caller's. */
static void rejects_to_protobuf(const event_reject_counts *rc, Orders__RejectCount *items,
                                Orders__RejectCount **ptrs, size_t *n, Orders__RejectCount ***out)
{
    size_t count = rc->count < EVENT_REJECT_REASONS_MAX ? rc->count : EVENT_REJECT_REASONS_MAX;

    for (size_t i = 0; i < count; i++) {
        orders__reject_count__init(&items[i]);
        items[i].reason = (char *)rc->items[i].reason;
        items[i].rows = rc->items[i].rows;
        ptrs[i] = &items[i];
    }
    *n = count;
    *out = count > 0 ? ptrs : NULL;
}

static dx_status encode_protobuf(const message_desc *m, const void *ev, void **data, size_t *len)
{
    ProtobufCMessage *msg = calloc(1, m->proto->sizeof_message);
    Orders__RejectCount items[EVENT_REJECT_REASONS_MAX];
    Orders__RejectCount *ptrs[EVENT_REJECT_REASONS_MAX];
    uint8_t *buf = NULL;
    size_t size;

    if (msg == NULL)
        return DX_ERR_NOMEM;
    m->proto->message_init(msg);
    /* The message borrows our strings: it is packed, then freed shallowly. */
    for (size_t i = 0; i < m->field_count; i++) {
        const field_desc *f = &m->fields[i];
        const ProtobufCFieldDescriptor *pf =
            protobuf_c_message_descriptor_get_field_by_name(m->proto, f->name);
        char *dst = (char *)msg + pf->offset;
        const char *src = (const char *)ev + f->offset;

        switch (f->kind) {
        case FIELD_STRING:
            *(const char **)dst = src;
            break;
        case FIELD_UINT64:
            *(uint64_t *)dst = *(const uint64_t *)src;
            break;
        case FIELD_BOOL:
            *(protobuf_c_boolean *)dst = *(const int *)src != 0;
            break;
        case FIELD_REJECTS:
            rejects_to_protobuf((const event_reject_counts *)src, items, ptrs,
                                (size_t *)((char *)msg + pf->quantifier_offset),
                                (Orders__RejectCount ***)dst);
            break;
        }
    }
    size = protobuf_c_message_get_packed_size(msg);
    buf = malloc(size > 0 ? size : 1);
    if (buf == NULL) {
        free(msg);
        return DX_ERR_NOMEM;
    }
    protobuf_c_message_pack(msg, buf);
    free(msg);
    *data = buf;
    *len = size;
    return DX_OK;
}

dx_status event_encode(event_type type, const void *ev, int json, void **data, size_t *len)
{
    cJSON *root;
    char *text;

    if (!json)
        return encode_protobuf(&messages[type], ev, data, len);
    root = event_to_json(type, ev);
    text = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (text == NULL)
        return DX_ERR_NOMEM;
    *data = text;
    *len = strlen(text);
    return DX_OK;
}
