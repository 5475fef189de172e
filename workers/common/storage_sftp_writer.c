/*
 * Writers of the sftp:// backend (see storage_sftp_private.h): a hidden
 * temporary file, renamed onto the target at commit.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "storage_sftp_private.h"
#include "util.h"

static void writer_free(sftp_writer *wr)
{
    sftp_conn_release(wr->conn);
    free(wr->buf);
    free(wr->path);
    free(wr->tmp_abs);
    free(wr->final_abs);
    free(wr);
}

/* Closes the handle and removes the temporary file, or leaves it for the
 * next connection to remove when this one is gone. */
static void writer_discard(sftp_writer *wr)
{
    sftp_storage *st = (sftp_storage *)wr->base.owner;

    if (wr->file != NULL) {
        sftp_close(wr->file);
        wr->file = NULL;
    }
    if (sftp_conn_dead(wr->conn) || sftp_unlink(wr->conn->sftp, wr->tmp_abs) != 0) {
        if (sftp_conn_dead(wr->conn))
            sftp_conn_add_orphan(st, wr->tmp_abs);
        else if (sftp_get_error(wr->conn->sftp) != SSH_FX_NO_SUCH_FILE)
            log_printf(LOG_LEVEL_WARN, NULL, "storage %s: cannot remove temporary file %s: %s",
                       st->base.display_url, wr->tmp_abs, ssh_get_error(wr->conn->ssh));
    }
}

static dx_status do_writer_open(sftp_storage *st, sftp_conn *c, const char *path,
                                storage_writer **out)
{
    sftp_writer *wr = NULL;
    const char *slash = strrchr(path, '/');
    const char *base_name = slash ? slash + 1 : path;
    char token[17];
    dx_status s = sftp_path_make_parent(st, c, path);

    if (s != DX_OK)
        return s;
    wr = calloc(1, sizeof(*wr));
    if (wr == NULL)
        return DX_ERR_NOMEM;
    wr->base.owner = &st->base;
    wr->conn = c;
    c->refs++;
    wr->cap = c->chunk;
    wr->buf = malloc(wr->cap);
    wr->path = strdup(path);
    if (wr->buf == NULL || wr->path == NULL) {
        s = DX_ERR_NOMEM;
        goto fail;
    }
    s = sftp_path_resolve(st, c, path, &wr->final_abs, NULL);
    if (s != DX_OK)
        goto fail;
    util_random_hex(token, sizeof(token));
    /* Hidden and marked, like storage_file.c, so that a listing never
     * mistakes it for a finished file. */
    if (asprintf(&wr->tmp_abs, "%.*s.%s.tmp-%s", (int)(strlen(wr->final_abs) - strlen(base_name)),
                 wr->final_abs, base_name, token) < 0) {
        wr->tmp_abs = NULL;
        s = DX_ERR_NOMEM;
        goto fail;
    }
    wr->file = sftp_open(c->sftp, wr->tmp_abs, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (wr->file == NULL) {
        s = sftp_conn_fail_ssh(st, c, "create", path);
        goto fail;
    }
    *out = &wr->base;
    return DX_OK;
fail:
    writer_free(wr);
    return s;
}

dx_status sftp_writer_open(storage *base, const char *path, storage_writer **out)
{
    sftp_storage *st = (sftp_storage *)base;
    sftp_conn *c;

    WITH_CONN(st, c, do_writer_open(st, c, path, out));
}

static dx_status writer_send(sftp_writer *wr, const void *buf, size_t len)
{
    sftp_storage *st = (sftp_storage *)wr->base.owner;

    if (sftp_conn_dead(wr->conn))
        return wr->failed = sftp_conn_lost(st, wr->conn, "write", wr->path);
    sftp_guard_arm(wr->conn);
    if (sftp_write(wr->file, buf, len) != (ssize_t)len)
        return wr->failed = sftp_conn_fail_ssh(st, wr->conn, "write", wr->path);
    return DX_OK;
}

static dx_status write_some(sftp_writer *wr, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    dx_status s;
    while (len > 0) {
        size_t n;

        /* Whole chunks straight from the caller's buffer, the rest copied. */
        if (wr->len == 0 && len >= wr->cap) {
            s = writer_send(wr, p, wr->cap);
            if (s != DX_OK)
                return s;
            p += wr->cap;
            len -= wr->cap;
            continue;
        }
        n = wr->cap - wr->len < len ? wr->cap - wr->len : len;
        memcpy(wr->buf + wr->len, p, n);
        wr->len += n;
        p += n;
        len -= n;
        if (wr->len == wr->cap) {
            s = writer_send(wr, wr->buf, wr->len);
            if (s != DX_OK)
                return s;
            wr->len = 0;
        }
    }
    return DX_OK;
}

dx_status sftp_writer_write(storage_writer *base, const void *buf, size_t len)
{
    sftp_writer *wr = (sftp_writer *)base;
    dx_status s;

    if (wr->failed != DX_OK)
        return wr->failed;
    s = write_some(wr, buf, len);
    sftp_guard_disarm(wr->conn);
    return s;
}

dx_status sftp_writer_commit(storage_writer *base)
{
    sftp_writer *wr = (sftp_writer *)base;
    sftp_storage *st = (sftp_storage *)base->owner;
    sftp_conn *c = wr->conn;
    dx_status s = wr->failed;

    sftp_guard_arm(c);
    if (s == DX_OK && wr->len > 0)
        s = writer_send(wr, wr->buf, wr->len);
    /* Data first, then the name: after a crash the target is either the old
     * file or the complete new one. */
    if (s == DX_OK && c->has_fsync && sftp_fsync(wr->file) != 0)
        s = sftp_conn_fail_ssh(st, c, "flush", wr->path);
    if (s == DX_OK) {
        int rc = sftp_close(wr->file);

        wr->file = NULL;
        if (rc != 0)
            s = sftp_conn_fail_ssh(st, c, "close", wr->path);
    }
    /* A writer may outlive its connection; the rename needs a live one. */
    if (s == DX_OK && sftp_conn_dead(c))
        s = sftp_conn_lost(st, c, "commit", wr->path);
    if (s == DX_OK)
        s = storage_sftp_rename_replace(st, c, wr->tmp_abs, wr->final_abs, wr->path);
    if (s != DX_OK)
        writer_discard(wr);
    sftp_guard_disarm(c);
    writer_free(wr);
    return s;
}

void sftp_writer_abort(storage_writer *base)
{
    sftp_writer *wr = (sftp_writer *)base;

    sftp_guard_arm(wr->conn);
    writer_discard(wr);
    sftp_guard_disarm(wr->conn);
    writer_free(wr);
}
