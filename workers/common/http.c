#include "http.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "bytebuf.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

/*
 * One open connection, for the read deadline: libmicrohttpd bounds only the
 * idle time between two bytes, so a client sending its headers one byte at
 * a time would hold its connection (and its thread) for ever.  The watchdog
 * shuts down the socket of a connection still reading its request
 * HTTP_READ_DEADLINE_S after it started; libmicrohttpd then closes it as a
 * connection closed by the peer.  Entries are added and removed by
 * libmicrohttpd's connection notifications, which run before it closes the
 * socket, and the watchdog works under the same lock, so it never touches a
 * socket number that has been closed (and possibly reused).
 */
typedef struct conn_track {
    int fd;
    int reading;      /* waiting for a request's headers or body */
    int shut;         /* the watchdog has shut it down */
    int64_t since_ms; /* when the current request began */
    struct conn_track *prev, *next;
} conn_track;

struct http_server {
    struct MHD_Daemon *daemon;
    http_handler handler;
    http_ready_fn ready;
    void *ctx;
    size_t max_body;
    int port;
    atomic_int in_flight;
    pthread_mutex_t lock; /* guards conns */
    conn_track *conns;
    pthread_t watchdog;
    int watchdog_running;
    atomic_int stopping;
};

/* Per-request state, kept by libmicrohttpd between calls of on_request. */
typedef struct request_state {
    bytebuf body;
    int too_large;
} request_state;

void http_error(http_response *resp, int status, const char *message)
{
    cJSON *root = cJSON_CreateObject();

    cJSON_AddStringToObject(root, "error", message);
    resp->status = status;
    resp->body = cJSON_PrintUnformatted(root);
    resp->content_type = "application/json";
    cJSON_Delete(root);
}

static int append_body(request_state *st, const char *data, size_t len, size_t max_body)
{
    if (st->too_large || len > max_body - st->body.len) {
        st->too_large = 1;
        return 0;
    }
    bytebuf_add(&st->body, data, len);
    return st->body.failed ? -1 : 0;
}

/* A streamed body: one http_response's stream callbacks, owned by MHD's
 * response from its creation (freed in stream_free). */
typedef struct stream_state {
    http_stream_read_fn read;
    http_stream_done_fn done;
    void *ctx;
} stream_state;

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream_state *ss = cls;
    long got = ss->read(ss->ctx, buf, max);

    (void)pos; /* read in order: MHD asks for each position once */
    if (got == 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    return got < 0 ? MHD_CONTENT_READER_END_WITH_ERROR : (ssize_t)got;
}

static void stream_free(void *cls)
{
    stream_state *ss = cls;

    ss->done(ss->ctx);
    free(ss);
}

/* The MHD response of resp; its stream (if any) is handed over, even when
 * this fails. */
static struct MHD_Response *create_response(http_response *resp)
{
    const char *body = resp->body ? resp->body : "";
    stream_state *ss;
    struct MHD_Response *r;

    if (resp->stream == NULL)
        return MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    ss = malloc(sizeof(*ss));
    if (ss == NULL) {
        resp->stream_done(resp->stream_ctx);
        return NULL;
    }
    *ss = (stream_state){resp->stream, resp->stream_done, resp->stream_ctx};
    resp->stream = NULL;
    r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, stream_read, ss,
                                          stream_free);
    if (r == NULL)
        stream_free(ss);
    return r;
}

static enum MHD_Result send_response(struct MHD_Connection *conn, http_response *resp)
{
    struct MHD_Response *r;
    enum MHD_Result ret;
    char code[8];

