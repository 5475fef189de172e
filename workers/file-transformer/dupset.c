#include "dupset.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/*
 * The recent-keys table is kept at most half full so probes stay short.  It
 * starts at 2^18 slots (4 MiB, a merge every 131072 new rows): each merge
 * streams the whole sorted array through memory, so fewer merges matter more
 * than a few MiB.  Past four million rows it grows to 1/16 of the array, as a
 * fixed table would make a long file cost quadratic time: that costs one byte
 * per row and keeps merges linear.
 */
#define RECENT_MIN_BITS 18
/* Keys per directory entry, on average. */
#define KEYS_PER_BUCKET 8
/* How many keys ahead dupset_insert_many() prefetches. */
#define BATCH_AHEAD 16

struct dupset {
    dupset_key *sorted; /* mmap()ed, count_sorted keys in order */
    size_t count_sorted;
    size_t mapped;       /* bytes mapped at sorted */
    uint32_t *directory; /* 2^directory_bits + 1 starts into sorted */
    unsigned directory_bits;
    size_t directory_size; /* entries allocated */
    dupset_key *recent;    /* 2^recent_bits slots, all-zero when free */
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

/* The all-zero key marks a free slot; folding it onto its neighbour costs
 * one chance in 2^127 of a false duplicate. */
static dupset_key storable(dupset_key k)
{
    if (key_free(k))
        k.low = 1;
    return k;
}

/* The home slot is taken from the high bits so that the table, read in slot
 * order, is already almost sorted: merging then needs no real sort. */
static size_t home_slot(const dupset *set, dupset_key k)
{
    return (size_t)(k.high >> (64 - set->recent_bits));
}

static size_t bucket_of(const dupset *set, dupset_key k)
{
    return set->directory_bits ? (size_t)(k.high >> (64 - set->directory_bits)) : 0;
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
    free(set->directory);
    free(set->recent);
    free(set);
}

size_t dupset_count(const dupset *set)
{
    return set->count_sorted + set->count_recent;
}

size_t dupset_bytes(const dupset *set)
{
    return set->mapped + set->directory_size * sizeof(uint32_t) +
           recent_slots(set) * sizeof(dupset_key) + sizeof(*set);
}

static int in_recent(const dupset *set, dupset_key key, size_t *slot)
{
    size_t mask = recent_slots(set) - 1, i;

    for (i = home_slot(set, key); !key_free(set->recent[i]); i = (i + 1) & mask) {
        if (key_equal(set->recent[i], key))
            return 1;
    }
    *slot = i;
    return 0;
}

static int in_sorted(const dupset *set, dupset_key key)
{
    size_t b, i, end;

    if (set->count_sorted == 0)
        return 0;
    b = bucket_of(set, key);
    end = set->directory[b + 1];
    for (i = set->directory[b]; i < end; i++) {
        if (!key_less(set->sorted[i], key))
            return key_equal(set->sorted[i], key);
    }
    return 0;
}

/* Makes room for extra more keys in the sorted array.  Directory entries
 * are 32-bit, which caps the set at 2^32 rows (64 GiB of hashes). */
static int grow_sorted(dupset *set, size_t extra)
{
    size_t count = set->count_sorted + extra;
    size_t need = count * sizeof(dupset_key);
    size_t size = set->mapped ? set->mapped : 1 << 20;
    void *p;

    if (count > UINT32_MAX)
        return -1;
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
    /* Lookups land anywhere in the array: with 4 KiB pages each one is also
     * a TLB miss.  Huge pages are only a hint; failure changes nothing. */
    madvise(p, size, MADV_HUGEPAGE);
    set->sorted = p;
    set->mapped = size;
    return 0;
}

/* Directory bits for count keys: about KEYS_PER_BUCKET keys per entry. */
static unsigned directory_bits_for(size_t count)
{
    unsigned bits = 0;

    while (bits < 40 && ((size_t)KEYS_PER_BUCKET << bits) < count)
        bits++;
    return bits;
}

/* Makes room for a directory of 2^bits entries, keeping the current ones;
 * returns 0 or -1. */
static int reserve_directory(dupset *set, unsigned bits)
{
    size_t entries = ((size_t)1 << bits) + 1;
    uint32_t *p;

    if (entries <= set->directory_size)
        return 0;
    p = realloc(set->directory, entries * sizeof(uint32_t));
    if (p == NULL)
        return -1;
    set->directory = p;
    set->directory_size = entries;
    return 0;
}

static void build_directory(dupset *set)
{
    size_t buckets = (size_t)1 << set->directory_bits, b = 0;

    for (size_t i = 0; i < set->count_sorted; i++) {
        size_t home = bucket_of(set, set->sorted[i]);
        while (b <= home)
            set->directory[b++] = (uint32_t)i;
    }
    while (b <= buckets)
        set->directory[b++] = (uint32_t)set->count_sorted;
}

/* Shifts the directory for the sorted keys added[0..m), already merged:
 * each entry moves up by the number of added keys in earlier buckets. */
static void update_directory(dupset *set, const dupset_key *added, size_t m)
{
    size_t buckets = (size_t)1 << set->directory_bits, j = 0;

    for (size_t b = 0; b <= buckets; b++) {
        while (j < m && bucket_of(set, added[j]) < b)
            j++;
        set->directory[b] += (uint32_t)j;
    }
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

/* Sorts the keys of the recent table into its first slots; returns them. */
static size_t gather_recent(dupset *set)
{
    dupset_key *r = set->recent;
    size_t m = 0;

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
    return m;
}

/* Moves the recent keys into the sorted array and empties the table. */
static int merge_recent(dupset *set)
{
    dupset_key *r = set->recent;
    size_t m, i = set->count_sorted, w;
    unsigned bits = directory_bits_for(set->count_sorted + set->count_recent);

    if (grow_sorted(set, set->count_recent) < 0 || reserve_directory(set, bits) < 0)
        return -1;
    m = gather_recent(set);
    /* Merge from the back, in place: the array has room for both, and the
     * old keys stream through once, with a well-predicted comparison each
     * since new keys are few among them. */
    w = i + m;
    for (size_t j = m; j > 0;) {
        if (i > 0 && key_less(r[j - 1], set->sorted[i - 1]))
            set->sorted[--w] = set->sorted[--i];
        else
            set->sorted[--w] = r[--j];
    }
    set->count_sorted += m;
    set->count_recent = 0;
    if (bits != set->directory_bits || set->count_sorted == m) {
        set->directory_bits = bits;
        build_directory(set);
    } else {
        update_directory(set, r, m);
    }
    resize_recent(set);
    return 0;
}

int dupset_insert(dupset *set, dupset_key key)
{
    size_t slot;

    key = storable(key);
    if (in_recent(set, key, &slot) || in_sorted(set, key))
        return 0;
    if (set->count_recent == recent_slots(set) / 2) {
        if (merge_recent(set) < 0)
            return -1;
        /* The table was emptied, maybe resized: find the slot again. */
        in_recent(set, key, &slot);
    }
    set->recent[slot] = key;
    set->count_recent++;
    return 1;
}

/* The range of the sorted array a lookup of key compares against. */
static void bucket_range(const dupset *set, dupset_key key, const char **from, const char **to)
{
    size_t b = bucket_of(set, key);

    *from = (const char *)&set->sorted[set->directory[b]];
    *to = (const char *)&set->sorted[set->directory[b + 1]];
}

int dupset_insert_many(dupset *set, const dupset_key *keys, size_t n, unsigned char *fresh)
{
    /*
     * A software pipeline: while key i is inserted, the bucket of key
     * i + BATCH_AHEAD and the directory entry and recent slot of key
     * i + 2 * BATCH_AHEAD are on their way into the cache.  Prefetches are
     * only hints, so a merge in between (which moves everything) costs time,
     * never correctness.  The prefetches are written inline on purpose: GCC
     * deems a function holding only prefetches pure and deletes its calls.
     */
    for (size_t i = 0; i < n + 2 * BATCH_AHEAD; i++) {
        size_t first = i, bucket = i - BATCH_AHEAD, now = i - 2 * BATCH_AHEAD;
        const char *p, *end;
        int added;

        if (first < n) {
            __builtin_prefetch(&set->recent[home_slot(set, keys[first])]);
            if (set->count_sorted > 0)
                __builtin_prefetch(&set->directory[bucket_of(set, keys[first])]);
        }
        if (i >= BATCH_AHEAD && bucket < n && set->count_sorted > 0) {
            bucket_range(set, keys[bucket], &p, &end);
            for (; p < end; p += 64)
                __builtin_prefetch(p);
        }
        if (i >= 2 * BATCH_AHEAD) {
            added = dupset_insert(set, keys[now]);
            if (added < 0)
                return -1;
            fresh[now] = (unsigned char)added;
        }
    }
    return 0;
}
