/*
 * The sftp:// backend: a folder on an SFTP server, through libssh.
 *
 * URL: sftp://USER@HOST[:PORT]/PATH, PATH absolute on the server.  Settings
 * come from the environment when the storage is created:
 *
 *   SFTP_KEY_FILE                private key (default /var/openfaas/secrets/sftp-key)
 *   SFTP_PASSWORD_FILE           optional: passphrase of the key, and password
 *                                authentication when the key is refused
 *   SFTP_KNOWN_HOSTS             OpenSSH known_hosts (default
 *                                /var/openfaas/secrets/sftp-known-hosts)
 *   SFTP_INSECURE_SKIP_HOST_KEY  "1" skips the host key check, with a warning
 *                                at every connection
 *   SFTP_TIMEOUT_SECONDS         connect timeout, keepalive, and how long any
 *                                one operation may wait for the server
 *                                (default 10)
 *
 * The files named there are read at every connection, so rotated secrets are
 * picked up without a restart, and their contents never reach a log line or
 * an error message.
 *
 * One SSH connection per storage, opened lazily on first use and reused.  An
 * operation that finds the connection broken marks it so, and the next
 * operation opens a new one; metadata operations that fail on a connection
 * that went stale while idle are tried once more on a fresh one, but a read
 * or a write in the middle of a file is never retried here: the caller
 * retries the whole event.  Readers and writers hold a reference on the
 * connection they were opened on, so a reconnect never frees a session under
 * them.
 *
 * Like storage_file.c, every path is resolved one component at a time with
 * lstat and a symbolic link on the way is refused: the SFTP server follows
 * links, and a client could plant one in its own folder.
 */
#include "storage.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libssh/libssh.h>
#include <libssh/sftp.h>

#include "log.h"
#include "metrics.h"
#include "util.h"

#define DEFAULT_KEY_FILE    "/var/openfaas/secrets/sftp-key"
#define DEFAULT_KNOWN_HOSTS "/var/openfaas/secrets/sftp-known-hosts"
#define DEFAULT_TIMEOUT_S   10

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
    /* The deadline guard (see "deadlines"); guarded by guard_lock except
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

static const storage_ops sftp_ops;

/* ---- deadlines ---------------------------------------------------------- */

/*
 * libssh 0.10 bounds ssh_connect() by SSH_OPTIONS_TIMEOUT, but not the SFTP
 * calls after it: they wait for each answer with ssh_channel_read() and no
 * timeout, and a non-blocking sftp_file only checks that some bytes arrived
 * before it blocks for the rest of the packet.  A server that keeps the
 * connection open but stops answering (its process stopped, a hung disk)
 * would hold the call, and the worker, for ever.  So every operation runs
 * under a deadline, pushed back each time it makes progress: one watchdog
 * thread per process shuts down the socket of an operation that overran it,
 * which ends libssh's wait with an error; the operation then reports a
 * timeout and the connection is dropped.  shutdown() leaves the descriptor
 * open, and the watchdog acts only on connections armed under its lock, so
 * it never touches a descriptor that was closed and reused.
 */
static pthread_mutex_t guard_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t guard_wake;
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;
static int guard_running;
static sftp_conn *guard_list; /* armed connections */

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *guard_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&guard_lock);
    for (;;) {
        int64_t now = mono_ms(), next = INT64_MAX;

        for (sftp_conn **p = &guard_list; *p != NULL;) {
            sftp_conn *c = *p;

            if (c->deadline_ms <= now) {
                atomic_store(&c->timed_out, 1);
                shutdown(c->fd, SHUT_RDWR);
                c->armed = 0;
                *p = c->guard_next;
                continue;
            }
            if (c->deadline_ms < next)
                next = c->deadline_ms;
            p = &c->guard_next;
        }
        if (next == INT64_MAX) {
            pthread_cond_wait(&guard_wake, &guard_lock);
        } else {
            struct timespec ts = {.tv_sec = next / 1000, .tv_nsec = (next % 1000) * 1000000};

            pthread_cond_timedwait(&guard_wake, &guard_lock, &ts);
        }
    }
    return NULL;
}

static void guard_start(void)
{
    pthread_condattr_t attr;
    pthread_t thread;
    sigset_t all, old;

    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&guard_wake, &attr);
    pthread_condattr_destroy(&attr);
    /* Signals stay with the worker's own threads. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (pthread_create(&thread, NULL, guard_main, NULL) == 0) {
        pthread_detach(thread);
        guard_running = 1;
    } else {
        log_printf(LOG_LEVEL_ERROR, NULL,
                   "storage sftp: cannot start the timeout watchdog: SFTP operations are "
                   "not bounded by SFTP_TIMEOUT_SECONDS");
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Starts, or pushes back, the deadline of the operation running on c. */
static void guard_arm(sftp_conn *c)
{
    pthread_once(&guard_once, guard_start);
    pthread_mutex_lock(&guard_lock);
    if (guard_running && !atomic_load(&c->timed_out)) {
        c->deadline_ms = mono_ms() + c->timeout_ms;
        if (!c->armed) {
            c->fd = ssh_get_fd(c->ssh);
            if (c->fd >= 0) {
                c->guard_next = guard_list;
                guard_list = c;
                c->armed = 1;
                pthread_cond_signal(&guard_wake);
            }
        }
    }
    pthread_mutex_unlock(&guard_lock);
}

/* Ends the deadline of the operation running on c. */
static void guard_disarm(sftp_conn *c)
{
    pthread_mutex_lock(&guard_lock);
    if (c->armed) {
        for (sftp_conn **p = &guard_list; *p != NULL; p = &(*p)->guard_next) {
            if (*p == c) {
                *p = c->guard_next;
                break;
            }
        }
        c->armed = 0;
    }
    pthread_mutex_unlock(&guard_lock);
}

/* ---- errors ------------------------------------------------------------- */

