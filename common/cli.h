/*
 * cli.h — table-driven getopt_long for the subcommands: a table binds long
 * options to fields of the caller's argument struct (a string or a flag), so
 * a parser's switch keeps only the options that need logic of their own
 * (ranges, lists, formats). Prints nothing; stores pointers into argv, which
 * must outlive the argument struct.
 */
#ifndef WALREV_COMMON_CLI_H
#define WALREV_COMMON_CLI_H

#include <getopt.h>
#include <stddef.h>

typedef enum {
    CLI_STRING, /* the field is a const char *: set to the option's argument */
    CLI_FLAG    /* the field is a bool: set to true */
} CliKind;

/* One option stored without logic: the struct option's val, what it sets and where. */
typedef struct {
    int val;
    CliKind kind;
    size_t offset; /* offsetof(the argument struct, the field) */
} CliField;

#define CLI_STRING_FIELD(val, type, field)       \
    {                                            \
        (val), CLI_STRING, offsetof(type, field) \
    }
#define CLI_FLAG_FIELD(val, type, field)       \
    {                                          \
        (val), CLI_FLAG, offsetof(type, field) \
    }
#define CLI_NFIELDS(fields) (sizeof(fields) / sizeof((fields)[0]))

/*
 * The next option of argv (argv[0] is the command name) that fields does not
 * bind: its val, '?' for an unknown option or a missing argument, or -1 when
 * the options end (optind is then the first operand). Options the nfields
 * entries of fields bind are stored into args and passed over. The first
 * call after cli_start() begins at argv[1].
 */
int cli_next(int argc, char **argv, const struct option *opts, const CliField *fields, size_t nfields, void *args);

/* Restart option parsing at argv[1] with getopt's own messages off; call before the first cli_next. */
void cli_start(void);

#endif
