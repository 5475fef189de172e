#include "clientid.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLIENT_ID_MAX 64

struct clientid_rule {
    regex_t regex;
};

dx_status clientid_rule_create(clientid_rule **out, const char *pattern, char *err, size_t err_len)
{
    clientid_rule *rule = NULL;
    char *anchored = NULL;
    size_t len = strlen(pattern);
    int rc;

    rule = calloc(1, sizeof(*rule));
    anchored = malloc(len + 5);
    if (rule == NULL || anchored == NULL) {
        free(rule);
        free(anchored);
        snprintf(err, err_len, "out of memory");
        return DX_ERR_NOMEM;
    }
    /* Anchor whatever the operator wrote, so "US[0-9]+" cannot match "xUS1y". */
    snprintf(anchored, len + 5, "^(%s)$", pattern);
    rc = regcomp(&rule->regex, anchored, REG_EXTENDED | REG_NOSUB);
    free(anchored);
    if (rc != 0) {
        char why[128];

        regerror(rc, &rule->regex, why, sizeof(why));
        snprintf(err, err_len, "CLIENT_PATTERN is not a valid regular expression: %s", why);
        free(rule);
        return DX_ERR_INVALID;
    }
    *out = rule;
    return DX_OK;
}

void clientid_rule_destroy(clientid_rule *rule)
{
    if (rule == NULL)
        return;
    regfree(&rule->regex);
    free(rule);
}

static int safe_chars(const char *id)
{
    size_t len = 0;

    for (const char *p = id; *p; p++, len++) {
        char c = *p;

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return len >= 1 && len <= CLIENT_ID_MAX;
}

int clientid_valid(const clientid_rule *rule, const char *id)
{
    if (id == NULL || !safe_chars(id))
        return 0;
    return regexec(&rule->regex, id, 0, NULL, 0) == 0;
}
