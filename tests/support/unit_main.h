/*
 * unit_main.h — the main() of a cmocka test binary that runs its tests as
 * one group with no group setup or teardown, written once:
 * TS_RUN_TESTS(cmocka_unit_test(a), cmocka_unit_test(b), ...) at the end of
 * the file. Its exit status is the number of failed tests (cmocka's). A test
 * that needs a group fixture or a skip condition writes its own main().
 */
#ifndef WALREV_TESTS_UNIT_MAIN_H
#define WALREV_TESTS_UNIT_MAIN_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define TS_RUN_TESTS(...)                                 \
    int main(void)                                        \
    {                                                     \
        const struct CMUnitTest tests[] = {__VA_ARGS__};  \
        return cmocka_run_group_tests(tests, NULL, NULL); \
    }

#endif
