/*
 * test_config.c — unit tests of worker/config.c: defaults, every key of every
 * section, every error with its FILE:LINE, precedence (file < environment <
 * flags), validation and conninfo redaction (a password never comes back).
 * Config files are written to a temporary directory; no server is involved.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "worker/config.h"
#include "tests/support/unit_main.h"

static char tmpdir[256];
static char path[512];

static const char *env_vars[] = {"WALREV_SOURCE",      "WALREV_HISTORY",   "WALREV_SCHEMA", "WALREV_SLOT",
                                 "WALREV_PUBLICATION", "WALREV_LOG_LEVEL", "WALREV_FILE"};

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/walrev-test-config-XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    snprintf(path, sizeof(path), "%s/walrev.conf", tmpdir);
    for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++) unsetenv(env_vars[i]);
    return 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    unlink(path);
    rmdir(tmpdir);
    return 0;
}

static void write_conf(const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Load text as a config file; returns the status and leaves the message in err. */
static WrStatus load(Config *cfg, const char *text, WrError *err)
{
    write_conf(text);
    config_init(cfg);
    return config_load_file(cfg, path, err);
}

/* The error expected for text: "<path>:<suffix>". */
static void expect_error(const char *text, const char *suffix)
{
    Config cfg;
    WrError err;
    assert_int_equal(load(&cfg, text, &err), WR_INVALID);
    char want[1024];
    snprintf(want, sizeof(want), "%s:%s", path, suffix);
    assert_string_equal(err.msg, want);
    config_term(&cfg);
}

static void test_defaults(void **state)
{
    (void)state;
    Config cfg;
    config_init(&cfg);
    assert_null(cfg.source_conninfo);
    assert_string_equal(cfg.slot_name, "walrev");
    assert_string_equal(cfg.publication, "walrev");
    assert_null(cfg.tables);
    assert_int_equal(cfg.ntables, 0);
    assert_true(cfg.history_enabled);
    assert_null(cfg.history_conninfo);
    assert_string_equal(cfg.history_schema, "walrev");
    assert_int_equal(cfg.batch_max_revisions, 2000);
    assert_int_equal(cfg.batch_max_ms, 20);
    assert_true(cfg.keyframe_factor == 1.0);
    assert_int_equal(cfg.partition_revisions, 0);
    assert_true(cfg.retain_s == 0);
    assert_int_equal(cfg.retain_interval_s, 3600);
    assert_int_equal(cfg.compact_interval_s, 3600);
    assert_int_equal(cfg.history_commit, CONFIG_COMMIT_AUTO);
    assert_null(cfg.file_path);
    assert_false(cfg.kafka_enabled);
    assert_string_equal(cfg.kafka_topic_prefix, "walrev");
    assert_int_equal(cfg.nkafka_props, 0);
    assert_int_equal(cfg.status_interval_ms, 1000);
    assert_int_equal(cfg.row_cache_bytes, 16 * 1024 * 1024);
    assert_int_equal(cfg.slot_create_timeout_s, 120);
    assert_int_equal(cfg.stop_lsn, 0);
    assert_non_null(cfg.tracking);
    assert_int_equal(cfg.log_level, LOG_LEVEL_INFO);
    config_term(&cfg);
}

