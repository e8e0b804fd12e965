/*
 * The devices API: host USB devices (usb.c) named from a data file, attached
 * to and detached from VMs through libvirt (virt.c), kept attached across
 * replugs.
 *
 * libvirt matches a USB <hostdev> by vendor/product and optionally by the
 * bus/device numbers; it cannot match a serial number, and the numbers change
 * on every replug.  So a VM's wanted devices live in its domain metadata
 * (<gvm:usb vendor product serial|port/>), and vmmod resolves serial (or, for
 * a device without one, the port path) to the current bus/device whenever it
 * writes a <hostdev>: at attach time, when the hotplug handler sees the
 * device arrive, and at start-up.  A stale <hostdev> (its bus/device no
 * longer present) is replaced, in the definition and in the running VM.
 * Every change runs under one mutex; an attach that fails halfway is undone
 * (live, definition, metadata: all or nothing).
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#include "vmmod.h"

#define KNOWN_FILE "devices/usb-devices.json"

struct usb_known {
	unsigned vendor, product;
	char *product_contains; /* NULL: any product string */
	char *kind;
	char *name;
};

/* A VM from the domain table. */
struct vmref {
	char uuid[37];
	char *name;
	bool off; /* shut off or crashed in the state table: no live XML */
};

static void devices_reconcile_dev(const struct usb_dev *);

static pthread_mutex_t dev_mtx = PTHREAD_MUTEX_INITIALIZER; /* changes */
static pthread_mutex_t known_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct usb_known *known;
static size_t nknown;
static bool usb_started;

/* ---- known devices (pure) ------------------------------------------------ */

static void
known_free(void)
{
	size_t i;

	for (i = 0; i < nknown; i++) {
		free(known[i].product_contains);
		free(known[i].kind);
		free(known[i].name);
	}
	free(known);
	known = NULL;
	nknown = 0;
}

static int
hex_id(const char *s, unsigned *idp)
{
	char *end;
	unsigned long v;

	if (s == NULL || !isxdigit((unsigned char)*s))
		return -1;
	v = strtoul(s, &end, 16);
	if (*end != '\0' || end - s > 4 || v > 0xffff)
		return -1;
	*idp = (unsigned)v;
	return 0;
}

static const char *
obj_str(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int
devices_known_load_text(const char *text, char **errp)
{
	json_tokener *tok;
	json_object *root = NULL, *arr, *e;
	struct usb_known *k;
	size_t i, n;
	const char *kind, *name, *pc;

	tok = json_tokener_new();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	root = json_tokener_parse_ex(tok, text, (int)strlen(text));
	if (json_tokener_get_error(tok) != json_tokener_success) {
		xasprintf(errp, "invalid JSON: %s",
		    json_tokener_error_desc(json_tokener_get_error(tok)));
		json_tokener_free(tok);
		return -1;
	}
	json_tokener_free(tok);
	if (!json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "usb", &arr) ||
	    !json_object_is_type(arr, json_type_array)) {
		*errp = xstrdup("want {\"usb\": [...]}");
		goto fail;
	}
	n = json_object_array_length(arr);
	k = xcalloc(n + 1, sizeof(*k));
	for (i = 0; i < n; i++) {
		e = json_object_array_get_idx(arr, i);
		kind = obj_str(e, "kind");
		name = obj_str(e, "name");
		pc = obj_str(e, "product_contains");
		if (hex_id(obj_str(e, "vendor"), &k[i].vendor) == -1 ||
		    hex_id(obj_str(e, "product"), &k[i].product) == -1 ||
		    kind == NULL || name == NULL) {
			xasprintf(errp,
			    "usb[%zu]: needs hex \"vendor\", \"product\", "
			    "\"kind\" and \"name\"",
			    i);
			while (i-- > 0) {
				free(k[i].product_contains);
				free(k[i].kind);
				free(k[i].name);
			}
			free(k);
			goto fail;
		}
		k[i].kind = xstrdup(kind);
		k[i].name = xstrdup(name);
		k[i].product_contains = pc != NULL ? xstrdup(pc) : NULL;
	}
	json_object_put(root);
	pthread_mutex_lock(&known_mtx);
	known_free();
	known = k;
	nknown = n;
	pthread_mutex_unlock(&known_mtx);
	return 0;
fail:
	json_object_put(root);
	return -1;
}

/* The first entry whose ids match and whose product text (if any) is in the
 * device's product string; entries with a text win over plain ones. */
static const struct usb_known *
known_find(const struct usb_dev *u)
{
	const struct usb_known *plain = NULL;
	size_t i;

	for (i = 0; i < nknown; i++) {
		if (known[i].vendor != u->vendor ||
		    known[i].product != u->product)
			continue;
		if (known[i].product_contains == NULL) {
			if (plain == NULL)
				plain = &known[i];
		} else if (strcasestr(u->product_name,
			       known[i].product_contains) != NULL)
			return &known[i];
	}
	return plain;
}

json_object *
devices_usb_known(const struct usb_dev *u)
{
	const struct usb_known *k;
	json_object *o = NULL;

	pthread_mutex_lock(&known_mtx);
	if ((k = known_find(u)) != NULL) {
		o = json_object_new_object();
		json_object_object_add(
		    o, "kind", json_object_new_string(k->kind));
		json_object_object_add(
		    o, "name", json_object_new_string(k->name));
	}
	pthread_mutex_unlock(&known_mtx);
	return o;
}

/* ---- identities (pure) --------------------------------------------------- */

static bool
serial_plain(const char *s)
{
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr("._-", *s) == NULL)
			return false;
	return true;
}

void
devices_usb_id(unsigned vendor, unsigned product, const char *serial,
    const char *port, char *buf, size_t size)
{
	size_t len;
	const char *p;

	if (serial != NULL && *serial != '\0') {
		if (serial_plain(serial)) {
			snprintf(
			    buf, size, "%04x:%04x:%s", vendor, product, serial);
			return;
		}
		/* Route segments stay simple: odd serials as hex. */
		len =
		    (size_t)snprintf(buf, size, "%04x:%04x:x", vendor, product);
		for (p = serial; *p != '\0' && len + 2 < size; p++)
			len += (size_t)snprintf(
			    buf + len, size - len, "%02x", (unsigned char)*p);
		return;
	}
	snprintf(buf, size, "%04x:%04x@%s", vendor, product, port);
}

bool
devices_cfg_matches(const struct usb_cfg *c, const struct usb_dev *u)
{
	if (c->vendor != u->vendor || c->product != u->product)
		return false;
	if (c->serial[0] != '\0')
		return strcmp(c->serial, u->serial) == 0;
	return u->serial[0] == '\0' && strcmp(c->port, u->port) == 0;
}

static void
cfg_id(const struct usb_cfg *c, char *buf, size_t size)
{
	devices_usb_id(c->vendor, c->product, c->serial, c->port, buf, size);
}

static void
cfg_from_dev(struct usb_cfg *c, const struct usb_dev *u)
{
	memset(c, 0, sizeof(*c));
	c->vendor = u->vendor;
	c->product = u->product;
	snprintf(c->serial, sizeof(c->serial), "%s", u->serial);
	if (u->serial[0] == '\0')
		snprintf(c->port, sizeof(c->port), "%s", u->port);
}

/* ---- metadata and hostdev XML (pure, libxml2) ---------------------------- */

static bool
is_gvm(xmlNodePtr n, const char *name)
{
	/* No namespace: the form devices_meta_build hands to libvirt. */
	return n->type == XML_ELEMENT_NODE &&
	    (n->ns == NULL ||
		xmlStrcmp(n->ns->href, BAD_CAST SPEC_XMLNS) == 0) &&
	    xmlStrcmp(n->name, BAD_CAST name) == 0;
}

static unsigned
xml_num(xmlNodePtr n, const char *attr, int base)
{
	xmlChar *v = xmlGetProp(n, BAD_CAST attr);
	unsigned long r = 0;
	char *end;

	if (v != NULL) {
		r = strtoul((const char *)v, &end, base);
		if (*end != '\0' || r > 0xffff)
			r = 0;
	}
	xmlFree(v);
	return (unsigned)r;
}

