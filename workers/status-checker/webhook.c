#include "webhook.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

/* Enough for any status line worth reading; the rest is not read. */
#define RESPONSE_HEAD_MAX 1024

static dx_status refuse(char *err, size_t err_len, const char *why)
{
    snprintf(err, err_len, "%s", why);
    return DX_ERR_INVALID;
}

/* host[:port] of an authority (brackets around an IPv6 address). */
static dx_status parse_authority(const char *a, size_t n, webhook_url *out, char *err,
                                 size_t err_len)
{
    const char *host = a, *port = NULL;
    size_t host_len = n;

    if (memchr(a, '@', n) != NULL)
        return refuse(err, err_len, "a webhook URL may not carry user:password@");
    if (n > 0 && a[0] == '[') {
        const char *close = memchr(a, ']', n);

        if (close == NULL)
            return refuse(err, err_len, "unterminated [IPv6] address in the webhook URL");
        host = a + 1;
        host_len = (size_t)(close - host);
        if ((size_t)(close + 1 - a) < n) {
            if (close[1] != ':')
                return refuse(err, err_len, "junk after the [IPv6] address in the webhook URL");
            port = close + 2;
        }
    } else {
        const char *colon = memchr(a, ':', n);

        if (colon != NULL) {
            host_len = (size_t)(colon - a);
            port = colon + 1;
        }
    }
    if (host_len == 0 || host_len >= sizeof(out->host))
        return refuse(err, err_len, "the webhook URL has no host (or one that is too long)");
    for (size_t i = 0; i < host_len; i++)
        if (!isalnum((unsigned char)host[i]) && strchr("-._:", host[i]) == NULL)
            return refuse(err, err_len, "the webhook URL's host has a character not allowed");
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';
    snprintf(out->port, sizeof(out->port), "%s", out->https ? "443" : "80");
    if (port != NULL) {
        size_t port_len = (size_t)(a + n - port);
        long value = 0;

        if (port_len == 0 || port_len > 5)
            return refuse(err, err_len, "the webhook URL's port must be from 1 to 65535");
        for (size_t i = 0; i < port_len; i++) {
            if (!isdigit((unsigned char)port[i]))
                return refuse(err, err_len, "the webhook URL's port must be from 1 to 65535");
            value = value * 10 + (port[i] - '0');
        }
        if (value < 1 || value > 65535)
            return refuse(err, err_len, "the webhook URL's port must be from 1 to 65535");
        snprintf(out->port, sizeof(out->port), "%ld", value);
    }
    return DX_OK;
}

dx_status webhook_parse_url(const char *url, webhook_url *out, char *err, size_t err_len)
{
    const char *p = url;
    size_t len, scheme, auth = 0;

    memset(out, 0, sizeof(*out));
    while (*p != '\0' && isspace((unsigned char)*p))
        p++;
    len = strlen(p);
    while (len > 0 && isspace((unsigned char)p[len - 1]))
        len--;
    if (len >= 8 && strncasecmp(p, "https://", 8) == 0) {
        out->https = 1;
        scheme = 8;
    } else if (len >= 7 && strncasecmp(p, "http://", 7) == 0) {
        scheme = 7;
    } else {
        return refuse(err, err_len, "not an http:// or https:// URL");
    }
    p += scheme;
    len -= scheme;
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)p[i] <= ' ' || (unsigned char)p[i] >= 0x7f)
            return refuse(err, err_len, "the webhook URL has a space or a control character");
        if (p[i] == '#')
            return refuse(err, err_len, "the webhook URL may not have a #fragment");
    }
    while (auth < len && p[auth] != '/' && p[auth] != '?')
        auth++;
    if (parse_authority(p, auth, out, err, err_len) != DX_OK)
        return DX_ERR_INVALID;
    if (len - auth + 2 >= sizeof(out->target))
        return refuse(err, err_len, "the webhook URL is too long");
    if (auth == len || p[auth] == '?')
        out->target[0] = '/';
    memcpy(out->target + strlen(out->target), p + auth, len - auth);
    return DX_OK;
}

int webhook_parse_status(const char *buf, size_t len)
{
    const char *eol = NULL;
    int status;

    for (size_t i = 0; i + 1 < len; i++)
        if (buf[i] == '\r' && buf[i + 1] == '\n') {
            eol = buf + i;
            break;
        }
    if (eol == NULL)
        return len >= RESPONSE_HEAD_MAX ? -1 : 0;
    if (eol - buf < 12 || (strncmp(buf, "HTTP/1.1 ", 9) != 0 && strncmp(buf, "HTTP/1.0 ", 9) != 0))
        return -1;
    for (int i = 9; i < 12; i++)
        if (!isdigit((unsigned char)buf[i]))
            return -1;
    if (eol - buf > 12 && buf[12] != ' ')
        return -1;
    status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    return status >= 100 && status <= 599 ? status : -1;
}

