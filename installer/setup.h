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
/* What a JSON listing says (pure; nft_console_scan is tested alone). */
#define NFT_MAX_HANDLES 16
struct nft_scan {
	bool chain; /* `inet guardian input` is listed */
	size_t n; /* rules with our comment */
	int64_t handles[NFT_MAX_HANDLES];
	bool exact[NFT_MAX_HANDLES]; /* `iifname IFACE tcp dport PORT accept` */
};
int nft_console_scan(const char *json, const char *iface, uint16_t port,
    struct nft_scan *, char **errp);
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

/*
 * lv.c: libvirt through its API (the only file including libvirt).  The
 * XML builders are pure (libxml2 tree, golden files); *defined says the
 * call defined the object (so the manifest records it as ours).
 */
#define GVM_LIBVIRT_URI "qemu:///system"
#define GVM_LV_NETWORK "guardian"
#define GVM_LV_POOL "guardian-vms"
char *lv_network_xml(const char *name, const char *bridge);
char *lv_pool_xml(const char *name, const char *dir);
int lv_network_ensure(const char *uri, const char *name, const char *bridge,
    bool *defined, char **errp);
int lv_pool_ensure(const char *uri, const char *name, const char *dir,
    bool *defined, char **errp);
/* Defined, active and autostarted (NULL: not checked). */
int lv_verify(const char *uri, const char *net, const char *pool, char **errp);
int lv_network_remove(const char *uri, const char *name, char **errp);
int lv_pool_remove(const char *uri, const char *name, char **errp);
bool lv_domain_ours(const char *xml, const char *pool, const char *dir);
int lv_purge(const char *uri, const char *pool, const char *dir, bool dry_run,
    char **names, size_t *nvol, char **errp);

/*
 * answers.c: the installer's answers, from --answers FILE (key=value like
 * /etc/hookprobe/install.conf) and the environment.  Unknown HOOKPROBE_*
 * and other keys are ignored (the file may be install.conf itself);
 * unknown GVM_* keys are errors.
 */
enum tri { TRI_UNSET = 0, TRI_NO, TRI_YES };
#define ANS_MAX_PORTS 16
struct answers {
	enum tri vm_support; /* HOOKPROBE_VM_SUPPORT */
	char *storage_dir; /* GVM_STORAGE_DIR: absolute */
	char *bridge; /* GVM_BRIDGE: an interface name */
	char *bridge_addr; /* GVM_BRIDGE_ADDR: "A.B.C.D/P" */
	char *dhcp_range; /* GVM_DHCP_RANGE: "A.B.C.D-A.B.C.D" */
	enum tri shrink_pool; /* GVM_SHRINK_POOL */
	uint16_t console_port; /* GVM_CONSOLE_PORT; 0: unset */
	bool block_ports_set; /* GVM_BLOCK_PORTS given */
	uint16_t block_ports[ANS_MAX_PORTS];
	size_t nblock_ports;
	enum tri deploy_ha; /* GVM_DEPLOY_HA */
	enum tri trust_unpinned; /* GVM_TRUST_UNPINNED */
	char *vm_block; /* GVM_VM_BLOCK: "A.B.C.D-A.B.C.D", kept if valid */
};
void answers_init(struct answers *);
void answers_clear(struct answers *);
/* key=value text; NAME names it in errors ("NAME:LINE: ..."). */
int answers_parse(
    struct answers *, const char *text, const char *name, char **errp);
int answers_load(struct answers *, const char *path, char **errp);
/* Environment values override the file's; GET is getenv in the program. */
int answers_from_env(
    struct answers *, const char *(*get)(const char *), char **errp);
/* The answers as key=value lines (the saved /etc/guardian-vms/setup.conf). */
char *answers_format(const struct answers *);

/*
 * plan.c (pure): IPv4 address math, then host facts + answers -> a plan of
 * steps, each listing every change.  Addresses are host byte order.
 */
struct ip4net {
	uint32_t addr; /* the host's own address on the bridge */
	unsigned prefix; /* 8..30 */
};
struct ip4range {
	uint32_t lo, hi; /* inclusive */
};
#define PLAN_BLOCK_WANT 16 /* VM addresses wanted */
#define PLAN_BLOCK_MIN 4 /* fewer is "no room" */
struct vm_block {
	struct ip4range block;
	bool reused; /* the previous block, still valid */
	bool shrink; /* the pool's top must be given up ... */
	struct ip4range new_pool; /* ... leaving this pool */
};
int plan_ip4_parse(const char *, uint32_t *);
int plan_net_parse(const char *, struct ip4net *);
int plan_range_parse(const char *, struct ip4range *);
uint32_t plan_net_first(const struct ip4net *); /* network address */
uint32_t plan_net_last(const struct ip4net *); /* broadcast address */
void plan_ip4_format(uint32_t, char buf[16]);
char *plan_range_format(const struct ip4range *); /* "A-B", malloc'd */
char *plan_net_format(const struct ip4net *); /* "A/P", malloc'd */
/* POOL and PREV may be NULL.  -1 with *errp when there is no room. */
int plan_vm_block(const struct ip4net *, const struct ip4range *pool,
    const struct ip4range *prev, struct vm_block *, char **errp);

