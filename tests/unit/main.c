/*
 * The unit-test runner: every tests/unit/test_NAME.c contributes one Check
 * suite, listed in the generated suites.h.  CK_RUN_SUITE=NAME runs just one.
 */
#include <check.h>
#include <stdlib.h>

#include "common.h"

#define SUITE(n) Suite *suite_##n(void);
#include "suites.h"
#undef SUITE

int
main(void)
{
	SRunner *sr;
	int failed;

	log_init("unit", getenv("DEBUG") != NULL);
	sr = srunner_create(NULL);
#define SUITE(n) srunner_add_suite(sr, suite_##n());
#include "suites.h"
#undef SUITE
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
