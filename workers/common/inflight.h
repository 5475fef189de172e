#pragma once

#include <stddef.h>
#include <stdint.h>

#include "status.h"

/*
 * inflight: the JetStream messages a consumer is working on, and the
 * heartbeat that keeps them its own.  JetStream redelivers a message to
 * another replica when no acknowledgement or progress signal arrives within
 * ACK_WAIT; handling one event can take longer than that in any step
 * (listing a slow SFTP inbox, reading, writing, renaming), so progress is
 * signalled by time from a thread of its own, every `interval_ms`, for every
 * message registered, whatever the consumer thread is doing.
 *
 * A message is registered as soon as it is fetched and unregistered before
 * it is acknowledged, nak'd or terminated: inflight_remove() returns only
 * when the heartbeat thread is no longer touching it, so the message is the
 * caller's alone again (nats.c messages are not safe to share).  Several
 * messages may be in flight at once (up to the capacity given at creation).
 */

typedef struct inflight inflight;

/*
 * Signals progress on one message (natsMsg_InProgress in production; tests
 * pass a counter).  Called from the heartbeat thread only.
 */
typedef void (*inflight_signal)(void *msg);

/*
 * Starts a heartbeat that calls signal for each registered message every
 * interval_ms (at least 1).  On success *out is a new inflight the caller
 * ends with inflight_destroy(); DX_ERR_NOMEM or DX_ERR_IO (thread) otherwise.
 */
dx_status inflight_create(inflight **out, size_t capacity, int64_t interval_ms,
                          inflight_signal signal);

/* Stops and joins the heartbeat thread and frees f (messages registered are
 * not touched).  Accepts NULL. */
void inflight_destroy(inflight *f);

/*
 * Registers msg (borrowed: it must stay valid until inflight_remove()).
 * Returns DX_ERR_TOO_LARGE when capacity messages are already in flight.
 */
dx_status inflight_add(inflight *f, void *msg);

/* Unregisters msg; on return the heartbeat thread no longer uses it.  A msg
 * that is not registered is ignored. */
void inflight_remove(inflight *f, void *msg);

/* How many progress signals were sent since creation (for tests, metrics). */
uint64_t inflight_signals(inflight *f);
