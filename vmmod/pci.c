/*
 * PCI devices of an x86 host for passthrough (built with WITH_PCI=1; other
 * arches get pci_none.c).  libpci reads the sysfs tree (its "sysfs.path"
 * parameter points at a fake tree in the tests) and names devices from
 * pci.ids; the IOMMU groups, boot_vga and the group members come from the
 * same tree.  The only file that includes libpci.
 *
 * A device may be passed through (managed hostdev, VFIO) when the IOMMU is
 * on, it is not a bridge, it does not drive the host's console, and every
 * other endpoint of its IOMMU group goes along (bridges in the group stay).
 * Accelerators are named from templates/devices/pci-accelerators.json.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pci/pci.h>

#include "vmmod.h"

#define PCI_CLASS_BRIDGE_PCI_ 0x0604

struct pdev {
	unsigned int dom, bus, slot, func;
	char addr[13]; /* 0000:00:02.0 */
	unsigned int vendor, device, cls; /* cls: base class << 8 | sub */
	char vendor_name[128];
	char device_name[256];
	char class_name[128];
	char *driver; /* NULL: none bound */
	int group; /* -1: no IOMMU group */
	bool boot_vga;
};

struct pscan {
	struct pdev *v;
	size_t n;
	bool iommu; /* kernel/iommu_groups has a group */
};

static pthread_mutex_t pci_lock = PTHREAD_MUTEX_INITIALIZER;
static char *pci_root; /* a /sys tree; NULL: /sys */
static char *pci_ids; /* pci.ids; NULL: libpci's default */
static char *pci_accel; /* the accelerator data file */
/* libpci's error callback must not return: it jumps back here. */
static jmp_buf lib_jmp;
static char lib_msg[256];

static void __attribute__((noreturn)) lib_error(char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(lib_msg, sizeof(lib_msg), fmt, ap);
	va_end(ap);
	longjmp(lib_jmp, 1);
}

static void
lib_quiet(char *fmt, ...)
{
}

static const char *
root_path(void)
{
	return pci_root != NULL ? pci_root : "/sys";
}

void
pci_set_paths(const char *sysfs_root, const char *ids, const char *accel)
{
	pthread_mutex_lock(&pci_lock);
	free(pci_root);
	free(pci_ids);
	free(pci_accel);
	pci_root = sysfs_root != NULL ? xstrdup(sysfs_root) : NULL;
	pci_ids = ids != NULL ? xstrdup(ids) : NULL;
	pci_accel = accel != NULL ? xstrdup(accel) : NULL;
	pthread_mutex_unlock(&pci_lock);
}

/* First line of ROOT/bus/pci/devices/ADDR/ATTR, or NULL. */
static char *
attr_read(const char *addr, const char *attr)
{
	char *path, *s;

	xasprintf(&path, "%s/bus/pci/devices/%s/%s", root_path(), addr, attr);
	s = read_file(path, 4096, NULL);
	free(path);
	if (s != NULL)
		s[strcspn(s, "\n")] = '\0';
	return s;
}

static bool
iommu_on(void)
{
	char *path;
	DIR *d;
	struct dirent *de;
	bool on = false;

	xasprintf(&path, "%s/kernel/iommu_groups", root_path());
	if ((d = opendir(path)) != NULL) {
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.') {
				on = true;
				break;
			}
		closedir(d);
	}
	free(path);
	return on;
}

static void
name_of(struct pci_access *a, char *buf, size_t size, int flags, ...)
{
	va_list ap;
	int x, y;
	char *s;

	va_start(ap, flags);
	x = va_arg(ap, int);
	y = va_arg(ap, int);
	va_end(ap);
	/* pci.ids only: udev's hwdb would name what the file leaves out (host-
	 * dependent), and libpci 3.9 leaks a udev context per lookup on a
	 * host without hwdb.bin (fuzz_devices found it) */
	s = pci_lookup_name(a, buf, size,
	    flags | PCI_LOOKUP_NO_NUMBERS | PCI_LOOKUP_NO_HWDB, x, y);
	if (s == NULL)
		buf[0] = '\0';
	else if (s != buf)
		snprintf(buf, size, "%s", s);
}