static void test_every_key(void **state)
{
    (void)state;
    Config cfg;
    WrError err;
    WrStatus st = load(&cfg,
                       "# walrev test config\n"
                       "; another comment\n"
                       "\n"
                       "[source]\n"
                       "conninfo = host=src port=5433 dbname=app user=walrev\n"
                       "slot = walrev_app\n"
                       "publication = walrev_pub\n"
                       "tables = public.orders, public.customers\n"
                       "tables = app.items\n"
                       "[history]\n"
                       "enabled = yes\n"
                       "conninfo = host=hist dbname=history\n"
                       "schema = audit\n"
                       "batch_max_revisions = 500\n"
                       "batch_max_ms = 250\n"
                       "keyframe_factor = 0.25\n"
                       "synchronous_commit = on\n"
                       "partition_revisions = 5000\n"
                       "retain = 730 days\n"
                       "retain_interval = 600\n"
                       "compact_interval = 0\n"
                       "[file]\n"
                       "path = /var/lib/walrev/revisions.msgpack\n"
                       "[kafka]\n"
                       "topic_prefix = cdc\n"
                       "bootstrap.servers = k1:9092,k2:9092\n"
                       "acks = all\n"
                       "sasl.password = semi;colon#hash\n"
                       "[worker]\n"
                       "status_interval_ms = 500\n"
                       "row_cache_mb = 64\n"
                       "slot_create_timeout = 0\n"
                       "[tracking]\n"
                       "exclude = public.audit_*\n"
                       "untracked = public.users.last_seen\n"
                       "hidden = public.users.password_hash\n"
                       "allow_suppress = on\n"
                       "[log]\n"
                       "level = debug\n",
                       &err);
    assert_int_equal(st, WR_OK);
    assert_string_equal(cfg.source_conninfo, "host=src port=5433 dbname=app user=walrev");
    assert_string_equal(cfg.slot_name, "walrev_app");
    assert_string_equal(cfg.publication, "walrev_pub");
    assert_int_equal(cfg.ntables, 3);
    assert_string_equal(cfg.tables[0], "public.orders");
    assert_string_equal(cfg.tables[1], "public.customers");
    assert_string_equal(cfg.tables[2], "app.items");
    assert_true(cfg.history_enabled);
    assert_string_equal(cfg.history_conninfo, "host=hist dbname=history");
    assert_string_equal(cfg.history_schema, "audit");
    assert_int_equal(cfg.batch_max_revisions, 500);
    assert_int_equal(cfg.batch_max_ms, 250);
    assert_true(cfg.keyframe_factor == 0.25);
    assert_int_equal(cfg.history_commit, CONFIG_COMMIT_ON);
    assert_int_equal(cfg.partition_revisions, 5000);
    assert_true(cfg.retain_s == 730LL * 86400);
    assert_int_equal(cfg.retain_interval_s, 600);
    assert_int_equal(cfg.compact_interval_s, 0);
    assert_string_equal(cfg.file_path, "/var/lib/walrev/revisions.msgpack");
    assert_string_equal(cfg.kafka_topic_prefix, "cdc");
    assert_true(cfg.kafka_enabled);
    assert_int_equal(cfg.nkafka_props, 3);
    assert_string_equal(cfg.kafka_props[0].name, "bootstrap.servers");
    assert_string_equal(cfg.kafka_props[0].value, "k1:9092,k2:9092");
    assert_string_equal(cfg.kafka_props[1].name, "acks");
    assert_string_equal(cfg.kafka_props[1].value, "all");
    /* ';' and '#' inside a value are kept: no inline comments. */
    assert_string_equal(cfg.kafka_props[2].value, "semi;colon#hash");
    assert_int_equal(cfg.status_interval_ms, 500);
    assert_int_equal(cfg.row_cache_bytes, 64 * 1024 * 1024);
    assert_int_equal(cfg.slot_create_timeout_s, 0);
    assert_true(tracking_table_excluded(cfg.tracking, "public", "audit_x"));
    assert_int_equal(tracking_column_mode(cfg.tracking, "public", "users", "last_seen"), TRACK_UNTRACKED);
    assert_int_equal(tracking_column_mode(cfg.tracking, "public", "users", "password_hash"), TRACK_HIDDEN);
    assert_true(tracking_allow_suppress(cfg.tracking));
    assert_int_equal(cfg.log_level, LOG_LEVEL_DEBUG);
    config_term(&cfg);
}

/* [history] synchronous_commit: auto, or any boolean spelling for on and off. */
static void test_synchronous_commit_values(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        int want;
    } cases[] = {{"auto", CONFIG_COMMIT_AUTO}, {"AUTO", CONFIG_COMMIT_AUTO}, {"off", CONFIG_COMMIT_OFF},
                 {"false", CONFIG_COMMIT_OFF}, {"0", CONFIG_COMMIT_OFF},     {"on", CONFIG_COMMIT_ON},
                 {"yes", CONFIG_COMMIT_ON},    {"1", CONFIG_COMMIT_ON}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[128];
        snprintf(text, sizeof(text), "[history]\nsynchronous_commit = %s\n", cases[i].value);
        Config cfg;
        WrError err;
        assert_int_equal(load(&cfg, text, &err), WR_OK);
        assert_int_equal(cfg.history_commit, cases[i].want);
        config_term(&cfg);
    }
}

