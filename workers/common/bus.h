#pragma once

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "status.h"

/*
 * The bus: the NATS connection and the JetStream stream ORDERS that carries
 * the pipeline's subjects.  Every worker calls bus_connect() at start, which
 * creates or updates the stream and both durable consumers idempotently, so
 * whichever worker starts first, no event published afterwards can miss its
 * consumer.  The connection reconnects forever; publishes wait for
 * JetStream's acknowledgement and are retried, and carry a Nats-Msg-Id so
 * that a retried or re-run publish is dropped by the stream's duplicate
 * window instead of being delivered twice.
 */

#define BUS_STREAM              "ORDERS"
#define BUS_DURABLE_TRANSFORMER "file-transformer"
#define BUS_DURABLE_STATUS      "status-checker"

typedef struct bus bus;

typedef enum bus_verdict {
    BUS_ACK = 0, /* done: the output is committed */
    BUS_NAK,     /* transient failure: redeliver after the delay */
    BUS_TERM,    /* never redeliver (undecodable, or failure already published) */
} bus_verdict;

/* One delivered message, borrowed for the duration of the handler call. */
typedef struct bus_delivery {
    const char *subject;
    const void *data;
    size_t len;
    const char *content_type; /* NULL when the header is absent */
    const char *traceparent;  /* W3C header, NULL when absent */
    uint64_t delivery;        /* 1 for the first delivery */
    uint64_t stream_seq;      /* the message's sequence in the stream (0: unknown) */
    int64_t stream_time_ns;   /* when the stream stored it, Unix ns (0: unknown) */
    int last_delivery;        /* no redelivery will follow a NAK */
} bus_delivery;

/*
 * Handles one message and returns what to do with it; for BUS_NAK it may set
 * *nak_delay_ms (else an exponential backoff by delivery count is used).
 */
typedef bus_verdict (*bus_handler)(void *ctx, const bus_delivery *d, int64_t *nak_delay_ms);

/*
 * Connects to cfg->nats_url as client `name` and ensures the stream and the
 * durable consumers.  On success *out is a new bus the caller ends with
 * bus_destroy(); on failure err holds a one-line reason (never credentials)
 * and the caller may retry later.
 */
dx_status bus_connect(bus **out, const config *cfg, const char *name, char *err, size_t err_len);

/*
 * Builds the connection options from cfg without connecting (the TLS files
 * are loaded), so that a bad setting is refused at start.  Returns
 * DX_ERR_INVALID with a one-line reason naming the variable.
 */
dx_status bus_check_config(const config *cfg, char *err, size_t err_len);

/*
 * Creates or updates a durable pull consumer of its own for a module that
 * is not one of the two above (status-checker's notifier): filter is its
 * subject (NULL for all), max_deliver its redelivery bound (-1: unlimited).
 * Every message starts from the stream's first on creation.  DX_ERR_IO with
 * err when JetStream refuses or is unreachable.
 */
dx_status bus_ensure_consumer(bus *b, const char *durable, const char *filter, int64_t max_deliver,
                              char *err, size_t err_len);

/*
 * The messages durable has not finished: not yet delivered plus delivered
 * and not acknowledged (being handled or waiting for a redelivery), into
 * *pending.  DX_ERR_IO when JetStream is unreachable.
 */
dx_status bus_consumer_pending(bus *b, const char *durable, uint64_t *pending);

/* Drains the connection (in-flight acks and publishes are flushed) and frees
 * the bus.  Accepts NULL. */
void bus_destroy(bus *b);

/* True while the connection is up (for readiness). */
int bus_connected(bus *b);

/*
 * The connection's nats.c JetStream context (a jsCtx *), borrowed and valid
 * until bus_destroy(), for modules that use other JetStream APIs (kv.c).
 * NULL for a NULL bus.
 */
void *bus_jetstream(bus *b);

/*
 * Publishes data on subject through JetStream and waits for the stream's
 * acknowledgement, retrying while the connection is being re-established
 * (about 30 s in all).  msg_id (may be NULL) becomes the Nats-Msg-Id header.
 */
dx_status bus_publish(bus *b, const char *subject, const void *data, size_t len,
                      const char *content_type, const char *msg_id);

/*
 * Pulls from the durable consumer, up to MAX_IN_FLIGHT messages per request,
 * and calls handler for each, one after another in stream order, until
 * *stop becomes non-zero (checked at least every second).  From its fetch
 * until its verdict, a heartbeat thread tells JetStream every quarter of
 * ACK_WAIT that a message is in progress, so that no other replica gets it
 * however long the handler (or the messages before it) takes; a handler
 * that hangs therefore holds its batch until the process dies.  Each verdict
 * is sent right after its handler returns and the batch's are confirmed with
 * one flush; once stop is set, the messages not yet handled are nak'd
 * without delay.  Returns DX_OK when stopped.
 */
dx_status bus_consume(bus *b, const char *durable, bus_handler handler, void *ctx,
                      const atomic_int *stop);

/*
 * Reads the messages of the stream from sequence from_seq on (0 or 1: from
 * the first), oldest first and every subject, through an ephemeral ordered
 * consumer, calling handler for each with d->stream_seq set (its verdict is
 * ignored: nothing is acknowledged).  Returns when it has read up to the
 * stream's last message at the call, whose sequence is then *last_seq (may
 * be NULL; 0 for an empty stream).  Used by status-checker to rebuild its
 * projection at start.
 */
dx_status bus_replay(bus *b, uint64_t from_seq, bus_handler handler, void *ctx, uint64_t *last_seq);
