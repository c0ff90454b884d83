/*
 * test_session_rules.c — the replication session's position rules
 * (session/rules.h) without a server: the positions a status update reports,
 * how far past the last revision the slot may be confirmed (never past the
 * history store's recorded position), when status updates and idle records
 * are due, the lag the metrics show, and what a data error of the history
 * store leads to, session after session.
 */
#include <string.h>

#include "session/rules.h"
#include "tests/support/unit_main.h"

#define L(hi, lo) (((Lsn)(hi) << 32) | (Lsn)(lo))

static void test_positions_from_start(void **state)
{
    (void)state;
    SessionPositions pos = {.received = 1, .server_wal_end = 2, .confirmed = 3};
    session_positions_start(&pos, L(0, 0x1000));
    assert_int_equal(pos.received, L(0, 0x1000));
    assert_int_equal(pos.confirmed, L(0, 0x1000));
    assert_int_equal(pos.server_wal_end, 0);
    /* Nothing received yet: the write position is the start. */
    assert_int_equal(session_written(&pos), L(0, 0x1000));

    /* XLogData moves received forward only. */
    session_note_xlogdata(&pos, L(0, 0x2000));
    assert_int_equal(pos.received, L(0, 0x2000));
    session_note_xlogdata(&pos, L(0, 0x1800));
    assert_int_equal(pos.received, L(0, 0x2000));
    assert_int_equal(session_written(&pos), L(0, 0x2000));
}

static void test_keepalive(void **state)
{
    (void)state;
    SessionPositions pos;
    session_positions_start(&pos, L(0, 0x1000));
    /* No reply asked: the WAL end is noted, the reply waits for the timer. */
    assert_false(session_note_keepalive(&pos, L(0, 0x5000), false));
    assert_int_equal(pos.server_wal_end, L(0, 0x5000));
    /* Asked: due at once; an older WAL end never moves it back. */
    assert_true(session_note_keepalive(&pos, L(0, 0x4000), true));
    assert_int_equal(pos.server_wal_end, L(0, 0x5000));
    /* A keepalive is no data: the write position stays where data ended. */
    assert_int_equal(pos.received, L(0, 0x1000));
    assert_int_equal(session_written(&pos), L(0, 0x1000));
}

static void test_confirm_never_back(void **state)
{
    (void)state;
    SessionPositions pos;
    session_positions_start(&pos, L(0, 0x1000));
    assert_false(session_confirm(&pos, L(0, 0x1000)));
    assert_false(session_confirm(&pos, L(0, 0x0800)));
    assert_int_equal(pos.confirmed, L(0, 0x1000));
    assert_true(session_confirm(&pos, L(1, 0x10)));
    assert_int_equal(pos.confirmed, L(1, 0x10));
    assert_false(session_confirm(&pos, L(0, 0xFFFFFFFF)));
    assert_int_equal(pos.confirmed, L(1, 0x10));
    /* Confirmed past what was received (the server's WAL end while settled):
     * the write position never reports less than the flush position. */
    assert_int_equal(pos.received, L(0, 0x1000));
    assert_int_equal(session_written(&pos), L(1, 0x10));
}

static void test_idle_end_and_bound(void **state)
{
    (void)state;
    SessionPositions pos;
    session_positions_start(&pos, L(0, 0x1000));
    /* Before any keepalive: the last revision's end. */
    assert_int_equal(session_idle_end(&pos, L(0, 0x3000)), L(0, 0x3000));
    (void)session_note_keepalive(&pos, L(0, 0x9000), false);
    assert_int_equal(session_idle_end(&pos, L(0, 0x3000)), L(0, 0x9000));
    assert_int_equal(session_idle_end(&pos, L(0, 0xA000)), L(0, 0xA000));

    /* Without a history store the slot may follow the server's WAL end. */
    assert_int_equal(session_idle_bound(L(0, 0x9000), false, 0), L(0, 0x9000));
    /* With one, no further than it recorded... */
    assert_int_equal(session_idle_bound(L(0, 0x9000), true, L(0, 0x3000)), L(0, 0x3000));
    assert_int_equal(session_idle_bound(L(0, 0x9000), true, 0), 0);
    /* ...and never moved up to it either. */
    assert_int_equal(session_idle_bound(L(0, 0x3000), true, L(0, 0x9000)), L(0, 0x3000));
}

