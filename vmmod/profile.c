/*
 * Security profiles: the Xen seed's classifications mapped onto what this
 * product can really give a VM.  Pure functions, called by vm_spec_validate
 * so a VM that misses its classification's requirements is never defined.
 *
 *   UNCLASSIFIED  nothing required
 *   CUI           TPM recommended (the seed's table; its best practice
 *                 turns it on, but nothing refuses a CUI VM without one)
 *   SECRET        TPM 2.0 + Secure Boot required, no PCI passthrough
 *   TOP SECRET    TPM 2.0 + Secure Boot + disk encryption required, no PCI
 *
 * What they are here: the TPM is swtpm's emulated TPM 2.0 (its state is a
 * file on the host, not a hardware root of trust); Secure Boot is OVMF's
 * secure-boot build with Microsoft's keys enrolled; encryption is a LUKS
 * qcow2 volume whose passphrase is a libvirt secret.  No attestation and no
 * "quantum" cryptography are claimed.
 */
#include <string.h>

#include "common.h"
#include "spec.h"

static const char *const class_names[] = {
    [VM_CLASS_NONE] = NULL,
    [VM_CLASS_UNCLASSIFIED] = "UNCLASSIFIED",
    [VM_CLASS_CUI] = "CUI",
    [VM_CLASS_SECRET] = "SECRET",
    [VM_CLASS_TOP_SECRET] = "TOP SECRET",
};

const char *
vm_class_name(enum vm_class c)
{
	return (unsigned)c < nitems(class_names) ? class_names[c] : NULL;
}

int
vm_class_parse(const char *s, enum vm_class *out)
{
	size_t i;

	for (i = 1; i < nitems(class_names); i++)
		if (strcmp(s, class_names[i]) == 0) {
			*out = i;
			return 0;
		}
	/* the seed's enum spells these two differently */
	if (strcmp(s, "UNCLASS") == 0) {
		*out = VM_CLASS_UNCLASSIFIED;
		return 0;
	}
	if (strcmp(s, "TOP_SECRET") == 0) {
		*out = VM_CLASS_TOP_SECRET;
		return 0;
	}
	return -1;
}

unsigned
profile_required(enum vm_class c)
{
	switch (c) {
	case VM_CLASS_SECRET:
		return PROFILE_TPM | PROFILE_SECURE_BOOT | PROFILE_NO_PCI;
	case VM_CLASS_TOP_SECRET:
		return PROFILE_TPM | PROFILE_SECURE_BOOT | PROFILE_ENCRYPTION |
		    PROFILE_NO_PCI;
	default:
		return 0;
	}
}

unsigned
profile_recommended(enum vm_class c)
{
	return c == VM_CLASS_CUI ? PROFILE_TPM : 0;
}

/*
 * The policy on what a VM has (PROFILE_TPM / _SECURE_BOOT / _ENCRYPTION
 * bits) and how many PCI devices it gets: the deploy request is checked with
 * it before anything is made, a vm_spec through profile_check.
 */
int
profile_check_flags(enum vm_class c, unsigned have, size_t npci, char **errp)
{
	unsigned req = profile_required(c);
	const char *name = vm_class_name(c);
	const char *miss = NULL;

	if (name == NULL && c != VM_CLASS_NONE)
		miss = "a known classification";
	else if ((req & PROFILE_TPM) && !(have & PROFILE_TPM))
		miss = "a TPM 2.0 (\"tpm\": true)";
	else if ((req & PROFILE_SECURE_BOOT) && !(have & PROFILE_SECURE_BOOT))
		miss = "Secure Boot (\"secure_boot\": true)";
	else if ((req & PROFILE_ENCRYPTION) && !(have & PROFILE_ENCRYPTION))
		miss = "an encrypted disk (\"disk_encryption\")";
	if (miss != NULL) {
		if (errp != NULL)
			xasprintf(errp, "classification: %s VMs need %s",
			    name != NULL ? name : "?", miss);
		return -1;
	}
	if ((req & PROFILE_NO_PCI) && npci > 0) {
		if (errp != NULL)
			xasprintf(errp,
			    "classification: %s VMs get no PCI passthrough",
			    name);
		return -1;
	}
	return 0;
}

int
profile_check(const struct vm_spec *spec, char **errp)
{
	unsigned have = 0;

	if (spec->tpm)
		have |= PROFILE_TPM;
	if (spec->secure_boot)
		have |= PROFILE_SECURE_BOOT;
	if (spec->disk_secret != NULL)
		have |= PROFILE_ENCRYPTION;
	return profile_check_flags(
	    spec->classification, have, spec->npci, errp);
}
