/*
 * test_backfill.c — unit tests of the snapshot arithmetic in baseline/backfill.c:
 * parsing pg_current_snapshot()'s text, and deciding whether a transaction the
 * stream names by its 32-bit xid was visible to the chunk's read, across an
 * xid epoch boundary too. A wrong answer here would record a deleted row.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "baseline/baseline.h"
#include "tests/support/unit_main.h"

static void parses_a_snapshot(void **state)
{
    (void)state;
    XidSnapshot s;
    assert_true(backfill_snapshot_parse("740:752:741,745,750", &s));
    assert_int_equal(s.xmin, 740);
    assert_int_equal(s.xmax, 752);
    assert_int_equal(s.nxip, 3);
    assert_int_equal(s.xip[0], 741);
    assert_int_equal(s.xip[2], 750);
    free(s.xip);

    assert_true(backfill_snapshot_parse("9:9:", &s));
    assert_int_equal(s.xmin, 9);
    assert_int_equal(s.xmax, 9);
    assert_int_equal(s.nxip, 0);
    free(s.xip);
}

static void rejects_malformed_text(void **state)
{
    (void)state;
    static const char *const bad[] = {"", "740", "740:752", "740;752:", "740:752:741,,", "740:752:x", "a:1:"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        XidSnapshot s;
        assert_false(backfill_snapshot_parse(bad[i], &s));
        free(s.xip);
    }
}

static void sees_what_committed_before_it(void **state)
{
    (void)state;
    XidSnapshot s;
    assert_true(backfill_snapshot_parse("740:752:740,745,750", &s));
    assert_true(backfill_snapshot_sees(&s, 3));    /* long finished */
    assert_true(backfill_snapshot_sees(&s, 739));  /* below xmin */
    assert_false(backfill_snapshot_sees(&s, 740)); /* xmin, the oldest still running */
    assert_true(backfill_snapshot_sees(&s, 741));  /* finished, between xmin and xmax */
    assert_false(backfill_snapshot_sees(&s, 745));
    assert_true(backfill_snapshot_sees(&s, 751));
    assert_false(backfill_snapshot_sees(&s, 752)); /* xmax: not yet assigned when taken */
    assert_false(backfill_snapshot_sees(&s, 9000));
    free(s.xip);
}

/* Full xids carry an epoch; pgoutput's do not. Around a wraparound the
 * 32-bit xid must be placed in the right epoch. */
static void places_xids_in_their_epoch(void **state)
{
    (void)state;
    XidSnapshot s;
    /* xmin in epoch 0 (0xFFFFFFF0), xmax in epoch 1 (5) */
    assert_true(backfill_snapshot_parse("4294967280:4294967301:4294967290,4294967299", &s));
    assert_true(backfill_snapshot_sees(&s, 0xFFFFFFE0u));  /* epoch 0, below xmin */
    assert_true(backfill_snapshot_sees(&s, 0xFFFFFFF5u));  /* epoch 0, finished */
    assert_false(backfill_snapshot_sees(&s, 0xFFFFFFFAu)); /* epoch 0, in progress */
    assert_true(backfill_snapshot_sees(&s, 1));            /* epoch 1, finished */
    assert_false(backfill_snapshot_sees(&s, 3));           /* epoch 1, in progress */
    assert_false(backfill_snapshot_sees(&s, 5));           /* epoch 1, xmax */
    assert_false(backfill_snapshot_sees(&s, 100));         /* epoch 1, after */
    free(s.xip);
}

TS_RUN_TESTS(cmocka_unit_test(parses_a_snapshot), cmocka_unit_test(rejects_malformed_text),
             cmocka_unit_test(sees_what_committed_before_it), cmocka_unit_test(places_xids_in_their_epoch))
