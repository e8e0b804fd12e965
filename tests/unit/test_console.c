/*
 * console.c's pure parts: the serial protocol's client messages, tickets
 * (single use, 30 s, bound to a VM and a console type), console sessions,
 * the Host check of standalone URLs.
 */
#include <stdlib.h>
#include <string.h>

#include "vmmod.h"
#include "testutil.h"

#define U1 "11111111-1111-1111-1111-111111111111"
#define U2 "22222222-2222-2222-2222-222222222222"

static int
parse(const char *s, struct console_msg *m)
{
	return console_msg_parse((const uint8_t *)s, strlen(s), m);
}

START_TEST(test_msg_parse)
{
	struct console_msg m;

	ck_assert_int_eq(parse("0echo hi\n", &m), 0);
	ck_assert_int_eq(m.type, CONSOLE_IN);
	ck_assert_uint_eq(m.len, 8);
	ck_assert_mem_eq(m.data, "echo hi\n", 8);
	ck_assert_int_eq(parse("0", &m), 0); /* empty input is harmless */
	ck_assert_uint_eq(m.len, 0);
	ck_assert_int_eq(
	    console_msg_parse((const uint8_t *)"0\0\x1b", 3, &m), 0);
	ck_assert_uint_eq(m.len, 2);

	ck_assert_int_eq(parse("2{\"cols\":80,\"rows\":24}", &m), 0);
	ck_assert_int_eq(m.type, CONSOLE_RESIZE);
	ck_assert_uint_eq(m.cols, 80);
	ck_assert_uint_eq(m.rows, 24);
	ck_assert_int_eq(parse("2{\"rows\":50,\"cols\":200,\"x\":1}", &m), 0);
	ck_assert_uint_eq(m.cols, 200);

	ck_assert_int_eq(parse("", &m), -1);
	ck_assert_int_eq(parse("1output", &m), -1); /* only vmmod sends '1' */
	ck_assert_int_eq(parse("9", &m), -1);
	ck_assert_int_eq(parse("2", &m), -1);
	ck_assert_int_eq(parse("2{\"cols\":80}", &m), -1);
	ck_assert_int_eq(parse("2{\"cols\":0,\"rows\":24}", &m), -1);
	ck_assert_int_eq(parse("2{\"cols\":80.5,\"rows\":24}", &m), -1);
	ck_assert_int_eq(parse("2{\"cols\":\"80\",\"rows\":24}", &m), -1);
	ck_assert_int_eq(parse("2{\"cols\":80,\"rows\":24} x", &m), -1);
	ck_assert_int_eq(parse("2[80,24]", &m), -1);
}
END_TEST

START_TEST(test_type)
{
	enum console_type t;

	ck_assert_int_eq(console_type_parse("serial", &t), 0);
	ck_assert_int_eq(t, CONSOLE_SERIAL);
	ck_assert_int_eq(console_type_parse("vnc", &t), 0);
	ck_assert_int_eq(t, CONSOLE_VNC);
	ck_assert_int_eq(console_type_parse("VNC", &t), -1);
	ck_assert_int_eq(console_type_parse(NULL, &t), -1);
	ck_assert_str_eq(console_type_name(CONSOLE_VNC), "vnc");
}
END_TEST

START_TEST(test_ticket_single_use)
{
	char a[CONSOLE_ID_LEN + 1], b[CONSOLE_ID_LEN + 1];

	console_reset();
	ck_assert_int_eq(console_ticket_new(U1, CONSOLE_SERIAL, 1000, a), 0);
	ck_assert_int_eq(console_ticket_new(U1, CONSOLE_SERIAL, 1000, b), 0);
	ck_assert_uint_eq(strlen(a), 64);
	ck_assert_uint_eq(strspn(a, "0123456789abcdef"), 64);
	ck_assert_str_ne(a, b);
	ck_assert_int_eq(console_ticket_take(a, U1, CONSOLE_SERIAL, 1001), 0);
	ck_assert_int_eq(console_ticket_take(a, U1, CONSOLE_SERIAL, 1001), -1);
	ck_assert_int_eq(console_ticket_take(b, U1, CONSOLE_SERIAL, 1001), 0);
	ck_assert_int_eq(console_ticket_take(NULL, U1, CONSOLE_SERIAL, 1), -1);
	ck_assert_int_eq(console_ticket_take("", U1, CONSOLE_SERIAL, 1), -1);
}
END_TEST