/*
 * The stylesheets Guardian's dashboard links from its Flask static folder
 * (names relative to it, "css/main.css"), found by guardian.c in its
 * templates; what was skipped, with why, for the plan.
 */
#define GUARDIAN_CSS_MAX 8
#define GUARDIAN_CSS_LEN 96
#define GUARDIAN_CSS_SKIPS 4
struct host_css {
	char name[GUARDIAN_CSS_MAX][GUARDIAN_CSS_LEN];
	size_t n;
	char skipped[GUARDIAN_CSS_SKIPS][160]; /* "WHAT: why" (truncated) */
	size_t nskipped; /* all of them, also those not kept above */
	size_t nforeign; /* other sites' (CDNs): not Guardian's, not noted */
};

enum gvm_arch { ARCH_OTHER = 0, ARCH_X86_64, ARCH_ARM64 };
enum netcfg { NETCFG_NONE = 0, NETCFG_NETWORKD, NETCFG_IFUPDOWN, NETCFG_NM };
/* What the host looks like; filled by facts.c, or by tests. */
struct facts {
	enum gvm_arch arch;
	char machine[65]; /* uname -m */
	uint64_t ram_mb;
	bool kvm_usable;
	char kvm_note[160];
	bool systemd; /* systemd is PID 1 */
	bool guardian; /* install.conf tier guardian and its web dir */
	char tier[32]; /* HOOKPROBE_TIER, "" when absent */
	bool dnsmasq_conf; /* /etc/dnsmasq.d/guardian.conf exists */
	char dnsmasq_iface[16]; /* its interface=, "" when none */
	bool has_pool; /* its dhcp-range */
	struct ip4range pool;
	bool bridge_exists; /* live bridge (nl_bridge_inspect) */
	char bridge_addr[24]; /* its first IPv4 "A/P", "" when none */
	char default_iface[16]; /* the default route's link */
	enum netcfg netcfg; /* how a new br0 is persisted */
	char prev_block[40]; /* reserve_block of an existing vmmod.conf */
	uint64_t storage_free_mb; /* where the VM disks go; 0: unknown */
	char datadir[256]; /* the shipped files (GVM_DATADIR) */
	struct host_css host_css; /* Guardian's stylesheets (guardian) */
};

/* One change a step makes; the plan lists them all. */
enum change_kind {
	CH_FILE, /* write CONTENT (or EDIT(current)) to PATH */
	CH_DIR, /* create PATH (and parents) */
	CH_LINK, /* PATH -> TARGET (enabling a unit) */
	CH_PACKAGES, /* apt-get install ARGS */
	CH_USER, /* a system user */
	CH_ACTION /* done by a function of nl.c, ipt.c, nft.c, libvirt */
};
struct plan;
typedef char *(*change_edit_fn)(const char *current, const struct plan *);
struct change {
	enum change_kind kind;
	char *path; /* FILE, DIR, LINK; the name for USER, ACTION */
	char *content; /* FILE with fixed content */
	change_edit_fn edit; /* FILE derived from the current content */
	int mode;
	char *target; /* LINK */
	char **args; /* PACKAGES: names; NULL-terminated */
	char *desc; /* one line for the plan */
	bool guardian_file; /* replaces/edits a file Guardian owns */
	bool implemented; /* ACTION: false -> reported, never faked */
	char *src; /* FILE copied from this file (of the installer) */
	const char *anchor; /* FILE edit: what must be there (errors) */
};
struct step {
	char *id;
	char *title;
	struct change *changes;
	size_t nchanges;
};
struct plan {
	int verdict; /* 0, or the exit code that stops it (3, 4) */
	char *verdict_msg;
	char **notes; /* host check lines, warnings */
	size_t nnotes;
	struct step *steps;
	size_t nsteps;
	/* the chosen values */
	bool guardian;
	char *bridge;
	struct ip4net net;
	bool have_pool;
	struct ip4range pool, old_pool; /* pool after the install, before */
	struct vm_block vb;
	char *storage_dir;
	uint16_t console_port;
	uint16_t block_ports[ANS_MAX_PORTS];
	size_t nblock_ports;
	bool create_bridge;
	enum netcfg netcfg;
	char *datadir; /* facts' datadir */
	struct host_css host_css; /* facts': GUARDIAN_VMS_HOST_CSS */
	struct answers ans; /* a copy, saved as setup.conf */
};
struct plan *plan_build(const struct facts *, const struct answers *);
void plan_free(struct plan *);
/* Keeps only the step ID (--repair: "guardian"); 0, or -1 when absent. */
int plan_only(struct plan *, const char *id);
/* The plan as printed by --dry-run and shown by the plan screen. */
char *plan_text(const struct plan *);
const char *plan_arch_name(enum gvm_arch);

