/*
 * PCI passthrough through the devices API (devices.c): POST
 * /api/vms/{name}/devices {"pci": ...} and DELETE .../devices/{address}.
 *
 *  - pure: the <hostdev type='pci' managed='yes'> vmmod writes (golden
 *    file tests/data/pci/), and reading a domain's PCI hostdevs back.
 *  - "libvirt": against libvirt's test:///default driver and the fake
 *    sysfs tree tests/data/sysfs/meteorlake (libpci reads it): the
 *    definition gains and loses the hostdev; every refusal (bad address,
 *    absent, bridge, IOMMU group shared, already attached, used by another
 *    VM) is checked and leaves the definition unchanged.  Built without PCI
 *    (arm64), attach and detach answer 501 not_built.
 *
 * What only a real x86 host with VFIO exercises: libvirt binding the device
 * to vfio-pci (managed='yes') and QEMU starting with it, and a live attach
 * to a running guest.  The test driver keeps definitions only, and no
 * sandbox here has an IOMMU.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmmod.h"
#include "testutil.h"

static const char dom_fmt[] =
    "<domain type='qemu'><name>%s</name><memory unit='MiB'>64</memory>"
    "<vcpu>1</vcpu><os><type arch='x86_64' machine='q35'>hvm</type></os>"
    "<devices>%s</devices></domain>";

START_TEST(test_pcidev_xml)
{
	struct pci_hostdev *hd;
	char *xml, *dom;
	size_t n;

	xml = devices_pci_hostdev_xml("0000:00:02.0");
	ck_assert(golden_check("pci/hostdev-00-02-0.xml", xml));
	xasprintf(&dom, dom_fmt, "x",
	    "<hostdev mode='subsystem' type='usb'><source><vendor "
	    "id='0x10c4'/><product id='0xea60'/></source></hostdev>"
	    "<hostdev mode='subsystem' type='pci' managed='yes'><source>"
	    "<address domain='0x0000' bus='0x01' slot='0x00' "
	    "function='0x0'/></source></hostdev>");
	free(xml);
	xml = dom;
	xasprintf(&dom, "%.*s%s%s", (int)(strstr(xml, "</devices>") - xml), xml,
	    "<hostdev mode='subsystem' type='pci' managed='yes'><source>"
	    "<address domain='0x0000' bus='0x00' slot='0x1f' function='0x5'/>"
	    "</source></hostdev>",
	    strstr(xml, "</devices>"));
	free(xml);
	n = devices_pci_hostdevs_parse(dom, &hd);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(hd[0].addr, "0000:01:00.0");
	ck_assert_str_eq(hd[1].addr, "0000:00:1f.5");
	ck_assert_ptr_nonnull(strstr(hd[1].xml, "<hostdev"));
	ck_assert_ptr_nonnull(strstr(hd[1].xml, "slot=\"0x1f\""));
	devices_pci_hostdevs_free(hd, n);
	free(dom);
	ck_assert_uint_eq(devices_pci_hostdevs_parse("<nope", &hd), 0);
}
END_TEST

/* ---- libvirt's test driver + the fake meteorlake sysfs tree ------------- */

static struct vmmod_conf conf;
static char uuid_a[37], uuid_b[37];
#define B_HOSTDEV                                                              \
	"<hostdev mode='subsystem' type='pci' managed='yes'><source>"          \
	"<address domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>"     \
	"</source></hostdev>"

static void
define(const char *name, const char *extra, char uuid[37])
{
	char *xml, *err = NULL;

	virt_undefine_name(name);
	xasprintf(&xml, dom_fmt, name, extra);
	ck_assert_msg(virt_define(xml, false, uuid, &err) == 0, "%s", err);
	free(xml);
}

static bool
wait_vm(const char *name)
{
	char u[37];
	int i;

	for (i = 0; i < 500; i++) {
		if (state_lookup(name, u) == 0)
			return true;
		usleep(10000);
	}
	return false;
}

static void
lv_setup(void)
{
	struct host_facts host = {.arch = "x86_64", .accel = "tcg"};
	char *root, *ids, *accel;
	int i;

	memset(&conf, 0, sizeof(conf));
	conf.uri = getenv("GVM_SANDBOX") != NULL ? "qemu:///system"
						 : "test:///default";
	conf.storage_pool = "guardian-vms";
	state_init(&conf, &host);
	root = test_data_path("sysfs/meteorlake");
	ids = test_data_path("sysfs/pci.ids");
	accel = test_data_path("../../templates/devices/pci-accelerators.json");
	pci_set_paths(root, ids, accel);
	free(root);
	free(ids);
	free(accel);
	ck_assert_int_eq(virt_init(&conf), 0);
	for (i = 0; i < 300 && !state_connected(); i++)
		usleep(20000);
	ck_assert(state_connected());
	define("gvm-pci-a", "", uuid_a);
	/* b already has the iGPU in its definition. */
	define("gvm-pci-b", B_HOSTDEV, uuid_b);
	ck_assert(wait_vm("gvm-pci-a") && wait_vm("gvm-pci-b"));
}

