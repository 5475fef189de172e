#include "dupset.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/*
 * The recent-keys table is kept at most half full so probes stay short.  It
 * starts at 2^16 slots (1 MiB, a merge every 32768 new rows) and, once the
 * sorted array is large, grows to 1/16 of it: each merge rewrites the whole
 * array, so a fixed table would make a long file cost quadratic time, while
 * this costs one byte per row past a million rows and keeps merges linear.
 */
#define RECENT_MIN_BITS 16

struct dupset {
    dupset_key *sorted; /* mmap()ed, count_sorted keys in order */
    size_t count_sorted;
    size_t mapped;      /* bytes mapped at sorted */
    dupset_key *recent; /* 2^recent_bits slots, all-zero when free */
    unsigned recent_bits;
    size_t count_recent;
};

static size_t recent_slots(const dupset *set)
{
    return (size_t)1 << set->recent_bits;
}

static int key_less(dupset_key a, dupset_key b)
{
    return a.high < b.high || (a.high == b.high && a.low < b.low);
}

static int key_equal(dupset_key a, dupset_key b)
{
    return a.high == b.high && a.low == b.low;
}

static int key_free(dupset_key k)
{
    return k.high == 0 && k.low == 0;
}

/* The home slot is taken from the high bits so that the table, read in slot
 * order, is already almost sorted: merging then needs no real sort. */
static size_t home_slot(const dupset *set, dupset_key k)
{
    return (size_t)(k.high >> (64 - set->recent_bits));
}

dupset *dupset_create(void)
{
    dupset *set = calloc(1, sizeof(*set));

    if (set == NULL)
        return NULL;
    set->recent_bits = RECENT_MIN_BITS;
    set->recent = calloc(recent_slots(set), sizeof(dupset_key));
    if (set->recent == NULL) {
        free(set);
        return NULL;
    }
    return set;
}

void dupset_destroy(dupset *set)
{
    if (set == NULL)
        return;
    if (set->sorted != NULL)
        munmap(set->sorted, set->mapped);
    free(set->recent);
    free(set);
}

size_t dupset_count(const dupset *set)
{
    return set->count_sorted + set->count_recent;
}

size_t dupset_bytes(const dupset *set)
{
    return set->mapped + recent_slots(set) * sizeof(dupset_key) + sizeof(*set);
}

static int in_sorted(const dupset *set, dupset_key key)
{
    const dupset_key *a = set->sorted;
    size_t n = set->count_sorted, lo, hi, step;
    size_t guess;

    if (n == 0)
        return 0;
    /* Uniform hashes: the rank of key is about high / 2^64 * n. */
    guess = (size_t)((double)key.high * (1.0 / 18446744073709551616.0) * (double)n);
    if (guess >= n)
        guess = n - 1;
    /* Gallop to a bracket [lo, hi) that holds the key if present. */
    if (key_less(a[guess], key)) {
        lo = guess + 1;
        step = 1;
        while (lo + step < n && key_less(a[lo + step - 1], key))
            step *= 2;
        hi = lo + step < n ? lo + step : n;
    } else {
        hi = guess + 1;
        step = 1;
        while (step < hi && !key_less(a[hi - step - 1], key))
            step *= 2;
        lo = step < hi ? hi - step - 1 : 0;
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (key_less(a[mid], key))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && key_equal(a[lo], key);
}

/* Makes room for extra more keys in the sorted array. */
static int grow_sorted(dupset *set, size_t extra)
{
    size_t need = (set->count_sorted + extra) * sizeof(dupset_key);
    size_t size = set->mapped ? set->mapped : 1 << 20;
    void *p;

    if (need <= set->mapped)
        return 0;
    while (size < need)
        size *= 2;
    if (set->sorted == NULL)
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    else
        p = mremap(set->sorted, set->mapped, size, MREMAP_MAYMOVE);
    if (p == MAP_FAILED)
        return -1;
    set->sorted = p;
    set->mapped = size;
    return 0;
}

/* Empties the recent table, growing it when the sorted array outgrew it.  A
 * failed allocation keeps the old table: merges just stay more frequent. */
static void resize_recent(dupset *set)
{
    unsigned bits = set->recent_bits;
    dupset_key *bigger;

    while (((size_t)1 << bits) < set->count_sorted / 16)
        bits++;
    if (bits != set->recent_bits) {
        bigger = calloc((size_t)1 << bits, sizeof(dupset_key));
        if (bigger != NULL) {
            free(set->recent);
            set->recent = bigger;
            set->recent_bits = bits;
            return;
        }
    }
    memset(set->recent, 0, recent_slots(set) * sizeof(dupset_key));
}

/* Moves the recent keys into the sorted array and empties the table. */
static int merge_recent(dupset *set)
{
    dupset_key *r = set->recent;
    size_t m = 0;

    if (grow_sorted(set, set->count_recent) < 0)
        return -1;
    for (size_t i = 0; i < recent_slots(set); i++) {
        if (!key_free(r[i]))
            r[m++] = r[i];
    }
    /* Insertion sort: keys are nearly in order already (see home_slot), only
     * probe runs and the wrap-around at the table end are out of place. */
    for (size_t i = 1; i < m; i++) {
        dupset_key k = r[i];
        size_t j = i;
        while (j > 0 && key_less(k, r[j - 1])) {
            r[j] = r[j - 1];
            j--;
        }
        r[j] = k;
    }
    /* Merge from the back, in place: the array has room for both. */
    size_t i = set->count_sorted, j = m, w = set->count_sorted + m;
    while (j > 0) {
        if (i > 0 && key_less(r[j - 1], set->sorted[i - 1]))
            set->sorted[--w] = set->sorted[--i];
        else
            set->sorted[--w] = r[--j];
    }
    set->count_sorted += m;
    set->count_recent = 0;
    resize_recent(set);
    return 0;
}

int dupset_insert(dupset *set, dupset_key key)
{
    size_t slot, mask;

    /* The all-zero key marks a free slot; folding it onto its neighbour
     * costs one chance in 2^127 of a false duplicate. */
    if (key_free(key))
        key.low = 1;
    mask = recent_slots(set) - 1;
    for (slot = home_slot(set, key); !key_free(set->recent[slot]); slot = (slot + 1) & mask) {
        if (key_equal(set->recent[slot], key))
            return 0;
    }
    if (in_sorted(set, key))
        return 0;
    if (set->count_recent == recent_slots(set) / 2) {
        if (merge_recent(set) < 0)
            return -1;
        /* The table was emptied, maybe resized: find the slot again. */
        mask = recent_slots(set) - 1;
        for (slot = home_slot(set, key); !key_free(set->recent[slot]); slot = (slot + 1) & mask)
            ;
    }
    set->recent[slot] = key;
    set->count_recent++;
    return 1;
}
