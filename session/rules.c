/*
 * rules.c — the session's position and timing rules (rules.h). Pure: no I/O,
 * no clock, so every rule is checked by unit tests without a server.
 */
#include "session/rules.h"

void session_positions_start(SessionPositions *pos, Lsn start)
{
    pos->confirmed = start;
    pos->received = start;
    pos->server_wal_end = 0;
}

void session_note_xlogdata(SessionPositions *pos, Lsn wal_end)
{
    if (wal_end > pos->received) pos->received = wal_end;
}

bool session_note_keepalive(SessionPositions *pos, Lsn wal_end, bool reply_requested)
{
    if (wal_end > pos->server_wal_end) pos->server_wal_end = wal_end;
    return reply_requested;
}

bool session_confirm(SessionPositions *pos, Lsn confirmable)
{
    if (confirmable <= pos->confirmed) return false;
    pos->confirmed = confirmable;
    return true;
}

Lsn session_written(const SessionPositions *pos)
{
    return pos->received > pos->confirmed ? pos->received : pos->confirmed;
}

Lsn session_idle_end(const SessionPositions *pos, Lsn last_end_lsn)
{
    return pos->server_wal_end > last_end_lsn ? pos->server_wal_end : last_end_lsn;
}

Lsn session_idle_bound(Lsn idle_end, bool has_history, Lsn recorded)
{
    return has_history && idle_end > recorded ? recorded : idle_end;
}

bool session_status_due(int64_t now_us, int64_t last_status_us, int status_interval_ms)
{
    int ms = status_interval_ms > 0 ? status_interval_ms : SESSION_STATUS_DEFAULT_MS;
    return now_us - last_status_us >= (int64_t)ms * 1000;
}

bool session_record_due(bool force, int64_t now_us, int64_t last_record_us, Lsn idle, Lsn stop_lsn)
{
    return force || now_us - last_record_us >= SESSION_RECORD_IDLE_US || (stop_lsn && idle >= stop_lsn);
}

int64_t session_lag_bytes(const SessionPositions *pos, Lsn source_wal_lsn)
{
    Lsn wal_end = pos->server_wal_end;
    if (pos->received > wal_end) wal_end = pos->received;
    if (source_wal_lsn > wal_end) wal_end = source_wal_lsn;
    return wal_end > pos->confirmed ? (int64_t)(wal_end - pos->confirmed) : 0;
}

bool session_behind(const SessionPositions *pos, Lsn last_end_lsn, Lsn source_wal_lsn)
{
    Lsn reached = session_idle_end(pos, last_end_lsn);
    if (pos->received > reached) reached = pos->received;
    return source_wal_lsn > reached && (int64_t)(source_wal_lsn - reached) > SESSION_BEHIND_BYTES;
}

SessionDataAction session_data_error(SessionDataErrors *d, const HistoryFailure *f)
{
    if (f->first_id > f->last_id || ++d->failures > SESSION_DATA_FAILURES_MAX) return SESSION_DATA_FATAL;
    if (f->first_id == f->last_id && f->last_commit_lsn <= d->isolate_until) {
        if (d->quarantine_lsn == f->last_commit_lsn) return SESSION_DATA_FATAL; /* its quarantined form failed too */
        d->quarantine_lsn = f->last_commit_lsn;
        d->failures = 0;
        return SESSION_DATA_QUARANTINE;
    }
    if (f->last_commit_lsn > d->isolate_until) d->isolate_until = f->last_commit_lsn;
    return SESSION_DATA_ISOLATE;
}
