/*
 * The vm_spec: what a VM is made of before it becomes domain XML.  The deploy
 * pipeline and the tests fill one from JSON (strictly: unknown fields, wrong
 * types and trailing bytes are errors), and vm_spec_validate decides whether
 * it may reach libvirt.  Name rules for new VMs and for outside domains live
 * here too, so the API and the builder agree on them.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common.h"
#include "spec.h"

/* Route words: /api/vms/{word} is a route, not a VM. */
static const char *const spec_route_words[] = {
    "templates",
    "status",
    "list",
    "create",
    "events",
};

struct vm_spec *
vm_spec_new(void)
{
	struct vm_spec *spec;

	spec = xcalloc(1, sizeof(*spec));
	spec->arch = VM_ARCH_X86_64;
	spec->virt = VM_VIRT_KVM;
	spec->cpu_mode = VM_CPU_DEFAULT;
	return spec;
}

void
vm_spec_free(struct vm_spec *spec)
{
	size_t i;

	if (spec == NULL)
		return;
	free(spec->name);
	free(spec->uuid);
	free(spec->title);
	free(spec->description);
	free(spec->template_id);
	free(spec->cpu_model);
	free(spec->loader);
	free(spec->nvram);
	free(spec->nvram_template);
	free(spec->kernel);
	free(spec->initrd);
	free(spec->cmdline);
	free(spec->disk);
	free(spec->seed_iso);
	free(spec->bridge);
	free(spec->mac);
	free(spec->filter_ip);
	free(spec->disk_secret);
	for (i = 0; i < spec->nusb; i++)
		free(spec->usb[i].serial);
	free(spec->usb);
	free(spec->pci);
	free(spec);
}

const char *
vm_arch_name(enum vm_arch arch)
{
	switch (arch) {
	case VM_ARCH_X86_64:
		return "x86_64";
	case VM_ARCH_AARCH64:
		return "aarch64";
	}
	return NULL;
}

const char *
vm_virt_name(enum vm_virt virt)
{
	switch (virt) {
	case VM_VIRT_KVM:
		return "kvm";
	case VM_VIRT_QEMU:
		return "qemu";
	case VM_VIRT_XEN:
		return "xen";
	}
	return NULL;
}

/*
 * Strict UTF-8 (RFC 3629, Unicode table 3-7): no overlong forms, no
 * surrogates, nothing above U+10FFFF.  Names come percent-decoded from URLs,
 * so every byte sequence is possible here.
 */
bool
vm_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n, k;
	unsigned char lo, hi;

	while (i < len) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		lo = 0x80;
		hi = 0xbf;
		if (p[i] >= 0xc2 && p[i] <= 0xdf)
			n = 1;
		else if (p[i] >= 0xe0 && p[i] <= 0xef) {
			n = 2;
			if (p[i] == 0xe0)
				lo = 0xa0;
			else if (p[i] == 0xed)
				hi = 0x9f;
		} else if (p[i] >= 0xf0 && p[i] <= 0xf4) {
			n = 3;
			if (p[i] == 0xf0)
				lo = 0x90;
			else if (p[i] == 0xf4)
				hi = 0x8f;
		} else
			return false;
		if (len - i <= n)
			return false;
		/* Only the first continuation byte has a narrowed range. */
		if (p[i + 1] < lo || p[i + 1] > hi)
			return false;
		for (k = 2; k <= n; k++)
			if (p[i + k] < 0x80 || p[i + k] > 0xbf)
				return false;
		i += n + 1;
	}
	return true;
}

/*
 * C0 controls, DEL and the C1 controls (U+0080..U+009F, UTF-8 c2 80..c2 9f).
 * allow_nl lets newline and tab through for free text.
 */
static bool
spec_has_ctrl(const char *s, bool allow_nl)
{
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (allow_nl && (*p == '\n' || *p == '\t'))
			continue;
		if (*p < 0x20 || *p == 0x7f)
			return true;
		if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			return true;
	}
	return false;
}

bool
vm_name_valid_new(const char *name)
{
	size_t i, len;

	if (name == NULL)
		return false;
	len = strlen(name);
	if (len == 0 || len > SPEC_NAME_MAX || name[0] == '-')
		return false;
	/* Spelled out: islower() and friends depend on the locale. */
	for (i = 0; i < len; i++) {
		if ((name[i] < 'a' || name[i] > 'z') &&
		    (name[i] < '0' || name[i] > '9') && name[i] != '-')
			return false;
	}
	for (i = 0; i < nitems(spec_route_words); i++)
		if (strcmp(name, spec_route_words[i]) == 0)
			return false;
	return true;
}

