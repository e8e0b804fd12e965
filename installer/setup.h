/* guardian-vm-setup: prototypes of the installer, grouped by file. */
#ifndef SETUP_H
#define SETUP_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * nl.c: br0 through libnl-3 route (the only file including libnl).  Every
 * function returns 0 or -1 with *errp (malloc'd, caller frees; errp may be
 * NULL).
 */
#define NL_MAX_ADDRS 8
#define NL_MAX_PORTS 32
struct nl_bridge_info {
	bool exists; /* a link of that name exists */
	bool is_bridge; /* ... and it is a bridge */
	bool up; /* administratively up (IFF_UP) */
	size_t naddrs; /* IPv4 addresses, "A.B.C.D/P" */
	char addrs[NL_MAX_ADDRS][INET_ADDRSTRLEN + 4];
	size_t nports; /* links enslaved to it */
	char ports[NL_MAX_PORTS][16];
};
int nl_bridge_inspect(const char *name, struct nl_bridge_info *, char **errp);
/* Creates the bridge, adds the address, sets it up: only what is missing. */
int nl_bridge_ensure(
    const char *name, const char *cidr, bool *changed, char **errp);
/* The interface of the IPv4 default route ("" when there is none). */
int nl_default_route_iface(char buf[16], char **errp);
/* Deletes the link; the caller knows (manifest) that we created it. */
int nl_bridge_remove(const char *name, char **errp);

/*
 * ipt.c: our chain in the legacy x_tables filter table through libiptc
 * (the only file including libiptc).
 */
#define IPT_CHAIN "GVM-VMS"
#define IPT_MAX_PORTS 32
struct ipt_params {
	const char *bridge; /* packets coming in on this link */
	struct in_addr first, last; /* from the VM address block */
	uint16_t mgmt_ports[IPT_MAX_PORTS]; /* tcp ports VMs may not reach */
	size_t nmgmt;
};
/* Rebuilds the chain and the one INPUT jump; one commit.  Idempotent. */
int ipt_apply(const struct ipt_params *, char **errp);
/* Removes the jump and the chain; 0 when they are already gone. */
int ipt_remove(char **errp);

/*
 * nft.c: the console port in Guardian's nftables (the only file including
 * libnftables).  One rule `iifname IFACE tcp dport PORT accept` with the
 * comment NFT_CONSOLE_COMMENT in `inet guardian input`.
 */
#define NFT_CONSOLE_COMMENT "guardian-vms console"
enum nft_result {
	NFT_ERROR = -1,
	NFT_DONE, /* rule added (apply) or deleted (remove) */
	NFT_UNCHANGED, /* already there (apply) or already gone (remove) */
	NFT_NO_GUARDIAN /* no `inet guardian input` chain: nothing to do */
};
enum nft_result
nft_console_rule_apply(const char *iface, uint16_t port, char **errp);
enum nft_result nft_console_rule_remove(char **errp);

/* fw.c: what `guardian-vm-setup --apply-firewall` does. */
struct fw_params {
	struct ipt_params ipt;
	uint16_t console_port; /* 0: no console rule */
};
/* Logs what it did; -1 with *errp when a part failed. */
int fw_apply(const struct fw_params *, char **errp);
int fw_remove(char **errp);

#endif
