/*
 * Everything vmmod asks of libvirt, and the only file that includes it.
 *
 * Two threads live here.  The event thread only runs libvirt's default event
 * loop.  The worker thread owns the connection: it connects (with backoff
 * when libvirtd is away), registers for domain lifecycle events, resyncs the
 * whole table after every (re)connect, refreshes one domain when an event
 * names it, escalates timed stops, and gathers bulk stats only while someone
 * watches.  Event callbacks never call libvirt: they queue work for the
 * worker.  HTTP threads run actions directly on a referenced connection
 * (virConnect is thread-safe) and refresh the domain they changed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/random.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#include "vmmod.h"

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 5000
#define STATS_INTERVAL_MS 2000
#define STOP_GRACE_S 600 /* how long "shutting-down" is shown at most */
#define MAX_QUEUE 1024

struct stopping {
	char uuid[37];
	time_t force_at; /* 0: never force */
	time_t expire; /* forget after this */
};

struct sample {
	char uuid[37];
	unsigned long long cpu_ns, rd, wr, rx, tx;
	struct timespec at;
	bool seen;
};

static pthread_mutex_t virt_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t virt_cond = PTHREAD_COND_INITIALIZER;
static pthread_t event_tid, worker_tid;
static bool quit, need_connect = true, need_resync;
static virConnectPtr conn; /* guarded by virt_mtx */
static int lifecycle_cb = -1, reboot_cb = -1, meta_cb = -1;
static char *uri, *pool_name;
static char queue[MAX_QUEUE][37];
static size_t nqueue;
static struct stopping stops[64];
static size_t nstops;
static int watchers;
static unsigned long reconnects;
static bool ever_connected;
/* console streams section: frees closed streams at start/stop */
static void console_events_running(bool);

/* worker-only */
static struct sample *samples;
static size_t nsamples;

static const char *action_names[] = {
    [ACT_START] = "start",
    [ACT_STOP] = "stop",
    [ACT_FORCE_STOP] = "force-stop",
    [ACT_RESTART] = "restart",
    [ACT_PAUSE] = "pause",
    [ACT_RESUME] = "resume",
};

const char *
vm_action_name(enum vm_action a)
{
	if ((size_t)a >= nitems(action_names))
		return "unknown";
	return action_names[a];
}

/* libvirt prints every error to stderr by default; we log our own way. */
static void
virt_quiet(void *opaque, virErrorPtr err)
{
}

static const char *
last_error(void)
{
	virErrorPtr e = virGetLastError();

	return e != NULL && e->message != NULL ? e->message : "unknown error";
}

static int
last_code(void)
{
	virErrorPtr e = virGetLastError();

	return e != NULL ? e->code : VIR_ERR_INTERNAL_ERROR;
}

static void
wake_worker_locked(void)
{
	pthread_cond_signal(&virt_cond);
}

static void
queue_uuid(const char *uuid)
{
	size_t i;

	pthread_mutex_lock(&virt_mtx);
	for (i = 0; i < nqueue; i++)
		if (strcmp(queue[i], uuid) == 0)
			break;
	if (i == nqueue) {
		if (nqueue < MAX_QUEUE)
			memcpy(queue[nqueue++], uuid, 37);
		else
			need_resync = true;
	}
	wake_worker_locked();
	pthread_mutex_unlock(&virt_mtx);
}

/* Returns a referenced connection or NULL while libvirtd is away. */
static virConnectPtr
conn_get(void)
{
	virConnectPtr c;

	pthread_mutex_lock(&virt_mtx);
	c = conn;
	if (c != NULL && virConnectRef(c) < 0)
		c = NULL;
	pthread_mutex_unlock(&virt_mtx);
	return c;
}

/* A referenced connection, or NULL and a 503 in *err while libvirtd is away. */
static virConnectPtr
conn_need(struct api_error *err)
{
	virConnectPtr c;

	if ((c = conn_get()) == NULL)
		api_error_set(
		    err, 503, "libvirtd_down", "libvirtd is not reachable");
	return c;
}

/* ---- event callbacks (event thread: no libvirt calls) -------------------- */

static int
on_lifecycle(
    virConnectPtr c, virDomainPtr dom, int event, int detail, void *opaque)
{
	char uuid[VIR_UUID_STRING_BUFLEN];
	enum vm_state st = VS_UNKNOWN;

	if (virDomainGetUUIDString(dom, uuid) < 0)
		return 0;
	/*
	 * The event itself says the new state: publish it at once (no call
	 * to libvirtd, which is busy starting QEMU), then refresh the rest.
	 */
	switch (event) {
	case VIR_DOMAIN_EVENT_STARTED:
	case VIR_DOMAIN_EVENT_RESUMED:
		st = VS_RUNNING;
		break;
	case VIR_DOMAIN_EVENT_SUSPENDED:
		st = VS_PAUSED;
		break;
	case VIR_DOMAIN_EVENT_STOPPED:
		st = VS_SHUTOFF;
		break;
	case VIR_DOMAIN_EVENT_CRASHED:
		st = VS_CRASHED;
		break;
	case VIR_DOMAIN_EVENT_PMSUSPENDED:
		st = VS_PMSUSPENDED;
		break;
	}
	if (st != VS_UNKNOWN && opaque == NULL)
		state_set_state(uuid, st);
	queue_uuid(uuid);
	return 0;
}

/* Other events only ask for a refresh (a non-NULL opaque says so). */
static void
on_generic(virConnectPtr c, virDomainPtr dom, void *opaque)
{
	on_lifecycle(c, dom, -1, 0, (void *)1);
}

static void
on_metadata(virConnectPtr c, virDomainPtr dom, int type, const char *nsuri,
    void *opaque)
{
	on_lifecycle(c, dom, -1, 0, (void *)1);
}

static void
on_close(virConnectPtr c, int reason, void *opaque)
{
	pthread_mutex_lock(&virt_mtx);
	need_connect = true;
	wake_worker_locked();
	pthread_mutex_unlock(&virt_mtx);
}

static void *
event_main(void *arg)
{
	/* named for bench/run.sh: it wakes for libvirtd's keepalive pings */
	pthread_setname_np(pthread_self(), "libvirt-events");
	while (!__atomic_load_n(&quit, __ATOMIC_ACQUIRE))
		if (virEventRunDefaultImpl() < 0)
			log_warnx("%s: %s", __func__, last_error());
	return NULL;
}

static void
event_nudge(int timer, void *opaque)
{
	virEventRemoveTimeout(timer);
}

/* ---- facts --------------------------------------------------------------- */

static enum vm_state
map_state(int st, int reason)
{
	switch (st) {
	case VIR_DOMAIN_RUNNING:
	case VIR_DOMAIN_BLOCKED:
		return VS_RUNNING;
	case VIR_DOMAIN_PAUSED:
		return reason == VIR_DOMAIN_PAUSED_STARTING_UP ? VS_STARTING
							       : VS_PAUSED;
	case VIR_DOMAIN_SHUTDOWN:
		return VS_SHUTTING_DOWN;
	case VIR_DOMAIN_SHUTOFF:
		return VS_SHUTOFF;
	case VIR_DOMAIN_CRASHED:
		return VS_CRASHED;
	case VIR_DOMAIN_PMSUSPENDED:
		return VS_PMSUSPENDED;
	default:
		return VS_UNKNOWN;
	}
}

static bool
is_stopping(const char *uuid)
{
	time_t now = time(NULL);
	size_t i;
	bool ret = false;

	pthread_mutex_lock(&virt_mtx);
	for (i = 0; i < nstops; i++)
		if (strcmp(stops[i].uuid, uuid) == 0 && stops[i].expire > now)
			ret = true;
	pthread_mutex_unlock(&virt_mtx);
	return ret;
}

static void
forget_stop(const char *uuid)
{
	size_t i;

	pthread_mutex_lock(&virt_mtx);
	for (i = 0; i < nstops; i++) {
		if (strcmp(stops[i].uuid, uuid) == 0) {
			stops[i] = stops[--nstops];
			break;
		}
	}
	pthread_mutex_unlock(&virt_mtx);
}