static xmlDocPtr
xml_parse(const char *text)
{
	return xmlReadMemory(text, (int)strlen(text), "mem.xml", NULL,
	    XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOERROR |
		XML_PARSE_NOWARNING);
}

size_t
devices_meta_parse(const char *meta, struct usb_cfg **cfgp)
{
	xmlDocPtr doc;
	xmlNodePtr root, n;
	xmlChar *v;
	struct usb_cfg *c = NULL;
	size_t k = 0;

	*cfgp = NULL;
	if (meta == NULL || (doc = xml_parse(meta)) == NULL)
		return 0;
	root = xmlDocGetRootElement(doc);
	for (n = root != NULL ? root->children : NULL; n != NULL; n = n->next) {
		if (!is_gvm(n, "usb"))
			continue;
		c = xreallocarray(c, k + 1, sizeof(*c));
		memset(&c[k], 0, sizeof(*c));
		c[k].vendor = xml_num(n, "vendor", 16);
		c[k].product = xml_num(n, "product", 16);
		if ((v = xmlGetProp(n, BAD_CAST "serial")) != NULL)
			snprintf(c[k].serial, sizeof(c[k].serial), "%s",
			    (const char *)v);
		xmlFree(v);
		if ((v = xmlGetProp(n, BAD_CAST "port")) != NULL)
			snprintf(c[k].port, sizeof(c[k].port), "%s",
			    (const char *)v);
		xmlFree(v);
		k++;
	}
	xmlFreeDoc(doc);
	*cfgp = c;
	return k;
}

/* Namespaces off a copied subtree: libvirt adds its own (the key's). */
static void
strip_ns(xmlNodePtr n)
{
	for (; n != NULL; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		n->ns = NULL;
		if (n->nsDef != NULL) {
			xmlFreeNsList(n->nsDef);
			n->nsDef = NULL;
		}
		strip_ns(n->children);
	}
}

/*
 * meta (NULL: none yet) with its <gvm:usb> children replaced by cfg, as
 * virDomainSetMetadata wants it: without a namespace of its own.
 */
char *
devices_meta_build(const char *meta, const struct usb_cfg *cfg, size_t n)
{
	xmlDocPtr old = NULL, doc;
	xmlNodePtr root, oroot, c, copy;
	xmlBufferPtr buf;
	char hex[8], *out;
	size_t i;

	doc = xmlNewDoc(BAD_CAST "1.0");
	root = xmlNewNode(NULL, BAD_CAST "vm");
	xmlDocSetRootElement(doc, root);
	if (meta != NULL && (old = xml_parse(meta)) != NULL &&
	    (oroot = xmlDocGetRootElement(old)) != NULL && is_gvm(oroot, "vm"))
		for (c = oroot->children; c != NULL; c = c->next) {
			if (c->type != XML_ELEMENT_NODE || is_gvm(c, "usb"))
				continue;
			copy = xmlDocCopyNode(c, doc, 1);
			copy->next = NULL;
			strip_ns(copy);
			xmlAddChild(root, copy);
		}
	xmlFreeDoc(old);
	for (i = 0; i < n; i++) {
		c = xmlNewChild(root, NULL, BAD_CAST "usb", NULL);
		snprintf(hex, sizeof(hex), "0x%04x", cfg[i].vendor);
		xmlNewProp(c, BAD_CAST "vendor", BAD_CAST hex);
		snprintf(hex, sizeof(hex), "0x%04x", cfg[i].product);
		xmlNewProp(c, BAD_CAST "product", BAD_CAST hex);
		if (cfg[i].serial[0] != '\0')
			xmlNewProp(
			    c, BAD_CAST "serial", BAD_CAST cfg[i].serial);
		else
			xmlNewProp(c, BAD_CAST "port", BAD_CAST cfg[i].port);
	}
	buf = xmlBufferCreate();
	xmlNodeDump(buf, doc, root, 0, 0);
	out = xstrdup((const char *)xmlBufferContent(buf));
	xmlBufferFree(buf);
	xmlFreeDoc(doc);
	return out;
}

static bool
xml_yes(xmlNodePtr n, const char *attr)
{
	xmlChar *v = xmlGetProp(n, BAD_CAST attr);
	bool yes = v != NULL && xmlStrcmp(v, BAD_CAST "yes") == 0;

	xmlFree(v);
	return yes;
}

size_t
devices_hostdevs_parse(const char *domxml, struct usb_hostdev **hdp)
{
	xmlDocPtr doc;
	xmlXPathContextPtr ctx;
	xmlXPathObjectPtr obj;
	xmlNodePtr h, s;
	xmlBufferPtr buf;
	struct usb_hostdev *hd = NULL;
	size_t k = 0;
	int i;

	*hdp = NULL;
	if (domxml == NULL || (doc = xml_parse(domxml)) == NULL)
		return 0;
	ctx = xmlXPathNewContext(doc);
	obj = xmlXPathEvalExpression(
	    BAD_CAST "/domain/devices/hostdev[@type='usb']", ctx);
	for (i = 0; obj != NULL && obj->nodesetval != NULL &&
	     i < obj->nodesetval->nodeNr;
	     i++) {
		h = obj->nodesetval->nodeTab[i];
		hd = xreallocarray(hd, k + 1, sizeof(*hd));
		memset(&hd[k], 0, sizeof(*hd));
		for (s = h->children; s != NULL; s = s->next) {
			if (s->type != XML_ELEMENT_NODE ||
			    xmlStrcmp(s->name, BAD_CAST "source") != 0)
				continue;
			hd[k].missing = xml_yes(s, "missing");
			for (s = s->children; s != NULL; s = s->next) {
				if (s->type != XML_ELEMENT_NODE)
					continue;
				if (xmlStrcmp(s->name, BAD_CAST "vendor") == 0)
					hd[k].vendor = xml_num(s, "id", 0);
				else if (!xmlStrcmp(
					     s->name, BAD_CAST "product"))
					hd[k].product = xml_num(s, "id", 0);
				else if (!xmlStrcmp(
					     s->name, BAD_CAST "address")) {
					hd[k].bus = xml_num(s, "bus", 0);
					hd[k].device = xml_num(s, "device", 0);
				}
			}
			break;
		}
		buf = xmlBufferCreate();
		xmlNodeDump(buf, doc, h, 0, 0);
		hd[k].xml = xstrdup((const char *)xmlBufferContent(buf));
		xmlBufferFree(buf);
		k++;
	}
	xmlXPathFreeObject(obj);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	*hdp = hd;
	return k;
}

void
devices_hostdevs_free(struct usb_hostdev *hd, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(hd[i].xml);
	free(hd);
}

/* ---- the domain table ---------------------------------------------------- */

static size_t
vm_list(struct vmref **vp)
{
	json_object *all = state_vms_json(), *arr, *e;
	struct vmref *v;
	const char *uuid, *name, *st;
	size_t i, n, k = 0;

	arr = json_object_object_get(all, "vms");
	n = arr != NULL ? json_object_array_length(arr) : 0;
	v = xcalloc(n + 1, sizeof(*v));
	for (i = 0; i < n; i++) {
		e = json_object_array_get_idx(arr, i);
		uuid = obj_str(e, "uuid");
		name = obj_str(e, "name");
		if (uuid == NULL || strlen(uuid) != 36)
			continue;
		memcpy(v[k].uuid, uuid, 37);
		v[k].name = xstrdup(name != NULL ? name : uuid);
		st = obj_str(e, "state");
		v[k].off = st != NULL &&
		    (strcmp(st, "shutoff") == 0 || strcmp(st, "crashed") == 0);
		k++;
	}
	json_object_put(all);
	*vp = v;
	return k;
}

