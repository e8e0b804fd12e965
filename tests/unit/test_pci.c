/*
 * vmmod/pci.c against the fake sysfs trees of tests/data/sysfs (libpci's
 * sysfs.path points there; names come from the tree's small pci.ids):
 * the device list and the seed's shapes as golden JSON, and one test per
 * passthrough refusal.  Built without PCI (arm64), pci_none.c must answer
 * "not built" instead.
 */
#include <stdlib.h>
#include <string.h>

#include "vmmod.h"
#include "testutil.h"

static void
use_tree(const char *tree)
{
	char *rel, *root, *ids, *accel;

	xasprintf(&rel, "sysfs/%s", tree);
	root = test_data_path(rel);
	free(rel);
	ids = test_data_path("sysfs/pci.ids");
	accel = test_data_path("../../templates/devices/pci-accelerators.json");
	pci_set_paths(root, ids, accel);
	free(root);
	free(ids);
	free(accel);
}

static void
json_golden(const char *rel, json_object *o)
{
	char *text;

	xasprintf(&text, "%s\n",
	    json_object_to_json_string_ext(o,
		JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
		    JSON_C_TO_STRING_NOSLASHESCAPE));
	ck_assert_msg(golden_check(rel, text), "%s differs", rel);
	free(text);
	json_object_put(o);
}

/* The verdict for addr, and that the reason mentions want. */
static void
verdict_is(const char *addr, enum pci_verdict want, const char *why_has)
{
	char *why = NULL;
	enum pci_verdict v = pci_check_passthrough(addr, &why);

	ck_assert_msg(v == want, "%s: verdict %d (%s), want %d", addr, v,
	    why != NULL ? why : "-", want);
	if (why_has != NULL)
		ck_assert_msg(why != NULL && strstr(why, why_has) != NULL,
		    "%s: reason \"%s\" lacks \"%s\"", addr, why, why_has);
	else
		ck_assert_ptr_null(why);
	free(why);
}

START_TEST(test_pci_list_golden)
{
	use_tree("meteorlake");
	json_golden("sysfs/meteorlake-devices.json", pci_devices_json());
	json_golden(
	    "sysfs/meteorlake-pci-devices.json", pci_hypervisor_devices_json());
	use_tree("no-iommu");
	json_golden("sysfs/no-iommu-devices.json", pci_devices_json());
}
END_TEST

START_TEST(test_pci_ai_acceleration)
{
	json_object *usb = json_object_new_array(), *d;
	const char *ids[][2] = {
	    {"03e7", "2485"}, {"03e7", "f63b"}, {"10c4", "ea60"}};
	size_t i;

	use_tree("meteorlake");
	for (i = 0; i < nitems(ids); i++) {
		d = json_object_new_object();
		json_object_object_add(
		    d, "vendor", json_object_new_string(ids[i][0]));
		json_object_object_add(
		    d, "product", json_object_new_string(ids[i][1]));
		json_object_array_add(usb, d);
	}
	json_golden("sysfs/meteorlake-ai-acceleration.json",
	    pci_ai_acceleration_json(usb));
	json_golden("sysfs/meteorlake-ai-acceleration-nousb.json",
	    pci_ai_acceleration_json(NULL));
	json_object_put(usb);
}
END_TEST

/* An isolated endpoint passes; bridges in its group don't count. */
START_TEST(test_pci_passthrough_ok)
{
	use_tree("meteorlake");
	verdict_is("0000:00:02.0", PCI_OK, NULL);
	verdict_is("0000:00:0b.0", PCI_OK, NULL);
	verdict_is("0000:01:00.0", PCI_OK, NULL);
}
END_TEST

START_TEST(test_pci_refuse_absent)
{
	use_tree("meteorlake");
	verdict_is("0000:00:05.0", PCI_ABSENT, "no PCI device 0000:00:05.0");
	use_tree("does-not-exist");
	verdict_is("0000:00:02.0", PCI_ABSENT, "no PCI bus");
}
END_TEST

START_TEST(test_pci_refuse_bad_address)
{
	use_tree("meteorlake");
	verdict_is("00:02.0", PCI_BAD_ADDRESS, "not a PCI address");
	verdict_is("0000:00:02.8", PCI_BAD_ADDRESS, "not a PCI address");
	verdict_is("0000:00:20.0", PCI_BAD_ADDRESS, "not a PCI address");
	verdict_is("0000:00:02.0/../x", PCI_BAD_ADDRESS, "not a PCI address");
	verdict_is("0000:00:0B.0", PCI_BAD_ADDRESS, "not a PCI address");
}
END_TEST