/*
 * facts.c: reads the host (files under ROOT, which may be "").  Everything
 * but the bridge (main.c asks nl.c).  RAM comes from ROOT/proc/meminfo when
 * that exists (tests), else /proc/meminfo.
 */
int facts_read(const char *root, const char *storage_dir, struct facts *);
/* Pure parsers used by facts_read (and the tests). */
void facts_parse_install_conf(const char *text, struct facts *);
void facts_parse_dnsmasq(const char *text, struct facts *);

/*
 * gen.c (pure): the files the installer writes, from the plan.  Each
 * returns malloc'd text.
 */
#define GVM_SBINDIR "/usr/local/sbin"
#define GVM_DNSMASQ_DROPIN "/etc/dnsmasq.d/guardian-vms.conf"
#define GVM_DNSMASQ_GUARDIAN "/etc/dnsmasq.d/guardian.conf"
#define GVM_RESERVATIONS_DIR "/etc/dnsmasq.d/guardian-vms-hosts"
#define GVM_HOSTS_DIR "/etc/dnsmasq.d/guardian-vms-names"
#define GVM_VMMOD_CONF "/etc/vmmod/vmmod.conf"
#define GVM_SETUP_CONF "/etc/guardian-vms/setup.conf"
#define GVM_LIBVIRT_GUESTS "/etc/default/libvirt-guests"
#define GVM_LIBVIRTD_DROPIN                                                    \
	"/etc/systemd/system/libvirtd.service.d/guardian-vms.conf"
#define GVM_MANIFEST "/var/lib/guardian-vms/install.json"
#define GVM_DOMAIN "guardian.local"
#define GVM_STORAGE_DEFAULT "/var/lib/guardian-vms/pool"
char *gen_dnsmasq_dropin(const struct plan *);
/* guardian.conf with its dhcp-range shrunk; NULL when no line matched. */
char *gen_dnsmasq_shrink(const char *current, const struct plan *);
char *gen_vmmod_conf(const struct plan *);
char *gen_setup_conf(const struct plan *);
char *gen_libvirt_guests(const char *current, const struct plan *);
char *gen_libvirtd_dropin(const struct plan *);
char *gen_networkd_netdev(const struct plan *);
char *gen_networkd_network(const struct plan *);
char *gen_ifupdown(const struct plan *);
/* NetworkManager keyfile (mode 0600: NM ignores others'); its uuid is a
 * name-based (SHA-1) UUID of the bridge name, the same on every run. */
#define GVM_NM_CONNDIR "/etc/NetworkManager/system-connections"
char *gen_nm_keyfile(const struct plan *);

/*
 * guardian.c (pure): the Guardian integration's edits of Guardian's
 * blueprint registry and dashboard (NULL: the anchor is not there, refuse)
 * and the guardian-webui.service drop-in.
 */
#define GVM_DATADIR "/usr/local/share/guardian-vms"
#define GVM_VMMOD_SOCKET "/run/vmmod/vmmod.sock"
#define GVM_GUARDIAN_WEB "/opt/hookprobe/guardian/web"
#define GVM_GUARDIAN_PLUGIN GVM_GUARDIAN_WEB "/modules/guardian_vms"
#define GVM_WEBUI_UNIT "guardian-webui.service"
#define GVM_WEBUI_DROPIN                                                       \
	"/etc/systemd/system/guardian-webui.service.d/guardian-vms.conf"
