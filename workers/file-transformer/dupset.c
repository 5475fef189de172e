#include "dupset.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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
/* Keys per page of a spill file: one pread() of 4 KiB per lookup that the
 * filter lets through, and one 16-byte fence key in memory per page. */
#define PAGE_KEYS 256
/* Keys per read() or write() buffer while a spill file is rewritten. */
#define STREAM_KEYS 4096
/* Bits set per key in a 512-bit block of the filter.  Four is the best
 * choice from about 5 bits per key (20M rows in 12 MiB: ~9% of lookups reach
 * the file) to 20 (5M rows: 0.1%). */
#define FILTER_BITS 4

struct dupset {
    dupset_key *sorted; /* mmap()ed, count_sorted keys in order */
    size_t count_sorted;
    size_t mapped;       /* bytes mapped at sorted */
    uint32_t *directory; /* 2^directory_bits + 1 starts into sorted */
    unsigned directory_bits;
    size_t directory_size; /* entries allocated */
    dupset_key *recent;    /* 2^recent_bits slots, all-zero when free */
    unsigned recent_bits;
    unsigned recent_min_bits;
    size_t count_recent;
    size_t budget; /* bytes the set may hold, spill file excluded */
    /* Keys moved out of memory: one sorted file (unlinked, so it goes away
     * with the process), its first key of every page, and a blocked Bloom
     * filter of 64-byte blocks that answers "surely not there" for most
     * new keys without reading the file. */
    int fd; /* -1 before the first spill */
    size_t count_disk;
    dupset_key *fences; /* one per PAGE_KEYS keys of the file */
    size_t fence_cap;
    uint64_t *filter; /* filter_blocks * 8 words */
    size_t filter_blocks;
    dupset_key *page; /* PAGE_KEYS, the page a lookup reads */
    char error[160];  /* why the last call failed */
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

dupset *dupset_create(size_t budget)
{
    dupset *set = calloc(1, sizeof(*set));

    if (set == NULL)
        return NULL;
    set->fd = -1;
    set->budget = budget ? budget : DUPSET_DEFAULT_BUDGET;
    if (set->budget < DUPSET_MIN_BUDGET)
        set->budget = DUPSET_MIN_BUDGET;
    /* The recent table takes at most an eighth of the budget, so a small
     * budget still leaves room for sorted keys between spills. */
    set->recent_min_bits = RECENT_MIN_BITS;
    while (set->recent_min_bits > 8 &&
           ((size_t)sizeof(dupset_key) << set->recent_min_bits) > set->budget / 8)
        set->recent_min_bits--;
    set->recent_bits = set->recent_min_bits;
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
    if (set->fd >= 0)
        close(set->fd);
    free(set->directory);
    free(set->recent);
    free(set->fences);
    free(set->filter);
    free(set->page);
    free(set);
}

size_t dupset_count(const dupset *set)
{
    return set->count_sorted + set->count_recent + set->count_disk;
}

size_t dupset_count_spilled(const dupset *set)
{
    return set->count_disk;
}

const char *dupset_error(const dupset *set)
{
    return set->error[0] ? set->error : "out of memory";
}

/* What the spilled part holds in memory: filter, fences, page buffer. */
static size_t spill_bytes(const dupset *set)
{
    if (set->fd < 0)
        return 0;
    return set->filter_blocks * 64 + set->fence_cap * sizeof(dupset_key) +
           PAGE_KEYS * sizeof(dupset_key);
}

size_t dupset_bytes(const dupset *set)
{
    return set->mapped + set->directory_size * sizeof(uint32_t) +
           recent_slots(set) * sizeof(dupset_key) + spill_bytes(set) + sizeof(*set);
}

/* The filter block of key and the FILTER_BITS bits it sets there, all from
 * bits of the hash that nothing else uses (the top bits of high place it in
 * the tables). */
static uint64_t *filter_block(const dupset *set, dupset_key key)
{
    size_t block = (size_t)(((uint64_t)(uint32_t)key.high * set->filter_blocks) >> 32);

    return &set->filter[block * 8];
}

static void filter_add(dupset *set, dupset_key key)
{
    uint64_t *block = filter_block(set, key);

    for (unsigned i = 0; i < FILTER_BITS; i++) {
        unsigned bit = (unsigned)(key.low >> (9 * i)) & 511;
        block[bit >> 6] |= (uint64_t)1 << (bit & 63);
    }
}

static int filter_may_hold(const dupset *set, dupset_key key)
{
    const uint64_t *block = filter_block(set, key);

    for (unsigned i = 0; i < FILTER_BITS; i++) {
        unsigned bit = (unsigned)(key.low >> (9 * i)) & 511;
        if (!(block[bit >> 6] & ((uint64_t)1 << (bit & 63))))
            return 0;
    }
    return 1;
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

/* Reads n keys at key index first of the spill file fd; returns 0 or -1
 * with set->error filled. */
static int read_keys(dupset *set, int fd, size_t first, dupset_key *keys, size_t n)
{
    size_t want = n * sizeof(dupset_key), done = 0;
    off_t at = (off_t)(first * sizeof(dupset_key));

    while (done < want) {
        ssize_t got = pread(fd, (char *)keys + done, want - done, at + (off_t)done);
        if (got <= 0) {
            snprintf(set->error, sizeof(set->error), "reading the spill file: %s",
                     got < 0 ? strerror(errno) : "short file");
            return -1;
        }
        done += (size_t)got;
    }
    return 0;
}

/* 1 when key is in the spill file, 0 when not, -1 on a read error. */
static int in_disk(dupset *set, dupset_key key)
{
    size_t lo = 0, hi, first, n;

    if (set->count_disk == 0 || !filter_may_hold(set, key))
        return 0;
    /* The last page whose first key is <= key. */
    hi = (set->count_disk + PAGE_KEYS - 1) / PAGE_KEYS;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (key_less(key, set->fences[mid]))
            hi = mid;
        else
            lo = mid;
    }
    first = lo * PAGE_KEYS;
    n = set->count_disk - first < PAGE_KEYS ? set->count_disk - first : PAGE_KEYS;
    if (read_keys(set, set->fd, first, set->page, n) < 0)
        return -1;
    lo = 0;
    hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (key_less(set->page[mid], key))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && key_equal(set->page[lo], key);
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

/* The recent table's size once count keys are sorted in memory. */
static unsigned recent_bits_for(const dupset *set, size_t count)
{
    unsigned bits = set->recent_bits;

    while (((size_t)1 << bits) < count / 16)
        bits++;
    return bits;
}

/* Empties the recent table, growing it when the sorted array outgrew it.  A
 * failed allocation keeps the old table: merges just stay more frequent. */
static void resize_recent(dupset *set)
{
    unsigned bits = recent_bits_for(set, set->count_sorted);
    dupset_key *bigger;

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

/* Creates an unlinked temporary file under TMPDIR; returns its descriptor,
 * or -1 with set->error filled. */
static int open_spill_file(dupset *set)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    int fd;

    if (dir == NULL || dir[0] == '\0')
        dir = "/tmp";
    if ((size_t)snprintf(path, sizeof(path), "%s/dx-dupset.XXXXXX", dir) >= sizeof(path)) {
        snprintf(set->error, sizeof(set->error), "TMPDIR is too long for a spill file");
        return -1;
    }
    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0) {
        snprintf(set->error, sizeof(set->error), "creating a spill file in %.100s: %s", dir,
                 strerror(errno));
        return -1;
    }
    /* Nothing to clean up after a crash, and nobody else can open it. */
    unlink(path);
    return fd;
}

/* Writes keys[0..n) at the end of fd; returns 0 or -1 with set->error. */
static int write_keys(dupset *set, int fd, const dupset_key *keys, size_t n)
{
    const char *p = (const char *)keys;
    size_t left = n * sizeof(dupset_key);

    while (left > 0) {
        ssize_t put = write(fd, p, left);
        if (put < 0 && errno == EINTR)
            continue;
        if (put <= 0) {
            snprintf(set->error, sizeof(set->error), "writing the spill file: %s",
                     put < 0 ? strerror(errno) : "no progress");
            return -1;
        }
        p += put;
        left -= (size_t)put;
    }
    return 0;
}

/* The keys of one spill being written: the old file streamed in, the new
 * one streamed out, each through a buffer of STREAM_KEYS keys. */
typedef struct spill_run {
    int out_fd;
    size_t disk_next; /* next key index of the old file to buffer */
    dupset_key *in;   /* buffered old keys, in[in_pos..in_len) unread */
    size_t in_pos, in_len;
    dupset_key *out;
    size_t out_len;
    size_t written;
} spill_run;

/* The next key of the old file, refilling the buffer; 1, 0 at the end, -1 on
 * a read error. */
static int peek_disk(dupset *set, spill_run *run, dupset_key *key)
{
    if (run->in_pos == run->in_len) {
        size_t n = set->count_disk - run->disk_next;

        if (n == 0)
            return 0;
        if (n > STREAM_KEYS)
            n = STREAM_KEYS;
        if (read_keys(set, set->fd, run->disk_next, run->in, n) < 0)
            return -1;
        run->disk_next += n;
        run->in_pos = 0;
        run->in_len = n;
    }
    *key = run->in[run->in_pos];
    return 1;
}

static int emit(dupset *set, spill_run *run, dupset_key key)
{
    if (run->written % PAGE_KEYS == 0)
        set->fences[run->written / PAGE_KEYS] = key;
    run->written++;
    run->out[run->out_len++] = key;
    if (run->out_len < STREAM_KEYS)
        return 0;
    run->out_len = 0;
    return write_keys(set, run->out_fd, run->out, STREAM_KEYS);
}

/* Merges the old file, the sorted array and the m sorted recent keys r into
 * run->out_fd.  The three hold distinct keys.  Keys coming from memory go
 * into the filter when there is one.  Returns 0 or -1. */
static int merge_to_file(dupset *set, spill_run *run, const dupset_key *r, size_t m)
{
    /* Keys from memory go into the filter, whose blocks are random and far
     * larger than the cache: the block of a key this far ahead in each
     * source is prefetched (inline: see dupset_insert_many()). */
    enum { AHEAD = 8 };
    size_t i = 0, j = 0;
    dupset_key d = {0};
    int have_d = peek_disk(set, run, &d);

    for (;;) {
        dupset_key k = {0};
        int from = -1; /* 0: sorted array, 1: recent keys, 2: old file */

        if (set->filter != NULL && i + AHEAD < set->count_sorted)
            __builtin_prefetch(filter_block(set, set->sorted[i + AHEAD]));
        if (set->filter != NULL && j + AHEAD < m)
            __builtin_prefetch(filter_block(set, r[j + AHEAD]));
        if (i < set->count_sorted) {
            k = set->sorted[i];
            from = 0;
        }
        if (j < m && (from < 0 || key_less(r[j], k))) {
            k = r[j];
            from = 1;
        }
        if (have_d > 0 && (from < 0 || key_less(d, k))) {
            k = d;
            from = 2;
        }
        if (from < 0)
            break;
        if (from == 0)
            i++;
        else if (from == 1)
            j++;
        else
            run->in_pos++;
        if (from != 2 && set->filter != NULL)
            filter_add(set, k);
        if (emit(set, run, k) < 0)
            return -1;
        if (from == 2)
            have_d = peek_disk(set, run, &d);
    }
    if (have_d < 0)
        return -1;
    return write_keys(set, run->out_fd, run->out, run->out_len);
}

/* Fills a new filter from the spill file (the first spill: the filter could
 * not be allocated while the keys were still in memory). */
static int fill_filter(dupset *set, dupset_key *buf)
{
    set->filter_blocks = set->budget / 2 / 64;
    set->filter = calloc(set->filter_blocks, 64);
    if (set->filter == NULL)
        return -1;
    for (size_t at = 0; at < set->count_disk; at += STREAM_KEYS) {
        size_t n = set->count_disk - at < STREAM_KEYS ? set->count_disk - at : STREAM_KEYS;

        if (read_keys(set, set->fd, at, buf, n) < 0)
            return -1;
        for (size_t k = 0; k < n; k++)
            filter_add(set, buf[k]);
    }
    return 0;
}

/* Empties memory after a spill: the sorted array and directory are given
 * back, the recent table shrinks to its first size. */
static int forget_memory(dupset *set)
{
    if (set->sorted != NULL)
        munmap(set->sorted, set->mapped);
    set->sorted = NULL;
    set->mapped = 0;
    set->count_sorted = 0;
    free(set->directory);
    set->directory = NULL;
    set->directory_size = 0;
    set->directory_bits = 0;
    set->count_recent = 0;
    if (set->recent_bits != set->recent_min_bits) {
        free(set->recent);
        set->recent_bits = set->recent_min_bits;
        set->recent = calloc(recent_slots(set), sizeof(dupset_key));
        return set->recent ? 0 : -1;
    }
    memset(set->recent, 0, recent_slots(set) * sizeof(dupset_key));
    return 0;
}

/*
 * Moves every key in memory to a new spill file, merged with the old one:
 * one sorted file, so a lookup the filter lets through costs one pread().
 * Rewriting the file each time costs O(n) per spill; at the default budget
 * a spill holds about half a million keys, so 20M rows rewrite ~6 GB through
 * the page cache, and 5M rows a tenth of that.  Returns 0 or -1 (the set can
 * then only be destroyed).
 */
static int spill(dupset *set)
{
    size_t m = gather_recent(set);
    size_t total = set->count_disk + set->count_sorted + m;
    size_t pages = (total + PAGE_KEYS - 1) / PAGE_KEYS;
    spill_run run = {.out_fd = -1};
    dupset_key *fences;
    int ret = -1;

    fences = realloc(set->fences, pages * sizeof(dupset_key));
    if (fences == NULL)
        goto done;
    set->fences = fences;
    set->fence_cap = pages;
    run.in = malloc(STREAM_KEYS * sizeof(dupset_key));
    run.out = malloc(STREAM_KEYS * sizeof(dupset_key));
    if (set->page == NULL)
        set->page = malloc(PAGE_KEYS * sizeof(dupset_key));
    if (run.in == NULL || run.out == NULL || set->page == NULL)
        goto done;
    run.out_fd = open_spill_file(set);
    if (run.out_fd < 0 || merge_to_file(set, &run, set->recent, m) < 0)
        goto done;
    if (set->fd >= 0)
        close(set->fd);
    set->fd = run.out_fd;
    run.out_fd = -1;
    set->count_disk = total;
    if (forget_memory(set) < 0)
        goto done;
    if (set->filter == NULL && fill_filter(set, run.in) < 0)
        goto done;
    ret = 0;
done:
    if (run.out_fd >= 0)
        close(run.out_fd);
    free(run.in);
    free(run.out);
    return ret;
}

/* Whether merging the recent keys into memory would take the set over its
 * budget. */
static int over_budget(const dupset *set)
{
    size_t count = set->count_sorted + set->count_recent;
    size_t need = count * sizeof(dupset_key) +
                  (((size_t)1 << directory_bits_for(count)) + 1) * sizeof(uint32_t) +
                  ((size_t)sizeof(dupset_key) << recent_bits_for(set, count)) + spill_bytes(set);

    return need > set->budget;
}

int dupset_insert(dupset *set, dupset_key key)
{
    size_t slot;
    int found;

    key = storable(key);
    if (in_recent(set, key, &slot) || in_sorted(set, key))
        return 0;
    found = in_disk(set, key);
    if (found != 0)
        return found > 0 ? 0 : -1;
    if (set->count_recent == recent_slots(set) / 2) {
        if ((over_budget(set) ? spill(set) : merge_recent(set)) < 0)
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
            if (set->filter != NULL)
                __builtin_prefetch(filter_block(set, storable(keys[first])));
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
