/*
 * libvirt through its API (the only file of the installer including
 * libvirt): the network `guardian` (bridge mode on br0) and the storage
 * pool `guardian-vms` (a dir pool on the chosen storage), both defined,
 * autostarted and started; verified by looking them up again; removed on
 * uninstall.  --purge also removes the VMs vmmod made (its metadata
 * namespace in the domain XML) and every volume of our pool.
 *
 * The XML is built with libxml2's tree API (lv_network_xml, lv_pool_xml:
 * pure, golden files), never pasted together from strings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#include "common.h"
#include "setup.h"

/* vmmod's namespace in <metadata> (SPEC_XMLNS, vmmod/spec.h). */
#define VMMOD_XMLNS "https://guardian.hookprobe.com/vmmod/1"

static const char *
last_error(void)
{
	virErrorPtr e = virGetLastError();

	return e != NULL && e->message != NULL ? e->message : "unknown error";
}

static void
silent(void *arg, virErrorPtr e)
{
	(void)arg;
	(void)e;
}

static char *
dump_doc(xmlDocPtr doc)
{
	xmlNodePtr root = xmlDocGetRootElement(doc);
	xmlBufferPtr b = xmlBufferCreate();
	char *s;

	xmlNodeDump(b, doc, root, 0, 1);
	xasprintf(&s, "%s\n", (const char *)xmlBufferContent(b));
	xmlBufferFree(b);
	xmlFreeDoc(doc);
	return s;
}

static xmlNodePtr
child(xmlNodePtr parent, const char *name, const char *text)
{
	return xmlNewTextChild(
	    parent, NULL, BAD_CAST name, text != NULL ? BAD_CAST text : NULL);
}

char *
lv_network_xml(const char *name, const char *bridge)
{
	xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
	xmlNodePtr net = xmlNewNode(NULL, BAD_CAST "network"), n;

	xmlDocSetRootElement(doc, net);
	child(net, "name", name);
	n = child(net, "forward", NULL);
	xmlNewProp(n, BAD_CAST "mode", BAD_CAST "bridge");
	n = child(net, "bridge", NULL);
	xmlNewProp(n, BAD_CAST "name", BAD_CAST bridge);
	return dump_doc(doc);
}

char *
lv_pool_xml(const char *name, const char *dir)
{
	xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
	xmlNodePtr pool = xmlNewNode(NULL, BAD_CAST "pool"), t, perm;

	xmlDocSetRootElement(doc, pool);
	xmlNewProp(pool, BAD_CAST "type", BAD_CAST "dir");
	child(pool, "name", name);
	t = child(pool, "target", NULL);
	child(t, "path", dir);
	perm = child(t, "permissions", NULL);
	child(perm, "mode", "0711");
	return dump_doc(doc);
}