static void test_long_line_and_kafka_off(void **state)
{
    (void)state;
    /* inih's default line limit is 200 bytes; conninfos with TLS options are longer. */
    char conninfo[1200], text[1400];
    snprintf(conninfo, sizeof(conninfo), "host=db.example.com sslmode=verify-full sslrootcert=/");
    size_t n = strlen(conninfo);
    memset(conninfo + n, 'a', 1000);
    conninfo[n + 1000] = '\0';
    snprintf(text, sizeof(text), "[source]\nconninfo = %s\n[history]\nenabled = false\n", conninfo);
    Config cfg;
    WrError err;
    assert_int_equal(load(&cfg, text, &err), WR_OK);
    assert_string_equal(cfg.source_conninfo, conninfo);
    assert_false(cfg.history_enabled);
    assert_false(cfg.kafka_enabled);
    config_term(&cfg);
}

static void test_errors_name_file_and_line(void **state)
{
    (void)state;
    expect_error("[source]\nslot = a\n\nfrobnicate = 1\n", "4: unknown key 'frobnicate' in [source]");
    expect_error("# c\n[sauce]\nslot = a\n", "2: unknown section [sauce]");
    /* a misspelt section with nothing (or only comments) under it */
    expect_error("[source]\nslot = a\n[metric]\n# listen = :9187\n", "3: unknown section [metric]");
    expect_error("slot = a\n", "1: key 'slot' outside any [section]");
    expect_error("[history]\nbatch_max_revisions = lots\n",
                 "2: [history] batch_max_revisions: 'lots' is not an integer");
    expect_error("[history]\nsynchronous_commit = local\n",
                 "2: [history] synchronous_commit: 'local' is not auto or a boolean (true/false, yes/no, on/off, 1/0)");
    expect_error("[history]\nbatch_max_ms = 12ms\n", "2: [history] batch_max_ms: '12ms' is not an integer");
    expect_error("[history]\npartition_revisions = 0\n",
                 "2: [history] partition_revisions: 0 is out of range [1, 1000000000]");
    expect_error("[history]\nretain = 2 years\n",
                 "2: [history] retain: '2 years' is not a period (e.g. 730 days, 12 hours)");
    expect_error("[history]\nretain = 40000d\n", "2: [history] retain: '40000d' is longer than 100 years");
    expect_error("[history]\nretain_interval = 0\n", "2: [history] retain_interval: 0 is out of range [1, 86400]");
    expect_error("[history]\ncompact_interval = 86401\n",
                 "2: [history] compact_interval: 86401 is out of range [0, 86400]");
    expect_error("[history]\nkeyframe_factor = 0\n", "2: [history] keyframe_factor: 0 is out of range [0.01, 1000]");
    expect_error("[history]\nkeyframe_factor = 1001\n",
                 "2: [history] keyframe_factor: 1001 is out of range [0.01, 1000]");
    expect_error("[history]\nkeyframe_factor = half\n", "2: [history] keyframe_factor: 'half' is not a number");
    expect_error("[history]\nbatch_max_revisions = 99999999999999999999\n",
                 "2: [history] batch_max_revisions: '99999999999999999999' is not an integer");
    expect_error("[worker]\nrow_cache_mb = -1\n", "2: [worker] row_cache_mb: -1 is out of range [0, 1048576]");
    expect_error("[worker]\nslot_create_timeout = 86401\n",
                 "2: [worker] slot_create_timeout: 86401 is out of range [0, 86400]");
    expect_error("[worker]\nstatus_interval_ms = 5\n",
                 "2: [worker] status_interval_ms: 5 is out of range [10, 3600000]");
    expect_error("[history]\nenabled = maybe\n",
                 "2: [history] enabled: 'maybe' is not a boolean (true/false, yes/no, on/off, 1/0)");
    expect_error("[tracking]\nallow_suppress = 2\n",
                 "2: [tracking] allow_suppress: '2' is not a boolean (true/false, yes/no, on/off, "
                 "1/0)");
    expect_error("[log]\nlevel = loud\n", "2: [log] level: unknown level 'loud' (error, warn, info or debug)");
    expect_error("[tracking]\n\nhidden = public.users\n",
                 "3: [tracking] hidden: hidden pattern 'public.users': expected "
                 "schema.table.column");
    expect_error("[source]\ntables = a,,b\n", "2: [source] tables: empty table name in 'a,,b'");
    expect_error("[kafka]\nbootstrap.servers = k:9092\nbogus.property = 1\n",
                 "3: [kafka] bogus.property: unknown librdkafka property 'bogus.property'");
    expect_error("[source]\nthis line has no equals sign\n",
                 "2: syntax error (expected [section], key = value or a comment starting with "
                 "# or ;)");
    expect_error("[source\nslot = a\n", "1: syntax error (expected [section], key = value or a comment starting with "
                                        "# or ;)");
    /* The first error wins even when later lines are also wrong. */
    expect_error("[source]\nnope = 1\n[bad]\n", "2: unknown key 'nope' in [source]");
}