static int
facts_from_domain(virDomainPtr dom, struct vm_facts *f)
{
	const char *name;
	char *xml;
	int st, reason, autostart = 0;

	memset(f, 0, sizeof(*f));
	if (virDomainGetUUIDString(dom, f->uuid) < 0 ||
	    (name = virDomainGetName(dom)) == NULL ||
	    virDomainGetState(dom, &st, &reason, 0) < 0)
		return -1;
	f->name = xstrdup(name);
	f->state = map_state(st, reason);
	if (f->state == VS_RUNNING && is_stopping(f->uuid))
		f->state = VS_SHUTTING_DOWN;
	else if (f->state == VS_SHUTOFF || f->state == VS_CRASHED)
		forget_stop(f->uuid);
	f->persistent = virDomainIsPersistent(dom) == 1;
	if (f->persistent && virDomainGetAutostart(dom, &autostart) == 0)
		f->autostart = autostart != 0;
	if ((xml = virDomainGetXMLDesc(dom, 0)) == NULL)
		return -1;
	if (domparse_facts(xml, f) < 0) {
		free(xml);
		return -1;
	}
	free(xml);
	return 0;
}

/* Re-reads one domain into the table; removes it when libvirt no longer has it. */
static void
refresh_one(virConnectPtr c, const char *uuid)
{
	virDomainPtr dom;
	struct vm_facts f;
	uint64_t mark = state_mark();

	if ((dom = virDomainLookupByUUIDString(c, uuid)) == NULL) {
		if (last_code() == VIR_ERR_NO_DOMAIN)
			state_remove(uuid);
		return;
	}
	if (facts_from_domain(dom, &f) == 0)
		state_put_since(&f, mark);
	else if (last_code() == VIR_ERR_NO_DOMAIN)
		state_remove(uuid);
	vm_facts_clear(&f);
	virDomainFree(dom);
}

static int
resync(virConnectPtr c)
{
	virDomainPtr *doms = NULL;
	struct vm_facts *all;
	size_t n = 0;
	int i, ndoms;

	if ((ndoms = virConnectListAllDomains(c, &doms, 0)) < 0) {
		log_warnx("%s: listing domains: %s", __func__, last_error());
		return -1;
	}
	all = xcalloc(ndoms + 1, sizeof(*all));
	for (i = 0; i < ndoms; i++) {
		/* A domain may vanish while we look: skip it, events follow. */
		if (facts_from_domain(doms[i], &all[n]) == 0)
			n++;
		else
			vm_facts_clear(&all[n]);
		virDomainFree(doms[i]);
	}
	free(doms);
	state_replace_all(all, n);
	for (i = 0; i < (int)n; i++)
		vm_facts_clear(&all[i]);
	free(all);
	log_debug("%s: %zu domains", __func__, n);
	return 0;
}

/* ---- connection ---------------------------------------------------------- */

static void
disconnect(void)
{
	virConnectPtr c;

	pthread_mutex_lock(&virt_mtx);
	c = conn;
	conn = NULL;
	pthread_mutex_unlock(&virt_mtx);
	if (c == NULL)
		return;
	state_set_connected(false);
	if (lifecycle_cb >= 0)
		virConnectDomainEventDeregisterAny(c, lifecycle_cb);
	if (reboot_cb >= 0)
		virConnectDomainEventDeregisterAny(c, reboot_cb);
	if (meta_cb >= 0)
		virConnectDomainEventDeregisterAny(c, meta_cb);
	lifecycle_cb = reboot_cb = meta_cb = -1;
	virConnectUnregisterCloseCallback(c, on_close);
	virConnectClose(c);
}

static int
try_connect(void)
{
	virConnectPtr c;

	disconnect();
	if ((c = virConnectOpen(uri)) == NULL) {
		log_debug("%s: %s: %s", __func__, uri, last_error());
		return -1;
	}
	/*
	 * No keepalive: on the local socket libvirtd's death closes the
	 * connection (close callback), and keepalive pings would wake vmmod
	 * every few seconds while nobody watches.
	 */
	if (virConnectRegisterCloseCallback(c, on_close, NULL, NULL) < 0)
		log_warnx("%s: close callback: %s", __func__, last_error());
	lifecycle_cb = virConnectDomainEventRegisterAny(c, NULL,
	    VIR_DOMAIN_EVENT_ID_LIFECYCLE,
	    VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), NULL, NULL);
	reboot_cb = virConnectDomainEventRegisterAny(c, NULL,
	    VIR_DOMAIN_EVENT_ID_REBOOT, VIR_DOMAIN_EVENT_CALLBACK(on_generic),
	    NULL, NULL);
	meta_cb = virConnectDomainEventRegisterAny(c, NULL,
	    VIR_DOMAIN_EVENT_ID_METADATA_CHANGE,
	    VIR_DOMAIN_EVENT_CALLBACK(on_metadata), NULL, NULL);
	if (lifecycle_cb < 0)
		log_warnx(
		    "%s: no lifecycle events: %s", __func__, last_error());
	pthread_mutex_lock(&virt_mtx);
	conn = c;
	pthread_mutex_unlock(&virt_mtx);
	if (resync(c) < 0) {
		disconnect();
		return -1;
	}
	state_set_connected(true);
	if (ever_connected) {
		__atomic_add_fetch(&reconnects, 1, __ATOMIC_RELAXED);
		log_info("reconnected to libvirt at %s", uri);
	} else
		log_info("connected to libvirt at %s", uri);
	ever_connected = true;
	return 0;
}

unsigned long
virt_reconnects(void)
{
	return __atomic_load_n(&reconnects, __ATOMIC_RELAXED);
}

/* ---- stats --------------------------------------------------------------- */

static struct sample *
sample_for(const char *uuid)
{
	size_t i;

	for (i = 0; i < nsamples; i++)
		if (strcmp(samples[i].uuid, uuid) == 0)
			return &samples[i];
	samples = xreallocarray(samples, nsamples + 1, sizeof(*samples));
	memset(&samples[nsamples], 0, sizeof(*samples));
	memcpy(samples[nsamples].uuid, uuid, 37);
	return &samples[nsamples++];
}

static unsigned long long
param_ull(virTypedParameterPtr p, int n, const char *key)
{
	unsigned long long v = 0;

	if (virTypedParamsGetULLong(p, n, key, &v) != 1)
		v = 0;
	return v;
}

/* "block.3.rd.bytes" style keys. */
static unsigned long long
param_idx(virTypedParameterPtr p, int n, const char *group,
    unsigned long long idx, const char *field)
{
	char key[VIR_TYPED_PARAM_FIELD_LENGTH];

	snprintf(key, sizeof(key), "%s.%llu.%s", group, idx, field);
	return param_ull(p, n, key);
}

static uint64_t
rate(unsigned long long now, unsigned long long before, double dt)
{
	if (now < before || dt <= 0)
		return 0;
	return (uint64_t)((now - before) / dt);
}

