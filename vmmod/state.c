/*
 * The in-memory table of every libvirt domain, kept current by the libvirt
 * worker (virt.c) from lifecycle events, so an API read never asks libvirt.
 * Each change is published once as an SSE "vm" event.  IP addresses come
 * from our dnsmasq reservations and dnsmasq's lease file (leases.c), re-read
 * only when one of them changed, at most once a second.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "vmmod.h"

struct vm_entry {
	struct vm_facts f;
	struct vm_stats stats;
	bool has_stats;
	time_t started; /* when we saw it start, 0 unknown */
	bool web_ready; /* its web UI answered since it started */
	uint64_t event_seq; /* state_set_state's last word on it (event_seq) */
};

static pthread_mutex_t state_mtx = PTHREAD_MUTEX_INITIALIZER;
/* counts the lifecycle events applied (state_set_state), see state_mark() */
static uint64_t event_seq;
static struct vm_entry *vms;
static size_t nvms, cap_vms;
static bool connected;
static struct host_facts host;
static char *lease_file, *reservations_dir;
static struct lease_map *leases;
static time_t leases_checked;
static struct timespec lease_mtime, resv_mtime;
/*
 * GET /api/vms is the hot path: its body is kept serialized and rebuilt only
 * when the table changes (table_gen) or the second does (uptime_s).
 */
static uint64_t table_gen = 1;
static char *vms_cache;
static size_t vms_cache_len;
static uint64_t vms_cache_gen;
static time_t vms_cache_time;

static const char *state_names[] = {
    [VS_UNKNOWN] = "unknown",
    [VS_RUNNING] = "running",
    [VS_PAUSED] = "paused",
    [VS_SHUTOFF] = "shutoff",
    [VS_SHUTTING_DOWN] = "shutting-down",
    [VS_CRASHED] = "crashed",
    [VS_PMSUSPENDED] = "pmsuspended",
    [VS_STARTING] = "starting",
};

const char *
vm_state_name(enum vm_state s)
{
	if ((size_t)s >= nitems(state_names))
		return "unknown";
	return state_names[s];
}

void
vm_facts_clear(struct vm_facts *f)
{
	free(f->name);
	free(f->title);
	free(f->mac);
	free(f->template_id);
	free(f->web_scheme);
	memset(f, 0, sizeof(*f));
}

static void
facts_copy(struct vm_facts *dst, const struct vm_facts *src)
{
	*dst = *src;
	dst->name = src->name ? xstrdup(src->name) : NULL;
	dst->title = src->title ? xstrdup(src->title) : NULL;
	dst->mac = src->mac ? xstrdup(src->mac) : NULL;
	dst->template_id = src->template_id ? xstrdup(src->template_id) : NULL;
	dst->web_scheme = src->web_scheme ? xstrdup(src->web_scheme) : NULL;
}

static bool
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static bool
facts_equal(const struct vm_facts *a, const struct vm_facts *b)
{
	return strcmp(a->uuid, b->uuid) == 0 && str_eq(a->name, b->name) &&
	    str_eq(a->title, b->title) && str_eq(a->mac, b->mac) &&
	    str_eq(a->template_id, b->template_id) &&
	    a->web_port == b->web_port && a->state == b->state &&
	    a->vcpus == b->vcpus && a->memory_mb == b->memory_mb &&
	    a->autostart == b->autostart && a->persistent == b->persistent &&
	    a->has_vnc == b->has_vnc && a->has_serial == b->has_serial &&
	    strcmp(a->classification, b->classification) == 0 &&
	    a->tpm == b->tpm && a->secure_boot == b->secure_boot &&
	    a->disk_encrypted == b->disk_encrypted;
}

void
state_init(const struct vmmod_conf *conf, const struct host_facts *h)
{
	pthread_mutex_lock(&state_mtx);
	host = *h;
	free(lease_file);
	free(reservations_dir);
	lease_file = conf->lease_file ? xstrdup(conf->lease_file) : NULL;
	reservations_dir =
	    conf->reservations_dir ? xstrdup(conf->reservations_dir) : NULL;
	leases_checked = 0;
	pthread_mutex_unlock(&state_mtx);
}

