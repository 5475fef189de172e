/*
 * dupset_keys N BUDGET_MB: the duplicate set alone, N random 128-bit keys
 * (rounded up to a whole batch; one in 50 a repeat of the key before it)
 * inserted in batches of 512 as the engine does, within BUDGET_MB; prints the repeats found and the
 * keys spilled.  Time it with /usr/bin/time: the spill's cost at a size is this program's CPU time
 * against the same N with a budget it never reaches (docs/development.md, "Memory at any size").
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "dupset.h"

/* xorshift64: the same keys on every run. */
static uint64_t next_key_word(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

int main(int argc, char **argv)
{
    enum { BATCH = 512 };
    dupset_key keys[BATCH];
    unsigned char fresh[BATCH];
    uint64_t state = 88172645463325252ULL;
    size_t n, inserted = 0, repeats = 0;
    dupset *set;
    int ret = 1;

    if (argc != 3) {
        fprintf(stderr, "usage: dupset_keys N BUDGET_MB\n");
        return 2;
    }
    n = strtoull(argv[1], NULL, 10);
    set = dupset_create((size_t)strtoull(argv[2], NULL, 10) << 20);
    if (set == NULL)
        return 1;
    for (size_t at = 0; at < n; at += BATCH) {
        for (size_t i = 0; i < BATCH; i++) {
            keys[i].high = next_key_word(&state);
            keys[i].low = next_key_word(&state);
            if (i > 0 && next_key_word(&state) % 50 == 0)
                keys[i] = keys[i - 1];
        }
        if (dupset_insert_many(set, keys, BATCH, fresh) < 0) {
            fprintf(stderr, "dupset_keys: %s\n", dupset_error(set));
            goto done;
        }
        for (size_t i = 0; i < BATCH; i++)
            repeats += !fresh[i];
        inserted += BATCH;
    }
    printf("keys %zu repeats %zu spilled %zu\n", inserted, repeats, dupset_count_spilled(set));
    ret = 0;
done:
    dupset_destroy(set);
    return ret;
}
