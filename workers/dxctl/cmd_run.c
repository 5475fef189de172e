/*
 * dxctl trigger, replay and events: runs by hand, followed by their trace id
 * on the stream, and the stream's events decoded.
 *
 * A run is over when file-transformer's durable consumer has acknowledged
 * the OrderDate (its ack floor passes the event's stream sequence): the
 * transformer publishes every FileReady and FileFailed of the run before it
 * acknowledges, so by then the whole outcome is in the stream.
 */
#include <errno.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drops.h"
#include "dxctl.h"
#include "event.h"
#include "profile_store.h"
#include "storage.h"
#include "util.h"

#define WAIT_DEFAULT_S 120

/* ------------------------------------------------------------------ */
/* Reading the stream                                                   */

typedef struct follow {
    natsSubscription *sub;
} follow;

/* Starts an ordered consumer on subject from since_ns (0: only new messages). */
static int follow_start(dxctl *d, follow *f, const char *subject, int64_t since_ns)
{
    jsCtx *js = bus_jetstream(d->bus);
    jsSubOptions so;
    natsStatus s;

    jsSubOptions_Init(&so);
    so.Ordered = true;
    so.Stream = BUS_STREAM;
    if (since_ns > 0) {
        so.Config.DeliverPolicy = js_DeliverByStartTime;
        so.Config.OptStartTime = since_ns;
    } else {
        so.Config.DeliverPolicy = js_DeliverNew;
    }
    s = js_SubscribeSync(&f->sub, js, subject, NULL, &so, NULL);
    if (s != NATS_OK) {
        dxctl_error("cannot read stream %s: %s", BUS_STREAM, natsStatus_GetText(s));
        return DXCTL_UNAVAILABLE;
    }
    return DXCTL_OK;
}

static void follow_stop(follow *f)
{
    natsSubscription_Destroy(f->sub);
    f->sub = NULL;
}

/* The message decoded as {"subject", "seq", "event": {...}}; NULL when undecodable. */
static cJSON *decode_message(natsMsg *m)
{
    const char *subject = natsMsg_GetSubject(m), *ctype = NULL;
    event_type type;
    union {
        event_order_date od;
        event_file_ready fr;
        event_file_failed ff;
        event_drop_check dc;
        event_client_state cs;
    } ev;
    char err[256];
    jsMsgMetaData *meta = NULL;
    cJSON *o;

    if (!event_type_of_subject(subject, &type))
        return NULL;
    natsMsgHeader_Get(m, "Content-Type", &ctype);
    memset(&ev, 0, sizeof(ev));
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "subject", subject);
    if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
        char at[32];

        cJSON_AddNumberToObject(o, "seq", (double)meta->Sequence.Stream);
        util_rfc3339(at, meta->Timestamp / 1000000);
        cJSON_AddStringToObject(o, "stored_at", at);
        jsMsgMetaData_Destroy(meta);
    }
    if (event_decode(type, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), ctype, &ev, err,
                     sizeof(err)) != DX_OK)
        cJSON_AddStringToObject(o, "undecodable", err);
    else
        cJSON_AddItemToObject(o, "event", event_to_json(type, &ev));
    return o;
}

static const char *event_field(const cJSON *o, const char *name)
{
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(o, "event");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(ev, name);

    return cJSON_IsString(v) ? v->valuestring : "";
}

/* ------------------------------------------------------------------ */
/* Publishing and waiting                                               */

/* Publishes ev and returns its stream sequence in *seq. */
static int publish_order_date(dxctl *d, const event_order_date *ev, uint64_t *seq)
{
    jsCtx *js = bus_jetstream(d->bus);
    natsMsg *m = NULL;
    jsPubAck *ack = NULL;
    void *data = NULL;
    size_t len = 0;
    natsStatus s = NATS_ERR;

    if (event_encode(EVENT_ORDER_DATE, ev, d->cfg.emit_json, &data, &len) != DX_OK) {
        dxctl_error("cannot encode the event");
        return DXCTL_FAILED;
    }
    if (natsMsg_Create(&m, EVENT_SUBJECT_ORDER_DATE, NULL, data, (int)len) == NATS_OK) {
        natsMsgHeader_Set(m, "Content-Type", event_content_type(d->cfg.emit_json));
        /* Every manual run is new: its own event id is its message id. */
        natsMsgHeader_Set(m, "Nats-Msg-Id", ev->event_id);
        s = js_PublishMsg(&ack, js, m, NULL, NULL);
    }
    if (s == NATS_OK)
        *seq = ack->Sequence;
    jsPubAck_Destroy(ack);
    natsMsg_Destroy(m);
    free(data);
    if (s != NATS_OK) {
        dxctl_error("cannot publish %s: %s", EVENT_SUBJECT_ORDER_DATE, natsStatus_GetText(s));
        return DXCTL_UNAVAILABLE;
    }
    return DXCTL_OK;
}

