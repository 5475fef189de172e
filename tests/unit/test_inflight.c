/*
 * inflight: the heartbeat signals every registered message by time, never
 * one that was removed, and stops promptly.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "inflight.h"
#include "testing.h"

static atomic_int signals_a, signals_b, after_remove;
static atomic_int removed_a;
static int msg_a, msg_b;

static void count(void *msg)
{
    if (msg == &msg_a) {
        atomic_fetch_add(&signals_a, 1);
        if (atomic_load(&removed_a))
            atomic_fetch_add(&after_remove, 1);
    } else if (msg == &msg_b) {
        atomic_fetch_add(&signals_b, 1);
    }
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

int main(void)
{
    inflight *f = NULL;
    struct timespec t0, t1;

    CHECK_EQ_INT(inflight_create(&f, 2, 20, count), DX_OK);
    /* Nothing registered: nothing signalled. */
    sleep_ms(100);
    CHECK_EQ_INT(inflight_signals(f), 0);

    CHECK_EQ_INT(inflight_add(f, &msg_a), DX_OK);
    CHECK_EQ_INT(inflight_add(f, &msg_b), DX_OK);
    CHECK_EQ_INT(inflight_add(f, &msg_a + 1), DX_ERR_TOO_LARGE); /* capacity 2 */
    /* By time, whatever the caller does meanwhile (here: sleeping). */
    sleep_ms(300);
    CHECK(atomic_load(&signals_a) >= 5);
    CHECK(atomic_load(&signals_b) >= 5);

    /* Once removed, never signalled again: remove waits for a signal in
     * progress, so the flag below is set only after the last one. */
    inflight_remove(f, &msg_a);
    atomic_store(&removed_a, 1);
    sleep_ms(100);
    CHECK_EQ_INT(atomic_load(&after_remove), 0);
    CHECK_EQ_INT(inflight_signals(f),
                 (uint64_t)atomic_load(&signals_a) + (uint64_t)atomic_load(&signals_b));

    /* A freed slot is reusable; removing an unknown message is harmless. */
    CHECK_EQ_INT(inflight_add(f, &msg_a + 1), DX_OK);
    inflight_remove(f, &msg_a);

    /* Stops at once, not after the interval. */
    inflight_destroy(f);
    f = NULL;
    CHECK_EQ_INT(inflight_create(&f, 1, 60000, count), DX_OK);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    inflight_destroy(f);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(t1.tv_sec - t0.tv_sec < 5);
    inflight_destroy(NULL);
    return testing_finish("test_inflight");
}
