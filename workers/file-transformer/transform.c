#include "transform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clean.h"
#include "drops.h"
#include "dropname.h"
#include "metrics.h"
#include "profile_store.h"
#include "util.h"

/* Drops of the same name one day before place_drop gives up. */
#define PLACE_MAX 9999

typedef struct read_ctx {
    storage_reader *rd;
    int failed; /* a read failed: storage_last_error(inbox) says why */
} read_ctx;

typedef struct write_ctx {
    storage_writer *wr;
    util_sha256 *sha; /* NULL for the rejects file */
    int failed;       /* a write failed: storage_last_error(depot) says why */
} write_ctx;

/* One run: the event being handled and what it has produced so far. */
typedef struct run_ctx {
    worker *w;
    const event_order_date *ev;
    const bus_delivery *delivery;
    int last_attempt;
    int transient_failures;
    const profile *profile; /* the profile of the client being processed */
    cJSON *files;           /* FileReady events published */
    cJSON *failures;        /* FileFailed events published or pending */
} run_ctx;

static dx_status read_drop(void *ctx, void *buf, size_t cap, size_t *got)
{
    read_ctx *rc = ctx;
    dx_status s = storage_read(rc->rd, buf, cap, got);

    if (s != DX_OK)
        rc->failed = 1;
    return s;
}

static dx_status write_file(void *ctx, const void *buf, size_t len)
{
    write_ctx *wc = ctx;

    dx_status s;

    if (wc->sha != NULL)
        util_sha256_update(wc->sha, buf, len);
    s = storage_write(wc->wr, buf, len);
    if (s != DX_OK)
        wc->failed = 1;
    return s;
}

/*
 * Records a failure: published as FileFailed at once when permanent, on the
 * last attempt, or when publish_now asks for it (a transient failure an
 * operator must see before the retries run out); otherwise only counted,
 * and the event is retried.  Returns 1 when the FileFailed was published.
 */
static int report_failure(run_ctx *run, const log_ctx *lc, const char *client_id,
                          const char *source, const char *reason, int permanent, int publish_now)
{
    event_file_failed failed = {0};
    int publish = permanent || run->last_attempt || publish_now;
    char msg_id[EVENT_PATH_MAX * 2];
    cJSON *fields = cJSON_CreateObject();

    util_uuid(failed.event_id);
    util_copy(failed.trace_id, sizeof(failed.trace_id), run->ev->trace_id);
    util_copy(failed.caused_by, sizeof(failed.caused_by), run->ev->event_id);
    util_copy(failed.client_id, sizeof(failed.client_id), client_id);
    util_copy(failed.order_date, sizeof(failed.order_date), run->ev->order_date);
    util_copy(failed.source, sizeof(failed.source), source);
    util_copy(failed.reason, sizeof(failed.reason), reason);
    failed.permanent = permanent;
    cJSON_AddStringToObject(fields, "source", source);
    cJSON_AddStringToObject(fields, "reason", reason);
    cJSON_AddBoolToObject(fields, "permanent", permanent);
    cJSON_AddBoolToObject(fields, "will_retry", !publish);
    log_write(publish ? LOG_LEVEL_ERROR : LOG_LEVEL_WARN, lc, "file failed", fields);
    /* Even when published as FileFailed on the last attempt, a transient
     * failure is reported as such (503 to an HTTP caller, which may retry). */
    if (!permanent)
        run->transient_failures++;
    if (!publish) {
        cJSON_AddItemToArray(run->failures, event_to_json(EVENT_FILE_FAILED, &failed));
        return 0;
    }
    metrics_add(DX_FILES_FAILED_TOTAL, client_id, 1);
    /* A failure published before the last attempt comes again with every
     * redelivery: the same reason for the same run is published once. */
    if (publish_now && !permanent && !run->last_attempt)
        snprintf(msg_id, sizeof(msg_id), "file-failed:%s:%s:%s", client_id, run->ev->event_id,
                 reason);
    else
        snprintf(msg_id, sizeof(msg_id), "%s", failed.event_id);
    if (worker_publish_event(run->w, EVENT_FILE_FAILED, &failed, EVENT_SUBJECT_FILE_FAILED,
                             msg_id) != DX_OK) {
        publish = 0;
        if (permanent)
            run->transient_failures++; /* not published: the event must come back */
    }
    cJSON_AddItemToArray(run->failures, event_to_json(EVENT_FILE_FAILED, &failed));
    return publish;
}

