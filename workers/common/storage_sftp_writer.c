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

/* The server's modification time of an open file, in its clock (-1 when
 * the server does not say). */
static int64_t file_mtime(sftp_file file)
{
    sftp_attributes a = sftp_fstat(file);
    int64_t mtime = -1;

    if (a != NULL) {
        mtime = a->mtime64 ? (int64_t)a->mtime64 : (int64_t)a->mtime;
        sftp_attributes_free(a);
    }
    return mtime;
}

/*
 * After a commit, removes the temporary files of earlier attempts at the
 * same target: a worker killed in the middle of writing it, or a write cut
 * off with its connection and never cleaned up (the orphan list lives in
 * the process).  SFTP has no lock that tells a dead writer from a live one,
 * as storage_file.c's flock does; the rule is the server's clock instead:
 * a temporary file of this target no newer than this writer's own is an
 * earlier attempt, and the target it was for is now complete.  Should a
 * live writer of another replica lose its file this way, its own commit
 * fails and its event is retried, finding the work done.
 */
static void sweep_earlier(sftp_storage *st, sftp_conn *c, const sftp_writer *wr)
{
    const char *base_name = strrchr(wr->final_abs, '/');
    size_t dir_len = base_name != NULL ? (size_t)(base_name - wr->final_abs) : 0;
    char *dir = NULL, *prefix = NULL, *victim = NULL;
    sftp_dir d = NULL;
    sftp_attributes a;

    if (base_name == NULL || wr->opened_mtime < 0 ||
        asprintf(&dir, "%.*s", (int)(dir_len ? dir_len : 1), wr->final_abs) < 0)
        return;
    if (asprintf(&prefix, ".%s.tmp-", base_name + 1) < 0)
        prefix = NULL;
    if (prefix != NULL)
        d = sftp_opendir(c->sftp, dir);
    while (d != NULL) {
        int64_t mtime;

        sftp_guard_arm(c);
        a = sftp_readdir(c->sftp, d);
        if (a == NULL)
            break;
        mtime = a->mtime64 ? (int64_t)a->mtime64 : (int64_t)a->mtime;
        if (a->name != NULL && strncmp(a->name, prefix, strlen(prefix)) == 0 &&
            a->type == SSH_FILEXFER_TYPE_REGULAR && mtime <= wr->opened_mtime &&
            asprintf(&victim, "%s/%s", dir, a->name) >= 0) {
            if (sftp_unlink(c->sftp, victim) == 0)
                log_printf(LOG_LEVEL_WARN, NULL,
                           "storage %s: removed abandoned temporary file %s (%llu bytes)",
                           st->base.display_url, victim, (unsigned long long)a->size);
            free(victim);
            victim = NULL;
        }
        sftp_attributes_free(a);
    }
    if (d != NULL)
        sftp_closedir(d);
    free(prefix);
    free(dir);
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
    wr->opened_mtime = file_mtime(wr->file);
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
    if (s == DX_OK)
        sweep_earlier(st, c, wr);
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
