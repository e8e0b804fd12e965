/*
 * vmmod: the Guardian VMs daemon.  One header for the whole program; the
 * prototypes are grouped by the file that defines them.  Threads: libvirt's
 * default event loop runs on its own thread (virt.c) and owns the domain
 * table (state.c, guarded by one mutex); libmicrohttpd's threads (http.c)
 * only read snapshots and call libvirt directly for actions (a virConnect is
 * thread-safe).  json-c objects are never shared between threads.
 */
#ifndef VMMOD_H
#define VMMOD_H

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <json-c/json.h>

#include "common.h"
#include "spec.h"

#define VMMOD_VERSION "0.1.0"
#define API_MAX_BODY (64 * 1024)

/* An error for an API caller: HTTP status, machine code, human message. */
struct api_error {
	int status; /* 400, 404, 409, 503, ... */
	const char *code; /* "invalid_name", "not_found", "wrong_state", ... */
	char msg[256]; /* never holds a libvirt message with host paths */
};
void api_error_set(struct api_error *, int status, const char *code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* conf.c: /etc/vmmod/vmmod.conf (key = value) and CLI overrides */
enum accel_mode { ACCEL_AUTO, ACCEL_KVM, ACCEL_TCG };
struct vmmod_conf {
	char *uri; /* libvirt URI, default qemu:///system */
	char *listen; /* "HOST:PORT" TCP listener or NULL (off) */
	char *socket_path; /* Unix socket, default /run/vmmod/vmmod.sock */
	char *socket_group; /* group owning the socket, or NULL */
	int socket_mode; /* default 0660 */
	char *token_file; /* bearer token, created 0600 if missing */
	char *data_dir; /* /var/lib/vmmod: jobs, pins, nvram */
	char *templates_dir; /* template catalog */
	char *web_root; /* web-assets */
	char *lease_file; /* dnsmasq lease file */
	char *reservations_dir; /* dnsmasq dhcp-hostsdir we write */
	char *hosts_dir; /* dnsmasq hostsdir we write (DNS names) */
	char *domain; /* DNS domain of the VM names, or NULL */
	char *reserve_block; /* VM addresses, "A-B" */
	char *reserve_subnet; /* bridge address/prefix */
	char *dhcp_pool; /* dnsmasq's dynamic range, or NULL */
	char *appliance_dir; /* {appliance_dir} of file:// templates */
	char *audit_log; /* path, or NULL for the daemon log */
	char *allowed_origins; /* space separated, for state changes */
	char *console_url_base; /* "https://192.168.4.1:8091": console URLs */
	char *console_listen; /* "HOST:PORT" TLS console listener or NULL */
	char *console_tls_cert; /* its PEM certificate (chain) */
	char *console_tls_key; /* its PEM private key */
	unsigned console_queue_kb; /* held for a slow viewer, then closed */
	char *storage_pool; /* libvirt pool our disks live in */
	char *pool_dir; /* its directory, NULL: data_dir/pool */
	char *bridge; /* default br0 */
	enum accel_mode accel;
	unsigned max_conns;
	unsigned max_conns_per_ip;
	unsigned conn_timeout_s;
	unsigned ram_budget_mb; /* 0: derive from host RAM */
	int debug;
};
void conf_init(struct vmmod_conf *); /* defaults */
void conf_clear(struct vmmod_conf *); /* frees strings */
int conf_parse(struct vmmod_conf *, const char *text, const char *name,
    char **errp); /* errp: "FILE:LINE: why" */
int conf_load(struct vmmod_conf *, const char *path, char **errp);
/* One key as in the file (CLI overrides); errp: "why", no FILE:LINE. */
int
conf_set(struct vmmod_conf *, const char *key, const char *value, char **errp);
char *conf_dump(const struct vmmod_conf *); /* parseable; caller frees */
/* Reload: NEXT keeps RUNNING's values of the keys only a restart applies
 * (swapped: RUNNING gets NEXT's, for conf_clear); their names, changed
 * ones, ", "-separated, or NULL. */
char *conf_keep_running(struct vmmod_conf *next, struct vmmod_conf *running);

/* kvmprobe.c: does KVM really run a guest instruction? (child process, timeout) */
enum accel_mode kvmprobe_run(const char *devpath, int timeout_ms, char **whyp);

/* leases.c: dnsmasq lease file and our reservations → MAC to IP */
struct lease_map;
struct lease_map *
leases_load(const char *lease_file, const char *reservations_dir);
const char *leases_ip_for_mac(const struct lease_map *, const char *mac);
void leases_free(struct lease_map *);

/*
 * catalog.c: the appliance templates (templates/ID.json, one per file, schema
 * in templates/README.md), validated strictly at load.  Read-only after
 * catalog_load, so any thread may read it; catalog_free when nobody does.
 */
enum catalog_kind {
	CATALOG_DISK_IMAGE, /* a bootable disk (HAOS): overlay or copy */
	CATALOG_CLOUD_IMAGE, /* a cloud image + cloud-init seed */
	CATALOG_INSTALLER_ISO /* boots the ISO onto an empty disk, VNC */
};
enum catalog_disk_mode { CATALOG_DISK_OVERLAY, CATALOG_DISK_COPY };
/* One downloadable image for one arch. */
struct catalog_image {
	enum vm_arch arch;
	char *url; /* http(s)://, or file:// with {appliance_dir} resolved */
	char *sha256; /* 64 lower-case hex of the download, NULL: unpinned */
	char *note; /* why unpinned, where the pin is from; may be NULL */
	uint64_t size; /* download bytes, 0: unknown */
	char *format; /* "qcow2" (disk/cloud images) or "iso" */
	bool xz; /* compressed with xz */
	char *version;
	char *missing; /* file:// image not there: why, else NULL */
};
struct catalog_template {
	char *id; /* = the file name without .json */
	char *name;
	char *description;
	enum catalog_kind kind;
	enum catalog_disk_mode disk_mode;
	bool uefi; /* always: Secure Boot is off */
	unsigned memory_mb, min_memory_mb, vcpus, disk_gb;
	char *web_scheme; /* NULL: no web UI */
	unsigned web_port;
	char *web_path;
	char *dns_name; /* suggested VM name, and its DNS name */
	char **wants_devices; /* NULL-terminated, e.g. "usb:zigbee" */
	bool cloud_init; /* needs a seed ISO */
	bool needs_login; /* create request must give user + password/key */
	char *user_data; /* cloud-config as JSON text, NULL: none */
	struct catalog_image images[2]; /* one per arch that has an image */
	size_t nimages;
	char *unavailable[2]; /* by enum vm_arch: why there is no image */
};
struct catalog {
	enum vm_arch host_arch;
	struct catalog_template **v; /* sorted by id */
	size_t n;
};
/* Host numbers GET /api/vms/templates compares templates with. */
struct catalog_host {
	unsigned long ram_budget_mb;
	unsigned long ram_committed_mb;
	uint64_t disk_free_bytes;
};
/* A create request, after the reservation and the pool paths are known. */
struct catalog_create {
	const char *name;
	unsigned memory_mb, vcpus, disk_gb; /* 0: the template's */
	enum vm_virt virt; /* kvm, or qemu (TCG) */
	const char *bridge; /* NULL: br0 */
	const char *mac; /* the reservation's */
	const char *ip; /* the reservation's: clean-traffic filter */
	const char *disk; /* the VM's disk in the pool */
	const char *seed_iso; /* cloud-init seed, or the installer ISO */
	const char *nvram; /* per-VM UEFI variable store */
	bool autostart;
	/* cloud-init (cloud images) */
	const char *user, *password, *hostname;
	const char *const *ssh_keys; /* NULL-terminated or NULL */
};
/* Bad files are logged and skipped; NULL only when dir cannot be read. */
struct catalog *
catalog_load(const char *dir, enum vm_arch host, const char *appliance_dir);
void catalog_free(struct catalog *);
const struct catalog_template *
catalog_find(const struct catalog *, const char *id);
/* The host arch's image, or NULL (then *whyp says why). */
const struct catalog_image *catalog_image(
    const struct catalog *, const struct catalog_template *, const char **whyp);
/* {"templates":[...]} of GET /api/vms/templates; the caller owns it. */
json_object *
catalog_templates_json(const struct catalog *, const struct catalog_host *);
/* Request + template -> a spec domxml_build accepts; NULL and *errp. */
struct vm_spec *
catalog_spec(const struct catalog *, const struct catalog_template *,
    const struct catalog_create *, char **errp);
/* "#cloud-config" user-data for a cloud image (NULL and *errp on bad input). */
char *catalog_user_data(const struct catalog_template *,
    const struct catalog_create *, char **errp);
/* Parses one template file's text (tests, vmmod -n); NULL and *errp. */
struct catalog_template *catalog_template_parse(
    const char *id, const char *json, const char *appliance_dir, char **errp);
void catalog_template_free(struct catalog_template *);

/*
 * reserve.c: an IPv4 address and a MAC per VM from a configured block, and
 * the dnsmasq files that make them real: dhcp-hostsdir/NAME
 * ("MAC,IP,NAME") and hostsdir/NAME ("IP NAME NAME.DOMAIN").  State (the
 * reservations and the free order, least recently freed first) is a JSON
 * file written atomically.  Thread-safe (one mutex).
 */
struct reserve_params {
	const char *block; /* "192.168.4.24-192.168.4.30" */
	const char *subnet; /* bridge address/prefix, "192.168.4.1/27" */
	const char *dhcp_pool; /* "192.168.4.2-192.168.4.23", NULL: unchecked */
	const char *state_file; /* e.g. /var/lib/vmmod/reservations.json */
	const char *dhcp_dir; /* dnsmasq dhcp-hostsdir */
	const char *hosts_dir; /* dnsmasq hostsdir, NULL: no DNS names */
	const char *domain; /* "guardian.local", NULL: bare names */
};
struct reservation {
	char name[SPEC_NAME_MAX + 1];
	char ip[16];
	char mac[18];
};
struct reserve;
struct reserve *reserve_open(const struct reserve_params *, char **errp);
void reserve_close(struct reserve *);
/*
 * Reserves the next address (least recently freed first) and a unique MAC
 * (mac NULL: random 52:54:00:xx:xx:xx) for a new VM name, and writes its
 * dnsmasq files.  -1 with *err (409 exists / 409 exhausted / 400 bad name).
 */
int reserve_alloc(struct reserve *, const char *name, const char *mac,
    struct reservation *, struct api_error *);
/* Frees the address (to the end of the free order) and removes the files. */
int reserve_release(struct reserve *, const char *name);
int reserve_lookup(struct reserve *, const char *name, struct reservation *);
/* A malloc'd copy of every reservation, sorted by name; returns the count. */
size_t reserve_list(struct reserve *, struct reservation **);
/* 0 when block is a usable range inside subnet and outside pool; else *errp. */
int reserve_check_block(
    const char *block, const char *subnet, const char *dhcp_pool, char **errp);

/* state.c: the in-memory domain table, kept by virt.c from libvirt events */
enum vm_state {
	VS_UNKNOWN,
	VS_RUNNING,
	VS_PAUSED,
	VS_SHUTOFF,
	VS_SHUTTING_DOWN,
	VS_CRASHED,
	VS_PMSUSPENDED,
	VS_STARTING
};
/* What virt.c and domparse.c learn about one domain. */
struct vm_facts {
	char uuid[37];
	char *name;
	char *title;
	char *mac; /* first NIC, lower case */
	char *template_id; /* from our <metadata>, NULL if outside */
	unsigned web_port; /* template's web UI port, 0 = none */
	char *web_scheme; /* "http" or "https" */
	enum vm_state state;
	unsigned vcpus;
	unsigned long memory_mb;
	bool autostart;
	bool persistent;
	bool has_vnc;
	bool has_serial;
	/* security profile (profile.c): from our <metadata> and the XML */
	char classification[16]; /* "SECRET"; "" when none */
	bool tpm;
	bool secure_boot;
	bool disk_encrypted;
};
struct vm_stats {
	double cpu_pct;
	unsigned long mem_used_mb;
	uint64_t disk_rd_bps, disk_wr_bps, net_rx_bps, net_tx_bps;
};
void vm_facts_clear(struct vm_facts *);
const char *vm_state_name(enum vm_state);
struct host_facts {
	const char *arch; /* "aarch64", "x86_64" */
	const char *accel; /* "kvm", "tcg" */
	const char *accel_why; /* why not KVM, or NULL */
	unsigned long ram_total_mb;
	unsigned long ram_budget_mb;
	bool xen; /* the Xen backend is built */
	const char *backend; /* in use: "qemu" or "xen" */
};
void state_init(const struct vmmod_conf *, const struct host_facts *);
void state_free(void);
/* Writers (the libvirt worker): each publishes an SSE event on change. */
void state_put(const struct vm_facts *); /* copies the facts */
/* For facts read from libvirt: the mark taken before reading them, so a
 * lifecycle event applied meanwhile keeps its (newer) state. */
uint64_t state_mark(void);
void state_put_since(const struct vm_facts *, uint64_t mark);
void state_remove(const char *uuid);
void state_replace_all(const struct vm_facts *, size_t n); /* resync */
void state_set_connected(bool);
void state_set_stats(const char *uuid, const struct vm_stats *);
/* For webprobe.c: running VMs whose web UI has not answered yet. */
struct web_target {
	char uuid[37];
	char ip[16];
	unsigned port;
};
size_t state_web_targets(struct web_target **);
void state_set_web_ready(const char *uuid);
/* Something entry_json reads from elsewhere (devices) changed: publish. */
void state_touch(const char *uuid);

/*
 * webprobe.c: tells when a VM's web UI answers (a TCP connect to its
 * address and port), so the dashboard shows "preparing…" until then.  Sleeps
 * until a VM starts; probes every few seconds only while one is preparing.
 */
int webprobe_start(void);
void webprobe_stop(void);
void webprobe_kick(void);
bool webprobe_answers(const char *ip, unsigned port, int timeout_ms);
/* Snapshots built under the table lock; the caller owns the result. */
json_object *state_vms_json(void); /* {"vms":[VM...]} */
/* The same serialized; cached until the table (or the second) changes. */
char *state_vms_text(size_t *lenp);
/* From a lifecycle event, before the full refresh: publishes at once. */
void state_set_state(const char *uuid, enum vm_state);
json_object *state_vm_json(const char *ref); /* VM, NULL if none */
json_object *state_status_json(void); /* /api/vms/status */
json_object *state_host_json(void); /* /api/host */
/* Resolves a route's {name}: exact domain name first, then UUID. */
int state_lookup(const char *ref, char uuid[37]);
bool state_connected(void);
/* RAM of running, paused and autostart VMs (the deploy guard's "committed"). */
unsigned long state_ram_committed_mb(void);
void
state_counts(unsigned counts[VS_STARTING + 1]); /* VMs by state, /metrics */

/*
 * events.c: a bounded ring of serialized SSE events, fanned out to watchers.
 * A waker runs with the watch list locked: it must not call events_watch or
 * events_unwatch, and should only resume a connection.
 */
uint64_t events_publish(const char *type, json_object *data);
/*
 * Copies the next event after *seqp into a malloc'd SSE text block and
 * advances *seqp.  Returns its length, 0 when nothing newer exists yet, -1
 * when the client fell behind the ring (it should re-read the list).
 */
ssize_t events_next(uint64_t *seqp, char **outp);
uint64_t events_last(void);
int events_watch(void (*wake)(void *), void *arg); /* returns a watch id */
void events_unwatch(int id);

/* domparse.c: facts from a domain's XML description (pure) */

int domparse_facts(const char *xml, struct vm_facts *);
/* File paths of the domain's disks (NULL-terminated, free with strv_free). */
char **domparse_disks(const char *xml);
void strv_free(char **);

/* virt.c: the only file that includes libvirt */
enum vm_action {
	ACT_START,
	ACT_STOP,
	ACT_FORCE_STOP,
	ACT_RESTART,
	ACT_PAUSE,
	ACT_RESUME
};
const char *vm_action_name(enum vm_action);
int virt_init(const struct vmmod_conf *); /* event thread + connect */
void virt_shutdown(void);
/* On success *vmp (may be NULL) gets the VM object after the action. */
int virt_action(const char *ref, enum vm_action, int timeout_s,
    json_object **vmp, struct api_error *);
int virt_set_autostart(
    const char *ref, bool on, json_object **vmp, struct api_error *);
int
virt_delete(const char *ref, bool remove_disk, bool force, struct api_error *);
/* virt.c, storage and define (deploy.c): *errp is for API callers (no
 * libvirt text); the details go to the log. */
int virt_pool_ensure(const char *dir, char **errp); /* define/build/start */
int virt_pool_refresh(char **errp);
/* A qcow2 volume NAME in our pool: an overlay on backing (copy: a full
 * copy of it), or empty when backing is NULL; its path into pathp.
 * secretp non-NULL: LUKS-encrypted (an overlay is refused) under a new
 * libvirt secret (usage: the volume's path, random passphrase), its UUID
 * into secretp. */
int virt_vol_create(const char *name, const char *backing,
    const char *backing_fmt, bool copy, uint64_t capacity, char pathp[PATH_MAX],
    char secretp[37], char **errp);
int virt_vol_resize(const char *name, uint64_t bytes, char **errp); /* grow */
/* 0 also when absent; the volume's secret (if any) goes with it. */
int virt_vol_delete(const char *name);
int virt_define(const char *xml, bool autostart, char uuid[37], char **errp);
int virt_start_name(const char *name, char **errp);
int virt_undefine_name(const char *name); /* 0 also when absent */
bool virt_nwfilter_exists(const char *name);
/* Stats are gathered only while someone watches (SSE clients). */
void virt_stats_watch(int delta);
unsigned long virt_reconnects(void);
/*
 * virt.c, console streams: the VM's serial console as a non-blocking libvirt
 * stream.  cb runs on libvirt's event thread with guest output (len > 0), or
 * len 0 at EOF, -1 on error (then no more calls).  After
 * virt_console_close returns, cb is never called again.
 */
struct virt_console;
typedef void (*virt_console_fn)(void *arg, const char *data, ssize_t len);
struct virt_console *virt_console_open(const char *uuid, bool force,
    virt_console_fn, void *arg, struct api_error *);
/* Sends all of buf to the guest (may block briefly); -1 on error. */
int virt_console_send(struct virt_console *, const void *buf, size_t len);
void virt_console_close(struct virt_console *);
/* A socket speaking RFB to the VM's VNC (virDomainOpenGraphicsFD). */
int virt_graphics_fd(const char *uuid, struct api_error *);

/*
 * deploy.c: POST /api/vms/create's jobs.  Validation on the caller's thread,
 * the pipeline (fetch, import, overlay, resize, seed, reserve, define, start)
 * on a small pool of workers; job files under data_dir/jobs.
 */
enum job_state {
	JOB_QUEUED,
	JOB_RUNNING,
	JOB_SUCCEEDED,
	JOB_FAILED,
	JOB_CANCELLED
};
enum job_phase {
	JOB_PHASE_NONE,
	JOB_PHASE_DOWNLOADING,
	JOB_PHASE_VERIFYING,
	JOB_PHASE_IMPORTING,
	JOB_PHASE_RESIZING,
	JOB_PHASE_SEEDING,
	JOB_PHASE_DEFINING,
	JOB_PHASE_STARTING,
	JOB_PHASE_DONE
};
/* What a job may have made (recorded before the step that makes it). */
#define JOB_MADE_DISK 0x01 /* pool volume NAME.qcow2 */
#define JOB_MADE_SEED 0x02 /* pool volume NAME-seed.iso */
#define JOB_MADE_DOMAIN 0x04 /* the domain NAME (+ its NVRAM) */
#define JOB_MADE_RESERVATION 0x08 /* IP + MAC + dnsmasq files */
#define JOB_MADE_TOFU 0x10 /* an unpinned download in the pool */
/* deploy_cleanup_plan's steps */
#define CLEAN_UNDEFINE 0x01
#define CLEAN_DISK 0x02
#define CLEAN_SEED 0x04
#define CLEAN_RESERVATION 0x08
#define CLEAN_TOFU 0x10
/* The fields of the API's Job object, plus what the job made. */
struct job_info {
	char id[24]; /* "j-" + 16 hex */
	char vm[SPEC_NAME_MAX + 1];
	char template_id[SPEC_NAME_MAX + 1];
	enum job_state state;
	enum job_phase phase; /* NONE while queued: null */
	uint64_t bytes_done, bytes_total, rate_bps;
	int64_t eta_s; /* -1: null */
	char sha256[65]; /* "" : null */
	bool pinned;
	char error[256]; /* "" : null */
	time_t created;
	unsigned made; /* JOB_MADE_* */
};
/* A create request after deploy_req_parse (template defaults filled in). */
struct deploy_req {
	char name[SPEC_NAME_MAX + 1];
	char template_id[SPEC_NAME_MAX + 1];
	unsigned memory_mb, vcpus, disk_gb;
	bool start, autostart, trust_unpinned;
	char *user, *password, *hostname;
	char **ssh_keys; /* NULL-terminated or NULL */
	struct vm_usbdev *usb;
	size_t nusb;
	char **pci; /* "0000:00:02.0"s, NULL-terminated, or NULL */
	size_t npci;
	/* security profile (profile.c's policy is checked by the parse) */
	enum vm_class classification;
	bool tpm, secure_boot, disk_encryption;
};
const char *job_state_name(enum job_state);
const char *job_phase_name(enum job_phase); /* NULL for NONE */
json_object *deploy_info_json(const struct job_info *); /* pure */
unsigned deploy_cleanup_plan(unsigned made, enum job_state);
int deploy_ram_check(unsigned long budget_mb, unsigned long committed_mb,
    unsigned long need_mb, struct api_error *);
/* Body -> request, checked against the catalog; -1 and *err (4xx). */
int deploy_req_parse(json_object *body, const struct catalog *,
    struct deploy_req *, const struct catalog_template **,
    const struct catalog_image **, struct api_error *);
void deploy_req_clear(struct deploy_req *);
/* Borrows cat and res until deploy_shutdown. */
int deploy_init(const struct vmmod_conf *, const struct host_facts *,
    struct catalog *cat, struct reserve *res);
void deploy_shutdown(void);
/* A reloaded catalog for new requests and jobs; the caller keeps the old
 * one alive until deploy_shutdown (a running job may still use it). */
void deploy_set_catalog(struct catalog *);
/* 0 and *jobp (the queued Job), or -1 and *err: 400/404/409 before any
 * download (duplicate name, RAM budget, free space, unpinned image). */
int deploy_create(json_object *body, json_object **jobp, struct api_error *);
json_object *deploy_job_json(const char *id); /* NULL: none */
json_object *deploy_jobs_json(void); /* {"jobs":[...]} */
int deploy_cancel(const char *id, json_object **jobp, struct api_error *);
json_object *deploy_templates_json(void); /* GET /api/vms/templates */
/* GET /api/host's "security": what deployed VMs can have here (NULL before
 * deploy_init); the pure part for given host facts. */
json_object *deploy_security_json(void);
/* GET /api/host's "classifications": profile.c's policy, one object per
 * classification {"name","requires":[features],"recommends":[...],"pci"} */
json_object *deploy_classes_json(void);
json_object *
deploy_security_host_json(enum vm_arch, bool xen, bool swtpm, bool sb_firmware);
/* Hooks for VM objects and deletes (no-ops before deploy_init). */
void deploy_vm_deleted(const char *name); /* releases its address */
int deploy_vm_ip(const char *name, char ip[16]); /* reserved address */
int
deploy_vm_web(const char *template_id, const char **schemep, unsigned *portp);

/*
 * pci.c (x86, libpci over sysfs) or pci_none.c (other arches: "not built"):
 * PCI devices for passthrough and the accelerators among them.
 */
enum pci_verdict {
	PCI_OK,
	PCI_BAD_ADDRESS, /* 400: not DDDD:BB:SS.F */
	PCI_ABSENT, /* 404: no such device here */
	PCI_NO_IOMMU, /* 409: IOMMU off, or the device in no group */
	PCI_INCAPABLE, /* 409: a bridge */
	PCI_HOST_USE, /* 409: drives the host console (boot_vga) */
	PCI_GROUP_SHARED, /* 409: its IOMMU group holds other endpoints */
	PCI_NOT_BUILT, /* 501: pci_none.c */
};
/* Tests point discovery at a fake tree; NULL: /sys, libpci's pci.ids, DATADIR. */
void pci_set_paths(const char *sysfs_root, const char *ids, const char *accel);
/* [{"address":"0000:00:02.0", ..., "passthrough":{...}}]; caller owns it. */
json_object *pci_devices_json(void);
json_object *pci_hypervisor_devices_json(void); /* {"devices":[...]} */
/* {"total_tops":null,"components":[...]}; usb: USB devices or NULL. */
json_object *pci_ai_acceleration_json(json_object *usb);
bool pci_addr_valid(const char *addr);
/*
 * May these devices go to one VM together?  PCI_OK, or the refusal and a
 * malloc'd *whyp for the API caller.  The whole IOMMU group must go along.
 * Use by another VM is the caller's check (the domain table).
 */
enum pci_verdict pci_check_passthrough(const char *addr, char **whyp);
enum pci_verdict
pci_check_passthrough_set(const char *const *addrs, size_t n, char **whyp);
int pci_verdict_status(enum pci_verdict); /* HTTP status */
const char *pci_verdict_code(enum pci_verdict); /* API error code */
/* GET /api/hypervisor/pci-devices and /ai-acceleration (the Xen seed's) */
struct api_request;
struct api_response;
void pci_api_devices(
    const struct api_request *, const char *, struct api_response *);
void
pci_api_accel(const struct api_request *, const char *, struct api_response *);

/*
 * xen.c (x86: libvirt's libxl driver) or xen_none.c ("not built"): the
 * backend registry.  The libvirt URI (xen:///system -> xen) or the config's
 * backend word picks one; it says which domain type new VMs get and how
 * consoles reach a guest.
 */
struct vm_backend {
	const char *name; /* "qemu", "xen" */
	enum vm_virt virt; /* new VMs (qemu: kvmprobe may pick TCG) */
	bool console_stream; /* virDomainOpenConsole */
	bool graphics_fd; /* virDomainOpenGraphicsFD; else VNC on
					   127.0.0.1, proxied (xen_vnc_connect) */
};
/* name: NULL or "qemu"/"xen"; 0 and *bp, or -1 and a malloc'd *whyp. */
int xen_backend_pick(const char *uri, const char *name,
    const struct vm_backend **bp, char **whyp);
bool xen_dom0_running(const char *proc_root); /* PROC/xen exists */
/* The backend picked at start (vmmod.c); "qemu" until then. */
void vm_backend_set(const struct vm_backend *);
const struct vm_backend *vm_backend(void);
/* A socket to the guest's VNC, which must listen on 127.0.0.1 only. */
int xen_vnc_connect(const char *live_xml, char **whyp);

/* api.c: the router and handlers; knows nothing of libmicrohttpd */
#define API_MAX_SEGS 8
enum api_method { AM_GET = 1, AM_POST = 2, AM_PUT = 4, AM_DELETE = 8 };
/* Route flags */
#define API_NOAUTH 0x1 /* answered without credentials on TCP */
#define API_LIBVIRT 0x2 /* 503 libvirtd_down while disconnected */
#define API_SLOW 0x4 /* non-GET calls libvirt: run off the HTTP thread */
#define API_SLOW_GET 0x8 /* GET calls libvirt too (per VM): off it as well */
struct api_request {
	unsigned method; /* one AM_* bit; HEAD is AM_GET */
	char *seg[API_MAX_SEGS]; /* percent-decoded path segments */
	int nseg;
	const char *(*arg)(void *, const char *); /* query argument or NULL */
	void *arg_cls;
	const char *content_type;
	const char *body; /* body_len bytes, not NUL-terminated */
	size_t body_len;
	const char *peer; /* "uid:N" or an address, for audit */
	const char *session; /* session cookie value or NULL */
	/* consoles: request headers and cookies by name (with arg_cls) */
	const char *(*header)(void *, const char *);
	const char *(*cookie)(void *, const char *);
};
/*
 * A websocket a handler accepted: http.c answers 101 and then hands the
 * socket over.  start runs once, on an MHD thread; from then on the callee
 * owns fd and urh (closed only with http_upgrade_close).  cancel runs instead
 * when the 101 never went out.
 */
struct api_upgrade {
	char accept[29]; /* Sec-WebSocket-Accept */
	void (*start)(
	    void *arg, int fd, const char *extra, size_t extra_len, void *urh);
	void (*cancel)(void *arg);
	void *arg;
};
struct api_response {
	int status;
	json_object *json; /* owned; serialized by http.c */
	char *text; /* owned; used when json is NULL */
	const char *content_type; /* with text */
	unsigned allow; /* 405: AM_* bits the path has */
	char *set_cookie; /* owned, or NULL */
	bool events; /* stream SSE instead of a body */
	char *csp; /* owned: a page's Content-Security-Policy */
	struct api_upgrade *upgrade; /* owned: answer 101, then hand over */
};
unsigned api_method_bit(const char *);
/* Route index for the request (-1: none), its allowed methods in *allowp. */
int api_route(const struct api_request *, unsigned *allowp);
const char *api_route_pattern(int route); /* metrics label */
unsigned api_route_flags(int route);
void api_handle(const struct api_request *, int route, struct api_response *);
void api_response_error(struct api_response *, const struct api_error *);
void api_response_clear(struct api_response *);
int api_name_check(const char *, struct api_error *);
/* Empty body: 0 and *objp NULL.  Not a JSON object: -1 and *err set. */
int api_body_parse(const char *ctype, const char *body, size_t len,
    json_object **objp, struct api_error *);
void api_metrics_observe(int route, int status, double seconds);
unsigned long api_requests_total(void); /* every answered request */
/* FN runs on the first request after api_burst_end (or ever) */
void api_set_burst_hook(void (*fn)(void));
void api_burst_end(void);
char *api_metrics_text(const unsigned counts[VS_STARTING + 1],
    unsigned long reconnects, unsigned sse_clients);

/* http.c: libmicrohttpd listeners, auth, limits, routing to api.c */
int http_start(const struct vmmod_conf *);
void http_stop(void);
int http_token_load(const char *path); /* creates it (0600) if missing */
/* SIGHUP: a TCP listener's token re-read from PATH (kept if unreadable). */
int http_token_reload(const char *path);
void http_origins_reload(const char *allowed); /* allowed_origins */
/* POST /api/login: a new session's Set-Cookie value, NULL on a bad token. */
char *http_session_login(const char *token);
char *http_session_logout(const char *id); /* the clearing Set-Cookie */
bool http_session_valid(const char *id);
/* 32 random bytes (gnutls_rnd) as 64 hex digits; -1 if the RNG fails. */
int http_random_hex(char out[65]);
/* The web assets' version (16 hex digits + NUL): pages link
 * assets/v/<it>/FILE, kept by browsers for good (http.c). */
#define ASSET_VER 17
void http_asset_version(char out[ASSET_VER]);
/* Which web file a GET path names: its path below web_root in rel (only
 * [A-Za-z0-9._-] names, none empty or hidden), the version it was asked by
 * in ver ("" without one). */
enum static_kind { SK_NONE, SK_INDEX, SK_LOGIN, SK_ASSET };
enum static_kind http_static_lookup(
    const char *uri, char *rel, size_t relsz, char ver[ASSET_VER]);
/* Closes an upgraded connection (MHD_UPGRADE_ACTION_CLOSE). */
void http_upgrade_close(void *urh);
unsigned http_sse_clients(void);
/* Pure helpers, exported for the unit tests. */
bool http_origin_ok(const char *origin, const char *host, const char *allowed);
const char *http_bearer(const char *authorization);
int http_listen_parse(const char *spec, char **hostp, char **portp);
int http_split_path(char *path, char *seg[API_MAX_SEGS]);

/*
 * ws.c: RFC 6455 websockets over an upgraded socket; framing by wslay, the
 * handshake's SHA-1/base64 by nettle.  Not locked: one caller at a time.
 */
#define WS_ACCEPT_LEN 28
struct ws;
typedef void (*ws_message_fn)(
    void *arg, struct ws *, bool binary, const uint8_t *msg, size_t len);
/* base64(SHA-1(key + RFC 6455 GUID)) */
int ws_accept_key(const char *key, char out[WS_ACCEPT_LEN + 1]);
/* 0 and accept filled, else the HTTP status to answer (400, 426) and *whyp. */
int ws_handshake_check(const char *upgrade, const char *connection,
    const char *version, const char *key, char accept[WS_ACCEPT_LEN + 1],
    const char **whyp);
/* fd: non-blocking; extra: bytes already read past the headers (copied). */
struct ws *ws_new(int fd, const char *extra, size_t extra_len, size_t max_msg,
    ws_message_fn, void *arg);
void ws_free(struct ws *); /* does not close fd */
int ws_send(struct ws *, bool binary, const void *, size_t); /* queues */
int ws_ping(struct ws *);
void ws_close(struct ws *, uint16_t code, const char *reason); /* queues */
int ws_read(struct ws *); /* -1: connection over */
int ws_write(struct ws *); /* -1: connection over */
bool ws_want_read(const struct ws *);
bool ws_want_write(const struct ws *);
bool ws_has_buffered(const struct ws *); /* handed-over bytes unread */
bool ws_done(const struct ws *); /* closed both ways or broken */
bool ws_closing(const struct ws *); /* a close was sent or received */
size_t ws_queued(const struct ws *); /* bytes waiting to be sent */
bool ws_take_rx(struct ws *); /* bytes arrived since last call */
uint16_t ws_close_sent(const struct ws *); /* 0: none yet */
uint16_t ws_close_received(const struct ws *);

/*
 * console.c: serial and VNC consoles in the browser.  Tickets (single use,
 * 30 s) open the console page, which holds a console session cookie per VM;
 * the websocket wants that cookie or a ticket, and a matching Origin.  One
 * libvirt console stream per VM, fanned out to every viewer; VNC gets one
 * virDomainOpenGraphicsFD socket per viewer.  One I/O thread (epoll).
 *
 * Serial websocket protocol (binary or text frames), like ttyd's:
 *   '0' + bytes   input to the guest (client -> vmmod)
 *   '1' + bytes   output of the guest (vmmod -> client)
 *   '2' + JSON    {"cols":N,"rows":N} resize, informational
 * VNC: raw RFB bytes both ways in binary frames, no type byte.
 */
#define CONSOLE_TICKET_TTL 30
#define CONSOLE_ID_LEN 64
enum console_type { CONSOLE_SERIAL, CONSOLE_VNC };
#define CONSOLE_IN '0'
#define CONSOLE_OUT '1'
#define CONSOLE_RESIZE '2'
struct console_msg {
	int type; /* CONSOLE_IN or CONSOLE_RESIZE */
	const uint8_t *data; /* CONSOLE_IN: the bytes */
	size_t len;
	unsigned cols, rows; /* CONSOLE_RESIZE */
};
/* One client message of the serial protocol; -1 when it breaks it. */
int console_msg_parse(const uint8_t *msg, size_t len, struct console_msg *);
int console_type_parse(const char *, enum console_type *);
const char *console_type_name(enum console_type);
/* Tickets and console sessions; now is CLOCK_MONOTONIC seconds. */
int console_ticket_new(const char *uuid, enum console_type, time_t now,
    char out[CONSOLE_ID_LEN + 1]);
/* Consumes a live ticket for that VM and type: 0, else -1. */
int console_ticket_take(
    const char *id, const char *uuid, enum console_type, time_t now);
int
console_session_new(const char *uuid, time_t now, char out[CONSOLE_ID_LEN + 1]);
bool console_session_ok(const char *id, const char *uuid, time_t now);
void console_reset(void); /* forgets tickets, sessions */
/* "vmmod_console_<uuid>", the cookie name of a VM's console session */
void console_cookie_name(const char *uuid, char *buf, size_t size);
/* Does Host look like host[:port] (no path, no spaces, no userinfo)? */
bool console_host_ok(const char *host);
/* Started and stopped by http.c around its daemons. */
int console_start(const struct vmmod_conf *);
void console_origins_reload(const char *allowed); /* allowed_origins */
void console_stop(void);
/* Handlers of api.c's console routes; uuid is the resolved VM. */
void console_api_ticket(const struct api_request *, const char *name,
    const char *uuid, struct api_response *);
void console_api_page(const struct api_request *, const char *name,
    const char *uuid, struct api_response *);
void console_api_ws(const struct api_request *, enum console_type,
    const char *uuid, struct api_response *);

/*
 * usb.c: host USB devices through libusb-1.0 (the only file with libusb.h).
 * Strings come from sysfs; bus/address change on every replug, the port
 * path ("1-1.2") names the socket.  The hotplug callback runs on usb.c's own
 * thread.
 */
#define USB_STR_MAX 128
struct usb_dev {
	unsigned vendor, product;
	unsigned bus, address; /* libvirt's <address bus= device=> */
	char port[32]; /* sysfs name: "1-1.2", root hubs "usb1" */
	unsigned dev_class; /* bDeviceClass */
	bool hub; /* hub or root hub: never passed through */
	bool storage; /* a mass-storage interface: may be the host's disk */
	char serial[USB_STR_MAX]; /* "" when it has none */
	char manufacturer[USB_STR_MAX];
	char product_name[USB_STR_MAX];
};
typedef void (*usb_event_fn)(const struct usb_dev *, bool arrived);
int usb_init(usb_event_fn); /* hotplug thread when libusb has it */
void usb_shutdown(void);
int usb_scan(struct usb_dev **devsp, size_t *np); /* malloc'd array */

/*
 * devices.c: the devices API.  Known devices come from a data file
 * (templates/devices/usb-devices.json); the USB devices a VM wants are kept
 * in its domain's <metadata><gvm:vm><gvm:usb vendor product serial|port/>,
 * because libvirt matches hostdevs by vendor/product (and bus/device) only:
 * vmmod resolves serial -> the current bus/device when attaching, when the
 * device comes back (hotplug) and at start-up.
 */
struct usb_cfg {
	unsigned vendor, product;
	char serial[USB_STR_MAX]; /* "" : none, then port counts */
	char port[32];
};
/* A usb <hostdev> of a domain's XML. */
struct usb_hostdev {
	unsigned vendor, product;
	unsigned bus, device; /* 0: no <address> */
	bool missing; /* live: libvirt's missing='yes', not in QEMU */
	char *xml; /* the element, for detaching it */
};
int devices_init(const struct vmmod_conf *);
void devices_shutdown(void);
/* The known-device list from its file's text; -1 and *errp. */
int devices_known_load_text(const char *json, char **errp);
/* {"kind","name"} of a known device, or NULL. */
json_object *devices_usb_known(const struct usb_dev *);
/* "10c4:ea60:SERIAL", or "10c4:ea60@1-1.2" without a serial. */
void devices_usb_id(unsigned vendor, unsigned product, const char *serial,
    const char *port, char *buf, size_t size);
bool devices_cfg_matches(const struct usb_cfg *, const struct usb_dev *);
/* Pure XML helpers (libxml2): <gvm:vm> metadata and domain hostdevs. */
size_t devices_meta_parse(const char *meta, struct usb_cfg **cfgp);
char *devices_meta_build(const char *meta, const struct usb_cfg *, size_t n);
size_t devices_hostdevs_parse(const char *domxml, struct usb_hostdev **hdp);
void devices_hostdevs_free(struct usb_hostdev *, size_t n);
/* The hotplug handler: usb.c's callback and the tests' synthetic events. */
void devices_usb_event(const struct usb_dev *, bool arrived);
/* Re-attaches configured devices that are present (start-up, rescans). */
void devices_reconcile(void);
json_object *devices_host_json(void); /* {"usb":[],"pci":[]} */
json_object *devices_vm_json(const char *uuid); /* [{id,name,state}] */
/*
 * The VM list's cheap copy of devices_vm_json ([{id,name,state}], a new
 * array, empty when none), kept per VM and recomputed off the list path by a
 * worker when devices_kick(uuid, or NULL: every VM) marks it; a summary that
 * changes makes state.c publish the VM (state_touch).  devices_summary_set
 * takes arr (NULL: forget the VM) and says whether it changed.
 */
json_object *devices_vm_summary(const char *uuid);
void devices_kick(const char *uuid);
bool devices_summary_set(const char *uuid, json_object *arr);
int devices_attach(const char *uuid, json_object *body, json_object **devp,
    struct api_error *);
int devices_detach(const char *uuid, const char *id, struct api_error *);
/*
 * PCI through the same API (x86; pci_none.c: 501 not_built): POST
 * {"pci": "0000:00:02.0" | [whole IOMMU group]}, the device id is its
 * address.  Pure helpers for the domain's <hostdev type='pci'>.
 */
struct pci_hostdev {
	char addr[16]; /* "0000:00:02.0" */
	char *xml; /* the element, for detaching it */
};
size_t devices_pci_hostdevs_parse(const char *domxml, struct pci_hostdev **);
void devices_pci_hostdevs_free(struct pci_hostdev *, size_t n);
char *devices_pci_hostdev_xml(const char *addr); /* managed='yes' */
json_object *
devices_vm_pci_json(const char *uuid); /* [{id,address,name,state}] */

/* virt.c, host devices (devices.c): no libvirt text in *err. */
/* The domain's XML (inactive: its persistent definition), its state. */
int virt_dom_xml(const char *uuid, bool inactive, char **xmlp, bool *runningp,
    bool *persistentp, struct api_error *);
/* Our <gvm:vm> metadata element (*metap NULL when there is none). */
int virt_dom_meta(
    const char *uuid, bool inactive, char **metap, struct api_error *);
int virt_dom_set_meta(const char *uuid, const char *meta, bool live,
    bool config, struct api_error *);
/* Attaches (or detaches) a <hostdev> live and/or to the definition. */
int virt_hostdev(const char *uuid, const char *xml, bool attach, bool live,
    bool config, struct api_error *);

/* audit.c: one line per state change */
int audit_open(const char *path);
void audit_log(
    const char *peer, const char *action, const char *vm, const char *result);
void audit_close(void);

/*
 * fetch.c: one image from a URL into a sparse file, verified.  The only file
 * with libcurl, liblzma and nettle's SHA-256 for images.  One streaming pass:
 * curl's write callback hashes the downloaded bytes, tees them into the
 * cache's "<key>.part" (http/https), decompresses (xz) and writes the image
 * sparsely.  A retry that finds the .part hashes and decompresses it again,
 * then asks the server for the rest (Range).  Verified http(s) downloads stay
 * in the cache as "<sha256>.dl"; a concurrent fetch of the same key waits for
 * the running one and then decompresses from that file (downloaded once).
 * file:// URLs are read in place (no cache copy, no dedupe).
 */
enum fetch_comp { FETCH_COMP_NONE, FETCH_COMP_XZ };
enum fetch_phase {
	FETCH_PHASE_IDLE,
	FETCH_PHASE_WAITING,
	FETCH_PHASE_DOWNLOADING,
	FETCH_PHASE_VERIFYING,
	FETCH_PHASE_DONE
};
struct fetch_req {
	const char *url; /* http, https or file only */
	const char *sha256; /* 64 hex of the download, NULL: compute (TOFU) */
	uint64_t size; /* expected download size, 0: unknown */
	enum fetch_comp comp;
	const char *cache_dir; /* .part and verified downloads (http/https) */
	const char
	    *out_path; /* the image; written as out_path.tmp-XXXXXX, renamed */
	unsigned connect_timeout_s; /* 0: 30 */
	unsigned low_speed_bps; /* fail below this rate ... (0: 1024) */
	unsigned low_speed_time_s; /* ... for this long (0: 60) */
	uint64_t max_bytes; /* download size guard, 0: 16 GiB */
	uint64_t max_image_bytes; /* decompressed size guard, 0: 256 GiB */
	uint64_t xz_memlimit; /* 0: 256 MiB */
};
/*
 * Shared with other threads: they may read the counters and set cancel at any
 * time.  notify (optional) runs on the fetching thread, at most ~5 times a
 * second and at each phase change; it must not call fetch_* (while waiting
 * for another fetch of the same image it runs under the registry lock).
 * Phase "waiting": another fetch downloads this image; the counters mirror it.
 */
struct fetch_progress {
	atomic_bool cancel; /* set to abort: the fetch fails "cancelled" */
	_Atomic int phase; /* enum fetch_phase */
	_Atomic uint64_t
	    bytes_done; /* downloaded bytes, a resumed .part included */
	_Atomic uint64_t bytes_total; /* 0: unknown */
	_Atomic uint64_t rate_bps;
	_Atomic int64_t eta_s; /* -1: unknown */
	void (*notify)(void *arg, const struct fetch_progress *);
	void *arg;
};
struct fetch_result {
	char sha256[65]; /* of the download; to pin when unpinned */
	uint64_t download_bytes;
	uint64_t image_bytes; /* the written image's size */
	uint64_t resumed_from; /* bytes taken from an earlier .part, or 0 */
	bool from_cache; /* decompressed from a verified download */
};
void fetch_progress_init(struct fetch_progress *);
const char *fetch_phase_name(int phase); /* "downloading", ... */
/*
 * 0 and *res filled, or -1 and *errp (malloc'd, no libcurl jargon) such as
 * "checksum mismatch: expected X, got Y" or "cancelled".  On failure the
 * output is gone; the .part stays only when a retry can resume it (network
 * errors), never after a bad checksum, bad data, cancel or a full disk.
 */
int fetch_image(const struct fetch_req *, struct fetch_progress *,
    struct fetch_result *, char **errp);
/* Removes the verified download of sha256 from the cache (not while in use). */
int fetch_cache_drop(const char *cache_dir, const char *sha256);
/* What `qemu-img info` says of an image (fork/exec, timeout, json-c). */
struct image_info {
	char format[16]; /* "qcow2", "raw", ... */
	int qcow2_version; /* 2 or 3; 0 when not qcow2 */
	uint64_t virtual_size;
	uint64_t actual_size;
};
/* -1 and *errp on failure, and for images with a backing or external data file. */
int image_inspect(const char *path, struct image_info *, char **errp);
/* Does the image's format match the template's ("qcow2", "raw")? */
int
image_check_format(const struct image_info *, const char *want, char **errp);

#endif
