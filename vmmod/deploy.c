/*
 * One-click deploys: the job runner behind POST /api/vms/create.  A request
 * is validated on the HTTP thread (name free in libvirt, in the reservations
 * and in running jobs; template available on this arch; consent for an
 * unpinned image; RAM budget; free space in the pool) and becomes a job that
 * a small pool of worker threads runs: download and verify (fetch.c) into a
 * read-only base image in the pool directory, inspect it, create the VM disk
 * as an overlay on it (or a copy) in the libvirt pool, grow it, write a
 * cloud-init seed, reserve IP + MAC, define the domain, start it.  Every
 * phase change is an SSE "job" event and a job file under data_dir/jobs
 * (written atomically, *before* the step it announces, so that after a crash
 * the file says what may exist).  A failure, a cancel or a vmmod killed
 * mid-job removes what the job made: disk, seed, domain (with its NVRAM),
 * reservation.  All libvirt calls are in virt.c's "storage and define"
 * section.
 *
 * Security profiles (issue 8.5): the request's classification is held to
 * profile.c's policy before anything is downloaded; tpm, secure_boot (x86_64
 * OVMF secboot + Microsoft keys) and disk_encryption go into the vm_spec.
 * An encrypted disk is a full LUKS qcow2 copy of the image (never an overlay
 * on the plain base) made by libvirt under a new private secret whose usage
 * is the volume's path: whatever removes the volume removes the secret.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vmmod.h"

#define DEPLOY_WORKERS 2 /* jobs running at once */
#define DEPLOY_MAX_JOBS 64 /* kept in the table (finished ones pruned) */
#define DEPLOY_DISK_MAX_GB 4096
#define SEED_TIMEOUT_S 60
/*
 * Secure Boot on x86_64: OVMF's secure-boot build (SMM) with the Microsoft
 * keys enrolled in the VARS template (Debian's ovmf); the TPM is swtpm.
 */
#define SB_CODE "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
#define SB_VARS "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
#define SWTPM_BIN "/usr/bin/swtpm"

static const char *const job_states[] = {
    [JOB_QUEUED] = "queued",
    [JOB_RUNNING] = "running",
    [JOB_SUCCEEDED] = "succeeded",
    [JOB_FAILED] = "failed",
    [JOB_CANCELLED] = "cancelled",
};

static const char *const job_phases[] = {
    [JOB_PHASE_NONE] = NULL,
    [JOB_PHASE_DOWNLOADING] = "downloading",
    [JOB_PHASE_VERIFYING] = "verifying",
    [JOB_PHASE_IMPORTING] = "importing",
    [JOB_PHASE_RESIZING] = "resizing",
    [JOB_PHASE_SEEDING] = "seeding",
    [JOB_PHASE_DEFINING] = "defining",
    [JOB_PHASE_STARTING] = "starting",
    [JOB_PHASE_DONE] = "done",
};

struct job {
	struct job_info info; /* guarded by deploy_mtx */
	struct deploy_req req;
	struct fetch_progress prog; /* atomics: read without the lock */
	atomic_bool cancel;
	struct timespec last_pub;
};

static pthread_mutex_t deploy_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t deploy_cond = PTHREAD_COND_INITIALIZER;
/* Digests of base images being fetched right now (one job each). */
static pthread_cond_t base_cond = PTHREAD_COND_INITIALIZER;
static char base_busy[DEPLOY_WORKERS][65];
static struct job *jobs[DEPLOY_MAX_JOBS];
static size_t njobs;
static pthread_t workers[DEPLOY_WORKERS];
static bool running, quitting, recovered;
/*
 * The catalog in use: swapped whole by a reload (SIGHUP), read with one
 * atomic load per request or job.  vmmod.c keeps every catalog it loaded
 * until deploy_shutdown has stopped the jobs, so a job that started with
 * the old one may finish with it.
 */
static struct catalog *catalog;

static struct catalog *
cat_now(void)
{
	return __atomic_load_n(&catalog, __ATOMIC_ACQUIRE);
}

void
deploy_set_catalog(struct catalog *c)
{
	__atomic_store_n(&catalog, c, __ATOMIC_RELEASE);
}
static struct reserve *reserve;
static char *data_dir, *pool_dir, *jobs_dir, *cache_dir, *bridge;
static struct host_facts host;

/* ---- pure parts (unit tested) ------------------------------------------ */

const char *
job_state_name(enum job_state s)
{
	return (size_t)s < nitems(job_states) ? job_states[s] : "unknown";
}

const char *
job_phase_name(enum job_phase p)
{
	return (size_t)p < nitems(job_phases) ? job_phases[p] : NULL;
}

static json_object *
str_or_null(const char *s)
{
	return s != NULL && *s != '\0' ? json_object_new_string(s) : NULL;
}

json_object *
deploy_info_json(const struct job_info *ji)
{
	json_object *o = json_object_new_object();
	char created[32];
	struct tm tm;

	gmtime_r(&ji->created, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_object_add(o, "id", json_object_new_string(ji->id));
	json_object_object_add(o, "kind", json_object_new_string("deploy"));
	json_object_object_add(o, "vm", json_object_new_string(ji->vm));
	json_object_object_add(
	    o, "template", json_object_new_string(ji->template_id));
	json_object_object_add(
	    o, "state", json_object_new_string(job_state_name(ji->state)));
	json_object_object_add(
	    o, "phase", str_or_null(job_phase_name(ji->phase)));
	json_object_object_add(
	    o, "bytes_done", json_object_new_int64((int64_t)ji->bytes_done));
	json_object_object_add(
	    o, "bytes_total", json_object_new_int64((int64_t)ji->bytes_total));
	json_object_object_add(
	    o, "rate_bps", json_object_new_int64((int64_t)ji->rate_bps));
	json_object_object_add(o, "eta_s",
	    ji->eta_s >= 0 ? json_object_new_int64(ji->eta_s) : NULL);
	json_object_object_add(o, "sha256", str_or_null(ji->sha256));
	json_object_object_add(
	    o, "pinned", json_object_new_boolean(ji->pinned));
	json_object_object_add(o, "error", str_or_null(ji->error));
	json_object_object_add(o, "created", json_object_new_string(created));
	return o;
}

/*
 * What to undo for the things a job made (JOB_MADE_* bits, recorded before
 * each step).  A succeeded job keeps everything.
 */
unsigned
deploy_cleanup_plan(unsigned made, enum job_state st)
{
	unsigned plan = 0;

	if (st == JOB_SUCCEEDED)
		return 0;
	if (made & JOB_MADE_DOMAIN)
		plan |= CLEAN_UNDEFINE;
	if (made & JOB_MADE_DISK)
		plan |= CLEAN_DISK;
	if (made & JOB_MADE_SEED)
		plan |= CLEAN_SEED;
	if (made & JOB_MADE_RESERVATION)
		plan |= CLEAN_RESERVATION;
	if (made & JOB_MADE_TOFU)
		plan |= CLEAN_TOFU;
	return plan;
}

int
deploy_ram_check(unsigned long budget_mb, unsigned long committed_mb,
    unsigned long need_mb, struct api_error *err)
{
	if (budget_mb == 0 || committed_mb + need_mb <= budget_mb)
		return 0;
	api_error_set(err, 409, "ram_budget",
	    "not enough RAM: %lu MB committed to VMs + %lu MB for this one "
	    "= %lu MB exceeds the budget of %lu MB",
	    committed_mb, need_mb, committed_mb + need_mb, budget_mb);
	return -1;
}

void
deploy_req_clear(struct deploy_req *r)
{
	size_t i;

	free(r->user);
	free(r->password);
	free(r->hostname);
	if (r->ssh_keys != NULL)
		for (i = 0; r->ssh_keys[i] != NULL; i++)
			free(r->ssh_keys[i]);
	free(r->ssh_keys);
	for (i = 0; i < r->nusb; i++)
		free(r->usb[i].serial);
	free(r->usb);
	for (i = 0; i < r->npci; i++)
		free(r->pci[i]);
	free(r->pci);
	memset(r, 0, sizeof(*r));
}

static int
req_fields(json_object *o, const char *where, const char *const allowed[],
    struct api_error *err)
{
	size_t i;

	json_object_object_foreach(o, key, val)
	{
		(void)val;
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(key, allowed[i]) == 0)
				break;
		if (allowed[i] == NULL) {
			api_error_set(err, 400, "unknown_field",
			    "unknown field \"%s%.64s\"", where, key);
			return -1;
		}
	}
	return 0;
}

