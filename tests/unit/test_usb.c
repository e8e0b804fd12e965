/*
 * USB passthrough (usb.c, devices.c, domxml_usb_hostdev).
 *
 * Three groups of cases:
 *  - pure: the known-device file, device ids, <gvm:vm> metadata and
 *    <hostdev> parsing, the hostdev XML golden files (tests/data/usb/).
 *  - "umockdev", registered only under umockdev (UMOCKDEV_DIR set, e.g.
 *    `umockdev-run --device tests/data/umockdev/X.umockdev ...`): libusb
 *    enumerates the fake devices of tests/data/umockdev (two identical
 *    CP210x sticks with different serials, a ConBee II, an NCS2, a CH340
 *    without serial, a hub, a root hub, a flash drive).
 *  - "sandbox", also needing GVM_SANDBOX (tests/sandbox.sh's libvirtd):
 *    attach/detach/persist through real libvirt, the 409 refusals, and
 *    re-attach driven by synthetic hotplug events through
 *    devices_usb_event, the function usb.c's libusb callback calls.
 * tests/e2e/80-usb.sh runs all three.
 *
 * What only real hardware (a Pi with a stick) exercises: QEMU opening the
 * host device.  The sandbox's libvirtd sees no USB devices (umockdev fakes
 * them for this process only), so every live attach there fails, and the
 * tests check that such a failure leaves nothing half-attached; they never
 * pretend a live attach succeeded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmmod.h"
#include "testutil.h"

/* ---- pure ---------------------------------------------------------------- */

static void
load_known(void)
{
	char *text = test_data_read("../../templates/devices/usb-devices.json");
	char *err = NULL;

	ck_assert_ptr_nonnull(text);
	ck_assert_msg(devices_known_load_text(text, &err) == 0, "%s", err);
	free(text);
}

static struct usb_dev
mkdev(unsigned v, unsigned p, const char *prod, const char *serial,
    const char *port)
{
	struct usb_dev u;

	memset(&u, 0, sizeof(u));
	u.vendor = v;
	u.product = p;
	snprintf(u.product_name, sizeof(u.product_name), "%s", prod);
	snprintf(u.serial, sizeof(u.serial), "%s", serial);
	snprintf(u.port, sizeof(u.port), "%s", port);
	u.bus = 1;
	u.address = 5;
	return u;
}

static const char *
known_name(const struct usb_dev *u)
{
	static char buf[256];
	json_object *k = devices_usb_known(u);

	if (k == NULL)
		return NULL;
	snprintf(buf, sizeof(buf), "%s/%s",
	    json_object_get_string(json_object_object_get(k, "kind")),
	    json_object_get_string(json_object_object_get(k, "name")));
	json_object_put(k);
	return buf;
}

START_TEST(test_usb_known)
{
	struct usb_dev u;
	char *err = NULL;

	load_known();
	u = mkdev(
	    0x10c4, 0xea60, "Sonoff Zigbee 3.0 USB Dongle Plus", "a", "1-1");
	ck_assert_str_eq(known_name(&u),
	    "zigbee/Sonoff Zigbee 3.0 USB Dongle Plus (ZBDongle-P)");
	u = mkdev(
	    0x10c4, 0xea60, "CP2102N USB to UART Bridge Controller", "", "1-1");
	ck_assert_str_eq(
	    known_name(&u), "zigbee/Zigbee coordinator (Silicon Labs CP210x)");
	u = mkdev(0x10c4, 0xea60, "Zooz ZST10 700 Z-Wave", "", "1-1");
	ck_assert_str_eq(known_name(&u), "zwave/Zooz ZST10 700 Z-Wave stick");
	u = mkdev(0x1cf1, 0x0030, "ConBee II", "", "1-1");
	ck_assert_str_eq(known_name(&u), "zigbee/dresden elektronik ConBee II");
	u = mkdev(0x0658, 0x0200, "", "", "1-1");
	ck_assert_str_eq(known_name(&u),
	    "zwave/Z-Wave stick (Aeotec Z-Stick Gen5 / Zooz ZST10, Sigma "
	    "Designs)");
	u = mkdev(0x03e7, 0x2485, "Movidius MyriadX", "", "1-1");
	ck_assert_str_eq(
	    known_name(&u), "accelerator/Intel Neural Compute Stick 2");
	u = mkdev(0x046d, 0xc52b, "Unifying Receiver", "", "1-1");
	ck_assert_ptr_null(known_name(&u));

	ck_assert_int_eq(devices_known_load_text("{\"usb\":[{\"vendor\":"
						 "\"10c4\"}]}",
			     &err),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "usb[0]"));
	free(err);
	err = NULL;
	ck_assert_int_eq(devices_known_load_text("{\"usb\":[{\"vendor\":"
						 "\"10c4x\",\"product\":"
						 "\"1\",\"kind\":\"a\","
						 "\"name\":\"b\"}]}",
			     &err),
	    -1);
	free(err);
}
END_TEST

