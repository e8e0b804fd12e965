/*
 * Applying a plan and undoing it.  Each step's changes are made in order
 * and recorded in the manifest (saved after every change) before the next;
 * a file is verified by reading it back.  When a change fails, the changes
 * of that step are undone from the manifest and the run stops.  Uninstall
 * walks the whole manifest backwards.  Packages go through apt-get, run
 * with an argv (no shell) and APT::Status-Fd for real progress; the bridge
 * and the firewall through nl.c and fw.c.  With --root only files are
 * touched (under ROOT) and everything else is reported as skipped.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <arpa/inet.h>

#include <dirent.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "setup.h"

struct run {
	const struct plan *plan;
	struct manifest *m;
	const struct apply_opts *o;
	char *mpath; /* the manifest under root */
	size_t step, nsteps;
	const char *id;
	size_t changed; /* files written in the current step */
	bool restart_webui; /* uninstall: restart guardian-webui at the end */
	size_t kept; /* uninstall: directories kept (not empty) */
};

static void say(struct run *r, int pct, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void
say(struct run *r, int pct, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	xvasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r->o->progress != NULL)
		r->o->progress(r->o->arg, r->step, r->nsteps, r->id, pct, msg);
	free(msg);
}

static char *
rooted(const struct run *r, const char *path)
{
	char *p;

	xasprintf(&p, "%s%s", r->o->root, path);
	return p;
}

static int
save(struct run *r, char **errp)
{
	return manifest_save(r->m, r->mpath, errp);
}

/* mkdir -p PATH (host path); each directory made is recorded. */
static int
make_dirs(
    struct run *r, const char *path, int mode, bool keep, bool own, char **errp)
{
	char *copy = xstrdup(path), *p, *full;
	struct mentry me = {.type = "dir", .keep = false, .own = own};
	struct stat st;
	int rc = 0;

	for (p = copy + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		full = rooted(r, copy);
		if (stat(full, &st) == -1) {
			if (mkdir(full, c == '\0' ? mode : 0755) == -1) {
				rc = err_replace(errp, "mkdir %s: %s", full,
				    strerror(errno));
				free(full);
				break;
			}
			me.path = copy;
			me.keep = keep && c == '\0';
			/* made again (--repair after an update removed it) */
			if (manifest_find(r->m, "dir", copy) == -1)
				manifest_add(r->m, &me);
			if (!own && save(r, errp) == -1)
				rc = -1;
		} else if (!S_ISDIR(st.st_mode))
			rc = err_replace(
			    errp, "%s exists and is no directory", full);
		free(full);
		*p = c;
		if (rc == -1 || c == '\0')
			break;
	}
	free(copy);
	return rc;
}

static char *
parent_of(const char *path)
{
	char *d = xstrdup(path), *s = strrchr(d, '/');

	if (s != NULL && s != d)
		*s = '\0';
	return d;
}

/*
 * A Guardian file we edited before and that changed since (a Guardian
 * update rewrote it; --repair): its new text is what --uninstall must
 * restore, so the recorded original becomes the current file.
 */
static void
rebase_guardian(struct run *r, const struct change *c, const char *cur)
{
	struct mentry me;
	long i;

	if (!c->guardian_file || cur == NULL ||
	    (i = manifest_find(r->m, "file", c->path)) == -1)
		return;
	manifest_get(r->m, (size_t)i, &me);
	if (me.content != NULL && strcmp(me.content, cur) == 0)
		return;
	manifest_remove(r->m, (size_t)i);
	say(r, -1,
	    "%s changed since the install (a Guardian update?): "
	    "--uninstall now restores this version",
	    c->path);
}

static int
do_file(struct run *r, const struct change *c, char **errp)
{
	char *full = rooted(r, c->path), *cur, *want, *dir, *back;
	struct stat st;
	int mode = c->mode, prev_mode, rc = -1;

	cur = read_file(full, 16 << 20, NULL);
	if (cur == NULL && errno != ENOENT) {
		err_replace(errp, "%s: %s", full, strerror(errno));
		free(full);
		return -1;
	}
	if (cur != NULL && stat(full, &st) == 0)
		mode = st.st_mode & 07777;
	prev_mode = mode;
	/* A private file (NetworkManager's keyfile) stays private. */
	if ((c->mode & 077) == 0)
		mode &= ~077;
	if (c->src != NULL) {
		if ((want = read_file(c->src, 16 << 20, NULL)) == NULL) {
			err_replace(errp, "%s: %s (make install puts it there)",
			    c->src, strerror(errno));
			goto done;
		}
	} else if (c->edit != NULL)
		want = c->edit(cur, r->plan);
	else
		want = xstrdup(c->content);
	if (want == NULL && c->anchor != NULL) {
		err_replace(errp,
		    "%s: %s; refusing to edit it (%s).  Nothing was changed "
		    "in it",
		    full, cur == NULL ? "missing" : "not as expected",
		    c->anchor);
		goto done;
	}
	if (want == NULL) {
		err_replace(errp,
		    "%s: nothing to edit (the expected line is "
		    "missing)",
		    full);
		goto done;
	}
	if (cur != NULL && strcmp(cur, want) == 0 && mode == prev_mode) {
		say(r, -1, "%s: already as planned", c->path);
		rc = 0;
		goto done;
	}
	dir = parent_of(c->path);
	if (make_dirs(r, dir, 0755, false, false, errp) == -1) {
		free(dir);
		goto done;
	}
	free(dir);
	rebase_guardian(r, c, cur);
	manifest_file(r->m, c->path, cur, prev_mode, want, c->guardian_file);
	r->changed++;
	if (save(r, errp) == -1)
		goto done;
	if (write_file_atomic(full, want, strlen(want), mode) == -1) {
		err_replace(errp, "%s: %s", full, strerror(errno));
		goto done;
	}
	/* verify */
	back = read_file(full, 16 << 20, NULL);
	if (back == NULL || strcmp(back, want) != 0) {
		free(back);
		err_replace(errp, "%s: reads back differently", full);
		goto done;
	}
	free(back);
	say(r, -1, "%s %s", cur != NULL ? "edited" : "wrote", c->path);
	rc = 0;
done:
	free(cur);
	free(want);
	free(full);
	return rc;
}

