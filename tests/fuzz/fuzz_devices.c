/*
 * The USB/PCI device-tree readers.  The first byte picks one (its value
 * modulo 3), the rest is split into parts at "\n%%\n":
 *
 *   0  known USB devices: part 1 is templates/devices/usb-devices.json
 *      (devices_known_load_text), part 2 lines "VVVV:PPPP product name"
 *      looked up in it (devices_usb_known);
 *   1  a domain's XML for devices_hostdevs_parse and
 *      devices_pci_hostdevs_parse;
 *   2  a fake /sys for pci.c (libpci's sysfs method): part 1 is the
 *      accelerator rules file (pci-accelerators.json; empty: none), each
 *      further part (at most 4) a device, one line per attribute in the
 *      order of DEV_ATTRS (a missing line or "-": no such file or link),
 *      then pci_devices_json, pci_check_passthrough and
 *      pci_ai_acceleration_json.  Builds without PCI (pci_none.c) answer
 *      "not built" to the same calls.
 *
 * Every JSON answer must print as a JSON value of the documented type, and
 * every device address pci.c prints must be one pci_addr_valid accepts.
 */
#include <sys/stat.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <unistd.h>

#include "fuzz.h"
#include "vmmod.h"

#define SEP "\n%%\n"
#define MAX_PCI_DEVS 4
#define MAX_USB_LOOKUPS 16

/* A part of the input: [p, p + n). */
struct part {
	const char *p;
	size_t n;
};

/* Cuts the next part off *rest (all of it when there is no separator). */
static struct part
next_part(struct part *rest)
{
	struct part r = *rest;
	const char *s = memmem(rest->p, rest->n, SEP, strlen(SEP));

	if (s == NULL) {
		rest->p += rest->n;
		rest->n = 0;
	} else {
		r.n = (size_t)(s - rest->p);
		rest->n -= r.n + strlen(SEP);
		rest->p = s + strlen(SEP);
	}
	return r;
}

/* The next line of *rest into buf (NUL-terminated, cut to size), or false. */
static bool
next_line(struct part *rest, char *buf, size_t size)
{
	const char *nl;
	size_t n;

	if (rest->n == 0)
		return false;
	nl = memchr(rest->p, '\n', rest->n);
	n = nl != NULL ? (size_t)(nl - rest->p) : rest->n;
	snprintf(buf, size, "%.*s", (int)n, rest->p);
	buf[strcspn(buf, "\n")] = '\0'; /* an embedded NUL ends it anyway */
	rest->p += nl != NULL ? n + 1 : n;
	rest->n -= nl != NULL ? n + 1 : n;
	return true;
}

/* o printed and parsed again (strict) must be a value of type want. */
static void
check_json(json_object *o, json_type want, const char *what)
{
	json_tokener *tok = json_tokener_new();
	const char *text;
	json_object *back;

	if (!json_object_is_type(o, want)) {
		fprintf(
		    stderr, "%s: not a %s\n", what, json_type_to_name(want));
		abort();
	}
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	back = json_tokener_parse_ex(tok, text, (int)strlen(text));
	if (json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(back, want)) {
		fprintf(stderr, "%s: prints as bad JSON: %s\n", what, text);
		abort();
	}
	json_object_put(back);
	json_tokener_free(tok);
}

