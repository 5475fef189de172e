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
#include "storage.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "storage_sftp_private.h"
#include "util.h"

#define DEFAULT_KEY_FILE    "/var/openfaas/secrets/sftp-key"
#define DEFAULT_KNOWN_HOSTS "/var/openfaas/secrets/sftp-known-hosts"
#define DEFAULT_TIMEOUT_S   10

static const storage_ops sftp_ops;

static void sftp_storage_destroy(storage *base)
{
    sftp_storage *st = (sftp_storage *)base;

    sftp_conn_release(st->conn);
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
        return sftp_conn_fail_ssh(st, c, "stat", "");
    kind = sftp_path_kind(a);
    sftp_attributes_free(a);
    if (kind != STORAGE_DIR)
        return sftp_conn_fail(st, DX_ERR_INVALID, "storage root %s is not a folder", st->root);
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
    dx_status s = sftp_path_resolve(st, c, dir, &abs, NULL);

    if (s != DX_OK)
        return s;
    d = sftp_opendir(c->sftp, abs);
    if (d == NULL) {
        s = sftp_conn_fail_ssh(st, c, "list", dir);
        goto out;
    }
    for (;;) {
        sftp_attributes a;

        sftp_guard_arm(c);
        a = sftp_readdir(c->sftp, d);

        if (a == NULL) {
            if (!sftp_dir_eof(d))
                s = sftp_conn_fail_ssh(st, c, "list", dir);
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
        sftp_path_fill_entry(&list[n], a);
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
    dx_status s = sftp_path_resolve(st, c, path, &abs, NULL);

    if (s != DX_OK)
        return s;
    a = sftp_lstat(c->sftp, abs);
    free(abs);
    if (a == NULL)
        return sftp_conn_fail_ssh(st, c, "stat", path);
    entry->name = NULL;
    sftp_path_fill_entry(entry, a);
    sftp_attributes_free(a);
    return DX_OK;
}

static dx_status sftp_storage_stat(storage *base, const char *path, storage_entry *entry)
{
    sftp_storage *st = (sftp_storage *)base;
    sftp_conn *c;

    WITH_CONN(st, c, do_stat(st, c, path, entry));
}

static dx_status sftp_storage_mkdirs(storage *base, const char *dir)
{
    sftp_storage *st = (sftp_storage *)base;
    sftp_conn *c;

    WITH_CONN(st, c, sftp_path_mkdirs(st, c, dir));
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
        return sftp_conn_fail(st, DX_ERR_INVALID, "rename %s: path too long", rel);
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
        return sftp_conn_lost(st, c, "rename", rel);
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
        return sftp_conn_lost(st, c, "rename", rel);
    }
    if (rc == -2) {
        free(reply);
        metrics_add("dx_sftp_errors_total", "timeout", 1);
        return sftp_conn_fail(st, DX_ERR_TIMEOUT,
                              "rename %s: no answer from the SFTP server in %lds", rel,
                              st->timeout_s);
    }
    if (rc != 0 || reply[0] != SSH_FXP_STATUS || get_u32(reply + 1) != id) {
        free(reply);
        c->broken = 1;
        return sftp_conn_fail(st, DX_ERR_IO,
                              "rename %s: connection to the SFTP server lost or out of step", rel);
    }
    code = get_u32(reply + 5);
    if (code != SSH_FX_OK) {
        uint32_t msg_len = reply_len >= 13 ? get_u32(reply + 9) : 0;
        int shown = msg_len <= reply_len - 13 && msg_len < 200 ? (int)msg_len : 0;

        s = sftp_conn_fail(st, sftp_conn_status((int)code),
                           "rename %s: SFTP server: %.*s (status %u)", rel, shown,
                           shown ? (const char *)reply + 13 : "", (unsigned)code);
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
dx_status storage_sftp_rename_replace(sftp_storage *st, sftp_conn *c, const char *from,
                                      const char *to, const char *rel)
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
    if (sftp_conn_dead(c))
        return sftp_conn_lost(st, c, "rename", rel);
    code = sftp_get_error(c->sftp);
    snprintf(msg, sizeof(msg), "%s", ssh_get_error(c->ssh));
    a = sftp_lstat(c->sftp, to);
    if (a == NULL || sftp_path_kind(a) != STORAGE_FILE) {
        sftp_attributes_free(a);
        if (sftp_conn_dead(c))
            return sftp_conn_lost(st, c, "rename", rel);
        return sftp_conn_fail(st, sftp_conn_status(code), "rename %s: %s", rel, msg);
    }
    sftp_attributes_free(a);
    slash = strrchr(to, '/');
    util_random_hex(token, sizeof(token));
    if (asprintf(&aside, "%.*s.%s.old-%s", (int)(slash - to + 1), to, slash + 1, token) < 0)
        return DX_ERR_NOMEM;
    if (sftp_rename(c->sftp, to, aside) != 0) {
        s = sftp_conn_fail_ssh(st, c, "rename", rel);
    } else if (sftp_rename(c->sftp, from, to) != 0) {
        s = sftp_conn_fail_ssh(st, c, "rename", rel);
        if (!sftp_conn_dead(c))
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
    dx_status s = sftp_conn_get(st, &c, &fresh);

    /* Not repeated on a stale connection: a rename that was done but not
     * acknowledged would fail the second time. */
    if (s == DX_OK)
        s = sftp_path_resolve(st, c, from, &abs_from, NULL);
    if (s == DX_OK)
        s = sftp_path_make_parent(st, c, to);
    if (s == DX_OK)
        s = sftp_path_resolve(st, c, to, &abs_to, NULL);
    if (s == DX_OK)
        s = storage_sftp_rename_replace(st, c, abs_from, abs_to, from);
    if (c != NULL)
        sftp_guard_disarm(c);
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
    dx_status s = sftp_conn_get(st, &c, &fresh);

    if (s == DX_OK)
        s = sftp_path_resolve(st, c, path, &abs, NULL);
    if (s == DX_OK && sftp_unlink(c->sftp, abs) != 0)
        s = sftp_conn_fail_ssh(st, c, "remove", path);
    if (c != NULL)
        sftp_guard_disarm(c);
    free(abs);
    return s;
}

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
    .reader_open = sftp_reader_open,
    .read = sftp_reader_read,
    .reader_close = sftp_reader_close,
    .writer_open = sftp_writer_open,
    .write = sftp_writer_write,
    .writer_commit = sftp_writer_commit,
    .writer_abort = sftp_writer_abort,
};