static int drop_failed(run_ctx *run, const log_ctx *lc, const char *client_id, const char *source,
                       const char *reason, int permanent)
{
    return report_failure(run, lc, client_id, source, reason, permanent, 0);
}

/*
 * Chooses the name a drop takes in <client>/<folder>/<date>/ (folder is
 * "archive" or "failed") into out: name itself when free, else <stem>.1.csv,
 * <stem>.2.csv...  The archive name is also the drop's name in the depot
 * (<stem>.csv and <stem>.rejects.csv), so this is the one decision of which
 * outputs a drop owns: a second drop of the same name the same day takes the
 * next free name, while a drop not yet archived (a rerun after a crash)
 * takes the same name again and rewrites its own outputs.  A stem ending in
 * ".rejects" (any case) is never chosen, so that no drop's clean file can be
 * named like another drop's rejects file.
 */
static dx_status place_drop(storage *inbox, const char *client_id, const char *folder,
                            const char *order_date, const char *name, char *out, size_t out_len)
{
    char stem[256], path[EVENT_PATH_MAX + 32];
    storage_entry existing;
    size_t stem_len;
    dx_status s;

    drops_stem(name, stem, sizeof(stem));
    stem_len = strlen(stem);
    for (int n = 0; n <= PLACE_MAX; n++) {
        if (n == 0 && stem_len >= 8 && strcasecmp(stem + stem_len - 8, ".rejects") == 0)
            continue;
        if (n == 0)
            snprintf(out, out_len, "%s", name);
        else
            snprintf(out, out_len, "%s.%d.csv", stem, n);
        snprintf(path, sizeof(path), "%s/%s/%s/%s", client_id, folder, order_date, out);
        s = storage_stat(inbox, path, &existing);
        if (s == DX_ERR_NOT_FOUND)
            return DX_OK;
        if (s != DX_OK)
            return s;
    }
    storage_set_error(inbox, "%d drops of the same name already in %s/%s/%s", PLACE_MAX, client_id,
                      folder, order_date);
    return DX_ERR_PERMANENT;
}

/*
 * Moves a drop into <client>/<folder>/<date>/<placed> (see place_drop).  Its
 * completion marker, when the profile has one, follows it under the placed
 * name plus the marker, so that the marker never announces a later drop.
 */
static dx_status move_drop(storage *inbox, const char *client_id, const char *name,
                           const char *folder, const char *order_date, const char *placed,
                           const char *marker)
{
    char to[EVENT_PATH_MAX + 32];
    char marker_from[EVENT_PATH_MAX + PROFILE_MARKER_MAX],
        marker_to[sizeof(to) + PROFILE_MARKER_MAX];
    dx_status s;

    snprintf(to, sizeof(to), "%s/%s/%s/%s", client_id, folder, order_date, placed);
    s = storage_rename_listed(inbox, client_id, name, to);
    if (s != DX_OK || marker == NULL || marker[0] == '\0')
        return s;
    snprintf(marker_from, sizeof(marker_from), "%s/%s%s", client_id, name, marker);
    snprintf(marker_to, sizeof(marker_to), "%s%s", to, marker);
    return storage_rename(inbox, marker_from, marker_to);
}

_Static_assert(CLEAN_REJECT_REASONS - 1 <= EVENT_REJECT_REASONS_MAX,
               "FileReady.rejects_by_reason holds every reject code");

/* FileReady.rejects_by_reason from the engine's per-reason counts: the
 * reasons with rows, in the engine's order. */
