/*
 * vm_spec -> libvirt domain XML.  A pure function: the same spec always gives
 * the same bytes, so golden files pin the output.  libxml2's text writer does
 * all quoting and escaping; no XML is pasted together from strings here.
 * This is the only file that writes domain XML.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/xmlwriter.h>

#include "common.h"
#include "spec.h"

/*
 * The writer plus a sticky error: after the first failing call every helper
 * does nothing, and domxml_build checks once at the end.
 */
struct dx {
	xmlTextWriterPtr w;
	int failed;
};

static void
dx_check(struct dx *dx, int rc)
{
	if (rc < 0)
		dx->failed = 1;
}

static void
dx_start(struct dx *dx, const char *name)
{
	if (!dx->failed)
		dx_check(dx, xmlTextWriterStartElement(dx->w, BAD_CAST name));
}

static void
dx_end(struct dx *dx)
{
	if (!dx->failed)
		dx_check(dx, xmlTextWriterEndElement(dx->w));
}

static void
dx_attr(struct dx *dx, const char *name, const char *value)
{
	if (!dx->failed)
		dx_check(dx,
		    xmlTextWriterWriteAttribute(
			dx->w, BAD_CAST name, BAD_CAST value));
}

static void dx_attrf(struct dx *dx, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
dx_attrf(struct dx *dx, const char *name, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	xvasprintf(&s, fmt, ap);
	va_end(ap);
	dx_attr(dx, name, s);
	free(s);
}

static void
dx_text(struct dx *dx, const char *text)
{
	if (!dx->failed)
		dx_check(dx, xmlTextWriterWriteString(dx->w, BAD_CAST text));
}

static void dx_textf(struct dx *dx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
dx_textf(struct dx *dx, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	xvasprintf(&s, fmt, ap);
	va_end(ap);
	dx_text(dx, s);
	free(s);
}

/* <name>text</name>; nothing when text is NULL. */
static void
dx_elem(struct dx *dx, const char *name, const char *text)
{
	if (text == NULL)
		return;
	dx_start(dx, name);
	dx_text(dx, text);
	dx_end(dx);
}

static void dx_elemf(struct dx *dx, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
dx_elemf(struct dx *dx, const char *name, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	xvasprintf(&s, fmt, ap);
	va_end(ap);
	dx_elem(dx, name, s);
	free(s);
}

/* <name attr="value"/> */
static void
dx_empty(struct dx *dx, const char *name, const char *attr, const char *value)
{
	dx_start(dx, name);
	if (attr != NULL)
		dx_attr(dx, attr, value);
	dx_end(dx);
}

/* What vmmod needs to know about a domain it made, under our namespace. */
static void
domxml_metadata(struct dx *dx, const struct vm_spec *spec)
{
	size_t i;

	if (spec->template_id == NULL && spec->nusb == 0 &&
	    spec->classification == VM_CLASS_NONE)
		return;
	dx_start(dx, "metadata");
	if (!dx->failed)
		dx_check(dx,
		    xmlTextWriterStartElementNS(dx->w,
			BAD_CAST SPEC_XMLNS_PREFIX, BAD_CAST "vm",
			BAD_CAST SPEC_XMLNS));
	if (spec->template_id != NULL && !dx->failed)
		dx_check(dx,
		    xmlTextWriterWriteElementNS(dx->w,
			BAD_CAST SPEC_XMLNS_PREFIX, BAD_CAST "template", NULL,
			BAD_CAST spec->template_id));
	/* The dashboard's classification banner. */
	if (spec->classification != VM_CLASS_NONE && !dx->failed)
		dx_check(dx,
		    xmlTextWriterWriteElementNS(dx->w,
			BAD_CAST SPEC_XMLNS_PREFIX, BAD_CAST "classification",
			NULL, BAD_CAST vm_class_name(spec->classification)));
	/* The serial picks the right stick after a replug; libvirt can't. */
	for (i = 0; i < spec->nusb; i++) {
		if (!dx->failed)
			dx_check(dx,
			    xmlTextWriterStartElementNS(dx->w,
				BAD_CAST SPEC_XMLNS_PREFIX, BAD_CAST "usb",
				NULL));
		dx_attrf(dx, "vendor", "0x%04x", spec->usb[i].vendor);
		dx_attrf(dx, "product", "0x%04x", spec->usb[i].product);
		if (spec->usb[i].serial != NULL)
			dx_attr(dx, "serial", spec->usb[i].serial);
		dx_end(dx);
	}
	dx_end(dx); /* gvm:vm */
	dx_end(dx); /* metadata */
}

static void
domxml_tune(struct dx *dx, const struct vm_spec *spec)
{
	if (spec->hard_limit_mb != 0 || spec->soft_limit_mb != 0) {
		dx_start(dx, "memtune");
		if (spec->hard_limit_mb != 0) {
			dx_start(dx, "hard_limit");
			dx_attr(dx, "unit", "MiB");
			dx_textf(dx, "%llu", spec->hard_limit_mb);
			dx_end(dx);
		}
		if (spec->soft_limit_mb != 0) {
			dx_start(dx, "soft_limit");
			dx_attr(dx, "unit", "MiB");
			dx_textf(dx, "%llu", spec->soft_limit_mb);
			dx_end(dx);
		}
		dx_end(dx);
	}
	if (spec->cpu_shares != 0 || spec->cpu_period != 0 ||
	    spec->cpu_quota != 0) {
		dx_start(dx, "cputune");
		if (spec->cpu_shares != 0)
			dx_elemf(dx, "shares", "%u", spec->cpu_shares);
		if (spec->cpu_period != 0)
			dx_elemf(dx, "period", "%llu", spec->cpu_period);
		if (spec->cpu_quota != 0)
			dx_elemf(dx, "quota", "%lld", spec->cpu_quota);
		dx_end(dx);
	}
}

static void
domxml_os(struct dx *dx, const struct vm_spec *spec)
{
	dx_start(dx, "os");
	dx_start(dx, "type");
	dx_attr(dx, "arch", vm_arch_name(spec->arch));
	dx_attr(dx, "machine", spec->arch == VM_ARCH_AARCH64 ? "virt" : "q35");
	dx_text(dx, "hvm");
	dx_end(dx);
	if (spec->loader != NULL) {
		/* Off unless asked: Home Assistant OS refuses to boot with it. */
		dx_start(dx, "loader");
		dx_attr(dx, "readonly", "yes");
		dx_attr(dx, "secure", spec->secure_boot ? "yes" : "no");
		dx_attr(dx, "type", "pflash");
		dx_text(dx, spec->loader);
		dx_end(dx);
		dx_start(dx, "nvram");
		dx_attr(dx, "template", spec->nvram_template);
		dx_text(dx, spec->nvram);
		dx_end(dx);
	}
	dx_elem(dx, "kernel", spec->kernel);
	dx_elem(dx, "initrd", spec->initrd);
	dx_elem(dx, "cmdline", spec->cmdline);
	dx_end(dx);

	dx_start(dx, "features");
	/* libvirt: on aarch64, ACPI requires UEFI. */
	if (spec->arch == VM_ARCH_X86_64 || spec->loader != NULL)
		dx_empty(dx, "acpi", NULL, NULL);
	if (spec->arch == VM_ARCH_X86_64)
		dx_empty(dx, "apic", NULL, NULL);
	/* OVMF keeps the Secure Boot variables safe from the OS in SMM. */
	if (spec->secure_boot)
		dx_empty(dx, "smm", "state", "on");
	dx_end(dx);
}

static void
domxml_cpu(struct dx *dx, const struct vm_spec *spec)
{
	enum vm_cpu_mode mode = spec->cpu_mode;

	if (mode == VM_CPU_DEFAULT)
		mode = spec->virt == VM_VIRT_KVM ? VM_CPU_HOST_PASSTHROUGH
						 : VM_CPU_MAXIMUM;
	dx_start(dx, "cpu");
	switch (mode) {
	case VM_CPU_DEFAULT:
	case VM_CPU_HOST_PASSTHROUGH:
		dx_attr(dx, "mode", "host-passthrough");
		break;
	case VM_CPU_HOST_MODEL:
		dx_attr(dx, "mode", "host-model");
		break;
	case VM_CPU_MAXIMUM:
		dx_attr(dx, "mode", "maximum");
		break;
	case VM_CPU_CUSTOM:
		dx_attr(dx, "mode", "custom");
		dx_attr(dx, "match", "exact");
		dx_start(dx, "model");
		dx_attr(dx, "fallback", "forbid");
		dx_text(dx, spec->cpu_model);
		dx_end(dx);
		break;
	}
	dx_end(dx);
}

/*
 * A LUKS-encrypted qcow2: QEMU opens it with the passphrase held by the
 * libvirt secret (made by the deploy pipeline with the volume).
 */
static void
domxml_encryption(struct dx *dx, const struct vm_spec *spec)
{
	if (spec->disk_secret == NULL)
		return;
	dx_start(dx, "encryption");
	dx_attr(dx, "format", "luks");
	dx_start(dx, "secret");
	dx_attr(dx, "type", "passphrase");
	dx_attr(dx, "uuid", spec->disk_secret);
	dx_end(dx);
	dx_end(dx);
}

/*
 * Opens <disk type='file' device=DEVICE> with QEMU's driver for FORMAT and
 * its source FILE; the caller adds what follows (encryption, target, boot,
 * readonly) and closes it.  Used by both backends (libxl's qdisk is QEMU).
 */
static void
domxml_disk_open(struct dx *dx, const char *device, const char *format,
    bool discard, const char *file)
{
	dx_start(dx, "disk");
	dx_attr(dx, "type", "file");
	dx_attr(dx, "device", device);
	dx_start(dx, "driver");
	dx_attr(dx, "name", "qemu");
	dx_attr(dx, "type", format);
	if (discard)
		dx_attr(dx, "discard", "unmap");
	dx_end(dx);
	dx_empty(dx, "source", "file", file);
}

static void
domxml_disk_target(struct dx *dx, const char *dev, const char *bus)
{
	dx_start(dx, "target");
	dx_attr(dx, "dev", dev);
	dx_attr(dx, "bus", bus);
	dx_end(dx);
}

/* The seed ISO (cloud-init): a read-only CD-ROM on BUS. */
static void
domxml_seed_cdrom(
    struct dx *dx, const struct vm_spec *spec, const char *dev, const char *bus)
{
	domxml_disk_open(dx, "cdrom", "raw", false, spec->seed_iso);
	domxml_disk_target(dx, dev, bus);
	dx_empty(dx, "readonly", NULL, NULL);
	dx_end(dx);
}

static void
domxml_disks(struct dx *dx, const struct vm_spec *spec)
{
	if (spec->disk != NULL) {
		domxml_disk_open(dx, "disk", "qcow2", true, spec->disk);
		domxml_encryption(dx, spec);
		domxml_disk_target(dx, "vda", "virtio");
		if (spec->kernel == NULL)
			dx_empty(dx, "boot", "order", "1");
		dx_end(dx);
	}
	if (spec->seed_iso != NULL) {
		/* aarch64 virt has no IDE/SATA: virtio-scsi works on both. */
		domxml_seed_cdrom(dx, spec, "sda", "scsi");
		dx_start(dx, "controller");
		dx_attr(dx, "type", "scsi");
		dx_attr(dx, "index", "0");
		dx_attr(dx, "model", "virtio-scsi");
		dx_end(dx);
	}
	/* Always there: hostdevs may be attached while the VM runs. */
	dx_start(dx, "controller");
	dx_attr(dx, "type", "usb");
	dx_attr(dx, "index", "0");
	dx_attr(dx, "model", "qemu-xhci");
	dx_end(dx);
}

static void
domxml_net(struct dx *dx, const struct vm_spec *spec)
{
	char mac[18];
	size_t i;

	/* One spelling for the XML and the dnsmasq reservation. */
	for (i = 0; i < sizeof(mac) - 1 && spec->mac[i] != '\0'; i++)
		mac[i] = tolower((unsigned char)spec->mac[i]);
	mac[i] = '\0';

	dx_start(dx, "interface");
	dx_attr(dx, "type", "bridge");
	dx_empty(dx, "mac", "address", mac);
	dx_empty(dx, "source", "bridge",
	    spec->bridge != NULL ? spec->bridge : "br0");
	dx_empty(dx, "model", "type", "virtio");
	if (spec->filter_ip != NULL) {
		dx_start(dx, "filterref");
		dx_attr(dx, "filter", "clean-traffic");
		dx_start(dx, "parameter");
		dx_attr(dx, "name", "IP");
		dx_attr(dx, "value", spec->filter_ip);
		dx_end(dx);
		dx_end(dx);
	}
	dx_end(dx);
}

static void
domxml_consoles(struct dx *dx, const struct vm_spec *spec)
{
	dx_start(dx, "serial");
	dx_attr(dx, "type", "pty");
	dx_empty(dx, "target", "port", "0");
	dx_end(dx);
	dx_start(dx, "console");
	dx_attr(dx, "type", "pty");
	dx_start(dx, "target");
	dx_attr(dx, "type", "serial");
	dx_attr(dx, "port", "0");
	dx_end(dx);
	dx_end(dx);
	if (!spec->vnc)
		return;
	dx_start(dx, "input");
	dx_attr(dx, "type", "tablet");
	dx_attr(dx, "bus", "usb");
	dx_end(dx);
	dx_start(dx, "input");
	dx_attr(dx, "type", "keyboard");
	dx_attr(dx, "bus", "usb");
	dx_end(dx);
	/* No TCP port: vmmod reaches it through virDomainOpenGraphicsFD. */
	dx_start(dx, "graphics");
	dx_attr(dx, "type", "vnc");
	dx_empty(dx, "listen", "type", "none");
	dx_end(dx);
	dx_start(dx, "video");
	dx_empty(dx, "model", "type", "virtio");
	dx_end(dx);
}

/*
 * A USB <hostdev>.  libvirt matches vendor/product; with bus set also the
 * bus/device numbers, which is how devices.c picks one of two identical
 * sticks (resolved from the serial at attach time and after a replug).
 */
static void
domxml_usb(struct dx *dx, const struct vm_usbdev *u, unsigned bus,
    unsigned device, bool optional)
{
	dx_start(dx, "hostdev");
	dx_attr(dx, "mode", "subsystem");
	dx_attr(dx, "type", "usb");
	dx_attr(dx, "managed", "yes");
	/* An unplugged stick must not keep the VM from starting. */
	dx_start(dx, "source");
	if (optional)
		dx_attr(dx, "startupPolicy", "optional");
	dx_start(dx, "vendor");
	dx_attrf(dx, "id", "0x%04x", u->vendor);
	dx_end(dx);
	dx_start(dx, "product");
	dx_attrf(dx, "id", "0x%04x", u->product);
	dx_end(dx);
	if (bus != 0) {
		dx_start(dx, "address");
		dx_attrf(dx, "bus", "%u", bus);
		dx_attrf(dx, "device", "%u", device);
		dx_end(dx);
	}
	dx_end(dx);
	dx_end(dx);
}

static void
domxml_hostdevs(struct dx *dx, const struct vm_spec *spec)
{
	const struct vm_pcidev *p;
	size_t i;

	for (i = 0; i < spec->nusb; i++) {
		domxml_usb(dx, &spec->usb[i], 0, 0, true);
		if (dx->failed)
			return;
	}
	for (i = 0; i < spec->npci; i++) {
		p = &spec->pci[i];
		dx_start(dx, "hostdev");
		dx_attr(dx, "mode", "subsystem");
		dx_attr(dx, "type", "pci");
		dx_attr(dx, "managed", "yes");
		dx_start(dx, "source");
		dx_start(dx, "address");
		dx_attrf(dx, "domain", "0x%04x", p->domain);
		dx_attrf(dx, "bus", "0x%02x", p->bus);
		dx_attrf(dx, "slot", "0x%02x", p->slot);
		dx_attrf(dx, "function", "0x%x", p->function);
		dx_end(dx);
		dx_end(dx);
		dx_end(dx);
	}
}

static void
domxml_devices(struct dx *dx, const struct vm_spec *spec)
{
	dx_start(dx, "devices");
	domxml_disks(dx, spec);
	domxml_net(dx, spec);
	domxml_consoles(dx, spec);
	domxml_hostdevs(dx, spec);
	if (spec->tpm) {
		/* libvirt maps tpm-tis to QEMU's sysbus tpm-tis-device on arm. */
		dx_start(dx, "tpm");
		dx_attr(dx, "model",
		    spec->arch == VM_ARCH_X86_64 ? "tpm-crb" : "tpm-tis");
		dx_start(dx, "backend");
		dx_attr(dx, "type", "emulator");
		dx_attr(dx, "version", "2.0");
		dx_end(dx);
		dx_end(dx);
	}
	dx_empty(dx, "memballoon", "model", "virtio");
	dx_start(dx, "rng");
	dx_attr(dx, "model", "virtio");
	dx_start(dx, "backend");
	dx_attr(dx, "model", "random");
	dx_text(dx, "/dev/urandom");
	dx_end(dx);
	dx_end(dx);
	dx_end(dx);
}

/* ---- Xen (libvirt's libxl driver) ----------------------------------------
 * HVM guests from the same vm_spec.  libxl has no stream graphics, so VNC
 * always listens, on 127.0.0.1 only, and vmmod proxies it (the one
 * exception to "no VNC port").  What libxl cannot give is refused here
 * rather than half-built.
 */
#define XEN_HVMLOADER "/usr/lib/xen/boot/hvmloader"

static int
domxml_xen_check(const struct vm_spec *spec, char **errp)
{
	const char *why = NULL;

	if (spec->arch != VM_ARCH_X86_64)
		why = "type: xen guests are x86_64 only here";
	else if (spec->tpm)
		why = WHY_XEN_TPM;
	else if (spec->secure_boot)
		why = WHY_XEN_SB;
	else if (spec->nusb > 0)
		why = "usb: USB passthrough to xen guests is not built yet";
	else if (spec->cpu_mode != VM_CPU_DEFAULT)
		why = "cpu.mode: xen guests take Xen's default CPU";
	else if (spec->disk_secret != NULL)
		why = WHY_XEN_LUKS;
	if (why == NULL)
		return 0;
	if (errp != NULL)
		*errp = xstrdup(why);
	return -1;
}

static void
domxml_xen_os(struct dx *dx, const struct vm_spec *spec)
{
	dx_start(dx, "os");
	dx_start(dx, "type");
	dx_attr(dx, "arch", "x86_64");
	dx_attr(dx, "machine", "xenfv");
	dx_text(dx, "hvm");
	dx_end(dx);
	/* UEFI: libxl boots OVMF from the loader (no per-VM NVRAM). */
	dx_start(dx, "loader");
	dx_attr(dx, "type", spec->loader != NULL ? "pflash" : "rom");
	dx_text(dx, spec->loader != NULL ? spec->loader : XEN_HVMLOADER);
	dx_end(dx);
	dx_elem(dx, "kernel", spec->kernel);
	dx_elem(dx, "initrd", spec->initrd);
	dx_elem(dx, "cmdline", spec->cmdline);
	if (spec->kernel == NULL)
		dx_empty(dx, "boot", "dev", "hd");
	dx_end(dx);
	dx_start(dx, "features");
	dx_empty(dx, "acpi", NULL, NULL);
	dx_empty(dx, "apic", NULL, NULL);
	dx_empty(dx, "pae", NULL, NULL);
	dx_end(dx);
}

static void
domxml_xen_devices(struct dx *dx, const struct vm_spec *spec)
{
	char mac[18];
	size_t i;

	dx_start(dx, "devices");
	if (spec->disk != NULL) {
		/* qdisk: QEMU's backend, the one that reads qcow2 */
		domxml_disk_open(dx, "disk", "qcow2", false, spec->disk);
		domxml_disk_target(dx, "xvda", "xen");
		dx_end(dx);
	}
	if (spec->seed_iso != NULL)
		domxml_seed_cdrom(dx, spec, "hdc", "ide");
	for (i = 0; i < sizeof(mac) - 1 && spec->mac[i] != '\0'; i++)
		mac[i] = tolower((unsigned char)spec->mac[i]);
	mac[i] = '\0';
	dx_start(dx, "interface");
	dx_attr(dx, "type", "bridge");
	dx_empty(dx, "mac", "address", mac);
	dx_empty(dx, "source", "bridge",
	    spec->bridge != NULL ? spec->bridge : "br0");
	if (spec->filter_ip != NULL) {
		dx_start(dx, "filterref");
		dx_attr(dx, "filter", "clean-traffic");
		dx_start(dx, "parameter");
		dx_attr(dx, "name", "IP");
		dx_attr(dx, "value", spec->filter_ip);
		dx_end(dx);
		dx_end(dx);
	}
	dx_end(dx);
	/* libxl streams the serial console (virDomainOpenConsole) */
	dx_start(dx, "serial");
	dx_attr(dx, "type", "pty");
	dx_empty(dx, "target", "port", "0");
	dx_end(dx);
	dx_start(dx, "console");
	dx_attr(dx, "type", "pty");
	dx_start(dx, "target");
	dx_attr(dx, "type", "serial");
	dx_attr(dx, "port", "0");
	dx_end(dx);
	dx_end(dx);
	dx_start(dx, "input");
	dx_attr(dx, "type", "tablet");
	dx_attr(dx, "bus", "usb");
	dx_end(dx);
	dx_start(dx, "graphics");
	dx_attr(dx, "type", "vnc");
	dx_attr(dx, "port", "-1");
	dx_attr(dx, "autoport", "yes");
	dx_start(dx, "listen");
	dx_attr(dx, "type", "address");
	dx_attr(dx, "address", "127.0.0.1");
	dx_end(dx);
	dx_end(dx);
	dx_start(dx, "video");
	dx_empty(dx, "model", "type", "vga");
	dx_end(dx);
	domxml_hostdevs(dx, spec);
	dx_empty(dx, "memballoon", "model", "xen");
	dx_end(dx);
}

char *
domxml_build(const struct vm_spec *spec, char **errp)
{
	struct dx dx = {NULL, 0};
	xmlBufferPtr buf = NULL;
	char *xml = NULL;

	if (vm_spec_validate(spec, errp) == -1)
		return NULL;
	if (spec->virt == VM_VIRT_XEN && domxml_xen_check(spec, errp) == -1)
		return NULL;
	if ((buf = xmlBufferCreate()) == NULL ||
	    (dx.w = xmlNewTextWriterMemory(buf, 0)) == NULL)
		fatalx("%s: out of memory", __func__);
	dx_check(&dx, xmlTextWriterSetIndent(dx.w, 1));
	dx_check(&dx, xmlTextWriterSetIndentString(dx.w, BAD_CAST "  "));

	dx_start(&dx, "domain");
	dx_attr(&dx, "type", vm_virt_name(spec->virt));
	dx_elem(&dx, "name", spec->name);
	dx_elem(&dx, "uuid", spec->uuid);
	dx_elem(&dx, "title", spec->title);
	dx_elem(&dx, "description", spec->description);
	domxml_metadata(&dx, spec);
	dx_start(&dx, "memory");
	dx_attr(&dx, "unit", "MiB");
	dx_textf(&dx, "%u", spec->memory_mb);
	dx_end(&dx);
	dx_start(&dx, "currentMemory");
	dx_attr(&dx, "unit", "MiB");
	dx_textf(&dx, "%u", spec->memory_mb);
	dx_end(&dx);
	dx_start(&dx, "vcpu");
	dx_attr(&dx, "placement", "static");
	dx_textf(&dx, "%u", spec->vcpus);
	dx_end(&dx);
	domxml_tune(&dx, spec);
	if (spec->virt == VM_VIRT_XEN)
		domxml_xen_os(&dx, spec);
	else {
		domxml_os(&dx, spec);
		domxml_cpu(&dx, spec);
	}
	dx_empty(&dx, "clock", "offset", "utc");
	/* A crashed VM stays down so the dashboard shows it crashed. */
	dx_elem(&dx, "on_poweroff", "destroy");
	dx_elem(&dx, "on_reboot", "restart");
	dx_elem(&dx, "on_crash", "destroy");
	if (spec->virt == VM_VIRT_XEN)
		domxml_xen_devices(&dx, spec);
	else
		domxml_devices(&dx, spec);
	dx_end(&dx); /* domain */
	if (!dx.failed)
		dx_check(&dx, xmlTextWriterEndDocument(dx.w));
	xmlFreeTextWriter(dx.w); /* flushes into buf */

	if (dx.failed) {
		log_warnx(
		    "%s: libxml2 writer failed for %s", __func__, spec->name);
		if (errp != NULL)
			*errp = xstrdup("internal error writing domain XML");
		goto done;
	}
	xml = xstrdup((const char *)xmlBufferContent(buf));
done:
	xmlBufferFree(buf);
	return xml;
}

char *
domxml_usb_hostdev(
    const struct vm_usbdev *u, unsigned bus, unsigned device, bool optional)
{
	struct dx dx = {NULL, 0};
	xmlBufferPtr buf;
	char *xml = NULL;

	if ((buf = xmlBufferCreate()) == NULL ||
	    (dx.w = xmlNewTextWriterMemory(buf, 0)) == NULL)
		fatalx("%s: out of memory", __func__);
	dx_check(&dx, xmlTextWriterSetIndent(dx.w, 1));
	dx_check(&dx, xmlTextWriterSetIndentString(dx.w, BAD_CAST "  "));
	domxml_usb(&dx, u, bus, device, optional);
	if (!dx.failed)
		dx_check(&dx, xmlTextWriterEndDocument(dx.w));
	xmlFreeTextWriter(dx.w);
	if (!dx.failed)
		xml = xstrdup((const char *)xmlBufferContent(buf));
	else
		log_warnx("%s: libxml2 writer failed", __func__);
	xmlBufferFree(buf);
	return xml;
}