/* 1 when file-transformer has acknowledged stream sequence seq. */
static int acknowledged(dxctl *d, uint64_t seq)
{
    jsConsumerInfo *ci = NULL;
    int done = 0;

    if (js_GetConsumerInfo(&ci, bus_jetstream(d->bus), BUS_STREAM, BUS_DURABLE_TRANSFORMER, NULL,
                           NULL) == NATS_OK)
        done = ci->AckFloor.Stream >= seq;
    jsConsumerInfo_Destroy(ci);
    return done;
}

typedef struct outcome {
    cJSON *files;
    cJSON *failures;
    int done; /* the run was acknowledged */
} outcome;

/* Collects the run's events (by trace id) until it is acknowledged or the deadline. */
static void wait_run(dxctl *d, follow *f, const char *trace_id, uint64_t seq, int64_t wait_s,
                     outcome *out)
{
    int64_t deadline = util_monotonic_ms() + wait_s * 1000, quiet_until = 0;

    out->files = cJSON_CreateArray();
    out->failures = cJSON_CreateArray();
    for (;;) {
        natsMsg *m = NULL;
        int64_t now = util_monotonic_ms();

        if (!out->done && now >= deadline)
            break;
        if (out->done && now >= quiet_until)
            break;
        if (natsSubscription_NextMsg(&m, f->sub, 250) == NATS_OK) {
            cJSON *o = decode_message(m);

            natsMsg_Destroy(m);
            /* The run's outcomes only: its OrderDate, DropChecks and the
             * ClientState announcements share its trace id. */
            if (o != NULL && strcmp(event_field(o, "trace_id"), trace_id) == 0) {
                const char *subject = cJSON_GetObjectItemCaseSensitive(o, "subject")->valuestring;
                int ready = strcmp(subject, EVENT_SUBJECT_FILE_READY) == 0;

                if (ready || strcmp(subject, EVENT_SUBJECT_FILE_FAILED) == 0)
                    cJSON_AddItemToArray(ready ? out->files : out->failures,
                                         cJSON_DetachItemFromObject(o, "event"));
            }
            cJSON_Delete(o);
            continue;
        }
        /* Once acknowledged, read on until the stream has nothing more. */
        if (!out->done && acknowledged(d, seq)) {
            out->done = 1;
            quiet_until = util_monotonic_ms() + 1000;
        }
    }
}

