/*
 * Host facts for the plan: architecture, RAM, whether KVM answers, whether
 * Guardian is installed, its dnsmasq pool, how networking is configured and
 * what an earlier install chose.  Files are read under the --root prefix so
 * the tests can stage a Guardian-shaped tree; the parsers are pure.
 */
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "setup.h"

/* From <linux/kvm.h>, which we need for nothing else. */
#define FACTS_KVMIO 0xAE
#define FACTS_KVM_GET_API_VERSION _IO(FACTS_KVMIO, 0x00)
#define FACTS_KVM_CREATE_VM _IO(FACTS_KVMIO, 0x01)

static char *
facts_path(const char *root, const char *path)
{
	char *p;

	xasprintf(&p, "%s%s", root != NULL ? root : "", path);
	return p;
}

static char *
facts_read_text(const char *root, const char *path)
{
	char *p = facts_path(root, path), *text;

	text = read_file(p, 1 << 20, NULL);
	free(p);
	return text;
}

/* A template of Guardian's by its name under web/templates (guardian.c). */
static char *
facts_guardian_template(const char *name, const void *root)
{
	char *path, *text;

	xasprintf(&path, GVM_GUARDIAN_WEB "/templates/%s", name);
	text = facts_read_text(root, path);
	free(path);
	return text;
}

static bool
facts_exists(const char *root, const char *path, mode_t type)
{
	char *p = facts_path(root, path);
	struct stat st;
	bool ok;

	ok = stat(p, &st) == 0 && (type == 0 || (st.st_mode & S_IFMT) == type);
	free(p);
	return ok;
}

/*
 * NetworkManager manages this host: it runs (its runtime directory
 * /run/NetworkManager) or it is enabled at boot (the wants link, looked at
 * with lstat: its target is absolute, and under --root it would name the
 * host's file).  Raspberry Pi OS Bookworm: enabled and running.
 */
static bool
facts_nm(const char *root)
{
	char *p = facts_path(root,
	    "/etc/systemd/system/multi-user.target.wants/"
	    "NetworkManager.service");
	struct stat st;
	bool ok = lstat(p, &st) == 0;

	free(p);
	return ok || facts_exists(root, "/run/NetworkManager", S_IFDIR);
}

/* Copies VALUE (unquoted, up to a blank or '#') into buf. */
static void
facts_value(const char *v, char *buf, size_t len)
{
	size_t n = 0;
	char q = 0;

	if (*v == '"' || *v == '\'')
		q = *v++;
	while (*v != '\0' && *v != '\n' && n + 1 < len) {
		if (q ? *v == q : (isspace((unsigned char)*v) || *v == '#'))
			break;
		buf[n++] = *v++;
	}
	buf[n] = '\0';
}

void
facts_parse_install_conf(const char *text, struct facts *f)
{
	const char *line;

	f->tier[0] = '\0';
	for (line = text; line != NULL && *line != '\0';
	     line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		while (*line == ' ' || *line == '\t')
			line++;
		if (str_has_prefix(line, "export "))
			line += 7;
		if (str_has_prefix(line, "HOOKPROBE_TIER="))
			facts_value(line + 15, f->tier, sizeof(f->tier));
	}
}

/*
 * dnsmasq's interface= and the first IPv4 dhcp-range=
 * [tag:..,][set:..,]START,END[,...]; a range whose END is a mode word
 * ("static", "proxy") is no dynamic pool.
 */
void
facts_parse_dnsmasq(const char *text, struct facts *f)
{
	char *copy = xstrdup(text), *line, *next, *tok, *save, *v;
	uint32_t a[2];
	int n;

	f->dnsmasq_iface[0] = '\0';
	f->has_pool = false;
	for (line = copy; line != NULL; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		while (*line == ' ' || *line == '\t')
			line++;
		if ((v = strchr(line, '\r')) != NULL)
			*v = '\0';
		if (str_has_prefix(line, "interface=") &&
		    f->dnsmasq_iface[0] == '\0') {
			facts_value(line + 10, f->dnsmasq_iface,
			    sizeof(f->dnsmasq_iface));
			if ((v = strchr(f->dnsmasq_iface, ',')) != NULL)
				*v = '\0';
		} else if (str_has_prefix(line, "dhcp-range=") &&
		    !f->has_pool) {
			n = 0;
			for (tok = strtok_r(line + 11, ",", &save);
			     tok != NULL && n < 2;
			     tok = strtok_r(NULL, ",", &save)) {
				if (n == 0 && strchr(tok, ':') != NULL)
					continue; /* tag:, set: */
				if (plan_ip4_parse(tok, &a[n]) == -1)
					break;
				n++;
			}
			if (n == 2 && a[0] <= a[1]) {
				f->has_pool = true;
				f->pool.lo = a[0];
				f->pool.hi = a[1];
			}
		}
	}
	free(copy);
}

static uint64_t
facts_ram_mb(const char *root)
{
	char *text = NULL, *p;
	unsigned long long kb = 0;

	if (root != NULL && root[0] != '\0')
		text = facts_read_text(root, "/proc/meminfo");
	if (text == NULL)
		text = read_file("/proc/meminfo", 1 << 20, NULL);
	if (text != NULL && (p = strstr(text, "MemTotal:")) != NULL)
		kb = strtoull(p + 9, NULL, 10);
	free(text);
	return kb / 1024;
}

