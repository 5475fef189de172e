#pragma once

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "status.h"

/*
 * The workers are configured by environment variables only, with the same
 * names in every worker, the demo, the tests, stack.yml and deploy/k8s.  The
 * README's configuration table lists them; config_load() is the one place
 * that reads them, and config_print_help() lists what it reads.
 */
/* The sftp:// backend's settings, handed to storage_create(). */
typedef struct config_sftp {
    char key_file[1024];      /* SFTP_KEY_FILE: the private key */
    int key_file_set;         /* SFTP_KEY_FILE given explicitly */
    char password_file[1024]; /* SFTP_PASSWORD_FILE ("" for none): passphrase
                                 of the key, and password authentication when
                                 the key is refused */
    char known_hosts[1024];   /* SFTP_KNOWN_HOSTS: OpenSSH known_hosts */
    int insecure;             /* SFTP_INSECURE_SKIP_HOST_KEY=1: no host key
                                 check, with a warning at every connection */
    int timeout_s;            /* SFTP_TIMEOUT_SECONDS: connect timeout,
                                 keepalive, and how long any one operation may
                                 wait for the server */
} config_sftp;

/* status-checker's notifier (workers/status-checker/notify.h). */
typedef struct config_notify {
    char webhook_url_file[1024]; /* NOTIFY_WEBHOOK_URL_FILE ("" for no global webhook) */
    char webhooks_dir[1024];     /* NOTIFY_WEBHOOKS_DIR: a URL file per webhook NAME */
    char ca_file[1024];          /* NOTIFY_CA_FILE ("" for the system CAs) */
    char public_url[1024];       /* STATUS_PUBLIC_URL: base of the links ("" for none) */
    int timeout_ms;              /* NOTIFY_TIMEOUT_MS: one attempt, connect to status */
} config_notify;

typedef struct config {
    char nats_url[512];           /* NATS_URL */
    char nats_creds_file[512];    /* NATS_CREDS_FILE ("" for none) */
    char nats_tls_ca_file[512];   /* NATS_TLS_CA_FILE ("" for the system CAs) */
    char nats_tls_cert_file[512]; /* NATS_TLS_CERT_FILE ("" for no client certificate) */
    char nats_tls_key_file[512];  /* NATS_TLS_KEY_FILE (set with NATS_TLS_CERT_FILE) */
    char nats_url_display[512];   /* NATS_URL with credentials replaced by *** */
    char inbox_url[1024];         /* INBOX_URL */
    char depot_url[1024];         /* DEPOT_URL */
    char http_addr[64];           /* HTTP_ADDR */
    int port;                     /* PORT */
    char log_level[16];           /* LOG_LEVEL */
    char client_pattern[256];     /* CLIENT_PATTERN */
    int emit_json;                /* EVENT_ENCODING=json */
    int subscribe;                /* SUBSCRIBE */
    char schedule[512];           /* SCHEDULE ("" for none) */
    int catchup_max_days;         /* CATCHUP_MAX_DAYS */
    int drop_min_age;             /* DROP_MIN_AGE, seconds */
    int recheck_seconds;          /* RECHECK_SECONDS: delay of a not-stable drop's re-check */
    int recheck_max;              /* RECHECK_MAX: re-checks of a client per scheduled run */
    int max_deliver;              /* MAX_DELIVER */
    int max_in_flight;            /* MAX_IN_FLIGHT, messages fetched and held at once */
    int ack_wait;                 /* ACK_WAIT, seconds */
    int max_event_bytes;          /* MAX_EVENT_BYTES */
    int shutdown_grace;           /* SHUTDOWN_GRACE, seconds */
    int stream_replicas;          /* STREAM_REPLICAS */
    config_sftp sftp;             /* SFTP_* */
    int64_t stream_max_age;       /* STREAM_MAX_AGE, seconds */
    int64_t stream_max_bytes;     /* STREAM_MAX_BYTES (-1: no limit) */
    int formula_guard;            /* CSV_FORMULA_GUARD */
    int clean_memory_mb;          /* CLEAN_MEMORY_MB, the duplicate set's budget in MiB */
    config_notify notify;         /* NOTIFY_*, STATUS_PUBLIC_URL */
    char status_auth_file[512];   /* STATUS_AUTH_FILE ("" for none: status-checker open) */
} config;

/*
 * Fills cfg from the environment, with defaults for what is unset.  Returns
 * DX_ERR_INVALID with a one-line reason naming the variable when a value is
 * malformed, a file named by a variable cannot be read, or TZ names no zone
 * of the tz database (the caller prints it and exits 2).
 */
dx_status config_load(config *cfg, char *err, size_t err_len);

/*
 * Checks the TZ variable: unset, empty, "UTC", a zone of the tz database
 * (a TZif file under TZDIR or /usr/share/zoneinfo, optionally written with a
 * leading ':') or a POSIX rule with an offset ("CET-1CEST,M3.5.0,M10.5.0/3").
 * Returns DX_ERR_INVALID with a one-line reason naming TZ otherwise.
 */
dx_status config_check_tz(const char *tz, char *err, size_t err_len);

/* Writes every variable config_load() reads, with its default, to out: the
 * part of each worker's --help that lists its environment.  Defaults only,
 * never a current value (which may be a secret).  Not thread-safe: for
 * --help, before anything else runs. */
void config_print_help(FILE *out);