/* Prints the outcome and returns the exit code: 0 only for a success. */
static int report(dxctl *d, const event_order_date *ev, outcome *out, int64_t wait_s)
{
    int nfiles = cJSON_GetArraySize(out->files), nfailed = cJSON_GetArraySize(out->failures);
    int ok = out->done && nfiles > 0 && nfailed == 0;
    const cJSON *e;

    if (d->json) {
        cJSON *o = cJSON_CreateObject();

        cJSON_AddStringToObject(o, "trace_id", ev->trace_id);
        cJSON_AddStringToObject(o, "event_id", ev->event_id);
        cJSON_AddStringToObject(o, "client_id", ev->client_id);
        cJSON_AddStringToObject(o, "order_date", ev->order_date);
        cJSON_AddStringToObject(o, "triggered_by", ev->triggered_by);
        cJSON_AddStringToObject(o, "outcome",
                                !out->done ? "timeout"
                                : ok       ? "succeeded"
                                : nfailed  ? "failed"
                                           : "nothing to do");
        cJSON_AddItemToObject(o, "files", out->files);
        cJSON_AddItemToObject(o, "failures", out->failures);
        dxctl_print_json(o, 0);
    } else {
        printf("run %s for %s on %s (trace %s)\n", ev->triggered_by, ev->client_id, ev->order_date,
               ev->trace_id);
        cJSON_ArrayForEach(e, out->files)
            printf("  ready   %-40s rows in %.0f, out %.0f, rejected %.0f, duplicate %.0f -> %s\n",
                   cJSON_GetObjectItemCaseSensitive(e, "source")->valuestring,
                   cJSON_GetObjectItemCaseSensitive(e, "rows_in")->valuedouble,
                   cJSON_GetObjectItemCaseSensitive(e, "rows_out")->valuedouble,
                   cJSON_GetObjectItemCaseSensitive(e, "rows_rejected")->valuedouble,
                   cJSON_GetObjectItemCaseSensitive(e, "rows_duplicate")->valuedouble,
                   cJSON_GetObjectItemCaseSensitive(e, "output")->valuestring);
        cJSON_ArrayForEach(e, out->failures) printf(
            "  failed  %-40s %s%s\n", cJSON_GetObjectItemCaseSensitive(e, "source")->valuestring,
            cJSON_GetObjectItemCaseSensitive(e, "reason")->valuestring,
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "permanent")) ? "" : " (transient)");
        if (!out->done)
            printf("  not finished after %llds (the transformer may be retrying)\n",
                   (long long)wait_s);
        else if (nfiles == 0 && nfailed == 0)
            printf("  no drop was processed\n");
        printf("%s\n", ok ? "succeeded" : "did not succeed");
        cJSON_Delete(out->files);
        cJSON_Delete(out->failures);
    }
    return !out->done ? DXCTL_UNAVAILABLE : ok ? DXCTL_OK : DXCTL_FAILED;
}

/* Publishes ev and, when wait_s >= 0, follows the run to its end. */
static int run(dxctl *d, event_order_date *ev, int64_t wait_s)
{
    follow f = {0};
    outcome out = {0};
    uint64_t seq = 0;
    int rc = dxctl_bus(d);

    util_uuid(ev->event_id);
    util_trace_id(ev->trace_id);
    util_rfc3339(ev->created_at, util_now_ms());
    if (rc == DXCTL_OK && wait_s >= 0)
        rc = follow_start(d, &f, "orders.>", 0);
    if (rc == DXCTL_OK)
        rc = publish_order_date(d, ev, &seq);
    if (rc == DXCTL_OK && wait_s < 0) {
        if (d->json) {
            dxctl_print_json(event_to_json(EVENT_ORDER_DATE, ev), 0);
        } else {
            printf("published %s for %s on %s (trace %s)\n", EVENT_SUBJECT_ORDER_DATE,
                   ev->client_id, ev->order_date, ev->trace_id);
        }
    } else if (rc == DXCTL_OK) {
        wait_run(d, &f, ev->trace_id, seq, wait_s, &out);
        rc = report(d, ev, &out, wait_s);
    }
    follow_stop(&f);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Options                                                              */

typedef struct run_options {
    const char *client;
    const char *date;
    const char *source;
    int64_t wait_s; /* -1: do not wait */
} run_options;

static int parse_run_options(int argc, char **argv, run_options *o, int replay, const char *usage)
{
    o->wait_s = replay ? WAIT_DEFAULT_S : -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (dxctl_is_help(a)) {
            fputs(usage, stdout);
            return -1;
        } else if (strcmp(a, "--client") == 0 && i + 1 < argc) {
            o->client = argv[++i];
        } else if (strcmp(a, "--date") == 0 && i + 1 < argc) {
            o->date = argv[++i];
        } else if (replay && strcmp(a, "--source") == 0 && i + 1 < argc) {
            o->source = argv[++i];
        } else if (strcmp(a, "--wait") == 0) {
            o->wait_s = WAIT_DEFAULT_S;
        } else if (strncmp(a, "--wait=", 7) == 0 && dxctl_duration(a + 7) >= 0) {
            o->wait_s = dxctl_duration(a + 7);
        } else {
            dxctl_error("%s: unknown or incomplete argument %s", argv[0], a);
            fputs(usage, stderr);
            return DXCTL_USAGE;
        }
    }
    if (o->client == NULL || (replay && o->date == NULL)) {
        dxctl_error("%s: --client%s is required", argv[0], replay ? " and --date are" : "");
        return DXCTL_USAGE;
    }
    if (o->date != NULL && !util_date_valid(o->date)) {
        dxctl_error("%s: --date must be a valid YYYY-MM-DD, not %s", argv[0], o->date);
        return DXCTL_USAGE;
    }
    return DXCTL_OK;
}

