#pragma once

#include "http.h"
#include "worker.h"

/*
 * GET /files/<depot path>: downloads one file of the depot (a clean or a
 * rejects CSV) through the storage interface, so file:// and sftp:// depots
 * are served alike.  The path is confined to the depot by the storage rules
 * (storage_path_valid: no "..", no absolute path, no control character;
 * symbolic links refused) plus one of its own: no component may start with
 * '.', so the hidden temporary files of a write in progress are never
 * served.  The body is streamed a chunk at a time (memory stays bounded
 * whatever the size); each chunk is read under the worker's work_lock, since
 * the depot connection is shared with the consumer thread.
 */

/* The URL prefix of a download, followed by the depot path. */
#define FILES_PREFIX "/files/"

/*
 * Answers GET FILES_PREFIX path (path is what follows the prefix, already
 * percent-decoded by the HTTP server): 200 text/csv streamed with a
 * Content-Disposition attachment, 400 for a path outside the rules, 404 when
 * no such regular file, 503 when the depot cannot be read.  resp's stream
 * owns an open reader until http.c calls its done callback.
 */
void files_serve(worker *w, const char *path, http_response *resp);

/*
 * The link of a depot path: FILES_PREFIX then the path, each byte other than
 * a letter, digit, '/', '.', '-', '_' or '~' percent-encoded.  Returns a new
 * string owned by the caller, or NULL (out of memory, or an empty path).
 */
char *files_link(const char *depot_path);

/* True when path may be served (the rules above); for tests. */
int files_path_allowed(const char *path);
