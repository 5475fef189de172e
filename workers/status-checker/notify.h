#pragma once

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdint.h>

#include "bus.h"
#include "config.h"
#include "event.h"
#include "status.h"

/*
 * notify: status-checker's notifier.  Every ClientState event
 * (orders.client-state) becomes one JSON POST to each of its targets: the
 * global webhook (NOTIFY_WEBHOOK_URL_FILE) and the client's profile target
 * (`webhook:NAME`, whose URL is the file NOTIFY_WEBHOOKS_DIR/NAME; `mailto:`
 * is not delivered, see docs/operations.md).
 *
 * It pulls from a durable consumer of its own (NOTIFY_DURABLE), in service
 * and function mode alike, in a thread of its own so that a slow receiver
 * never holds status-checker's events or HTTP.  Delivery is at least once:
 * each (event, target) delivered or given up is recorded in the KV bucket
 * NOTIFY_SENT_BUCKET before the event is acknowledged, so a redelivered
 * event (after a retry or a restart) skips the targets already done; a
 * target that fails transiently gets the event NAK'd with an exponential
 * delay (notify_backoff_ms()).
 *
 * Webhook URLs are secrets: logs, errors and metrics name a target by its
 * label only (NOTIFY_TARGET_GLOBAL or the profile's NAME).
 */

#define NOTIFY_DURABLE       "dx-notifier"
#define NOTIFY_SENT_BUCKET   "dx-notify-sent"
#define NOTIFY_TARGET_GLOBAL "global"
#define NOTIFY_TARGET_MAILTO "mailto"
/* The redelivery delay: NOTIFY_BACKOFF_MIN_MS doubling per attempt up to
 * NOTIFY_BACKOFF_MAX_MS. */
#define NOTIFY_BACKOFF_MIN_MS 1000
#define NOTIFY_BACKOFF_MAX_MS (5 * 60 * 1000)

typedef struct notify notify;

/* What one delivery attempt means for its target. */
typedef enum notify_outcome {
    NOTIFY_DELIVERED = 0, /* 2xx */
    NOTIFY_RETRY,         /* 5xx, 408, 429, 1xx, timeout, connect or TLS error: try again */
    NOTIFY_PERMANENT,     /* any other status (3xx: redirects are not followed; 4xx) */
} notify_outcome;

/* The outcome of webhook_post()'s s and HTTP status. */
notify_outcome notify_classify(dx_status s, int http_status);

/* The redelivery delay after delivery number `delivery` (1 for the first) failed. */
int64_t notify_backoff_ms(uint64_t delivery);

/*
 * The message for ev: a new JSON object (owned by the caller) with `text`
 * (one line for Slack/Mattermost/Teams incoming webhooks), the event's
 * fields and `links` built on public_url (STATUS_PUBLIC_URL, "" for none:
 * `links` is then empty).
 */
cJSON *notify_build_body(const event_client_state *ev, const char *public_url);

/*
 * Checks the settings and reads the global URL.  *out is NULL when no target
 * is configured (neither NOTIFY_WEBHOOK_URL_FILE nor NOTIFY_WEBHOOKS_DIR):
 * the notifier is off.  Otherwise *out is a new notifier the caller ends
 * with notify_destroy().  DX_ERR_INVALID with one line naming the variable
 * (never the URL) when the file holds no http:// or https:// URL: the caller
 * exits 2.
 */
dx_status notify_create(notify **out, const config *cfg, char *err, size_t err_len);

/*
 * Starts the notifier's threads on b (borrowed: destroy the notifier
 * before the bus); they run until *stop becomes non-zero.  Accepts a NULL n
 * (off): nothing is started.
 */
dx_status notify_start(notify *n, bus *b, const atomic_int *stop);

/* Waits for the threads (once *stop is set) and frees n.  Accepts NULL. */
void notify_destroy(notify *n);