static void
gather_stats(virConnectPtr c)
{
	virDomainStatsRecordPtr *recs = NULL, *r;
	struct vm_stats st;
	struct sample *s, now;
	struct timespec ts;
	unsigned long long cnt, i, v;
	char uuid[VIR_UUID_STRING_BUFLEN];
	double dt;
	unsigned int vcpus;

	if (virConnectGetAllDomainStats(c,
		VIR_DOMAIN_STATS_CPU_TOTAL | VIR_DOMAIN_STATS_BALLOON |
		    VIR_DOMAIN_STATS_INTERFACE | VIR_DOMAIN_STATS_BLOCK |
		    VIR_DOMAIN_STATS_VCPU,
		&recs, VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE) < 0) {
		log_debug("%s: %s", __func__, last_error());
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	for (r = recs; *r != NULL; r++) {
		if (virDomainGetUUIDString((*r)->dom, uuid) < 0)
			continue;
		memset(&now, 0, sizeof(now));
		now.cpu_ns = param_ull((*r)->params, (*r)->nparams, "cpu.time");
		cnt = param_ull((*r)->params, (*r)->nparams, "block.count");
		for (i = 0; i < cnt && i < 64; i++) {
			now.rd += param_idx((*r)->params, (*r)->nparams,
			    "block", i, "rd.bytes");
			now.wr += param_idx((*r)->params, (*r)->nparams,
			    "block", i, "wr.bytes");
		}
		cnt = param_ull((*r)->params, (*r)->nparams, "net.count");
		for (i = 0; i < cnt && i < 64; i++) {
			now.rx += param_idx(
			    (*r)->params, (*r)->nparams, "net", i, "rx.bytes");
			now.tx += param_idx(
			    (*r)->params, (*r)->nparams, "net", i, "tx.bytes");
		}
		if (virTypedParamsGetUInt((*r)->params, (*r)->nparams,
			"vcpu.current", &vcpus) != 1 ||
		    vcpus == 0)
			vcpus = 1;
		memset(&st, 0, sizeof(st));
		/* Memory the guest uses: balloon minus unused when the guest
		 * reports it, else what QEMU holds resident. */
		v = param_ull((*r)->params, (*r)->nparams, "balloon.unused");
		if (v != 0)
			st.mem_used_mb = (param_ull((*r)->params, (*r)->nparams,
					      "balloon.available") -
					     v) /
			    1024;
		else
			st.mem_used_mb = param_ull((*r)->params, (*r)->nparams,
					     "balloon.rss") /
			    1024;
		s = sample_for(uuid);
		if (s->seen) {
			dt = (ts.tv_sec - s->at.tv_sec) +
			    (ts.tv_nsec - s->at.tv_nsec) / 1e9;
			if (dt > 0 && now.cpu_ns >= s->cpu_ns)
				st.cpu_pct =
				    (now.cpu_ns - s->cpu_ns) / 1e7 / dt / vcpus;
			st.cpu_pct = (long)(st.cpu_pct * 10 + 0.5) / 10.0;
			st.disk_rd_bps = rate(now.rd, s->rd, dt);
			st.disk_wr_bps = rate(now.wr, s->wr, dt);
			st.net_rx_bps = rate(now.rx, s->rx, dt);
			st.net_tx_bps = rate(now.tx, s->tx, dt);
			state_set_stats(uuid, &st);
		}
		memcpy(now.uuid, uuid, sizeof(now.uuid));
		now.at = ts;
		now.seen = true;
		*s = now;
	}
	virDomainStatsRecordListFree(recs);
}

void
virt_stats_watch(int delta)
{
	pthread_mutex_lock(&virt_mtx);
	watchers += delta;
	if (watchers < 0)
		watchers = 0;
	wake_worker_locked();
	pthread_mutex_unlock(&virt_mtx);
}

/* ---- worker -------------------------------------------------------------- */

static void
timespec_add_ms(struct timespec *ts, long ms)
{
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void
escalate_stops(virConnectPtr c)
{
	char due[64][37], expired[64][37];
	size_t i, n = 0, nexp = 0;
	time_t now = time(NULL);
	virDomainPtr dom;
	const char *result;

	pthread_mutex_lock(&virt_mtx);
	for (i = 0; i < nstops;) {
		if (stops[i].force_at != 0 && stops[i].force_at <= now) {
			memcpy(due[n++], stops[i].uuid, 37);
			stops[i] = stops[--nstops];
		} else if (stops[i].expire <= now) {
			/* The guest ignored the button: show its real state. */
			memcpy(expired[nexp++], stops[i].uuid, 37);
			stops[i] = stops[--nstops];
		} else
			i++;
	}
	pthread_mutex_unlock(&virt_mtx);
	for (i = 0; i < nexp; i++)
		refresh_one(c, expired[i]);
	for (i = 0; i < n; i++) {
		if ((dom = virDomainLookupByUUIDString(c, due[i])) == NULL)
			continue;
		if (virDomainIsActive(dom) == 1) {
			result = virDomainDestroy(dom) == 0 ? "ok" : "failed";
			log_info("stop timeout: forced off %s: %s",
			    virDomainGetName(dom), result);
			audit_log("vmmod", "force-stop (stop timeout)",
			    virDomainGetName(dom), result);
		}
		virDomainFree(dom);
		refresh_one(c, due[i]);
	}
}

/* Earliest stop deadline, or 0.  Called with virt_mtx held. */
static time_t
next_stop_deadline(void)
{
	time_t t = 0;
	size_t i;

	for (i = 0; i < nstops; i++) {
		if (stops[i].force_at != 0 && (t == 0 || stops[i].force_at < t))
			t = stops[i].force_at;
		if (t == 0 || stops[i].expire < t)
			t = stops[i].expire;
	}
	return t;
}

static void *
worker_main(void *arg)
{
	char work[MAX_QUEUE][37];
	struct timespec deadline, next_stats = {0, 0}, now;
	long backoff = BACKOFF_MIN_MS;
	virConnectPtr c;
	size_t i, n;
	bool connect_now, resync_now, stats_now;
	time_t stop_at;

	for (;;) {
		pthread_mutex_lock(&virt_mtx);
		for (;;) {
			if (quit)
				break;
			clock_gettime(CLOCK_REALTIME, &now);
			stop_at = next_stop_deadline();
			if (need_connect || nqueue > 0 || need_resync ||
			    (stop_at != 0 && stop_at <= now.tv_sec) ||
			    (watchers > 0 && conn != NULL &&
				(now.tv_sec > next_stats.tv_sec ||
				    (now.tv_sec == next_stats.tv_sec &&
					now.tv_nsec >= next_stats.tv_nsec))))
				break;
			/* Sleep until work, the next stats tick or stop
			 * deadline; with nobody watching and no stops, sleep
			 * until woken: no periodic wake-ups. */
			if (watchers > 0 && conn != NULL)
				deadline = next_stats;
			else
				deadline.tv_sec = 0;
			if (stop_at != 0 &&
			    (deadline.tv_sec == 0 ||
				stop_at < deadline.tv_sec)) {
				deadline.tv_sec = stop_at;
				deadline.tv_nsec = 0;
			}
			if (deadline.tv_sec != 0)
				pthread_cond_timedwait(
				    &virt_cond, &virt_mtx, &deadline);
			else
				pthread_cond_wait(&virt_cond, &virt_mtx);
		}
		if (quit) {
			pthread_mutex_unlock(&virt_mtx);
			break;
		}
		connect_now = need_connect;
		resync_now = need_resync;
		need_resync = false;
		n = nqueue;
		memcpy(work, queue, n * sizeof(queue[0]));
		nqueue = 0;
		clock_gettime(CLOCK_REALTIME, &now);
		stats_now = watchers > 0 && conn != NULL &&
		    (now.tv_sec > next_stats.tv_sec ||
			(now.tv_sec == next_stats.tv_sec &&
			    now.tv_nsec >= next_stats.tv_nsec));
		pthread_mutex_unlock(&virt_mtx);

		if (connect_now) {
			if (try_connect() == 0) {
				pthread_mutex_lock(&virt_mtx);
				need_connect = false;
				pthread_mutex_unlock(&virt_mtx);
				backoff = BACKOFF_MIN_MS;
			} else {
				/* Back off, waking early only to quit. */
				clock_gettime(CLOCK_REALTIME, &deadline);
				timespec_add_ms(&deadline, backoff);
				backoff = backoff * 2 > BACKOFF_MAX_MS
				    ? BACKOFF_MAX_MS
				    : backoff * 2;
				pthread_mutex_lock(&virt_mtx);
				if (!quit)
					pthread_cond_timedwait(
					    &virt_cond, &virt_mtx, &deadline);
				pthread_mutex_unlock(&virt_mtx);
				continue;
			}
		}
		if ((c = conn_get()) == NULL)
			continue;
		if (resync_now)
			resync(c);
		for (i = 0; i < n; i++)
			refresh_one(c, work[i]);
		escalate_stops(c);
		if (stats_now) {
			gather_stats(c);
			clock_gettime(CLOCK_REALTIME, &next_stats);
			timespec_add_ms(&next_stats, STATS_INTERVAL_MS);
		}
		virConnectClose(c);
	}
	return NULL;
}

int
virt_init(const struct vmmod_conf *conf)
{
	virSetErrorFunc(NULL, virt_quiet);
	if (virInitialize() < 0 || virEventRegisterDefaultImpl() < 0) {
		log_warnx("%s: cannot initialise libvirt", __func__);
		return -1;
	}
	uri = xstrdup(conf->uri);
	pool_name = xstrdup(conf->storage_pool ? conf->storage_pool : "");
	quit = false;
	need_connect = true;
	console_events_running(true);
	if (pthread_create(&event_tid, NULL, event_main, NULL) != 0 ||
	    pthread_create(&worker_tid, NULL, worker_main, NULL) != 0) {
		log_warnx("%s: cannot start threads", __func__);
		return -1;
	}
	return 0;
}

void
virt_shutdown(void)
{
	pthread_mutex_lock(&virt_mtx);
	quit = true;
	pthread_cond_broadcast(&virt_cond);
	pthread_mutex_unlock(&virt_mtx);
	pthread_join(worker_tid, NULL);
	disconnect();
	__atomic_store_n(&quit, true, __ATOMIC_RELEASE);
	/* A zero timeout makes the event loop iterate once and see quit. */
	virEventAddTimeout(0, event_nudge, NULL, NULL);
	pthread_join(event_tid, NULL);
	console_events_running(false);
	free(uri);
	free(pool_name);
	free(samples);
	samples = NULL;
	nsamples = 0;
}

/* ---- actions (HTTP threads) ---------------------------------------------- */

/* Maps a failed libvirt call to an API error without leaking its message. */
static int
fail_libvirt(struct api_error *err, const char *what, const char *vm)
{
	int code = last_code();

	log_warnx("%s %s: %s", what, vm, last_error());
	switch (code) {
	case VIR_ERR_NO_DOMAIN:
		api_error_set(err, 404, "not_found", "no such VM");
		break;
	case VIR_ERR_OPERATION_INVALID:
		api_error_set(err, 409, "wrong_state",
		    "the VM is not in a state that allows %s", what);
		break;
	case VIR_ERR_NO_CONNECT:
	case VIR_ERR_RPC:
	case VIR_ERR_SYSTEM_ERROR:
	case VIR_ERR_INTERNAL_ERROR:
		if (!state_connected() || code != VIR_ERR_INTERNAL_ERROR) {
			api_error_set(err, 503, "libvirtd_down",
			    "libvirtd is not reachable");
			break;
		}
		/* FALLTHROUGH */
	default:
		api_error_set(err, 500, "libvirt_error",
		    "libvirt could not %s the VM (vmmod's log has details)",
		    what);
		break;
	}
	return -1;
}

static virDomainPtr
lookup(virConnectPtr c, const char *ref, char uuid[37], struct api_error *err)
{
	virDomainPtr dom;

	if (state_lookup(ref, uuid) < 0) {
		api_error_set(err, 404, "not_found", "no such VM");
		return NULL;
	}
	if ((dom = virDomainLookupByUUIDString(c, uuid)) == NULL)
		fail_libvirt(err, "find", ref);
	return dom;
}

static void
add_stop(const char *uuid, int timeout_s)
{
	time_t now = time(NULL);
	size_t i;

	pthread_mutex_lock(&virt_mtx);
	for (i = 0; i < nstops; i++)
		if (strcmp(stops[i].uuid, uuid) == 0)
			break;
	if (i == nstops && nstops < nitems(stops))
		nstops++;
	if (i < nstops) {
		memcpy(stops[i].uuid, uuid, 37);
		stops[i].force_at = timeout_s > 0 ? now + timeout_s : 0;
		stops[i].expire =
		    now + (timeout_s > 0 ? timeout_s + 60 : STOP_GRACE_S);
	}
	wake_worker_locked();
	pthread_mutex_unlock(&virt_mtx);
}

static int
want_state(virDomainPtr dom, const int *ok, size_t nok, const char *what,
    struct api_error *err)
{
	int st, reason;
	size_t i;

	if (virDomainGetState(dom, &st, &reason, 0) < 0)
		return fail_libvirt(err, what, virDomainGetName(dom));
	for (i = 0; i < nok; i++)
		if (st == ok[i])
			return 0;
	api_error_set(err, 409, "wrong_state", "cannot %s a VM that is %s",
	    what, vm_state_name(map_state(st, reason)));
	return -1;
}

int
virt_action(const char *ref, enum vm_action act, int timeout_s,
    json_object **vmp, struct api_error *err)
{
	static const int off[] = {VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_CRASHED};
	static const int on[] = {VIR_DOMAIN_RUNNING, VIR_DOMAIN_BLOCKED,
	    VIR_DOMAIN_PAUSED, VIR_DOMAIN_SHUTDOWN, VIR_DOMAIN_PMSUSPENDED};
	static const int running[] = {VIR_DOMAIN_RUNNING, VIR_DOMAIN_BLOCKED};
	static const int paused[] = {VIR_DOMAIN_PAUSED};
	const char *what = vm_action_name(act);
	virConnectPtr c;
	virDomainPtr dom = NULL;
	char uuid[37];
	int ret = -1, r = -1;

	if (vmp != NULL)
		*vmp = NULL;
	if ((c = conn_need(err)) == NULL)
		return -1;
	if ((dom = lookup(c, ref, uuid, err)) == NULL)
		goto done;
	switch (act) {
	case ACT_START:
		if (want_state(dom, off, nitems(off), what, err) < 0)
			goto done;
		forget_stop(uuid);
		r = virDomainCreate(dom);
		break;
	case ACT_STOP:
		if (want_state(dom, running, nitems(running), what, err) < 0)
			goto done;
		r = virDomainShutdownFlags(
		    dom, VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN);
		if (r == 0)
			add_stop(uuid, timeout_s);
		break;
	case ACT_FORCE_STOP:
		if (want_state(dom, on, nitems(on), what, err) < 0)
			goto done;
		forget_stop(uuid);
		r = virDomainDestroy(dom);
		break;
	case ACT_RESTART:
		if (want_state(dom, running, nitems(running), what, err) < 0)
			goto done;
		r = virDomainReboot(dom, VIR_DOMAIN_REBOOT_ACPI_POWER_BTN);
		break;
	case ACT_PAUSE:
		if (want_state(dom, running, nitems(running), what, err) < 0)
			goto done;
		r = virDomainSuspend(dom);
		break;
	case ACT_RESUME:
		if (want_state(dom, paused, nitems(paused), what, err) < 0)
			goto done;
		r = virDomainResume(dom);
		break;
	}
	if (r < 0) {
		fail_libvirt(err, what, ref);
		goto done;
	}
	refresh_one(c, uuid);
	if (vmp != NULL)
		*vmp = state_vm_json(uuid);
	ret = 0;
done:
	if (dom != NULL)
		virDomainFree(dom);
	virConnectClose(c);
	return ret;
}

int
virt_set_autostart(
    const char *ref, bool on, json_object **vmp, struct api_error *err)
{
	virConnectPtr c;
	virDomainPtr dom;
	char uuid[37];
	int ret = -1;

	if (vmp != NULL)
		*vmp = NULL;
	if ((c = conn_need(err)) == NULL)
		return -1;
	if ((dom = lookup(c, ref, uuid, err)) == NULL)
		goto done;
	if (virDomainIsPersistent(dom) != 1) {
		api_error_set(
		    err, 409, "wrong_state", "a transient VM cannot autostart");
	} else if (virDomainSetAutostart(dom, on) < 0) {
		fail_libvirt(err, "set autostart for", ref);
	} else {
		/* libvirt emits no event for autostart: refresh ourselves. */
		refresh_one(c, uuid);
		if (vmp != NULL)
			*vmp = state_vm_json(uuid);
		ret = 0;
	}
	virDomainFree(dom);
done:
	virConnectClose(c);
	return ret;
}

static int secret_undefine_usage(virConnectPtr, const char *);

/* Deletes the volumes of `paths` that live in our pool; others are kept. */
static void
delete_pool_volumes(virConnectPtr c, char **paths, const char *vm)
{
	virStorageVolPtr vol;
	virStoragePoolPtr pool;
	const char *pname;
	size_t i;

	for (i = 0; paths[i] != NULL; i++) {
		if ((vol = virStorageVolLookupByPath(c, paths[i])) == NULL) {
			log_info("delete %s: keeping %s (not a pool volume)",
			    vm, paths[i]);
			continue;
		}
		pool = virStoragePoolLookupByVolume(vol);
		pname = pool != NULL ? virStoragePoolGetName(pool) : NULL;
		if (pname != NULL && pool_name[0] != '\0' &&
		    strcmp(pname, pool_name) == 0) {
			if (virStorageVolDelete(vol, 0) < 0)
				log_warnx("delete %s: volume %s: %s", vm,
				    paths[i], last_error());
			else {
				log_info("delete %s: removed volume %s", vm,
				    paths[i]);
				/* an encrypted disk's passphrase */
				secret_undefine_usage(c, paths[i]);
			}
		} else
			log_info("delete %s: keeping %s (pool %s is not ours)",
			    vm, paths[i], pname ? pname : "?");
		if (pool != NULL)
			virStoragePoolFree(pool);
		virStorageVolFree(vol);
	}
}

int
virt_delete(
    const char *ref, bool remove_disk, bool force, struct api_error *err)
{
	virConnectPtr c;
	virDomainPtr dom = NULL;
	char uuid[37], *xml = NULL, **disks = NULL;
	int active, persistent, ret = -1;

	if ((c = conn_need(err)) == NULL)
		return -1;
	if ((dom = lookup(c, ref, uuid, err)) == NULL)
		goto done;
	active = virDomainIsActive(dom);
	persistent = virDomainIsPersistent(dom);
	if (active == 1 && !force) {
		api_error_set(err, 409, "wrong_state",
		    "the VM is running; stop it first or pass force=true");
		goto done;
	}
	if (remove_disk && (xml = virDomainGetXMLDesc(dom, 0)) != NULL)
		disks = domparse_disks(xml);
	if (active == 1 && virDomainDestroy(dom) < 0) {
		fail_libvirt(err, "force off", ref);
		goto done;
	}
	if (persistent == 1 &&
	    virDomainUndefineFlags(dom,
		VIR_DOMAIN_UNDEFINE_NVRAM | VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
		    VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
		    VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA) < 0 &&
	    virDomainUndefine(dom) < 0) {
		fail_libvirt(err, "delete", ref);
		goto done;
	}
	if (disks != NULL)
		delete_pool_volumes(c, disks, ref);
	forget_stop(uuid);
	refresh_one(c, uuid);
	ret = 0;
done:
	strv_free(disks);
	free(xml);
	if (dom != NULL)
		virDomainFree(dom);
	virConnectClose(c);
	return ret;
}

/* ---- console streams (console.c) ---------------------------------------- */

/* The domain of uuid if it runs; else NULL and *err (404, 409, 503...). */
static virDomainPtr
running_domain(virConnectPtr c, const char *uuid, struct api_error *err)
{
	virDomainPtr dom;
	int active;

	if ((dom = virDomainLookupByUUIDString(c, uuid)) == NULL) {
		fail_libvirt(err, "find", uuid);
		return NULL;
	}
	if ((active = virDomainIsActive(dom)) != 1) {
		if (active == 0)
			api_error_set(
			    err, 409, "wrong_state", "the VM is not running");
		else
			fail_libvirt(err, "inspect", uuid);
		virDomainFree(dom);
		return NULL;
	}
	return dom;
}

/*
 * A VM's serial console as a non-blocking stream.  Its events run on the
 * event thread; mtx and `closed` make sure no callback reaches console.c
 * once virt_console_close() has returned.
 *
 * Who frees the struct: virt_console_close() hands it to the reaper, which
 * frees it on the event thread (a zero timeout), that is after any
 * console_event() dispatch that was under way when the callback was
 * removed; virt_shutdown() frees what is still waiting once that thread has
 * stopped.  libvirt's free callback is not used: its remote driver never
 * calls it (remoteStreamCallbackFree tests !cb, which always holds a
 * callback; fixed upstream in 2025), so every closed console leaked.
 */
struct virt_console {
	pthread_mutex_t mtx;
	virStreamPtr st;
	bool closed, ended;
	virt_console_fn cb;
	void *arg;
	struct virt_console *reap_next;
};

static pthread_mutex_t reap_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct virt_console *reap_list; /* closed, not freed yet */
static int reap_timer = -1;
static bool events_stopped; /* no event thread: free right away */

static void
console_free(struct virt_console *vc)
{
	pthread_mutex_destroy(&vc->mtx);
	free(vc);
}

static void
console_free_list(struct virt_console *list)
{
	struct virt_console *vc;

	while ((vc = list) != NULL) {
		list = vc->reap_next;
		console_free(vc);
	}
}

/* The zero timeout, on the event thread. */
static void
console_reap(int timer, void *opaque)
{
	struct virt_console *list;

	(void)opaque;
	pthread_mutex_lock(&reap_mtx);
	list = reap_list;
	reap_list = NULL;
	virEventRemoveTimeout(timer);
	if (reap_timer == timer)
		reap_timer = -1;
	pthread_mutex_unlock(&reap_mtx);
	console_free_list(list);
}

static void
console_reap_later(struct virt_console *vc)
{
	bool now;

	pthread_mutex_lock(&reap_mtx);
	if (!(now = events_stopped)) {
		vc->reap_next = reap_list;
		reap_list = vc;
		/* if no timeout can be added, virt_shutdown() frees it */
		if (reap_timer == -1 &&
		    (reap_timer = virEventAddTimeout(
			 0, console_reap, NULL, NULL)) < 0) {
			log_warnx("%s: %s", __func__, last_error());
			reap_timer = -1;
		}
	}
	pthread_mutex_unlock(&reap_mtx);
	if (now)
		console_free(vc);
}

/* virt_init(): the event thread runs; virt_shutdown(): it has stopped. */
static void
console_events_running(bool running)
{
	struct virt_console *list;

	pthread_mutex_lock(&reap_mtx);
	events_stopped = !running;
	list = reap_list;
	reap_list = NULL;
	if (reap_timer != -1)
		virEventRemoveTimeout(reap_timer);
	reap_timer = -1;
	pthread_mutex_unlock(&reap_mtx);
	console_free_list(list);
}

static void
console_event(virStreamPtr st, int events, void *opaque)
{
	struct virt_console *vc = opaque;
	char buf[16384];
	int n = -2;

	pthread_mutex_lock(&vc->mtx);
	if (vc->closed || vc->ended) {
		pthread_mutex_unlock(&vc->mtx);
		return;
	}
	if (events & VIR_STREAM_EVENT_READABLE) {
		while ((n = virStreamRecv(st, buf, sizeof(buf))) > 0)
			vc->cb(vc->arg, buf, n);
	}
	if (n == 0 || n == -1 ||
	    (events & (VIR_STREAM_EVENT_ERROR | VIR_STREAM_EVENT_HANGUP))) {
		if (n == -1)
			log_debug("%s: %s", __func__, last_error());
		/* the end: no more events until virt_console_close() */
		vc->ended = true;
		virStreamEventUpdateCallback(st, 0);
		vc->cb(vc->arg, NULL, n == -1 ? -1 : 0);
	}
	pthread_mutex_unlock(&vc->mtx);
}

struct virt_console *
virt_console_open(const char *uuid, bool force, virt_console_fn cb, void *arg,
    struct api_error *err)
{
	struct virt_console *vc = NULL;
	virDomainPtr dom = NULL;
	virStreamPtr st = NULL;
	virConnectPtr c;

	if ((c = conn_need(err)) == NULL)
		return NULL;
	if ((dom = running_domain(c, uuid, err)) == NULL)
		goto done;
	if ((st = virStreamNew(c, VIR_STREAM_NONBLOCK)) == NULL ||
	    virDomainOpenConsole(dom, NULL, st,
		force ? VIR_DOMAIN_CONSOLE_FORCE : VIR_DOMAIN_CONSOLE_SAFE) <
		0) {
		log_warnx("%s: %s: %s", __func__, uuid, last_error());
		api_error_set(err, 409, "console_busy",
		    "the VM's serial console cannot be opened now");
		goto done;
	}
	vc = xcalloc(1, sizeof(*vc));
	pthread_mutex_init(&vc->mtx, NULL);
	vc->st = st;
	vc->cb = cb;
	vc->arg = arg;
	if (virStreamEventAddCallback(st,
		VIR_STREAM_EVENT_READABLE | VIR_STREAM_EVENT_ERROR |
		    VIR_STREAM_EVENT_HANGUP,
		console_event, vc, NULL) < 0) {
		log_warnx("%s: %s: %s", __func__, uuid, last_error());
		api_error_set(err, 500, "libvirt_error",
		    "cannot watch the VM's serial console");
		console_free(vc); /* never registered */
		vc = NULL;
		goto done;
	}
	st = NULL; /* vc holds it */
done:
	if (st != NULL) {
		virStreamAbort(st);
		virStreamFree(st);
	}
	if (dom != NULL)
		virDomainFree(dom);
	virConnectClose(c);
	return vc;
}

int
virt_console_send(struct virt_console *vc, const void *buf, size_t len)
{
	const char *p = buf;
	int n, tries = 0;

	while (len > 0) {
		n = virStreamSend(vc->st, p, len);
		if (n == -2) {
			/* the guest's side is full: a short wait, bounded */
			if (++tries > 200)
				return -1;
			nanosleep(&(struct timespec){0, 5000000}, NULL);
			continue;
		}
		if (n < 0) {
			log_debug("%s: %s", __func__, last_error());
			return -1;
		}
		p += n;
		len -= n;
	}
	return 0;
}

void
virt_console_close(struct virt_console *vc)
{
	virStreamPtr st;

	if (vc == NULL)
		return;
	pthread_mutex_lock(&vc->mtx);
	vc->closed = true;
	st = vc->st;
	pthread_mutex_unlock(&vc->mtx);
	/* no new dispatch after this; one under way sees `closed` */
	if (virStreamEventRemoveCallback(st) < 0)
		log_debug("%s: %s", __func__, last_error());
	if (virStreamAbort(st) < 0)
		log_debug("%s: %s", __func__, last_error());
	virStreamFree(st);
	console_reap_later(vc);
}

int
virt_graphics_fd(const char *uuid, struct api_error *err)
{
	virDomainPtr dom;
	virConnectPtr c;
	int fd = -1;

	if ((c = conn_need(err)) == NULL)
		return -1;
	if ((dom = running_domain(c, uuid, err)) == NULL)
		goto done;
	if (!vm_backend()->graphics_fd) {
		/* libxl: the guest's VNC on 127.0.0.1, proxied (xen.c) */
		char *xml = virDomainGetXMLDesc(dom, 0), *why = NULL;

		if (xml == NULL || (fd = xen_vnc_connect(xml, &why)) < 0) {
			log_warnx("%s: %s: %s", __func__, uuid,
			    why != NULL ? why : last_error());
			api_error_set(err, 409, "no_graphics",
			    "the VM's graphical console cannot be opened");
		}
		free(xml);
		free(why);
	} else if ((fd = virDomainOpenGraphicsFD(
			dom, 0, VIR_DOMAIN_OPEN_GRAPHICS_SKIPAUTH)) < 0) {
		log_warnx("%s: %s: %s", __func__, uuid, last_error());
		api_error_set(err, 409, "no_graphics",
		    "the VM's graphical console cannot be opened");
	}
done:
	if (dom != NULL)
		virDomainFree(dom);
	virConnectClose(c);
	return fd;
}

/* ---- storage and define (deploy.c) ---- */

/*
 * The deploy pipeline's libvirt steps, on its worker threads.  Messages in
 * *errp go to API callers, so they never carry libvirt's text (host paths);
 * that is logged here.  Names and paths come from deploy.c (strict VM
 * names, hex digests, the configured pool directory).
 */

/*
 * One pool operation at a time: libvirt refuses to refresh a pool while it
 * builds a volume in it ("asynchronous jobs running").
 */
static pthread_mutex_t store_mtx = PTHREAD_MUTEX_INITIALIZER;

static int
store_fail(char **errp, const char *what)
{
	log_warnx("deploy: %s: %s", what, last_error());
	free(*errp);
	if (!state_connected())
		*errp = xstrdup("libvirtd is not reachable");
	else
		xasprintf(errp,
		    "libvirt could not %s (vmmod's log has details)", what);
	return -1;
}

static virConnectPtr
store_conn(char **errp)
{
	virConnectPtr c;

	if ((c = conn_get()) == NULL) {
		free(*errp);
		*errp = xstrdup("libvirtd is not reachable");
	}
	return c;
}

/* The document as text (freed here); NULL when libxml2 fails. */
static char *
xml_doc_text(xmlDocPtr doc)
{
	xmlChar *buf = NULL;
	char *s = NULL;
	int len = 0;

	xmlDocDumpMemory(doc, &buf, &len);
	if (buf != NULL && len > 0)
		s = xstrdup((const char *)buf);
	xmlFree(buf);
	xmlFreeDoc(doc);
	return s;
}

static xmlNodePtr
xml_child(xmlNodePtr parent, const char *name, const char *text)
{
	return xmlNewTextChild(
	    parent, NULL, BAD_CAST name, text ? BAD_CAST text : NULL);
}

static void
xml_attr(xmlNodePtr node, const char *name, const char *value)
{
	xmlNewProp(node, BAD_CAST name, BAD_CAST value);
}

static xmlNodePtr
xml_root(xmlDocPtr *docp, const char *name)
{
	xmlNodePtr root;

	*docp = xmlNewDoc(BAD_CAST "1.0");
	root = xmlNewNode(NULL, BAD_CAST name);
	xmlDocSetRootElement(*docp, root);
	return root;
}

int
virt_pool_ensure(const char *dir, char **errp)
{
	virConnectPtr c;
	virStoragePoolPtr pool;
	xmlDocPtr doc;
	xmlNodePtr root, target;
	char *xml = NULL;
	int active, ret = -1;

	if ((c = store_conn(errp)) == NULL)
		return -1;
	if ((pool = virStoragePoolLookupByName(c, pool_name)) == NULL) {
		root = xml_root(&doc, "pool");
		xml_attr(root, "type", "dir");
		xml_child(root, "name", pool_name);
		target = xml_child(root, "target", NULL);
		xml_child(target, "path", dir);
		xml_child(
		    xml_child(target, "permissions", NULL), "mode", "0711");
		if ((xml = xml_doc_text(doc)) == NULL ||
		    (pool = virStoragePoolDefineXML(c, xml, 0)) == NULL) {
			store_fail(errp, "define the storage pool");
			goto done;
		}
		if (virStoragePoolBuild(pool, 0) < 0)
			log_debug("pool build: %s", last_error());
		if (virStoragePoolSetAutostart(pool, 1) < 0)
			log_warnx("pool autostart: %s", last_error());
		log_info("defined storage pool %s at %s", pool_name, dir);
	}
	if ((active = virStoragePoolIsActive(pool)) == 0 &&
	    virStoragePoolCreate(pool, 0) < 0) {
		store_fail(errp, "start the storage pool");
		goto done;
	}
	if (active < 0) {
		store_fail(errp, "inspect the storage pool");
		goto done;
	}
	ret = 0;
done:
	free(xml);
	if (pool != NULL)
		virStoragePoolFree(pool);
	virConnectClose(c);
	return ret;
}

static virStoragePoolPtr
store_pool(virConnectPtr c, char **errp)
{
	virStoragePoolPtr pool;

	if ((pool = virStoragePoolLookupByName(c, pool_name)) == NULL)
		store_fail(errp, "find the storage pool");
	return pool;
}

/*
 * Where volume NAME of a directory pool lives: the pool's target path, "/",
 * NAME (what libvirt's dir backend makes of it).  NULL when unknown.
 */
static char *
pool_vol_path(virStoragePoolPtr pool, const char *name)
{
	xmlDocPtr doc;
	xmlXPathContextPtr ctx = NULL;
	xmlXPathObjectPtr o;
	char *xml, *path = NULL;

	if ((xml = virStoragePoolGetXMLDesc(pool, 0)) == NULL)
		return NULL;
	doc = xmlReadMemory(xml, strlen(xml), "pool.xml", NULL,
	    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (doc != NULL && (ctx = xmlXPathNewContext(doc)) != NULL) {
		o = xmlXPathEvalExpression(
		    BAD_CAST "string(/pool/target/path)", ctx);
		if (o != NULL && o->type == XPATH_STRING &&
		    o->stringval != NULL && o->stringval[0] == '/')
			xasprintf(
			    &path, "%s/%s", (const char *)o->stringval, name);
		xmlXPathFreeObject(o);
	}
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	free(xml);
	return path;
}

/* Undefines the secret whose usage is the volume at path; 0 when none. */
static int
secret_undefine_usage(virConnectPtr c, const char *path)
{
	virSecretPtr sec;
	int ret = 0;

	if ((sec = virSecretLookupByUsage(
		 c, VIR_SECRET_USAGE_TYPE_VOLUME, path)) == NULL)
		return 0;
	if (virSecretUndefine(sec) < 0) {
		log_warnx("secret of %s: %s", path, last_error());
		ret = -1;
	} else
		log_info("removed the secret of %s", path);
	virSecretFree(sec);
	return ret;
}

/*
 * A libvirt secret for the LUKS volume at path: persistent, private (the
 * API never gives its value back), usage "volume" path; its value a random
 * passphrase (32 bytes from getrandom as 64 hex digits: QEMU reads secrets
 * as UTF-8 text).  Its UUID into uuid.
 */
static int
secret_create(virConnectPtr c, const char *path, char uuid[37], char **errp)
{
	static const char hexd[] = "0123456789abcdef";
	unsigned char raw[32], pass[64];
	virSecretPtr sec = NULL;
	virStorageVolPtr vol;
	xmlDocPtr doc;
	xmlNodePtr root, usage;
	char *xml;
	size_t i;
	int ret = -1;

	/* A leftover of a killed job; a kept disk's secret stays. */
	if ((vol = virStorageVolLookupByPath(c, path)) != NULL) {
		virStorageVolFree(vol);
		free(*errp);
		*errp = xstrdup("a disk of that name is in the storage pool "
				"(kept from a deleted VM?)");
		return -1;
	}
	secret_undefine_usage(c, path);
	root = xml_root(&doc, "secret");
	xml_attr(root, "ephemeral", "no");
	xml_attr(root, "private", "yes");
	xml_child(root, "description",
	    "guardian-vms: passphrase of an encrypted VM disk");
	usage = xml_child(root, "usage", NULL);
	xml_attr(usage, "type", "volume");
	xml_child(usage, "volume", path);
	if ((xml = xml_doc_text(doc)) == NULL ||
	    (sec = virSecretDefineXML(c, xml, 0)) == NULL) {
		store_fail(errp, "create the disk's secret");
		goto done;
	}
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		log_warn("getrandom");
		free(*errp);
		*errp = xstrdup("no randomness for the disk's passphrase");
		goto done;
	}
	for (i = 0; i < sizeof(raw); i++) {
		pass[2 * i] = hexd[raw[i] >> 4];
		pass[2 * i + 1] = hexd[raw[i] & 0xf];
	}
	if (virSecretSetValue(sec, pass, sizeof(pass), 0) < 0 ||
	    virSecretGetUUIDString(sec, uuid) < 0) {
		store_fail(errp, "set the disk's secret");
		goto done;
	}
	log_info("deploy: secret %s for %s", uuid, path);
	ret = 0;
done:
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(pass, sizeof(pass));
	if (sec != NULL) {
		if (ret < 0 && virSecretUndefine(sec) < 0)
			log_warnx("undefine secret: %s", last_error());
		virSecretFree(sec);
	}
	free(xml);
	return ret;
}

int
virt_pool_refresh(char **errp)
{
	virConnectPtr c;
	virStoragePoolPtr pool;
	int ret = -1;

	if ((c = store_conn(errp)) == NULL)
		return -1;
	if ((pool = store_pool(c, errp)) != NULL) {
		pthread_mutex_lock(&store_mtx);
		ret = virStoragePoolRefresh(pool, 0);
		pthread_mutex_unlock(&store_mtx);
		if (ret < 0)
			store_fail(errp, "refresh the storage pool");
		virStoragePoolFree(pool);
	}
	virConnectClose(c);
	return ret;
}

/* The <volume> of virt_vol_create (libxml2 quotes names and paths). */
static char *
vol_xml(const char *name, const char *backing, const char *backing_fmt,
    uint64_t capacity, const char *secret)
{
	xmlDocPtr doc;
	xmlNodePtr root, n, target;
	char num[32];

	root = xml_root(&doc, "volume");
	xml_child(root, "name", name);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)capacity);
	n = xml_child(root, "capacity", num);
	xml_attr(n, "unit", "bytes");
	target = xml_child(root, "target", NULL);
	xml_attr(xml_child(target, "format", NULL), "type", "qcow2");
	xml_child(xml_child(target, "permissions", NULL), "mode", "0600");
	if (secret != NULL) {
		/* qcow2 v3 with LUKS inside (QEMU's encrypt.format=luks) */
		xml_child(target, "compat", "1.1");
		n = xml_child(target, "encryption", NULL);
		xml_attr(n, "format", "luks");
		n = xml_child(n, "secret", NULL);
		xml_attr(n, "type", "passphrase");
		xml_attr(n, "uuid", secret);
	}
	if (backing != NULL) {
		n = xml_child(root, "backingStore", NULL);
		xml_child(n, "path", backing);
		xml_attr(xml_child(n, "format", NULL), "type", backing_fmt);
	}
	return xml_doc_text(doc);
}

