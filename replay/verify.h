/*
 * verify.h — `walrev verify`: re-walks the history store's checksum chain
 * from the tables alone (docs/checksums.md) and names the first revision
 * whose stored checksum or id does not hold (each revision's parent is the
 * checksum of the row before, so a changed one fails too). Read-only: it
 * never writes to the store and never touches a replication slot.
 */
#ifndef WALREV_REPLAY_VERIFY_H
#define WALREV_REPLAY_VERIFY_H

#include <libpq-fe.h>

#include "common/common.h"

/*
 * Verify every revision in id order, streaming revisions, contexts and
 * object deltas through server-side cursors in one REPEATABLE READ,
 * READ ONLY transaction (memory bounded by the fetch size, not by history).
 *
 * conn: an idle connection to the history database (not in a transaction);
 * borrowed, left idle. schema: the history schema name (unquoted).
 *
 * Returns WR_OK when the walk ran: *checked = revisions that verified,
 * *first_bad = 0 when the whole chain holds, else the id of the first bad
 * revision (a missing revision is named by its own id) with a one-line
 * reason in why (always NUL-terminated). WR_RETRY on connection loss,
 * WR_FATAL on any other SQL error or a malformed row, with err filled.
 * Values erased under GDPR (walrev erase: flag 0x08 new, 0x10 old in
 * attr_flags, value NULL) are hashed from walrev.erased_value when that
 * table exists. From store_info.keyed_values_from on (format 5) values are
 * hashed with HMAC under digest_key, which this role must be able to read.
 */
WrStatus history_verify(PGconn *conn, const char *schema, int64_t *checked, int64_t *first_bad, char *why,
                        size_t why_size, WrError *err) WR_MUSTCHECK;

#endif
