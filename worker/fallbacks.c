/*
 * fallbacks.c — weak stand-ins for commands that other modules provide
 * (pipeline_run in worker/pipeline.c, tail_command in worker/tail.c,
 * replay_sql_render in replay/). Built as a library linked last, so any real
 * definition wins and these only keep the binary linkable while a module is
 * still a placeholder. Each says plainly that the command is not built.
 */
#include <stdio.h>

#include "worker/config.h"

int pipeline_run(const Config *cfg);
int tail_command(int argc, char **argv, const Config *cfg);
char *replay_sql_render(const char *schema);

__attribute__((weak)) volatile int pipeline_stop_requested;

__attribute__((weak)) int pipeline_run(const Config *cfg)
{
    (void)cfg;
    fprintf(stderr, "walrev: 'run' is not built into this binary\n");
    return 1;
}

__attribute__((weak)) int tail_command(int argc, char **argv, const Config *cfg)
{
    (void)argc;
    (void)argv;
    (void)cfg;
    fprintf(stderr, "walrev: 'tail' is not built into this binary\n");
    return 1;
}

/* NULL: setup then applies only the history store's DDL. */
__attribute__((weak)) char *replay_sql_render(const char *schema)
{
    (void)schema;
    return NULL;
}
