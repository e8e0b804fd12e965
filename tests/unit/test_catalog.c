/*
 * vmmod/catalog.c: the shipped templates/ all load, bad template files are
 * refused with a reason (tests/data/catalog/bad/NAME.json -> NAME.err) and
 * skipped when a directory is loaded, GET /api/vms/templates answers per
 * host arch (golden JSON), and template + create request -> vm_spec ->
 * domain XML (golden tests/data/catalog/NAME.xml) and cloud-init user-data.
 * REGENERATE=1 rewrites the expectations.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmmod.h"
#include "testutil.h"

static struct catalog *
load_shipped(enum vm_arch arch)
{
	char *dir = test_data_path("../../templates");
	char *app = test_data_path("catalog/appliances");
	struct catalog *c = catalog_load(dir, arch, app);

	ck_assert_msg(c != NULL, "cannot load %s", dir);
	free(dir);
	free(app);
	return c;
}

/* Every shipped template is valid: none is skipped. */
START_TEST(test_catalog_shipped)
{
	static const char *const ids[] = {"demo", "homeassistant",
	    "openmediavault", "truenas-scale", "ubuntu-server"};
	struct catalog *c = load_shipped(VM_ARCH_AARCH64);
	const struct catalog_template *t;
	struct dirent *de;
	char *dir = test_data_path("../../templates");
	DIR *d = opendir(dir);
	size_t i, files = 0;

	while ((de = readdir(d)) != NULL)
		if (strstr(de->d_name, ".json") != NULL && de->d_name[0] != '.')
			files++;
	closedir(d);
	free(dir);
	ck_assert_uint_eq(c->n, files);
	ck_assert_uint_eq(c->n, nitems(ids));
	for (i = 0; i < nitems(ids); i++)
		ck_assert_msg(catalog_find(c, ids[i]) != NULL, "%s", ids[i]);
	ck_assert_ptr_null(catalog_find(c, "nope"));

	t = catalog_find(c, "homeassistant");
	ck_assert_uint_eq(t->memory_mb, 2048);
	ck_assert_uint_eq(t->vcpus, 2);
	ck_assert_uint_eq(t->disk_gb, 32);
	ck_assert_uint_eq(t->web_port, 8123);
	ck_assert_str_eq(t->dns_name, "homeassistant");
	ck_assert_ptr_nonnull(catalog_image(c, t, NULL));
	ck_assert_ptr_null(catalog_image(c, t, NULL)->sha256);
	ck_assert(catalog_image(c, t, NULL)->xz);
	catalog_free(c);
}
END_TEST

/* The demo template's digest comes from the sidecar file. */
START_TEST(test_catalog_sidecar)
{
	struct catalog *c = load_shipped(VM_ARCH_X86_64);
	const struct catalog_template *t = catalog_find(c, "demo");
	const struct catalog_image *im;
	const char *why = NULL;

	im = catalog_image(c, t, &why);
	ck_assert_ptr_nonnull(im);
	ck_assert_str_eq(im->sha256,
	    "28a756327edec9747cfdb34810db89a8ef904a2df4ee6cd171985da881e12cb0");
	ck_assert(str_has_prefix(im->url, "file:///"));
	ck_assert_ptr_nonnull(strstr(im->url, "/x86_64/disk.qcow2.xz"));
	catalog_free(c);

	/* aarch64 was not built: unavailable, and the reason says so. */
	c = load_shipped(VM_ARCH_AARCH64);
	t = catalog_find(c, "demo");
	ck_assert_ptr_null(catalog_image(c, t, &why));
	ck_assert_ptr_nonnull(strstr(why, "missing"));
	catalog_free(c);
}
END_TEST

static void
templates_golden(enum vm_arch arch, const char *rel)
{
	struct catalog *c = load_shipped(arch);
	struct catalog_host h = {.ram_budget_mb = 6144,
	    .ram_committed_mb = 2048,
	    .disk_free_bytes = 40ULL << 30};
	json_object *o = catalog_templates_json(c, &h);
	char *text;

	xasprintf(&text, "%s\n",
	    json_object_to_json_string_ext(o,
		JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
		    JSON_C_TO_STRING_NOSLASHESCAPE));
	ck_assert_msg(golden_check(rel, text), "%s differs", rel);
	free(text);
	json_object_put(o);
	catalog_free(c);
}

START_TEST(test_catalog_templates_json)
{
	templates_golden(VM_ARCH_AARCH64, "catalog/templates-aarch64.json");
	templates_golden(VM_ARCH_X86_64, "catalog/templates-x86_64.json");
}
END_TEST