/* One connection: the socket, and the TLS session over it for https. */
typedef struct conn {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    int64_t deadline_ms;    /* util_monotonic_ms() */
    const atomic_int *stop; /* NULL: never */
} conn;

/* Waits until fd is readable (want_write 0) or writable; DX_ERR_TIMEOUT at the deadline. */
static dx_status wait_fd(const conn *c, int want_write)
{
    struct pollfd pfd = {.fd = c->fd, .events = want_write ? POLLOUT : POLLIN};

    for (;;) {
        int64_t left = c->deadline_ms - util_monotonic_ms();
        int r;

        if (left <= 0)
            return DX_ERR_TIMEOUT;
        if (c->stop != NULL && atomic_load(c->stop))
            return DX_ERR_IO; /* shutting down: the attempt counts as failed */
        r = poll(&pfd, 1, (int)(left > 200 ? 200 : left));
        if (r > 0)
            return DX_OK;
        if (r < 0 && errno != EINTR)
            return DX_ERR_IO;
    }
}

static dx_status fail(char *err, size_t err_len, dx_status s, const char *what)
{
    if (s == DX_ERR_TIMEOUT)
        snprintf(err, err_len, "timed out while %s", what);
    else
        snprintf(err, err_len, "%s failed", what);
    return s;
}

/* Connects to the first address of u that answers, non-blocking. */
static dx_status connect_to(conn *c, const webhook_url *u, char *err, size_t err_len)
{
    struct addrinfo hints = {0}, *list = NULL;
    dx_status s = DX_ERR_IO;
    int gai;

    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    gai = getaddrinfo(u->host, u->port, &hints, &list);
    if (gai != 0) {
        snprintf(err, err_len, "cannot resolve the webhook's host: %s", gai_strerror(gai));
        return DX_ERR_IO;
    }
    snprintf(err, err_len, "connect failed");
    for (struct addrinfo *ai = list; ai != NULL && s != DX_OK; ai = ai->ai_next) {
        int soerr = 0;
        socklen_t soerr_len = sizeof(soerr);

        c->fd =
            socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (c->fd < 0)
            continue;
        if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0)
            s = DX_OK;
        else if (errno == EINPROGRESS) {
            s = wait_fd(c, 1);
            if (s == DX_OK && getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &soerr_len) == 0 &&
                soerr != 0) {
                errno = soerr;
                s = DX_ERR_IO;
            }
        } else
            s = DX_ERR_IO;
        if (s == DX_ERR_TIMEOUT)
            snprintf(err, err_len, "timed out while connecting");
        else if (s != DX_OK)
            snprintf(err, err_len, "connect failed: %s", strerror(errno));
        if (s != DX_OK) {
            close(c->fd);
            c->fd = -1;
        }
        if (s == DX_ERR_TIMEOUT)
            break;
    }
    freeaddrinfo(list);
    return s;
}

/* Waits for what OpenSSL asks for after a call returned r. */
static dx_status tls_wait(conn *c, int r)
{
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        return wait_fd(c, 0);
    case SSL_ERROR_WANT_WRITE:
        return wait_fd(c, 1);
    default:
        return DX_ERR_IO;
    }
}

static dx_status tls_start(conn *c, const webhook_url *u, const char *ca_file, char *err,
                           size_t err_len)
{
    struct in6_addr ip;
    int is_ip = inet_pton(AF_INET, u->host, &ip) == 1 || inet_pton(AF_INET6, u->host, &ip) == 1;
    int ok;

    c->ctx = SSL_CTX_new(TLS_client_method());
    if (c->ctx == NULL)
        return fail(err, err_len, DX_ERR_IO, "setting up TLS");
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    ok = ca_file != NULL && ca_file[0] != '\0'
             ? SSL_CTX_load_verify_locations(c->ctx, ca_file, NULL)
             : SSL_CTX_set_default_verify_paths(c->ctx);
    if (ok != 1) {
        snprintf(err, err_len, "cannot load the CA certificates (NOTIFY_CA_FILE)");
        return DX_ERR_IO;
    }
    c->ssl = SSL_new(c->ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
        return fail(err, err_len, DX_ERR_IO, "setting up TLS");
    /* The certificate must name the host (or its IP address); SNI only for names. */
    if (is_ip)
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), u->host);
    else
        ok = SSL_set1_host(c->ssl, u->host) == 1 && SSL_set_tlsext_host_name(c->ssl, u->host) == 1;
    if (ok != 1)
        return fail(err, err_len, DX_ERR_IO, "setting up TLS");
    for (;;) {
        int r = SSL_connect(c->ssl);
        dx_status s;

        if (r == 1)
            return DX_OK;
        s = tls_wait(c, r);
        if (s == DX_ERR_TIMEOUT)
            return fail(err, err_len, s, "in the TLS handshake");
        if (s != DX_OK) {
            long verify = SSL_get_verify_result(c->ssl);

            if (verify != X509_V_OK)
                snprintf(err, err_len, "TLS handshake failed: certificate not accepted: %s",
                         X509_verify_cert_error_string(verify));
            else
                snprintf(err, err_len, "TLS handshake failed");
            ERR_clear_error();
            return DX_ERR_IO;
        }
    }
}