START_TEST(test_pci_refuse_host_console)
{
	use_tree("console-gpu");
	verdict_is("0000:00:02.0", PCI_HOST_USE, "host's console");
}
END_TEST

START_TEST(test_pci_refuse_bridge)
{
	use_tree("meteorlake");
	verdict_is("0000:00:1c.0", PCI_INCAPABLE, "bridge");
	verdict_is("0000:00:00.0", PCI_INCAPABLE, "bridge");
}
END_TEST

START_TEST(test_pci_refuse_no_iommu)
{
	use_tree("no-iommu");
	verdict_is("0000:00:0b.0", PCI_NO_IOMMU, "intel_iommu=on");
}
END_TEST

/* The audio function shares group 4: alone refused, the whole group not. */
START_TEST(test_pci_group_whole_or_nothing)
{
	const char *part[] = {"0000:00:1f.3", "0000:00:1f.5"};
	const char *whole[] = {"0000:00:1f.3", "0000:00:1f.5", "0000:00:1f.0"};
	char *why = NULL;

	use_tree("meteorlake");
	verdict_is("0000:00:1f.3", PCI_GROUP_SHARED,
	    "IOMMU group 4 of 0000:00:1f.3 also holds 0000:00:1f.0, "
	    "0000:00:1f.5");
	ck_assert_int_eq(
	    pci_check_passthrough_set(part, 2, &why), PCI_GROUP_SHARED);
	ck_assert_str_eq(why,
	    "IOMMU group 4 of 0000:00:1f.3 also holds 0000:00:1f.0: pass the "
	    "whole group through together");
	free(why);
	/* the ISA bridge (LPC) is an endpoint for VFIO's viability: it goes too */
	ck_assert_int_eq(
	    pci_check_passthrough_set(whole, 3, &why), PCI_INCAPABLE);
	ck_assert_ptr_nonnull(strstr(why, "0000:00:1f.0 is a bridge"));
	free(why);
}
END_TEST

START_TEST(test_pci_verdict_codes)
{
	ck_assert_int_eq(pci_verdict_status(PCI_ABSENT), 404);
	ck_assert_int_eq(pci_verdict_status(PCI_BAD_ADDRESS), 400);
	ck_assert_int_eq(pci_verdict_status(PCI_HOST_USE), 409);
	ck_assert_int_eq(pci_verdict_status(PCI_GROUP_SHARED), 409);
	ck_assert_str_eq(
	    pci_verdict_code(PCI_HOST_USE), "device_in_use_by_host");
	ck_assert_str_eq(pci_verdict_code(PCI_NO_IOMMU), "iommu_off");
}
END_TEST

/* pci_none.c: empty lists, every check "not built". */
START_TEST(test_pci_not_built)
{
	json_object *o = pci_devices_json();
	char *why = NULL;

	ck_assert_uint_eq(json_object_array_length(o), 0);
	json_object_put(o);
	ck_assert_int_eq(
	    pci_check_passthrough("0000:00:02.0", &why), PCI_NOT_BUILT);
	ck_assert_str_eq(
	    why, "PCI passthrough is not built on this architecture");
	free(why);
	ck_assert_int_eq(pci_verdict_status(PCI_NOT_BUILT), 501);
}
END_TEST

Suite *
suite_pci(void)
{
	Suite *s = suite_create("pci");
	TCase *tc = tcase_create("pci");

	/* WITH_PCI comes from the Makefile, as for the code under test. */
	if (WITH_PCI) {
		tcase_add_test(tc, test_pci_list_golden);
		tcase_add_test(tc, test_pci_ai_acceleration);
		tcase_add_test(tc, test_pci_passthrough_ok);
		tcase_add_test(tc, test_pci_refuse_absent);
		tcase_add_test(tc, test_pci_refuse_bad_address);
		tcase_add_test(tc, test_pci_refuse_host_console);
		tcase_add_test(tc, test_pci_refuse_bridge);
		tcase_add_test(tc, test_pci_refuse_no_iommu);
		tcase_add_test(tc, test_pci_group_whole_or_nothing);
		tcase_add_test(tc, test_pci_verdict_codes);
	} else
		tcase_add_test(tc, test_pci_not_built);
	suite_add_tcase(s, tc);
	return s;
}
