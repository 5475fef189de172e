#include "testing.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int testing_failures;
int testing_checks;

void testing_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    testing_failures++;
    fprintf(stderr, "%s:%d: FAIL: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int testing_finish(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, testing_checks - testing_failures, testing_failures);
    /* A test that checked nothing proves nothing: a table emptied by mistake
     * or a loop that never ran must not report success. */
    if (testing_checks == 0) {
        fprintf(stderr, "%s: FAIL: no check ran\n", name);
        return 1;
    }
    return testing_failures == 0 ? 0 : 1;
}

void testing_set_tz(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

time_t testing_utc(const char *iso)
{
    struct tm tm = {0};
    char z = 0;

    if (sscanf(iso, "%d-%d-%dT%d:%d:%d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &z) != 7 ||
        z != 'Z') {
        fprintf(stderr, "bad instant in test table: %s\n", iso);
        abort();
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}
