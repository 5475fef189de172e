#include "inflight.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct inflight {
    pthread_mutex_t lock; /* guards everything below; held while signalling */
    pthread_cond_t wake;  /* stopping */
    pthread_t thread;
    void **msgs; /* capacity slots, NULL when free */
    size_t capacity;
    int64_t interval_ms;
    inflight_signal signal;
    uint64_t signals;
    int stopping;
};

static void deadline_after(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)((ms % 1000) * 1000000);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* The heartbeat: the lock is held while signalling, which is what lets
 * inflight_remove() promise that the message is no longer in use. */
static void *heartbeat(void *arg)
{
    inflight *f = arg;
    struct timespec next;

    pthread_mutex_lock(&f->lock);
    deadline_after(&next, f->interval_ms);
    while (!f->stopping) {
        if (pthread_cond_timedwait(&f->wake, &f->lock, &next) != ETIMEDOUT)
            continue; /* woken: stopping, or spurious */
        for (size_t i = 0; i < f->capacity; i++) {
            if (f->msgs[i] != NULL) {
                f->signal(f->msgs[i]);
                f->signals++;
            }
        }
        deadline_after(&next, f->interval_ms);
    }
    pthread_mutex_unlock(&f->lock);
    return NULL;
}

dx_status inflight_create(inflight **out, size_t capacity, int64_t interval_ms,
                          inflight_signal signal)
{
    inflight *f = calloc(1, sizeof(*f));
    pthread_condattr_t attr;

    if (f == NULL || capacity == 0)
        goto fail;
    f->msgs = calloc(capacity, sizeof(*f->msgs));
    if (f->msgs == NULL)
        goto fail;
    f->capacity = capacity;
    f->interval_ms = interval_ms > 0 ? interval_ms : 1;
    f->signal = signal;
    pthread_mutex_init(&f->lock, NULL);
    /* Monotonic, so that a clock step cannot delay a heartbeat past ACK_WAIT. */
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&f->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&f->thread, NULL, heartbeat, f) != 0) {
        pthread_cond_destroy(&f->wake);
        pthread_mutex_destroy(&f->lock);
        free(f->msgs);
        free(f);
        return DX_ERR_IO;
    }
    *out = f;
    return DX_OK;
fail:
    if (f != NULL)
        free(f->msgs);
    free(f);
    return DX_ERR_NOMEM;
}

void inflight_destroy(inflight *f)
{
    if (f == NULL)
        return;
    pthread_mutex_lock(&f->lock);
    f->stopping = 1;
    pthread_cond_signal(&f->wake);
    pthread_mutex_unlock(&f->lock);
    pthread_join(f->thread, NULL);
    pthread_cond_destroy(&f->wake);
    pthread_mutex_destroy(&f->lock);
    free(f->msgs);
    free(f);
}

dx_status inflight_add(inflight *f, void *msg)
{
    dx_status s = DX_ERR_TOO_LARGE;

    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < f->capacity && s != DX_OK; i++) {
        if (f->msgs[i] == NULL) {
            f->msgs[i] = msg;
            s = DX_OK;
        }
    }
    pthread_mutex_unlock(&f->lock);
    return s;
}

void inflight_remove(inflight *f, void *msg)
{
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < f->capacity; i++) {
        if (f->msgs[i] == msg)
            f->msgs[i] = NULL;
    }
    pthread_mutex_unlock(&f->lock);
}

uint64_t inflight_signals(inflight *f)
{
    uint64_t n;

    pthread_mutex_lock(&f->lock);
    n = f->signals;
    pthread_mutex_unlock(&f->lock);
    return n;
}
