/*
 * br0 through libnl-3 route, the only file that includes libnl.  The
 * installer inspects the bridge (Guardian's, when present), creates it with
 * its address when missing, and removes it on uninstall when the manifest
 * says we created it.  Nothing here enslaves a port: the interface the user
 * is connected through (nl_default_route_iface) must stay as it is, so
 * ports are the business of whoever configured the bridge.  Each call opens
 * its own netlink socket: the installer calls these a handful of times.
 */
#include <arpa/inet.h>
#include <net/if.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/route.h>

#include "common.h"
#include "setup.h"

static struct nl_sock *
nl_open(char **errp)
{
	struct nl_sock *sk;
	int r;

	if ((sk = nl_socket_alloc()) == NULL) {
		err_set(errp, "netlink: cannot allocate a socket");
		return NULL;
	}
	if ((r = nl_connect(sk, NETLINK_ROUTE)) < 0) {
		err_set(errp, "netlink: %s", nl_geterror(r));
		nl_socket_free(sk);
		return NULL;
	}
	return sk;
}

/* *linkp is NULL (and 0 returned) when no link has that name. */
static int
nl_link_get(
    struct nl_sock *sk, const char *name, struct rtnl_link **linkp, char **errp)
{
	int r;

	*linkp = NULL;
	if (name == NULL || *name == '\0' || strlen(name) >= IFNAMSIZ)
		return err_set(errp, "bad interface name \"%s\"",
		    name == NULL ? "" : name);
	r = rtnl_link_get_kernel(sk, 0, name, linkp);
	if (r == -NLE_OBJ_NOTFOUND || r == -NLE_NODEV) {
		*linkp = NULL;
		return 0;
	}
	if (r < 0)
		return err_set(errp, "%s: %s", name, nl_geterror(r));
	return 0;
}

static bool
nl_is_bridge(struct rtnl_link *link)
{
	const char *type = rtnl_link_get_type(link);

	return type != NULL && strcmp(type, "bridge") == 0;
}

struct nl_walk {
	int ifindex;
	struct nl_bridge_info *info;
};

static void
nl_addr_cb(struct nl_object *obj, void *arg)
{
	struct rtnl_addr *a = (struct rtnl_addr *)obj;
	struct nl_walk *w = arg;
	struct nl_addr *local = rtnl_addr_get_local(a);
	char ip[INET_ADDRSTRLEN];

	if (rtnl_addr_get_ifindex(a) != w->ifindex ||
	    rtnl_addr_get_family(a) != AF_INET || local == NULL ||
	    nl_addr_get_len(local) != 4 || w->info->naddrs == NL_MAX_ADDRS)
		return;
	inet_ntop(AF_INET, nl_addr_get_binary_addr(local), ip, sizeof(ip));
	snprintf(w->info->addrs[w->info->naddrs++], sizeof(w->info->addrs[0]),
	    "%s/%d", ip, rtnl_addr_get_prefixlen(a));
}

static void
nl_port_cb(struct nl_object *obj, void *arg)
{
	struct rtnl_link *l = (struct rtnl_link *)obj;
	struct nl_walk *w = arg;

	if (rtnl_link_get_master(l) != w->ifindex ||
	    w->info->nports == NL_MAX_PORTS)
		return;
	snprintf(w->info->ports[w->info->nports++], sizeof(w->info->ports[0]),
	    "%s", rtnl_link_get_name(l));
}

static int
nl_inspect(struct nl_sock *sk, const char *name, struct nl_bridge_info *info,
    char **errp)
{
	struct rtnl_link *link = NULL;
	struct nl_cache *links = NULL, *addrs = NULL;
	struct nl_walk w;
	int r, rc = -1;

	memset(info, 0, sizeof(*info));
	if (nl_link_get(sk, name, &link, errp) == -1)
		return -1;
	if (link == NULL)
		return 0;
	info->exists = true;
	info->is_bridge = nl_is_bridge(link);
	info->up = (rtnl_link_get_flags(link) & IFF_UP) != 0;
	w.ifindex = rtnl_link_get_ifindex(link);
	w.info = info;
	if ((r = rtnl_addr_alloc_cache(sk, &addrs)) < 0) {
		err_set(errp, "%s: addresses: %s", name, nl_geterror(r));
		goto done;
	}
	nl_cache_foreach(addrs, nl_addr_cb, &w);
	if ((r = rtnl_link_alloc_cache(sk, AF_UNSPEC, &links)) < 0) {
		err_set(errp, "%s: links: %s", name, nl_geterror(r));
		goto done;
	}
	nl_cache_foreach(links, nl_port_cb, &w);
	rc = 0;
done:
	if (addrs != NULL)
		nl_cache_free(addrs);
	if (links != NULL)
		nl_cache_free(links);
	rtnl_link_put(link);
	return rc;
}