/* 1 present, 0 absent, -1 bad */
static int
req_uint(json_object *o, const char *key, unsigned min, unsigned max,
    unsigned *vp, struct api_error *err)
{
	json_object *v;
	int64_t n;

	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_int)) {
		api_error_set(
		    err, 400, "bad_type", "%s must be an integer", key);
		return -1;
	}
	n = json_object_get_int64(v);
	if (n < min || n > max) {
		api_error_set(err, 400, "out_of_range",
		    "%s must be between %u and %u", key, min, max);
		return -1;
	}
	*vp = (unsigned)n;
	return 1;
}

static int
req_bool(json_object *o, const char *key, bool *vp, struct api_error *err)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_boolean)) {
		api_error_set(
		    err, 400, "bad_type", "%s must be true or false", key);
		return -1;
	}
	*vp = json_object_get_boolean(v);
	return 1;
}

static int
req_str(json_object *o, const char *key, size_t max, char **vp,
    struct api_error *err)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_string) ||
	    (size_t)json_object_get_string_len(v) > max) {
		api_error_set(err, 400, "bad_type",
		    "%s must be a string of at most %zu bytes", key, max);
		return -1;
	}
	*vp = xstrdup(json_object_get_string(v));
	return 1;
}

/* "10c4" or 4292: a USB vendor/product id. */
static int
req_usbid(json_object *v, unsigned *idp)
{
	const char *s;
	char *end;
	unsigned long n;

	if (json_object_is_type(v, json_type_int)) {
		if (json_object_get_int64(v) < 0 ||
		    json_object_get_int64(v) > 0xffff)
			return -1;
		*idp = (unsigned)json_object_get_int64(v);
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return -1;
	s = json_object_get_string(v);
	if (strncmp(s, "0x", 2) == 0)
		s += 2;
	if (strlen(s) != 4 || strspn(s, "0123456789abcdefABCDEF") != 4)
		return -1;
	n = strtoul(s, &end, 16);
	*idp = (unsigned)n;
	return 0;
}

/* devices.pci: ["0000:00:02.0", ...], the whole IOMMU group (checked on
 * the host by deploy_create). */
static int
req_pci(json_object *dev, struct deploy_req *r, struct api_error *err)
{
	json_object *a, *v;
	size_t i, j, n;

	if (!json_object_object_get_ex(dev, "pci", &a) || a == NULL)
		return 0;
	if (!json_object_is_type(a, json_type_array) ||
	    (n = json_object_array_length(a)) > SPEC_PCI_MAX) {
		api_error_set(err, 400, "bad_type",
		    "devices.pci must be an array of at most %d PCI addresses",
		    SPEC_PCI_MAX);
		return -1;
	}
	r->pci = xcalloc(n + 1, sizeof(*r->pci));
	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(a, i);
		if (!json_object_is_type(v, json_type_string) ||
		    !pci_addr_valid(json_object_get_string(v))) {
			api_error_set(err, 400, "bad_device",
			    "devices.pci[]: PCI addresses look like "
			    "0000:00:02.0 (lower-case hex)");
			return -1;
		}
		for (j = 0; j < i; j++)
			if (strcmp(r->pci[j], json_object_get_string(v)) == 0) {
				api_error_set(err, 400, "bad_device",
				    "devices.pci[]: %s is listed twice",
				    r->pci[j]);
				return -1;
			}
		r->pci[i] = xstrdup(json_object_get_string(v));
		r->npci++;
	}
	return 0;
}

/*
 * classification, tpm, secure_boot, disk_encryption: types, what this host
 * arch can give, then the classification's policy (profile.c) -- all before
 * anything is downloaded.
 */
static int
req_security(json_object *o, const struct catalog *c, struct deploy_req *r,
    struct api_error *err)
{
	char *cls = NULL, *why = NULL;
	unsigned have = 0;

	if (req_str(o, "classification", 32, &cls, err) < 0)
		return -1;
	if (cls != NULL && vm_class_parse(cls, &r->classification) < 0) {
		free(cls);
		api_error_set(err, 400, "bad_classification",
		    "classification must be UNCLASSIFIED, CUI, SECRET or "
		    "TOP SECRET");
		return -1;
	}
	free(cls);
	if (req_bool(o, "tpm", &r->tpm, err) < 0 ||
	    req_bool(o, "secure_boot", &r->secure_boot, err) < 0 ||
	    req_bool(o, "disk_encryption", &r->disk_encryption, err) < 0)
		return -1;
	if (r->secure_boot && c->host_arch != VM_ARCH_X86_64) {
		api_error_set(err, 409, "secure_boot_unavailable",
		    WHY_SB_ARCH_FMT, vm_arch_name(c->host_arch));
		return -1;
	}
	if (r->tpm)
		have |= PROFILE_TPM;
	if (r->secure_boot)
		have |= PROFILE_SECURE_BOOT;
	if (r->disk_encryption)
		have |= PROFILE_ENCRYPTION;
	if (profile_check_flags(r->classification, have, r->npci, &why) < 0) {
		api_error_set(err, 400, "classification", "%s", why);
		free(why);
		return -1;
	}
	return 0;
}

static int
req_devices(json_object *o, struct deploy_req *r, struct api_error *err)
{
	static const char *const dev_fields[] = {"usb", "pci", NULL};
	static const char *const usb_fields[] = {
	    "vendor", "product", "serial", NULL};
	json_object *dev, *usb, *u, *v;
	size_t i, n;

	if (!json_object_object_get_ex(o, "devices", &dev) || dev == NULL)
		return 0;
	if (!json_object_is_type(dev, json_type_object)) {
		api_error_set(
		    err, 400, "bad_type", "devices must be an object");
		return -1;
	}
	if (req_fields(dev, "devices.", dev_fields, err) < 0 ||
	    req_pci(dev, r, err) < 0)
		return -1;
	if (!json_object_object_get_ex(dev, "usb", &usb) || usb == NULL)
		return 0;
	if (!json_object_is_type(usb, json_type_array) ||
	    (n = json_object_array_length(usb)) > SPEC_USB_MAX) {
		api_error_set(err, 400, "bad_type",
		    "devices.usb must be an array of at most %d devices",
		    SPEC_USB_MAX);
		return -1;
	}
	r->usb = xcalloc(n + 1, sizeof(*r->usb));
	for (i = 0; i < n; i++) {
		u = json_object_array_get_idx(usb, i);
		if (!json_object_is_type(u, json_type_object) ||
		    req_fields(u, "devices.usb[].", usb_fields, err) < 0) {
			if (err->status == 0 ||
			    !json_object_is_type(u, json_type_object))
				api_error_set(err, 400, "bad_type",
				    "devices.usb[] must be objects");
			return -1;
		}
		if (!json_object_object_get_ex(u, "vendor", &v) ||
		    req_usbid(v, &r->usb[i].vendor) < 0 ||
		    !json_object_object_get_ex(u, "product", &v) ||
		    req_usbid(v, &r->usb[i].product) < 0) {
			api_error_set(err, 400, "bad_device",
			    "devices.usb[]: vendor and product must be 4 hex "
			    "digits");
			return -1;
		}
		r->nusb++;
		if (req_str(u, "serial", 126, &r->usb[i].serial, err) < 0)
			return -1;
	}
	return 0;
}

static int
req_cloud_init(json_object *o, struct deploy_req *r, struct api_error *err)
{
	static const char *const fields[] = {
	    "user", "password", "ssh_authorized_keys", "hostname", NULL};
	json_object *ci, *keys, *k;
	size_t i, n;

	if (!json_object_object_get_ex(o, "cloud_init", &ci) || ci == NULL)
		return 0;
	if (!json_object_is_type(ci, json_type_object)) {
		api_error_set(
		    err, 400, "bad_type", "cloud_init must be an object");
		return -1;
	}
	if (req_fields(ci, "cloud_init.", fields, err) < 0 ||
	    req_str(ci, "user", 32, &r->user, err) < 0 ||
	    req_str(ci, "password", 256, &r->password, err) < 0 ||
	    req_str(ci, "hostname", SPEC_NAME_MAX, &r->hostname, err) < 0)
		return -1;
	if (!json_object_object_get_ex(ci, "ssh_authorized_keys", &keys) ||
	    keys == NULL)
		return 0;
	if (!json_object_is_type(keys, json_type_array) ||
	    (n = json_object_array_length(keys)) > 32) {
		api_error_set(err, 400, "bad_type",
		    "cloud_init.ssh_authorized_keys must be an array of at "
		    "most 32 strings");
		return -1;
	}
	r->ssh_keys = xcalloc(n + 1, sizeof(*r->ssh_keys));
	for (i = 0; i < n; i++) {
		k = json_object_array_get_idx(keys, i);
		if (!json_object_is_type(k, json_type_string)) {
			api_error_set(err, 400, "bad_type",
			    "cloud_init.ssh_authorized_keys must hold strings");
			return -1;
		}
		r->ssh_keys[i] = xstrdup(json_object_get_string(k));
	}
	return 0;
}

