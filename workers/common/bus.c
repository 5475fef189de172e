#include "bus.h"

#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event.h"
#include "inflight.h"
#include "log.h"
#include "metrics.h"
#include "natsurl.h"
#include "util.h"

#define NS_PER_MS 1000000LL

/* How long one Fetch waits for a message (the stop flag is checked between). */
#define FETCH_WAIT_MS 1000

struct bus {
    natsConnection *nc;
    jsCtx *js;
    int ack_wait_s;
    int max_deliver;
    /* MAX_IN_FLIGHT: messages bus_consume() pulls in one request, all kept
     * in progress by the heartbeat until each is handled. */
    int max_in_flight;
};

static void on_disconnected(natsConnection *nc, void *closure)
{
    /* Draining at shutdown disconnects too: that is not worth a warning. */
    if (natsConnection_IsDraining(nc) || natsConnection_IsClosed(nc))
        return;
    log_printf(LOG_LEVEL_WARN, NULL, "NATS connection lost, reconnecting");
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    metrics_add(DX_NATS_RECONNECTS_TOTAL, "", 1);
    log_printf(LOG_LEVEL_INFO, NULL, "NATS connection re-established");
}

static dx_status ensure_stream(bus *b, const config *cfg, char *err, size_t err_len)
{
    jsStreamConfig sc;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s;

    jsStreamConfig_Init(&sc);
    sc.Name = BUS_STREAM;
    sc.Subjects = event_subjects;
    sc.SubjectsLen = EVENT_TYPE_COUNT;
    sc.Storage = js_FileStorage;
    sc.Replicas = cfg->stream_replicas;
    /* Long enough to absorb a worker re-running a file after a crash. */
    sc.Duplicates = 10LL * 60 * 1000 * NS_PER_MS;
    /* Bounded retention, set on every start: a changed STREAM_MAX_AGE or
     * STREAM_MAX_BYTES applies to the existing stream too. */
    sc.MaxAge = (int64_t)cfg->stream_max_age * 1000 * NS_PER_MS;
    sc.MaxBytes = cfg->stream_max_bytes;
    s = js_AddStream(&si, b->js, &sc, NULL, &jerr);
    if (s != NATS_OK && jerr == JSStreamNameExistErr)
        s = js_UpdateStream(&si, b->js, &sc, NULL, &jerr);
    jsStreamInfo_Destroy(si);
    if (s != NATS_OK) {
        snprintf(err, err_len, "cannot create or update stream %s: %s (JetStream error %d)",
                 BUS_STREAM, natsStatus_GetText(s), (int)jerr);
        return DX_ERR_IO;
    }
    return DX_OK;
}

static dx_status ensure_consumer(bus *b, const char *durable, const char *filter,
                                 int64_t max_deliver, char *err, size_t err_len)
{
    jsConsumerConfig cc;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s;

    jsConsumerConfig_Init(&cc);
    cc.Durable = durable;
    cc.FilterSubject = filter;
    cc.AckPolicy = js_AckExplicit;
    cc.DeliverPolicy = js_DeliverAll;
    cc.AckWait = (int64_t)b->ack_wait_s * 1000 * NS_PER_MS;
    cc.MaxDeliver = max_deliver;
    s = js_GetConsumerInfo(&ci, b->js, BUS_STREAM, durable, NULL, &jerr);
    if (s == NATS_OK)
        s = js_UpdateConsumer(NULL, b->js, BUS_STREAM, &cc, NULL, &jerr);
    else if (s == NATS_NOT_FOUND)
        s = js_AddConsumer(NULL, b->js, BUS_STREAM, &cc, NULL, &jerr);
    jsConsumerInfo_Destroy(ci);
    if (s != NATS_OK) {
        snprintf(err, err_len, "cannot create or update consumer %s: %s (JetStream error %d)",
                 durable, natsStatus_GetText(s), (int)jerr);
        return DX_ERR_IO;
    }
    return DX_OK;
}

/* NATS_URL is a list of servers (a cluster): natsOptions_SetServers() takes it. */
static natsStatus set_servers(natsOptions *opts, const char *urls)
{
    char copy[sizeof(((config *)0)->nats_url)];
    const char *servers[NATSURL_MAX_SERVERS];
    int count;

    snprintf(copy, sizeof(copy), "%s", urls);
    count = natsurl_split(copy, servers);
    if (count == 0)
        return NATS_INVALID_ARG;
    return natsOptions_SetServers(opts, servers, count);
}

