/*
 * installer/plan.c and gen.c: the VM address block arithmetic (one golden
 * line per case: /27 with Guardian's full pool, /24 above and below the
 * pool, no room, pool already shrunk, a kept block), and whole plans with
 * every generated file against golden files in tests/data/installer.
 */
#include <sys/stat.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "setup.h"
#include "testutil.h"

static const struct {
	const char *net, *pool, *prev;
} block_cases[] = {
    {"192.168.4.1/27", "192.168.4.2-192.168.4.30", NULL},
    {"192.168.4.1/27", "192.168.4.2-192.168.4.23", NULL},
    {"192.168.4.1/27", "192.168.4.2-192.168.4.23", "192.168.4.24-192.168.4.30"},
    {"192.168.4.1/27", "192.168.4.2-192.168.4.30", "192.168.4.24-192.168.4.30"},
    {"192.168.4.1/27", "192.168.4.2-192.168.4.28", NULL},
    {"192.168.1.1/24", "192.168.1.100-192.168.1.200", NULL},
    {"192.168.1.1/24", "192.168.1.100-192.168.1.254", NULL},
    {"192.168.1.254/24", "192.168.1.100-192.168.1.252", NULL},
    {"192.168.1.1/24", "192.168.1.2-192.168.1.254", NULL},
    {"192.168.1.1/24", NULL, NULL},
    {"10.0.0.1/29", "10.0.0.2-10.0.0.6", NULL},
    {"10.0.0.1/30", NULL, NULL},
    {"192.168.4.1/27", "192.168.4.1-192.168.4.30", NULL},
    {"192.168.4.1/27", "192.168.4.2-192.168.4.40", NULL},
};

START_TEST(test_vm_block_golden)
{
	struct ip4net n;
	struct ip4range pool, prev;
	struct vm_block vb;
	char *out = xstrdup(""), *t, *err, *b, *np;
	size_t i;

	for (i = 0; i < nitems(block_cases); i++) {
		ck_assert_int_eq(plan_net_parse(block_cases[i].net, &n), 0);
		if (block_cases[i].pool != NULL)
			ck_assert_int_eq(
			    plan_range_parse(block_cases[i].pool, &pool), 0);
		if (block_cases[i].prev != NULL)
			ck_assert_int_eq(
			    plan_range_parse(block_cases[i].prev, &prev), 0);
		err = NULL;
		if (plan_vm_block(&n, block_cases[i].pool ? &pool : NULL,
			block_cases[i].prev ? &prev : NULL, &vb, &err) == 0) {
			b = plan_range_format(&vb.block);
			np = vb.shrink ? plan_range_format(&vb.new_pool)
				       : xstrdup("-");
			xasprintf(&t,
			    "%s%s pool %s prev %s -> block %s%s%s%s\n", out,
			    block_cases[i].net,
			    block_cases[i].pool ? block_cases[i].pool : "none",
			    block_cases[i].prev ? block_cases[i].prev : "none",
			    b, vb.reused ? " (kept)" : "",
			    vb.shrink ? ", shrink pool to " : "",
			    vb.shrink ? np : "");
			free(b);
			free(np);
		} else
			xasprintf(&t, "%s%s pool %s prev %s -> error: %s\n",
			    out, block_cases[i].net,
			    block_cases[i].pool ? block_cases[i].pool : "none",
			    block_cases[i].prev ? block_cases[i].prev : "none",
			    err);
		free(err);
		free(out);
		out = t;
	}
	ck_assert(golden_check("installer/vm-block.ok", out));
	free(out);
}
END_TEST

START_TEST(test_ip4_parse)
{
	struct ip4net n;
	struct ip4range r;
	uint32_t a;

	ck_assert_int_eq(plan_ip4_parse("192.168.4.1", &a), 0);
	ck_assert_uint_eq(a, 0xc0a80401);
	ck_assert_int_eq(plan_ip4_parse("192.168.4", &a), -1);
	ck_assert_int_eq(plan_ip4_parse("192.168.4.256", &a), -1);
	ck_assert_int_eq(plan_ip4_parse(" 192.168.4.1", &a), -1);
	ck_assert_int_eq(plan_net_parse("192.168.4.1/27", &n), 0);
	ck_assert_uint_eq(plan_net_first(&n), 0xc0a80400);
	ck_assert_uint_eq(plan_net_last(&n), 0xc0a8041f);
	ck_assert_int_eq(plan_net_parse("192.168.4.31/27", &n), -1);
	ck_assert_int_eq(plan_net_parse("192.168.4.1/7", &n), -1);
	ck_assert_int_eq(plan_net_parse("192.168.4.1/", &n), -1);
	ck_assert_int_eq(plan_net_parse("192.168.4.1/2x", &n), -1);
	ck_assert_int_eq(plan_range_parse("10.0.0.5-10.0.0.5", &r), 0);
	ck_assert_int_eq(plan_range_parse("10.0.0.5", &r), -1);
}
END_TEST