int
virt_vol_create(const char *name, const char *backing, const char *backing_fmt,
    bool copy, uint64_t capacity, char pathp[PATH_MAX], char secretp[37],
    char **errp)
{
	virConnectPtr c;
	virStoragePoolPtr pool = NULL;
	virStorageVolPtr vol = NULL, src = NULL;
	char *xml = NULL, *p, *spath = NULL;
	bool have_secret = false;
	int ret = -1, tries;

	if (secretp != NULL && backing != NULL && !copy) {
		/* the base would stay plain text under an encrypted overlay */
		free(*errp);
		*errp = xstrdup("an encrypted disk must be a copy");
		return -1;
	}
	if ((c = store_conn(errp)) == NULL)
		return -1;
	if ((pool = store_pool(c, errp)) == NULL)
		goto done;
	if (secretp != NULL) {
		if ((spath = pool_vol_path(pool, name)) == NULL) {
			store_fail(errp, "find the storage pool's directory");
			goto done;
		}
		if (secret_create(c, spath, secretp, errp) < 0)
			goto done;
		have_secret = true;
	}
	if ((xml = vol_xml(name, copy ? NULL : backing, backing_fmt, capacity,
		 secretp)) == NULL) {
		store_fail(errp, "describe the VM disk");
		goto done;
	}
	/*
	 * qemu-img times its LUKS key derivation in thread CPU time and gives
	 * up with "Unable to get accurate CPU usage" when a busy host reads
	 * 0 ms: a spurious failure, tried again (libvirt removed the file).
	 */
	for (tries = 0; tries < 3 && vol == NULL; tries++) {
		if (tries > 0) {
			log_warnx("deploy: %s: qemu-img could not time the "
				  "LUKS key derivation; trying again",
			    name);
			sleep(1);
		}
		pthread_mutex_lock(&store_mtx);
		if (copy) {
			/* secretp: qemu-img convert into the LUKS qcow2 */
			if (src == NULL)
				src = virStorageVolLookupByPath(c, backing);
			if (src != NULL)
				vol = virStorageVolCreateXMLFrom(
				    pool, xml, src, 0);
		} else
			vol = virStorageVolCreateXML(pool, xml, 0);
		pthread_mutex_unlock(&store_mtx);
		/* (no libvirt call before the error is read) */
		if (vol == NULL &&
		    (secretp == NULL ||
			strstr(last_error(),
			    "Unable to get accurate CPU usage") == NULL))
			break;
	}
	if (vol == NULL) {
		store_fail(errp, "create the VM disk");
		goto done;
	}
	if ((p = virStorageVolGetPath(vol)) == NULL) {
		store_fail(errp, "find the VM disk");
		goto done;
	}
	snprintf(pathp, PATH_MAX, "%s", p);
	if (spath != NULL && strcmp(p, spath) != 0)
		log_warnx("deploy: volume %s is at %s, its secret names %s",
		    name, p, spath);
	free(p);
	log_info("deploy: created volume %s (%s%s)", name,
	    copy	  ? "copy"
		: backing ? "overlay"
			  : "empty",
	    secretp != NULL ? ", LUKS-encrypted" : "");
	ret = 0;
done:
	if (ret < 0 && have_secret)
		secret_undefine_usage(c, spath);
	free(xml);
	free(spath);
	if (src != NULL)
		virStorageVolFree(src);
	if (vol != NULL)
		virStorageVolFree(vol);
	if (pool != NULL)
		virStoragePoolFree(pool);
	virConnectClose(c);
	return ret;
}

