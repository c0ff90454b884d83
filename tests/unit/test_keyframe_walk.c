/*
 * test_keyframe_walk.c — where a table's keyframes fall (sink/keyframer.h)
 * without a server: the threshold (factor × live rows, at least min_deltas)
 * and the walk over per-revision delta counts that a request which waited
 * (the worker catching up, or a keyframe in progress) is taken as: one
 * keyframe wherever the deltas since the previous passed the threshold, with
 * the counts each one takes off its table's counters.
 */
#include "sink/keyframer.h"
#include "tests/support/unit_main.h"

static const KeyframePolicy P1 = {.factor = 1.0, .min_deltas = 1000, .small_rows = 250};

static void test_threshold(void **state)
{
    (void)state;
    assert_int_equal(keyframe_threshold(&P1, 0), 1000);
    assert_int_equal(keyframe_threshold(&P1, -5), 1000);
    assert_int_equal(keyframe_threshold(&P1, 1000), 1000);
    assert_int_equal(keyframe_threshold(&P1, 20000), 20000);
    const KeyframePolicy quarter = {.factor = 0.25, .min_deltas = 1000, .small_rows = 250};
    assert_int_equal(keyframe_threshold(&quarter, 20000), 5000);
    assert_int_equal(keyframe_threshold(&quarter, 2000), 1000);
}

/* A 5,000-row table updated 600 rows a revision: a keyframe at the first
 * revision past 5,000 deltas since the previous, then again from there. */
static void test_walk_steady_table(void **state)
{
    (void)state;
    KeyframeWalk w = {.live = 5000};
    int64_t d = 0, l = 0;
    int at[4], n = 0;
    for (int rev = 1; rev <= 30 && n < 4; rev++)
        if (keyframe_walk_step(&w, &P1, 600, 0, false, &d, &l)) {
            at[n++] = rev;
            assert_int_equal(d, 9 * 600); /* 5,400: the first count past 5,000 */
            assert_int_equal(l, 5000);
        }
    assert_int_equal(n, 3);
    assert_int_equal(at[0], 9);
    assert_int_equal(at[1], 18);
    assert_int_equal(at[2], 27);
    assert_int_equal(w.deltas, 3 * 600); /* revisions 28-30, counted toward the next */
}

/* A growing table: the threshold grows with the rows begun, so the keyframes
 * fall further apart; rows ended count down. */
static void test_walk_growing_table(void **state)
{
    (void)state;
    KeyframeWalk w = {.live = 1000};
    int64_t d = 0, l = 0;
    /* 800 inserts: 1,800 live, 800 deltas (≤ 1,800) */
    assert_false(keyframe_walk_step(&w, &P1, 800, 800, false, &d, &l));
    /* 1,000 more: 2,800 live, 1,800 deltas (≤ 2,800) */
    assert_false(keyframe_walk_step(&w, &P1, 1000, 1000, false, &d, &l));
    /* 1,200 deletes: 1,600 live, 3,000 deltas: due */
    assert_true(keyframe_walk_step(&w, &P1, 1200, -1200, false, &d, &l));
    assert_int_equal(d, 3000);
    assert_int_equal(l, 1600);
    assert_int_equal(w.deltas, 0);
    /* More ended than known: live rows never go below zero; 1,000 deltas is not past min_deltas */
    assert_false(keyframe_walk_step(&w, &P1, 1000, -5000, false, &d, &l));
    assert_int_equal(w.live, 0);
    assert_true(keyframe_walk_step(&w, &P1, 1, 0, false, &d, &l));
    assert_int_equal(d, 1001);
    assert_int_equal(l, 0);
}

/* A TRUNCATE: the live rows are those begun in its revision, not the table's before. */
static void test_walk_truncate(void **state)
{
    (void)state;
    KeyframeWalk w = {.live = 100000};
    int64_t d = 0, l = 0;
    /* 1,001 deltas: a truncate and 1,000 inserts after it; the threshold is 1,000, not 100,000 */
    assert_true(keyframe_walk_step(&w, &P1, 1001, 1000, true, &d, &l));
    assert_int_equal(d, 1001);
    assert_int_equal(l, 1000);
}

TS_RUN_TESTS(cmocka_unit_test(test_threshold), cmocka_unit_test(test_walk_steady_table),
             cmocka_unit_test(test_walk_growing_table), cmocka_unit_test(test_walk_truncate))
