#include "snapshot.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* Well under NATS' default 1 MiB payload, headers included. */
#define CHUNK_BYTES (512u * 1024)
#define HEAD_KEY    "head"

struct snapshot {
    kv *store;
    uint64_t generation; /* of the last head read or written (0: none) */
    size_t chunks;       /* of that generation */
};

snapshot *snapshot_create(kv *k)
{
    snapshot *sn = calloc(1, sizeof(*sn));

    if (sn != NULL)
        sn->store = k;
    return sn;
}

void snapshot_destroy(snapshot *sn)
{
    free(sn);
}

static void chunk_key(char *out, size_t out_len, uint64_t generation, size_t i)
{
    snprintf(out, out_len, "chunk.%" PRIu64 ".%zu", generation, i);
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
    util_sha256 *h = util_sha256_create();

    out[0] = '\0';
    if (h == NULL)
        return;
    util_sha256_update(h, data, len);
    util_sha256_hex(h, out);
    util_sha256_destroy(h);
}

/* The previous generation's chunks: purged once nothing names them. */
static void purge_generation(snapshot *sn, uint64_t generation, size_t chunks)
{
    char key[64];

    for (size_t i = 0; i < chunks; i++) {
        chunk_key(key, sizeof(key), generation, i);
        kv_purge(sn->store, key);
    }
}

dx_status snapshot_save(snapshot *sn, uint64_t stream_seq, const void *data, size_t len)
{
    /* Generations only grow, also across restarts and replicas: the time
     * in ms, bumped past the last one seen. */
    uint64_t generation = (uint64_t)util_now_ms();
    size_t chunks = (len + CHUNK_BYTES - 1) / CHUNK_BYTES;
    char key[64], head[256], sha[65];
    dx_status s = DX_OK;

    if (generation <= sn->generation)
        generation = sn->generation + 1;
    for (size_t i = 0; s == DX_OK && i < chunks; i++) {
        size_t off = i * CHUNK_BYTES;
        size_t n = len - off < CHUNK_BYTES ? len - off : CHUNK_BYTES;

        chunk_key(key, sizeof(key), generation, i);
        s = kv_put_bytes(sn->store, key, (const char *)data + off, n);
    }
    sha256_hex(data, len, sha);
    snprintf(head, sizeof(head), "1 %" PRIu64 " %" PRIu64 " %zu %zu %s", stream_seq, generation,
             chunks, len, sha);
    if (s == DX_OK)
        s = kv_put_bytes(sn->store, HEAD_KEY, head, strlen(head));
    if (s != DX_OK) {
        purge_generation(sn, generation, chunks);
        return s;
    }
    if (sn->generation != 0)
        purge_generation(sn, sn->generation, sn->chunks);
    sn->generation = generation;
    sn->chunks = chunks;
    return DX_OK;
}

/* Reads and checks the chunks a head names into one new buffer. */
static dx_status read_chunks(snapshot *sn, uint64_t generation, size_t chunks, size_t len,
                             const char *sha, void **data, char *err, size_t err_len)
{
    char *all = malloc(len + 1);
    size_t at = 0;
    char key[64], got[65];
    dx_status s = all != NULL ? DX_OK : DX_ERR_NOMEM;

    for (size_t i = 0; s == DX_OK && i < chunks; i++) {
        char *chunk = NULL;
        size_t n = 0;

        chunk_key(key, sizeof(key), generation, i);
        s = kv_get_bytes(sn->store, key, &chunk, &n, NULL);
        if (s == DX_OK && n > len - at) {
            s = DX_ERR_INVALID;
        } else if (s == DX_OK) {
            memcpy(all + at, chunk, n);
            at += n;
        }
        free(chunk);
        if (s == DX_ERR_NOT_FOUND)
            s = DX_ERR_INVALID; /* a chunk the head names is gone */
    }
    if (s == DX_OK) {
        sha256_hex(all, at, got);
        if (at != len || strcmp(got, sha) != 0)
            s = DX_ERR_INVALID;
    }
    if (s == DX_ERR_INVALID)
        snprintf(err, err_len, "snapshot generation %" PRIu64 " is incomplete or corrupt",
                 generation);
    if (s != DX_OK) {
        free(all);
        return s;
    }
    *data = all;
    return DX_OK;
}

dx_status snapshot_load(snapshot *sn, uint64_t *stream_seq, void **data, size_t *len, char *err,
                        size_t err_len)
{
    char *head = NULL;
    char sha[65] = "";
    uint64_t seq = 0, generation = 0;
    size_t chunks = 0, bytes = 0;
    int version = 0;
    dx_status s = kv_get(sn->store, HEAD_KEY, &head, NULL);

    if (s != DX_OK)
        return s;
    if (sscanf(head, "%d %" SCNu64 " %" SCNu64 " %zu %zu %64s", &version, &seq, &generation,
               &chunks, &bytes, sha) != 6 ||
        version != 1 || chunks != (bytes + CHUNK_BYTES - 1) / CHUNK_BYTES) {
        snprintf(err, err_len, "snapshot head is not understood");
        free(head);
        return DX_ERR_INVALID;
    }
    free(head);
    s = read_chunks(sn, generation, chunks, bytes, sha, data, err, err_len);
    if (s != DX_OK)
        return s;
    /* Saves that follow go on from this generation and purge its chunks. */
    sn->generation = generation;
    sn->chunks = chunks;
    *stream_seq = seq;
    *len = bytes;
    return DX_OK;
}