static void
guardian_facts(struct facts *f)
{
	memset(f, 0, sizeof(*f));
	f->arch = ARCH_ARM64;
	strcpy(f->machine, "aarch64");
	f->ram_mb = 7936;
	f->kvm_usable = true;
	strcpy(f->kvm_note, "test");
	f->systemd = true;
	f->guardian = true;
	strcpy(f->tier, "guardian");
	f->dnsmasq_conf = true;
	strcpy(f->dnsmasq_iface, "br0");
	f->has_pool = true;
	plan_range_parse("192.168.4.2-192.168.4.30", &f->pool);
	f->bridge_exists = true;
	strcpy(f->bridge_addr, "192.168.4.1/27");
	f->storage_free_mb = 100000;
	strcpy(f->datadir, GVM_DATADIR);
	/* what facts_read finds in guardian-root's templates (e2e 70) */
	strcpy(f->host_css.name[0], "css/main.css");
	f->host_css.n = 1;
}

/* NAME.plan is the plan text; NAME.FILE each generated file. */
static void
check_plan(const char *name, const struct facts *f, const struct answers *a,
    int verdict)
{
	struct plan *p = plan_build(f, a);
	char *text = plan_text(p), *rel, *cur, *gen, *base, *flat, *k;
	size_t i, j;

	xasprintf(&rel, "installer/%s.plan", name);
	ck_assert_msg(golden_check(rel, text), "%s", rel);
	free(rel);
	free(text);
	ck_assert_int_eq(p->verdict, verdict);
	for (i = 0; i < p->nsteps; i++)
		for (j = 0; j < p->steps[i].nchanges; j++) {
			const struct change *c = &p->steps[i].changes[j];

			if (c->kind != CH_FILE || c->src != NULL)
				continue; /* copies: byte for byte (e2e 74) */
			base = strrchr(c->path, '/') + 1;
			flat = xstrdup(c->path + 1);
			for (k = flat; *k != '\0'; k++)
				if (*k == '/')
					*k = '_';
			if (c->edit != NULL) {
				xasprintf(
				    &rel, "installer/guardian-root%s", c->path);
				cur = test_data_read(rel);
				free(rel);
				gen = c->edit(cur, p);
				ck_assert_ptr_nonnull(gen);
				/* idempotent: editing the result changes nothing */
				text = c->edit(gen, p);
				if (strcmp(base, "guardian.conf") != 0 ||
				    text != NULL)
					ck_assert_str_eq(text, gen);
				free(text);
				free(cur);
			} else
				gen = xstrdup(c->content);
			xasprintf(&rel, "installer/%s.%s", name, flat);
			ck_assert_msg(golden_check(rel, gen), "%s", rel);
			free(rel);
			free(flat);
			free(gen);
		}
	plan_free(p);
}

START_TEST(test_plan_guardian)
{
	struct facts f;
	struct answers a;
	char *path, *err = NULL;

	guardian_facts(&f);
	answers_init(&a);
	path = test_data_path("installer/guardian.answers");
	ck_assert_int_eq(answers_load(&a, path, &err), 0);
	free(path);
	check_plan("guardian", &f, &a, 0);

	/* Unattended without consent: exit 4, and no consent: exit 3. */
	a.shrink_pool = TRI_UNSET;
	check_plan("guardian-no-consent", &f, &a, 4);
	a.shrink_pool = TRI_NO;
	check_plan("guardian-refused", &f, &a, 3);

	/* The second run: guardian.conf already shrunk, block kept. */
	a.shrink_pool = TRI_YES;
	plan_range_parse("192.168.4.2-192.168.4.23", &f.pool);
	strcpy(f.prev_block, "192.168.4.24-192.168.4.30");
	/* stylesheets skipped are noted, the first GUARDIAN_CSS_SKIPS */
	strcpy(f.host_css.skipped[0],
	    "static/x.css: not in "
	    "Guardian's static folder");
	strcpy(f.host_css.skipped[1], "/static/../x.css: '..' in the path");
	strcpy(f.host_css.skipped[2], "a.css: more than 8 stylesheets");
	strcpy(f.host_css.skipped[3], "b.css: more than 8 stylesheets");
	f.host_css.nskipped = 6;
	f.host_css.nforeign = 2;
	check_plan("guardian-rerun", &f, &a, 0);
	f.host_css.nskipped = 0;
	f.host_css.nforeign = 0;

	/* A Pi with 4 GB and an x86 host's arch names */
	f.ram_mb = 3900;
	check_plan("guardian-small", &f, &a, 3);
	answers_clear(&a);
}
END_TEST

START_TEST(test_plan_standalone)
{
	struct facts f;
	struct answers a;

	memset(&f, 0, sizeof(f));
	f.arch = ARCH_X86_64;
	strcpy(f.machine, "x86_64");
	f.ram_mb = 16000;
	f.systemd = true;
	strcpy(f.kvm_note, "no /dev/kvm");
	f.netcfg = NETCFG_NETWORKD;
	answers_init(&a);
	a.bridge_addr = xstrdup("10.20.0.1/24");
	a.dhcp_range = xstrdup("10.20.0.100-10.20.0.200");
	a.console_port = 9000;
	check_plan("standalone", &f, &a, 0);
	f.netcfg = NETCFG_IFUPDOWN;
	free(a.dhcp_range);
	a.dhcp_range = NULL;
	check_plan("standalone-ifupdown", &f, &a, 0);
	/* Raspberry Pi OS Bookworm: NetworkManager, a 0600 keyfile */
	f.netcfg = NETCFG_NM;
	check_plan("standalone-nm", &f, &a, 0);
	/* A bridge already there with another address than answered. */
	f.bridge_exists = true;
	strcpy(f.bridge_addr, "10.30.0.1/24");
	check_plan("standalone-conflict", &f, &a, 2);
	strcpy(f.machine, "riscv64");
	f.arch = ARCH_OTHER;
	check_plan("unsupported-arch", &f, &a, 3);
	answers_clear(&a);
}
END_TEST

