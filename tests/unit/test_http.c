/*
 * http.c's pure parts: Authorization and Origin rules, listen addresses,
 * path splitting with percent-decoding, the token file and sessions.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmmod.h"
#include "testutil.h"

START_TEST(test_bearer)
{
	ck_assert_str_eq(http_bearer("Bearer abc"), "abc");
	ck_assert_str_eq(http_bearer("bearer  abc"), "abc");
	ck_assert_ptr_null(http_bearer("Bearer "));
	ck_assert_ptr_null(http_bearer("Basic abc"));
	ck_assert_ptr_null(http_bearer("Bearerabc"));
	ck_assert_ptr_null(http_bearer(""));
	ck_assert_ptr_null(http_bearer(NULL));
}
END_TEST

/* Web paths: the file below web_root and the version asked by, or none. */
START_TEST(test_static_lookup)
{
	static const struct {
		const char *uri;
		enum static_kind kind;
		const char *rel, *ver;
	} t[] = {
	    {"/", SK_INDEX, "index.html", ""},
	    {"/?x=1", SK_INDEX, "index.html", ""},
	    {"/login", SK_LOGIN, "login.html", ""},
	    {"/assets/js/api.js", SK_ASSET, "js/api.js", ""},
	    {"/assets/js/api.js?v=1#x", SK_ASSET, "js/api.js", ""},
	    {"/console/assets/js/console.js", SK_ASSET, "js/console.js", ""},
	    {"/assets/v/0123456789abcdef/js/api.js", SK_ASSET, "js/api.js",
		"0123456789abcdef"},
	    {"/console/assets/v/0123456789abcdef/vendor/xterm/xterm.css",
		SK_ASSET, "vendor/xterm/xterm.css", "0123456789abcdef"},
	    {"/assets/v/0123456789abcdef/a", SK_ASSET, "a", "0123456789abcdef"},
	    /* not a version: an ordinary path (no such file) or refused */
	    {"/assets/v/0123/js/api.js", SK_ASSET, "v/0123/js/api.js", ""},
	    {"/assets/v/0123456789ABCDEF/js/api.js", SK_NONE, NULL, NULL},
	    {"/assets/v/0123456789abcdeg/js/api.js", SK_NONE, NULL, NULL},
	    {"/assets/v/0123456789abcdef/", SK_NONE, NULL, NULL},
	    {"/assets/v/0123456789abcdef/../x", SK_NONE, NULL, NULL},
	    {"/assets/v/0123456789abcdef//etc/passwd", SK_NONE, NULL, NULL},
	    {"/assets/v/0123456789abcdef/.git/config", SK_NONE, NULL, NULL},
	    {"/assets/../Makefile", SK_NONE, NULL, NULL},
	    {"/assets/css/../../x", SK_NONE, NULL, NULL},
	    {"/assets/%2e%2e/x", SK_NONE, NULL, NULL},
	    {"/assets//etc/passwd", SK_NONE, NULL, NULL},
	    {"/console/assets//etc/passwd", SK_NONE, NULL, NULL},
	    {"/assets/css//vms.css", SK_NONE, NULL, NULL},
	    {"/assets/css/", SK_NONE, NULL, NULL},
	    {"/assets/.hidden", SK_NONE, NULL, NULL},
	    {"/assets/css/.x.css", SK_NONE, NULL, NULL},
	    {"/assets/a.b/c..d", SK_ASSET, "a.b/c..d", ""},
	    {"/assets/", SK_NONE, NULL, NULL},
	    {"/assets", SK_NONE, NULL, NULL},
	    {"/assets/a b", SK_NONE, NULL, NULL},
	    {"/other", SK_NONE, NULL, NULL},
	    {"/login/x", SK_NONE, NULL, NULL},
	};
	char rel[256], ver[ASSET_VER];
	enum static_kind k;
	size_t i;

	for (i = 0; i < nitems(t); i++) {
		k = http_static_lookup(t[i].uri, rel, sizeof(rel), ver);
		ck_assert_msg(k == t[i].kind, "%s: kind %d, want %d", t[i].uri,
		    k, t[i].kind);
		if (k == SK_NONE)
			continue;
		ck_assert_msg(
		    strcmp(rel, t[i].rel) == 0, "%s: rel %s", t[i].uri, rel);
		ck_assert_msg(
		    strcmp(ver, t[i].ver) == 0, "%s: ver %s", t[i].uri, ver);
	}
	/* a name longer than rel's room */
	ck_assert_int_eq(
	    http_static_lookup("/assets/abcdefgh", rel, 8, ver), SK_NONE);
}
END_TEST

START_TEST(test_origin)
{
	const char *allowed = "https://guardian.local:8080 http://192.168.4.1";

	ck_assert(
	    http_origin_ok("http://127.0.0.1:8090", "127.0.0.1:8090", NULL));
	ck_assert(
	    http_origin_ok("https://127.0.0.1:8090", "127.0.0.1:8090", NULL));
	ck_assert(http_origin_ok(
	    "https://guardian.local:8080", "127.0.0.1:8090", allowed));
	ck_assert(http_origin_ok("http://192.168.4.1", "x", allowed));
	ck_assert(!http_origin_ok("http://192.168.4.10", "x", allowed));
	ck_assert(!http_origin_ok("http://192.168.4", "x", allowed));
	ck_assert(
	    !http_origin_ok("http://evil.example", "127.0.0.1:8090", allowed));
	ck_assert(!http_origin_ok(
	    "http://127.0.0.1:8090.evil", "127.0.0.1:8090", NULL));
	ck_assert(!http_origin_ok("http://127.0.0.1", "127.0.0.1:8090", NULL));
	ck_assert(!http_origin_ok("null", "null", "null"));
	ck_assert(!http_origin_ok(NULL, "127.0.0.1:8090", allowed));
	ck_assert(!http_origin_ok("", "", ""));
	ck_assert(!http_origin_ok("http://127.0.0.1:8090", NULL, NULL));
}
END_TEST