    r = create_response(resp);
    if (r == NULL) {
        free(resp->disposition);
        resp->disposition = NULL;
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type",
                            resp->content_type ? resp->content_type : "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (resp->www_authenticate != NULL)
        MHD_add_response_header(r, "WWW-Authenticate", resp->www_authenticate);
    if (resp->disposition != NULL)
        MHD_add_response_header(r, "Content-Disposition", resp->disposition); /* copied */
    free(resp->disposition);
    resp->disposition = NULL;
    ret = MHD_queue_response(conn, (unsigned int)resp->status, r);
    MHD_destroy_response(r);
    snprintf(code, sizeof(code), "%d", resp->status);
    metrics_add(DX_HTTP_REQUESTS_TOTAL, code, 1);
    return ret;
}

static void builtin_route(http_server *srv, const http_request *req, http_response *resp)
{
    if (strcmp(req->path, "/_/health") == 0) {
        resp->status = 200;
        resp->body = strdup("{\"status\":\"ok\"}");
    } else if (strcmp(req->path, "/_/ready") == 0) {
        int ready = srv->ready == NULL || srv->ready(srv->ctx);

        resp->status = ready ? 200 : 503;
        resp->body = strdup(ready ? "{\"status\":\"ready\"}" : "{\"status\":\"not ready\"}");
    } else if (strcmp(req->path, "/metrics") == 0) {
        resp->body = metrics_render();
        resp->status = resp->body ? 200 : 500;
        resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    } else {
        srv->handler(srv->ctx, req, resp);
    }
}

/* Marks the connection's request as being read (since now) or not. */
static void track_reading(http_server *srv, struct MHD_Connection *conn, int reading)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_track *t = info ? info->socket_context : NULL;

    if (t == NULL)
        return;
    pthread_mutex_lock(&srv->lock);
    t->reading = reading;
    t->since_ms = util_monotonic_ms();
    pthread_mutex_unlock(&srv->lock);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    http_server *srv = cls;
    conn_track *t = *socket_context;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);

        t = info ? calloc(1, sizeof(*t)) : NULL;
        if (t == NULL)
            return;
        t->fd = info->connect_fd;
        t->reading = 1;
        t->since_ms = util_monotonic_ms();
        pthread_mutex_lock(&srv->lock);
        t->next = srv->conns;
        if (srv->conns != NULL)
            srv->conns->prev = t;
        srv->conns = t;
        pthread_mutex_unlock(&srv->lock);
        *socket_context = t;
    } else if (t != NULL) {
        pthread_mutex_lock(&srv->lock);
        if (t->prev != NULL)
            t->prev->next = t->next;
        else
            srv->conns = t->next;
        if (t->next != NULL)
            t->next->prev = t->prev;
        pthread_mutex_unlock(&srv->lock);
        free(t);
        *socket_context = NULL;
    }
}

/* Shuts down every connection past its read deadline; returns how many. */
static int sweep(http_server *srv)
{
    int64_t now = util_monotonic_ms();
    int shut = 0;

    pthread_mutex_lock(&srv->lock);
    for (conn_track *t = srv->conns; t != NULL; t = t->next) {
        if (t->reading && !t->shut && now - t->since_ms > HTTP_READ_DEADLINE_S * 1000LL) {
            shutdown(t->fd, SHUT_RDWR);
            t->shut = 1;
            shut++;
        }
    }
    pthread_mutex_unlock(&srv->lock);
    return shut;
}

static void *watchdog_main(void *arg)
{
    http_server *srv = arg;

    while (!atomic_load(&srv->stopping)) {
        int shut;

        util_sleep_ms(250);
        shut = sweep(srv);
        if (shut > 0) {
            metrics_add(DX_INVALID_INPUT_TOTAL, "slow_request", shut);
            log_printf(LOG_LEVEL_WARN, NULL,
                       "closed %d HTTP connection(s) whose request took over %d s to arrive", shut,
                       HTTP_READ_DEADLINE_S);
        }
    }
    return NULL;
}

/* True when the request announces a body over max_body (Content-Length). */
static int announced_too_large(struct MHD_Connection *conn, size_t max_body)
{
    const char *value =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    char *end = NULL;
    unsigned long long length;

    if (value == NULL)
        return 0;
    errno = 0;
    length = strtoull(value, &end, 10);
    return errno == ERANGE || (end != value && length > max_body);
}

