#include "kv.h"

#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define NS_PER_S 1000000000LL

struct kv {
    kvStore *store;
    char bucket[64];
};

/* nats.c's last error text for this thread, or the status name. */
static const char *nats_reason(natsStatus s)
{
    const char *text = nats_GetLastError(NULL);

    return text != NULL && text[0] != '\0' ? text : natsStatus_GetText(s);
}

static dx_status open_bucket(kv **out, bus *b, const char *bucket, int replicas, int64_t ttl_s,
                             int history, char *err, size_t err_len)
{
    jsCtx *js = bus_jetstream(b);
    kv *k = calloc(1, sizeof(*k));
    kvConfig cfg;
    natsStatus s;

    if (k == NULL || js == NULL || strlen(bucket) >= sizeof(k->bucket)) {
        snprintf(err, err_len, "cannot open key-value bucket %s: %s", bucket,
                 k == NULL ? "out of memory" : "no JetStream context or name too long");
        free(k);
        return k == NULL ? DX_ERR_NOMEM : DX_ERR_INVALID;
    }
    snprintf(k->bucket, sizeof(k->bucket), "%s", bucket);
    kvConfig_Init(&cfg);
    cfg.Bucket = bucket;
    cfg.History = history;
    cfg.StorageType = js_FileStorage;
    cfg.Replicas = replicas > 0 ? replicas : 1;
    cfg.TTL = ttl_s * NS_PER_S;
    s = js_CreateKeyValue(&k->store, js, &cfg);
    if (s != NATS_OK) {
        /* Created by an earlier version with other settings, or by an
         * operator: use it as it is rather than refuse to start. */
        s = js_KeyValue(&k->store, js, bucket);
    }
    if (s != NATS_OK) {
        snprintf(err, err_len, "cannot create or open key-value bucket %s: %s", bucket,
                 nats_reason(s));
        kv_destroy(k);
        return DX_ERR_IO;
    }
    *out = k;
    return DX_OK;
}

void kv_destroy(kv *k)
{
    if (k == NULL)
        return;
    kvStore_Destroy(k->store);
    free(k);
}

dx_status kv_open(kv **out, bus *b, const char *bucket, int replicas, int64_t ttl_s, char *err,
                  size_t err_len)
{
    return open_bucket(out, b, bucket, replicas, ttl_s, 1, err, err_len);
}

dx_status kv_open_versioned(kv **out, bus *b, const char *bucket, int replicas, int history,
                            char *err, size_t err_len)
{
    return open_bucket(out, b, bucket, replicas, 0, history, err, err_len);
}

const char *kv_bucket(const kv *k)
{
    return k != NULL ? k->bucket : "";
}

dx_status kv_get(kv *k, const char *key, char **value, uint64_t *revision)
{
    kvEntry *e = NULL;
    natsStatus s = kvStore_Get(&e, k->store, key);
    char *copy;
    int len;

    if (s == NATS_NOT_FOUND)
        return DX_ERR_NOT_FOUND;
    if (s != NATS_OK) {
        log_printf(LOG_LEVEL_WARN, NULL, "cannot read %s from key-value bucket %s: %s", key,
                   k->bucket, nats_reason(s));
        return DX_ERR_IO;
    }
    len = kvEntry_ValueLen(e);
    copy = malloc((size_t)len + 1);
    if (copy == NULL) {
        kvEntry_Destroy(e);
        return DX_ERR_NOMEM;
    }
    if (len > 0)
        memcpy(copy, kvEntry_Value(e), (size_t)len);
    copy[len] = '\0';
    if (revision != NULL)
        *revision = kvEntry_Revision(e);
    kvEntry_Destroy(e);
    *value = copy;
    return DX_OK;
}

/*
 * nats.c reports a failed conditional write as a generic error whose code is
 * not returned to the caller.  Reading the key tells a lost race (the key
 * exists, at another revision) from an unreachable bucket.
 */
static dx_status why_refused(kv *k, const char *key, uint64_t last)
{
    kvEntry *e = NULL;
    natsStatus s = kvStore_Get(&e, k->store, key);
    dx_status ds;

    if (s == NATS_NOT_FOUND)
        return last == 0 ? DX_ERR_IO : DX_ERR_NOT_FOUND;
    if (s != NATS_OK)
        return DX_ERR_IO;
    ds = kvEntry_Revision(e) != last ? DX_ERR_EXISTS : DX_ERR_IO;
    kvEntry_Destroy(e);
    return ds;
}

