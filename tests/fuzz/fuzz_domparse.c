/*
 * The readers of libvirt's domain XML (what a hostile or corrupt domain
 * definition feeds vmmod): domparse_facts, domparse_disks and the USB
 * device tree in devices_hostdevs_parse.
 */
#include "fuzz.h"
#include "vmmod.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct usb_hostdev *hd = NULL;
	struct vm_facts f;
	char *xml = fuzz_str(data, size), **disks;
	size_t n;

	log_init("fuzz", 0);
	memset(&f, 0, sizeof(f));
	(void)domparse_facts(xml, &f);
	vm_facts_clear(&f);
	disks = domparse_disks(xml);
	strv_free(disks);
	n = devices_hostdevs_parse(xml, &hd);
	devices_hostdevs_free(hd, n);
	free(xml);
	return 0;
}