static void
vm_list_free(struct vmref *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

/* The VM's wanted devices, from its definition (or live, when transient). */
static size_t
vm_cfgs(const char *uuid, char **metap, struct usb_cfg **cfgp)
{
	struct api_error err;
	char *meta = NULL;
	size_t n;

	if (virt_dom_meta(uuid, true, &meta, &err) == -1)
		virt_dom_meta(uuid, false, &meta, &err);
	n = devices_meta_parse(meta, cfgp);
	if (metap != NULL)
		*metap = meta;
	else
		free(meta);
	return n;
}

static const struct usb_dev *
dev_find(const struct usb_cfg *c, const struct usb_dev *devs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (devices_cfg_matches(c, &devs[i]))
			return &devs[i];
	return NULL;
}

static bool
addr_present(
    unsigned bus, unsigned device, const struct usb_dev *devs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (devs[i].bus == bus && devs[i].address == device)
			return true;
	return false;
}

/*
 * The <hostdev> that stands for dev: the one at its bus/device, else -1 and
 * *stalep the first of its vendor/product whose address is gone (or that
 * has none), else -1 too.
 */
static int
hostdev_for(const struct usb_hostdev *hd, size_t nhd, const struct usb_dev *u,
    unsigned vendor, unsigned product, const struct usb_dev *devs, size_t ndevs,
    int *stalep)
{
	size_t i;

	*stalep = -1;
	for (i = 0; i < nhd; i++) {
		if (hd[i].vendor != vendor || hd[i].product != product)
			continue;
		if (u != NULL && hd[i].bus == u->bus &&
		    hd[i].device == u->address && !hd[i].missing)
			return (int)i;
		if (*stalep == -1 &&
		    (hd[i].bus == 0 || hd[i].missing ||
			!addr_present(hd[i].bus, hd[i].device, devs, ndevs)))
			*stalep = (int)i;
	}
	return -1;
}

/* ---- JSON ---------------------------------------------------------------- */

static void
add_str(json_object *o, const char *key, const char *s)
{
	json_object_object_add(
	    o, key, s != NULL && *s != '\0' ? json_object_new_string(s) : NULL);
}

static json_object *
dev_json(const struct usb_dev *u, const char *attached_to)
{
	json_object *o = json_object_new_object(), *k;
	char id[2 * USB_STR_MAX + 32], hex[8], name[2 * USB_STR_MAX + 8];

	devices_usb_id(
	    u->vendor, u->product, u->serial, u->port, id, sizeof(id));
	add_str(o, "id", id);
	snprintf(hex, sizeof(hex), "%04x", u->vendor);
	add_str(o, "vendor", hex);
	snprintf(hex, sizeof(hex), "%04x", u->product);
	add_str(o, "product", hex);
	add_str(o, "serial", u->serial);
	add_str(o, "manufacturer", u->manufacturer);
	add_str(o, "product_name", u->product_name);
	k = devices_usb_known(u);
	/* "Zigbee coordinator — Silicon Labs CP2102N ..." */
	if (k != NULL && u->product_name[0] != '\0' &&
	    strcasestr(
		json_object_get_string(json_object_object_get(k, "name")),
		u->product_name) == NULL)
		snprintf(name, sizeof(name), "%s \xe2\x80\x94 %s",
		    json_object_get_string(json_object_object_get(k, "name")),
		    u->product_name);
	else if (k != NULL)
		snprintf(name, sizeof(name), "%s",
		    json_object_get_string(json_object_object_get(k, "name")));
	else if (u->product_name[0] != '\0')
		snprintf(name, sizeof(name), "%s%s%s", u->manufacturer,
		    u->manufacturer[0] != '\0' ? " " : "", u->product_name);
	else
		snprintf(name, sizeof(name), "USB device %04x:%04x", u->vendor,
		    u->product);
	add_str(o, "name", name);
	json_object_object_add(o, "kind",
	    k != NULL ? json_object_get(json_object_object_get(k, "kind"))
		      : NULL);
	json_object_put(k);
	add_str(o, "path", u->port);
	json_object_object_add(o, "bus", json_object_new_int((int)u->bus));
	json_object_object_add(
	    o, "device", json_object_new_int((int)u->address));
	json_object_object_add(
	    o, "class", json_object_new_int((int)u->dev_class));
	add_str(o, "attached_to", attached_to);
	/* What pick() refuses: the UI offers no Attach for it. */
	json_object_object_add(
	    o, "passable", json_object_new_boolean(!u->hub && !u->storage));
	return o;
}

json_object *
devices_host_json(void)
{
	json_object *o = json_object_new_object(), *arr;
	struct usb_dev *devs = NULL;
	struct usb_hostdev *hd;
	struct usb_cfg *cfg;
	struct vmref *vms;
	const char **owner;
	char *xml;
	bool running;
	size_t i, j, n = 0, nvms, ncfg, nhd;

	arr = json_object_new_array();
	pthread_mutex_lock(&dev_mtx);
	if (usb_scan(&devs, &n) == -1)
		n = 0;
	owner = xcalloc(n + 1, sizeof(*owner));
	nvms = vm_list(&vms);
	for (i = 0; i < nvms; i++) {
		/* Wanted by a VM, or in a running VM's live hostdevs. */
		ncfg = vm_cfgs(vms[i].uuid, NULL, &cfg);
		for (j = 0; j < ncfg; j++) {
			size_t d;

			for (d = 0; d < n; d++)
				if (owner[d] == NULL &&
				    devices_cfg_matches(&cfg[j], &devs[d]))
					owner[d] = vms[i].name;
		}
		free(cfg);
		xml = NULL;
		/* live hostdevs: one libvirt call per running VM, not per VM */
		if (!vms[i].off &&
		    virt_dom_xml(vms[i].uuid, false, &xml, &running, NULL,
			&(struct api_error){0}) == 0 &&
		    running) {
			nhd = devices_hostdevs_parse(xml, &hd);
			for (j = 0; j < n; j++) {
				size_t h;

				for (h = 0; h < nhd && owner[j] == NULL; h++)
					if (hd[h].bus == devs[j].bus &&
					    hd[h].device == devs[j].address)
						owner[j] = vms[i].name;
			}
			devices_hostdevs_free(hd, nhd);
		}
		free(xml);
	}
	pthread_mutex_unlock(&dev_mtx);
	/* Hubs (root hubs included) cannot be passed through: not listed. */
	for (i = 0; i < n; i++)
		if (!devs[i].hub)
			json_object_array_add(
			    arr, dev_json(&devs[i], owner[i]));
	json_object_object_add(o, "usb", arr);
	json_object_object_add(o, "pci", pci_devices_json());
	vm_list_free(vms, nvms);
	free(owner);
	free(devs);
	return o;
}

json_object *
devices_vm_json(const char *uuid)
{
	json_object *arr = json_object_new_array(), *o, *k;
	struct usb_dev *devs = NULL, fake;
	struct usb_hostdev *hd = NULL;
	struct usb_cfg *cfg;
	const struct usb_dev *u;
	char *xml = NULL, id[2 * USB_STR_MAX + 32], hex[8];
	const char *st;
	bool running = false;
	size_t i, n = 0, ncfg, nhd = 0;
	int stale;

	pthread_mutex_lock(&dev_mtx);
	if (usb_scan(&devs, &n) == -1)
		n = 0;
	ncfg = vm_cfgs(uuid, NULL, &cfg);
	if (virt_dom_xml(
		uuid, false, &xml, &running, NULL, &(struct api_error){0}) == 0)
		nhd = devices_hostdevs_parse(xml, &hd);
	pthread_mutex_unlock(&dev_mtx);
	for (i = 0; i < ncfg; i++) {
		u = dev_find(&cfg[i], devs, n);
		if (u == NULL)
			st = "waiting"; /* for a replug */
		else if (!running)
			st = "ready"; /* attached when the VM starts */
		else if (hostdev_for(hd, nhd, u, cfg[i].vendor, cfg[i].product,
			     devs, n, &stale) >= 0)
			st = "attached";
		else
			st = "detached"; /* present, but not in the VM */
		o = json_object_new_object();
		cfg_id(&cfg[i], id, sizeof(id));
		add_str(o, "id", id);
		snprintf(hex, sizeof(hex), "%04x", cfg[i].vendor);
		add_str(o, "vendor", hex);
		snprintf(hex, sizeof(hex), "%04x", cfg[i].product);
		add_str(o, "product", hex);
		add_str(o, "serial", cfg[i].serial);
		add_str(o, "path", u != NULL ? u->port : cfg[i].port);
		memset(&fake, 0, sizeof(fake));
		fake.vendor = cfg[i].vendor;
		fake.product = cfg[i].product;
		k = devices_usb_known(u != NULL ? u : &fake);
		if (u != NULL && u->product_name[0] != '\0')
			add_str(o, "name", u->product_name);
		else if (k != NULL)
			add_str(o, "name",
			    json_object_get_string(
				json_object_object_get(k, "name")));
		else
			add_str(o, "name", id);
		json_object_object_add(o, "kind",
		    k != NULL
			? json_object_get(json_object_object_get(k, "kind"))
			: NULL);
		json_object_put(k);
		add_str(o, "state", st);
		json_object_array_add(arr, o);
	}
	devices_hostdevs_free(hd, nhd);
	free(xml);
	free(cfg);
	free(devs);
	return arr;
}

/* ---- PCI passthrough (x86: pci.c; elsewhere pci_none.c says 501) -------- */

/*
 * {"pci": "0000:00:02.0"} or {"pci": [the whole IOMMU group]}: pci.c says
 * whether the set may go to a VM (IOMMU on, no bridge, not the host's
 * console, the whole group); the domain table whether another VM has it.
 * Each becomes a <hostdev type='pci' managed='yes'> (libvirt binds it to
 * vfio-pci at start) in the definition and, when running, live; an attach
 * that fails halfway is undone.  The device id is its address.
 */
#define PCI_SET_MAX 16

static bool
pci_id_form(const char *s)
{
	unsigned d, b, sl, f;
	char c;

	return s != NULL && strlen(s) == 12 &&
	    sscanf(s, "%4x:%2x:%2x.%1x%c", &d, &b, &sl, &f, &c) == 4;
}

size_t
devices_pci_hostdevs_parse(const char *domxml, struct pci_hostdev **hdp)
{
	xmlDocPtr doc;
	xmlXPathContextPtr ctx;
	xmlXPathObjectPtr obj;
	xmlNodePtr a;
	xmlBufferPtr buf;
	struct pci_hostdev *hd = NULL;
	size_t k = 0;
	int i;

	*hdp = NULL;
	if (domxml == NULL || (doc = xml_parse(domxml)) == NULL)
		return 0;
	ctx = xmlXPathNewContext(doc);
	obj = xmlXPathEvalExpression(BAD_CAST
	    "/domain/devices/hostdev[@type='pci']/source/address",
	    ctx);
	for (i = 0; obj != NULL && obj->nodesetval != NULL &&
	     i < obj->nodesetval->nodeNr;
	     i++) {
		a = obj->nodesetval->nodeTab[i];
		hd = xreallocarray(hd, k + 1, sizeof(*hd));
		snprintf(hd[k].addr, sizeof(hd[k].addr), "%04x:%02x:%02x.%x",
		    xml_num(a, "domain", 0), xml_num(a, "bus", 0),
		    xml_num(a, "slot", 0), xml_num(a, "function", 0));
		buf = xmlBufferCreate();
		xmlNodeDump(buf, doc, a->parent->parent, 0, 0);
		hd[k].xml = xstrdup((const char *)xmlBufferContent(buf));
		xmlBufferFree(buf);
		k++;
	}
	xmlXPathFreeObject(obj);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	*hdp = hd;
	return k;
}

void
devices_pci_hostdevs_free(struct pci_hostdev *hd, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(hd[i].xml);
	free(hd);
}

char *
devices_pci_hostdev_xml(const char *addr)
{
	unsigned d = 0, b = 0, s = 0, f = 0;
	char *xml;

	sscanf(addr, "%4x:%2x:%2x.%1x", &d, &b, &s, &f);
	xasprintf(&xml,
	    "<hostdev mode='subsystem' type='pci' managed='yes'><source>"
	    "<address domain='0x%04x' bus='0x%02x' slot='0x%02x' "
	    "function='0x%x'/></source></hostdev>",
	    d, b, s, f);
	return xml;
}

static int
pci_find(const struct pci_hostdev *hd, size_t n, const char *addr)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(hd[i].addr, addr) == 0)
			return (int)i;
	return -1;
}

