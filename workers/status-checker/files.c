#include "files.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "storage.h"

/* One download in progress: the reader and the lock it is read under. */
typedef struct download {
    worker *w;
    storage_reader *rd;
} download;

int files_path_allowed(const char *path)
{
    const char *p = path;

    if (path[0] == '\0' || !storage_path_valid(path))
        return 0; /* "" is the depot itself, no file */
    /* Hidden names and the writers' temporary files (".name.tmp...") are
     * never served; a component starts at the path's start or after '/'. */
    for (; p != NULL; p = strchr(p, '/') ? strchr(p, '/') + 1 : NULL) {
        if (*p == '.')
            return 0;
    }
    return 1;
}

char *files_link(const char *depot_path)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(depot_path), n = strlen(FILES_PREFIX);
    char *link;

    if (len == 0 || (link = malloc(n + 3 * len + 1)) == NULL)
        return NULL;
    memcpy(link, FILES_PREFIX, n);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)depot_path[i];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("/.-_~", c) != NULL) {
            link[n++] = (char)c;
        } else {
            link[n++] = '%';
            link[n++] = hex[c >> 4];
            link[n++] = hex[c & 15];
        }
    }
    link[n] = '\0';
    return link;
}

/*
 * The attachment's file name: the path's last component with every byte
 * that is not a letter, digit, '.', '-' or '_' replaced by '_', so that the
 * header can hold no quote, separator or control character.  Returns a new
 * string owned by the caller, or NULL.
 */
static char *disposition_of(const char *path)
{
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    size_t len = strlen(base);
    char *safe = malloc(len + 1), *header = NULL;

    if (safe == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)base[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '-' || c == '_';

        safe[i] = ok ? (char)c : '_';
    }
    safe[len] = '\0';
    if (asprintf(&header, "attachment; filename=\"%s\"", safe) < 0)
        header = NULL;
    free(safe);
    return header;
}

static long download_read(void *ctx, char *buf, size_t cap)
{
    download *d = ctx;
    size_t got = 0;
    dx_status s;

    pthread_mutex_lock(&d->w->work_lock);
    s = storage_read(d->rd, buf, cap, &got);
    if (s != DX_OK)
        log_printf(LOG_LEVEL_WARN, NULL, "download cut short: %s", storage_last_error(d->w->depot));
    pthread_mutex_unlock(&d->w->work_lock);
    return s != DX_OK ? -1 : (long)got;
}

static void download_done(void *ctx)
{
    download *d = ctx;

    pthread_mutex_lock(&d->w->work_lock);
    storage_reader_close(d->rd);
    pthread_mutex_unlock(&d->w->work_lock);
    free(d);
}

void files_serve(worker *w, const char *path, http_response *resp)
{
    download *d = NULL;
    storage_reader *rd = NULL;
    dx_status s;

    if (!files_path_allowed(path)) {
        http_error(resp, 400, "invalid depot path");
        return;
    }
    pthread_mutex_lock(&w->work_lock);
    s = storage_reader_open(w->depot, path, &rd);
    pthread_mutex_unlock(&w->work_lock);
    if (s == DX_ERR_NOT_FOUND || s == DX_ERR_INVALID) {
        /* A symlink or a folder is "not a file here", like a missing one. */
        http_error(resp, 404, "no such file in the depot");
        return;
    }
    if (s != DX_OK) {
        http_error(resp, 503, "the depot cannot be read");
        return;
    }
    d = calloc(1, sizeof(*d));
    resp->disposition = d != NULL ? disposition_of(path) : NULL;
    if (resp->disposition == NULL) {
        free(d);
        pthread_mutex_lock(&w->work_lock);
        storage_reader_close(rd);
        pthread_mutex_unlock(&w->work_lock);
        http_error(resp, 500, "out of memory");
        return;
    }
    *d = (download){w, rd};
    resp->status = 200;
    resp->content_type = "text/csv; charset=utf-8";
    resp->stream = download_read;
    resp->stream_done = download_done;
    resp->stream_ctx = d;
}
