/*
 * The Xen backend (x86, WITH_XEN=1; other arches get xen_none.c) and the
 * backend registry.  Xen guests go through libvirt's libxl driver like QEMU
 * ones go through its qemu driver, so the rest of vmmod stays the same: the
 * registry only says which domain type new VMs get (domxml.c writes the HVM
 * XML) and how consoles reach a guest.  libxl streams the serial console
 * but has no virDomainOpenGraphicsFD: the guest's VNC listens on 127.0.0.1
 * (domxml.c puts it there) and xen_vnc_connect opens it for the proxy.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "vmmod.h"

static const struct vm_backend backends[] = {
    {"qemu", VM_VIRT_KVM, true, true},
    {"xen", VM_VIRT_XEN, true, false},
};

/* The driver part of a libvirt URI: "qemu+ssh://h/system" -> "qemu". */
static const char *
uri_backend(const char *uri)
{
	static const struct {
		const char *scheme;
		const char *backend;
	} map[] = {{"qemu", "qemu"}, {"test", "qemu"}, {"xen", "xen"},
	    {"libxl", "xen"}};
	size_t i, n;

	for (i = 0; i < nitems(map); i++) {
		n = strlen(map[i].scheme);
		if (strncmp(uri, map[i].scheme, n) == 0 &&
		    (uri[n] == ':' || uri[n] == '+'))
			return map[i].backend;
	}
	return NULL;
}

int
xen_backend_pick(const char *uri, const char *name,
    const struct vm_backend **bp, char **whyp)
{
	const char *want = uri != NULL ? uri_backend(uri) : "qemu";
	size_t i;

	if (want == NULL) {
		xasprintf(
		    whyp, "libvirt URI %s: not a qemu or xen driver", uri);
		return -1;
	}
	if (name != NULL && strcmp(name, want) != 0) {
		xasprintf(whyp, "backend %s does not match the libvirt URI %s",
		    name, uri);
		return -1;
	}
	for (i = 0; i < nitems(backends); i++)
		if (strcmp(backends[i].name, want) == 0) {
			*bp = &backends[i];
			return 0;
		}
	xasprintf(whyp, "no backend %s", want);
	return -1;
}

static const struct vm_backend *active = &backends[0];

void
vm_backend_set(const struct vm_backend *b)
{
	active = b;
}

const struct vm_backend *
vm_backend(void)
{
	return active;
}

bool
xen_dom0_running(const char *proc_root)
{
	struct stat st;
	char *path;
	bool yes;

	xasprintf(&path, "%s/xen", proc_root != NULL ? proc_root : "/proc");
	yes = stat(path, &st) == 0;
	free(path);
	return yes;
}

/* The live XML's VNC port and listen address (malloc'd), or -1. */
static int
vnc_port(const char *xml, char **addrp)
{
	xmlDocPtr doc;
	xmlXPathContextPtr ctx = NULL;
	xmlXPathObjectPtr o = NULL;
	xmlChar *port = NULL, *addr = NULL;
	xmlNodePtr g;
	int n = -1;
	char *end;

	*addrp = NULL;
	doc = xmlReadMemory(xml, strlen(xml), "domain.xml", NULL,
	    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (doc == NULL || (ctx = xmlXPathNewContext(doc)) == NULL)
		goto done;
	o = xmlXPathEvalExpression(
	    BAD_CAST "/domain/devices/graphics[@type='vnc']", ctx);
	if (o == NULL || o->nodesetval == NULL || o->nodesetval->nodeNr != 1)
		goto done;
	g = o->nodesetval->nodeTab[0];
	port = xmlGetProp(g, BAD_CAST "port");
	/* <listen type='address' address=...> wins over the old attribute */
	for (xmlNodePtr c = g->children; c != NULL && addr == NULL; c = c->next)
		if (c->type == XML_ELEMENT_NODE &&
		    xmlStrcmp(c->name, BAD_CAST "listen") == 0)
			addr = xmlGetProp(c, BAD_CAST "address");
	if (addr == NULL)
		addr = xmlGetProp(g, BAD_CAST "listen");
	if (port != NULL) {
		errno = 0;
		n = strtol((const char *)port, &end, 10);
		if (errno != 0 || *end != '\0' || n < 1 || n > 65535)
			n = -1;
	}
	if (addr != NULL)
		*addrp = xstrdup((const char *)addr);
done:
	xmlFree(port);
	xmlFree(addr);
	xmlXPathFreeObject(o);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return n;
}

int
xen_vnc_connect(const char *live_xml, char **whyp)
{
	struct sockaddr_in sin;
	char *addr;
	int port, fd;

	port = vnc_port(live_xml, &addr);
	if (port == -1) {
		free(addr);
		*whyp = xstrdup("the VM has no VNC port (is it running?)");
		return -1;
	}
	/* The one VNC port vmmod allows is on loopback; never follow others. */
	if (addr == NULL || strcmp(addr, "127.0.0.1") != 0) {
		free(addr);
		*whyp = xstrdup("the VM's VNC does not listen on 127.0.0.1 "
				"only; refusing to proxy it");
		return -1;
	}
	free(addr);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		log_warn("%s: 127.0.0.1:%d", __func__, port);
		if (fd != -1)
			close(fd);
		*whyp = xstrdup("cannot reach the VM's VNC");
		return -1;
	}
	return fd;
}
