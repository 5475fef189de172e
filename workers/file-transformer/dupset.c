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
/* Keys per write() buffer of a new spill file, and per read() buffer of
 * each spill file merged into it. */
#define STREAM_KEYS     4096
#define MERGE_READ_KEYS 1024
/* A new spill file is merged with the newest files while they are under
 * MERGE_RATIO times its size.  2 keeps the fewest keys rewritten, but every
 * lookup the filter lets through reads one page per file: on 20M rows, 2, 4
 * and a single file (no ratio) cost the same CPU time within noise, and
 * 4 keeps the files half as many as 2 (docs/development.md, benchmarks). */
#define MERGE_RATIO 4
/* Spill files at most: each is a quarter of the one before it at most, and
 * the set holds under 2^32 keys. */
#define MAX_SPILL_FILES 40
/* Bits set per key in a 512-bit block of the filter.  Four is the best
 * choice from about 5 bits per key (20M rows in 12 MiB: ~9% of lookups reach
 * the file) to 20 (5M rows: 0.1%). */
#define FILTER_BITS 4

/* One sorted spill file: unlinked, so it goes away with the process, and
 * its first key of every page. */
typedef struct spill_file {
    int fd;
    size_t count;
    dupset_key *fences; /* (count + PAGE_KEYS - 1) / PAGE_KEYS */
} spill_file;

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
    /* Keys moved out of memory: sorted files, each at most a quarter of
     * the one before (spill() keeps them so), and a blocked Bloom filter of
     * 64-byte blocks over all of them that answers "surely not there" for
     * most new keys without reading any file. */
    spill_file files[MAX_SPILL_FILES];
    size_t file_count;
    size_t count_disk;
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
    for (size_t f = 0; f < set->file_count; f++) {
        close(set->files[f].fd);
        free(set->files[f].fences);
    }
    free(set->directory);
    free(set->recent);
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

size_t dupset_spill_files(const dupset *set)
{
    return set->file_count;
}

const char *dupset_error(const dupset *set)
{
    return set->error[0] ? set->error : "out of memory";
}

/* What the spilled part holds in memory: filter, fences, page buffer. */
static size_t fence_count(size_t keys)
{
    return (keys + PAGE_KEYS - 1) / PAGE_KEYS;
}