static void ready_rejects(event_file_ready *ready, const clean_counts *counts)
{
    event_reject_counts *rc = &ready->rejects_by_reason;

    rc->count = 0;
    for (size_t i = 1; i < CLEAN_REJECT_REASONS; i++) {
        if (counts->rejected_by_reason[i] == 0)
            continue;
        snprintf(rc->items[rc->count].reason, sizeof(rc->items[rc->count].reason), "%s",
                 clean_reject_code(i));
        rc->items[rc->count].rows = counts->rejected_by_reason[i];
        rc->count++;
    }
}

/* dx_rows_rejected_total{client_id,reason} for one committed drop. */
static void rejected_metrics(const char *client_id, const event_reject_counts *rc)
{
    char labels[EVENT_CLIENT_MAX + EVENT_REASON_MAX + 2];

    for (size_t i = 0; i < rc->count; i++) {
        snprintf(labels, sizeof(labels), "%s,%s", client_id, rc->items[i].reason);
        metrics_add(DX_ROWS_REJECTED_TOTAL, labels, (double)rc->items[i].rows);
    }
}

/* Streams one drop through the cleaner into two atomic depot writes. */
static dx_status clean_drop(run_ctx *run, const char *source, event_file_ready *ready,
                            uint64_t *neutralised, char *reason, size_t reason_len)
{
    worker *w = run->w;
    storage_reader *rd = NULL;
    storage_writer *out = NULL, *rejects = NULL;
    util_sha256 *sha = util_sha256_create();
    clean_counts counts = {0};
    read_ctx rc = {0};
    write_ctx out_ctx = {0}, rejects_ctx = {0};
    clean_io io;
    dx_status s = sha ? DX_OK : DX_ERR_NOMEM;

    if (s == DX_OK)
        s = storage_reader_open(w->inbox, source, &rd);
    if (s == DX_OK)
        s = storage_writer_open(w->depot, ready->output, &out);
    if (s == DX_OK)
        s = storage_writer_open(w->depot, ready->rejects, &rejects);
    if (s != DX_OK) {
        snprintf(reason, reason_len, "%s", storage_last_error(rd ? w->depot : w->inbox));
        goto done;
    }
    rc = (read_ctx){.rd = rd};
    out_ctx = (write_ctx){.wr = out, .sha = sha};
    rejects_ctx = (write_ctx){.wr = rejects, .sha = NULL};
    io = (clean_io){.read = read_drop,
                    .read_ctx = &rc,
                    .write_output = write_file,
                    .output_ctx = &out_ctx,
                    .write_rejects = write_file,
                    .rejects_ctx = &rejects_ctx,
                    .formulas_verbatim = !w->cfg.formula_guard,
                    .memory_budget = (size_t)w->cfg.clean_memory_mb << 20};
    s = clean_run_profile(&io, run->profile, &counts, reason, reason_len);
    /* The storage's own reason ("No space left on device") beats the
     * cleaner's status name. */
    if (s != DX_OK && (out_ctx.failed || rejects_ctx.failed))
        snprintf(reason, reason_len, "depot: %s", storage_last_error(w->depot));
    else if (s != DX_OK && rc.failed)
        snprintf(reason, reason_len, "inbox: %s", storage_last_error(w->inbox));
    else if (s != DX_OK && reason[0] == '\0')
        snprintf(reason, reason_len, "%s", storage_last_error(w->depot));
    /* Rejects first: once the clean output is visible, its rejects are too;
     * their shared folder is synced once, after both renames. */
    if (s == DX_OK) {
        int committed = 0;

        s = storage_writer_commit_pair(rejects, out, &committed);
        rejects = out = NULL;
        if (s != DX_OK && committed == 1) {
            snprintf(reason, reason_len, "depot: %s", storage_last_error(w->depot));
            /* No half result: the rejects without their clean file go too. */
            storage_remove(w->depot, ready->rejects);
        }
    }
    if (s != DX_OK && reason[0] == '\0')
        snprintf(reason, reason_len, "%s", storage_last_error(w->depot));
    if (s == DX_OK) {
        ready->rows_in = counts.rows_in;
        ready->rows_out = counts.rows_out;
        ready->rows_rejected = counts.rows_rejected;
        ready->rows_duplicate = counts.rows_duplicate;
        ready->bytes_out = counts.bytes_out;
        ready_rejects(ready, &counts);
        *neutralised = counts.cells_neutralised;
        util_sha256_hex(sha, ready->sha256);
    }
done:
    storage_writer_abort(out);
    storage_writer_abort(rejects);
    storage_reader_close(rd);
    util_sha256_destroy(sha);
    return s;
}