static dx_status fail(sftp_storage *st, dx_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Records the reason in last_error and logs it: a warning for what a retry
 * may fix, an error otherwise.  A missing file is an answer, not a failure,
 * and is not logged.
 */
static dx_status fail(sftp_storage *st, dx_status s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(st->base.last_error, sizeof(st->base.last_error), fmt, ap);
    va_end(ap);
    if (s != DX_ERR_NOT_FOUND)
        log_printf(status_is_transient(s) ? LOG_LEVEL_WARN : LOG_LEVEL_ERROR, NULL,
                   "storage %s: %s (%s)", st->base.display_url, st->base.last_error,
                   status_text(s));
    return s;
}

static dx_status status_from_sftp(int code)
{
    switch (code) {
    case SSH_FX_NO_SUCH_FILE:
    case SSH_FX_NO_SUCH_PATH:
        return DX_ERR_NOT_FOUND;
    case SSH_FX_FILE_ALREADY_EXISTS:
        return DX_ERR_EXISTS;
    case SSH_FX_WRITE_PROTECT:
    case SSH_FX_NO_MEDIA:
        return DX_ERR_NO_SPACE;
    case SSH_FX_OP_UNSUPPORTED:
        return DX_ERR_PERMANENT;
    default:
        return DX_ERR_IO;
    }
}

/* True when the connection can no longer carry requests. */
static int conn_dead(sftp_conn *c)
{
    if (c->broken || atomic_load(&c->timed_out))
        return 1;
    if (!ssh_is_connected(c->ssh) || ssh_get_error_code(c->ssh) == SSH_FATAL)
        return 1;
    if (c->sftp != NULL &&
        (!ssh_channel_is_open(c->sftp->channel) || ssh_channel_is_eof(c->sftp->channel)))
        return 1;
    return 0;
}

static dx_status lost(sftp_storage *st, sftp_conn *c, const char *what, const char *path)
{
    const char *msg = ssh_get_error(c->ssh);

    c->broken = 1;
    if (atomic_load(&c->timed_out)) {
        metrics_add("dx_sftp_errors_total", "timeout", 1);
        return fail(st, DX_ERR_TIMEOUT,
                    "%s %s: no answer from the SFTP server in %lds, connection dropped", what,
                    path[0] ? path : "(root)", st->timeout_s);
    }
    metrics_add("dx_sftp_errors_total", strstr(msg, "imeout") ? "timeout" : "io", 1);
    return fail(st, strstr(msg, "imeout") ? DX_ERR_TIMEOUT : DX_ERR_IO,
                "%s %s: connection to the SFTP server lost: %s", what, path[0] ? path : "(root)",
                msg);
}

/* Converts the failure of the libssh call just made on c. */
static dx_status fail_ssh(sftp_storage *st, sftp_conn *c, const char *what, const char *path)
{
    if (conn_dead(c))
        return lost(st, c, what, path);
    return fail(st, status_from_sftp(sftp_get_error(c->sftp)), "%s %s: %s", what,
                path[0] ? path : "(root)", ssh_get_error(c->ssh));
}

/* ---- small helpers ------------------------------------------------------ */

static char *join(const char *root, const char *rel)
{
    char *out = NULL;

    if (rel[0] == '\0')
        return strdup(root);
    if (asprintf(&out, "%s/%s", strcmp(root, "/") == 0 ? "" : root, rel) < 0)
        return NULL;
    return out;
}

static storage_kind kind_of(const sftp_attributes a)
{
    uint32_t type = a->type;

    if (a->flags & SSH_FILEXFER_ATTR_PERMISSIONS) {
        switch (a->permissions & SSH_S_IFMT) {
        case SSH_S_IFREG:
            type = SSH_FILEXFER_TYPE_REGULAR;
            break;
        case SSH_S_IFDIR:
            type = SSH_FILEXFER_TYPE_DIRECTORY;
            break;
        default:
            type = SSH_FILEXFER_TYPE_SPECIAL;
            break;
        }
    }
    if (type == SSH_FILEXFER_TYPE_REGULAR)
        return STORAGE_FILE;
    if (type == SSH_FILEXFER_TYPE_DIRECTORY)
        return STORAGE_DIR;
    return STORAGE_OTHER;
}

static void fill_entry(storage_entry *e, const sftp_attributes a)
{
    e->kind = kind_of(a);
    e->size = a->size;
    e->mtime = a->mtime64 ? (int64_t)a->mtime64 : (int64_t)a->mtime;
}

/* Reads a one-line secret file; the caller wipes and frees it. */
static dx_status read_secret(sftp_storage *st, const char *var, const char *path, char **out)
{
    FILE *f = fopen(path, "re");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    if (f == NULL)
        return fail(st, DX_ERR_PERMANENT, "cannot read %s (%s): %s", var, path, strerror(errno));
    n = getline(&line, &cap, f);
    fclose(f);
    if (n < 0) {
        free(line);
        line = strdup("");
        if (line == NULL)
            return DX_ERR_NOMEM;
        n = 0;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    *out = line;
    return DX_OK;
}

static void free_secret(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/*
 * Keepalive probes turn a peer that vanished without closing the connection
 * (a network partition, a node that died) into a socket error instead of a
 * read that waits for ever.
 */
static void set_keepalive(ssh_session ssh, long timeout_s)
{
    socket_t fd = ssh_get_fd(ssh);
    int on = 1, idle = (int)timeout_s, intvl = 5, cnt = 3;

    if (fd < 0)
        return;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

/* ---- connection --------------------------------------------------------- */

static void conn_release(sftp_conn *c)
{
    if (c == NULL || --c->refs > 0)
        return;
    guard_disarm(c);
    if (c->sftp != NULL)
        sftp_free(c->sftp);
    if (c->ssh != NULL) {
        ssh_disconnect(c->ssh);
        ssh_free(c->ssh);
    }
    free(c);
}

/* "SHA256:..." of the server's host key, or NULL; free with ssh_string_free_char. */
static char *server_fingerprint(ssh_session ssh, const char **type)
{
    ssh_key key = NULL;
    unsigned char *hash = NULL;
    size_t hash_len = 0;
    char *fp = NULL;

    *type = "unknown";
    if (ssh_get_server_publickey(ssh, &key) != SSH_OK)
        return NULL;
    *type = ssh_key_type_to_char(ssh_key_type(key));
    if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hash_len) == SSH_OK) {
        fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hash_len);
        ssh_clean_pubkey_hash(&hash);
    }
    ssh_key_free(key);
    if (*type == NULL)
        *type = "unknown";
    return fp;
}

static dx_status check_host_key(sftp_storage *st, sftp_conn *c)
{
    const char *type;
    char *fp = server_fingerprint(c->ssh, &type);
    const char *shown = fp ? fp : "(no fingerprint)";
    dx_status s = DX_OK;

    if (st->insecure) {
        log_printf(LOG_LEVEL_WARN, NULL,
                   "storage %s: SFTP_INSECURE_SKIP_HOST_KEY=1: host key of %s:%d NOT verified "
                   "(server offers %s %s)",
                   st->base.display_url, st->host, st->port, type, shown);
        ssh_string_free_char(fp);
        return DX_OK;
    }
    switch (ssh_session_is_known_server(c->ssh)) {
    case SSH_KNOWN_HOSTS_OK:
        break;
    case SSH_KNOWN_HOSTS_CHANGED:
    case SSH_KNOWN_HOSTS_OTHER:
        s = fail(st, DX_ERR_PERMANENT,
                 "host key of %s:%d does not match SFTP_KNOWN_HOSTS (%s): server offers %s %s; "
                 "refusing to connect",
                 st->host, st->port, st->known_hosts, type, shown);
        break;
    case SSH_KNOWN_HOSTS_UNKNOWN:
    case SSH_KNOWN_HOSTS_NOT_FOUND:
        s = fail(st, DX_ERR_PERMANENT,
                 "host %s:%d is not in SFTP_KNOWN_HOSTS (%s): server offers %s %s; "
                 "refusing to connect",
                 st->host, st->port, st->known_hosts, type, shown);
        break;
    default:
        s = fail(st, DX_ERR_PERMANENT, "cannot check the host key of %s:%d against %s: %s",
                 st->host, st->port, st->known_hosts, ssh_get_error(c->ssh));
        break;
    }
    ssh_string_free_char(fp);
    return s;
}

static dx_status authenticate(sftp_storage *st, sftp_conn *c)
{
    char *password = NULL;
    ssh_key key = NULL;
    const char *methods = "publickey";
    dx_status s = DX_OK;
    int rc = SSH_AUTH_DENIED;

    if (st->password_file != NULL) {
        s = read_secret(st, "SFTP_PASSWORD_FILE", st->password_file, &password);
        if (s != DX_OK)
            return s;
    }
    rc = ssh_pki_import_privkey_file(st->key_file, password, NULL, NULL, &key);
    if (rc != SSH_OK) {
        key = NULL;
        /* Without an explicit key file, a password alone is fine. */
        if (rc != SSH_EOF || st->key_file_set || password == NULL) {
            s = fail(st, DX_ERR_PERMANENT, "cannot load the private key SFTP_KEY_FILE (%s): %s",
                     st->key_file,
                     rc == SSH_EOF ? "missing or unreadable"
                                   : "not a private key, or a wrong passphrase");
            goto out;
        }
    }
    rc = SSH_AUTH_DENIED;
    if (key != NULL)
        rc = ssh_userauth_publickey(c->ssh, NULL, key);
    if ((rc == SSH_AUTH_DENIED || rc == SSH_AUTH_PARTIAL) && password != NULL) {
        methods = key != NULL ? "publickey, password" : "password";
        rc = ssh_userauth_password(c->ssh, NULL, password);
    }
    switch (rc) {
    case SSH_AUTH_SUCCESS:
        break;
    case SSH_AUTH_ERROR:
        s = lost(st, c, "authenticate", st->user);
        break;
    default:
        s = fail(st, DX_ERR_PERMANENT, "authentication of user %s on %s:%d refused (tried %s)",
                 st->user, st->host, st->port, methods);
        break;
    }
out:
    ssh_key_free(key);
    free_secret(password);
    return s;
}

static void clean_orphans(sftp_storage *st, sftp_conn *c)
{
    size_t kept = 0;

    for (size_t i = 0; i < st->orphan_count; i++) {
        char *path = st->orphans[i];

        if (sftp_unlink(c->sftp, path) == 0 || sftp_get_error(c->sftp) == SSH_FX_NO_SUCH_FILE) {
            free(path);
        } else if (conn_dead(c)) {
            st->orphans[kept++] = path;
        } else {
            log_printf(LOG_LEVEL_WARN, NULL, "storage %s: cannot remove temporary file %s: %s",
                       st->base.display_url, path, ssh_get_error(c->ssh));
            free(path);
        }
    }
    st->orphan_count = kept;
}

static void add_orphan(sftp_storage *st, const char *path)
{
    char *copy = strdup(path);

    if (copy == NULL)
        return;
    if (st->orphan_count == MAX_ORPHANS) {
        log_printf(LOG_LEVEL_WARN, NULL, "storage %s: temporary file %s left behind",
                   st->base.display_url, st->orphans[0]);
        free(st->orphans[0]);
        memmove(st->orphans, st->orphans + 1, (MAX_ORPHANS - 1) * sizeof(st->orphans[0]));
        st->orphan_count--;
    }
    st->orphans[st->orphan_count++] = copy;
}

static dx_status conn_open(sftp_storage *st, sftp_conn **out)
{
    sftp_conn *c = calloc(1, sizeof(*c));
    bool no = false;
    int verbosity = SSH_LOG_NOLOG;
    int nodelay = 1; /* request/answer traffic: Nagle's delay costs 40 ms a write */
    dx_status s = DX_OK;

    if (c == NULL)
        return DX_ERR_NOMEM;
    c->refs = 1;
    c->next_id = 0x80000000u;
    c->timeout_ms = st->timeout_s * 1000;
    c->ssh = ssh_new();
    if (c->ssh == NULL) {
        s = DX_ERR_NOMEM;
        goto out;
    }
    /* Only our settings: no ~/.ssh/config, no ~/.ssh/known_hosts, no
     * /etc/ssh/ssh_known_hosts. */
    if (ssh_options_set(c->ssh, SSH_OPTIONS_PROCESS_CONFIG, &no) < 0 ||
        ssh_options_set(c->ssh, SSH_OPTIONS_LOG_VERBOSITY, &verbosity) < 0 ||
        ssh_options_set(c->ssh, SSH_OPTIONS_HOST, st->host) < 0 ||
        ssh_options_set(c->ssh, SSH_OPTIONS_PORT, &st->port) < 0 ||
        ssh_options_set(c->ssh, SSH_OPTIONS_USER, st->user) < 0 ||
        ssh_options_set(c->ssh, SSH_OPTIONS_TIMEOUT, &st->timeout_s) < 0 ||
        ssh_options_set(c->ssh, SSH_OPTIONS_NODELAY, &nodelay) < 0 ||
        ssh_options_set(c->ssh, SSH_OPTIONS_KNOWNHOSTS,
                        st->insecure ? "/dev/null" : st->known_hosts) < 0 ||
        ssh_options_set(c->ssh, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null") < 0) {
        s = fail(st, DX_ERR_INVALID, "bad SFTP settings: %s", ssh_get_error(c->ssh));
        goto out;
    }
    if (!st->insecure) {
        FILE *f = fopen(st->known_hosts, "re");

        if (f == NULL) {
            s = fail(st, DX_ERR_PERMANENT, "cannot read SFTP_KNOWN_HOSTS (%s): %s", st->known_hosts,
                     strerror(errno));
            goto out;
        }
        fclose(f);
    }
    if (ssh_connect(c->ssh) != SSH_OK) {
        const char *msg = ssh_get_error(c->ssh);

        metrics_add("dx_sftp_errors_total", strstr(msg, "imeout") ? "timeout" : "connect", 1);
        s = fail(st, strstr(msg, "imeout") ? DX_ERR_TIMEOUT : DX_ERR_IO, "connect to %s:%d: %s",
                 st->host, st->port, msg);
        goto out;
    }
    set_keepalive(c->ssh, st->timeout_s);
    /* From here on libssh no longer bounds its waits: the callers disarm. */
    guard_arm(c);
    s = check_host_key(st, c);
    if (s != DX_OK) {
        metrics_add("dx_sftp_errors_total", "host_key", 1);
        goto out;
    }
    s = authenticate(st, c);
    if (s != DX_OK) {
        metrics_add("dx_sftp_errors_total", "auth", 1);
        goto out;
    }
    c->sftp = sftp_new(c->ssh);
    if (c->sftp == NULL) {
        s = ssh_get_error_code(c->ssh) == SSH_REQUEST_DENIED
                ? fail(st, DX_ERR_PERMANENT, "the server refused the sftp subsystem: %s",
                       ssh_get_error(c->ssh))
                : lost(st, c, "start sftp on", st->host);
        goto out;
    }
    if (sftp_init(c->sftp) != 0) {
        s = lost(st, c, "start sftp on", st->host);
        goto out;
    }
    c->has_fsync = sftp_extension_supported(c->sftp, "fsync@openssh.com", "1");
    c->has_posix_rename = sftp_extension_supported(c->sftp, "posix-rename@openssh.com", "1");
    c->chunk = ssh_get_openssh_version(c->ssh) > 0 ? CHUNK_OPENSSH : CHUNK_ANY;
out:
    if (s != DX_OK) {
        conn_release(c);
        return s;
    }
    *out = c;
    return DX_OK;
}

/*
 * The storage's connection, opened if there is none or the last one broke,
 * with the deadline of the operation about to run on it armed: the caller
 * disarms it.  *fresh tells whether it was opened by this call.
 */
static dx_status conn_get(sftp_storage *st, sftp_conn **out, int *fresh)
{
    dx_status s;

    if (st->conn != NULL && conn_dead(st->conn)) {
        conn_release(st->conn);
        st->conn = NULL;
    }
    *fresh = st->conn == NULL;
    if (st->conn == NULL) {
        s = conn_open(st, &st->conn);
        if (s != DX_OK)
            return s;
    }
    guard_arm(st->conn);
    if (st->orphan_count > 0)
        clean_orphans(st, st->conn);
    *out = st->conn;
    return DX_OK;
}

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
            dx_status s_ = conn_get((st), &(c), &fresh_);                                          \
            if (s_ != DX_OK)                                                                       \
                return s_;                                                                         \
            s_ = (call);                                                                           \
            guard_disarm(c);                                                                       \
            if (s_ == DX_OK || !(c)->broken || fresh_ || attempt_ > 0)                             \
                return s_;                                                                         \
        }                                                                                          \
    } while (0)

