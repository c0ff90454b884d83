/*
 * pgo_expect.h — cmocka checks of what decoder/pgoutput.h parsed, shared by
 * the parser's unit test and the streaming integration test: one call per
 * Relation column instead of a next-name-type block each. A failed check
 * fails the test (cmocka).
 */
#ifndef WALREV_TESTS_PGO_EXPECT_H
#define WALREV_TESTS_PGO_EXPECT_H

#include <stdint.h>

#include "decoder/pgoutput.h"

/* The next column of it exists, named name, of type type_oid; returned for
 * the caller's further checks (flags, typmod). Its name points into the
 * message, like pgo_relation_next_column's. */
PgoRelColumn ts_expect_column(PgoRelColumnIter *it, const char *name, uint32_t type_oid);

#endif
