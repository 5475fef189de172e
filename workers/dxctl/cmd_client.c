/*
 * dxctl client: the profiles in the `clients` bucket.  Every write is
 * validated first (profile_parse) and refused with the reason; `set` is a
 * compare-and-swap on the revision it read, so two operators editing at once
 * cannot lose a change silently.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dxctl.h"
#include "profile_store.h"
#include "util.h"

static const char client_usage[] =
    "usage: dxctl client list\n"
    "       dxctl client get ID\n"
    "       dxctl client set ID FILE          (FILE: a JSON profile, - for stdin)\n"
    "       dxctl client set ID KEY=VALUE...  (VALUE is JSON when it parses, else a string;\n"
    "                                          aliases.HEADER=COLUMN sets one alias;\n"
    "                                          KEY= removes KEY)\n"
    "       dxctl client history ID\n"
    "       dxctl client import FILE          (one JSON object: {\"ID\": {profile}, ...})\n"
    "       dxctl client export\n"
    "Keys: description aliases date_order decimal_separator thousands_separator\n"
    "default_currency order_date_offset_days enabled done_marker expected_drop_time\n"
    "expected_drop_days notify (docs/profiles.md).\n";

/* Validates text; prints the reason and returns DXCTL_FAILED when refused. */
static int validate(const char *id, const char *text, profile *p)
{
    char reason[512];

    if (profile_parse(p, text, strlen(text), reason, sizeof(reason)) != DX_OK) {
        dxctl_error("profile of %s refused: %s", id, reason);
        return DXCTL_FAILED;
    }
    return DXCTL_OK;
}

/* The stored form: compact JSON, so that history entries compare as text. */
static char *canonical(const char *text)
{
    cJSON *doc = cJSON_Parse(text);
    char *out = doc != NULL ? cJSON_PrintUnformatted(doc) : NULL;

    cJSON_Delete(doc);
    return out;
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every profile as {id: {"revision": N, "profile": {...}}}, sorted by id. */
static int read_all(dxctl *d, cJSON **out)
{
    char **keys = NULL;
    size_t count = 0;
    cJSON *all;
    int rc = dxctl_profiles(d);

    if (rc != DXCTL_OK)
        return rc;
    if (kv_keys(d->store, &keys, &count) != DX_OK) {
        dxctl_error("cannot list bucket %s", PROFILE_STORE_BUCKET);
        return DXCTL_UNAVAILABLE;
    }
    qsort(keys, count, sizeof(*keys), compare_keys);
    all = cJSON_CreateObject();
    for (size_t i = 0; i < count; i++) {
        char *text = NULL;
        uint64_t rev = 0;
        cJSON *entry, *doc;

        if (kv_get(d->store, keys[i], &text, &rev) != DX_OK)
            continue; /* deleted since the listing */
        doc = cJSON_Parse(text);
        entry = cJSON_AddObjectToObject(all, keys[i]);
        cJSON_AddNumberToObject(entry, "revision", (double)rev);
        /* An invalid document (written by another tool) is shown as text. */
        cJSON_AddItemToObject(entry, "profile", doc ? doc : cJSON_CreateString(text));
        free(text);
    }
    kv_keys_free(keys, count);
    *out = all;
    return DXCTL_OK;
}

static int client_list(dxctl *d)
{
    cJSON *all = NULL, *entry;
    int rc = read_all(d, &all);

    if (rc != DXCTL_OK)
        return rc;
    if (d->json) {
        dxctl_print_json(all, 0);
        return DXCTL_OK;
    }
    printf("%-16s %8s  %-7s %-5s %7s %-10s %6s  %s\n", "CLIENT", "REVISION", "STATE", "DATES",
           "ALIASES", "MARKER", "OFFSET", "CHECK");
    cJSON_ArrayForEach(entry, all)
    {
        const cJSON *doc = cJSON_GetObjectItemCaseSensitive(entry, "profile");
        char *text = cJSON_PrintUnformatted(doc), reason[512] = "";
        profile p;
        int ok =
            text != NULL && profile_parse(&p, text, strlen(text), reason, sizeof(reason)) == DX_OK;

        if (!ok)
            profile_init(&p);
        printf("%-16s %8.0f  %-7s %-5s %7zu %-10s %+6d  %s\n", entry->string,
               cJSON_GetObjectItemCaseSensitive(entry, "revision")->valuedouble,
               p.enabled ? "active" : "paused", profile_date_order_name(p.date_order),
               p.alias_count, p.done_marker[0] ? p.done_marker : "-", p.order_date_offset_days,
               ok ? "ok" : reason);
        free(text);
    }
    cJSON_Delete(all);
    return DXCTL_OK;
}

static int client_get(dxctl *d, const char *id)
{
    char *text = NULL;
    uint64_t rev = 0;
    cJSON *doc, *o;
    dx_status s;
    int rc = dxctl_profiles(d);

    if (rc != DXCTL_OK)
        return rc;
    s = kv_get(d->store, id, &text, &rev);
    if (s == DX_ERR_NOT_FOUND) {
        dxctl_error("%s has no profile (it gets the defaults)", id);
        return DXCTL_FAILED;
    }
    if (s != DX_OK) {
        dxctl_error("cannot read %s from bucket %s", id, PROFILE_STORE_BUCKET);
        return DXCTL_UNAVAILABLE;
    }
    doc = cJSON_Parse(text);
    if (d->json) {
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "client_id", id);
        cJSON_AddNumberToObject(o, "revision", (double)rev);
        cJSON_AddItemToObject(o, "profile", doc ? doc : cJSON_CreateString(text));
        dxctl_print_json(o, 0);
    } else {
        printf("# %s, revision %llu\n", id, (unsigned long long)rev);
        if (doc != NULL)
            dxctl_print_json(doc, 1);
        else
            printf("%s\n", text);
    }
    free(text);
    return DXCTL_OK;
}

