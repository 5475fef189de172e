#pragma once

#include <stddef.h>

#include "bus.h"
#include "kv.h"
#include "profile.h"

/*
 * profile_store: the `clients` key-value bucket, one profile document per
 * client id, the source of truth for every replica and pod.  The bucket
 * keeps PROFILE_STORE_HISTORY values of each key so that a change can be
 * inspected (dxctl client history) and rolled back.  Workers read a client's
 * profile again for every event they handle for it, so a change applies to
 * the next file without a restart.
 */

#define PROFILE_STORE_BUCKET  "clients"
#define PROFILE_STORE_HISTORY 64

/*
 * Opens (creating when missing) the bucket on b's connection.  *out is a kv
 * the caller frees with kv_destroy().  DX_ERR_IO with err when unreachable.
 */
dx_status profile_store_open(kv **out, bus *b, int replicas, char *err, size_t err_len);

/*
 * Reads client_id's profile into *p: the defaults (revision 0) when the
 * client has none.  DX_ERR_INVALID when the stored document is invalid
 * (written by another tool): reason names the client, the revision and the
 * problem, and *p holds the defaults, never a part of the document.
 * DX_ERR_IO when the bucket is unreachable.  k may be NULL: no profiles.
 */
dx_status profile_store_get(kv *k, const char *client_id, profile *p, char *reason,
                            size_t reason_len);