static int
pdev_cmp(const void *x, const void *y)
{
	return strcmp(
	    ((const struct pdev *)x)->addr, ((const struct pdev *)y)->addr);
}

static void
scan_free(struct pscan *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->v[i].driver);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

/*
 * Every PCI function under the root, sorted by address.  Call with pci_lock
 * held (libpci's error callback jumps to a static buffer).  -1 when there is
 * no PCI bus there (logged once).
 */
static int
scan(struct pscan *s)
{
	struct pci_access *volatile a;
	struct pci_dev *d;
	struct pdev *p;
	char *path, *v;
	const char *g;

	memset(s, 0, sizeof(*s));
	a = pci_alloc();
	a->error = lib_error;
	a->warning = lib_quiet;
	a->debug = lib_quiet;
	a->method = PCI_ACCESS_SYS_BUS_PCI;
	xasprintf(&path, "%s/bus/pci", root_path());
	pci_set_param(a, "sysfs.path", path);
	free(path);
	if (pci_ids != NULL)
		pci_set_name_list_path(a, pci_ids, 0);
	if (setjmp(lib_jmp) != 0) {
		log_warnx("%s: libpci: %s", __func__, lib_msg);
		scan_free(s);
		pci_cleanup(a);
		return -1;
	}
	pci_init(a);
	pci_scan_bus(a);
	for (d = a->devices; d != NULL; d = d->next) {
		pci_fill_info(d,
		    PCI_FILL_IDENT | PCI_FILL_CLASS | PCI_FILL_IOMMU_GROUP |
			PCI_FILL_DRIVER);
		s->v = xreallocarray(s->v, s->n + 1, sizeof(*s->v));
		p = &s->v[s->n++];
		memset(p, 0, sizeof(*p));
		p->dom = d->domain;
		p->bus = d->bus;
		p->slot = d->dev;
		p->func = d->func;
		snprintf(p->addr, sizeof(p->addr), "%04x:%02x:%02x.%x",
		    p->dom & 0xffff, p->bus & 0xff, p->slot & 0x1f,
		    p->func & 0x7);
		p->vendor = d->vendor_id;
		p->device = d->device_id;
		p->cls = d->device_class;
		name_of(a, p->vendor_name, sizeof(p->vendor_name),
		    PCI_LOOKUP_VENDOR, p->vendor, 0);
		name_of(a, p->device_name, sizeof(p->device_name),
		    PCI_LOOKUP_DEVICE, p->vendor, p->device);
		name_of(a, p->class_name, sizeof(p->class_name),
		    PCI_LOOKUP_CLASS, p->cls, 0);
		v = pci_get_string_property(d, PCI_FILL_DRIVER);
		p->driver = v != NULL ? xstrdup(v) : NULL;
		g = pci_get_string_property(d, PCI_FILL_IOMMU_GROUP);
		p->group = g != NULL ? atoi(g) : -1;
		if ((v = attr_read(p->addr, "boot_vga")) != NULL) {
			p->boot_vga = strcmp(v, "1") == 0;
			free(v);
		}
	}
	pci_cleanup(a);
	s->iommu = iommu_on();
	if (s->n > 0)
		qsort(s->v, s->n, sizeof(*s->v), pdev_cmp);
	return 0;
}

static const struct pdev *
scan_find(const struct pscan *s, const char *addr)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->v[i].addr, addr) == 0)
			return &s->v[i];
	return NULL;
}

static bool
is_bridge(const struct pdev *p)
{
	return (p->cls >> 8) == 0x06 && p->cls != 0x0680; /* 0680: other */
}

/* Endpoints sharing p's IOMMU group (bridges there may stay behind). */
static size_t
group_peers(const struct pscan *s, const struct pdev *p,
    const struct pdev **out, size_t max)
{
	size_t i, n = 0;

	for (i = 0; i < s->n; i++) {
		if (&s->v[i] == p || s->v[i].group != p->group ||
		    s->v[i].cls == PCI_CLASS_BRIDGE_PCI_)
			continue;
		if (n < max)
			out[n] = &s->v[i];
		n++;
	}
	return n;
}