void
state_free(void)
{
	size_t i;

	pthread_mutex_lock(&state_mtx);
	for (i = 0; i < nvms; i++)
		vm_facts_clear(&vms[i].f);
	free(vms);
	vms = NULL;
	nvms = cap_vms = 0;
	leases_free(leases);
	leases = NULL;
	free(lease_file);
	free(reservations_dir);
	lease_file = reservations_dir = NULL;
	free(vms_cache);
	vms_cache = NULL;
	vms_cache_gen = 0;
	pthread_mutex_unlock(&state_mtx);
}

/* Called with state_mtx held. */
static struct vm_entry *
find_uuid(const char *uuid)
{
	size_t i;

	for (i = 0; i < nvms; i++)
		if (strcmp(vms[i].f.uuid, uuid) == 0)
			return &vms[i];
	return NULL;
}

/* Exact name first, then UUID (case-insensitive, as libvirt parses it). */
static struct vm_entry *
find_ref(const char *ref)
{
	size_t i;

	for (i = 0; i < nvms; i++)
		if (vms[i].f.name != NULL && strcmp(vms[i].f.name, ref) == 0)
			return &vms[i];
	for (i = 0; i < nvms; i++)
		if (strcasecmp(vms[i].f.uuid, ref) == 0)
			return &vms[i];
	return NULL;
}

static bool
mtime_changed(const char *path, struct timespec *seen)
{
	struct stat st;
	struct timespec now = {0, 0};

	if (path != NULL && stat(path, &st) == 0)
		now = st.st_mtim;
	if (now.tv_sec == seen->tv_sec && now.tv_nsec == seen->tv_nsec)
		return false;
	*seen = now;
	return true;
}

/* Called with state_mtx held: re-reads leases when their files changed. */
static void
refresh_leases(void)
{
	time_t now = time(NULL);
	bool a, b;

	if (now == leases_checked && leases != NULL)
		return;
	leases_checked = now;
	a = mtime_changed(lease_file, &lease_mtime);
	b = mtime_changed(reservations_dir, &resv_mtime);
	if (!a && !b && leases != NULL)
		return;
	leases_free(leases);
	leases = leases_load(lease_file, reservations_dir);
	table_gen++;
}

static void
json_add_str(json_object *o, const char *key, const char *val)
{
	json_object_object_add(
	    o, key, val != NULL ? json_object_new_string(val) : NULL);
}

/*
 * Where a VM's web UI is: its address (our reservation first, then what
 * dnsmasq handed out; NULL when unknown), scheme and port (0: none).
 * Called with state_mtx held.
 */
static const char *
entry_web(const struct vm_entry *e, char rip[16], const char **schemep,
    unsigned *portp)
{
	const char *ip = NULL;

	*schemep = e->f.web_scheme;
	*portp = e->f.web_port;
	if (e->f.name != NULL && deploy_vm_ip(e->f.name, rip) == 0)
		ip = rip;
	else if (e->f.mac != NULL && leases != NULL)
		ip = leases_ip_for_mac(leases, e->f.mac);
	/* The template knows the web UI when the domain XML does not. */
	if (*portp == 0)
		deploy_vm_web(e->f.template_id, schemep, portp);
	return ip;
}

