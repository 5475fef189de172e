#include "http.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bytebuf.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

struct http_server {
    struct MHD_Daemon *daemon;
    http_handler handler;
    http_ready_fn ready;
    void *ctx;
    size_t max_body;
    int port;
    atomic_int in_flight;
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

static enum MHD_Result send_response(struct MHD_Connection *conn, http_response *resp)
{
    struct MHD_Response *r;
    enum MHD_Result ret;
    const char *body = resp->body ? resp->body : "";
    char code[8];

    r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type",
                            resp->content_type ? resp->content_type : "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
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
    if (st->too_large) {
        metrics_add(DX_INVALID_INPUT_TOTAL, "oversized", 1);
        log_printf(LOG_LEVEL_WARN, NULL, "request body over %zu bytes refused", srv->max_body);
        http_error(&resp, 413, "request body too large");
    } else {
        builtin_route(srv, &req, &resp);
    }
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
    srv->daemon = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                                       MHD_USE_ITC | MHD_USE_ERROR_LOG,
                                   (uint16_t)port, NULL, NULL, on_request, srv,
                                   MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED,
                                   on_completed, srv, MHD_OPTION_CONNECTION_LIMIT, 64u,
                                   MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_END);
    if (srv->daemon == NULL) {
        snprintf(err, err_len, "cannot listen on %s:%d", addr, port);
        free(srv);
        return DX_ERR_IO;
    }
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
    free(srv);
}