START_TEST(test_guardian_edits)
{
	char *out, *again;

	/* no register_blueprints, or one over several lines: refused */
	ck_assert_ptr_null(guardian_edit_modules("import os\n"));
	ck_assert_ptr_null(guardian_edit_modules(NULL));
	ck_assert_ptr_null(guardian_edit_modules(
	    "def register_blueprints(app):\n"
	    "    from .vms import vms_bp\n"
	    "    app.register_blueprint(vms_bp,\n"
	    "                           url_prefix='/api/vms')\n"));
	/* no vms blueprint, last line without newline, another parameter */
	out = guardian_edit_modules("def register_blueprints(flask_app):\n"
				    "\tfrom .core import core_bp as vms_bp\n"
				    "\tflask_app.register_blueprint(vms_bp)");
	ck_assert_ptr_nonnull(out);
	ck_assert_str_eq(out,
	    "def register_blueprints(flask_app):\n"
	    "\tfrom .core import core_bp as vms_bp\n"
	    "\tflask_app.register_blueprint(vms_bp)\n"
	    "\t# guardian-vms: begin (guardian-vm-setup: the Guardian VMs "
	    "plug-in; --uninstall restores this file)\n"
	    "\tfrom .guardian_vms import bp as guardian_vms_bp\n"
	    "\tflask_app.register_blueprint(guardian_vms_bp)\n"
	    "\t# guardian-vms: end\n");
	again = guardian_edit_modules(out);
	ck_assert_str_eq(again, out);
	free(again);
	free(out);

	/* the dashboard: no anchor, two of them, an unclosed one: refused */
	ck_assert_ptr_null(guardian_edit_dashboard("<div>x</div>\n"));
	ck_assert_ptr_null(guardian_edit_dashboard(
	    "<div id=\"vm-section\"></div>\n<p id=\"vm-section\"></p>\n"));
	ck_assert_ptr_null(guardian_edit_dashboard(
	    "<div id=\"vm-section\">\n<div>\n</div>\n"));
	ck_assert_ptr_null(guardian_edit_dashboard(
	    "<p>text <div id=\"vm-section\"></div></p>\n"));
	/* no #vm-section: the include goes last into the nav-tiles grid;
	 * nested divs and a commented-out tag are counted right */
	out = guardian_edit_dashboard(
	    "<main>\n"
	    "  <div class=\"nav-tiles\">\n"
	    "    <div class=\"nav-tile\"><div>a</div></div>\n"
	    "    <!-- <div> -->\n"
	    "  </div>\n"
	    "</main>\n");
	ck_assert_ptr_nonnull(out);
	ck_assert_str_eq(out,
	    "<main>\n"
	    "  <div class=\"nav-tiles\">\n"
	    "    <div class=\"nav-tile\"><div>a</div></div>\n"
	    "    <!-- <div> -->\n"
	    "      <!-- guardian-vms: begin: the VM tile added by "
	    "guardian-vm-setup; --uninstall restores this file -->\n"
	    "      {% include \"vms/tile.html\" %}\n"
	    "      <!-- guardian-vms: end -->\n"
	    "  </div>\n"
	    "</main>\n");
	again = guardian_edit_dashboard(out);
	ck_assert_str_eq(again, out);
	free(again);
	free(out);
}
END_TEST

/* The stylesheets found in TEXT, comma-separated; SKIPPED gets the notes
 * ('|'-separated), when not NULL. */
static char *
css_of(const char *text, char **skipped)
{
	struct host_css css;
	char *s = xstrdup(""), *t;
	size_t i;

	memset(&css, 0, sizeof(css));
	guardian_host_css(text, &css);
	for (i = 0; i < css.n; i++) {
		xasprintf(&t, "%s%s%s", s, i > 0 ? "," : "", css.name[i]);
		free(s);
		s = t;
	}
	if (skipped != NULL) {
		*skipped = xstrdup("");
		for (i = 0; i < css.nskipped && i < GUARDIAN_CSS_SKIPS; i++) {
			xasprintf(&t, "%s%s%s", *skipped, i > 0 ? "|" : "",
			    css.skipped[i]);
			free(*skipped);
			*skipped = t;
		}
		if (css.nskipped > GUARDIAN_CSS_SKIPS) {
			xasprintf(&t, "%s|+%zu", *skipped,
			    css.nskipped - GUARDIAN_CSS_SKIPS);
			free(*skipped);
			*skipped = t;
		}
		if (css.nforeign > 0) {
			xasprintf(&t, "%s|%zu foreign", *skipped, css.nforeign);
			free(*skipped);
			*skipped = t;
		}
	}
	return s;
}

#define CSS_EQ(text, want)                                                     \
	do {                                                                   \
		char *got_ = css_of(text, NULL);                               \
		ck_assert_str_eq(got_, want);                                  \
		free(got_);                                                    \
	} while (0)

