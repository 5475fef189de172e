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
 *
 * Memory is bounded by a budget.  When merging the recent keys would take the
 * set over it, every key in memory is merged instead into one sorted spill
 * file under TMPDIR (unlinked at once, so it never outlives the process) and
 * memory starts again from empty.  Half the budget then goes to a blocked
 * Bloom filter of the spilled keys: a new key is looked up in the file (one
 * 4 KiB pread() found through one fence key per page kept in memory) only
 * when the filter says it may be there.  The answer is exact either way;
 * only the time a lookup takes depends on the filter.
 */

/* The budget when none is given, and the smallest one accepted. */
#define DUPSET_DEFAULT_BUDGET ((size_t)24 << 20)
#define DUPSET_MIN_BUDGET     ((size_t)64 << 10)

typedef struct dupset dupset;

typedef struct dupset_key {
    uint64_t high;
    uint64_t low;
} dupset_key;

/* Returns a new empty set owned by the caller (free with dupset_destroy()),
 * or NULL when memory is short.  budget is in bytes (0: the default; less
 * than DUPSET_MIN_BUDGET counts as that). */
dupset *dupset_create(size_t budget);

/* Frees the set and everything it holds; accepts NULL. */
void dupset_destroy(dupset *set);

/* Adds key; returns 1 when it was new, 0 when it was already there, -1 when
 * memory is short or the spill file failed (dupset_error() says why; the set
 * can then only be destroyed). */
int dupset_insert(dupset *set, dupset_key key);

/*
 * Adds keys[0..n) in order, exactly as n calls to dupset_insert() would, and
 * sets fresh[i] to what the i-th call would have returned (a key repeated
 * within the batch is fresh the first time only).  Returns 0, or -1 when
 * memory ran short (keys from the failing one on were not added).
 */
int dupset_insert_many(dupset *set, const dupset_key *keys, size_t n, unsigned char *fresh);

/* Number of keys in the set, in memory or spilled. */
size_t dupset_count(const dupset *set);

/* Number of keys in the spill file (0 while everything fits in memory). */
size_t dupset_count_spilled(const dupset *set);

/* Bytes of memory the set holds (mapped, not necessarily resident). */
size_t dupset_bytes(const dupset *set);

/* Why the last failing call failed, one line without the file name (owned by
 * set, valid until the next call). */
const char *dupset_error(const dupset *set);
