#pragma once

/*
 * One status convention for the whole project, in the spirit of natsStatus:
 * DX_OK is 0, every other value says what the caller should do about it.
 * Library errors (nats.c, libssh, libcsv, libmicrohttpd, protobuf-c) are
 * converted to one of these at the call site, with the library's own message
 * logged there.
 */
typedef enum dx_status {
    DX_OK = 0,
    DX_ERR_INVALID,   /* bad input (event, config, file): retrying cannot help */
    DX_ERR_NOT_FOUND, /* the named object does not exist */
    DX_ERR_EXISTS,    /* the named object already exists */
    DX_ERR_IO,        /* storage or network I/O failed: transient, retry later */
    DX_ERR_TIMEOUT,   /* an operation took too long: transient */
    DX_ERR_NOMEM,     /* allocation failed */
    DX_ERR_PERMANENT, /* a non-input failure that retrying cannot fix (auth, host key) */
    DX_ERR_TOO_LARGE, /* input over a configured limit */
    DX_ERR_NO_SPACE,  /* storage full or read-only: transient for the event, data kept */
} dx_status;

/* Returns a static, human-readable name for the status ("ok", "invalid", ...). */
const char *status_text(dx_status status);

/* True when retrying the same work later may succeed. */
int status_is_transient(dx_status status);
