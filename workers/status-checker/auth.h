#pragma once

#include <stddef.h>

#include "status.h"

/*
 * STATUS_AUTH_FILE: who may read the status page, GET /status and the
 * downloads.  The file holds one credential per line: `user:password` (a
 * line with a ':') for HTTP basic authentication, or a bearer token (any
 * other line); blank lines and lines starting with '#' are ignored, a
 * trailing CR is dropped.  A request passes when its Authorization header is
 * "Bearer <token>" or "Basic <base64 of user:password>" for one of them,
 * compared in constant time against every line (the time taken does not
 * depend on which one, nor on how much of it matched).  The secrets are held
 * in memory only: never logged, never in an error, /status or metrics.
 */

typedef struct auth auth;

/*
 * Reads the credentials of path.  On success *out is a new auth the caller
 * frees with auth_destroy().  DX_ERR_INVALID with a one-line reason naming
 * STATUS_AUTH_FILE (never its content) when the file cannot be read, holds no
 * credential, a control character, a line over AUTH_LINE_MAX bytes, or a
 * `user:password` line with an empty user or password.
 */
#define AUTH_LINE_MAX 1024
dx_status auth_load(auth **out, const char *path, char *err, size_t err_len);

/* Accepts NULL. */
void auth_destroy(auth *a);

/* 1 when the Authorization header value (NULL when absent) names one of a's
 * credentials, else 0. */
int auth_check(const auth *a, const char *authorization);

/* The WWW-Authenticate header of a 401: both schemes are offered. */
#define AUTH_CHALLENGE "Basic realm=\"DataRetailX status\", charset=\"UTF-8\""
