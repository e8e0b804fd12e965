/*
 * PCI passthrough where it is not built (arm64: the Pi 5 kernel has no
 * VFIO).  The same functions as pci.c, answering "not built"; the Makefile
 * picks one of the two files.
 */
#include "vmmod.h"

json_object *
pci_devices_json(void)
{
	return json_object_new_array();
}
