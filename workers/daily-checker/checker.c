#include "checker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drops.h"
#include "metrics.h"
#include "util.h"

/* The candidate drops of every client considered, from one listing. */
/* One client's candidate drops, from one listing. */
typedef struct client_drops {
    char *client_id;
    storage_entry *drops;
    size_t count;
} client_drops;

/* The candidate drops of every client considered, from one listing. */
typedef struct snapshot {
    client_drops *clients;
    size_t count;
} snapshot;

static void snapshot_free(snapshot *snap)
{
    for (size_t i = 0; i < snap->count; i++) {
        free(snap->clients[i].client_id);
        storage_entries_free(snap->clients[i].drops, snap->clients[i].count);
    }
    free(snap->clients);
    memset(snap, 0, sizeof(*snap));
}

static dx_status snapshot_add(snapshot *snap, worker *w, const char *client_id)
{
    client_drops entry = {0};
    client_drops *grown;
    dx_status s = drops_list(w->inbox, client_id, &entry.drops, &entry.count);

    if (s == DX_ERR_NOT_FOUND)
        return DX_OK; /* no folder: nothing pending */
    if (s != DX_OK)
        return s;
    entry.client_id = strdup(client_id);
    grown = realloc(snap->clients, (snap->count + 1) * sizeof(*grown));
    if (entry.client_id == NULL || grown == NULL) {
        free(entry.client_id);
        storage_entries_free(entry.drops, entry.count);
        if (grown != NULL)
            snap->clients = grown;
        return DX_ERR_NOMEM;
    }
    snap->clients = grown;
    snap->clients[snap->count++] = entry;
    return DX_OK;
}

static dx_status take_snapshot(worker *w, const checker_request *req, snapshot *snap)
{
    storage_entry *entries = NULL;
    size_t count = 0;
    dx_status s;

    if (req->client_id[0] != '\0')
        return snapshot_add(snap, w, req->client_id);
    s = storage_list(w->inbox, "", &entries, &count);
    for (size_t i = 0; s == DX_OK && i < count; i++) {
        if (entries[i].kind == STORAGE_DIR && clientid_valid(w->clients, entries[i].name))
            s = snapshot_add(snap, w, entries[i].name);
    }
    storage_entries_free(entries, count);
    return s;
}

static const storage_entry *find_drop(const snapshot *snap, const char *client_id, const char *name)
{
    for (size_t i = 0; i < snap->count; i++) {
        const client_drops *c = &snap->clients[i];

        if (strcmp(c->client_id, client_id) != 0)
            continue;
        for (size_t j = 0; j < c->count; j++)
            if (strcmp(c->drops[j].name, name) == 0)
                return &c->drops[j];
    }
    return NULL;
}

/* Counts the drops of client that are unchanged since before. */
static size_t stable_drops(const snapshot *before, const client_drops *client, const log_ctx *lc)
{
    size_t stable = 0;

    for (size_t j = 0; j < client->count; j++) {
        const storage_entry *cur = &client->drops[j];
        const storage_entry *old = find_drop(before, client->client_id, cur->name);

        if (old != NULL && old->size == cur->size && old->mtime == cur->mtime) {
            stable++;
        } else {
            cJSON *fields = cJSON_CreateObject();

            cJSON_AddStringToObject(fields, "drop", cur->name);
            cJSON_AddStringToObject(fields, "reason", "drop_not_stable");
            log_write(LOG_LEVEL_INFO, lc, "drop_not_stable: still changing, left for next run",
                      fields);
        }
    }
    return stable;
}