static void test_secret_kafka_value_not_echoed(void **state)
{
    (void)state;
    /* librdkafka's message quotes the bad value of an ordinary property... */
    expect_error("[kafka]\nsecurity.protocol = bogus\n",
                 "2: [kafka] security.protocol: Invalid value \"bogus\" for configuration "
                 "property \"security.protocol\"");
    /* ...but for sasl.*, ssl.* and anything named like a secret only the key is named. */
    expect_error("[kafka]\nssl.endpoint.identification.algorithm = TOPSECRET\n",
                 "2: [kafka] ssl.endpoint.identification.algorithm: invalid value for librdkafka "
                 "property 'ssl.endpoint.identification.algorithm'");
}

static void test_missing_file(void **state)
{
    (void)state;
    Config cfg;
    WrError err;
    config_init(&cfg);
    assert_int_equal(config_load_file(&cfg, "/nonexistent/walrev.conf", &err), WR_INVALID);
    assert_string_equal(err.msg, "cannot open config file /nonexistent/walrev.conf: No such file or directory");
    config_term(&cfg);
}

static void test_precedence(void **state)
{
    (void)state;
    Config cfg;
    WrError err;
    assert_int_equal(load(&cfg,
                          "[source]\nconninfo = dbname=fromfile\nslot = file_slot\n"
                          "publication = file_pub\n[history]\nschema = file_schema\n"
                          "[log]\nlevel = error\n[file]\npath = /tmp/file\n",
                          &err),
                     WR_OK);
    setenv("WALREV_SLOT", "env_slot", 1);
    setenv("WALREV_SCHEMA", "env_schema", 1);
    setenv("WALREV_LOG_LEVEL", "warn", 1);
    setenv("WALREV_FILE", "-", 1);
    setenv("WALREV_HISTORY", "dbname=envhistory", 1);
    assert_int_equal(config_load_env(&cfg, &err), WR_OK);
    /* Flags come last. */
    assert_int_equal(config_set_option(&cfg, "source", "slot", "flag_slot", &err), WR_OK);
    assert_int_equal(config_validate(&cfg, &err), WR_OK);

    assert_string_equal(cfg.source_conninfo, "dbname=fromfile");    /* file only */
    assert_string_equal(cfg.publication, "file_pub");               /* file only */
    assert_string_equal(cfg.slot_name, "flag_slot");                /* flag > env > file */
    assert_string_equal(cfg.history_schema, "env_schema");          /* env > file */
    assert_string_equal(cfg.history_conninfo, "dbname=envhistory"); /* env */
    assert_int_equal(cfg.log_level, LOG_LEVEL_WARN);                /* env > file */
    assert_string_equal(cfg.file_path, "-");                        /* env > file */
    config_term(&cfg);
    for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++) unsetenv(env_vars[i]);
}

