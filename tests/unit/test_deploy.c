/*
 * deploy.c's pure parts: the create request's validation against a catalog
 * (tests/data/deploy/templates: "ha" unpinned disk image, "pinned", "cloud"
 * needing a login, "x86only"), the RAM guard's message, the Job JSON and the
 * cleanup plan.
 */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "vmmod.h"

static struct catalog *
load(enum vm_arch arch)
{
	char *dir = test_data_path("deploy/templates");
	struct catalog *c = catalog_load(dir, arch, "/nonexistent");

	free(dir);
	ck_assert_ptr_nonnull(c);
	return c;
}

/* Parses body; returns the status (0 when accepted), code into *codep. */
static int
parse(struct catalog *c, const char *body, struct deploy_req *r,
    const char **codep, char *msg)
{
	json_object *o = json_tokener_parse(body);
	struct api_error err = {0};
	int ret;

	ck_assert_msg(o != NULL, "bad test JSON %s", body);
	ret = deploy_req_parse(o, c, r, NULL, NULL, &err);
	json_object_put(o);
	*codep = ret == 0 ? NULL : err.code;
	if (msg != NULL)
		strcpy(msg, ret == 0 ? "" : err.msg);
	return ret == 0 ? 0 : err.status;
}

static void
refused(struct catalog *c, const char *body, int status, const char *code)
{
	struct deploy_req r;
	const char *got;
	char msg[256];
	int st = parse(c, body, &r, &got, msg);

	ck_assert_msg(st == status && got != NULL && strcmp(got, code) == 0,
	    "%s: %d %s (%s), want %d %s", body, st, got ? got : "-", msg,
	    status, code);
	deploy_req_clear(&r);
}

START_TEST(test_deploy_request_ok)
{
	struct catalog *c = load(VM_ARCH_AARCH64);
	struct deploy_req r;
	const char *code;

	/* template defaults fill what the request leaves out */
	ck_assert_int_eq(parse(c,
			     "{\"template\":\"pinned\",\"name\":\"vm1\","
			     "\"start\":true}",
			     &r, &code, NULL),
	    0);
	ck_assert_str_eq(r.name, "vm1");
	ck_assert_str_eq(r.template_id, "pinned");
	ck_assert_uint_eq(r.memory_mb, 512);
	ck_assert_uint_eq(r.vcpus, 2);
	ck_assert_uint_eq(r.disk_gb, 32);
	ck_assert(r.start);
	ck_assert(!r.autostart);
	deploy_req_clear(&r);

	/* the seed's "memory" is memory_mb */
	ck_assert_int_eq(parse(c,
			     "{\"template\":\"pinned\",\"name\":\"vm1\","
			     "\"memory\":1024,\"vcpus\":1,\"disk_gb\":4,"
			     "\"autostart\":true}",
			     &r, &code, NULL),
	    0);
	ck_assert_uint_eq(r.memory_mb, 1024);
	ck_assert_uint_eq(r.vcpus, 1);
	ck_assert_uint_eq(r.disk_gb, 4);
	ck_assert(r.autostart);
	deploy_req_clear(&r);

	/* unpinned with consent; USB devices */
	ck_assert_int_eq(parse(c,
			     "{\"template\":\"ha\",\"name\":\"homeassistant\","
			     "\"trust_unpinned\":true,\"devices\":{\"usb\":"
			     "[{\"vendor\":\"10c4\",\"product\":\"ea60\","
			     "\"serial\":\"0001\"}]}}",
			     &r, &code, NULL),
	    0);
	ck_assert(r.trust_unpinned);
	ck_assert_uint_eq(r.nusb, 1);
	ck_assert_uint_eq(r.usb[0].vendor, 0x10c4);
	ck_assert_uint_eq(r.usb[0].product, 0xea60);
	ck_assert_str_eq(r.usb[0].serial, "0001");
	deploy_req_clear(&r);

	/* cloud-init login */
	ck_assert_int_eq(parse(c,
			     "{\"template\":\"cloud\",\"name\":\"u1\","
			     "\"cloud_init\":{\"user\":\"bob\","
			     "\"ssh_authorized_keys\":[\"ssh-ed25519 AAAA "
			     "bob\"]}}",
			     &r, &code, NULL),
	    0);
	ck_assert_str_eq(r.user, "bob");
	ck_assert_str_eq(r.ssh_keys[0], "ssh-ed25519 AAAA bob");
	ck_assert_ptr_null(r.ssh_keys[1]);
	deploy_req_clear(&r);
	catalog_free(c);
}
END_TEST

