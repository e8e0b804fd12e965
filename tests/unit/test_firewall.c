/*
 * ipt.c, nft.c and fw.c.  Always: parameter checks (refused before any
 * lock or table is touched) and nft_console_scan on JSON listings captured
 * from nft 1.0.6 (tests/data/installer/nft/).  Inside tests/sandbox.sh only,
 * GVM_FW_STEP=NAME registers one case that performs that step against the
 * sandbox's own tables, so tests/e2e/72-firewall.sh can look at the
 * ruleset between steps (iptables-legacy-save, nft list ruleset, packets):
 *   ipt_apply ipt_remove nft_apply nft_remove fw_apply fw_remove
 * with GVM_FW_EXPECT=done|unchanged|no-guardian for the nft steps.  The
 * parameters are fixed: br0, block 192.168.4.24-.31, ports 8080 and 22,
 * console 8091.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "setup.h"
#include "testutil.h"

static void
params(struct fw_params *p)
{
	memset(p, 0, sizeof(*p));
	p->ipt.bridge = "br0";
	inet_pton(AF_INET, "192.168.4.24", &p->ipt.first);
	inet_pton(AF_INET, "192.168.4.31", &p->ipt.last);
	p->ipt.mgmt_ports[0] = 8080;
	p->ipt.mgmt_ports[1] = 22;
	p->ipt.nmgmt = 2;
	p->console_port = 8091;
}

START_TEST(test_ipt_bad_params)
{
	struct fw_params p;
	char *err = NULL;

	params(&p);
	p.ipt.bridge = "br+";
	ck_assert_int_eq(ipt_apply(&p.ipt, &err), -1);
	ck_assert_str_eq(err, "bad bridge name");
	free(err);
	params(&p);
	p.ipt.bridge = "a-very-long-bridge-name";
	ck_assert_int_eq(ipt_apply(&p.ipt, NULL), -1);
	params(&p);
	inet_pton(AF_INET, "192.168.4.23", &p.ipt.last);
	ck_assert_int_eq(ipt_apply(&p.ipt, &err), -1);
	ck_assert_str_eq(err, "bad VM address block");
	free(err);
	params(&p);
	p.ipt.mgmt_ports[1] = 53; /* would break DNS */
	ck_assert_int_eq(ipt_apply(&p.ipt, &err), -1);
	ck_assert_str_eq(err, "bad management port 53");
	free(err);
	params(&p);
	p.ipt.nmgmt = IPT_MAX_PORTS + 1;
	ck_assert_int_eq(ipt_apply(&p.ipt, NULL), -1);
}
END_TEST

START_TEST(test_nft_bad_params)
{
	char *err = NULL;

	ck_assert_int_eq(
	    nft_console_rule_apply("br0\" accept; flush", 8091, &err),
	    NFT_ERROR);
	free(err);
	err = NULL;
	ck_assert_int_eq(nft_console_rule_apply("br0", 0, &err), NFT_ERROR);
	free(err);
}
END_TEST

static void
scan(const char *file, const char *iface, uint16_t port, struct nft_scan *s)
{
	char *json = test_data_read(file), *err = NULL;

	ck_assert_msg(json != NULL, "missing %s", file);
	ck_assert_msg(
	    nft_console_scan(json, iface, port, s, &err) == 0, "%s", err);
	free(json);
}

START_TEST(test_scan_guardian)
{
	struct nft_scan s;

	/* Guardian's chain, no rule of ours. */
	scan("installer/nft/guardian-chain.json", "br0", 8091, &s);
	ck_assert(s.chain);
	ck_assert_int_eq(s.n, 0);
	/* ... after apply: one rule, exactly ours. */
	scan("installer/nft/console-chain.json", "br0", 8091, &s);
	ck_assert(s.chain);
	ck_assert_int_eq(s.n, 1);
	ck_assert(s.exact[0]);
	ck_assert_int_gt(s.handles[0], 0);
	/* Another port or interface: found by comment, but stale. */
	scan("installer/nft/console-chain.json", "br0", 8092, &s);
	ck_assert_int_eq(s.n, 1);
	ck_assert(!s.exact[0]);
	scan("installer/nft/console-chain.json", "br1", 8091, &s);
	ck_assert(!s.exact[0]);
	/* Chain list without Guardian's table. */
	scan("installer/nft/chains-other.json", "br0", 8091, &s);
	ck_assert(!s.chain);
	scan("installer/nft/chains-guardian.json", "br0", 8091, &s);
	ck_assert(s.chain);
}
END_TEST

