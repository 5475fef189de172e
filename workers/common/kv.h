#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "status.h"

/*
 * kv: one JetStream key-value bucket (nats.c's kvStore) on the bus's
 * connection, for the small pieces of state that several replicas share and
 * that must survive restarts (daily-checker's last scheduled run and its run
 * claims).  Values are text; every write is acknowledged by JetStream before
 * the call returns.  A kv is used by one thread at a time.
 *
 * Keys are what NATS accepts: letters, digits and "-_=./", not starting or
 * ending with '.'.
 */

typedef struct kv kv;

/*
 * Opens bucket on b's connection, creating it when missing (file storage,
 * `replicas` copies, entries older than ttl_s seconds expire, 0 for never).
 * A bucket that already exists is opened as it is, even when it was created
 * with other settings.  On success *out is a new kv the caller frees with
 * kv_destroy() (before destroying the bus); on failure err holds a one-line
 * reason and DX_ERR_IO is returned (retry later).
 */
dx_status kv_open(kv **out, bus *b, const char *bucket, int replicas, int64_t ttl_s, char *err,
                  size_t err_len);

/*
 * Like kv_open() for a bucket whose entries never expire and which keeps the
 * last `history` values of each key (at most 64), so that a change can be
 * inspected and rolled back.
 */
dx_status kv_open_versioned(kv **out, bus *b, const char *bucket, int replicas, int history,
                            char *err, size_t err_len);

/* Frees the handle (the bucket and its entries stay).  Accepts NULL. */
void kv_destroy(kv *k);

/*
 * Reads key.  On success *value is a new NUL-terminated copy the caller frees
 * and *revision (may be NULL) its revision.  DX_ERR_NOT_FOUND when the key
 * does not exist (or was deleted), DX_ERR_IO when the bucket is unreachable.
 */
dx_status kv_get(kv *k, const char *key, char **value, uint64_t *revision);

/*
 * Writes key only if it does not exist: of several replicas calling it at
 * once, exactly one gets DX_OK; the others get DX_ERR_EXISTS.  *revision (may
 * be NULL) is set on success.  DX_ERR_IO when the bucket is unreachable.
 */
dx_status kv_create(kv *k, const char *key, const char *value, uint64_t *revision);

/*
 * Writes key only if its revision is still `last` (compare and swap).
 * DX_ERR_EXISTS when someone wrote it since, DX_ERR_NOT_FOUND when it was
 * deleted, DX_ERR_IO when the bucket is unreachable.  *revision (may be NULL)
 * is set on success.
 */
dx_status kv_update(kv *k, const char *key, const char *value, uint64_t last, uint64_t *revision);

/* The bucket's name (borrowed, valid until kv_destroy()). */
const char *kv_bucket(const kv *k);

/* Writes key whatever its revision.  DX_ERR_IO when the bucket is unreachable. */
dx_status kv_put(kv *k, const char *key, const char *value, uint64_t *revision);

/* Deletes key (its history stays).  DX_ERR_IO when the bucket is unreachable. */
dx_status kv_delete(kv *k, const char *key);

/*
 * The keys that have a value, in no particular order.  On DX_OK *keys is a
 * new array of *count new strings, freed with kv_keys_free().
 */
dx_status kv_keys(kv *k, char ***keys, size_t *count);
void kv_keys_free(char **keys, size_t count);

typedef struct kv_version {
    uint64_t revision;
    int64_t created_ms; /* when it was written, Unix milliseconds */
    int deleted;        /* a delete or purge marker: value is "" */
    char *value;
} kv_version;

/*
 * Every value key still has in the bucket, oldest first.  On DX_OK
 * *versions is a new array the caller frees with kv_history_free().
 * DX_ERR_NOT_FOUND when the key never existed.
 */
dx_status kv_history(kv *k, const char *key, kv_version **versions, size_t *count);
void kv_history_free(kv_version *versions, size_t count);