START_TEST(test_usb_ids)
{
	struct usb_cfg c;
	struct usb_dev a, b;
	char id[128];

	devices_usb_id(0x10c4, 0xea60, "c03a6c1f", "1-1.1", id, sizeof(id));
	ck_assert_str_eq(id, "10c4:ea60:c03a6c1f");
	devices_usb_id(0x1a86, 0x7523, "", "1-4", id, sizeof(id));
	ck_assert_str_eq(id, "1a86:7523@1-4");
	devices_usb_id(0x1a86, 0x7523, "a/b c", "1-4", id, sizeof(id));
	ck_assert_str_eq(id, "1a86:7523:x612f622063");

	/* Identical ids: the serial tells them apart, the port does not. */
	a = mkdev(0x10c4, 0xea60, "", "AAA", "1-1.1");
	b = mkdev(0x10c4, 0xea60, "", "BBB", "1-1.1");
	memset(&c, 0, sizeof(c));
	c.vendor = 0x10c4;
	c.product = 0xea60;
	strcpy(c.serial, "BBB");
	ck_assert(!devices_cfg_matches(&c, &a));
	ck_assert(devices_cfg_matches(&c, &b));
	/* Without a serial: the port path. */
	c.serial[0] = '\0';
	strcpy(c.port, "1-4");
	a = mkdev(0x10c4, 0xea60, "", "", "1-4");
	b = mkdev(0x10c4, 0xea60, "", "", "1-3");
	ck_assert(devices_cfg_matches(&c, &a));
	ck_assert(!devices_cfg_matches(&c, &b));
}
END_TEST

START_TEST(test_usb_meta)
{
	static const char meta[] =
	    "<gvm:vm xmlns:gvm=\"" SPEC_XMLNS "\">\n"
	    "  <gvm:template>homeassistant</gvm:template>\n"
	    "  <gvm:usb vendor=\"0x1a86\" product=\"0x55d4\" "
	    "serial=\"S &amp; &lt;1&gt;\"/>\n"
	    "</gvm:vm>";
	struct usb_cfg *c, add[2];
	char *out;
	size_t n;

	n = devices_meta_parse(meta, &c);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(c[0].vendor, 0x1a86);
	ck_assert_uint_eq(c[0].product, 0x55d4);
	ck_assert_str_eq(c[0].serial, "S & <1>");
	add[0] = c[0];
	memset(&add[1], 0, sizeof(add[1]));
	add[1].vendor = 0x1a86;
	add[1].product = 0x7523;
	strcpy(add[1].port, "1-4");
	free(c);
	out = devices_meta_build(meta, add, 2);
	ck_assert(golden_check("usb/meta-two.xml", out));
	free(out);
	/* A VM made outside vmmod has no metadata yet. */
	out = devices_meta_build(NULL, add + 1, 1);
	ck_assert(golden_check("usb/meta-new.xml", out));
	n = devices_meta_parse(out, &c);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(c[0].port, "1-4");
	ck_assert_str_eq(c[0].serial, "");
	free(c);
	free(out);
	out = devices_meta_build(meta, NULL, 0);
	ck_assert_ptr_null(strstr(out, "usb"));
	ck_assert_ptr_nonnull(strstr(out, "homeassistant"));
	free(out);
	ck_assert_uint_eq(devices_meta_parse("<not-xml", &c), 0);
	ck_assert_uint_eq(devices_meta_parse(NULL, &c), 0);
}
END_TEST