char *guardian_edit_modules(const char *current);
char *guardian_edit_dashboard(const char *current);
/* The stylesheets TEXT (a template) links, added to CSS (see there). */
void guardian_host_css(const char *text, struct host_css *css);
/* NAME of TEXT's `{% extends "NAME" %}` (a checked template path). */
bool guardian_template_extends(const char *text, char *name, size_t len);
/* TEXT has `{% include "NAME" %}`. */
bool guardian_template_includes(const char *text, const char *name);
/*
 * Guardian's stylesheets, from core/dashboard.html and the layout around
 * it: the templates it extends (parents first), or else base.html when
 * that includes the dashboard (as Guardian's does).  READ returns a
 * template's text by its name under the templates dir (malloc'd, NULL:
 * none), so this stays pure.
 */
typedef char *(*guardian_read_fn)(const char *name, const void *arg);
void guardian_find_host_css(
    guardian_read_fn read, const void *arg, struct host_css *css);
char *gen_webui_dropin(const struct plan *);

/*
 * manifest.c: every change the installer made, in order, as JSON in
 * GVM_MANIFEST (the only json-c user of the installer).  Paths are as on
 * the host (without --root).  A file's first record keeps what was there
 * before (content and mode, or absent) for an exact restore.
 */
struct manifest;
struct mentry {
	const char *type; /* file dir link package user bridge firewall */
	const char *path; /* or the name */
	const char *prev; /* file: previous content; NULL: absent */
	int prev_mode;
	const char *content; /* file: what we wrote */
	const char *target; /* link */
	bool guardian; /* a Guardian file we edited */
	bool keep; /* dir holding user data (VM disks) */
	bool own; /* dir made for the manifest itself */
};
struct manifest *manifest_new(void);
/* An absent file is an empty manifest; -1 with *errp when unreadable. */
struct manifest *manifest_load(const char *path, char **errp);
void manifest_free(struct manifest *);
int manifest_save(const struct manifest *, const char *path, char **errp);
char *manifest_json(const struct manifest *);
size_t manifest_count(const struct manifest *);
/* Borrowed strings, valid until the entry is removed. */
int manifest_get(const struct manifest *, size_t, struct mentry *);
void manifest_remove(struct manifest *, size_t);
/* Index of the entry of TYPE and PATH, or -1. */
long manifest_find(const struct manifest *, const char *type, const char *);
void manifest_add(struct manifest *, const struct mentry *);
/* A file write: a second record of the same path only updates content. */
void manifest_file(struct manifest *, const char *path, const char *prev,
    int prev_mode, const char *content, bool guardian);

/*
 * steps.c: apply (plan -> changes, each step verified, a failed step rolled
 * back), uninstall (the manifest in reverse) and apt-get with progress.
 */
enum exit_code {
	EXIT_OK = 0,
	EXIT_FAILED = 1, /* a step failed and was rolled back */
	EXIT_USAGE = 2, /* bad option or answer */
	EXIT_NOT_ELIGIBLE = 3, /* host cannot have VM support */
	EXIT_NEEDS_CONSENT = 4, /* unattended, and an answer is missing */
	EXIT_NOT_ROOT = 5 /* must run as root (or with --root/--dry-run) */
};
/* Progress: step index (0-based), its id, percent of it (-1: none), text. */
typedef void (*progress_fn)(void *arg, size_t step, size_t nsteps,
    const char *id, int pct, const char *msg);
struct apply_opts {
	const char *root; /* "" for the real root */
	bool files_only; /* --root without --live: files only */
	bool live; /* --root --live: also bridge, firewall, libvirt, daemons
		      (tests in a namespace; never packages or users) */
	bool skip_apt; /* GVM_SETUP_SKIP_APT=1 */
	bool purge; /* uninstall: VMs' storage too */
	progress_fn progress;
	void *arg;
};
int steps_apply(const struct plan *, struct manifest *,
    const struct apply_opts *, char **errp);
int steps_uninstall(struct manifest *, const struct apply_opts *, char **errp);
/* One APT::Status-Fd line -> overall percent and text; -1 if none. */
int steps_apt_status(const char *line, int *pct, char *msg, size_t len);

/*
 * deploy.c: deploying a template through vmmod's Unix socket (libcurl,
 * json-c): the Home Assistant step.
 */
#define GVM_HA_TEMPLATE "homeassistant"
#define GVM_HA_NAME "homeassistant"
struct deploy_opts {
	const char *sock;
	const char *tmpl, *name;
	bool trust_unpinned;
	int timeout_s;
	void (*progress)(void *arg, int pct, const char *msg);
	void *arg;
};
/* Whether TMPL's image is pinned; *WHY_NOT (malloc'd) when unavailable. */
int deploy_template_info(const char *sock, const char *tmpl, bool *pinned,
    char **why_not, char **errp);
