/*
 * The files guardian-vm-setup writes, as pure functions of the plan (and,
 * for files it edits, of their current text): dnsmasq drop-in and pool
 * edit, vmmod.conf, the saved answers, libvirt-guests, the libvirtd
 * ordering drop-in and the bridge's persistence.  Golden files under
 * tests/data/installer/ pin every byte.
 *
 * Shrinking Guardian's pool: dnsmasq cannot take back a dhcp-range given in
 * another file (a second dhcp-range for the same subnet only adds
 * addresses), so a drop-in cannot shrink it.  The installer edits that one
 * line of /etc/dnsmasq.d/guardian.conf instead, keeps the whole previous
 * file in its manifest for an exact restore, and --repair redoes the edit
 * when a Guardian update rewrote the file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uuid/uuid.h>

#include "common.h"
#include "setup.h"

#define GEN_MARK "# guardian-vm-setup:"

static void
gen_cat(char **s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
gen_cat(char **s, const char *fmt, ...)
{
	va_list ap;
	char *add, *t;

	va_start(ap, fmt);
	xvasprintf(&add, fmt, ap);
	va_end(ap);
	xasprintf(&t, "%s%s", *s != NULL ? *s : "", add);
	free(add);
	free(*s);
	*s = t;
}

static char *
gen_netmask(const struct plan *p)
{
	char buf[16];
	uint32_t m = 0xffffffffU << (32 - p->net.prefix);

	plan_ip4_format(m, buf);
	return xstrdup(buf);
}

char *
gen_dnsmasq_dropin(const struct plan *p)
{
	char *s = NULL, lo[16], hi[16], *mask;

	gen_cat(&s,
	    "# " GVM_DNSMASQ_DROPIN ": written by guardian-vm-setup(8),\n"
	    "# removed by guardian-vm-setup --uninstall.  vmmod writes one "
	    "file per VM\n"
	    "# address reservation and name into these directories; dnsmasq "
	    "reads new\n"
	    "# files by itself and changed or removed ones after the SIGHUP "
	    "sent by\n"
	    "# guardian-vms-dnsmasq-reload.path.\n"
	    "dhcp-hostsdir=" GVM_RESERVATIONS_DIR "\n"
	    "hostsdir=" GVM_HOSTS_DIR "\n");
	if (p->guardian || p->old_pool.lo == 0)
		return s;
	/* No Guardian: this file is the bridge's whole DHCP/DNS setup. */
	plan_ip4_format(p->pool.lo, lo);
	plan_ip4_format(p->pool.hi, hi);
	mask = gen_netmask(p);
	gen_cat(&s,
	    "# DHCP and DNS for the VMs on %s (no Guardian on this host).\n"
	    "interface=%s\n"
	    "bind-dynamic\n"
	    "domain=" GVM_DOMAIN "\n"
	    "local=/" GVM_DOMAIN "/\n"
	    "dhcp-range=%s,%s,%s,12h\n",
	    p->bridge, p->bridge, lo, hi, mask);
	free(mask);
	return s;
}

/*
 * Guardian's guardian.conf with the dhcp-range whose pool is the planned
 * old pool ending at the new pool's top; every other byte kept.  Already
 * shrunk: returned unchanged.  NULL when no such line exists.
 */
char *
gen_dnsmasq_shrink(const char *current, const struct plan *p)
{
	char *out = NULL, *copy, *line, *next, *comma, *rest;
	char lo[16], hi[16], newhi[16], want[48];
	bool done = false;

	if (current == NULL || !p->vb.shrink)
		return NULL;
	plan_ip4_format(p->old_pool.lo, lo);
	plan_ip4_format(p->old_pool.hi, hi);
	plan_ip4_format(p->vb.new_pool.hi, newhi);
	copy = xstrdup(current);
	out = xstrdup("");
	for (line = copy; line != NULL; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		else if (*line == '\0')
			break;
		snprintf(want, sizeof(want), "dhcp-range=%s,%s", lo, hi);
		rest = line + strlen(want);
		if (!done && str_has_prefix(line, want) &&
		    (*rest == '\0' || *rest == ',' || *rest == '\r')) {
			comma = rest;
			gen_cat(&out,
			    GEN_MARK " pool top given to VMs; was %s\n"
				     "dhcp-range=%s,%s%s%s",
			    line, lo, newhi, comma, next != NULL ? "\n" : "");
			done = true;
			continue;
		}
		if (str_has_prefix(line, GEN_MARK))
			done = true; /* shrunk before: leave it */
		gen_cat(&out, "%s%s", line, next != NULL ? "\n" : "");
	}
	free(copy);
	if (!done) {
		free(out);
		return NULL;
	}
	return out;
}

char *
gen_vmmod_conf(const struct plan *p)
{
	char *s = NULL, *block, *net, *pool, self[16];

	block = plan_range_format(&p->vb.block);
	net = plan_net_format(&p->net);
	pool = plan_range_format(&p->pool);
	gen_cat(&s,
	    "# " GVM_VMMOD_CONF ": written by guardian-vm-setup(8) for this "
	    "host; every\n"
	    "# key is described in vmmod.conf(5).  Running the installer "
	    "again rewrites\n"
	    "# it (keeping the VM address block); --uninstall removes it.\n"
	    "reservations_dir = " GVM_RESERVATIONS_DIR "\n"
	    "hosts_dir = " GVM_HOSTS_DIR "\n"
	    "domain = " GVM_DOMAIN "\n"
	    "reserve_block = %s\n"
	    "reserve_subnet = %s\n"
	    "dhcp_pool = %s\n"
	    "bridge = %s\n"
	    "storage_pool = guardian-vms\n"
	    "pool_dir = %s\n",
	    block, net, pool, p->bridge, p->storage_dir);
	if (p->console_port != 0) {
		/*
		 * Guardian: vmmod's TLS console listener on the bridge's
		 * address (the port the nftables rule opens on it); its
		 * console URLs are https://<this> (no console_url_base), its
		 * certificate Guardian's, from LoadCredential= in vmmod.service
		 * or, started directly, from steps.c's credentials directory.
		 */
		plan_ip4_format(p->net.addr, self);
		gen_cat(&s,
		    "# the console listener (TLS, Guardian's certificate as "
		    "credentials\n"
		    "# console.crt and console.key)\n"
		    "console_listen = %s:%u\n",
		    self, p->console_port);
	}
	free(block);
	free(net);
	free(pool);
	return s;
}

