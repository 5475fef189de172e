/*
 * The file:// backend: a folder on a local (or mounted) file system.
 *
 * Every path is resolved under the root one component at a time with lstat,
 * and any symbolic link on the way is refused: a link planted in a client
 * folder can neither be read as a drop nor lead a write outside the root.
 */
#include "storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* Folders this storage made or found made, remembered so that a morning of
 * small drops does not mkdir (and fail with EEXIST) the same client and
 * date folders for every file.  Replaced round-robin when full. */
#define MADE_DIRS_MAX 256

typedef struct file_storage {
    struct storage base;
    char root[PATH_MAX];
    char *made[MADE_DIRS_MAX]; /* relative paths, owned; NULL when free */
    size_t made_next;          /* the slot replaced next */
} file_storage;

typedef struct file_reader {
    struct storage_reader base;
    int fd;
} file_reader;

typedef struct file_writer {
    struct storage_writer base;
    FILE *fp;
    char tmp_path[PATH_MAX];
    char final_path[PATH_MAX];
} file_writer;

static const storage_ops file_ops;

static dx_status status_from_errno(int err)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
        return DX_ERR_NOT_FOUND;
    case EEXIST:
        return DX_ERR_EXISTS;
    case ENOSPC:
    case EDQUOT:
    case EROFS:
        return DX_ERR_NO_SPACE;
    case ENOMEM:
        return DX_ERR_NOMEM;
    case ELOOP:
    case ENAMETOOLONG:
        return DX_ERR_INVALID;
    default:
        return DX_ERR_IO;
    }
}

static dx_status fail_errno(storage *st, const char *what, const char *path, int err)
{
    storage_set_error(st, "%s %s: %s", what, path[0] ? path : "(root)", strerror(err));
    return status_from_errno(err);
}

/*
 * Builds root/path into abs (PATH_MAX) after checking that no existing
 * component of path is a symbolic link.  Missing trailing components are
 * fine (the caller may be about to create them).
 */
static dx_status resolve(file_storage *fs, const char *path, char *abs)
{
    size_t root_len = strlen(fs->root);
    size_t path_len = strlen(path);
    struct stat sb;

    if (root_len + 1 + path_len + 1 > PATH_MAX) {
        storage_set_error(&fs->base, "path too long");
        return DX_ERR_INVALID;
    }
    memcpy(abs, fs->root, root_len);
    abs[root_len] = '\0';
    if (path_len == 0)
        return DX_OK;
    abs[root_len] = '/';
    memcpy(abs + root_len + 1, path, path_len + 1);
    for (char *p = abs + root_len + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;

        *p = '\0';
        int rc = lstat(abs, &sb);
        int err = errno;

        *p = saved;
        if (rc != 0) {
            if (err == ENOENT)
                return DX_OK;
            return fail_errno(&fs->base, "stat", path, err);
        }
        if (S_ISLNK(sb.st_mode)) {
            storage_set_error(&fs->base, "refusing symbolic link in path %s", path);
            return DX_ERR_INVALID;
        }
        if (saved == '\0')
            return DX_OK;
    }
}

static storage_kind kind_of(mode_t mode)
{
    if (S_ISREG(mode))
        return STORAGE_FILE;
    if (S_ISDIR(mode))
        return STORAGE_DIR;
    return STORAGE_OTHER;
}

dx_status storage_file_create(storage **out, const char *root, char *err, size_t err_len)
{
    file_storage *fs;
    size_t len = strlen(root);

    while (len > 1 && root[len - 1] == '/')
        len--;
    if (len >= PATH_MAX) {
        snprintf(err, err_len, "file:// path too long");
        return DX_ERR_INVALID;
    }
    fs = calloc(1, sizeof(*fs));
    if (fs == NULL) {
        snprintf(err, err_len, "out of memory");
        return DX_ERR_NOMEM;
    }
    fs->base.ops = &file_ops;
    memcpy(fs->root, root, len);
    fs->root[len] = '\0';
    snprintf(fs->base.display_url, sizeof(fs->base.display_url), "file://%.400s", fs->root);
    *out = &fs->base;
    return DX_OK;
}