/*
 * KVM "really usable": /dev/kvm opens, speaks API 12 and creates a VM.
 * Done in a child with a deadline because a broken nested setup may block.
 * XXX KVM_RUN is not tried here; vmmod probes that and falls back to TCG.
 */
static void
facts_kvm(struct facts *f)
{
	pid_t pid;
	int fd, status, i;

	f->kvm_usable = false;
	if (access("/dev/kvm", F_OK) == -1) {
		snprintf(f->kvm_note, sizeof(f->kvm_note), "no /dev/kvm");
		return;
	}
	if ((pid = fork()) == -1) {
		snprintf(f->kvm_note, sizeof(f->kvm_note), "fork: %s",
		    strerror(errno));
		return;
	}
	if (pid == 0) {
		alarm(3);
		if ((fd = open("/dev/kvm", O_RDWR | O_CLOEXEC)) == -1)
			_exit(2);
		if (ioctl(fd, FACTS_KVM_GET_API_VERSION, 0) != 12)
			_exit(3);
		if (ioctl(fd, FACTS_KVM_CREATE_VM, 0) == -1)
			_exit(4);
		_exit(0);
	}
	for (i = 0; i < 50; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		usleep(100 * 1000);
	}
	if (i == 50) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		f->kvm_usable = true;
		snprintf(f->kvm_note, sizeof(f->kvm_note),
		    "/dev/kvm creates VMs (vmmod still probes KVM_RUN)");
	} else
		snprintf(f->kvm_note, sizeof(f->kvm_note), "/dev/kvm %s",
		    WIFEXITED(status) && WEXITSTATUS(status) == 2
			? "cannot be opened"
			: WIFEXITED(status) && WEXITSTATUS(status) == 3
			? "speaks another API"
			: "does not create a VM");
}

/* Free space where the storage directory is (or would be created). */
static uint64_t
facts_free_mb(const char *root, const char *dir)
{
	char p[4096], *slash;
	struct statvfs sv;
	uint64_t mb = 0;

	if ((size_t)snprintf(p, sizeof(p), "%s%s", root != NULL ? root : "",
		dir) >= sizeof(p))
		return 0;
	for (;;) {
		if (statvfs(p, &sv) == 0) {
			mb =
			    (uint64_t)sv.f_bavail * sv.f_frsize / (1024 * 1024);
			break;
		}
		if ((slash = strrchr(p, '/')) == NULL || slash == p)
			break;
		*slash = '\0';
	}
	return mb;
}

int
facts_read(const char *root, const char *storage_dir, struct facts *f)
{
	struct utsname u;
	char *text, *line;

	memset(f, 0, sizeof(*f));
	if (uname(&u) == 0)
		snprintf(f->machine, sizeof(f->machine), "%s", u.machine);
	if (strcmp(f->machine, "x86_64") == 0)
		f->arch = ARCH_X86_64;
	else if (strcmp(f->machine, "aarch64") == 0)
		f->arch = ARCH_ARM64;
	f->ram_mb = facts_ram_mb(root);
	facts_kvm(f);
	f->systemd = access("/run/systemd/system", F_OK) == 0;

	if ((text = facts_read_text(root, "/etc/hookprobe/install.conf")) !=
	    NULL) {
		facts_parse_install_conf(text, f);
		free(text);
	}
	f->guardian = strcmp(f->tier, "guardian") == 0 &&
	    facts_exists(root, "/opt/hookprobe/guardian/web", S_IFDIR);
	if (f->guardian)
		guardian_find_host_css(
		    facts_guardian_template, root, &f->host_css);
	if ((text = facts_read_text(root, GVM_DNSMASQ_GUARDIAN)) != NULL) {
		f->dnsmasq_conf = true;
		facts_parse_dnsmasq(text, f);
		free(text);
	}
	if (facts_exists(root,
		"/etc/systemd/system/multi-user.target.wants/"
		"systemd-networkd.service",
		0))
		f->netcfg = NETCFG_NETWORKD;
	else if (facts_nm(root))
		f->netcfg = NETCFG_NM;
	else if (facts_exists(root, "/etc/network/interfaces", S_IFREG))
		f->netcfg = NETCFG_IFUPDOWN;
	if ((text = facts_read_text(root, GVM_VMMOD_CONF)) != NULL) {
		for (line = text; line != NULL;
		     line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
			if (str_has_prefix(line, "reserve_block = "))
				facts_value(line + 16, f->prev_block,
				    sizeof(f->prev_block));
		free(text);
	}
	if (storage_dir != NULL)
		f->storage_free_mb = facts_free_mb(root, storage_dir);
	/* the installer's own files: GVM_SETUP_DATADIR (tests: the tree) */
	text = getenv("GVM_SETUP_DATADIR");
	snprintf(f->datadir, sizeof(f->datadir), "%s",
	    text != NULL && text[0] == '/' ? text : GVM_DATADIR);
	return 0;
}
