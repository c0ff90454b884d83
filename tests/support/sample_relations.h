/*
 * sample_relations.h — two relation versions the sink tests (file, Kafka)
 * write deltas of: public.items (int key, text, a hidden text column,
 * replica identity default) and sales.orders (bigint key, numeric, replica
 * identity full). Static data owned by the test support library; tests
 * must not change them.
 */
#ifndef WALREV_TESTS_SAMPLE_RELATIONS_H
#define WALREV_TESTS_SAMPLE_RELATIONS_H

#include "schema/revision.h"

extern RelationVersion ts_items;  /* relid 16400, version 1 */
extern RelationVersion ts_orders; /* relid 16500, version 3 */

#endif
