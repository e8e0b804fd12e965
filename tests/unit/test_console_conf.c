/*
 * vmmod/conf.c, the console listener's keys: console_listen with
 * console_tls_cert / console_tls_key, their defaults from systemd's
 * $CREDENTIALS_DIRECTORY, and the checks across keys.
 */
#include <stdlib.h>
#include <string.h>

#include "vmmod.h"
#include "testutil.h"

/* conf_parse of text on defaults (with CREDENTIALS_DIRECTORY as given). */
static int
parse(struct vmmod_conf *c, const char *creds, const char *text, char **errp)
{
	char *saved = getenv("CREDENTIALS_DIRECTORY");
	int rc;

	saved = saved != NULL ? xstrdup(saved) : NULL;
	if (creds != NULL)
		setenv("CREDENTIALS_DIRECTORY", creds, 1);
	else
		unsetenv("CREDENTIALS_DIRECTORY");
	conf_init(c);
	if (saved != NULL)
		setenv("CREDENTIALS_DIRECTORY", saved, 1);
	else
		unsetenv("CREDENTIALS_DIRECTORY");
	free(saved);
	*errp = NULL;
	rc = conf_parse(c, text, "t.conf", errp);
	return rc;
}

START_TEST(test_console_defaults)
{
	struct vmmod_conf c;
	char *err;

	/* off unless configured; no credentials: no default paths */
	ck_assert_int_eq(parse(&c, NULL, "", &err), 0);
	ck_assert_ptr_null(c.console_listen);
	ck_assert_ptr_null(c.console_tls_cert);
	ck_assert_ptr_null(c.console_tls_key);
	conf_clear(&c);
	/* systemd's LoadCredential= directory */
	ck_assert_int_eq(parse(&c, "/run/credentials/vmmod.service",
			     "console_listen = 192.168.4.1:8091\n", &err),
	    0);
	ck_assert_str_eq(c.console_listen, "192.168.4.1:8091");
	ck_assert_str_eq(
	    c.console_tls_cert, "/run/credentials/vmmod.service/console.crt");
	ck_assert_str_eq(
	    c.console_tls_key, "/run/credentials/vmmod.service/console.key");
	conf_clear(&c);
	/* a relative or empty directory is not taken */
	ck_assert_int_eq(parse(&c, "run/creds", "", &err), 0);
	ck_assert_ptr_null(c.console_tls_cert);
	conf_clear(&c);
	ck_assert_int_eq(parse(&c, "", "", &err), 0);
	ck_assert_ptr_null(c.console_tls_key);
	conf_clear(&c);
	/* the file's paths win over the credentials */
	ck_assert_int_eq(parse(&c, "/run/creds",
			     "console_listen = [fd00::1]:8091\n"
			     "console_tls_cert = /etc/tls/a.crt\n"
			     "console_tls_key = /etc/tls/a.key\n",
			     &err),
	    0);
	ck_assert_str_eq(c.console_listen, "[fd00::1]:8091");
	ck_assert_str_eq(c.console_tls_cert, "/etc/tls/a.crt");
	ck_assert_str_eq(c.console_tls_key, "/etc/tls/a.key");
	conf_clear(&c);
	/* "off" and "" turn it off */
	ck_assert_int_eq(parse(&c, NULL, "console_listen = off\n", &err), 0);
	ck_assert_ptr_null(c.console_listen);
	conf_clear(&c);
}
END_TEST

/* Each bad text fails with a message containing want. */
static void
refused(const char *creds, const char *text, const char *want)
{
	struct vmmod_conf c;
	char *err;

	ck_assert_msg(parse(&c, creds, text, &err) == -1, "parsed: %s", text);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err, want) != NULL, "'%s' lacks '%s'", err, want);
	/* all or nothing */
	ck_assert_ptr_null(c.console_listen);
	free(err);
	conf_clear(&c);
}

START_TEST(test_console_refused)
{
	refused(NULL, "console_listen = 192.168.4.1:8091\n",
	    "t.conf:1: console_listen needs console_tls_cert and "
	    "console_tls_key");
	refused(NULL,
	    "console_tls_cert = /a.crt\nconsole_listen = 192.168.4.1:8091\n",
	    "t.conf:2: console_listen needs");
	refused("/c", "console_listen = 192.168.4.1\n",
	    "console_listen: '192.168.4.1' is not HOST:PORT");
	refused("/c", "console_listen = 192.168.4.1:0\n", "is not HOST:PORT");
	refused("/c",
	    "console_listen = 192.168.4.1:8091\nconsole_tls_key = k\n",
	    "console_tls_key: 'k' is not an absolute path");
	refused("/c", "console_listen = 0.0.0.0:8091\n",
	    "0.0.0.0:8091 is a wildcard address; set console_url_base");
	refused("/c", "console_listen = [::]:8091\n", "wildcard address");
	refused("/c",
	    "listen = 127.0.0.1:8091\nconsole_listen = 127.0.0.1:8091\n",
	    "t.conf:2: console_listen: 127.0.0.1:8091 is also 'listen'");
	refused("/c",
	    "console_url_base = 192.168.4.1:8091\n"
	    "console_listen = 192.168.4.1:8091\n",
	    "t.conf:1: console_url_base: '192.168.4.1:8091' does not start "
	    "with http:// or https://");
}
END_TEST

START_TEST(test_console_url_override)
{
	struct vmmod_conf c;
	char *err, *dump;

	/* a wildcard address is fine when the URL is given */
	ck_assert_int_eq(parse(&c, "/c",
			     "console_listen = 0.0.0.0:8091\n"
			     "console_url_base = https://guardian.local:8091\n",
			     &err),
	    0);
	ck_assert_str_eq(c.console_url_base, "https://guardian.local:8091");
	/* the dump names the keys and parses back */
	dump = conf_dump(&c);
	ck_assert_ptr_nonnull(
	    strstr(dump, "console_listen = \"0.0.0.0:8091\"\n"));
	ck_assert_ptr_nonnull(
	    strstr(dump, "console_tls_cert = \"/c/console.crt\"\n"));
	conf_clear(&c);
	ck_assert_int_eq(parse(&c, NULL, dump, &err), 0);
	ck_assert_str_eq(c.console_tls_key, "/c/console.key");
	conf_clear(&c);
	free(dump);
}
END_TEST

Suite *
suite_console_conf(void)
{
	Suite *s = suite_create("console_conf");
	TCase *tc = tcase_create("console_conf");

	tcase_add_test(tc, test_console_defaults);
	tcase_add_test(tc, test_console_refused);
	tcase_add_test(tc, test_console_url_override);
	suite_add_tcase(s, tc);
	return s;
}