/* How Guardian's templates link stylesheets, and what is not taken. */
START_TEST(test_guardian_host_css)
{
	char *got, *skipped;

	/* Guardian's own shape, then either quotes and a plain path */
	CSS_EQ("<link rel=\"stylesheet\" href=\"{{ url_for('static', "
	       "filename='css/main.css') }}\">\n",
	    "css/main.css");
	CSS_EQ("  <link rel='stylesheet' href='{{ url_for(\"static\", "
	       "filename=\"css/a.css\") }}' />\n"
	       "<LINK HREF=\"{{url_for('static',filename='b.css')}}\" "
	       "REL=\"Stylesheet\">\n"
	       "<link href=\"{{ url_for(\"static\", filename=\"c-1_x.css\") "
	       "}}\" rel=\"stylesheet\">\n"
	       "<link rel=stylesheet href=/static/css/d.css>\n"
	       "<link rel=\"stylesheet\" href=\"/static/e.min.css\"><link "
	       "rel=\"stylesheet\" href=\"/static/f.css\">\n",
	    "css/a.css,b.css,c-1_x.css,css/d.css,e.min.css,f.css");
	/* not stylesheets: ignored without a word */
	got = css_of(
	    "<link rel=\"icon\" href=\"/static/x.css\">\n"
	    "<link rel=\"preconnect\" href=\"https://x\">\n"
	    "<link rel=\"alternate stylesheet\" href=\"/static/y.css\">\n"
	    "<link rel=\"stylesheets\" href=\"/static/z.css\">\n"
	    "<linked rel=\"stylesheet\" href=\"/static/z.css\">\n",
	    &skipped);
	ck_assert_str_eq(got, "");
	ck_assert_str_eq(skipped, "");
	free(got);
	free(skipped);
	/* comments, <script> and <style> text are no tags; Jinja comments
	 * hide what they hold */
	CSS_EQ("<!-- <link rel=\"stylesheet\" href=\"/static/old.css\"> -->\n"
	       "<!--\n<link rel=\"stylesheet\" href=\"/static/old2.css\">\n"
	       "-->\n"
	       "{# <link rel=\"stylesheet\" href=\"/static/old3.css\"> #}\n"
	       "<script>\nx = '<link rel=\"stylesheet\" "
	       "href=\"/static/js.css\">';\n</script>\n"
	       "<style>/* <link rel=\"stylesheet\" href=\"/static/s.css\"> */"
	       "</style>\n"
	       "<link rel=\"stylesheet\" href=\"/static/real.css\">\n",
	    "real.css");
	/* a long template: many expressions (past the 256 held apart, the
	 * rest are left to the HTML parser), and one never closed */
	{
		FILE *f;
		char *big = NULL;
		size_t len;
		int i;

		ck_assert_ptr_nonnull(f = open_memstream(&big, &len));
		for (i = 0; i < 300; i++)
			fprintf(f, "<p>{{ item%d | e }}</p>\n", i);
		fputs("<link rel=\"stylesheet\" href=\"{{ url_for('static', "
		      "filename='css/late.css') }}\">\n<p>{{ open\n",
		    f);
		fclose(f);
		got = css_of(big, &skipped);
		ck_assert_str_eq(got, "css/late.css");
		ck_assert_str_eq(skipped, "");
		free(got);
		free(skipped);
		free(big);
	}
	/* duplicates once; at most GUARDIAN_CSS_MAX */
	CSS_EQ("<link rel=\"stylesheet\" href=\"/static/a.css\">\n"
	       "<link rel=\"stylesheet\" href=\"{{ url_for('static', "
	       "filename='a.css') }}\">\n",
	    "a.css");
	got = css_of("<link rel=stylesheet href=/static/1.css>\n"
		     "<link rel=stylesheet href=/static/2.css>\n"
		     "<link rel=stylesheet href=/static/3.css>\n"
		     "<link rel=stylesheet href=/static/4.css>\n"
		     "<link rel=stylesheet href=/static/5.css>\n"
		     "<link rel=stylesheet href=/static/6.css>\n"
		     "<link rel=stylesheet href=/static/7.css>\n"
		     "<link rel=stylesheet href=/static/8.css>\n"
		     "<link rel=stylesheet href=/static/9.css>\n",
	    &skipped);
	ck_assert_str_eq(
	    got, "1.css,2.css,3.css,4.css,5.css,6.css,7.css,8.css");
	ck_assert_str_eq(skipped, "9.css: more than 8 stylesheets");
	free(got);
	free(skipped);

	/* other sites' (CDNs): not taken, counted; hostile or foreign
	 * paths: skipped, each with its reason */
	got = css_of(
	    "<link rel=\"stylesheet\" href=\"https://cdn.example/x.css\">\n"
	    "<link rel=\"stylesheet\" href=\"http://evil/static/x.css\">\n"
	    "<link rel=\"stylesheet\" href=\"//evil/x.css\">\n"
	    "<link rel=\"stylesheet\" href=\"/static/../secret.css\">\n"
	    "<link rel=\"stylesheet\" href=\"static/x.css\">\n"
	    "<link rel=\"stylesheet\" href=\"/other/x.css\">\n"
	    "<link rel=\"stylesheet\" href=\"javascript:x\">\n",
	    &skipped);
	ck_assert_str_eq(got, "");
	ck_assert_str_eq(skipped,
	    "/static/../secret.css: '..' in the path|"
	    "static/x.css: not in Guardian's static folder|"
	    "/other/x.css: not in Guardian's static folder|4 foreign");
	free(got);
	free(skipped);
	got = css_of("<link rel=\"stylesheet\" href=\"{{ url_for('static', "
		     "filename='/etc/x.css') }}\">\n"
		     "<link rel=\"stylesheet\" href=\"{{ url_for('static', "
		     "filename='a b.css') }}\">\n"
		     "<link rel=\"stylesheet\" href=\"/static/x.css?v=2\">\n"
		     "<link rel=\"stylesheet\" href=\"/static/x.js\">\n",
	    &skipped);
	ck_assert_str_eq(got, "");
	ck_assert_str_eq(skipped,
	    "{{ url_for('static', filename='/etc/x.css') }}: an absolute path|"
	    "{{ url_for('static', filename='a b.css') }}: a character outside "
	    "[A-Za-z0-9._/-]|"
	    "/static/x.css?v=2: a character outside [A-Za-z0-9._/-]|"
	    "/static/x.js: not a .css file");
	free(got);
	free(skipped);
	got =
	    css_of("<link rel=\"stylesheet\" href=\"{{ url_for('static', "
		   "filename='x.css', v=1) }}\">\n"
		   "<link rel=\"stylesheet\" href=\"{{ url_for('other', "
		   "filename='x.css') }}\">\n"
		   "<link rel=\"stylesheet\" href=\"{{ css_url }}\">\n"
		   "<link rel=\"stylesheet\" href=\"{{ url_for('static', "
		   "filename='x.css') }}{{ q }}\">\n"
		   "<link rel=\"stylesheet\" href=\"/static/.hidden/x.css\">\n",
		&skipped);
	ck_assert_str_eq(got, "");
	ck_assert_uint_eq(strlen(skipped) > 0, 1);
	ck_assert_ptr_nonnull(strstr(skipped,
	    "{{ url_for('static', filename='x.css', v=1) }}: not "
	    "url_for('static', filename=...)|"
	    "{{ url_for('other', filename='x.css') }}: not "
	    "url_for('static', filename=...)|"
	    "{{ css_url }}: not url_for('static', filename=...)|"));
	free(got);
	free(skipped);
	/* long hrefs are cut in the note; past GUARDIAN_CSS_SKIPS counted */
	got = css_of(
	    "<link rel=stylesheet href=/static/"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    ".css>\n"
	    "<link rel=stylesheet href=/static/a.js>\n"
	    "<link rel=stylesheet href=/static/b.js>\n"
	    "<link rel=stylesheet href=/static/c.js>\n"
	    "<link rel=stylesheet href=/static/d.js>\n",
	    &skipped);
	ck_assert_str_eq(got, "");
	ck_assert_str_eq(skipped,
	    "/static/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...: too "
	    "long|/static/a.js: not a .css file|/static/b.js: not a .css "
	    "file|/static/c.js: not a .css file|+1");
	free(got);
	free(skipped);
	/* read as a browser would (libxml2's HTML parser): a tag over two
	 * lines is a tag; an unclosed quote runs on into the next line's tag,
	 * and that value is refused; control bytes; no href */
	got = css_of("<link rel=\"stylesheet\"\n      href=\"/static/x.css\">\n"
		     "<link rel=\"stylesheet\" href=\"/static/y.css>\n"
		     "<link rel=\"stylesheet\" href=\"/static/z.css\">\n"
		     "<link rel=\"stylesheet\">\n",
	    &skipped);
	ck_assert_str_eq(got, "x.css");
	ck_assert_str_eq(skipped,
	    "/static/y.css>?<link rel=: a character outside [A-Za-z0-9._/-]|"
	    "<link rel=\"stylesheet\">: no href");
	free(got);
	free(skipped);
	got =
	    css_of("<link rel=\"stylesheet\" href=/static/\x01\xc3\xa9.css>\n",
		&skipped);
	ck_assert_str_eq(got, "");
	ck_assert_str_eq(
	    skipped, "/static/???.css: a character outside [A-Za-z0-9._/-]");
	free(got);
	free(skipped);
	CSS_EQ("", "");
	CSS_EQ("<link", "");
	CSS_EQ("<link rel=\"stylesheet\" href=\"{{", "");
	/* cut off at the end: libxml2 recovers the tag; the name is
	 * checked like any other */
	CSS_EQ("<link rel=\"stylesheet\" href=\"{{ url_for('static', "
	       "filename='x.css') }}",
	    "x.css");
	CSS_EQ("<link rel=\"stylesheet\" href=\"{{ url_for('static', "
	       "filename='../x.css') }}",
	    "");

	/* the Flask fixture's dashboard: what its app.py sets by hand */
	got = test_data_read("../guardian-fixture/templates/core/"
			     "dashboard.html");
	ck_assert_ptr_nonnull(got);
	CSS_EQ(got, "guardian.css");
	free(got);
}
END_TEST

