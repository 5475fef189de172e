#include "checker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drops.h"
#include "metrics.h"
#include "profile_store.h"
#include "util.h"

/* One client's candidate drops, from one listing, and its profile. */
typedef struct client_drops {
    char *client_id;
    storage_entry *drops;
    size_t count;
    profile profile;
    int profile_invalid; /* the document is invalid: the transformer holds its drops */
    int has_folder;      /* 0: a client known by its profile only */
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

/* The clients bucket, opened on first use and kept; used under work_lock. */
static kv *profiles;

void checker_finish(void)
{
    kv_destroy(profiles);
    profiles = NULL;
}

/* Opens the clients bucket once; DX_ERR_IO (logged) when unreachable. */
static dx_status profiles_open(worker *w, const char *client_id)
{
    char err[256] = "";
    dx_status s = DX_OK;

    if (profiles == NULL)
        s = profile_store_open(&profiles, w->bus, w->cfg.stream_replicas, err, sizeof(err));
    if (s != DX_OK)
        log_printf(LOG_LEVEL_ERROR, &(log_ctx){NULL, NULL, client_id, NULL}, "%s", err);
    return s;
}

/* Reads of a profile: 4 attempts, 0.5 s, 1 s and 2 s apart. */
#define PROFILE_READ_ATTEMPTS 4
#define PROFILE_RETRY_MS      500

/*
 * Reads client_id's profile into entry.  An invalid document is logged and
 * the client is handled as without a profile: its event is still published,
 * so that file-transformer holds the drops with a failure /status shows.
 */
static dx_status read_profile(worker *w, const char *client_id, client_drops *entry)
{
    char reason[512] = "";
    dx_status s = profiles_open(w, client_id);

    /* A read that fails (a timeout) is tried again: right after a NATS node
     * is lost, the bucket can be without a leader for a few seconds, and one
     * client's profile must not fail the whole check. */
    for (int attempt = 1; s == DX_OK; attempt++) {
        s = profile_store_get(profiles, client_id, &entry->profile, reason, sizeof(reason));
        if (s != DX_ERR_IO || attempt == PROFILE_READ_ATTEMPTS || atomic_load(&worker_stop))
            break;
        worker_sleep(PROFILE_RETRY_MS << (attempt - 1));
        s = DX_OK;
    }
    if (s == DX_ERR_INVALID) {
        log_printf(LOG_LEVEL_ERROR, &(log_ctx){NULL, NULL, client_id, NULL}, "%s", reason);
        entry->profile_invalid = 1;
        s = DX_OK;
    }
    return s;
}

static int snapshot_has(const snapshot *snap, const char *client_id)
{
    for (size_t i = 0; i < snap->count; i++)
        if (strcmp(snap->clients[i].client_id, client_id) == 0)
            return 1;
    return 0;
}

/* Adds client_id when it is expected: it has a folder or a profile. */
static dx_status snapshot_add(snapshot *snap, worker *w, const char *client_id)
{
    client_drops entry = {.has_folder = 1};
    client_drops *grown;
    dx_status s = drops_list(w->inbox, client_id, &entry.drops, &entry.count);

    if (s == DX_ERR_NOT_FOUND) {
        entry.has_folder = 0; /* no folder: nothing pending */
        s = DX_OK;
    }
    if (s == DX_OK)
        s = read_profile(w, client_id, &entry);
    if (s != DX_OK ||
        (!entry.has_folder && entry.profile.revision == 0 && !entry.profile_invalid)) {
        storage_entries_free(entry.drops, entry.count);
        return s; /* an error, or neither a folder nor a profile: not expected */
    }
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

/* Adds the clients that have a profile and no folder: expected all the same. */
static dx_status add_profile_clients(worker *w, snapshot *snap)
{
    char **keys = NULL;
    size_t count = 0;
    dx_status s = profiles_open(w, NULL);

    if (s == DX_OK)
        s = kv_keys(profiles, &keys, &count);
    for (size_t i = 0; s == DX_OK && i < count; i++) {
        if (clientid_valid(w->clients, keys[i]) && !snapshot_has(snap, keys[i]))
            s = snapshot_add(snap, w, keys[i]);
    }
    kv_keys_free(keys, count);
    return s;
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
    if (s == DX_OK)
        s = add_profile_clients(w, snap);
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

/* The first complete and the first incomplete drop of a client (borrowed, NULL: none). */
typedef struct drop_names {
    const char *taken;
    const char *changing;
} drop_names;

/* Counts the drops of a client with a done_marker whose marker exists. */
static size_t marked_drops(worker *w, const client_drops *client, const log_ctx *lc,
                           drop_names *names)
{
    size_t marked = 0;

    for (size_t j = 0; j < client->count; j++) {
        const char *name = client->drops[j].name;

        if (drops_has_marker(w->inbox, client->client_id, name, client->profile.done_marker)) {
            if (marked++ == 0)
                names->taken = name;
        } else {
            if (names->changing == NULL)
                names->changing = name;
            cJSON *fields = cJSON_CreateObject();

            cJSON_AddStringToObject(fields, "drop", name);
            cJSON_AddStringToObject(fields, "reason", "drop_not_marked");
            log_write(LOG_LEVEL_INFO, lc,
                      "drop_not_marked: no completion marker yet, left for next run", fields);
        }
    }
    return marked;
}

/* Counts the drops of client that are complete: marked, or unchanged since before. */
static size_t stable_drops(worker *w, const snapshot *before, const client_drops *client,
                           const log_ctx *lc, drop_names *names)
{
    size_t stable = 0;

    if (client->profile.done_marker[0] != '\0')
        return marked_drops(w, client, lc, names);
    for (size_t j = 0; j < client->count; j++) {
        const storage_entry *cur = &client->drops[j];
        const storage_entry *old = find_drop(before, client->client_id, cur->name);

        if (old != NULL && old->size == cur->size && old->mtime == cur->mtime) {
            if (stable++ == 0)
                names->taken = cur->name;
        } else {
            cJSON *fields = cJSON_CreateObject();

            if (names->changing == NULL)
                names->changing = cur->name;
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
                                    const char *order_date, const char *trace_id, cJSON *published,
                                    char event_id[EVENT_ID_MAX])
{
    event_order_date ev = {0};
    char msg_id[160];
    log_ctx lc;
    dx_status s;

    util_uuid(ev.event_id);
    util_copy(event_id, EVENT_ID_MAX, ev.event_id);
    util_copy(ev.trace_id, sizeof(ev.trace_id), trace_id);
    util_copy(ev.order_date, sizeof(ev.order_date), order_date);
    util_copy(ev.client_id, sizeof(ev.client_id), client_id);
    util_copy(ev.triggered_by, sizeof(ev.triggered_by), req->triggered_by);
    util_rfc3339(ev.created_at, util_now_ms());
    /* A scheduled run is claimed once per client and date: a second replica
     * (or a restarted one) publishing the same run is dropped by the stream's
     * duplicate window; so is a re-check of that run.  A manual run is
     * always new. */
    if (strcmp(req->triggered_by, "schedule") == 0 || strcmp(req->triggered_by, "catch-up") == 0 ||
        strcmp(req->triggered_by, "recheck") == 0)
        snprintf(msg_id, sizeof(msg_id), "order-date:%s:%s", client_id, order_date);
    else
        snprintf(msg_id, sizeof(msg_id), "%s", ev.event_id);
    s = worker_publish_event(w, EVENT_ORDER_DATE, &ev, EVENT_SUBJECT_ORDER_DATE, msg_id);
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

/* Writes date + days (YYYY-MM-DD) into out; a valid date stays valid. */
static void add_days(const char *date, int days, char out[16])
{
    int64_t day;

    if (days == 0 || !util_date_to_days(date, &day))
        util_copy(out, 16, date);
    else
        util_date_from_days(day + days, out);
}

/* 1 when some client of the snapshot needs the DROP_MIN_AGE stability wait. */
static int needs_stability_wait(const snapshot *snap)
{
    for (size_t i = 0; i < snap->count; i++) {
        if (snap->clients[i].count > 0 && snap->clients[i].profile.done_marker[0] == '\0')
            return 1;
    }
    return 0;
}

/* 1 when the client is paused (logged); its drops stay in the inbox. */
static int client_paused(const client_drops *client, const log_ctx *lc)
{
    cJSON *fields;

    if (client->profile.enabled || client->profile_invalid)
        return 0;
    fields = cJSON_CreateObject();
    cJSON_AddStringToObject(fields, "reason", "client_paused");
    cJSON_AddNumberToObject(fields, "drops", (double)client->count);
    cJSON_AddNumberToObject(fields, "profile_revision", (double)client->profile.revision);
    log_write(LOG_LEVEL_INFO, lc, "client paused by its profile (enabled: false), skipped", fields);
    return 1;
}

/* What one check found for one client, for its DropCheck. */
typedef struct check_outcome {
    const char *found;            /* "taken", "none", "not_stable", "paused" */
    const char *drop;             /* the drop's name in the client's folder, or NULL */
    const char *order_date_event; /* with "taken" */
} check_outcome;

/*
 * Publishes the DropCheck of one client and appends it (as JSON) to checks
 * when not NULL.  A failure is logged and counted, never returned: the
 * OrderDate, if any, is out already, and the other clients are still owed
 * their DropCheck.
 */
static void publish_drop_check(worker *w, const checker_request *req, const client_drops *client,
                               const char *order_date, const char *trace_id,
                               const check_outcome *out, cJSON *checks)
{
    event_drop_check ev = {0};
    const char *check_id = req->check_id != NULL && req->check_id[0] ? req->check_id : trace_id;
    char msg_id[256];
    log_ctx lc;
    dx_status s;

    util_uuid(ev.event_id);
    util_copy(ev.trace_id, sizeof(ev.trace_id), trace_id);
    util_copy(ev.client_id, sizeof(ev.client_id), client->client_id);
    util_copy(ev.order_date, sizeof(ev.order_date), order_date);
    util_copy(ev.found, sizeof(ev.found), out->found);
    if (out->drop != NULL)
        snprintf(ev.source, sizeof(ev.source), "%s/%s", client->client_id, out->drop);
    if (out->order_date_event != NULL)
        util_copy(ev.order_date_event, sizeof(ev.order_date_event), out->order_date_event);
    util_rfc3339(ev.checked_at, util_now_ms());
    util_copy(ev.triggered_by, sizeof(ev.triggered_by), req->triggered_by);
    ev.profile_revision = client->profile.revision;
    snprintf(msg_id, sizeof(msg_id), "drop-check:%s:%s:%s", client->client_id, order_date,
             check_id);
    s = worker_publish_event(w, EVENT_DROP_CHECK, &ev, EVENT_SUBJECT_DROP_CHECK, msg_id);
    lc = (log_ctx){ev.trace_id, ev.event_id, ev.client_id, ev.order_date};
    if (s != DX_OK) {
        metrics_add(DX_EVENTS_FAILED_TOTAL, EVENT_SUBJECT_DROP_CHECK, 1);
        log_printf(LOG_LEVEL_ERROR, &lc, "cannot publish drop-check for %s (found %s): %s",
                   ev.client_id, ev.found, status_text(s));
    } else {
        cJSON *fields = cJSON_CreateObject();

        cJSON_AddItemToObject(fields, "event", event_to_json(EVENT_DROP_CHECK, &ev));
        log_write(LOG_LEVEL_DEBUG, &lc, "drop-check published", fields);
    }
    if (checks != NULL)
        cJSON_AddItemToArray(checks, event_to_json(EVENT_DROP_CHECK, &ev));
}

/* The state of one checker_run() shared by its per-client steps. */
typedef struct check_run {
    worker *w;
    const checker_request *req;
    const snapshot *before;
    const char *trace_id;
    cJSON *published;
    cJSON *checks;
    char *err;
    size_t err_len;
} check_run;

/*
 * Handles one client of a check: its OrderDate when a drop is complete (and
 * the run is this replica's), then its DropCheck.  A failed claim or
 * OrderDate is returned (the run is retried); nothing else is.
 */
static dx_status check_client(check_run *run, const client_drops *client)
{
    const checker_request *req = run->req;
    check_outcome out = {"none", NULL, NULL};
    drop_names names = {NULL, NULL};
    char event_id[EVENT_ID_MAX] = "", order_date[16];
    log_ctx lc;
    claim cl;
    dx_status s = DX_OK;

    add_days(req->order_date, req->run_date ? client->profile.order_date_offset_days : 0,
             order_date);
    lc = (log_ctx){run->trace_id, NULL, client->client_id, order_date};
    if (client_paused(client, &lc)) {
        out.found = "paused";
    } else if (stable_drops(run->w, run->before, client, &lc, &names) == 0) {
        log_printf(LOG_LEVEL_INFO, &lc, "no pending drop for %s", client->client_id);
        if (names.changing != NULL)
            out = (check_outcome){"not_stable", names.changing, NULL};
    } else {
        out = (check_outcome){"taken", names.taken, event_id};
        if (req->claims != NULL)
            s = claims_take(req->claims, req->order_date, client->client_id, req->scheduled_at, &cl,
                            &lc);
        if (s == DX_ERR_EXISTS) {
            /* Published by another replica: so is its DropCheck, with the
             * same Nats-Msg-Id; this one says the same when the claim
             * names the OrderDate, and is then dropped as a duplicate. */
            if (cl.event_id[0] == '\0')
                return DX_OK;
            util_copy(event_id, sizeof(event_id), cl.event_id);
        } else if (s != DX_OK) {
            snprintf(run->err, run->err_len, "cannot claim the run of %s", client->client_id);
            return s;
        } else {
            s = publish_order_date(run->w, req, client->client_id, order_date, run->trace_id,
                                   run->published, event_id);
            if (s != DX_OK) {
                snprintf(run->err, run->err_len, "cannot publish order-date for %s",
                         client->client_id);
                return s;
            }
            if (req->claims != NULL)
                claims_published(req->claims, &cl, event_id, &lc);
        }
    }
    publish_drop_check(run->w, req, client, order_date, run->trace_id, &out, run->checks);
    return DX_OK;
}

dx_status checker_run(worker *w, const checker_request *req, cJSON *published, cJSON *checks,
                      char *err, size_t err_len)
{
    snapshot before = {0}, now = {0};
    char trace_id[EVENT_ID_MAX];
    check_run run = {w, req, &before, trace_id, published, checks, err, err_len};
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
    if (s == DX_OK && w->cfg.drop_min_age > 0 && needs_stability_wait(&before))
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
    for (size_t i = 0; i < now.count && s == DX_OK; i++)
        s = check_client(&run, &now.clients[i]);
done:
    snapshot_free(&before);
    snapshot_free(&now);
    return s;
}