/* Applies one KEY=VALUE to doc; returns DXCTL_OK or DXCTL_USAGE. */
static int apply_assignment(cJSON *doc, const char *arg)
{
    const char *eq = strchr(arg, '=');
    char key[256];
    cJSON *value, *target = doc;

    if (eq == NULL || eq == arg || (size_t)(eq - arg) >= sizeof(key)) {
        dxctl_error("%s: expected KEY=VALUE", arg);
        return DXCTL_USAGE;
    }
    snprintf(key, sizeof(key), "%.*s", (int)(eq - arg), arg);
    if (strncmp(key, "aliases.", 8) == 0 && key[8] != '\0') {
        target = cJSON_GetObjectItemCaseSensitive(doc, "aliases");
        if (!cJSON_IsObject(target)) {
            cJSON_DeleteItemFromObjectCaseSensitive(doc, "aliases");
            target = cJSON_AddObjectToObject(doc, "aliases");
        }
        memmove(key, key + 8, strlen(key + 8) + 1);
    }
    cJSON_DeleteItemFromObjectCaseSensitive(target, key);
    if (eq[1] == '\0')
        return DXCTL_OK; /* KEY= removes it */
    value = cJSON_Parse(eq + 1);
    if (value == NULL)
        value = cJSON_CreateString(eq + 1);
    cJSON_AddItemToObject(target, key, value);
    return DXCTL_OK;
}

/* Writes text as id's profile: created when absent, else swapped at rev. */
static int write_profile(dxctl *d, const char *id, const char *text, int exists, uint64_t rev)
{
    char *stored = canonical(text);
    uint64_t new_rev = 0;
    dx_status s;

    if (stored == NULL)
        return DXCTL_FAILED;
    s = exists ? kv_update(d->store, id, stored, rev, &new_rev)
               : kv_create(d->store, id, stored, &new_rev);
    free(stored);
    if (s == DX_ERR_EXISTS || s == DX_ERR_NOT_FOUND) {
        dxctl_error("%s's profile changed while it was edited: read it again and retry", id);
        return DXCTL_FAILED;
    }
    if (s != DX_OK) {
        dxctl_error("cannot write %s in bucket %s", id, PROFILE_STORE_BUCKET);
        return DXCTL_UNAVAILABLE;
    }
    if (d->json) {
        cJSON *o = cJSON_CreateObject();

        cJSON_AddStringToObject(o, "client_id", id);
        cJSON_AddNumberToObject(o, "revision", (double)new_rev);
        dxctl_print_json(o, 0);
    } else {
        printf("%s: profile saved, revision %llu\n", id, (unsigned long long)new_rev);
    }
    return DXCTL_OK;
}