/*
 * nats.c's own detail of this thread's last error, without its "(file:line): "
 * prefix; "" when none or when it only repeats the status text.
 */
static const char *last_error_text(void)
{
    natsStatus s = NATS_OK;
    const char *text = nats_GetLastError(&s);
    const char *end;

    if (text == NULL)
        return "";
    end = text[0] == '(' ? strstr(text, "): ") : NULL;
    if (end != NULL)
        text = end + 3;
    return strcmp(text, natsStatus_GetText(s)) == 0 ? "" : text;
}

/*
 * A private CA (NATS_TLS_CA_FILE) and a client certificate for mutual TLS
 * (NATS_TLS_CERT_FILE, NATS_TLS_KEY_FILE).  Either one means the operator
 * wants TLS, so the connection is made secure even for a nats:// URL rather
 * than silently sent in clear.
 */
static natsStatus set_tls(natsOptions *opts, const config *cfg, char *err, size_t err_len)
{
    natsStatus s = NATS_OK;

    if (cfg->nats_tls_ca_file[0] == '\0' && cfg->nats_tls_cert_file[0] == '\0')
        return NATS_OK;
    s = natsOptions_SetSecure(opts, true);
    if (s == NATS_OK && cfg->nats_tls_ca_file[0] != '\0') {
        s = natsOptions_LoadCATrustedCertificates(opts, cfg->nats_tls_ca_file);
        if (s != NATS_OK)
            snprintf(err, err_len, "NATS_TLS_CA_FILE: cannot load CA certificates from %s: %s",
                     cfg->nats_tls_ca_file, last_error_text());
    }
    if (s == NATS_OK && cfg->nats_tls_cert_file[0] != '\0') {
        s = natsOptions_LoadCertificatesChain(opts, cfg->nats_tls_cert_file,
                                              cfg->nats_tls_key_file);
        if (s != NATS_OK)
            snprintf(err, err_len,
                     "NATS_TLS_CERT_FILE/NATS_TLS_KEY_FILE: cannot load the client certificate "
                     "%s with key %s: %s",
                     cfg->nats_tls_cert_file, cfg->nats_tls_key_file, last_error_text());
    }
    return s;
}

/*
 * Builds the connection options from cfg.  On success *out is new options
 * the caller frees with natsOptions_Destroy(); on failure err holds a
 * one-line reason naming the variable (never a credential).
 */
