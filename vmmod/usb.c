/*
 * Host USB devices through libusb-1.0; the only file that includes libusb.h.
 * usb_scan lists what is plugged in (ids, class, bus/port path, the current
 * bus/device numbers, which change on every replug).  The strings
 * (manufacturer, product, serial) come from the kernel's sysfs copies of
 * them, /sys/bus/usb/devices/PORT/{manufacturer,product,serial}: reading
 * them needs no access to the device node (vmmod is not root), and libusb
 * would need an open handle and control transfers for the same text.  Only
 * when sysfs has no copy and the descriptor names a string do we ask the
 * device itself.
 *
 * Hotplug: when libusb has LIBUSB_CAP_HAS_HOTPLUG, one thread runs libusb's
 * event loop and hands every arrival and departure to the callback given to
 * usb_init (devices.c's handler, which tests call directly with synthetic
 * events).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libusb.h>

#include "vmmod.h"

#define USB_SYSFS "/sys/bus/usb/devices"
#define USB_CLASS_HUB 0x09
#define USB_CLASS_STORAGE 0x08

static libusb_context *ctx;
static pthread_t hotplug_tid;
static libusb_hotplug_callback_handle hotplug_handle;
static bool hotplug_running;
static volatile int hotplug_quit;
static usb_event_fn event_fn;

/* "1-1.2": the kernel's name for the device, from bus and port numbers. */
static void
usb_port_name(libusb_device *d, char *buf, size_t size)
{
	uint8_t ports[8];
	int n, i;
	size_t len;

	n = libusb_get_port_numbers(d, ports, sizeof(ports));
	if (n <= 0) {
		snprintf(buf, size, "usb%u", libusb_get_bus_number(d));
		return;
	}
	len = (size_t)snprintf(buf, size, "%u-", libusb_get_bus_number(d));
	for (i = 0; i < n && len < size; i++)
		len += (size_t)snprintf(
		    buf + len, size - len, "%s%u", i > 0 ? "." : "", ports[i]);
}

/* One sysfs attribute's text without the trailing newline; "" if none. */
static void
usb_sysfs_str(const char *port, const char *attr, char *buf, size_t size)
{
	char path[128], *text;
	size_t len;

	buf[0] = '\0';
	snprintf(path, sizeof(path), "%s/%s/%s", USB_SYSFS, port, attr);
	if ((text = read_file(path, 4096, &len)) == NULL)
		return;
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
		len--;
	text[len] = '\0';
	snprintf(buf, size, "%s", text);
	free(text);
}

/* The device's own string descriptor (needs the node readable). */
static void
usb_desc_str(libusb_device *d, uint8_t idx, char *buf, size_t size)
{
	libusb_device_handle *h;
	int n;

	if (idx == 0 || buf[0] != '\0' || libusb_open(d, &h) != 0)
		return;
	n = libusb_get_string_descriptor_ascii(
	    h, idx, (unsigned char *)buf, (int)size);
	if (n < 0)
		buf[0] = '\0';
	libusb_close(h);
}

/* Does any interface of the active configuration have this class? */
static bool
usb_has_iface_class(libusb_device *d, uint8_t cls)
{
	struct libusb_config_descriptor *cfg;
	const struct libusb_interface *it;
	bool found = false;
	int i, j;

	if (libusb_get_active_config_descriptor(d, &cfg) != 0 &&
	    libusb_get_config_descriptor(d, 0, &cfg) != 0)
		return false;
	for (i = 0; i < cfg->bNumInterfaces && !found; i++) {
		it = &cfg->interface[i];
		for (j = 0; j < it->num_altsetting && !found; j++)
			found = it->altsetting[j].bInterfaceClass == cls;
	}
	libusb_free_config_descriptor(cfg);
	return found;
}