int
virt_vol_resize(const char *name, uint64_t bytes, char **errp)
{
	virConnectPtr c;
	virStoragePoolPtr pool = NULL;
	virStorageVolPtr vol = NULL;
	virStorageVolInfo info;
	int ret = -1;

	if ((c = store_conn(errp)) == NULL)
		return -1;
	if ((pool = store_pool(c, errp)) == NULL)
		goto done;
	if ((vol = virStorageVolLookupByName(pool, name)) == NULL ||
	    virStorageVolGetInfo(vol, &info) < 0) {
		store_fail(errp, "find the VM disk");
		goto done;
	}
	pthread_mutex_lock(&store_mtx);
	if (info.capacity < bytes && virStorageVolResize(vol, bytes, 0) < 0) {
		pthread_mutex_unlock(&store_mtx);
		store_fail(errp, "grow the VM disk");
		goto done;
	}
	pthread_mutex_unlock(&store_mtx);
	ret = 0;
done:
	if (vol != NULL)
		virStorageVolFree(vol);
	if (pool != NULL)
		virStoragePoolFree(pool);
	virConnectClose(c);
	return ret;
}

int
virt_vol_delete(const char *name)
{
	virConnectPtr c;
	virStoragePoolPtr pool;
	virStorageVolPtr vol;
	char *path = NULL;
	int ret = 0;

	if ((c = conn_get()) == NULL)
		return -1;
	if ((pool = virStoragePoolLookupByName(c, pool_name)) == NULL) {
		virConnectClose(c);
		return 0;
	}
	pthread_mutex_lock(&store_mtx);
	virStoragePoolRefresh(pool, 0);
	pthread_mutex_unlock(&store_mtx);
	if ((vol = virStorageVolLookupByName(pool, name)) != NULL) {
		path = virStorageVolGetPath(vol);
		if (virStorageVolDelete(vol, 0) < 0) {
			log_warnx(
			    "deploy: delete volume %s: %s", name, last_error());
			ret = -1;
		} else
			log_info("deploy: removed volume %s", name);
		virStorageVolFree(vol);
	}
	/* Its secret, also when the volume was never made. */
	if (ret == 0 && (path != NULL || (path = pool_vol_path(pool, name))))
		if (secret_undefine_usage(c, path) < 0)
			ret = -1;
	free(path);
	virStoragePoolFree(pool);
	virConnectClose(c);
	return ret;
}

