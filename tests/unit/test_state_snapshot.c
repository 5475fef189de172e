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

static event_file_ready make_run(int i)
{
    event_file_ready ev = {0};

    snprintf(ev.event_id, sizeof(ev.event_id), "r-%d", i);
    snprintf(ev.client_id, sizeof(ev.client_id), "US%d", 1 + i % 7);
    util_copy(ev.order_date, sizeof(ev.order_date), "2026-11-24");
    snprintf(ev.source, sizeof(ev.source), "d%d.csv", i);
    snprintf(ev.output, sizeof(ev.output), "US/2026-11-24/d%d.csv", i);
    snprintf(ev.sha256, sizeof(ev.sha256), "%064d", i);
    ev.rows_in = (uint64_t)i;
    return ev;
}

static void fill(state *st, int runs, int failures)
{
    for (int i = 0; i < runs; i++) {
        event_file_ready ev = make_run(i);

        CHECK_EQ_INT(state_add_ready(st, &ev, 1764000000000LL + i), 1);
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
    /* Known while kept, whatever the position in the ring; new again once
     * the newest STATE_MAX_RUNS no longer include it. */
    for (int i = 0; i < STATE_MAX_RUNS + 10; i += 97) {
        event_file_ready ev = make_run(i);

        CHECK_EQ_INT(state_add_ready(a, &ev, 0), i < 10 ? 1 : 0);
    }
    {
        /* Same client, date and source, another sha256: another run. */
        event_file_ready ev = make_run(STATE_MAX_RUNS + 9);

        ev.sha256[0] = 'f';
        CHECK_EQ_INT(state_add_ready(a, &ev, 0), 1);
    }
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
