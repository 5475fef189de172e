/*
 * Host key check and user authentication of the sftp:// backend (see
 * storage_sftp_private.h).  Secrets are read at every connection and wiped
 * after use; their contents never reach a log line or an error message.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "storage_sftp_private.h"

/* Reads a one-line secret file; the caller wipes and frees it. */
static dx_status read_secret(sftp_storage *st, const char *var, const char *path, char **out)
{
    FILE *f = fopen(path, "re");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    if (f == NULL)
        return sftp_conn_fail(st, DX_ERR_PERMANENT, "cannot read %s (%s): %s", var, path,
                              strerror(errno));
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

dx_status sftp_auth_check_host_key(sftp_storage *st, sftp_conn *c)
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
        s = sftp_conn_fail(
            st, DX_ERR_PERMANENT,
            "host key of %s:%d does not match SFTP_KNOWN_HOSTS (%s): server offers %s %s; "
            "refusing to connect",
            st->host, st->port, st->known_hosts, type, shown);
        break;
    case SSH_KNOWN_HOSTS_UNKNOWN:
    case SSH_KNOWN_HOSTS_NOT_FOUND:
        s = sftp_conn_fail(st, DX_ERR_PERMANENT,
                           "host %s:%d is not in SFTP_KNOWN_HOSTS (%s): server offers %s %s; "
                           "refusing to connect",
                           st->host, st->port, st->known_hosts, type, shown);
        break;
    default:
        s = sftp_conn_fail(st, DX_ERR_PERMANENT,
                           "cannot check the host key of %s:%d against %s: %s", st->host, st->port,
                           st->known_hosts, ssh_get_error(c->ssh));
        break;
    }
    ssh_string_free_char(fp);
    return s;
}

dx_status sftp_auth_login(sftp_storage *st, sftp_conn *c)
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
            s = sftp_conn_fail(st, DX_ERR_PERMANENT,
                               "cannot load the private key SFTP_KEY_FILE (%s): %s", st->key_file,
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
        s = sftp_conn_lost(st, c, "authenticate", st->user);
        break;
    default:
        s = sftp_conn_fail(st, DX_ERR_PERMANENT,
                           "authentication of user %s on %s:%d refused (tried %s)", st->user,
                           st->host, st->port, methods);
        break;
    }
out:
    ssh_key_free(key);
    free_secret(password);
    return s;
}
