/*
 * state_encode()/state_decode(): a snapshot restores every run and failure
 * with its time, and bytes that are not a whole snapshot are refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"
#include "testing.h"
#include "util.h"

static void fill(state *st, int runs, int failures)
{
    for (int i = 0; i < runs; i++) {
        event_file_ready ev = {0};

        snprintf(ev.event_id, sizeof(ev.event_id), "r-%d", i);
        snprintf(ev.client_id, sizeof(ev.client_id), "US%d", 1 + i % 7);
        util_copy(ev.order_date, sizeof(ev.order_date), "2026-11-24");
        snprintf(ev.source, sizeof(ev.source), "d%d.csv", i);
        snprintf(ev.output, sizeof(ev.output), "US/2026-11-24/d%d.csv", i);
        snprintf(ev.sha256, sizeof(ev.sha256), "%064d", i);
        ev.rows_in = (uint64_t)i;
        state_add_ready(st, &ev, 1764000000000LL + i);
    }
    for (int i = 0; i < failures; i++) {
        event_file_failed ev = {0};

        snprintf(ev.event_id, sizeof(ev.event_id), "f-%d", i);
        util_copy(ev.client_id, sizeof(ev.client_id), "US9");
        util_copy(ev.order_date, sizeof(ev.order_date), "2026-11-25");
        util_copy(ev.reason, sizeof(ev.reason), "bad name \"quoted\", é");
        ev.permanent = i % 2;
        state_add_failed(st, &ev, 1764000000000LL - i);
    }
}

int main(void)
{
    state *a = state_create(), *b = state_create(), *c = state_create();
    void *one = NULL, *two = NULL;
    size_t one_len = 0, two_len = 0;
    char err[256] = "";

    CHECK(a != NULL && b != NULL && c != NULL);
    /* More than the state keeps: the snapshot holds the newest. */
    fill(a, STATE_MAX_RUNS + 10, 25);
    CHECK_EQ_INT(state_encode(a, &one, &one_len), DX_OK);
    CHECK_EQ_INT(state_decode(b, one, one_len, err, sizeof(err)), DX_OK);
    if (err[0] != '\0')
        printf("decode: %s\n", err);
    CHECK_EQ_INT(state_encode(b, &two, &two_len), DX_OK);
    /* Same runs, same order, same times: the same bytes. */
    CHECK_EQ_INT(one_len, two_len);
    CHECK(one_len == two_len && memcmp(one, two, one_len) == 0);
    /* Decoding again adds nothing (the events are already known). */
    free(two);
    CHECK_EQ_INT(state_decode(b, one, one_len, err, sizeof(err)), DX_OK);
    CHECK_EQ_INT(state_encode(b, &two, &two_len), DX_OK);
    CHECK_EQ_INT(one_len, two_len);

    /* Truncated, wrong magic, empty: refused with a reason. */
    err[0] = '\0';
    CHECK_EQ_INT(state_decode(c, one, one_len - 3, err, sizeof(err)), DX_ERR_INVALID);
    CHECK(err[0] != '\0');
    CHECK_EQ_INT(state_decode(c, "XXXX", 4, err, sizeof(err)), DX_ERR_INVALID);
    CHECK_EQ_INT(state_decode(c, "", 0, err, sizeof(err)), DX_ERR_INVALID);
    ((unsigned char *)one)[4] = 'Z'; /* the first record's kind */
    CHECK_EQ_INT(state_decode(c, one, one_len, err, sizeof(err)), DX_ERR_INVALID);

    free(one);
    free(two);
    state_destroy(a);
    state_destroy(b);
    state_destroy(c);
    return testing_finish("test_state_snapshot");
}
