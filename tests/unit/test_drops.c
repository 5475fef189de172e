/*
 * drops.c: what counts as a drop (README "Drops"): a regular .csv file
 * directly in the client folder, not named like an upload in progress, never
 * a symbolic link; listed sorted by name, with links counted and logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drops.h"
#include "log.h"
#include "metrics.h"
#include "testing.h"

static int candidate(const char *name, storage_kind kind)
{
    storage_entry e = {.name = (char *)name, .kind = kind, .size = 10, .mtime = 1};

    return drops_is_candidate(&e);
}

static void test_names(void)
{
    static const char *taken[] = {"input.csv",   "INPUT.CSV",   "orders-2026-11-24.Csv", "a.csv",
                                  "x.parts.csv", "my.tmpl.csv", "name with space.csv"};
    static const char *refused[] = {".input.csv",     ".csv",           "csv",
                                    "input.csv.part", "input.part.csv", "input.tmp.csv",
                                    "input.csv.tmp",  "input.filepart", "input.csv.filepart",
                                    "~input.csv",     "input.txt",      "input.csv.gz",
                                    "input.csv~",     "input.csvx",     "",
                                    ".x.tmp-0123abcd"};

    for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++) {
        testing_checks++;
        if (!candidate(taken[i], STORAGE_FILE))
            testing_fail(__FILE__, __LINE__, "\"%s\" is a drop", taken[i]);
    }
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        testing_checks++;
        if (candidate(refused[i], STORAGE_FILE))
            testing_fail(__FILE__, __LINE__, "\"%s\" is not a drop", refused[i]);
    }
    /* The kind decides before the name. */
    CHECK(!candidate("input.csv", STORAGE_DIR));
    CHECK(!candidate("input.csv", STORAGE_OTHER));
}

static void test_stem(void)
{
    char stem[16];

    drops_stem("input.csv", stem, sizeof(stem));
    CHECK_EQ_STR(stem, "input");
    drops_stem("INPUT.CSV", stem, sizeof(stem));
    CHECK_EQ_STR(stem, "INPUT");
    drops_stem("a.b.csv", stem, sizeof(stem));
    CHECK_EQ_STR(stem, "a.b");
    drops_stem("noext", stem, sizeof(stem));
    CHECK_EQ_STR(stem, "noext");
    drops_stem("a-very-long-name-indeed.csv", stem, sizeof(stem));
    CHECK_EQ_STR(stem, "a-very-long-nam"); /* cut to fit, terminated */
}

static void put(const char *root, const char *rel, const char *text)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    f = fopen(path, "w");
    if (f == NULL) {
        testing_fail(__FILE__, __LINE__, "cannot write %s", path);
        return;
    }
    fputs(text, f);
    fclose(f);
}

static int metric_has(const char *line)
{
    char *text = metrics_render();
    int found = text != NULL && strstr(text, line) != NULL;

    free(text);
    return found;
}

static void test_list(void)
{
    char root[] = "/tmp/dx-drops-XXXXXX";
    char url[64], err[256], path[512], target[512];
    storage *st = NULL;
    storage_entry *entries = NULL;
    size_t count = 0;

    CHECK(mkdtemp(root) != NULL);
    snprintf(url, sizeof(url), "file://%s", root);
    CHECK_EQ_INT(storage_create(&st, url, err, sizeof(err)), DX_OK);
    if (st == NULL)
        return;
    CHECK_EQ_INT(drops_list(st, "US1", &entries, &count), DX_ERR_NOT_FOUND);

    snprintf(path, sizeof(path), "%s/US1", root);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/US1/archive", root);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/US1/sub.csv", root);
    mkdir(path, 0755); /* a folder named like a drop */
    put(root, "US1/b.csv", "b\n");
    put(root, "US1/a.csv", "a\n");
    put(root, "US1/.c.csv", "hidden\n");
    put(root, "US1/d.csv.part", "uploading\n");
    put(root, "US1/notes.txt", "n\n");
    put(root, "US1/archive/old.csv", "old\n");
    snprintf(target, sizeof(target), "%s/US1/a.csv", root);
    snprintf(path, sizeof(path), "%s/US1/link.csv", root);
    CHECK_EQ_INT(symlink(target, path), 0);

    CHECK_EQ_INT(drops_list(st, "US1", &entries, &count), DX_OK);
    CHECK_EQ_INT(count, 2);
    if (count == 2) {
        CHECK_EQ_STR(entries[0].name, "a.csv");
        CHECK_EQ_STR(entries[1].name, "b.csv");
        CHECK_EQ_INT(entries[0].size, 2);
        CHECK(entries[0].mtime > 0);
    }
    storage_entries_free(entries, count);
    /* The link is refused, and counted so that an operator sees it. */
    CHECK(metric_has("dx_invalid_input_total{kind=\"not_regular_file\"} 1"));

    snprintf(path, sizeof(path), "rm -rf '%s'", root);
    CHECK_EQ_INT(system(path), 0);
    storage_destroy(st);
}

int main(void)
{
    log_init("test_drops");
    log_set_level("error"); /* the link's warning is expected */
    metrics_define_standard("test_drops");
    test_names();
    test_stem();
    test_list();
    metrics_reset();
    return testing_finish("test_drops");
}
