#include <stdio.h>
#include <string.h>

#include "natsurl.h"
#include "testing.h"

/* The redacted form of list. */
static const char *redacted(const char *list)
{
    static char out[512];

    natsurl_redact(list, out, sizeof(out));
    return out;
}

static void check_refused(const char *list, const char *secret)
{
    char err[512] = "";

    CHECK_EQ_INT(natsurl_check(list, err, sizeof(err)), DX_ERR_INVALID);
    if (strstr(err, "NATS_URL") == NULL)
        testing_fail(__FILE__, __LINE__, "%s: \"%s\" does not name NATS_URL", list, err);
    if (secret != NULL && strstr(err, secret) != NULL)
        testing_fail(__FILE__, __LINE__, "%s: \"%s\" shows the credential", list, err);
}

int main(void)
{
    char err[512];
    char buf[128];
    const char *servers[NATSURL_MAX_SERVERS];

    static const char *good[] = {
        "nats://127.0.0.1:4222",
        "tls://nats.example.internal:4443",
        "nats://alice:TopSecret9@127.0.0.1:4222",
        "nats://s3cr3tToken@127.0.0.1",
        "nats://[::1]:4222",
        "nats://a:4222, nats://b:4222 ,tls://c:4222",
        "nats://nats:4222/",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        err[0] = '\0';
        if (natsurl_check(good[i], err, sizeof(err)) != DX_OK)
            testing_fail(__FILE__, __LINE__, "%s refused: %s", good[i], err);
        testing_checks++;
    }
    check_refused("garbage", NULL);
    check_refused("http://127.0.0.1:4222", NULL);
    check_refused("", NULL);
    check_refused(" , ", NULL);
    check_refused("nats://", NULL);
    check_refused("nats://:4222", NULL);
    check_refused("nats://host:0", NULL);
    check_refused("nats://host:65536", NULL);
    check_refused("nats://host:42a2", NULL);
    check_refused("nats://host/path", NULL);
    check_refused("nats://host name:4222", NULL);
    check_refused("nats://a:4222,garbage", NULL);
    check_refused("nats://alice:TopSecret9@", "TopSecret9");
    check_refused("nats://alice:TopSecret9@host:x", "TopSecret9");
    check_refused("http://alice:TopSecret9@host", "TopSecret9");
    check_refused("nats://s3cr3tToken@host:99999", "s3cr3tToken");

    CHECK_EQ_STR(redacted("nats://alice:TopSecret9@127.0.0.1:4222"),
                 "nats://alice:***@127.0.0.1:4222");
    CHECK_EQ_STR(redacted("nats://s3cr3tToken@127.0.0.1:4222"), "nats://***@127.0.0.1:4222");
    CHECK_EQ_STR(redacted("tls://u:p@ss@h:1"), "tls://u:***@h:1");
    CHECK_EQ_STR(redacted("nats://a:1, nats://bob:pw@b:2"), "nats://a:1,nats://bob:***@b:2");
    CHECK_EQ_STR(redacted("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    CHECK_EQ_STR(redacted("alice:pw@h:1"), "alice:***@h:1");

    snprintf(buf, sizeof(buf), "%s", " nats://a:1 ,, tls://b:2\t");
    CHECK_EQ_INT(natsurl_split(buf, servers), 2);
    CHECK_EQ_STR(servers[0], "nats://a:1");
    CHECK_EQ_STR(servers[1], "tls://b:2");
    return testing_finish("test_natsurl");
}
