#pragma once

#include <stddef.h>
#include <stdint.h>

/*
 * The set of rows already written, for exact-duplicate removal: 128-bit row
 * hashes, 16 bytes per unique row, plus half a byte of index per row and a
 * fixed 4 MiB table of recent rows.
 *
 * A hash table would need free slots (24 to 32 bytes per row at usual load
 * factors) and a doubling step that briefly holds both tables, which breaks
 * a 32 MB budget at a million rows.  Instead recent hashes go to a small
 * table, and when it is half full they are sorted and merged into one sorted
 * array that grows with mremap(): no copy, and only the pages in use count
 * towards the resident size.  Hashes are uniform, so a directory indexed by
 * their top bits (one 32-bit entry per 8 keys) leads straight to the few
 * keys a lookup must compare; dupset_insert_many() prefetches those for a
 * batch of keys first, so the cache misses of a batch overlap.
 */

typedef struct dupset dupset;

typedef struct dupset_key {
    uint64_t high;
    uint64_t low;
} dupset_key;

/* Returns a new empty set owned by the caller (free with dupset_destroy()),
 * or NULL when memory is short. */
dupset *dupset_create(void);

/* Frees the set and everything it holds; accepts NULL. */
void dupset_destroy(dupset *set);

/* Adds key; returns 1 when it was new, 0 when it was already there, -1 when
 * memory is short (the set is unchanged). */
int dupset_insert(dupset *set, dupset_key key);

/*
 * Adds keys[0..n) in order, exactly as n calls to dupset_insert() would, and
 * sets fresh[i] to what the i-th call would have returned (a key repeated
 * within the batch is fresh the first time only).  Returns 0, or -1 when
 * memory ran short (keys from the failing one on were not added).
 */
int dupset_insert_many(dupset *set, const dupset_key *keys, size_t n, unsigned char *fresh);

/* Number of keys in the set. */
size_t dupset_count(const dupset *set);

/* Bytes of memory the set holds (mapped, not necessarily resident). */
size_t dupset_bytes(const dupset *set);
