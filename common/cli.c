/*
 * cli.c — cli.h's table-driven option loop over getopt_long. getopt keeps its
 * state in globals (optind, optarg), so one parse runs at a time.
 */
#include "common/cli.h"

#include <stdbool.h>

void cli_start(void)
{
    optind = 0; /* 0, not 1: glibc then also resets its internal state */
    opterr = 0;
}

int cli_next(int argc, char **argv, const struct option *opts, const CliField *fields, size_t nfields, void *args)
{
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        const CliField *f = NULL;
        for (size_t i = 0; i < nfields && !f; i++)
            if (fields[i].val == c) f = &fields[i];
        if (!f) return c;
        char *field = (char *)args + f->offset;
        if (f->kind == CLI_STRING)
            *(const char **)(void *)field = optarg;
        else
            *(bool *)(void *)field = true;
    }
    return -1;
}