/* Called with state_mtx held. */
static json_object *
entry_json(const struct vm_entry *e)
{
	json_object *o = json_object_new_object(), *st, *cons, *sec;
	const char *ip, *scheme;
	char *url = NULL, pct[32], rip[16];
	unsigned port;

	ip = entry_web(e, rip, &scheme, &port);
	json_add_str(o, "name", e->f.name);
	json_add_str(o, "uuid", e->f.uuid);
	json_add_str(o, "state", vm_state_name(e->f.state));
	json_object_object_add(o, "vcpus", json_object_new_int(e->f.vcpus));
	json_object_object_add(
	    o, "memory_mb", json_object_new_int64(e->f.memory_mb));
	json_object_object_add(
	    o, "memory", json_object_new_int64(e->f.memory_mb));
	json_object_object_add(
	    o, "autostart", json_object_new_boolean(e->f.autostart));
	json_object_object_add(
	    o, "persistent", json_object_new_boolean(e->f.persistent));
	json_add_str(o, "title", e->f.title);
	json_add_str(o, "ip", ip);
	json_add_str(o, "mac", e->f.mac);
	if (ip != NULL && port != 0)
		xasprintf(
		    &url, "%s://%s:%u", scheme ? scheme : "http", ip, port);
	json_add_str(o, "web_url", url);
	free(url);
	json_add_str(o, "template", e->f.template_id);
	cons = json_object_new_array();
	if (e->f.has_serial)
		json_object_array_add(cons, json_object_new_string("serial"));
	if (e->f.has_vnc)
		json_object_array_add(cons, json_object_new_string("vnc"));
	json_object_object_add(o, "consoles", cons);
	/* its security profile (profile.c), as the definition has it */
	sec = json_object_new_object();
	json_add_str(sec, "classification",
	    e->f.classification[0] != '\0' ? e->f.classification : NULL);
	json_object_object_add(sec, "tpm", json_object_new_boolean(e->f.tpm));
	json_object_object_add(
	    sec, "secure_boot", json_object_new_boolean(e->f.secure_boot));
	json_object_object_add(sec, "disk_encrypted",
	    json_object_new_boolean(e->f.disk_encrypted));
	json_object_object_add(o, "security", sec);
	if (e->f.state == VS_RUNNING && e->started != 0)
		json_object_object_add(o, "uptime_s",
		    json_object_new_int64(time(NULL) - e->started));
	else
		json_object_object_add(o, "uptime_s", NULL);
	/* webprobe.c says when the web UI answers ("preparing…" until then). */
	json_object_object_add(o, "web_ready",
	    port != 0 ? json_object_new_boolean(e->web_ready) : NULL);
	st = json_object_new_object();
	if (e->has_stats && e->f.state == VS_RUNNING) {
		/* One decimal, printed as such (not 52.200000000000003). */
		snprintf(pct, sizeof(pct), "%.1f", e->stats.cpu_pct);
		json_object_object_add(st, "cpu_pct",
		    json_object_new_double_s(e->stats.cpu_pct, pct));
		json_object_object_add(st, "mem_used_mb",
		    json_object_new_int64(e->stats.mem_used_mb));
		json_object_object_add(st, "disk_rd_bps",
		    json_object_new_int64(e->stats.disk_rd_bps));
		json_object_object_add(st, "disk_wr_bps",
		    json_object_new_int64(e->stats.disk_wr_bps));
		json_object_object_add(st, "net_rx_bps",
		    json_object_new_int64(e->stats.net_rx_bps));
		json_object_object_add(st, "net_tx_bps",
		    json_object_new_int64(e->stats.net_tx_bps));
	}
	json_object_object_add(o, "stats", st);
	/* USB devices it wants: devices.c's summary, no libvirt call. */
	json_object_object_add(o, "devices", devices_vm_summary(e->f.uuid));
	return o;
}

static void
publish_entry(const struct vm_entry *e)
{
	json_object *o = entry_json(e);

	events_publish("vm", o);
	json_object_put(o);
}

static void
publish_deleted(const char *uuid, const char *name)
{
	json_object *o = json_object_new_object();

	json_add_str(o, "name", name);
	json_add_str(o, "uuid", uuid);
	json_add_str(o, "state", "deleted");
	json_object_object_add(o, "deleted", json_object_new_boolean(true));
	events_publish("vm", o);
	json_object_put(o);
}

/* Called with state_mtx held.  Returns true when anything changed. */
static bool
put_locked(const struct vm_facts *f)
{
	struct vm_entry *e;

	if ((e = find_uuid(f->uuid)) != NULL) {
		if (facts_equal(&e->f, f))
			return false;
		if (f->state == VS_RUNNING && e->f.state != VS_RUNNING &&
		    e->f.state != VS_PAUSED)
			e->started = time(NULL);
		if (f->state != VS_RUNNING && f->state != VS_PAUSED)
			e->has_stats = false;
		if (f->state != VS_RUNNING)
			e->web_ready = false;
		else
			webprobe_kick();
		if (f->state != e->f.state)
			devices_kick(f->uuid);
		vm_facts_clear(&e->f);
		facts_copy(&e->f, f);
		table_gen++;
		return true;
	}
	if (nvms == cap_vms) {
		cap_vms = cap_vms ? cap_vms * 2 : 16;
		vms = xreallocarray(vms, cap_vms, sizeof(*vms));
	}
	e = &vms[nvms++];
	memset(e, 0, sizeof(*e));
	facts_copy(&e->f, f);
	table_gen++;
	if (f->state == VS_RUNNING)
		webprobe_kick();
	devices_kick(f->uuid);
	return true;
}