static bool
in_set(const char *addr, const char *const *set, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(set[i], addr) == 0)
			return true;
	return false;
}

/*
 * The verdict for p when set (n addresses) goes through together; *whyp is
 * a malloc'd reason unless PCI_OK.
 */
static enum pci_verdict
verdict(const struct pscan *s, const struct pdev *p, const char *const *set,
    size_t n, char **whyp)
{
	const struct pdev *peer[16];
	size_t np, i, missing = 0;
	char *list = NULL, *t;

	*whyp = NULL;
	if (!s->iommu) {
		*whyp = xstrdup("the IOMMU is off (boot the host with "
				"intel_iommu=on or amd_iommu=on)");
		return PCI_NO_IOMMU;
	}
	if (p->group < 0) {
		xasprintf(whyp, "%s is in no IOMMU group", p->addr);
		return PCI_NO_IOMMU;
	}
	if (is_bridge(p)) {
		xasprintf(
		    whyp, "%s is a bridge, not a device for a VM", p->addr);
		return PCI_INCAPABLE;
	}
	if (p->boot_vga) {
		xasprintf(
		    whyp, "%s drives the host's console (boot_vga)", p->addr);
		return PCI_HOST_USE;
	}
	np = group_peers(s, p, peer, nitems(peer));
	for (i = 0; i < np && i < nitems(peer); i++) {
		if (in_set(peer[i]->addr, set, n))
			continue;
		xasprintf(&t, "%s%s%s", list != NULL ? list : "",
		    list != NULL ? ", " : "", peer[i]->addr);
		free(list);
		list = t;
		missing++;
	}
	if (missing > 0 || np > nitems(peer)) {
		xasprintf(whyp,
		    "IOMMU group %d of %s also holds %s: pass the "
		    "whole group through together",
		    p->group, p->addr, list != NULL ? list : "more devices");
		free(list);
		return PCI_GROUP_SHARED;
	}
	return PCI_OK;
}

bool
pci_addr_valid(const char *addr)
{
	unsigned int dom, bus, slot, fn;
	char c;

	if (addr == NULL || strlen(addr) != 12 ||
	    sscanf(addr, "%4x:%2x:%2x.%1x%c", &dom, &bus, &slot, &fn, &c) != 4)
		return false;
	/* lower-case hex, the form sysfs and libvirt print */
	return strspn(addr, "0123456789abcdef:.") == 12 && slot < 32 &&
	    fn < 8 && addr[4] == ':' && addr[7] == ':' && addr[10] == '.';
}

enum pci_verdict
pci_check_passthrough_set(const char *const *addrs, size_t n, char **whyp)
{
	struct pscan s;
	const struct pdev *p;
	enum pci_verdict v = PCI_OK;
	size_t i;

	*whyp = NULL;
	for (i = 0; i < n; i++)
		if (!pci_addr_valid(addrs[i])) {
			xasprintf(whyp,
			    "not a PCI address (want "
			    "0000:00:02.0)");
			return PCI_BAD_ADDRESS;
		}
	pthread_mutex_lock(&pci_lock);
	if (scan(&s) == -1) {
		pthread_mutex_unlock(&pci_lock);
		*whyp = xstrdup("this host has no PCI bus to look at");
		return PCI_ABSENT;
	}
	for (i = 0; i < n && v == PCI_OK; i++) {
		if ((p = scan_find(&s, addrs[i])) == NULL) {
			xasprintf(
			    whyp, "no PCI device %s on this host", addrs[i]);
			v = PCI_ABSENT;
		} else
			v = verdict(&s, p, addrs, n, whyp);
	}
	scan_free(&s);
	pthread_mutex_unlock(&pci_lock);
	return v;
}

enum pci_verdict
pci_check_passthrough(const char *addr, char **whyp)
{
	return pci_check_passthrough_set(&addr, 1, whyp);
}

int
pci_verdict_status(enum pci_verdict v)
{
	switch (v) {
	case PCI_OK:
		return 200;
	case PCI_BAD_ADDRESS:
		return 400;
	case PCI_ABSENT:
		return 404;
	case PCI_NOT_BUILT:
		return 501;
	default:
		return 409;
	}
}

