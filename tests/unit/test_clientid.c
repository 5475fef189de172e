#include "clientid.h"
#include "testing.h"

int main(void)
{
    clientid_rule *rule = NULL, *loose = NULL;
    char err[256];

    CHECK_EQ_INT(clientid_rule_create(&rule, "^US[0-9]+$", err, sizeof(err)), DX_OK);
    CHECK(clientid_valid(rule, "US1"));
    CHECK(clientid_valid(rule, "US1234"));
    CHECK(!clientid_valid(rule, "us1"));
    CHECK(!clientid_valid(rule, "US"));
    CHECK(!clientid_valid(rule, "../US1"));
    CHECK(!clientid_valid(rule, "US1/../US2"));
    CHECK(!clientid_valid(rule, "US1;rm"));
    CHECK(!clientid_valid(rule, "US1\n"));
    CHECK(!clientid_valid(rule, ""));
    CHECK(!clientid_valid(rule, NULL));
    /* An unanchored pattern is anchored, and a permissive one still cannot
     * let path or shell characters through. */
    CHECK_EQ_INT(clientid_rule_create(&loose, ".*", err, sizeof(err)), DX_OK);
    CHECK(clientid_valid(loose, "acme-fr_2"));
    CHECK(!clientid_valid(loose, ".."));
    CHECK(!clientid_valid(loose, "a/b"));
    CHECK(!clientid_valid(loose, "a b"));
    CHECK(!clientid_valid(loose, "$(id)"));
    CHECK(!clientid_valid(loose,
                          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
    clientid_rule_destroy(loose);
    loose = NULL;
    CHECK_EQ_INT(clientid_rule_create(&loose, "US[0-9]+", err, sizeof(err)), DX_OK);
    CHECK(!clientid_valid(loose, "xUS1"));
    clientid_rule_destroy(loose);
    CHECK_EQ_INT(clientid_rule_create(&loose, "US[", err, sizeof(err)), DX_ERR_INVALID);
    CHECK(err[0] != '\0');
    clientid_rule_destroy(rule);
    clientid_rule_destroy(NULL);
    return testing_finish("test_clientid");
}
