/*
 * The sftp:// backend's connection and its errors (see
 * storage_sftp_private.h): one SSH session per storage, opened lazily and
 * shared by reference with the readers and writers opened on it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "metrics.h"
#include "storage_sftp_private.h"

/*
 * Records the reason in last_error and logs it: a warning for what a retry
 * may fix, an error otherwise.  A missing file is an answer, not a failure,
 * and is not logged.
 */
dx_status sftp_conn_fail(sftp_storage *st, dx_status s, const char *fmt, ...)
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

dx_status sftp_conn_status(int code)
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
int sftp_conn_dead(sftp_conn *c)
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

dx_status sftp_conn_lost(sftp_storage *st, sftp_conn *c, const char *what, const char *path)
{
    const char *msg = ssh_get_error(c->ssh);

    c->broken = 1;
    if (atomic_load(&c->timed_out)) {
        metrics_add("dx_sftp_errors_total", "timeout", 1);
        return sftp_conn_fail(st, DX_ERR_TIMEOUT,
                              "%s %s: no answer from the SFTP server in %lds, connection dropped",
                              what, path[0] ? path : "(root)", st->timeout_s);
    }
    metrics_add("dx_sftp_errors_total", strstr(msg, "imeout") ? "timeout" : "io", 1);
    return sftp_conn_fail(st, strstr(msg, "imeout") ? DX_ERR_TIMEOUT : DX_ERR_IO,
                          "%s %s: connection to the SFTP server lost: %s", what,
                          path[0] ? path : "(root)", msg);
}

/* Converts the failure of the libssh call just made on c. */
dx_status sftp_conn_fail_ssh(sftp_storage *st, sftp_conn *c, const char *what, const char *path)
{
    if (sftp_conn_dead(c))
        return sftp_conn_lost(st, c, what, path);
    return sftp_conn_fail(st, sftp_conn_status(sftp_get_error(c->sftp)), "%s %s: %s", what,
                          path[0] ? path : "(root)", ssh_get_error(c->ssh));
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

void sftp_conn_release(sftp_conn *c)
{
    if (c == NULL || --c->refs > 0)
        return;
    sftp_guard_disarm(c);
    if (c->sftp != NULL)
        sftp_free(c->sftp);
    if (c->ssh != NULL) {
        ssh_disconnect(c->ssh);
        ssh_free(c->ssh);
    }
    free(c);
}

static void clean_orphans(sftp_storage *st, sftp_conn *c)
{
    size_t kept = 0;

    for (size_t i = 0; i < st->orphan_count; i++) {
        char *path = st->orphans[i];

        if (sftp_unlink(c->sftp, path) == 0 || sftp_get_error(c->sftp) == SSH_FX_NO_SUCH_FILE) {
            free(path);
        } else if (sftp_conn_dead(c)) {
            st->orphans[kept++] = path;
        } else {
            log_printf(LOG_LEVEL_WARN, NULL, "storage %s: cannot remove temporary file %s: %s",
                       st->base.display_url, path, ssh_get_error(c->ssh));
            free(path);
        }
    }
    st->orphan_count = kept;
}

void sftp_conn_add_orphan(sftp_storage *st, const char *path)
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
        s = sftp_conn_fail(st, DX_ERR_INVALID, "bad SFTP settings: %s", ssh_get_error(c->ssh));
        goto out;
    }
    if (!st->insecure) {
        FILE *f = fopen(st->known_hosts, "re");

        if (f == NULL) {
            s = sftp_conn_fail(st, DX_ERR_PERMANENT, "cannot read SFTP_KNOWN_HOSTS (%s): %s",
                               st->known_hosts, strerror(errno));
            goto out;
        }
        fclose(f);
    }
    if (ssh_connect(c->ssh) != SSH_OK) {
        const char *msg = ssh_get_error(c->ssh);

        metrics_add("dx_sftp_errors_total", strstr(msg, "imeout") ? "timeout" : "connect", 1);
        s = sftp_conn_fail(st, strstr(msg, "imeout") ? DX_ERR_TIMEOUT : DX_ERR_IO,
                           "connect to %s:%d: %s", st->host, st->port, msg);
        goto out;
    }
    set_keepalive(c->ssh, st->timeout_s);
    /* From here on libssh no longer bounds its waits: the callers disarm. */
    sftp_guard_arm(c);
    s = sftp_auth_check_host_key(st, c);
    if (s != DX_OK) {
        metrics_add("dx_sftp_errors_total", "host_key", 1);
        goto out;
    }
    s = sftp_auth_login(st, c);
    if (s != DX_OK) {
        metrics_add("dx_sftp_errors_total", "auth", 1);
        goto out;
    }
    c->sftp = sftp_new(c->ssh);
    if (c->sftp == NULL) {
        s = ssh_get_error_code(c->ssh) == SSH_REQUEST_DENIED
                ? sftp_conn_fail(st, DX_ERR_PERMANENT, "the server refused the sftp subsystem: %s",
                                 ssh_get_error(c->ssh))
                : sftp_conn_lost(st, c, "start sftp on", st->host);
        goto out;
    }
    if (sftp_init(c->sftp) != 0) {
        s = sftp_conn_lost(st, c, "start sftp on", st->host);
        goto out;
    }
    c->has_fsync = sftp_extension_supported(c->sftp, "fsync@openssh.com", "1");
    c->has_posix_rename = sftp_extension_supported(c->sftp, "posix-rename@openssh.com", "1");
    c->chunk = ssh_get_openssh_version(c->ssh) > 0 ? CHUNK_OPENSSH : CHUNK_ANY;
out:
    if (s != DX_OK) {
        sftp_conn_release(c);
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
dx_status sftp_conn_get(sftp_storage *st, sftp_conn **out, int *fresh)
{
    dx_status s;

    if (st->conn != NULL && sftp_conn_dead(st->conn)) {
        sftp_conn_release(st->conn);
        st->conn = NULL;
    }
    *fresh = st->conn == NULL;
    if (st->conn == NULL) {
        s = conn_open(st, &st->conn);
        if (s != DX_OK)
            return s;
    }
    sftp_guard_arm(st->conn);
    if (st->orphan_count > 0)
        clean_orphans(st, st->conn);
    *out = st->conn;
    return DX_OK;
}
