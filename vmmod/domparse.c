/*
 * Reads the facts vmmod shows about a domain out of its XML description:
 * title, first NIC's MAC, consoles, and our template id from <metadata>.
 * Pure (libxml2 only) so it is tested with fixtures; virt.c feeds it
 * virDomainGetXMLDesc output.  Guest-controlled text is copied verbatim and
 * escaped only where it is emitted (JSON, HTML).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "vmmod.h"

/* Returns the string value of an XPath expression, or NULL when empty. */
static char *
xpath_str(xmlXPathContextPtr ctx, const char *expr)
{
	xmlXPathObjectPtr obj;
	char *ret = NULL;

	obj = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
	if (obj == NULL)
		return NULL;
	if (obj->type == XPATH_STRING && obj->stringval != NULL &&
	    obj->stringval[0] != '\0')
		ret = xstrdup((const char *)obj->stringval);
	xmlXPathFreeObject(obj);
	return ret;
}

static bool
xpath_exists(xmlXPathContextPtr ctx, const char *expr)
{
	xmlXPathObjectPtr obj;
	bool ret;

	obj = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
	if (obj == NULL)
		return false;
	ret = obj->type == XPATH_BOOLEAN && obj->boolval;
	xmlXPathFreeObject(obj);
	return ret;
}

static unsigned long
xpath_ulong(xmlXPathContextPtr ctx, const char *expr)
{
	char *s = xpath_str(ctx, expr), *end;
	unsigned long v = 0;

	if (s != NULL) {
		v = strtoul(s, &end, 10);
		if (*end != '\0')
			v = 0;
	}
	free(s);
	return v;
}

/*
 * Fills title, mac, template_id, has_vnc, has_serial, vcpus, memory_mb and
 * the security profile (classification, tpm, secure_boot, disk_encrypted;
 * and name when unset).  Returns -1 when the text is not a domain.
 */
int
domparse_facts(const char *xml, struct vm_facts *f)
{
	xmlDocPtr doc;
	xmlXPathContextPtr ctx = NULL;
	char *p, *unit;
	unsigned long mem;
	int ret = -1;

	doc = xmlReadMemory(xml, strlen(xml), "domain.xml", NULL,
	    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (doc == NULL)
		goto done;
	if ((ctx = xmlXPathNewContext(doc)) == NULL)
		goto done;
	if (xmlXPathRegisterNs(
		ctx, (const xmlChar *)"gvm", (const xmlChar *)SPEC_XMLNS) != 0)
		goto done;
	if (!xpath_exists(ctx, "boolean(/domain)"))
		goto done;

	if (f->name == NULL)
		f->name = xpath_str(ctx, "string(/domain/name)");
	free(f->title);
	f->title = xpath_str(ctx, "string(/domain/title)");
	free(f->template_id);
	f->template_id =
	    xpath_str(ctx, "string(/domain/metadata/gvm:vm/gvm:template)");
	free(f->mac);
	f->mac =
	    xpath_str(ctx, "string(/domain/devices/interface[1]/mac/@address)");
	if (f->mac != NULL)
		for (p = f->mac; *p != '\0'; p++)
			*p = tolower((unsigned char)*p);
	f->has_vnc =
	    xpath_exists(ctx, "boolean(/domain/devices/graphics[@type='vnc'])");
	f->has_serial = xpath_exists(
	    ctx, "boolean(/domain/devices/serial | /domain/devices/console)");
	f->vcpus = xpath_ulong(ctx, "string(/domain/vcpu)");
	p = xpath_str(
	    ctx, "string(/domain/metadata/gvm:vm/gvm:classification)");
	snprintf(f->classification, sizeof(f->classification), "%s",
	    p != NULL && strlen(p) < sizeof(f->classification) ? p : "");
	free(p);
	f->tpm = xpath_exists(ctx, "boolean(/domain/devices/tpm)");
	f->secure_boot =
	    xpath_exists(ctx, "boolean(/domain/os/loader[@secure='yes'])");
	f->disk_encrypted = xpath_exists(ctx,
	    "boolean(/domain/devices/disk/encryption | "
	    "/domain/devices/disk/source/encryption)");

	/* <memory unit='KiB'>: libvirt always reports KiB, but honour units. */
	mem = xpath_ulong(ctx, "string(/domain/memory)");
	unit = xpath_str(ctx, "string(/domain/memory/@unit)");
	if (unit == NULL || strcmp(unit, "KiB") == 0 || strcmp(unit, "k") == 0)
		f->memory_mb = mem / 1024;
	else if (strcmp(unit, "MiB") == 0 || strcmp(unit, "M") == 0)
		f->memory_mb = mem;
	else if (strcmp(unit, "GiB") == 0 || strcmp(unit, "G") == 0)
		f->memory_mb = mem * 1024;
	else if (strcmp(unit, "bytes") == 0 || strcmp(unit, "b") == 0)
		f->memory_mb = mem / (1024 * 1024);
	free(unit);
	ret = 0;
done:
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return ret;
}

char **
domparse_disks(const char *xml)
{
	xmlDocPtr doc;
	xmlXPathContextPtr ctx = NULL;
	xmlXPathObjectPtr obj = NULL;
	xmlChar *v;
	char **paths = NULL;
	size_t n = 0;
	int i;

	doc = xmlReadMemory(xml, strlen(xml), "domain.xml", NULL,
	    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (doc == NULL || (ctx = xmlXPathNewContext(doc)) == NULL)
		goto done;
	obj = xmlXPathEvalExpression(
	    (const xmlChar
		    *)"/domain/devices/disk[@type='file' or @type='volume']/source/@file",
	    ctx);
	if (obj == NULL || obj->nodesetval == NULL)
		goto done;
	paths =
	    xreallocarray(NULL, obj->nodesetval->nodeNr + 1, sizeof(*paths));
	for (i = 0; i < obj->nodesetval->nodeNr; i++) {
		v = xmlNodeGetContent(obj->nodesetval->nodeTab[i]);
		if (v != NULL && v[0] != '\0')
			paths[n++] = xstrdup((const char *)v);
		xmlFree(v);
	}
	paths[n] = NULL;
done:
	xmlXPathFreeObject(obj);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	if (paths == NULL) {
		paths = xmalloc(sizeof(*paths));
		paths[0] = NULL;
	}
	return paths;
}

void
strv_free(char **v)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}