static dx_status build_options(natsOptions **out, const config *cfg, const char *name, char *err,
                               size_t err_len)
{
    natsOptions *opts = NULL;
    natsStatus s = natsOptions_Create(&opts);

    err[0] = '\0';
    if (s == NATS_OK)
        s = set_servers(opts, cfg->nats_url);
    if (s == NATS_OK)
        s = natsOptions_SetName(opts, name);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(opts, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(opts, 500);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectJitter(opts, 250, 1000);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectBufSize(opts, 32 * 1024 * 1024);
    /* Each publish and ack is written by the thread that sends it instead
     * of waking nats.c's flusher thread for it: one thread hand-off less
     * per message, which is most of what a small drop costs. */
    if (s == NATS_OK)
        s = natsOptions_SetSendAsap(opts, true);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(opts, on_disconnected, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(opts, on_reconnected, NULL);
    if (s == NATS_OK && cfg->nats_creds_file[0] != '\0')
        s = natsOptions_SetUserCredentialsFromFiles(opts, cfg->nats_creds_file, NULL);
    if (s == NATS_OK)
        s = set_tls(opts, cfg, err, err_len);
    if (s != NATS_OK) {
        if (err[0] == '\0')
            snprintf(err, err_len, "invalid NATS options: %s", natsStatus_GetText(s));
        natsOptions_Destroy(opts);
        return DX_ERR_INVALID;
    }
    *out = opts;
    return DX_OK;
}

dx_status bus_check_config(const config *cfg, char *err, size_t err_len)
{
    natsOptions *opts = NULL;
    dx_status ds = build_options(&opts, cfg, "check", err, err_len);

    natsOptions_Destroy(opts);
    return ds;
}

dx_status bus_connect(bus **out, const config *cfg, const char *name, char *err, size_t err_len)
{
    natsOptions *opts = NULL;
    bus *b = calloc(1, sizeof(*b));
    natsStatus s;
    dx_status ds = b ? build_options(&opts, cfg, name, err, err_len) : DX_ERR_NOMEM;

    if (ds != DX_OK)
        goto fail;
    s = natsConnection_Connect(&b->nc, opts);
    if (s == NATS_OK)
        s = natsConnection_JetStream(&b->js, b->nc, NULL);
    if (s != NATS_OK) {
        /* nats.c's detail says why (e.g. "certificate verify failed"); it
         * names no server URL, so no credential reaches the log. */
        snprintf(err, err_len, "cannot connect to NATS at %s: %s%s%s", cfg->nats_url_display,
                 natsStatus_GetText(s), last_error_text()[0] ? ": " : "", last_error_text());
        ds = DX_ERR_IO;
        goto fail;
    }
    b->ack_wait_s = cfg->ack_wait;
    b->max_deliver = cfg->max_deliver;
    b->max_in_flight = cfg->max_in_flight > 0 ? cfg->max_in_flight : 1;
    ds = ensure_stream(b, cfg, err, err_len);
    /* In function mode (SUBSCRIBE=0) the OpenFaaS connectors deliver over
     * HTTP and nobody would ever drain a durable consumer. */
    if (ds == DX_OK && cfg->subscribe)
        ds = ensure_consumer(b, BUS_DURABLE_TRANSFORMER, EVENT_SUBJECT_ORDER_DATE, b->max_deliver,
                             err, err_len);
    if (ds == DX_OK && cfg->subscribe)
        /* No filter: nats-server 2.9 takes one filter subject per consumer and
         * status-checker wants two; it skips orders.order-date itself. */
        ds = ensure_consumer(b, BUS_DURABLE_STATUS, NULL, b->max_deliver, err, err_len);
    if (ds != DX_OK)
        goto fail;
    natsOptions_Destroy(opts);
    *out = b;
    return DX_OK;
fail:
    natsOptions_Destroy(opts);
    bus_destroy(b);
    return ds;
}

dx_status bus_ensure_consumer(bus *b, const char *durable, const char *filter, int64_t max_deliver,
                              char *err, size_t err_len)
{
    return ensure_consumer(b, durable, filter, max_deliver, err, err_len);
}

dx_status bus_consumer_pending(bus *b, const char *durable, uint64_t *pending)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetConsumerInfo(&ci, b->js, BUS_STREAM, durable, NULL, &jerr);

    if (s == NATS_OK)
        *pending = ci->NumPending + (uint64_t)ci->NumAckPending;
    jsConsumerInfo_Destroy(ci);
    return s == NATS_OK ? DX_OK : DX_ERR_IO;
}

void bus_destroy(bus *b)
{
    if (b == NULL)
        return;
    jsCtx_Destroy(b->js);
    if (b->nc != NULL) {
        /* Drain flushes pending acks and publishes before closing. */
        if (natsConnection_DrainTimeout(b->nc, 5000) == NATS_OK) {
            for (int i = 0; i < 60 && !natsConnection_IsClosed(b->nc); i++)
                util_sleep_ms(100);
        }
        natsConnection_Destroy(b->nc);
    }
    free(b);
}

int bus_connected(bus *b)
{
    return b != NULL && natsConnection_Status(b->nc) == NATS_CONN_STATUS_CONNECTED;
}

void *bus_jetstream(bus *b)
{
    return b != NULL ? b->js : NULL;
}

dx_status bus_publish(bus *b, const char *subject, const void *data, size_t len,
                      const char *content_type, const char *msg_id)
{
    natsStatus s = NATS_OK;
    jsErrCode jerr = 0;
    int64_t backoff_ms = 200;

    for (int attempt = 1; attempt <= 12; attempt++) {
        natsMsg *msg = NULL;
        jsPubAck *ack = NULL;
        jsPubOptions po;

        jsPubOptions_Init(&po);
        po.MaxWait = 5000;
        s = natsMsg_Create(&msg, subject, NULL, data, (int)len);
        if (s == NATS_OK && content_type != NULL)
            s = natsMsgHeader_Set(msg, "Content-Type", content_type);
        if (s == NATS_OK && msg_id != NULL && msg_id[0] != '\0')
            s = natsMsgHeader_Set(msg, "Nats-Msg-Id", msg_id);
        if (s == NATS_OK)
            s = js_PublishMsg(&ack, b->js, msg, &po, &jerr);
        jsPubAck_Destroy(ack);
        natsMsg_Destroy(msg);
        if (s == NATS_OK) {
            metrics_add(DX_EVENTS_PUBLISHED_TOTAL, subject, 1);
            return DX_OK;
        }
        if (jerr != 0 && s != NATS_TIMEOUT)
            break; /* the stream refused it: retrying will not help */
        log_printf(LOG_LEVEL_WARN, NULL, "publish on %s failed (attempt %d): %s, retrying", subject,
                   attempt, natsStatus_GetText(s));
        util_sleep_ms(backoff_ms);
        backoff_ms = backoff_ms * 2 < 5000 ? backoff_ms * 2 : 5000;
    }
    log_printf(LOG_LEVEL_ERROR, NULL, "publish on %s failed: %s (JetStream error %d)", subject,
               natsStatus_GetText(s), (int)jerr);
    return s == NATS_TIMEOUT ? DX_ERR_TIMEOUT : DX_ERR_IO;
}

static int64_t default_backoff_ms(uint64_t delivery)
{
    int64_t delay = 1000;

    for (uint64_t i = 1; i < delivery && delay < 60000; i++)
        delay *= 2;
    return delay < 60000 ? delay : 60000;
}

/* The heartbeat's signal: "+WPI", which restarts the message's ACK_WAIT. */
static void signal_in_progress(void *msg)
{
    natsMsg_InProgress(msg, NULL);
}

/*
 * Handles one fetched message, registered in beats since its fetch: it is
 * unregistered before its acknowledgement, so that the heartbeat never
 * touches a message being acked (nor one destroyed after it).  The ack is
 * sent after the handler has committed the message's outputs but not waited
 * for: bus_consume() confirms the acks of a whole batch with one round trip
 * (confirm_acks).  Returns 1 when a verdict was sent.
 */
static int handle_message(bus *b, inflight *beats, natsMsg *msg, bus_handler handler, void *ctx)
{
    jsMsgMetaData *meta = NULL;
    bus_delivery d = {0};
    int64_t nak_delay_ms = -1;
    bus_verdict verdict;
    natsStatus s;
    int64_t received = util_monotonic_ms();

    d.subject = natsMsg_GetSubject(msg);
    d.data = natsMsg_GetData(msg);
    d.len = (size_t)natsMsg_GetDataLength(msg);
    if (natsMsgHeader_Get(msg, "Content-Type", &d.content_type) != NATS_OK)
        d.content_type = NULL;
    if (natsMsgHeader_Get(msg, "traceparent", &d.traceparent) != NATS_OK)
        d.traceparent = NULL;
    d.delivery = 1;
    if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
        d.delivery = meta->NumDelivered;
        d.stream_seq = meta->Sequence.Stream;
        d.stream_time_ns = meta->Timestamp;
        jsMsgMetaData_Destroy(meta);
    }
    d.last_delivery = (int64_t)d.delivery >= b->max_deliver;
    metrics_add(DX_EVENTS_CONSUMED_TOTAL, d.subject, 1);
    if (d.delivery > 1)
        metrics_add(DX_EVENTS_REDELIVERED_TOTAL, d.subject, 1);
    verdict = handler(ctx, &d, &nak_delay_ms);
    inflight_remove(beats, msg);
    switch (verdict) {
    case BUS_ACK:
        s = natsMsg_Ack(msg, NULL);
        break;
    case BUS_NAK:
        metrics_add(DX_EVENTS_FAILED_TOTAL, d.subject, 1);
        if (nak_delay_ms < 0)
            nak_delay_ms = default_backoff_ms(d.delivery);
        s = natsMsg_NakWithDelay(msg, nak_delay_ms, NULL);
        break;
    case BUS_TERM:
    default:
        metrics_add(DX_EVENTS_TERMINATED_TOTAL, d.subject, 1);
        s = natsMsg_Term(msg, NULL);
        break;
    }
    /* Receipt to acknowledgement, whatever the verdict: a slow failure is
     * as much a latency problem as a slow success. */
    metrics_observe(DX_PROCESSING_DURATION_SECONDS, "",
                    (double)(util_monotonic_ms() - received) / 1000.0);
    if (s != NATS_OK)
        log_printf(LOG_LEVEL_WARN, NULL,
                   "acknowledging a message on %s failed: %s (it will be redelivered)", d.subject,
                   natsStatus_GetText(s));
    return s == NATS_OK;
}