START_TEST(test_deploy_request_refused)
{
	struct catalog *c = load(VM_ARCH_AARCH64);

	refused(c, "{}", 400, "missing_field");
	refused(c, "{\"name\":\"a\"}", 400, "missing_field");
	refused(c, "{\"template\":\"nope\",\"name\":\"a\"}", 404,
	    "unknown_template");
	refused(c, "{\"template\":\"pinned\"}", 400, "missing_field");
	refused(c, "{\"template\":\"pinned\",\"name\":\"Bad_Name\"}", 400,
	    "invalid_name");
	refused(c, "{\"template\":\"pinned\",\"name\":\"templates\"}", 400,
	    "invalid_name");
	refused(c, "{\"template\":\"pinned\",\"name\":\"a\",\"x\":1}", 400,
	    "unknown_field");
	/* disks live only in our pool */
	refused(c,
	    "{\"template\":\"pinned\",\"name\":\"a\",\"disk_path\":"
	    "\"/etc/shadow\"}",
	    400, "disk_path_refused");
	/* bounds and types */
	refused(c, "{\"template\":\"pinned\",\"name\":\"a\",\"memory_mb\":32}",
	    400, "out_of_range");
	refused(c,
	    "{\"template\":\"pinned\",\"name\":\"a\",\"memory_mb\":\"512\"}",
	    400, "bad_type");
	refused(c,
	    "{\"template\":\"ha\",\"name\":\"a\",\"memory_mb\":1024,"
	    "\"trust_unpinned\":true}",
	    400, "out_of_range"); /* below the template's minimum */
	refused(c, "{\"template\":\"pinned\",\"name\":\"a\",\"vcpus\":0}", 400,
	    "out_of_range");
	refused(c, "{\"template\":\"pinned\",\"name\":\"a\",\"disk_gb\":99999}",
	    400, "out_of_range");
	refused(c, "{\"template\":\"pinned\",\"name\":\"a\",\"start\":1}", 400,
	    "bad_type");
	refused(c,
	    "{\"template\":\"pinned\",\"name\":\"a\",\"memory\":512,"
	    "\"memory_mb\":1024}",
	    400, "conflicting_fields");
	refused(c,
	    "{\"template\":\"pinned\",\"name\":\"a\",\"devices\":{\"pcie\":[]}}",
	    400, "unknown_field");
	refused(c,
	    "{\"template\":\"pinned\",\"name\":\"a\",\"devices\":{\"pci\":"
	    "[\"00:02.0\"]}}",
	    400, "bad_device");
	refused(c,
	    "{\"template\":\"pinned\",\"name\":\"a\",\"devices\":{\"pci\":"
	    "[\"0000:00:02.0\",\"0000:00:02.0\"]}}",
	    400, "bad_device");
	refused(c,
	    "{\"template\":\"pinned\",\"name\":\"a\",\"devices\":{\"usb\":"
	    "[{\"vendor\":\"xyz\",\"product\":\"0001\"}]}}",
	    400, "bad_device");
	refused(c,
	    "{\"template\":\"pinned\",\"name\":\"a\",\"cloud_init\":"
	    "{\"user\":\"bob\"}}",
	    400, "no_cloud_init");
	/* a cloud image that needs a login */
	refused(
	    c, "{\"template\":\"cloud\",\"name\":\"a\"}", 400, "missing_field");
	/* unpinned without consent */
	refused(
	    c, "{\"template\":\"ha\",\"name\":\"a\"}", 409, "unpinned_image");
	refused(c,
	    "{\"template\":\"ha\",\"name\":\"a\",\"trust_unpinned\":false}",
	    409, "unpinned_image");
	/* no image for this arch */
	refused(c, "{\"template\":\"x86only\",\"name\":\"a\"}", 409,
	    "template_unavailable");
	catalog_free(c);
}
END_TEST