START_TEST(test_usb_hostdev_xml)
{
	struct vm_usbdev u = {0x10c4, 0xea60, NULL};
	struct usb_hostdev *hd;
	char *xml, *dom;
	size_t n;

	xml = domxml_usb_hostdev(&u, 1, 5, true);
	ck_assert(golden_check("usb/hostdev-address.xml", xml));
	free(xml);
	xml = domxml_usb_hostdev(&u, 0, 0, true);
	ck_assert(golden_check("usb/hostdev-ids.xml", xml));
	free(xml);
	/* Live attaches: no startupPolicy, so an absent device fails. */
	xml = domxml_usb_hostdev(&u, 1, 5, false);
	ck_assert(golden_check("usb/hostdev-live.xml", xml));
	free(xml);

	dom = test_data_read("usb/domain-hostdevs.xml");
	ck_assert_ptr_nonnull(dom);
	n = devices_hostdevs_parse(dom, &hd);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(hd[0].vendor, 0x10c4);
	ck_assert_uint_eq(hd[0].product, 0xea60);
	ck_assert_uint_eq(hd[0].bus, 1);
	ck_assert_uint_eq(hd[0].device, 7);
	ck_assert_uint_eq(hd[1].vendor, 0x1cf1);
	ck_assert_uint_eq(hd[1].bus, 0);
	ck_assert(hd[1].missing);
	ck_assert(!hd[0].missing);
	ck_assert_ptr_nonnull(strstr(hd[0].xml, "<hostdev"));
	devices_hostdevs_free(hd, n);
	free(dom);
}
END_TEST

/*
 * The VM list's device summary: state.c's entry_json reads what devices.c
 * keeps (no libvirt call), and a change publishes the VM once.
 */
START_TEST(test_usb_vm_summary)
{
	struct host_facts host = {.arch = "x86_64", .accel = "tcg"};
	struct vmmod_conf c;
	struct vm_facts f;
	const char *uuid = "bbbbbbbb-0000-0000-0000-000000000001";
	json_object *o, *d, *arr;
	char *text;
	uint64_t seq;

	memset(&c, 0, sizeof(c));
	state_init(&c, &host);
	memset(&f, 0, sizeof(f));
	snprintf(f.uuid, sizeof(f.uuid), "%s", uuid);
	f.name = xstrdup("ha");
	f.state = VS_RUNNING;
	f.persistent = true;
	state_put(&f);

	/* None configured: an empty array, never missing. */
	o = state_vm_json("ha");
	d = json_object_object_get(o, "devices");
	ck_assert(json_object_is_type(d, json_type_array));
	ck_assert_uint_eq(json_object_array_length(d), 0);
	json_object_put(o);
	seq = events_last();
	ck_assert(!devices_summary_set(uuid, json_object_new_array()));
	ck_assert_uint_eq(events_last(), seq);

	arr = json_tokener_parse("[{\"id\":\"10c4:ea60:A1\",\"name\":"
				 "\"Zigbee coordinator\",\"state\":"
				 "\"waiting\"}]");
	text = state_vms_text(NULL);
	ck_assert(devices_summary_set(uuid, arr));
	/* One SSE "vm" event, and the cached list body is rebuilt. */
	ck_assert_uint_eq(events_last(), seq + 1);
	free(text);
	text = state_vms_text(NULL);
	ck_assert_ptr_nonnull(strstr(text,
	    "\"devices\":[{\"id\":\"10c4:ea60:A1\",\"name\":\"Zigbee "
	    "coordinator\",\"state\":\"waiting\"}]"));
	free(text);
	/* The same summary again: nothing published. */
	arr = json_tokener_parse("[{\"id\":\"10c4:ea60:A1\",\"name\":"
				 "\"Zigbee coordinator\",\"state\":"
				 "\"waiting\"}]");
	ck_assert(!devices_summary_set(uuid, arr));
	ck_assert_uint_eq(events_last(), seq + 1);
	/* The accessor hands out a copy. */
	d = devices_vm_summary(uuid);
	json_object_array_put_idx(d, 0, json_object_new_string("x"));
	json_object_put(d);
	o = state_vm_json(uuid);
	d = json_object_array_get_idx(json_object_object_get(o, "devices"), 0);
	ck_assert_str_eq(
	    json_object_get_string(json_object_object_get(d, "state")),
	    "waiting");
	json_object_put(o);
	/* attached */
	arr = json_tokener_parse("[{\"id\":\"10c4:ea60:A1\",\"name\":"
				 "\"Zigbee coordinator\",\"state\":"
				 "\"attached\"}]");
	ck_assert(devices_summary_set(uuid, arr));
	ck_assert_uint_eq(events_last(), seq + 2);
	/* A kick without the worker (not started here) only marks the VM. */
	devices_kick(uuid);
	devices_kick(NULL);
	/* Forgotten: the list shows none again. */
	ck_assert(!devices_summary_set(uuid, NULL));
	d = devices_vm_summary(uuid);
	ck_assert_uint_eq(json_object_array_length(d), 0);
	json_object_put(d);
	vm_facts_clear(&f);
	state_free();
}
END_TEST