/* ---- paths -------------------------------------------------------------- */

/*
 * Builds the absolute path of rel into *abs (malloc'd) after checking, one
 * lstat per component, that no existing component is a symbolic link or a
 * non-folder in the middle.  *existing (if not NULL) receives how many bytes
 * of rel exist on the server; missing trailing components are fine.
 */
static dx_status resolve(sftp_storage *st, sftp_conn *c, const char *rel, char **abs,
                         size_t *existing)
{
    size_t root_len = strcmp(st->root, "/") == 0 ? 0 : strlen(st->root);
    char *path;
    dx_status s = DX_OK;

    /* The public functions checked rel's characters (storage_path_valid),
     * except the listed name storage_rename_listed() passes through. */
    if (!storage_path_shape_valid(rel))
        return fail(st, DX_ERR_INVALID, "invalid storage path");
    path = join(st->root, rel);
    if (path == NULL)
        return DX_ERR_NOMEM;
    if (existing != NULL)
        *existing = 0;
    if (rel[0] == '\0')
        goto out;
    for (char *p = path + root_len + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        sftp_attributes a;

        *p = '\0';
        guard_arm(c);
        a = sftp_lstat(c->sftp, path);
        *p = saved;
        if (a == NULL) {
            if (!conn_dead(c) && status_from_sftp(sftp_get_error(c->sftp)) == DX_ERR_NOT_FOUND)
                goto out;
            s = fail_ssh(st, c, "stat", rel);
            goto out;
        }
        storage_kind kind = kind_of(a);

        sftp_attributes_free(a);
        if (kind == STORAGE_OTHER) {
            s = fail(st, DX_ERR_INVALID, "refusing symbolic link or special file in path %s", rel);
            goto out;
        }
        if (existing != NULL)
            *existing = (size_t)(p - (path + root_len + 1));
        if (saved == '\0')
            goto out;
        if (kind != STORAGE_DIR) {
            s = fail(st, DX_ERR_NOT_FOUND, "path %s: a component is not a folder", rel);
            goto out;
        }
    }
out:
    if (s != DX_OK) {
        free(path);
        return s;
    }
    *abs = path;
    return DX_OK;
}