char *
gen_setup_conf(const struct plan *p)
{
	char *s = NULL, *a = answers_format(&p->ans);

	gen_cat(&s,
	    "# " GVM_SETUP_CONF ": the answers guardian-vm-setup(8) "
	    "installed with\n"
	    "# (the same keys as --answers).  --repair and --apply-firewall "
	    "read it.\n%s",
	    a);
	free(a);
	return s;
}

/*
 * /etc/default/libvirt-guests is sourced by a shell script, so the last
 * assignment wins: our two lines go at the end, the rest is kept.
 */
char *
gen_libvirt_guests(const char *current, const struct plan *p)
{
	char *s = xstrdup(""), *copy, *line, *next;
	bool skip = false;

	copy = xstrdup(current != NULL ? current : "");
	for (line = copy; line != NULL; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		else if (*line == '\0')
			break;
		if (str_has_prefix(line, GEN_MARK)) {
			skip = true; /* ours, from an earlier run */
			continue;
		}
		if (skip && str_has_prefix(line, "ON_SHUTDOWN=")) {
			skip = false;
			continue;
		}
		skip = false;
		gen_cat(&s, "%s\n", line);
	}
	free(copy);
	gen_cat(&s,
	    GEN_MARK " shut VMs down cleanly when the host reboots\n"
		     "ON_SHUTDOWN=shutdown\n");
	return s;
}

char *
gen_libvirtd_dropin(const struct plan *p)
{
	char *s = NULL;

	gen_cat(&s,
	    "# Written by guardian-vm-setup(8), removed by --uninstall.  "
	    "libvirtd starts\n"
	    "# autostarted VMs (Home Assistant) as it starts: only once "
	    "the bridge exists\n"
	    "# and dnsmasq answers DHCP.\n"
	    "[Unit]\n"
	    "Wants=sys-subsystem-net-devices-%s.device\n"
	    "After=sys-subsystem-net-devices-%s.device dnsmasq.service "
	    "network-online.target\n",
	    p->bridge, p->bridge);
	return s;
}

char *
gen_networkd_netdev(const struct plan *p)
{
	char *s = NULL;

	gen_cat(&s,
	    "# Written by guardian-vm-setup(8): the VM bridge, no ports.\n"
	    "[NetDev]\n"
	    "Name=%s\n"
	    "Kind=bridge\n",
	    p->bridge);
	return s;
}

char *
gen_networkd_network(const struct plan *p)
{
	char *s = NULL, *net = plan_net_format(&p->net);

	gen_cat(&s,
	    "# Written by guardian-vm-setup(8): the VM bridge's address.\n"
	    "[Match]\n"
	    "Name=%s\n"
	    "\n"
	    "[Network]\n"
	    "Address=%s\n"
	    "ConfigureWithoutCarrier=yes\n"
	    "\n"
	    "[Link]\n"
	    "RequiredForOnline=no\n",
	    p->bridge, net);
	free(net);
	return s;
}

char *
gen_ifupdown(const struct plan *p)
{
	char *s = NULL, *net = plan_net_format(&p->net);

	gen_cat(&s,
	    "# Written by guardian-vm-setup(8): the VM bridge, no ports.\n"
	    "auto %s\n"
	    "iface %s inet static\n"
	    "\taddress %s\n"
	    "\tbridge_ports none\n"
	    "\tbridge_stp off\n"
	    "\tbridge_fd 0\n",
	    p->bridge, p->bridge, net);
	free(net);
	return s;
}

/*
 * The namespace of the keyfile's name-based UUID (RFC 4122 version 5): a
 * fixed random UUID of guardian-vm-setup's own, so the bridge name alone
 * gives the uuid and a re-run writes the same bytes.
 */
static const char gen_nm_namespace[] = "5b0e4f57-3c6a-4d0e-9a51-2f7c8e1d6b93";

char *
gen_nm_keyfile(const struct plan *p)
{
	char *s = NULL, *net = plan_net_format(&p->net), id[UUID_STR_LEN];
	uuid_t ns, u;

	if (uuid_parse(gen_nm_namespace, ns) == -1)
		fatalx("gen_nm_keyfile: bad namespace uuid");
	uuid_generate_sha1(u, ns, p->bridge, strlen(p->bridge));
	uuid_unparse_lower(u, id);
	gen_cat(&s,
	    "# Written by guardian-vm-setup(8), removed by --uninstall: the "
	    "VM bridge,\n"
	    "# no ports.  NetworkManager creates it at boot.\n"
	    "[connection]\n"
	    "id=guardian-vms-%s\n"
	    "uuid=%s\n"
	    "type=bridge\n"
	    "interface-name=%s\n"
	    "autoconnect=true\n"
	    "\n"
	    "[bridge]\n"
	    "stp=false\n"
	    "\n"
	    "[ipv4]\n"
	    "method=manual\n"
	    "address1=%s\n"
	    "\n"
	    "[ipv6]\n"
	    "method=disabled\n",
	    p->bridge, id, p->bridge, net);
	free(net);
	return s;
}