/* ---- umockdev: libusb enumerates tests/data/umockdev --------------------- */

static struct vmmod_conf conf;

static void
um_setup(void)
{
	struct host_facts host = {.arch = "x86_64", .accel = "tcg"};

	memset(&conf, 0, sizeof(conf));
	conf.uri = getenv("GVM_SANDBOX") != NULL ? "qemu:///system"
						 : "test:///default";
	conf.storage_pool = "guardian-vms";
	state_init(&conf, &host);
	load_known();
}

static void
um_teardown(void)
{
	usb_shutdown();
	state_free();
}

static json_object *
find_id(json_object *arr, const char *id)
{
	size_t i;
	json_object *e;

	for (i = 0; i < json_object_array_length(arr); i++) {
		e = json_object_array_get_idx(arr, i);
		if (strcmp(
			json_object_get_string(json_object_object_get(e, "id")),
			id) == 0)
			return e;
	}
	return NULL;
}

static const char *
jstr(json_object *o, const char *key)
{
	json_object *v = json_object_object_get(o, key);

	return v != NULL ? json_object_get_string(v) : NULL;
}

START_TEST(test_usb_scan)
{
	struct usb_dev *d;
	size_t n, i, hubs = 0;

	ck_assert_int_eq(usb_scan(&d, &n), 0);
	ck_assert_uint_eq(n, 8);
	for (i = 0; i < n; i++) {
		hubs += d[i].hub;
		if (d[i].vendor == 0x1cf1) {
			ck_assert_str_eq(d[i].serial, "DE2412345");
			ck_assert_str_eq(d[i].product_name, "ConBee II");
			ck_assert_str_eq(d[i].port, "1-2");
			ck_assert_uint_eq(d[i].bus, 1);
			ck_assert_uint_eq(d[i].address, 5);
			ck_assert(!d[i].storage);
		}
		if (d[i].vendor == 0x0781)
			ck_assert(d[i].storage);
	}
	ck_assert_uint_eq(hubs, 2);
	free(d);
}
END_TEST

