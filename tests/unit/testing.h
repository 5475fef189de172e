#pragma once

/*
 * A minimal assertion kit for the unit tests: each failed check prints where
 * and why, the test goes on, and testing_finish() returns the exit code
 * (0 when every check passed).  Kept tiny on purpose: the tests are plain C
 * programs registered with meson's test().
 */

#include <stdint.h>
#include <string.h>
#include <time.h>

extern int testing_failures;
extern int testing_checks;

void testing_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets the process time zone (TZ) for the checks that follow. */
void testing_set_tz(const char *tz);

/* "2026-03-29T01:00:00Z" to an instant; aborts the test on a typo in a table. */
time_t testing_utc(const char *iso);

/* Prints "N passed, M failed" and returns the process exit code: 0 when every
 * check passed and at least one ran, 1 otherwise. */
int testing_finish(const char *name);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        testing_checks++;                                                                          \
        if (!(cond))                                                                               \
            testing_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);                                  \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                            \
        testing_checks++;                                                                          \
        if (check_a_ != check_b_)                                                                  \
            testing_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, check_a_,           \
                         check_b_);                                                                \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                                         \
    do {                                                                                           \
        const char *check_a_ = (a), *check_b_ = (b);                                               \
        testing_checks++;                                                                          \
        if (check_a_ == NULL || check_b_ == NULL || strcmp(check_a_, check_b_) != 0)               \
            testing_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b,                 \
                         check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)");          \
    } while (0)