static int
body_pci(json_object *body, char addrs[PCI_SET_MAX][16], size_t *np,
    struct api_error *err)
{
	json_object *v, *e;
	size_t i, n;

	*np = 0;
	json_object_object_foreach(body, bkey, bval)
	{
		(void)bval;
		if (strcmp(bkey, "pci") != 0) {
			api_error_set(err, 400, "unknown_field",
			    "unknown field \"%.64s\" (a PCI request has only "
			    "\"pci\")",
			    bkey);
			return -1;
		}
	}
	v = json_object_object_get(body, "pci");
	if (json_object_is_type(v, json_type_string)) {
		e = v;
		n = 1;
	} else if (json_object_is_type(v, json_type_array) &&
	    (n = json_object_array_length(v)) > 0 && n <= PCI_SET_MAX)
		e = NULL;
	else
		goto bad;
	for (i = 0; i < n; i++) {
		json_object *a =
		    e != NULL ? e : json_object_array_get_idx(v, i);

		if (!json_object_is_type(a, json_type_string) ||
		    strlen(json_object_get_string(a)) >= 16)
			goto bad;
		snprintf(addrs[i], 16, "%s", json_object_get_string(a));
	}
	*np = n;
	return 0;
bad:
	api_error_set(err, 400, "bad_type",
	    "pci must be a PCI address (\"0000:00:02.0\") or a list of up to "
	    "%d (a whole IOMMU group)",
	    PCI_SET_MAX);
	return -1;
}

/* 409 when a VM (this one: already) has one of addrs, live or defined. */
static int
pci_check_free(
    const char *uuid, char addrs[][16], size_t n, struct api_error *err)
{
	struct pci_hostdev *hd;
	struct vmref *vms;
	char *xml;
	const char *hit = NULL;
	size_t i, j, k, nvms, nhd;
	int pass;

	nvms = vm_list(&vms);
	for (i = 0; i < nvms && hit == NULL; i++)
		for (pass = 0; pass < 2 && hit == NULL; pass++) {
			xml = NULL;
			if (virt_dom_xml(vms[i].uuid, pass == 0, &xml, NULL,
				NULL, &(struct api_error){0}) == -1) {
				free(xml);
				continue;
			}
			nhd = devices_pci_hostdevs_parse(xml, &hd);
			for (j = 0; j < n && hit == NULL; j++)
				for (k = 0; k < nhd; k++)
					if (strcmp(hd[k].addr, addrs[j]) == 0)
						hit = addrs[j];
			devices_pci_hostdevs_free(hd, nhd);
			free(xml);
			if (hit == NULL)
				continue;
			if (strcmp(vms[i].uuid, uuid) == 0)
				api_error_set(err, 409, "already_attached",
				    "%s is already attached to this VM", hit);
			else
				api_error_set(err, 409, "device_in_use",
				    "%s is already used by VM \"%.100s\"", hit,
				    vms[i].name);
		}
	vm_list_free(vms, nvms);
	return hit != NULL ? -1 : 0;
}

static void
pci_failed(struct api_error *err, const char *addr, bool attach, bool live)
{
	if (err->status == 409)
		api_error_set(err, 409,
		    attach ? "attach_failed" : "detach_failed",
		    "PCI device %s could not be %s %s (vmmod's log has details)",
		    addr, attach ? "attached to" : "detached from",
		    live ? "the running VM" : "the VM's definition");
}

/* The VM's classification may forbid PCI passthrough (profile.c). */
static int
pci_class_check(const char *domxml, struct api_error *err)
{
	struct vm_facts f = {0};
	enum vm_class c;
	int ret = 0;

	if (domparse_facts(domxml, &f) == 0 && f.classification[0] != '\0' &&
	    vm_class_parse(f.classification, &c) == 0 &&
	    (profile_required(c) & PROFILE_NO_PCI) != 0) {
		api_error_set(err, 409, "classification",
		    "%s VMs get no PCI passthrough", f.classification);
		ret = -1;
	}
	vm_facts_clear(&f);
	return ret;
}

