/*
 * The guided screens of guardian-vm-setup: welcome, host check, storage,
 * plan (with the consent question for the DHCP pool), progress, Home
 * Assistant and summary.  This is the only file that includes curses, and
 * it decides nothing: facts come from facts.c, the storage list from
 * storage.c, the RAM table from budget.c, every change from plan.c, and
 * the changes are made by steps.c, whose progress callback redraws the
 * progress screen.  Keyboard only; 80x24 and up, resized at any time;
 * readable on a monochrome terminal (the words carry the meaning, colour
 * and attributes only stress them).  Every screen has a way back (Esc) or
 * out (q); Ctrl-C restores the terminal and exits 130.
 */
#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common.h"
#include "setup.h"

#define UI_MIN_COLS 60
#define UI_MIN_LINES 16
#define UI_LOG "/var/log/guardian-vm-setup.log"

enum uiscr {
	SCR_WELCOME,
	SCR_HOST,
	SCR_STORAGE,
	SCR_PLAN,
	SCR_PROGRESS,
	SCR_DEPLOY,
	SCR_SUMMARY,
	SCR_N
};
static const char *screen_name[SCR_N] = {"Welcome", "Host check", "Storage",
    "Plan", "Progress", "Home Assistant", "Summary"};

enum act { ACT_BACK, ACT_NEXT, ACT_INSTALL, ACT_DEPLOY, ACT_QUIT, ACT_EXIT };

/* The Home Assistant screen's deploy. */
enum dstate { D_IDLE, D_RUNNING, D_OK, D_FAILED };
struct button {
	const char *label;
	enum act act;
};

enum sstate { ST_PENDING, ST_RUNNING, ST_OK, ST_FAILED, ST_DRY };
struct stepstat {
	enum sstate st;
	int pct; /* apt's, -1: none */
	char msg[200]; /* the step's last message */
};

struct uline {
	char *text;
	int attr;
};

struct ui {
	struct facts f;
	struct answers *a;
	struct apply_opts ao;
	bool dry_run;
	enum tri shrink_given; /* GVM_SHRINK_POOL as given */

	enum uiscr scr;
	size_t focus; /* button */
	bool want_default; /* focus the screen's forward button */
	int top; /* first content line shown */
	char flash[200]; /* one-line notice until the next key */

	struct storage_list sl;
	char *sl_err;
	long sel; /* chosen storage entry, -1: none */
	char *storage_dir;

	struct plan *plan;
	bool consent_needed; /* PLAN assumes a yes to shrinking the pool */
	bool asking; /* the pool consent dialog is up */
	size_t dfocus;

	/* Home Assistant: the image (template file), the consent, the job */
	struct deploy_image img;
	char *img_err;
	bool img_loaded;
	bool asking_tofu; /* the trust-on-first-use question is up */
	size_t tfocus;
	bool trusted; /* consent given (on screen or --trust-unpinned) */
	enum dstate dst;
	int dpct;
	char dmsg[200];
	char *derr;

	bool applied, walked; /* apply ran; dry run reached progress */
	int apply_rc;
	char *apply_err;
	struct stepstat *ss;
	size_t nss;
	char logpath[256];
	int save_fd[3]; /* stdin/out/err while apply's are redirected */
	int tty_fd; /* the screens' output, for its size */

	struct uline *lines; /* the screen's content, wrapped */
	size_t nlines, cap;
	int width;
	int keep; /* a line to keep in view, -1 */

	struct button btn[4];
	size_t nbtn;
	int a_title, a_ok, a_warn, a_bad, a_head, a_dim;
};

static volatile sig_atomic_t ui_sig;

static void
ui_on_signal(int sig)
{
	ui_sig = sig;
}

/* ---- content: lines, wrapped to the screen width --------------------- */

static void
ui_line_add(struct ui *u, const char *s, size_t n, int attr)
{
	struct uline *l;

	if (u->nlines == u->cap) {
		u->cap = u->cap ? u->cap * 2 : 64;
		u->lines = xreallocarray(u->lines, u->cap, sizeof(*u->lines));
	}
	l = &u->lines[u->nlines++];
	l->text = xstrndup(s, n);
	l->attr = attr;
}

/* Wraps at blanks; continuation lines keep the indent (a list item's
 * text lines up after its "- "). */
static void
ui_wrap(struct ui *u, const char *s, int attr)
{
	size_t ind = strspn(s, " "), w = u->width, len, cut;
	const char *p = s;
	char *buf;
	bool first = true;

	if (w < 20)
		w = 20;
	for (;;) {
		size_t pre = first
		    ? 0
		    : ind + (s[ind] == '-' && s[ind + 1] == ' ' ? 2 : 0);
		size_t room = w > pre + 10 ? w - pre : 10;

		len = strlen(p);
		cut = len;
		if (len > room) {
			cut = room;
			while (cut > 0 && p[cut] != ' ')
				cut--;
			if (cut <= ind)
				cut = room;
		}
		xasprintf(&buf, "%*s%.*s", (int)pre, "", (int)cut, p);
		ui_line_add(u, buf, strlen(buf), attr);
		free(buf);
		p += cut;
		if (*p == '\0')
			break;
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		first = false;
	}
}