bool
vm_name_valid_ref(const char *name)
{
	size_t len;

	if (name == NULL)
		return false;
	len = strlen(name);
	if (len == 0 || len > SPEC_REFNAME_MAX)
		return false;
	if (strchr(name, '/') != NULL)
		return false;
	if (!vm_utf8_valid(name, len))
		return false;
	return !spec_has_ctrl(name, false);
}

bool
vm_mac_valid(const char *mac)
{
	size_t i;

	if (mac == NULL || strlen(mac) != 17)
		return false;
	if (strncasecmp(mac, "52:54:00:", 9) != 0)
		return false;
	for (i = 0; i < 17; i++) {
		if (i % 3 == 2) {
			if (mac[i] != ':')
				return false;
		} else if (!isxdigit((unsigned char)mac[i]))
			return false;
	}
	return true;
}

static bool
spec_uuid_valid(const char *uuid)
{
	size_t i;

	if (strlen(uuid) != 36)
		return false;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (uuid[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char)uuid[i]))
			return false;
	}
	return true;
}

/* [A-Za-z0-9] then [A-Za-z0-9._-]: CPU models, bridges, template ids. */
static bool
spec_word_valid(const char *s, size_t max, bool lower_only)
{
	size_t i, len = strlen(s);

	if (len == 0 || len > max)
		return false;
	for (i = 0; i < len; i++) {
		if ((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9'))
			continue;
		if (!lower_only && s[i] >= 'A' && s[i] <= 'Z')
			continue;
		if (i > 0 &&
		    (s[i] == '-' ||
			(!lower_only && (s[i] == '_' || s[i] == '.'))))
			continue;
		return false;
	}
	return true;
}

static int
spec_check_text(
    const char *what, const char *s, size_t max, bool allow_nl, char **errp)
{
	size_t len;

	if (s == NULL)
		return 0;
	len = strlen(s);
	if (len > max)
		return err_replace(
		    errp, "%s: longer than %zu bytes", what, max);
	if (!vm_utf8_valid(s, len))
		return err_replace(errp, "%s: not valid UTF-8", what);
	if (spec_has_ctrl(s, allow_nl))
		return err_replace(
		    errp, "%s: contains control characters", what);
	return 0;
}

static int
spec_check_path(const char *what, const char *path, char **errp)
{
	const char *p;

	if (path == NULL)
		return 0;
	if (spec_check_text(what, path, SPEC_PATH_MAX, false, errp) == -1)
		return -1;
	if (path[0] != '/')
		return err_replace(errp, "%s: must be an absolute path", what);
	/* No "." or ".." components: the path we check is the one used. */
	for (p = path; p != NULL; p = strchr(p + 1, '/')) {
		if (strncmp(p, "/./", 3) == 0 || strcmp(p, "/.") == 0 ||
		    strncmp(p, "/../", 4) == 0 || strcmp(p, "/..") == 0)
			return err_replace(errp,
			    "%s: must not contain '.' or '..' components",
			    what);
	}
	return 0;
}

static int
spec_validate_cpu(const struct vm_spec *spec, char **errp)
{
	switch (spec->cpu_mode) {
	case VM_CPU_DEFAULT:
	case VM_CPU_MAXIMUM:
		break;
	case VM_CPU_HOST_MODEL:
		if (spec->arch == VM_ARCH_AARCH64)
			return err_replace(errp,
			    "cpu.mode: host-model is not supported on aarch64");
		/* FALLTHROUGH */
	case VM_CPU_HOST_PASSTHROUGH:
		if (spec->virt == VM_VIRT_QEMU)
			return err_replace(
			    errp, "cpu.mode: host CPU modes need KVM, not TCG");
		break;
	case VM_CPU_CUSTOM:
		if (spec->cpu_model == NULL)
			return err_replace(
			    errp, "cpu.model: required in custom mode");
		if (!spec_word_valid(spec->cpu_model, 64, false))
			return err_replace(errp,
			    "cpu.model: must match "
			    "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$");
		return 0;
	default:
		return err_replace(errp, "cpu.mode: unknown mode");
	}
	if (spec->cpu_model != NULL)
		return err_replace(errp, "cpu.model: only with mode custom");
	return 0;
}

static int
spec_validate_boot(const struct vm_spec *spec, char **errp)
{
	if (spec_check_path("firmware.loader", spec->loader, errp) == -1 ||
	    spec_check_path("firmware.nvram", spec->nvram, errp) == -1 ||
	    spec_check_path(
		"firmware.nvram_template", spec->nvram_template, errp) == -1 ||
	    spec_check_path("kernel.path", spec->kernel, errp) == -1 ||
	    spec_check_path("kernel.initrd", spec->initrd, errp) == -1 ||
	    spec_check_text("kernel.cmdline", spec->cmdline, SPEC_CMDLINE_MAX,
		false, errp) == -1 ||
	    spec_check_path("disk", spec->disk, errp) == -1 ||
	    spec_check_path("seed_iso", spec->seed_iso, errp) == -1)
		return -1;
	/* Each UEFI VM keeps its own variable store, copied from a template. */
	if (spec->loader != NULL &&
	    (spec->nvram == NULL || spec->nvram_template == NULL))
		return err_replace(
		    errp, "firmware: loader needs nvram and nvram_template");
	if (spec->loader == NULL &&
	    (spec->nvram != NULL || spec->nvram_template != NULL))
		return err_replace(errp, "firmware: nvram needs a loader");
	if (spec->kernel == NULL &&
	    (spec->initrd != NULL || spec->cmdline != NULL))
		return err_replace(
		    errp, "kernel: initrd and cmdline need a path");
	if (spec->arch == VM_ARCH_AARCH64 && spec->loader == NULL &&
	    spec->kernel == NULL)
		return err_replace(errp,
		    "firmware: aarch64 boots only via UEFI or a direct kernel");
	if (spec->disk == NULL && spec->kernel == NULL)
		return err_replace(
		    errp, "disk: required unless a kernel is given");
	return 0;
}

static int
spec_validate_net(const struct vm_spec *spec, char **errp)
{
	struct in_addr in;

	if (spec->bridge != NULL && !spec_word_valid(spec->bridge, 15, false))
		return err_replace(errp,
		    "network.bridge: must be an interface "
		    "name of 1 to 15 characters [A-Za-z0-9._-]");
	if (spec->mac == NULL)
		return err_replace(errp, "network.mac: required");
	if (!vm_mac_valid(spec->mac))
		return err_replace(errp,
		    "network.mac: must be 52:54:00:xx:xx:xx (hex octets)");
	if (spec->filter_ip != NULL &&
	    inet_pton(AF_INET, spec->filter_ip, &in) != 1)
		return err_replace(
		    errp, "network.filter_ip: not an IPv4 address");
	return 0;
}

static int
spec_validate_tune(const struct vm_spec *spec, char **errp)
{
	if (spec->hard_limit_mb != 0 &&
	    (spec->hard_limit_mb < spec->memory_mb ||
		spec->hard_limit_mb > 2ULL * SPEC_MEMORY_MAX_MB))
		return err_replace(errp,
		    "memtune.hard_limit_mb: must be between "
		    "memory_mb and %llu",
		    2ULL * SPEC_MEMORY_MAX_MB);
	if (spec->soft_limit_mb > SPEC_MEMORY_MAX_MB ||
	    (spec->hard_limit_mb != 0 &&
		spec->soft_limit_mb > spec->hard_limit_mb))
		return err_replace(errp,
		    "memtune.soft_limit_mb: must not exceed "
		    "hard_limit_mb or %d",
		    SPEC_MEMORY_MAX_MB);
	if (spec->cpu_shares != 0 &&
	    (spec->cpu_shares < 2 || spec->cpu_shares > 262144))
		return err_replace(
		    errp, "cputune.shares: must be between 2 and 262144");
	if (spec->cpu_period != 0 &&
	    (spec->cpu_period < 1000 || spec->cpu_period > 1000000))
		return err_replace(
		    errp, "cputune.period: must be between 1000 and 1000000");
	if (spec->cpu_quota != 0 && spec->cpu_quota != -1 &&
	    (spec->cpu_quota < 1000 || spec->cpu_quota > 17592186044415LL))
		return err_replace(errp,
		    "cputune.quota: must be -1 or between "
		    "1000 and 17592186044415");
	return 0;
}

static int
spec_validate_hostdevs(const struct vm_spec *spec, char **errp)
{
	const struct vm_usbdev *u;
	const struct vm_pcidev *p;
	size_t i, j;

	if (spec->nusb > SPEC_USB_MAX)
		return err_replace(
		    errp, "usb: at most %d devices", SPEC_USB_MAX);
	for (i = 0; i < spec->nusb; i++) {
		u = &spec->usb[i];
		if (u->vendor == 0 || u->vendor > 0xffff || u->product == 0 ||
		    u->product > 0xffff)
			return err_replace(errp,
			    "usb[%zu]: vendor and product "
			    "must be 0001 to ffff",
			    i);
		/* USB string descriptors hold at most 126 UTF-16 units. */
		if (spec_check_text(
			"usb.serial", u->serial, 126 * 3, false, errp) == -1)
			return -1;
		for (j = 0; j < i; j++)
			if (spec->usb[j].vendor == u->vendor &&
			    spec->usb[j].product == u->product)
				return err_replace(errp,
				    "usb[%zu]: %04x:%04x "
				    "listed twice",
				    i, u->vendor, u->product);
	}
	if (spec->npci > 0 && spec->arch != VM_ARCH_X86_64)
		return err_replace(errp, "pci: PCI passthrough is x86_64 only");
	if (spec->npci > SPEC_PCI_MAX)
		return err_replace(
		    errp, "pci: at most %d devices", SPEC_PCI_MAX);
	for (i = 0; i < spec->npci; i++) {
		p = &spec->pci[i];
		if (p->domain > 0xffff || p->bus > 0xff || p->slot > 0x1f ||
		    p->function > 7)
			return err_replace(
			    errp, "pci[%zu]: address out of range", i);
		for (j = 0; j < i; j++)
			if (memcmp(&spec->pci[j], p, sizeof(*p)) == 0)
				return err_replace(
				    errp, "pci[%zu]: listed twice", i);
	}
	return 0;
}

/* Secure Boot and disk encryption (the classification is profile.c's). */
static int
spec_validate_security(const struct vm_spec *spec, char **errp)
{
	if (spec->secure_boot) {
		if (spec->arch != VM_ARCH_X86_64)
			return err_replace(
			    errp, "secure_boot: x86_64 (OVMF) only here");
		if (spec->loader == NULL)
			return err_replace(
			    errp, "secure_boot: needs UEFI firmware");
		/* Debian: OVMF_CODE_4M.ms.fd links to the .secboot build. */
		if (strstr(spec->loader, "secboot") == NULL &&
		    strstr(spec->loader, ".ms.") == NULL)
			return err_replace(errp,
			    "firmware.loader: Secure Boot needs a secure-boot "
			    "OVMF build (OVMF_CODE_4M.secboot.fd)");
		/* Without enrolled keys Secure Boot enforces nothing. */
		if (strstr(spec->nvram_template, ".ms.") == NULL)
			return err_replace(errp,
			    "firmware.nvram_template: Secure Boot needs "
			    "enrolled keys (OVMF_VARS_4M.ms.fd)");
	}
	if (spec->disk_secret != NULL) {
		if (!spec_uuid_valid(spec->disk_secret))
			return err_replace(errp,
			    "disk_encryption.secret: must be 8-4-4-4-12 hex "
			    "digits");
		if (spec->disk == NULL)
			return err_replace(
			    errp, "disk_encryption: needs a disk");
	}
	return 0;
}

int
vm_spec_validate(const struct vm_spec *spec, char **errp)
{
	size_t i;

	if (spec->name == NULL)
		return err_replace(errp, "name: required");
	for (i = 0; i < nitems(spec_route_words); i++)
		if (strcmp(spec->name, spec_route_words[i]) == 0)
			return err_replace(
			    errp, "name: '%s' is a reserved word", spec->name);
	if (!vm_name_valid_new(spec->name))
		return err_replace(
		    errp, "name: must match ^[a-z0-9][a-z0-9-]{0,62}$");
	if (spec->uuid != NULL && !spec_uuid_valid(spec->uuid))
		return err_replace(errp, "uuid: must be 8-4-4-4-12 hex digits");
	if (spec_check_text(
		"title", spec->title, SPEC_TITLE_MAX, false, errp) == -1 ||
	    spec_check_text("description", spec->description, SPEC_DESC_MAX,
		true, errp) == -1)
		return -1;
	if (spec->template_id != NULL &&
	    !spec_word_valid(spec->template_id, 64, true))
		return err_replace(
		    errp, "template: must match ^[a-z0-9][a-z0-9-]{0,63}$");
	if (vm_arch_name(spec->arch) == NULL)
		return err_replace(errp, "arch: unknown architecture");
	if (vm_virt_name(spec->virt) == NULL)
		return err_replace(errp, "type: unknown domain type");
	if (spec->memory_mb < SPEC_MEMORY_MIN_MB ||
	    spec->memory_mb > SPEC_MEMORY_MAX_MB)
		return err_replace(errp, "memory_mb: must be between %d and %d",
		    SPEC_MEMORY_MIN_MB, SPEC_MEMORY_MAX_MB);
	if (spec->vcpus < 1 || spec->vcpus > SPEC_VCPUS_MAX)
		return err_replace(
		    errp, "vcpus: must be between 1 and %d", SPEC_VCPUS_MAX);
	if (spec_validate_cpu(spec, errp) == -1 ||
	    spec_validate_boot(spec, errp) == -1 ||
	    spec_validate_net(spec, errp) == -1 ||
	    spec_validate_tune(spec, errp) == -1 ||
	    spec_validate_hostdevs(spec, errp) == -1 ||
	    spec_validate_security(spec, errp) == -1 ||
	    profile_check(spec, errp) == -1)
		return -1;
	return 0;
}

/* ---- JSON ----------------------------------------------------------------
 * Each object is checked for unknown keys first, then every member is
 * type-checked before its get.  Semantic checks are vm_spec_validate's.
 */

static int
spec_json_keys(struct json_object *obj, const char *where,
    const char *const *keys, size_t nkeys, char **errp)
{
	size_t i;

	json_object_object_foreach(obj, key, val)
	{
		(void)val;
		for (i = 0; i < nkeys; i++)
			if (strcmp(key, keys[i]) == 0)
				break;
		if (i == nkeys)
			return err_replace(errp, "%s%s%s: unknown field", where,
			    where[0] != '\0' ? "." : "", key);
	}
	return 0;
}

static int
spec_json_object(struct json_object *parent, const char *key,
    struct json_object **out, char **errp)
{
	struct json_object *v;

	*out = NULL;
	if (!json_object_object_get_ex(parent, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_object))
		return err_replace(errp, "%s: must be an object", key);
	*out = v;
	return 0;
}

/* Optional string member; absent leaves *out alone. */
static int
spec_json_string(struct json_object *obj, const char *where, const char *key,
    char **out, char **errp)
{
	struct json_object *v;
	const char *s;
	int len;

	if (!json_object_object_get_ex(obj, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return err_replace(errp, "%s%s%s: must be a string", where,
		    where[0] != '\0' ? "." : "", key);
	s = json_object_get_string(v);
	len = json_object_get_string_len(v);
	/* "\u0000" would silently cut the string short. */
	if ((size_t)len != strlen(s))
		return err_replace(errp, "%s%s%s: contains a NUL character",
		    where, where[0] != '\0' ? "." : "", key);
	free(*out);
	*out = xstrdup(s);
	return 0;
}

static int
spec_json_int(struct json_object *obj, const char *where, const char *key,
    long long min, long long max, long long *out, char **errp)
{
	struct json_object *v;
	int64_t n;

	if (!json_object_object_get_ex(obj, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return err_replace(errp, "%s%s%s: must be an integer", where,
		    where[0] != '\0' ? "." : "", key);
	n = json_object_get_int64(v);
	if (n < min || n > max)
		return err_replace(errp,
		    "%s%s%s: must be between %lld and %lld", where,
		    where[0] != '\0' ? "." : "", key, min, max);
	*out = n;
	return 0;
}

static int
spec_json_bool(struct json_object *obj, const char *key, bool *out, char **errp)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_boolean))
		return err_replace(errp, "%s: must be true or false", key);
	*out = json_object_get_boolean(v);
	return 0;
}

/* "10c4" or "0x10c4": exactly four hex digits. */
static int
spec_parse_usbid(const char *s, unsigned int *out)
{
	size_t i;

	if (strncmp(s, "0x", 2) == 0)
		s += 2;
	if (strlen(s) != 4)
		return -1;
	for (i = 0; i < 4; i++)
		if (!isxdigit((unsigned char)s[i]))
			return -1;
	*out = strtoul(s, NULL, 16);
	return 0;
}

/* "dddd:bb:ss.f", the form lspci -D and sysfs print. */
static int
spec_parse_pciaddr(const char *s, struct vm_pcidev *out)
{
	static const char form[] = "hhhh:hh:hh.h";
	char buf[sizeof(form)];
	size_t i;

	if (strlen(s) != sizeof(form) - 1)
		return -1;
	for (i = 0; i < sizeof(form) - 1; i++) {
		if (form[i] == 'h' ? !isxdigit((unsigned char)s[i])
				   : s[i] != form[i])
			return -1;
	}
	memcpy(buf, s, sizeof(buf));
	buf[4] = buf[7] = buf[10] = '\0';
	out->domain = strtoul(buf, NULL, 16);
	out->bus = strtoul(buf + 5, NULL, 16);
	out->slot = strtoul(buf + 8, NULL, 16);
	out->function = strtoul(buf + 11, NULL, 16);
	return 0;
}

static int
spec_json_enum(struct json_object *obj, const char *where, const char *key,
    const char *const *names, size_t nnames, int *out, char **errp)
{
	char *s = NULL;
	size_t i;

	if (spec_json_string(obj, where, key, &s, errp) == -1)
		return -1;
	if (s == NULL)
		return 0;
	for (i = 0; i < nnames; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = i;
			free(s);
			return 0;
		}
	}
	free(s);
	err_replace(errp, "%s%s%s: must be one of", where,
	    where[0] != '\0' ? "." : "", key);
	for (i = 0; errp != NULL && i < nnames; i++) {
		xasprintf(&s, "%s %s", *errp, names[i]);
		free(*errp);
		*errp = s;
	}
	return -1;
}

static int
spec_json_cpu(struct vm_spec *spec, struct json_object *root, char **errp)
{
	static const char *const keys[] = {"mode", "model"};
	/* Index order is enum vm_cpu_mode's. */
	static const char *const modes[] = {
	    "default", "host-passthrough", "host-model", "maximum", "custom"};
	struct json_object *o;
	int mode = VM_CPU_DEFAULT;

	if (spec_json_object(root, "cpu", &o, errp) == -1)
		return -1;
	if (o == NULL)
		return 0;
	if (spec_json_keys(o, "cpu", keys, nitems(keys), errp) == -1 ||
	    spec_json_enum(
		o, "cpu", "mode", modes, nitems(modes), &mode, errp) == -1 ||
	    spec_json_string(o, "cpu", "model", &spec->cpu_model, errp) == -1)
		return -1;
	spec->cpu_mode = mode;
	return 0;
}

static int
spec_json_boot(struct vm_spec *spec, struct json_object *root, char **errp)
{
	static const char *const fwkeys[] = {
	    "loader", "nvram", "nvram_template"};
	static const char *const kkeys[] = {"path", "initrd", "cmdline"};
	struct json_object *o;

	if (spec_json_object(root, "firmware", &o, errp) == -1)
		return -1;
	if (o != NULL &&
	    (spec_json_keys(o, "firmware", fwkeys, nitems(fwkeys), errp) ==
		    -1 ||
		spec_json_string(
		    o, "firmware", "loader", &spec->loader, errp) == -1 ||
		spec_json_string(o, "firmware", "nvram", &spec->nvram, errp) ==
		    -1 ||
		spec_json_string(o, "firmware", "nvram_template",
		    &spec->nvram_template, errp) == -1))
		return -1;
	if (spec_json_object(root, "kernel", &o, errp) == -1)
		return -1;
	if (o != NULL &&
	    (spec_json_keys(o, "kernel", kkeys, nitems(kkeys), errp) == -1 ||
		spec_json_string(o, "kernel", "path", &spec->kernel, errp) ==
		    -1 ||
		spec_json_string(o, "kernel", "initrd", &spec->initrd, errp) ==
		    -1 ||
		spec_json_string(
		    o, "kernel", "cmdline", &spec->cmdline, errp) == -1))
		return -1;
	if (o != NULL && spec->kernel == NULL)
		return err_replace(errp, "kernel.path: required");
	return 0;
}

static int
spec_json_net(struct vm_spec *spec, struct json_object *root, char **errp)
{
	static const char *const keys[] = {"bridge", "mac", "filter_ip"};
	struct json_object *o;
	char *p;

	if (spec_json_object(root, "network", &o, errp) == -1)
		return -1;
	if (o == NULL)
		return 0; /* vm_spec_validate: "network.mac: required" */
	if (spec_json_keys(o, "network", keys, nitems(keys), errp) == -1 ||
	    spec_json_string(o, "network", "bridge", &spec->bridge, errp) ==
		-1 ||
	    spec_json_string(o, "network", "mac", &spec->mac, errp) == -1 ||
	    spec_json_string(
		o, "network", "filter_ip", &spec->filter_ip, errp) == -1)
		return -1;
	if (spec->bridge == NULL)
		spec->bridge = xstrdup("br0");
	/* The same MAC goes into the dnsmasq reservation: one spelling. */
	for (p = spec->mac; p != NULL && *p != '\0'; p++)
		*p = tolower((unsigned char)*p);
	return 0;
}

static int
spec_json_tune(struct vm_spec *spec, struct json_object *root, char **errp)
{
	static const char *const mkeys[] = {"hard_limit_mb", "soft_limit_mb"};
	static const char *const ckeys[] = {"shares", "period", "quota"};
	struct json_object *o;
	long long hard = 0, soft = 0, shares = 0, period = 0, quota = 0;

	if (spec_json_object(root, "memtune", &o, errp) == -1)
		return -1;
	if (o != NULL &&
	    (spec_json_keys(o, "memtune", mkeys, nitems(mkeys), errp) == -1 ||
		spec_json_int(o, "memtune", "hard_limit_mb", 1, LLONG_MAX,
		    &hard, errp) == -1 ||
		spec_json_int(o, "memtune", "soft_limit_mb", 1, LLONG_MAX,
		    &soft, errp) == -1))
		return -1;
	if (spec_json_object(root, "cputune", &o, errp) == -1)
		return -1;
	if (o != NULL &&
	    (spec_json_keys(o, "cputune", ckeys, nitems(ckeys), errp) == -1 ||
		spec_json_int(
		    o, "cputune", "shares", 1, UINT_MAX, &shares, errp) == -1 ||
		spec_json_int(o, "cputune", "period", 1, LLONG_MAX, &period,
		    errp) == -1 ||
		spec_json_int(
		    o, "cputune", "quota", -1, LLONG_MAX, &quota, errp) == -1))
		return -1;
	if (quota == 0 && o != NULL &&
	    json_object_object_get_ex(o, "quota", NULL))
		return err_replace(errp, "cputune.quota: must not be 0");
	spec->hard_limit_mb = hard;
	spec->soft_limit_mb = soft;
	spec->cpu_shares = shares;
	spec->cpu_period = period;
	spec->cpu_quota = quota;
	return 0;
}

static int
spec_json_usb(struct vm_spec *spec, struct json_object *root, char **errp)
{
	static const char *const keys[] = {"vendor", "product", "serial"};
	struct json_object *arr, *o;
	struct vm_usbdev *u;
	char *vendor = NULL, *product = NULL;
	size_t i, n;
	int rc = -1;

	if (!json_object_object_get_ex(root, "usb", &arr))
		return 0;
	if (!json_object_is_type(arr, json_type_array))
		return err_replace(errp, "usb: must be an array");
	n = json_object_array_length(arr);
	if (n > SPEC_USB_MAX)
		return err_replace(
		    errp, "usb: at most %d devices", SPEC_USB_MAX);
	if (n == 0)
		return 0;
	spec->usb = xcalloc(n, sizeof(*spec->usb));
	for (i = 0; i < n; i++) {
		o = json_object_array_get_idx(arr, i);
		u = &spec->usb[i];
		spec->nusb = i + 1;
		if (!json_object_is_type(o, json_type_object)) {
			err_replace(errp, "usb[%zu]: must be an object", i);
			goto done;
		}
		if (spec_json_keys(o, "usb", keys, nitems(keys), errp) == -1 ||
		    spec_json_string(o, "usb", "vendor", &vendor, errp) == -1 ||
		    spec_json_string(o, "usb", "product", &product, errp) ==
			-1 ||
		    spec_json_string(o, "usb", "serial", &u->serial, errp) ==
			-1)
			goto done;
		if (vendor == NULL || product == NULL) {
			err_replace(
			    errp, "usb[%zu]: vendor and product required", i);
			goto done;
		}
		if (spec_parse_usbid(vendor, &u->vendor) == -1 ||
		    spec_parse_usbid(product, &u->product) == -1) {
			err_replace(errp,
			    "usb[%zu]: vendor and product must be "
			    "four hex digits",
			    i);
			goto done;
		}
		free(vendor);
		free(product);
		vendor = product = NULL;
	}
	rc = 0;
done:
	free(vendor);
	free(product);
	return rc;
}

static int
spec_json_pci(struct vm_spec *spec, struct json_object *root, char **errp)
{
	struct json_object *arr, *o;
	size_t i, n;

	if (!json_object_object_get_ex(root, "pci", &arr))
		return 0;
	if (!json_object_is_type(arr, json_type_array))
		return err_replace(errp, "pci: must be an array");
	n = json_object_array_length(arr);
	if (n > SPEC_PCI_MAX)
		return err_replace(
		    errp, "pci: at most %d devices", SPEC_PCI_MAX);
	if (n == 0)
		return 0;
	spec->pci = xcalloc(n, sizeof(*spec->pci));
	spec->npci = n;
	for (i = 0; i < n; i++) {
		o = json_object_array_get_idx(arr, i);
		if (!json_object_is_type(o, json_type_string) ||
		    spec_parse_pciaddr(
			json_object_get_string(o), &spec->pci[i]) == -1)
			return err_replace(errp,
			    "pci[%zu]: must be a string "
			    "\"dddd:bb:ss.f\"",
			    i);
	}
	return 0;
}

static int
spec_json_security(struct vm_spec *spec, struct json_object *root, char **errp)
{
	static const char *const keys[] = {"secret"};
	struct json_object *o;
	char *s = NULL;
	enum vm_class c;

	if (spec_json_object(root, "disk_encryption", &o, errp) == -1)
		return -1;
	if (o != NULL &&
	    (spec_json_keys(o, "disk_encryption", keys, nitems(keys), errp) ==
		    -1 ||
		spec_json_string(o, "disk_encryption", "secret",
		    &spec->disk_secret, errp) == -1))
		return -1;
	if (o != NULL && spec->disk_secret == NULL)
		return err_replace(errp, "disk_encryption.secret: required");
	if (spec_json_string(root, "", "classification", &s, errp) == -1)
		return -1;
	if (s != NULL && vm_class_parse(s, &c) == -1) {
		free(s);
		return err_replace(errp,
		    "classification: must be UNCLASSIFIED, CUI, SECRET or "
		    "TOP SECRET");
	}
	if (s != NULL)
		spec->classification = c;
	free(s);
	return 0;
}

static int
spec_json_root(struct vm_spec *spec, struct json_object *root, char **errp)
{
	static const char *const keys[] = {"name", "uuid", "title",
	    "description", "template", "arch", "type", "memory_mb", "vcpus",
	    "cpu", "autostart", "firmware", "kernel", "disk", "seed_iso",
	    "network", "vnc", "tpm", "memtune", "cputune", "usb", "pci",
	    "secure_boot", "disk_encryption", "classification"};
	/* Index order is the enums'. */
	static const char *const arches[] = {"x86_64", "aarch64"};
	static const char *const virts[] = {"kvm", "qemu", "xen"};
	long long memory = 0, vcpus = 0;
	int arch = -1, virt = VM_VIRT_KVM;

	if (spec_json_keys(root, "", keys, nitems(keys), errp) == -1 ||
	    spec_json_string(root, "", "name", &spec->name, errp) == -1 ||
	    spec_json_string(root, "", "uuid", &spec->uuid, errp) == -1 ||
	    spec_json_string(root, "", "title", &spec->title, errp) == -1 ||
	    spec_json_string(
		root, "", "description", &spec->description, errp) == -1 ||
	    spec_json_string(root, "", "template", &spec->template_id, errp) ==
		-1 ||
	    spec_json_enum(
		root, "", "arch", arches, nitems(arches), &arch, errp) == -1 ||
	    spec_json_enum(
		root, "", "type", virts, nitems(virts), &virt, errp) == -1 ||
	    spec_json_int(root, "", "memory_mb", 0, LLONG_MAX, &memory, errp) ==
		-1 ||
	    spec_json_int(root, "", "vcpus", 0, LLONG_MAX, &vcpus, errp) ==
		-1 ||
	    spec_json_bool(root, "autostart", &spec->autostart, errp) == -1 ||
	    spec_json_string(root, "", "disk", &spec->disk, errp) == -1 ||
	    spec_json_string(root, "", "seed_iso", &spec->seed_iso, errp) ==
		-1 ||
	    spec_json_bool(root, "vnc", &spec->vnc, errp) == -1 ||
	    spec_json_bool(root, "tpm", &spec->tpm, errp) == -1 ||
	    spec_json_bool(root, "secure_boot", &spec->secure_boot, errp) ==
		-1 ||
	    spec_json_security(spec, root, errp) == -1 ||
	    spec_json_cpu(spec, root, errp) == -1 ||
	    spec_json_boot(spec, root, errp) == -1 ||
	    spec_json_net(spec, root, errp) == -1 ||
	    spec_json_tune(spec, root, errp) == -1 ||
	    spec_json_usb(spec, root, errp) == -1 ||
	    spec_json_pci(spec, root, errp) == -1)
		return -1;
	if (spec->name == NULL)
		return err_replace(errp, "name: required");
	if (arch == -1)
		return err_replace(errp, "arch: required");
	if (memory == 0)
		return err_replace(errp, "memory_mb: required");
	if (vcpus == 0)
		return err_replace(errp, "vcpus: required");
	/* Clamp: anything past UINT_MAX is out of range for validate too. */
	spec->arch = arch;
	spec->virt = virt;
	spec->memory_mb = memory > UINT_MAX ? UINT_MAX : memory;
	spec->vcpus = vcpus > UINT_MAX ? UINT_MAX : vcpus;
	return 0;
}

struct vm_spec *
vm_spec_from_json(const char *json, char **errp)
{
	struct json_tokener *tok;
	struct json_object *root = NULL;
	struct vm_spec *spec = NULL;
	enum json_tokener_error jerr;
	size_t len, end;

	len = strlen(json);
	if (len > INT_MAX) {
		err_replace(errp, "JSON: too large");
		return NULL;
	}
	tok = json_tokener_new();
	if (tok == NULL)
		fatalx("%s: json_tokener_new", __func__);
	json_tokener_set_flags(
	    tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	root = json_tokener_parse_ex(tok, json, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_continue) {
		err_replace(errp, "JSON: unexpected end of input");
		goto fail;
	}
	if (jerr != json_tokener_success || root == NULL) {
		err_replace(errp, "JSON: %s at offset %zu",
		    json_tokener_error_desc(jerr), end);
		goto fail;
	}
	while (end < len && strchr(" \t\r\n", json[end]) != NULL)
		end++;
	if (end != len) {
		err_replace(errp, "JSON: trailing data at offset %zu", end);
		goto fail;
	}
	if (!json_object_is_type(root, json_type_object)) {
		err_replace(errp, "JSON: must be an object");
		goto fail;
	}
	spec = vm_spec_new();
	if (spec_json_root(spec, root, errp) == -1) {
		vm_spec_free(spec);
		spec = NULL;
	}
fail:
	json_object_put(root);
	json_tokener_free(tok);
	return spec;
}