static int
pci_attach(const char *uuid, json_object *body, json_object **devp,
    struct api_error *err)
{
	char addrs[PCI_SET_MAX][16], *why = NULL, *xml[PCI_SET_MAX] = {0};
	char *dom = NULL;
	const char *set[PCI_SET_MAX];
	bool running = false, persistent = false;
	bool live_done[PCI_SET_MAX] = {0}, cfg_done[PCI_SET_MAX] = {0};
	enum pci_verdict v;
	size_t i, n;
	int ret = -1;
	json_object *arr;

	if (body_pci(body, addrs, &n, err) == -1)
		return -1;
	for (i = 0; i < n; i++)
		set[i] = addrs[i];
	if ((v = pci_check_passthrough_set(set, n, &why)) != PCI_OK) {
		api_error_set(err, pci_verdict_status(v), pci_verdict_code(v),
		    "%s", why != NULL ? why : "refused");
		free(why);
		return -1;
	}
	pthread_mutex_lock(&dev_mtx);
	if (pci_check_free(uuid, addrs, n, err) == -1 ||
	    virt_dom_xml(uuid, false, &dom, &running, &persistent, err) == -1 ||
	    pci_class_check(dom, err) == -1)
		goto done;
	for (i = 0; i < n; i++) {
		xml[i] = devices_pci_hostdev_xml(addrs[i]);
		/* Live first: it is what fails when VFIO cannot take it. */
		if (running) {
			if (virt_hostdev(
				uuid, xml[i], true, true, false, err) == -1) {
				pci_failed(err, addrs[i], true, true);
				goto undo;
			}
			live_done[i] = true;
		}
		if (persistent) {
			if (virt_hostdev(
				uuid, xml[i], true, false, true, err) == -1) {
				pci_failed(err, addrs[i], true, false);
				goto undo;
			}
			cfg_done[i] = true;
		}
	}
	arr = json_object_new_array();
	for (i = 0; i < n; i++)
		json_object_array_add(arr, json_object_new_string(addrs[i]));
	*devp = json_object_new_object();
	json_object_object_add(*devp, "id", json_object_new_string(addrs[0]));
	json_object_object_add(*devp, "pci", arr);
	devices_kick(uuid);
	ret = 0;
	goto done;
undo:
	for (i = n; i-- > 0;) {
		if (cfg_done[i])
			virt_hostdev(uuid, xml[i], false, false, true,
			    &(struct api_error){0});
		if (live_done[i])
			virt_hostdev(uuid, xml[i], false, true, false,
			    &(struct api_error){0});
	}
done:
	pthread_mutex_unlock(&dev_mtx);
	for (i = 0; i < n; i++)
		free(xml[i]);
	free(dom);
	return ret;
}

static int
pci_detach(const char *uuid, const char *id, struct api_error *err)
{
	struct pci_hostdev *lhd = NULL, *chd = NULL;
	char *lxml = NULL, *cxml = NULL, *why = NULL;
	bool running = false, persistent = false, live_done = false;
	size_t nl = 0, nc = 0;
	int li = -1, ci = -1, ret = -1;

	if (pci_check_passthrough_set(NULL, 0, &why) == PCI_NOT_BUILT) {
		api_error_set(err, 501, "not_built", "%s", why);
		free(why);
		return -1;
	}
	free(why);
	pthread_mutex_lock(&dev_mtx);
	if (virt_dom_xml(uuid, false, &lxml, &running, &persistent, err) ==
		-1 ||
	    (persistent &&
		virt_dom_xml(uuid, true, &cxml, NULL, NULL, err) == -1))
		goto done;
	if (running) {
		nl = devices_pci_hostdevs_parse(lxml, &lhd);
		li = pci_find(lhd, nl, id);
	}
	if (persistent) {
		nc = devices_pci_hostdevs_parse(cxml, &chd);
		ci = pci_find(chd, nc, id);
	}
	if (li < 0 && ci < 0) {
		api_error_set(
		    err, 404, "not_found", "the VM has no such device");
		goto done;
	}
	if (li >= 0) {
		if (virt_hostdev(uuid, lhd[li].xml, false, true, false, err) ==
		    -1) {
			pci_failed(err, id, false, true);
			goto done;
		}
		live_done = true;
	}
	if (ci >= 0 &&
	    virt_hostdev(uuid, chd[ci].xml, false, false, true, err) == -1) {
		pci_failed(err, id, false, false);
		if (live_done)
			virt_hostdev(uuid, lhd[li].xml, true, true, false,
			    &(struct api_error){0});
		goto done;
	}
	devices_kick(uuid);
	ret = 0;
done:
	pthread_mutex_unlock(&dev_mtx);
	devices_pci_hostdevs_free(lhd, nl);
	devices_pci_hostdevs_free(chd, nc);
	free(lxml);
	free(cxml);
	return ret;
}

/* The VM's PCI hostdevs: [{id,address,name,state}]. */
json_object *
devices_vm_pci_json(const char *uuid)
{
	json_object *arr = json_object_new_array(), *o, *host = NULL, *h;
	struct pci_hostdev *lhd = NULL, *chd = NULL;
	char *lxml = NULL, *cxml = NULL;
	const char *name, *a;
	bool running = false, persistent = false;
	size_t i, j, nl = 0, nc = 0;

	if (virt_dom_xml(uuid, false, &lxml, &running, &persistent,
		&(struct api_error){0}) == 0)
		nl = devices_pci_hostdevs_parse(lxml, &lhd);
	if (persistent &&
	    virt_dom_xml(
		uuid, true, &cxml, NULL, NULL, &(struct api_error){0}) == 0)
		nc = devices_pci_hostdevs_parse(cxml, &chd);
	else {
		/* transient: what runs is all there is */
		chd = lhd;
		nc = nl;
	}
	if (nc > 0)
		host = pci_devices_json();
	for (i = 0; i < nc; i++) {
		o = json_object_new_object();
		add_str(o, "id", chd[i].addr);
		add_str(o, "address", chd[i].addr);
		name = NULL;
		for (j = 0; host != NULL && j < json_object_array_length(host);
		     j++) {
			h = json_object_array_get_idx(host, j);
			if ((a = obj_str(h, "address")) != NULL &&
			    strcmp(a, chd[i].addr) == 0)
				name = obj_str(h, "description");
		}
		add_str(o, "name", name != NULL ? name : chd[i].addr);
		add_str(o, "state",
		    !running				      ? "ready"
			: pci_find(lhd, nl, chd[i].addr) >= 0 ? "attached"
							      : "detached");
		json_object_array_add(arr, o);
	}
	json_object_put(host);
	if (chd != lhd)
		devices_pci_hostdevs_free(chd, nc);
	devices_pci_hostdevs_free(lhd, nl);
	free(lxml);
	free(cxml);
	return arr;
}

/* ---- per-VM summaries for the VM list ----------------------------------- */

/*
 * GET /api/vms and the SSE "vm" events carry each VM's devices, but their
 * path never asks libvirt: state.c's entry_json reads the summary kept here
 * (devices_vm_summary, under sum_mtx only; lock order state_mtx -> sum_mtx).
 * A worker recomputes the summary of a VM that devices_kick marked (its
 * state changed, a device was attached, detached, plugged or unplugged) and,
 * when it differs, has state.c publish the VM again (state_touch).
 */
struct vm_summary {
	char uuid[37];
	json_object *arr; /* [{id,name,state}] */
};

static pthread_mutex_t sum_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sum_cond = PTHREAD_COND_INITIALIZER;
static struct vm_summary *sums;
static size_t nsums;
static char (*sum_dirty)[37];
static size_t nsum_dirty;
static bool sum_all_dirty, sum_quit, sum_started;
static pthread_t sum_tid;

json_object *
devices_vm_summary(const char *uuid)
{
	json_object *arr = NULL;
	size_t i;

	pthread_mutex_lock(&sum_mtx);
	for (i = 0; i < nsums; i++)
		if (strcmp(sums[i].uuid, uuid) == 0) {
			json_object_deep_copy(sums[i].arr, &arr, NULL);
			break;
		}
	pthread_mutex_unlock(&sum_mtx);
	return arr != NULL ? arr : json_object_new_array();
}