void
state_put(const struct vm_facts *f)
{
	state_put_since(f, UINT64_MAX);
}

uint64_t
state_mark(void)
{
	uint64_t m;

	pthread_mutex_lock(&state_mtx);
	m = event_seq;
	pthread_mutex_unlock(&state_mtx);
	return m;
}

/*
 * Facts read from libvirt after state_mark() said MARK: a lifecycle event
 * applied since then is newer than the state they carry (a refresh that
 * read "running" must not undo the "stopped" event that came meanwhile,
 * which would publish a stale running/shutoff pair); the rest is taken.
 */
void
state_put_since(const struct vm_facts *f, uint64_t mark)
{
	struct vm_entry *e;
	struct vm_facts g = *f; /* shallow: put_locked copies what it keeps */

	pthread_mutex_lock(&state_mtx);
	if ((e = find_uuid(f->uuid)) != NULL && e->event_seq > mark)
		g.state = e->f.state;
	if (put_locked(&g)) {
		refresh_leases();
		e = find_uuid(f->uuid);
		publish_entry(e);
	}
	pthread_mutex_unlock(&state_mtx);
}

static void
remove_at(size_t i)
{
	vm_facts_clear(&vms[i].f);
	vms[i] = vms[--nvms];
	table_gen++;
}

void
state_remove(const char *uuid)
{
	size_t i;

	pthread_mutex_lock(&state_mtx);
	for (i = 0; i < nvms; i++) {
		if (strcmp(vms[i].f.uuid, uuid) != 0)
			continue;
		publish_deleted(vms[i].f.uuid, vms[i].f.name);
		devices_kick(uuid); /* forgets its summary */
		remove_at(i);
		break;
	}
	pthread_mutex_unlock(&state_mtx);
}

/* After a (re)connect: the table becomes exactly this list. */
void
state_replace_all(const struct vm_facts *all, size_t n)
{
	size_t i, j;
	bool seen;

	pthread_mutex_lock(&state_mtx);
	refresh_leases();
	for (i = 0; i < nvms;) {
		seen = false;
		for (j = 0; j < n && !seen; j++)
			seen = strcmp(vms[i].f.uuid, all[j].uuid) == 0;
		if (seen) {
			i++;
			continue;
		}
		publish_deleted(vms[i].f.uuid, vms[i].f.name);
		devices_kick(vms[i].f.uuid);
		remove_at(i);
	}
	for (j = 0; j < n; j++)
		if (put_locked(&all[j]))
			publish_entry(find_uuid(all[j].uuid));
	pthread_mutex_unlock(&state_mtx);
}

static json_object *
status_locked(void)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "installed", json_object_new_boolean(true));
	json_object_object_add(o, "enabled", json_object_new_boolean(true));
	json_object_object_add(
	    o, "libvirtd_running", json_object_new_boolean(connected));
	json_object_object_add(
	    o, "libvirt_active", json_object_new_boolean(connected));
	json_add_str(o, "accel", host.accel);
	json_add_str(o, "arch", host.arch);
	json_add_str(o, "version", VMMOD_VERSION);
	json_object_object_add(o, "vm_count", json_object_new_int(nvms));
	return o;
}

void
state_set_connected(bool on)
{
	json_object *o;

	pthread_mutex_lock(&state_mtx);
	if (connected == on) {
		pthread_mutex_unlock(&state_mtx);
		return;
	}
	connected = on;
	o = status_locked();
	pthread_mutex_unlock(&state_mtx);
	events_publish("host", o);
	json_object_put(o);
}

bool
state_connected(void)
{
	bool on;

	pthread_mutex_lock(&state_mtx);
	on = connected;
	pthread_mutex_unlock(&state_mtx);
	return on;
}