static const char *
str_field(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* ---- 0: known USB devices ------------------------------------------------ */

static void
fuzz_known(struct part rest)
{
	struct part known = next_part(&rest), devs = next_part(&rest);
	struct usb_dev u;
	char *text = fuzz_str((const uint8_t *)known.p, known.n), *err = NULL;
	char line[512], *name, *end, id[256];
	json_object *o;
	int i;

	if (devices_known_load_text(text, &err) == -1) {
		if (err == NULL) {
			fprintf(stderr, "devices_known_load_text: no error\n");
			abort();
		}
		free(err);
		err = NULL;
		/* the same state for every run: an empty list */
		if (devices_known_load_text("{\"usb\":[]}", &err) != 0)
			abort();
	}
	free(text);
	for (i = 0; i < MAX_USB_LOOKUPS && next_line(&devs, line, sizeof(line));
	     i++) {
		memset(&u, 0, sizeof(u));
		u.vendor = (unsigned)strtoul(line, &end, 16) & 0xffff;
		if (*end == ':')
			u.product =
			    (unsigned)strtoul(end + 1, &end, 16) & 0xffff;
		name = end + strspn(end, " ");
		snprintf(u.product_name, sizeof(u.product_name), "%s", name);
		snprintf(u.serial, sizeof(u.serial), "%s", name);
		snprintf(u.port, sizeof(u.port), "%s", name);
		if ((o = devices_usb_known(&u)) != NULL) {
			check_json(o, json_type_object, "devices_usb_known");
			if (str_field(o, "kind") == NULL ||
			    str_field(o, "name") == NULL) {
				fprintf(stderr, "devices_usb_known: %s\n",
				    json_object_to_json_string(o));
				abort();
			}
			json_object_put(o);
		}
		devices_usb_id(
		    u.vendor, u.product, u.serial, u.port, id, sizeof(id));
		devices_usb_id(u.vendor, u.product, "", u.port, id, sizeof(id));
	}
}

/* ---- 1: a domain's hostdevs ---------------------------------------------- */

static void
fuzz_hostdevs(struct part rest)
{
	char *xml = fuzz_str((const uint8_t *)rest.p, rest.n);
	struct usb_hostdev *hd;
	struct pci_hostdev *ph;
	size_t n, i;

	n = devices_hostdevs_parse(xml, &hd);
	for (i = 0; i < n; i++)
		if (hd[i].xml == NULL ||
		    strncmp(hd[i].xml, "<hostdev", 8) != 0) {
			fprintf(stderr, "usb hostdev %zu: %s\n", i,
			    hd[i].xml != NULL ? hd[i].xml : "(null)");
			abort();
		}
	devices_hostdevs_free(hd, n);
	n = devices_pci_hostdevs_parse(xml, &ph);
	for (i = 0; i < n; i++)
		if (ph[i].xml == NULL ||
		    strncmp(ph[i].xml, "<hostdev", 8) != 0 ||
		    ph[i].addr[0] == '\0') {
			fprintf(stderr, "pci hostdev %zu: %s\n", i,
			    ph[i].xml != NULL ? ph[i].xml : "(null)");
			abort();
		}
	devices_pci_hostdevs_free(ph, n);
	free(xml);
}

/* ---- 2: a fake sysfs for pci.c ------------------------------------------- */

/* A device part's lines, in this order (after its address). */
static const char *const DEV_ATTRS[] = {"vendor", "device", "class",
    "iommu_group", "driver", "boot_vga", "subsystem_vendor", "subsystem_device",
    "revision"};

/* the pci.ids the scan names devices from (a few of the seeds' ids) */
static const char PCI_IDS[] = "8086  Intel Corporation\n"
			      "\t7d1d  Meteor Lake NPU\n"
			      "\t7d55  Meteor Lake-P [Intel Arc Graphics]\n"
			      "\t7e38  Meteor Lake-P PCI Express Root Port\n"
			      "C 03  Display controller\n"
			      "\t00  VGA compatible controller\n"
			      "C 06  Bridge\n"
			      "\t04  PCI bridge\n"
			      "C 12  Processing accelerators\n"
			      "\t00  Processing accelerators\n";

static char dir[] = "/tmp/gvm-fuzz-devices.XXXXXX";
static char sysroot[64], accel[64], ids[64];

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void
rm_tree(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void
cleanup(void)
{
	rm_tree(dir);
}

static void
write_file(const char *path, const void *data, size_t size)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
}

static void
xmkdir(const char *fmt, const char *arg)
{
	char path[512];

	snprintf(path, sizeof(path), fmt, sysroot, arg);
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		abort();
}

/* A name a sysfs link may end in: one path component. */
static bool
link_name_ok(const char *s)
{
	return s[0] != '\0' && strchr(s, '/') == NULL && strcmp(s, ".") != 0 &&
	    strcmp(s, "..") != 0 && strlen(s) < 64;
}

/*
 * One device directory from a part; its canonical address into addr (the
 * directory's name: libpci gives up on a name it cannot parse, so the
 * address line is read as numbers and printed again), the raw line into raw.
 */
static void
make_dev(struct part p, int idx, char addr[16], char raw[64])
{
	unsigned d = 0, b = 0, s = (unsigned)idx, f = 0;
	char line[512], dev[64], path[640], target[128];
	size_t i;

	if (!next_line(&p, raw, 64))
		raw[0] = '\0';
	if (sscanf(raw, "%x:%x:%x.%x", &d, &b, &s, &f) != 4) {
		d = b = f = 0;
		s = (unsigned)idx;
	}
	snprintf(addr, 16, "%04x:%02x:%02x.%x", d & 0xffff, b & 0xff, s & 0x1f,
	    f & 7);
	snprintf(dev, sizeof(dev), "bus/pci/devices/%s", addr);
	xmkdir("%s/%s", dev);
	/* what libpci's scan insists on, fixed */
	snprintf(path, sizeof(path), "%s/%s/resource", sysroot, dev);
	write_file(path, "0x0 0x0 0x0\n", 12);
	snprintf(path, sizeof(path), "%s/%s/irq", sysroot, dev);
	write_file(path, "0\n", 2);
	/* room for the newline added below */
	for (i = 0;
	     i < nitems(DEV_ATTRS) && next_line(&p, line, sizeof(line) - 1);
	     i++) {
		if (strcmp(line, "-") == 0)
			continue;
		snprintf(
		    path, sizeof(path), "%s/%s/%s", sysroot, dev, DEV_ATTRS[i]);
		unlink(path); /* a second device of the same address */
		if (strcmp(DEV_ATTRS[i], "iommu_group") == 0) {
			if (!link_name_ok(line))
				continue;
			xmkdir("%s/kernel/iommu_groups/%s", line);
			snprintf(target, sizeof(target),
			    "../../../../kernel/iommu_groups/%s", line);
			if (symlink(target, path) != 0)
				abort();
		} else if (strcmp(DEV_ATTRS[i], "driver") == 0) {
			if (!link_name_ok(line))
				continue;
			xmkdir("%s/bus/pci/drivers/%s", line);
			snprintf(
			    target, sizeof(target), "../../drivers/%s", line);
			if (symlink(target, path) != 0)
				abort();
		} else {
			strcat(line, "\n");
			write_file(path, line, strlen(line));
		}
	}
}

/* Each device of pci_devices_json's array has a valid address. */
static void
check_devices(json_object *a, const char *what)
{
	const char *addr;
	size_t i;

	check_json(a, json_type_array, what);
	for (i = 0; i < json_object_array_length(a); i++) {
		addr = str_field(json_object_array_get_idx(a, i), "address");
		if (addr == NULL || !pci_addr_valid(addr)) {
			fprintf(stderr, "%s: bad address in %s\n", what,
			    json_object_to_json_string(a));
			abort();
		}
	}
}

static void
check_verdict(enum pci_verdict v, char *why, const char *what)
{
	if ((v == PCI_OK) != (why == NULL) ||
	    strcmp(pci_verdict_code(v), "unknown") == 0) {
		fprintf(stderr, "%s: verdict %d, reason %s\n", what, v,
		    why != NULL ? why : "(none)");
		abort();
	}
	free(why);
}

static void
fuzz_pci(struct part rest)
{
	struct part rules = next_part(&rest), p;
	char addrs[MAX_PCI_DEVS][16], raw[64], other[64], *why;
	const char *set[MAX_PCI_DEVS];
	json_object *o, *usb, *u;
	size_t n = 0;

	if (sysroot[0] == '\0') {
		if (mkdtemp(dir) == NULL)
			abort();
		snprintf(sysroot, sizeof(sysroot), "%s/sys", dir);
		snprintf(accel, sizeof(accel), "%s/pci-accelerators.json", dir);
		snprintf(ids, sizeof(ids), "%s/pci.ids", dir);
		write_file(ids, PCI_IDS, strlen(PCI_IDS));
		pci_set_paths(sysroot, ids, accel);
		atexit(cleanup);
	}
	rm_tree(sysroot);
	unlink(accel);
	if (mkdir(sysroot, 0700) != 0)
		abort();
	xmkdir("%s/%s", "bus");
	xmkdir("%s/%s", "bus/pci");
	xmkdir("%s/%s", "bus/pci/devices");
	xmkdir("%s/%s", "bus/pci/drivers");
	xmkdir("%s/%s", "kernel");
	xmkdir("%s/%s", "kernel/iommu_groups");
	if (rules.n > 0)
		write_file(accel, rules.p, rules.n);
	raw[0] = '\0';
	while (n < MAX_PCI_DEVS && rest.n > 0) {
		p = next_part(&rest);
		make_dev(p, (int)n, addrs[n], n == 0 ? raw : other);
		set[n] = addrs[n];
		n++;
	}

	o = pci_devices_json();
	check_devices(o, "pci_devices_json");
	json_object_put(o);
	if (n > 0) {
		check_verdict(pci_check_passthrough(addrs[0], &why), why,
		    "pci_check_passthrough");
		check_verdict(pci_check_passthrough_set(set, n, &why), why,
		    "pci_check_passthrough_set");
	}
	check_verdict(pci_check_passthrough(raw, &why), why,
	    "pci_check_passthrough(raw)");
	o = pci_ai_acceleration_json(NULL);
	check_json(o, json_type_object, "pci_ai_acceleration_json(NULL)");
	json_object_put(o);
	/* the USB list as GET /api/host/devices has it: an NCS2 stick */
	usb = json_object_new_array();
	u = json_object_new_object();
	json_object_object_add(u, "vendor", json_object_new_string("03e7"));
	json_object_object_add(u, "product", json_object_new_string("2485"));
	json_object_array_add(usb, u);
	o = pci_ai_acceleration_json(usb);
	check_json(o, json_type_object, "pci_ai_acceleration_json(usb)");
	json_object_put(o);
	json_object_put(usb);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct part rest;

	log_init("fuzz", 0);
	if (size == 0)
		return 0;
	rest.p = (const char *)data + 1;
	rest.n = size - 1;
	switch (data[0] % 3) {
	case 0:
		fuzz_known(rest);
		break;
	case 1:
		fuzz_hostdevs(rest);
		break;
	default:
		fuzz_pci(rest);
		break;
	}
	return 0;
}