START_TEST(test_usb_host_json)
{
	json_object *o, *usb, *e;

	o = devices_host_json();
	usb = json_object_object_get(o, "usb");
	ck_assert(json_object_is_type(
	    json_object_object_get(o, "pci"), json_type_array));
	/* 8 devices, the hub and the root hub not listed. */
	ck_assert_uint_eq(json_object_array_length(usb), 6);
	e = find_id(usb, "10c4:ea60:c03a6c1f8e4bed11a4d05e4c2b2b8b5a");
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(jstr(e, "kind"), "zigbee");
	/* The known name holds the product string: not said twice. */
	ck_assert_str_eq(
	    jstr(e, "name"), "Sonoff Zigbee 3.0 USB Dongle Plus (ZBDongle-P)");
	ck_assert(
	    json_object_get_boolean(json_object_object_get(e, "passable")));
	ck_assert_str_eq(jstr(e, "path"), "1-1.1");
	ck_assert_ptr_null(jstr(e, "attached_to"));
	e = find_id(usb, "10c4:ea60:5e2a0f3b9c51ed11");
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(jstr(e, "name"),
	    "Zigbee coordinator (Silicon Labs CP210x) \xe2\x80\x94 CP2102N USB "
	    "to UART Bridge Controller");
	ck_assert_str_eq(jstr(e, "path"), "1-1.2");
	e = find_id(usb, "1cf1:0030:DE2412345");
	ck_assert_str_eq(jstr(e, "kind"), "zigbee");
	ck_assert_str_eq(jstr(e, "manufacturer"),
	    "dresden elektronik ingenieurtechnik GmbH");
	e = find_id(usb, "03e7:2485:03e72485");
	ck_assert_str_eq(jstr(e, "kind"), "accelerator");
	/* No serial: named by its port path. */
	e = find_id(usb, "1a86:7523@1-4");
	ck_assert_ptr_nonnull(e);
	ck_assert_ptr_null(jstr(e, "serial"));
	ck_assert_ptr_null(jstr(e, "kind"));
	ck_assert_str_eq(jstr(e, "name"), "USB Serial");
	ck_assert_ptr_nonnull(
	    e = find_id(usb, "0781:5583:4C530001230917118453"));
	/* Listed, but flagged: pick() refuses storage. */
	ck_assert(
	    !json_object_get_boolean(json_object_object_get(e, "passable")));
	json_object_put(o);
	/* The NCS2 stick counts in GET /api/hypervisor/ai-acceleration
	 * (x86 builds), from the same scan. */
	if (WITH_PCI) {
		struct api_response resp = {0};
		json_object *comps, *c;
		size_t i, ncs2 = 0;

		char *accel = test_data_path(
		    "../../templates/devices/pci-accelerators.json");

		pci_set_paths(NULL, NULL, accel);
		free(accel);
		pci_api_accel(NULL, NULL, &resp);
		pci_set_paths(NULL, NULL, NULL);
		ck_assert_int_eq(resp.status, 200);
		comps = json_object_object_get(resp.json, "components");
		for (i = 0; i < json_object_array_length(comps); i++) {
			c = json_object_array_get_idx(comps, i);
			if (jstr(c, "type") != NULL &&
			    strcmp(jstr(c, "type"), "NCS2") == 0) {
				ck_assert_int_eq(
				    json_object_get_int(
					json_object_object_get(c, "count")),
				    1);
				ncs2++;
			}
		}
		ck_assert_uint_eq(ncs2, 1);
		api_response_clear(&resp);
	}
}
END_TEST

/* ---- sandbox: real libvirtd ---------------------------------------------- */

#define VM_A "gvm-usb-a"
#define VM_B "gvm-usb-b"

static const char dom_fmt[] =
    "<domain type='qemu'><name>%s</name><memory unit='MiB'>64</memory>"
    "<vcpu>1</vcpu><os><type arch='x86_64' machine='q35'>hvm</type></os>"
    "<devices><controller type='usb' index='0' model='qemu-xhci'/>"
    "%s</devices></domain>";

static char uuid_a[37], uuid_b[37];

static void
define(const char *name, const char *extra, char uuid[37])
{
	char *xml, *err = NULL;

	virt_undefine_name(name);
	xasprintf(&xml, dom_fmt, name, extra);
	ck_assert_msg(virt_define(xml, false, uuid, &err) == 0, "%s", err);
	free(xml);
}

