/*
 * sample_relations.h — two relation versions the sink tests (file, Kafka)
 * write deltas of: public.items (int key, text, a hidden text column,
 * replica identity default) and sales.orders (bigint key, numeric, replica
 * identity full), and the revision headers both sinks' streams use. Static
 * data owned by the test support library; tests must not change them.
 */
#ifndef WALREV_TESTS_SAMPLE_RELATIONS_H
#define WALREV_TESTS_SAMPLE_RELATIONS_H

#include "schema/revision.h"

#include <stdint.h>

extern RelationVersion ts_items;  /* relid 16400, version 1 */
extern RelationVersion ts_orders; /* relid 16500, version 3 */

/* The header of revision id of a synthetic stream: xid 1000 + id, commit LSN
 * 0x1000000 + id * 0x100 (end 0x30 after it), commit time 700000000000000 + id
 * (microseconds since 2000-01-01, in March 2022), its checksum every byte id, its parent's id - 1 (both
 * mod 256). Returned by value; no deltas. */
Revision ts_sample_revision(int64_t id);

#endif