const char *
pci_verdict_code(enum pci_verdict v)
{
	static const char *const codes[] = {
	    [PCI_OK] = "ok",
	    [PCI_BAD_ADDRESS] = "invalid_device",
	    [PCI_ABSENT] = "device_absent",
	    [PCI_NO_IOMMU] = "iommu_off",
	    [PCI_INCAPABLE] = "not_passthrough_capable",
	    [PCI_HOST_USE] = "device_in_use_by_host",
	    [PCI_GROUP_SHARED] = "iommu_group_shared",
	    [PCI_NOT_BUILT] = "not_built",
	};

	return (unsigned)v < nitems(codes) ? codes[v] : "unknown";
}

/* The accelerator rules; NULL when the file is missing or bad (logged). */
static json_object *
accel_load(void)
{
	const char *path = pci_accel != NULL ? pci_accel
					     : DATADIR
	    "/templates/devices/pci-accelerators.json";
	json_object *o, *a;
	char *text;

	if ((text = read_file(path, 1 << 20, NULL)) == NULL) {
		log_warn("%s: %s", __func__, path);
		return NULL;
	}
	o = json_tokener_parse(text);
	free(text);
	if (o == NULL || !json_object_object_get_ex(o, "pci", &a) ||
	    !json_object_is_type(a, json_type_array)) {
		log_warnx("%s: %s: no \"pci\" array", __func__, path);
		json_object_put(o);
		return NULL;
	}
	return o;
}

static bool
str_in(json_object *arr, const char *s)
{
	size_t i;
	json_object *e;

	if (!json_object_is_type(arr, json_type_array))
		return false;
	for (i = 0; i < json_object_array_length(arr); i++) {
		e = json_object_array_get_idx(arr, i);
		if (json_object_is_type(e, json_type_string) &&
		    strcasecmp(json_object_get_string(e), s) == 0)
			return true;
	}
	return false;
}

/* The rule of the accelerator data (borrowed from rules) p matches, or NULL. */
static json_object *
accel_match(json_object *rules, const struct pdev *p)
{
	json_object *pci, *r, *x;
	char vid[5], did[5], cls[5];
	size_t i;
	bool ids_any;

	if (rules == NULL || !json_object_object_get_ex(rules, "pci", &pci))
		return NULL;
	snprintf(vid, sizeof(vid), "%04x", p->vendor);
	snprintf(did, sizeof(did), "%04x", p->device);
	snprintf(cls, sizeof(cls), "%04x", p->cls);
	for (i = 0; i < json_object_array_length(pci); i++) {
		r = json_object_array_get_idx(pci, i);
		if (!json_object_object_get_ex(r, "vendor_id", &x) ||
		    !json_object_is_type(x, json_type_string) ||
		    strcasecmp(json_object_get_string(x), vid) != 0)
			continue;
		if (json_object_object_get_ex(r, "classes", &x) &&
		    !str_in(x, cls))
			continue;
		/* a device_ids that is no array matches nothing */
		ids_any = !json_object_object_get_ex(r, "device_ids", &x) ||
		    (json_object_is_type(x, json_type_array) &&
			json_object_array_length(x) == 0);
		if (ids_any || str_in(x, did))
			return r;
	}
	return NULL;
}

static const char *
rule_str(json_object *r, const char *key)
{
	json_object *x;

	if (r == NULL || !json_object_object_get_ex(r, key, &x) ||
	    !json_object_is_type(x, json_type_string))
		return NULL;
	return json_object_get_string(x);
}

static json_object *
str_or_null(const char *s)
{
	return s != NULL && *s != '\0' ? json_object_new_string(s) : NULL;
}

