/*
 * vmmod/conf.c: tests/data/conf/pass-NAME.conf parses and dumps as
 * pass-NAME.ok; fail-NAME.conf is refused with the message in fail-NAME.err
 * and leaves the struct untouched.  The shipped example and the man page
 * must agree with the built-in defaults and key list.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmmod.h"
#include "testutil.h"

static const char *const pass_cases[] = {
    "empty",
    "full",
    "quoting",
    "unset",
    "crlf",
    "no-final-newline",
};

static const char *const fail_cases[] = {
    "unknown-key",
    "duplicate",
    "bad-number",
    "negative",
    "range",
    "console-queue",
    "overflow",
    "accel",
    "no-equals",
    "empty-key",
    "unterminated",
    "after-quote",
    "relative-path",
    "listen",
    "listen-port",
    "listen-v6",
    "mode",
    "mode-range",
    "empty-required",
    "per-ip",
    "bool",
};

/* Replaces every occurrence of `from` in s (malloc'd) with `to`. */
static char *
replace_all(char *s, const char *from, const char *to)
{
	char *out, *p, *hit;
	size_t n = 0;

	for (p = s; (hit = strstr(p, from)) != NULL; p = hit + strlen(from))
		n++;
	out = xmalloc(strlen(s) + n * strlen(to) + 1);
	out[0] = '\0';
	for (p = s; (hit = strstr(p, from)) != NULL; p = hit + strlen(from)) {
		strncat(out, p, hit - p);
		strcat(out, to);
	}
	strcat(out, p);
	free(s);
	return out;
}

/* The dump with the build's DATADIR made stable for golden files. */
static char *
dump_normalized(const struct vmmod_conf *c)
{
	return replace_all(conf_dump(c), DATADIR, "@DATADIR@");
}

static char *
defaults_dump(void)
{
	struct vmmod_conf c;
	char *d;

	conf_init(&c);
	d = conf_dump(&c);
	conf_clear(&c);
	return d;
}

static bool
listed(const char *const *names, size_t n, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strlen(names[i]) == len &&
		    strncmp(names[i], name, len) == 0)
			return true;
	return false;
}

/* Every file in tests/data/conf must belong to a case above. */
static void
check_no_unused_fixtures(void)
{
	char *dir = test_data_path("conf");
	struct dirent *de;
	const char *n, *dot;
	size_t len;
	DIR *d;
	bool ok;

	d = opendir(dir);
	ck_assert_msg(d != NULL, "cannot open %s", dir);
	while ((de = readdir(d)) != NULL) {
		n = de->d_name;
		if (n[0] == '.')
			continue;
		dot = strrchr(n, '.');
		ok = false;
		if (dot != NULL && strncmp(n, "pass-", 5) == 0 &&
		    (strcmp(dot, ".conf") == 0 || strcmp(dot, ".ok") == 0)) {
			len = dot - n - 5;
			ok = listed(pass_cases, nitems(pass_cases), n + 5, len);
		} else if (dot != NULL && strncmp(n, "fail-", 5) == 0 &&
		    (strcmp(dot, ".conf") == 0 || strcmp(dot, ".err") == 0)) {
			len = dot - n - 5;
			ok = listed(fail_cases, nitems(fail_cases), n + 5, len);
		}
		ck_assert_msg(ok, "fixture conf/%s is not used by any case", n);
	}
	closedir(d);
	free(dir);
}

