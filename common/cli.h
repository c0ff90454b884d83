/*
 * cli.h — table-driven getopt_long for the subcommands: a table binds long
 * options to the caller's variables (a string or a flag), so a parser's
 * switch keeps only the options that need logic of their own (ranges,
 * lists, formats). Prints nothing; the strings stored point into argv.
 */
#ifndef WALREV_COMMON_CLI_H
#define WALREV_COMMON_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>

/* One option stored without logic: the struct option's val and where it goes. */
typedef struct {
    int val;
    const char **str; /* set to the option's argument; NULL for a flag */
    bool *flag;       /* set to true; NULL for a string */
} CliField;

#define CLI_STRING(val, ptr) \
    {                        \
        (val), (ptr), NULL   \
    }
#define CLI_FLAG(val, ptr) \
    {                      \
        (val), NULL, (ptr) \
    }
#define CLI_NFIELDS(fields) (sizeof(fields) / sizeof((fields)[0]))

/* Restart option parsing at argv[1] with getopt's own messages off; call before the first cli_next. */
void cli_start(void);

/*
 * The next option of argv (argv[0] is the command name) that fields does not
 * bind: its val, '?' for an unknown option or a missing argument, or -1 when
 * the options end (optind is then the first operand). Options the nfields
 * entries of fields bind are stored and passed over.
 */
int cli_next(int argc, char **argv, const struct option *opts, const CliField *fields, size_t nfields);

#endif