static void test_status_due(void **state)
{
    (void)state;
    int64_t last = 5000000;
    assert_false(session_status_due(last + 999999, last, 1000));
    assert_true(session_status_due(last + 1000000, last, 1000));
    assert_false(session_status_due(last + 249999, last, 250));
    assert_true(session_status_due(last + 250000, last, 250));
    /* Not positive: the default second. */
    assert_false(session_status_due(last + 999999, last, 0));
    assert_true(session_status_due(last + 1000000, last, 0));
    assert_true(session_status_due(last + 1000000, last, -5));
    /* Never sent (0): due at the first look once the clock passed the interval. */
    assert_true(session_status_due(2000000, 0, 1000));
}

static void test_record_due(void **state)
{
    (void)state;
    int64_t last = 10000000;
    Lsn idle = L(0, 0x5000);
    assert_false(session_record_due(false, last + SESSION_RECORD_IDLE_US - 1, last, idle, 0));
    assert_true(session_record_due(false, last + SESSION_RECORD_IDLE_US, last, idle, 0));
    assert_true(session_record_due(true, last, last, idle, 0));
    /* --stop-lsn reached: at once, so the stop does not wait 5 s. */
    assert_true(session_record_due(false, last + 1, last, idle, L(0, 0x5000)));
    assert_true(session_record_due(false, last + 1, last, idle, L(0, 0x4000)));
    assert_false(session_record_due(false, last + 1, last, idle, L(0, 0x5001)));
}

static void test_lag_bytes(void **state)
{
    (void)state;
    SessionPositions pos;
    session_positions_start(&pos, L(0, 0x1000));
    assert_int_equal(session_lag_bytes(&pos, 0), 0);
    session_note_xlogdata(&pos, L(0, 0x1400));
    assert_int_equal(session_lag_bytes(&pos, 0), 0x400);
    (void)session_note_keepalive(&pos, L(0, 0x2000), false);
    assert_int_equal(session_lag_bytes(&pos, 0), 0x1000);
    /* The source's sampled WAL position counts when it is the furthest. */
    assert_int_equal(session_lag_bytes(&pos, L(0, 0x3000)), 0x2000);
    assert_int_equal(session_lag_bytes(&pos, L(0, 0x0100)), 0x1000);
    (void)session_confirm(&pos, L(0, 0x3000));
    assert_int_equal(session_lag_bytes(&pos, L(0, 0x3000)), 0);
    /* Confirmed past everything known: caught up, not negative. */
    (void)session_confirm(&pos, L(0, 0x4000));
    assert_int_equal(session_lag_bytes(&pos, L(0, 0x3000)), 0);
}

/* Keyframes wait while the source's WAL is more than SESSION_BEHIND_BYTES past
 * the furthest the stream reached: received, a keepalive's, the last revision's end. */
static void test_behind(void **state)
{
    (void)state;
    const Lsn start = L(1, 0), b = (Lsn)SESSION_BEHIND_BYTES;
    SessionPositions pos;
    session_positions_start(&pos, start);
    assert_false(session_behind(&pos, 0, start + b));
    assert_true(session_behind(&pos, 0, start + b + 1));
    assert_false(session_behind(&pos, 0, 0)); /* no sample: not behind */
    /* What was received, the last revision's end, a keepalive: each counts as reached. */
    session_note_xlogdata(&pos, start + 0x100);
    assert_false(session_behind(&pos, 0, start + b + 1));
    assert_true(session_behind(&pos, 0, start + b + 0x101));
    assert_false(session_behind(&pos, start + 0x200, start + b + 0x101));
    (void)session_note_keepalive(&pos, start + 0x1000, false);
    assert_false(session_behind(&pos, start + 0x200, start + b + 0x1000));
    assert_true(session_behind(&pos, start + 0x200, start + b + 0x1001));
    /* The source's position behind what was reached (sampled earlier): not behind. */
    assert_false(session_behind(&pos, 0, start));
}

