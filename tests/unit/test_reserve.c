/*
 * vmmod/reserve.c in a temporary directory: allocation order, exhaustion,
 * least-recently-freed reuse, the dnsmasq files (golden contents in
 * tests/data/reserve/), no temporary files left behind, hostile names,
 * reload from the state file, and block checks against subnet and pool.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmmod.h"
#include "testutil.h"

struct fx {
	char root[64];
	char *dhcp, *hosts, *state;
	struct reserve_params p;
};

static void
fx_init(struct fx *f, const char *block)
{
	strcpy(f->root, "/tmp/gvm-reserve-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(f->root));
	xasprintf(&f->dhcp, "%s/dhcp", f->root);
	xasprintf(&f->hosts, "%s/hosts", f->root);
	xasprintf(&f->state, "%s/reservations.json", f->root);
	mkdir(f->dhcp, 0755);
	mkdir(f->hosts, 0755);
	memset(&f->p, 0, sizeof(f->p));
	f->p.block = block;
	f->p.subnet = "192.168.4.1/27";
	f->p.dhcp_pool = "192.168.4.2-192.168.4.23";
	f->p.state_file = f->state;
	f->p.dhcp_dir = f->dhcp;
	f->p.hosts_dir = f->hosts;
	f->p.domain = "guardian.local";
}

static void
fx_rmdir(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	char *p;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		xasprintf(&p, "%s/%s", dir, de->d_name);
		unlink(p);
		free(p);
	}
	closedir(d);
	rmdir(dir);
}

static void
fx_free(struct fx *f)
{
	fx_rmdir(f->dhcp);
	fx_rmdir(f->hosts);
	unlink(f->state);
	rmdir(f->root);
	free(f->dhcp);
	free(f->hosts);
	free(f->state);
}

static struct reserve *
fx_open(struct fx *f)
{
	char *err = NULL;
	struct reserve *r = reserve_open(&f->p, &err);

	ck_assert_msg(r != NULL, "reserve_open: %s", err);
	return r;
}

static void
alloc_ok(
    struct reserve *r, const char *name, const char *mac, const char *want_ip)
{
	struct reservation rv;
	struct api_error e = {0};

	ck_assert_msg(
	    reserve_alloc(r, name, mac, &rv, &e) == 0, "%s: %s", name, e.msg);
	ck_assert_str_eq(rv.name, name);
	ck_assert_msg(strcmp(rv.ip, want_ip) == 0, "%s got %s, want %s", name,
	    rv.ip, want_ip);
	ck_assert(vm_mac_valid(rv.mac));
}

/* Names in dir, sorted, space separated. */
static char *
ls(const char *dir)
{
	struct dirent **v;
	char *out = xstrdup(""), *t;
	int i, n = scandir(dir, &v, NULL, alphasort);

	for (i = 0; i < n; i++) {
		if (strcmp(v[i]->d_name, ".") != 0 &&
		    strcmp(v[i]->d_name, "..") != 0) {
			xasprintf(
			    &t, "%s%s%s", out, *out ? " " : "", v[i]->d_name);
			free(out);
			out = t;
		}
		free(v[i]);
	}
	free(v);
	return out;
}

START_TEST(test_reserve_order_exhaustion_lru)
{
	struct fx f;
	struct reserve *r;
	struct api_error e = {0};
	struct reservation rv, *all;
	char *names;

	fx_init(&f, "192.168.4.24-192.168.4.27");
	r = fx_open(&f);
	alloc_ok(r, "a", NULL, "192.168.4.24");
	alloc_ok(r, "b", NULL, "192.168.4.25");
	/* freed: goes to the back, after never-used .26 and .27 */
	ck_assert_int_eq(reserve_release(r, "a"), 0);
	alloc_ok(r, "c", NULL, "192.168.4.26");
	alloc_ok(r, "d", NULL, "192.168.4.27");
	alloc_ok(r, "e", NULL, "192.168.4.24");
	/* exhausted: a clear 409 */
	ck_assert_int_eq(reserve_alloc(r, "f", NULL, &rv, &e), -1);
	ck_assert_int_eq(e.status, 409);
	ck_assert_str_eq(e.code, "no_address");
	ck_assert_ptr_nonnull(strstr(e.msg, "no free address"));
	ck_assert_int_eq(reserve_lookup(r, "f", NULL), -1);
	/* least recently freed first: d then b freed -> d's .27 first */
	ck_assert_int_eq(reserve_release(r, "d"), 0);
	ck_assert_int_eq(reserve_release(r, "b"), 0);
	alloc_ok(r, "g", NULL, "192.168.4.27");
	alloc_ok(r, "h", NULL, "192.168.4.25");
	ck_assert_int_eq(reserve_release(r, "nope"), -1);
	/* a name is reserved once */
	ck_assert_int_eq(reserve_alloc(r, "g", NULL, &rv, &e), -1);
	ck_assert_str_eq(e.code, "exists");

	ck_assert_uint_eq(reserve_list(r, &all), 4);
	ck_assert_str_eq(all[0].name, "c");
	ck_assert_str_eq(all[3].name, "h");
	free(all);
	/* one file per VM, nothing else (no temporaries) */
	names = ls(f.dhcp);
	ck_assert_str_eq(names, "c e g h");
	free(names);
	names = ls(f.hosts);
	ck_assert_str_eq(names, "c e g h");
	free(names);
	names = ls(f.root);
	ck_assert_str_eq(names, "dhcp hosts reservations.json");
	free(names);
	reserve_close(r);
	fx_free(&f);
}
END_TEST

