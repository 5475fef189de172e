#pragma once

#include <stddef.h>
#include <stdint.h>

/*
 * The set of rows already written, for exact-duplicate removal: 128-bit row
 * hashes, 16 bytes per unique row and nothing more once the set is large.
 *
 * A hash table would need free slots (24 to 32 bytes per row at usual load
 * factors) and a doubling step that briefly holds both tables, which breaks
 * a 32 MB budget at a million rows.  Instead recent hashes go to a small
 * fixed table, and when it fills they are sorted and merged into one sorted
 * array that grows with mremap(): no copy, and only the pages in use count
 * towards the resident size.  Lookups in the array start at the position the
 * hash predicts (hashes are uniform) and gallop from there.
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

/* Number of keys in the set. */
size_t dupset_count(const dupset *set);

/* Bytes of memory the set holds (mapped, not necessarily resident). */
size_t dupset_bytes(const dupset *set);