static int
usb_fill(libusb_device *d, struct usb_dev *u, bool strings)
{
	struct libusb_device_descriptor dd;

	memset(u, 0, sizeof(*u));
	if (libusb_get_device_descriptor(d, &dd) != 0)
		return -1;
	u->vendor = dd.idVendor;
	u->product = dd.idProduct;
	u->bus = libusb_get_bus_number(d);
	u->address = libusb_get_device_address(d);
	u->dev_class = dd.bDeviceClass;
	usb_port_name(d, u->port, sizeof(u->port));
	/* Root hubs have no port path: "usb1". */
	u->hub =
	    dd.bDeviceClass == USB_CLASS_HUB || str_has_prefix(u->port, "usb");
	u->storage = usb_has_iface_class(d, USB_CLASS_STORAGE);
	if (!strings)
		return 0;
	usb_sysfs_str(u->port, "serial", u->serial, sizeof(u->serial));
	usb_sysfs_str(
	    u->port, "manufacturer", u->manufacturer, sizeof(u->manufacturer));
	usb_sysfs_str(
	    u->port, "product", u->product_name, sizeof(u->product_name));
	usb_desc_str(d, dd.iSerialNumber, u->serial, sizeof(u->serial));
	usb_desc_str(
	    d, dd.iManufacturer, u->manufacturer, sizeof(u->manufacturer));
	usb_desc_str(d, dd.iProduct, u->product_name, sizeof(u->product_name));
	return 0;
}

int
usb_scan(struct usb_dev **devsp, size_t *np)
{
	libusb_device **list;
	struct usb_dev *devs;
	ssize_t n, i;
	size_t k = 0;

	*devsp = NULL;
	*np = 0;
	if (ctx == NULL && libusb_init(&ctx) != 0) {
		ctx = NULL;
		log_warnx(
		    "%s: libusb_init failed (no USB on this host?)", __func__);
		return -1;
	}
	if ((n = libusb_get_device_list(ctx, &list)) < 0) {
		log_warnx("%s: %s", __func__, libusb_strerror((int)n));
		return -1;
	}
	devs = xcalloc((size_t)n + 1, sizeof(*devs));
	for (i = 0; i < n; i++)
		if (usb_fill(list[i], &devs[k], true) == 0)
			k++;
	libusb_free_device_list(list, 1);
	*devsp = devs;
	*np = k;
	return 0;
}

/* libusb's event thread: a departed device has no sysfs strings left. */
static int LIBUSB_CALL
usb_hotplug_cb(
    libusb_context *c, libusb_device *d, libusb_hotplug_event ev, void *arg)
{
	struct usb_dev u;
	bool arrived = ev == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED;

	if (usb_fill(d, &u, arrived) == 0 && event_fn != NULL)
		event_fn(&u, arrived);
	return 0; /* stay registered */
}

/*
 * Blocks until libusb has something to do: no periodic wake-ups while idle.
 * usb_shutdown() sets hotplug_quit and interrupts the wait.
 */
static void *
usb_hotplug_main(void *arg)
{
	while (!hotplug_quit)
		libusb_handle_events_completed(ctx, (int *)&hotplug_quit);
	return NULL;
}

int
usb_init(usb_event_fn fn)
{
	int rc;

	event_fn = fn;
	if (ctx == NULL && libusb_init(&ctx) != 0) {
		ctx = NULL;
		log_warnx("usb: libusb_init failed: no USB passthrough");
		return -1;
	}
	if (fn == NULL || !libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG)) {
		log_info("usb: no hotplug events: replugged devices are "
			 "re-attached at the next rescan");
		return 0;
	}
	rc = libusb_hotplug_register_callback(ctx,
	    LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED |
		LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT,
	    0, LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY,
	    LIBUSB_HOTPLUG_MATCH_ANY, usb_hotplug_cb, NULL, &hotplug_handle);
	if (rc != LIBUSB_SUCCESS) {
		log_warnx("usb: hotplug: %s", libusb_strerror(rc));
		return 0;
	}
	hotplug_quit = 0;
	if ((errno = pthread_create(
		 &hotplug_tid, NULL, usb_hotplug_main, NULL)) != 0) {
		log_warn("usb: hotplug thread");
		libusb_hotplug_deregister_callback(ctx, hotplug_handle);
		return 0;
	}
	hotplug_running = true;
	return 0;
}

void
usb_shutdown(void)
{
	if (ctx == NULL)
		return;
	if (hotplug_running) {
		hotplug_quit = 1;
		/* Deregistering wakes the event loop; the interrupt makes sure. */
		libusb_hotplug_deregister_callback(ctx, hotplug_handle);
		libusb_interrupt_event_handler(ctx);
		pthread_join(hotplug_tid, NULL);
		hotplug_running = false;
	}
	libusb_exit(ctx);
	ctx = NULL;
	event_fn = NULL;
}