static const char trigger_usage[] =
    "usage: dxctl trigger --client ID [--date YYYY-MM-DD] [--wait[=SECONDS]]\n"
    "Publishes an order-date event (triggered_by \"manual\") for the client, for\n"
    "today in TZ unless --date.  With --wait (default 120 s), follows the run by\n"
    "its trace id and prints its files, counts and failures; exit 0 only when\n"
    "every drop succeeded, 1 when one failed or none was there, 3 on timeout.\n";

int cmd_trigger(dxctl *d, int argc, char **argv)
{
    run_options o = {0};
    event_order_date ev = {0};
    int rc = parse_run_options(argc, argv, &o, 0, trigger_usage);

    if (rc != DXCTL_OK)
        return rc < 0 ? DXCTL_OK : rc;
    rc = dxctl_check_client(d, o.client);
    if (rc != DXCTL_OK)
        return rc;
    util_copy(ev.client_id, sizeof(ev.client_id), o.client);
    if (o.date != NULL)
        util_copy(ev.order_date, sizeof(ev.order_date), o.date);
    else
        util_today(ev.order_date);
    util_copy(ev.triggered_by, sizeof(ev.triggered_by), "manual");
    return run(d, &ev, o.wait_s);
}

/* ------------------------------------------------------------------ */
/* Replay                                                               */

static const char replay_usage[] =
    "usage: dxctl replay --client ID --date YYYY-MM-DD [--source NAME] [--wait=SECONDS]\n"
    "Moves that day's archived and failed drops of the client (only NAME with\n"
    "--source) back into its inbox folder, through INBOX_URL (file:// or sftp://),\n"
    "with their completion markers, then publishes an order-date event marked\n"
    "triggered_by \"replay\" and follows it like trigger --wait (default 120 s).\n"
    "/status shows the new run and what it superseded.\n";

/* 1 when the archived name matches --source: the name itself or its stem. */
static int source_matches(const char *name, const char *source)
{
    char stem[256], wanted[256];

    if (source == NULL || strcmp(name, source) == 0)
        return 1;
    drops_stem(name, stem, sizeof(stem));
    drops_stem(source, wanted, sizeof(wanted));
    return strcmp(stem, wanted) == 0;
}

/* Moves the drops of client/folder/date back; counts them in *moved. */
static int restore_folder(storage *inbox, const char *client, const char *folder, const char *date,
                          const char *source, const char *marker, int *moved)
{
    char dir[512], from[1024], to[1024];
    storage_entry *entries = NULL, existing;
    size_t count = 0;
    dx_status s;
    int rc = DXCTL_OK;

    snprintf(dir, sizeof(dir), "%s/%s/%s", client, folder, date);
    s = storage_list(inbox, dir, &entries, &count);
    if (s == DX_ERR_NOT_FOUND)
        return DXCTL_OK;
    if (s != DX_OK) {
        dxctl_error("cannot list %s: %s", dir, storage_last_error(inbox));
        return DXCTL_UNAVAILABLE;
    }
    for (size_t i = 0; i < count && rc == DXCTL_OK; i++) {
        if (!drops_is_candidate(&entries[i]) || !source_matches(entries[i].name, source))
            continue;
        snprintf(from, sizeof(from), "%s/%s", dir, entries[i].name);
        snprintf(to, sizeof(to), "%s/%s", client, entries[i].name);
        if (storage_stat(inbox, to, &existing) == DX_OK) {
            dxctl_error("%s is already in the inbox: not replaced by %s", to, from);
            rc = DXCTL_FAILED;
            break;
        }
        if (storage_rename(inbox, from, to) != DX_OK) {
            dxctl_error("cannot move %s back: %s", from, storage_last_error(inbox));
            rc = DXCTL_UNAVAILABLE;
            break;
        }
        (*moved)++;
        if (marker[0] != '\0') {
            char mfrom[1100], mto[1100];

            snprintf(mfrom, sizeof(mfrom), "%s%s", from, marker);
            snprintf(mto, sizeof(mto), "%s%s", to, marker);
            if (storage_stat(inbox, mfrom, &existing) == DX_OK)
                storage_rename(inbox, mfrom, mto);
        }
    }
    storage_entries_free(entries, count);
    return rc;
}