int
virt_define(const char *xml, bool autostart, char uuid[37], char **errp)
{
	virConnectPtr c;
	virDomainPtr dom;
	int ret = -1;

	if ((c = store_conn(errp)) == NULL)
		return -1;
	if ((dom = virDomainDefineXML(c, xml)) == NULL) {
		store_fail(errp, "define the VM");
		goto done;
	}
	if (virDomainGetUUIDString(dom, uuid) < 0 ||
	    (autostart && virDomainSetAutostart(dom, 1) < 0)) {
		store_fail(errp, "set up the VM");
		virDomainFree(dom);
		goto done;
	}
	refresh_one(c, uuid);
	virDomainFree(dom);
	ret = 0;
done:
	virConnectClose(c);
	return ret;
}

int
virt_start_name(const char *name, char **errp)
{
	virConnectPtr c;
	virDomainPtr dom;
	char uuid[VIR_UUID_STRING_BUFLEN];
	int ret = -1;

	if ((c = store_conn(errp)) == NULL)
		return -1;
	if ((dom = virDomainLookupByName(c, name)) == NULL) {
		store_fail(errp, "find the VM");
		goto done;
	}
	if (virDomainCreate(dom) < 0)
		store_fail(errp, "start the VM");
	else
		ret = 0;
	if (virDomainGetUUIDString(dom, uuid) == 0)
		refresh_one(c, uuid);
	virDomainFree(dom);
done:
	virConnectClose(c);
	return ret;
}