/* File contents and the state file, with fixed MACs. */
START_TEST(test_reserve_files_golden)
{
	struct fx f;
	struct reserve *r;
	struct reservation rv;
	struct api_error e = {0};
	struct stat st;
	char *path, *text;

	fx_init(&f, "192.168.4.24-192.168.4.30");
	r = fx_open(&f);
	alloc_ok(r, "homeassistant", "52:54:00:04:18:18", "192.168.4.24");
	alloc_ok(r, "nas", "52:54:00:AB:CD:EF", "192.168.4.25");
	/* a MAC is reserved once (case does not matter) */
	ck_assert_int_eq(
	    reserve_alloc(r, "x", "52:54:00:ab:cd:ef", &rv, &e), -1);
	ck_assert_str_eq(e.code, "mac_in_use");
	ck_assert_int_eq(reserve_release(r, "nas"), 0);

	xasprintf(&path, "%s/homeassistant", f.dhcp);
	text = read_file(path, 4096, NULL);
	ck_assert(golden_check("reserve/homeassistant.dhcp-host", text));
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0644);
	free(text);
	free(path);
	xasprintf(&path, "%s/homeassistant", f.hosts);
	text = read_file(path, 4096, NULL);
	ck_assert(golden_check("reserve/homeassistant.hosts", text));
	free(text);
	free(path);
	text = read_file(f.state, 1 << 16, NULL);
	ck_assert(golden_check("reserve/reservations.json", text));
	free(text);
	/* released: both files gone */
	xasprintf(&path, "%s/nas", f.dhcp);
	ck_assert_int_eq(access(path, F_OK), -1);
	free(path);
	xasprintf(&path, "%s/nas", f.hosts);
	ck_assert_int_eq(access(path, F_OK), -1);
	free(path);
	reserve_close(r);
	fx_free(&f);
}
END_TEST

/* Only names vm_name_valid_new accepts reach the file system. */
START_TEST(test_reserve_hostile_names)
{
	static const char *const bad[] = {"", "../etc", "a/b", ".hidden", "a;b",
	    "A", "-a", "status", "templates", "a b", "a\nb",
	    "x-too-long-0123456789012345678901234567890123456789012345678901234"};
	struct fx f;
	struct reserve *r;
	struct api_error e = {0};
	struct reservation rv;
	char *names;
	size_t i;

	fx_init(&f, "192.168.4.24-192.168.4.30");
	r = fx_open(&f);
	for (i = 0; i < nitems(bad); i++) {
		ck_assert_msg(reserve_alloc(r, bad[i], NULL, &rv, &e) == -1,
		    "accepted \"%s\"", bad[i]);
		ck_assert_int_eq(e.status, 400);
	}
	ck_assert_int_eq(reserve_alloc(r, NULL, NULL, &rv, &e), -1);
	ck_assert_int_eq(
	    reserve_alloc(r, "ok", "52:54:01:00:00:01", &rv, &e), -1);
	ck_assert_str_eq(e.code, "invalid_mac");
	names = ls(f.dhcp);
	ck_assert_str_eq(names, "");
	free(names);
	reserve_close(r);
	fx_free(&f);
}
END_TEST

/* The state file brings back the reservations and the free order. */
START_TEST(test_reserve_reload)
{
	struct fx f;
	struct reserve *r;
	struct reservation a, b;
	char *err = NULL;
	FILE *fp;

	fx_init(&f, "192.168.4.24-192.168.4.26");
	r = fx_open(&f);
	alloc_ok(r, "a", NULL, "192.168.4.24");
	alloc_ok(r, "b", NULL, "192.168.4.25");
	alloc_ok(r, "c", NULL, "192.168.4.26");
	reserve_lookup(r, "a", &a);
	ck_assert_int_eq(reserve_release(r, "b"), 0);
	ck_assert_int_eq(reserve_release(r, "c"), 0);
	reserve_close(r);

	r = fx_open(&f);
	ck_assert_int_eq(reserve_lookup(r, "a", &b), 0);
	ck_assert_str_eq(a.ip, b.ip);
	ck_assert_str_eq(a.mac, b.mac);
	ck_assert_int_eq(reserve_lookup(r, "b", NULL), -1);
	alloc_ok(r, "d", NULL, "192.168.4.25"); /* b was freed before c */
	alloc_ok(r, "e", NULL, "192.168.4.26");
	reserve_close(r);

	/* a widened block: new addresses count as never used */
	f.p.block = "192.168.4.24-192.168.4.28";
	r = fx_open(&f);
	alloc_ok(r, "f", NULL, "192.168.4.27");
	reserve_close(r);

	/* a corrupt state file is an error, not an empty state */
	fp = fopen(f.state, "w");
	fputs("{\"reservations\": [{\"name\": \"../x\"}]}", fp);
	fclose(fp);
	ck_assert_ptr_null(reserve_open(&f.p, &err));
	ck_assert_ptr_nonnull(strstr(err, "malformed"));
	free(err);
	fx_free(&f);
}
END_TEST