static void test_env_errors(void **state)
{
    (void)state;
    Config cfg;
    WrError err;
    config_init(&cfg);
    setenv("WALREV_LOG_LEVEL", "chatty", 1);
    assert_int_equal(config_load_env(&cfg, &err), WR_INVALID);
    assert_string_equal(err.msg, "environment WALREV_LOG_LEVEL: unknown level 'chatty' (error, warn, info or "
                                 "debug)");
    unsetenv("WALREV_LOG_LEVEL");
    assert_int_equal(config_set_option(&cfg, "source", "nope", "1", &err), WR_INVALID);
    assert_string_equal(err.msg, "unknown key 'nope' in [source]");
    config_term(&cfg);
}

static void test_validate(void **state)
{
    (void)state;
    Config cfg;
    WrError err;
    config_init(&cfg);
    assert_int_equal(config_set_option(&cfg, "source", "conninfo", "dbname=app", &err), WR_OK);
    assert_int_equal(config_validate(&cfg, &err), WR_OK);
    assert_string_equal(cfg.history_conninfo, "dbname=app"); /* history defaults to the source */
    config_term(&cfg);

    /* A bad name or conninfo is refused where it is set, so the error can say
     * which file line, environment variable or flag gave it. */
    config_init(&cfg);
    assert_int_equal(config_set_option(&cfg, "source", "slot", "Bad-Slot", &err), WR_INVALID);
    assert_string_equal(err.msg,
                        "[source] slot: slot name 'Bad-Slot' is not valid: use 1-63 lower-case letters, digits or _");
    assert_string_equal(cfg.slot_name, "walrev"); /* unchanged */
    config_term(&cfg);

    config_init(&cfg);
    assert_int_equal(config_set_option(&cfg, "source", "conninfo", "host=h bogus=1", &err), WR_INVALID);
    assert_string_equal(err.msg, "[source] conninfo: not a valid conninfo: invalid connection option \"bogus\"");
    config_term(&cfg);

    config_init(&cfg);
    assert_int_equal(config_set_option(&cfg, "history", "schema", "", &err), WR_INVALID);
    assert_string_equal(err.msg, "[history] schema: '' is not a name of 1 to 63 characters");
    assert_int_equal(config_set_option(&cfg, "source", "publication", "", &err), WR_INVALID);
    assert_string_equal(err.msg, "[source] publication: '' is not a name of 1 to 63 characters");
    config_term(&cfg);

    /* the file's line is named */
    expect_error("[source]\nconninfo = dbname=app\nslot = Bad-Slot\n",
                 "3: [source] slot: slot name 'Bad-Slot' is not valid: use 1-63 lower-case letters, digits or _");

    /* the environment variable is named */
    config_init(&cfg);
    setenv("WALREV_SLOT", "Bad", 1);
    assert_int_equal(config_load_env(&cfg, &err), WR_INVALID);
    unsetenv("WALREV_SLOT");
    assert_string_equal(err.msg,
                        "environment WALREV_SLOT: slot name 'Bad' is not valid: use 1-63 lower-case letters, digits or _");
    config_term(&cfg);
}

static void expect_redacted(const char *conninfo, const char *want)
{
    char *r = config_redact_conninfo(conninfo);
    assert_string_equal(r, want);
    assert_null(strstr(r, "s3cret"));
    free(r);
}

static void test_redaction(void **state)
{
    (void)state;
    expect_redacted("host=db port=5433 dbname=app user=walrev password=s3cret",
                    "host=db port=5433 dbname=app user=walrev");
    expect_redacted("password='s3cret word' host=db sslpassword=s3cret sslmode=require", "host=db sslmode=require");
    expect_redacted("postgresql://walrev:s3cret@db:5432/app?sslmode=verify-full",
                    "host=db port=5432 dbname=app user=walrev sslmode=verify-full");
    expect_redacted("dbname='my db' application_name=x options='-c x=s3cret'", "dbname='my db' application_name=x");
    expect_redacted("host=db password=s3cret unterminated='", "(unparsable conninfo)");
    expect_redacted("", "(defaults)");
    expect_redacted(NULL, "(none)");

    assert_true(config_conninfo_has_password("host=a password=s3cret"));
    assert_true(config_conninfo_has_password("postgresql://u:s3cret@h/d"));
    assert_false(config_conninfo_has_password("host=a user=b"));
    assert_false(config_conninfo_has_password(NULL));
}