/* Jinja's {% extends %} and {% include %}, one per line, names checked */
START_TEST(test_guardian_template_refs)
{
	char name[128];

	ck_assert(guardian_template_extends(
	    "{% extends \"layout/base.html\" %}\n", name, sizeof(name)));
	ck_assert_str_eq(name, "layout/base.html");
	ck_assert(guardian_template_extends(
	    "<!-- x -->\n  {%- extends 'base.html' -%}\n", name, sizeof(name)));
	ck_assert_str_eq(name, "base.html");
	ck_assert(!guardian_template_extends(
	    "{% extends layout %}\n", name, sizeof(name)));
	ck_assert(!guardian_template_extends(
	    "{% extends \"../base.html\" %}\n", name, sizeof(name)));
	ck_assert(!guardian_template_extends(
	    "{% extends \"/etc/base.html\" %}\n", name, sizeof(name)));
	ck_assert(!guardian_template_extends(
	    "{% extends \"base.txt\" %}\n", name, sizeof(name)));
	/* Jinja takes a statement over two lines too */
	ck_assert(guardian_template_extends(
	    "{% extends \"base.html\"\n%}\n", name, sizeof(name)));
	ck_assert(!guardian_template_extends(
	    "{# {% extends \"base.html\" %} #}\n", name, sizeof(name)));
	ck_assert(!guardian_template_extends(
	    "{% extendsx \"base.html\" %}\n", name, sizeof(name)));
	ck_assert(!guardian_template_extends(
	    "{% extends \"base.html\" %}\n", name, 5));
	ck_assert(guardian_template_includes(
	    "<section>{% include 'core/dashboard.html' %}</section>\n",
	    "core/dashboard.html"));
	ck_assert(guardian_template_includes(
	    "{% include 'a.html' %}\n{% include \"core/dashboard.html\" "
	    "ignore missing %}\n",
	    "core/dashboard.html"));
	ck_assert(!guardian_template_includes(
	    "{% include 'core/dashboard.html.bak' %}\n",
	    "core/dashboard.html"));
	ck_assert(!guardian_template_includes(NULL, "core/dashboard.html"));
}
END_TEST