int
nl_bridge_inspect(const char *name, struct nl_bridge_info *info, char **errp)
{
	struct nl_sock *sk;
	int rc;

	if ((sk = nl_open(errp)) == NULL)
		return -1;
	rc = nl_inspect(sk, name, info, errp);
	nl_socket_free(sk);
	return rc;
}

/* "A.B.C.D/P" into the address (network order) and the prefix length. */
static int
nl_parse_cidr(const char *cidr, struct in_addr *ip, int *plen, char **errp)
{
	char buf[INET_ADDRSTRLEN + 4], *slash, *end;
	long p;

	if (cidr == NULL || strlen(cidr) >= sizeof(buf))
		goto bad;
	strcpy(buf, cidr);
	if ((slash = strchr(buf, '/')) == NULL)
		goto bad;
	*slash++ = '\0';
	errno = 0;
	p = strtol(slash, &end, 10);
	if (*slash == '\0' || *end != '\0' || errno != 0 || p < 1 || p > 32)
		goto bad;
	if (inet_pton(AF_INET, buf, ip) != 1)
		goto bad;
	*plen = (int)p;
	return 0;
bad:
	return err_set(errp, "\"%s\" is not an IPv4 address/prefix",
	    cidr == NULL ? "" : cidr);
}

static int
nl_addr_add(
    struct nl_sock *sk, int ifindex, struct in_addr ip, int plen, char **errp)
{
	struct rtnl_addr *a;
	struct nl_addr *local = NULL, *brd = NULL;
	struct in_addr b;
	uint32_t mask;
	int r, rc = -1;

	mask = plen == 32 ? 0xffffffffu : ~(0xffffffffu >> plen);
	b.s_addr = ip.s_addr | htonl(~mask);
	if ((a = rtnl_addr_alloc()) == NULL ||
	    (local = nl_addr_build(AF_INET, &ip, 4)) == NULL ||
	    (brd = nl_addr_build(AF_INET, &b, 4)) == NULL) {
		err_set(errp, "netlink: out of memory");
		goto done;
	}
	nl_addr_set_prefixlen(local, plen);
	rtnl_addr_set_ifindex(a, ifindex);
	rtnl_addr_set_family(a, AF_INET);
	if ((r = rtnl_addr_set_local(a, local)) < 0 ||
	    (plen < 31 && (r = rtnl_addr_set_broadcast(a, brd)) < 0)) {
		err_set(errp, "netlink: %s", nl_geterror(r));
		goto done;
	}
	rtnl_addr_set_prefixlen(a, plen);
	if ((r = rtnl_addr_add(sk, a, 0)) < 0) {
		err_set(errp, "adding %s/%d: %s", inet_ntoa(ip), plen,
		    nl_geterror(r));
		goto done;
	}
	rc = 0;
done:
	nl_addr_put(local);
	nl_addr_put(brd);
	if (a != NULL)
		rtnl_addr_put(a);
	return rc;
}

static int
nl_link_up(struct nl_sock *sk, struct rtnl_link *link, char **errp)
{
	struct rtnl_link *change;
	int r;

	if ((change = rtnl_link_alloc()) == NULL)
		return err_set(errp, "netlink: out of memory");
	rtnl_link_set_flags(change, IFF_UP);
	r = rtnl_link_change(sk, link, change, 0);
	rtnl_link_put(change);
	if (r < 0)
		return err_set(errp, "%s: set up: %s", rtnl_link_get_name(link),
		    nl_geterror(r));
	return 0;
}

