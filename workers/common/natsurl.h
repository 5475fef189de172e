#pragma once

#include <stddef.h>

#include "status.h"

/*
 * NATS_URL: a comma-separated list of servers (a cluster), each
 * nats://[USER:PASSWORD@|TOKEN@]HOST[:PORT] or tls://... .  This module is
 * the one place that splits, checks and redacts it: config.c refuses a bad
 * list at start, bus.c hands the servers to nats.c, and everything that
 * prints the list prints natsurl_redact()'s form, whose credentials are
 * replaced by three stars: the authority alice:PASSWORD@host:4222 is shown
 * as alice:***@host:4222, and TOKEN@host:4222 as ***@host:4222.
 */

/* Most servers in one NATS_URL. */
#define NATSURL_MAX_SERVERS 16

/*
 * Checks list.  Returns DX_OK, or DX_ERR_INVALID with a one-line reason in
 * err naming NATS_URL and the entry (redacted: never the credentials).
 */
dx_status natsurl_check(const char *list, char *err, size_t err_len);

/*
 * Splits list in place (buf is modified: a copy the caller owns) into at
 * most NATSURL_MAX_SERVERS trimmed, non-empty entries; servers[] point into
 * buf.  Returns the count (0 when there is none).
 */
int natsurl_split(char *buf, const char *servers[NATSURL_MAX_SERVERS]);

/*
 * Writes list to out (size out_len, always NUL-terminated) with the
 * credentials of every entry replaced by ***, the entries joined by ",".
 */
void natsurl_redact(const char *list, char *out, size_t out_len);