static void
lv_teardown(void)
{
	virt_undefine_name("gvm-pci-a");
	virt_undefine_name("gvm-pci-b");
	virt_shutdown();
	state_free();
	pci_set_paths(NULL, NULL, NULL);
}

/* POST {"pci": ...}: 0, or the error's status and code. */
static int
attach(const char *uuid, const char *body, const char **codep)
{
	json_object *o = json_tokener_parse(body), *dev = NULL;
	struct api_error err = {0};
	int rc;

	ck_assert_ptr_nonnull(o);
	rc = devices_attach(uuid, o, &dev, &err);
	json_object_put(o);
	json_object_put(dev);
	*codep = rc == 0 ? "ok" : err.code;
	return rc == 0 ? 0 : err.status;
}

static size_t
defined_pci(const char *uuid, const char *addr)
{
	struct pci_hostdev *hd;
	struct api_error err;
	char *xml = NULL;
	size_t i, n, hits = 0;

	ck_assert_int_eq(virt_dom_xml(uuid, true, &xml, NULL, NULL, &err), 0);
	n = devices_pci_hostdevs_parse(xml, &hd);
	for (i = 0; i < n; i++)
		if (addr == NULL || strcmp(hd[i].addr, addr) == 0)
			hits++;
	if (addr != NULL && hits > 0)
		ck_assert_msg(strstr(xml, "managed='yes'") != NULL ||
			strstr(xml, "managed=\"yes\"") != NULL,
		    "%s", xml);
	devices_pci_hostdevs_free(hd, n);
	free(xml);
	return hits;
}

/*
 * Needs a libvirtd that attaches devices to definitions (the test driver
 * has no virDomainAttachDeviceFlags): tests/sandbox.sh's qemu:///system,
 * run by tests/e2e/80-usb.sh.  A config-only attach: nothing binds to
 * vfio-pci until the VM starts, which only real VFIO hardware does.
 */
START_TEST(test_pcidev_attach_detach)
{
	struct api_error err = {0};
	const char *code;
	json_object *arr;

	ck_assert_int_eq(
	    attach(uuid_a, "{\"pci\":\"0000:01:00.0\"}", &code), 0);
	ck_assert_uint_eq(defined_pci(uuid_a, "0000:01:00.0"), 1);
	arr = devices_vm_pci_json(uuid_a);
	ck_assert_uint_eq(json_object_array_length(arr), 1);
	ck_assert_str_eq(json_object_get_string(json_object_object_get(
			     json_object_array_get_idx(arr, 0), "state")),
	    "ready");
	ck_assert_str_eq(json_object_get_string(json_object_object_get(
			     json_object_array_get_idx(arr, 0), "id")),
	    "0000:01:00.0");
	json_object_put(arr);
	ck_assert_int_eq(
	    attach(uuid_a, "{\"pci\":\"0000:01:00.0\"}", &code), 409);
	ck_assert_str_eq(code, "already_attached");
	ck_assert_int_eq(devices_detach(uuid_a, "0000:01:00.0", &err), 0);
	ck_assert_uint_eq(defined_pci(uuid_a, NULL), 0);
	ck_assert_int_eq(devices_detach(uuid_a, "0000:01:00.0", &err), -1);
	ck_assert_int_eq(err.status, 404);
	/* b's iGPU goes; then a may have it. */
	ck_assert_int_eq(devices_detach(uuid_b, "0000:00:02.0", &err), 0);
	ck_assert_int_eq(
	    attach(uuid_a, "{\"pci\":[\"0000:00:02.0\"]}", &code), 0);
	ck_assert_uint_eq(defined_pci(uuid_a, "0000:00:02.0"), 1);
}
END_TEST