/* The text of the first node matching EXPR in XML; NULL when none. */
static char *
xml_get(const char *xml, const char *expr)
{
	xmlDocPtr doc;
	xmlXPathContextPtr ctx;
	xmlXPathObjectPtr o;
	char *out = NULL;
	xmlChar *v;

	doc = xmlReadMemory(xml, (int)strlen(xml), "libvirt.xml", NULL,
	    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (doc == NULL)
		return NULL;
	ctx = xmlXPathNewContext(doc);
	o = ctx != NULL ? xmlXPathEvalExpression(BAD_CAST expr, ctx) : NULL;
	if (o != NULL && o->type == XPATH_NODESET && o->nodesetval != NULL &&
	    o->nodesetval->nodeNr > 0) {
		v = xmlNodeGetContent(o->nodesetval->nodeTab[0]);
		if (v != NULL)
			out = xstrdup((const char *)v);
		xmlFree(v);
	}
	xmlXPathFreeObject(o);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return out;
}

static virConnectPtr
lv_open(const char *uri, char **errp)
{
	virConnectPtr c;

	virSetErrorFunc(NULL, silent);
	if ((c = virConnectOpen(uri)) == NULL)
		err_replace(errp, "cannot connect to libvirt at %s: %s", uri,
		    last_error());
	return c;
}

/* The network, whether it exists already and is ours in shape. */
int
lv_network_ensure(const char *uri, const char *name, const char *bridge,
    bool *defined, char **errp)
{
	virConnectPtr c;
	virNetworkPtr n;
	char *xml, *have;
	int rc = -1, auto_on = 0;

	*defined = false;
	if ((c = lv_open(uri, errp)) == NULL)
		return -1;
	if ((n = virNetworkLookupByName(c, name)) != NULL) {
		/* the defined shape; drivers without that flag: the live one */
		if ((xml = virNetworkGetXMLDesc(n, VIR_NETWORK_XML_INACTIVE)) ==
		    NULL)
			xml = virNetworkGetXMLDesc(n, 0);
		have =
		    xml != NULL ? xml_get(xml, "/network/bridge/@name") : NULL;
		if (have == NULL || strcmp(have, bridge) != 0) {
			err_replace(errp,
			    "a libvirt network '%s' exists on %s, not on "
			    "%s: remove it (virsh net-undefine %s) or rename it",
			    name, have != NULL ? have : "no bridge", bridge,
			    name);
			free(have);
			free(xml);
			goto done;
		}
		free(have);
		free(xml);
	} else {
		xml = lv_network_xml(name, bridge);
		n = virNetworkDefineXML(c, xml);
		free(xml);
		if (n == NULL) {
			err_replace(
			    errp, "define network %s: %s", name, last_error());
			goto done;
		}
		*defined = true;
	}
	if (virNetworkGetAutostart(n, &auto_on) < 0 ||
	    (!auto_on && virNetworkSetAutostart(n, 1) < 0)) {
		err_replace(
		    errp, "autostart network %s: %s", name, last_error());
		goto done;
	}
	if (virNetworkIsActive(n) == 0 && virNetworkCreate(n) < 0) {
		err_replace(errp, "start network %s: %s", name, last_error());
		goto done;
	}
	rc = 0;
done:
	if (rc == -1 && *defined) {
		virNetworkUndefine(n);
		*defined = false;
	}
	if (n != NULL)
		virNetworkFree(n);
	virConnectClose(c);
	return rc;
}

int
lv_pool_ensure(const char *uri, const char *name, const char *dir,
    bool *defined, char **errp)
{
	virConnectPtr c;
	virStoragePoolPtr p;
	char *xml, *have;
	int rc = -1, auto_on = 0;

	*defined = false;
	if ((c = lv_open(uri, errp)) == NULL)
		return -1;
	if ((p = virStoragePoolLookupByName(c, name)) != NULL) {
		if ((xml = virStoragePoolGetXMLDesc(
			 p, VIR_STORAGE_XML_INACTIVE)) == NULL)
			xml = virStoragePoolGetXMLDesc(p, 0);
		have = xml != NULL ? xml_get(xml, "/pool/target/path") : NULL;
		if (have == NULL || strcmp(have, dir) != 0) {
			err_replace(errp,
			    "a libvirt storage pool '%s' exists at %s, not "
			    "at %s: choose that directory or remove the pool",
			    name, have != NULL ? have : "no path", dir);
			free(have);
			free(xml);
			goto done;
		}
		free(have);
		free(xml);
	} else {
		xml = lv_pool_xml(name, dir);
		p = virStoragePoolDefineXML(c, xml, 0);
		free(xml);
		if (p == NULL) {
			err_replace(errp, "define storage pool %s: %s", name,
			    last_error());
			goto done;
		}
		*defined = true;
	}
	if (virStoragePoolGetAutostart(p, &auto_on) < 0 ||
	    (!auto_on && virStoragePoolSetAutostart(p, 1) < 0)) {
		err_replace(errp, "autostart pool %s: %s", name, last_error());
		goto done;
	}
	if (virStoragePoolIsActive(p) == 0 && virStoragePoolCreate(p, 0) < 0) {
		err_replace(errp, "start pool %s: %s", name, last_error());
		goto done;
	}
	rc = 0;
done:
	if (rc == -1 && *defined) {
		virStoragePoolUndefine(p);
		*defined = false;
	}
	if (p != NULL)
		virStoragePoolFree(p);
	virConnectClose(c);
	return rc;
}

int
lv_verify(const char *uri, const char *net, const char *pool, char **errp)
{
	virConnectPtr c;
	virNetworkPtr n = NULL;
	virStoragePoolPtr p = NULL;
	int a = 0, rc = -1;

	if ((c = lv_open(uri, errp)) == NULL)
		return -1;
	if (net != NULL) {
		if ((n = virNetworkLookupByName(c, net)) == NULL ||
		    virNetworkIsActive(n) != 1 ||
		    virNetworkGetAutostart(n, &a) < 0 || !a) {
			err_replace(errp,
			    "network %s is not defined, active and "
			    "autostarted",
			    net);
			goto done;
		}
	}
	if (pool != NULL) {
		a = 0;
		if ((p = virStoragePoolLookupByName(c, pool)) == NULL ||
		    virStoragePoolIsActive(p) != 1 ||
		    virStoragePoolGetAutostart(p, &a) < 0 || !a) {
			err_replace(errp,
			    "storage pool %s is not defined, active and "
			    "autostarted",
			    pool);
			goto done;
		}
	}
	rc = 0;
done:
	if (n != NULL)
		virNetworkFree(n);
	if (p != NULL)
		virStoragePoolFree(p);
	virConnectClose(c);
	return rc;
}

int
lv_network_remove(const char *uri, const char *name, char **errp)
{
	virConnectPtr c;
	virNetworkPtr n;
	int rc = 0;

	if ((c = lv_open(uri, errp)) == NULL)
		return -1;
	if ((n = virNetworkLookupByName(c, name)) != NULL) {
		if (virNetworkIsActive(n) == 1 && virNetworkDestroy(n) < 0)
			rc = err_replace(
			    errp, "stop network %s: %s", name, last_error());
		else if (virNetworkUndefine(n) < 0)
			rc = err_replace(errp, "undefine network %s: %s", name,
			    last_error());
		virNetworkFree(n);
	}
	virConnectClose(c);
	return rc;
}

/* Stops and undefines the pool; its directory stays (the manifest's). */
int
lv_pool_remove(const char *uri, const char *name, char **errp)
{
	virConnectPtr c;
	virStoragePoolPtr p;
	int rc = 0;

	if ((c = lv_open(uri, errp)) == NULL)
		return -1;
	if ((p = virStoragePoolLookupByName(c, name)) != NULL) {
		if (virStoragePoolIsActive(p) == 1 &&
		    virStoragePoolDestroy(p) < 0)
			rc = err_replace(
			    errp, "stop pool %s: %s", name, last_error());
		else if (virStoragePoolUndefine(p) < 0)
			rc = err_replace(
			    errp, "undefine pool %s: %s", name, last_error());
		virStoragePoolFree(p);
	}
	virConnectClose(c);
	return rc;
}

/*
 * A VM vmmod made: it carries vmmod's metadata, or one of its disks is a
 * volume of POOL or a file under DIR.
 */
bool
lv_domain_ours(const char *xml, const char *pool, const char *dir)
{
	xmlDocPtr doc;
	xmlXPathContextPtr ctx;
	xmlXPathObjectPtr o = NULL;
	xmlChar *v;
	size_t dl = strlen(dir);
	bool yes = false;
	int i;

	doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
	    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (doc == NULL)
		return false;
	if ((ctx = xmlXPathNewContext(doc)) == NULL)
		goto done;
	o = xmlXPathEvalExpression(BAD_CAST
	    "/domain/metadata/*[namespace-uri()='" VMMOD_XMLNS "']",
	    ctx);
	yes = o != NULL && o->nodesetval != NULL && o->nodesetval->nodeNr > 0;
	xmlXPathFreeObject(o);
	o = yes ? NULL
		: xmlXPathEvalExpression(
		      BAD_CAST "/domain/devices/disk/source", ctx);
	for (i = 0; o != NULL && o->nodesetval != NULL && !yes &&
	     i < o->nodesetval->nodeNr;
	     i++) {
		xmlNodePtr n = o->nodesetval->nodeTab[i];

		if ((v = xmlGetProp(n, BAD_CAST "pool")) != NULL) {
			yes = strcmp((const char *)v, pool) == 0;
			xmlFree(v);
		}
		if (!yes && (v = xmlGetProp(n, BAD_CAST "file")) != NULL) {
			yes = strncmp((const char *)v, dir, dl) == 0 &&
			    v[dl] == '/';
			xmlFree(v);
		}
	}
	xmlXPathFreeObject(o);
	xmlXPathFreeContext(ctx);
done:
	xmlFreeDoc(doc);
	return yes;
}

/*
 * --purge: every domain vmmod made (lv_domain_ours: stopped, undefined
 * with its NVRAM and TPM state), then every volume of POOL.  *NAMES: the
 * VMs' names, comma separated ("" when none), malloc'd; *NVOL: volumes
 * deleted.  DRY_RUN: only *NAMES (what plain --uninstall keeps).
 */
int
lv_purge(const char *uri, const char *pool, const char *dir, bool dry_run,
    char **names, size_t *nvol, char **errp)
{
	virConnectPtr c;
	virDomainPtr *doms = NULL;
	virStoragePoolPtr p;
	virStorageVolPtr *vols = NULL;
	char *xml;
	int n, i, rc = 0;

	*names = xstrdup("");
	*nvol = 0;
	if ((c = lv_open(uri, errp)) == NULL)
		return -1;
	n = virConnectListAllDomains(c, &doms, 0);
	for (i = 0; i < n; i++) {
		if ((xml = virDomainGetXMLDesc(
			 doms[i], VIR_DOMAIN_XML_INACTIVE)) == NULL)
			xml = virDomainGetXMLDesc(doms[i], 0);
		if (xml != NULL && lv_domain_ours(xml, pool, dir)) {
			char *t;

			xasprintf(&t, "%s%s%s", *names,
			    **names != '\0' ? ", " : "",
			    virDomainGetName(doms[i]));
			free(*names);
			*names = t;
		}
		if (xml != NULL && !dry_run && lv_domain_ours(xml, pool, dir)) {
			if (virDomainIsActive(doms[i]) == 1)
				virDomainDestroy(doms[i]);
			if (virDomainUndefineFlags(doms[i],
				VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
				    VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
				    VIR_DOMAIN_UNDEFINE_NVRAM |
				    VIR_DOMAIN_UNDEFINE_TPM) < 0 &&
			    virDomainUndefine(doms[i]) < 0)
				rc = err_replace(errp, "undefine VM %s: %s",
				    virDomainGetName(doms[i]), last_error());
		}
		free(xml);
		virDomainFree(doms[i]);
	}
	free(doms);
	if (!dry_run && (p = virStoragePoolLookupByName(c, pool)) != NULL) {
		if (virStoragePoolIsActive(p) == 1)
			virStoragePoolRefresh(p, 0);
		n = virStoragePoolListAllVolumes(p, &vols, 0);
		for (i = 0; i < n; i++) {
			if (virStorageVolDelete(vols[i], 0) < 0)
				rc = err_replace(errp, "delete volume %s: %s",
				    virStorageVolGetName(vols[i]),
				    last_error());
			else
				(*nvol)++;
			virStorageVolFree(vols[i]);
		}
		free(vols);
		virStoragePoolFree(p);
	}
	virConnectClose(c);
	return rc;
}
