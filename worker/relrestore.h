/*
 * relrestore.h — at start-up, the relation versions the history store holds
 * are loaded into the assembler, so the server's re-sent Relation messages
 * are recognised as unchanged and column identities (renames, drops) carry
 * on exactly across every restart. Every field is read with its own type;
 * a row that does not read back exactly stops the start (never a version
 * under a wrong relid or with guessed columns).
 */
#ifndef WALREV_WORKER_RELRESTORE_H
#define WALREV_WORKER_RELRESTORE_H

#include "decoder/assembler.h"

/*
 * Load the newest version of every relid from the history store at
 * conninfo/schema into a (after assembler_set_position). Returns WR_OK,
 * WR_RETRY (connection), or WR_FATAL (a row that does not read back) with
 * err naming the relid and version. Blocks on one query.
 */
WrStatus relrestore_load(Assembler *a, const char *conninfo, const char *schema, WrError *err)
    WR_MUSTCHECK;

#endif