/*
 * The create request's body, checked against the catalog: fields, types,
 * bounds, the seed's aliases.  Nothing here looks at libvirt, the
 * reservations or the host (deploy_create does).
 */
int
deploy_req_parse(json_object *o, const struct catalog *c, struct deploy_req *r,
    const struct catalog_template **tp, const struct catalog_image **imp,
    struct api_error *err)
{
	static const char *const fields[] = {"template", "name", "memory_mb",
	    "memory", "vcpus", "disk_gb", "start", "autostart",
	    "trust_unpinned", "devices", "cloud_init", "disk_path",
	    "classification", "tpm", "secure_boot", "disk_encryption", NULL};
	const struct catalog_template *t;
	const struct catalog_image *im;
	json_object *v;
	const char *why = NULL;
	unsigned mem_alias = 0;
	int r1, r2;

	memset(r, 0, sizeof(*r));
	err->status = 0;
	if (o == NULL) {
		api_error_set(err, 400, "missing_field",
		    "a JSON body with template and name is required");
		return -1;
	}
	if (req_fields(o, "", fields, err) < 0)
		return -1;
	if (json_object_object_get_ex(o, "disk_path", &v)) {
		api_error_set(err, 400, "disk_path_refused",
		    "disk_path is not accepted: VM disks are created only in "
		    "vmmod's storage pool (give disk_gb for the size)");
		return -1;
	}
	if (!json_object_object_get_ex(o, "template", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		api_error_set(err, 400, "missing_field",
		    "template must be given as a string (GET "
		    "/api/vms/templates lists them)");
		return -1;
	}
	if ((t = catalog_find(c, json_object_get_string(v))) == NULL) {
		api_error_set(err, 404, "unknown_template",
		    "no template \"%.64s\"", json_object_get_string(v));
		return -1;
	}
	snprintf(r->template_id, sizeof(r->template_id), "%s", t->id);
	if (!json_object_object_get_ex(o, "name", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		api_error_set(err, 400, "missing_field",
		    "name must be given as a string");
		return -1;
	}
	if (!vm_name_valid_new(json_object_get_string(v))) {
		api_error_set(err, 400, "invalid_name",
		    "VM name must match ^[a-z0-9][a-z0-9-]{0,62}$ and not be "
		    "a route word");
		return -1;
	}
	snprintf(r->name, sizeof(r->name), "%s", json_object_get_string(v));
	if ((r1 = req_uint(o, "memory_mb", SPEC_MEMORY_MIN_MB,
		 SPEC_MEMORY_MAX_MB, &r->memory_mb, err)) < 0 ||
	    (r2 = req_uint(o, "memory", SPEC_MEMORY_MIN_MB, SPEC_MEMORY_MAX_MB,
		 &mem_alias, err)) < 0)
		return -1;
	if (r1 == 1 && r2 == 1 && mem_alias != r->memory_mb) {
		api_error_set(err, 400, "conflicting_fields",
		    "memory (the seed's name) and memory_mb differ");
		return -1;
	}
	if (r1 == 0 && r2 == 1)
		r->memory_mb = mem_alias;
	if (r->memory_mb == 0)
		r->memory_mb = t->memory_mb;
	if (r->memory_mb < t->min_memory_mb) {
		api_error_set(err, 400, "out_of_range",
		    "memory_mb: %s needs at least %u MB", t->name,
		    t->min_memory_mb);
		return -1;
	}
	if (req_uint(o, "vcpus", 1, SPEC_VCPUS_MAX, &r->vcpus, err) < 0 ||
	    req_uint(o, "disk_gb", 1, DEPLOY_DISK_MAX_GB, &r->disk_gb, err) < 0)
		return -1;
	if (r->vcpus == 0)
		r->vcpus = t->vcpus;
	if (r->disk_gb == 0)
		r->disk_gb = t->disk_gb;
	r->autostart = false;
	if (req_bool(o, "start", &r->start, err) < 0 ||
	    req_bool(o, "autostart", &r->autostart, err) < 0 ||
	    req_bool(o, "trust_unpinned", &r->trust_unpinned, err) < 0 ||
	    req_devices(o, r, err) < 0 || req_cloud_init(o, r, err) < 0 ||
	    req_security(o, c, r, err) < 0)
		return -1;
	if (!t->cloud_init &&
	    (r->user || r->password || r->ssh_keys || r->hostname)) {
		api_error_set(err, 400, "no_cloud_init",
		    "template %s does not use cloud-init; drop cloud_init",
		    t->id);
		return -1;
	}
	if (t->needs_login &&
	    (r->user == NULL ||
		(r->password == NULL &&
		    (r->ssh_keys == NULL || r->ssh_keys[0] == NULL)))) {
		api_error_set(err, 400, "missing_field",
		    "template %s needs cloud_init.user and a password or "
		    "ssh_authorized_keys",
		    t->id);
		return -1;
	}
	if ((im = catalog_image(c, t, &why)) == NULL) {
		api_error_set(err, 409, "template_unavailable",
		    "template %s is not available on %s: %s", t->id,
		    vm_arch_name(c->host_arch), why ? why : "no image");
		return -1;
	}
	if (im->sha256 == NULL && !r->trust_unpinned) {
		api_error_set(err, 409, "unpinned_image",
		    "the %s image has no pinned SHA-256 (%s); deploy it with "
		    "\"trust_unpinned\": true to accept the digest computed on "
		    "download (trust on first use)",
		    t->id, im->note ? im->note : "no upstream checksum");
		return -1;
	}
	if (tp != NULL)
		*tp = t;
	if (imp != NULL)
		*imp = im;
	return 0;
}

/* ---- files --------------------------------------------------------------- */

static void
job_path(const char *id, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s.json", jobs_dir, id);
}

/* Called with deploy_mtx held. */
static json_object *
job_json_locked(struct job *j)
{
	j->info.bytes_done = atomic_load(&j->prog.bytes_done);
	j->info.bytes_total = atomic_load(&j->prog.bytes_total);
	j->info.rate_bps = atomic_load(&j->prog.rate_bps);
	j->info.eta_s = atomic_load(&j->prog.eta_s);
	if (j->info.state != JOB_RUNNING) {
		j->info.rate_bps = 0;
		j->info.eta_s = -1;
	}
	return deploy_info_json(&j->info);
}

/* Called with deploy_mtx held: the job file is written before the step. */
static void
job_save_locked(struct job *j)
{
	json_object *o = job_json_locked(j);
	char path[PATH_MAX];
	const char *s;

	json_object_object_add(o, "made", json_object_new_int(j->info.made));
	json_object_object_add(
	    o, "created_ts", json_object_new_int64((int64_t)j->info.created));
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	job_path(j->info.id, path, sizeof(path));
	if (write_file_atomic(path, s, strlen(s), 0600) < 0)
		log_warn("%s: %s", __func__, path);
	json_object_put(o);
}

static void
job_publish_locked(struct job *j)
{
	json_object *o = job_json_locked(j);

	events_publish("job", o);
	json_object_put(o);
	clock_gettime(CLOCK_MONOTONIC, &j->last_pub);
}

static void
job_phase(struct job *j, enum job_phase p)
{
	pthread_mutex_lock(&deploy_mtx);
	j->info.phase = p;
	job_save_locked(j);
	job_publish_locked(j);
	pthread_mutex_unlock(&deploy_mtx);
	log_info("job %s (%s): %s", j->info.id, j->info.vm, job_phase_name(p));
}

/* Records that a step may leave something behind, before taking it. */
static void
job_made(struct job *j, unsigned bit)
{
	pthread_mutex_lock(&deploy_mtx);
	j->info.made |= bit;
	job_save_locked(j);
	pthread_mutex_unlock(&deploy_mtx);
}

/* fetch.c's progress callback: at most ~5 a second and per phase change. */
static void
job_notify(void *arg, const struct fetch_progress *p)
{
	struct job *j = arg;
	int ph = atomic_load(&p->phase);

	pthread_mutex_lock(&deploy_mtx);
	if (ph == FETCH_PHASE_VERIFYING &&
	    j->info.phase == JOB_PHASE_DOWNLOADING) {
		j->info.phase = JOB_PHASE_VERIFYING;
		job_save_locked(j);
	}
	job_publish_locked(j);
	pthread_mutex_unlock(&deploy_mtx);
}

/* ---- the pipeline (worker threads) --------------------------------------- */

static void
vol_name(char *buf, size_t len, const char *vm, const char *suffix)
{
	snprintf(buf, len, "%s%s", vm, suffix);
}

static uint64_t
pool_free_bytes(void)
{
	struct statvfs sv;

	if (pool_dir == NULL || statvfs(pool_dir, &sv) < 0) {
		if (data_dir == NULL || statvfs(data_dir, &sv) < 0)
			return UINT64_MAX;
	}
	return (uint64_t)sv.f_bavail * sv.f_frsize;
}

static int
space_check(
    const struct catalog_image *im, unsigned disk_gb, struct api_error *err)
{
	uint64_t need = ((uint64_t)disk_gb << 30) + im->size;
	uint64_t free_b = pool_free_bytes();

	if (free_b == UINT64_MAX || need <= free_b)
		return 0;
	api_error_set(err, 409, "no_space",
	    "not enough free space in the storage pool: %llu MB needed "
	    "(image + %u GB disk), %llu MB free",
	    (unsigned long long)(need >> 20), disk_gb,
	    (unsigned long long)(free_b >> 20));
	return -1;
}

/* fork/exec with an argv (never a shell), killed after SEED_TIMEOUT_S. */
static int
run_argv(char *const argv[])
{
	pid_t pid, r;
	int st, devnull, waited = 0;

	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		if ((devnull = open("/dev/null", O_RDWR)) >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
			if (!log_getverbose())
				dup2(devnull, 2);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	for (;;) {
		r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return -1;
		if (waited++ > SEED_TIMEOUT_S * 10) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		usleep(100000);
	}
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* The cloud-init NoCloud seed: an ISO labelled cidata. */
static int
make_seed(struct job *j, const struct catalog_template *t,
    const struct catalog_create *cc, const char *out, char **errp)
{
	static const char *const tools[] = {
	    "/usr/bin/genisoimage", "/usr/bin/xorrisofs", "/usr/bin/mkisofs"};
	char dir[PATH_MAX], ud[PATH_MAX + 16], md[PATH_MAX + 16], *meta = NULL;
	char *user_data, *argv[16];
	const char *tool = NULL;
	size_t i;
	int ret = -1, n = 0;

	for (i = 0; i < nitems(tools) && tool == NULL; i++)
		if (access(tools[i], X_OK) == 0)
			tool = tools[i];
	if (tool == NULL) {
		*errp = xstrdup("no ISO tool for the cloud-init seed "
				"(install genisoimage)");
		return -1;
	}
	if ((user_data = catalog_user_data(t, cc, errp)) == NULL)
		return -1;
	snprintf(dir, sizeof(dir), "%s/seed-%s", data_dir, j->info.id);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		*errp = xstrdup("cannot create the seed's work directory");
		free(user_data);
		return -1;
	}
	snprintf(ud, sizeof(ud), "%s/user-data", dir);
	snprintf(md, sizeof(md), "%s/meta-data", dir);
	xasprintf(&meta, "instance-id: %s\nlocal-hostname: %s\n", cc->name,
	    cc->hostname ? cc->hostname : cc->name);
	if (write_file_atomic(ud, user_data, strlen(user_data), 0600) < 0 ||
	    write_file_atomic(md, meta, strlen(meta), 0600) < 0) {
		*errp = xstrdup("cannot write the seed's files");
		goto done;
	}
	argv[n++] = (char *)tool;
	argv[n++] = "-output";
	argv[n++] = (char *)out;
	argv[n++] = "-volid";
	argv[n++] = "cidata";
	argv[n++] = "-joliet";
	argv[n++] = "-rock";
	argv[n++] = "-quiet";
	argv[n++] = ud;
	argv[n++] = md;
	argv[n] = NULL;
	if (run_argv(argv) < 0) {
		*errp = xstrdup("building the cloud-init seed ISO failed");
		goto done;
	}
	chmod(out, 0644);
	ret = 0;
done:
	unlink(ud);
	unlink(md);
	rmdir(dir);
	free(meta);
	free(user_data);
	return ret;
}

/* Undoes what the plan says; every step tolerates "already gone". */
static void
job_cleanup(const char *id, const char *vm, unsigned plan)
{
	char vol[SPEC_NAME_MAX + 16], path[PATH_MAX];

	if (plan & CLEAN_UNDEFINE)
		virt_undefine_name(vm);
	if (plan & CLEAN_DISK) {
		vol_name(vol, sizeof(vol), vm, ".qcow2");
		virt_vol_delete(vol);
	}
	if (plan & CLEAN_SEED) {
		vol_name(vol, sizeof(vol), vm, "-seed.iso");
		virt_vol_delete(vol);
	}
	if ((plan & CLEAN_RESERVATION) && reserve != NULL &&
	    reserve_lookup(reserve, vm, NULL) == 0)
		reserve_release(reserve, vm);
	if (plan & CLEAN_TOFU) {
		snprintf(
		    path, sizeof(path), "%s/base-tofu-%s.img", pool_dir, id);
		unlink(path);
	}
	log_info("job %s: cleaned up after %s (plan %#x)", id, vm, plan);
}

static int
job_cancelled(struct job *j, char **errp)
{
	if (!atomic_load(&j->cancel))
		return 0;
	free(*errp);
	*errp = xstrdup("cancelled");
	return -1;
}

/*
 * Trust on first use: data_dir/pins/TEMPLATE holds "SHA256 URL" of the
 * first verified download of an unpinned image; later deploys of the same
 * URL must match it.
 */
static int
pin_read(const char *tid, const char *url, char sha[65])
{
	char path[PATH_MAX], *text, *sp;
	int ret = -1;

	snprintf(path, sizeof(path), "%s/pins/%s", data_dir, tid);
	if ((text = read_file(path, 8192, NULL)) == NULL)
		return -1;
	text[strcspn(text, "\n")] = '\0';
	if ((sp = strchr(text, ' ')) != NULL && sp - text == 64 &&
	    strcmp(sp + 1, url) == 0) {
		memcpy(sha, text, 64);
		sha[64] = '\0';
		ret = 0;
	}
	free(text);
	return ret;
}

static void
pin_write(const char *tid, const char *url, const char *sha)
{
	char path[PATH_MAX], *line;

	snprintf(path, sizeof(path), "%s/pins", data_dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/pins/%s", data_dir, tid);
	xasprintf(&line, "%s %s\n", sha, url);
	if (write_file_atomic(path, line, strlen(line), 0600) < 0)
		log_warn("%s: %s", __func__, path);
	free(line);
}

/*
 * Two deploys of one pinned image: the first makes the base, the second
 * waits for it (and then finds it) instead of decompressing it a second time
 * onto the same file.
 */
static int
base_claim(struct job *j, const char *sha256)
{
	struct timespec ts;
	size_t i, slot = SIZE_MAX;
	bool busy;

	pthread_mutex_lock(&deploy_mtx);
	for (;;) {
		busy = false;
		for (i = 0; i < DEPLOY_WORKERS; i++) {
			if (strcmp(base_busy[i], sha256) == 0)
				busy = true;
			else if (base_busy[i][0] == '\0' && slot == SIZE_MAX)
				slot = i;
		}
		if (!busy || atomic_load(&j->cancel))
			break;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&base_cond, &deploy_mtx, &ts);
		slot = SIZE_MAX;
	}
	if (!busy && slot != SIZE_MAX)
		snprintf(
		    base_busy[slot], sizeof(base_busy[slot]), "%s", sha256);
	pthread_mutex_unlock(&deploy_mtx);
	return busy ? -1 : 0;
}

static void
base_release(const char *sha256)
{
	size_t i;

	pthread_mutex_lock(&deploy_mtx);
	for (i = 0; i < DEPLOY_WORKERS; i++)
		if (strcmp(base_busy[i], sha256) == 0)
			base_busy[i][0] = '\0';
	pthread_cond_broadcast(&base_cond);
	pthread_mutex_unlock(&deploy_mtx);
}

/*
 * The request's security profile onto the template's spec: TPM, Secure Boot
 * firmware (+ SMM, domxml), the encrypted disk's secret, the
 * classification, PCI devices; domxml_build validates the result again.
 */
static int
spec_security(struct vm_spec *spec, const struct deploy_req *r,
    const char *secret, char **errp)
{
	size_t i;

	spec->tpm = r->tpm;
	spec->classification = r->classification;
	if (r->secure_boot) {
		spec->secure_boot = true;
		free(spec->loader);
		free(spec->nvram_template);
		spec->loader = xstrdup(SB_CODE);
		spec->nvram_template = xstrdup(SB_VARS);
	}
	if (secret != NULL)
		spec->disk_secret = xstrdup(secret);
	if (r->npci > 0) {
		spec->pci = xcalloc(r->npci, sizeof(*spec->pci));
		for (i = 0; i < r->npci; i++)
			if (sscanf(r->pci[i], "%x:%x:%x.%x",
				&spec->pci[i].domain, &spec->pci[i].bus,
				&spec->pci[i].slot,
				&spec->pci[i].function) != 4) {
				*errp = xstrdup("devices.pci: bad address");
				return -1;
			}
		spec->npci = r->npci;
	}
	return 0;
}

static void mkdir_p(const char *path, mode_t mode);

/* Returns 0, or -1 with *errp (a message for the API caller). */
static int
job_pipeline(struct job *j, char **errp)
{
	const struct catalog *cat = cat_now(); /* one for the whole job */
	const struct catalog_template *t;
	const struct catalog_image *im;
	struct catalog_create cc;
	struct fetch_req fr;
	struct fetch_result res;
	struct image_info info;
	struct reservation rv;
	struct api_error aerr = {0};
	struct vm_spec *spec = NULL;
	char base[PATH_MAX], tofu[PATH_MAX], disk[PATH_MAX], seed[PATH_MAX];
	char nvram[PATH_MAX], vol[SPEC_NAME_MAX + 16], *xml = NULL;
	char uuid[37], secret[37], *secretp;
	const char *why;
	char pin[65];
	const char *want;
	bool have_base = false;
	int ret = -1, r;

	memset(&cc, 0, sizeof(cc));
	if ((t = catalog_find(cat, j->req.template_id)) == NULL ||
	    (im = catalog_image(cat, t, &why)) == NULL) {
		*errp = xstrdup("the template is no longer available");
		return -1;
	}
	if (space_check(im, j->req.disk_gb, &aerr) < 0) {
		*errp = xstrdup(aerr.msg);
		return -1;
	}
	/*
	 * The pool's directory removed underneath: made again as at start
	 * (libvirt's active pool follows at the next refresh), so that deploys
	 * do not fail until someone restarts the pool by hand.
	 */
	if (access(pool_dir, F_OK) < 0 && errno == ENOENT) {
		log_warnx("job %s: the pool directory %s is gone: making it "
			  "again",
		    j->info.id, pool_dir);
		mkdir_p(pool_dir, 0711);
	}
	if (virt_pool_ensure(pool_dir, errp) < 0)
		return -1;

	/* downloading, verifying: a read-only base per digest, shared */
	job_phase(j, JOB_PHASE_DOWNLOADING);
	/* An unpinned image trusted once is held to that digest since. */
	if ((want = im->sha256) == NULL && pin_read(t->id, im->url, pin) == 0)
		want = pin;
	if (want != NULL) {
		if (base_claim(j, want) < 0)
			return job_cancelled(j, errp);
		snprintf(base, sizeof(base), "%s/base-%s.img", pool_dir, want);
		have_base = access(base, R_OK) == 0;
	}
	if (!have_base) {
		memset(&fr, 0, sizeof(fr));
		fr.url = im->url;
		fr.sha256 = want;
		fr.size = im->size;
		fr.comp = im->xz ? FETCH_COMP_XZ : FETCH_COMP_NONE;
		fr.cache_dir = cache_dir;
		snprintf(tofu, sizeof(tofu), "%s/base-tofu-%s.img", pool_dir,
		    j->info.id);
		if (want == NULL)
			job_made(j, JOB_MADE_TOFU);
		fr.out_path = want != NULL ? base : tofu;
		memset(&res, 0, sizeof(res));
		r = fetch_image(&fr, &j->prog, &res, errp);
		if (want != NULL)
			base_release(want);
		if (r < 0)
			return -1;
		pthread_mutex_lock(&deploy_mtx);
		snprintf(
		    j->info.sha256, sizeof(j->info.sha256), "%s", res.sha256);
		pthread_mutex_unlock(&deploy_mtx);
		if (want == NULL) {
			snprintf(base, sizeof(base), "%s/base-%s.img", pool_dir,
			    res.sha256);
			if (access(base, R_OK) == 0)
				unlink(tofu);
			else if (rename(tofu, base) < 0) {
				*errp = xstrdup("cannot store the image");
				unlink(tofu);
				return -1;
			}
			log_info("job %s: %s image trusted on first use: "
				 "sha256 %s",
			    j->info.id, t->id, res.sha256);
			pin_write(t->id, im->url, res.sha256);
		}
	} else {
		base_release(want);
		pthread_mutex_lock(&deploy_mtx);
		snprintf(j->info.sha256, sizeof(j->info.sha256), "%s", want);
		pthread_mutex_unlock(&deploy_mtx);
	}
	if (job_cancelled(j, errp) < 0)
		return -1;

	/* importing: the base becomes a pool volume, the VM disk refers to it */
	job_phase(j, JOB_PHASE_IMPORTING);
	if (image_inspect(base, &info, errp) < 0 ||
	    image_check_format(&info, im->format, errp) < 0) {
		/* A bad image is no cache: the next deploy downloads again. */
		unlink(base);
		if (j->info.sha256[0] != '\0')
			fetch_cache_drop(cache_dir, j->info.sha256);
		return -1;
	}
	chmod(base, 0444);
	if (virt_pool_refresh(errp) < 0)
		return -1;
	vol_name(vol, sizeof(vol), j->info.vm, ".qcow2");
	/* The disk's secret goes with it (virt_vol_delete). */
	job_made(j, JOB_MADE_DISK);
	secretp = j->req.disk_encryption ? secret : NULL;
	if (t->kind == CATALOG_INSTALLER_ISO) {
		if (virt_vol_create(vol, NULL, NULL, false,
			(uint64_t)j->req.disk_gb << 30, disk, secretp,
			errp) < 0)
			return -1;
	} else if (virt_vol_create(vol, base, info.format,
		       /* encrypted: the whole image, not a plain base */
		       t->disk_mode == CATALOG_DISK_COPY || secretp != NULL,
		       info.virtual_size, disk, secretp, errp) < 0)
		return -1;
	if (job_cancelled(j, errp) < 0)
		return -1;

	/* resizing */
	job_phase(j, JOB_PHASE_RESIZING);
	if (virt_vol_resize(vol, (uint64_t)j->req.disk_gb << 30, errp) < 0)
		return -1;
	if (job_cancelled(j, errp) < 0)
		return -1;

	/* reservation first: the seed and the domain name its address */
	if (reserve == NULL) {
		*errp = xstrdup("no address reservations (see vmmod's log)");
		return -1;
	}
	job_made(j, JOB_MADE_RESERVATION);
	if (reserve_alloc(reserve, j->info.vm, NULL, &rv, &aerr) < 0) {
		*errp = xstrdup(aerr.msg);
		return -1;
	}
	snprintf(nvram, sizeof(nvram), "/var/lib/libvirt/qemu/nvram/%s_VARS.fd",
	    j->info.vm);
	cc.name = j->info.vm;
	cc.memory_mb = j->req.memory_mb;
	cc.vcpus = j->req.vcpus;
	cc.disk_gb = j->req.disk_gb;
	cc.virt = vm_backend()->virt == VM_VIRT_XEN ? VM_VIRT_XEN
	    : host.accel != NULL && strcmp(host.accel, "kvm") == 0
	    ? VM_VIRT_KVM
	    : VM_VIRT_QEMU;
	cc.bridge = bridge;
	cc.mac = rv.mac;
	cc.ip = rv.ip;
	/* clean-traffic pins the VM to its address; without the filter the
	 * domain would not start at all. */
	if (!virt_nwfilter_exists("clean-traffic")) {
		log_warnx("job %s: libvirt has no clean-traffic nwfilter "
			  "(libvirt-daemon-config-nwfilter): %s is not "
			  "protected against address spoofing",
		    j->info.id, j->info.vm);
		cc.ip = NULL;
	}
	cc.disk = disk;
	cc.nvram = nvram;
	cc.autostart = j->req.autostart;
	cc.user = j->req.user;
	cc.password = j->req.password;
	cc.hostname = j->req.hostname;
	cc.ssh_keys = (const char *const *)j->req.ssh_keys;

	/* seeding */
	if (t->kind == CATALOG_CLOUD_IMAGE) {
		job_phase(j, JOB_PHASE_SEEDING);
		vol_name(vol, sizeof(vol), j->info.vm, "-seed.iso");
		snprintf(seed, sizeof(seed), "%s/%s", pool_dir, vol);
		job_made(j, JOB_MADE_SEED);
		if (make_seed(j, t, &cc, seed, errp) < 0 ||
		    virt_pool_refresh(errp) < 0)
			return -1;
		cc.seed_iso = seed;
	} else if (t->kind == CATALOG_INSTALLER_ISO)
		cc.seed_iso = base;
	if (job_cancelled(j, errp) < 0)
		return -1;

	/* defining */
	job_phase(j, JOB_PHASE_DEFINING);
	if ((spec = catalog_spec(cat, t, &cc, errp)) == NULL)
		goto done;
	if (j->req.nusb > 0) {
		spec->usb = j->req.usb;
		spec->nusb = j->req.nusb;
		j->req.usb = NULL; /* the spec owns them now */
		j->req.nusb = 0;
	}
	if (spec_security(spec, &j->req, secretp, errp) < 0)
		goto done;
	if ((xml = domxml_build(spec, errp)) == NULL)
		goto done;
	job_made(j, JOB_MADE_DOMAIN);
	if (virt_define(xml, j->req.autostart, uuid, errp) < 0)
		goto done;
	if (job_cancelled(j, errp) < 0)
		goto done;

	/* starting */
	if (j->req.start) {
		job_phase(j, JOB_PHASE_STARTING);
		if (virt_start_name(j->info.vm, errp) < 0)
			goto done;
	}
	ret = 0;
done:
	free(xml);
	vm_spec_free(spec);
	return ret;
}

static void
job_run(struct job *j)
{
	char *err = NULL;
	unsigned plan;
	int r;

	r = job_pipeline(j, &err);
	if (r < 0 && atomic_load(&j->cancel)) {
		free(err);
		err = xstrdup("cancelled");
	}
	pthread_mutex_lock(&deploy_mtx);
	if (r == 0) {
		j->info.state = JOB_SUCCEEDED;
		j->info.phase = JOB_PHASE_DONE;
	} else {
		j->info.state =
		    atomic_load(&j->cancel) ? JOB_CANCELLED : JOB_FAILED;
		snprintf(j->info.error, sizeof(j->info.error), "%s",
		    err ? err : "failed");
	}
	plan = deploy_cleanup_plan(j->info.made, j->info.state);
	pthread_mutex_unlock(&deploy_mtx);
	if (plan != 0)
		job_cleanup(j->info.id, j->info.vm, plan);
	pthread_mutex_lock(&deploy_mtx);
	j->info.made = 0;
	job_save_locked(j);
	job_publish_locked(j);
	pthread_mutex_unlock(&deploy_mtx);
	if (r == 0)
		log_info("job %s: %s deployed", j->info.id, j->info.vm);
	else
		log_warnx("job %s: %s %s: %s", j->info.id, j->info.vm,
		    job_state_name(j->info.state), err ? err : "failed");
	audit_log("vmmod", "deploy", j->info.vm,
	    r == 0 ? "ok" : job_state_name(j->info.state));
	deploy_req_clear(&j->req);
	free(err);
}

/*
 * Jobs a killed vmmod left unfinished: marked failed and their leftovers
 * removed once libvirt answers (the first worker does it, before any new
 * job runs).
 */
static void
recover(void)
{
	struct job *todo[DEPLOY_MAX_JOBS];
	size_t i, n = 0;
	int tries;

	pthread_mutex_lock(&deploy_mtx);
	for (i = 0; i < njobs; i++)
		if (jobs[i]->info.made != 0)
			todo[n++] = jobs[i];
	pthread_mutex_unlock(&deploy_mtx);
	if (n > 0)
		for (tries = 0; tries < 300 && !state_connected() &&
		     !__atomic_load_n(&quitting, __ATOMIC_ACQUIRE);
		     tries++)
			usleep(100000);
	for (i = 0; i < n; i++) {
		job_cleanup(todo[i]->info.id, todo[i]->info.vm,
		    deploy_cleanup_plan(todo[i]->info.made, JOB_FAILED));
		pthread_mutex_lock(&deploy_mtx);
		todo[i]->info.made = 0;
		job_save_locked(todo[i]);
		job_publish_locked(todo[i]);
		pthread_mutex_unlock(&deploy_mtx);
	}
}

static void *
worker_main(void *arg)
{
	struct job *j;
	size_t i;

	pthread_mutex_lock(&deploy_mtx);
	if (!recovered) {
		recovered = true;
		pthread_mutex_unlock(&deploy_mtx);
		recover();
		pthread_mutex_lock(&deploy_mtx);
	}
	for (;;) {
		j = NULL;
		while (!quitting) {
			for (i = 0; i < njobs && j == NULL; i++)
				if (jobs[i]->info.state == JOB_QUEUED)
					j = jobs[i];
			if (j != NULL)
				break;
			pthread_cond_wait(&deploy_cond, &deploy_mtx);
		}
		if (quitting)
			break;
		j->info.state = JOB_RUNNING;
		job_save_locked(j);
		job_publish_locked(j);
		pthread_mutex_unlock(&deploy_mtx);
		job_run(j);
		pthread_mutex_lock(&deploy_mtx);
	}
	pthread_mutex_unlock(&deploy_mtx);
	return NULL;
}

/* ---- table --------------------------------------------------------------- */

static struct job *
job_new(void)
{
	struct job *j = xcalloc(1, sizeof(*j));

	fetch_progress_init(&j->prog);
	atomic_init(&j->cancel, false);
	j->prog.notify = job_notify;
	j->prog.arg = j;
	j->info.eta_s = -1;
	return j;
}

static void
job_free(struct job *j)
{
	if (j == NULL)
		return;
	deploy_req_clear(&j->req);
	free(j);
}

static bool
job_finished(const struct job *j)
{
	return j->info.state == JOB_SUCCEEDED || j->info.state == JOB_FAILED ||
	    j->info.state == JOB_CANCELLED;
}

/* Called with deploy_mtx held: room for one more, oldest finished go. */
static int
table_make_room(void)
{
	char path[PATH_MAX];
	size_t i, oldest = SIZE_MAX;

	if (njobs < DEPLOY_MAX_JOBS)
		return 0;
	for (i = 0; i < njobs; i++)
		if (job_finished(jobs[i]) && jobs[i]->info.made == 0 &&
		    (oldest == SIZE_MAX ||
			jobs[i]->info.created < jobs[oldest]->info.created))
			oldest = i;
	if (oldest == SIZE_MAX)
		return -1;
	job_path(jobs[oldest]->info.id, path, sizeof(path));
	unlink(path);
	job_free(jobs[oldest]);
	jobs[oldest] = jobs[--njobs];
	return 0;
}

static struct job *
find_job(const char *id)
{
	size_t i;

	for (i = 0; i < njobs; i++)
		if (strcmp(jobs[i]->info.id, id) == 0)
			return jobs[i];
	return NULL;
}

/* One job file back into the table; unfinished ones become failed. */
static void
load_job(const char *path)
{
	json_object *o, *v;
	struct job *j;
	const char *s;

	if ((o = json_object_from_file(path)) == NULL ||
	    !json_object_is_type(o, json_type_object)) {
		log_warnx("%s: unreadable job file, removed", path);
		unlink(path);
		json_object_put(o);
		return;
	}
	j = job_new();
#define GETS(key, dst)                                                         \
	if (json_object_object_get_ex(o, key, &v) &&                           \
	    (s = json_object_get_string(v)) != NULL &&                         \
	    json_object_is_type(v, json_type_string))                          \
	snprintf(dst, sizeof(dst), "%s", s)
	GETS("id", j->info.id);
	GETS("vm", j->info.vm);
	GETS("template", j->info.template_id);
	GETS("sha256", j->info.sha256);
	GETS("error", j->info.error);
#undef GETS
	if (json_object_object_get_ex(o, "made", &v))
		j->info.made = (unsigned)json_object_get_int(v);
	if (json_object_object_get_ex(o, "created_ts", &v))
		j->info.created = (time_t)json_object_get_int64(v);
	if (json_object_object_get_ex(o, "pinned", &v))
		j->info.pinned = json_object_get_boolean(v);
	j->info.state = JOB_FAILED;
	if (json_object_object_get_ex(o, "state", &v))
		for (size_t i = 0; i < nitems(job_states); i++)
			if (strcmp(json_object_get_string(v), job_states[i]) ==
			    0)
				j->info.state = i;
	if (json_object_object_get_ex(o, "phase", &v) && v != NULL)
		for (size_t i = 1; i < nitems(job_phases); i++)
			if (strcmp(json_object_get_string(v), job_phases[i]) ==
			    0)
				j->info.phase = i;
	atomic_store(&j->prog.bytes_done,
	    json_object_object_get_ex(o, "bytes_done", &v)
		? (uint64_t)json_object_get_int64(v)
		: 0);
	atomic_store(&j->prog.bytes_total,
	    json_object_object_get_ex(o, "bytes_total", &v)
		? (uint64_t)json_object_get_int64(v)
		: 0);
	json_object_put(o);
	if (j->info.id[0] == '\0' || !vm_name_valid_new(j->info.vm) ||
	    njobs >= DEPLOY_MAX_JOBS) {
		log_warnx("%s: bad job file, removed", path);
		unlink(path);
		job_free(j);
		return;
	}
	if (!job_finished(j)) {
		log_warnx("job %s (%s) was cut short by a vmmod stop: failed",
		    j->info.id, j->info.vm);
		j->info.state = JOB_FAILED;
		snprintf(j->info.error, sizeof(j->info.error),
		    "vmmod stopped during the job (phase %s); what it made "
		    "was removed",
		    job_phase_name(j->info.phase)
			? job_phase_name(j->info.phase)
			: "queued");
		/* Volumes named after the VM are this job's in any case. */
		j->info.made |= JOB_MADE_DISK | JOB_MADE_SEED;
		job_save_locked(j);
	}
	jobs[njobs++] = j;
}

static void
load_jobs(void)
{
	DIR *d;
	struct dirent *de;
	char path[PATH_MAX];
	size_t len;

	if ((d = opendir(jobs_dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (strncmp(de->d_name, "j-", 2) != 0 || len < 6 ||
		    strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", jobs_dir, de->d_name);
		load_job(path);
	}
	closedir(d);
}

/* Half-written images of a killed fetch or TOFU download. */
static void
sweep_pool_dir(void)
{
	DIR *d;
	struct dirent *de;
	char path[PATH_MAX];

	if ((d = opendir(pool_dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "base-", 5) != 0 ||
		    (strstr(de->d_name, ".tmp-") == NULL &&
			strncmp(de->d_name, "base-tofu-", 10) != 0))
			continue;
		snprintf(path, sizeof(path), "%s/%s", pool_dir, de->d_name);
		if (unlink(path) == 0)
			log_info("removed leftover %s", path);
	}
	closedir(d);
}

static void
mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX], *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(buf, mode);
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		log_warn("mkdir %s", buf);
}

/* ---- entry points -------------------------------------------------------- */

int
deploy_init(const struct vmmod_conf *conf, const struct host_facts *h,
    struct catalog *cat, struct reserve *res)
{
	size_t i;

	host = *h;
	deploy_set_catalog(cat);
	reserve = res;
	data_dir = xstrdup(conf->data_dir);
	if (conf->pool_dir != NULL)
		pool_dir = xstrdup(conf->pool_dir);
	else
		xasprintf(&pool_dir, "%s/pool", conf->data_dir);
	xasprintf(&jobs_dir, "%s/jobs", conf->data_dir);
	xasprintf(&cache_dir, "%s/cache", conf->data_dir);
	bridge = xstrdup(conf->bridge ? conf->bridge : "br0");
	mkdir_p(jobs_dir, 0700);
	mkdir_p(cache_dir, 0700);
	/* qemu (another user) must reach the disks: the pool is 0711. */
	mkdir_p(pool_dir, 0711);
	sweep_pool_dir();
	pthread_mutex_lock(&deploy_mtx);
	load_jobs();
	quitting = false;
	recovered = false;
	pthread_mutex_unlock(&deploy_mtx);
	for (i = 0; i < DEPLOY_WORKERS; i++) {
		if (pthread_create(&workers[i], NULL, worker_main, NULL) != 0) {
			log_warnx("%s: cannot start workers", __func__);
			return -1;
		}
	}
	running = true;
	return 0;
}

void
deploy_shutdown(void)
{
	size_t i;

	if (!running)
		return;
	pthread_mutex_lock(&deploy_mtx);
	__atomic_store_n(&quitting, true, __ATOMIC_RELEASE);
	/* Running jobs stop at their next check and clean up after them. */
	for (i = 0; i < njobs; i++)
		if (jobs[i]->info.state == JOB_RUNNING) {
			atomic_store(&jobs[i]->cancel, true);
			atomic_store(&jobs[i]->prog.cancel, true);
		}
	pthread_cond_broadcast(&deploy_cond);
	pthread_mutex_unlock(&deploy_mtx);
	for (i = 0; i < DEPLOY_WORKERS; i++)
		pthread_join(workers[i], NULL);
	pthread_mutex_lock(&deploy_mtx);
	for (i = 0; i < njobs; i++)
		job_free(jobs[i]);
	njobs = 0;
	running = false;
	pthread_mutex_unlock(&deploy_mtx);
	free(data_dir);
	free(pool_dir);
	free(jobs_dir);
	free(cache_dir);
	free(bridge);
	data_dir = pool_dir = jobs_dir = cache_dir = bridge = NULL;
	deploy_set_catalog(NULL);
	reserve = NULL;
}

/* Committed VM RAM: what libvirt's table says plus jobs still running. */
static unsigned long
committed_locked(void)
{
	unsigned long mb = state_ram_committed_mb();
	size_t i;

	for (i = 0; i < njobs; i++)
		if (jobs[i]->info.state == JOB_QUEUED ||
		    jobs[i]->info.state == JOB_RUNNING)
			mb += jobs[i]->req.memory_mb;
	return mb;
}

static json_object *
feature_json(const char *why)
{
	json_object *o = json_object_new_object();

	json_object_object_add(
	    o, "available", json_object_new_boolean(why == NULL));
	json_object_object_add(
	    o, "why", why != NULL ? json_object_new_string(why) : NULL);
	return o;
}

/*
 * Pure: which security profile features a host of ARCH can give a deployed
 * VM (xen: the Xen backend is in use; swtpm, sb_firmware: the TPM emulator
 * and OVMF's Secure Boot build are installed), as GET /api/host's
 * "security": {"tpm"|"secure_boot"|"disk_encryption": {"available": bool,
 * "why": the reason a create asking for it is refused, or null}}.  The web
 * UI's deploy dialog disables what is not available.
 */
json_object *
deploy_security_host_json(
    enum vm_arch arch, bool xen, bool swtpm, bool sb_firmware)
{
	json_object *o = json_object_new_object();
	char *sb = NULL;

	if (arch != VM_ARCH_X86_64)
		xasprintf(&sb, WHY_SB_ARCH_FMT, vm_arch_name(arch));
	else if (xen)
		sb = xstrdup(WHY_XEN_SB);
	else if (!sb_firmware)
		sb = xstrdup(WHY_NO_SB_FW);
	json_object_object_add(o, "tpm",
	    feature_json(xen ? WHY_XEN_TPM
		    : !swtpm ? WHY_NO_SWTPM
			     : NULL));
	json_object_object_add(o, "secure_boot", feature_json(sb));
	json_object_object_add(
	    o, "disk_encryption", feature_json(xen ? WHY_XEN_LUKS : NULL));
	free(sb);
	return o;
}

/* PROFILE_* bits as the feature names of the create request */
static json_object *
profile_features_json(unsigned bits)
{
	json_object *a = json_object_new_array();

	if (bits & PROFILE_TPM)
		json_object_array_add(a, json_object_new_string("tpm"));
	if (bits & PROFILE_SECURE_BOOT)
		json_object_array_add(a, json_object_new_string("secure_boot"));
	if (bits & PROFILE_ENCRYPTION)
		json_object_array_add(
		    a, json_object_new_string("disk_encryption"));
	return a;
}

json_object *
deploy_classes_json(void)
{
	json_object *a = json_object_new_array(), *o;
	enum vm_class c;

	for (c = VM_CLASS_UNCLASSIFIED; c <= VM_CLASS_TOP_SECRET; c++) {
		o = json_object_new_object();
		json_object_object_add(
		    o, "name", json_object_new_string(vm_class_name(c)));
		json_object_object_add(
		    o, "requires", profile_features_json(profile_required(c)));
		json_object_object_add(o, "recommends",
		    profile_features_json(profile_recommended(c)));
		json_object_object_add(o, "pci",
		    json_object_new_boolean(
			!(profile_required(c) & PROFILE_NO_PCI)));
		json_object_array_add(a, o);
	}
	return a;
}

json_object *
deploy_security_json(void)
{
	const struct catalog *c = cat_now();

	if (c == NULL)
		return NULL;
	return deploy_security_host_json(c->host_arch,
	    vm_backend()->virt == VM_VIRT_XEN, access(SWTPM_BIN, X_OK) == 0,
	    access(SB_CODE, R_OK) == 0 && access(SB_VARS, R_OK) == 0);
}

/* What the request wants of this host: swtpm, OVMF's Secure Boot build,
 * PCI devices that may be passed through. */
static int
host_check(const struct deploy_req *r, struct api_error *err)
{
	enum pci_verdict v;
	char *why = NULL;

	if (r->tpm && access(SWTPM_BIN, X_OK) < 0) {
		api_error_set(err, 409, "tpm_unavailable", "%s", WHY_NO_SWTPM);
		return -1;
	}
	if (r->secure_boot &&
	    (access(SB_CODE, R_OK) < 0 || access(SB_VARS, R_OK) < 0)) {
		api_error_set(
		    err, 409, "secure_boot_unavailable", "%s", WHY_NO_SB_FW);
		return -1;
	}
	if (r->npci > 0 &&
	    (v = pci_check_passthrough_set(
		 (const char *const *)r->pci, r->npci, &why)) != PCI_OK) {
		api_error_set(err, pci_verdict_status(v), pci_verdict_code(v),
		    "devices.pci: %s", why != NULL ? why : "refused");
		free(why);
		return -1;
	}
	free(why);
	return 0;
}

int
deploy_create(json_object *body, json_object **jobp, struct api_error *err)
{
	const struct catalog_template *t;
	const struct catalog_image *im;
	struct deploy_req req;
	struct job *j;
	uint8_t rnd[8];
	char uuid[37];
	size_t i;

	*jobp = NULL;
	if (!running) {
		api_error_set(err, 503, "deploy_unavailable",
		    "deploys are not available (vmmod's log says why)");
		return -1;
	}
	if (deploy_req_parse(body, cat_now(), &req, &t, &im, err) < 0 ||
	    host_check(&req, err) < 0) {
		deploy_req_clear(&req);
		return -1;
	}
	pthread_mutex_lock(&deploy_mtx);
	/* Duplicates are refused here, before anything is downloaded. */
	if (state_lookup(req.name, uuid) == 0 ||
	    (reserve != NULL && reserve_lookup(reserve, req.name, NULL) == 0)) {
		api_error_set(
		    err, 409, "exists", "a VM named %s exists", req.name);
		goto fail;
	}
	for (i = 0; i < njobs; i++)
		if (!job_finished(jobs[i]) &&
		    strcmp(jobs[i]->info.vm, req.name) == 0) {
			api_error_set(err, 409, "exists",
			    "a VM named %s is being deployed (job %s)",
			    req.name, jobs[i]->info.id);
			goto fail;
		}
	if (deploy_ram_check(host.ram_budget_mb, committed_locked(),
		req.memory_mb, err) < 0 ||
	    space_check(im, req.disk_gb, err) < 0)
		goto fail;
	if (table_make_room() < 0) {
		api_error_set(err, 503, "busy", "too many deploy jobs at once");
		goto fail;
	}
	j = job_new();
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		fatal("getrandom");
	snprintf(j->info.id, sizeof(j->info.id), "j-");
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(j->info.id + 2 + 2 * i, 3, "%02x", rnd[i]);
	snprintf(j->info.vm, sizeof(j->info.vm), "%s", req.name);
	snprintf(j->info.template_id, sizeof(j->info.template_id), "%s", t->id);
	j->info.created = time(NULL);
	j->info.state = JOB_QUEUED;
	j->info.pinned = im->sha256 != NULL;
	if (im->sha256 != NULL)
		snprintf(
		    j->info.sha256, sizeof(j->info.sha256), "%s", im->sha256);
	atomic_store(&j->prog.bytes_total, im->size);
	j->req = req;
	jobs[njobs++] = j;
	job_save_locked(j);
	job_publish_locked(j);
	*jobp = job_json_locked(j);
	pthread_cond_signal(&deploy_cond);
	pthread_mutex_unlock(&deploy_mtx);
	log_info("job %s: deploy %s as %s", j->info.id, t->id, req.name);
	if ((profile_recommended(req.classification) & PROFILE_TPM) && !req.tpm)
		log_info("job %s: %s is %s without a TPM (recommended, not "
			 "required)",
		    j->info.id, req.name, vm_class_name(req.classification));
	return 0;
fail:
	pthread_mutex_unlock(&deploy_mtx);
	deploy_req_clear(&req);
	return -1;
}

json_object *
deploy_job_json(const char *id)
{
	struct job *j;
	json_object *o = NULL;

	pthread_mutex_lock(&deploy_mtx);
	if ((j = find_job(id)) != NULL)
		o = job_json_locked(j);
	pthread_mutex_unlock(&deploy_mtx);
	return o;
}

static int
cmp_created(const void *a, const void *b)
{
	const struct job *const *x = a, *const *y = b;

	if ((*x)->info.created != (*y)->info.created)
		return (*x)->info.created < (*y)->info.created ? -1 : 1;
	return strcmp((*x)->info.id, (*y)->info.id);
}

json_object *
deploy_jobs_json(void)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();
	struct job *sorted[DEPLOY_MAX_JOBS];
	size_t i, n;

	pthread_mutex_lock(&deploy_mtx);
	n = njobs;
	memcpy(sorted, jobs, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_created);
	for (i = 0; i < n; i++)
		json_object_array_add(a, job_json_locked(sorted[i]));
	pthread_mutex_unlock(&deploy_mtx);
	json_object_object_add(o, "jobs", a);
	return o;
}

int
deploy_cancel(const char *id, json_object **jobp, struct api_error *err)
{
	struct job *j;

	*jobp = NULL;
	pthread_mutex_lock(&deploy_mtx);
	if ((j = find_job(id)) == NULL) {
		pthread_mutex_unlock(&deploy_mtx);
		api_error_set(err, 404, "not_found", "no such job");
		return -1;
	}
	if (job_finished(j)) {
		pthread_mutex_unlock(&deploy_mtx);
		api_error_set(err, 409, "wrong_state", "the job has %s",
		    j->info.state == JOB_SUCCEEDED ? "succeeded (delete the "
						     "VM instead)"
						   : "ended already");
		return -1;
	}
	atomic_store(&j->cancel, true);
	atomic_store(&j->prog.cancel, true);
	if (j->info.state == JOB_QUEUED) {
		/* Nothing made yet: it ends here. */
		j->info.state = JOB_CANCELLED;
		snprintf(j->info.error, sizeof(j->info.error), "cancelled");
		deploy_req_clear(&j->req);
		job_save_locked(j);
		job_publish_locked(j);
	}
	*jobp = job_json_locked(j);
	pthread_mutex_unlock(&deploy_mtx);
	log_info("job %s: cancel requested", id);
	return 0;
}

json_object *
deploy_templates_json(void)
{
	struct catalog_host h;

	pthread_mutex_lock(&deploy_mtx);
	h.ram_budget_mb = host.ram_budget_mb;
	h.ram_committed_mb = committed_locked();
	pthread_mutex_unlock(&deploy_mtx);
	h.disk_free_bytes = pool_free_bytes();
	return catalog_templates_json(cat_now(), &h);
}

void
deploy_vm_deleted(const char *name)
{
	if (reserve != NULL && name != NULL &&
	    reserve_lookup(reserve, name, NULL) == 0 &&
	    reserve_release(reserve, name) == 0)
		log_info("released the address of %s", name);
}

int
deploy_vm_ip(const char *name, char ip[16])
{
	struct reservation rv;

	if (reserve == NULL || name == NULL ||
	    reserve_lookup(reserve, name, &rv) < 0)
		return -1;
	memcpy(ip, rv.ip, sizeof(rv.ip));
	return 0;
}

int
deploy_vm_web(const char *template_id, const char **schemep, unsigned *portp)
{
	const struct catalog *c = cat_now();
	const struct catalog_template *t;

	if (c == NULL || template_id == NULL ||
	    (t = catalog_find(c, template_id)) == NULL || t->web_scheme == NULL)
		return -1;
	*schemep = t->web_scheme;
	*portp = t->web_port;
	return 0;
}
