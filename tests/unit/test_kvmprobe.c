/*
 * vmmod/kvmprobe.c: the probe always answers within its timeout (plus the
 * time to reap its child), whatever /dev/kvm does on the machine running
 * the tests, and explains every fallback to TCG.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmmod.h"
#include "testutil.h"

#define PROBE_TIMEOUT_MS 2000
#define SLACK_MS 1500 /* reaping (1 s at most) and a slow qemu-user */

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

START_TEST(test_kvmprobe_missing)
{
	char *why;

	ck_assert_int_eq(
	    kvmprobe_run("/nonexistent/kvm", PROBE_TIMEOUT_MS, &why),
	    ACCEL_TCG);
	ck_assert_str_eq(why, "/nonexistent/kvm missing");
	free(why);
	/* the reason is optional */
	ck_assert_int_eq(
	    kvmprobe_run("/nonexistent/kvm", PROBE_TIMEOUT_MS, NULL),
	    ACCEL_TCG);
}
END_TEST

START_TEST(test_kvmprobe_not_kvm)
{
	char *why;
	long t0 = now_ms();

	ck_assert_int_eq(
	    kvmprobe_run("/dev/null", PROBE_TIMEOUT_MS, &why), ACCEL_TCG);
	ck_assert_ptr_nonnull(why);
	ck_assert_msg(
	    strstr(why, "KVM_GET_API_VERSION on /dev/null failed") == why,
	    "reason: %s", why);
	ck_assert_int_lt(now_ms() - t0, PROBE_TIMEOUT_MS + SLACK_MS);
	free(why);
}
END_TEST

/* Whatever this machine's KVM does (absent, working, hanging): no hang. */
START_TEST(test_kvmprobe_this_host)
{
	enum accel_mode m;
	char *why;
	long t0 = now_ms(), dt;

	m = kvmprobe_run("/dev/kvm", PROBE_TIMEOUT_MS, &why);
	dt = now_ms() - t0;
	fprintf(stderr, "kvmprobe: /dev/kvm -> %s in %ld ms%s%s\n",
	    m == ACCEL_KVM ? "kvm" : "tcg", dt, why ? ": " : "",
	    why ? why : "");
	ck_assert(m == ACCEL_KVM || m == ACCEL_TCG);
	ck_assert(m == ACCEL_KVM ? why == NULL : why != NULL);
	ck_assert_int_lt(dt, PROBE_TIMEOUT_MS + SLACK_MS);
	free(why);
}
END_TEST

/*
 * No answer in time: the child is killed and reaped.  (Nothing blocks on
 * an O_RDWR open here, not even a FIFO, so a zero timeout stands in for a
 * hanging KVM_RUN; test_kvmprobe_this_host covers a real one.)
 */
START_TEST(test_kvmprobe_timeout)
{
	char *why;
	long t0 = now_ms(), dt;

	ck_assert_int_eq(kvmprobe_run("/dev/null", 0, &why), ACCEL_TCG);
	dt = now_ms() - t0;
	ck_assert_str_eq(why, "KVM probe child did not answer within 0 ms");
	ck_assert_int_lt(dt, SLACK_MS);
	free(why);
}
END_TEST

Suite *
suite_kvmprobe(void)
{
	Suite *s = suite_create("kvmprobe");
	TCase *tc = tcase_create("kvmprobe");

	/* above the probe's own bound: the probe, not Check, must stop it */
	tcase_set_timeout(tc, 15);
	tcase_add_test(tc, test_kvmprobe_missing);
	tcase_add_test(tc, test_kvmprobe_not_kvm);
	tcase_add_test(tc, test_kvmprobe_this_host);
	tcase_add_test(tc, test_kvmprobe_timeout);
	suite_add_tcase(s, tc);
	return s;
}
