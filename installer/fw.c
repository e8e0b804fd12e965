/*
 * `guardian-vm-setup --apply-firewall`: what the root firewall unit runs at
 * boot and after every nftables (re)load.  The legacy chain keeps VMs off
 * the host's management ports (ipt.c); on Guardian one nftables rule opens
 * the console port on the bridge (nft.c).  Both are idempotent, so running
 * this again changes nothing.
 */
#include <stdlib.h>

#include "common.h"
#include "setup.h"

int
fw_apply(const struct fw_params *p, char **errp)
{
	enum nft_result r;

	if (ipt_apply(&p->ipt, errp) == -1)
		return -1;
	log_info("iptables (legacy): chain %s rebuilt for %s", IPT_CHAIN,
	    p->ipt.bridge);
	if (p->console_port == 0)
		return 0;
	r = nft_console_rule_apply(p->ipt.bridge, p->console_port, errp);
	switch (r) {
	case NFT_ERROR:
		return -1;
	case NFT_DONE:
		log_info("nftables: console port %u opened on %s",
		    p->console_port, p->ipt.bridge);
		break;
	case NFT_UNCHANGED:
		log_info("nftables: console port %u already open on %s",
		    p->console_port, p->ipt.bridge);
		break;
	case NFT_NO_GUARDIAN:
		log_info(
		    "nftables: no inet guardian input chain (not "
		    "Guardian): console port %u left to the host's firewall",
		    p->console_port);
		break;
	}
	return 0;
}

/* Tries both parts even when the first fails; *errp is the first error. */
int
fw_remove(char **errp)
{
	char *e1 = NULL, *e2 = NULL;
	int rc = 0;

	if (ipt_remove(&e1) == -1)
		rc = -1;
	if (nft_console_rule_remove(&e2) == NFT_ERROR)
		rc = -1;
	if (e1 != NULL && e2 != NULL) {
		log_warnx("%s", e2);
		free(e2);
		e2 = NULL;
	}
	if (errp != NULL) {
		*errp = e1 != NULL ? e1 : e2;
	} else {
		free(e1);
		free(e2);
	}
	return rc;
}