static void file_destroy(storage *st)
{
    file_storage *fs = (file_storage *)st;

    for (size_t i = 0; i < MADE_DIRS_MAX; i++)
        free(fs->made[i]);
    free(st);
}

static dx_status file_ping(storage *st)
{
    file_storage *fs = (file_storage *)st;
    struct stat sb;

    if (stat(fs->root, &sb) != 0)
        return fail_errno(st, "stat", "", errno);
    if (!S_ISDIR(sb.st_mode)) {
        storage_set_error(st, "storage root is not a folder");
        return DX_ERR_INVALID;
    }
    return DX_OK;
}

static dx_status file_list(storage *st, const char *dir, storage_entry **entries, size_t *count)
{
    file_storage *fs = (file_storage *)st;
    char abs[PATH_MAX];
    DIR *d = NULL;
    storage_entry *list = NULL;
    size_t n = 0, cap = 0;
    dx_status s = resolve(fs, dir, abs);

    if (s != DX_OK)
        return s;
    d = opendir(abs);
    if (d == NULL)
        return fail_errno(st, "list", dir, errno);
    for (;;) {
        struct dirent *de;
        struct stat sb;

        errno = 0;
        de = readdir(d);
        if (de == NULL) {
            if (errno != 0)
                s = fail_errno(st, "list", dir, errno);
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
            continue; /* vanished between readdir and stat */
        if (n == cap) {
            size_t new_cap = cap ? cap * 2 : 16;
            storage_entry *grown = realloc(list, new_cap * sizeof(*grown));

            if (grown == NULL) {
                s = DX_ERR_NOMEM;
                break;
            }
            list = grown;
            cap = new_cap;
        }
        list[n].name = strdup(de->d_name);
        if (list[n].name == NULL) {
            s = DX_ERR_NOMEM;
            break;
        }
        list[n].kind = kind_of(sb.st_mode);
        list[n].size = (uint64_t)sb.st_size;
        list[n].mtime = (int64_t)sb.st_mtime;
        n++;
    }
    closedir(d);
    if (s != DX_OK) {
        storage_entries_free(list, n);
        return s;
    }
    *entries = list;
    *count = n;
    return DX_OK;
}

static dx_status file_stat(storage *st, const char *path, storage_entry *entry)
{
    file_storage *fs = (file_storage *)st;
    char abs[PATH_MAX];
    struct stat sb;
    dx_status s = resolve(fs, path, abs);

    if (s != DX_OK)
        return s;
    if (lstat(abs, &sb) != 0)
        return fail_errno(st, "stat", path, errno);
    entry->name = NULL;
    entry->kind = kind_of(sb.st_mode);
    entry->size = (uint64_t)sb.st_size;
    entry->mtime = (int64_t)sb.st_mtime;
    return DX_OK;
}

static dx_status mkdirs_abs(storage *st, char *abs, size_t root_len, const char *path)
{
    for (char *p = abs + root_len + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;

        *p = '\0';
        if (mkdir(abs, 0755) != 0 && errno != EEXIST) {
            int err = errno;

            *p = saved;
            return fail_errno(st, "mkdir", path, err);
        }
        *p = saved;
        if (saved == '\0')
            return DX_OK;
    }
}

/* The slot of dir in the cache of made folders, or -1. */
static int made_slot(const file_storage *fs, const char *dir)
{
    for (int i = 0; i < MADE_DIRS_MAX; i++)
        if (fs->made[i] != NULL && strcmp(fs->made[i], dir) == 0)
            return i;
    return -1;
}

/* Remembers dir as made (a failed strdup only costs a mkdir later). */
static void made_add(file_storage *fs, const char *dir)
{
    if (made_slot(fs, dir) >= 0)
        return;
    free(fs->made[fs->made_next]);
    fs->made[fs->made_next] = strdup(dir);
    fs->made_next = (fs->made_next + 1) % MADE_DIRS_MAX;
}

/* Forgets dir and every folder under it: it was removed behind our back. */
static void made_forget(file_storage *fs, const char *dir)
{
    size_t len = strlen(dir);

    for (int i = 0; i < MADE_DIRS_MAX; i++)
        if (fs->made[i] != NULL && strncmp(fs->made[i], dir, len) == 0 &&
            (fs->made[i][len] == '\0' || fs->made[i][len] == '/')) {
            free(fs->made[i]);
            fs->made[i] = NULL;
        }
}

/*
 * Creates dir and its missing parents, unless this storage made it before.
 * The cache only saves the mkdir calls: every path is still resolved (and
 * its symbolic links refused) by the operation that uses it, and an
 * operation that finds a remembered folder gone forgets it and makes it
 * again (with_parent).
 */
static dx_status file_mkdirs(storage *st, const char *dir)
{
    file_storage *fs = (file_storage *)st;
    char abs[PATH_MAX];
    dx_status s;

    if (dir[0] != '\0' && made_slot(fs, dir) >= 0)
        return DX_OK;
    s = resolve(fs, dir, abs);
    if (s != DX_OK || dir[0] == '\0')
        return s;
    s = mkdirs_abs(st, abs, strlen(fs->root), dir);
    if (s == DX_OK)
        made_add(fs, dir);
    return s;
}

/* The parent folder of path (relative) into parent; 0 when it has none. */
static int parent_of(const char *path, char *parent, size_t cap)
{
    const char *slash = strrchr(path, '/');
    size_t len = slash != NULL ? (size_t)(slash - path) : 0;

    if (slash == NULL || len >= cap)
        return 0;
    memcpy(parent, path, len);
    parent[len] = '\0';
    return 1;
}

/* Forgets the parent folder of path as made (see file_mkdirs). */
static void forget_parent(storage *st, const char *path)
{
    char parent[PATH_MAX];

    if (parent_of(path, parent, sizeof(parent)))
        made_forget((file_storage *)st, parent);
}

/* Creates the parent folder of path (relative), if it has one. */
static dx_status make_parent(storage *st, const char *path)
{
    char parent[PATH_MAX];

    if (strrchr(path, '/') == NULL)
        return DX_OK;
    if (!parent_of(path, parent, sizeof(parent)))
        return DX_ERR_INVALID;
    return file_mkdirs(st, parent);
}

/* Makes the parent folder of to and resolves to into abs_to (PATH_MAX). */
static dx_status make_target(storage *st, const char *to, char *abs_to)
{
    dx_status s = make_parent(st, to);

    return s == DX_OK ? resolve((file_storage *)st, to, abs_to) : s;
}

static dx_status file_rename(storage *st, const char *from, const char *to)
{
    file_storage *fs = (file_storage *)st;
    char abs_from[PATH_MAX], abs_to[PATH_MAX];
    dx_status s = resolve(fs, from, abs_from);

    if (s == DX_OK)
        s = make_target(st, to, abs_to);
    if (s != DX_OK)
        return s;
    if (rename(abs_from, abs_to) == 0)
        return DX_OK;
    if (errno == ENOENT && access(abs_from, F_OK) == 0) {
        /* The target's folder was removed since it was made: again. */
        forget_parent(st, to);
        s = make_target(st, to, abs_to);
        if (s != DX_OK)
            return s;
        if (rename(abs_from, abs_to) == 0)
            return DX_OK;
    }
    return fail_errno(st, "rename", from, errno);
}

static dx_status file_remove(storage *st, const char *path)
{
    file_storage *fs = (file_storage *)st;
    char abs[PATH_MAX];
    dx_status s = resolve(fs, path, abs);

    if (s != DX_OK)
        return s;
    if (unlink(abs) != 0)
        return fail_errno(st, "remove", path, errno);
    return DX_OK;
}

static dx_status file_reader_open(storage *st, const char *path, storage_reader **out)
{
    file_storage *fs = (file_storage *)st;
    char abs[PATH_MAX];
    file_reader *rd;
    int fd;
    struct stat sb;
    dx_status s = resolve(fs, path, abs);

    if (s != DX_OK)
        return s;
    fd = open(abs, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return fail_errno(st, "open", path, errno);
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        storage_set_error(st, "open %s: not a regular file", path);
        return DX_ERR_INVALID;
    }
    rd = calloc(1, sizeof(*rd));
    if (rd == NULL) {
        close(fd);
        return DX_ERR_NOMEM;
    }
    rd->base.owner = st;
    rd->fd = fd;
    *out = &rd->base;
    return DX_OK;
}

static dx_status file_read(storage_reader *base, void *buf, size_t cap, size_t *got)
{
    file_reader *rd = (file_reader *)base;
    ssize_t n;

    do {
        n = read(rd->fd, buf, cap);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return fail_errno(base->owner, "read", "", errno);
    *got = (size_t)n;
    return DX_OK;
}

static void file_reader_close(storage_reader *base)
{
    file_reader *rd = (file_reader *)base;

    close(rd->fd);
    free(rd);
}

/*
 * Removes the temporary files of earlier writers of the same target that
 * died without committing or aborting (a worker killed with SIGKILL in the
 * middle of a file).  A live writer holds an exclusive flock on its
 * temporary file until it commits or aborts, and the kernel drops the lock
 * when the process dies, so a temporary file that can be locked has no
 * writer any more.  A writer of another process (a replica) keeps its file.
 */
static void sweep_abandoned(storage *st, const char *final_path, const char *base_name)
{
    char dir[PATH_MAX], prefix[NAME_MAX + 8];
    size_t dir_len = strlen(final_path) - strlen(base_name);
    DIR *d;

    if (dir_len == 0 || dir_len >= sizeof(dir) ||
        snprintf(prefix, sizeof(prefix), ".%s.tmp-", base_name) >= (int)sizeof(prefix))
        return;
    memcpy(dir, final_path, dir_len - 1);
    dir[dir_len - 1] = '\0';
    d = opendir(dir[0] ? dir : "/");
    if (d == NULL)
        return;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        struct stat held, named;
        int fd;

        if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
            continue;
        fd = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
            continue;
        /* Unlink only the file we locked, not one that replaced it. */
        if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &held) == 0 &&
            fstatat(dirfd(d), de->d_name, &named, AT_SYMLINK_NOFOLLOW) == 0 &&
            held.st_dev == named.st_dev && held.st_ino == named.st_ino && S_ISREG(held.st_mode) &&
            unlinkat(dirfd(d), de->d_name, 0) == 0)
            log_printf(LOG_LEVEL_WARN, NULL,
                       "storage %s: removed abandoned temporary file %s/%s (%lld bytes)",
                       st->display_url, dir, de->d_name, (long long)held.st_size);
        close(fd);
    }
    closedir(d);
}