/*
 * True when the drop at source is still the one that was listed (size and
 * modification time): a client may upload a new file under the same name
 * while we clean the old one, and that new file must stay in the inbox.
 */
static int drop_unchanged(storage *inbox, const char *source, const storage_entry *listed)
{
    storage_entry now;

    return storage_stat(inbox, source, &now) == DX_OK && now.kind == STORAGE_FILE &&
           now.size == listed->size && now.mtime == listed->mtime;
}

/*
 * Fails a drop whose name cannot be used (see dropname.h) without reading
 * it: a permanent FileFailed under its escaped name, then, once that is
 * published, a move into failed/<date>/ under a safe name, so that it fails
 * once and the operator finds it where the reason says.
 */
static void fail_unusable_name(run_ctx *run, const log_ctx *lc, const char *client_id,
                               const char *name, const char *problem)
{
    storage *inbox = run->w->inbox;
    const char *order_date = run->ev->order_date;
    char escaped[EVENT_PATH_MAX / 2], safe[DROPNAME_MAX + 1], placed[DROPNAME_MAX + 16];
    char source[EVENT_PATH_MAX], reason[EVENT_PATH_MAX], why[EVENT_PATH_MAX / 2];
    dx_status s;

    dropname_escape(name, escaped, sizeof(escaped));
    dropname_safe(name, safe, sizeof(safe));
    snprintf(source, sizeof(source), "%s/%s", client_id, escaped);
    metrics_add(DX_INVALID_INPUT_TOTAL, "unusable_name", 1);
    s = place_drop(inbox, client_id, "failed", order_date, safe, placed, sizeof(placed));
    if (s != DX_OK) {
        drop_failed(run, lc, client_id, source, storage_last_error(inbox), s == DX_ERR_PERMANENT);
        return;
    }
    snprintf(reason, sizeof(reason), "unusable file name: it %s; moved to %s/failed/%s/%s", problem,
             client_id, order_date, placed);
    if (drop_failed(run, lc, client_id, source, reason, 1) &&
        move_drop(inbox, client_id, name, "failed", order_date, placed, NULL) != DX_OK) {
        /* The backend's reason may quote the raw name. */
        dropname_escape(storage_last_error(inbox), why, sizeof(why));
        log_printf(LOG_LEVEL_WARN, lc, "could not move %s aside: %s", source, why);
    }
}

