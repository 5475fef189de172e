/*
 * worker's --help and --version, in a file of their own so that a program
 * which is not a service (the offline `file-transformer clean`) prints them
 * without linking worker.c, and with it nats.c, libssh and libmicrohttpd.
 */
#include <stdio.h>

#include "config.h"
#include "worker.h"

#ifndef DX_VERSION
#define DX_VERSION "unknown"
#endif

void worker_print_help(const char *usage)
{
    fputs(usage, stdout);
    fputc('\n', stdout);
    config_print_help(stdout);
}

void worker_print_version(const char *name)
{
    printf("%s %s\n", name, DX_VERSION);
}