START_TEST(test_scan_bad_json)
{
	struct nft_scan s;
	char *err = NULL;

	ck_assert_int_eq(
	    nft_console_scan("{\"nftables\": [", "br0", 1, &s, &err), -1);
	free(err);
	err = NULL;
	ck_assert_int_eq(
	    nft_console_scan("{\"other\": []}", "br0", 1, &s, &err), -1);
	free(err);
	err = NULL;
	ck_assert_int_eq(
	    nft_console_scan("{\"nftables\": []} x", "br0", 1, &s, &err), -1);
	free(err);
	ck_assert_int_eq(
	    nft_console_scan("{\"nftables\": []}\n", "br0", 1, &s, NULL), 0);
}
END_TEST

/* ---- sandbox steps (GVM_FW_STEP) ---- */

static enum nft_result
expected(void)
{
	const char *e = getenv("GVM_FW_EXPECT");

	if (e == NULL || strcmp(e, "done") == 0)
		return NFT_DONE;
	if (strcmp(e, "unchanged") == 0)
		return NFT_UNCHANGED;
	if (strcmp(e, "no-guardian") == 0)
		return NFT_NO_GUARDIAN;
	ck_abort_msg("GVM_FW_EXPECT=%s?", e);
	return NFT_ERROR;
}

START_TEST(step_ipt_apply)
{
	struct fw_params p;
	char *err = NULL;

	params(&p);
	ck_assert_msg(ipt_apply(&p.ipt, &err) == 0, "%s", err);
}
END_TEST

START_TEST(step_ipt_remove)
{
	char *err = NULL;

	ck_assert_msg(ipt_remove(&err) == 0, "%s", err);
}
END_TEST

START_TEST(step_nft_apply)
{
	char *err = NULL;

	ck_assert_int_eq(nft_console_rule_apply("br0", 8091, &err), expected());
	ck_assert_ptr_null(err);
}
END_TEST

START_TEST(step_nft_remove)
{
	char *err = NULL;

	ck_assert_int_eq(nft_console_rule_remove(&err), expected());
	ck_assert_ptr_null(err);
}
END_TEST

START_TEST(step_fw_apply)
{
	struct fw_params p;
	char *err = NULL;

	params(&p);
	ck_assert_msg(fw_apply(&p, &err) == 0, "%s", err);
}
END_TEST

START_TEST(step_fw_remove)
{
	char *err = NULL;

	ck_assert_msg(fw_remove(&err) == 0, "%s", err);
}
END_TEST

Suite *
suite_firewall(void)
{
	Suite *s = suite_create("firewall");
	TCase *tc = tcase_create("pure");
	const char *step = getenv("GVM_FW_STEP");
	const char *names[] = {"ipt_apply", "ipt_remove", "nft_apply",
	    "nft_remove", "fw_apply", "fw_remove"};
	const TTest *tests[] = {step_ipt_apply, step_ipt_remove, step_nft_apply,
	    step_nft_remove, step_fw_apply, step_fw_remove};
	size_t i;

	tcase_add_test(tc, test_ipt_bad_params);
	tcase_add_test(tc, test_nft_bad_params);
	tcase_add_test(tc, test_scan_guardian);
	tcase_add_test(tc, test_scan_bad_json);
	suite_add_tcase(s, tc);
	if (step == NULL)
		return s;
	/* Steps change the firewall: never outside the sandbox. */
	if (getenv("GVM_SANDBOX") == NULL)
		fatalx("GVM_FW_STEP is for tests/sandbox.sh only");
	for (i = 0; i < nitems(names); i++)
		if (strcmp(step, names[i]) == 0)
			break;
	if (i == nitems(names))
		fatalx("GVM_FW_STEP=%s: no such step", step);
	tc = tcase_create("step");
	tcase_set_timeout(tc, 30); /* ipt waits up to ~5 s for the lock */
	tcase_add_test(tc, tests[i]);
	suite_add_tcase(s, tc);
	return s;
}
