/*
 * A test program that runs no check: testing_finish() must fail it.  Meson
 * registers it with should_fail, so the suite goes red if an empty test ever
 * reports success again.
 */
#include "testing.h"

int main(void)
{
    return testing_finish("test_testing_empty");
}