START_TEST(test_conf_fixtures)
{
	struct vmmod_conf c;
	char rel[256], *text, *err, *dump, *defaults = defaults_dump();
	size_t i;

	for (i = 0; i < nitems(pass_cases); i++) {
		snprintf(rel, sizeof(rel), "conf/pass-%s.conf", pass_cases[i]);
		text = test_data_read(rel);
		ck_assert_msg(text != NULL, "missing %s", rel);
		conf_init(&c);
		err = (char *)"unset";
		ck_assert_msg(conf_parse(&c, text, rel + 5, &err) == 0,
		    "%s: %s", rel, err);
		ck_assert_ptr_null(err);
		dump = dump_normalized(&c);
		snprintf(rel, sizeof(rel), "conf/pass-%s.ok", pass_cases[i]);
		ck_assert_msg(golden_check(rel, dump), "%s differs", rel);
		free(dump);
		conf_clear(&c);
		free(text);
	}
	for (i = 0; i < nitems(fail_cases); i++) {
		snprintf(rel, sizeof(rel), "conf/fail-%s.conf", fail_cases[i]);
		text = test_data_read(rel);
		ck_assert_msg(text != NULL, "missing %s", rel);
		conf_init(&c);
		ck_assert_msg(conf_parse(&c, text, rel + 5, &err) == -1,
		    "%s parsed", rel);
		ck_assert_ptr_nonnull(err);
		/* all or nothing: the valid lines before the bad one are dropped */
		dump = conf_dump(&c);
		ck_assert_str_eq(dump, defaults);
		free(dump);
		dump = NULL;
		xasprintf(&dump, "%s\n", err);
		snprintf(rel, sizeof(rel), "conf/fail-%s.err", fail_cases[i]);
		ck_assert_msg(golden_check(rel, dump), "%s differs", rel);
		free(dump);
		free(err);
		conf_clear(&c);
		free(text);
	}
	check_no_unused_fixtures();
	free(defaults);
}
END_TEST

/* The dump is a config file that reproduces the struct. */
START_TEST(test_conf_dump_roundtrip)
{
	struct vmmod_conf a, b;
	char *text, *d1, *d2, *err;

	text = test_data_read("conf/pass-quoting.conf");
	ck_assert_ptr_nonnull(text);
	conf_init(&a);
	ck_assert_int_eq(conf_parse(&a, text, "q", &err), 0);
	d1 = conf_dump(&a);
	conf_init(&b);
	ck_assert_msg(conf_parse(&b, d1, "dump", &err) == 0, "%s", err);
	d2 = conf_dump(&b);
	ck_assert_str_eq(d1, d2);
	ck_assert_str_eq(b.allowed_origins, "http://a \"b\" \\c");
	free(d1);
	free(d2);
	free(text);
	conf_clear(&a);
	conf_clear(&b);
}
END_TEST

/* A later file replaces only what it sets; conf_set checks like the file. */
START_TEST(test_conf_layering)
{
	struct vmmod_conf c;
	char *err;

	conf_init(&c);
	ck_assert_int_eq(conf_parse(&c, "bridge = br7\n", "a", &err), 0);
	ck_assert_int_eq(
	    conf_parse(&c, "uri = test:///default\n", "b", &err), 0);
	ck_assert_str_eq(c.bridge, "br7");
	ck_assert_str_eq(c.uri, "test:///default");
	ck_assert_int_eq(conf_set(&c, "listen", "127.0.0.1:8090", &err), 0);
	ck_assert_str_eq(c.listen, "127.0.0.1:8090");
	ck_assert_int_eq(conf_set(&c, "data_dir", "relative", &err), -1);
	ck_assert_str_eq(err, "data_dir: 'relative' is not an absolute path");
	free(err);
	ck_assert_int_eq(conf_set(&c, "nope", "1", &err), -1);
	ck_assert_str_eq(err, "unknown key 'nope'");
	free(err);
	ck_assert_str_eq(c.data_dir, "/var/lib/vmmod");
	conf_clear(&c);
	conf_clear(&c); /* cleared twice is harmless */
	conf_clear(NULL);
}
END_TEST

/* A reload keeps the running values of what only a restart applies, and
 * names those that changed; the rest is taken. */