/* Templates by name for guardian_find_host_css: "NAME\n" then the text. */
static char *
fake_template(const char *name, const void *arg)
{
	const char *const *t;
	size_t k = strlen(name);

	for (t = arg; *t != NULL; t++)
		if (strncmp(*t, name, k) == 0 && (*t)[k] == '\n')
			return xstrdup(*t + k + 1);
	return NULL;
}

static char *
found_css(const char *const *templates, char **skipped)
{
	struct host_css css;
	char *s = xstrdup(""), *t;
	size_t i;

	guardian_find_host_css(fake_template, templates, &css);
	for (i = 0; i < css.n; i++) {
		xasprintf(&t, "%s%s%s", s, i > 0 ? "," : "", css.name[i]);
		free(s);
		s = t;
	}
	*skipped = xstrdup("");
	for (i = 0; i < css.nskipped && i < GUARDIAN_CSS_SKIPS; i++) {
		xasprintf(
		    &t, "%s%s%s", *skipped, i > 0 ? "|" : "", css.skipped[i]);
		free(*skipped);
		*skipped = t;
	}
	return s;
}

#define LINK(n) "<link rel=\"stylesheet\" href=\"/static/" n "\">\n"

/* Which templates around the dashboard are read, in which order. */
START_TEST(test_guardian_find_host_css)
{
	char *got, *skipped;
	/* Guardian's shape: base.html includes the dashboard (a fragment) */
	const char *guardian[] = {"core/dashboard.html\n" LINK("dash.css"),
	    "base.html\n" LINK(
		"main.css") "{% include 'core/dashboard.html' %}\n",
	    NULL};
	/* a base.html that does not include the dashboard: not read */
	const char *other_base[] = {
	    "core/dashboard.html\n<p>\n", "base.html\n" LINK("main.css"), NULL};
	/* extends, two levels deep: parents first */
	const char *chain[] = {
	    "core/dashboard.html\n{% extends \"layout/page.html\" %}\n" LINK(
		"dash.css"),
	    "layout/page.html\n{% extends 'layout/root.html' %}\n" LINK(
		"page.css") LINK("dash.css"),
	    "layout/root.html\n" LINK("root.css"),
	    "base.html\n" LINK(
		"base.css") "{% include 'core/dashboard.html' %}\n",
	    NULL};
	/* extends itself around; and a parent that is not there */
	const char *loop[] = {
	    "core/dashboard.html\n{% extends 'a.html' %}\n" LINK("d.css"),
	    "a.html\n{% extends 'core/dashboard.html' %}\n" LINK("a.css"),
	    NULL};
	const char *missing[] = {
	    "core/dashboard.html\n{% extends 'gone.html' %}\n" LINK("d.css"),
	    "base.html\n" LINK(
		"base.css") "{% include 'core/dashboard.html' %}\n",
	    NULL};
	const char *none[] = {"base.html\n" LINK("base.css"), NULL};

	got = found_css(guardian, &skipped);
	ck_assert_str_eq(got, "main.css,dash.css");
	ck_assert_str_eq(skipped, "");
	free(got);
	free(skipped);
	got = found_css(other_base, &skipped);
	ck_assert_str_eq(got, "");
	free(got);
	free(skipped);
	got = found_css(chain, &skipped);
	ck_assert_str_eq(got, "root.css,page.css,dash.css");
	ck_assert_str_eq(skipped, "");
	free(got);
	free(skipped);
	got = found_css(loop, &skipped);
	ck_assert_str_eq(got, "a.css,d.css");
	ck_assert_str_eq(
	    skipped, "templates/core/dashboard.html: extended twice");
	free(got);
	free(skipped);
	got = found_css(missing, &skipped);
	ck_assert_str_eq(got, "d.css");
	ck_assert_str_eq(skipped, "templates/gone.html: not readable");
	free(got);
	free(skipped);
	got = found_css(none, &skipped);
	ck_assert_str_eq(got, "");
	ck_assert_str_eq(skipped, "");
	free(got);
	free(skipped);
}
END_TEST

