/*
 * PCI passthrough where it is not built (arm64: the Pi 5 kernel has no
 * VFIO).  The same functions as pci.c: empty lists and "not built"
 * refusals.  The Makefile picks one of the two files.
 */
#include <string.h>

#include "vmmod.h"

#define NOT_BUILT "PCI passthrough is not built on this architecture"

void
pci_set_paths(const char *sysfs_root, const char *ids, const char *accel)
{
}

json_object *
pci_devices_json(void)
{
	return json_object_new_array();
}

json_object *
pci_hypervisor_devices_json(void)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "devices", json_object_new_array());
	return o;
}

json_object *
pci_ai_acceleration_json(json_object *usb)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "total_tops", NULL);
	json_object_object_add(o, "components", json_object_new_array());
	return o;
}

bool
pci_addr_valid(const char *addr)
{
	return false;
}

enum pci_verdict
pci_check_passthrough(const char *addr, char **whyp)
{
	*whyp = xstrdup(NOT_BUILT);
	return PCI_NOT_BUILT;
}

enum pci_verdict
pci_check_passthrough_set(const char *const *addrs, size_t n, char **whyp)
{
	*whyp = xstrdup(NOT_BUILT);
	return PCI_NOT_BUILT;
}

int
pci_verdict_status(enum pci_verdict v)
{
	return v == PCI_OK ? 200 : 501;
}

const char *
pci_verdict_code(enum pci_verdict v)
{
	return v == PCI_OK ? "ok" : "not_built";
}

static void
not_built(struct api_response *resp)
{
	struct api_error err;

	api_error_set(&err, 501, "not_built", NOT_BUILT);
	api_response_error(resp, &err);
}

void
pci_api_devices(
    const struct api_request *req, const char *name, struct api_response *resp)
{
	not_built(resp);
}

void
pci_api_accel(
    const struct api_request *req, const char *name, struct api_response *resp)
{
	not_built(resp);
}