/* The list's form of devices_vm_json's array: id, name and state. */
static json_object *
summary_of(json_object *full)
{
	static const char *const keep[] = {"id", "name", "state", NULL};
	json_object *arr = json_object_new_array(), *o, *e, *v;
	size_t i, k, n = json_object_array_length(full);

	for (i = 0; i < n; i++) {
		e = json_object_array_get_idx(full, i);
		o = json_object_new_object();
		for (k = 0; keep[k] != NULL; k++)
			json_object_object_add(o, keep[k],
			    json_object_object_get_ex(e, keep[k], &v)
				? json_object_get(v)
				: NULL);
		json_object_array_add(arr, o);
	}
	return arr;
}

bool
devices_summary_set(const char *uuid, json_object *arr)
{
	struct vm_summary *s = NULL;
	bool changed = true;
	size_t i;

	pthread_mutex_lock(&sum_mtx);
	for (i = 0; i < nsums; i++)
		if (strcmp(sums[i].uuid, uuid) == 0)
			s = &sums[i];
	if (s == NULL && arr != NULL && json_object_array_length(arr) == 0)
		changed = false; /* none before, none now */
	else if (s != NULL && arr != NULL)
		changed = !json_object_equal(s->arr, arr);
	if (!changed) {
		pthread_mutex_unlock(&sum_mtx);
		json_object_put(arr);
		return false;
	}
	if (s == NULL) {
		sums = xreallocarray(sums, nsums + 1, sizeof(*sums));
		s = &sums[nsums++];
		snprintf(s->uuid, sizeof(s->uuid), "%s", uuid);
		s->arr = NULL;
	}
	json_object_put(s->arr);
	s->arr = arr;
	if (arr == NULL) /* forget the VM */
		*s = sums[--nsums];
	pthread_mutex_unlock(&sum_mtx);
	if (arr != NULL)
		state_touch(uuid);
	return arr != NULL;
}

void
devices_kick(const char *uuid)
{
	size_t i;

	pthread_mutex_lock(&sum_mtx);
	if (uuid == NULL)
		sum_all_dirty = true;
	else {
		for (i = 0; i < nsum_dirty; i++)
			if (strcmp(sum_dirty[i], uuid) == 0)
				break;
		if (i == nsum_dirty) {
			sum_dirty = xreallocarray(
			    sum_dirty, nsum_dirty + 1, sizeof(*sum_dirty));
			snprintf(sum_dirty[nsum_dirty++], 37, "%s", uuid);
		}
	}
	pthread_cond_signal(&sum_cond);
	pthread_mutex_unlock(&sum_mtx);
}

/* Recomputes one VM's summary (libvirt calls, off the list path). */
static void
summary_refresh(const char *uuid)
{
	json_object *full, *sum, *pci;
	char u[37];
	size_t i;

	if (state_lookup(uuid, u) == -1) {
		devices_summary_set(uuid, NULL);
		return;
	}
	full = devices_vm_json(uuid);
	sum = summary_of(full);
	json_object_put(full);
	pci = devices_vm_pci_json(uuid);
	full = summary_of(pci);
	for (i = 0; i < json_object_array_length(full); i++)
		json_object_array_add(
		    sum, json_object_get(json_object_array_get_idx(full, i)));
	json_object_put(full);
	json_object_put(pci);
	devices_summary_set(uuid, sum);
}

static void *
summary_main(void *arg)
{
	struct vmref *vms;
	char(*dirty)[37];
	size_t i, n, nvms;
	bool all;

	(void)arg;
	pthread_mutex_lock(&sum_mtx);
	while (!sum_quit) {
		if (nsum_dirty == 0 && !sum_all_dirty) {
			pthread_cond_wait(&sum_cond, &sum_mtx);
			continue;
		}
		dirty = sum_dirty;
		n = nsum_dirty;
		all = sum_all_dirty;
		sum_dirty = NULL;
		nsum_dirty = 0;
		sum_all_dirty = false;
		pthread_mutex_unlock(&sum_mtx);
		if (all) {
			nvms = vm_list(&vms);
			for (i = 0; i < nvms; i++)
				summary_refresh(vms[i].uuid);
			vm_list_free(vms, nvms);
		}
		for (i = 0; i < n; i++)
			summary_refresh(dirty[i]);
		free(dirty);
		pthread_mutex_lock(&sum_mtx);
	}
	pthread_mutex_unlock(&sum_mtx);
	return NULL;
}

/* ---- attach, detach, re-attach (dev_mtx held) ---------------------------- */

/* optional: for the definition (a live attach must fail when absent). */
static char *
hostdev_xml(const struct usb_dev *u, bool optional)
{
	struct vm_usbdev ud = {u->vendor, u->product, NULL};

	return domxml_usb_hostdev(&ud, u->bus, u->address, optional);
}

/*
 * Puts dev into the VM where it is missing: replaces a stale <hostdev> of
 * the same ids in the definition, then in the running VM.  Best effort, for
 * the hotplug handler and start-up; logged and audited.
 */
static void
reattach_one(const char *uuid, const char *name, const struct usb_cfg *c,
    const struct usb_dev *u, const struct usb_dev *devs, size_t ndevs)
{
	struct usb_hostdev *hd;
	struct api_error err;
	char *xml = NULL, *want, *live, id[2 * USB_STR_MAX + 32];
	bool running, persistent;
	size_t nhd;
	int stale;

	cfg_id(c, id, sizeof(id));
	want = hostdev_xml(u, true);
	live = hostdev_xml(u, false);
	if (virt_dom_xml(uuid, true, &xml, &running, &persistent, &err) == 0 &&
	    persistent) {
		nhd = devices_hostdevs_parse(xml, &hd);
		if (hostdev_for(hd, nhd, u, c->vendor, c->product, devs, ndevs,
			&stale) < 0) {
			if (stale >= 0)
				virt_hostdev(uuid, hd[stale].xml, false, false,
				    true, &err);
			if (virt_hostdev(uuid, want, true, false, true, &err) ==
			    0)
				log_info("usb: %s: %s now at bus %u device %u "
					 "in the definition",
				    name, id, u->bus, u->address);
		}
		devices_hostdevs_free(hd, nhd);
	}
	free(xml);
	xml = NULL;
	if (virt_dom_xml(uuid, false, &xml, &running, NULL, &err) == 0 &&
	    running) {
		nhd = devices_hostdevs_parse(xml, &hd);
		if (hostdev_for(hd, nhd, u, c->vendor, c->product, devs, ndevs,
			&stale) < 0) {
			/* QEMU keeps the old, unplugged host address. */
			if (stale >= 0)
				virt_hostdev(uuid, hd[stale].xml, false, true,
				    false, &err);
			if (virt_hostdev(uuid, live, true, true, false, &err) ==
			    0) {
				log_info("usb: %s: re-attached %s", name, id);
				audit_log(
				    "hotplug", "usb-reattach", name, "ok");
			} else {
				log_warnx("usb: %s: re-attaching %s failed: %s",
				    name, id, err.msg);
				audit_log("hotplug", "usb-reattach", name,
				    "error:attach_failed");
			}
		}
		devices_hostdevs_free(hd, nhd);
	}
	free(xml);
	free(want);
	free(live);
}

/* For every VM that wants a present device: reattach_one. */
static void
reconcile_locked(const struct usb_dev *only)
{
	struct usb_dev *devs;
	struct usb_cfg *cfg;
	struct vmref *vms;
	const struct usb_dev *u;
	size_t i, j, n, nvms, ncfg;

	if (usb_scan(&devs, &n) == -1)
		return;
	nvms = vm_list(&vms);
	for (i = 0; i < nvms; i++) {
		ncfg = vm_cfgs(vms[i].uuid, NULL, &cfg);
		for (j = 0; j < ncfg; j++) {
			if (only != NULL && !devices_cfg_matches(&cfg[j], only))
				continue;
			if ((u = dev_find(&cfg[j], devs, n)) != NULL)
				reattach_one(vms[i].uuid, vms[i].name, &cfg[j],
				    u, devs, n);
		}
		free(cfg);
	}
	vm_list_free(vms, nvms);
	free(devs);
}