/* The security profile fields and the classification policy (issue 8.5). */
#define X86 "{\"template\":\"x86only\",\"name\":\"a\","
START_TEST(test_deploy_request_profiles)
{
	struct catalog *c = load(VM_ARCH_X86_64);
	struct catalog *arm = load(VM_ARCH_AARCH64);
	struct deploy_req r;
	const char *code;
	char msg[256];

	/* TOP SECRET with everything it needs */
	ck_assert_int_eq(parse(c,
			     X86 "\"classification\":\"TOP SECRET\","
				 "\"tpm\":true,\"secure_boot\":true,"
				 "\"disk_encryption\":true}",
			     &r, &code, NULL),
	    0);
	ck_assert_int_eq(r.classification, VM_CLASS_TOP_SECRET);
	ck_assert(r.tpm && r.secure_boot && r.disk_encryption);
	deploy_req_clear(&r);
	/* the seed's spelling; SECRET needs no encryption */
	ck_assert_int_eq(parse(c,
			     X86 "\"classification\":\"SECRET\","
				 "\"tpm\":true,\"secure_boot\":true}",
			     &r, &code, NULL),
	    0);
	ck_assert_int_eq(r.classification, VM_CLASS_SECRET);
	ck_assert(!r.disk_encryption);
	deploy_req_clear(&r);
	ck_assert_int_eq(parse(c,
			     X86 "\"classification\":\"TOP_SECRET\","
				 "\"tpm\":true,\"secure_boot\":true,"
				 "\"disk_encryption\":true}",
			     &r, &code, NULL),
	    0);
	ck_assert_int_eq(r.classification, VM_CLASS_TOP_SECRET);
	deploy_req_clear(&r);
	/* CUI: TPM recommended, not required; UNCLASSIFIED: nothing */
	ck_assert_int_eq(
	    parse(c, X86 "\"classification\":\"CUI\"}", &r, &code, NULL), 0);
	ck_assert_int_eq(r.classification, VM_CLASS_CUI);
	ck_assert(!r.tpm);
	deploy_req_clear(&r);
	/* PCI addresses: only where PCI passthrough is built (not arm64) */
	if (WITH_PCI) {
		ck_assert_int_eq(parse(c,
				     X86 "\"classification\":\"UNCLASSIFIED\","
					 "\"devices\":{\"pci\":[\"0000:00:02."
					 "0\"]}}",
				     &r, &code, NULL),
		    0);
		ck_assert_uint_eq(r.npci, 1);
		ck_assert_str_eq(r.pci[0], "0000:00:02.0");
	} else {
		ck_assert_int_eq(parse(c,
				     X86 "\"classification\":\"UNCLASSIFIED\","
					 "\"devices\":{\"pci\":[\"0000:00:02."
					 "0\"]}}",
				     &r, &code, NULL),
		    400);
		ck_assert_str_eq(code, "bad_device");
	}
	deploy_req_clear(&r);
	/* encryption alone, no classification */
	ck_assert_int_eq(
	    parse(c, X86 "\"disk_encryption\":true}", &r, &code, NULL), 0);
	ck_assert(r.disk_encryption);
	ck_assert_int_eq(r.classification, VM_CLASS_NONE);
	deploy_req_clear(&r);

	/* a test per rule */
	ck_assert_int_eq(parse(c,
			     X86 "\"classification\":\"SECRET\","
				 "\"secure_boot\":true}",
			     &r, &code, msg),
	    400);
	ck_assert_str_eq(code, "classification");
	ck_assert_str_eq(
	    msg, "classification: SECRET VMs need a TPM 2.0 (\"tpm\": true)");
	deploy_req_clear(&r);
	ck_assert_int_eq(
	    parse(c, X86 "\"classification\":\"SECRET\",\"tpm\":true}", &r,
		&code, msg),
	    400);
	ck_assert_str_eq(msg,
	    "classification: SECRET VMs need Secure Boot "
	    "(\"secure_boot\": true)");
	deploy_req_clear(&r);
	ck_assert_int_eq(parse(c,
			     X86 "\"classification\":\"TOP SECRET\","
				 "\"tpm\":true,\"secure_boot\":true}",
			     &r, &code, msg),
	    400);
	ck_assert_str_eq(msg,
	    "classification: TOP SECRET VMs need an encrypted disk "
	    "(\"disk_encryption\")");
	deploy_req_clear(&r);
	ck_assert_int_eq(parse(c,
			     X86 "\"classification\":\"TOP SECRET\","
				 "\"disk_encryption\":true}",
			     &r, &code, msg),
	    400);
	ck_assert_str_eq(code, "classification");
	deploy_req_clear(&r);
	ck_assert_int_eq(parse(c,
			     X86 "\"classification\":\"SECRET\","
				 "\"tpm\":true,\"secure_boot\":true,"
				 "\"devices\":{\"pci\":[\"0000:00:02.0\"]}}",
			     &r, &code, msg),
	    400);
	/* without PCI passthrough built, the address itself is refused */
	ck_assert_str_eq(msg,
	    WITH_PCI ? "classification: SECRET VMs get no PCI passthrough"
		     : "devices.pci[]: PCI addresses look like 0000:00:02.0 "
		       "(lower-case hex)");
	deploy_req_clear(&r);
	ck_assert_int_eq(parse(c,
			     X86 "\"classification\":\"TOP SECRET\","
				 "\"tpm\":true,\"secure_boot\":true,"
				 "\"disk_encryption\":true,"
				 "\"devices\":{\"pci\":[\"0000:00:02.0\"]}}",
			     &r, &code, msg),
	    400);
	/* without PCI passthrough built, the address itself is refused */
	ck_assert_str_eq(msg,
	    WITH_PCI ? "classification: TOP SECRET VMs get no PCI passthrough"
		     : "devices.pci[]: PCI addresses look like 0000:00:02.0 "
		       "(lower-case hex)");
	deploy_req_clear(&r);

	/* types and names */
	refused(
	    c, X86 "\"classification\":\"secret\"}", 400, "bad_classification");
	refused(c, X86 "\"classification\":3}", 400, "bad_type");
	refused(c, X86 "\"tpm\":\"yes\"}", 400, "bad_type");
	refused(c, X86 "\"secure_boot\":1}", 400, "bad_type");
	refused(
	    c, X86 "\"disk_encryption\":null,\"x\":1}", 400, "unknown_field");
	refused(c, X86 "\"disk_encryption\":\"luks\"}", 400, "bad_type");

	/* no Secure Boot firmware on aarch64 hosts */
	ck_assert_int_eq(parse(arm,
			     "{\"template\":\"pinned\",\"name\":\"a\","
			     "\"secure_boot\":true}",
			     &r, &code, msg),
	    409);
	ck_assert_str_eq(code, "secure_boot_unavailable");
	ck_assert(strstr(msg, "x86_64") != NULL);
	deploy_req_clear(&r);
	/* ... but TPM and encryption are offered there */
	ck_assert_int_eq(parse(arm,
			     "{\"template\":\"pinned\",\"name\":\"a\","
			     "\"classification\":\"CUI\",\"tpm\":true,"
			     "\"disk_encryption\":true}",
			     &r, &code, NULL),
	    0);
	deploy_req_clear(&r);
	catalog_free(c);
	catalog_free(arm);
}
END_TEST
#undef X86