static void ui_put(struct ui *u, int attr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void
ui_put(struct ui *u, int attr, const char *fmt, ...)
{
	va_list ap;
	char *s, *line, *next;

	va_start(ap, fmt);
	xvasprintf(&s, fmt, ap);
	va_end(ap);
	for (line = s; line != NULL; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		ui_wrap(u, line, attr);
	}
	free(s);
}

static void
ui_lines_clear(struct ui *u)
{
	size_t i;

	for (i = 0; i < u->nlines; i++)
		free(u->lines[i].text);
	u->nlines = 0;
}

static void
ui_buttons(struct ui *u, ...)
{
	va_list ap;
	const char *label;

	u->nbtn = 0;
	va_start(ap, u);
	while ((label = va_arg(ap, const char *)) != NULL &&
	    u->nbtn < nitems(u->btn)) {
		u->btn[u->nbtn].label = label;
		u->btn[u->nbtn].act = va_arg(ap, int);
		u->nbtn++;
	}
	va_end(ap);
	if (u->focus >= u->nbtn)
		u->focus = u->nbtn - 1;
}

/* Focus the button doing ACT (the screen's default). */
static void
ui_focus(struct ui *u, enum act act)
{
	size_t i;

	for (i = 0; i < u->nbtn; i++)
		if (u->btn[i].act == act)
			u->focus = i;
}

static void
ui_go(struct ui *u, enum uiscr s)
{
	u->scr = s;
	u->top = 0;
	u->want_default = true;
}

/* ---- the plan, rebuilt whenever an answer changes -------------------- */

static void
ui_replan(struct ui *u)
{
	plan_free(u->plan);
	if (u->storage_dir != NULL) {
		free(u->a->storage_dir);
		u->a->storage_dir = xstrdup(u->storage_dir);
	}
	if (u->sel >= 0)
		u->f.storage_free_mb = u->sl.fs[u->sel].free_mb;
	u->plan = plan_build(&u->f, u->a);
	/*
	 * Without an answer about the pool, plan.c stops before listing
	 * the steps: show the plan as it would be with consent, and ask
	 * on Install.
	 */
	u->consent_needed = u->plan->verdict == EXIT_NEEDS_CONSENT &&
	    u->plan->vb.shrink && u->a->shrink_pool == TRI_UNSET;
	if (u->consent_needed) {
		u->a->shrink_pool = TRI_YES;
		plan_free(u->plan);
		u->plan = plan_build(&u->f, u->a);
		u->a->shrink_pool = TRI_UNSET;
	}
}

static bool
ui_blocked(const struct ui *u)
{
	return u->plan->verdict != 0 || u->plan->nsteps == 0;
}

static bool
ui_needs_consent(const struct ui *u)
{
	return u->consent_needed;
}

/* ---- screens: each fills the lines and the buttons ------------------- */

static void
scr_welcome(struct ui *u)
{
	ui_put(u, u->a_head, "Welcome to Guardian VMs");
	ui_put(u, 0, "%s", "");
	ui_put(u, 0,
	    "This sets up virtual machines on this host: QEMU/KVM and UEFI "
	    "firmware, libvirt, the bridge VMs join, DHCP reservations for "
	    "them in dnsmasq, a firewall that keeps VMs away from the host's "
	    "management ports, and the vmmod service behind the dashboard.");
	ui_put(u, 0, "%s", "");
	ui_put(u, 0,
	    "The next screens check this host, ask where VM disks should "
	    "live and show every change before anything is made.  Nothing "
	    "changes until you choose Install on the plan screen, and "
	    "everything can be undone with: guardian-vm-setup --uninstall");
	ui_put(u, 0, "%s", "");
	if (u->dry_run)
		ui_put(u, u->a_warn,
		    "DRY RUN (--dry-run): you can walk through every screen; "
		    "nothing will be applied.");
	if (u->ao.root[0] != '\0')
		ui_put(u, u->a_warn,
		    "--root %s: files are staged under that directory; "
		    "packages, users, the network and services are skipped.",
		    u->ao.root);
	ui_buttons(u, "Next", ACT_NEXT, "Quit", ACT_QUIT, NULL);
}

static void
scr_host(struct ui *u)
{
	const struct facts *f = &u->f;
	struct budget b;
	char ram[64];
	size_t i;

	budget_table(f->ram_mb, f->guardian, &b);
	ui_put(u, u->a_head, "Host check");
	ui_put(u, 0, "%s", "");
	ui_put(u, f->arch != ARCH_OTHER ? 0 : u->a_bad,
	    "  Architecture  %-40s %s", f->machine,
	    f->arch != ARCH_OTHER ? "ok" : "NOT SUPPORTED");
	snprintf(ram, sizeof(ram), "%llu MiB%s", (unsigned long long)f->ram_mb,
	    f->guardian ? " (Guardian needs 6 GB)" : "");
	ui_put(u, b.gate_ok ? 0 : u->a_bad, "  RAM           %-40s %s", ram,
	    b.gate_ok ? "ok" : "BELOW 6 GB");
	ui_put(u, f->kvm_usable ? 0 : u->a_warn, "  KVM           %-40s %s",
	    f->kvm_usable ? "usable" : "not usable: VMs run emulated (TCG)",
	    f->kvm_usable ? "ok" : "warning");
	ui_put(u, 0, "                (%s)", f->kvm_note);
	ui_put(u, 0, "  Guardian      %-40s",
	    f->guardian		     ? "installed (tier guardian)"
		: f->tier[0] != '\0' ? "no (another hookprobe tier)"
				     : "not installed: a standalone host");
	ui_put(u, 0, "  systemd       %-40s",
	    f->systemd ? "PID 1" : "not PID 1 (daemons started directly)");
	ui_put(u, 0, "%s", "");
	ui_put(u, u->a_head, "  %-32s %10s  %-8s", "RAM budget", "RAM", "Disk");
	for (i = 0; i < b.n; i++)
		ui_put(u, b.rows[i].vm && !b.rows[i].fits ? u->a_warn : 0,
		    "  %-32s %6llu MiB  %-8s %s", b.rows[i].what,
		    (unsigned long long)b.rows[i].ram_mb, b.rows[i].disk,
		    !b.rows[i].vm	 ? ""
			: b.rows[i].fits ? "fits"
					 : "does not fit");
	ui_put(u, 0, "  RAM for VMs: %llu MiB of %llu MiB",
	    (unsigned long long)b.vm_mb, (unsigned long long)f->ram_mb);
	ui_put(u, 0, "%s", "");
	if (ui_blocked(u)) {
		ui_put(u, u->a_bad, "Cannot install: %s",
		    u->plan->verdict_msg != NULL ? u->plan->verdict_msg
						 : "nothing to do");
		ui_buttons(u, "Back", ACT_BACK, "Quit", ACT_QUIT, NULL);
	} else {
		ui_put(u, u->a_ok, "This host can run VMs.");
		ui_buttons(u, "Back", ACT_BACK, "Next", ACT_NEXT, "Quit",
		    ACT_QUIT, NULL);
	}
}

static void
scr_storage(struct ui *u)
{
	size_t i;
	char free_s[32];

	ui_put(u, u->a_head, "Storage: where VM disks live");
	ui_put(u, 0,
	    "A Home Assistant disk grows to 32 GB.  An SSD is faster and "
	    "lasts longer than the SD card.  Up/Down chooses.");
	ui_put(u, 0, "%s", "");
	ui_put(u, u->a_head, "   %-24s %-14s %-8s %12s", "Mounted on", "Device",
	    "Media", "Free");
	for (i = 0; i < u->sl.n; i++) {
		const struct storage_fs *fs = &u->sl.fs[i];
		char line[256];

		snprintf(
		    free_s, sizeof(free_s), "%.1f GB", fs->free_mb / 1024.0);
		snprintf(line, sizeof(line), "%s %-24.24s %-14.14s %-8s %12s%s",
		    (long)i == u->sel ? ">>" : "  ", fs->dir,
		    fs->dev + (str_has_prefix(fs->dev, "/dev/") ? 5 : 0),
		    storage_media_name(fs->media), free_s,
		    i == 0 ? "  recommended" : "");
		if ((long)i == u->sel)
			u->keep = (int)u->nlines;
		ui_line_add(u, line, strlen(line),
		    (long)i == u->sel ? (int)A_REVERSE : 0);
	}
	if (u->sl.n == 0)
		ui_put(u, u->a_warn,
		    "  No mounted Linux filesystem found%s%s; the default "
		    "directory is used.",
		    u->sl_err != NULL ? ": " : "",
		    u->sl_err != NULL ? u->sl_err : "");
	ui_put(u, 0, "%s", "");
	ui_put(u, 0, "VM disks go to: %s",
	    u->storage_dir != NULL ? u->storage_dir : GVM_STORAGE_DEFAULT);
	if (u->sel >= 0) {
		const struct storage_fs *fs = &u->sl.fs[u->sel];

		if (!fs->fits)
			ui_put(u, u->a_warn,
			    "warning: %.1f GB free there is less than a 32 GB "
			    "Home Assistant disk and its image need (%d GB).",
			    fs->free_mb / 1024.0, STORAGE_HA_MB / 1024);
		if (fs->media == MEDIA_SD)
			ui_put(u, u->a_warn,
			    "warning: this is the SD card; an SSD is better "
			    "for VM disks.");
	}
	ui_buttons(
	    u, "Back", ACT_BACK, "Next", ACT_NEXT, "Quit", ACT_QUIT, NULL);
}

static void
scr_plan(struct ui *u)
{
	char *text = plan_text(u->plan), *line, *next;
	bool install = !ui_blocked(u);

	ui_put(u, u->a_head, "The plan: every change, in order%s",
	    u->dry_run ? " (dry run: none will be made)" : "");
	ui_put(u, 0, "%s", "");
	if (!install)
		ui_put(u, u->a_bad, "Cannot install: %s\n",
		    u->plan->verdict_msg != NULL ? u->plan->verdict_msg
						 : "nothing to do");
	if (ui_needs_consent(u))
		ui_put(u, u->a_warn,
		    "This plan gives VMs the top of the DHCP pool, which needs "
		    "your consent: %s asks for it first.\n",
		    u->dry_run ? "Continue" : "Install");
	for (line = text; line != NULL && *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		ui_wrap(u, line,
		    strstr(line, "warning") != NULL ||
			    strstr(line, "not implemented") != NULL
			? u->a_warn
			: str_has_prefix(line, "step ")		 ? u->a_head
			: str_has_prefix(line, "cannot install") ? u->a_bad
								 : 0);
	}
	free(text);

	if (install)
		ui_buttons(u, "Back", ACT_BACK,
		    u->dry_run ? "Continue" : "Install", ACT_INSTALL, "Quit",
		    ACT_QUIT, NULL);
	else
		ui_buttons(u, "Back", ACT_BACK, "Quit", ACT_QUIT, NULL);
}

static void
ui_bar(struct ui *u, int pct, const char *msg)
{
	char bar[41];
	int n = pct * 30 / 100, i;

	for (i = 0; i < 30; i++)
		bar[i] = i < n ? '#' : '.';
	bar[30] = '\0';
	ui_put(u, 0, "         [%s] %3d%% %s", bar, pct, msg);
}

/* A step with a change this release cannot make (plan.c says which). */
static bool
ui_step_partial(const struct ui *u, size_t i)
{
	size_t j;

	for (j = 0; j < u->plan->steps[i].nchanges; j++)
		if (!u->plan->steps[i].changes[j].implemented)
			return true;
	return false;
}

static void
scr_progress(struct ui *u)
{
	static const char *mark[] = {
	    "[    ]", "[ .. ]", "[ ok ]", "[FAIL]", "[skip]"};
	size_t i, nparts = 0;

	if (u->dry_run)
		ui_put(u, u->a_warn,
		    "DRY RUN: nothing was applied.  An install would run "
		    "these steps:");
	else
		ui_put(u, u->a_head, "Installing%s%s",
		    u->ao.root[0] ? " under " : "", u->ao.root);
	ui_put(u, 0, "%s", "");
	for (i = 0; i < u->nss && i < u->plan->nsteps; i++) {
		const struct stepstat *s = &u->ss[i];
		bool part = s->st == ST_OK && ui_step_partial(u, i);

		nparts += part;
		ui_put(u,
		    part		      ? u->a_warn
			: s->st == ST_OK      ? u->a_ok
			: s->st == ST_FAILED  ? u->a_bad
			: s->st == ST_RUNNING ? (int)A_BOLD
					      : 0,
		    "%s %zu/%zu %-9s %s", part ? "[part]" : mark[s->st], i + 1,
		    u->plan->nsteps, u->plan->steps[i].id,
		    u->plan->steps[i].title);
		if (s->st == ST_RUNNING && s->pct > 0 && s->pct < 100)
			ui_bar(u, s->pct, s->msg);
		else if (s->msg[0] != '\0' && s->st != ST_DRY)
			ui_put(u, u->a_dim, "         %s", s->msg);
		if (s->st == ST_RUNNING)
			u->keep = (int)u->nlines - 1;
	}
	ui_put(u, 0, "%s", "");
	if (u->dry_run) {
		ui_put(u, 0,
		    "Run guardian-vm-setup without --dry-run to install.");
		ui_buttons(u, "Back", ACT_BACK, "Next", ACT_NEXT, "Quit",
		    ACT_QUIT, NULL);
	} else if (!u->applied) {
		ui_put(u, (int)A_BOLD, "Working ...");
		u->nbtn = 0;
	} else if (u->apply_rc == 0) {
		ui_put(u, u->a_ok, "Done: no step failed.");
		if (nparts > 0)
			ui_put(u, u->a_warn,
			    "[part]: done but for what this release cannot do "
			    "yet (NOT IMPLEMENTED above; listed in the summary).");
		if (u->logpath[0] != '\0')
			ui_put(u, 0, "Log: %s", u->logpath);
		ui_buttons(u, "Next", ACT_NEXT, "Quit", ACT_QUIT, NULL);
	} else {
		ui_put(u, u->a_bad, "FAILED: %s",
		    u->apply_err != NULL ? u->apply_err : "see the log");
		if (u->logpath[0] != '\0')
			ui_put(u, 0, "Log: %s", u->logpath);
		ui_buttons(u, "Next", ACT_NEXT, "Quit", ACT_QUIT, NULL);
	}
}

static void
ui_urls(struct ui *u)
{
	char self[16];

	if (u->plan->bridge == NULL)
		return;
	plan_ip4_format(u->plan->net.addr, self);
	if (u->plan->guardian)
		ui_put(u, 0, "  Guardian dashboard:  https://%s:8080", self);
	else
		ui_put(u, 0,
		    "  vmmod: unix socket /run/vmmod/vmmod.sock; its own web "
		    "pages need a listen = line in /etc/vmmod/vmmod.conf "
		    "(vmmod.conf(5))");
	if (u->plan->console_port != 0)
		ui_put(u, 0,
		    "  VM consoles:         https://%s:%u (opened from "
		    "the dashboard)",
		    self, u->plan->console_port);
}

static const char *
ui_arch(const struct ui *u)
{
	return u->f.arch == ARCH_ARM64 ? "aarch64" : "x86_64";
}

/* The template's image as shipped (URL, version, note): read once. */
static void
ui_image(struct ui *u)
{
	if (u->img_loaded)
		return;
	u->img_loaded = true;
	if (deploy_template_image(u->f.datadir, GVM_HA_TEMPLATE, ui_arch(u),
		&u->img, &u->img_err) == -1)
		memset(&u->img, 0, sizeof(u->img));
}

static void
scr_deploy(struct ui *u)
{
	char *blk = u->plan->vb.block.hi != 0
	    ? plan_range_format(&u->plan->vb.block)
	    : xstrdup("the VM block");

	ui_image(u);
	ui_put(u, u->a_head, "Deploy Home Assistant now?");
	ui_put(u, 0,
	    "Home Assistant OS%s%s for %s from vmmod's template '" GVM_HA_TEMPLATE
	    "': a VM named '" GVM_HA_NAME "' with its disk "
	    "in %s, an address from %s, autostarted with the host.",
	    u->img.version != NULL ? " " : "",
	    u->img.version != NULL ? u->img.version : "", ui_arch(u),
	    u->plan->storage_dir, blk);
	free(blk);
	if (u->dry_run)
		ui_put(u, u->a_warn,
		    "DRY RUN: Deploy now asks the same questions, then shows "
		    "a SIMULATED job (fake progress): vmmod is not asked and "
		    "nothing is downloaded.");
	ui_put(u, 0, "%s", "");
	switch (u->dst) {
	case D_IDLE:
		ui_put(u, 0,
		    "Deploy now: vmmod downloads the image%s and starts the VM; "
		    "the job's progress shows here.  Skip: deploy it later "
		    "from the dashboard.",
		    u->img.pinned ? " (pinned by SHA-256)"
				  : " (not pinned: you are asked first)");
		ui_buttons(u, "Back", ACT_BACK, "Deploy now", ACT_DEPLOY,
		    "Skip", ACT_NEXT, "Quit", ACT_QUIT, NULL);
		break;
	case D_RUNNING:
		ui_put(u, (int)A_BOLD, "[ .. ] Deploying Home Assistant%s ...",
		    u->dry_run ? " (simulated)" : "");
		ui_bar(u, u->dpct, u->dmsg);
		u->nbtn = 0;
		break;
	case D_OK:
		ui_put(u, u->a_ok, "[ ok ] Home Assistant deployed%s",
		    u->dry_run ? " (simulated: nothing was made)" : "");
		ui_bar(u, 100, u->dmsg);
		ui_put(u, 0, "%s", "");
		ui_urls(u);
		ui_buttons(u, "Next", ACT_NEXT, "Quit", ACT_QUIT, NULL);
		break;
	case D_FAILED:
		ui_put(u, u->a_bad, "[FAIL] %s",
		    u->derr != NULL ? u->derr : "the deploy failed");
		ui_put(u, 0,
		    "Try again, or Skip and deploy it from the dashboard "
		    "later.");
		ui_buttons(u, "Back", ACT_BACK, "Try again", ACT_DEPLOY, "Skip",
		    ACT_NEXT, "Quit", ACT_QUIT, NULL);
		break;
	}
}

static void
scr_summary(struct ui *u)
{
	const struct plan *p = u->plan;
	char self[16], *t;
	size_t i, j;

	if (u->dry_run)
		ui_put(u, u->a_warn, "Dry run: nothing was changed.");
	else if (u->apply_rc == 0)
		ui_put(u, u->a_ok, "VM support is installed%s%s.",
		    u->ao.root[0] ? " under " : "", u->ao.root);
	else
		ui_put(u, u->a_bad,
		    "The install failed; the failed step was undone.");
	ui_put(u, 0, "%s", "");
	if (p->bridge != NULL && p->have_pool) {
		plan_ip4_format(p->net.addr, self);
		ui_put(u, 0, "  Bridge:        %s %s/%u", p->bridge, self,
		    p->net.prefix);
		t = plan_range_format(&p->vb.block);
		ui_put(u, 0, "  VM addresses:  %s, names under " GVM_DOMAIN, t);
		free(t);
		t = plan_range_format(&p->pool);
		ui_put(u, 0, "  DHCP pool:     %s", t);
		free(t);
	}
	ui_put(u, 0, "  VM disks:      %s", p->storage_dir);
	if (u->dst == D_OK || u->dst == D_FAILED)
		ui_put(u, u->dst == D_OK ? u->a_ok : u->a_bad,
		    "  Home Assistant: %s%s",
		    u->dst == D_OK ? "deployed" : "not deployed: ",
		    u->dst == D_OK ? (u->dry_run ? " (simulated)" : "")
				   : u->derr);
	ui_put(u, 0, "%s", "");
	if (!u->applied || u->apply_rc == 0) {
		ui_put(u, u->a_head, "Where to go");
		ui_urls(u);
	} else
		ui_put(u, 0,
		    "The steps before it stay done: fix the cause and run "
		    "guardian-vm-setup again, or undo them.");
	ui_put(u, 0, "%s", "");
	ui_put(u, u->a_head, "How to undo");
	ui_put(u, 0, "  guardian-vm-setup --uninstall%s%s",
	    u->ao.root[0] ? " --root " : "", u->ao.root);
	ui_put(u, 0,
	    "  (every change is in %s" GVM_MANIFEST
	    "; your VMs and their disks are kept unless --purge)",
	    u->ao.root);
	if (u->logpath[0] != '\0')
		ui_put(u, 0, "  Log: %s", u->logpath);
	for (i = 0, t = NULL; i < p->nsteps; i++)
		for (j = 0; j < p->steps[i].nchanges; j++)
			if (!p->steps[i].changes[j].implemented) {
				if (t == NULL) {
					ui_put(u, 0, "%s", "");
					ui_put(u, u->a_warn,
					    "Not done by this release:");
					t = "";
				}
				ui_put(u, 0, "  - %s",
				    p->steps[i].changes[j].desc);
			}
	ui_buttons(u, "Back", ACT_BACK, "Exit", ACT_EXIT, NULL);
}

static void (*const screens[SCR_N])(struct ui *) = {scr_welcome, scr_host,
    scr_storage, scr_plan, scr_progress, scr_deploy, scr_summary};

/* ---- drawing ------------------------------------------------------- */

static int
ui_height(void)
{
	return LINES - 5;
}

static void
ui_clamp(struct ui *u)
{
	int h = ui_height(), max = (int)u->nlines - h;

	/* keep the chosen storage entry, the running step in view */
	if (u->keep >= 0) {
		if (u->keep < u->top)
			u->top = u->keep;
		if (u->keep >= u->top + h)
			u->top = u->keep - h + 1;
	}
	if (u->top > max)
		u->top = max;
	if (u->top < 0)
		u->top = 0;
}

static void
ui_draw_buttons(struct ui *u, int y)
{
	int w = 0, x;
	size_t i;

	for (i = 0; i < u->nbtn; i++)
		w += (int)strlen(u->btn[i].label) + 4 + 2;
	x = (COLS - w) / 2;
	if (x < 0)
		x = 0;
	for (i = 0; i < u->nbtn; i++) {
		bool f = i == u->focus && !u->asking && !u->asking_tofu;

		if (f)
			attron((int)A_REVERSE | (int)A_BOLD);
		mvprintw(y, x, "%s %s %s", f ? ">" : "[", u->btn[i].label,
		    f ? "<" : "]");
		if (f)
			attroff((int)A_REVERSE | (int)A_BOLD);
		x += (int)strlen(u->btn[i].label) + 4 + 2;
	}
}

/* The pool consent question's text. */
static void
ui_fill_pool(struct ui *u)
{
	char *old = plan_range_format(&u->plan->old_pool);
	char *np = plan_range_format(&u->plan->vb.new_pool);
	char *blk = plan_range_format(&u->plan->vb.block);

	ui_put(u, 0,
	    "VM addresses must lie inside %s's subnet and outside the DHCP "
	    "pool, and the pool fills the subnet.",
	    u->plan->bridge);
	ui_put(u, 0, "%s", "");
	ui_put(u, (int)A_BOLD,
	    "Give VMs the top of the DHCP pool?  dhcp-range %s becomes %s; "
	    "VMs get %s.",
	    old, np, blk);
	ui_put(u, 0, "%s", "");
	ui_put(u, 0,
	    "Devices holding a lease up there keep it until it expires.  "
	    "--uninstall restores the pool.  y: yes  n: no  Esc: back to the "
	    "plan");
	free(old);
	free(np);
	free(blk);
}

/* The trust-on-first-use question's text. */
static void
ui_fill_tofu(struct ui *u)
{
	ui_put(u, 0, "vmmod would download Home Assistant OS%s%s for %s from:",
	    u->img.version != NULL ? " " : "",
	    u->img.version != NULL ? u->img.version : "", ui_arch(u));
	ui_put(u, (int)A_BOLD, "  %s",
	    u->img.url != NULL ? u->img.url
			       : "(the address in vmmod's template "
				 "'" GVM_HA_TEMPLATE "')");
	ui_put(u, 0, "%s", "");
	ui_put(u, 0,
	    "No SHA-256 checksum is published for it, so nothing can prove "
	    "this first download genuine.  vmmod computes its SHA-256 and "
	    "pins it: later downloads must match (trust on first use).");
	ui_put(u, 0, "%s", "");
	ui_put(u, (int)A_BOLD,
	    "Trust this download and deploy?  y: yes  n: no  Esc: back");
}

/* A yes/no question in a box over the screen; FILL writes its text. */
static void
ui_draw_box(struct ui *u, const char *title, void (*fill)(struct ui *),
    const char *const labels[2], size_t focus)
{
	struct uline *save = u->lines;
	size_t nsave = u->nlines, csave = u->cap, i, n;
	int w = COLS - 8 > 70 ? 70 : COLS - 8, h, y0, x0, x;
	int wsave = u->width;

	/* wrap the text with the content machinery, then restore it */
	u->lines = NULL;
	u->nlines = u->cap = 0;
	u->width = w - 4;
	fill(u);
	n = u->nlines;
	if ((int)n + 6 > LINES - 2) /* a small terminal: what fits */
		n = LINES - 8 > 0 ? (size_t)(LINES - 8) : 0;
	h = (int)n + 6;
	y0 = (LINES - h) / 2;
	x0 = (COLS - w) / 2;
	if (y0 < 1)
		y0 = 1;
	for (i = 0; i < (size_t)h; i++)
		mvhline(y0 + (int)i, x0, ' ', w);
	attron((int)A_BOLD);
	mvhline(y0, x0, '-', w);
	mvhline(y0 + h - 1, x0, '-', w);
	mvvline(y0, x0, '|', h);
	mvvline(y0, x0 + w - 1, '|', h);
	mvprintw(y0, x0 + 2, " %s ", title);
	attroff((int)A_BOLD);
	for (i = 0; i < n; i++) {
		if (u->lines[i].attr)
			attron(u->lines[i].attr);
		mvaddnstr(y0 + 2 + (int)i, x0 + 2, u->lines[i].text, w - 4);
		if (u->lines[i].attr)
			attroff(u->lines[i].attr);
	}
	x = x0 + 4;
	for (i = 0; i < 2; i++) {
		bool f = i == focus;

		if (f)
			attron((int)A_REVERSE | (int)A_BOLD);
		mvprintw(y0 + h - 3, x, "%s %s %s", f ? ">" : "[", labels[i],
		    f ? "<" : "]");
		if (f)
			attroff((int)A_REVERSE | (int)A_BOLD);
		x += (int)strlen(labels[i]) + 8;
	}
	ui_lines_clear(u);
	free(u->lines);
	u->lines = save;
	u->nlines = nsave;
	u->cap = csave;
	u->width = wsave;
}

static void
ui_draw_dialog(struct ui *u)
{
	static const char *const pool[] = {"Yes, shrink the pool", "No"};
	static const char *const tofu[] = {"Yes, trust and deploy", "No"};

	if (u->asking)
		ui_draw_box(u, "Consent needed: the DHCP pool", ui_fill_pool,
		    pool, u->dfocus);
	else if (u->asking_tofu)
		ui_draw_box(u,
		    "Consent needed: an image without a published checksum",
		    ui_fill_tofu, tofu, u->tfocus);
}

static void
ui_draw(struct ui *u)
{
	int h, y, i;
	char right[300];

	erase();
	if (COLS < UI_MIN_COLS || LINES < UI_MIN_LINES) {
		mvprintw(0, 0, "Terminal too small (%dx%d):", COLS, LINES);
		mvprintw(1, 0, "needs %dx%d.", UI_MIN_COLS, UI_MIN_LINES);
		mvprintw(2, 0, "Resize, or q quits.");
		refresh();
		return;
	}
	u->width = COLS - 4;
	u->keep = -1;
	ui_lines_clear(u);
	screens[u->scr](u);
	if (u->want_default && u->nbtn > 0) {
		u->want_default = false;
		ui_focus(u, ACT_QUIT);
		ui_focus(u, ACT_EXIT);
		ui_focus(u, ACT_INSTALL);
		ui_focus(u, ACT_NEXT);
	}
	ui_clamp(u);
	h = ui_height();

	attron(u->a_title);
	mvhline(0, 0, ' ', COLS);
	mvprintw(0, 1, "Guardian VMs setup - %d/%d %s", (int)u->scr + 1, SCR_N,
	    screen_name[u->scr]);
	snprintf(right, sizeof(right), "%s%s%s", u->dry_run ? "DRY RUN" : "",
	    u->dry_run && u->ao.root[0] ? ", " : "",
	    u->ao.root[0] ? "--root" : "");
	if (right[0] != '\0')
		mvprintw(0, COLS - (int)strlen(right) - 2, "%s", right);
	attroff(u->a_title);

	for (i = 0; i < h && u->top + i < (int)u->nlines; i++) {
		const struct uline *l = &u->lines[u->top + i];

		if (l->attr)
			attron(l->attr);
		mvaddnstr(2 + i, 2, l->text, COLS - 3);
		if (l->attr)
			attroff(l->attr);
	}
	y = LINES - 3;
	if (u->flash[0] != '\0') {
		attron((int)A_BOLD);
		mvaddnstr(y, 2, u->flash, COLS - 3);
		attroff((int)A_BOLD);
	} else if ((int)u->nlines > h) {
		snprintf(right, sizeof(right),
		    "lines %d-%d of %zu (Up/Down/PgUp/PgDn)", u->top + 1,
		    u->top + h > (int)u->nlines ? (int)u->nlines : u->top + h,
		    u->nlines);
		attron((int)A_BOLD);
		mvprintw(y, COLS - (int)strlen(right) - 2, "%s", right);
		attroff((int)A_BOLD);
	}
	ui_draw_buttons(u, LINES - 2);
	attron(u->a_dim);
	mvaddnstr(LINES - 1, 1,
	    u->scr == SCR_STORAGE
		? "Up/Down: filesystem  Tab/Left/Right: button  Enter: choose  "
		  "Esc: back  q: quit"
		: "Tab/Left/Right: button  Enter: choose  Esc: back  q: quit  "
		  "Up/Down: scroll",
	    COLS - 2);
	attroff(u->a_dim);
	ui_draw_dialog(u);
	refresh();
}

/*
 * The terminal's size when ncurses missed a SIGWINCH (two resizes in quick
 * succession deliver one KEY_RESIZE, read at the first size): true when
 * LINES and COLS were out of date and are now the terminal's.
 */
static bool
ui_size_sync(const struct ui *u)
{
	struct winsize ws;

	if (ioctl(u->tty_fd, TIOCGWINSZ, &ws) == -1 || ws.ws_row == 0 ||
	    ws.ws_col == 0 || (ws.ws_row == LINES && ws.ws_col == COLS))
		return false;
	resizeterm(ws.ws_row, ws.ws_col);
	return true;
}

/* ---- applying ------------------------------------------------------- */

/* Drains keys without blocking: a resize is redrawn, the rest waits. */
static void
ui_poll(struct ui *u)
{
	int ch;

	nodelay(stdscr, TRUE);
	while ((ch = getch()) != ERR)
		;
	nodelay(stdscr, FALSE);
	timeout(250);
	ui_size_sync(u);
}

static void
ui_progress(void *arg, size_t step, size_t nsteps, const char *id, int pct,
    const char *msg)
{
	struct ui *u = arg;
	struct stepstat *s;

	if (step >= u->nss)
		return;
	s = &u->ss[step];
	if (s->st == ST_PENDING && pct == 0)
		s->st = ST_RUNNING; /* the step's title */
	else if (pct == 100 && strcmp(msg, "ok") == 0)
		s->st = ST_OK;
	else {
		snprintf(s->msg, sizeof(s->msg), "%s", msg);
		if (pct >= 0)
			s->pct = pct;
	}
	ui_poll(u);
	ui_draw(u);
}

/*
 * apt-get and dpkg write to stdout/stderr and may read stdin: while the
 * steps run those go to a log (curses has its own copies of the tty).
 */
static void
ui_redirect(struct ui *u)
{
	int fd, null;

	if (u->ao.root[0] == '\0') {
		snprintf(u->logpath, sizeof(u->logpath), "%s", UI_LOG);
		fd = open(
		    UI_LOG, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	} else {
		const char *tmp = getenv("TMPDIR");

		snprintf(u->logpath, sizeof(u->logpath),
		    "%s/guardian-vm-setup.XXXXXX",
		    tmp != NULL && tmp[0] == '/' ? tmp : "/tmp");
		fd = mkostemp(u->logpath, O_CLOEXEC);
	}
	if (fd == -1) {
		snprintf(u->logpath, sizeof(u->logpath), "/dev/null");
		fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	}
	null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	fflush(stdout);
	fflush(stderr);
	u->save_fd[0] = dup(STDIN_FILENO);
	u->save_fd[1] = dup(STDOUT_FILENO);
	u->save_fd[2] = dup(STDERR_FILENO);
	if (null != -1)
		dup2(null, STDIN_FILENO);
	if (fd != -1) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
	}
	if (null != -1)
		close(null);
	if (fd != -1)
		close(fd);
}

static void
ui_unredirect(struct ui *u)
{
	int i;

	fflush(stdout);
	fflush(stderr);
	for (i = 0; i < 3; i++)
		if (u->save_fd[i] != -1) {
			dup2(u->save_fd[i], i);
			close(u->save_fd[i]);
			u->save_fd[i] = -1;
		}
}

static void
ui_apply(struct ui *u)
{
	struct manifest *m;
	char *mpath, *err = NULL;
	size_t i;

	u->ao.progress = ui_progress;
	u->ao.arg = u;
	ui_draw(u);
	ui_redirect(u);
	xasprintf(&mpath, "%s" GVM_MANIFEST, u->ao.root);
	if ((m = manifest_load(mpath, &err)) == NULL) {
		u->apply_rc = -1;
		u->apply_err = err;
	} else {
		u->apply_rc = steps_apply(u->plan, m, &u->ao, &err);
		u->apply_err = err;
		manifest_free(m);
	}
	free(mpath);
	u->applied = true;
	u->top = INT_MAX / 2; /* the result, at the end */
	for (i = 0; i < u->nss; i++)
		if (u->ss[i].st == ST_RUNNING)
			u->ss[i].st = u->apply_rc == 0 ? ST_OK : ST_FAILED;
	fprintf(stderr, "guardian-vm-setup: %s%s\n",
	    u->apply_rc == 0 ? "installed" : "failed: ",
	    u->apply_rc == 0 ? "" : u->apply_err);
}

static void
ui_start_progress(struct ui *u)
{
	size_t i;

	ui_go(u, SCR_PROGRESS);
	if (u->applied)
		return;
	free(u->ss);
	u->nss = u->plan->nsteps;
	u->ss = xcalloc(u->nss ? u->nss : 1, sizeof(*u->ss));
	for (i = 0; i < u->nss; i++) {
		u->ss[i].st = u->dry_run ? ST_DRY : ST_PENDING;
		u->ss[i].pct = -1;
	}
	if (u->dry_run) {
		u->walked = true;
		return;
	}
	ui_apply(u);
}

/* ---- Home Assistant: the deploy ------------------------------------ */

/* deploy.c's progress callback: the job's phase and percent. */
static void
ui_deploy_progress(void *arg, int pct, const char *msg)
{
	struct ui *u = arg;

	if (pct >= 0)
		u->dpct = pct > 100 ? 100 : pct;
	snprintf(u->dmsg, sizeof(u->dmsg), "%s", msg);
	ui_poll(u);
	ui_draw(u);
}

/*
 * --dry-run: the phases vmmod's job goes through, with made-up percents
 * and pauses (no vmmod, no download), so the screen can be walked.
 */
static int
ui_deploy_fake(struct ui *u)
{
	static const struct {
		int pct;
		const char *msg;
	} ph[] = {{0, "job started (simulated)"},
	    {12, "downloading (simulated)"}, {30, "downloading (simulated)"},
	    {48, "downloading (simulated)"}, {60, "verifying (simulated)"},
	    {71, "importing (simulated)"}, {77, "resizing (simulated)"},
	    {88, "defining (simulated)"}, {94, "starting (simulated)"}};
	size_t i;

	for (i = 0; i < nitems(ph) && !ui_sig; i++) {
		ui_deploy_progress(u, ph[i].pct, ph[i].msg);
		usleep(600000);
	}
	ui_deploy_progress(u, 100, "deployed (simulated)");
	return 0;
}

static void
ui_deploy_fail(struct ui *u, char *err)
{
	free(u->derr);
	u->derr = err;
	u->dst = D_FAILED;
}

static void
ui_deploy_run(struct ui *u)
{
	const char *sock = getenv("GVM_SETUP_VMMOD_SOCKET");
	struct deploy_opts o = {.tmpl = GVM_HA_TEMPLATE,
	    .name = GVM_HA_NAME,
	    .trust_unpinned = u->trusted,
	    .timeout_s = 1800,
	    .progress = ui_deploy_progress,
	    .arg = u};
	char *err = NULL;
	int rc;

	o.sock = sock != NULL && sock[0] == '/' ? sock : GVM_VMMOD_SOCKET;
	u->dst = D_RUNNING;
	u->dpct = 0;
	snprintf(u->dmsg, sizeof(u->dmsg), "asking vmmod");
	u->top = 0;
	ui_draw(u);
	rc = u->dry_run ? ui_deploy_fake(u) : deploy_run(&o, &err);
	u->want_default = true; /* other buttons now: focus Next or Skip */
	if (rc == 0) {
		u->dst = D_OK;
		free(err);
	} else
		ui_deploy_fail(
		    u, err != NULL ? err : xstrdup("the deploy failed"));
	if (u->save_fd[2] != -1) /* the log, while apply's output goes there */
		fprintf(stderr, "guardian-vm-setup: Home Assistant: %s%s\n",
		    rc == 0 ? u->dmsg : "failed: ", rc == 0 ? "" : u->derr);
}

/* Deploy now: vmmod says whether it can and whether the image is pinned. */
static void
ui_deploy(struct ui *u)
{
	const char *sock = getenv("GVM_SETUP_VMMOD_SOCKET");
	bool pinned = u->img.pinned;
	char *why = NULL, *err = NULL, *msg;

	if (!u->dry_run) {
		if (deploy_template_info(sock != NULL && sock[0] == '/'
			    ? sock
			    : GVM_VMMOD_SOCKET,
			GVM_HA_TEMPLATE, &pinned, &why, &err) == -1) {
			xasprintf(&msg,
			    "%s (is vmmod running?  Skip, and deploy it from "
			    "the dashboard once it runs)",
			    err);
			free(err);
			ui_deploy_fail(u, msg);
			return;
		}
		if (why != NULL) {
			xasprintf(&msg,
			    "Home Assistant cannot be deployed here: %s", why);
			free(why);
			ui_deploy_fail(u, msg);
			return;
		}
	}
	if (!pinned && !u->trusted) {
		u->asking_tofu = true;
		u->tfocus = 1; /* No, unless chosen */
		return;
	}
	ui_deploy_run(u);
}

static void
ui_tofu(struct ui *u, bool yes)
{
	u->asking_tofu = false;
	if (!yes) {
		snprintf(u->flash, sizeof(u->flash),
		    "Not deployed: no consent.  Skip, or deploy it from the "
		    "dashboard later.");
		return;
	}
	u->trusted = true;
	ui_deploy_run(u);
}

/* ---- moving between screens ---------------------------------------- */

static int
ui_exit_code(const struct ui *u)
{
	if (u->applied)
		return u->apply_rc == 0 ? EXIT_OK : EXIT_FAILED;
	if (u->dry_run && u->walked)
		return u->plan->verdict;
	/* a host that cannot have VMs (or a refused consent): as plan.c */
	if (u->plan->verdict != 0 && (u->scr == SCR_HOST || u->scr == SCR_PLAN))
		return u->plan->verdict;
	return UI_EXIT_CANCELLED;
}

static void
ui_back(struct ui *u)
{
	switch (u->scr) {
	case SCR_WELCOME:
		break;
	case SCR_PLAN:
		/* the consent is asked again next time */
		u->a->shrink_pool = u->shrink_given;
		ui_replan(u);
		ui_go(u, u->scr - 1);
		break;
	case SCR_PROGRESS:
		if (u->applied) {
			snprintf(u->flash, sizeof(u->flash),
			    "The install ran; going back cannot undo it "
			    "(guardian-vm-setup --uninstall does).");
			return;
		}
		ui_go(u, SCR_PLAN);
		break;
	case SCR_SUMMARY:
		ui_go(u,
		    u->applied && u->apply_rc != 0 ? SCR_PROGRESS : SCR_DEPLOY);
		break;
	default:
		ui_go(u, u->scr - 1);
		break;
	}
}

static void
ui_choose_storage(struct ui *u, long i)
{
	if (i < 0 || (size_t)i >= u->sl.n)
		return;
	u->sel = i;
	free(u->storage_dir);
	u->storage_dir = storage_dir_for(&u->sl, (size_t)i);
}

/* Returns -1 to go on, else the exit code. */
static int
ui_act(struct ui *u, enum act a)
{
	switch (a) {
	case ACT_BACK:
		ui_back(u);
		break;
	case ACT_QUIT:
	case ACT_EXIT:
		return ui_exit_code(u);
	case ACT_DEPLOY:
		ui_deploy(u);
		break;
	case ACT_INSTALL:
		if (ui_needs_consent(u)) {
			u->asking = true;
			u->dfocus = 0;
		} else if (!ui_blocked(u))
			ui_start_progress(u);
		break;
	case ACT_NEXT:
		switch (u->scr) {
		case SCR_HOST:
			if (!ui_blocked(u))
				ui_go(u, SCR_STORAGE);
			break;
		case SCR_STORAGE:
			ui_replan(u);
			ui_go(u, SCR_PLAN);
			break;
		case SCR_PROGRESS:
			ui_go(u,
			    u->applied && u->apply_rc != 0 ? SCR_SUMMARY
							   : SCR_DEPLOY);
			break;
		case SCR_SUMMARY:
			return ui_exit_code(u);
		default:
			ui_go(u, u->scr + 1);
			break;
		}
		break;
	}
	return -1;
}

static void
ui_consent(struct ui *u, bool yes)
{
	u->asking = false;
	u->a->shrink_pool = yes ? TRI_YES : TRI_NO;
	ui_replan(u);
	if (yes && u->plan->verdict == 0)
		ui_start_progress(u);
	else
		ui_focus(u, ACT_BACK);
}

static int
ui_key(struct ui *u, int ch)
{
	int h = ui_height();

	u->flash[0] = '\0';
	if (u->asking_tofu) {
		switch (ch) {
		case 'y':
		case 'Y':
			ui_tofu(u, true);
			break;
		case 'n':
		case 'N':
			ui_tofu(u, false);
			break;
		case 27:
			u->asking_tofu = false; /* back to the screen */
			break;
		case KEY_LEFT:
		case KEY_RIGHT:
		case KEY_BTAB:
		case '\t':
			u->tfocus = !u->tfocus;
			break;
		case '\n':
		case '\r':
		case KEY_ENTER:
		case ' ':
			ui_tofu(u, u->tfocus == 0);
			break;
		case 'q':
		case 'Q':
			return ui_exit_code(u);
		}
		return -1;
	}
	if (u->asking) {
		switch (ch) {
		case 'y':
		case 'Y':
			ui_consent(u, true);
			break;
		case 'n':
		case 'N':
			ui_consent(u, false);
			break;
		case 27:
			u->asking = false;
			break;
		case KEY_LEFT:
		case KEY_RIGHT:
		case KEY_BTAB:
		case '\t':
			u->dfocus = !u->dfocus;
			break;
		case '\n':
		case '\r':
		case KEY_ENTER:
		case ' ':
			ui_consent(u, u->dfocus == 0);
			break;
		case 'q':
		case 'Q':
			return ui_exit_code(u);
		}
		return -1;
	}
	switch (ch) {
	case KEY_RIGHT:
	case '\t':
		if (u->nbtn > 0)
			u->focus = (u->focus + 1) % u->nbtn;
		break;
	case KEY_LEFT:
	case KEY_BTAB:
		if (u->nbtn > 0)
			u->focus = (u->focus + u->nbtn - 1) % u->nbtn;
		break;
	case KEY_UP:
		if (u->scr == SCR_STORAGE)
			ui_choose_storage(u, u->sel - 1);
		else
			u->top--;
		break;
	case KEY_DOWN:
		if (u->scr == SCR_STORAGE)
			ui_choose_storage(u, u->sel + 1);
		else
			u->top++;
		break;
	case KEY_PPAGE:
		u->top -= h - 1;
		break;
	case KEY_NPAGE:
	case ' ':
		u->top += h - 1;
		break;
	case KEY_HOME:
		u->top = 0;
		break;
	case KEY_END:
		u->top = (int)u->nlines;
		break;
	case '\n':
	case '\r':
	case KEY_ENTER:
		if (u->nbtn > 0)
			return ui_act(u, u->btn[u->focus].act);
		break;
	case 27:
		if (u->scr == SCR_WELCOME)
			return ui_exit_code(u);
		ui_back(u);
		break;
	case 'q':
	case 'Q':
		if (u->scr == SCR_PROGRESS && !u->applied && !u->dry_run)
			break;
		return ui_exit_code(u);
	}
	return -1;
}

/* ---- entry ------------------------------------------------------------ */

static void
ui_colors(struct ui *u)
{
	u->a_title = (int)A_REVERSE | (int)A_BOLD;
	u->a_ok = (int)A_BOLD;
	u->a_warn = (int)A_BOLD;
	u->a_bad = (int)A_BOLD | (int)A_REVERSE;
	u->a_head = (int)A_BOLD | (int)A_UNDERLINE;
	u->a_dim = (int)A_DIM;
	if (!has_colors() || start_color() == ERR)
		return;
	use_default_colors();
	init_pair(1, COLOR_WHITE, COLOR_BLUE);
	init_pair(2, COLOR_GREEN, -1);
	init_pair(3, COLOR_YELLOW, -1);
	init_pair(4, COLOR_RED, -1);
	u->a_title = (int)COLOR_PAIR(1) | (int)A_BOLD;
	u->a_ok = (int)COLOR_PAIR(2) | (int)A_BOLD;
	u->a_warn = (int)COLOR_PAIR(3) | (int)A_BOLD;
	u->a_bad = (int)COLOR_PAIR(4) | (int)A_BOLD;
}

/* What stays on the terminal after the screens are gone. */
static void
ui_epilogue(const struct ui *u, int rc)
{
	if (rc == UI_EXIT_INTERRUPTED)
		printf("guardian-vm-setup: interrupted%s\n",
		    u->applied ? "; undo what was done with "
				 "guardian-vm-setup --uninstall"
			       : ": nothing was changed");
	else if (u->applied && u->apply_rc == 0)
		printf("guardian-vm-setup: installed; undo with "
		       "guardian-vm-setup --uninstall%s%s\n",
		    u->ao.root[0] ? " --root " : "", u->ao.root);
	else if (u->applied)
		printf("guardian-vm-setup: failed: %s\n",
		    u->apply_err != NULL ? u->apply_err : "see the log");
	else if (u->dry_run && u->walked)
		printf("guardian-vm-setup: dry run: nothing was changed\n");
	else
		printf("guardian-vm-setup: left before installing: nothing "
		       "was changed\n");
	if (u->logpath[0] != '\0')
		printf("log: %s\n", u->logpath);
}

int
ui_run(const struct facts *f, struct answers *a, const struct apply_opts *ao,
    bool dry_run)
{
	struct sigaction sa, old_int, old_term, old_hup;
	struct ui u;
	SCREEN *scr;
	FILE *in, *out;
	int rc = -1, ch;
	long i;

	memset(&u, 0, sizeof(u));
	u.f = *f;
	u.a = a;
	u.ao = *ao;
	u.dry_run = dry_run;
	u.shrink_given = a->shrink_pool;
	u.sel = -1;
	u.trusted = a->trust_unpinned == TRI_YES;
	u.save_fd[0] = u.save_fd[1] = u.save_fd[2] = -1;
	if (storage_scan(ao->root, &u.sl, &u.sl_err) == 0 && u.sl.n > 0) {
		i = a->storage_dir != NULL ? storage_find(&u.sl, a->storage_dir)
					   : -1;
		ui_choose_storage(&u, i >= 0 ? i : 0);
		if (i >= 0) {
			free(u.storage_dir); /* the answer, as given */
			u.storage_dir = xstrdup(a->storage_dir);
		}
	}
	ui_replan(&u);

	/* Ours before curses starts, so it leaves them alone. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = ui_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGHUP, &sa, &old_hup);
	setlocale(LC_ALL, "");
	in = fdopen(dup(STDIN_FILENO), "r");
	out = fdopen(dup(STDOUT_FILENO), "w");
	if (in == NULL || out == NULL ||
	    (scr = newterm(NULL, out, in)) == NULL) {
		fprintf(stderr,
		    "guardian-vm-setup: cannot start the screens on this "
		    "terminal (TERM=%s); use --unattended --answers FILE, or "
		    "--dry-run with output to a file\n",
		    getenv("TERM") != NULL ? getenv("TERM") : "");
		rc = EXIT_USAGE;
		goto done;
	}
	set_term(scr);
	u.tty_fd = fileno(out);
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	set_escdelay(50);
	curs_set(0);
	timeout(250);
	ui_colors(&u);

	while (rc == -1) {
		ui_draw(&u);
		do {
			ch = getch();
			if (ch == ERR && ui_size_sync(&u))
				ch = KEY_RESIZE;
		} while (ch == ERR && !ui_sig);
		if (ui_sig) {
			rc = UI_EXIT_INTERRUPTED;
			break;
		}
		if (ch == KEY_RESIZE)
			continue; /* relayout: LINES and COLS are new */
		rc = ui_key(&u, ch);
	}
	if (ui_sig)
		rc = UI_EXIT_INTERRUPTED;
	endwin();
	delscreen(scr);
done:
	if (in != NULL)
		fclose(in);
	if (out != NULL)
		fclose(out);
	ui_unredirect(&u);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGHUP, &old_hup, NULL);
	if (rc != EXIT_USAGE)
		ui_epilogue(&u, rc);
	ui_lines_clear(&u);
	free(u.lines);
	free(u.ss);
	free(u.apply_err);
	free(u.derr);
	free(u.img_err);
	deploy_image_free(&u.img);
	free(u.sl_err);
	free(u.storage_dir);
	plan_free(u.plan);
	return rc;
}
