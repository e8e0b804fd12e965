/*
 * Helpers for the Check unit tests: where test data lives and golden-file
 * comparison (REGENERATE=1 rewrites the expected file instead of comparing).
 */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <check.h>
#include <stdbool.h>

/* Returns a malloc'd path under the test data directory ($TESTDATA or tests/data). */
char *test_data_path(const char *rel);
/* Reads a file under the test data directory; NULL when missing. */
char *test_data_read(const char *rel);
/*
 * Compares `actual` with the golden file `rel`.  On mismatch prints a short
 * diff context and returns false.  With REGENERATE=1 writes it and returns true.
 */
bool golden_check(const char *rel, const char *actual);

#endif
