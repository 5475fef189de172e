/*
 * clean_file IN OUT REJECTS: runs clean_run() over local files and prints the
 * counts as one JSON object, like `file-transformer clean` does; exit 1 with
 * a one-line reason when the file is unusable.  A stand-alone driver so the
 * benchmark measures the engine alone, with plain read(2)/write(2).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clean.h"

static dx_status read_fd(void *ctx, void *buf, size_t cap, size_t *got)
{
    ssize_t n;

    do {
        n = read(*(int *)ctx, buf, cap);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return DX_ERR_IO;
    *got = (size_t)n;
    return DX_OK;
}

static dx_status write_fd(void *ctx, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(*(int *)ctx, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return DX_ERR_IO;
        p += n;
        len -= (size_t)n;
    }
    return DX_OK;
}

int main(int argc, char **argv)
{
    int in = -1, out = -1, rejects = -1, ret = 1;
    clean_counts counts;
    char reason[256];
    dx_status status;

    if (argc != 4) {
        fprintf(stderr, "usage: %s IN OUT REJECTS\n", argv[0]);
        return 2;
    }
    in = open(argv[1], O_RDONLY);
    out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    rejects = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || rejects < 0) {
        fprintf(stderr, "clean_file: %s\n", strerror(errno));
        goto done;
    }
    clean_io io = {read_fd, &in, write_fd, &out, write_fd, &rejects, 0, 0};
    status = clean_run(&io, &counts, reason, sizeof(reason));
    if (status != DX_OK) {
        fprintf(stderr, "clean_file: %s: %s\n", status_text(status), reason);
        goto done;
    }
    printf("{\"rows_in\":%llu,\"rows_out\":%llu,\"rows_rejected\":%llu,\"rows_duplicate\":%llu,"
           "\"bytes_in\":%llu,\"bytes_out\":%llu,\"bytes_rejects\":%llu,\"counts_add_up\":%s}\n",
           (unsigned long long)counts.rows_in, (unsigned long long)counts.rows_out,
           (unsigned long long)counts.rows_rejected, (unsigned long long)counts.rows_duplicate,
           (unsigned long long)counts.bytes_in, (unsigned long long)counts.bytes_out,
           (unsigned long long)counts.bytes_rejects,
           counts.rows_in == counts.rows_out + counts.rows_rejected + counts.rows_duplicate
               ? "true"
               : "false");
    ret = 0;
done:
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    if (rejects >= 0)
        close(rejects);
    return ret;
}