static void refuse_too_large(http_server *srv, http_response *resp)
{
    metrics_add(DX_INVALID_INPUT_TOTAL, "oversized", 1);
    log_printf(LOG_LEVEL_WARN, NULL, "request body over %zu bytes refused", srv->max_body);
    http_error(resp, 413, "request body too large");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    http_server *srv = cls;
    request_state *st = *con_cls;
    http_request req = {0};
    http_response resp = {0};
    enum MHD_Result ret;

    if (st == NULL) {
        st = calloc(1, sizeof(*st));
        if (st == NULL)
            return MHD_NO;
        *con_cls = st;
        /* In flight from its headers until on_completed, i.e. until the
         * response is sent: http_destroy() waits for the upload, the
         * handler and the answer. */
        atomic_fetch_add(&srv->in_flight, 1);
        /* Refused before the body is read: the client learns at once, and
         * a huge announced body costs no reading. */
        if (announced_too_large(conn, srv->max_body)) {
            refuse_too_large(srv, &resp);
            ret = send_response(conn, &resp);
            free(resp.body);
            return ret;
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (append_body(st, upload_data, *upload_data_size, srv->max_body) < 0)
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    req.method = method;
    req.path = url;
    req.body = st->body.data ? st->body.data : "";
    req.body_len = st->body.len;
    req.content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    req.traceparent = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "traceparent");
    req.x_topic = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Topic");
    req.x_connector = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Connector");
    req.authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    /* The request is in: the handler's time is not the client's, so
     * neither the read deadline nor the idle timeout runs meanwhile. */
    track_reading(srv, conn, 0);
    MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    if (st->too_large)
        refuse_too_large(srv, &resp);
    else
        builtin_route(srv, &req, &resp);
    MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)HTTP_IDLE_TIMEOUT_S);
    if (resp.status == 0)
        http_error(&resp, 500, "no response");
    ret = send_response(conn, &resp);
    free(resp.body);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_server *srv = cls;
    request_state *st = *con_cls;

    if (st != NULL) {
        bytebuf_finish(&st->body);
        free(st);
        *con_cls = NULL;
        atomic_fetch_sub(&srv->in_flight, 1);
    }
    /* A kept-alive connection starts reading its next request. */
    track_reading(srv, conn, 1);
}

/*
 * Each connection has a thread and a socket: HTTP_MAX_CONNECTIONS of them
 * need more descriptors than the usual soft limit of 1024.  Raised to the
 * hard limit when that is lower than needed (nothing else to do if the hard
 * limit is low: the connection limit still holds).
 */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    rlim_t wanted = HTTP_MAX_CONNECTIONS + 1024;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= wanted)
        return;
    rl.rlim_cur = rl.rlim_max < wanted ? rl.rlim_max : wanted;
    setrlimit(RLIMIT_NOFILE, &rl);
}

dx_status http_start(http_server **out, const char *addr, int port, size_t max_body,
                     http_handler handler, http_ready_fn ready, void *ctx, char *err,
                     size_t err_len)
{
    struct sockaddr_in sa = {0};
    const union MHD_DaemonInfo *info;
    http_server *srv = calloc(1, sizeof(*srv));

    if (srv == NULL)
        return DX_ERR_NOMEM;
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        snprintf(err, err_len, "HTTP_ADDR must be an IPv4 address");
        free(srv);
        return DX_ERR_INVALID;
    }
    srv->handler = handler;
    srv->ready = ready;
    srv->ctx = ctx;
    srv->max_body = max_body;
    pthread_mutex_init(&srv->lock, NULL);
    raise_fd_limit();
    /* poll(), not select(): hundreds of connections pass FD_SETSIZE. */
    srv->daemon = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ITC |
            MHD_USE_ERROR_LOG,
        (uint16_t)port, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, &sa,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        srv, MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)HTTP_MAX_PER_IP,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_TIMEOUT_S, MHD_OPTION_END);
    if (srv->daemon == NULL) {
        snprintf(err, err_len, "cannot listen on %s:%d", addr, port);
        pthread_mutex_destroy(&srv->lock);
        free(srv);
        return DX_ERR_IO;
    }
    srv->watchdog_running = pthread_create(&srv->watchdog, NULL, watchdog_main, srv) == 0;
    info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : port;
    *out = srv;
    return DX_OK;
}

int http_port(const http_server *srv)
{
    return srv->port;
}

int http_in_flight(const http_server *srv)
{
    return atomic_load(&((http_server *)srv)->in_flight);
}

void http_destroy(http_server *srv, int grace_ms)
{
    if (srv == NULL)
        return;
    MHD_quiesce_daemon(srv->daemon);
    for (int waited = 0; waited < grace_ms && atomic_load(&srv->in_flight) > 0; waited += 50)
        util_sleep_ms(50);
    MHD_stop_daemon(srv->daemon);
    atomic_store(&srv->stopping, 1);
    if (srv->watchdog_running)
        pthread_join(srv->watchdog, NULL);
    pthread_mutex_destroy(&srv->lock);
    free(srv);
}