/* The drop-in names the stylesheets found, and has no such line without. */
START_TEST(test_webui_dropin_css)
{
	struct plan p;
	char *s;

	memset(&p, 0, sizeof(p));
	p.datadir = (char *)"/d";
	s = gen_webui_dropin(&p);
	ck_assert_ptr_null(strstr(s, "GUARDIAN_VMS_HOST_CSS"));
	ck_assert_ptr_nonnull(
	    strstr(s, "Environment=GUARDIAN_VMS_WEB_ASSETS=/d/web-assets\n"));
	free(s);
	strcpy(p.host_css.name[0], "css/main.css");
	strcpy(p.host_css.name[1], "css/extra.css");
	p.host_css.n = 2;
	s = gen_webui_dropin(&p);
	ck_assert_ptr_nonnull(strstr(s,
	    "\nEnvironment=GUARDIAN_VMS_HOST_CSS=css/main.css,css/extra.css\n"));
	free(s);
}
END_TEST

START_TEST(test_facts_parse)
{
	struct facts f;
	char *text;

	memset(&f, 0, sizeof(f));
	text = test_data_read("installer/guardian-root/etc/dnsmasq.d/"
			      "guardian.conf");
	ck_assert_ptr_nonnull(text);
	facts_parse_dnsmasq(text, &f);
	free(text);
	ck_assert_str_eq(f.dnsmasq_iface, "br0");
	ck_assert(f.has_pool);
	ck_assert_uint_eq(f.pool.lo, 0xc0a80402);
	ck_assert_uint_eq(f.pool.hi, 0xc0a8041e);
	facts_parse_dnsmasq("interface=br0,eth1\n"
			    "dhcp-range=set:lan,10.0.0.10,10.0.0.20,12h\n",
	    &f);
	ck_assert_str_eq(f.dnsmasq_iface, "br0");
	ck_assert_uint_eq(f.pool.lo, 0x0a00000a);
	facts_parse_dnsmasq("dhcp-range=10.0.0.10,static\n", &f);
	ck_assert(!f.has_pool);
	facts_parse_install_conf(
	    "X=1\nexport HOOKPROBE_TIER='guardian' # x\n", &f);
	ck_assert_str_eq(f.tier, "guardian");
}
END_TEST

/* facts_read on the Guardian-shaped root: its base.html's stylesheets */
START_TEST(test_facts_host_css)
{
	char *root = test_data_path("installer/guardian-root");
	struct facts f;

	ck_assert_int_eq(facts_read(root, NULL, &f), 0);
	ck_assert(f.guardian);
	ck_assert_uint_eq(f.host_css.n, 1);
	ck_assert_str_eq(f.host_css.name[0], "css/main.css");
	/* Google Fonts and FontAwesome from CDNs */
	ck_assert_uint_eq(f.host_css.nforeign, 2);
	ck_assert_uint_eq(f.host_css.nskipped, 0);
	free(root);
}
END_TEST

/* The consent screen's facts from the shipped Home Assistant template. */
START_TEST(test_template_image)
{
	struct deploy_image im;
	char *top = test_data_path("../.."), *err = NULL;

	ck_assert_int_eq(
	    deploy_template_image(top, GVM_HA_TEMPLATE, "aarch64", &im, &err),
	    0);
	ck_assert_ptr_nonnull(im.url);
	ck_assert(str_has_prefix(im.url, "https://"));
	ck_assert_ptr_nonnull(strstr(im.url, "aarch64"));
	ck_assert_ptr_nonnull(im.version);
	ck_assert(!im.pinned); /* Home Assistant publishes no checksums */
	deploy_image_free(&im);
	ck_assert_int_eq(
	    deploy_template_image(top, GVM_HA_TEMPLATE, "riscv64", &im, &err),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "no image for riscv64"));
	ck_assert_ptr_null(im.url);
	ck_assert_int_eq(
	    deploy_template_image(top, "no-such", "aarch64", &im, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "templates/no-such.json"));
	free(err);
	free(top);
}
END_TEST

/* A file (or, with TARGET, a symlink) under ROOT, parents made. */
static void
stage(const char *root, const char *rel, const char *target)
{
	char *p, *k;

	xasprintf(&p, "%s/%s", root, rel);
	for (k = p + strlen(root) + 1; (k = strchr(k, '/')) != NULL; k++) {
		*k = '\0';
		ck_assert(mkdir(p, 0755) == 0 || errno == EEXIST);
		*k = '/';
	}
	if (target != NULL)
		ck_assert_int_eq(symlink(target, p), 0);
	else
		ck_assert_int_eq(write_file_atomic(p, "x\n", 2, 0644), 0);
	free(p);
}