static void process_drop(run_ctx *run, const char *client_id, const storage_entry *drop)
{
    const char *name = drop->name;
    worker *w = run->w;
    const event_order_date *ev = run->ev;
    log_ctx lc = {ev->trace_id, ev->event_id, client_id, ev->order_date};
    event_file_ready ready = {0};
    char stem[256], placed[DROPNAME_MAX + 16], reason[EVENT_PATH_MAX] = "";
    char msg_id[EVENT_PATH_MAX + 256];
    const char *problem = dropname_problem(name);
    uint64_t neutralised = 0;
    cJSON *fields;
    dx_status s;

    if (problem != NULL) {
        fail_unusable_name(run, &lc, client_id, name, problem);
        return;
    }
    if (run->profile->done_marker[0] != '\0' &&
        !drops_has_marker(w->inbox, client_id, name, run->profile->done_marker)) {
        /* Without its marker the drop may still be uploading: it waits. */
        log_printf(LOG_LEVEL_INFO, &lc, "%s/%s waits for its completion marker %s%s", client_id,
                   name, name, run->profile->done_marker);
        return;
    }
    util_uuid(ready.event_id);
    ready.profile_revision = run->profile->revision;
    util_copy(ready.triggered_by, sizeof(ready.triggered_by), ev->triggered_by);
    util_copy(ready.trace_id, sizeof(ready.trace_id), ev->trace_id);
    util_copy(ready.caused_by, sizeof(ready.caused_by), ev->event_id);
    util_copy(ready.client_id, sizeof(ready.client_id), client_id);
    util_copy(ready.order_date, sizeof(ready.order_date), ev->order_date);
    snprintf(ready.source, sizeof(ready.source), "%s/%s", client_id, name);
    /* The outputs are named after the drop's archive name (place_drop). */
    s = place_drop(w->inbox, client_id, "archive", ev->order_date, name, placed, sizeof(placed));
    if (s != DX_OK) {
        drop_failed(run, &lc, client_id, ready.source, storage_last_error(w->inbox),
                    s == DX_ERR_PERMANENT);
        return;
    }
    drops_stem(placed, stem, sizeof(stem));
    snprintf(ready.output, sizeof(ready.output), "%s/%s/%s.csv", client_id, ev->order_date, stem);
    snprintf(ready.rejects, sizeof(ready.rejects), "%s/%s/%s.rejects.csv", client_id,
             ev->order_date, stem);
    s = clean_drop(run, ready.source, &ready, &neutralised, reason, sizeof(reason));
    if (s == DX_ERR_INVALID) {
        /* The file itself is unusable: retrying cannot help.  It is moved
         * aside so that tomorrow's run does not fail on it again. */
        metrics_add(DX_INVALID_INPUT_TOTAL, "unusable_file", 1);
        if (drop_failed(run, &lc, client_id, ready.source, reason, 1) &&
            drop_unchanged(w->inbox, ready.source, drop) &&
            (place_drop(w->inbox, client_id, "failed", ev->order_date, name, placed,
                        sizeof(placed)) != DX_OK ||
             move_drop(w->inbox, client_id, name, "failed", ev->order_date, placed,
                       run->profile->done_marker) != DX_OK))
            log_printf(LOG_LEVEL_WARN, &lc, "could not move unusable drop %s aside: %s",
                       ready.source, storage_last_error(w->inbox));
        return;
    }
    if (s != DX_OK) {
        drop_failed(run, &lc, client_id, ready.source, reason, s == DX_ERR_PERMANENT);
        return;
    }
    /* The output path, not the source, tells a second drop of the same name
     * (same bytes, maybe) from a rerun of this one; a replay asks for the same
     * bytes again on purpose, and its own event id keeps the stream's
     * duplicate window from swallowing it. */
    snprintf(msg_id, sizeof(msg_id), "file-ready:%s:%s:%s:%s%s%s", client_id, ev->order_date,
             ready.output, ready.sha256, strcmp(ev->triggered_by, "replay") == 0 ? ":replay:" : "",
             strcmp(ev->triggered_by, "replay") == 0 ? ev->event_id : "");
    if (worker_publish_event(w, EVENT_FILE_READY, &ready, EVENT_SUBJECT_FILE_READY, msg_id) !=
        DX_OK) {
        drop_failed(run, &lc, client_id, ready.source, "cannot publish file-ready to NATS", 0);
        return;
    }
    if (!drop_unchanged(w->inbox, ready.source, drop)) {
        /* The clean output matches what was read; the new upload is left
         * for the next run rather than archived unprocessed. */
        log_printf(LOG_LEVEL_WARN, &lc,
                   "%s changed while it was processed: the new version stays in the inbox",
                   ready.source);
    } else if (move_drop(w->inbox, client_id, name, "archive", ev->order_date, placed,
                         run->profile->done_marker) != DX_OK) {
        drop_failed(run, &lc, client_id, ready.source, storage_last_error(w->inbox), 0);
        return;
    }
    metrics_add(DX_FILES_PROCESSED_TOTAL, client_id, 1);
    metrics_add(DX_ROWS_IN_TOTAL, client_id, (double)ready.rows_in);
    metrics_add(DX_ROWS_OUT_TOTAL, client_id, (double)ready.rows_out);
    rejected_metrics(client_id, &ready.rejects_by_reason);
    metrics_add(DX_ROWS_DUPLICATE_TOTAL, client_id, (double)ready.rows_duplicate);
    metrics_add(DX_CELLS_NEUTRALISED_TOTAL, client_id, (double)neutralised);
    metrics_set(DX_LAST_SUCCESS_TIMESTAMP_SECONDS, client_id, (double)util_now_ms() / 1000.0);
    /* The run's ids are the line's own; the rest of FileReady follows. */
    fields = event_to_json(EVENT_FILE_READY, &ready);
    cJSON_DeleteItemFromObjectCaseSensitive(fields, "trace_id");
    cJSON_DeleteItemFromObjectCaseSensitive(fields, "client_id");
    cJSON_DeleteItemFromObjectCaseSensitive(fields, "order_date");
    cJSON_DeleteItemFromObjectCaseSensitive(fields, "caused_by");
    cJSON_DeleteItemFromObjectCaseSensitive(fields, "event_id");
    cJSON_AddStringToObject(fields, "file_ready_event_id", ready.event_id);
    log_write(LOG_LEVEL_INFO, &lc, "file ready", fields);
    cJSON_AddItemToArray(run->files, event_to_json(EVENT_FILE_READY, &ready));
}

