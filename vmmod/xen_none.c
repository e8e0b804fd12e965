/*
 * The backend registry where Xen is not built (arm64: no Xen dom0 on the
 * Pi): QEMU/KVM only.  Same functions as xen.c; the Makefile picks one.
 */
#include <string.h>

#include "vmmod.h"

#define NOT_BUILT "the Xen backend is not built on this architecture"

static const struct vm_backend qemu = {"qemu", VM_VIRT_KVM, true, true};

int
xen_backend_pick(const char *uri, const char *name,
    const struct vm_backend **bp, char **whyp)
{
	if ((name != NULL && strcmp(name, "xen") == 0) ||
	    (uri != NULL &&
		(strncmp(uri, "xen", 3) == 0 ||
		    strncmp(uri, "libxl", 5) == 0))) {
		*whyp = xstrdup(NOT_BUILT);
		return -1;
	}
	if ((name != NULL && strcmp(name, "qemu") != 0) ||
	    (uri != NULL && strncmp(uri, "qemu", 4) != 0 &&
		strncmp(uri, "test", 4) != 0)) {
		xasprintf(whyp, "libvirt URI %s: not a qemu driver",
		    uri != NULL ? uri : "-");
		return -1;
	}
	*bp = &qemu;
	return 0;
}

static const struct vm_backend *active = &qemu;

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
	return false;
}

int
xen_vnc_connect(const char *live_xml, char **whyp)
{
	*whyp = xstrdup(NOT_BUILT);
	return -1;
}
