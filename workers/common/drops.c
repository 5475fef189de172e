#include "drops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "metrics.h"

static int ends_with(const char *s, const char *suffix)
{
    size_t len = strlen(s), suffix_len = strlen(suffix);

    return len >= suffix_len && strcasecmp(s + len - suffix_len, suffix) == 0;
}

int drops_is_candidate(const storage_entry *entry)
{
    const char *name = entry->name;

    if (entry->kind != STORAGE_FILE || name[0] == '.' || name[0] == '~')
        return 0;
    if (!ends_with(name, ".csv") || strlen(name) <= 4)
        return 0;
    /* "orders.csv.part" does not end in .csv, but "orders.part.csv" or
     * "orders.tmp.csv" are written by some uploaders too. */
    return strstr(name, ".part.") == NULL && strstr(name, ".tmp.") == NULL &&
           strstr(name, ".filepart") == NULL;
}

dx_status drops_list(storage *inbox, const char *client_id, storage_entry **entries, size_t *count)
{
    storage_entry *all = NULL;
    size_t all_count = 0, kept = 0;
    dx_status s = storage_list(inbox, client_id, &all, &all_count);

    if (s != DX_OK)
        return s;
    for (size_t i = 0; i < all_count; i++) {
        if (drops_is_candidate(&all[i])) {
            all[kept++] = all[i];
            continue;
        }
        /* A link (or a device, a socket) named like a drop is never read
         * nor followed out of the storage root; an operator should know it
         * is there, since its client believes it sent a file. */
        if (all[i].kind == STORAGE_OTHER && ends_with(all[i].name, ".csv")) {
            metrics_add("dx_invalid_input_total", "not_regular_file", 1);
            log_printf(LOG_LEVEL_WARN, &(log_ctx){NULL, NULL, client_id, NULL},
                       "skipped %s/%s: a symbolic link or special file is never taken as a drop",
                       client_id, all[i].name);
        }
        free(all[i].name);
    }
    *entries = all;
    *count = kept;
    return DX_OK;
}

void drops_stem(const char *name, char *stem, size_t stem_len)
{
    size_t len = strlen(name);

    if (ends_with(name, ".csv"))
        len -= 4;
    snprintf(stem, stem_len, "%.*s", (int)len, name);
}

int drops_marker_name(const char *name, const char *marker, char *out, size_t out_len)
{
    return snprintf(out, out_len, "%s%s", name, marker) < (int)out_len ? 0 : -1;
}

int drops_has_marker(storage *inbox, const char *client_id, const char *name, const char *marker)
{
    char path[1024];
    storage_entry e;

    if (snprintf(path, sizeof(path), "%s/%s%s", client_id, name, marker) >= (int)sizeof(path))
        return 0;
    return storage_stat(inbox, path, &e) == DX_OK && e.kind == STORAGE_FILE;
}