void
devices_reconcile(void)
{
	pthread_mutex_lock(&dev_mtx);
	reconcile_locked(NULL);
	pthread_mutex_unlock(&dev_mtx);
	devices_kick(NULL);
}

/*
 * The hotplug handler.  Arrived: a wanted device came back with new
 * bus/device numbers, so each VM that wants it gets it again.  Left: libvirt
 * and QEMU keep the stale hostdev until then; the dashboard shows "waiting".
 */
void
devices_usb_event(const struct usb_dev *u, bool arrived)
{
	json_object *o = json_object_new_object();
	char id[2 * USB_STR_MAX + 32];

	devices_usb_id(
	    u->vendor, u->product, u->serial, u->port, id, sizeof(id));
	log_info("usb: %s %s (bus %u device %u)", id,
	    arrived ? "arrived" : "left", u->bus, u->address);
	if (arrived && !u->hub)
		devices_reconcile_dev(u);
	json_object_object_add(
	    o, "usb", json_object_new_string(arrived ? "arrived" : "left"));
	json_object_object_add(o, "id", json_object_new_string(id));
	events_publish("host", o);
	json_object_put(o);
	devices_kick(NULL); /* "waiting" <-> "attached" in the VM list */
}

static void
devices_reconcile_dev(const struct usb_dev *u)
{
	pthread_mutex_lock(&dev_mtx);
	reconcile_locked(u);
	pthread_mutex_unlock(&dev_mtx);
}

static int
body_usbid(
    json_object *o, const char *key, unsigned *idp, struct api_error *err)
{
	json_object *v;
	const char *s;
	int64_t n;

	if (!json_object_object_get_ex(o, key, &v)) {
		api_error_set(
		    err, 400, "missing_field", "usb.%s is required", key);
		return -1;
	}
	if (json_object_is_type(v, json_type_int)) {
		n = json_object_get_int64(v);
		if (n >= 0 && n <= 0xffff) {
			*idp = (unsigned)n;
			return 0;
		}
	} else if (json_object_is_type(v, json_type_string)) {
		s = json_object_get_string(v);
		if (strncasecmp(s, "0x", 2) == 0)
			s += 2;
		if (hex_id(s, idp) == 0)
			return 0;
	}
	api_error_set(err, 400, "bad_type",
	    "usb.%s must be a USB id: 4 hex digits (\"10c4\") or an integer",
	    key);
	return -1;
}

static int
body_usb(json_object *body, struct usb_cfg *want, struct api_error *err)
{
	static const char *const fields[] = {
	    "vendor", "product", "serial", "path", NULL};
	json_object *usb, *v;
	const char *s;
	size_t i;

	memset(want, 0, sizeof(*want));
	if (body == NULL || !json_object_object_get_ex(body, "usb", &usb) ||
	    !json_object_is_type(usb, json_type_object)) {
		api_error_set(err, 400, "missing_field",
		    "want {\"usb\": {\"vendor\", \"product\", \"serial\"?}}");
		return -1;
	}
	json_object_object_foreach(body, bkey, bval)
	{
		(void)bval;
		if (strcmp(bkey, "usb") != 0) {
			api_error_set(err, 400, "unknown_field",
			    "unknown field \"%.64s\"", bkey);
			return -1;
		}
	}
	json_object_object_foreach(usb, key, val)
	{
		(void)val;
		for (i = 0; fields[i] != NULL; i++)
			if (strcmp(key, fields[i]) == 0)
				break;
		if (fields[i] == NULL) {
			api_error_set(err, 400, "unknown_field",
			    "unknown field \"usb.%.64s\"", key);
			return -1;
		}
	}
	if (body_usbid(usb, "vendor", &want->vendor, err) == -1 ||
	    body_usbid(usb, "product", &want->product, err) == -1)
		return -1;
	if (json_object_object_get_ex(usb, "serial", &v) && v != NULL) {
		if (!json_object_is_type(v, json_type_string) ||
		    (s = json_object_get_string(v))[0] == '\0' ||
		    strlen(s) >= sizeof(want->serial)) {
			api_error_set(err, 400, "bad_type",
			    "usb.serial must be a non-empty string");
			return -1;
		}
		snprintf(want->serial, sizeof(want->serial), "%s", s);
	}
	if (json_object_object_get_ex(usb, "path", &v) && v != NULL) {
		if (!json_object_is_type(v, json_type_string) ||
		    (s = json_object_get_string(v))[0] == '\0' ||
		    strlen(s) >= sizeof(want->port)) {
			api_error_set(err, 400, "bad_type",
			    "usb.path must be a port path such as \"1-1.2\"");
			return -1;
		}
		snprintf(want->port, sizeof(want->port), "%s", s);
	}
	return 0;
}

/* The one present device the request names; 409 when none or several. */
static const struct usb_dev *
pick(const struct usb_cfg *want, const struct usb_dev *devs, size_t n,
    struct api_error *err)
{
	const struct usb_dev *found = NULL;
	size_t i, count = 0;

	for (i = 0; i < n; i++) {
		if (devs[i].vendor != want->vendor ||
		    devs[i].product != want->product)
			continue;
		if (want->serial[0] != '\0' &&
		    strcmp(devs[i].serial, want->serial) != 0)
			continue;
		if (want->port[0] != '\0' &&
		    strcmp(devs[i].port, want->port) != 0)
			continue;
		found = &devs[i];
		count++;
	}
	if (count == 0) {
		api_error_set(err, 409, "device_absent",
		    "no USB device %04x:%04x%s%s is plugged in", want->vendor,
		    want->product,
		    want->serial[0] != '\0' ? " with serial " : "",
		    want->serial);
		return NULL;
	}
	if (count > 1) {
		api_error_set(err, 409, "device_ambiguous",
		    "%zu identical USB devices %04x:%04x are plugged in: name "
		    "one by its serial (or path)",
		    count, want->vendor, want->product);
		return NULL;
	}
	if (found->hub) {
		api_error_set(err, 409, "device_not_passable",
		    "USB hubs cannot be passed to a VM");
		return NULL;
	}
	if (found->storage) {
		api_error_set(err, 409, "device_not_passable",
		    "USB storage may hold the host's own disks and is not "
		    "passed to a VM");
		return NULL;
	}
	return found;
}

/* 409 when another VM wants dev or holds it live; this one: already. */
static int
check_free(const char *uuid, const struct usb_dev *u, struct api_error *err)
{
	struct usb_hostdev *hd;
	struct usb_cfg *cfg;
	struct vmref *vms;
	char *xml;
	bool running, busy = false;
	size_t i, j, nvms, ncfg, nhd;

	nvms = vm_list(&vms);
	for (i = 0; i < nvms && !busy; i++) {
		ncfg = vm_cfgs(vms[i].uuid, NULL, &cfg);
		for (j = 0; j < ncfg; j++)
			if (devices_cfg_matches(&cfg[j], u))
				busy = true;
		free(cfg);
		xml = NULL;
		if (!busy &&
		    virt_dom_xml(vms[i].uuid, false, &xml, &running, NULL,
			&(struct api_error){0}) == 0 &&
		    running) {
			nhd = devices_hostdevs_parse(xml, &hd);
			for (j = 0; j < nhd; j++)
				if (hd[j].bus == u->bus &&
				    hd[j].device == u->address)
					busy = true;
			devices_hostdevs_free(hd, nhd);
		}
		free(xml);
		if (!busy)
			continue;
		if (strcmp(vms[i].uuid, uuid) == 0)
			api_error_set(err, 409, "already_attached",
			    "the device is already attached to this VM");
		else
			api_error_set(err, 409, "device_in_use",
			    "the device is attached to VM \"%.100s\"",
			    vms[i].name);
	}
	vm_list_free(vms, nvms);
	return busy ? -1 : 0;
}

