#include "clean_local.h"

#include <stdio.h>

static dx_status read_stdio(void *ctx, void *buf, size_t cap, size_t *got)
{
    FILE *fp = ctx;

    *got = fread(buf, 1, cap, fp);
    return ferror(fp) ? DX_ERR_IO : DX_OK;
}

static dx_status write_stdio(void *ctx, const void *buf, size_t len)
{
    FILE *fp = ctx;

    return fwrite(buf, 1, len, fp) == len ? DX_OK : DX_ERR_IO;
}

/* Finishes a temporary file: flush, close, and rename or remove. */
static dx_status finish_tmp(FILE *fp, const char *tmp, const char *final, dx_status s)
{
    if (fp != NULL && fclose(fp) != 0 && s == DX_OK)
        s = DX_ERR_IO;
    if (s == DX_OK && rename(tmp, final) != 0)
        s = DX_ERR_IO;
    if (s != DX_OK)
        remove(tmp);
    return s;
}

dx_status clean_local_file(const char *in_path, const char *out_path, const char *rejects_path,
                           int formula_guard, size_t memory_budget, clean_counts *counts,
                           char *reason, size_t reason_len)
{
    char out_tmp[4096], rejects_tmp[4096];
    FILE *in = fopen(in_path, "rb");
    FILE *out = NULL, *rejects = NULL;
    dx_status s = DX_OK;

    snprintf(out_tmp, sizeof(out_tmp), "%s.tmp", out_path);
    snprintf(rejects_tmp, sizeof(rejects_tmp), "%s.tmp", rejects_path);
    if (in == NULL) {
        snprintf(reason, reason_len, "cannot open %s", in_path);
        return DX_ERR_NOT_FOUND;
    }
    out = fopen(out_tmp, "wb");
    rejects = fopen(rejects_tmp, "wb");
    if (out == NULL || rejects == NULL) {
        snprintf(reason, reason_len, "cannot create the output files");
        s = DX_ERR_IO;
    } else {
        clean_io io = {read_stdio,  in,      write_stdio,    out,
                       write_stdio, rejects, !formula_guard, memory_budget};

        s = clean_run(&io, counts, reason, reason_len);
    }
    fclose(in);
    s = finish_tmp(rejects, rejects_tmp, rejects_path, s);
    s = finish_tmp(out, out_tmp, out_path, s);
    return s;
}
