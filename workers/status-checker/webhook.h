#pragma once

#include <stdatomic.h>
#include <stddef.h>

#include "status.h"

/*
 * webhook: a minimal HTTP/1.1 client that POSTs one JSON body to a webhook
 * URL and reads back the response's status line, written by hand so that the
 * status-checker image needs no libcurl (see docs/development.md, "Written by
 * hand").  http:// goes over a plain socket, https:// through OpenSSL with
 * the peer's certificate verified against the system CAs (or a CA file) and
 * its name or IP address checked.  Every step (resolve excepted, connect,
 * TLS handshake, write, read) shares one deadline; redirects are not
 * followed.
 *
 * A webhook URL is a secret (Slack-style URLs carry their token in the
 * path): no error text written here ever contains the URL or a part of it.
 */

typedef struct webhook_url {
    int https;
    char host[256]; /* a name or an address; an IPv6 address without brackets */
    char port[8];
    char target[2048]; /* path and query, at least "/" */
} webhook_url;

/*
 * Parses an absolute http:// or https:// URL (no user info, no fragment, a
 * port from 1 to 65535).  Leading and trailing whitespace is ignored (a URL
 * read from a file ends with a newline).  DX_ERR_INVALID with a reason in err
 * that does not quote the URL.
 */
dx_status webhook_parse_url(const char *url, webhook_url *out, char *err, size_t err_len);

/*
 * Parses the status line at the start of an HTTP response, strictly:
 * "HTTP/1.0" or "HTTP/1.1", one space, three digits from 100 to 599, then a
 * space or the end of the line.  Returns the status, 0 when the line is not
 * complete yet (no CRLF in the first len bytes), -1 when it is malformed.
 */
int webhook_parse_status(const char *buf, size_t len);

/*
 * POSTs body (len bytes, application/json) to u and returns, on DX_OK, the
 * response's status in *status (whatever it is: the caller decides).
 * ca_file ("" or NULL for the system CAs) is used for https.  A non-zero
 * *stop (stop may be NULL) ends the attempt within 200 ms, as failed
 * (DX_ERR_IO), so that a shutdown does not wait for a hung receiver.  DX_ERR_TIMEOUT
 * when timeout_ms passes, DX_ERR_IO for a failed resolve, connect, TLS
 * handshake or certificate check, or a malformed response, with a one-line
 * reason in err (never the URL).
 */
dx_status webhook_post(const webhook_url *u, const char *ca_file, int timeout_ms,
                       const atomic_int *stop, const char *body, size_t len, int *status, char *err,
                       size_t err_len);
