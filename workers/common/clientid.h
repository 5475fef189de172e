#pragma once

#include <stddef.h>

#include "status.h"

/*
 * Client ids name folders (<inbox>/<CLIENT>/, <depot>/<CLIENT>/), so an id is
 * checked before any path is built from it: it must match CLIENT_PATTERN
 * (a POSIX extended regular expression, matched against the whole id) and,
 * whatever the pattern says, be 1 to 64 characters of [A-Za-z0-9_-].  The
 * second rule means a permissive pattern can never let "..", "/", NUL or a
 * shell metacharacter through.
 */

typedef struct clientid_rule clientid_rule;

/*
 * Compiles pattern.  On success *out is a new rule the caller frees with
 * clientid_rule_destroy(); on failure err holds a one-line reason.
 */
dx_status clientid_rule_create(clientid_rule **out, const char *pattern, char *err, size_t err_len);

/* Accepts NULL. */
void clientid_rule_destroy(clientid_rule *rule);

/* True when id is acceptable (see above). */
int clientid_valid(const clientid_rule *rule, const char *id);