START_TEST(test_conf_keep_running)
{
	struct vmmod_conf run, next;
	char *err, *list;

	conf_init(&run);
	ck_assert_int_eq(conf_parse(&run,
			     "listen = 127.0.0.1:8090\n"
			     "allowed_origins = http://a\n",
			     "run", &err),
	    0);
	conf_init(&next);
	ck_assert_int_eq(conf_parse(&next,
			     "listen = 127.0.0.1:9000\n"
			     "allowed_origins = http://a\n"
			     "max_conns = 32\n"
			     "debug = yes\n"
			     "token_file = /tmp/new-token\n"
			     "lease_file = /tmp/leases\n",
			     "next", &err),
	    0);
	list = conf_keep_running(&next, &run);
	ck_assert_str_eq(list, "listen, max_conns");
	free(list);
	/* what runs stays in next; run holds the new values (freed below) */
	ck_assert_str_eq(next.listen, "127.0.0.1:8090");
	ck_assert_uint_eq(next.max_conns, 64);
	ck_assert_str_eq(next.allowed_origins, "http://a");
	ck_assert_str_eq(run.listen, "127.0.0.1:9000");
	ck_assert_uint_eq(run.max_conns, 32);
	/* reloadable: the new values */
	ck_assert_int_eq(next.debug, 1);
	ck_assert_str_eq(next.token_file, "/tmp/new-token");
	ck_assert_str_eq(next.lease_file, "/tmp/leases");
	conf_clear(&run);
	conf_clear(&next);
	/* nothing changed: no list (unset on both sides is no change) */
	conf_init(&run);
	conf_init(&next);
	ck_assert_ptr_null(conf_keep_running(&next, &run));
	/* set, then unset: a change */
	ck_assert_int_eq(
	    conf_set(&run, "console_url_base", "https://x", &err), 0);
	list = conf_keep_running(&next, &run);
	ck_assert_str_eq(list, "console_url_base");
	ck_assert_str_eq(next.console_url_base, "https://x");
	ck_assert_ptr_null(run.console_url_base);
	free(list);
	conf_clear(&run);
	conf_clear(&next);
}
END_TEST

START_TEST(test_conf_load_missing)
{
	struct vmmod_conf c;
	char *err;

	conf_init(&c);
	ck_assert_int_eq(conf_load(&c, "/nonexistent/vmmod.conf", &err), -1);
	ck_assert_str_eq(
	    err, "/nonexistent/vmmod.conf: No such file or directory");
	free(err);
	conf_clear(&c);
}
END_TEST

static char *
top_read(const char *rel)
{
	const char *top = getenv("TOP");
	char *path, *buf;

	xasprintf(&path, "%s/%s", top != NULL ? top : ".", rel);
	buf = read_file(path, 1 << 20, NULL);
	ck_assert_msg(buf != NULL, "cannot read %s", path);
	free(path);
	return buf;
}

/*
 * vmmod.conf.example shows every key commented out with its default:
 * uncommented, it must parse to exactly conf_init()'s values.  Its paths
 * are those of a PREFIX=/usr install.
 */
START_TEST(test_conf_example_matches_defaults)
{
	struct vmmod_conf c;
	char *text, *p, *err, *dump, *defaults = defaults_dump();
	unsigned keys = 0;

	text = top_read("vmmod/vmmod.conf.example");
	for (p = text; p != NULL; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		if (p[0] == '#' && p[1] >= 'a' && p[1] <= 'z') {
			p[0] = ' ';
			keys++;
		}
	}
	text = replace_all(text, "/usr/share/guardian-vms", DATADIR);
	conf_init(&c);
	ck_assert_msg(
	    conf_parse(&c, text, "vmmod.conf.example", &err) == 0, "%s", err);
	dump = conf_dump(&c);
	ck_assert_str_eq(dump, defaults);
	/* ...and it names every key (the dump has one line per key) */
	for (p = defaults; *p != '\0'; p++)
		if (*p == '\n')
			keys--;
	ck_assert_uint_eq(keys, 0);
	free(dump);
	free(defaults);
	free(text);
	conf_clear(&c);
}
END_TEST

/* Every key is documented in vmmod.conf(5) and vmmod(8). */
/* Is WORD one of the blank/comma/semicolon separated words of [b, e)? */
static bool
has_word(const char *b, const char *e, const char *word)
{
	size_t n = strlen(word), k;

	while (b < e) {
		k = strcspn(b, " ,;\n");
		if (b + k > e)
			k = e - b;
		if (k == n && strncmp(b, word, n) == 0)
			return true;
		b += k + 1;
	}
	return false;
}

