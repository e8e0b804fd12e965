/*
 * deploy.c's deploy_security_host_json: GET /api/host's "security", what a
 * deployed VM's security profile can have on a host (the web UI's deploy
 * dialog disables the rest with the reason).  Each reason is the one a
 * create asking for the feature is refused with.
 */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "vmmod.h"

/* feature F of O: available?, and its reason contains WHY (or is null) */
static void
feature(json_object *o, const char *f, bool avail, const char *why)
{
	json_object *x, *a, *w;

	ck_assert(json_object_object_get_ex(o, f, &x));
	ck_assert(json_object_object_get_ex(x, "available", &a));
	ck_assert(json_object_is_type(a, json_type_boolean));
	ck_assert_int_eq(json_object_get_boolean(a), avail);
	ck_assert(json_object_object_get_ex(x, "why", &w));
	if (why == NULL) {
		ck_assert_ptr_null(w);
	} else {
		ck_assert_ptr_nonnull(w);
		ck_assert_ptr_nonnull(strstr(json_object_get_string(w), why));
	}
}

START_TEST(test_hostsec_all)
{
	json_object *o =
	    deploy_security_host_json(VM_ARCH_X86_64, false, true, true);

	ck_assert_int_eq(json_object_object_length(o), 3);
	feature(o, "tpm", true, NULL);
	feature(o, "secure_boot", true, NULL);
	feature(o, "disk_encryption", true, NULL);
	json_object_put(o);
}
END_TEST

START_TEST(test_hostsec_missing)
{
	json_object *o =
	    deploy_security_host_json(VM_ARCH_X86_64, false, false, false);

	feature(o, "tpm", false,
	    "tpm: this host has no TPM emulator (install swtpm");
	feature(o, "secure_boot", false, "lacks OVMF's Secure Boot firmware");
	feature(o, "disk_encryption", true, NULL);
	json_object_put(o);
}
END_TEST

START_TEST(test_hostsec_aarch64)
{
	/* swtpm gives arm VMs a tpm-tis; OVMF's secboot build is x86 only */
	json_object *o =
	    deploy_security_host_json(VM_ARCH_AARCH64, false, true, true);

	feature(o, "tpm", true, NULL);
	feature(o, "secure_boot", false, "x86_64 hosts only");
	feature(o, "secure_boot", false, "this aarch64 host");
	feature(o, "disk_encryption", true, NULL);
	json_object_put(o);
}
END_TEST

START_TEST(test_hostsec_xen)
{
	/* domxml_xen_check refuses all three for libxl guests */
	json_object *o =
	    deploy_security_host_json(VM_ARCH_X86_64, true, true, true);

	feature(o, "tpm", false, "libxl driver offers no virtual TPM");
	feature(o, "secure_boot", false, "not available with xen");
	feature(o, "disk_encryption", false, "not available to libxl disks");
	json_object_put(o);
}
END_TEST

/* GET /api/host's "classifications": profile.c's policy, as JSON text */
START_TEST(test_hostsec_classes)
{
	json_object *a = deploy_classes_json();

	ck_assert_str_eq(
	    json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN),
	    "[{\"name\":\"UNCLASSIFIED\",\"requires\":[],\"recommends\":[],"
	    "\"pci\":true},"
	    "{\"name\":\"CUI\",\"requires\":[],\"recommends\":[\"tpm\"],"
	    "\"pci\":true},"
	    "{\"name\":\"SECRET\",\"requires\":[\"tpm\",\"secure_boot\"],"
	    "\"recommends\":[],\"pci\":false},"
	    "{\"name\":\"TOP SECRET\",\"requires\":[\"tpm\",\"secure_boot\","
	    "\"disk_encryption\"],\"recommends\":[],\"pci\":false}]");
	json_object_put(a);
}
END_TEST

Suite *
suite_hostsec(void)
{
	Suite *s = suite_create("hostsec");
	TCase *tc = tcase_create("hostsec");

	tcase_add_test(tc, test_hostsec_all);
	tcase_add_test(tc, test_hostsec_missing);
	tcase_add_test(tc, test_hostsec_aarch64);
	tcase_add_test(tc, test_hostsec_xen);
	tcase_add_test(tc, test_hostsec_classes);
	suite_add_tcase(s, tc);
	return s;
}