/* One device as the API shows it (the Xen seed's fields included). */
static json_object *
pdev_json(const struct pscan *s, const struct pdev *p, json_object *rules)
{
	json_object *o = json_object_new_object(), *pt, *acc, *grp;
	char buf[640], hex[8];
	const char *set[1] = {p->addr};
	const struct pdev *peer[16];
	enum pci_verdict v;
	size_t i, np;
	json_object *r;
	char *why;

	json_object_object_add(o, "address", json_object_new_string(p->addr));
	snprintf(hex, sizeof(hex), "%04x", p->dom);
	json_object_object_add(o, "domain", json_object_new_string(hex));
	snprintf(hex, sizeof(hex), "%02x", p->bus);
	json_object_object_add(o, "bus", json_object_new_string(hex));
	snprintf(hex, sizeof(hex), "%02x", p->slot);
	json_object_object_add(o, "slot", json_object_new_string(hex));
	snprintf(hex, sizeof(hex), "%x", p->func);
	json_object_object_add(o, "function", json_object_new_string(hex));
	snprintf(hex, sizeof(hex), "%04x", p->vendor);
	json_object_object_add(o, "vendor_id", json_object_new_string(hex));
	snprintf(hex, sizeof(hex), "%04x", p->device);
	json_object_object_add(o, "device_id", json_object_new_string(hex));
	snprintf(hex, sizeof(hex), "%04x", p->cls);
	json_object_object_add(o, "class_id", json_object_new_string(hex));
	json_object_object_add(o, "vendor", str_or_null(p->vendor_name));
	json_object_object_add(o, "device", str_or_null(p->device_name));
	json_object_object_add(o, "class", str_or_null(p->class_name));
	/* lspci's "Class: Vendor Device"; its numeric form without names */
	if (p->class_name[0] && p->vendor_name[0] && p->device_name[0])
		snprintf(buf, sizeof(buf), "%s: %s %s", p->class_name,
		    p->vendor_name, p->device_name);
	else
		snprintf(buf, sizeof(buf), "Class %04x: Device %04x:%04x",
		    p->cls, p->vendor, p->device);
	json_object_object_add(o, "description", json_object_new_string(buf));
	json_object_object_add(o, "driver", str_or_null(p->driver));
	json_object_object_add(
	    o, "boot_vga", json_object_new_boolean(p->boot_vga));

	if (p->group >= 0) {
		grp = json_object_new_object();
		json_object_object_add(
		    grp, "id", json_object_new_int(p->group));
		r = json_object_new_array();
		for (i = 0; i < s->n; i++)
			if (s->v[i].group == p->group)
				json_object_array_add(
				    r, json_object_new_string(s->v[i].addr));
		json_object_object_add(grp, "devices", r);
		np = group_peers(s, p, peer, nitems(peer));
		json_object_object_add(
		    grp, "isolated", json_object_new_boolean(np == 0));
		json_object_object_add(o, "iommu_group", grp);
	} else
		json_object_object_add(o, "iommu_group", NULL);

	r = accel_match(rules, p);
	if (r != NULL) {
		acc = json_object_new_object();
		json_object_object_add(
		    acc, "type", str_or_null(rule_str(r, "type")));
		json_object_object_add(
		    acc, "model", str_or_null(rule_str(r, "model")));
		json_object_object_add(o, "accelerator", acc);
	} else
		json_object_object_add(o, "accelerator", NULL);

	v = verdict(s, p, set, 1, &why);
	pt = json_object_new_object();
	json_object_object_add(
	    pt, "possible", json_object_new_boolean(v == PCI_OK));
	json_object_object_add(
	    pt, "code", json_object_new_string(pci_verdict_code(v)));
	json_object_object_add(pt, "reason", str_or_null(why));
	free(why);
	json_object_object_add(o, "passthrough", pt);
	return o;
}

json_object *
pci_devices_json(void)
{
	json_object *a = json_object_new_array(), *rules;
	struct pscan s;
	size_t i;

	pthread_mutex_lock(&pci_lock);
	if (scan(&s) == 0) {
		rules = accel_load();
		for (i = 0; i < s.n; i++)
			json_object_array_add(a, pdev_json(&s, &s.v[i], rules));
		json_object_put(rules);
		scan_free(&s);
	}
	pthread_mutex_unlock(&pci_lock);
	return a;
}

json_object *
pci_hypervisor_devices_json(void)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "devices", pci_devices_json());
	return o;
}

/*
 * Counts USB devices a rule names: an array as GET /api/host/devices lists
 * them ({"vendor","product"}, 4 hex digits each).
 */
