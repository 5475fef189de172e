#include "claims.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"
#include "util.h"
#include "worker.h"

/* How often a replica waiting on another's claim reads it again. */
#define POLL_MS 200

struct claims {
    kv *store;
    char owner[128];
};

dx_status claims_create(claims **out, kv *store)
{
    claims *c = calloc(1, sizeof(*c));
    char host[64] = "", rnd[9];

    if (c == NULL)
        return DX_ERR_NOMEM;
    if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
        snprintf(host, sizeof(host), "unknown");
    util_random_hex(rnd, sizeof(rnd));
    snprintf(c->owner, sizeof(c->owner), "%s:%ld:%s", host, (long)getpid(), rnd);
    c->store = store;
    *out = c;
    return DX_OK;
}

void claims_destroy(claims *c)
{
    free(c);
}

const char *claims_owner(const claims *c)
{
    return c->owner;
}

/* The claim's value; NULL when out of memory. The caller frees it. */
static char *claim_value(const claims *c, const char *state, const char *event_id)
{
    cJSON *o = cJSON_CreateObject();
    int64_t now = util_now_ms();
    char at[32];
    char *text;

    util_rfc3339(at, now);
    cJSON_AddStringToObject(o, "state", state);
    cJSON_AddStringToObject(o, "owner", c->owner);
    cJSON_AddStringToObject(o, "at", at);
    cJSON_AddNumberToObject(o, "at_ms", (double)now);
    if (event_id != NULL)
        cJSON_AddStringToObject(o, "event_id", event_id);
    text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

/* What a claim found in the bucket says; an unreadable value reads as a
 * claim of nobody made long ago, so that it is taken over at once. */
typedef struct claim_seen {
    int published;
    char owner[128];
    char event_id[64];
    int64_t at_ms;
} claim_seen;

static void parse_claim(const char *text, claim_seen *seen)
{
    cJSON *o = cJSON_Parse(text);
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(o, "state");
    const cJSON *owner = cJSON_GetObjectItemCaseSensitive(o, "owner");
    const cJSON *at_ms = cJSON_GetObjectItemCaseSensitive(o, "at_ms");
    const cJSON *event_id = cJSON_GetObjectItemCaseSensitive(o, "event_id");

    memset(seen, 0, sizeof(*seen));
    seen->published = cJSON_IsString(state) && strcmp(state->valuestring, "published") == 0;
    if (cJSON_IsString(owner))
        util_copy(seen->owner, sizeof(seen->owner), owner->valuestring);
    if (cJSON_IsNumber(at_ms))
        seen->at_ms = (int64_t)at_ms->valuedouble;
    if (cJSON_IsString(event_id))
        util_copy(seen->event_id, sizeof(seen->event_id), event_id->valuestring);
    cJSON_Delete(o);
}

static void log_claim(log_level level, const log_ctx *lc, const char *msg, const char *key,
                      const char *owner)
{
    cJSON *fields = cJSON_CreateObject();

    cJSON_AddStringToObject(fields, "claim", key);
    if (owner != NULL)
        cJSON_AddStringToObject(fields, "owner", owner);
    log_write(level, lc, msg, fields);
}

dx_status claims_take(claims *c, const char *order_date, const char *client_id, time_t scheduled_at,
                      claim *out, const log_ctx *lc)
{
    char key[sizeof(out->key)];
    char *value = claim_value(c, "claimed", NULL);
    uint64_t watched_rev = 0;
    int64_t watched_since = 0;
    dx_status s;

    out->event_id[0] = '\0';
    if (value == NULL)
        return DX_ERR_NOMEM;
    snprintf(key, sizeof(key), "run.%s.%s.%lld", order_date, client_id, (long long)scheduled_at);
    s = kv_create(c->store, key, value, &out->revision);
    while (s == DX_ERR_EXISTS) {
        char *current = NULL;
        uint64_t rev = 0;
        claim_seen seen;
        int64_t now = util_now_ms();

        s = kv_get(c->store, key, &current, &rev);
        if (s == DX_ERR_NOT_FOUND) {
            /* Deleted by an operator meanwhile: claim it afresh. */
            s = kv_create(c->store, key, value, &out->revision);
            continue;
        }
        if (s != DX_OK)
            break;
        parse_claim(current, &seen);
        free(current);
        if (seen.published) {
            util_copy(out->event_id, sizeof(out->event_id), seen.event_id);
            metrics_add(DX_RUN_CLAIMS_TOTAL, "published_elsewhere", 1);
            log_claim(LOG_LEVEL_INFO, lc, "run already published by another replica: skipped", key,
                      seen.owner);
            s = DX_ERR_EXISTS;
            break;
        }
        if (rev != watched_rev) {
            watched_rev = rev;
            watched_since = now;
        }
        if (strcmp(seen.owner, c->owner) == 0 || now - seen.at_ms >= CLAIMS_LEASE_MS ||
            now - watched_since >= CLAIMS_LEASE_MS) {
            /* Ours from a failed attempt, or its owner died between claim
             * and publish: take it over; of several takers one wins.  The
             * value is written anew so that its time starts a new lease. */
            free(value);
            value = claim_value(c, "claimed", NULL);
            if (value == NULL)
                return DX_ERR_NOMEM;
            s = kv_update(c->store, key, value, rev, &out->revision);
            if (s == DX_OK && strcmp(seen.owner, c->owner) != 0) {
                metrics_add(DX_RUN_CLAIMS_TOTAL, "taken_over", 1);
                log_claim(LOG_LEVEL_WARN, lc,
                          "claim left unpublished past the lease by another replica: taken over",
                          key, seen.owner);
            }
            if (s == DX_ERR_NOT_FOUND)
                s = DX_ERR_EXISTS; /* deleted meanwhile: look again */
            continue;
        }
        if (watched_since == now)
            log_claim(LOG_LEVEL_INFO, lc, "run claimed by another replica: waiting for its publish",
                      key, seen.owner);
        worker_sleep(POLL_MS);
        if (atomic_load(&worker_stop)) {
            s = DX_ERR_TIMEOUT;
            break;
        }
        s = DX_ERR_EXISTS;
    }
    free(value);
    if (s == DX_OK) {
        metrics_add(DX_RUN_CLAIMS_TOTAL, "claimed", 1);
        snprintf(out->key, sizeof(out->key), "%s", key);
        log_claim(LOG_LEVEL_DEBUG, lc, "run claimed", key, c->owner);
    } else if (s != DX_ERR_EXISTS) {
        log_claim(LOG_LEVEL_ERROR, lc, "cannot claim the run: the key-value bucket is unreachable",
                  key, NULL);
    }
    return s;
}

void claims_published(claims *c, const claim *cl, const char *event_id, const log_ctx *lc)
{
    char *value = claim_value(c, "published", event_id);
    dx_status s =
        value != NULL ? kv_update(c->store, cl->key, value, cl->revision, NULL) : DX_ERR_NOMEM;

    free(value);
    if (s != DX_OK)
        log_claim(LOG_LEVEL_WARN, lc,
                  "cannot mark the run published (a replica may publish it again after the "
                  "lease; the stream's duplicate window drops it)",
                  cl->key, NULL);
}