/*
 * One round trip for the verdicts of a batch: once the server has answered
 * the flush, it has every ack, nak and term sent before it (a connection
 * delivers in order).  A failure is only logged: the messages whose ack was
 * lost are redelivered after ACK_WAIT and their rerun is idempotent.
 */
static void confirm_acks(bus *b, int sent)
{
    natsStatus s;

    if (sent == 0)
        return;
    s = natsConnection_FlushTimeout(b->nc, 5000);
    if (s != NATS_OK)
        log_printf(LOG_LEVEL_WARN, NULL,
                   "confirming %d acknowledgements failed: %s (their messages will be redelivered)",
                   sent, natsStatus_GetText(s));
}

/*
 * Hands a fetched message back unhandled (the worker is stopping): a nak
 * without delay, so that another replica, or this worker after its restart,
 * takes it at once.
 */
static void hand_back(inflight *beats, natsMsg *msg)
{
    inflight_remove(beats, msg);
    natsMsg_Nak(msg, NULL);
}

/*
 * A Fetch that gave up at its own deadline has not seen the server's 408
 * that ends its pull request: the request may still be pending there (its
 * expiry counts from when the server received it, later under load), and a
 * message published meanwhile would be delivered to it while this worker is
 * busy with the next one.  Waiting for that 408 (or for such a message) to
 * arrive before asking again keeps one request at a time on the server.
 */
