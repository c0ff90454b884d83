/*
 * unit_main.h — the main() of a cmocka test binary that runs its tests as
 * one group with no group setup or teardown, written once:
 * TS_RUN_TESTS(cmocka_unit_test(a), cmocka_unit_test(b), ...) at the end of
 * the file. Its exit status is the number of failed tests (cmocka's).
 * TS_RUN_GROUP(setup, teardown, tests...) is the same with a group fixture:
 * setup runs once before the tests, teardown once after. A test that needs
 * more (an environment, a skip condition) writes its own main().
 */
#ifndef WALREV_TESTS_UNIT_MAIN_H
#define WALREV_TESTS_UNIT_MAIN_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define TS_RUN_GROUP(setup, teardown, ...)                     \
    int main(void)                                             \
    {                                                          \
        const struct CMUnitTest tests[] = {__VA_ARGS__};       \
        return cmocka_run_group_tests(tests, setup, teardown); \
    }
#define TS_RUN_TESTS(...) TS_RUN_GROUP(NULL, NULL, __VA_ARGS__)

#endif
