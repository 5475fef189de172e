#pragma once

#include <stddef.h>

#include "status.h"

/*
 * The HTTP side of every worker, on libmicrohttpd: the OpenFaaS function
 * contract and the operators' endpoints.  http.c answers GET /_/health,
 * GET /_/ready (through the worker's ready callback) and GET /metrics itself;
 * every other request goes to the worker's handler with its whole body
 * (bounded: a larger body is answered 413 without reaching the handler, and
 * at once, before the body is read, when Content-Length announces it).
 * Each connection has its own thread, so a long invocation never blocks the
 * probes.
 *
 * A slow or hostile client cannot take the worker offline (slowloris): a
 * request's headers and body must arrive within HTTP_READ_DEADLINE_S of the
 * connection (or of the previous answer on a kept-alive connection), an idle
 * connection is closed after HTTP_IDLE_TIMEOUT_S, one client address holds
 * at most HTTP_MAX_PER_IP connections and the server HTTP_MAX_CONNECTIONS.
 * Kubernetes probes come from the node's address and connector invocations
 * from the connectors' pods, so an attacker's cap never applies to them.
 * The time spent in the handler is not bounded (a run takes what it takes).
 */

#define HTTP_READ_DEADLINE_S 10
#define HTTP_IDLE_TIMEOUT_S  10
#define HTTP_MAX_PER_IP      32
#define HTTP_MAX_CONNECTIONS 1024

typedef struct http_server http_server;

typedef struct http_request {
    const char *method;
    const char *path;
    const char *body; /* NUL-terminated copy, body_len bytes before the NUL */
    size_t body_len;
    const char *content_type; /* header values, NULL when absent */
    const char *traceparent;
    const char *x_topic;
    const char *x_connector;
    const char *authorization; /* the Authorization header (a secret: never logged) */
} http_request;

/*
 * A streamed body (GET /files): http.c calls read(ctx, buf, cap) for each
 * chunk as the client takes it, so memory stays bounded whatever the size.
 * read returns the bytes written to buf (> 0), 0 at the end, or -1 on an
 * error (the connection is then closed: the client sees a short body).
 * done(ctx) is called once, when the response is over or was never sent.
 */
typedef long (*http_stream_read_fn)(void *ctx, char *buf, size_t cap);
typedef void (*http_stream_done_fn)(void *ctx);

typedef struct http_response {
    int status;
    char *body;                   /* malloc'd; http.c frees it after sending */
    const char *content_type;     /* static; "application/json" when NULL */
    const char *www_authenticate; /* static; the WWW-Authenticate header of a 401 */
    char *disposition;            /* malloc'd Content-Disposition, or NULL; freed by http.c */
    http_stream_read_fn stream;   /* when set, the body (body is then ignored) */
    http_stream_done_fn stream_done;
    void *stream_ctx;
} http_response;

typedef void (*http_handler)(void *ctx, const http_request *req, http_response *resp);
typedef int (*http_ready_fn)(void *ctx);

/*
 * Starts serving on addr:port (port 0 picks a free one, see http_port()).
 * On success *out is a new server the caller stops with http_destroy().
 */
dx_status http_start(http_server **out, const char *addr, int port, size_t max_body,
                     http_handler handler, http_ready_fn ready, void *ctx, char *err,
                     size_t err_len);

/* The port actually bound. */
int http_port(const http_server *srv);

/* Number of requests being handled right now. */
int http_in_flight(const http_server *srv);

/*
 * Stops accepting connections, waits up to grace_ms for the requests in
 * flight to finish, then stops the server and frees it.  Accepts NULL.
 */
void http_destroy(http_server *srv, int grace_ms);

/* Sets resp to a JSON error {"error": message} with the given status. */
void http_error(http_response *resp, int status, const char *message);
