/*
 * The plan: host facts + answers -> the list of steps the installer will
 * take, each with every change it makes, before anything is touched.  Pure:
 * no file, network or process access, so --dry-run, the plan screen and the
 * tests all see exactly what apply will do.
 *
 * The first half is the IPv4 arithmetic for the VM address block: inside
 * the bridge's subnet, outside dnsmasq's dynamic pool, never the bridge's
 * own address, shrinking the pool's top only when nothing else fits (and
 * only with consent, which the caller checks).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "setup.h"

#define GVM_UNITDIR "/lib/systemd/system"
#define GVM_WANTS "/etc/systemd/system/multi-user.target.wants/"
#define GUARDIAN_MIN_RAM_MB 5632 /* "6 GB" as MemTotal reports it */
#define HOST_RESERVED_MB (512 + 1536) /* host + Guardian, as vmmod counts */
#define HA_DISK_MB (32 * 1024 + 2048) /* a 32 GB disk and its base image */

int
plan_ip4_parse(const char *s, uint32_t *out)
{
	struct in_addr in;
	const char *p;
	int dots = 0;

	/* inet_pton alone accepts nothing else, but be explicit: 4 parts */
	for (p = s; *p != '\0'; p++)
		if (*p == '.')
			dots++;
	if (dots != 3 || inet_pton(AF_INET, s, &in) != 1)
		return -1;
	*out = ntohl(in.s_addr);
	return 0;
}

static uint32_t
net_mask(unsigned prefix)
{
	return prefix == 0 ? 0 : 0xffffffffU << (32 - prefix);
}

uint32_t
plan_net_first(const struct ip4net *n)
{
	return n->addr & net_mask(n->prefix);
}

uint32_t
plan_net_last(const struct ip4net *n)
{
	return n->addr | ~net_mask(n->prefix);
}

int
plan_net_parse(const char *s, struct ip4net *n)
{
	char buf[32], *slash, *end;
	unsigned long prefix;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	if ((slash = strchr(buf, '/')) == NULL)
		return -1;
	*slash++ = '\0';
	if (*slash < '0' || *slash > '9')
		return -1;
	prefix = strtoul(slash, &end, 10);
	if (*end != '\0' || prefix < 8 || prefix > 30)
		return -1;
	if (plan_ip4_parse(buf, &n->addr) == -1)
		return -1;
	n->prefix = prefix;
	if (n->addr == plan_net_first(n) || n->addr == plan_net_last(n))
		return -1;
	return 0;
}

int
plan_range_parse(const char *s, struct ip4range *r)
{
	char buf[40], *dash;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	if ((dash = strchr(buf, '-')) == NULL)
		return -1;
	*dash++ = '\0';
	if (plan_ip4_parse(buf, &r->lo) == -1 ||
	    plan_ip4_parse(dash, &r->hi) == -1 || r->lo > r->hi)
		return -1;
	return 0;
}

void
plan_ip4_format(uint32_t a, char buf[16])
{
	snprintf(buf, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff,
	    (a >> 8) & 0xff, a & 0xff);
}

char *
plan_range_format(const struct ip4range *r)
{
	char lo[16], hi[16], *s;

	plan_ip4_format(r->lo, lo);
	plan_ip4_format(r->hi, hi);
	xasprintf(&s, "%s-%s", lo, hi);
	return s;
}

char *
plan_net_format(const struct ip4net *n)
{
	char a[16], *s;

	plan_ip4_format(n->addr, a);
	xasprintf(&s, "%s/%u", a, n->prefix);
	return s;
}

static bool
range_overlaps(const struct ip4range *a, const struct ip4range *b)
{
	return a->lo <= b->hi && b->lo <= a->hi;
}

static bool
range_has(const struct ip4range *r, uint32_t a)
{
	return a >= r->lo && a <= r->hi;
}

static int
block_err(char **errp, const struct ip4net *n, const char *why)
{
	char *net = plan_net_format(n);

	if (errp != NULL)
		xasprintf(errp, "no room for VM addresses in %s: %s", net, why);
	free(net);
	return -1;
}

/*
 * The longest run of free addresses in [lo, hi] (the bridge's own address
 * is not free), scanning from the low end when `low` else the high end.
 */
static bool
free_run(uint32_t lo, uint32_t hi, uint32_t self, struct ip4range *out)
{
	if (lo > hi)
		return false;
	if (range_has(&(struct ip4range){lo, hi}, self)) {
		struct ip4range a = {0, 0}, b = {0, 0};
		bool ha = self > lo && free_run(lo, self - 1, self, &a);
		bool hb = self < hi && free_run(self + 1, hi, self, &b);

		if (!ha && !hb)
			return false;
		if (ha && (!hb || a.hi - a.lo > b.hi - b.lo))
			*out = a;
		else
			*out = b;
		return true;
	}
	out->lo = lo;
	out->hi = hi;
	return true;
}