static int
usb_count(json_object *usb, json_object *rule)
{
	json_object *d, *v, *p, *pids;
	const char *rv = rule_str(rule, "vendor_id");
	size_t i;
	int n = 0;

	if (rv == NULL ||
	    !json_object_object_get_ex(rule, "product_ids", &pids))
		return 0;
	for (i = 0; i < json_object_array_length(usb); i++) {
		d = json_object_array_get_idx(usb, i);
		if (!json_object_object_get_ex(d, "vendor", &v) ||
		    !json_object_object_get_ex(d, "product", &p) ||
		    !json_object_is_type(v, json_type_string) ||
		    !json_object_is_type(p, json_type_string))
			continue;
		if (strcasecmp(json_object_get_string(v), rv) == 0 &&
		    str_in(pids, json_object_get_string(p)))
			n++;
	}
	return n;
}

json_object *
pci_ai_acceleration_json(json_object *usb)
{
	json_object *o = json_object_new_object(), *comps, *devs, *d, *acc, *x,
		    *pt, *rules, *urules, *c;
	size_t i;
	int n;

	comps = json_object_new_array();
	devs = pci_devices_json();
	for (i = 0; i < json_object_array_length(devs); i++) {
		d = json_object_array_get_idx(devs, i);
		if (!json_object_object_get_ex(d, "accelerator", &acc) ||
		    acc == NULL)
			continue;
		c = json_object_new_object();
		json_object_object_get_ex(acc, "type", &x);
		json_object_object_add(c, "type", json_object_get(x));
		json_object_object_get_ex(acc, "model", &x);
		json_object_object_add(c, "model", json_object_get(x));
		json_object_object_get_ex(d, "address", &x);
		json_object_object_add(c, "address", json_object_get(x));
		json_object_object_add(c, "tops", NULL);
		json_object_object_get_ex(d, "passthrough", &pt);
		json_object_object_get_ex(pt, "possible", &x);
		json_object_object_add(
		    c, "passthrough_available", json_object_get(x));
		json_object_object_get_ex(pt, "reason", &x);
		json_object_object_add(c, "reason", json_object_get(x));
		json_object_array_add(comps, c);
	}
	json_object_put(devs);

	pthread_mutex_lock(&pci_lock);
	rules = accel_load();
	pthread_mutex_unlock(&pci_lock);
	if (rules != NULL && json_object_object_get_ex(rules, "usb", &urules) &&
	    json_object_is_type(urules, json_type_array))
		for (i = 0; i < json_object_array_length(urules); i++) {
			x = json_object_array_get_idx(urules, i);
			c = json_object_new_object();
			json_object_object_add(
			    c, "type", str_or_null(rule_str(x, "type")));
			json_object_object_add(
			    c, "model", str_or_null(rule_str(x, "model")));
			if (usb == NULL) {
				json_object_object_add(c, "count", NULL);
				json_object_object_add(c,
				    "passthrough_available",
				    json_object_new_boolean(false));
				json_object_object_add(c, "reason",
				    json_object_new_string(
					"USB devices were not listed"));
			} else {
				n = usb_count(usb, x);
				if (n == 0) {
					json_object_put(c);
					continue;
				}
				json_object_object_add(
				    c, "count", json_object_new_int(n));
				json_object_object_add(c,
				    "passthrough_available",
				    json_object_new_boolean(true));
				json_object_object_add(c, "reason", NULL);
			}
			json_object_object_add(c, "tops", NULL);
			json_object_array_add(comps, c);
		}
	json_object_put(rules);

	/* No TOPS figure is claimed: the data file has none it could verify. */
	json_object_object_add(o, "total_tops", NULL);
	json_object_object_add(o, "components", comps);
	return o;
}

void
pci_api_devices(
    const struct api_request *req, const char *name, struct api_response *resp)
{
	resp->status = 200;
	resp->json = pci_hypervisor_devices_json();
}

void
pci_api_accel(
    const struct api_request *req, const char *name, struct api_response *resp)
{
	json_object *host = devices_host_json(), *usb = NULL;

	/* USB sticks (NCS2) come from the same scan as GET /api/host/devices */
	json_object_object_get_ex(host, "usb", &usb);
	resp->status = 200;
	resp->json = pci_ai_acceleration_json(usb);
	json_object_put(host);
}