int
virt_undefine_name(const char *name)
{
	virConnectPtr c;
	virDomainPtr dom;
	char uuid[VIR_UUID_STRING_BUFLEN];
	int ret = 0;

	if ((c = conn_get()) == NULL)
		return -1;
	if ((dom = virDomainLookupByName(c, name)) == NULL) {
		virConnectClose(c);
		return 0;
	}
	if (virDomainIsActive(dom) == 1 && virDomainDestroy(dom) < 0)
		log_warnx("deploy: force off %s: %s", name, last_error());
	if (virDomainUndefineFlags(dom,
		VIR_DOMAIN_UNDEFINE_NVRAM | VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
		    VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA) < 0) {
		log_warnx("deploy: undefine %s: %s", name, last_error());
		ret = -1;
	} else
		log_info("deploy: undefined %s", name);
	if (virDomainGetUUIDString(dom, uuid) == 0)
		refresh_one(c, uuid);
	virDomainFree(dom);
	virConnectClose(c);
	return ret;
}

/* Is the nwfilter defined (Debian: libvirt-daemon-config-nwfilter)? */
bool
virt_nwfilter_exists(const char *name)
{
	virConnectPtr c;
	virNWFilterPtr f;

	if ((c = conn_get()) == NULL)
		return false;
	if ((f = virNWFilterLookupByName(c, name)) != NULL)
		virNWFilterFree(f);
	virConnectClose(c);
	return f != NULL;
}