int
devices_attach(const char *uuid, json_object *body, json_object **devp,
    struct api_error *err)
{
	struct usb_dev *devs = NULL;
	const struct usb_dev *u;
	struct usb_cfg want, *cfg = NULL;
	char *meta = NULL, *newmeta = NULL, *xml = NULL, *live = NULL;
	char *dom = NULL;
	bool running, persistent, live_done = false, cfg_done = false;
	size_t n = 0, ncfg;
	int ret = -1;

	*devp = NULL;
	if (body != NULL && json_object_object_get_ex(body, "pci", NULL))
		return pci_attach(uuid, body, devp, err);
	if (body_usb(body, &want, err) == -1)
		return -1;
	pthread_mutex_lock(&dev_mtx);
	if (usb_scan(&devs, &n) == -1) {
		api_error_set(err, 503, "usb_unavailable",
		    "USB devices cannot be listed on this host");
		goto done;
	}
	if ((u = pick(&want, devs, n, err)) == NULL ||
	    check_free(uuid, u, err) == -1)
		goto done;
	if (virt_dom_xml(uuid, false, &dom, &running, &persistent, err) == -1)
		goto done;
	ncfg = vm_cfgs(uuid, &meta, &cfg);
	cfg = xreallocarray(cfg, ncfg + 1, sizeof(*cfg));
	cfg_from_dev(&cfg[ncfg], u);
	newmeta = devices_meta_build(meta, cfg, ncfg + 1);
	xml = hostdev_xml(u, true);
	live = hostdev_xml(u, false);
	/* Live first: it is what fails when QEMU cannot take the device. */
	if (running) {
		if (virt_hostdev(uuid, live, true, true, false, err) == -1)
			goto done;
		live_done = true;
	}
	if (persistent) {
		if (virt_hostdev(uuid, xml, true, false, true, err) == -1)
			goto undo;
		cfg_done = true;
	}
	if (virt_dom_set_meta(uuid, newmeta, running, persistent, err) == -1)
		goto undo;
	*devp = dev_json(u, NULL);
	devices_kick(uuid);
	ret = 0;
	goto done;
undo:
	if (cfg_done)
		virt_hostdev(
		    uuid, xml, false, false, true, &(struct api_error){0});
	if (live_done)
		virt_hostdev(
		    uuid, live, false, true, false, &(struct api_error){0});
done:
	pthread_mutex_unlock(&dev_mtx);
	free(cfg);
	free(meta);
	free(newmeta);
	free(xml);
	free(live);
	free(dom);
	free(devs);
	return ret;
}

int
devices_detach(const char *uuid, const char *id, struct api_error *err)
{
	struct usb_dev *devs = NULL;
	const struct usb_dev *u;
	struct usb_hostdev *lhd = NULL, *chd = NULL;
	struct usb_cfg *cfg = NULL;
	char *meta = NULL, *newmeta = NULL, *lxml = NULL, *cxml = NULL;
	char cid[2 * USB_STR_MAX + 32];
	bool running = false, persistent = false, live_done = false;
	size_t i, n = 0, ncfg, nl = 0, nc = 0;
	int li = -1, ci = -1, stale, ret = -1;

	if (pci_id_form(id))
		return pci_detach(uuid, id, err);
	pthread_mutex_lock(&dev_mtx);
	ncfg = vm_cfgs(uuid, &meta, &cfg);
	for (i = 0; i < ncfg; i++) {
		cfg_id(&cfg[i], cid, sizeof(cid));
		if (strcmp(cid, id) == 0)
			break;
	}
	if (i == ncfg) {
		api_error_set(
		    err, 404, "not_found", "the VM has no such device");
		goto done;
	}
	if (usb_scan(&devs, &n) == -1)
		n = 0;
	u = dev_find(&cfg[i], devs, n);
	if (virt_dom_xml(uuid, false, &lxml, &running, &persistent, err) ==
		-1 ||
	    (persistent &&
		virt_dom_xml(uuid, true, &cxml, NULL, NULL, err) == -1))
		goto done;
	if (running) {
		nl = devices_hostdevs_parse(lxml, &lhd);
		if ((li = hostdev_for(lhd, nl, u, cfg[i].vendor, cfg[i].product,
			 devs, n, &stale)) < 0)
			li = stale;
	}
	if (persistent) {
		nc = devices_hostdevs_parse(cxml, &chd);
		if ((ci = hostdev_for(chd, nc, u, cfg[i].vendor, cfg[i].product,
			 devs, n, &stale)) < 0)
			ci = stale;
	}
	memmove(&cfg[i], &cfg[i + 1], (ncfg - i - 1) * sizeof(*cfg));
	newmeta = devices_meta_build(meta, cfg, ncfg - 1);
	if (li >= 0) {
		if (virt_hostdev(uuid, lhd[li].xml, false, true, false, err) ==
		    -1)
			goto done;
		live_done = true;
	}
	if (ci >= 0 &&
	    virt_hostdev(uuid, chd[ci].xml, false, false, true, err) == -1)
		goto undo;
	if (virt_dom_set_meta(uuid, newmeta, running, persistent, err) == -1) {
		if (ci >= 0)
			virt_hostdev(uuid, chd[ci].xml, true, false, true,
			    &(struct api_error){0});
		goto undo;
	}
	devices_kick(uuid);
	ret = 0;
	goto done;
undo:
	if (live_done)
		virt_hostdev(uuid, lhd[li].xml, true, true, false,
		    &(struct api_error){0});
done:
	pthread_mutex_unlock(&dev_mtx);
	devices_hostdevs_free(lhd, nl);
	devices_hostdevs_free(chd, nc);
	free(cfg);
	free(meta);
	free(newmeta);
	free(lxml);
	free(cxml);
	free(devs);
	return ret;
}

/* ---- start and stop ------------------------------------------------------ */

static pthread_t reconcile_tid;
static bool reconcile_started;
static volatile int reconcile_quit;

static void *
reconcile_main(void *arg)
{
	int i;

	for (i = 0; i < 600 && !reconcile_quit; i++) {
		if (state_connected()) {
			devices_reconcile();
			break;
		}
		usleep(100000);
	}
	return NULL;
}

int
devices_init(const struct vmmod_conf *conf)
{
	char *path, *text, *err = NULL;

	xasprintf(&path, "%s/%s", conf->templates_dir, KNOWN_FILE);
	if ((text = read_file(path, 1 << 20, NULL)) == NULL)
		log_warn("usb: %s (devices are listed unnamed)", path);
	else if (devices_known_load_text(text, &err) == -1)
		log_warnx(
		    "usb: %s: %s (devices are listed unnamed)", path, err);
	free(err);
	free(text);
	free(path);
	/* GET /api/hypervisor/ai-acceleration names accelerators from the
	 * same directory (x86 builds) */
	xasprintf(
	    &path, "%s/devices/pci-accelerators.json", conf->templates_dir);
	pci_set_paths(NULL, NULL, path);
	free(path);
	if (usb_init(devices_usb_event) == 0)
		usb_started = true;
	sum_quit = false;
	if ((errno = pthread_create(&sum_tid, NULL, summary_main, NULL)) != 0)
		log_warn("usb: device summary thread");
	else
		sum_started = true;
	/* Devices replugged (or renumbered by a reboot) while we were away:
	 * once libvirt's table is there. */
	if ((errno = pthread_create(
		 &reconcile_tid, NULL, reconcile_main, NULL)) != 0)
		log_warn("usb: start-up re-attach thread");
	else
		reconcile_started = true;
	return 0;
}

void
devices_shutdown(void)
{
	if (reconcile_started) {
		reconcile_quit = 1;
		pthread_join(reconcile_tid, NULL);
		reconcile_started = false;
	}
	if (usb_started)
		usb_shutdown();
	usb_started = false;
	if (sum_started) {
		pthread_mutex_lock(&sum_mtx);
		sum_quit = true;
		pthread_cond_signal(&sum_cond);
		pthread_mutex_unlock(&sum_mtx);
		pthread_join(sum_tid, NULL);
		sum_started = false;
	}
	pthread_mutex_lock(&known_mtx);
	known_free();
	pthread_mutex_unlock(&known_mtx);
}