void
state_set_stats(const char *uuid, const struct vm_stats *s)
{
	struct vm_entry *e;

	pthread_mutex_lock(&state_mtx);
	if ((e = find_uuid(uuid)) != NULL &&
	    (!e->has_stats || memcmp(&e->stats, s, sizeof(*s)) != 0)) {
		e->stats = *s;
		e->has_stats = true;
		table_gen++;
		publish_entry(e);
	}
	pthread_mutex_unlock(&state_mtx);
}

static int
cmp_name(const void *a, const void *b)
{
	const struct vm_entry *const *x = a, *const *y = b;

	return strcmp(
	    (*x)->f.name ? (*x)->f.name : "", (*y)->f.name ? (*y)->f.name : "");
}

/* Called with state_mtx held. */
static json_object *
vms_json_locked(void)
{
	json_object *o = json_object_new_object(), *arr;
	struct vm_entry **sorted;
	size_t i;

	arr = json_object_new_array_ext(nvms ? nvms : 1);
	if (nvms > 0) {
		sorted = xreallocarray(NULL, nvms, sizeof(*sorted));
		for (i = 0; i < nvms; i++)
			sorted[i] = &vms[i];
		qsort(sorted, nvms, sizeof(*sorted), cmp_name);
		for (i = 0; i < nvms; i++)
			json_object_array_add(arr, entry_json(sorted[i]));
		free(sorted);
	}
	json_object_object_add(o, "vms", arr);
	return o;
}

json_object *
state_vms_json(void)
{
	json_object *o;

	pthread_mutex_lock(&state_mtx);
	refresh_leases();
	o = vms_json_locked();
	pthread_mutex_unlock(&state_mtx);
	return o;
}

char *
state_vms_text(size_t *lenp)
{
	json_object *o;
	const char *js;
	time_t now = time(NULL);
	char *copy;
	size_t len;

	pthread_mutex_lock(&state_mtx);
	refresh_leases();
	if (vms_cache == NULL || vms_cache_gen != table_gen ||
	    vms_cache_time != now) {
		o = vms_json_locked();
		js = json_object_to_json_string_length(
		    o, JSON_C_TO_STRING_PLAIN, &len);
		free(vms_cache);
		vms_cache = xstrndup(js, len);
		vms_cache_len = len;
		vms_cache_gen = table_gen;
		vms_cache_time = now;
		json_object_put(o);
	}
	copy = xmalloc(vms_cache_len + 1);
	memcpy(copy, vms_cache, vms_cache_len + 1);
	if (lenp != NULL)
		*lenp = vms_cache_len;
	pthread_mutex_unlock(&state_mtx);
	return copy;
}

void
state_set_state(const char *uuid, enum vm_state st)
{
	struct vm_entry *e;

	pthread_mutex_lock(&state_mtx);
	if ((e = find_uuid(uuid)) != NULL)
		e->event_seq = ++event_seq;
	if (e != NULL && e->f.state != st) {
		if (st == VS_RUNNING && e->f.state != VS_PAUSED)
			e->started = time(NULL);
		if (st != VS_RUNNING && st != VS_PAUSED)
			e->has_stats = false;
		if (st != VS_RUNNING)
			e->web_ready = false;
		else
			webprobe_kick();
		e->f.state = st;
		table_gen++;
		publish_entry(e);
		devices_kick(uuid);
	}
	pthread_mutex_unlock(&state_mtx);
}

void
state_touch(const char *uuid)
{
	struct vm_entry *e;

	pthread_mutex_lock(&state_mtx);
	if ((e = find_uuid(uuid)) != NULL) {
		table_gen++;
		publish_entry(e);
	}
	pthread_mutex_unlock(&state_mtx);
}

json_object *
state_vm_json(const char *ref)
{
	struct vm_entry *e;
	json_object *o = NULL;

	pthread_mutex_lock(&state_mtx);
	refresh_leases();
	if ((e = find_ref(ref)) != NULL)
		o = entry_json(e);
	pthread_mutex_unlock(&state_mtx);
	return o;
}

int
state_lookup(const char *ref, char uuid[37])
{
	struct vm_entry *e;
	int ret = -1;

	pthread_mutex_lock(&state_mtx);
	if ((e = find_ref(ref)) != NULL) {
		memcpy(uuid, e->f.uuid, 37);
		ret = 0;
	}
	pthread_mutex_unlock(&state_mtx);
	return ret;
}

