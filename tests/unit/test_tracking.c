/*
 * test_tracking.c — unit tests of the tracking rules (schema/tracking.h):
 * pattern validation with exact messages, '*' globbing within one part,
 * untracked vs hidden precedence, all-or-nothing adds, and the listing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "schema/tracking.h"
#include "tests/support/unit_main.h"

static void test_empty_rules_track_everything(void **state)
{
    (void)state;
    TrackingRules *r = tracking_create();
    assert_false(tracking_table_excluded(r, "public", "users"));
    assert_int_equal(tracking_column_mode(r, "public", "users", "password"), TRACK_FULL);
    assert_false(tracking_allow_suppress(r));
    tracking_destroy(r);
    /* NULL rules mean no rules. */
    assert_false(tracking_table_excluded(NULL, "a", "b"));
    assert_int_equal(tracking_column_mode(NULL, "a", "b", "c"), TRACK_FULL);
    tracking_destroy(NULL);
}

typedef struct {
    const char *schema, *table;
    bool excluded;
} ExcludeCase;

/* The exclude rules patterns accepted, then each table excluded or not as its case says. */
static void expect_excluded(const char *patterns, const ExcludeCase *cases, size_t n)
{
    TrackingRules *r = tracking_create();
    WrError err;
    assert_int_equal(tracking_add(r, RULE_EXCLUDE, patterns, &err), WR_OK);
    for (size_t i = 0; i < n; i++) {
        if (tracking_table_excluded(r, cases[i].schema, cases[i].table) != cases[i].excluded)
            fail_msg("%s: %s.%s excluded is not %d", patterns, cases[i].schema, cases[i].table, cases[i].excluded);
    }
    tracking_destroy(r);
}

static void test_exclude_exact_and_glob(void **state)
{
    (void)state;
    static const ExcludeCase cases[] = {
        {"public", "audit_log", true},   {"public", "audit_", true},     {"public", "audit", false},
        {"public", "xaudit_log", false}, {"staging", "anything", true},  {"sales", "tmp", true},
        {"sales", "tmp2", false},        {"Public", "audit_log", false}, /* case-sensitive */
    };
    expect_excluded("public.audit_*, staging.*,*.tmp", cases, sizeof cases / sizeof cases[0]);
}

static void test_glob_backtracking(void **state)
{
    (void)state;
    static const ExcludeCase cases[] = {
        {"s", "abc", true}, {"s", "aXbYc", true}, {"s", "abbbcbc", true}, {"s", "abcd", false}, {"s", "acb", false},
    };
    expect_excluded("s.a*b*c", cases, sizeof cases / sizeof cases[0]);
}

/* A fixture: empty rules in *state, destroyed after the test. */
static int rules_setup(void **state)
{
    *state = tracking_create();
    return 0;
}

static int rules_teardown(void **state)
{
    tracking_destroy(*state);
    return 0;
}

/* The listing of r is exactly want. */
static void expect_described(const TrackingRules *r, const char *want)
{
    StrBuf b;
    strbuf_init(&b);
    tracking_describe(r, &b);
    assert_string_equal(b.data, want);
    strbuf_free(&b);
}

static void test_column_modes(void **state)
{
    TrackingRules *r = *state;
    WrError err;
    assert_int_equal(tracking_add(r, RULE_HIDDEN, "public.users.password_hash, *.*.*secret*", &err), WR_OK);
    assert_int_equal(tracking_add(r, RULE_UNTRACKED, "public.users.last_seen", &err), WR_OK);
    assert_int_equal(tracking_column_mode(r, "public", "users", "password_hash"), TRACK_HIDDEN);
    assert_int_equal(tracking_column_mode(r, "app", "keys", "api_secret_v2"), TRACK_HIDDEN);
    assert_int_equal(tracking_column_mode(r, "public", "users", "last_seen"), TRACK_UNTRACKED);
    assert_int_equal(tracking_column_mode(r, "public", "users", "email"), TRACK_FULL);
    assert_int_equal(tracking_column_mode(r, "public", "orders", "password_hash"), TRACK_FULL);
    /* Both rules match: untracked records less, so it wins. */
    assert_int_equal(tracking_add(r, RULE_UNTRACKED, "public.users.*_hash", &err), WR_OK);
    assert_int_equal(tracking_column_mode(r, "public", "users", "password_hash"), TRACK_UNTRACKED);
    /* Column rules never exclude tables, and exclude rules never touch columns. */
    assert_false(tracking_table_excluded(r, "public", "users"));
}

static void test_bad_patterns(void **state)
{
    TrackingRules *r = *state;
    WrError err;
    static const struct {
        RuleKind kind;
        const char *patterns, *want;
    } bad[] = {
        {RULE_EXCLUDE, "users", "exclude pattern 'users': expected schema.table"},
        {RULE_EXCLUDE, "a.b.c", "exclude pattern 'a.b.c': expected schema.table"},
        {RULE_HIDDEN, "public.users", "hidden pattern 'public.users': expected schema.table.column"},
        {RULE_UNTRACKED, "public..x", "untracked pattern 'public..x': expected schema.table.column"},
        {RULE_EXCLUDE, "a.b,,c.d", "exclude: empty pattern in 'a.b,,c.d'"},
        {RULE_EXCLUDE, "", "exclude: empty pattern in ''"},
        {RULE_EXCLUDE, "\"Public\".x",
         "exclude pattern '\"Public\".x': spaces and quotes are not allowed (write names as stored, e.g. "
         "schema.table)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(tracking_add(r, bad[i].kind, bad[i].patterns, &err), WR_INVALID);
        assert_string_equal(err.msg, bad[i].want);
    }
    /* All or nothing: the good first pattern of a failed list is not kept. */
    assert_int_equal(tracking_add(r, RULE_EXCLUDE, "s.good, bad", &err), WR_INVALID);
    assert_false(tracking_table_excluded(r, "s", "good"));
    expect_described(r, "excluded tables (no history at all):\n  (none)\n"
                        "untracked columns (changes ignored):\n  (none)\n"
                        "hidden columns (changes recorded, values never):\n  (none)\n"
                        "suppression by context: not allowed\n");
}

static void test_describe(void **state)
{
    TrackingRules *r = *state;
    WrError err;
    assert_int_equal(tracking_add(r, RULE_HIDDEN, " public.users.password ", &err), WR_OK);
    assert_int_equal(tracking_add(r, RULE_EXCLUDE, "public.audit_*,staging.*", &err), WR_OK);
    tracking_set_allow_suppress(r, true);
    assert_true(tracking_allow_suppress(r));
    expect_described(r, "excluded tables (no history at all):\n  public.audit_*\n  staging.*\n"
                        "untracked columns (changes ignored):\n  (none)\n"
                        "hidden columns (changes recorded, values never):\n"
                        "  public.users.password\n"
                        "suppression by context: allowed\n");
}

TS_RUN_TESTS(cmocka_unit_test(test_empty_rules_track_everything), cmocka_unit_test(test_exclude_exact_and_glob),
             cmocka_unit_test(test_glob_backtracking),
             cmocka_unit_test_setup_teardown(test_column_modes, rules_setup, rules_teardown),
             cmocka_unit_test_setup_teardown(test_bad_patterns, rules_setup, rules_teardown),
             cmocka_unit_test_setup_teardown(test_describe, rules_setup, rules_teardown))
