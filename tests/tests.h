/* tests.h - the one list of test suites (as libuv's test-list.h). Each area's
 * file defines its suite_<name>(); test_main.c runs them all. Add a suite by
 * adding one X line here and its file to Makefile.am. */
#ifndef GD_TESTS_H
#define GD_TESTS_H

#include <check.h>

#define GD_TEST_SUITES(X) \
    X(tensor)             \
    X(ops_elementwise)    \
    X(ops_reduce)         \
    X(ops_shape)          \
    X(graph)              \
    X(engine)             \
    X(diagnose)           \
    X(property)           \
    X(proto)              \
    X(numfmt)             \
    X(numparse)           \
    X(numscan)            \
    X(jfast)              \
    X(memory)             \
    X(fixtures)

#define GD__DECL_SUITE(name) Suite *suite_##name(void);
GD_TEST_SUITES(GD__DECL_SUITE)
#undef GD__DECL_SUITE

#endif
