/*
 * vmmod/profile.c: one test per classification rule (the Xen seed's table),
 * on specs built in code; the domxml goldens (secboot-*, tpm-*) show the
 * same refusals through the JSON form.
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "spec.h"
#include "testutil.h"

/* A spec meeting every requirement: TPM, Secure Boot, encrypted disk. */
static struct vm_spec *
hardened(enum vm_class c)
{
	struct vm_spec *s = vm_spec_new();

	s->name = xstrdup("t");
	s->classification = c;
	s->memory_mb = 1024;
	s->vcpus = 1;
	s->tpm = true;
	s->secure_boot = true;
	s->loader = xstrdup("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd");
	s->nvram = xstrdup("/var/lib/vmmod/nvram/t_VARS.fd");
	s->nvram_template = xstrdup("/usr/share/OVMF/OVMF_VARS_4M.ms.fd");
	s->disk = xstrdup("/var/lib/vmmod/t.qcow2");
	s->disk_secret = xstrdup("6f1c0b8e-2d4a-4c1e-9b3a-0d9e8f7a6b5c");
	s->mac = xstrdup("52:54:00:00:00:01");
	return s;
}

static void
refused(struct vm_spec *s, const char *want)
{
	char *err = NULL;

	ck_assert_int_eq(profile_check(s, &err), -1);
	ck_assert_str_eq(err, want);
	free(err);
	/* and the spec as a whole is refused for the same reason */
	ck_assert_int_eq(vm_spec_validate(s, &err), -1);
	ck_assert_str_eq(err, want);
	free(err);
	vm_spec_free(s);
}

static void
accepted(struct vm_spec *s)
{
	char *err = NULL;

	ck_assert_int_eq(profile_check(s, &err), 0);
	ck_assert_int_eq(vm_spec_validate(s, &err), 0);
	ck_assert_ptr_null(err);
	vm_spec_free(s);
}

START_TEST(test_profile_names)
{
	static const char *const names[] = {
	    "UNCLASSIFIED", "CUI", "SECRET", "TOP SECRET"};
	enum vm_class c;
	size_t i;

	for (i = 0; i < nitems(names); i++) {
		ck_assert_int_eq(vm_class_parse(names[i], &c), 0);
		ck_assert_str_eq(vm_class_name(c), names[i]);
	}
	ck_assert_int_eq(vm_class_parse("UNCLASS", &c), 0); /* the seed's */
	ck_assert_int_eq(c, VM_CLASS_UNCLASSIFIED);
	ck_assert_int_eq(vm_class_parse("TOP_SECRET", &c), 0);
	ck_assert_int_eq(c, VM_CLASS_TOP_SECRET);
	ck_assert_int_eq(vm_class_parse("secret", &c), -1);
	ck_assert_int_eq(vm_class_parse("RESTRICTED", &c), -1);
	ck_assert_ptr_null(vm_class_name(VM_CLASS_NONE));
}
END_TEST

/* UNCLASSIFIED and no classification: nothing required. */
START_TEST(test_profile_unclassified_free)
{
	struct vm_spec *s = hardened(VM_CLASS_UNCLASSIFIED);

	ck_assert_uint_eq(profile_required(VM_CLASS_UNCLASSIFIED), 0);
	ck_assert_uint_eq(profile_recommended(VM_CLASS_UNCLASSIFIED), 0);
	s->tpm = s->secure_boot = false;
	free(s->disk_secret);
	s->disk_secret = NULL;
	s->npci = 0;
	accepted(s);
}
END_TEST

/* CUI: TPM recommended, not required (the seed's table). */
START_TEST(test_profile_cui_tpm_recommended)
{
	struct vm_spec *s = hardened(VM_CLASS_CUI);

	ck_assert_uint_eq(profile_required(VM_CLASS_CUI), 0);
	ck_assert_uint_eq(profile_recommended(VM_CLASS_CUI), PROFILE_TPM);
	s->tpm = false;
	accepted(s);
}
END_TEST

START_TEST(test_profile_secret_needs_tpm)
{
	struct vm_spec *s = hardened(VM_CLASS_SECRET);

	s->tpm = false;
	refused(s, "classification: SECRET VMs need a TPM 2.0 (\"tpm\": true)");
}
END_TEST

