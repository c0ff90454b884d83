/*
 * known_ids.h — the ids and checksums the history store gave to revisions,
 * looked up by (xid, commit LSN), for a stream that restarted behind the
 * store to give another sink (Kafka, file) what it lacks: every sink then
 * holds each transaction under the store's id, and the chain goes on from
 * the store's checksum, whatever was numbered differently since (docs/
 * kafka-format.md#revision-ids). Reads in chunks of consecutive revisions,
 * so catching up costs one query per KNOWN_IDS_CHUNK revisions. Logs nothing.
 */
#ifndef WALREV_SINK_KNOWN_IDS_H
#define WALREV_SINK_KNOWN_IDS_H

#include "common/common.h"
#include "schema/revision.h"

#define KNOWN_IDS_CHUNK 1000

typedef struct KnownIds KnownIds;

/* Nothing is read until the first lookup; conninfo and schema are copied. */
KnownIds *known_ids_create(const char *conninfo, const char *schema);
/* Closes its connection; accepts NULL. */
void known_ids_destroy(KnownIds *k);

/*
 * The store's revision of (xid, commit_lsn): *id, its parent checksum (32
 * zero bytes for id 1) and checksum, *found = true; *found = false when the
 * store does not hold it. Lookups are expected in commit order (each one at
 * or after the previous); any order answers right, only slower. WR_RETRY on
 * a lost connection, WR_FATAL on a row that does not read back.
 */
WrStatus known_ids_find(KnownIds *k, uint32_t xid, Lsn commit_lsn, int64_t *id, uint8_t parent[WALREV_CHECKSUM_LEN],
                        uint8_t checksum[WALREV_CHECKSUM_LEN], bool *found, WrError *err) WR_MUSTCHECK;

#endif