/* ---- storage operations ------------------------------------------------- */

static void sftp_storage_destroy(storage *base)
{
    sftp_storage *st = (sftp_storage *)base;

    conn_release(st->conn);
    for (size_t i = 0; i < st->orphan_count; i++)
        free(st->orphans[i]);
    free(st->user);
    free(st->host);
    free(st->root);
    free(st->key_file);
    free(st->password_file);
    free(st->known_hosts);
    free(st);
}

static dx_status do_ping(sftp_storage *st, sftp_conn *c)
{
    sftp_attributes a = sftp_stat(c->sftp, st->root);
    storage_kind kind;

    if (a == NULL)
        return fail_ssh(st, c, "stat", "");
    kind = kind_of(a);
    sftp_attributes_free(a);
    if (kind != STORAGE_DIR)
        return fail(st, DX_ERR_INVALID, "storage root %s is not a folder", st->root);
    return DX_OK;
}

static dx_status sftp_storage_ping(storage *base)
{
    sftp_storage *st = (sftp_storage *)base;
    sftp_conn *c;

    WITH_CONN(st, c, do_ping(st, c));
}

static int compare_entries(const void *a, const void *b)
{
    return strcmp(((const storage_entry *)a)->name, ((const storage_entry *)b)->name);
}

static dx_status do_list(sftp_storage *st, sftp_conn *c, const char *dir, storage_entry **entries,
                         size_t *count)
{
    char *abs = NULL;
    sftp_dir d = NULL;
    storage_entry *list = NULL;
    size_t n = 0, cap = 0;
    dx_status s = resolve(st, c, dir, &abs, NULL);

    if (s != DX_OK)
        return s;
    d = sftp_opendir(c->sftp, abs);
    if (d == NULL) {
        s = fail_ssh(st, c, "list", dir);
        goto out;
    }
    for (;;) {
        sftp_attributes a;

        guard_arm(c);
        a = sftp_readdir(c->sftp, d);

        if (a == NULL) {
            if (!sftp_dir_eof(d))
                s = fail_ssh(st, c, "list", dir);
            break;
        }
        if (a->name == NULL || strcmp(a->name, ".") == 0 || strcmp(a->name, "..") == 0) {
            sftp_attributes_free(a);
            continue;
        }
        if (n == cap) {
            size_t new_cap = cap ? cap * 2 : 16;
            storage_entry *grown = realloc(list, new_cap * sizeof(*grown));

            if (grown == NULL) {
                sftp_attributes_free(a);
                s = DX_ERR_NOMEM;
                break;
            }
            list = grown;
            cap = new_cap;
        }
        list[n].name = strdup(a->name);
        fill_entry(&list[n], a);
        sftp_attributes_free(a);
        if (list[n].name == NULL) {
            s = DX_ERR_NOMEM;
            break;
        }
        n++;
    }
out:
    if (d != NULL)
        sftp_closedir(d); /* frees the handle even when the connection is gone */
    free(abs);
    if (s != DX_OK) {
        storage_entries_free(list, n);
        return s;
    }
    if (n > 1)
        qsort(list, n, sizeof(*list), compare_entries);
    *entries = list;
    *count = n;
    return DX_OK;
}