START_TEST(test_profile_secret_needs_secure_boot)
{
	struct vm_spec *s = hardened(VM_CLASS_SECRET);

	s->secure_boot = false;
	refused(s,
	    "classification: SECRET VMs need Secure Boot "
	    "(\"secure_boot\": true)");
}
END_TEST

START_TEST(test_profile_secret_no_encryption_needed)
{
	struct vm_spec *s = hardened(VM_CLASS_SECRET);

	free(s->disk_secret);
	s->disk_secret = NULL;
	accepted(s);
}
END_TEST

START_TEST(test_profile_secret_no_pci)
{
	struct vm_spec *s = hardened(VM_CLASS_SECRET);

	s->pci = xcalloc(1, sizeof(*s->pci));
	s->pci[0].slot = 0x0b;
	s->npci = 1;
	refused(s, "classification: SECRET VMs get no PCI passthrough");
}
END_TEST

START_TEST(test_profile_top_secret_needs_tpm)
{
	struct vm_spec *s = hardened(VM_CLASS_TOP_SECRET);

	s->tpm = false;
	refused(s,
	    "classification: TOP SECRET VMs need a TPM 2.0 "
	    "(\"tpm\": true)");
}
END_TEST

START_TEST(test_profile_top_secret_needs_secure_boot)
{
	struct vm_spec *s = hardened(VM_CLASS_TOP_SECRET);

	s->secure_boot = false;
	refused(s,
	    "classification: TOP SECRET VMs need Secure Boot "
	    "(\"secure_boot\": true)");
}
END_TEST

START_TEST(test_profile_top_secret_needs_encryption)
{
	struct vm_spec *s = hardened(VM_CLASS_TOP_SECRET);

	free(s->disk_secret);
	s->disk_secret = NULL;
	refused(s,
	    "classification: TOP SECRET VMs need an encrypted disk "
	    "(\"disk_encryption\")");
}
END_TEST

START_TEST(test_profile_top_secret_no_pci)
{
	struct vm_spec *s = hardened(VM_CLASS_TOP_SECRET);

	s->pci = xcalloc(1, sizeof(*s->pci));
	s->npci = 1;
	refused(s, "classification: TOP SECRET VMs get no PCI passthrough");
}
END_TEST

START_TEST(test_profile_top_secret_ok)
{
	ck_assert_uint_eq(profile_required(VM_CLASS_TOP_SECRET),
	    PROFILE_TPM | PROFILE_SECURE_BOOT | PROFILE_ENCRYPTION |
		PROFILE_NO_PCI);
	accepted(hardened(VM_CLASS_TOP_SECRET));
}
END_TEST

/* CUI and below may pass PCI devices through. */
START_TEST(test_profile_cui_pci_allowed)
{
	struct vm_spec *s = hardened(VM_CLASS_CUI);

	s->pci = xcalloc(1, sizeof(*s->pci));
	s->npci = 1;
	accepted(s);
}
END_TEST

Suite *
suite_profile(void)
{
	Suite *s = suite_create("profile");
	TCase *tc = tcase_create("profile");

	tcase_add_test(tc, test_profile_names);
	tcase_add_test(tc, test_profile_unclassified_free);
	tcase_add_test(tc, test_profile_cui_tpm_recommended);
	tcase_add_test(tc, test_profile_cui_pci_allowed);
	tcase_add_test(tc, test_profile_secret_needs_tpm);
	tcase_add_test(tc, test_profile_secret_needs_secure_boot);
	tcase_add_test(tc, test_profile_secret_no_encryption_needed);
	tcase_add_test(tc, test_profile_secret_no_pci);
	tcase_add_test(tc, test_profile_top_secret_needs_tpm);
	tcase_add_test(tc, test_profile_top_secret_needs_secure_boot);
	tcase_add_test(tc, test_profile_top_secret_needs_encryption);
	tcase_add_test(tc, test_profile_top_secret_no_pci);
	tcase_add_test(tc, test_profile_top_secret_ok);
	suite_add_tcase(s, tc);
	return s;
}
