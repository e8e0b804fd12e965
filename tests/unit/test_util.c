/*
 * common/util.c: whole-file reads with a size cap, atomic writes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "testutil.h"

START_TEST(test_read_write_roundtrip)
{
	char path[] = "/tmp/gvm-util-XXXXXX";
	char *buf;
	size_t len;
	int fd;

	fd = mkstemp(path);
	ck_assert_int_ne(fd, -1);
	close(fd);
	ck_assert_int_eq(write_file_atomic(path, "hello\n", 6, 0600), 0);
	buf = read_file(path, 6, &len);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(len, 6);
	ck_assert_str_eq(buf, "hello\n");
	free(buf);

	/* one byte over the cap is refused, not truncated */
	ck_assert_ptr_null(read_file(path, 5, &len));
	ck_assert_int_eq(errno, EFBIG);
	unlink(path);
}
END_TEST

START_TEST(test_read_missing)
{
	ck_assert_ptr_null(read_file("/nonexistent/gvm", 10, NULL));
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(test_prefix)
{
	ck_assert(str_has_prefix("/api/vms/x", "/api/vms/"));
	ck_assert(!str_has_prefix("/api/v", "/api/vms/"));
	ck_assert(str_has_prefix("abc", ""));
}
END_TEST

Suite *
suite_util(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("util");

	tcase_add_test(tc, test_read_write_roundtrip);
	tcase_add_test(tc, test_read_missing);
	tcase_add_test(tc, test_prefix);
	suite_add_tcase(s, tc);
	return s;
}