int
plan_vm_block(const struct ip4net *n, const struct ip4range *pool,
    const struct ip4range *prev, struct vm_block *vb, char **errp)
{
	uint32_t first = plan_net_first(n) + 1, last = plan_net_last(n) - 1;
	struct ip4range usable = {first, last}, run;
	uint32_t size, k;

	memset(vb, 0, sizeof(*vb));
	if (errp != NULL)
		*errp = NULL;
	if (pool != NULL) {
		if (pool->lo < first || pool->hi > last)
			return block_err(errp, n,
			    "the DHCP pool is not inside the subnet; fix "
			    "dnsmasq's dhcp-range first");
		if (range_has(pool, n->addr))
			return block_err(errp, n,
			    "the bridge's own address is inside the DHCP "
			    "pool; fix dnsmasq's dhcp-range first");
	}
	/* A block chosen before and still valid is kept (a re-run). */
	if (prev != NULL && range_overlaps(prev, &usable) &&
	    prev->lo >= first && prev->hi <= last &&
	    !range_has(prev, n->addr) &&
	    (pool == NULL || !range_overlaps(prev, pool)) &&
	    prev->hi - prev->lo < 256) {
		vb->block = *prev;
		vb->reused = true;
		return 0;
	}
	if (pool == NULL) {
		/* No dynamic pool: the top of the subnet. */
		if (!free_run(first, last, n->addr, &run) ||
		    run.hi - run.lo + 1 < PLAN_BLOCK_MIN)
			return block_err(errp, n, "the subnet is too small");
		vb->block.hi = run.hi;
		vb->block.lo = run.hi - run.lo + 1 > PLAN_BLOCK_WANT
		    ? run.hi - PLAN_BLOCK_WANT + 1
		    : run.lo;
		return 0;
	}
	/* Right above the pool, then right below it. */
	if (pool->hi < last && free_run(pool->hi + 1, last, n->addr, &run) &&
	    run.lo == pool->hi + 1 && run.hi - run.lo + 1 >= PLAN_BLOCK_MIN) {
		vb->block.lo = run.lo;
		vb->block.hi = run.hi - run.lo + 1 > PLAN_BLOCK_WANT
		    ? run.lo + PLAN_BLOCK_WANT - 1
		    : run.hi;
		return 0;
	}
	if (pool->lo > first && free_run(first, pool->lo - 1, n->addr, &run) &&
	    run.hi == pool->lo - 1 && run.hi - run.lo + 1 >= PLAN_BLOCK_MIN) {
		vb->block.hi = run.hi;
		vb->block.lo = run.hi - run.lo + 1 > PLAN_BLOCK_WANT
		    ? run.hi - PLAN_BLOCK_WANT + 1
		    : run.lo;
		return 0;
	}
	/*
	 * Shrink the pool's top: give up a quarter of it (at most
	 * PLAN_BLOCK_WANT addresses), joined with any free addresses right
	 * above it.  Guardian's .2-.30 becomes .2-.23 and the block .24-.30.
	 */
	size = pool->hi - pool->lo + 1;
	k = size / 4;
	if (k > PLAN_BLOCK_WANT)
		k = PLAN_BLOCK_WANT;
	vb->block.lo = pool->hi - k + 1;
	vb->block.hi = pool->hi;
	if (pool->hi < last && free_run(pool->hi + 1, last, n->addr, &run) &&
	    run.lo == pool->hi + 1)
		vb->block.hi = run.hi - vb->block.lo + 1 > PLAN_BLOCK_WANT
		    ? vb->block.lo + PLAN_BLOCK_WANT - 1
		    : run.hi;
	if (k == 0 || vb->block.hi - vb->block.lo + 1 < PLAN_BLOCK_MIN) {
		memset(vb, 0, sizeof(*vb));
		return block_err(errp, n,
		    "the DHCP pool fills it and is too small to give up "
		    "addresses (a block needs 4; use a larger subnet)");
	}
	vb->shrink = true;
	vb->new_pool.lo = pool->lo;
	vb->new_pool.hi = pool->hi - k;
	return 0;
}

const char *
plan_arch_name(enum gvm_arch a)
{
	switch (a) {
	case ARCH_X86_64:
		return "x86_64";
	case ARCH_ARM64:
		return "arm64";
	default:
		return "unsupported";
	}
}

/* ---- building the plan --------------------------------------------- */