/* The clients bucket, opened on first use (the bus may connect after the
 * worker starts) and kept; used under work_lock only. */
static kv *profiles;

void transform_finish(void)
{
    kv_destroy(profiles);
    profiles = NULL;
}

/*
 * Reads the client's profile afresh, so that a change applies to the next
 * file without a restart.  When it cannot be used (invalid document, bucket
 * unreachable) the client's drops are held: a transient failure, published
 * at once so that /status shows why, once per profile revision and date
 * (the stream's duplicate window drops the repeats of redeliveries).
 */
static int load_profile(run_ctx *run, const char *client_id, profile *p)
{
    const event_order_date *ev = run->ev;
    log_ctx lc = {ev->trace_id, ev->event_id, client_id, ev->order_date};
    char reason[EVENT_PATH_MAX] = "", err[256] = "";
    dx_status s = DX_OK;

    if (profiles == NULL)
        s = profile_store_open(&profiles, run->w->bus, run->w->cfg.stream_replicas, err,
                               sizeof(err));
    if (s != DX_OK)
        snprintf(reason, sizeof(reason), "client profiles unavailable, drops held: %s", err);
    else
        s = profile_store_get(profiles, client_id, p, reason, sizeof(reason));
    if (s == DX_OK)
        return 1;
    if (s == DX_ERR_INVALID)
        metrics_add(DX_INVALID_INPUT_TOTAL, "invalid_profile", 1);
    report_failure(run, &lc, client_id, client_id, reason, 0, 1);
    return 0;
}

