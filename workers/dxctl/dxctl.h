#pragma once

#include <cjson/cJSON.h>
#include <stddef.h>

#include "bus.h"
#include "config.h"
#include "kv.h"
#include "status.h"

/*
 * dxctl, the operator's command: the pieces its commands share.  It reads
 * the same environment variables as the workers (config.h), plus STATUS_URL
 * for `dxctl status`.
 */

/* Exit codes, documented in `dxctl --help` and docs/operations.md. */
enum {
    DXCTL_OK = 0,     /* done, and the outcome is a success */
    DXCTL_FAILED = 1, /* done, but the outcome is a failure (run failed, invalid input) */
    DXCTL_USAGE = 2,  /* bad arguments or settings */
    DXCTL_UNAVAILABLE =
        3, /* NATS, the status page or the storage cannot be reached, or timed out */
};

typedef struct dxctl {
    config cfg;
    int json;  /* --json: machine-readable output */
    bus *bus;  /* connected on first use */
    kv *store; /* the clients bucket, opened on first use */
} dxctl;

/* One command: argv[0] is the command's own name. */
typedef int (*dxctl_command)(dxctl *d, int argc, char **argv);

/* DXCTL_OK when id is a client id the workers accept (CLIENT_PATTERN and
 * safe characters), else prints why and returns DXCTL_USAGE. */
int dxctl_check_client(dxctl *d, const char *id);

/* Connects the bus if not yet; prints why and returns DXCTL_UNAVAILABLE on failure. */
int dxctl_bus(dxctl *d);

/* Opens the clients bucket if not yet (connecting the bus). */
int dxctl_profiles(dxctl *d);

/* Prints "dxctl: <message>" on stderr. */
void dxctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints o as one line (json) or indented, then frees it. */
void dxctl_print_json(cJSON *o, int pretty);

/* 1 when arg is --help or -h. */
int dxctl_is_help(const char *arg);

/*
 * Reads a whole file (or stdin for "-") into a new NUL-terminated buffer the
 * caller frees; NULL with errno set on failure.  Refuses more than max bytes.
 */
char *dxctl_read_file(const char *path, size_t max, size_t *len);

/* Parses "30s", "10m", "2h", "1d" or plain seconds; -1 when malformed. */
long long dxctl_duration(const char *s);

/* cmd_client.c */
int cmd_client(dxctl *d, int argc, char **argv);

/* cmd_run.c */
int cmd_trigger(dxctl *d, int argc, char **argv);
int cmd_replay(dxctl *d, int argc, char **argv);
int cmd_events(dxctl *d, int argc, char **argv);

/* cmd_view.c */
int cmd_status(dxctl *d, int argc, char **argv);
int cmd_schedule(dxctl *d, int argc, char **argv);
int cmd_validate(dxctl *d, int argc, char **argv);
