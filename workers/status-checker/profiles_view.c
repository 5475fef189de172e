#include "profiles_view.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "profile_store.h"
#include "state.h"
#include "util.h"

/* Opened on first use; HTTP requests are served on several threads and a
 * kv is used by one at a time. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static kv *store;

static void annotate_one(cJSON *clients, const char *id)
{
    char reason[512] = "";
    profile p;
    dx_status s = profile_store_get(store, id, &p, reason, sizeof(reason));
    cJSON *client;

    if (s != DX_OK && s != DX_ERR_INVALID)
        return;
    client = state_client_entry(clients, id);
    cJSON_AddNumberToObject(client, "profile_revision", (double)p.revision);
    cJSON_AddBoolToObject(client, "paused", s == DX_OK && !p.enabled);
    if (s == DX_ERR_INVALID)
        cJSON_AddStringToObject(client, "profile_error", reason);
}

void profiles_view_annotate(cJSON *doc, worker *w)
{
    cJSON *clients = cJSON_GetObjectItemCaseSensitive(doc, "clients");
    bus *b = atomic_load_explicit(&w->bus, memory_order_acquire);
    char **keys = NULL, err[256];
    size_t count = 0;

    if (clients == NULL || b == NULL)
        return;
    pthread_mutex_lock(&lock);
    if (store == NULL &&
        profile_store_open(&store, b, w->cfg.stream_replicas, err, sizeof(err)) != DX_OK)
        log_printf(LOG_LEVEL_WARN, NULL, "%s", err);
    if (store != NULL && kv_keys(store, &keys, &count) == DX_OK) {
        for (size_t i = 0; i < count; i++) {
            if (clientid_valid(w->clients, keys[i]))
                annotate_one(clients, keys[i]);
        }
        kv_keys_free(keys, count);
    }
    pthread_mutex_unlock(&lock);
}

void profiles_view_finish(void)
{
    kv_destroy(store);
    store = NULL;
}

/* Under lock, with the store open: the expectations of every valid profile
 * (a refused document expects nothing: the workers ignore it too). */
static size_t load_expectations(worker *w, days_profile **out)
{
    char **keys = NULL, reason[512];
    size_t count = 0, n = 0;

    if (kv_keys(store, &keys, &count) != DX_OK)
        return 0;
    *out = count > 0 ? calloc(count, sizeof(**out)) : NULL;
    for (size_t i = 0; *out != NULL && i < count; i++) {
        profile p;

        if (!clientid_valid(w->clients, keys[i]) ||
            profile_store_get(store, keys[i], &p, reason, sizeof(reason)) != DX_OK)
            continue;
        util_copy((*out)[n].client_id, sizeof((*out)[n].client_id), keys[i]);
        (*out)[n].enabled = p.enabled;
        (*out)[n].expected_minute = p.expected_drop_minute;
        (*out)[n].expected_days = p.expected_drop_days;
        (*out)[n].order_date_offset_days = p.order_date_offset_days;
        n++;
    }
    kv_keys_free(keys, count);
    return n;
}

int profiles_view_expectations(worker *w, days_profile **out, size_t *count)
{
    bus *b = atomic_load_explicit(&w->bus, memory_order_acquire);
    char err[256];
    int ret = -1;

    *out = NULL;
    *count = 0;
    if (b == NULL)
        return -1;
    pthread_mutex_lock(&lock);
    if (store == NULL &&
        profile_store_open(&store, b, w->cfg.stream_replicas, err, sizeof(err)) != DX_OK)
        log_printf(LOG_LEVEL_WARN, NULL, "%s", err);
    if (store != NULL) {
        *count = load_expectations(w, out);
        ret = 0;
    }
    pthread_mutex_unlock(&lock);
    return ret;
}
