#include "profile_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

dx_status profile_store_open(kv **out, bus *b, int replicas, char *err, size_t err_len)
{
    return kv_open_versioned(out, b, PROFILE_STORE_BUCKET, replicas, PROFILE_STORE_HISTORY, err,
                             err_len);
}

dx_status profile_store_get(kv *k, const char *client_id, profile *p, char *reason,
                            size_t reason_len)
{
    char *text = NULL, why[384];
    uint64_t revision = 0;
    dx_status s;

    profile_init(p);
    if (k == NULL)
        return DX_OK;
    s = kv_get(k, client_id, &text, &revision);
    if (s == DX_ERR_NOT_FOUND)
        return DX_OK;
    if (s != DX_OK) {
        snprintf(reason, reason_len, "cannot read the profile of %s from key-value bucket %s",
                 client_id, PROFILE_STORE_BUCKET);
        return s;
    }
    s = profile_parse(p, text, strlen(text), why, sizeof(why));
    if (s == DX_OK)
        p->revision = revision;
    else
        snprintf(reason, reason_len,
                 "client profile %s (revision %llu) is invalid, its drops are held until it is "
                 "fixed: %s",
                 client_id, (unsigned long long)revision, why);
    free(text);
    return s;
}