static void
listen_ok(const char *spec, const char *host, const char *port)
{
	char *h, *p;

	ck_assert_msg(http_listen_parse(spec, &h, &p) == 0, "refused %s", spec);
	ck_assert_str_eq(h, host);
	ck_assert_str_eq(p, port);
	free(h);
	free(p);
}

START_TEST(test_listen)
{
	static const char *bad[] = {"", "127.0.0.1", "127.0.0.1:", ":0",
	    "h:65536", "h:-1", "h:80x", "::1:80", "[::1]80", "[::1", "h: 80"};
	char *h, *p;
	size_t i;

	listen_ok("127.0.0.1:8090", "127.0.0.1", "8090");
	listen_ok("localhost:1", "localhost", "1");
	listen_ok("[::1]:8090", "::1", "8090");
	listen_ok(":8090", "127.0.0.1", "8090");
	for (i = 0; i < nitems(bad); i++) {
		ck_assert_msg(http_listen_parse(bad[i], &h, &p) == -1,
		    "accepted %s", bad[i]);
		ck_assert_ptr_null(h);
	}
}
END_TEST

START_TEST(test_split)
{
	char *seg[API_MAX_SEGS];
	char p1[] = "/api/vms/a%2Fb/start?force=1";
	char p2[] = "/api/vms/%3Cscript%3E";
	char p3[] = "/api/vms/a%00b";
	char p4[] = "/";
	char p5[] = "/a/b/c/d/e/f/g/h/i";
	char p6[] = "no-slash";
	char p7[] = "/api/vms/caf%C3%A9";

	ck_assert_int_eq(http_split_path(p1, seg), 4);
	ck_assert_str_eq(seg[2], "a/b");
	ck_assert_str_eq(seg[3], "start");
	ck_assert_int_eq(http_split_path(p2, seg), 3);
	ck_assert_str_eq(seg[2], "<script>");
	/* an encoded NUL stays visible (as a control character) */
	ck_assert_int_eq(http_split_path(p3, seg), 3);
	ck_assert_str_eq(seg[2],
	    "a\x01"
	    "b");
	ck_assert_int_eq(http_split_path(p4, seg), 0);
	ck_assert_int_eq(http_split_path(p5, seg), -1);
	ck_assert_int_eq(http_split_path(p6, seg), -1);
	ck_assert_int_eq(http_split_path(p7, seg), 3);
	ck_assert_str_eq(seg[2], "caf\xc3\xa9");
}
END_TEST

START_TEST(test_token_sessions)
{
	char dir[] = "/tmp/gvm-http-XXXXXX", *path, *tok, *cookie, *id, *out;
	struct stat st;
	size_t len;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	xasprintf(&path, "%s/token", dir);
	ck_assert_int_eq(http_token_load(path), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	tok = read_file(path, 4096, &len);
	ck_assert_uint_eq(len, 65); /* 32 random bytes in hex, newline */
	tok[64] = '\0';
	ck_assert_uint_eq(strspn(tok, "0123456789abcdef"), 64);
	/* loading again keeps the token */
	ck_assert_int_eq(http_token_load(path), 0);
	out = read_file(path, 4096, NULL);
	ck_assert_int_eq(strncmp(out, tok, 64), 0);
	free(out);

	ck_assert_ptr_null(http_session_login("wrong"));
	ck_assert_ptr_null(http_session_login(""));
	cookie = http_session_login(tok);
	ck_assert_ptr_nonnull(cookie);
	ck_assert(str_has_prefix(cookie, "vmmod_session="));
	ck_assert_ptr_nonnull(strstr(cookie, "; HttpOnly"));
	ck_assert_ptr_nonnull(strstr(cookie, "; SameSite=Strict"));
	ck_assert_ptr_nonnull(strstr(cookie, "; Path=/"));
	id = xstrndup(cookie + strlen("vmmod_session="), 64);
	ck_assert(http_session_valid(id));
	ck_assert(!http_session_valid("x"));
	ck_assert(!http_session_valid(NULL));
	ck_assert(!http_session_valid(tok)); /* the token is not a session */
	out = http_session_logout(id);
	ck_assert_ptr_nonnull(strstr(out, "Max-Age=0"));
	ck_assert(!http_session_valid(id));
	free(out);
	free(id);
	free(cookie);

	/* a hand-written token file: surrounding whitespace trimmed */
	ck_assert_int_eq(
	    write_file_atomic(path, "  secret-token-1234567\n\n", 24, 0600), 0);
	ck_assert_int_eq(http_token_load(path), 0);
	ck_assert_ptr_null(http_session_login("  secret-token-1234567"));
	ck_assert_ptr_null(http_session_login("secret-token-123456"));
	cookie = http_session_login("secret-token-1234567");
	ck_assert_ptr_nonnull(cookie);
	free(cookie);
	/* too short to be a token */
	ck_assert_int_eq(write_file_atomic(path, "short\n", 6, 0600), 0);
	ck_assert_int_eq(http_token_load(path), -1);

	unlink(path);
	rmdir(dir);
	free(path);
	free(tok);
}
END_TEST

Suite *
suite_http(void)
{
	Suite *s = suite_create("http");
	TCase *tc = tcase_create("http");

	tcase_add_test(tc, test_bearer);
	tcase_add_test(tc, test_origin);
	tcase_add_test(tc, test_static_lookup);
	tcase_add_test(tc, test_listen);
	tcase_add_test(tc, test_split);
	tcase_add_test(tc, test_token_sessions);
	suite_add_tcase(s, tc);
	return s;
}
