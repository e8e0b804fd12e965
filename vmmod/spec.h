/*
 * What a VM is made of, independent of libvirt: the vm_spec that the deploy
 * pipeline fills from a template and a create request, its validation, and
 * its translation into libvirt domain XML.  vmmod.h includes this header.
 */
#ifndef SPEC_H
#define SPEC_H

#include <stdbool.h>
#include <stddef.h>

/* Our namespace for <metadata> in every domain vmmod defines. */
#define SPEC_XMLNS "https://guardian.hookprobe.com/vmmod/1"
#define SPEC_XMLNS_PREFIX "gvm"

#define SPEC_NAME_MAX 63 /* new VMs: ^[a-z0-9][a-z0-9-]{0,62}$ */
#define SPEC_REFNAME_MAX 255 /* any libvirt domain name we manage */
#define SPEC_PATH_MAX 1024
#define SPEC_TITLE_MAX 256
#define SPEC_DESC_MAX 4096
#define SPEC_CMDLINE_MAX 2048
#define SPEC_MEMORY_MIN_MB 64
#define SPEC_MEMORY_MAX_MB (1024 * 1024)
#define SPEC_VCPUS_MAX 255
#define SPEC_USB_MAX 16
#define SPEC_PCI_MAX 8

enum vm_arch {
	VM_ARCH_X86_64,
	VM_ARCH_AARCH64,
};

/* <domain type=...>: kvm, qemu (TCG), xen (libxl; not built yet). */
enum vm_virt {
	VM_VIRT_KVM,
	VM_VIRT_QEMU,
	VM_VIRT_XEN,
};

/*
 * The Xen seed's classifications (profile.c maps each to what it requires).
 * VM_CLASS_NONE: not given, nothing required, nothing recorded.
 */
enum vm_class {
	VM_CLASS_NONE,
	VM_CLASS_UNCLASSIFIED,
	VM_CLASS_CUI,
	VM_CLASS_SECRET,
	VM_CLASS_TOP_SECRET,
};

/* VM_CPU_DEFAULT: host-passthrough under KVM, maximum under TCG. */
enum vm_cpu_mode {
	VM_CPU_DEFAULT,
	VM_CPU_HOST_PASSTHROUGH,
	VM_CPU_HOST_MODEL,
	VM_CPU_MAXIMUM,
	VM_CPU_CUSTOM, /* cpu_model names it, e.g. cortex-a57, qemu64 */
};

/* A USB device picked by vendor:product; serial is informational only. */
struct vm_usbdev {
	unsigned int vendor;
	unsigned int product;
	char *serial; /* NULL when unknown; kept in <metadata> */
};

/* A PCI function at domain:bus:slot.function, passed through managed. */
struct vm_pcidev {
	unsigned int domain;
	unsigned int bus;
	unsigned int slot;
	unsigned int function;
};

/*
 * Every char * member is owned by the spec (vm_spec_free frees it); NULL
 * means "not set".  Numbers that are 0 are "not set" where 0 is no value.
 */
struct vm_spec {
	char *name;
	char *uuid; /* NULL: libvirt picks one */
	char *title;
	char *description;
	char *template_id; /* <gvm:template> in <metadata> */
	enum vm_arch arch;
	enum vm_virt virt;
	unsigned int memory_mb;
	unsigned int vcpus;
	enum vm_cpu_mode cpu_mode;
	char *cpu_model; /* only with VM_CPU_CUSTOM */
	bool autostart; /* not in the XML: virt.c sets it after defining */

	/* UEFI when loader is set: read-only pflash code + per-VM NVRAM. */
	char *loader;
	char *nvram;
	char *nvram_template;

	/* Direct kernel boot (fast tests); kernel set means no boot disk. */
	char *kernel;
	char *initrd;
	char *cmdline;

	char *disk; /* qcow2, virtio */
	char *seed_iso; /* cloud-init seed as a read-only cdrom */

	char *bridge; /* default br0 */
	char *mac; /* 52:54:00:xx:xx:xx, lower case */
	char *filter_ip; /* clean-traffic's IP parameter; NULL: no filter */

