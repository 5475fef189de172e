#pragma once

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "status.h"

/*
 * Storage: the inbox and the depot, behind one small interface so that the
 * workers never know whether a folder is local (file:///abs/path) or on an
 * SFTP server (sftp://USER@HOST[:PORT]/PATH).
 *
 * Every path given to this interface is relative to the storage root, uses '/'
 * as separator, and is checked by storage_path_valid(): no leading '/', no
 * empty, "." or ".." component, no NUL or control character.  Symbolic links
 * are never followed out of the root: listings skip them and opens refuse
 * them, so a link in a client folder cannot expose another folder.
 *
 * Writes are atomic: storage_writer_open() writes under a hidden temporary
 * name beside the target, storage_writer_commit() flushes it and renames it
 * into place, storage_writer_abort() removes it.  A reader of the folder sees
 * either no file or the whole file, never a part of it.
 *
 * Errors: DX_ERR_IO / DX_ERR_TIMEOUT are transient (connection refused,
 * server gone mid-transfer), DX_ERR_NO_SPACE means full or read-only,
 * DX_ERR_PERMANENT means retrying cannot help (authentication, host key),
 * DX_ERR_NOT_FOUND / DX_ERR_INVALID are what they say.  The reason is logged
 * by the backend where it happens and copied into storage_last_error().
 */

typedef struct storage storage;
typedef struct storage_reader storage_reader;
typedef struct storage_writer storage_writer;

typedef enum storage_kind {
    STORAGE_FILE = 1,
    STORAGE_DIR = 2,
    STORAGE_OTHER = 3, /* symlinks, devices, sockets: never taken */
} storage_kind;

typedef struct storage_entry {
    char *name; /* base name, owned by the entry array */
    storage_kind kind;
    uint64_t size;
    int64_t mtime; /* seconds since the epoch */
} storage_entry;

/*
 * Opens the storage named by url ("file:///abs/path" or "sftp://...").  The
 * SFTP backend takes its settings from sftp (config_load() reads them; the
 * struct is copied, and may be NULL for file:// URLs) and connects lazily,
 * on first use, reconnecting when the connection breaks.
 * On success *out is a new storage the caller frees with storage_destroy();
 * on failure *out is untouched and err (if not NULL) holds a one-line reason
 * without any secret.
 */
dx_status storage_create(storage **out, const char *url, const config_sftp *sftp, char *err,
                         size_t err_len);

/* Closes connections and frees the storage.  Accepts NULL. */
void storage_destroy(storage *st);

/* The storage's URL without credentials, for logs.  Owned by st. */
const char *storage_display_url(const storage *st);

/* The last error's one-line reason (never a secret).  Owned by st. */
const char *storage_last_error(const storage *st);

/* Cheap reachability check for readiness probes: connects if needed. */
dx_status storage_ping(storage *st);

/*
 * Lists dir ("" for the root).  On success *entries is a new array of *count
 * entries sorted by name, freed by the caller with storage_entries_free().
 * "." and ".." are never listed.
 */
dx_status storage_list(storage *st, const char *dir, storage_entry **entries, size_t *count);

/* Frees an array returned by storage_list().  Accepts NULL. */
void storage_entries_free(storage_entry *entries, size_t count);

/* Fills *entry (name left NULL) for path; DX_ERR_NOT_FOUND if absent. */
dx_status storage_stat(storage *st, const char *path, storage_entry *entry);

/* Creates dir and its missing parents; existing folders are fine. */
dx_status storage_mkdirs(storage *st, const char *dir);

/*
 * Renames from to to, creating the parents of to.  Replaces an existing
 * file at to (POSIX rename semantics, also on SFTP).
 */
dx_status storage_rename(storage *st, const char *from, const char *to);

/* Removes a file; DX_ERR_NOT_FOUND if absent. */
dx_status storage_remove(storage *st, const char *path);

/*
 * Opens path for streaming reads.  On success *out is a new reader that the
 * caller closes with storage_reader_close().  Refuses symlinks.
 */
dx_status storage_reader_open(storage *st, const char *path, storage_reader **out);

/*
 * Reads up to cap bytes into buf; *got is 0 at end of file.  Memory stays
 * bounded whatever the file size.
 */
dx_status storage_read(storage_reader *rd, void *buf, size_t cap, size_t *got);