START_TEST(test_deploy_ram_check)
{
	struct api_error err = {0};

	ck_assert_int_eq(deploy_ram_check(0, 9999, 9999, &err), 0);
	ck_assert_int_eq(deploy_ram_check(6144, 2048, 2048, &err), 0);
	ck_assert_int_eq(deploy_ram_check(6144, 4608, 2048, &err), -1);
	ck_assert_int_eq(err.status, 409);
	ck_assert_str_eq(err.code, "ram_budget");
	ck_assert_str_eq(err.msg,
	    "not enough RAM: 4608 MB committed to VMs + 2048 MB for this one "
	    "= 6656 MB exceeds the budget of 6144 MB");
}
END_TEST

START_TEST(test_deploy_job_json)
{
	struct job_info ji;
	json_object *o;

	memset(&ji, 0, sizeof(ji));
	strcpy(ji.id, "j-4f1c");
	strcpy(ji.vm, "homeassistant");
	strcpy(ji.template_id, "homeassistant");
	ji.state = JOB_RUNNING;
	ji.phase = JOB_PHASE_DOWNLOADING;
	ji.bytes_done = 104857600;
	ji.bytes_total = 356515840;
	ji.rate_bps = 12582912;
	ji.eta_s = 20;
	ji.pinned = true;
	ji.created = 1795521600; /* 2026-11-24T12:00:00Z */
	ji.made = JOB_MADE_DISK; /* never shown */
	o = deploy_info_json(&ji);
	ck_assert_str_eq(
	    json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
	    "{\"id\":\"j-4f1c\",\"kind\":\"deploy\",\"vm\":\"homeassistant\","
	    "\"template\":\"homeassistant\",\"state\":\"running\","
	    "\"phase\":\"downloading\",\"bytes_done\":104857600,"
	    "\"bytes_total\":356515840,\"rate_bps\":12582912,\"eta_s\":20,"
	    "\"sha256\":null,\"pinned\":true,\"error\":null,"
	    "\"created\":\"2026-11-24T12:00:00Z\"}");
	json_object_put(o);

	/* queued: no phase yet; unknown ETA; failed with an error */
	ji.state = JOB_FAILED;
	ji.phase = JOB_PHASE_NONE;
	ji.eta_s = -1;
	strcpy(ji.sha256, "ab");
	strcpy(ji.error, "checksum mismatch");
	o = deploy_info_json(&ji);
	ck_assert_ptr_null(json_object_object_get(o, "phase"));
	ck_assert_ptr_null(json_object_object_get(o, "eta_s"));
	ck_assert_str_eq(
	    json_object_get_string(json_object_object_get(o, "state")),
	    "failed");
	ck_assert_str_eq(
	    json_object_get_string(json_object_object_get(o, "error")),
	    "checksum mismatch");
	ck_assert_str_eq(
	    json_object_get_string(json_object_object_get(o, "sha256")), "ab");
	json_object_put(o);
	ck_assert_str_eq(job_phase_name(JOB_PHASE_DONE), "done");
	ck_assert_str_eq(job_state_name(JOB_CANCELLED), "cancelled");
}
END_TEST

