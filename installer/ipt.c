/*
 * Our chain in the legacy x_tables filter table, through libiptc (the only
 * file including it).  What it says: packets coming in on the bridge from
 * the VM address block jump from INPUT to GVM-VMS, which accepts DNS
 * (udp/tcp 53) and DHCP (udp 67) and drops tcp to the management ports;
 * everything else returns to INPUT.  A legacy DROP drops alongside
 * Guardian's nftables, while a legacy ACCEPT cannot open what nftables
 * drops (DESIGN.md), so the ACCEPTs only keep DNS/DHCP out of the drop
 * list's way.  Each apply rebuilds the whole chain and the one INPUT jump in
 * a single commit under /run/xtables.lock (iptables' own lock), retrying a
 * busy lock and a commit that lost a race (EAGAIN) with a bounded backoff.
 * `iptables` (the nft variant) does not list these: `iptables-legacy -S`.
 */
#include <sys/file.h>

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libiptc/libiptc.h>
#include <linux/netfilter/xt_iprange.h>
#include <linux/netfilter/xt_tcpudp.h>

#include "common.h"
#include "setup.h"

#define IPT_LOCK "/run/xtables.lock"
#define IPT_TRIES 10 /* sleeps 10 ms doubling: gives up after ~5 s */

/* libiptc takes chain names as whole xt_chainlabel arrays. */
static const xt_chainlabel ipt_input = "INPUT", ipt_chain = IPT_CHAIN;

