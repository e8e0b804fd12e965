/*
 * installer/answers.c: answers text -> the normalized key=value dump, or
 * the exact error; one golden file (installer/answers.ok) holds all cases.
 * The Guardian install.conf itself parses (its own keys ignored) and the
 * environment overrides the file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "setup.h"
#include "testutil.h"

static const struct {
	const char *name, *text;
} cases[] = {
    {"full",
	"HOOKPROBE_VM_SUPPORT=yes\nGVM_STORAGE_DIR=/srv/vms\n"
	"GVM_BRIDGE=br0\nGVM_BRIDGE_ADDR=192.168.4.1/27\n"
	"GVM_DHCP_RANGE=192.168.4.2-192.168.4.30\nGVM_SHRINK_POOL=Y\n"
	"GVM_CONSOLE_PORT=8091\nGVM_BLOCK_PORTS=8080,22,22\n"
	"GVM_DEPLOY_HA=false\nGVM_TRUST_UNPINNED=0\n"},
    {"quoted",
	"export GVM_STORAGE_DIR=\"/mnt/ssd/vms\"  # the SSD\n"
	"GVM_BRIDGE='br0'\r\nGVM_BLOCK_PORTS=\"8080, 22 ,443\"\n"},
    {"other-keys", "HOOKPROBE_TIER=\"guardian\"\nWAN=eth0\n\n# c\n"},
    {"empty", ""},
    {"unknown-gvm", "GVM_STORAGE=/srv\n"},
    {"twice", "GVM_BRIDGE=br0\nGVM_BRIDGE=br1\n"},
    {"no-equals", "GVM_BRIDGE\n"},
    {"space-key", "GVM_BRIDGE = br0\n"},
    {"bad-bool", "GVM_SHRINK_POOL=maybe\n"},
    {"relative", "GVM_STORAGE_DIR=srv/vms\n"},
    {"dotdot", "GVM_STORAGE_DIR=/srv/../etc\n"},
    {"ifname-long", "GVM_BRIDGE=abcdefghijklmnop\n"},
    {"ifname-slash", "GVM_BRIDGE=br/0\n"},
    {"cidr-network", "GVM_BRIDGE_ADDR=192.168.4.0/27\n"},
    {"cidr-prefix", "GVM_BRIDGE_ADDR=192.168.4.1/31\n"},
    {"cidr-bad", "GVM_BRIDGE_ADDR=192.168.4/24\n"},
    {"range-reversed", "GVM_DHCP_RANGE=192.168.4.30-192.168.4.2\n"},
    {"port-zero", "GVM_CONSOLE_PORT=0\n"},
    {"port-big", "GVM_CONSOLE_PORT=65536\n"},
    {"port-list-bad", "GVM_BLOCK_PORTS=8080,ssh\n"},
    {"shell-expansion", "GVM_STORAGE_DIR=\"$HOME/vms\"\n"},
    {"unterminated", "GVM_STORAGE_DIR=\"/srv\n"},
    {"after-quote", "GVM_BRIDGE=\"br0\" x\n"},
    {"unquoted-space", "GVM_STORAGE_DIR=/srv vms\n"},
};

START_TEST(test_answers_golden)
{
	struct answers a;
	char *out = xstrdup(""), *t, *dump, *err;
	size_t i;

	for (i = 0; i < nitems(cases); i++) {
		answers_init(&a);
		err = NULL;
		if (answers_parse(&a, cases[i].text, cases[i].name, &err) ==
		    0) {
			dump = answers_format(&a);
			xasprintf(&t, "%s== %s\n%s", out, cases[i].name, dump);
			free(dump);
		} else {
			ck_assert_ptr_nonnull(err);
			xasprintf(&t, "%s== %s\nerror: %s\n", out,
			    cases[i].name, err);
		}
		free(err);
		free(out);
		out = t;
		answers_clear(&a);
	}
	ck_assert(golden_check("installer/answers.ok", out));
	free(out);
}
END_TEST

static const char *
fake_env(const char *name)
{
	if (strcmp(name, "GVM_BRIDGE") == 0)
		return "lan0";
	if (strcmp(name, "GVM_SHRINK_POOL") == 0)
		return "no";
	return NULL;
}

static const char *
bad_env(const char *name)
{
	return strcmp(name, "GVM_CONSOLE_PORT") == 0 ? "http" : NULL;
}

START_TEST(test_answers_env)
{
	struct answers a;
	char *path, *err = NULL;

	answers_init(&a);
	path = test_data_path("installer/guardian.answers");
	ck_assert_int_eq(answers_load(&a, path, &err), 0);
	ck_assert_str_eq(a.bridge, "br0");
	ck_assert_int_eq(a.shrink_pool, TRI_YES);
	ck_assert_int_eq(answers_from_env(&a, fake_env, &err), 0);
	ck_assert_str_eq(a.bridge, "lan0");
	ck_assert_int_eq(a.shrink_pool, TRI_NO);
	ck_assert_str_eq(a.storage_dir, "/srv/guardian-vms");
	ck_assert_int_eq(answers_from_env(&a, bad_env, &err), -1);
	ck_assert_str_eq(err,
	    "environment: GVM_CONSOLE_PORT: 'http' is not a port (1-65535)");
	free(err);
	err = NULL;
	answers_clear(&a);
	free(path);

	/* Guardian's own install.conf is a valid answers file. */
	path = test_data_path("installer/guardian-root/etc/hookprobe/"
			      "install.conf");
	ck_assert_int_eq(answers_load(&a, path, &err), 0);
	ck_assert_int_eq(a.vm_support, TRI_YES);
	answers_clear(&a);
	free(path);
	ck_assert_int_eq(answers_load(&a, "/nonexistent/answers", &err), -1);
	ck_assert_str_eq(
	    err, "/nonexistent/answers: No such file or directory");
	free(err);
}
END_TEST

Suite *
suite_answers(void)
{
	Suite *s = suite_create("answers");
	TCase *tc = tcase_create("answers");

	tcase_add_test(tc, test_answers_golden);
	tcase_add_test(tc, test_answers_env);
	suite_add_tcase(s, tc);
	return s;
}
