#pragma once

/*
 * What the files of the sftp:// backend share, and nothing else includes:
 * storage_sftp.c (settings, creation and the storage operations),
 * storage_sftp_guard.c (the deadline watchdog), storage_sftp_conn.c (the
 * connection and its errors), storage_sftp_auth.c (host key and user
 * authentication), storage_sftp_path.c (path checks), storage_sftp_reader.c
 * and storage_sftp_writer.c.
 */

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <libssh/libssh.h>
#include <libssh/sftp.h>

#include "storage.h"

/*
 * Transfer sizes.  32 KiB is the request size every SFTP server must accept;
 * OpenSSH accepts up to 255 KiB (its limits@openssh.com), and larger requests
 * mean fewer round trips.  Reads keep READ_DEPTH requests in flight so that
 * the link stays busy while we wait for the oldest answer (4 MiB at most with
 * OpenSSH, 1 MiB elsewhere).  libssh 0.10 has no asynchronous write, so
 * writes go one request at a time, which the larger OpenSSH size offsets.
 */
#define CHUNK_ANY     (32 * 1024)
#define CHUNK_OPENSSH (128 * 1024)
#define READ_DEPTH    32

/* Temporary files left behind by a broken connection, removed after the
 * next successful connect. */
#define MAX_ORPHANS 16

typedef struct sftp_conn {
    ssh_session ssh;
    sftp_session sftp;
    unsigned refs;        /* the storage, plus each open reader and writer */
    int broken;           /* set on the first connection-level failure */
    int has_fsync;        /* fsync@openssh.com */
    int has_posix_rename; /* posix-rename@openssh.com */
    unsigned inflight;    /* read requests sent and not yet answered */
    uint32_t next_id;     /* ids of the requests we build ourselves */
    size_t chunk;         /* read and write request size */
    long timeout_ms;      /* how long one operation may wait for the server */
    /* The deadline guard (see storage_sftp_guard.c); guarded by guard_lock except
     * timed_out, which the watchdog sets and the owner reads. */
    struct sftp_conn *guard_next;
    int armed;
    int fd;
    int64_t deadline_ms;
    atomic_int timed_out;
} sftp_conn;

typedef struct sftp_storage {
    struct storage base;
    char *user;
    char *host;
    int port;
    char *root; /* absolute, no trailing '/' except for "/" itself */
    char *key_file;
    int key_file_set; /* SFTP_KEY_FILE given explicitly */
    char *password_file;
    char *known_hosts;
    int insecure;
    long timeout_s;
    sftp_conn *conn;
    char *orphans[MAX_ORPHANS];
    size_t orphan_count;
} sftp_storage;

typedef struct sftp_reader {
    struct storage_reader base;
    sftp_conn *conn;
    sftp_file file;
    char *path; /* relative, for messages */
    size_t chunk;
    int ids[READ_DEPTH]; /* ring of outstanding requests, oldest at head */
    uint64_t offsets[READ_DEPTH];
    size_t head;
    size_t pending;
    uint64_t next_offset; /* where the next request starts */
    int eof;              /* the end of the file was reached: ask no more */
    dx_status failed;
    unsigned char *buf; /* the answer being handed out */
    size_t pos;
    size_t len;
} sftp_reader;

typedef struct sftp_writer {
    struct storage_writer base;
    sftp_conn *conn;
    sftp_file file;
    char *path; /* relative, for messages */
    char *tmp_abs;
    char *final_abs;
    dx_status failed;
    unsigned char *buf;
    size_t len;
    size_t cap;
} sftp_writer;

/* storage_sftp.c */

/*
 * Renames from onto to (both absolute), replacing a file already at to;
 * rel names the file in messages.
 */
dx_status storage_sftp_rename_replace(sftp_storage *st, sftp_conn *c, const char *from,
                                      const char *to, const char *rel);

/* storage_sftp_guard.c */

/* Starts, or pushes back, the deadline of the operation running on c. */
void sftp_guard_arm(sftp_conn *c);
/* Ends the deadline of the operation running on c. */
void sftp_guard_disarm(sftp_conn *c);

