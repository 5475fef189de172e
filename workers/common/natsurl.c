#include "natsurl.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENTRY_MAX 512

static const char usage_text[] =
    "NATS_URL must be a comma-separated list of nats://HOST[:PORT] or tls://HOST[:PORT] URLs";

/* The entry's authority: what follows "://" (or the start) up to a '/'. */
static void authority_bounds(const char *entry, const char **start, const char **end)
{
    const char *scheme_end = strstr(entry, "://");

    *start = scheme_end ? scheme_end + 3 : entry;
    *end = *start + strcspn(*start, "/?#");
}

/* The last '@' of the authority (a password may hold a raw '@'), or NULL. */
static const char *credentials_end(const char *start, const char *end)
{
    const char *at = NULL;

    for (const char *p = start; p < end; p++)
        if (*p == '@')
            at = p;
    return at;
}

/* Appends src[0..len) to out at *used, truncating at out_len - 1. */
static void append(char *out, size_t out_len, size_t *used, const char *src, size_t len)
{
    if (*used + 1 >= out_len)
        return;
    if (len > out_len - 1 - *used)
        len = out_len - 1 - *used;
    memcpy(out + *used, src, len);
    *used += len;
    out[*used] = '\0';
}

/* Appends entry with its credentials replaced: user:***@ or ***@. */
static void append_redacted(char *out, size_t out_len, size_t *used, const char *entry)
{
    const char *start, *end, *at, *colon;

    authority_bounds(entry, &start, &end);
    at = credentials_end(start, end);
    if (at == NULL) {
        append(out, out_len, used, entry, strlen(entry));
        return;
    }
    colon = memchr(start, ':', (size_t)(at - start));
    append(out, out_len, used, entry, (size_t)(start - entry));
    if (colon != NULL) {
        append(out, out_len, used, start, (size_t)(colon - start));
        append(out, out_len, used, ":***", 4);
    } else {
        append(out, out_len, used, "***", 3);
    }
    append(out, out_len, used, at, strlen(at));
}

int natsurl_split(char *buf, const char *servers[NATSURL_MAX_SERVERS])
{
    int count = 0;
    char *save = NULL;

    for (char *tok = strtok_r(buf, ",", &save); tok != NULL && count < NATSURL_MAX_SERVERS;
         tok = strtok_r(NULL, ",", &save)) {
        char *end = tok + strlen(tok);

        while (*tok == ' ' || *tok == '\t')
            tok++;
        while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        if (*tok != '\0')
            servers[count++] = tok;
    }
    return count;
}

void natsurl_redact(const char *list, char *out, size_t out_len)
{
    char *buf = strdup(list);
    const char *servers[NATSURL_MAX_SERVERS];
    size_t used = 0;
    int count;

    if (out_len == 0)
        goto done;
    out[0] = '\0';
    if (buf == NULL)
        goto done;
    count = natsurl_split(buf, servers);
    for (int i = 0; i < count; i++) {
        if (i > 0)
            append(out, out_len, &used, ",", 1);
        append_redacted(out, out_len, &used, servers[i]);
    }
done:
    free(buf);
}

/* True when host (len bytes) is a bracketed IPv6 literal or a host name or IPv4. */
static int host_valid(const char *host, size_t len)
{
    if (len == 0)
        return 0;
    if (host[0] == '[')
        return len > 2 && host[len - 1] == ']' &&
               strspn(host + 1, "0123456789abcdefABCDEF:.") == len - 2;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)host[i]) && host[i] != '.' && host[i] != '-' && host[i] != '_')
            return 0;
    return 1;
}

/* NULL when entry is a valid server URL, else why not (a static string). */
static const char *entry_problem(const char *entry)
{
    const char *start, *end, *at, *host, *port;
    size_t host_len;

    if (strncmp(entry, "nats://", 7) != 0 && strncmp(entry, "tls://", 6) != 0)
        return "does not start with nats:// or tls://";
    authority_bounds(entry, &start, &end);
    if (*end != '\0' && strcmp(end, "/") != 0)
        return "has a path, query or fragment";
    at = credentials_end(start, end);
    host = at ? at + 1 : start;
    if (at != NULL && at == start)
        return "has an empty user name or token";
    /* A ':' after a ']' or in a name separates the port. */
    port = host[0] == '[' ? memchr(host, ']', (size_t)(end - host)) : host;
    port = port ? memchr(port, ':', (size_t)(end - port)) : NULL;
    host_len = (size_t)((port ? port : end) - host);
    if (!host_valid(host, host_len))
        return "has no valid host";
    if (port != NULL) {
        size_t digits = (size_t)(end - port - 1);
        long value = digits > 0 && digits <= 5 && strspn(port + 1, "0123456789") >= digits
                         ? strtol(port + 1, NULL, 10)
                         : 0;

        if (value < 1 || value > 65535)
            return "has a port that is not a number from 1 to 65535";
    }
    return NULL;
}

dx_status natsurl_check(const char *list, char *err, size_t err_len)
{
    char *buf = strdup(list);
    const char *servers[NATSURL_MAX_SERVERS];
    char shown[ENTRY_MAX];
    size_t commas = 0;
    dx_status s = DX_OK;
    int count;

    if (buf == NULL)
        return DX_ERR_NOMEM;
    for (const char *p = list; *p != '\0'; p++)
        commas += *p == ',';
    count = natsurl_split(buf, servers);
    if (count == 0) {
        snprintf(err, err_len, "%s (it is empty)", usage_text);
        s = DX_ERR_INVALID;
    } else if (commas >= NATSURL_MAX_SERVERS) {
        snprintf(err, err_len, "%s (at most %d of them)", usage_text, NATSURL_MAX_SERVERS);
        s = DX_ERR_INVALID;
    }
    for (int i = 0; s == DX_OK && i < count; i++) {
        const char *problem = entry_problem(servers[i]);
        size_t used = 0;

        if (problem == NULL)
            continue;
        shown[0] = '\0';
        append_redacted(shown, sizeof(shown), &used, servers[i]);
        snprintf(err, err_len, "%s: entry %d \"%s\" %s", usage_text, i + 1, shown, problem);
        s = DX_ERR_INVALID;
    }
    free(buf);
    return s;
}
