#include "profiles_view.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "profile_store.h"
#include "state.h"

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