	bool vnc; /* VNC without a TCP listener */
	bool tpm; /* emulated TPM 2.0 */
	/* UEFI Secure Boot: loader is a .secboot build, SMM on (x86_64). */
	bool secure_boot;
	/*
	 * The disk is a LUKS-encrypted qcow2 whose passphrase is the libvirt
	 * secret with this UUID; NULL: not encrypted.  The deploy pipeline makes
	 * the secret and the volume; domxml only names them.
	 */
	char *disk_secret;
	enum vm_class classification;

	unsigned long long hard_limit_mb; /* memtune; 0: unset */
	unsigned long long soft_limit_mb;
	unsigned int cpu_shares; /* cputune; 0: unset */
	unsigned long long cpu_period; /* microseconds; 0: unset */
	long long cpu_quota; /* microseconds, -1 unlimited; 0: unset */

	struct vm_usbdev *usb;
	size_t nusb;
	struct vm_pcidev *pci;
	size_t npci;
};

/* spec.c */
struct vm_spec *vm_spec_new(void);
void vm_spec_free(struct vm_spec *);
/* Strict parse of the JSON form; on error NULL and an xstrdup'd *errp. */
struct vm_spec *vm_spec_from_json(const char *json, char **errp);
/* 0 when the spec may be defined; -1 and an xstrdup'd *errp otherwise. */
int vm_spec_validate(const struct vm_spec *, char **errp);
bool vm_name_valid_new(const char *name);
bool vm_name_valid_ref(const char *name);
bool vm_utf8_valid(const char *s, size_t len);
bool vm_mac_valid(const char *mac);
const char *vm_arch_name(enum vm_arch);
const char *vm_virt_name(enum vm_virt);

/* Why a security feature is refused: the texts a create is refused with,
 * GET /api/host's "security" and the Xen domain XML check share. */
#define WHY_NO_SWTPM                                                           \
	"tpm: this host has no TPM emulator (install swtpm and swtpm-tools)"
#define WHY_NO_SB_FW                                                           \
	"secure_boot: this host lacks OVMF's Secure Boot firmware "            \
	"(OVMF_CODE_4M.secboot.fd, OVMF_VARS_4M.ms.fd: install ovmf)"
#define WHY_SB_ARCH_FMT                                                        \
	"secure_boot: Secure Boot is offered on x86_64 hosts only (OVMF's "    \
	"secure-boot build); this %s host's UEFI firmware has none"
#define WHY_XEN_TPM "tpm: libvirt's libxl driver offers no virtual TPM"
#define WHY_XEN_SB                                                             \
	"secure_boot: not available with xen (Xen's OVMF has no "              \
	"SMM-protected variable store)"
#define WHY_XEN_LUKS                                                           \
	"disk_encryption: LUKS volumes need QEMU's block layer, not "          \
	"available to libxl disks"

/* profile.c: classification policy (pure) */
#define PROFILE_TPM 0x1
#define PROFILE_SECURE_BOOT 0x2
#define PROFILE_ENCRYPTION 0x4
#define PROFILE_NO_PCI 0x8
const char *vm_class_name(enum vm_class); /* "TOP SECRET", NULL: none */
int vm_class_parse(const char *, enum vm_class *); /* -1: unknown */
unsigned profile_required(enum vm_class); /* PROFILE_* bits */
unsigned profile_recommended(enum vm_class); /* PROFILE_* bits */
/* 0 when the spec meets its classification; -1 and an xstrdup'd *errp. */
int profile_check(const struct vm_spec *, char **errp);
/* The same on PROFILE_TPM/_SECURE_BOOT/_ENCRYPTION bits and a PCI count. */
int profile_check_flags(enum vm_class, unsigned have, size_t npci, char **errp);

/* domxml.c */
/* Validates, then returns malloc'd domain XML (caller frees) or NULL. */
char *domxml_build(const struct vm_spec *, char **errp);
/*
 * One USB <hostdev> (attach/detach); bus 0: match vendor/product only.
 * optional: startupPolicy='optional', for definitions; a live attach must
 * not use it (libvirt then "attaches" an absent device as missing='yes').
 */
char *domxml_usb_hostdev(
    const struct vm_usbdev *, unsigned bus, unsigned device, bool optional);

#endif