static void
sb_setup(void)
{
	int i;

	um_setup();
	ck_assert_int_eq(virt_init(&conf), 0);
	for (i = 0; i < 300 && !state_connected(); i++)
		usleep(20000);
	ck_assert(state_connected());
	define(VM_A, "", uuid_a);
	define(VM_B, "", uuid_b);
}

static void
sb_teardown(void)
{
	virt_undefine_name(VM_A);
	virt_undefine_name(VM_B);
	virt_shutdown();
	um_teardown();
}

static json_object *
body(const char *text)
{
	return json_tokener_parse(text);
}

static int
attach(const char *uuid, const char *text, struct api_error *err)
{
	json_object *b = body(text), *dev = NULL;
	int rc;

	memset(err, 0, sizeof(*err));
	rc = devices_attach(uuid, b, &dev, err);
	json_object_put(b);
	json_object_put(dev);
	return rc;
}

static char *
def_xml(const char *uuid)
{
	struct api_error err;
	char *xml;

	ck_assert_int_eq(virt_dom_xml(uuid, true, &xml, NULL, NULL, &err), 0);
	return xml;
}

static const char *
vm_dev_state(const char *uuid, const char *id)
{
	static char st[32];
	json_object *arr = devices_vm_json(uuid), *e = find_id(arr, id);

	snprintf(st, sizeof(st), "%s", e != NULL ? jstr(e, "state") : "none");
	json_object_put(arr);
	return st;
}

START_TEST(test_usb_attach_persistent)
{
	struct api_error err;
	struct usb_hostdev *hd;
	struct usb_cfg *cfg;
	char *xml, *meta;
	size_t n;

	/* A shut-off VM: the definition gets the hostdev at bus 1 device 4. */
	ck_assert_msg(attach(uuid_a,
			  "{\"usb\":{\"vendor\":\"10c4\",\"product\":\"ea60\","
			  "\"serial\":\"5e2a0f3b9c51ed11\"}}",
			  &err) == 0,
	    "%s", err.msg);
	xml = def_xml(uuid_a);
	n = devices_hostdevs_parse(xml, &hd);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(hd[0].vendor, 0x10c4);
	ck_assert_uint_eq(hd[0].bus, 1);
	ck_assert_uint_eq(hd[0].device, 4);
	ck_assert_ptr_nonnull(strstr(xml, "startupPolicy=\"optional\"")
		? strstr(xml, "startupPolicy=\"optional\"")
		: strstr(xml, "startupPolicy='optional'"));
	devices_hostdevs_free(hd, n);
	free(xml);
	ck_assert_int_eq(virt_dom_meta(uuid_a, true, &meta, &err), 0);
	ck_assert_uint_eq(devices_meta_parse(meta, &cfg), 1);
	ck_assert_str_eq(cfg[0].serial, "5e2a0f3b9c51ed11");
	free(cfg);
	free(meta);
	ck_assert_str_eq(
	    vm_dev_state(uuid_a, "10c4:ea60:5e2a0f3b9c51ed11"), "ready");

	/* The no-serial adapter, by ids alone (it is the only one). */
	ck_assert_msg(attach(uuid_a,
			  "{\"usb\":{\"vendor\":\"0x1a86\",\"product\":29987}}",
			  &err) == 0,
	    "%s", err.msg);
	ck_assert_str_eq(vm_dev_state(uuid_a, "1a86:7523@1-4"), "ready");

	/* Refusals: 409 and nothing changed. */
	ck_assert_int_eq(attach(uuid_b,
			     "{\"usb\":{\"vendor\":\"10c4\",\"product\":"
			     "\"ea60\",\"serial\":\"5e2a0f3b9c51ed11\"}}",
			     &err),
	    -1);
	ck_assert_int_eq(err.status, 409);
	ck_assert_str_eq(err.code, "device_in_use");
	ck_assert_ptr_nonnull(strstr(err.msg, VM_A));
	ck_assert_int_eq(attach(uuid_a,
			     "{\"usb\":{\"vendor\":\"10c4\",\"product\":"
			     "\"ea60\",\"serial\":\"5e2a0f3b9c51ed11\"}}",
			     &err),
	    -1);
	ck_assert_str_eq(err.code, "already_attached");
	ck_assert_int_eq(attach(uuid_b,
			     "{\"usb\":{\"vendor\":\"10c4\",\"product\":"
			     "\"ea60\"}}",
			     &err),
	    -1);
	ck_assert_str_eq(err.code, "device_ambiguous");
	ck_assert_int_eq(attach(uuid_b,
			     "{\"usb\":{\"vendor\":\"05e3\",\"product\":"
			     "\"0608\"}}",
			     &err),
	    -1);
	ck_assert_int_eq(err.status, 409);
	ck_assert_str_eq(err.code, "device_not_passable");
	ck_assert_int_eq(attach(uuid_b,
			     "{\"usb\":{\"vendor\":\"0781\",\"product\":"
			     "\"5583\"}}",
			     &err),
	    -1);
	ck_assert_str_eq(err.code, "device_not_passable");
	ck_assert_int_eq(attach(uuid_b,
			     "{\"usb\":{\"vendor\":\"1cf1\",\"product\":"
			     "\"0030\",\"serial\":\"nope\"}}",
			     &err),
	    -1);
	ck_assert_str_eq(err.code, "device_absent");
	ck_assert_int_eq(
	    attach(uuid_b, "{\"usb\":{\"vendor\":\"xyz\"}}", &err), -1);
	ck_assert_int_eq(err.status, 400);
	xml = def_xml(uuid_b);
	ck_assert_ptr_null(strstr(xml, "hostdev"));
	free(xml);

	/* Detach: gone from the definition and the metadata. */
	ck_assert_int_eq(devices_detach(uuid_a, "1a86:7523@1-4", &err), 0);
	ck_assert_int_eq(devices_detach(uuid_a, "1a86:7523@1-4", &err), -1);
	ck_assert_int_eq(err.status, 404);
	ck_assert_int_eq(
	    devices_detach(uuid_a, "10c4:ea60:5e2a0f3b9c51ed11", &err), 0);
	xml = def_xml(uuid_a);
	ck_assert_ptr_null(strstr(xml, "hostdev"));
	ck_assert_ptr_null(strstr(xml, "gvm:usb"));
	free(xml);
}
END_TEST

