/*
 * Readers of the sftp:// backend (see storage_sftp_private.h): READ_DEPTH
 * requests in flight, answers handed out in order.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "storage_sftp_private.h"

/*
 * Collects the answers to every request still in flight, so that none is
 * left queued in libssh.  sftp_seek64() before each sftp_async_read() clears
 * the end-of-file flag, without which libssh would return at once and leave
 * the answer unread.
 */
static void reader_drain(sftp_reader *rd)
{
    while (rd->pending > 0) {
        int id = rd->ids[rd->head];
        uint64_t offset = rd->offsets[rd->head];

        rd->head = (rd->head + 1) % READ_DEPTH;
        rd->pending--;
        rd->conn->inflight--;
        if (sftp_conn_dead(rd->conn))
            continue;
        sftp_guard_arm(rd->conn);
        sftp_seek64(rd->file, offset);
        sftp_async_read(rd->file, rd->buf, (uint32_t)rd->chunk, (uint32_t)id);
    }
}

static dx_status reader_fail(sftp_reader *rd, const char *what)
{
    sftp_storage *st = (sftp_storage *)rd->base.owner;

    rd->failed = sftp_conn_fail_ssh(st, rd->conn, what, rd->path);
    reader_drain(rd);
    return rd->failed;
}

static dx_status do_reader_open(sftp_storage *st, sftp_conn *c, const char *path,
                                storage_reader **out)
{
    sftp_reader *rd = NULL;
    sftp_attributes a;
    char *abs = NULL;
    dx_status s = sftp_path_resolve(st, c, path, &abs, NULL);

    if (s != DX_OK)
        return s;
    a = sftp_lstat(c->sftp, abs);
    if (a == NULL) {
        s = sftp_conn_fail_ssh(st, c, "open", path);
        goto out;
    }
    if (sftp_path_kind(a) != STORAGE_FILE) {
        sftp_attributes_free(a);
        s = sftp_conn_fail(st, DX_ERR_INVALID, "open %s: not a regular file", path);
        goto out;
    }
    sftp_attributes_free(a);
    rd = calloc(1, sizeof(*rd));
    if (rd == NULL || (rd->path = strdup(path)) == NULL || (rd->buf = malloc(c->chunk)) == NULL) {
        s = DX_ERR_NOMEM;
        goto out;
    }
    rd->file = sftp_open(c->sftp, abs, O_RDONLY, 0);
    if (rd->file == NULL) {
        s = sftp_conn_fail_ssh(st, c, "open", path);
        goto out;
    }
    rd->base.owner = &st->base;
    rd->conn = c;
    rd->chunk = c->chunk;
    c->refs++;
    *out = &rd->base;
    rd = NULL;
out:
    if (rd != NULL) {
        free(rd->buf);
        free(rd->path);
        free(rd);
    }
    free(abs);
    return s;
}

dx_status sftp_reader_open(storage *base, const char *path, storage_reader **out)
{
    sftp_storage *st = (sftp_storage *)base;
    sftp_conn *c;

    WITH_CONN(st, c, do_reader_open(st, c, path, out));
}

static dx_status read_some(sftp_reader *rd, void *buf, size_t cap, size_t *got)
{
    size_t n;

    if (rd->failed != DX_OK)
        return rd->failed;
    while (rd->pos == rd->len) {
        uint64_t offset;
        int id, r;

        if (sftp_conn_dead(rd->conn))
            return reader_fail(rd, "read");
        /* Keep the pipeline full. */
        while (!rd->eof && rd->pending < READ_DEPTH) {
            size_t slot = (rd->head + rd->pending) % READ_DEPTH;

            sftp_seek64(rd->file, rd->next_offset);
            id = sftp_async_read_begin(rd->file, (uint32_t)rd->chunk);
            if (id < 0)
                return reader_fail(rd, "read");
            rd->ids[slot] = id;
            rd->offsets[slot] = rd->next_offset;
            rd->pending++;
            rd->conn->inflight++;
            rd->next_offset += rd->chunk;
        }
        if (rd->pending == 0) {
            *got = 0;
            return DX_OK;
        }
        id = rd->ids[rd->head];
        offset = rd->offsets[rd->head];
        rd->head = (rd->head + 1) % READ_DEPTH;
        rd->pending--;
        rd->conn->inflight--;
        sftp_guard_arm(rd->conn);
        sftp_seek64(rd->file, offset);
        r = sftp_async_read(rd->file, rd->buf, (uint32_t)rd->chunk, (uint32_t)id);
        if (r < 0)
            return reader_fail(rd, "read");
        if (r == 0) {
            rd->eof = 1;
            reader_drain(rd);
            continue;
        }
        rd->pos = 0;
        rd->len = (size_t)r;
        if ((size_t)r < rd->chunk) {
            /* A short answer (the end of the file, or a server that sends
             * less than asked): the requests behind it start after a gap,
             * so drop them and go on right after what came. */
            reader_drain(rd);
            rd->next_offset = offset + (uint64_t)r;
        }
    }
    n = rd->len - rd->pos < cap ? rd->len - rd->pos : cap;
    memcpy(buf, rd->buf + rd->pos, n);
    rd->pos += n;
    *got = n;
    return DX_OK;
}

dx_status sftp_reader_read(storage_reader *base, void *buf, size_t cap, size_t *got)
{
    sftp_reader *rd = (sftp_reader *)base;
    dx_status s;

    sftp_guard_arm(rd->conn);
    s = read_some(rd, buf, cap, got);
    sftp_guard_disarm(rd->conn);
    return s;
}

void sftp_reader_close(storage_reader *base)
{
    sftp_reader *rd = (sftp_reader *)base;

    sftp_guard_arm(rd->conn);
    reader_drain(rd);
    sftp_close(rd->file);
    sftp_guard_disarm(rd->conn);
    sftp_conn_release(rd->conn);
    free(rd->buf);
    free(rd->path);
    free(rd);
}
