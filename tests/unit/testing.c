#include "testing.h"

#include <stdarg.h>
#include <stdio.h>

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
    return testing_failures == 0 ? 0 : 1;
}