/*
 * A replug: the definition still names the ConBee at its old address
 * (device 99); the "arrived" event, as usb.c's libusb callback sends it,
 * moves it to the current one.
 */
START_TEST(test_usb_replug_definition)
{
	struct usb_hostdev *hd;
	struct api_error err;
	struct usb_dev *devs;
	struct usb_cfg c;
	char *xml, *meta;
	size_t n, i;

	define(VM_A,
	    "<hostdev mode='subsystem' type='usb' managed='yes'>"
	    "<source startupPolicy='optional'><vendor id='0x1cf1'/>"
	    "<product id='0x0030'/><address bus='1' device='99'/></source>"
	    "</hostdev>",
	    uuid_a);
	memset(&c, 0, sizeof(c));
	c.vendor = 0x1cf1;
	c.product = 0x0030;
	strcpy(c.serial, "DE2412345");
	meta = devices_meta_build(NULL, &c, 1);
	ck_assert_int_eq(virt_dom_set_meta(uuid_a, meta, false, true, &err), 0);
	free(meta);

	ck_assert_int_eq(usb_scan(&devs, &n), 0);
	for (i = 0; i < n && devs[i].vendor != 0x1cf1; i++)
		;
	ck_assert_uint_lt(i, n);
	devices_usb_event(&devs[i], true);
	free(devs);

	xml = def_xml(uuid_a);
	n = devices_hostdevs_parse(xml, &hd);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(hd[0].bus, 1);
	ck_assert_uint_eq(hd[0].device, 5);
	devices_hostdevs_free(hd, n);
	free(xml);
	ck_assert_str_eq(vm_dev_state(uuid_a, "1cf1:0030:DE2412345"), "ready");
}
END_TEST