/* ---- host devices (usb.c, devices) ---- */

/*
 * devices.c's libvirt steps, on HTTP threads and the USB hotplug thread.
 * The domain is looked up by UUID each time; errors reach API callers
 * without libvirt's text (that goes to the log).
 */

static virDomainPtr
dev_dom(virConnectPtr *cp, const char *uuid, struct api_error *err)
{
	virDomainPtr dom;

	if ((*cp = conn_need(err)) == NULL)
		return NULL;
	if ((dom = virDomainLookupByUUIDString(*cp, uuid)) == NULL) {
		fail_libvirt(err, "find", uuid);
		virConnectClose(*cp);
		*cp = NULL;
	}
	return dom;
}

int
virt_dom_xml(const char *uuid, bool inactive, char **xmlp, bool *runningp,
    bool *persistentp, struct api_error *err)
{
	virConnectPtr c;
	virDomainPtr dom;
	int active;

	*xmlp = NULL;
	if ((dom = dev_dom(&c, uuid, err)) == NULL)
		return -1;
	active = virDomainIsActive(dom);
	if (runningp != NULL)
		*runningp = active == 1;
	if (persistentp != NULL)
		*persistentp = virDomainIsPersistent(dom) == 1;
	/* A transient domain has no inactive definition. */
	*xmlp = virDomainGetXMLDesc(dom,
	    inactive && virDomainIsPersistent(dom) == 1
		? VIR_DOMAIN_XML_INACTIVE
		: 0);
	if (*xmlp == NULL)
		fail_libvirt(err, "read", uuid);
	virDomainFree(dom);
	virConnectClose(c);
	return *xmlp != NULL ? 0 : -1;
}

int
virt_dom_meta(
    const char *uuid, bool inactive, char **metap, struct api_error *err)
{
	virConnectPtr c;
	virDomainPtr dom;

	*metap = NULL;
	if ((dom = dev_dom(&c, uuid, err)) == NULL)
		return -1;
	*metap = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT,
	    SPEC_XMLNS,
	    inactive ? VIR_DOMAIN_AFFECT_CONFIG : VIR_DOMAIN_AFFECT_CURRENT);
	virDomainFree(dom);
	virConnectClose(c);
	/* No metadata of ours is no error: the VM wants no devices. */
	if (*metap == NULL && last_code() != VIR_ERR_NO_DOMAIN_METADATA)
		return -1;
	return 0;
}

int
virt_dom_set_meta(const char *uuid, const char *meta, bool live, bool config,
    struct api_error *err)
{
	virConnectPtr c;
	virDomainPtr dom;
	unsigned flags = (live ? VIR_DOMAIN_AFFECT_LIVE : 0) |
	    (config ? VIR_DOMAIN_AFFECT_CONFIG : 0);
	int ret = 0;

	if ((dom = dev_dom(&c, uuid, err)) == NULL)
		return -1;
	if (virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, meta,
		SPEC_XMLNS_PREFIX, SPEC_XMLNS, flags) < 0)
		ret = fail_libvirt(err, "update", uuid);
	refresh_one(c, uuid);
	virDomainFree(dom);
	virConnectClose(c);
	return ret;
}

int
virt_hostdev(const char *uuid, const char *xml, bool attach, bool live,
    bool config, struct api_error *err)
{
	virConnectPtr c;
	virDomainPtr dom;
	unsigned flags = (live ? VIR_DOMAIN_AFFECT_LIVE : 0) |
	    (config ? VIR_DOMAIN_AFFECT_CONFIG : 0);
	int rc, ret = 0;

	if ((dom = dev_dom(&c, uuid, err)) == NULL)
		return -1;
	rc = attach ? virDomainAttachDeviceFlags(dom, xml, flags)
		    : virDomainDetachDeviceFlags(dom, xml, flags);
	if (rc < 0) {
		log_warnx("usb: %s %s (%s): %s", attach ? "attach" : "detach",
		    uuid, live ? "live" : "definition", last_error());
		if (last_code() == VIR_ERR_NO_DOMAIN)
			api_error_set(err, 404, "not_found", "no such VM");
		else if (!state_connected())
			api_error_set(err, 503, "libvirtd_down",
			    "libvirtd is not reachable");
		else
			/* QEMU refused the host device, or libvirt the XML. */
			api_error_set(err, 409,
			    attach ? "attach_failed" : "detach_failed",
			    "the USB device could not be %s %s (vmmod's log "
			    "has details)",
			    attach ? "attached to" : "detached from",
			    live ? "the running VM" : "the VM's definition");
		ret = -1;
	}
	refresh_one(c, uuid);
	virDomainFree(dom);
	virConnectClose(c);
	return ret;
}