int
nl_bridge_ensure(const char *name, const char *cidr, bool *changed, char **errp)
{
	struct nl_sock *sk;
	struct rtnl_link *link = NULL;
	struct nl_bridge_info info;
	struct in_addr ip, have;
	char want[INET_ADDRSTRLEN];
	size_t i, n;
	int plen = 0, r, rc = -1;
	bool found = false;

	*changed = false;
	if (nl_parse_cidr(cidr, &ip, &plen, errp) == -1)
		return -1;
	inet_ntop(AF_INET, &ip, want, sizeof(want));
	if ((sk = nl_open(errp)) == NULL)
		return -1;
	if (nl_inspect(sk, name, &info, errp) == -1)
		goto done;
	if (info.exists && !info.is_bridge) {
		err_set(errp, "%s exists and is not a bridge", name);
		goto done;
	}
	if (!info.exists) {
		if ((r = rtnl_link_bridge_add(sk, name)) < 0) {
			err_set(errp, "creating bridge %s: %s", name,
			    nl_geterror(r));
			goto done;
		}
		*changed = true;
	}
	/* The same address with another prefix is the user's, not ours. */
	for (i = 0; i < info.naddrs; i++) {
		n = strcspn(info.addrs[i], "/");
		info.addrs[i][n] = '\0';
		if (inet_pton(AF_INET, info.addrs[i], &have) != 1 ||
		    have.s_addr != ip.s_addr)
			continue;
		if (atoi(info.addrs[i] + n + 1) != plen) {
			err_set(errp, "%s already has %s/%s, not %s", name,
			    info.addrs[i], info.addrs[i] + n + 1, cidr);
			goto done;
		}
		found = true;
	}
	if (nl_link_get(sk, name, &link, errp) == -1)
		goto done;
	if (link == NULL) {
		err_set(errp, "%s vanished while being set up", name);
		goto done;
	}
	if (!found) {
		if (nl_addr_add(
			sk, rtnl_link_get_ifindex(link), ip, plen, errp) == -1)
			goto done;
		*changed = true;
	}
	if ((rtnl_link_get_flags(link) & IFF_UP) == 0) {
		if (nl_link_up(sk, link, errp) == -1)
			goto done;
		*changed = true;
	}
	rc = 0;
done:
	if (link != NULL)
		rtnl_link_put(link);
	nl_socket_free(sk);
	return rc;
}

struct nl_defroute {
	int ifindex;
	uint32_t prio;
};

static void
nl_route_cb(struct nl_object *obj, void *arg)
{
	struct rtnl_route *rt = (struct rtnl_route *)obj;
	struct nl_defroute *d = arg;
	struct nl_addr *dst = rtnl_route_get_dst(rt);
	struct rtnl_nexthop *nh;

	if (rtnl_route_get_table(rt) != RT_TABLE_MAIN ||
	    rtnl_route_get_type(rt) != RTN_UNICAST ||
	    (dst != NULL && nl_addr_get_prefixlen(dst) != 0) ||
	    rtnl_route_get_nnexthops(rt) < 1 ||
	    (nh = rtnl_route_nexthop_n(rt, 0)) == NULL)
		return;
	if (d->ifindex == 0 || rtnl_route_get_priority(rt) < d->prio) {
		d->ifindex = rtnl_route_nh_get_ifindex(nh);
		d->prio = rtnl_route_get_priority(rt);
	}
}

int
nl_default_route_iface(char buf[16], char **errp)
{
	struct nl_sock *sk;
	struct nl_cache *routes = NULL;
	struct nl_defroute d = {0, 0};
	char name[IF_NAMESIZE];
	int r, rc = -1;

	buf[0] = '\0';
	if ((sk = nl_open(errp)) == NULL)
		return -1;
	if ((r = rtnl_route_alloc_cache(sk, AF_INET, 0, &routes)) < 0) {
		err_set(errp, "routes: %s", nl_geterror(r));
		goto done;
	}
	nl_cache_foreach(routes, nl_route_cb, &d);
	if (d.ifindex > 0) {
		if (if_indextoname(d.ifindex, name) == NULL) {
			err_set(errp, "default route: interface %d: %s",
			    d.ifindex, strerror(errno));
			goto done;
		}
		snprintf(buf, 16, "%s", name);
	}
	rc = 0;
done:
	if (routes != NULL)
		nl_cache_free(routes);
	nl_socket_free(sk);
	return rc;
}

int
nl_bridge_remove(const char *name, char **errp)
{
	struct nl_sock *sk;
	struct rtnl_link *link = NULL;
	int r, rc = -1;

	if ((sk = nl_open(errp)) == NULL)
		return -1;
	if (nl_link_get(sk, name, &link, errp) == -1)
		goto done;
	if (link == NULL) {
		rc = 0;
		goto done;
	}
	if (!nl_is_bridge(link)) {
		err_set(errp, "%s is not a bridge: not removing it", name);
		goto done;
	}
	if ((r = rtnl_link_delete(sk, link)) < 0) {
		err_set(errp, "removing %s: %s", name, nl_geterror(r));
		goto done;
	}
	rc = 0;
done:
	if (link != NULL)
		rtnl_link_put(link);
	nl_socket_free(sk);
	return rc;
}