static void wait_request_expired(natsSubscription *sub, const atomic_int *stop)
{
    int queued = 0;

    for (int waited = 0; waited < 2000 && !atomic_load(stop); waited += 5) {
        if (natsSubscription_GetPending(sub, &queued, NULL) == NATS_OK && queued > 0)
            return;
        util_sleep_ms(5);
    }
}

/*
 * A pull request can outlive the Fetch that sent it (the server counts its
 * expiry from when it receives it, later than the client under load), so a
 * message may be delivered while the worker is busy with another and wait
 * in nats.c's queue, out of the heartbeat's reach, until the next Fetch; by
 * then ACK_WAIT may have passed and JetStream given it to another replica.
 * Such a message is handled only when it is surely still ours: a first
 * delivery of a message stored less than half of ACK_WAIT ago (it cannot
 * have been delivered earlier than it was stored).  Otherwise it is left to
 * JetStream, which redelivers it (to one replica) once its ACK_WAIT is over.
 */
static int surely_still_ours(bus *b, natsMsg *msg)
{
    jsMsgMetaData *meta = NULL;
    int ours = 0;

    if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
        int64_t age_ms = util_now_ms() - meta->Timestamp / NS_PER_MS;

        ours = meta->NumDelivered == 1 && age_ms < (int64_t)b->ack_wait_s * 1000 / 2;
        if (!ours)
            log_printf(LOG_LEVEL_INFO, NULL,
                       "left message %llu of %s for redelivery: it waited in this worker's queue "
                       "while another was handled",
                       (unsigned long long)meta->Sequence.Stream, natsMsg_GetSubject(msg));
        jsMsgMetaData_Destroy(meta);
    }
    return ours;
}

dx_status bus_consume(bus *b, const char *durable, bus_handler handler, void *ctx,
                      const atomic_int *stop)
{
    natsSubscription *sub = NULL;
    inflight *beats = NULL;
    int after_work = 0, sent;
    jsSubOptions so;
    jsErrCode jerr = 0;
    natsStatus s;

    /* A quarter of ACK_WAIT leaves room for one lost or late heartbeat
     * before the server would give the message to another replica. */
    if (inflight_create(&beats, (size_t)b->max_in_flight, (int64_t)b->ack_wait_s * 1000 / 4,
                        signal_in_progress) != DX_OK) {
        log_printf(LOG_LEVEL_ERROR, NULL, "cannot start the in-progress heartbeat");
        return DX_ERR_NOMEM;
    }
    jsSubOptions_Init(&so);
    so.Stream = BUS_STREAM;
    so.Consumer = durable;
    s = js_PullSubscribe(&sub, b->js, NULL, durable, NULL, &so, &jerr);
    if (s != NATS_OK) {
        log_printf(LOG_LEVEL_ERROR, NULL, "cannot bind to consumer %s: %s (JetStream error %d)",
                   durable, natsStatus_GetText(s), (int)jerr);
        inflight_destroy(beats);
        return DX_ERR_IO;
    }
    while (!atomic_load(stop)) {
        natsMsgList list = {0};
        int64_t asked;
        int queued = 0;

        /* After handling a message, anything already queued was delivered
         * while this worker was busy.  (After an idle Fetch it is that
         * Fetch's late 408, or a message that has just arrived.) */
        if (!after_work || natsSubscription_GetPending(sub, &queued, NULL) != NATS_OK)
            queued = 0;
        after_work = 0;
        asked = util_monotonic_ms();
        /* Up to MAX_IN_FLIGHT at once: nats.c asks the server without
         * waiting first, so a batch is whatever is there (at least one). */
        s = natsSubscription_Fetch(&list, sub, b->max_in_flight, FETCH_WAIT_MS, &jerr);
        if (s == NATS_TIMEOUT) {
            if (util_monotonic_ms() - asked >= FETCH_WAIT_MS)
                wait_request_expired(sub, stop);
            continue;
        }
        if (s != NATS_OK) {
            /* Disconnected or the server is restarting: wait and pull again. */
            util_sleep_ms(500);
            continue;
        }
        /* Every message fetched is ours from now: all of them beat, also
         * those still waiting for their turn in a batch. */
        for (int i = 0; i < list.Count; i++) {
            if (queued > 0 && !surely_still_ours(b, list.Msgs[i])) {
                natsMsg_Destroy(list.Msgs[i]);
                list.Msgs[i] = NULL;
                continue;
            }
            inflight_add(beats, list.Msgs[i]);
        }
        sent = 0;
        for (int i = 0; i < list.Count; i++) {
            if (list.Msgs[i] == NULL)
                continue;
            if (atomic_load(stop))
                hand_back(beats, list.Msgs[i]);
            else
                sent += handle_message(b, beats, list.Msgs[i], handler, ctx);
        }
        confirm_acks(b, sent);
        natsMsgList_Destroy(&list);
        after_work = 1;
    }
    inflight_destroy(beats);
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    return DX_OK;
}