static dx_status write_all(conn *c, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n;
        dx_status s;

        if (c->ssl != NULL) {
            int r = SSL_write(c->ssl, data, len > (1 << 20) ? 1 << 20 : (int)len);

            if (r > 0) {
                data += r;
                len -= (size_t)r;
                continue;
            }
            s = tls_wait(c, r);
        } else {
            n = send(c->fd, data, len, MSG_NOSIGNAL);
            if (n > 0) {
                data += n;
                len -= (size_t)n;
                continue;
            }
            s = n < 0 && (errno == EAGAIN || errno == EINTR) ? wait_fd(c, 1) : DX_ERR_IO;
        }
        if (s != DX_OK)
            return s;
    }
    return DX_OK;
}

/* Reads at most cap bytes into buf; 0 at the end of the stream. */
static dx_status read_some(conn *c, char *buf, size_t cap, size_t *got)
{
    for (;;) {
        dx_status s;

        if (c->ssl != NULL) {
            int r = SSL_read(c->ssl, buf, (int)cap);

            if (r > 0) {
                *got = (size_t)r;
                return DX_OK;
            }
            if (SSL_get_error(c->ssl, r) == SSL_ERROR_ZERO_RETURN) {
                *got = 0;
                return DX_OK;
            }
            s = tls_wait(c, r);
        } else {
            ssize_t n = recv(c->fd, buf, cap, 0);

            if (n >= 0) {
                *got = (size_t)n;
                return DX_OK;
            }
            s = errno == EAGAIN || errno == EINTR ? wait_fd(c, 0) : DX_ERR_IO;
        }
        if (s != DX_OK)
            return s;
    }
}

/* Reads until the status line is complete and returns its status. */
static dx_status read_status(conn *c, int *status, char *err, size_t err_len)
{
    char head[RESPONSE_HEAD_MAX];
    size_t have = 0;

    for (;;) {
        size_t got = 0;
        dx_status s = read_some(c, head + have, sizeof(head) - have, &got);
        int parsed;

        if (s != DX_OK)
            return fail(err, err_len, s, "reading the response");
        have += got;
        parsed = webhook_parse_status(head, have);
        if (parsed > 0) {
            *status = parsed;
            return DX_OK;
        }
        if (parsed < 0 || got == 0) {
            snprintf(err, err_len, "%s",
                     got == 0 && parsed == 0
                         ? "the receiver closed the connection without a response"
                         : "malformed response status line");
            return DX_ERR_IO;
        }
    }
}

static char *build_request(const webhook_url *u, size_t body_len, size_t *len)
{
    int ipv6 = strchr(u->host, ':') != NULL;
    int default_port = strcmp(u->port, u->https ? "443" : "80") == 0;
    char *req = NULL;
    int n = asprintf(&req,
                     "POST %s HTTP/1.1\r\nHost: %s%s%s%s%s\r\n"
                     "User-Agent: dataretailx-status-checker\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     u->target, ipv6 ? "[" : "", u->host, ipv6 ? "]" : "", default_port ? "" : ":",
                     default_port ? "" : u->port, body_len);

    if (n < 0)
        return NULL;
    *len = (size_t)n;
    return req;
}

dx_status webhook_post(const webhook_url *u, const char *ca_file, int timeout_ms,
                       const atomic_int *stop, const char *body, size_t len, int *status, char *err,
                       size_t err_len)
{
    conn c = {.fd = -1, .deadline_ms = util_monotonic_ms() + timeout_ms, .stop = stop};
    size_t req_len = 0;
    char *req = build_request(u, len, &req_len);
    dx_status s = req != NULL ? DX_OK : DX_ERR_NOMEM;

    *status = 0;
    if (s == DX_OK)
        s = connect_to(&c, u, err, err_len);
    if (s == DX_OK && u->https)
        s = tls_start(&c, u, ca_file, err, err_len);
    if (s == DX_OK) {
        s = write_all(&c, req, req_len);
        if (s == DX_OK)
            s = write_all(&c, body, len);
        if (s != DX_OK)
            fail(err, err_len, s, "sending the request");
    }
    if (s == DX_OK)
        s = read_status(&c, status, err, err_len);
    if (c.ssl != NULL) {
        if (SSL_is_init_finished(c.ssl))
            SSL_shutdown(c.ssl); /* one close_notify, not waiting for the peer's */
        SSL_free(c.ssl);
    }
    SSL_CTX_free(c.ctx);
    ERR_clear_error();
    if (c.fd >= 0)
        close(c.fd);
    free(req);
    return s;
}
