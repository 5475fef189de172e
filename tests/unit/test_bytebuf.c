#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bytebuf.h"
#include "testing.h"

/* Appends grow the buffer and keep it NUL-terminated. */
static void test_appends(void)
{
    bytebuf b = BYTEBUF_INIT;
    char *out;

    bytebuf_puts(&b, "order");
    bytebuf_putc(&b, '-');
    bytebuf_printf(&b, "%d:%s", 42, "paid");
    CHECK_EQ_INT(b.len, 13);
    CHECK(strcmp(b.data, "order-42:paid") == 0);
    for (int i = 0; i < 10000; i++)
        bytebuf_add(&b, "0123456789", 10);
    CHECK_EQ_INT(b.len, 13 + 100000);
    CHECK(b.cap > b.len);
    CHECK_EQ_INT(b.data[b.len], '\0');
    CHECK(!b.failed);
    out = bytebuf_take(&b);
    CHECK(out != NULL && strncmp(out, "order-42:paid0123", 17) == 0);
    CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
    free(out);
}

/* A buffer that never grew hands out an empty string, not NULL. */
static void test_empty(void)
{
    bytebuf b = BYTEBUF_INIT;
    char *out = bytebuf_take(&b);

    CHECK(out != NULL && out[0] == '\0');
    free(out);
    bytebuf_finish(&b);
}

/* A size that would wrap fails the buffer instead of writing past it. */
static void test_overflow(void)
{
    bytebuf b = BYTEBUF_INIT;

    bytebuf_puts(&b, "abc");
    CHECK_EQ_INT(bytebuf_reserve(&b, SIZE_MAX), -1);
    CHECK(b.failed);
    CHECK_EQ_INT(b.len, 3);
    bytebuf_puts(&b, "d");
    CHECK_EQ_INT(b.len, 3);
    CHECK(bytebuf_take(&b) == NULL);
    CHECK(!b.failed);

    bytebuf_puts(&b, "abc");
    CHECK_EQ_INT(bytebuf_reserve(&b, SIZE_MAX - 3), -1);
    bytebuf_finish(&b);
    bytebuf_puts(&b, "abc");
    CHECK_EQ_INT(bytebuf_reserve(&b, SIZE_MAX / 2), -1);
    bytebuf_finish(&b);
}

int main(void)
{
    test_appends();
    test_empty();
    test_overflow();
    return testing_finish("test_bytebuf");
}
