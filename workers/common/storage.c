#include "storage.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* file://ROOT: ROOT must be absolute. */
static dx_status file_from_url(storage **out, const char *url, const config_sftp *sftp, char *err,
                               size_t err_len)
{
    const char *root = url + strlen("file://");

    (void)sftp;
    if (root[0] != '/') {
        snprintf(err, err_len, "file:// URL needs an absolute path (file:///abs/path)");
        return DX_ERR_INVALID;
    }
    return storage_file_create(out, root, err, err_len);
}

/* The backends, by URL scheme: a new backend is one line here. */
static const struct {
    const char *prefix;
    dx_status (*create)(storage **out, const char *url, const config_sftp *sftp, char *err,
                        size_t err_len);
} schemes[] = {
    {"file://", file_from_url},
    {"sftp://", storage_sftp_create},
};

dx_status storage_create(storage **out, const char *url, const config_sftp *sftp, char *err,
                         size_t err_len)
{
    if (url == NULL || url[0] == '\0') {
        snprintf(err, err_len, "storage URL is empty");
        return DX_ERR_INVALID;
    }
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        if (strncmp(url, schemes[i].prefix, strlen(schemes[i].prefix)) == 0)
            return schemes[i].create(out, url, sftp, err, err_len);
    }
    snprintf(err, err_len, "unsupported storage URL scheme (expected file:// or sftp://)");
    return DX_ERR_INVALID;
}

void storage_destroy(storage *st)
{
    if (st != NULL)
        st->ops->destroy(st);
}

const char *storage_display_url(const storage *st)
{
    return st->display_url;
}

const char *storage_last_error(const storage *st)
{
    return st->last_error;
}

void storage_set_error(storage *st, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(st->last_error, sizeof(st->last_error), fmt, ap);
    va_end(ap);
}

/* The shape checks of a storage path; with strict, its characters too. */
static int path_ok(const char *path, int strict)
{
    const char *component = path;

    if (path == NULL || path[0] == '/')
        return 0;
    if (path[0] == '\0')
        return 1; /* the root itself */
    for (const char *p = path;; p++) {
        if (*p == '/' || *p == '\0') {
            size_t len = (size_t)(p - component);

            if (len == 0 || (len == 1 && component[0] == '.') ||
                (len == 2 && component[0] == '.' && component[1] == '.'))
                return 0;
            if (*p == '\0')
                return 1;
            component = p + 1;
        } else if (strict && ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '\\')) {
            return 0;
        }
    }
}

int storage_path_valid(const char *path)
{
    return path_ok(path, 1);
}

int storage_path_shape_valid(const char *path)
{
    return path_ok(path, 0);
}

static dx_status refuse_path(storage *st, const char *path)
{
    storage_set_error(st, "invalid storage path");
    (void)path;
    return DX_ERR_INVALID;
}

dx_status storage_ping(storage *st)
{
    return st->ops->ping(st);
}

static int compare_entries(const void *a, const void *b)
{
    return strcmp(((const storage_entry *)a)->name, ((const storage_entry *)b)->name);
}

dx_status storage_list(storage *st, const char *dir, storage_entry **entries, size_t *count)
{
    dx_status s;

    if (!storage_path_valid(dir))
        return refuse_path(st, dir);
    s = st->ops->list(st, dir, entries, count);
    /* Sorted here, once for every backend: callers rely on the order. */
    if (s == DX_OK && *count > 1)
        qsort(*entries, *count, sizeof(**entries), compare_entries);
    return s;
}

void storage_entries_free(storage_entry *entries, size_t count)
{
    if (entries == NULL)
        return;
    for (size_t i = 0; i < count; i++)
        free(entries[i].name);
    free(entries);
}

dx_status storage_stat(storage *st, const char *path, storage_entry *entry)
{
    if (!storage_path_valid(path))
        return refuse_path(st, path);
    return st->ops->stat(st, path, entry);
}

dx_status storage_mkdirs(storage *st, const char *dir)
{
    if (!storage_path_valid(dir))
        return refuse_path(st, dir);
    return st->ops->mkdirs(st, dir);
}

dx_status storage_rename(storage *st, const char *from, const char *to)
{
    if (!storage_path_valid(from) || from[0] == '\0')
        return refuse_path(st, from);
    if (!storage_path_valid(to) || to[0] == '\0')
        return refuse_path(st, to);
    return st->ops->rename(st, from, to);
}

dx_status storage_rename_listed(storage *st, const char *dir, const char *name, const char *to)
{
    char *from = NULL;
    dx_status s;

    if (!storage_path_valid(dir) || name[0] == '\0' || strchr(name, '/') != NULL ||
        strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return refuse_path(st, dir);
    if (!storage_path_valid(to) || to[0] == '\0')
        return refuse_path(st, to);
    if (asprintf(&from, "%s%s%s", dir, dir[0] ? "/" : "", name) < 0)
        return DX_ERR_NOMEM;
    s = st->ops->rename(st, from, to);
    free(from);
    return s;
}

dx_status storage_remove(storage *st, const char *path)
{
    if (!storage_path_valid(path) || path[0] == '\0')
        return refuse_path(st, path);
    return st->ops->remove(st, path);
}

dx_status storage_reader_open(storage *st, const char *path, storage_reader **out)
{
    if (!storage_path_valid(path) || path[0] == '\0')
        return refuse_path(st, path);
    return st->ops->reader_open(st, path, out);
}

dx_status storage_read(storage_reader *rd, void *buf, size_t cap, size_t *got)
{
    return rd->owner->ops->read(rd, buf, cap, got);
}

void storage_reader_close(storage_reader *rd)
{
    if (rd != NULL)
        rd->owner->ops->reader_close(rd);
}

dx_status storage_writer_open(storage *st, const char *path, storage_writer **out)
{
    if (!storage_path_valid(path) || path[0] == '\0')
        return refuse_path(st, path);
    return st->ops->writer_open(st, path, out);
}

dx_status storage_write(storage_writer *wr, const void *buf, size_t len)
{
    return wr->owner->ops->write(wr, buf, len);
}

dx_status storage_writer_commit(storage_writer *wr)
{
    return wr->owner->ops->writer_commit(wr);
}

dx_status storage_writer_commit_pair(storage_writer *first, storage_writer *second, int *committed)
{
    const storage_ops *ops = first->owner->ops;
    dx_status s;

    *committed = 0;
    if (first->owner == second->owner && ops->writer_commit_before != NULL)
        s = ops->writer_commit_before(first, second);
    else
        s = storage_writer_commit(first);
    if (s != DX_OK) {
        storage_writer_abort(second);
        return s;
    }
    *committed = 1;
    s = storage_writer_commit(second);
    if (s == DX_OK)
        *committed = 2;
    return s;
}

void storage_writer_abort(storage_writer *wr)
{
    if (wr != NULL)
        wr->owner->ops->writer_abort(wr);
}