START_TEST(test_ticket_lifetime)
{
	char a[CONSOLE_ID_LEN + 1];

	console_reset();
	console_ticket_new(U1, CONSOLE_SERIAL, 1000, a);
	ck_assert_int_eq(console_ticket_take(a, U1, CONSOLE_SERIAL, 1029), 0);
	console_ticket_new(U1, CONSOLE_SERIAL, 1000, a);
	ck_assert_int_eq(console_ticket_take(a, U1, CONSOLE_SERIAL, 1030), -1);
	console_ticket_new(U1, CONSOLE_SERIAL, 1000, a);
	ck_assert_int_eq(console_ticket_take(a, U1, CONSOLE_SERIAL, 5000), -1);
}
END_TEST

/* A ticket opens one console of one VM; trying another burns it. */
START_TEST(test_ticket_bound)
{
	char a[CONSOLE_ID_LEN + 1];

	console_reset();
	console_ticket_new(U1, CONSOLE_SERIAL, 1000, a);
	ck_assert_int_eq(console_ticket_take(a, U2, CONSOLE_SERIAL, 1001), -1);
	ck_assert_int_eq(console_ticket_take(a, U1, CONSOLE_SERIAL, 1001), -1);
	console_ticket_new(U1, CONSOLE_VNC, 1000, a);
	ck_assert_int_eq(console_ticket_take(a, U1, CONSOLE_SERIAL, 1001), -1);
	console_ticket_new(U1, CONSOLE_VNC, 1000, a);
	ck_assert_int_eq(console_ticket_take(a, U1, CONSOLE_VNC, 1001), 0);
	/* a prefix or a changed digit is no ticket */
	console_ticket_new(U1, CONSOLE_VNC, 1000, a);
	a[63] = a[63] == '0' ? '1' : '0';
	ck_assert_int_eq(console_ticket_take(a, U1, CONSOLE_VNC, 1001), -1);
}
END_TEST

/* The table is bounded: the oldest ticket makes room. */
START_TEST(test_ticket_many)
{
	char first[CONSOLE_ID_LEN + 1], t[CONSOLE_ID_LEN + 1];
	int i;

	console_reset();
	console_ticket_new(U1, CONSOLE_SERIAL, 1000, first);
	for (i = 0; i < 200; i++)
		console_ticket_new(U1, CONSOLE_SERIAL, 1001, t);
	ck_assert_int_eq(console_ticket_take(t, U1, CONSOLE_SERIAL, 1002), 0);
	ck_assert_int_eq(
	    console_ticket_take(first, U1, CONSOLE_SERIAL, 1002), -1);
}
END_TEST

START_TEST(test_sessions)
{
	char s[CONSOLE_ID_LEN + 1], name[64];

	console_reset();
	ck_assert_int_eq(console_session_new(U1, 1000, s), 0);
	ck_assert(console_session_ok(s, U1, 1000));
	ck_assert(console_session_ok(s, U1, 1000 + 3600));
	ck_assert(!console_session_ok(s, U2, 1000));
	ck_assert(!console_session_ok(s, U1, 1000 + 9 * 3600));
	ck_assert(!console_session_ok(NULL, U1, 1000));
	ck_assert(!console_session_ok("abc", U1, 1000));
	console_cookie_name(U1, name, sizeof(name));
	ck_assert_str_eq(name, "vmmod_console_" U1);
}
END_TEST

START_TEST(test_host)
{
	ck_assert(console_host_ok("127.0.0.1:8090"));
	ck_assert(console_host_ok("guardian.local"));
	ck_assert(console_host_ok("[::1]:8090"));
	ck_assert(!console_host_ok(NULL));
	ck_assert(!console_host_ok(""));
	ck_assert(!console_host_ok("evil.example/x"));
	ck_assert(!console_host_ok("a@b"));
	ck_assert(!console_host_ok("a b"));
	ck_assert(!console_host_ok("a\"><script>"));
	ck_assert(!console_host_ok(":8090"));
}
END_TEST

Suite *
suite_console(void)
{
	Suite *s = suite_create("console");
	TCase *tc = tcase_create("console");

	tcase_add_test(tc, test_msg_parse);
	tcase_add_test(tc, test_type);
	tcase_add_test(tc, test_ticket_single_use);
	tcase_add_test(tc, test_ticket_lifetime);
	tcase_add_test(tc, test_ticket_bound);
	tcase_add_test(tc, test_ticket_many);
	tcase_add_test(tc, test_sessions);
	tcase_add_test(tc, test_host);
	suite_add_tcase(s, tc);
	return s;
}