/* Host facts: RAM budget and free disk decide fits_*. */
START_TEST(test_catalog_fits)
{
	struct catalog *c = load_shipped(VM_ARCH_AARCH64);
	struct catalog_host h = {.ram_budget_mb = 4000,
	    .ram_committed_mb = 2000,
	    .disk_free_bytes = 10ULL << 30};
	json_object *o = catalog_templates_json(c, &h), *a, *t, *v;
	size_t i;

	json_object_object_get_ex(o, "templates", &a);
	for (i = 0; i < json_object_array_length(a); i++) {
		t = json_object_array_get_idx(a, i);
		json_object_object_get_ex(t, "id", &v);
		if (strcmp(json_object_get_string(v), "homeassistant") != 0)
			continue;
		json_object_object_get_ex(t, "fits_ram", &v);
		ck_assert(!json_object_get_boolean(v)); /* 2000 + 2048 > 4000 */
		json_object_object_get_ex(t, "fits_disk", &v);
		ck_assert(!json_object_get_boolean(v)); /* 32 GB > 10 GB */
	}
	json_object_put(o);
	h.ram_committed_mb = 0;
	h.disk_free_bytes = UINT64_MAX; /* unknown */
	o = catalog_templates_json(c, &h);
	json_object_object_get_ex(o, "templates", &a);
	t = json_object_array_get_idx(a, 1); /* homeassistant */
	json_object_object_get_ex(t, "fits_ram", &v);
	ck_assert(json_object_get_boolean(v));
	json_object_object_get_ex(t, "fits_disk", &v);
	ck_assert(json_object_get_boolean(v));
	json_object_put(o);
	catalog_free(c);
}
END_TEST

/* Each bad file is refused with the reason in NAME.err. */
START_TEST(test_catalog_bad)
{
	struct catalog_template *t;
	struct dirent *de;
	char *dir = test_data_path("catalog/bad"), *rel, *json, *err, *msg, *id;
	DIR *d = opendir(dir);
	unsigned cases = 0, failed = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		id = xstrndup(de->d_name, len - 5);
		xasprintf(&rel, "catalog/bad/%s", de->d_name);
		json = test_data_read(rel);
		free(rel);
		err = NULL;
		t = catalog_template_parse(id, json, "/nonexistent", &err);
		if (t != NULL) {
			fprintf(stderr, "%s: accepted\n", id);
			failed++;
			catalog_template_free(t);
		} else {
			xasprintf(&rel, "catalog/bad/%s.err", id);
			xasprintf(&msg, "%s\n", err);
			if (!golden_check(rel, msg))
				failed++;
			free(msg);
			free(rel);
		}
		cases++;
		free(err);
		free(json);
		free(id);
	}
	closedir(d);
	free(dir);
	ck_assert_uint_ge(cases, 30);
	ck_assert_msg(failed == 0, "%u of %u bad templates", failed, cases);
}
END_TEST

/* Bad files in a directory are skipped; the good one loads. */
START_TEST(test_catalog_mixed_dir)
{
	char *dir = test_data_path("catalog/mixed");
	struct catalog *c = catalog_load(dir, VM_ARCH_X86_64, NULL);

	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->n, 1);
	ck_assert_str_eq(c->v[0]->id, "good");
	catalog_free(c);
	free(dir);
	ck_assert_ptr_null(
	    catalog_load("/nonexistent/templates", VM_ARCH_X86_64, NULL));
}
END_TEST

static const struct spec_case {
	const char *golden;
	const char *tpl;
	enum vm_arch arch;
	enum vm_virt virt;
	const char *name;
	unsigned memory_mb;
	const char *seed;
	const char *err; /* NULL: must build */
} spec_cases[] = {
    {"homeassistant-aarch64", "homeassistant", VM_ARCH_AARCH64, VM_VIRT_KVM,
	"homeassistant", 0, NULL, NULL},
    {"homeassistant-x86_64", "homeassistant", VM_ARCH_X86_64, VM_VIRT_KVM,
	"homeassistant", 4096, NULL, NULL},
    {"ubuntu-server-aarch64-tcg", "ubuntu-server", VM_ARCH_AARCH64,
	VM_VIRT_QEMU, "ubuntu", 0, "/pool/ubuntu-seed.iso", NULL},
    {"openmediavault-aarch64", "openmediavault", VM_ARCH_AARCH64, VM_VIRT_KVM,
	"nas", 0, "/pool/nas-seed.iso", NULL},
    {"truenas-scale-x86_64", "truenas-scale", VM_ARCH_X86_64, VM_VIRT_KVM,
	"truenas", 0, "/pool/TrueNAS-SCALE-25.04.0.iso", NULL},
    {"demo-x86_64-tcg", "demo", VM_ARCH_X86_64, VM_VIRT_QEMU, "demo", 0, NULL,
	NULL},
    /* refused */
    {NULL, "truenas-scale", VM_ARCH_AARCH64, VM_VIRT_KVM, "truenas", 0,
	"/pool/t.iso",
	"template truenas-scale: not available on aarch64: TrueNAS SCALE has "
	"no arm64 build"},
    {NULL, "homeassistant", VM_ARCH_AARCH64, VM_VIRT_KVM, "homeassistant", 1024,
	NULL, "memory_mb: Home Assistant OS needs at least 2048 MB"},
    {NULL, "homeassistant", VM_ARCH_AARCH64, VM_VIRT_KVM, "Home<b>", 0, NULL,
	"name: must match ^[a-z0-9][a-z0-9-]{0,62}$ and not be a route word"},
    {NULL, "homeassistant", VM_ARCH_AARCH64, VM_VIRT_KVM, "status", 0, NULL,
	"name: must match ^[a-z0-9][a-z0-9-]{0,62}$ and not be a route word"},
    {NULL, "ubuntu-server", VM_ARCH_AARCH64, VM_VIRT_KVM, "ubuntu", 0, NULL,
	"ubuntu-server: needs a cloud-init seed ISO"},
};