/*
 * A running VM.  The sandbox's libvirtd sees no USB devices, so QEMU cannot
 * get one: the live attach fails and must leave the definition and the
 * metadata as they were.  A configured device that is missing at start is
 * no error (startupPolicy='optional'): the VM runs, the device "waiting".
 */
START_TEST(test_usb_running)
{
	struct api_error err;
	struct usb_cfg c;
	char *before, *after, *meta;
	json_object *vm = NULL;

	memset(&c, 0, sizeof(c));
	c.vendor = 0x0658;
	c.product = 0x0200;
	strcpy(c.serial, "unplugged");
	define(VM_A,
	    "<hostdev mode='subsystem' type='usb' managed='yes'>"
	    "<source startupPolicy='optional'><vendor id='0x0658'/>"
	    "<product id='0x0200'/></source></hostdev>",
	    uuid_a);
	meta = devices_meta_build(NULL, &c, 1);
	ck_assert_int_eq(virt_dom_set_meta(uuid_a, meta, false, true, &err), 0);
	free(meta);
	ck_assert_msg(
	    virt_action(uuid_a, ACT_START, 0, &vm, &err) == 0, "%s", err.msg);
	json_object_put(vm);
	ck_assert_str_eq(
	    vm_dev_state(uuid_a, "0658:0200:unplugged"), "waiting");

	before = def_xml(uuid_a);
	ck_assert_int_eq(attach(uuid_a,
			     "{\"usb\":{\"vendor\":\"1cf1\",\"product\":"
			     "\"0030\"}}",
			     &err),
	    -1);
	ck_assert_int_eq(err.status, 409);
	ck_assert_str_eq(err.code, "attach_failed");
	after = def_xml(uuid_a);
	ck_assert_str_eq(before, after);
	free(before);
	free(after);
	ck_assert_str_eq(vm_dev_state(uuid_a, "1cf1:0030:DE2412345"), "none");

	/* A replug while it runs: the definition follows; the live
	 * hand-over is what only a real host can do. */
	{
		struct usb_dev *devs;
		size_t n, i;

		c.vendor = 0x1cf1;
		c.product = 0x0030;
		strcpy(c.serial, "DE2412345");
		meta = devices_meta_build(NULL, &c, 1);
		ck_assert_int_eq(
		    virt_dom_set_meta(uuid_a, meta, true, true, &err), 0);
		free(meta);
		ck_assert_int_eq(usb_scan(&devs, &n), 0);
		for (i = 0; i < n && devs[i].vendor != 0x1cf1; i++)
			;
		devices_usb_event(&devs[i], true);
		free(devs);
		after = def_xml(uuid_a);
		ck_assert_ptr_nonnull(strstr(after, "0x1cf1"));
		free(after);
		ck_assert_str_eq(
		    vm_dev_state(uuid_a, "1cf1:0030:DE2412345"), "detached");
	}
	virt_action(uuid_a, ACT_FORCE_STOP, 0, NULL, &err);
}
END_TEST

Suite *
suite_usb(void)
{
	Suite *s = suite_create("usb");
	TCase *tc = tcase_create("pure");

	tcase_add_test(tc, test_usb_known);
	tcase_add_test(tc, test_usb_ids);
	tcase_add_test(tc, test_usb_meta);
	tcase_add_test(tc, test_usb_hostdev_xml);
	tcase_add_test(tc, test_usb_vm_summary);
	suite_add_tcase(s, tc);
	if (getenv("UMOCKDEV_DIR") == NULL)
		return s;
	tc = tcase_create("umockdev");
	tcase_add_checked_fixture(tc, um_setup, um_teardown);
	tcase_add_test(tc, test_usb_scan);
	tcase_add_test(tc, test_usb_host_json);
	suite_add_tcase(s, tc);
	if (getenv("GVM_SANDBOX") == NULL)
		return s;
	tc = tcase_create("sandbox");
	tcase_add_checked_fixture(tc, sb_setup, sb_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_usb_attach_persistent);
	tcase_add_test(tc, test_usb_replug_definition);
	tcase_add_test(tc, test_usb_running);
	suite_add_tcase(s, tc);
	return s;
}