static dx_status file_writer_open(storage *st, const char *path, storage_writer **out)
{
    file_storage *fs = (file_storage *)st;
    file_writer *wr = NULL;
    const char *base_name = strrchr(path, '/');
    char token[17];
    int fd = -1, remade = 0;
    dx_status s = make_parent(st, path);

    if (s != DX_OK)
        return s;
    wr = calloc(1, sizeof(*wr));
    if (wr == NULL)
        return DX_ERR_NOMEM;
    wr->base.owner = st;
    s = resolve(fs, path, wr->final_path);
    if (s != DX_OK)
        goto fail;
    base_name = base_name ? base_name + 1 : path;
    sweep_abandoned(st, wr->final_path, base_name);
    for (int attempt = 0; fd < 0; attempt++) {
        struct stat sb;

        util_random_hex(token, sizeof(token));
        /* The temporary name is hidden and marked so that a listing of the
         * depot or inbox never mistakes it for a finished file. */
        if (snprintf(wr->tmp_path, sizeof(wr->tmp_path), "%.*s.%s.tmp-%s",
                     (int)(strlen(wr->final_path) - strlen(base_name)), wr->final_path, base_name,
                     token) >= (int)sizeof(wr->tmp_path)) {
            s = DX_ERR_INVALID;
            goto fail;
        }
        fd = open(wr->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 && errno == ENOENT && !remade) {
            /* The folder was removed since it was made: again, once. */
            remade = 1;
            forget_parent(st, path);
            s = make_parent(st, path);
            if (s != DX_OK)
                goto fail;
            continue;
        }
        if (fd < 0) {
            s = fail_errno(st, "create", path, errno);
            goto fail;
        }
        /* The lock marks the file as having a live writer (see
         * sweep_abandoned); on a file system without flock nothing is ever
         * swept, so going on unlocked is safe.  Another writer's sweep may
         * have taken the file between open and flock: then it is gone and
         * a new name is tried. */
        if (flock(fd, LOCK_EX) == 0 && fstat(fd, &sb) == 0 && sb.st_nlink == 0) {
            close(fd);
            fd = -1;
            if (attempt == 3) {
                s = fail_errno(st, "create", path, ENOENT);
                goto fail;
            }
        }
    }
    wr->fp = fdopen(fd, "w");
    if (wr->fp == NULL) {
        s = fail_errno(st, "create", path, errno);
        close(fd);
        unlink(wr->tmp_path);
        goto fail;
    }
    *out = &wr->base;
    return DX_OK;
fail:
    free(wr);
    return s;
}