START_TEST(test_catalog_spec)
{
	const struct spec_case *sc = &spec_cases[_i];
	struct catalog *c = load_shipped(sc->arch);
	const struct catalog_template *t = catalog_find(c, sc->tpl);
	struct catalog_create req = {0};
	struct vm_spec *spec;
	char *disk, *nvram, *xml, *err = NULL, *rel;

	xasprintf(&disk, "/pool/%s.qcow2", sc->name);
	xasprintf(&nvram, "/var/lib/vmmod/nvram/%s_VARS.fd", sc->name);
	req.name = sc->name;
	req.memory_mb = sc->memory_mb;
	req.virt = sc->virt;
	req.mac = "52:54:00:04:18:18";
	req.ip = "192.168.4.24";
	req.disk = disk;
	req.nvram = nvram;
	req.seed_iso = sc->seed;
	spec = catalog_spec(c, t, &req, &err);
	if (sc->err != NULL) {
		ck_assert_ptr_null(spec);
		ck_assert_str_eq(err, sc->err);
	} else {
		ck_assert_msg(spec != NULL, "%s: %s", sc->golden, err);
		xml = domxml_build(spec, &err);
		ck_assert_msg(xml != NULL, "%s: %s", sc->golden, err);
		xasprintf(&rel, "catalog/%s.xml", sc->golden);
		ck_assert_msg(golden_check(rel, xml), "%s differs", rel);
		ck_assert_ptr_nonnull(strstr(xml, "secure=\"no\""));
		free(rel);
		free(xml);
	}
	free(err);
	vm_spec_free(spec);
	free(disk);
	free(nvram);
	catalog_free(c);
}
END_TEST

START_TEST(test_catalog_user_data)
{
	static const char *const keys[] = {
	    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB4 alice@laptop", NULL};
	static const char *const bad_keys[] = {"ssh-rsa AAA\nruncmd: x", NULL};
	struct catalog *c = load_shipped(VM_ARCH_AARCH64);
	const struct catalog_template *ub = catalog_find(c, "ubuntu-server");
	const struct catalog_template *omv = catalog_find(c, "openmediavault");
	const struct catalog_template *ha = catalog_find(c, "homeassistant");
	struct catalog_create req = {.name = "ubuntu"};
	char *ud, *err = NULL;

	/* needs_login: a user and a password or key */
	ck_assert_ptr_null(catalog_user_data(ub, &req, &err));
	ck_assert_str_eq(err,
	    "cloud_init: Ubuntu Server 24.04 LTS needs a "
	    "user and a password or SSH key");
	free(err);
	req.user = "alice";
	req.password = "correct horse \"battery\"";
	req.ssh_keys = keys;
	ud = catalog_user_data(ub, &req, &err);
	ck_assert_msg(ud != NULL, "%s", err);
	ck_assert(golden_check("catalog/ubuntu-server.user-data", ud));
	free(ud);

	/* hostile input never reaches the YAML as text */
	req.ssh_keys = bad_keys;
	ck_assert_ptr_null(catalog_user_data(ub, &req, &err));
	free(err);
	req.ssh_keys = NULL;
	req.user = "root";
	ck_assert_ptr_null(catalog_user_data(ub, &req, &err));
	free(err);
	req.user = "al ice";
	ck_assert_ptr_null(catalog_user_data(ub, &req, &err));
	free(err);
	req.user = "alice";
	req.password = "short";
	ck_assert_ptr_null(catalog_user_data(ub, &req, &err));
	free(err);

	/* OMV needs no login; HAOS has no cloud-init */
	memset(&req, 0, sizeof(req));
	req.name = "nas";
	ud = catalog_user_data(omv, &req, &err);
	ck_assert_msg(ud != NULL, "%s", err);
	ck_assert(golden_check("catalog/openmediavault.user-data", ud));
	free(ud);
	ck_assert_ptr_null(catalog_user_data(ha, &req, &err));
	free(err);
	catalog_free(c);
}
END_TEST

Suite *
suite_catalog(void)
{
	Suite *s = suite_create("catalog");
	TCase *tc = tcase_create("catalog");

	tcase_add_test(tc, test_catalog_shipped);
	tcase_add_test(tc, test_catalog_sidecar);
	tcase_add_test(tc, test_catalog_templates_json);
	tcase_add_test(tc, test_catalog_fits);
	tcase_add_test(tc, test_catalog_bad);
	tcase_add_test(tc, test_catalog_mixed_dir);
	tcase_add_loop_test(tc, test_catalog_spec, 0, nitems(spec_cases));
	tcase_add_test(tc, test_catalog_user_data);
	suite_add_tcase(s, tc);
	return s;
}
