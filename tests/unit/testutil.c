/*
 * Test data lookup and golden files for the unit tests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "testutil.h"

char *
test_data_path(const char *rel)
{
	const char *dir = getenv("TESTDATA");
	char *p, cwd[4096];

	/* Absolute either way: some code under test refuses relative paths. */
	if (dir != NULL)
		xasprintf(&p, "%s/%s", dir, rel);
	else if (getcwd(cwd, sizeof(cwd)) != NULL)
		xasprintf(&p, "%s/tests/data/%s", cwd, rel);
	else
		xasprintf(&p, "tests/data/%s", rel);
	return p;
}

char *
test_data_read(const char *rel)
{
	char *path = test_data_path(rel), *buf;

	buf = read_file(path, 16 << 20, NULL);
	free(path);
	return buf;
}

bool
golden_check(const char *rel, const char *actual)
{
	const char *regen = getenv("REGENERATE");
	char *path, *expected;
	size_t i, line = 1;
	bool ok;

	path = test_data_path(rel);
	if (regen != NULL && strcmp(regen, "1") == 0) {
		ok = write_file_atomic(path, actual, strlen(actual), 0644) == 0;
		if (!ok)
			fprintf(stderr, "REGENERATE: cannot write %s\n", path);
		free(path);
		return ok;
	}
	expected = read_file(path, 16 << 20, NULL);
	if (expected == NULL) {
		fprintf(stderr,
		    "golden file %s missing (REGENERATE=1 creates it)\n", path);
		free(path);
		return false;
	}
	ok = strcmp(expected, actual) == 0;
	if (!ok) {
		for (i = 0; expected[i] != '\0' && expected[i] == actual[i];
		     i++)
			if (expected[i] == '\n')
				line++;
		fprintf(stderr,
		    "%s: differs at line %zu\n--- expected\n%.200s\n"
		    "+++ actual\n%.200s\n",
		    path, line, expected + i, actual + i);
	}
	free(expected);
	free(path);
	return ok;
}