START_TEST(test_deploy_cleanup_plan)
{
	unsigned all = JOB_MADE_DISK | JOB_MADE_SEED | JOB_MADE_DOMAIN |
	    JOB_MADE_RESERVATION | JOB_MADE_TOFU;

	/* a succeeded job keeps what it made */
	ck_assert_uint_eq(deploy_cleanup_plan(all, JOB_SUCCEEDED), 0);
	ck_assert_uint_eq(deploy_cleanup_plan(0, JOB_FAILED), 0);
	ck_assert_uint_eq(deploy_cleanup_plan(all, JOB_FAILED),
	    CLEAN_UNDEFINE | CLEAN_DISK | CLEAN_SEED | CLEAN_RESERVATION |
		CLEAN_TOFU);
	ck_assert_uint_eq(
	    deploy_cleanup_plan(
		JOB_MADE_DISK | JOB_MADE_RESERVATION, JOB_CANCELLED),
	    CLEAN_DISK | CLEAN_RESERVATION);
	ck_assert_uint_eq(
	    deploy_cleanup_plan(JOB_MADE_TOFU, JOB_FAILED), CLEAN_TOFU);
}
END_TEST

Suite *
suite_deploy(void)
{
	Suite *s = suite_create("deploy");
	TCase *tc = tcase_create("deploy");

	tcase_add_test(tc, test_deploy_request_ok);
	tcase_add_test(tc, test_deploy_request_refused);
	tcase_add_test(tc, test_deploy_request_profiles);
	tcase_add_test(tc, test_deploy_ram_check);
	tcase_add_test(tc, test_deploy_job_json);
	tcase_add_test(tc, test_deploy_cleanup_plan);
	suite_add_tcase(s, tc);
	return s;
}