START_TEST(test_reserve_check_block)
{
	static const struct {
		const char *block, *subnet, *pool, *err;
	} c[] = {
	    {"192.168.4.24-192.168.4.30", "192.168.4.1/27",
		"192.168.4.2-192.168.4.23", NULL},
	    {"192.168.4.50-192.168.4.52", "192.168.4.1/27", NULL,
		"reserve_block 192.168.4.50-192.168.4.52 is outside the "
		"subnet 192.168.4.1/27 (or holds its network or broadcast "
		"address)"},
	    {"192.168.4.24-192.168.4.31", "192.168.4.1/27", NULL,
		"reserve_block 192.168.4.24-192.168.4.31 is outside the "
		"subnet 192.168.4.1/27 (or holds its network or broadcast "
		"address)"},
	    {"192.168.4.10-192.168.4.11", "192.168.4.1/27",
		"192.168.4.2-192.168.4.30",
		"reserve_block 192.168.4.10-192.168.4.11 overlaps the DHCP "
		"pool 192.168.4.2-192.168.4.30: shrink the pool"},
	    {"192.168.4.1-192.168.4.2", "192.168.4.1/27", NULL,
		"reserve_block 192.168.4.1-192.168.4.2 holds the bridge's own "
		"address"},
	    {"192.168.4.30-192.168.4.24", "192.168.4.1/27", NULL,
		"reserve_block: not A.B.C.D-A.B.C.D"},
	    {"192.168.4.24-", "192.168.4.1/27", NULL,
		"reserve_block: not A.B.C.D-A.B.C.D"},
	    {"192.168.4.24", "192.168.4.1/33", NULL,
		"reserve_subnet: not ADDRESS/PREFIX (prefix 8..30)"},
	    {"10.0.0.2-10.0.2.0", "10.0.0.1/16", NULL,
		"reserve_block: more than 256 addresses"},
	};
	char *err;
	size_t i;

	for (i = 0; i < nitems(c); i++) {
		err = NULL;
		if (c[i].err == NULL) {
			ck_assert_msg(reserve_check_block(c[i].block,
					  c[i].subnet, c[i].pool, &err) == 0,
			    "%s: %s", c[i].block, err);
			continue;
		}
		ck_assert_int_eq(reserve_check_block(
				     c[i].block, c[i].subnet, c[i].pool, &err),
		    -1);
		ck_assert_str_eq(err, c[i].err);
		free(err);
	}
}
END_TEST

/* Random MACs are unique and valid across a full block. */
START_TEST(test_reserve_random_macs)
{
	struct fx f;
	struct reserve *r;
	struct reservation *all;
	char name[8];
	size_t i, j, n;

	fx_init(&f, "192.168.4.24-192.168.4.30");
	r = fx_open(&f);
	for (i = 0; i < 7; i++) {
		snprintf(name, sizeof(name), "vm%zu", i);
		ck_assert_int_eq(reserve_alloc(r, name, NULL, NULL, NULL), 0);
	}
	n = reserve_list(r, &all);
	ck_assert_uint_eq(n, 7);
	for (i = 0; i < n; i++) {
		ck_assert(vm_mac_valid(all[i].mac));
		for (j = i + 1; j < n; j++)
			ck_assert_str_ne(all[i].mac, all[j].mac);
	}
	free(all);
	reserve_close(r);
	fx_free(&f);
}
END_TEST

Suite *
suite_reserve(void)
{
	Suite *s = suite_create("reserve");
	TCase *tc = tcase_create("reserve");

	tcase_add_test(tc, test_reserve_order_exhaustion_lru);
	tcase_add_test(tc, test_reserve_files_golden);
	tcase_add_test(tc, test_reserve_hostile_names);
	tcase_add_test(tc, test_reserve_reload);
	tcase_add_test(tc, test_reserve_check_block);
	tcase_add_test(tc, test_reserve_random_macs);
	suite_add_tcase(s, tc);
	return s;
}