static void plan_note(struct plan *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void
plan_note(struct plan *p, const char *fmt, ...)
{
	va_list ap;

	p->notes = xreallocarray(p->notes, p->nnotes + 1, sizeof(char *));
	va_start(ap, fmt);
	xvasprintf(&p->notes[p->nnotes++], fmt, ap);
	va_end(ap);
}

static int plan_stop(struct plan *p, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int
plan_stop(struct plan *p, int code, const char *fmt, ...)
{
	va_list ap;

	p->verdict = code;
	free(p->verdict_msg);
	va_start(ap, fmt);
	xvasprintf(&p->verdict_msg, fmt, ap);
	va_end(ap);
	return -1;
}

static struct step *
plan_step(struct plan *p, const char *id, const char *title)
{
	struct step *s;

	p->steps = xreallocarray(p->steps, p->nsteps + 1, sizeof(*p->steps));
	s = &p->steps[p->nsteps++];
	memset(s, 0, sizeof(*s));
	s->id = xstrdup(id);
	s->title = xstrdup(title);
	return s;
}

static struct change *
step_change(struct step *s, enum change_kind kind, const char *path,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static struct change *
step_change(struct step *s, enum change_kind kind, const char *path,
    const char *fmt, ...)
{
	struct change *c;
	va_list ap;

	s->changes =
	    xreallocarray(s->changes, s->nchanges + 1, sizeof(*s->changes));
	c = &s->changes[s->nchanges++];
	memset(c, 0, sizeof(*c));
	c->kind = kind;
	c->path = path != NULL ? xstrdup(path) : NULL;
	c->mode = kind == CH_DIR ? 0755 : 0644;
	c->implemented = true;
	va_start(ap, fmt);
	xvasprintf(&c->desc, fmt, ap);
	va_end(ap);
	return c;
}

static void
change_file(
    struct step *s, const char *path, char *content_take, const char *what)
{
	struct change *c =
	    step_change(s, CH_FILE, path, "write %s: %s", path, what);

	c->content = content_take;
}

static void
change_enable(struct step *s, const char *unit)
{
	struct change *c;
	char *path;

	xasprintf(&path, GVM_WANTS "%s", unit);
	c = step_change(s, CH_LINK, path, "enable %s (link %s)", unit, path);
	xasprintf(&c->target, GVM_UNITDIR "/%s", unit);
	free(path);
}

static void change_action(struct step *s, const char *name, bool implemented,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void
change_action(
    struct step *s, const char *name, bool implemented, const char *fmt, ...)
{
	struct change *c = step_change(s, CH_ACTION, name, "%s", "");
	va_list ap;

	free(c->desc);
	va_start(ap, fmt);
	xvasprintf(&c->desc, fmt, ap);
	va_end(ap);
	c->implemented = implemented;
}

static char *
edit_shrink(const char *current, const struct plan *p)
{
	return gen_dnsmasq_shrink(current, p);
}

static char *
edit_guests(const char *current, const struct plan *p)
{
	return gen_libvirt_guests(current, p);
}

static char *
edit_modules(const char *current, const struct plan *p)
{
	return guardian_edit_modules(current);
}

static char *
edit_dashboard(const char *current, const struct plan *p)
{
	return guardian_edit_dashboard(current);
}

/*
 * Guardian: our blueprint as a package in Guardian's web/modules (copied
 * from DATADIR/guardian), registered in web/modules/__init__.py in place
 * of Guardian's virsh-based `vms` blueprint, the tile include in the
 * dashboard, a guardian-webui drop-in naming vmmod's socket and the web
 * assets (installed by make install in DATADIR/web-assets), and a restart
 * of guardian-webui.  --repair redoes this step alone.
 */
static void
plan_guardian(struct plan *p, const struct facts *f)
{
	static const char *copies[][2] = {
	    {"/__init__.py", "/guardian/guardian_vms.py"},
	    {"/templates/vms/tile.html", "/guardian/templates/vms/tile.html"},
	    {"/templates/vms/page.html", "/guardian/templates/vms/page.html"},
	};
	struct step *s = plan_step(p, "guardian", "Guardian integration");
	struct change *c;
	char *css, *t;
	size_t i;

	for (i = 0; i < sizeof(copies) / sizeof(copies[0]); i++) {
		c = step_change(s, CH_FILE, "", "%s", "");
		free(c->path);
		free(c->desc);
		xasprintf(&c->path, GVM_GUARDIAN_PLUGIN "%s", copies[i][0]);
		xasprintf(&c->src, "%s%s", p->datadir, copies[i][1]);
		xasprintf(&c->desc, "install %s (copy of %s)", c->path, c->src);
	}
	c = step_change(s, CH_FILE, GVM_GUARDIAN_WEB "/modules/__init__.py",
	    "edit " GVM_GUARDIAN_WEB "/modules/__init__.py: register the "
	    "guardian_vms blueprint (a marked block in register_blueprints), "
	    "disable Guardian's virsh-based vms blueprint (its lines "
	    "commented out, marked)");
	c->edit = edit_modules;
	c->anchor = "a function `def register_blueprints(app):` at the top "
		    "level";
	c->guardian_file = true;
	c = step_change(s, CH_FILE,
	    GVM_GUARDIAN_WEB "/templates/core/dashboard.html",
	    "edit " GVM_GUARDIAN_WEB "/templates/core/dashboard.html: replace "
	    "Guardian's hidden #vm-section with the tile include (a marked "
	    "block)");
	c->edit = edit_dashboard;
	c->anchor =
	    "one element with id=\"vm-section\" (or class=\"nav-tiles\") "
	    "whose start and end tags begin and end their lines";
	c->guardian_file = true;
	css = xstrdup("");
	for (i = 0; i < p->host_css.n; i++) {
		xasprintf(
		    &t, "%s%s%s", css, i > 0 ? ", " : "", p->host_css.name[i]);
		free(css);
		css = t;
	}
	xasprintf(&t,
	    "guardian-webui finds vmmod's socket and the web assets%s%s%s",
	    css[0] != '\0' ? "; the VM page links Guardian's " : "", css,
	    css[0] != '\0' ? "" : " (no stylesheet of Guardian's found)");
	change_file(s, GVM_WEBUI_DROPIN, gen_webui_dropin(p), t);
	free(t);
	free(css);
	change_action(s, "guardian-assets", true,
	    "check the web assets the blueprint serves: %s/web-assets "
	    "(installed by make install)",
	    p->datadir);
	change_action(s, "guardian-webui", true, "%s",
	    f->systemd ? "restart " GVM_WEBUI_UNIT " (when a file above "
			 "changed)"
		       : "no systemd as PID 1: " GVM_WEBUI_UNIT " is not "
			 "restarted (restart Guardian's web UI yourself)");
}

static char *
ports_text(const struct plan *p)
{
	char *s = xstrdup(""), *t;
	size_t i;

	for (i = 0; i < p->nblock_ports; i++) {
		xasprintf(
		    &t, "%s%s%u", s, i > 0 ? ", " : "", p->block_ports[i]);
		free(s);
		s = t;
	}
	return s;
}

static void
plan_packages(struct plan *p, const struct facts *f)
{
	static const char *arm64[] = {"qemu-system-arm", "qemu-efi-aarch64"};
	static const char *x86[] = {"qemu-system-x86", "ovmf"};
	static const char *both[] = {"qemu-utils", "libvirt-daemon-system",
	    "libvirt-clients", "dnsmasq-base"};
	const char **arch = f->arch == ARCH_ARM64 ? arm64 : x86;
	struct step *s = plan_step(p, "packages",
	    "Install QEMU/KVM, UEFI firmware, libvirt and dnsmasq");
	struct change *c;
	size_t n = 0, i;
	char *list = xstrdup(""), *t;

	c = step_change(s, CH_PACKAGES, NULL, "%s", "");
	c->args = xcalloc(8, sizeof(char *));
	for (i = 0; i < 2; i++)
		c->args[n++] = xstrdup(arch[i]);
	for (i = 0; i < nitems(both); i++)
		c->args[n++] = xstrdup(both[i]);
	if (!p->guardian)
		c->args[n++] = xstrdup("dnsmasq"); /* the service */
	for (i = 0; i < n; i++) {
		xasprintf(&t, "%s %s", list, c->args[i]);
		free(list);
		list = t;
	}
	free(c->desc);
	xasprintf(&c->desc,
	    "apt-get install --no-install-recommends%s (only those missing "
	    "are recorded as ours)",
	    list);
	free(list);
}

static int
plan_network(struct plan *p, const struct facts *f, const struct answers *a)
{
	struct ip4range given, prev, *pp = NULL, *prevp = NULL;
	struct ip4net ans_net;
	char *err = NULL, *s1, *s2;
	bool own_pool;

	p->bridge = xstrdup(a->bridge != NULL ? a->bridge : "br0");
	if (f->bridge_exists && f->bridge_addr[0] != '\0') {
		if (plan_net_parse(f->bridge_addr, &p->net) == -1)
			return plan_stop(p, 3,
			    "%s has the address %s, which "
			    "is no usable IPv4 subnet for VMs",
			    p->bridge, f->bridge_addr);
		if (a->bridge_addr != NULL &&
		    (plan_net_parse(a->bridge_addr, &ans_net) == -1 ||
			ans_net.addr != p->net.addr ||
			ans_net.prefix != p->net.prefix))
			return plan_stop(p, 2,
			    "GVM_BRIDGE_ADDR=%s, but %s already has %s: "
			    "drop the answer or fix the bridge",
			    a->bridge_addr, p->bridge, f->bridge_addr);
	} else if (a->bridge_addr != NULL) {
		plan_net_parse(a->bridge_addr, &p->net);
	} else if (p->guardian) {
		plan_net_parse("192.168.4.1/27", &p->net);
		plan_note(p,
		    "%s is not up; using Guardian's 192.168.4.1/27 "
		    "(set GVM_BRIDGE_ADDR if yours differs)",
		    p->bridge);
	} else {
		plan_net_parse("192.168.44.1/24", &p->net);
		plan_note(p,
		    "no %s and no GVM_BRIDGE_ADDR: using "
		    "192.168.44.1/24",
		    p->bridge);
	}
	p->create_bridge = !f->bridge_exists;
	if (p->guardian && !f->bridge_exists)
		plan_note(p,
		    "%s is not up now: created for now; Guardian's own "
		    "configuration brings it up at boot",
		    p->bridge);
	if (!p->guardian && f->bridge_exists && f->bridge_addr[0] == '\0')
		return plan_stop(p, 3,
		    "%s exists but has no IPv4 address: "
		    "give it one or remove it",
		    p->bridge);
	p->netcfg = f->netcfg;

	/* Whose DHCP pool: an existing dnsmasq config for the bridge, or ours. */
	own_pool = !(f->dnsmasq_conf && f->has_pool &&
	    strcmp(f->dnsmasq_iface, p->bridge) == 0);
	if (p->guardian && own_pool)
		return plan_stop(p, 3,
		    "Guardian is installed but " GVM_DNSMASQ_GUARDIAN
		    " has no interface=%s with a "
		    "dhcp-range: repair Guardian's network setup first",
		    p->bridge);
	if (!own_pool) {
		p->pool = f->pool;
		if (a->dhcp_range != NULL &&
		    (plan_range_parse(a->dhcp_range, &given) == -1 ||
			given.lo != f->pool.lo || given.hi != f->pool.hi))
			plan_note(p,
			    "GVM_DHCP_RANGE ignored: the pool is "
			    "dnsmasq's existing dhcp-range");
	} else if (a->dhcp_range != NULL) {
		plan_range_parse(a->dhcp_range, &p->pool);
	} else {
		uint32_t lo = plan_net_first(&p->net) + 2;
		uint32_t n = plan_net_last(&p->net) - lo;

		p->pool.lo = lo;
		p->pool.hi = lo + n * 3 / 4 - 1;
		if (range_has(&p->pool, p->net.addr))
			return plan_stop(p, 2,
			    "cannot choose a DHCP pool "
			    "around %s: set GVM_DHCP_RANGE",
			    p->bridge);
	}
	p->have_pool = true;
	p->old_pool = p->pool;
	if (a->vm_block != NULL) {
		plan_range_parse(a->vm_block, &prev);
		prevp = &prev;
	} else if (f->prev_block[0] != '\0' &&
	    plan_range_parse(f->prev_block, &prev) == 0)
		prevp = &prev;
	pp = &p->pool;
	if (plan_vm_block(&p->net, pp, prevp, &p->vb, &err) == -1) {
		plan_stop(p, 3, "%s", err);
		free(err);
		return -1;
	}
	if (a->vm_block != NULL && !p->vb.reused)
		return plan_stop(p, 2,
		    "GVM_VM_BLOCK=%s is not inside %s's "
		    "subnet outside the DHCP pool",
		    a->vm_block, p->bridge);
	if (p->vb.shrink) {
		s1 = plan_range_format(&p->old_pool);
		s2 = plan_range_format(&p->vb.new_pool);
		if (a->shrink_pool == TRI_NO) {
			plan_stop(p, 3,
			    "no room for VM addresses outside the "
			    "DHCP pool %s and GVM_SHRINK_POOL=no",
			    s1);
		} else if (a->shrink_pool != TRI_YES) {
			plan_stop(p, 4,
			    "VM addresses need the DHCP pool's "
			    "top: shrinking %s to %s needs consent "
			    "(GVM_SHRINK_POOL=yes)",
			    s1, s2);
		} else
			p->pool = p->vb.new_pool;
		free(s1);
		free(s2);
		if (p->verdict != 0)
			return -1;
	}
	return 0;
}

struct plan *
plan_build(const struct facts *f, const struct answers *a)
{
	struct plan *p = xcalloc(1, sizeof(*p));
	struct step *s;
	struct change *c;
	char *t, *u;
	char self[16];
	uint64_t budget;
	size_t i;

	p->ans.vm_support = a->vm_support;
	p->ans.shrink_pool = a->shrink_pool;
	p->ans.deploy_ha = a->deploy_ha;
	p->ans.trust_unpinned = a->trust_unpinned;
	p->guardian = f->guardian;
	p->datadir = xstrdup(f->datadir[0] != '\0' ? f->datadir : GVM_DATADIR);
	if (f->guardian)
		p->host_css = f->host_css;

	/* Host check. */
	plan_note(p, "host: %s (%s), %llu MiB RAM, %s", plan_arch_name(f->arch),
	    f->machine, (unsigned long long)f->ram_mb,
	    f->systemd ? "systemd" : "no systemd as PID 1");
	plan_note(p, "KVM: %s%s%s", f->kvm_usable ? "usable" : "not usable",
	    f->kvm_note[0] != '\0' ? " - " : "", f->kvm_note);
	if (!f->kvm_usable)
		plan_note(p, "VMs will run with TCG emulation (much slower)");
	plan_note(p, "Guardian: %s",
	    f->guardian		     ? "yes"
		: f->tier[0] != '\0' ? "no (another hookprobe tier)"
				     : "no");
	for (i = 0; i < p->host_css.nskipped && i < GUARDIAN_CSS_SKIPS; i++)
		plan_note(p, "Guardian stylesheet skipped: %s",
		    p->host_css.skipped[i]);
	if (p->host_css.nskipped > GUARDIAN_CSS_SKIPS)
		plan_note(p, "Guardian stylesheets skipped: %zu more",
		    p->host_css.nskipped - GUARDIAN_CSS_SKIPS);
	if (p->host_css.nforeign > 0)
		plan_note(p,
		    "Guardian's stylesheets from other sites: %zu (not "
		    "linked by the VM page)",
		    p->host_css.nforeign);
	if (a->vm_support == TRI_NO) {
		plan_stop(p, 0, "HOOKPROBE_VM_SUPPORT=no: nothing to do");
		return p;
	}
	if (f->arch == ARCH_OTHER) {
		plan_stop(p, 3,
		    "unsupported architecture %s (arm64 and "
		    "x86_64 only)",
		    f->machine);
		return p;
	}
	budget =
	    f->ram_mb > HOST_RESERVED_MB ? f->ram_mb - HOST_RESERVED_MB : 0;
	plan_note(p,
	    "RAM for VMs: %llu MiB (host %u + Guardian %u kept; Home "
	    "Assistant needs 2048)",
	    (unsigned long long)budget, 512, 1536);
	if (f->guardian && f->ram_mb < GUARDIAN_MIN_RAM_MB) {
		plan_stop(p, 3,
		    "Guardian offers VMs only with 6 GB RAM or more "
		    "(this host has %llu MiB)",
		    (unsigned long long)f->ram_mb);
		return p;
	}
	if (!f->guardian && budget < 2048)
		plan_note(p, "warning: little RAM for VMs");
	p->storage_dir = xstrdup(
	    a->storage_dir != NULL ? a->storage_dir : GVM_STORAGE_DEFAULT);
	if (f->storage_free_mb != 0) {
		plan_note(p, "storage %s: %llu MiB free", p->storage_dir,
		    (unsigned long long)f->storage_free_mb);
		if (f->storage_free_mb < HA_DISK_MB)
			plan_note(p,
			    "warning: less than a 32 GB Home "
			    "Assistant disk needs");
	}
	if (a->block_ports_set) {
		memcpy(p->block_ports, a->block_ports, sizeof(p->block_ports));
		p->nblock_ports = a->nblock_ports;
	} else {
		p->block_ports[0] = 8080;
		p->block_ports[1] = 22;
		p->nblock_ports = 2;
	}
	p->console_port = a->console_port != 0 ? a->console_port
	    : f->guardian		       ? 8091
					       : 0;
	if (!f->guardian && a->console_port != 0) {
		plan_note(p,
		    "GVM_CONSOLE_PORT ignored: without Guardian vmmod "
		    "serves consoles on its own origin");
		p->console_port = 0;
	}
	if (plan_network(p, f, a) == -1)
		return p;

	/* The saved answers: what --repair and --apply-firewall read back. */
	p->ans.storage_dir = xstrdup(p->storage_dir);
	p->ans.bridge = xstrdup(p->bridge);
	p->ans.bridge_addr = plan_net_format(&p->net);
	p->ans.dhcp_range = plan_range_format(&p->pool);
	p->ans.vm_block = plan_range_format(&p->vb.block);
	p->ans.console_port = p->console_port;
	p->ans.block_ports_set = true;
	memcpy(p->ans.block_ports, p->block_ports, sizeof(p->block_ports));
	p->ans.nblock_ports = p->nblock_ports;

	plan_packages(p, f);

	s = plan_step(p, "user", "Create the vmmod user");
	step_change(s, CH_USER, "vmmod",
	    "system user vmmod (groups libvirt, kvm), home /var/lib/vmmod, "
	    "no login shell");

	s = plan_step(p, "storage", "Create the VM storage directory");
	c = step_change(s, CH_DIR, p->storage_dir,
	    "directory %s (VM disks, seeds, base images)", p->storage_dir);
	c->mode = 0711;

	plan_ip4_format(p->net.addr, self);
	s = plan_step(p, "bridge", "Bridge for the VMs");
	if (p->create_bridge) {
		change_action(s, "bridge", true,
		    "create %s with %s/%u through libnl (no port enslaved: "
		    "never the interface you are connected through)",
		    p->bridge, self, p->net.prefix);
		if (p->guardian) {
			/* Guardian persists its br0 itself */
		} else if (p->netcfg == NETCFG_NM) {
			/*
			 * Only the keyfile: NetworkManager reads it at the
			 * next boot.  No reload now, so NM never takes over
			 * the live bridge while the user is connected.
			 */
			xasprintf(
			    &t, GVM_NM_CONNDIR "/%s.nmconnection", p->bridge);
			c = step_change(s, CH_FILE, t,
			    "write %s (mode 0600): NetworkManager keyfile "
			    "(persists the bridge; read at the next boot)",
			    t);
			c->content = gen_nm_keyfile(p);
			c->mode = 0600;
			free(t);
		} else if (p->netcfg == NETCFG_IFUPDOWN) {
			xasprintf(
			    &t, "/etc/network/interfaces.d/%s", p->bridge);
			change_file(s, t, gen_ifupdown(p),
			    "ifupdown stanza (persists the bridge)");
			free(t);
		} else {
			xasprintf(
			    &t, "/etc/systemd/network/50-%s.netdev", p->bridge);
			change_file(s, t, gen_networkd_netdev(p),
			    "systemd-networkd bridge (persists it)");
			free(t);
			xasprintf(&t, "/etc/systemd/network/50-%s.network",
			    p->bridge);
			change_file(
			    s, t, gen_networkd_network(p), "its address");
			free(t);
			if (p->netcfg != NETCFG_NETWORKD)
				plan_note(p,
				    "neither systemd-networkd nor "
				    "NetworkManager nor ifupdown is enabled "
				    "here: enable systemd-networkd, or %s is "
				    "not recreated after a reboot",
				    p->bridge);
		}
	} else
		change_action(s, "bridge", true, "use %s %s/%u as it is%s",
		    p->bridge, self, p->net.prefix,
		    p->guardian ? " (Guardian's)" : "");

	s = plan_step(p, "dnsmasq", "dnsmasq: VM reservations and names");
	step_change(s, CH_DIR, GVM_RESERVATIONS_DIR,
	    "directory " GVM_RESERVATIONS_DIR " (dhcp-hostsdir, vmmod writes)");
	step_change(s, CH_DIR, GVM_HOSTS_DIR,
	    "directory " GVM_HOSTS_DIR " (hostsdir, vmmod writes)");
	change_file(s, GVM_DNSMASQ_DROPIN, gen_dnsmasq_dropin(p),
	    p->guardian || p->pool.lo != p->old_pool.lo ||
		    p->pool.hi != p->old_pool.hi
		? "dhcp-hostsdir, hostsdir"
		: "dhcp-hostsdir, hostsdir");
	if (p->vb.shrink) {
		t = plan_range_format(&p->old_pool);
		u = plan_range_format(&p->pool);
		c = step_change(s, CH_FILE, GVM_DNSMASQ_GUARDIAN,
		    "edit " GVM_DNSMASQ_GUARDIAN ": dhcp-range %s -> %s "
		    "(reversible; the old file is kept in the manifest)",
		    t, u);
		c->edit = edit_shrink;
		c->guardian_file = true;
		free(t);
		free(u);
	}
	change_enable(s, "guardian-vms-dnsmasq-reload.path");
	change_action(s, "dnsmasq-restart", true,
	    "restart dnsmasq (it reads dhcp-range only at start)%s",
	    f->systemd ? "" : "; no systemd as PID 1: started directly");

	s = plan_step(p, "libvirt", "libvirt: network, storage pool, guests");
	c = step_change(s, CH_FILE, GVM_LIBVIRT_GUESTS,
	    "edit " GVM_LIBVIRT_GUESTS ": ON_SHUTDOWN=shutdown (VMs shut "
	    "down cleanly when the host reboots)");
	c->edit = edit_guests;
	change_file(s, GVM_LIBVIRTD_DROPIN, gen_libvirtd_dropin(p),
	    "autostarted VMs start after the bridge and dnsmasq");
	change_action(s, "libvirt-network", true,
	    "libvirt network '" GVM_LV_NETWORK "' (bridge mode on %s): "
	    "defined, autostarted, started (libvirt API)",
	    p->bridge);
	change_action(s, "libvirt-pool", true,
	    "libvirt storage pool '" GVM_LV_POOL "' (dir %s): defined, "
	    "autostarted, started (libvirt API)",
	    p->storage_dir);

	s = plan_step(p, "vmmod", "vmmod: configuration and service");
	c = step_change(s, CH_FILE, GVM_VMMOD_CONF,
	    "write " GVM_VMMOD_CONF
	    ": VM block, subnet, pool, storage, bridge%s",
	    p->console_port != 0 ? ", console listener on the bridge" : "");
	c->content = gen_vmmod_conf(p);
	change_file(s, GVM_SETUP_CONF, gen_setup_conf(p),
	    "the answers used (read by --repair and --apply-firewall)");
	change_enable(s, "vmmod.service");

	s = plan_step(p, "firewall", "Firewall");
	t = plan_range_format(&p->vb.block);
	u = ports_text(p);
	change_action(s, "iptables", true,
	    "legacy iptables chain GVM-VMS: VMs %s may not reach tcp %s on "
	    "the host; DNS and DHCP stay open",
	    t, u);
	if (p->console_port != 0)
		change_action(s, "nftables", true,
		    "nftables: accept tcp %u on %s in Guardian's inet guardian "
		    "input chain (the console)",
		    p->console_port, p->bridge);
	change_enable(s, "guardian-vms-firewall.service");
	free(t);
	free(u);

	if (p->guardian)
		plan_guardian(p, f);

	s = plan_step(p, "services", "Start the services");
	change_action(s, "services", true, "%s",
	    f->systemd ? "systemctl daemon-reload; start "
			 "guardian-vms-firewall, guardian-vms-dnsmasq-reload"
			 ".path, vmmod"
		       : "no systemd as PID 1: start vmmod directly (the "
			 "firewall was applied above; dnsmasq is not "
			 "SIGHUPed when a reservation is removed)");
	if (a->deploy_ha == TRI_YES) {
		s = plan_step(p, "deploy", "Deploy Home Assistant");
		change_action(s, "deploy-ha", true,
		    "deploy Home Assistant through vmmod's socket (template "
		    "'" GVM_HA_TEMPLATE "', VM '" GVM_HA_NAME "', started, "
		    "autostarted; %s)",
		    a->trust_unpinned == TRI_YES
			? "an unpinned image is trusted on first use"
			: "an image not pinned by a SHA-256 needs "
			  "--trust-unpinned");
	}
	return p;
}

static void
change_free(struct change *c)
{
	char **a;

	free(c->path);
	free(c->content);
	free(c->target);
	free(c->desc);
	free(c->src);
	for (a = c->args; a != NULL && *a != NULL; a++)
		free(*a);
	free(c->args);
}

void
plan_free(struct plan *p)
{
	size_t i, j;

	if (p == NULL)
		return;
	for (i = 0; i < p->nsteps; i++) {
		for (j = 0; j < p->steps[i].nchanges; j++)
			change_free(&p->steps[i].changes[j]);
		free(p->steps[i].changes);
		free(p->steps[i].id);
		free(p->steps[i].title);
	}
	free(p->steps);
	for (i = 0; i < p->nnotes; i++)
		free(p->notes[i]);
	free(p->notes);
	free(p->verdict_msg);
	free(p->bridge);
	free(p->storage_dir);
	free(p->datadir);
	answers_clear(&p->ans);
	free(p);
}

int
plan_only(struct plan *p, const char *id)
{
	size_t i, j, k = 0;

	for (i = 0; i < p->nsteps; i++) {
		if (strcmp(p->steps[i].id, id) == 0) {
			p->steps[k++] = p->steps[i];
			continue;
		}
		for (j = 0; j < p->steps[i].nchanges; j++)
			change_free(&p->steps[i].changes[j]);
		free(p->steps[i].changes);
		free(p->steps[i].id);
		free(p->steps[i].title);
	}
	p->nsteps = k;
	return k > 0 ? 0 : -1;
}

static void
cat(char **s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
cat(char **s, const char *fmt, ...)
{
	va_list ap;
	char *add, *t;

	va_start(ap, fmt);
	xvasprintf(&add, fmt, ap);
	va_end(ap);
	xasprintf(&t, "%s%s", *s, add);
	free(add);
	free(*s);
	*s = t;
}

char *
plan_text(const struct plan *p)
{
	char *s = xstrdup(""), *t, *u, self[16];
	size_t i, j;

	for (i = 0; i < p->nnotes; i++)
		cat(&s, "%s\n", p->notes[i]);
	if (p->bridge != NULL && p->have_pool) {
		plan_ip4_format(p->net.addr, self);
		cat(&s, "bridge: %s %s/%u%s\n", p->bridge, self, p->net.prefix,
		    p->create_bridge ? " (created)" : "");
		t = plan_range_format(&p->old_pool);
		if (p->vb.shrink) {
			u = plan_range_format(&p->vb.new_pool);
			cat(&s, "DHCP pool: %s, shrunk to %s%s\n", t, u,
			    p->verdict == 0 ? "" : " (needs consent)");
			free(u);
		} else
			cat(&s, "DHCP pool: %s (unchanged)\n", t);
		free(t);
		if (p->vb.block.hi != 0) {
			t = plan_range_format(&p->vb.block);
			cat(&s, "VM addresses: %s (%u)%s\n", t,
			    p->vb.block.hi - p->vb.block.lo + 1,
			    p->vb.reused ? ", kept from the last install" : "");
			free(t);
		}
		t = ports_text(p);
		cat(&s, "VMs may not reach: tcp %s on the host\n", t);
		free(t);
		if (p->console_port != 0)
			cat(&s,
			    "console: https://%s:%u (tcp %u opened on %s)\n",
			    self, p->console_port, p->console_port, p->bridge);
	}
	for (i = 0; i < p->nsteps; i++) {
		cat(&s, "\nstep %zu/%zu %s: %s\n", i + 1, p->nsteps,
		    p->steps[i].id, p->steps[i].title);
		for (j = 0; j < p->steps[i].nchanges; j++) {
			const struct change *c = &p->steps[i].changes[j];

			cat(&s, "  - %s%s\n", c->desc,
			    c->implemented ? "" : " [not implemented yet]");
		}
	}
	if (p->verdict != 0)
		cat(&s, "\ncannot install (exit %d): %s\n", p->verdict,
		    p->verdict_msg);
	else if (p->verdict_msg != NULL)
		cat(&s, "\n%s\n", p->verdict_msg);
	return s;
}