static dx_status sftp_storage_list(storage *base, const char *dir, storage_entry **entries,
                                   size_t *count)
{
    sftp_storage *st = (sftp_storage *)base;
    sftp_conn *c;

    WITH_CONN(st, c, do_list(st, c, dir, entries, count));
}

static dx_status do_stat(sftp_storage *st, sftp_conn *c, const char *path, storage_entry *entry)
{
    char *abs = NULL;
    sftp_attributes a;
    dx_status s = resolve(st, c, path, &abs, NULL);

    if (s != DX_OK)
        return s;
    a = sftp_lstat(c->sftp, abs);
    free(abs);
    if (a == NULL)
        return fail_ssh(st, c, "stat", path);
    entry->name = NULL;
    fill_entry(entry, a);
    sftp_attributes_free(a);
    return DX_OK;
}

static dx_status sftp_storage_stat(storage *base, const char *path, storage_entry *entry)
{
    sftp_storage *st = (sftp_storage *)base;
    sftp_conn *c;

    WITH_CONN(st, c, do_stat(st, c, path, entry));
}

static dx_status do_mkdirs(sftp_storage *st, sftp_conn *c, const char *dir)
{
    char *abs = NULL;
    size_t existing = 0;
    size_t root_len = strcmp(st->root, "/") == 0 ? 0 : strlen(st->root);
    dx_status s = resolve(st, c, dir, &abs, &existing);

    if (s != DX_OK)
        return s;
    if (dir[existing] == '\0')
        goto out; /* all there already */
    for (char *p = abs + root_len + 1 + existing + (existing ? 1 : 0);; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;

        *p = '\0';
        guard_arm(c);
        if (sftp_mkdir(c->sftp, abs, 0755) != 0) {
            /* Someone else may have just made it. */
            sftp_attributes a = conn_dead(c) ? NULL : sftp_lstat(c->sftp, abs);
            int is_dir = a != NULL && kind_of(a) == STORAGE_DIR;

            sftp_attributes_free(a);
            if (!is_dir) {
                *p = saved;
                s = fail_ssh(st, c, "mkdir", dir);
                goto out;
            }
        }
        *p = saved;
        if (saved == '\0')
            break;
    }
out:
    free(abs);
    return s;
}

static dx_status sftp_storage_mkdirs(storage *base, const char *dir)
{
    sftp_storage *st = (sftp_storage *)base;
    sftp_conn *c;

    WITH_CONN(st, c, do_mkdirs(st, c, dir));
}

static dx_status make_parent(sftp_storage *st, sftp_conn *c, const char *path)
{
    const char *slash = strrchr(path, '/');
    char *parent;
    dx_status s;

    if (slash == NULL)
        return DX_OK;
    parent = strndup(path, (size_t)(slash - path));
    if (parent == NULL)
        return DX_ERR_NOMEM;
    s = do_mkdirs(st, c, parent);
    free(parent);
    return s;
}

static void put_u32(unsigned char **p, uint32_t v)
{
    (*p)[0] = (unsigned char)(v >> 24);
    (*p)[1] = (unsigned char)(v >> 16);
    (*p)[2] = (unsigned char)(v >> 8);
    (*p)[3] = (unsigned char)v;
    *p += 4;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void put_string(unsigned char **p, const char *s, size_t len)
{
    put_u32(p, (uint32_t)len);
    memcpy(*p, s, len);
    *p += len;
}

/* Reads exactly len bytes of the SFTP channel: 0, or -1 (connection marked broken). */
static int channel_read_full(sftp_storage *st, sftp_conn *c, void *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        int n = ssh_channel_read_timeout(c->sftp->channel, (char *)buf + got, (uint32_t)(len - got),
                                         0, (int)st->timeout_s * 1000);

        if (n < 0 || (n == 0 && ssh_channel_is_eof(c->sftp->channel)))
            return -1;
        if (n == 0) {
            /* The stream is now out of step with libssh: never reuse it. */
            c->broken = 1;
            return -2;
        }
        got += (size_t)n;
    }
    return 0;
}

/*
 * posix-rename@openssh.com: rename(2) on the server, which atomically
 * replaces the target.  libssh 0.11 sends it from sftp_rename(); 0.10 only
 * sends the plain SSH_FXP_RENAME, which OpenSSH refuses when the target
 * exists, and has no call for extended requests.  So the request is written
 * on the SFTP channel here and its status read back, which is sound only
 * when no other request is waiting for an answer (the caller checks
 * c->inflight): between libssh calls the channel stands at a packet boundary
 * and the next reply is ours.
 */