/* [after FROM, TO) in TEXT; both must be there. */
static void
section(const char *text, const char *from, const char *to, const char **b,
    const char **e)
{
	*b = strstr(text, from);
	ck_assert_msg(*b != NULL, "no '%s' in the man page", from);
	*b += strlen(from);
	*e = strstr(*b, to);
	ck_assert_msg(*e != NULL, "no '%s' after '%s'", to, from);
}

/* What a reload applies, found by changing each key alone, is what
 * vmmod(8)'s SIGHUP and vmmod.conf(5) list. */
START_TEST(test_conf_reload_documented)
{
	static const char *const tries[] = {"/tmp/gvm-other", "gvm-other",
	    "127.0.0.1:1", "0600", "65", "yes", "no", "tcg"};
	char *man5 = top_read("man/vmmod.conf.5"),
	     *man8 = top_read("man/vmmod.8");
	char *defaults = defaults_dump(), *line, *next, *key, *err, *d0, *d1;
	const char *b8, *e8, *b5, *e5;
	struct vmmod_conf a, b;
	char *list;
	bool changed, reloads;
	size_t i;

	section(man8, "A reload applies", "every other key", &b8, &e8);
	section(man5, "A good file on a reload applies", "at once", &b5, &e5);
	for (line = defaults; *line != '\0'; line = next) {
		next = strchr(line, '\n') + 1;
		key = xstrndup(line, strcspn(line, " "));
		conf_init(&a);
		d0 = conf_dump(&a);
		changed = false;
		for (i = 0; i < nitems(tries) && !changed; i++) {
			conf_init(&b);
			if (conf_set(&b, key, tries[i], &err) == 0) {
				d1 = conf_dump(&b);
				changed = strcmp(d0, d1) != 0;
				free(d1);
			} else
				free(err);
			if (!changed)
				conf_clear(&b);
		}
		ck_assert_msg(changed, "no other value for %s", key);
		list = conf_keep_running(&b, &a);
		reloads = list == NULL;
		ck_assert_msg(reloads || strcmp(list, key) == 0,
		    "changing %s alone: '%s'", key, list);
		ck_assert_msg(has_word(b8, e8, key) == reloads,
		    "vmmod.8's list of what SIGHUP applies %s %s",
		    reloads ? "lacks" : "wrongly has", key);
		ck_assert_msg(has_word(b5, e5, key) == reloads,
		    "vmmod.conf.5's list of what a reload applies %s %s",
		    reloads ? "lacks" : "wrongly has", key);
		free(list);
		free(d0);
		conf_clear(&a);
		conf_clear(&b);
		free(key);
	}
	free(defaults);
	free(man5);
	free(man8);
}
END_TEST

START_TEST(test_conf_keys_documented)
{
	char *man5 = top_read("man/vmmod.conf.5"),
	     *man8 = top_read("man/vmmod.8");
	char *defaults = defaults_dump(), *line, *next, *key, *item;

	for (line = defaults; *line != '\0'; line = next) {
		next = strchr(line, '\n') + 1;
		key = xstrndup(line, strcspn(line, " "));
		xasprintf(&item, ".It Cm %s\n", key);
		ck_assert_msg(strstr(man5, item) != NULL,
		    "vmmod.conf.5 lacks '.It Cm %s'", key);
		ck_assert_msg(
		    strstr(man8, key) != NULL, "vmmod.8 lacks %s", key);
		free(item);
		free(key);
	}
	free(defaults);
	free(man5);
	free(man8);
}
END_TEST

Suite *
suite_conf(void)
{
	Suite *s = suite_create("conf");
	TCase *tc = tcase_create("conf");

	tcase_add_test(tc, test_conf_fixtures);
	tcase_add_test(tc, test_conf_dump_roundtrip);
	tcase_add_test(tc, test_conf_layering);
	tcase_add_test(tc, test_conf_keep_running);
	tcase_add_test(tc, test_conf_reload_documented);
	tcase_add_test(tc, test_conf_load_missing);
	tcase_add_test(tc, test_conf_example_matches_defaults);
	tcase_add_test(tc, test_conf_keys_documented);
	suite_add_tcase(s, tc);
	return s;
}