/* [actors] (strict mode): keys become HMAC pads, bindings their patterns; a
 * later entry of the same name replaces the earlier; none means off. */
static void test_actors(void **state)
{
    (void)state;
    Config cfg;
    WrError err;
    ContextStrict strict;
    config_init(&cfg);
    assert_null(config_strict(&cfg, &strict));
    config_term(&cfg);
    assert_int_equal(load(&cfg,
                          "[actors]\n"
                          "key.billing = 0102030405060708090a0b0c0d0e0f10\n"
                          "key.reports = FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF\n"
                          "key.billing = 1112131415161718191a1b1c1d1e1f20\n"
                          "role.app = user:*,  service:billing \n"
                          "role.ops = team:ops\n"
                          "role.app = user:42\n",
                          &err),
                     WR_OK);
    const ContextStrict *s = config_strict(&cfg, &strict);
    assert_non_null(s);
    assert_int_equal(s->nkeys, 2);
    assert_string_equal(s->keys[0].name, "billing");
    assert_int_equal(s->keys[0].ipad[0], 0x11 ^ 0x36); /* the later key */
    assert_int_equal(s->keys[0].opad[15], 0x20 ^ 0x5c);
    assert_int_equal(s->keys[0].ipad[16], 0x36); /* zero-padded to the block */
    assert_string_equal(s->keys[1].name, "reports");
    assert_int_equal(s->keys[1].opad[31], 0xff ^ 0x5c);
    assert_int_equal(s->nroles, 2);
    assert_string_equal(s->roles[0].role, "app");
    assert_int_equal(s->roles[0].nactors, 1);
    assert_string_equal(s->roles[0].actors[0], "user:42");
    assert_string_equal(s->roles[1].role, "ops");
    assert_string_equal(s->roles[1].actors[0], "team:ops");
    config_term(&cfg);
    assert_int_equal(load(&cfg, "[actors]\nrole.app = user:*,  service:billing \n", &err), WR_OK);
    assert_int_equal(cfg.actor_roles[0].nactors, 2);
    assert_string_equal(cfg.actor_roles[0].actors[1], "service:billing");
    config_term(&cfg);
    /* errors name the line; the key itself never appears */
    expect_error(
        "[actors]\nkey.billing = 0102\n",
        "2: [actors] key.billing: the key must be 32 to 128 hex digits (16 to 64 bytes; `openssl rand -hex 32`)");
    expect_error("[actors]\nkey.billing = 0102030405060708090a0b0c0d0e0fXY\n",
                 "2: [actors] key.billing: the key must be hex digits only");
    expect_error("[actors]\nrole.ops = team:ops,\n", "2: [actors] role.ops: '' is not an actor TYPE:ID or TYPE:*");
    expect_error("[actors]\nrole.ops = :ops\n", "2: [actors] role.ops: ':ops' is not an actor TYPE:ID or TYPE:*");
    expect_error("[actors]\nrole.ops = team:\n", "2: [actors] role.ops: 'team:' is not an actor TYPE:ID or TYPE:*");
    expect_error("[actors]\nrole. = team:ops\n", "2: [actors] role.: a role name is needed after 'role.'");
    expect_error("[actors]\nstrict = true\n", "2: unknown key 'strict' in [actors]");
}

TS_RUN_GROUP(setup_dir, teardown_dir, cmocka_unit_test(test_defaults), cmocka_unit_test(test_every_key),
             cmocka_unit_test(test_long_line_and_kafka_off), cmocka_unit_test(test_errors_name_file_and_line),
             cmocka_unit_test(test_secret_kafka_value_not_echoed), cmocka_unit_test(test_missing_file),
             cmocka_unit_test(test_precedence), cmocka_unit_test(test_env_errors), cmocka_unit_test(test_validate),
             cmocka_unit_test(test_redaction), cmocka_unit_test(test_actors),
             cmocka_unit_test(test_synchronous_commit_values))