static dx_status posix_rename(sftp_storage *st, sftp_conn *c, const char *from, const char *to,
                              const char *rel)
{
    static const char ext[] = "posix-rename@openssh.com";
    size_t from_len = strlen(from), to_len = strlen(to);
    size_t body = 1 + 4 + 4 + (sizeof(ext) - 1) + 4 + from_len + 4 + to_len;
    uint32_t id = c->next_id++;
    unsigned char head[4];
    unsigned char *pkt, *p, *reply = NULL;
    uint32_t reply_len, code;
    dx_status s = DX_OK;
    int rc;

    if (from_len > 65536 || to_len > 65536)
        return fail(st, DX_ERR_INVALID, "rename %s: path too long", rel);
    pkt = malloc(4 + body);
    if (pkt == NULL)
        return DX_ERR_NOMEM;
    p = pkt;
    put_u32(&p, (uint32_t)body);
    *p++ = SSH_FXP_EXTENDED;
    put_u32(&p, id);
    put_string(&p, ext, sizeof(ext) - 1);
    put_string(&p, from, from_len);
    put_string(&p, to, to_len);
    rc = ssh_channel_write(c->sftp->channel, pkt, (uint32_t)(4 + body));
    free(pkt);
    if (rc != (int)(4 + body))
        return lost(st, c, "rename", rel);
    rc = channel_read_full(st, c, head, sizeof(head));
    if (rc == 0) {
        reply_len = get_u32(head);
        /* type, id, code, then the message string */
        if (reply_len < 9 || reply_len > 65536) {
            rc = -1;
        } else if ((reply = malloc(reply_len)) == NULL) {
            return DX_ERR_NOMEM;
        } else {
            rc = channel_read_full(st, c, reply, reply_len);
        }
    }
    if (rc == -1 && atomic_load(&c->timed_out)) {
        free(reply);
        return lost(st, c, "rename", rel);
    }
    if (rc == -2) {
        free(reply);
        metrics_add("dx_sftp_errors_total", "timeout", 1);
        return fail(st, DX_ERR_TIMEOUT, "rename %s: no answer from the SFTP server in %lds", rel,
                    st->timeout_s);
    }
    if (rc != 0 || reply[0] != SSH_FXP_STATUS || get_u32(reply + 1) != id) {
        free(reply);
        c->broken = 1;
        return fail(st, DX_ERR_IO, "rename %s: connection to the SFTP server lost or out of step",
                    rel);
    }
    code = get_u32(reply + 5);
    if (code != SSH_FX_OK) {
        uint32_t msg_len = reply_len >= 13 ? get_u32(reply + 9) : 0;
        int shown = msg_len <= reply_len - 13 && msg_len < 200 ? (int)msg_len : 0;

        s = fail(st, status_from_sftp((int)code), "rename %s: SFTP server: %.*s (status %u)", rel,
                 shown, shown ? (const char *)reply + 13 : "", (unsigned)code);
    }
    free(reply);
    return s;
}

/*
 * Renames from onto to, replacing a file already at to, both absolute.
 * With posix-rename@openssh.com (and nothing in flight) the replacement is
 * atomic.  Otherwise the plain rename is tried first; when it fails because
 * to exists, the old file is moved aside, the new one moved in, and the old
 * one removed: a reader may briefly find no file, but never a partial one,
 * and the old file comes back if the second step fails.
 */
static dx_status rename_replace(sftp_storage *st, sftp_conn *c, const char *from, const char *to,
                                const char *rel)
{
    sftp_attributes a;
    char *aside = NULL;
    char token[17];
    const char *slash;
    dx_status s;
    int code;
    char msg[160];

#if LIBSSH_VERSION_INT < SSH_VERSION_INT(0, 11, 0)
    if (c->has_posix_rename && c->inflight == 0)
        return posix_rename(st, c, from, to, rel);
#endif
    if (sftp_rename(c->sftp, from, to) == 0)
        return DX_OK;
    if (conn_dead(c))
        return lost(st, c, "rename", rel);
    code = sftp_get_error(c->sftp);
    snprintf(msg, sizeof(msg), "%s", ssh_get_error(c->ssh));
    a = sftp_lstat(c->sftp, to);
    if (a == NULL || kind_of(a) != STORAGE_FILE) {
        sftp_attributes_free(a);
        if (conn_dead(c))
            return lost(st, c, "rename", rel);
        return fail(st, status_from_sftp(code), "rename %s: %s", rel, msg);
    }
    sftp_attributes_free(a);
    slash = strrchr(to, '/');
    util_random_hex(token, sizeof(token));
    if (asprintf(&aside, "%.*s.%s.old-%s", (int)(slash - to + 1), to, slash + 1, token) < 0)
        return DX_ERR_NOMEM;
    if (sftp_rename(c->sftp, to, aside) != 0) {
        s = fail_ssh(st, c, "rename", rel);
    } else if (sftp_rename(c->sftp, from, to) != 0) {
        s = fail_ssh(st, c, "rename", rel);
        if (!conn_dead(c))
            sftp_rename(c->sftp, aside, to);
    } else {
        s = DX_OK;
        if (sftp_unlink(c->sftp, aside) != 0)
            log_printf(LOG_LEVEL_WARN, NULL, "storage %s: cannot remove %s: %s",
                       st->base.display_url, aside, ssh_get_error(c->ssh));
    }
    free(aside);
    return s;
}

static dx_status sftp_storage_rename(storage *base, const char *from, const char *to)
{
    sftp_storage *st = (sftp_storage *)base;
    sftp_conn *c = NULL;
    char *abs_from = NULL, *abs_to = NULL;
    int fresh;
    dx_status s = conn_get(st, &c, &fresh);

    /* Not repeated on a stale connection: a rename that was done but not
     * acknowledged would fail the second time. */
    if (s == DX_OK)
        s = resolve(st, c, from, &abs_from, NULL);
    if (s == DX_OK)
        s = make_parent(st, c, to);
    if (s == DX_OK)
        s = resolve(st, c, to, &abs_to, NULL);
    if (s == DX_OK)
        s = rename_replace(st, c, abs_from, abs_to, from);
    if (c != NULL)
        guard_disarm(c);
    free(abs_from);
    free(abs_to);
    return s;
}

static dx_status sftp_storage_remove(storage *base, const char *path)
{
    sftp_storage *st = (sftp_storage *)base;
    sftp_conn *c = NULL;
    char *abs = NULL;
    int fresh;
    dx_status s = conn_get(st, &c, &fresh);

    if (s == DX_OK)
        s = resolve(st, c, path, &abs, NULL);
    if (s == DX_OK && sftp_unlink(c->sftp, abs) != 0)
        s = fail_ssh(st, c, "remove", path);
    if (c != NULL)
        guard_disarm(c);
    free(abs);
    return s;
}

/* ---- reader ------------------------------------------------------------- */

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
        if (conn_dead(rd->conn))
            continue;
        guard_arm(rd->conn);
        sftp_seek64(rd->file, offset);
        sftp_async_read(rd->file, rd->buf, (uint32_t)rd->chunk, (uint32_t)id);
    }
}