static dx_status file_write(storage_writer *base, const void *buf, size_t len)
{
    file_writer *wr = (file_writer *)base;

    if (len > 0 && fwrite(buf, 1, len, wr->fp) != len)
        return fail_errno(base->owner, "write", "", errno);
    return DX_OK;
}

static void fsync_parent(const char *abs)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(abs, '/');
    int fd;

    if (slash == NULL || (size_t)(slash - abs) >= sizeof(dir))
        return;
    memcpy(dir, abs, (size_t)(slash - abs));
    dir[slash - abs] = '\0';
    fd = open(dir[0] ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/*
 * Flushes wr to stable storage, renames it into place and, when
 * sync_folder, syncs its folder so that the new name survives a crash.
 * Frees wr whatever the outcome.
 */
static dx_status commit_file(file_writer *wr, int sync_folder)
{
    storage *st = wr->base.owner;
    dx_status s = DX_OK;

    /* Data first, then the name: after a crash the target is either the
     * old file or the complete new one. */
    if (fflush(wr->fp) != 0 || fsync(fileno(wr->fp)) != 0)
        s = fail_errno(st, "flush", "", errno);
    if (fclose(wr->fp) != 0 && s == DX_OK)
        s = fail_errno(st, "close", "", errno);
    wr->fp = NULL;
    if (s == DX_OK && rename(wr->tmp_path, wr->final_path) != 0)
        s = fail_errno(st, "rename", "", errno);
    if (s == DX_OK && sync_folder)
        fsync_parent(wr->final_path);
    else if (s != DX_OK)
        unlink(wr->tmp_path);
    free(wr);
    return s;
}

static dx_status file_writer_commit(storage_writer *base)
{
    return commit_file((file_writer *)base, 1);
}

static void file_writer_abort(storage_writer *base)
{
    file_writer *wr = (file_writer *)base;

    if (wr->fp != NULL)
        fclose(wr->fp);
    unlink(wr->tmp_path);
    free(wr);
}

/* True when the absolute paths a and b are in the same folder. */
static int same_folder(const char *a, const char *b)
{
    const char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');

    return sa != NULL && sb != NULL && sa - a == sb - b && memcmp(a, b, (size_t)(sa - a)) == 0;
}

/*
 * Commits wr, to be followed at once by the commit of next: when both are in
 * one folder, next's commit syncs it for both (storage_writer_commit_pair).
 */
static dx_status file_writer_commit_before(storage_writer *base, const storage_writer *next)
{
    file_writer *wr = (file_writer *)base;

    return commit_file(wr, !same_folder(wr->final_path, ((const file_writer *)next)->final_path));
}

static const storage_ops file_ops = {
    .scheme = "file",
    .destroy = file_destroy,
    .ping = file_ping,
    .list = file_list,
    .stat = file_stat,
    .mkdirs = file_mkdirs,
    .rename = file_rename,
    .remove = file_remove,
    .reader_open = file_reader_open,
    .read = file_read,
    .reader_close = file_reader_close,
    .writer_open = file_writer_open,
    .write = file_write,
    .writer_commit = file_writer_commit,
    .writer_commit_before = file_writer_commit_before,
    .writer_abort = file_writer_abort,
};