static dx_status conditional_write(kv *k, const char *key, const char *value, uint64_t last,
                                   uint64_t *revision)
{
    uint64_t rev = 0;
    char reason[256];
    natsStatus s;
    dx_status ds;

    if (last == 0)
        s = kvStore_Create(&rev, k->store, key, value, (int)strlen(value));
    else
        s = kvStore_Update(&rev, k->store, key, value, (int)strlen(value), last);
    if (s == NATS_OK) {
        if (revision != NULL)
            *revision = rev;
        return DX_OK;
    }
    /* Kept before why_refused() overwrites nats.c's last error. */
    snprintf(reason, sizeof(reason), "%s", nats_reason(s));
    ds = why_refused(k, key, last);
    if (ds == DX_ERR_IO)
        log_printf(LOG_LEVEL_WARN, NULL, "cannot write %s in key-value bucket %s: %s", key,
                   k->bucket, reason);
    return ds;
}

dx_status kv_create(kv *k, const char *key, const char *value, uint64_t *revision)
{
    return conditional_write(k, key, value, 0, revision);
}

dx_status kv_update(kv *k, const char *key, const char *value, uint64_t last, uint64_t *revision)
{
    if (last == 0)
        return DX_ERR_INVALID;
    return conditional_write(k, key, value, last, revision);
}

dx_status kv_put(kv *k, const char *key, const char *value, uint64_t *revision)
{
    uint64_t rev = 0;
    natsStatus s = kvStore_PutString(&rev, k->store, key, value);

    if (s != NATS_OK) {
        log_printf(LOG_LEVEL_WARN, NULL, "cannot write %s in key-value bucket %s: %s", key,
                   k->bucket, nats_reason(s));
        return DX_ERR_IO;
    }
    if (revision != NULL)
        *revision = rev;
    return DX_OK;
}

dx_status kv_delete(kv *k, const char *key)
{
    natsStatus s = kvStore_Delete(k->store, key);

    return s == NATS_OK ? DX_OK : DX_ERR_IO;
}

void kv_keys_free(char **keys, size_t count)
{
    for (size_t i = 0; keys != NULL && i < count; i++)
        free(keys[i]);
    free(keys);
}

dx_status kv_keys(kv *k, char ***keys, size_t *count)
{
    kvKeysList list = {0};
    natsStatus s = kvStore_Keys(&list, k->store, NULL);
    char **out = NULL;
    dx_status ds = DX_OK;
    size_t n = 0;

    *keys = NULL;
    *count = 0;
    if (s == NATS_NOT_FOUND)
        return DX_OK; /* an empty bucket */
    if (s != NATS_OK)
        return DX_ERR_IO;
    out = calloc((size_t)list.Count + 1, sizeof(*out));
    for (int i = 0; out != NULL && i < list.Count; i++) {
        out[n] = strdup(list.Keys[i]);
        if (out[n++] == NULL)
            ds = DX_ERR_NOMEM;
    }
    if (out == NULL)
        ds = DX_ERR_NOMEM;
    kvKeysList_Destroy(&list);
    if (ds != DX_OK) {
        kv_keys_free(out, n);
        return ds;
    }
    *keys = out;
    *count = n;
    return DX_OK;
}

void kv_history_free(kv_version *versions, size_t count)
{
    for (size_t i = 0; versions != NULL && i < count; i++)
        free(versions[i].value);
    free(versions);
}

dx_status kv_history(kv *k, const char *key, kv_version **versions, size_t *count)
{
    kvEntryList list = {0};
    natsStatus s = kvStore_History(&list, k->store, key, NULL);
    kv_version *out;
    dx_status ds = DX_OK;

    *versions = NULL;
    *count = 0;
    if (s == NATS_NOT_FOUND)
        return DX_ERR_NOT_FOUND;
    if (s != NATS_OK)
        return DX_ERR_IO;
    out = calloc((size_t)list.Count + 1, sizeof(*out));
    for (int i = 0; out != NULL && i < list.Count; i++) {
        kvEntry *e = list.Entries[i];
        int len = kvEntry_ValueLen(e);

        out[i].revision = kvEntry_Revision(e);
        out[i].created_ms = kvEntry_Created(e) / 1000000;
        out[i].deleted = kvEntry_Operation(e) != kvOp_Put;
        out[i].value = malloc((size_t)len + 1);
        if (out[i].value == NULL) {
            ds = DX_ERR_NOMEM;
            continue;
        }
        if (len > 0)
            memcpy(out[i].value, kvEntry_Value(e), (size_t)len);
        out[i].value[len] = '\0';
    }
    if (out == NULL)
        ds = DX_ERR_NOMEM;
    if (ds != DX_OK) {
        kv_history_free(out, (size_t)list.Count);
    } else {
        *versions = out;
        *count = (size_t)list.Count;
    }
    kvEntryList_Destroy(&list);
    return ds;
}
