/*
 * stream.h — the replication connection: a libpq connection in logical
 * walsender mode (replication=database), IDENTIFY_SYSTEM, slot creation,
 * START_REPLICATION with pgoutput, CopyData receive, standby status updates,
 * and a clean CopyDone. It parses nothing (decoder/pgoutput.h does) and logs
 * nothing; errors carry the server's message and SQLSTATE class.
 */
#ifndef WALREV_DECODER_STREAM_H
#define WALREV_DECODER_STREAM_H

#include "common/common.h"

typedef struct ReplStream ReplStream;

typedef struct {
    uint64_t system_id;
    int timeline;
    Lsn xlogpos;
    char dbname[128];
} ReplSystemInfo;

/* Connect with conninfo plus replication=database. WR_RETRY when the server is unreachable
 * or shutting down, WR_FATAL on authentication/permission errors. *out owned by caller. */
WrStatus repl_stream_connect(const char *conninfo, ReplStream **out, WrError *err) WR_MUSTCHECK;
void repl_stream_destroy(ReplStream *s);

WrStatus repl_stream_identify(ReplStream *s, ReplSystemInfo *info, WrError *err) WR_MUSTCHECK;

/*
 * A new logical slot is consistent only once every transaction open when it
 * was asked for has ended; a PREPAREd transaction never ends by itself, so
 * without a bound the request waits forever. Process-wide, set once at start.
 */
typedef struct {
    int slot_wait_s;       /* longest wait for a new slot to become consistent; 0 = forever */
    bool (*waiting)(void); /* called about once a second while waiting (watchdog); false gives
                            * up at once (a stop was asked); may be NULL */
} ReplStreamOptions;

/* Defaults: slot_wait_s 120, waiting NULL. */
void repl_stream_options_default(ReplStreamOptions *o);
void repl_stream_configure(const ReplStreamOptions *o);

/*
 * CREATE_REPLICATION_SLOT slot LOGICAL pgoutput (SNAPSHOT 'export'|'nothing').
 * consistent_point and, with export, the snapshot name (valid only until the next
 * command on this connection) are returned. *exists=true (and WR_OK) when the slot
 * already existed (SQLSTATE 42710). After slot_wait_s the request is cancelled:
 * WR_FATAL naming the prepared and the oldest open transactions it waited for.
 */
WrStatus repl_stream_create_slot(ReplStream *s, const char *slot, bool export_snapshot, Lsn *consistent_point,
                                 char *snapshot_name, size_t snapshot_size, bool *exists, WrError *err) WR_MUSTCHECK;

/*
 * CREATE_REPLICATION_SLOT slot TEMPORARY LOGICAL pgoutput (SNAPSHOT 'export'):
 * a slot that lives as long as this connection, only for its exported
 * snapshot and consistent point (e.g. to read tables at a known position).
 * WR_FATAL when a slot of that name exists.
 */
WrStatus repl_stream_create_temporary_slot(ReplStream *s, const char *slot, Lsn *consistent_point, char *snapshot_name,
                                           size_t snapshot_size, WrError *err) WR_MUSTCHECK;

/*
 * START_REPLICATION SLOT slot LOGICAL start (proto_version, publication_names,
 * messages 'true', plus extra_options verbatim if not NULL, e.g. "\"streaming\" 'on'").
 */
WrStatus repl_stream_start(ReplStream *s, const char *slot, Lsn start, int proto_version, const char *publications,
                           const char *extra_options, WrError *err) WR_MUSTCHECK;

/*
 * Next CopyData from the server, waiting at most timeout_ms (0: do not wait).
 * WR_OK: *buf and *len hold it, valid until the next call. WR_AGAIN: nothing yet.
 * WR_DONE: the server ended the stream. WR_RETRY: connection lost.
 */
WrStatus repl_stream_receive(ReplStream *s, int timeout_ms, const uint8_t **buf, size_t *len,
                             WrError *err) WR_MUSTCHECK;

/* Send a standby status update ('r') and flush it. */
WrStatus repl_stream_send_status(ReplStream *s, Lsn written, Lsn flushed, Lsn applied, bool reply_requested,
                                 WrError *err) WR_MUSTCHECK;

/* Send CopyDone, drain what the server still sends, end COPY. */
WrStatus repl_stream_finish(ReplStream *s, WrError *err) WR_MUSTCHECK;

/* The socket, for poll() alongside other work. */
int repl_stream_socket(const ReplStream *s);

#endif
