/* test_main.c - runs every suite of tests.h in one SRunner. CK_FORK follows
 * check's default (fork per test unless CK_FORK=no), so a crashing test fails
 * alone. */
#include <stdlib.h>

#include "tests.h"

int main(void) {
    SRunner *sr = srunner_create(NULL);
#define GD__ADD_SUITE(name) srunner_add_suite(sr, suite_##name());
    GD_TEST_SUITES(GD__ADD_SUITE)
#undef GD__ADD_SUITE
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
