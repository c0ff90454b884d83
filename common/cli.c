/*
 * cli.c — cli.h's table-driven option loop over getopt_long. getopt keeps its
 * state in globals (optind, optarg), so one parse runs at a time.
 */
#include "common/cli.h"

void cli_start(void)
{
    optind = 0; /* 0, not 1: glibc then also resets its internal state */
    opterr = 0;
}

int cli_next(int argc, char **argv, const struct option *opts, const CliField *fields, size_t nfields)
{
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        const CliField *f = NULL;
        for (size_t i = 0; i < nfields && !f; i++)
            if (fields[i].val == c) f = &fields[i];
        if (!f) return c;
        if (f->str)
            *f->str = optarg;
        else
            *f->flag = true;
    }
    return -1;
}