static dx_status reader_fail(sftp_reader *rd, const char *what)
{
    sftp_storage *st = (sftp_storage *)rd->base.owner;

    rd->failed = fail_ssh(st, rd->conn, what, rd->path);
    reader_drain(rd);
    return rd->failed;
}

static dx_status do_reader_open(sftp_storage *st, sftp_conn *c, const char *path,
                                storage_reader **out)
{
    sftp_reader *rd = NULL;
    sftp_attributes a;
    char *abs = NULL;
    dx_status s = resolve(st, c, path, &abs, NULL);

    if (s != DX_OK)
        return s;
    a = sftp_lstat(c->sftp, abs);
    if (a == NULL) {
        s = fail_ssh(st, c, "open", path);
        goto out;
    }
    if (kind_of(a) != STORAGE_FILE) {
        sftp_attributes_free(a);
        s = fail(st, DX_ERR_INVALID, "open %s: not a regular file", path);
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
        s = fail_ssh(st, c, "open", path);
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

static dx_status sftp_storage_reader_open(storage *base, const char *path, storage_reader **out)
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

        if (conn_dead(rd->conn))
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
        guard_arm(rd->conn);
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

static dx_status sftp_storage_read(storage_reader *base, void *buf, size_t cap, size_t *got)
{
    sftp_reader *rd = (sftp_reader *)base;
    dx_status s;

    guard_arm(rd->conn);
    s = read_some(rd, buf, cap, got);
    guard_disarm(rd->conn);
    return s;
}

static void sftp_storage_reader_close(storage_reader *base)
{
    sftp_reader *rd = (sftp_reader *)base;

    guard_arm(rd->conn);
    reader_drain(rd);
    sftp_close(rd->file);
    guard_disarm(rd->conn);
    conn_release(rd->conn);
    free(rd->buf);
    free(rd->path);
    free(rd);
}

/* ---- writer ------------------------------------------------------------- */

static void writer_free(sftp_writer *wr)
{
    conn_release(wr->conn);
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
    if (conn_dead(wr->conn) || sftp_unlink(wr->conn->sftp, wr->tmp_abs) != 0) {
        if (conn_dead(wr->conn))
            add_orphan(st, wr->tmp_abs);
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
    dx_status s = make_parent(st, c, path);

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
    s = resolve(st, c, path, &wr->final_abs, NULL);
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
        s = fail_ssh(st, c, "create", path);
        goto fail;
    }
    *out = &wr->base;
    return DX_OK;
fail:
    writer_free(wr);
    return s;
}

static dx_status sftp_storage_writer_open(storage *base, const char *path, storage_writer **out)
{
    sftp_storage *st = (sftp_storage *)base;
    sftp_conn *c;

    WITH_CONN(st, c, do_writer_open(st, c, path, out));
}

static dx_status writer_send(sftp_writer *wr, const void *buf, size_t len)
{
    sftp_storage *st = (sftp_storage *)wr->base.owner;

    if (conn_dead(wr->conn))
        return wr->failed = lost(st, wr->conn, "write", wr->path);
    guard_arm(wr->conn);
    if (sftp_write(wr->file, buf, len) != (ssize_t)len)
        return wr->failed = fail_ssh(st, wr->conn, "write", wr->path);
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

static dx_status sftp_storage_write(storage_writer *base, const void *buf, size_t len)
{
    sftp_writer *wr = (sftp_writer *)base;
    dx_status s;

    if (wr->failed != DX_OK)
        return wr->failed;
    s = write_some(wr, buf, len);
    guard_disarm(wr->conn);
    return s;
}

static dx_status sftp_storage_writer_commit(storage_writer *base)
{
    sftp_writer *wr = (sftp_writer *)base;
    sftp_storage *st = (sftp_storage *)base->owner;
    sftp_conn *c = wr->conn;
    dx_status s = wr->failed;

    guard_arm(c);
    if (s == DX_OK && wr->len > 0)
        s = writer_send(wr, wr->buf, wr->len);
    /* Data first, then the name: after a crash the target is either the old
     * file or the complete new one. */
    if (s == DX_OK && c->has_fsync && sftp_fsync(wr->file) != 0)
        s = fail_ssh(st, c, "flush", wr->path);
    if (s == DX_OK) {
        int rc = sftp_close(wr->file);

        wr->file = NULL;
        if (rc != 0)
            s = fail_ssh(st, c, "close", wr->path);
    }
    /* A writer may outlive its connection; the rename needs a live one. */
    if (s == DX_OK && conn_dead(c))
        s = lost(st, c, "commit", wr->path);
    if (s == DX_OK)
        s = rename_replace(st, c, wr->tmp_abs, wr->final_abs, wr->path);
    if (s != DX_OK)
        writer_discard(wr);
    guard_disarm(c);
    writer_free(wr);
    return s;
}

static void sftp_storage_writer_abort(storage_writer *base)
{
    sftp_writer *wr = (sftp_writer *)base;

    guard_arm(wr->conn);
    writer_discard(wr);
    guard_disarm(wr->conn);
    writer_free(wr);
}

/* ---- creation ----------------------------------------------------------- */

static int hex_value(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes [s, s+len) into a new string; NULL if malformed or if it
 * holds a control character. */
static char *decode(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    size_t j = 0;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        int ch = (unsigned char)s[i];

        if (ch == '%') {
            int hi = i + 2 < len ? hex_value((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < len ? hex_value((unsigned char)s[i + 2]) : -1;

            if (hi < 0 || lo < 0) {
                free(out);
                return NULL;
            }
            ch = hi * 16 + lo;
            i += 2;
        }
        if (ch < 0x20 || ch == 0x7f) {
            free(out);
            return NULL;
        }
        out[j++] = (char)ch;
    }
    out[j] = '\0';
    return out;
}

static int user_valid(const char *user)
{
    if (user[0] == '\0' || user[0] == '-')
        return 0;
    for (const char *p = user; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("._-@+", *p) != NULL))
            return 0;
    }
    return 1;
}

static int host_valid(const char *host)
{
    if (host[0] == '\0')
        return 0;
    for (const char *p = host; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr(".-:", *p) != NULL))
            return 0;
    }
    return 1;
}

/* Parses sftp://USER@HOST[:PORT]/PATH into st; err gets a reason that never
 * repeats the URL (it could hold a password). */
static dx_status parse_url(sftp_storage *st, const char *url, char *err, size_t err_len)
{
    const char *rest = url + strlen("sftp://");
    const char *slash = strchr(rest, '/');
    const char *at, *host, *host_end, *port_at = NULL;
    size_t len;

    if (strpbrk(rest, "?#") != NULL) {
        snprintf(err, err_len, "sftp:// URL: query and fragment are not supported");
        return DX_ERR_INVALID;
    }
    if (slash == NULL) {
        snprintf(err, err_len, "sftp:// URL needs an absolute path (sftp://USER@HOST[:PORT]/PATH)");
        return DX_ERR_INVALID;
    }
    at = memchr(rest, '@', (size_t)(slash - rest));
    if (at == NULL) {
        snprintf(err, err_len, "sftp:// URL needs a user (sftp://USER@HOST[:PORT]/PATH)");
        return DX_ERR_INVALID;
    }
    for (const char *p = at + 1; p < slash; p++) {
        if (*p == '@')
            at = p; /* the last '@' ends the user part */
    }
    if (memchr(rest, ':', (size_t)(at - rest)) != NULL) {
        snprintf(err, err_len,
                 "sftp:// URL must not hold a password: put it in the file named by "
                 "SFTP_PASSWORD_FILE");
        return DX_ERR_INVALID;
    }
    st->user = decode(rest, (size_t)(at - rest));
    if (st->user == NULL || !user_valid(st->user)) {
        snprintf(err, err_len, "sftp:// URL: invalid user name");
        return DX_ERR_INVALID;
    }
    host = at + 1;
    if (*host == '[') {
        host_end = memchr(host, ']', (size_t)(slash - host));
        if (host_end == NULL) {
            snprintf(err, err_len, "sftp:// URL: unterminated [IPv6] host");
            return DX_ERR_INVALID;
        }
        host++;
        if (host_end + 1 < slash) {
            if (host_end[1] != ':') {
                snprintf(err, err_len, "sftp:// URL: bad host");
                return DX_ERR_INVALID;
            }
            port_at = host_end + 2;
        }
    } else {
        host_end = memchr(host, ':', (size_t)(slash - host));
        if (host_end != NULL)
            port_at = host_end + 1;
        else
            host_end = slash;
    }
    st->host = strndup(host, (size_t)(host_end - host));
    if (st->host == NULL || !host_valid(st->host)) {
        snprintf(err, err_len, "sftp:// URL: invalid host");
        return DX_ERR_INVALID;
    }
    st->port = 22;
    if (port_at != NULL) {
        long port = 0;

        if (port_at == slash) {
            snprintf(err, err_len, "sftp:// URL: empty port");
            return DX_ERR_INVALID;
        }
        for (const char *p = port_at; p < slash; p++) {
            if (*p < '0' || *p > '9' || port > 65535) {
                port = -1;
                break;
            }
            port = port * 10 + (*p - '0');
        }
        if (port < 1 || port > 65535) {
            snprintf(err, err_len, "sftp:// URL: invalid port");
            return DX_ERR_INVALID;
        }
        st->port = (int)port;
    }
    st->root = decode(slash, strlen(slash));
    if (st->root == NULL) {
        snprintf(err, err_len, "sftp:// URL: invalid path");
        return DX_ERR_INVALID;
    }
    len = strlen(st->root);
    while (len > 1 && st->root[len - 1] == '/')
        st->root[--len] = '\0';
    if (len >= 400) {
        snprintf(err, err_len, "sftp:// URL: path too long");
        return DX_ERR_INVALID;
    }
    return DX_OK;
}

static dx_status read_settings(sftp_storage *st, char *err, size_t err_len)
{
    const char *key = getenv("SFTP_KEY_FILE");
    const char *password = getenv("SFTP_PASSWORD_FILE");
    const char *known = getenv("SFTP_KNOWN_HOSTS");
    const char *insecure = getenv("SFTP_INSECURE_SKIP_HOST_KEY");
    const char *timeout = getenv("SFTP_TIMEOUT_SECONDS");

    st->key_file_set = key != NULL && key[0] != '\0';
    st->key_file = strdup(st->key_file_set ? key : DEFAULT_KEY_FILE);
    st->known_hosts = strdup(known != NULL && known[0] != '\0' ? known : DEFAULT_KNOWN_HOSTS);
    if (password != NULL && password[0] != '\0')
        st->password_file = strdup(password);
    if (st->key_file == NULL || st->known_hosts == NULL ||
        (password != NULL && password[0] != '\0' && st->password_file == NULL)) {
        snprintf(err, err_len, "out of memory");
        return DX_ERR_NOMEM;
    }
    if (insecure == NULL || insecure[0] == '\0' || strcmp(insecure, "0") == 0) {
        st->insecure = 0;
    } else if (strcmp(insecure, "1") == 0) {
        st->insecure = 1;
    } else {
        snprintf(err, err_len, "SFTP_INSECURE_SKIP_HOST_KEY must be 0 or 1");
        return DX_ERR_INVALID;
    }
    st->timeout_s = DEFAULT_TIMEOUT_S;
    if (timeout != NULL && timeout[0] != '\0') {
        char *end;
        long v;

        errno = 0;
        v = strtol(timeout, &end, 10);
        if (errno != 0 || *end != '\0' || v < 1 || v > 3600) {
            snprintf(err, err_len, "SFTP_TIMEOUT_SECONDS must be a whole number from 1 to 3600");
            return DX_ERR_INVALID;
        }
        st->timeout_s = v;
    }
    return DX_OK;
}

dx_status storage_sftp_create(storage **out, const char *url, char *err, size_t err_len)
{
    sftp_storage *st = calloc(1, sizeof(*st));
    dx_status s;

    if (st == NULL) {
        snprintf(err, err_len, "out of memory");
        return DX_ERR_NOMEM;
    }
    st->base.ops = &sftp_ops;
    s = parse_url(st, url, err, err_len);
    if (s == DX_OK)
        s = read_settings(st, err, err_len);
    if (s != DX_OK) {
        sftp_storage_destroy(&st->base);
        return s;
    }
    snprintf(st->base.display_url, sizeof(st->base.display_url), "sftp://%s@%s%s%s:%d%s", st->user,
             strchr(st->host, ':') ? "[" : "", st->host, strchr(st->host, ':') ? "]" : "", st->port,
             st->root);
    *out = &st->base;
    return DX_OK;
}

static const storage_ops sftp_ops = {
    .scheme = "sftp",
    .destroy = sftp_storage_destroy,
    .ping = sftp_storage_ping,
    .list = sftp_storage_list,
    .stat = sftp_storage_stat,
    .mkdirs = sftp_storage_mkdirs,
    .rename = sftp_storage_rename,
    .remove = sftp_storage_remove,
    .reader_open = sftp_storage_reader_open,
    .read = sftp_storage_read,
    .reader_close = sftp_storage_reader_close,
    .writer_open = sftp_storage_writer_open,
    .write = sftp_storage_write,
    .writer_commit = sftp_storage_writer_commit,
    .writer_abort = sftp_storage_writer_abort,
};