static void
ipt_backoff(int attempt)
{
	struct timespec ts = {0, 10 * 1000 * 1000L << attempt};

	while (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	nanosleep(&ts, NULL);
}

/* The fd holding iptables' lock, or -1 with *errp. */
static int
ipt_lock(char **errp)
{
	int fd, i;

	if ((fd = open(IPT_LOCK, O_CREAT | O_RDONLY | O_CLOEXEC, 0600)) == -1)
		return err_set(errp, "%s: %s", IPT_LOCK, strerror(errno));
	for (i = 0; i < IPT_TRIES; i++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		if (errno != EWOULDBLOCK && errno != EINTR)
			break;
		if (i + 1 < IPT_TRIES)
			ipt_backoff(i);
	}
	err_set(errp, "%s: %s", IPT_LOCK,
	    errno == EWOULDBLOCK ? "held by another program (iptables?)"
				 : strerror(errno));
	close(fd);
	return -1;
}

/*
 * Rule building: an ipt_entry, its matches, one standard target, laid out
 * in one buffer as the kernel wants (each part XT_ALIGNed).  All of
 * libiptc's structs are filled here and nowhere else.
 */
struct ipt_rule {
	union {
		struct ipt_entry e;
		unsigned char buf[512];
	} u;
	size_t len;
};

static void
rule_init(struct ipt_rule *r, const char *iniface, uint8_t proto)
{
	size_t n = strlen(iniface);

	memset(r, 0, sizeof(*r));
	r->len = XT_ALIGN(sizeof(struct ipt_entry));
	memcpy(r->u.e.ip.iniface, iniface, n);
	memset(r->u.e.ip.iniface_mask, 0xff, n + 1); /* exact name */
	r->u.e.ip.proto = proto;
}

static void
rule_match(struct ipt_rule *r, const char *name, uint8_t revision,
    const void *data, size_t size)
{
	struct xt_entry_match *m;
	size_t msize = XT_ALIGN(sizeof(*m) + size);

	if (r->len + msize > sizeof(r->u.buf))
		fatalx("%s: rule too large", __func__);
	m = (struct xt_entry_match *)(r->u.buf + r->len);
	m->u.user.match_size = msize;
	snprintf(m->u.user.name, sizeof(m->u.user.name), "%s", name);
	m->u.user.revision = revision;
	memcpy(m->data, data, size);
	r->len += msize;
}

/* ACCEPT, DROP or a chain name: libiptc maps the label to a verdict. */
static const struct ipt_entry *
rule_target(struct ipt_rule *r, const char *label)
{
	struct xt_standard_target *t;
	size_t tsize = XT_ALIGN(sizeof(*t));

	if (r->len + tsize > sizeof(r->u.buf))
		fatalx("%s: rule too large", __func__);
	t = (struct xt_standard_target *)(r->u.buf + r->len);
	t->target.u.user.target_size = tsize;
	snprintf(
	    t->target.u.user.name, sizeof(t->target.u.user.name), "%s", label);
	r->u.e.target_offset = r->len;
	r->len += tsize;
	r->u.e.next_offset = r->len;
	return &r->u.e;
}

/* `-i IFACE -m iprange --src-range FIRST-LAST -j GVM-VMS` */
static const struct ipt_entry *
rule_jump(struct ipt_rule *r, const struct ipt_params *p)
{
	struct xt_iprange_mtinfo ir;

	rule_init(r, p->bridge, 0);
	memset(&ir, 0, sizeof(ir));
	ir.src_min.ip = p->first.s_addr;
	ir.src_max.ip = p->last.s_addr;
	ir.flags = IPRANGE_SRC;
	rule_match(r, "iprange", 1, &ir, sizeof(ir));
	return rule_target(r, IPT_CHAIN);
}

/* `-p tcp|udp -m tcp|udp --dport PORT -j LABEL` */
static const struct ipt_entry *
rule_port(struct ipt_rule *r, const char *iface, uint8_t proto, uint16_t port,
    const char *label)
{
	struct xt_tcp tcp;
	struct xt_udp udp;

	rule_init(r, iface, proto);
	if (proto == IPPROTO_TCP) {
		memset(&tcp, 0, sizeof(tcp));
		tcp.spts[1] = 0xffff;
		tcp.dpts[0] = tcp.dpts[1] = port;
		rule_match(r, "tcp", 0, &tcp, sizeof(tcp));
	} else {
		memset(&udp, 0, sizeof(udp));
		udp.spts[1] = 0xffff;
		udp.dpts[0] = udp.dpts[1] = port;
		rule_match(r, "udp", 0, &udp, sizeof(udp));
	}
	return rule_target(r, label);
}

static int
ipt_check(const struct ipt_params *p, char **errp)
{
	size_t i;

	if (p->bridge == NULL || *p->bridge == '\0' ||
	    strlen(p->bridge) >= IFNAMSIZ || strchr(p->bridge, '+') != NULL)
		return err_set(errp, "bad bridge name");
	if (ntohl(p->first.s_addr) > ntohl(p->last.s_addr) ||
	    p->first.s_addr == 0)
		return err_set(errp, "bad VM address block");
	if (p->nmgmt > IPT_MAX_PORTS)
		return err_set(errp, "too many management ports");
	for (i = 0; i < p->nmgmt; i++)
		if (p->mgmt_ports[i] == 0 || p->mgmt_ports[i] == 53)
			return err_set(
			    errp, "bad management port %u", p->mgmt_ports[i]);
	return 0;
}

/* Deletes every INPUT rule that jumps to our chain. */
static int
ipt_drop_jumps(struct xtc_handle *h)
{
	const struct ipt_entry *e;
	const char *t;
	unsigned int n, del[64], ndel = 0;

	for (n = 0, e = iptc_first_rule(ipt_input, h); e != NULL;
	     e = iptc_next_rule(e, h), n++) {
		t = iptc_get_target(e, h);
		if (t != NULL && strcmp(t, IPT_CHAIN) == 0 &&
		    ndel < nitems(del))
			del[ndel++] = n;
	}
	while (ndel > 0)
		if (!iptc_delete_num_entry(ipt_input, del[--ndel], h))
			return -1;
	return 0;
}

/* The rules of one apply; 0 or -1 with errno (libiptc's). */
static int
ipt_build(struct xtc_handle *h, const struct ipt_params *p)
{
	struct ipt_rule r;
	size_t i;

	if (iptc_is_chain(ipt_chain, h)) {
		if (!iptc_flush_entries(ipt_chain, h))
			return -1;
	} else if (!iptc_create_chain(ipt_chain, h))
		return -1;
	if (ipt_drop_jumps(h) == -1)
		return -1;
	if (!iptc_insert_entry(ipt_input, rule_jump(&r, p), 0, h))
		return -1;
	if (!iptc_append_entry(ipt_chain,
		rule_port(&r, p->bridge, IPPROTO_UDP, 53, "ACCEPT"), h) ||
	    !iptc_append_entry(ipt_chain,
		rule_port(&r, p->bridge, IPPROTO_TCP, 53, "ACCEPT"), h) ||
	    !iptc_append_entry(ipt_chain,
		rule_port(&r, p->bridge, IPPROTO_UDP, 67, "ACCEPT"), h))
		return -1;
	for (i = 0; i < p->nmgmt; i++)
		if (!iptc_append_entry(ipt_chain,
			rule_port(&r, p->bridge, IPPROTO_TCP, p->mgmt_ports[i],
			    "DROP"),
			h))
			return -1;
	return 0;
}

static int
ipt_unbuild(struct xtc_handle *h, bool *changed)
{
	unsigned int refs;
	bool chain = iptc_is_chain(ipt_chain, h);

	*changed = false;
	if (!chain)
		return 0;
	*changed = true;
	if (ipt_drop_jumps(h) == -1 || !iptc_flush_entries(ipt_chain, h))
		return -1;
	/* Someone else's jump to our chain: leave it all in place. */
	if (!iptc_get_references(&refs, ipt_chain, h))
		return -1;
	if (refs > 0) {
		errno = EBUSY;
		return -1;
	}
	return iptc_delete_chain(ipt_chain, h) ? 0 : -1;
}

/* One transaction under the lock: init, build or unbuild, commit. */
static int
ipt_run(const struct ipt_params *p, char **errp)
{
	struct xtc_handle *h = NULL;
	const char *step;
	int fd, attempt, rc = -1;
	bool changed = true;

	if ((fd = ipt_lock(errp)) == -1)
		return -1;
	for (attempt = 0; attempt < IPT_TRIES; attempt++) {
		if (attempt > 0)
			ipt_backoff(attempt - 1);
		step = "reading the filter table";
		if ((h = iptc_init("filter")) == NULL)
			goto retry;
		step =
		    p != NULL ? "building " IPT_CHAIN : "removing " IPT_CHAIN;
		if ((p != NULL ? ipt_build(h, p) : ipt_unbuild(h, &changed)) ==
		    -1)
			goto fail;
		step = "committing";
		if (changed && !iptc_commit(h))
			goto retry;
		rc = 0;
		goto done;
	retry:
		/* EAGAIN: the table changed under us (another writer). */
		if (errno != EAGAIN)
			goto fail;
		if (h != NULL)
			iptc_free(h);
		h = NULL;
	}
fail:
	err_set(errp, "iptables (legacy) filter: %s: %s", step,
	    errno == EBUSY ? "another rule jumps to " IPT_CHAIN
			   : iptc_strerror(errno));
done:
	if (h != NULL)
		iptc_free(h);
	close(fd);
	return rc;
}

int
ipt_apply(const struct ipt_params *p, char **errp)
{
	if (ipt_check(p, errp) == -1)
		return -1;
	return ipt_run(p, errp);
}

int
ipt_remove(char **errp)
{
	return ipt_run(NULL, errp);
}