static HistoryFailure failure(int64_t first, int64_t last, Lsn last_commit)
{
    HistoryFailure f;
    memset(&f, 0, sizeof(f));
    f.first_id = first;
    f.last_id = last;
    f.last_commit_lsn = last_commit;
    return f;
}

/* A batch fails, its revisions go one by one, the culprit fails alone and
 * is quarantined; the others pass. */
static void test_data_error_isolate_then_quarantine(void **state)
{
    (void)state;
    SessionDataErrors d = {0};
    HistoryFailure f = failure(10, 14, L(0, 0x9000));
    assert_int_equal(session_data_error(&d, &f), SESSION_DATA_ISOLATE);
    assert_int_equal(d.isolate_until, L(0, 0x9000));
    assert_int_equal(d.quarantine_lsn, 0);
    assert_int_equal(d.failures, 1);

    /* Revision 12 fails alone inside the isolated range: quarantined, count reset. */
    f = failure(12, 12, L(0, 0x7000));
    assert_int_equal(session_data_error(&d, &f), SESSION_DATA_QUARANTINE);
    assert_int_equal(d.quarantine_lsn, L(0, 0x7000));
    assert_int_equal(d.isolate_until, L(0, 0x9000));
    assert_int_equal(d.failures, 0);

    /* Its quarantined form fails too: nothing more to try. */
    assert_int_equal(session_data_error(&d, &f), SESSION_DATA_FATAL);
    assert_int_equal(d.quarantine_lsn, L(0, 0x7000));
}

static void test_data_error_single_outside_range(void **state)
{
    (void)state;
    SessionDataErrors d = {0};
    /* One revision in a batch, never isolated before: isolate first. */
    HistoryFailure f = failure(5, 5, L(0, 0x2000));
    assert_int_equal(session_data_error(&d, &f), SESSION_DATA_ISOLATE);
    assert_int_equal(d.isolate_until, L(0, 0x2000));
    /* The same again: now it failed alone inside the range. */
    assert_int_equal(session_data_error(&d, &f), SESSION_DATA_QUARANTINE);
    assert_int_equal(d.quarantine_lsn, L(0, 0x2000));
    /* A later batch widens the range, never narrows it. */
    f = failure(6, 8, L(0, 0x1000));
    assert_int_equal(session_data_error(&d, &f), SESSION_DATA_ISOLATE);
    assert_int_equal(d.isolate_until, L(0, 0x2000));
}

static void test_data_error_gives_up(void **state)
{
    (void)state;
    SessionDataErrors d = {0};
    /* A failure naming no revision is the session's error as it stands. */
    HistoryFailure none = failure(3, 2, L(0, 0x1000));
    assert_int_equal(session_data_error(&d, &none), SESSION_DATA_FATAL);
    assert_int_equal(d.failures, 0);
    assert_int_equal(d.isolate_until, 0);

    /* Batches failing without one revision ever named: SESSION_DATA_FAILURES_MAX tries, then fatal. */
    for (int i = 1; i <= SESSION_DATA_FAILURES_MAX; i++) {
        HistoryFailure f = failure(100 * i, 100 * i + 5, L(0, 0x1000 * (Lsn)i));
        assert_int_equal(session_data_error(&d, &f), SESSION_DATA_ISOLATE);
        assert_int_equal(d.failures, i);
    }
    HistoryFailure f = failure(900, 905, L(0, 0xF000));
    assert_int_equal(session_data_error(&d, &f), SESSION_DATA_FATAL);
    assert_int_equal(d.isolate_until, L(0, 0x1000 * (Lsn)SESSION_DATA_FAILURES_MAX));
}

TS_RUN_TESTS(cmocka_unit_test(test_positions_from_start), cmocka_unit_test(test_keepalive),
             cmocka_unit_test(test_confirm_never_back), cmocka_unit_test(test_idle_end_and_bound),
             cmocka_unit_test(test_status_due), cmocka_unit_test(test_record_due), cmocka_unit_test(test_lag_bytes),
             cmocka_unit_test(test_behind), cmocka_unit_test(test_data_error_isolate_then_quarantine),
             cmocka_unit_test(test_data_error_single_outside_range), cmocka_unit_test(test_data_error_gives_up))