/* Closes and frees a reader.  Accepts NULL. */
void storage_reader_close(storage_reader *rd);

/*
 * Starts an atomic write of path (parents are created).  On success *out is
 * a new writer; the caller ends it with exactly one of storage_writer_commit()
 * or storage_writer_abort(), both of which free it.
 */
dx_status storage_writer_open(storage *st, const char *path, storage_writer **out);

dx_status storage_write(storage_writer *wr, const void *buf, size_t len);

/*
 * Flushes the temporary file to stable storage and renames it into place.
 * Frees wr whatever the outcome; on failure the temporary file is removed
 * and the target is untouched.
 */
dx_status storage_writer_commit(storage_writer *wr);

/*
 * Commits first, then second, as storage_writer_commit() on each would (each
 * file flushed under its temporary name, then renamed, first visible before
 * second), except that when both land in one local folder that folder is
 * synced once, after the second rename, instead of after each: one fsync
 * less per drop.  The cost is that a crash before that sync may keep either
 * new name or neither; the caller publishes and acknowledges nothing before
 * this returns, so the event is redelivered and the pair written again.
 * Frees both writers whatever the outcome.  *committed is how many were
 * renamed into place (0, 1: first only, which the caller removes again for
 * "no half result", or 2 on success).
 */
dx_status storage_writer_commit_pair(storage_writer *first, storage_writer *second, int *committed);

/* Removes the temporary file and frees wr.  Accepts NULL. */
void storage_writer_abort(storage_writer *wr);

/*
 * Renames the file name, as listed in folder dir, to to (as
 * storage_rename()).  name is one component taken from a listing, and may
 * hold what storage paths refuse (control characters, a backslash): this is
 * how a drop with such a name is moved out of the inbox.  dir and to are
 * checked as usual; name must not be empty, ".", ".." or hold a '/'.
 */
dx_status storage_rename_listed(storage *st, const char *dir, const char *name, const char *to);

/* True when path is a valid relative storage path (see above). */
int storage_path_valid(const char *path);

/*
 * True when path has the shape of a relative storage path (no leading '/',
 * no empty, "." or ".." component), whatever its bytes.  Backends check this
 * much themselves; the public functions above check storage_path_valid().
 */
int storage_path_shape_valid(const char *path);

/* ---- backend interface, for storage_file.c and storage_sftp.c ---- */

typedef struct storage_ops {
    const char *scheme; /* "file" or "sftp" */
    void (*destroy)(storage *st);
    dx_status (*ping)(storage *st);
    /* In any order: storage_list() sorts. */
    dx_status (*list)(storage *st, const char *dir, storage_entry **entries, size_t *count);
    dx_status (*stat)(storage *st, const char *path, storage_entry *entry);
    dx_status (*mkdirs)(storage *st, const char *dir);
    dx_status (*rename)(storage *st, const char *from, const char *to);
    dx_status (*remove)(storage *st, const char *path);
    dx_status (*reader_open)(storage *st, const char *path, storage_reader **out);
    dx_status (*read)(storage_reader *rd, void *buf, size_t cap, size_t *got);
    void (*reader_close)(storage_reader *rd);
    dx_status (*writer_open)(storage *st, const char *path, storage_writer **out);
    dx_status (*write)(storage_writer *wr, const void *buf, size_t len);
    dx_status (*writer_commit)(storage_writer *wr);
    /* Commits wr, whose commit next follows at once: may leave to next's
     * the sync of a folder they share.  NULL: writer_commit. */
    dx_status (*writer_commit_before)(storage_writer *wr, const storage_writer *next);
    void (*writer_abort)(storage_writer *wr);
} storage_ops;

/*
 * The common head of every backend's storage object: a backend allocates its
 * own struct whose first member is a `struct storage`, and likewise for
 * readers and writers (first member `struct storage_reader` / `_writer`).
 */
struct storage {
    const storage_ops *ops;
    char display_url[512];
    char last_error[256];
};

struct storage_reader {
    storage *owner;
};

struct storage_writer {
    storage *owner;
};

/* Records a one-line reason in st->last_error (printf-style). */
void storage_set_error(storage *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Backend constructors, called by storage_create() after parsing the URL. */
dx_status storage_file_create(storage **out, const char *root, char *err, size_t err_len);
dx_status storage_sftp_create(storage **out, const char *url, const config_sftp *sftp, char *err,
                              size_t err_len);