static void process_client(run_ctx *run, const char *client_id)
{
    const event_order_date *ev = run->ev;
    log_ctx lc = {ev->trace_id, ev->event_id, client_id, ev->order_date};
    storage_entry *drops = NULL;
    size_t count = 0;
    profile client_profile;
    dx_status s;

    if (!load_profile(run, client_id, &client_profile))
        return;
    run->profile = &client_profile;
    s = drops_list(run->w->inbox, client_id, &drops, &count);

    if (s == DX_ERR_NOT_FOUND) {
        log_printf(LOG_LEVEL_WARN, &lc, "client folder %s not found in the inbox", client_id);
        return;
    }
    if (s != DX_OK) {
        /* DX_ERR_INVALID: the folder itself is refused (a symbolic link), so
         * retrying cannot help. */
        drop_failed(run, &lc, client_id, client_id, storage_last_error(run->w->inbox),
                    s == DX_ERR_PERMANENT || s == DX_ERR_INVALID);
        return;
    }
    if (count == 0)
        log_printf(LOG_LEVEL_INFO, &lc, "no pending drop for %s", client_id);
    for (size_t i = 0; i < count; i++) {
        if (atomic_load(&worker_stop)) {
            char source[EVENT_PATH_MAX];

            /* Stopping: the drop in flight is finished, the others are
             * handed back (the event is nak'd) so that they are processed
             * for this order date, by a replica or after the restart; on
             * the last attempt they become FileFailed like any transient
             * failure, never silently skipped. */
            snprintf(source, sizeof(source), "%s/%s", client_id, drops[i].name);
            drop_failed(run, &lc, client_id, source, "worker stopped before processing the drop",
                        0);
            continue;
        }
        process_drop(run, client_id, &drops[i]);
    }
    storage_entries_free(drops, count);
}

static void process_all_clients(run_ctx *run)
{
    storage_entry *entries = NULL;
    size_t count = 0;
    log_ctx lc = {run->ev->trace_id, run->ev->event_id, NULL, run->ev->order_date};
    dx_status s = storage_list(run->w->inbox, "", &entries, &count);

    if (s != DX_OK) {
        log_printf(LOG_LEVEL_ERROR, &lc, "cannot list the inbox: %s",
                   storage_last_error(run->w->inbox));
        run->transient_failures++;
        return;
    }
    for (size_t i = 0; i < count; i++) {
        if (entries[i].kind == STORAGE_DIR && clientid_valid(run->w->clients, entries[i].name))
            process_client(run, entries[i].name);
    }
    storage_entries_free(entries, count);
}

void transform_handle(worker *w, const event_order_date *ev, const bus_delivery *d,
                      transform_attempt attempt, transform_outcome *out)
{
    log_ctx lc = {ev->trace_id, ev->event_id, ev->client_id, ev->order_date};
    run_ctx run = {w,
                   ev,
                   d,
                   attempt == TRANSFORM_LAST_ATTEMPT,
                   0,
                   NULL,
                   cJSON_CreateArray(),
                   cJSON_CreateArray()};

    out->result = cJSON_CreateObject();
    cJSON_AddStringToObject(out->result, "order_date", ev->order_date);
    cJSON_AddStringToObject(out->result, "trace_id", ev->trace_id);
    if (ev->client_id[0] != '\0' && !clientid_valid(w->clients, ev->client_id)) {
        metrics_add(DX_INVALID_INPUT_TOTAL, "invalid_client", 1);
        log_printf(LOG_LEVEL_ERROR, &(log_ctx){ev->trace_id, ev->event_id, NULL, ev->order_date},
                   "refused order-date event: client_id does not match CLIENT_PATTERN");
        cJSON_AddStringToObject(out->result, "error", "client_id does not match CLIENT_PATTERN");
        out->verdict = BUS_TERM;
        out->http_status = 400;
        cJSON_Delete(run.files);
        cJSON_Delete(run.failures);
        return;
    }
    log_printf(LOG_LEVEL_INFO, &lc, "processing order-date for %s",
               ev->client_id[0] ? ev->client_id : "every client");
    pthread_mutex_lock(&w->work_lock);
    if (ev->client_id[0] != '\0')
        process_client(&run, ev->client_id);
    else
        process_all_clients(&run);
    pthread_mutex_unlock(&w->work_lock);
    cJSON_AddItemToObject(out->result, "files", run.files);
    cJSON_AddItemToObject(out->result, "failures", run.failures);
    if (run.transient_failures > 0) {
        out->verdict = BUS_NAK;
        out->http_status = 503;
    } else {
        out->verdict = BUS_ACK;
        out->http_status = 200;
    }
}
