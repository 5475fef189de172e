#include "dropname.h"
#include "testing.h"

/* A table of names: the problem, the escaped form, the safe form. */
typedef struct name_case {
    const char *name;
    const char *problem; /* NULL: usable as it is */
    const char *escaped;
    const char *safe;
} name_case;

static const name_case cases[] = {
    {"input.csv", NULL, "input.csv", "input.csv"},
    {"Caf\xc3\xa9 \xe2\x82\xac.CSV", NULL, "Caf\xc3\xa9 \xe2\x82\xac.CSV",
     "Caf\xc3\xa9 \xe2\x82\xac.csv"},
    {"bad\nname.csv", "contains a control character", "bad\\x0aname.csv", "bad_name.csv"},
    {"del\x7f.csv", "contains a control character", "del\\x7f.csv", "del_.csv"},
    /* U+0085 (NEL), a C1 control in valid UTF-8. */
    {"nel\xc2\x85.csv", "contains a control character", "nel\\xc2\\x85.csv", "nel__.csv"},
    {"caf\xe9.csv", "is not valid UTF-8", "caf\\xe9.csv", "caf_.csv"},
    /* An overlong '/' and a UTF-16 surrogate are not UTF-8. */
    {"a\xc0\xaf.csv", "is not valid UTF-8", "a\\xc0\\xaf.csv", "a__.csv"},
    {"s\xed\xa0\x80.csv", "is not valid UTF-8", "s\\xed\\xa0\\x80.csv", "s___.csv"},
    {"back\\slash.csv", "contains a backslash", "back\\\\slash.csv", "back_slash.csv"},
    /* A control character is named first, whatever comes before it. */
    {"\xff\\x\t.csv", "contains a control character", "\\xff\\\\x\\x09.csv", "__x_.csv"},
};

static void check_lengths(void)
{
    char name[256], escaped[64], safe[DROPNAME_MAX + 1];

    memset(name, 'L', 196);
    memcpy(name + 196, ".csv", 5);
    CHECK(dropname_problem(name) == NULL); /* exactly 200 bytes */
    memset(name, 'L', 197);
    memcpy(name + 197, ".csv", 5);
    CHECK_EQ_STR(dropname_problem(name), "is longer than 200 bytes");
    dropname_safe(name, safe, sizeof(safe));
    CHECK_EQ_INT(strlen(safe), DROPNAME_MAX);
    CHECK(strcmp(safe + DROPNAME_MAX - 4, ".csv") == 0);
    CHECK(dropname_problem(safe) == NULL);
    /* A cut escape ends in "..." and never splits a character or an escape. */
    dropname_escape(name, escaped, sizeof(escaped));
    CHECK_EQ_INT(strlen(escaped), sizeof(escaped) - 1);
    CHECK(strcmp(escaped + sizeof(escaped) - 4, "...") == 0);
    memset(name, 0, sizeof(name));
    for (int i = 0; i < 40; i++)
        name[i] = '\n';
    dropname_escape(name, escaped, sizeof(escaped));
    CHECK_EQ_STR(escaped, "\\x0a\\x0a\\x0a\\x0a\\x0a\\x0a\\x0a\\x0a\\x0a\\x0a\\x0a\\x0a\\x0a\\x0a"
                          "\\x0a...");
    memcpy(name, "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", 10);
    dropname_escape(name, escaped, 8);
    CHECK_EQ_STR(escaped, "\xe2\x82\xac...");
    /* The safe name of a cut multibyte character stops before it. */
    memset(name, 'L', 195);
    memcpy(name + 195, "\xe2\x82\xac.csv", 8);
    dropname_safe(name, safe, sizeof(safe));
    CHECK_EQ_INT(strlen(safe), 199);
    CHECK(dropname_problem(safe) == NULL);
}

int main(void)
{
    char escaped[256], safe[DROPNAME_MAX + 1];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const name_case *c = &cases[i];
        const char *problem = dropname_problem(c->name);

        if (c->problem == NULL)
            CHECK(problem == NULL);
        else
            CHECK_EQ_STR(problem, c->problem);
        dropname_escape(c->name, escaped, sizeof(escaped));
        CHECK_EQ_STR(escaped, c->escaped);
        dropname_safe(c->name, safe, sizeof(safe));
        CHECK_EQ_STR(safe, c->safe);
        CHECK(dropname_problem(escaped) == NULL || strchr(escaped, '\\') != NULL);
        CHECK(dropname_problem(safe) == NULL);
    }
    check_lengths();
    return testing_finish("test_dropname");
}
