/*
 * config.h — walrev's configuration: an INI file (-c FILE), then environment
 * variables, then command-line flags, each overriding the one before
 * (docs/configuration.md). Conninfo strings are libpq's, so .pgpass, service
 * files, PG* variables and TLS settings work; they are never logged whole.
 */
#ifndef WALREV_WORKER_CONFIG_H
#define WALREV_WORKER_CONFIG_H

#include "common/common.h"
#include "common/log.h"
#include "common/props.h"
#include "decoder/context.h"
#include "pgio/pgio.h"
#include "schema/tracking.h"

typedef WrProp ConfigProp;

typedef struct {
    /* [source] */
    char *source_conninfo; /* "" (after config_validate): libpq's defaults (PG* environment, service file) */
    char *slot_name;       /* default "walrev" */
    char *publication;     /* default "walrev" */
    char **tables;         /* setup: tables for the publication; NULL = all tables */
    int ntables;
    /* [history] */
    bool history_enabled;    /* default true */
    /* [source] allow_unrecorded_leaves: run although a table can leave the
     * publication unrecorded (no walrev_note_published trigger); default false */
    bool allow_unrecorded_leaves;
    char *history_conninfo;  /* default: source_conninfo */
    char *history_schema;    /* default "walrev" */
    int batch_max_revisions; /* default 2000 */
    int batch_max_ms;        /* default 20 */
    double keyframe_factor;  /* default 1: a keyframe per live rows' worth of deltas */
    /* [history] synchronous_commit: auto (default), off or on; what each
     * means is sink/sink.h's HistoryCommit, which pipeline.c maps it to. */
    enum { CONFIG_COMMIT_AUTO, CONFIG_COMMIT_OFF, CONFIG_COMMIT_ON } history_commit;
    int partition_revisions; /* revisions per partition of the store (setup applies it); 0: keep the store's */
    long long retain_s;      /* [history] retain: the worker prunes history older than this (seconds); 0: keep all */
    int retain_interval_s;   /* [history] retain_interval: seconds between its rounds; default 3600 */
    int compact_interval_s;  /* [history] compact_interval: seconds between index compactions; 0 off; default 3600 */
    /* [file] */
    char *file_path; /* NULL: file sink off; "-" stdout */
    /* [kafka]: every key except walrev's own passes to librdkafka */
    bool kafka_enabled;          /* true when [kafka] has bootstrap.servers */
    char *kafka_topic_prefix;    /* default "walrev" */
    bool kafka_erase_tombstones; /* erase_tombstones: a tombstone per erased object (compacted topics) */
    ConfigProp *kafka_props;
    int nkafka_props;
    /* [worker] */
    int status_interval_ms;    /* default 1000 */
    size_t row_cache_bytes;    /* default 16 MiB */
    int backfill_chunk_rows;   /* rows per chunk of a table's backfill, default 1000 */
    PgioOptions pgio;          /* connect_timeout, tcp_keepalives_*, reply_timeout_ms (pgio.h defaults) */
    int slot_create_timeout_s; /* longest wait for a new slot to become consistent (stream.h); 0 = forever */
    int reconcile_interval_s;  /* continuous reconciliation (baseline/reconciler.h): seconds between rounds; 0 = off */
    int reconcile_rows_per_second; /* its average read rate; 0 = unbounded; default 10000 */
    Lsn stop_lsn;                  /* --stop-lsn; 0 = none */
    bool replica_identity_full;    /* setup --replica-identity-full */
    /* [tracking] */
    TrackingRules *tracking; /* owned */
    /* [metrics] */
    char *metrics_listen; /* HOST:PORT serving /metrics during walrev run; NULL: off */
    /* [log] */
    LogLevel log_level; /* default info */
    /* [branches] */
    int required_approvals; /* merge --apply needs this many current approvals; default 0 */
    /* [actors]: strict mode (docs/configuration.md#actors), on when a key or a
     * role binding is given. Names, patterns and keys owned; keys are secrets. */
    ContextAppKey *actor_keys; /* key.APP = hex */
    int nactor_keys;
    ContextRoleBinding *actor_roles; /* role.ROLE = TYPE:ID, TYPE:*, ... */
    int nactor_roles;
} Config;

/* Defaults; caller frees with config_term. */
void config_init(Config *cfg);
void config_term(Config *cfg);
/* Load an INI file over cfg. WR_INVALID with "FILE:LINE: what" on errors. */
WrStatus config_load_file(Config *cfg, const char *path, WrError *err) WR_MUSTCHECK;
/* Apply WALREV_* environment variables (docs/configuration.md). */
WrStatus config_load_env(Config *cfg, WrError *err) WR_MUSTCHECK;
/* Final checks and derived defaults (history conninfo from source...). */
WrStatus config_validate(Config *cfg, WrError *err) WR_MUSTCHECK;
/* pgio_redact_conninfo (pgio.h): a conninfo without secrets, for logs; caller frees. */
char *config_redact_conninfo(const char *conninfo);
/* Set one key as if read from [section] (used for flags). WR_INVALID names the key. */
WrStatus config_set_option(Config *cfg, const char *section, const char *key, const char *value,
                           WrError *err) WR_MUSTCHECK;
/* Strict mode's policy over cfg's [actors] (borrowed from cfg), or NULL when
 * [actors] holds no key and no role binding (strict mode off). */
const ContextStrict *config_strict(const Config *cfg, ContextStrict *out);
/* True when conninfo carries a password or sslpassword (to warn about argv). */
bool config_conninfo_has_password(const char *conninfo);

#endif
