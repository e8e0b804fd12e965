/*
 * The host check's RAM budget: what the host and Guardian keep, what Home
 * Assistant and OpenMediaVault would take and what is left, like the
 * seed's table for an 8 GB Pi 5 but from this host's MemTotal.  The
 * numbers are plan.c's (its "RAM for VMs" note and 6 GB gate), so the
 * screen and the plan never disagree.  Pure.
 */
#include <string.h>

#include "common.h"
#include "setup.h"

#define BUDGET_HOST_MB 512
#define BUDGET_GUARDIAN_MB 1536
#define BUDGET_VM_MB 2048

void
budget_table(uint64_t ram_mb, bool guardian, struct budget *b)
{
	uint64_t kept = BUDGET_HOST_MB + BUDGET_GUARDIAN_MB;
	struct budget_row *r = b->rows;

	memset(b, 0, sizeof(*b));
	b->vm_mb = ram_mb > kept ? ram_mb - kept : 0;
	b->left_mb = (int64_t)b->vm_mb - 2 * BUDGET_VM_MB;
	b->gate_ok = !guardian || ram_mb >= BUDGET_GUARDIAN_MIN_MB;
	r[b->n++] = (struct budget_row){.what = "Host system and buffer",
	    .ram_mb = BUDGET_HOST_MB,
	    .disk = "-"};
	r[b->n++] = (struct budget_row){.what = guardian
		? "Guardian core and containers"
		: "Host services (kept back)",
	    .ram_mb = BUDGET_GUARDIAN_MB,
	    .disk = guardian ? "2 GB" : "-"};
	r[b->n++] = (struct budget_row){.what = "Home Assistant VM",
	    .ram_mb = BUDGET_VM_MB,
	    .disk = "32 GB",
	    .vm = true,
	    .fits = b->vm_mb >= BUDGET_VM_MB};
	r[b->n++] = (struct budget_row){.what = "OpenMediaVault VM",
	    .ram_mb = BUDGET_VM_MB,
	    .disk = "32 GB+",
	    .vm = true,
	    .fits = b->vm_mb >= 2 * BUDGET_VM_MB};
	r[b->n++] = (struct budget_row){.what = "Left for more VMs",
	    .ram_mb = b->left_mb > 0 ? (uint64_t)b->left_mb : 0,
	    .disk = "varies"};
}
