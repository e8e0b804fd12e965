/*
 * vmmod/leases.c: MAC → IP from tests/data/leases/dnsmasq.leases and the
 * reservation files in tests/data/leases/hosts (each line of the fixtures
 * is one case, named in the tables below).
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "vmmod.h"
#include "testutil.h"

struct want {
	const char *mac;
	const char *ip; /* NULL: no address */
};

/* Both sources: reservations win over leases. */
static const struct want both[] = {
    {"52:54:00:04:18:18", "192.168.4.24"}, /* reservation; 1st file wins */
    {"52:54:00:aa:bb:cc", "192.168.4.25"}, /* upper-case reservation */
    {"52:54:00:AA:BB:CC", "192.168.4.25"}, /* upper-case query */
    {"52:54:00:aa:bb:cd", "192.168.4.8"}, /* upper-case lease */
    {"52:54:00:00:00:01", "192.168.4.9"}, /* expiry 0: infinite */
    {"52:54:00:00:00:02", "192.168.4.11"}, /* the later lease */
    {"52:54:00:00:00:03", "192.168.4.13"}, /* infinite beats later */
    {"52:54:00:00:00:04", NULL}, /* bad address */
    {"52:54:00:00:00:05", NULL}, /* bad expiry */
    {"52:54:00:00:00:06", NULL}, /* short line */
    {"52:54:00:00:00:07", "192.168.4.16"}, /* tab separated */
    {"52:54:00:10:00:01", "192.168.4.26"}, /* two MACs, one host */
    {"52:54:00:10:00:02", "192.168.4.26"},
    {"52:54:00:10:00:03", NULL}, /* by client id: no MAC */
    {"52:54:00:10:00:04", "192.168.4.28"}, /* set: tag and lease time */
    {"52:54:00:10:00:05", "fd00::28"}, /* [IPv6] */
    {"52:54:00:10:00:06", NULL}, /* no address */
    {"52:54:00:10:00:07", NULL}, /* bad address */
    {"52:54:00:20:00:01", NULL}, /* dot file skipped */
    {"52:54:00:20:00:02", NULL}, /* backup~ skipped */
    {"52:54:00:20:00:03", NULL}, /* subdirectory skipped */
    {"52:54:00:12:34:56", NULL}, /* DHCPv6 lease (DUID) */
    {"52-54-00-04-18-18", NULL}, /* not a MAC */
    {"52:54:00:04:18:1", NULL},
    {"", NULL},
};

static void
check_table(const struct lease_map *lm, const struct want *w, size_t n)
{
	const char *ip;
	size_t i;

	for (i = 0; i < n; i++) {
		ip = leases_ip_for_mac(lm, w[i].mac);
		if (w[i].ip == NULL)
			ck_assert_msg(
			    ip == NULL, "%s: got %s, want none", w[i].mac, ip);
		else
			ck_assert_msg(ip != NULL && strcmp(ip, w[i].ip) == 0,
			    "%s: got %s, want %s", w[i].mac, ip ? ip : "none",
			    w[i].ip);
	}
}

START_TEST(test_leases_both)
{
	char *lf = test_data_path("leases/dnsmasq.leases");
	char *rd = test_data_path("leases/hosts");
	struct lease_map *lm;

	lm = leases_load(lf, rd);
	ck_assert_ptr_nonnull(lm);
	check_table(lm, both, nitems(both));
	ck_assert_ptr_null(leases_ip_for_mac(lm, NULL));
	leases_free(lm);
	free(lf);
	free(rd);
}
END_TEST

/* Only the lease file: what the reservations hid shows through. */
START_TEST(test_leases_only_leases)
{
	static const struct want w[] = {
	    {"52:54:00:04:18:18", "192.168.4.5"},
	    {"52:54:00:aa:bb:cc", "192.168.4.7"},
	    {"52:54:00:10:00:01", NULL},
	};
	char *lf = test_data_path("leases/dnsmasq.leases");
	char *rd = test_data_path("leases/empty-hosts");
	struct lease_map *lm;

	lm = leases_load(lf, rd);
	check_table(lm, w, nitems(w));
	leases_free(lm);
	free(lf);
	free(rd);
}
END_TEST

/* Missing files are no error: dnsmasq may not have written anything yet. */
START_TEST(test_leases_missing)
{
	struct lease_map *lm;

	lm = leases_load("/nonexistent/dnsmasq.leases", "/nonexistent/hosts");
	ck_assert_ptr_nonnull(lm);
	ck_assert_ptr_null(leases_ip_for_mac(lm, "52:54:00:04:18:18"));
	leases_free(lm);
	lm = leases_load(NULL, NULL);
	ck_assert_ptr_nonnull(lm);
	leases_free(lm);
	leases_free(NULL);
	ck_assert_ptr_null(leases_ip_for_mac(NULL, "52:54:00:04:18:18"));
}
END_TEST

/* Every fixture is used by a test above. */
START_TEST(test_leases_fixtures_used)
{
	static const char *const used[] = {
	    "dnsmasq.leases", "hosts", "empty-hosts"};
	char *dir = test_data_path("leases");
	struct dirent *de;
	size_t i;
	DIR *d;

	ck_assert_ptr_nonnull(d = opendir(dir));
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		for (i = 0; i < nitems(used); i++)
			if (strcmp(de->d_name, used[i]) == 0)
				break;
		ck_assert_msg(
		    i < nitems(used), "unused fixture leases/%s", de->d_name);
	}
	closedir(d);
	free(dir);
}
END_TEST

Suite *
suite_leases(void)
{
	Suite *s = suite_create("leases");
	TCase *tc = tcase_create("leases");

	tcase_add_test(tc, test_leases_both);
	tcase_add_test(tc, test_leases_only_leases);
	tcase_add_test(tc, test_leases_missing);
	tcase_add_test(tc, test_leases_fixtures_used);
	suite_add_tcase(s, tc);
	return s;
}
