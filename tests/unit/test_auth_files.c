/* status-checker's STATUS_AUTH_FILE parsing and checks (auth.c), and the
 * path rules and links of GET /files (files.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "files.h"
#include "testing.h"

/* Writes text to a new temporary file; returns its path (static buffer). */
static const char *temp_file(const char *text)
{
    static char path[64];
    FILE *f;
    int fd;

    snprintf(path, sizeof(path), "/tmp/dx-test-auth-XXXXXX");
    fd = mkstemp(path);
    f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
    return path;
}

static void load_and_check(void)
{
    const char *path = temp_file("# readers\ntok-1\n\nalice:pa:ss\r\n");
    auth *a = NULL;
    char err[256] = "";

    CHECK_EQ_INT(auth_load(&a, path, err, sizeof(err)), DX_OK);
    unlink(path);
    CHECK(auth_check(a, "Bearer tok-1"));
    /* "alice:pa:ss" in base64: the password may hold a ':'. */
    CHECK(auth_check(a, "Basic YWxpY2U6cGE6c3M="));
    CHECK(!auth_check(a, NULL));
    CHECK(!auth_check(a, ""));
    CHECK(!auth_check(a, "Bearer tok-"));
    CHECK(!auth_check(a, "Bearer tok-12"));
    CHECK(!auth_check(a, "Bearer alice:pa:ss"));
    CHECK(!auth_check(a, "Basic dG9rLTE=")); /* the token as basic */
    CHECK(!auth_check(a, "Bearer # readers"));
    CHECK(!auth_check(a, "Bearer "));
    auth_destroy(a);
    /* No auth file: everything passes. */
    CHECK(auth_check(NULL, NULL));
}

static void bad_files(void)
{
    static const struct {
        const char *text, *part;
    } cases[] = {
        {"", "holds no token"},
        {"# only\n\n", "holds no token"},
        {"ok\nalice:\n", "empty user or password (line 2)"},
        {":secret-pw\n", "empty user or password (line 1)"},
        {"to\x01ken-zz\n", "control character"},
    };
    char err[256];
    auth *a = NULL;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *path = temp_file(cases[i].text);

        err[0] = '\0';
        CHECK_EQ_INT(auth_load(&a, path, err, sizeof(err)), DX_ERR_INVALID);
        unlink(path);
        CHECK(strncmp(err, "STATUS_AUTH_FILE", 16) == 0);
        CHECK(strstr(err, cases[i].part) != NULL);
        CHECK(strstr(err, "secret-pw") == NULL && strstr(err, "ken-zz") == NULL);
    }
    char *long_line = malloc(AUTH_LINE_MAX + 10);
    memset(long_line, 'k', AUTH_LINE_MAX + 8);
    long_line[AUTH_LINE_MAX + 8] = '\0';
    const char *path = temp_file(long_line);
    CHECK_EQ_INT(auth_load(&a, path, err, sizeof(err)), DX_ERR_INVALID);
    CHECK(strstr(err, "over 1024 bytes") != NULL);
    unlink(path);
    free(long_line);
    CHECK_EQ_INT(auth_load(&a, "/nonexistent/dx-auth", err, sizeof(err)), DX_ERR_INVALID);
    CHECK_EQ_STR(err, "STATUS_AUTH_FILE cannot be read");
}

static void paths(void)
{
    static const char *const allowed[] = {"US1/2026-11-24/input.csv", "US1/a.b.csv", "x"};
    static const char *const refused[] = {
        "",       "/etc/passwd", "../etc/passwd", "US1/../../x", "US1//x",   "US1/./x",
        "US1/.x", ".hidden",     "US1/d/.t.tmp",  "US1/a\tb",    "US1/a\\b", "US1/x/",
    };
    char *link;

    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
        CHECK(files_path_allowed(allowed[i]));
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        if (files_path_allowed(refused[i]))
            testing_fail(__FILE__, __LINE__, "path \"%s\" allowed", refused[i]);
    link = files_link("US1/2026-11-24/in put#1%.csv");
    CHECK_EQ_STR(link, "/files/US1/2026-11-24/in%20put%231%25.csv");
    free(link);
    CHECK(files_link("") == NULL);
}

int main(void)
{
    load_and_check();
    bad_files();
    paths();
    return testing_finish("test_auth_files");
}
