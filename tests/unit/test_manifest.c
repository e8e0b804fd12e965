/*
 * installer/manifest.c: records -> JSON (golden installer/manifest.json),
 * a second write of a file keeps the first "previous", load round-trips,
 * broken manifests are refused; steps_apt_status parses APT's Status-Fd.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "setup.h"
#include "testutil.h"

START_TEST(test_manifest_golden)
{
	struct manifest *m = manifest_new(), *back;
	struct mentry me = {.type = "dir", .path = "/etc/vmmod"};
	char path[] = "/tmp/gvm-manifest-XXXXXX", *a, *b, *err = NULL;
	int fd;

	manifest_add(m, &me);
	manifest_file(m, "/etc/vmmod/vmmod.conf", NULL, 0644, "v1\n", false);
	manifest_file(m, "/etc/dnsmasq.d/guardian.conf", "range .30\n", 0640,
	    "range .23\n", true);
	manifest_file(m, "/etc/vmmod/vmmod.conf", "v1\n", 0644, "v2\n", false);
	me.type = "link";
	me.path = "/etc/systemd/system/multi-user.target.wants/vmmod.service";
	me.target = "/lib/systemd/system/vmmod.service";
	manifest_add(m, &me);
	me = (struct mentry){.type = "package", .path = "qemu-utils"};
	manifest_add(m, &me);
	ck_assert_uint_eq(manifest_count(m), 5);
	ck_assert_int_eq(manifest_find(m, "file", "/etc/vmmod/vmmod.conf"), 1);
	ck_assert_int_eq(manifest_get(m, 1, &me), 0);
	ck_assert_ptr_null(me.prev);
	ck_assert_str_eq(me.content, "v2\n");
	ck_assert_int_eq(manifest_get(m, 2, &me), 0);
	ck_assert_int_eq(me.prev_mode, 0640);
	ck_assert(me.guardian);
	a = manifest_json(m);
	ck_assert(golden_check("installer/manifest.json", a));

	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(manifest_save(m, path, &err), 0);
	back = manifest_load(path, &err);
	ck_assert_ptr_nonnull(back);
	b = manifest_json(back);
	ck_assert_str_eq(a, b);
	manifest_remove(back, 0);
	ck_assert_uint_eq(manifest_count(back), 4);
	free(a);
	free(b);
	manifest_free(back);
	manifest_free(m);

	write_file_atomic(path, "{\"version\": 2, \"changes\": []}", 29, 0600);
	ck_assert_ptr_null(manifest_load(path, &err));
	ck_assert_ptr_nonnull(strstr(err, "not a version 1 manifest"));
	free(err);
	err = NULL;
	write_file_atomic(
	    path, "{\"version\": 1, \"changes\": [{}]}", 31, 0600);
	ck_assert_ptr_null(manifest_load(path, &err));
	ck_assert_ptr_nonnull(strstr(err, "change 0 lacks type or path"));
	free(err);
	unlink(path);
	m = manifest_load(path, &err); /* absent: empty */
	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(manifest_count(m), 0);
	manifest_free(m);
}
END_TEST

START_TEST(test_apt_status)
{
	char msg[64];
	int pct;

	ck_assert_int_eq(steps_apt_status("pmstatus:qemu-utils:50.0000:"
					  "Unpacking qemu-utils",
			     &pct, msg, sizeof(msg)),
	    0);
	ck_assert_int_eq(pct, 66);
	ck_assert_str_eq(msg, "Unpacking qemu-utils");
	ck_assert_int_eq(steps_apt_status("dlstatus:1:30:Retrieving file 1",
			     &pct, msg, sizeof(msg)),
	    0);
	ck_assert_int_eq(pct, 10);
	ck_assert_int_eq(
	    steps_apt_status("pmerror:x:10:failed", &pct, msg, sizeof(msg)),
	    -1);
	ck_assert_int_eq(
	    steps_apt_status("pmstatus:x", &pct, msg, sizeof(msg)), -1);
}
END_TEST

Suite *
suite_manifest(void)
{
	Suite *s = suite_create("manifest");
	TCase *tc = tcase_create("manifest");

	tcase_add_test(tc, test_manifest_golden);
	tcase_add_test(tc, test_apt_status);
	suite_add_tcase(s, tc);
	return s;
}