/* Publishes the OrderDate of one client; its event id goes to event_id. */
static dx_status publish_order_date(worker *w, const checker_request *req, const char *client_id,
                                    const char *trace_id, cJSON *published,
                                    char event_id[EVENT_ID_MAX])
{
    event_order_date ev = {0};
    char msg_id[160];
    void *data = NULL;
    size_t len = 0;
    log_ctx lc;
    dx_status s;

    util_uuid(ev.event_id);
    util_copy(event_id, EVENT_ID_MAX, ev.event_id);
    util_copy(ev.trace_id, sizeof(ev.trace_id), trace_id);
    util_copy(ev.order_date, sizeof(ev.order_date), req->order_date);
    util_copy(ev.client_id, sizeof(ev.client_id), client_id);
    util_copy(ev.triggered_by, sizeof(ev.triggered_by), req->triggered_by);
    util_rfc3339(ev.created_at, util_now_ms());
    /* A scheduled run is claimed once per client and date: a second replica
     * (or a restarted one) publishing the same run is dropped by the stream's
     * duplicate window.  A manual run is always new. */
    if (strcmp(req->triggered_by, "schedule") == 0 || strcmp(req->triggered_by, "catch-up") == 0)
        snprintf(msg_id, sizeof(msg_id), "order-date:%s:%s", client_id, req->order_date);
    else
        snprintf(msg_id, sizeof(msg_id), "%s", ev.event_id);
    s = event_encode(EVENT_ORDER_DATE, &ev, w->cfg.emit_json, &data, &len);
    if (s == DX_OK)
        s = bus_publish(w->bus, EVENT_SUBJECT_ORDER_DATE, data, len,
                        event_content_type(w->cfg.emit_json), msg_id);
    free(data);
    lc = (log_ctx){ev.trace_id, ev.event_id, client_id, ev.order_date};
    if (s != DX_OK) {
        log_printf(LOG_LEVEL_ERROR, &lc, "cannot publish order-date for %s", client_id);
        return s;
    }
    cJSON *fields = cJSON_CreateObject();

    cJSON_AddItemToObject(fields, "event", event_to_json(EVENT_ORDER_DATE, &ev));
    log_write(LOG_LEVEL_INFO, &lc, "order-date published", fields);
    cJSON_AddItemToArray(published, event_to_json(EVENT_ORDER_DATE, &ev));
    return DX_OK;
}

dx_status checker_run(worker *w, const checker_request *req, cJSON *published, char *err,
                      size_t err_len)
{
    snapshot before = {0}, now = {0};
    char trace_id[EVENT_ID_MAX];
    log_ctx lc;
    dx_status s = DX_OK;

    if (req->client_id[0] != '\0' && !clientid_valid(w->clients, req->client_id)) {
        metrics_add(DX_INVALID_INPUT_TOTAL, "invalid_client", 1);
        snprintf(err, err_len, "client id refused: it does not match CLIENT_PATTERN");
        return DX_ERR_INVALID;
    }
    if (util_trace_id_valid(req->trace_id))
        util_copy(trace_id, sizeof(trace_id), req->trace_id);
    else
        util_trace_id(trace_id);
    lc = (log_ctx){trace_id, NULL, req->client_id, req->order_date};
    log_printf(LOG_LEVEL_INFO, &lc, "checking the inbox for pending drops (%s)", req->triggered_by);
    pthread_mutex_lock(&w->work_lock);
    s = take_snapshot(w, req, &before);
    pthread_mutex_unlock(&w->work_lock);
    if (s == DX_OK && w->cfg.drop_min_age > 0)
        worker_sleep((int64_t)w->cfg.drop_min_age * 1000);
    if (s == DX_OK) {
        pthread_mutex_lock(&w->work_lock);
        s = take_snapshot(w, req, &now);
        pthread_mutex_unlock(&w->work_lock);
    }
    if (s != DX_OK) {
        snprintf(err, err_len, "cannot list the inbox: %s", storage_last_error(w->inbox));
        goto done;
    }
    for (size_t i = 0; i < now.count && s == DX_OK; i++) {
        log_ctx client_lc = {trace_id, NULL, now.clients[i].client_id, req->order_date};
        char event_id[EVENT_ID_MAX];
        claim cl;

        if (stable_drops(&before, &now.clients[i], &client_lc) == 0) {
            log_printf(LOG_LEVEL_INFO, &client_lc, "no pending drop for %s",
                       now.clients[i].client_id);
            continue;
        }
        if (req->claims != NULL) {
            s = claims_take(req->claims, req->order_date, now.clients[i].client_id,
                            req->scheduled_at, &cl, &client_lc);
            if (s == DX_ERR_EXISTS) {
                s = DX_OK; /* published by another replica */
                continue;
            }
            if (s != DX_OK) {
                snprintf(err, err_len, "cannot claim the run of %s", now.clients[i].client_id);
                break;
            }
        }
        s = publish_order_date(w, req, now.clients[i].client_id, trace_id, published, event_id);
        if (s != DX_OK)
            snprintf(err, err_len, "cannot publish order-date for %s", now.clients[i].client_id);
        else if (req->claims != NULL)
            claims_published(req->claims, &cl, event_id, &client_lc);
    }
done:
    snapshot_free(&before);
    snapshot_free(&now);
    return s;
}
