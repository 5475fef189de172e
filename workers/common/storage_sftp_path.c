/*
 * Path checks of the sftp:// backend (see storage_sftp_private.h): like
 * storage_file.c, every path is resolved one component at a time with lstat
 * and a symbolic link on the way is refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage_sftp_private.h"

static char *join(const char *root, const char *rel)
{
    char *out = NULL;

    if (rel[0] == '\0')
        return strdup(root);
    if (asprintf(&out, "%s/%s", strcmp(root, "/") == 0 ? "" : root, rel) < 0)
        return NULL;
    return out;
}

storage_kind sftp_path_kind(const sftp_attributes a)
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

void sftp_path_fill_entry(storage_entry *e, const sftp_attributes a)
{
    e->kind = sftp_path_kind(a);
    e->size = a->size;
    e->mtime = a->mtime64 ? (int64_t)a->mtime64 : (int64_t)a->mtime;
}

/*
 * Builds the absolute path of rel into *abs (malloc'd) after checking, one
 * lstat per component, that no existing component is a symbolic link or a
 * non-folder in the middle.  *existing (if not NULL) receives how many bytes
 * of rel exist on the server; missing trailing components are fine.
 */
dx_status sftp_path_resolve(sftp_storage *st, sftp_conn *c, const char *rel, char **abs,
                            size_t *existing)
{
    size_t root_len = strcmp(st->root, "/") == 0 ? 0 : strlen(st->root);
    char *path;
    dx_status s = DX_OK;

    if (!storage_path_valid(rel))
        return sftp_conn_fail(st, DX_ERR_INVALID, "invalid storage path");
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
        sftp_guard_arm(c);
        a = sftp_lstat(c->sftp, path);
        *p = saved;
        if (a == NULL) {
            if (!sftp_conn_dead(c) && sftp_conn_status(sftp_get_error(c->sftp)) == DX_ERR_NOT_FOUND)
                goto out;
            s = sftp_conn_fail_ssh(st, c, "stat", rel);
            goto out;
        }
        storage_kind kind = sftp_path_kind(a);

        sftp_attributes_free(a);
        if (kind == STORAGE_OTHER) {
            s = sftp_conn_fail(st, DX_ERR_INVALID,
                               "refusing symbolic link or special file in path %s", rel);
            goto out;
        }
        if (existing != NULL)
            *existing = (size_t)(p - (path + root_len + 1));
        if (saved == '\0')
            goto out;
        if (kind != STORAGE_DIR) {
            s = sftp_conn_fail(st, DX_ERR_NOT_FOUND, "path %s: a component is not a folder", rel);
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

dx_status sftp_path_mkdirs(sftp_storage *st, sftp_conn *c, const char *dir)
{
    char *abs = NULL;
    size_t existing = 0;
    size_t root_len = strcmp(st->root, "/") == 0 ? 0 : strlen(st->root);
    dx_status s = sftp_path_resolve(st, c, dir, &abs, &existing);

    if (s != DX_OK)
        return s;
    if (dir[existing] == '\0')
        goto out; /* all there already */
    for (char *p = abs + root_len + 1 + existing + (existing ? 1 : 0);; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;

        *p = '\0';
        sftp_guard_arm(c);
        if (sftp_mkdir(c->sftp, abs, 0755) != 0) {
            /* Someone else may have just made it. */
            sftp_attributes a = sftp_conn_dead(c) ? NULL : sftp_lstat(c->sftp, abs);
            int is_dir = a != NULL && sftp_path_kind(a) == STORAGE_DIR;

            sftp_attributes_free(a);
            if (!is_dir) {
                *p = saved;
                s = sftp_conn_fail_ssh(st, c, "mkdir", dir);
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

dx_status sftp_path_make_parent(sftp_storage *st, sftp_conn *c, const char *path)
{
    const char *slash = strrchr(path, '/');
    char *parent;
    dx_status s;

    if (slash == NULL)
        return DX_OK;
    parent = strndup(path, (size_t)(slash - path));
    if (parent == NULL)
        return DX_ERR_NOMEM;
    s = sftp_path_mkdirs(st, c, parent);
    free(parent);
    return s;
}