dx_status bus_replay(bus *b, uint64_t from_seq, bus_handler handler, void *ctx, uint64_t *last_seq)
{
    natsSubscription *sub = NULL;
    jsStreamInfo *si = NULL;
    jsSubOptions so;
    jsErrCode jerr = 0;
    uint64_t last = 0, first = 0;
    natsStatus s;
    dx_status ds = DX_OK;

    /* Where the stream ends now: everything up to there is read, whatever
     * arrives meanwhile (the caller's consumer gets that). */
    s = js_GetStreamInfo(&si, b->js, BUS_STREAM, NULL, &jerr);
    if (s == NATS_OK) {
        last = si->State.LastSeq;
        first = si->State.FirstSeq;
        if (si->State.Msgs == 0)
            last = 0;
    }
    jsStreamInfo_Destroy(si);
    if (s != NATS_OK) {
        log_printf(LOG_LEVEL_WARN, NULL, "cannot read the stream's state: %s",
                   natsStatus_GetText(s));
        return DX_ERR_IO;
    }
    if (last_seq != NULL)
        *last_seq = last;
    /* Nothing to read: done at once rather than after the NextMsg timeout
     * below (a new stream, every test, a first start, an up-to-date
     * snapshot). */
    if (last == 0 || last < from_seq)
        return DX_OK;
    jsSubOptions_Init(&so);
    so.Stream = BUS_STREAM;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverAll;
    if (from_seq > first) {
        so.Config.DeliverPolicy = js_DeliverByStartSequence;
        so.Config.OptStartSeq = from_seq;
    }
    /* nats.c wants a subject for an ordered consumer: one matching every
     * subject of the stream. */
    s = js_SubscribeSync(&sub, b->js, "orders.>", NULL, &so, &jerr);
    while (s == NATS_OK) {
        natsMsg *msg = NULL;
        jsMsgMetaData *meta = NULL;
        bus_delivery d = {0};
        int64_t ignored = 0;

        s = natsSubscription_NextMsg(&msg, sub, 2000);
        if (s != NATS_OK)
            break;
        d.subject = natsMsg_GetSubject(msg);
        d.data = natsMsg_GetData(msg);
        d.len = (size_t)natsMsg_GetDataLength(msg);
        if (natsMsgHeader_Get(msg, "Content-Type", &d.content_type) != NATS_OK)
            d.content_type = NULL;
        d.delivery = 1;
        if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
            d.stream_seq = meta->Sequence.Stream;
            d.stream_time_ns = meta->Timestamp;
            jsMsgMetaData_Destroy(meta);
        }
        handler(ctx, &d, &ignored);
        natsMsg_Destroy(msg);
        if (d.stream_seq >= last)
            break;
    }
    /* A timeout means the last messages were removed meanwhile (retention):
     * everything that is left was read. */
    if (s != NATS_OK && s != NATS_TIMEOUT) {
        log_printf(LOG_LEVEL_WARN, NULL, "replay of the stream stopped: %s", natsStatus_GetText(s));
        ds = DX_ERR_IO;
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    return ds;
}