static int
do_link(struct run *r, const struct change *c, char **errp)
{
	char *full = rooted(r, c->path), buf[4096], *dir;
	struct mentry me = {
	    .type = "link", .path = c->path, .target = c->target};
	ssize_t n;
	int rc = -1;

	n = readlink(full, buf, sizeof(buf) - 1);
	if (n >= 0) {
		buf[n] = '\0';
		if (strcmp(buf, c->target) == 0) {
			rc = 0;
			goto done;
		}
	}
	if (n >= 0 || errno != ENOENT) {
		err_replace(errp, "%s exists and is not our link to %s", full,
		    c->target);
		goto done;
	}
	dir = parent_of(c->path);
	rc = make_dirs(r, dir, 0755, false, false, errp);
	free(dir);
	if (rc == -1)
		goto done;
	manifest_add(r->m, &me);
	if ((rc = save(r, errp)) == -1)
		goto done;
	if ((rc = symlink(c->target, full)) == -1)
		err_replace(errp, "symlink %s: %s", full, strerror(errno));
	else
		say(r, -1, "linked %s", c->path);
done:
	free(full);
	return rc;
}

/* fork/exec ARGV (no shell); STATUS_FD >= 0 is handed over as fd 3. */
static int
run_argv(char *const argv[], int status_fd, int *wstatus)
{
	pid_t pid;

	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		if (status_fd >= 0 && dup2(status_fd, 3) == -1)
			_exit(127);
		setenv("DEBIAN_FRONTEND", "noninteractive", 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (status_fd >= 0)
		close(status_fd);
	while (waitpid(pid, wstatus, 0) == -1)
		if (errno != EINTR)
			return -1;
	return 0;
}

static int
run_ok(char *const argv[])
{
	int ws;

	return run_argv(argv, -1, &ws) == 0 && WIFEXITED(ws) &&
		WEXITSTATUS(ws) == 0
	    ? 0
	    : -1;
}

/*
 * "pmstatus:PKG:PERCENT:TEXT" (dpkg) or "dlstatus:PKG:PERCENT:TEXT"
 * (downloads); downloads count as the first third.
 */
int
steps_apt_status(const char *line, int *pct, char *msg, size_t len)
{
	const char *p, *q;
	double d;
	bool dl;

	if (str_has_prefix(line, "pmstatus:"))
		dl = false;
	else if (str_has_prefix(line, "dlstatus:"))
		dl = true;
	else
		return -1;
	if ((p = strchr(line + 9, ':')) == NULL ||
	    (q = strchr(p + 1, ':')) == NULL)
		return -1;
	d = strtod(p + 1, NULL);
	if (d < 0 || d > 100)
		return -1;
	*pct = dl ? (int)(d / 3) : 33 + (int)(d * 2 / 3);
	snprintf(msg, len, "%s", q + 1);
	msg[strcspn(msg, "\n")] = '\0';
	return 0;
}

static bool
pkg_installed(const char *name)
{
	char *argv[] = {
	    "dpkg-query", "-W", "-f=${db:Status-Status}", NULL, NULL};
	int fds[2], ws;
	char buf[64] = "";
	ssize_t n;

	argv[3] = (char *)name;
	if (pipe2(fds, O_CLOEXEC) == -1)
		return false;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[1], 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	if (pid > 0)
		waitpid(pid, &ws, 0);
	return n > 0 && strncmp(buf, "installed", 9) == 0;
}

static int
do_packages(struct run *r, const struct change *c, char **errp)
{
	char **argv, line[512], msg[256], *nl;
	size_t n = 0, i;
	struct mentry me = {.type = "package"};
	int fds[2], ws = 0, pct;
	FILE *f;

	if (r->o->root[0] != '\0' || r->o->skip_apt) {
		say(r, -1, "packages skipped (%s)",
		    r->o->root[0] != '\0' ? "--root" : "GVM_SETUP_SKIP_APT");
		return 0;
	}
	argv = xcalloc(16, sizeof(char *));
	argv[n++] = "apt-get";
	argv[n++] = "install";
	argv[n++] = "-y";
	argv[n++] = "--no-install-recommends";
	argv[n++] = "-o";
	argv[n++] = "APT::Status-Fd=3";
	argv[n++] = "-o";
	argv[n++] = "Dpkg::Options::=--force-confold";
	size_t first = n;
	for (i = 0; c->args[i] != NULL; i++)
		if (!pkg_installed(c->args[i]))
			argv[n++] = c->args[i];
	if (n == first) {
		say(r, 100, "all packages already installed");
		free(argv);
		return 0;
	}
	if (pipe2(fds, 0) == -1) {
		free(argv);
		return err_replace(errp, "pipe: %s", strerror(errno));
	}
	fcntl(fds[0], F_SETFD, FD_CLOEXEC);
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		if (dup2(fds[1], 3) == -1)
			_exit(127);
		setenv("DEBIAN_FRONTEND", "noninteractive", 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	f = fdopen(fds[0], "r");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		if ((nl = strchr(line, '\n')) != NULL)
			*nl = '\0';
		if (steps_apt_status(line, &pct, msg, sizeof(msg)) == 0)
			say(r, pct, "%s", msg);
	}
	if (f != NULL)
		fclose(f);
	while (pid > 0 && waitpid(pid, &ws, 0) == -1 && errno == EINTR)
		;
	if (pid == -1 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
		free(argv);
		return err_replace(errp,
		    "apt-get install failed; see its output "
		    "above (apt-get -f install may repair)");
	}
	for (i = first; i < n; i++) {
		me.path = argv[i];
		manifest_add(r->m, &me);
	}
	free(argv);
	return save(r, errp);
}

static int
do_user(struct run *r, const struct change *c, char **errp)
{
	char *argv[] = {"useradd", "--system", "--home-dir", "/var/lib/vmmod",
	    "--no-create-home", "--shell", "/usr/sbin/nologin", "--groups",
	    "libvirt,kvm", c->path, NULL};
	struct mentry me = {.type = "user", .path = c->path};

	if (r->o->root[0] != '\0') {
		say(r, -1, "user %s skipped (--root)", c->path);
		return 0;
	}
	if (getpwnam(c->path) != NULL) {
		say(r, -1, "user %s exists", c->path);
		return 0;
	}
	if (run_ok(argv) == -1)
		return err_replace(errp, "useradd %s failed", c->path);
	manifest_add(r->m, &me);
	return save(r, errp);
}

static void
fw_params_from(const struct plan *p, struct fw_params *fp)
{
	size_t i;

	memset(fp, 0, sizeof(*fp));
	fp->ipt.bridge = p->bridge;
	fp->ipt.first.s_addr = htonl(p->vb.block.lo);
	fp->ipt.last.s_addr = htonl(p->vb.block.hi);
	for (i = 0; i < p->nblock_ports && i < IPT_MAX_PORTS; i++)
		fp->ipt.mgmt_ports[fp->ipt.nmgmt++] = p->block_ports[i];
	fp->console_port = p->console_port;
}

/* ---- libvirt: network and storage pool ------------------------------ */

static int
do_libvirt(struct run *r, const struct change *c, char **errp)
{
	const struct plan *p = r->plan;
	bool net = strcmp(c->path, "libvirt-network") == 0, defined = false;
	char *dir = rooted(r, p->storage_dir), *err = NULL;
	const char *name = net ? GVM_LV_NETWORK : GVM_LV_POOL;
	struct mentry me = {.type = c->path, .path = name};
	int rc;

	if (net)
		rc = lv_network_ensure(
		    GVM_LIBVIRT_URI, name, p->bridge, &defined, &err);
	else
		rc = lv_pool_ensure(GVM_LIBVIRT_URI, name, dir, &defined, &err);
	if (rc == 0 && defined && manifest_find(r->m, c->path, name) == -1) {
		me.target = net ? p->bridge : dir;
		manifest_add(r->m, &me);
		rc = save(r, &err);
	}
	/* verify: looked up again, active and autostarted */
	if (rc == 0)
		rc = lv_verify(GVM_LIBVIRT_URI, net ? name : NULL,
		    net ? NULL : name, &err);
	if (rc == 0)
		say(r, -1, "libvirt %s %s: %s, autostarted, active",
		    net ? "network" : "storage pool", name,
		    defined ? "defined" : "already defined");
	else
		err_replace(errp, "%s: %s", c->desc, err);
	free(err);
	free(dir);
	return rc;
}

/* ---- daemons without systemd ---------------------------------------- */

#define GVM_RUNDIR "/run/guardian-vms"

/* PID runs (no zombie) and is called COMM. */
static bool
proc_is(pid_t pid, const char *comm)
{
	char path[64], *c, *open, *close;
	bool yes = false;

	/* "PID (COMM) STATE ..." */
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((c = read_file(path, 4096, NULL)) == NULL)
		return false;
	open = strchr(c, '(');
	close = strrchr(c, ')');
	yes = open != NULL && close != NULL && close > open &&
	    (size_t)(close - open - 1) == strlen(comm) &&
	    strncmp(open + 1, comm, strlen(comm)) == 0 && close[1] == ' ' &&
	    close[2] != 'Z';
	free(c);
	return yes;
}

/* The pid in PIDFILE while that process runs and is called COMM; else 0. */
static pid_t
daemon_pid(const char *pidfile, const char *comm)
{
	char *s = read_file(pidfile, 64, NULL);
	long pid = s != NULL ? strtol(s, NULL, 10) : 0;

	free(s);
	return pid > 1 && proc_is((pid_t)pid, comm) ? (pid_t)pid : 0;
}

/* Stops the daemon of PIDFILE (ours: its name checked), waits up to 5 s. */
static void
daemon_stop(const char *pidfile, const char *comm)
{
	pid_t pid = daemon_pid(pidfile, comm);
	int i;

	if (pid > 0 && kill(pid, SIGTERM) == 0)
		for (i = 0; i < 50 && proc_is(pid, comm); i++) {
			waitpid(pid, NULL, WNOHANG);
			usleep(100000);
		}
	unlink(pidfile);
}

static int
record_daemon(struct run *r, const char *name, const char *pidfile, char **errp)
{
	struct mentry me = {.type = "daemon", .path = name, .target = pidfile};

	if (manifest_find(r->m, "daemon", name) != -1)
		return 0;
	manifest_add(r->m, &me);
	return save(r, errp);
}

/* dnsmasq: restarted (only the one we started); it daemonizes itself. */
static int
start_dnsmasq(struct run *r, char **errp)
{
	const char *pidfile = GVM_RUNDIR "/dnsmasq.pid";
	char *confdir, *hostsdir, *namesdir, *argv[8];
	size_t n = 0;
	int rc;

	daemon_stop(pidfile, "dnsmasq");
	xasprintf(&confdir, "--conf-dir=%s/etc/dnsmasq.d,*.conf", r->o->root);
	xasprintf(
	    &hostsdir, "--dhcp-hostsdir=%s" GVM_RESERVATIONS_DIR, r->o->root);
	xasprintf(&namesdir, "--hostsdir=%s" GVM_HOSTS_DIR, r->o->root);
	argv[n++] = "dnsmasq";
	argv[n++] = "--conf-file=/dev/null";
	argv[n++] = confdir;
	argv[n++] = "--pid-file=" GVM_RUNDIR "/dnsmasq.pid";
	if (r->o->root[0] != '\0') {
		/* the drop-in names the host's directories */
		argv[n++] = hostsdir;
		argv[n++] = namesdir;
	}
	argv[n] = NULL;
	if ((rc = run_ok(argv)) == -1)
		err_replace(errp,
		    "dnsmasq did not start (if another dnsmasq serves the "
		    "bridge, stop it, or restart it with %s)",
		    confdir);
	else {
		say(r, -1, "no systemd as PID 1: started dnsmasq directly (%s)",
		    confdir);
		rc = record_daemon(r, "dnsmasq", pidfile, errp);
	}
	free(confdir);
	free(hostsdir);
	free(namesdir);
	return rc;
}

/*
 * What systemd's LoadCredential= in vmmod.service does for the console
 * listener, for a vmmod started directly (as root): console.crt and
 * console.key in a credentials directory, here symbolic links to Guardian's
 * certificate and key.  A CREDENTIALS_DIRECTORY already in the environment
 * (tests) is left to vmmod.
 */
#define GVM_CREDS_DIR GVM_RUNDIR "/credentials"
#define GVM_GUARDIAN_CRT "/etc/hookprobe/tls/guardian.crt"
#define GVM_GUARDIAN_KEY "/etc/hookprobe/tls/guardian.key"

static void
creds_remove(void)
{
	unlink(GVM_CREDS_DIR "/console.crt");
	unlink(GVM_CREDS_DIR "/console.key");
	rmdir(GVM_CREDS_DIR);
}

static int
creds_make(struct run *r, char **errp)
{
	creds_remove();
	if (access(GVM_GUARDIAN_CRT, R_OK) == -1 ||
	    access(GVM_GUARDIAN_KEY, R_OK) == -1)
		return err_replace(errp,
		    "the console listener needs Guardian's certificate "
		    "and key (" GVM_GUARDIAN_CRT ", " GVM_GUARDIAN_KEY "): %s",
		    strerror(errno));
	if (mkdir(GVM_CREDS_DIR, 0700) == -1 ||
	    symlink(GVM_GUARDIAN_CRT, GVM_CREDS_DIR "/console.crt") == -1 ||
	    symlink(GVM_GUARDIAN_KEY, GVM_CREDS_DIR "/console.key") == -1) {
		err_replace(errp, GVM_CREDS_DIR ": %s", strerror(errno));
		creds_remove();
		return -1;
	}
	say(r, -1,
	    "console listener: Guardian's certificate handed to vmmod in "
	    "%s (as LoadCredential= would)",
	    GVM_CREDS_DIR);
	return 0;
}

/* vmmod: does not daemonize; started in its own session, pid file ours. */
static int
start_vmmod(struct run *r, char **errp)
{
	const char *pidfile = GVM_RUNDIR "/vmmod.pid";
	char *argv[] = {GVM_SBINDIR "/vmmod", "-f", GVM_VMMOD_CONF, NULL};
	const char *creds = getenv("CREDENTIALS_DIRECTORY");
	bool own_creds = false;
	char buf[32];
	pid_t pid;
	int fd;

	if (r->o->root[0] != '\0') {
		say(r, -1,
		    "vmmod not started (--root: its configuration names "
		    "the host's directories)");
		return 0;
	}
	if (access(argv[0], X_OK) == -1) {
		say(r, -1, "vmmod not started: no %s (make install)", argv[0]);
		return 0;
	}
	daemon_stop(pidfile, "vmmod");
	if (r->plan->console_port != 0 && (creds == NULL || creds[0] == '\0')) {
		if (creds_make(r, errp) == -1)
			return -1;
		own_creds = true;
	}
	if ((pid = fork()) == -1)
		return err_replace(errp, "fork: %s", strerror(errno));
	if (pid == 0) {
		setsid();
		if (own_creds)
			setenv("CREDENTIALS_DIRECTORY", GVM_CREDS_DIR, 1);
		fd = open("/dev/null", O_RDWR);
		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	snprintf(buf, sizeof(buf), "%ld\n", (long)pid);
	if (write_file_atomic(pidfile, buf, strlen(buf), 0644) == -1)
		return err_replace(errp, "%s: %s", pidfile, strerror(errno));
	usleep(300000);
	if (waitpid(pid, NULL, WNOHANG) == pid)
		return err_replace(errp,
		    "vmmod exited at once (run %s -f %s to see why)", argv[0],
		    GVM_VMMOD_CONF);
	say(r, -1, "no systemd as PID 1: started vmmod directly (pid %ld)",
	    (long)pid);
	return record_daemon(r, "vmmod", pidfile, errp);
}

static int
do_direct(struct run *r, const struct change *c, char **errp)
{
	if (mkdir(GVM_RUNDIR, 0755) == -1 && errno != EEXIST)
		return err_replace(
		    errp, "mkdir " GVM_RUNDIR ": %s", strerror(errno));
	if (strcmp(c->path, "dnsmasq-restart") == 0)
		return start_dnsmasq(r, errp);
	say(r, -1,
	    "no systemd as PID 1: the firewall was applied above; nothing "
	    "SIGHUPs dnsmasq when a reservation is removed");
	return start_vmmod(r, errp);
}

/* ---- Deploy Home Assistant ----------------------------------------- */

static void
deploy_say(void *arg, int pct, const char *msg)
{
	say(arg, pct, "%s", msg);
}

/*
 * Through vmmod's socket; the VM is the user's (not in the manifest: a
 * plain --uninstall keeps it, --purge removes it with vmmod's VMs).
 */
static int
deploy_ha(struct run *r, char **errp)
{
	const char *sock = getenv("GVM_SETUP_VMMOD_SOCKET");
	struct deploy_opts o = {.tmpl = GVM_HA_TEMPLATE,
	    .name = GVM_HA_NAME,
	    .trust_unpinned = r->plan->ans.trust_unpinned == TRI_YES,
	    .timeout_s = 1800,
	    .progress = deploy_say,
	    .arg = r};
	char *why = NULL, *err = NULL;
	bool pinned = false;
	int i, rc;

	o.sock = sock != NULL && sock[0] == '/' ? sock : GVM_VMMOD_SOCKET;
	/* vmmod was (re)started by the step before: give it a moment */
	for (i = 0; i < 50 && access(o.sock, F_OK) == -1; i++)
		usleep(100000);
	if (deploy_template_info(o.sock, o.tmpl, &pinned, &why, &err) == -1) {
		err_replace(errp,
		    "%s (deploy it from the dashboard once vmmod runs)", err);
		free(err);
		return -1;
	}
	if (why != NULL) {
		err_replace(
		    errp, "Home Assistant cannot be deployed here: %s", why);
		free(why);
		return -1;
	}
	if (!pinned && !o.trust_unpinned)
		return err_replace(errp,
		    "the Home Assistant image is not pinned by a known "
		    "SHA-256: deploying it trusts whatever is downloaded the "
		    "first time (its digest is then pinned).  Consent with "
		    "--trust-unpinned or GVM_TRUST_UNPINNED=yes, or deploy it "
		    "from the dashboard");
	say(r, 0, "deploying '%s' from template '%s' (image %s)", o.name,
	    o.tmpl,
	    pinned ? "pinned by SHA-256" : "unpinned: trusted on first use");
	if ((rc = deploy_run(&o, &err)) == -1) {
		err_replace(errp, "%s", err);
		free(err);
	}
	return rc;
}

/* ---- Guardian's web UI --------------------------------------------- */

/* The files the blueprint serves (not copied: it reads them in place). */
static int
check_assets(struct run *r, char **errp)
{
	static const char *need[] = {"/web-assets/js/guardian-tile.js",
	    "/web-assets/css/vms.css", "/web-assets/index.html"};
	char *path;
	size_t i;

	for (i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		xasprintf(&path, "%s%s", r->plan->datadir, need[i]);
		if (access(path, R_OK) == -1) {
			err_replace(errp,
			    "%s: %s: the blueprint could not serve the tile "
			    "(make install puts the web assets there)",
			    path, strerror(errno));
			free(path);
			return -1;
		}
		free(path);
	}
	say(r, -1, "web assets in %s/web-assets", r->plan->datadir);
	return 0;
}

static bool
systemd_here(const struct run *r)
{
	return r->o->root[0] == '\0' &&
	    access("/run/systemd/system", F_OK) == 0;
}

static int
webui_restart_now(struct run *r, char **errp)
{
	char *reload[] = {"systemctl", "daemon-reload", NULL};
	char *restart[] = {"systemctl", "try-restart", GVM_WEBUI_UNIT, NULL};

	if (!systemd_here(r)) {
		say(r, -1,
		    "no systemd as PID 1%s: " GVM_WEBUI_UNIT " not restarted; "
		    "restart Guardian's web UI yourself",
		    r->o->root[0] != '\0' ? " (--root)" : "");
		return 0;
	}
	if (run_ok(reload) == -1 || run_ok(restart) == -1)
		return err_replace(errp,
		    "systemctl try-restart " GVM_WEBUI_UNIT " failed "
		    "(journalctl -u " GVM_WEBUI_UNIT " shows why)");
	say(r, -1, "restarted " GVM_WEBUI_UNIT);
	return 0;
}

/*
 * After the step's files: restarts guardian-webui when one of them changed
 * (a second --repair restarts nothing), and records that --uninstall
 * restarts it again once the files are restored.
 */
static int
restart_webui(struct run *r, char **errp)
{
	struct mentry me = {.type = "restart", .path = GVM_WEBUI_UNIT};

	if (manifest_find(r->m, "restart", GVM_WEBUI_UNIT) == -1) {
		manifest_add(r->m, &me);
		if (save(r, errp) == -1)
			return -1;
	}
	if (r->changed == 0) {
		say(r, -1,
		    "Guardian's files unchanged: " GVM_WEBUI_UNIT
		    " not restarted");
		return 0;
	}
	return webui_restart_now(r, errp);
}

static int
do_action(struct run *r, const struct change *c, char **errp)
{
	const struct plan *p = r->plan;
	struct mentry me = {.path = c->path};
	struct fw_params fp;
	char *cidr, *err = NULL;
	bool changed = false;
	int rc;

	if (!c->implemented) {
		say(r, -1, "NOT IMPLEMENTED (nothing done): %s", c->desc);
		return 0;
	}
	if (strcmp(c->path, "guardian-assets") == 0)
		return check_assets(r, errp);
	if (strcmp(c->path, "guardian-webui") == 0)
		return restart_webui(r, errp);
	if (r->o->files_only) {
		if (strcmp(c->path, "deploy-ha") == 0) {
			say(r, -1,
			    "skipped (--root: vmmod does not run there): "
			    "deploy Home Assistant");
			return 0;
		}
		say(r, -1, "skipped (--root): %s", c->desc);
		return 0;
	}
	if (strcmp(c->path, "bridge") == 0) {
		if (!p->create_bridge)
			return 0;
		cidr = plan_net_format(&p->net);
		rc = nl_bridge_ensure(p->bridge, cidr, &changed, &err);
		free(cidr);
		if (rc == -1)
			goto fail;
		if (changed) {
			me.type = "bridge";
			me.path = p->bridge;
			manifest_add(r->m, &me);
			return save(r, errp);
		}
		return 0;
	}
	if (strcmp(c->path, "iptables") == 0) {
		fw_params_from(p, &fp);
		if (fw_apply(&fp, &err) == -1)
			goto fail;
		if (manifest_find(r->m, "firewall", "firewall") == -1) {
			me.type = "firewall";
			me.path = "firewall";
			manifest_add(r->m, &me);
			return save(r, errp);
		}
		return 0;
	}
	if (strcmp(c->path, "nftables") == 0)
		return 0; /* fw_apply above did both */
	if (strcmp(c->path, "deploy-ha") == 0)
		return deploy_ha(r, errp);
	if (strcmp(c->path, "libvirt-network") == 0 ||
	    strcmp(c->path, "libvirt-pool") == 0)
		return do_libvirt(r, c, errp);
	if (strcmp(c->path, "dnsmasq-restart") == 0 ||
	    strcmp(c->path, "services") == 0) {
		char *reload[] = {"systemctl", "daemon-reload", NULL};
		char *restart[] = {
		    "systemctl", "restart", "dnsmasq.service", NULL};
		char *start[] = {"systemctl", "start",
		    "guardian-vms-firewall.service",
		    "guardian-vms-dnsmasq-reload.path", "vmmod.service", NULL};

		if (r->o->root[0] != '\0' ||
		    access("/run/systemd/system", F_OK) == -1)
			return do_direct(r, c, errp);
		if (strcmp(c->path, "dnsmasq-restart") == 0)
			rc = run_ok(reload) == 0 && run_ok(restart) == 0 ? 0
									 : -1;
		else
			rc = run_ok(reload) == 0 && run_ok(start) == 0 ? 0 : -1;
		if (rc == -1)
			return err_replace(errp,
			    "%s failed (systemctl status shows "
			    "why)",
			    c->desc);
		return 0;
	}
	say(r, -1, "NOT IMPLEMENTED (nothing done): %s", c->desc);
	return 0;
fail:
	err_replace(errp, "%s: %s", c->desc, err != NULL ? err : "failed");
	free(err);
	return -1;
}

/* Undoes entry I; 0 when done or nothing to do, -1 with *errp. */
static int
undo_entry(struct run *r, size_t i, char **errp)
{
	struct mentry me;
	char *full, *cur, buf[4096];
	ssize_t n;
	int rc = 0;

	manifest_get(r->m, i, &me);
	full = rooted(r, me.path);
	if (strcmp(me.type, "file") == 0) {
		cur = read_file(full, 16 << 20, NULL);
		if (cur != NULL && me.content != NULL &&
		    strcmp(cur, me.content) != 0)
			say(r, -1,
			    "%s changed since the install: left as it "
			    "is (the original is in the manifest)",
			    me.path);
		else if (me.prev == NULL) {
			if (unlink(full) == -1 && errno != ENOENT)
				rc = err_replace(errp, "unlink %s: %s", full,
				    strerror(errno));
			else
				say(r, -1, "removed %s", me.path);
		} else if (write_file_atomic(full, me.prev, strlen(me.prev),
			       me.prev_mode) == -1 ||
		    chmod(full, me.prev_mode) == -1)
			rc = err_replace(
			    errp, "restore %s: %s", full, strerror(errno));
		else
			say(r, -1, "restored %s", me.path);
		free(cur);
	} else if (strcmp(me.type, "link") == 0) {
		n = readlink(full, buf, sizeof(buf) - 1);
		if (n >= 0) {
			buf[n] = '\0';
			if (me.target != NULL && strcmp(buf, me.target) == 0)
				unlink(full);
		}
	} else if (strcmp(me.type, "dir") == 0) {
		if (rmdir(full) == -1 && errno != ENOENT) {
			rc = 1; /* kept: stays in the manifest */
			if (me.keep && !r->o->purge)
				say(r, -1,
				    "kept %s (VM disks live there; "
				    "--purge removes it)",
				    me.path);
			else if (me.keep)
				say(r, -1,
				    "kept %s: not empty after --purge (files "
				    "that are no volume of the pool)",
				    me.path);
			else
				say(r, -1, "kept %s: not empty", me.path);
		}
	} else if (strcmp(me.type, "restart") == 0) {
		r->restart_webui = true; /* once the files are restored */
	} else if (r->o->files_only) {
		say(r, -1, "skipped (--root): undo %s %s", me.type, me.path);
	} else if (strcmp(me.type, "package") == 0) {
		char *argv[] = {"apt-get", r->o->purge ? "purge" : "remove",
		    "-y", (char *)me.path, NULL};

		if (r->o->skip_apt)
			say(r, -1, "skipped (GVM_SETUP_SKIP_APT): remove %s",
			    me.path);
		else if (run_ok(argv) == -1)
			rc = err_replace(
			    errp, "apt-get remove %s failed", me.path);
	} else if (strcmp(me.type, "user") == 0) {
		char *argv[] = {"userdel", (char *)me.path, NULL};

		if (run_ok(argv) == -1)
			rc = err_replace(errp, "userdel %s failed", me.path);
	} else if (strcmp(me.type, "bridge") == 0) {
		if (nl_bridge_remove(me.path, errp) == -1)
			rc = -1;
	} else if (strcmp(me.type, "firewall") == 0) {
		if (fw_remove(errp) == -1)
			rc = -1;
	} else if (strcmp(me.type, "libvirt-network") == 0) {
		if ((rc = lv_network_remove(GVM_LIBVIRT_URI, me.path, errp)) ==
		    0)
			say(r, -1, "libvirt network %s undefined", me.path);
	} else if (strcmp(me.type, "libvirt-pool") == 0) {
		if ((rc = lv_pool_remove(GVM_LIBVIRT_URI, me.path, errp)) == 0)
			say(r, -1,
			    "libvirt storage pool %s undefined (its directory "
			    "is handled on its own)",
			    me.path);
	} else if (strcmp(me.type, "daemon") == 0) {
		if (me.target != NULL)
			daemon_stop(me.target, me.path);
		if (strcmp(me.path, "vmmod") == 0)
			creds_remove();
		rmdir(GVM_RUNDIR);
		say(r, -1, "stopped %s (started directly: no systemd)",
		    me.path);
	} else
		say(r, -1, "unknown change '%s' left alone", me.type);
	free(full);
	return rc;
}

/* Undoes the entries from FIRST on, newest first, dropping each. */
static int
undo_from(struct run *r, size_t first, bool keep_own, char **errp)
{
	struct mentry me;
	size_t i;
	int rc = 0;

	for (i = manifest_count(r->m); i-- > first;) {
		manifest_get(r->m, i, &me);
		if (me.own && keep_own)
			continue;
		switch (undo_entry(r, i, errp)) {
		case -1:
			rc = -1;
			continue;
		case 1:
			r->kept++;
			continue;
		}
		manifest_remove(r->m, i);
		if (!me.own)
			save(r, NULL);
	}
	if (r->restart_webui && rc == 0) {
		r->restart_webui = false;
		if (webui_restart_now(r, errp) == -1)
			rc = -1;
	}
	return rc;
}

static void
run_init(struct run *r, const struct plan *p, struct manifest *m,
    const struct apply_opts *o)
{
	memset(r, 0, sizeof(*r));
	r->plan = p;
	r->m = m;
	r->o = o;
	xasprintf(&r->mpath, "%s" GVM_MANIFEST, o->root);
}

int
steps_apply(const struct plan *p, struct manifest *m,
    const struct apply_opts *o, char **errp)
{
	struct run r;
	char *dir, *err = NULL;
	size_t i, j, mark;
	int rc = 0;

	run_init(&r, p, m, o);
	r.nsteps = p->nsteps;
	r.id = "manifest";
	dir = parent_of(GVM_MANIFEST);
	rc = make_dirs(&r, dir, 0700, false, true, errp);
	free(dir);
	if (rc == -1 || save(&r, errp) == -1) {
		free(r.mpath);
		return -1;
	}
	for (i = 0; i < p->nsteps; i++) {
		const struct step *s = &p->steps[i];

		r.step = i;
		r.id = s->id;
		r.changed = 0;
		mark = manifest_count(m);
		say(&r, 0, "%s", s->title);
		for (j = 0; j < s->nchanges && rc == 0; j++) {
			const struct change *c = &s->changes[j];

			switch (c->kind) {
			case CH_FILE:
				rc = do_file(&r, c, &err);
				break;
			case CH_DIR:
				rc = make_dirs(&r, c->path, c->mode,
				    strcmp(c->path, p->storage_dir) == 0, false,
				    &err);
				break;
			case CH_LINK:
				rc = do_link(&r, c, &err);
				break;
			case CH_PACKAGES:
				rc = do_packages(&r, c, &err);
				break;
			case CH_USER:
				rc = do_user(&r, c, &err);
				break;
			case CH_ACTION:
				rc = do_action(&r, c, &err);
				break;
			}
		}
		if (rc == -1) {
			say(&r, -1, "FAILED: %s", err);
			undo_from(&r, mark, true, NULL);
			err_replace(errp,
			    "step %s failed: %s; its changes were "
			    "undone.  Fix the cause and run guardian-vm-setup "
			    "again (or --uninstall)",
			    s->id, err);
			free(err);
			break;
		}
		say(&r, 100, "ok");
	}
	free(r.mpath);
	return rc;
}

/* --purge: the files vmmod wrote into a directory we made (reservations). */
static void
purge_dir_files(struct run *r, const char *dir)
{
	char *full = rooted(r, dir), *f;
	struct dirent *d;
	DIR *dp;

	if (manifest_find(r->m, "dir", dir) == -1 ||
	    (dp = opendir(full)) == NULL) {
		free(full);
		return;
	}
	while ((d = readdir(dp)) != NULL) {
		if (d->d_type != DT_REG)
			continue;
		xasprintf(&f, "%s/%s", full, d->d_name);
		unlink(f);
		free(f);
	}
	closedir(dp);
	free(full);
}

/*
 * Plain uninstall names the VMs it keeps; --purge removes them, their
 * volumes and vmmod's reservation files first, so that the walk back
 * leaves the host as it was before the install.
 */
static int
vms_before_undo(struct run *r, char **errp)
{
	struct mentry me;
	char *names = NULL, *err = NULL, *dir = NULL;
	size_t nvol = 0, i;
	int rc = 0;

	for (i = 0; i < manifest_count(r->m) && dir == NULL; i++) {
		manifest_get(r->m, i, &me);
		if ((strcmp(me.type, "dir") == 0 && me.keep) ||
		    (strcmp(me.type, "libvirt-pool") == 0 && me.target != NULL))
			dir = me.type[0] == 'd' ? rooted(r, me.path)
						: xstrdup(me.target);
	}
	if (r->o->files_only) {
		say(r, -1, "%s",
		    r->o->purge ? "--purge: VMs are not looked at with --root"
				: "your VMs and their disks were kept (--purge "
				  "removes them)");
		free(dir);
		return 0;
	}
	rc = lv_purge(GVM_LIBVIRT_URI, GVM_LV_POOL, dir != NULL ? dir : "/-",
	    !r->o->purge, &names, &nvol, &err);
	if (rc == -1 && !r->o->purge) {
		/* libvirtd may be gone already: nothing to name */
		say(r, -1,
		    "your VMs and their disks were kept (--purge "
		    "removes them)");
		rc = 0;
	} else if (rc == -1)
		err_replace(errp, "--purge: %s", err);
	else if (r->o->purge) {
		purge_dir_files(r, GVM_RESERVATIONS_DIR);
		purge_dir_files(r, GVM_HOSTS_DIR);
		say(r, -1,
		    "--purge: removed VMs made by vmmod (%s) and %zu disk "
		    "volume(s) of pool " GVM_LV_POOL,
		    names[0] != '\0' ? names : "none", nvol);
	} else if (names[0] != '\0')
		say(r, -1,
		    "your VMs and their disks were kept: %s (in %s; --purge "
		    "removes them)",
		    names, dir != NULL ? dir : "their pool");
	else
		say(r, -1,
		    "your VMs and their disks were kept (none found; --purge "
		    "removes them)");
	free(names);
	free(err);
	free(dir);
	return rc;
}

int
steps_uninstall(struct manifest *m, const struct apply_opts *o, char **errp)
{
	struct run r;
	int rc;

	run_init(&r, NULL, m, o);
	r.nsteps = 1;
	r.id = "uninstall";
	if ((rc = vms_before_undo(&r, errp)) == -1) {
		free(r.mpath);
		return -1;
	}
	rc = undo_from(&r, 0, true, errp);
	if (rc == 0 && r.kept == 0) {
		unlink(r.mpath);
		undo_from(&r, 0, false, errp);
	} else {
		/* kept directories (the VMs' disks, reservations) stay ours:
		 * --uninstall again, or --purge, removes them later */
		save(&r, NULL);
		if (rc == 0)
			say(&r, -1,
			    "%zu director%s kept (not empty) stay in %s: "
			    "--uninstall again once they are empty, or "
			    "--uninstall --purge, removes them",
			    r.kept, r.kept == 1 ? "y" : "ies", GVM_MANIFEST);
	}
	free(r.mpath);
	return rc;
}
