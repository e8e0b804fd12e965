/*
 * PCI devices of an x86 host for passthrough: discovery through libpci
 * (the only file that includes it).  Built with WITH_PCI=1.
 */
#include "vmmod.h"

/* XXX discovery lands in the next commit; the interface comes first. */
json_object *
pci_devices_json(void)
{
	return json_object_new_array();
}
