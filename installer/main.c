/*
 * guardian-vm-setup: installs VM support (QEMU/KVM, libvirt, the br0
 * bridge, dnsmasq reservations, the firewall, vmmod) on Guardian or any
 * Debian host, and undoes it.  This file is the command line: it gathers
 * answers and host facts, builds the plan, and drives steps.c.  On a
 * terminal (without --unattended) ui.c's guided screens drive the same
 * plan -> apply core instead.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "setup.h"

#define SETUP_VERSION "0.1"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: guardian-vm-setup [--unattended] [--answers FILE] "
	    "[--dry-run]\n"
	    "                         [--root DIR [--live]] [--trust-unpinned]\n"
	    "       guardian-vm-setup --uninstall [--purge] [--root DIR "
	    "[--live]]\n"
	    "       guardian-vm-setup --repair | --apply-firewall [--root "
	    "DIR]\n"
	    "       guardian-vm-setup --help | --version\n"
	    "exit: 0 ok, 1 a step failed (rolled back), 2 usage or answers,\n"
	    "      3 host not eligible, 4 consent needed (unattended), 5 not "
	    "root\n"
	    "See guardian-vm-setup(8).\n");
}

static const char *
env_get(const char *name)
{
	return getenv(name);
}

static void
progress(void *arg, size_t step, size_t nsteps, const char *id, int pct,
    const char *msg)
{
	if (pct >= 0)
		printf(
		    "[%zu/%zu %s] %3d%% %s\n", step + 1, nsteps, id, pct, msg);
	else
		printf("[%zu/%zu %s]      %s\n", step + 1, nsteps, id, msg);
	fflush(stdout);
}

static int
load_saved(const char *root, struct answers *a)
{
	char *path, *err = NULL;
	int rc;

	xasprintf(&path, "%s" GVM_SETUP_CONF, root);
	rc = answers_load(a, path, &err);
	if (rc == -1) {
		fprintf(
		    stderr, "guardian-vm-setup: %s (not installed?)\n", err);
		free(err);
	}
	free(path);
	return rc;
}

static int
apply_firewall(const char *root)
{
	struct answers a;
	struct fw_params fp;
	struct ip4range block;
	char *err = NULL;
	size_t i;
	int rc = EXIT_OK;

	answers_init(&a);
	if (load_saved(root, &a) == -1)
		return EXIT_FAILED;
	if (a.vm_block == NULL || plan_range_parse(a.vm_block, &block) == -1 ||
	    a.bridge == NULL) {
		fprintf(stderr,
		    "guardian-vm-setup: " GVM_SETUP_CONF
		    " lacks GVM_VM_BLOCK or GVM_BRIDGE\n");
		answers_clear(&a);
		return EXIT_FAILED;
	}
	memset(&fp, 0, sizeof(fp));
	fp.ipt.bridge = a.bridge;
	fp.ipt.first.s_addr = htonl(block.lo);
	fp.ipt.last.s_addr = htonl(block.hi);
	for (i = 0; i < a.nblock_ports && i < IPT_MAX_PORTS; i++)
		fp.ipt.mgmt_ports[fp.ipt.nmgmt++] = a.block_ports[i];
	fp.console_port = a.console_port;
	if (fw_apply(&fp, &err) == -1) {
		fprintf(stderr, "guardian-vm-setup: firewall: %s\n", err);
		free(err);
		rc = EXIT_FAILED;
	}
	answers_clear(&a);
	return rc;
}

static int
uninstall(const struct apply_opts *o)
{
	struct manifest *m;
	char *path, *err = NULL;
	int rc = EXIT_OK;

	xasprintf(&path, "%s" GVM_MANIFEST, o->root);
	if ((m = manifest_load(path, &err)) == NULL) {
		fprintf(stderr, "guardian-vm-setup: %s\n", err);
		free(err);
		free(path);
		return EXIT_FAILED;
	}
	if (manifest_count(m) == 0)
		printf("nothing to uninstall (no %s)\n", path);
	else if (steps_uninstall(m, o, &err) == -1) {
		fprintf(stderr,
		    "guardian-vm-setup: uninstall: %s; what is "
		    "left stays in %s (run --uninstall again)\n",
		    err, path);
		free(err);
		rc = EXIT_FAILED;
	} else
		printf("uninstalled: every recorded change was undone but "
		       "what is named as kept above\n");
	manifest_free(m);
	free(path);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {"unattended", no_argument, NULL, 'u'},
	    {"answers", required_argument, NULL, 'a'},
	    {"dry-run", no_argument, NULL, 'n'},
	    {"root", required_argument, NULL, 'r'},
	    {"uninstall", no_argument, NULL, 'U'},
	    {"purge", no_argument, NULL, 'P'},
	    {"repair", no_argument, NULL, 'R'},
	    {"apply-firewall", no_argument, NULL, 'F'},
	    {"trust-unpinned", no_argument, NULL, 't'},
	    {"live", no_argument, NULL, 'L'},
	    {NULL, 0, NULL, 0},
	};
	struct apply_opts ao = {.root = "", .progress = progress};
	bool unattended = false, dry_run = false, do_uninstall = false;
	bool repair = false, firewall = false, trust = false;
	const char *answers_file = NULL;
	struct answers a;
	struct facts f;
	struct plan *p;
	struct manifest *m;
	struct nl_bridge_info bi;
	char *text, *err = NULL, *mpath;
	int ch, rc;

	log_init("guardian-vm-setup", 0);
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("guardian-vm-setup %s\n", SETUP_VERSION);
			return EXIT_OK;
		case 'u':
			unattended = true;
			break;
		case 'a':
			answers_file = optarg;
			break;
		case 'n':
			dry_run = true;
			break;
		case 'r':
			if (optarg[0] != '/') {
				fprintf(stderr,
				    "guardian-vm-setup: --root "
				    "needs an absolute path\n");
				return EXIT_USAGE;
			}
			ao.root = optarg;
			ao.files_only = true;
			break;
		case 'U':
			do_uninstall = true;
			break;
		case 'P':
			ao.purge = true;
			break;
		case 'R':
			repair = true;
			break;
		case 'F':
			firewall = true;
			break;
		case 't':
			trust = true;
			break;
		case 'L':
			ao.live = true;
			break;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || (ao.purge && !do_uninstall) ||
	    do_uninstall + repair + firewall > 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(ao.root, "/") == 0)
		ao.root = "";
	if (ao.live && ao.root[0] == '\0') {
		fprintf(stderr, "guardian-vm-setup: --live goes with --root\n");
		return EXIT_USAGE;
	}
	if (ao.live)
		ao.files_only = false;
	ao.skip_apt = getenv("GVM_SETUP_SKIP_APT") != NULL &&
	    strcmp(getenv("GVM_SETUP_SKIP_APT"), "1") == 0;
	if (!dry_run && (ao.root[0] == '\0' || ao.live) && geteuid() != 0) {
		fprintf(stderr,
		    "guardian-vm-setup: run as root (or try "
		    "--dry-run)\n");
		return EXIT_NOT_ROOT;
	}
	if (firewall)
		return apply_firewall(ao.root);
	if (do_uninstall)
		return uninstall(&ao);

	answers_init(&a);
	if (repair) {
		if (load_saved(ao.root, &a) == -1)
			return EXIT_FAILED;
		unattended = true;
	} else if (answers_file != NULL &&
	    answers_load(&a, answers_file, &err) == -1) {
		fprintf(stderr, "guardian-vm-setup: %s\n", err);
		free(err);
		answers_clear(&a);
		return EXIT_USAGE;
	}
	if (!repair && answers_from_env(&a, env_get, &err) == -1) {
		fprintf(stderr, "guardian-vm-setup: %s\n", err);
		free(err);
		answers_clear(&a);
		return EXIT_USAGE;
	}
	if (trust)
		a.trust_unpinned = TRI_YES;

	facts_read(ao.root,
	    a.storage_dir != NULL ? a.storage_dir : GVM_STORAGE_DEFAULT, &f);
	if ((ao.root[0] == '\0' || ao.live) &&
	    nl_bridge_inspect(a.bridge != NULL ? a.bridge : "br0", &bi, &err) ==
		0) {
		f.bridge_exists = bi.exists;
		if (bi.exists && bi.naddrs > 0)
			snprintf(f.bridge_addr, sizeof(f.bridge_addr), "%s",
			    bi.addrs[0]);
	} else if (err != NULL) {
		fprintf(stderr, "guardian-vm-setup: bridge: %s\n", err);
		free(err);
		err = NULL;
	}
	/* On a terminal, the guided screens (also for --dry-run and --root). */
	if (!unattended && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)) {
		rc = ui_run(&f, &a, &ao, dry_run);
		answers_clear(&a);
		return rc;
	}
	p = plan_build(&f, &a);
	answers_clear(&a);
	if (repair && p->verdict == 0 && plan_only(p, "guardian") == -1) {
		printf("nothing to repair: Guardian is not installed here "
		       "(the Guardian integration is its only step)\n");
		plan_free(p);
		return EXIT_OK;
	}
	text = plan_text(p);
	fputs(text, stdout);
	free(text);
	if (dry_run || p->verdict != 0 || p->nsteps == 0) {
		if (dry_run && p->verdict == 0)
			printf("\ndry run: nothing was changed\n");
		rc = p->verdict;
		plan_free(p);
		return rc;
	}
	printf("\n");
	xasprintf(&mpath, "%s" GVM_MANIFEST, ao.root);
	if ((m = manifest_load(mpath, &err)) == NULL) {
		fprintf(stderr, "guardian-vm-setup: %s\n", err);
		free(err);
		free(mpath);
		plan_free(p);
		return EXIT_FAILED;
	}
	rc = EXIT_OK;
	if (steps_apply(p, m, &ao, &err) == -1) {
		fprintf(stderr, "guardian-vm-setup: %s\n", err);
		free(err);
		rc = EXIT_FAILED;
	} else
		printf("\ndone.  Undo everything with: guardian-vm-setup "
		       "--uninstall%s%s\n",
		    ao.root[0] != '\0' ? " --root " : "", ao.root);
	manifest_free(m);
	free(mpath);
	plan_free(p);
	return rc;
}
