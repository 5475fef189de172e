/*
 * The deadline watchdog of the sftp:// backend (see storage_sftp_private.h).
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "storage_sftp_private.h"

/*
 * libssh 0.10 bounds ssh_connect() by SSH_OPTIONS_TIMEOUT, but not the SFTP
 * calls after it: they wait for each answer with ssh_channel_read() and no
 * timeout, and a non-blocking sftp_file only checks that some bytes arrived
 * before it blocks for the rest of the packet.  A server that keeps the
 * connection open but stops answering (its process stopped, a hung disk)
 * would hold the call, and the worker, for ever.  So every operation runs
 * under a deadline, pushed back each time it makes progress: one watchdog
 * thread per process shuts down the socket of an operation that overran it,
 * which ends libssh's wait with an error; the operation then reports a
 * timeout and the connection is dropped.  shutdown() leaves the descriptor
 * open, and the watchdog acts only on connections armed under its lock, so
 * it never touches a descriptor that was closed and reused.
 */
static pthread_mutex_t guard_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t guard_wake;
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;
static int guard_running;
static sftp_conn *guard_list; /* armed connections */

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *guard_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&guard_lock);
    for (;;) {
        int64_t now = mono_ms(), next = INT64_MAX;

        for (sftp_conn **p = &guard_list; *p != NULL;) {
            sftp_conn *c = *p;

            if (c->deadline_ms <= now) {
                atomic_store(&c->timed_out, 1);
                shutdown(c->fd, SHUT_RDWR);
                c->armed = 0;
                *p = c->guard_next;
                continue;
            }
            if (c->deadline_ms < next)
                next = c->deadline_ms;
            p = &c->guard_next;
        }
        if (next == INT64_MAX) {
            pthread_cond_wait(&guard_wake, &guard_lock);
        } else {
            struct timespec ts = {.tv_sec = next / 1000, .tv_nsec = (next % 1000) * 1000000};

            pthread_cond_timedwait(&guard_wake, &guard_lock, &ts);
        }
    }
    return NULL;
}

static void guard_start(void)
{
    pthread_condattr_t attr;
    pthread_t thread;
    sigset_t all, old;

    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&guard_wake, &attr);
    pthread_condattr_destroy(&attr);
    /* Signals stay with the worker's own threads. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (pthread_create(&thread, NULL, guard_main, NULL) == 0) {
        pthread_detach(thread);
        guard_running = 1;
    } else {
        log_printf(LOG_LEVEL_ERROR, NULL,
                   "storage sftp: cannot start the timeout watchdog: SFTP operations are "
                   "not bounded by SFTP_TIMEOUT_SECONDS");
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Starts, or pushes back, the deadline of the operation running on c. */
void sftp_guard_arm(sftp_conn *c)
{
    pthread_once(&guard_once, guard_start);
    pthread_mutex_lock(&guard_lock);
    if (guard_running && !atomic_load(&c->timed_out)) {
        c->deadline_ms = mono_ms() + c->timeout_ms;
        if (!c->armed) {
            c->fd = ssh_get_fd(c->ssh);
            if (c->fd >= 0) {
                c->guard_next = guard_list;
                guard_list = c;
                c->armed = 1;
                pthread_cond_signal(&guard_wake);
            }
        }
    }
    pthread_mutex_unlock(&guard_lock);
}

/* Ends the deadline of the operation running on c. */
void sftp_guard_disarm(sftp_conn *c)
{
    pthread_mutex_lock(&guard_lock);
    if (c->armed) {
        for (sftp_conn **p = &guard_list; *p != NULL; p = &(*p)->guard_next) {
            if (*p == c) {
                *p = c->guard_next;
                break;
            }
        }
        c->armed = 0;
    }
    pthread_mutex_unlock(&guard_lock);
}