START_TEST(test_pcidev_refusals)
{
	const char *code;

	ck_assert_int_eq(attach(uuid_a, "{\"pci\":\"00:02.0\"}", &code), 400);
	ck_assert_str_eq(code, "invalid_device");
	ck_assert_int_eq(attach(uuid_a, "{\"pci\":42}", &code), 400);
	ck_assert_str_eq(code, "bad_type");
	ck_assert_int_eq(
	    attach(uuid_a, "{\"pci\":\"0000:00:02.0\",\"x\":1}", &code), 400);
	ck_assert_str_eq(code, "unknown_field");
	ck_assert_int_eq(
	    attach(uuid_a, "{\"pci\":\"0000:00:05.0\"}", &code), 404);
	ck_assert_str_eq(code, "device_absent");
	ck_assert_int_eq(
	    attach(uuid_a, "{\"pci\":\"0000:00:1c.0\"}", &code), 409);
	ck_assert_str_eq(code, "not_passthrough_capable");
	/* Part of an IOMMU group: the whole group or nothing. */
	ck_assert_int_eq(
	    attach(uuid_a, "{\"pci\":\"0000:00:1f.3\"}", &code), 409);
	ck_assert_str_eq(code, "iommu_group_shared");
	ck_assert_int_eq(
	    attach(
		uuid_a, "{\"pci\":[\"0000:00:1f.3\",\"0000:00:1f.5\"]}", &code),
	    409);
	ck_assert_str_eq(code, "iommu_group_shared");
	/* The domain table: b's definition holds the iGPU. */
	ck_assert_int_eq(
	    attach(uuid_a, "{\"pci\":\"0000:00:02.0\"}", &code), 409);
	ck_assert_str_eq(code, "device_in_use");
	ck_assert_int_eq(
	    attach(uuid_b, "{\"pci\":\"0000:00:02.0\"}", &code), 409);
	ck_assert_str_eq(code, "already_attached");
	ck_assert_uint_eq(defined_pci(uuid_a, NULL), 0);
	ck_assert_uint_eq(defined_pci(uuid_b, "0000:00:02.0"), 1);
	/* Not one of its devices: 404 before libvirt is asked. */
	{
		struct api_error err = {0};

		ck_assert_int_eq(
		    devices_detach(uuid_a, "0000:00:02.0", &err), -1);
		ck_assert_int_eq(err.status, 404);
	}
}
END_TEST

/* A SECRET VM gets no PCI passthrough (profile.c), even a free device. */
START_TEST(test_pcidev_classification)
{
	static const char secret[] =
	    "<domain type='qemu'><name>gvm-pci-s</name>"
	    "<metadata><gvm:vm xmlns:gvm='" SPEC_XMLNS "'>"
	    "<gvm:classification>SECRET</gvm:classification></gvm:vm>"
	    "</metadata><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
	    "<os><type arch='x86_64' machine='q35'>hvm</type></os>"
	    "<devices/></domain>";
	char uuid[37], *err = NULL;
	const char *code;

	/* the iGPU, freed from b first */
	ck_assert_int_eq(
	    attach(uuid_b, "{\"pci\":\"0000:00:02.0\"}", &code), 409);
	{
		struct api_error e = {0};

		ck_assert_int_eq(devices_detach(uuid_b, "0000:00:02.0", &e), 0);
	}
	virt_undefine_name("gvm-pci-s");
	ck_assert_msg(virt_define(secret, false, uuid, &err) == 0, "%s", err);
	ck_assert(wait_vm("gvm-pci-s"));
	ck_assert_int_eq(
	    attach(uuid, "{\"pci\":\"0000:00:02.0\"}", &code), 409);
	ck_assert_str_eq(code, "classification");
	ck_assert_uint_eq(defined_pci(uuid, NULL), 0);
	/* the same device goes to an unclassified VM */
	ck_assert_int_eq(
	    attach(uuid_a, "{\"pci\":\"0000:00:02.0\"}", &code), 0);
	virt_undefine_name("gvm-pci-s");
}
END_TEST

/* pci_none.c (arm64): the devices API says "not built". */
START_TEST(test_pcidev_not_built)
{
	struct api_error err = {0};
	const char *code;

	ck_assert_int_eq(
	    attach(uuid_a, "{\"pci\":\"0000:00:02.0\"}", &code), 501);
	ck_assert_str_eq(code, "not_built");
	ck_assert_int_eq(devices_detach(uuid_a, "0000:00:02.0", &err), -1);
	ck_assert_int_eq(err.status, 501);
}
END_TEST

Suite *
suite_pcidev(void)
{
	Suite *s = suite_create("pcidev");
	TCase *tc = tcase_create("pure");
	char *why = NULL;
	bool built = pci_check_passthrough_set(NULL, 0, &why) != PCI_NOT_BUILT;

	free(why);
	tcase_add_test(tc, test_pcidev_xml);
	suite_add_tcase(s, tc);
	tc = tcase_create("libvirt");
	tcase_add_checked_fixture(tc, lv_setup, lv_teardown);
	tcase_set_timeout(tc, 30);
	if (built) {
		tcase_add_test(tc, test_pcidev_refusals);
		if (getenv("GVM_SANDBOX") != NULL) {
			tcase_add_test(tc, test_pcidev_attach_detach);
			tcase_add_test(tc, test_pcidev_classification);
		}
	} else
		tcase_add_test(tc, test_pcidev_not_built);
	suite_add_tcase(s, tc);
	return s;
}