/* Creates the VM (start, autostart) and follows its job to the end. */
int deploy_run(const struct deploy_opts *, char **errp);
/* The image of a shipped template as its file says (the consent text). */
struct deploy_image {
	char *url, *version, *note; /* NULL: not given */
	bool pinned; /* a sha256 in the file */
};
int deploy_template_image(const char *datadir, const char *tmpl,
    const char *arch, struct deploy_image *, char **errp);
void deploy_image_free(struct deploy_image *);

/*
 * storage.c: where VM disks may live.  storage_scan lists the mounted
 * filesystems (getmntent on ROOT/proc/mounts when that exists, else
 * /proc/self/mounts) with their free space (statvfs under ROOT) and what
 * they sit on; the classification and the order are pure.  The order: a
 * filesystem with room for a 32 GB Home Assistant disk first, then an SSD
 * before a disk before the SD card, then the most free space.
 */
enum storage_media {
	MEDIA_SSD = 0, /* nvme, or a disk that says it does not rotate */
	MEDIA_DISK, /* sdX/vdX, rotation unknown */
	MEDIA_HDD, /* a rotating disk */
	MEDIA_OTHER, /* loop, zram, device mapper, unknown */
	MEDIA_SD /* mmcblk: the Pi's SD card (or eMMC) */
};
#define STORAGE_MAX 16
#define STORAGE_HA_MB (32 * 1024 + 2048) /* plan.c's: a 32 GB disk + image */
struct storage_fs {
	char dir[256]; /* mount point, as on the host */
	char dev[64]; /* "/dev/nvme0n1p1" */
	char disk[32]; /* "nvme0n1"; "" when unknown */
	char fstype[16];
	enum storage_media media;
	uint64_t free_mb, size_mb;
	bool fits; /* free_mb >= STORAGE_HA_MB */
};
struct storage_list {
	struct storage_fs fs[STORAGE_MAX];
	size_t n;
};
/* A mount that can hold VM disks: a block device, a Linux fs, rw. */
bool storage_wanted(const char *dev, const char *fstype, bool readonly);
/* "/dev/mmcblk0p2" -> "mmcblk0", "/dev/sda1" -> "sda"; "" when unknown. */
void storage_disk_of(const char *dev, char *disk, size_t len);
/* ROTATIONAL: 0, 1 or -1 (unknown). */
enum storage_media storage_media_of(const char *disk, int rotational);
const char *storage_media_name(enum storage_media);
/* Adds FS (fits computed); a second mount of one device keeps the shorter
 * mount point.  -1 when the list is full. */
int storage_add(struct storage_list *, const struct storage_fs *);
void storage_rank(struct storage_list *);
/* The entry whose mount point holds DIR (longest prefix); -1: none. */
long storage_find(const struct storage_list *, const char *dir);
/* Where VM disks go on entry I: GVM_STORAGE_DEFAULT when it lies on that
 * filesystem, else MOUNT/guardian-vms.  Malloc'd. */
char *storage_dir_for(const struct storage_list *, size_t i);
int storage_scan(const char *root, struct storage_list *, char **errp);

/*
 * budget.c (pure): the host check's RAM table, like the seed's budget for
 * an 8 GB Pi 5, with plan.c's numbers (512 MiB host and 1536 MiB Guardian
 * kept back; Home Assistant and OpenMediaVault take 2048 each).
 */
#define BUDGET_GUARDIAN_MIN_MB 5632 /* plan.c's 6 GB gate, as MemTotal says */
#define BUDGET_ROWS 6
struct budget_row {
	const char *what;
	uint64_t ram_mb;
	const char *disk;
	bool vm; /* a VM row: FITS says whether its RAM is there */
	bool fits;
};
struct budget {
	struct budget_row rows[BUDGET_ROWS];
	size_t n;
	uint64_t vm_mb; /* RAM for VMs (plan.c's "RAM for VMs") */
	int64_t left_mb; /* after both VMs; negative when short */
	bool gate_ok; /* Guardian's 6 GB gate (true without Guardian) */
};
void budget_table(uint64_t ram_mb, bool guardian, struct budget *);

/*
 * ui.c: the guided screens (the only file including curses).  They drive
 * plan.c and steps.c like the command line does; A is modified (storage,
 * consent).  Returns the exit code: those of steps.c, UI_EXIT_CANCELLED
 * when the user left before installing, UI_EXIT_INTERRUPTED on Ctrl-C.
 */
#define UI_EXIT_CANCELLED 6
#define UI_EXIT_INTERRUPTED 130
int ui_run(const struct facts *, struct answers *a, const struct apply_opts *,
    bool dry_run);

#endif
