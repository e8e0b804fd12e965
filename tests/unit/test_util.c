/*
 * common/util.c: whole-file reads with a size cap, atomic writes;
 * common/notify.c: the service manager's notify datagrams.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
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

#define REPL_EQ(s, from, to, want)                                             \
	do {                                                                   \
		char *got_ = str_replace_all(s, from, to);                     \
		ck_assert_str_eq(got_, want);                                  \
		free(got_);                                                    \
	} while (0)

START_TEST(test_replace_all)
{
	REPL_EQ("<a href=\"/assets/x.css\"><b src=\"/assets/y.js\">",
	    "\"/assets/", "\"/assets/v/0123/",
	    "<a href=\"/assets/v/0123/x.css\"><b src=\"/assets/v/0123/y.js\">");
	REPL_EQ("@N@ and @N@@N@", "@N@", "n", "n and nn");
	REPL_EQ("abcabc", "abc", "", "");
	REPL_EQ("aaa", "aa", "b", "ba"); /* left to right, no overlap */
	REPL_EQ("nothing", "x", "y", "nothing");
	REPL_EQ("", "x", "y", "");
	REPL_EQ("same", "", "y", "same"); /* an empty pattern: no change */
}
END_TEST

/* read_fd reads what is left and leaves the descriptor open */
START_TEST(test_read_fd)
{
	int fds[2];
	size_t len;
	char *buf;

	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(write(fds[1], "hello", 5), 5);
	close(fds[1]);
	buf = read_fd(fds[0], 16, &len);
	ck_assert_str_eq(buf, "hello");
	ck_assert_uint_eq(len, 5);
	free(buf);
	ck_assert_int_ne(fcntl(fds[0], F_GETFD), -1);
	close(fds[0]);
	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(write(fds[1], "toolong", 7), 7);
	close(fds[1]);
	errno = 0;
	ck_assert_ptr_null(read_fd(fds[0], 6, NULL));
	ck_assert_int_eq(errno, EFBIG);
	close(fds[0]);
}
END_TEST

/* a datagram socket bound at NAME (a path, or "@abstract"); -1 on error */
static int
bind_dgram(const char *name)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	socklen_t len = offsetof(struct sockaddr_un, sun_path) + strlen(name);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ne(fd, -1);
	memcpy(sun.sun_path, name, strlen(name));
	if (name[0] == '@')
		sun.sun_path[0] = '\0';
	else
		len++;
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, len), 0);
	return fd;
}

static void
expect_datagram(int fd, const char *want)
{
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	ck_assert_int_eq(n, (ssize_t)strlen(want));
	buf[n] = '\0';
	ck_assert_str_eq(buf, want);
}

START_TEST(test_notify_path_and_abstract)
{
	char dir[] = "/tmp/gvm-notify-XXXXXX", path[64], abs[64];
	int fd;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/notify", dir);
	fd = bind_dgram(path);
	setenv("NOTIFY_SOCKET", path, 1);
	ck_assert_int_eq(notify_manager("READY=1\nSTATUS=serving"), 1);
	expect_datagram(fd, "READY=1\nSTATUS=serving");
	ck_assert_int_eq(notify_manager("STOPPING=1"), 1);
	expect_datagram(fd, "STOPPING=1");
	close(fd);
	unlink(path);
	/* nobody listens there any more: an error, not a crash or a hang */
	ck_assert_int_eq(notify_manager("READY=1"), -1);
	rmdir(dir);

	snprintf(abs, sizeof(abs), "@gvm-notify-test-%ld", (long)getpid());
	fd = bind_dgram(abs);
	setenv("NOTIFY_SOCKET", abs, 1);
	ck_assert_int_eq(notify_manager("RELOADING=1"), 1);
	expect_datagram(fd, "RELOADING=1");
	close(fd);
	unsetenv("NOTIFY_SOCKET");
}
END_TEST

START_TEST(test_notify_unset_and_bad)
{
	char longp[200];

	unsetenv("NOTIFY_SOCKET");
	ck_assert_int_eq(notify_manager("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "", 1);
	ck_assert_int_eq(notify_manager("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	ck_assert_int_eq(notify_manager("READY=1"), -1);
	ck_assert_int_eq(errno, EINVAL);
	setenv("NOTIFY_SOCKET", "@", 1);
	ck_assert_int_eq(notify_manager("READY=1"), -1);
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	setenv("NOTIFY_SOCKET", longp, 1);
	ck_assert_int_eq(notify_manager("READY=1"), -1);
	unsetenv("NOTIFY_SOCKET");
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
	tcase_add_test(tc, test_replace_all);
	tcase_add_test(tc, test_read_fd);
	tcase_add_test(tc, test_notify_path_and_abstract);
	tcase_add_test(tc, test_notify_unset_and_bad);
	suite_add_tcase(s, tc);
	return s;
}