static int client_set(dxctl *d, const char *id, int argc, char **argv)
{
    char *current = NULL, *text = NULL;
    uint64_t rev = 0;
    size_t len = 0;
    cJSON *doc = NULL;
    profile p;
    dx_status s;
    int rc = dxctl_profiles(d);

    if (rc != DXCTL_OK)
        return rc;
    s = kv_get(d->store, id, &current, &rev);
    if (s != DX_OK && s != DX_ERR_NOT_FOUND) {
        dxctl_error("cannot read %s from bucket %s", id, PROFILE_STORE_BUCKET);
        return DXCTL_UNAVAILABLE;
    }
    if (argc == 1 && strchr(argv[0], '=') == NULL) {
        text = dxctl_read_file(argv[0], PROFILE_TEXT_MAX, &len);
        if (text == NULL) {
            dxctl_error("cannot read %s: %s", argv[0], strerror(errno));
            rc = DXCTL_USAGE;
            goto done;
        }
    } else {
        doc = s == DX_OK ? cJSON_Parse(current) : cJSON_CreateObject();
        if (!cJSON_IsObject(doc)) {
            /* An invalid stored document is replaced by the assignments. */
            cJSON_Delete(doc);
            doc = cJSON_CreateObject();
        }
        for (int i = 0; i < argc && rc == DXCTL_OK; i++)
            rc = apply_assignment(doc, argv[i]);
        if (rc != DXCTL_OK)
            goto done;
        text = cJSON_PrintUnformatted(doc);
    }
    rc = validate(id, text, &p);
    if (rc == DXCTL_OK)
        rc = write_profile(d, id, text, s == DX_OK, rev);
done:
    cJSON_Delete(doc);
    free(text);
    free(current);
    return rc;
}

static int client_history(dxctl *d, const char *id)
{
    kv_version *versions = NULL;
    size_t count = 0;
    dx_status s;
    cJSON *list;
    int rc = dxctl_profiles(d);

    if (rc != DXCTL_OK)
        return rc;
    s = kv_history(d->store, id, &versions, &count);
    if (s == DX_ERR_NOT_FOUND) {
        dxctl_error("%s has no profile history", id);
        return DXCTL_FAILED;
    }
    if (s != DX_OK) {
        dxctl_error("cannot read the history of %s", id);
        return DXCTL_UNAVAILABLE;
    }
    list = cJSON_CreateArray();
    if (!d->json)
        printf("%8s  %-24s  %s\n", "REVISION", "WRITTEN (UTC)", "PROFILE");
    for (size_t i = 0; i < count; i++) {
        char at[32];

        util_rfc3339(at, versions[i].created_ms);
        if (d->json) {
            cJSON *o = cJSON_CreateObject();
            cJSON *doc = cJSON_Parse(versions[i].value);

            cJSON_AddNumberToObject(o, "revision", (double)versions[i].revision);
            cJSON_AddStringToObject(o, "written_at", at);
            cJSON_AddBoolToObject(o, "deleted", versions[i].deleted);
            cJSON_AddItemToObject(o, "profile", doc ? doc : cJSON_CreateString(versions[i].value));
            cJSON_AddItemToArray(list, o);
        } else {
            printf("%8llu  %-24s  %s\n", (unsigned long long)versions[i].revision, at,
                   versions[i].deleted ? "(deleted)" : versions[i].value);
        }
    }
    kv_history_free(versions, count);
    if (d->json)
        dxctl_print_json(list, 0);
    else
        cJSON_Delete(list);
    return DXCTL_OK;
}

