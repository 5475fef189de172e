#pragma once

#include <stddef.h>
#include <stdint.h>

#include "kv.h"
#include "status.h"

/*
 * snapshot: status-checker's state saved in a JetStream key-value bucket
 * with the stream sequence it covers, so that a start loads it and replays
 * only the events stored after it (instead of the whole stream, which
 * retention may also have trimmed).
 *
 * A snapshot is larger than one NATS message may be (1 MiB by default), so
 * it is written in chunks under a key of their own generation, then a head
 * naming the generation, the sequence, the length and the sha256 of the
 * whole; the previous generation's chunks are purged after the new head is
 * written.  A reader that finds a head whose chunks do not add up (a save
 * cut short, a bucket edited by hand) ignores the snapshot and replays the
 * whole stream: a snapshot can make a start faster, never wrong.
 */

#define SNAPSHOT_BUCKET "dx-status-snapshot"

typedef struct snapshot snapshot;

/*
 * Snapshots in k (opened on SNAPSHOT_BUCKET by the caller), borrowed: it
 * must outlive the snapshot.  Returns a new snapshot the caller frees with
 * snapshot_destroy(), or NULL when out of memory.
 */
snapshot *snapshot_create(kv *k);

/* Accepts NULL. */
void snapshot_destroy(snapshot *sn);

/*
 * Writes data (len bytes, borrowed) as the snapshot covering the stream up
 * to stream_seq.  DX_ERR_IO when the bucket is unreachable (the previous
 * snapshot stays valid).
 */
dx_status snapshot_save(snapshot *sn, uint64_t stream_seq, const void *data, size_t len);

/*
 * Reads the latest snapshot: *data is a new buffer of *len bytes the caller
 * frees and *stream_seq the sequence it covers.  DX_ERR_NOT_FOUND when there
 * is none, DX_ERR_INVALID (with err) when it is incomplete or corrupt,
 * DX_ERR_IO when the bucket is unreachable.
 */
dx_status snapshot_load(snapshot *sn, uint64_t *stream_seq, void **data, size_t *len, char *err,
                        size_t err_len);
