/* The file:// backend: listing, atomic writes, renames, symlink refusal. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage.h"
#include "testing.h"

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

int main(void)
{
    char root[] = "/tmp/dx-storage-XXXXXX";
    char url[64], err[256], path[256], buf[64];
    storage *st = NULL;
    storage_writer *wr = NULL;
    storage_reader *rd = NULL;
    storage_entry *entries = NULL, entry;
    size_t count = 0, got = 0;

    CHECK(mkdtemp(root) != NULL);
    snprintf(url, sizeof(url), "file://%s", root);
    CHECK_EQ_INT(storage_create(&st, "file://relative", NULL, err, sizeof(err)), DX_ERR_INVALID);
    CHECK_EQ_INT(storage_create(&st, "ftp://x/y", NULL, err, sizeof(err)), DX_ERR_INVALID);
    CHECK_EQ_INT(storage_create(&st, url, NULL, err, sizeof(err)), DX_OK);
    CHECK_EQ_INT(storage_ping(st), DX_OK);

    /* Path rules. */
    CHECK(storage_path_valid("US1/input.csv"));
    CHECK(storage_path_valid(""));
    CHECK(!storage_path_valid("/etc/passwd"));
    CHECK(!storage_path_valid("US1/../US2"));
    CHECK(!storage_path_valid("US1//x"));
    CHECK(!storage_path_valid("./x"));
    CHECK(!storage_path_valid("US1/"));
    CHECK(!storage_path_valid("a\nb"));
    CHECK_EQ_INT(storage_reader_open(st, "../etc/passwd", &rd), DX_ERR_INVALID);

    /* An atomic write is invisible until committed. */
    CHECK_EQ_INT(storage_writer_open(st, "US1/2026-11-24/out.csv", &wr), DX_OK);
    CHECK_EQ_INT(storage_write(wr, "a,b\n", 4), DX_OK);
    snprintf(path, sizeof(path), "%s/US1/2026-11-24/out.csv", root);
    CHECK(access(path, F_OK) != 0);
    CHECK_EQ_INT(storage_list(st, "US1/2026-11-24", &entries, &count), DX_OK);
    CHECK_EQ_INT(count, 1); /* only the hidden temporary file */
    CHECK(count == 1 && entries[0].name[0] == '.');
    storage_entries_free(entries, count);
    CHECK_EQ_INT(storage_writer_commit(wr), DX_OK);
    CHECK(access(path, F_OK) == 0);
    snprintf(path, sizeof(path), "%s/US1/2026-11-24", root);
    CHECK_EQ_INT(count_entries(path), 1);

    /* An aborted write leaves nothing. */
    CHECK_EQ_INT(storage_writer_open(st, "US1/2026-11-24/gone.csv", &wr), DX_OK);
    CHECK_EQ_INT(storage_write(wr, "x", 1), DX_OK);
    storage_writer_abort(wr);
    CHECK_EQ_INT(count_entries(path), 1);

    /* A pair: both renamed, the first before the second, in one folder or
     * in two; when the second cannot be renamed (its temporary file was
     * removed behind its back), *committed says the first one was. */
    {
        storage_writer *first = NULL, *second = NULL;
        int committed = -1;

        CHECK_EQ_INT(storage_writer_open(st, "pair/a.rejects.csv", &first), DX_OK);
        CHECK_EQ_INT(storage_writer_open(st, "pair/a.csv", &second), DX_OK);
        CHECK_EQ_INT(storage_write(second, "a\n", 2), DX_OK);
        CHECK_EQ_INT(storage_writer_commit_pair(first, second, &committed), DX_OK);
        CHECK_EQ_INT(committed, 2);
        CHECK_EQ_INT(storage_stat(st, "pair/a.csv", &entry), DX_OK);
        CHECK_EQ_INT(entry.size, 2);
        CHECK_EQ_INT(storage_stat(st, "pair/a.rejects.csv", &entry), DX_OK);
        snprintf(path, sizeof(path), "%s/pair", root);
        CHECK_EQ_INT(count_entries(path), 2); /* no temporary file left */

        CHECK_EQ_INT(storage_writer_open(st, "pair/one/b.csv", &first), DX_OK);
        CHECK_EQ_INT(storage_writer_open(st, "pair/two/b.csv", &second), DX_OK);
        CHECK_EQ_INT(storage_writer_commit_pair(first, second, &committed), DX_OK);
        CHECK_EQ_INT(committed, 2);
        CHECK_EQ_INT(storage_stat(st, "pair/one/b.csv", &entry), DX_OK);
        CHECK_EQ_INT(storage_stat(st, "pair/two/b.csv", &entry), DX_OK);

        CHECK_EQ_INT(storage_writer_open(st, "pair/c.rejects.csv", &first), DX_OK);
        CHECK_EQ_INT(storage_writer_open(st, "pair/three/c.csv", &second), DX_OK);
        CHECK_EQ_INT(storage_list(st, "pair/three", &entries, &count), DX_OK);
        CHECK_EQ_INT(count, 1);
        if (count == 1) {
            snprintf(path, sizeof(path), "%s/pair/three/%s", root, entries[0].name);
            CHECK_EQ_INT(unlink(path), 0);
        }
        storage_entries_free(entries, count);
        CHECK(storage_writer_commit_pair(first, second, &committed) != DX_OK);
        CHECK_EQ_INT(committed, 1);
        CHECK_EQ_INT(storage_stat(st, "pair/c.rejects.csv", &entry), DX_OK);
        CHECK(storage_stat(st, "pair/three/c.csv", &entry) != DX_OK);
    }

    /* Read back. */
    CHECK_EQ_INT(storage_reader_open(st, "US1/2026-11-24/out.csv", &rd), DX_OK);
    CHECK_EQ_INT(storage_read(rd, buf, sizeof(buf), &got), DX_OK);
    CHECK_EQ_INT(got, 4);
    CHECK_EQ_INT(storage_read(rd, buf, sizeof(buf), &got), DX_OK);
    CHECK_EQ_INT(got, 0);
    storage_reader_close(rd);

    /* Listings come sorted by name, whatever order the folder keeps. */
    for (int i = 0; i < 16; i++) {
        snprintf(path, sizeof(path), "sorted/%c%d.csv", "pmxbqaznfkcwhdly"[i], i);
        CHECK_EQ_INT(storage_writer_open(st, path, &wr), DX_OK);
        CHECK_EQ_INT(storage_writer_commit(wr), DX_OK);
    }
    CHECK_EQ_INT(storage_list(st, "sorted", &entries, &count), DX_OK);
    CHECK_EQ_INT(count, 16);
    for (size_t i = 1; i < count; i++)
        CHECK(strcmp(entries[i - 1].name, entries[i].name) < 0);
    storage_entries_free(entries, count);

    /* Rename creates the parents and replaces the target. */
    CHECK_EQ_INT(storage_rename(st, "US1/2026-11-24/out.csv", "US1/archive/2026-11-24/out.csv"),
                 DX_OK);
    CHECK_EQ_INT(storage_stat(st, "US1/archive/2026-11-24/out.csv", &entry), DX_OK);
    CHECK_EQ_INT(entry.kind, STORAGE_FILE);
    CHECK_EQ_INT(entry.size, 4);
    CHECK_EQ_INT(storage_stat(st, "US1/nope", &entry), DX_ERR_NOT_FOUND);

    /* A listed name that storage paths refuse (a newline) can only be
     * renamed by storage_rename_listed(), and only as one component. */
    {
        FILE *f;

        snprintf(path, sizeof(path), "%s/US1/bad\nname.csv", root);
        f = fopen(path, "w");
        CHECK(f != NULL && fputs("x", f) >= 0 && fclose(f) == 0);
        CHECK_EQ_INT(storage_rename(st, "US1/bad\nname.csv", "US1/failed/bad_name.csv"),
                     DX_ERR_INVALID);
        CHECK_EQ_INT(storage_rename_listed(st, "US1", "../US1/bad\nname.csv", "US1/x.csv"),
                     DX_ERR_INVALID);
        CHECK_EQ_INT(storage_rename_listed(st, "US1", "..", "US1/x.csv"), DX_ERR_INVALID);
        CHECK_EQ_INT(storage_rename_listed(st, "US1", "bad\nname.csv", "US1/failed/\n.csv"),
                     DX_ERR_INVALID);
        CHECK_EQ_INT(storage_rename_listed(st, "US1", "bad\nname.csv", "US1/failed/bad_name.csv"),
                     DX_OK);
        CHECK_EQ_INT(storage_stat(st, "US1/failed/bad_name.csv", &entry), DX_OK);
        CHECK(access(path, F_OK) != 0);
    }

    /* A symlink in a client folder is listed as OTHER and cannot be opened,
     * and a symlinked folder cannot be walked through. */
    snprintf(path, sizeof(path), "%s/US1/evil.csv", root);
    CHECK(symlink("/etc/passwd", path) == 0);
    snprintf(path, sizeof(path), "%s/US9", root);
    CHECK(symlink("/etc", path) == 0);
    CHECK_EQ_INT(storage_list(st, "US1", &entries, &count), DX_OK);
    for (size_t i = 0; i < count; i++)
        if (strcmp(entries[i].name, "evil.csv") == 0)
            CHECK_EQ_INT(entries[i].kind, STORAGE_OTHER);
    storage_entries_free(entries, count);
    CHECK(storage_reader_open(st, "US1/evil.csv", &rd) != DX_OK);
    CHECK(storage_reader_open(st, "US9/passwd", &rd) != DX_OK);
    CHECK(storage_list(st, "US9", &entries, &count) != DX_OK);
    CHECK(storage_writer_open(st, "US9/x.csv", &wr) != DX_OK);

    /* A folder made once is not made again for every file, but one
     * removed behind the storage's back is made again, for a write and for
     * a rename; one replaced by a symbolic link is still refused. */
    CHECK_EQ_INT(storage_writer_open(st, "US2/2026-11-25/a.csv", &wr), DX_OK);
    CHECK_EQ_INT(storage_writer_commit(wr), DX_OK);
    snprintf(path, sizeof(path), "rm -rf '%s/US2'", root);
    CHECK(system(path) == 0);
    CHECK_EQ_INT(storage_writer_open(st, "US2/2026-11-25/b.csv", &wr), DX_OK);
    CHECK_EQ_INT(storage_write(wr, "b", 1), DX_OK);
    CHECK_EQ_INT(storage_writer_commit(wr), DX_OK);
    CHECK_EQ_INT(storage_stat(st, "US2/2026-11-25/b.csv", &entry), DX_OK);
    CHECK_EQ_INT(storage_rename(st, "US2/2026-11-25/b.csv", "US2/archive/2026-11-25/b.csv"), DX_OK);
    snprintf(path, sizeof(path), "rm -rf '%s/US2/archive'", root);
    CHECK(system(path) == 0);
    CHECK_EQ_INT(storage_writer_open(st, "US2/2026-11-25/c.csv", &wr), DX_OK);
    CHECK_EQ_INT(storage_writer_commit(wr), DX_OK);
    CHECK_EQ_INT(storage_rename(st, "US2/2026-11-25/c.csv", "US2/archive/2026-11-25/c.csv"), DX_OK);
    CHECK_EQ_INT(storage_stat(st, "US2/archive/2026-11-25/c.csv", &entry), DX_OK);
    snprintf(path, sizeof(path), "rm -rf '%s/US2/2026-11-25' && ln -s /tmp '%s/US2/2026-11-25'",
             root, root);
    CHECK(system(path) == 0);
    CHECK_EQ_INT(storage_writer_open(st, "US2/2026-11-25/d.csv", &wr), DX_ERR_INVALID);
    CHECK_EQ_INT(storage_rename(st, "US2/archive/2026-11-25/c.csv", "US2/2026-11-25/c.csv"),
                 DX_ERR_INVALID);

    storage_destroy(st);
    snprintf(path, sizeof(path), "rm -rf '%s'", root);
    CHECK(system(path) == 0);
    return testing_finish("test_storage_file");
}
