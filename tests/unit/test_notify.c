/* The notifier's pure parts: webhook URLs, response status lines, the
 * message body, the outcome of an attempt and the retry delays. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "notify.h"
#include "testing.h"
#include "webhook.h"

static void check_url(const char *url, int https, const char *host, const char *port,
                      const char *target)
{
    webhook_url u;
    char err[256] = "";

    if (webhook_parse_url(url, &u, err, sizeof(err)) != DX_OK) {
        testing_fail(__FILE__, __LINE__, "%s refused: %s", url, err);
        return;
    }
    CHECK_EQ_INT(u.https, https);
    CHECK_EQ_STR(u.host, host);
    CHECK_EQ_STR(u.port, port);
    CHECK_EQ_STR(u.target, target);
}

/* A refused URL's reason never quotes it (it is a secret). */
static void check_refused(const char *url, const char *secret)
{
    webhook_url u;
    char err[256] = "";

    CHECK_EQ_INT(webhook_parse_url(url, &u, err, sizeof(err)), DX_ERR_INVALID);
    CHECK(err[0] != '\0');
    if (strstr(err, secret) != NULL)
        testing_fail(__FILE__, __LINE__, "%s: \"%s\" shows the URL", url, err);
}

static void test_urls(void)
{
    check_url("https://hooks.example.com/services/T0/B1/XyZ", 1, "hooks.example.com", "443",
              "/services/T0/B1/XyZ");
    check_url("http://127.0.0.1:8099/hook?token=s3cr3t\n", 0, "127.0.0.1", "8099",
              "/hook?token=s3cr3t");
    check_url("  HTTP://Example.com  ", 0, "Example.com", "80", "/");
    check_url("http://example.com?x=1", 0, "example.com", "80", "/?x=1");
    check_url("https://[::1]:8443/h", 1, "::1", "8443", "/h");
    check_refused("ftp://example.com/s3cr3t", "s3cr3t");
    check_refused("example.com/s3cr3t", "s3cr3t");
    check_refused("https://user:s3cr3t@example.com/", "s3cr3t");
    check_refused("http://example.com:0/s3cr3t", "s3cr3t");
    check_refused("http://example.com:65536/s3cr3t", "s3cr3t");
    check_refused("http://example.com:80x/s3cr3t", "s3cr3t");
    check_refused("http:///s3cr3t", "s3cr3t");
    check_refused("http://exa mple.com/s3cr3t", "s3cr3t");
    check_refused("http://example.com/s3cr3t#frag", "s3cr3t");
    check_refused("http://example.com/s3cr3t\r\nX-Injected: 1", "s3cr3t");
    check_refused("https://[::1/s3cr3t", "s3cr3t");
    check_refused("", "s3cr3t");
}

static void test_status_lines(void)
{
    const char *ok = "HTTP/1.1 200 OK\r\n";

    CHECK_EQ_INT(webhook_parse_status(ok, strlen(ok)), 200);
    CHECK_EQ_INT(webhook_parse_status("HTTP/1.0 503\r\n", 14), 503);
    CHECK_EQ_INT(webhook_parse_status("HTTP/1.1 204 No Content\r\nA: b\r\n", 31), 204);
    /* Not complete yet: more to read. */
    CHECK_EQ_INT(webhook_parse_status("HTTP/1.1 200 OK", 15), 0);
    CHECK_EQ_INT(webhook_parse_status(ok, 5), 0);
    /* Malformed. */
    CHECK_EQ_INT(webhook_parse_status("HTTP/2 200 OK\r\n", 15), -1);
    CHECK_EQ_INT(webhook_parse_status("HTTP/1.1 20 OK\r\n", 16), -1);
    CHECK_EQ_INT(webhook_parse_status("HTTP/1.1 2000 OK\r\n", 18), -1);
    CHECK_EQ_INT(webhook_parse_status("HTTP/1.1 099 X\r\n", 16), -1);
    CHECK_EQ_INT(webhook_parse_status("HTTP/1.1 600 X\r\n", 16), -1);
    CHECK_EQ_INT(webhook_parse_status("http/1.1 200 OK\r\n", 17), -1);
    CHECK_EQ_INT(webhook_parse_status("SSH-2.0-OpenSSH\r\n", 17), -1);
    CHECK_EQ_INT(webhook_parse_status("HTTP/1.1 2x0 OK\r\n", 17), -1);
}