static size_t spill_bytes(const dupset *set)
{
    if (set->file_count == 0)
        return 0;
    return set->filter_blocks * 64 + fence_count(set->count_disk) * sizeof(dupset_key) +
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

/* 1 when key is in the spill file f, 0 when not, -1 on a read error. */
static int in_file(dupset *set, const spill_file *f, dupset_key key)
{
    size_t lo = 0, hi = fence_count(f->count), first, n;

    /* The last page whose first key is <= key. */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (key_less(key, f->fences[mid]))
            hi = mid;
        else
            lo = mid;
    }
    first = lo * PAGE_KEYS;
    n = f->count - first < PAGE_KEYS ? f->count - first : PAGE_KEYS;
    if (read_keys(set, f->fd, first, set->page, n) < 0)
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

/* 1 when key is in a spill file, 0 when not, -1 on a read error.  The
 * largest file first: it is the likeliest to hold a repeat. */
static int in_disk(dupset *set, dupset_key key)
{
    if (set->count_disk == 0 || !filter_may_hold(set, key))
        return 0;
    for (size_t f = 0; f < set->file_count; f++) {
        int found = in_file(set, &set->files[f], key);
        if (found != 0)
            return found;
    }
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

/* One sorted input of a merge: a key array in memory, or a spill file read
 * through a buffer of MERGE_READ_KEYS keys. */
typedef struct merge_input {
    const dupset_key *keys; /* keys[pos..len) not merged yet */
    size_t pos, len;
    const spill_file *file; /* NULL for keys in memory */
    size_t file_next;       /* next key index of file to buffer */
    dupset_key *buffer;
} merge_input;

/* The new spill file being written, through a buffer of STREAM_KEYS keys. */
typedef struct merge_output {
    spill_file file;
    dupset_key *buffer;
    size_t buffered;
} merge_output;

/* Whether in has a key left, refilling its buffer from its file; 1, 0 at
 * the end, -1 on a read error. */
static int input_ready(dupset *set, merge_input *in)
{
    size_t n;

    if (in->pos < in->len)
        return 1;
    if (in->file == NULL || in->file_next == in->file->count)
        return 0;
    n = in->file->count - in->file_next;
    if (n > MERGE_READ_KEYS)
        n = MERGE_READ_KEYS;
    if (read_keys(set, in->file->fd, in->file_next, in->buffer, n) < 0)
        return -1;
    in->file_next += n;
    in->keys = in->buffer;
    in->pos = 0;
    in->len = n;
    return 1;
}

static int emit(dupset *set, merge_output *out, dupset_key key)
{
    if (out->file.count % PAGE_KEYS == 0)
        out->file.fences[out->file.count / PAGE_KEYS] = key;
    out->file.count++;
    out->buffer[out->buffered++] = key;
    if (out->buffered < STREAM_KEYS)
        return 0;
    out->buffered = 0;
    return write_keys(set, out->file.fd, out->buffer, STREAM_KEYS);
}

/*
 * Merges inputs[0..n) into out.  The inputs hold distinct keys.  Keys from
 * memory go into the filter when there is one; the filter block of a key a
 * few places ahead is prefetched, as blocks are random and the filter is
 * far larger than the cache.  Returns 0 or -1.
 */
static int merge_inputs(dupset *set, merge_input *inputs, size_t n, merge_output *out)
{
    enum { AHEAD = 8 };

    for (size_t k = 0; k < n; k++) {
        if (input_ready(set, &inputs[k]) < 0)
            return -1;
    }
    for (;;) {
        merge_input *least = NULL;
        dupset_key key;

        for (size_t k = 0; k < n; k++) {
            merge_input *in = &inputs[k];
            if (in->pos < in->len &&
                (least == NULL || key_less(in->keys[in->pos], least->keys[least->pos])))
                least = in;
        }
        if (least == NULL)
            break;
        key = least->keys[least->pos];
        if (least->file == NULL && set->filter != NULL) {
            if (least->pos + AHEAD < least->len)
                __builtin_prefetch(filter_block(set, least->keys[least->pos + AHEAD]));
            filter_add(set, key);
        }
        least->pos++;
        if (emit(set, out, key) < 0 || input_ready(set, least) < 0)
            return -1;
    }
    return write_keys(set, out->file.fd, out->buffer, out->buffered);
}

/* Fills a new filter from the only spill file (the first spill: the filter
 * could not be allocated while the keys were still in memory). */
static int fill_filter(dupset *set, dupset_key *buf, size_t buf_keys)
{
    const spill_file *f = &set->files[0];

    set->filter_blocks = set->budget / 2 / 64;
    set->filter = calloc(set->filter_blocks, 64);
    if (set->filter == NULL)
        return -1;
    for (size_t at = 0; at < f->count; at += buf_keys) {
        size_t n = f->count - at < buf_keys ? f->count - at : buf_keys;

        if (read_keys(set, f->fd, at, buf, n) < 0)
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

/* How many of the newest spill files a spill of fresh keys merges with:
 * while the newest file left is under MERGE_RATIO times what is merged so
 * far.  Each file is then at least MERGE_RATIO times the next, so there are
 * O(log n) of them, and a key is rewritten only when its file grows by a
 * quarter at least, O(log n) times: O(n log n) in all, where one file
 * rewritten at every spill cost O(n^2). */
static size_t files_to_merge(const dupset *set, size_t fresh)
{
    size_t merged = 0, total = fresh;

    while (merged < set->file_count &&
           set->files[set->file_count - 1 - merged].count < MERGE_RATIO * total) {
        total += set->files[set->file_count - 1 - merged].count;
        merged++;
    }
    /* Never more files than there are slots (only a near-2^32 set could
     * get there): the last slot then takes every newer spill. */
    if (set->file_count - merged >= MAX_SPILL_FILES)
        merged = set->file_count - MAX_SPILL_FILES + 1;
    return merged;
}

/*
 * Moves every key in memory to a new spill file, merged with the newest
 * spill files (files_to_merge()), so that a lookup the filter lets through
 * costs one pread() per file, O(log n) of them, and no spill rewrites all
 * that was spilled before.  Returns 0 or -1 (the set can then only be
 * destroyed).
 */
static int spill(dupset *set)
{
    size_t m = gather_recent(set);
    size_t fresh = set->count_sorted + m;
    size_t merged = files_to_merge(set, fresh);
    size_t first = set->file_count - merged, total = fresh;
    merge_input inputs[2 + MAX_SPILL_FILES] = {{0}};
    merge_output out = {.file = {.fd = -1}};
    dupset_key *reads = NULL;
    int ret = -1;

    for (size_t f = first; f < set->file_count; f++)
        total += set->files[f].count;
    out.file.fences = malloc(fence_count(total) * sizeof(dupset_key));
    out.buffer = malloc(STREAM_KEYS * sizeof(dupset_key));
    reads = malloc((merged > 0 ? merged : 1) * MERGE_READ_KEYS * sizeof(dupset_key));
    if (set->page == NULL)
        set->page = malloc(PAGE_KEYS * sizeof(dupset_key));
    if (out.file.fences == NULL || out.buffer == NULL || reads == NULL || set->page == NULL)
        goto done;
    inputs[0] = (merge_input){.keys = set->sorted, .len = set->count_sorted};
    inputs[1] = (merge_input){.keys = set->recent, .len = m};
    for (size_t k = 0; k < merged; k++)
        inputs[2 + k] =
            (merge_input){.file = &set->files[first + k], .buffer = reads + k * MERGE_READ_KEYS};
    out.file.fd = open_spill_file(set);
    if (out.file.fd < 0 || merge_inputs(set, inputs, 2 + merged, &out) < 0)
        goto done;
    for (size_t f = first; f < set->file_count; f++) {
        close(set->files[f].fd);
        free(set->files[f].fences);
    }
    set->files[first] = out.file;
    set->file_count = first + 1;
    out.file.fd = -1;
    out.file.fences = NULL;
    set->count_disk += fresh;
    if (forget_memory(set) < 0)
        goto done;
    if (set->filter == NULL && fill_filter(set, out.buffer, STREAM_KEYS) < 0)
        goto done;
    ret = 0;
done:
    if (out.file.fd >= 0)
        close(out.file.fd);
    free(out.file.fences);
    free(out.buffer);
    free(reads);
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