static void
unstage(const char *root, const char *rel)
{
	char *p;

	xasprintf(&p, "%s/%s", root, rel);
	ck_assert(unlink(p) == 0 || rmdir(p) == 0);
	free(p);
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

#define WANTS "etc/systemd/system/multi-user.target.wants/"

/* How a new bridge is persisted: networkd, then NetworkManager, ifupdown. */
START_TEST(test_facts_netcfg)
{
	char root[] = "/tmp/gvm-facts-XXXXXX", *p;
	struct facts f;

	ck_assert_ptr_nonnull(mkdtemp(root));
	ck_assert_int_eq(facts_read(root, NULL, &f), 0);
	ck_assert_int_eq(f.netcfg, NETCFG_NONE);
	stage(root, "etc/network/interfaces", NULL);
	ck_assert_int_eq(facts_read(root, NULL, &f), 0);
	ck_assert_int_eq(f.netcfg, NETCFG_IFUPDOWN);
	/* enabled: the link's absolute target is not under ROOT */
	stage(root, WANTS "NetworkManager.service",
	    "/lib/systemd/system/NetworkManager.service");
	ck_assert_int_eq(facts_read(root, NULL, &f), 0);
	ck_assert_int_eq(f.netcfg, NETCFG_NM);
	unstage(root, WANTS "NetworkManager.service");
	ck_assert_int_eq(facts_read(root, NULL, &f), 0);
	ck_assert_int_eq(f.netcfg, NETCFG_IFUPDOWN);
	/* running */
	xasprintf(&p, "%s/run", root);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	free(p);
	xasprintf(&p, "%s/run/NetworkManager", root);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	free(p);
	ck_assert_int_eq(facts_read(root, NULL, &f), 0);
	ck_assert_int_eq(f.netcfg, NETCFG_NM);
	stage(root, WANTS "systemd-networkd.service", NULL);
	ck_assert_int_eq(facts_read(root, NULL, &f), 0);
	ck_assert_int_eq(f.netcfg, NETCFG_NETWORKD);

	unstage(root, WANTS "systemd-networkd.service");
	unstage(root, WANTS);
	unstage(root, "etc/systemd/system");
	unstage(root, "etc/systemd");
	unstage(root, "etc/network/interfaces");
	unstage(root, "etc/network");
	unstage(root, "etc");
	unstage(root, "run/NetworkManager");
	unstage(root, "run");
	ck_assert_int_eq(rmdir(root), 0);
}
END_TEST

/*
 * The keyfile written under --root: mode 0600 (a looser file already there
 * is tightened), identical bytes on a re-run, in the manifest, and removed
 * exactly by --uninstall.
 */
START_TEST(test_nm_keyfile_apply)
{
	char root[] = "/tmp/gvm-nm-XXXXXX", *err = NULL, *path, *text;
	const char *rel = "etc/NetworkManager/system-connections/"
			  "br0.nmconnection";
	struct facts f;
	struct answers a;
	struct plan *p;
	struct manifest *m;
	struct apply_opts o;
	struct stat st;

	ck_assert_ptr_nonnull(mkdtemp(root));
	memset(&f, 0, sizeof(f));
	f.arch = ARCH_X86_64;
	strcpy(f.machine, "x86_64");
	f.ram_mb = 16000;
	f.netcfg = NETCFG_NM;
	strcpy(f.datadir, GVM_DATADIR);
	answers_init(&a);
	a.bridge_addr = xstrdup("10.20.0.1/24");
	p = plan_build(&f, &a);
	ck_assert_int_eq(p->verdict, 0);
	ck_assert_int_eq(plan_only(p, "bridge"), 0);
	memset(&o, 0, sizeof(o));
	o.root = root;
	o.files_only = true;
	o.skip_apt = true;
	m = manifest_new();
	ck_assert_msg(steps_apply(p, m, &o, &err) == 0, "%s", err);
	xasprintf(&path, "%s/%s", root, rel);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	text = read_file(path, 1 << 20, NULL);
	ck_assert(golden_check(
	    "installer/standalone-nm.etc_NetworkManager_system-connections_"
	    "br0.nmconnection",
	    text));
	free(text);
	ck_assert_int_ge(manifest_find(m, "file",
			     "/"
			     "etc/NetworkManager/"
			     "system-connections/br0.nmconnection"),
	    0);
	/* made readable by others: the re-run makes it private again */
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_msg(steps_apply(p, m, &o, &err) == 0, "%s", err);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	ck_assert_msg(steps_uninstall(m, &o, &err) == 0, "%s", err);
	ck_assert_int_eq(stat(path, &st), -1);
	free(path);
	manifest_free(m);
	plan_free(p);
	answers_clear(&a);
	ck_assert_int_eq(nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}
END_TEST

Suite *
suite_plan(void)
{
	Suite *s = suite_create("plan");
	TCase *tc = tcase_create("plan");

	tcase_add_test(tc, test_ip4_parse);
	tcase_add_test(tc, test_vm_block_golden);
	tcase_add_test(tc, test_plan_guardian);
	tcase_add_test(tc, test_plan_standalone);
	tcase_add_test(tc, test_facts_parse);
	tcase_add_test(tc, test_facts_netcfg);
	tcase_add_test(tc, test_nm_keyfile_apply);
	tcase_add_test(tc, test_guardian_edits);
	tcase_add_test(tc, test_guardian_host_css);
	tcase_add_test(tc, test_guardian_template_refs);
	tcase_add_test(tc, test_guardian_find_host_css);
	tcase_add_test(tc, test_webui_dropin_css);
	tcase_add_test(tc, test_facts_host_css);
	tcase_add_test(tc, test_template_image);
	suite_add_tcase(s, tc);
	return s;
}