static void test_outcomes(void)
{
    static const struct {
        dx_status s;
        int http_status;
        notify_outcome want;
    } cases[] = {
        {DX_OK, 200, NOTIFY_DELIVERED}, {DX_OK, 204, NOTIFY_DELIVERED},
        {DX_OK, 500, NOTIFY_RETRY},     {DX_OK, 503, NOTIFY_RETRY},
        {DX_OK, 408, NOTIFY_RETRY},     {DX_OK, 429, NOTIFY_RETRY},
        {DX_OK, 100, NOTIFY_RETRY},     {DX_OK, 404, NOTIFY_PERMANENT},
        {DX_OK, 400, NOTIFY_PERMANENT}, {DX_OK, 410, NOTIFY_PERMANENT},
        {DX_OK, 301, NOTIFY_PERMANENT}, {DX_ERR_TIMEOUT, 0, NOTIFY_RETRY},
        {DX_ERR_IO, 0, NOTIFY_RETRY},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        testing_checks++;
        if (notify_classify(cases[i].s, cases[i].http_status) != cases[i].want)
            testing_fail(__FILE__, __LINE__, "status %d (%s): outcome %d, want %d",
                         cases[i].http_status, status_text(cases[i].s),
                         (int)notify_classify(cases[i].s, cases[i].http_status),
                         (int)cases[i].want);
    }
}

static void test_backoff(void)
{
    CHECK_EQ_INT(notify_backoff_ms(0), NOTIFY_BACKOFF_MIN_MS);
    CHECK_EQ_INT(notify_backoff_ms(1), 1000);
    CHECK_EQ_INT(notify_backoff_ms(2), 2000);
    CHECK_EQ_INT(notify_backoff_ms(3), 4000);
    CHECK_EQ_INT(notify_backoff_ms(9), 256000);
    CHECK_EQ_INT(notify_backoff_ms(10), NOTIFY_BACKOFF_MAX_MS);
    CHECK_EQ_INT(notify_backoff_ms(1000000), NOTIFY_BACKOFF_MAX_MS);
}

static const char *field(const cJSON *o, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(o, name);

    return cJSON_IsString(item) ? item->valuestring : NULL;
}

static void test_body(void)
{
    event_client_state ev = {0};
    cJSON *body, *links;

    snprintf(ev.event_id, sizeof(ev.event_id), "e1");
    snprintf(ev.trace_id, sizeof(ev.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    snprintf(ev.client_id, sizeof(ev.client_id), "US4");
    snprintf(ev.order_date, sizeof(ev.order_date), "2026-12-01");
    snprintf(ev.state, sizeof(ev.state), "late");
    snprintf(ev.previous, sizeof(ev.previous), "waiting");
    snprintf(ev.reason, sizeof(ev.reason), "no drop by 06:30 (+01:00)");
    body = notify_build_body(&ev, "https://status.example.com/");
    CHECK_EQ_STR(field(body, "text"), "US4 late for 2026-12-01: no drop by 06:30 (+01:00)");
    CHECK_EQ_STR(field(body, "client_id"), "US4");
    CHECK_EQ_STR(field(body, "order_date"), "2026-12-01");
    CHECK_EQ_STR(field(body, "state"), "late");
    CHECK_EQ_STR(field(body, "previous"), "waiting");
    CHECK_EQ_STR(field(body, "reason"), "no drop by 06:30 (+01:00)");
    CHECK_EQ_STR(field(body, "trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    links = cJSON_GetObjectItemCaseSensitive(body, "links");
    CHECK_EQ_STR(field(links, "page"), "https://status.example.com/");
    CHECK_EQ_STR(field(links, "status"), "https://status.example.com/status");
    cJSON_Delete(body);

    /* No reason: no dangling colon.  No STATUS_PUBLIC_URL: no links. */
    ev.reason[0] = '\0';
    snprintf(ev.state, sizeof(ev.state), "resolved");
    body = notify_build_body(&ev, "");
    CHECK_EQ_STR(field(body, "text"), "US4 resolved for 2026-12-01");
    links = cJSON_GetObjectItemCaseSensitive(body, "links");
    CHECK(cJSON_IsObject(links) && links->child == NULL);
    cJSON_Delete(body);
}

int main(void)
{
    test_urls();
    test_status_lines();
    test_outcomes();
    test_backoff();
    test_body();
    return testing_finish("test_notify");
}
