/*
 * csv_count FILE [DELIMITER]: the parse-only baseline of the benchmark.  Runs
 * libcsv over the file in 64 KiB blocks, as the cleaner does, with callbacks
 * that only count fields and rows, and prints the counts.  Whatever the
 * cleaner costs on top of this is the price of cleaning.
 */
#include <csv.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct counts {
    unsigned long long fields;
    unsigned long long rows;
} counts;

static void on_field(void *s, size_t len, void *data)
{
    ((counts *)data)->fields++;
}

static void on_row(int c, void *data)
{
    ((counts *)data)->rows++;
}

int main(int argc, char **argv)
{
    static char block[64 * 1024];
    struct csv_parser parser;
    counts n = {0, 0};
    ssize_t got;
    int fd, ret = 1;

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s FILE [DELIMITER]\n", argv[0]);
        return 2;
    }
    fd = open(argv[1], O_RDONLY);
    if (fd < 0 || csv_init(&parser, 0) != 0) {
        fprintf(stderr, "csv_count: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    csv_set_delim(&parser, argc == 3 ? (unsigned char)argv[2][0] : ';');
    while ((got = read(fd, block, sizeof(block))) > 0) {
        if (csv_parse(&parser, block, (size_t)got, on_field, on_row, &n) != (size_t)got) {
            fprintf(stderr, "csv_count: %s\n", csv_strerror(csv_error(&parser)));
            goto done;
        }
    }
    if (got < 0) {
        fprintf(stderr, "csv_count: %s\n", strerror(errno));
        goto done;
    }
    csv_fini(&parser, on_field, on_row, &n);
    printf("{\"rows\":%llu,\"fields\":%llu}\n", n.rows, n.fields);
    ret = 0;
done:
    csv_free(&parser);
    close(fd);
    return ret;
}