/* storage_sftp_conn.c */

/*
 * Records the reason in the storage's last_error and logs it (a warning for
 * what a retry may fix, an error otherwise; a missing file is not logged).
 * Returns s.
 */
dx_status sftp_conn_fail(sftp_storage *st, dx_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The status for an SFTP status code. */
dx_status sftp_conn_status(int code);
/* True when the connection can no longer carry requests. */
int sftp_conn_dead(sftp_conn *c);
/* Marks c broken and fails the storage with a timeout or an I/O error. */
dx_status sftp_conn_lost(sftp_storage *st, sftp_conn *c, const char *what, const char *path);
/* Converts the failure of the libssh call just made on c. */
dx_status sftp_conn_fail_ssh(sftp_storage *st, sftp_conn *c, const char *what, const char *path);
/* Drops a reference on c, and frees it with the last one.  Accepts NULL. */
void sftp_conn_release(sftp_conn *c);
/*
 * The storage's connection (owned by st), opened if there is none or the
 * last one broke, with the deadline of the operation about to run on it
 * armed: the caller disarms it.  *fresh tells whether it was opened by this
 * call.
 */
dx_status sftp_conn_get(sftp_storage *st, sftp_conn **out, int *fresh);
/* Remembers a temporary file (copied) to remove after the next connect. */
void sftp_conn_add_orphan(sftp_storage *st, const char *path);

/*
 * Runs op on the storage's connection, under the operation's deadline.  When
 * op fails because a connection reused from an earlier call had gone stale,
 * it runs once more on a new one: only for operations that are safe to
 * repeat.
 */
#define WITH_CONN(st, c, call)                                                                     \
    do {                                                                                           \
        for (int attempt_ = 0;; attempt_++) {                                                      \
            int fresh_;                                                                            \
            dx_status s_ = sftp_conn_get((st), &(c), &fresh_);                                     \
            if (s_ != DX_OK)                                                                       \
                return s_;                                                                         \
            s_ = (call);                                                                           \
            sftp_guard_disarm(c);                                                                  \
            if (s_ == DX_OK || !(c)->broken || fresh_ || attempt_ > 0)                             \
                return s_;                                                                         \
        }                                                                                          \
    } while (0)

/* storage_sftp_auth.c */

/* Checks the server's host key against SFTP_KNOWN_HOSTS. */
dx_status sftp_auth_check_host_key(sftp_storage *st, sftp_conn *c);
/* Authenticates with the key, then the password when one is set. */
dx_status sftp_auth_login(sftp_storage *st, sftp_conn *c);

/* storage_sftp_path.c */

storage_kind sftp_path_kind(const sftp_attributes a);
/* Sets the kind, size and mtime of e (not its name) from a. */
void sftp_path_fill_entry(storage_entry *e, const sftp_attributes a);
/*
 * The absolute path of rel into *abs (malloc'd, caller frees), after
 * checking that no existing component is a symbolic link or a non-folder in
 * the middle; *existing (if not NULL) receives how many bytes of rel exist.
 */
dx_status sftp_path_resolve(sftp_storage *st, sftp_conn *c, const char *rel, char **abs,
                            size_t *existing);
/* Makes dir and its missing parents. */
dx_status sftp_path_mkdirs(sftp_storage *st, sftp_conn *c, const char *dir);
/* Makes the folder that holds path, if it is missing. */
dx_status sftp_path_make_parent(sftp_storage *st, sftp_conn *c, const char *path);

/* storage_sftp_reader.c: storage_ops of readers */

dx_status sftp_reader_open(storage *base, const char *path, storage_reader **out);
dx_status sftp_reader_read(storage_reader *base, void *buf, size_t cap, size_t *got);
void sftp_reader_close(storage_reader *base);

/* storage_sftp_writer.c: storage_ops of writers */

dx_status sftp_writer_open(storage *base, const char *path, storage_writer **out);
dx_status sftp_writer_write(storage_writer *base, const void *buf, size_t len);
dx_status sftp_writer_commit(storage_writer *base);
void sftp_writer_abort(storage_writer *base);