json_object *
state_status_json(void)
{
	json_object *o;

	pthread_mutex_lock(&state_mtx);
	o = status_locked();
	pthread_mutex_unlock(&state_mtx);
	return o;
}

unsigned long
state_ram_committed_mb(void)
{
	unsigned long committed = 0;
	size_t i;

	pthread_mutex_lock(&state_mtx);
	for (i = 0; i < nvms; i++)
		if (vms[i].f.state == VS_RUNNING ||
		    vms[i].f.state == VS_PAUSED || vms[i].f.autostart)
			committed += vms[i].f.memory_mb;
	pthread_mutex_unlock(&state_mtx);
	return committed;
}

json_object *
state_host_json(void)
{
	json_object *o = json_object_new_object(), *b;
	unsigned long committed = 0;
	size_t i;

	pthread_mutex_lock(&state_mtx);
	for (i = 0; i < nvms; i++)
		if (vms[i].f.state == VS_RUNNING ||
		    vms[i].f.state == VS_PAUSED || vms[i].f.autostart)
			committed += vms[i].f.memory_mb;
	json_add_str(o, "arch", host.arch);
	json_add_str(o, "accel", host.accel);
	json_add_str(o, "accel_why", host.accel_why);
	json_add_str(o, "backend", host.backend);
	json_object_object_add(o, "kvm_usable",
	    json_object_new_boolean(
		host.accel != NULL && strcmp(host.accel, "kvm") == 0));
	json_object_object_add(
	    o, "ram_total_mb", json_object_new_int64(host.ram_total_mb));
	json_object_object_add(
	    o, "ram_committed_mb", json_object_new_int64(committed));
	json_object_object_add(
	    o, "ram_budget_mb", json_object_new_int64(host.ram_budget_mb));
	json_object_object_add(
	    o, "libvirtd_running", json_object_new_boolean(connected));
	b = json_object_new_array();
	json_object_array_add(b,
	    json_object_new_string(
		host.accel != NULL && strcmp(host.accel, "kvm") == 0 ? "kvm"
								     : "qemu"));
	if (host.xen)
		json_object_array_add(b, json_object_new_string("xen"));
	json_object_object_add(o, "backends", b);
	pthread_mutex_unlock(&state_mtx);
	return o;
}

void
state_counts(unsigned counts[VS_STARTING + 1])
{
	size_t i;

	memset(counts, 0, sizeof(unsigned) * (VS_STARTING + 1));
	pthread_mutex_lock(&state_mtx);
	for (i = 0; i < nvms; i++)
		if ((size_t)vms[i].f.state <= VS_STARTING)
			counts[vms[i].f.state]++;
	pthread_mutex_unlock(&state_mtx);
}

/*
 * Running VMs whose web UI has an address but has not answered yet: what
 * webprobe.c tries.  Returns how many were put in the malloc'd *outp.
 */
size_t
state_web_targets(struct web_target **outp)
{
	struct web_target *t = NULL;
	const char *ip, *scheme;
	char rip[16];
	unsigned port;
	size_t i, n = 0;

	pthread_mutex_lock(&state_mtx);
	refresh_leases();
	for (i = 0; i < nvms; i++) {
		if (vms[i].f.state != VS_RUNNING || vms[i].web_ready)
			continue;
		ip = entry_web(&vms[i], rip, &scheme, &port);
		if (ip == NULL || port == 0)
			continue;
		t = xreallocarray(t, n + 1, sizeof(*t));
		memcpy(t[n].uuid, vms[i].f.uuid, sizeof(t[n].uuid));
		snprintf(t[n].ip, sizeof(t[n].ip), "%s", ip);
		t[n].port = port;
		n++;
	}
	pthread_mutex_unlock(&state_mtx);
	*outp = t;
	return n;
}

void
state_set_web_ready(const char *uuid)
{
	struct vm_entry *e;

	pthread_mutex_lock(&state_mtx);
	if ((e = find_uuid(uuid)) != NULL && e->f.state == VS_RUNNING &&
	    !e->web_ready) {
		e->web_ready = true;
		table_gen++;
		publish_entry(e);
	}
	pthread_mutex_unlock(&state_mtx);
}
