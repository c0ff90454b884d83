/*
 * rules.h — the replication session's position and timing rules as pure
 * functions (session.c applies them; tests/unit/test_session_rules.c checks
 * them): which WAL positions a status update reports, how far the slot may be
 * confirmed past the last revision, when a status update and an idle position
 * are due, and what a data error of the history store leads to. No I/O, no
 * clock, no logging: callers pass the time and what the sinks said.
 */
#ifndef WALREV_SESSION_RULES_H
#define WALREV_SESSION_RULES_H

#include "common/common.h"
#include "sink/history_sink.h"
#include "sink/sink.h"

/* The status interval when [worker] status_interval_ms is not positive. */
#define SESSION_STATUS_DEFAULT_MS 1000
/* An idle position is recorded in the history store every 5 s at most: one
 * small write while the database is quiet or busy elsewhere, and that much
 * WAL kept longer. */
#define SESSION_RECORD_IDLE_US (5 * 1000000LL)
/* Data errors in a row, none of them naming a revision, before the worker gives up. */
#define SESSION_DATA_FAILURES_MAX 4

/* What one session knows of the stream's positions. */
typedef struct {
    Lsn received;       /* highest WAL end an XLogData message carried */
    Lsn server_wal_end; /* highest WAL end a keepalive reported */
    Lsn confirmed;      /* last flush LSN sent to the server */
} SessionPositions;

/* Streaming starts at start: nothing received or confirmed past it, no keepalive yet. */
void session_positions_start(SessionPositions *pos, Lsn start);

/* An XLogData message ending at wal_end was received. */
void session_note_xlogdata(SessionPositions *pos, Lsn wal_end);

/* A keepalive reporting wal_end: noted; returns true when the server asked
 * for a reply, which is then due at once (never on the timer). */
bool session_note_keepalive(SessionPositions *pos, Lsn wal_end, bool reply_requested);

/* A status update confirms confirmable when it passes what was confirmed;
 * never back. Returns true when confirmed moved. */
bool session_confirm(SessionPositions *pos, Lsn confirmable);

/* The write position a status update reports: what was received, never less
 * than what is confirmed (after a start the server sends nothing older). */
Lsn session_written(const SessionPositions *pos);

/* Where the stream stands between revisions: the greater of the last
 * revision's end (last_end_lsn) and the server's WAL end. */
Lsn session_idle_end(const SessionPositions *pos, Lsn last_end_lsn);

/*
 * How far past the last revision the slot may be confirmed while settled:
 * idle_end, but with a history store (has_history) no further than the
 * position it recorded (record_position), so that a slot found confirmed
 * further than the store's checkpoint was moved by someone else
 * (baseline/gap.h).
 */
Lsn session_idle_bound(Lsn idle_end, bool has_history, Lsn recorded);

/* A status update is due status_interval_ms (SESSION_STATUS_DEFAULT_MS when
 * not positive) after the last one. Times on one monotonic clock, in µs. */
bool session_status_due(int64_t now_us, int64_t last_status_us, int status_interval_ms);

/* Recording idle (a position past the last revision, settled) in the history
 * store is due when forced, SESSION_RECORD_IDLE_US after the last time, or
 * once idle reaches stop_lsn (0: none). */
bool session_record_due(bool force, int64_t now_us, int64_t last_record_us, Lsn idle, Lsn stop_lsn);

/* WAL the slot holds beyond what is confirmed, for the metrics: from the
 * furthest position known (received, keepalive, or source_wal_lsn sampled
 * from the source); 0 when caught up. */
int64_t session_lag_bytes(const SessionPositions *pos, Lsn source_wal_lsn);

/* Keyframes wait while the worker is further than this behind the source's
 * WAL: about a second of catch-up at full speed (500-800 bytes of WAL per
 * row change), so that a worker keeping up, a batch or two behind, takes
 * them as they fall due (sink/keyframer.h). */
#define SESSION_BEHIND_BYTES ((int64_t)16 << 20)

/* The worker is catching up: the source's WAL position (source_wal_lsn, read
 * from the source) is more than SESSION_BEHIND_BYTES past the furthest the
 * stream has reached (received, a keepalive's WAL end, the last revision's
 * end, last_end_lsn). */
bool session_behind(const SessionPositions *pos, Lsn last_end_lsn, Lsn source_wal_lsn);

/* ---- data errors of the history store (docs/history-store.md#quarantine) ---- */

/* Kept across sessions; zeroed at the start. */
typedef struct {
    Lsn isolate_until;  /* revisions committing up to here go one per batch */
    Lsn quarantine_lsn; /* the revision committing here is stored quarantined */
    int failures;       /* data errors since a revision was last named for quarantine */
} SessionDataErrors;

typedef enum {
    SESSION_DATA_FATAL,      /* the session's error stands */
    SESSION_DATA_ISOLATE,    /* retry with the failed batch's revisions one per batch */
    SESSION_DATA_QUARANTINE, /* retry storing the revision at quarantine_lsn quarantined */
} SessionDataAction;

/*
 * A session ended with the history store's data error f: the first time, the
 * revisions of the failed batch are committed again one per batch (d's
 * isolate_until moves to its last commit); a revision that then fails alone
 * has failed twice and is named for quarantine. Fatal when f names no
 * revision, after SESSION_DATA_FAILURES_MAX failures in a row without
 * naming one, or when the quarantined form itself failed. Updates d.
 */
SessionDataAction session_data_error(SessionDataErrors *d, const HistoryFailure *f);

#endif