/* All or nothing: every profile of the document is validated before any is written. */
static int client_import(dxctl *d, const char *path)
{
    size_t len = 0, written = 0;
    char *text = dxctl_read_file(path, 16u << 20, &len);
    cJSON *doc = text ? cJSON_Parse(text) : NULL, *entry;
    int rc = DXCTL_OK;

    if (text == NULL) {
        dxctl_error("cannot read %s: %s", path, strerror(errno));
        return DXCTL_USAGE;
    }
    if (!cJSON_IsObject(doc)) {
        dxctl_error("%s: expected one JSON object {\"CLIENT\": {profile}, ...}", path);
        rc = DXCTL_FAILED;
    }
    cJSON_ArrayForEach(entry, (rc == DXCTL_OK ? doc : NULL))
    {
        /* An export's {"revision", "profile"} entries import as their profile. */
        cJSON *p = cJSON_GetObjectItemCaseSensitive(entry, "profile");
        char *one = cJSON_PrintUnformatted(cJSON_IsObject(p) ? p : entry);
        profile parsed;

        rc = dxctl_check_client(d, entry->string);
        if (rc == DXCTL_OK)
            rc = validate(entry->string, one, &parsed);
        free(one);
        if (rc != DXCTL_OK)
            break;
    }
    if (rc == DXCTL_OK)
        rc = dxctl_profiles(d);
    cJSON_ArrayForEach(entry, (rc == DXCTL_OK ? doc : NULL))
    {
        cJSON *p = cJSON_GetObjectItemCaseSensitive(entry, "profile");
        char *one = cJSON_PrintUnformatted(cJSON_IsObject(p) ? p : entry);
        char *stored = canonical(one), *current = NULL;
        uint64_t rev = 0;

        /* Unchanged profiles keep their revision (and history). */
        if (kv_get(d->store, entry->string, &current, &rev) != DX_OK || current == NULL ||
            strcmp(current, stored) != 0) {
            if (kv_put(d->store, entry->string, stored, NULL) != DX_OK)
                rc = DXCTL_UNAVAILABLE;
            else
                written++;
        }
        free(current);
        free(stored);
        free(one);
    }
    if (rc == DXCTL_OK && !d->json)
        printf("%d profiles imported, %zu changed\n", cJSON_GetArraySize(doc), written);
    cJSON_Delete(doc);
    free(text);
    return rc;
}

static int client_export(dxctl *d)
{
    cJSON *all = NULL, *out, *entry;
    int rc = read_all(d, &all);

    if (rc != DXCTL_OK)
        return rc;
    /* The export is the import's input: {id: profile}. */
    out = cJSON_CreateObject();
    cJSON_ArrayForEach(entry, all) cJSON_AddItemToObject(
        out, entry->string, cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(entry, "profile"), 1));
    cJSON_Delete(all);
    dxctl_print_json(out, !d->json);
    return DXCTL_OK;
}

int cmd_client(dxctl *d, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    int rc;

    if (argc < 2 || dxctl_is_help(sub)) {
        fputs(client_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? DXCTL_USAGE : DXCTL_OK;
    }
    if (argc > 2 && dxctl_is_help(argv[2])) {
        fputs(client_usage, stdout);
        return DXCTL_OK;
    }
    if (strcmp(sub, "list") == 0 && argc == 2)
        return client_list(d);
    if (strcmp(sub, "export") == 0 && argc == 2)
        return client_export(d);
    if (strcmp(sub, "import") == 0 && argc == 3)
        return client_import(d, argv[2]);
    if ((strcmp(sub, "get") == 0 || strcmp(sub, "history") == 0) && argc == 3) {
        rc = dxctl_check_client(d, argv[2]);
        if (rc != DXCTL_OK)
            return rc;
        return sub[0] == 'g' ? client_get(d, argv[2]) : client_history(d, argv[2]);
    }
    if (strcmp(sub, "set") == 0 && argc >= 4) {
        rc = dxctl_check_client(d, argv[2]);
        return rc != DXCTL_OK ? rc : client_set(d, argv[2], argc - 3, argv + 3);
    }
    dxctl_error("client %s: wrong arguments", sub);
    fputs(client_usage, stderr);
    return DXCTL_USAGE;
}