int cmd_replay(dxctl *d, int argc, char **argv)
{
    run_options o = {0};
    event_order_date ev = {0};
    storage *inbox = NULL;
    profile p;
    char err[512], reason[512];
    int moved = 0, rc = parse_run_options(argc, argv, &o, 1, replay_usage);

    if (rc != DXCTL_OK)
        return rc < 0 ? DXCTL_OK : rc;
    rc = dxctl_check_client(d, o.client);
    if (rc == DXCTL_OK)
        rc = dxctl_profiles(d);
    if (rc != DXCTL_OK)
        return rc;
    /* The marker comes back with its drop, or the drop would wait for it. */
    if (profile_store_get(d->store, o.client, &p, reason, sizeof(reason)) != DX_OK)
        profile_init(&p);
    if (storage_create(&inbox, d->cfg.inbox_url, &d->cfg.sftp, err, sizeof(err)) != DX_OK) {
        dxctl_error("INBOX_URL: %s", err);
        return DXCTL_USAGE;
    }
    rc = restore_folder(inbox, o.client, "failed", o.date, o.source, p.done_marker, &moved);
    if (rc == DXCTL_OK)
        rc = restore_folder(inbox, o.client, "archive", o.date, o.source, p.done_marker, &moved);
    storage_destroy(inbox);
    if (rc != DXCTL_OK)
        return rc;
    if (moved == 0) {
        dxctl_error("no archived or failed drop of %s for %s%s%s", o.client, o.date,
                    o.source ? " named " : "", o.source ? o.source : "");
        return DXCTL_FAILED;
    }
    if (!d->json)
        printf("%d drop(s) of %s for %s put back into the inbox\n", moved, o.client, o.date);
    util_copy(ev.client_id, sizeof(ev.client_id), o.client);
    util_copy(ev.order_date, sizeof(ev.order_date), o.date);
    util_copy(ev.triggered_by, sizeof(ev.triggered_by), "replay");
    return run(d, &ev, o.wait_s);
}

/* ------------------------------------------------------------------ */
/* Events                                                               */

static const char events_usage[] =
    "usage: dxctl events [--follow] [--subject S] [--client ID] [--since DURATION]\n"
    "Prints the stream's events (protobuf or JSON), decoded, one JSON line each:\n"
    "{\"subject\", \"seq\", \"stored_at\", \"event\": {...}}.  --since 30m, 2h, 1d\n"
    "(default: the whole stream); --follow keeps printing new events until\n"
    "interrupted; --subject is a NATS subject (orders.file-failed, orders.>).\n";

int cmd_events(dxctl *d, int argc, char **argv)
{
    const char *subject = "orders.>", *client = NULL;
    long long since_s = -1;
    int follow_on = 0, rc;
    follow f = {0};

    for (int i = 1; i < argc; i++) {
        if (dxctl_is_help(argv[i])) {
            fputs(events_usage, stdout);
            return DXCTL_OK;
        } else if (strcmp(argv[i], "--follow") == 0) {
            follow_on = 1;
        } else if (strcmp(argv[i], "--subject") == 0 && i + 1 < argc) {
            subject = argv[++i];
        } else if (strcmp(argv[i], "--client") == 0 && i + 1 < argc) {
            client = argv[++i];
        } else if (strcmp(argv[i], "--since") == 0 && i + 1 < argc &&
                   (since_s = dxctl_duration(argv[i + 1])) >= 0) {
            i++;
        } else {
            dxctl_error("events: unknown or incomplete argument %s", argv[i]);
            fputs(events_usage, stderr);
            return DXCTL_USAGE;
        }
    }
    rc = dxctl_bus(d);
    if (rc == DXCTL_OK)
        rc = follow_start(d, &f, subject,
                          since_s >= 0 ? (util_now_ms() - since_s * 1000) * 1000000 : 1);
    for (int idle = 0; rc == DXCTL_OK && (follow_on || idle < 4);) {
        natsMsg *m = NULL;
        cJSON *o;

        if (natsSubscription_NextMsg(&m, f.sub, 250) != NATS_OK) {
            idle++;
            continue;
        }
        idle = 0;
        o = decode_message(m);
        natsMsg_Destroy(m);
        if (o != NULL && (client == NULL || strcmp(event_field(o, "client_id"), client) == 0)) {
            dxctl_print_json(o, 0);
            fflush(stdout);
        } else {
            cJSON_Delete(o);
        }
    }
    follow_stop(&f);
    return rc;
}
