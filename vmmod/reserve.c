/*
 * Address reservations for the VMs vmmod creates.  Each VM gets an IPv4
 * address from a configured block (inside br0's subnet, outside dnsmasq's
 * dynamic pool) and a MAC 52:54:00:xx:xx:xx, made real by two files that
 * dnsmasq reads: DHCP_DIR/NAME ("MAC,IP,NAME", dhcp-hostsdir) and
 * HOSTS_DIR/NAME ("IP NAME NAME.DOMAIN", hostsdir).  dnsmasq notices new
 * files by inotify; changed or removed ones need a SIGHUP, which the root
 * unit guardian-vms-dnsmasq-reload.path sends, so vmmod needs no privilege.
 * Files are written as a dot-file (dnsmasq ignores those) and renamed into
 * place.  Addresses are handed out least recently freed first so a deleted
 * VM's address (and any stale lease or DNS cache entry) is reused last; the
 * order and the reservations live in a JSON state file written atomically.
 */
#include <sys/random.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmmod.h"

#define RESERVE_BLOCK_MAX 256 /* addresses in a block */
#define RESERVE_STATE_MAX (1 << 20)

struct reserve {
	pthread_mutex_t lock;
	char *state_file, *dhcp_dir, *hosts_dir, *domain;
	uint32_t first, last; /* the block, host byte order */
	struct reservation *v; /* sorted by name */
	size_t n;
	uint32_t *free_order; /* free addresses, next to hand out first */
	size_t nfree;
};

static int
res_ip(const char *s, uint32_t *out)
{
	struct in_addr in;

	if (inet_pton(AF_INET, s, &in) != 1)
		return -1;
	*out = ntohl(in.s_addr);
	return 0;
}

static void
res_ntoa(uint32_t a, char out[16])
{
	struct in_addr in = {.s_addr = htonl(a)};

	inet_ntop(AF_INET, &in, out, 16);
}

/* "A-B" (or a single "A") -> [first, last]. */
static int
res_range(const char *s, uint32_t *first, uint32_t *last)
{
	char buf[40];
	const char *dash = strchr(s, '-');

	if (strlen(s) >= sizeof(buf))
		return -1;
	if (dash == NULL)
		return res_ip(s, first) == -1 ? -1 : (*last = *first, 0);
	memcpy(buf, s, dash - s);
	buf[dash - s] = '\0';
	if (res_ip(buf, first) == -1 || res_ip(dash + 1, last) == -1 ||
	    *last < *first)
		return -1;
	return 0;
}

/* "192.168.4.1/27" -> network, broadcast and the bridge's own address. */
static int
res_cidr(const char *s, uint32_t *net, uint32_t *bcast, uint32_t *self)
{
	char buf[40], *end;
	const char *slash = strchr(s, '/');
	unsigned long len;
	uint32_t mask;

	if (slash == NULL || (size_t)(slash - s) >= sizeof(buf))
		return -1;
	memcpy(buf, s, slash - s);
	buf[slash - s] = '\0';
	errno = 0;
	len = strtoul(slash + 1, &end, 10);
	if (res_ip(buf, self) == -1 || *end != '\0' || errno != 0 ||
	    slash[1] == '\0' || len < 8 || len > 30)
		return -1;
	mask = 0xffffffffU << (32 - len);
	*net = *self & mask;
	*bcast = *net | ~mask;
	return 0;
}

int
reserve_check_block(
    const char *block, const char *subnet, const char *dhcp_pool, char **errp)
{
	uint32_t first, last, net, bcast, self, pfirst, plast;

	if (errp != NULL)
		*errp = NULL;
	if (block == NULL || res_range(block, &first, &last) == -1)
		return err_set(errp, "reserve_block: not A.B.C.D-A.B.C.D");
	if (last - first >= RESERVE_BLOCK_MAX)
		return err_set(errp, "reserve_block: more than %d addresses",
		    RESERVE_BLOCK_MAX);
	if (subnet == NULL || res_cidr(subnet, &net, &bcast, &self) == -1)
		return err_set(errp,
		    "reserve_subnet: not ADDRESS/PREFIX "
		    "(prefix 8..30)");
	if (first <= net || last >= bcast)
		return err_set(errp,
		    "reserve_block %s is outside the subnet "
		    "%s (or holds its network or broadcast "
		    "address)",
		    block, subnet);
	if (self >= first && self <= last)
		return err_set(errp,
		    "reserve_block %s holds the bridge's "
		    "own address",
		    block);
	if (dhcp_pool != NULL) {
		if (res_range(dhcp_pool, &pfirst, &plast) == -1)
			return err_set(errp, "dhcp_pool: not A.B.C.D-A.B.C.D");
		if (first <= plast && pfirst <= last)
			return err_set(errp,
			    "reserve_block %s overlaps the "
			    "DHCP pool %s: shrink the pool",
			    block, dhcp_pool);
	}
	return 0;
}

static int
res_cmp(const void *a, const void *b)
{
	return strcmp(((const struct reservation *)a)->name,
	    ((const struct reservation *)b)->name);
}

static struct reservation *
res_find(struct reserve *r, const char *name)
{
	struct reservation key;

	/* bsearch's base must not be NULL, even for zero entries */
	if (r->n == 0 || strlen(name) >= sizeof(key.name))
		return NULL;
	strcpy(key.name, name);
	return bsearch(&key, r->v, r->n, sizeof(*r->v), res_cmp);
}

static bool
res_in_use(struct reserve *r, uint32_t a, const char *mac)
{
	char ip[16];
	size_t i;

	res_ntoa(a, ip);
	for (i = 0; i < r->n; i++)
		if ((mac == NULL && strcmp(r->v[i].ip, ip) == 0) ||
		    (mac != NULL && strcmp(r->v[i].mac, mac) == 0))
			return true;
	return false;
}

static bool
res_listed(struct reserve *r, uint32_t a)
{
	size_t i;

	for (i = 0; i < r->nfree; i++)
		if (r->free_order[i] == a)
			return true;
	return false;
}

/*
 * Writes path through a dot-file in the same directory: dnsmasq skips
 * dot-files, and rename(2) makes the final name appear complete or not at
 * all.  Mode 0644 whatever the umask: dnsmasq reads as its own user.
 */
static int
res_write(const char *dir, const char *name, const char *text)
{
	char *tmp, *path;
	size_t len = strlen(text);
	int fd, saved, ret = -1;

	xasprintf(&tmp, "%s/.%s.XXXXXX", dir, name);
	xasprintf(&path, "%s/%s", dir, name);
	if ((fd = mkstemp(tmp)) == -1) {
		log_warn("%s: %s", __func__, tmp);
		goto done;
	}
	if (fchmod(fd, 0644) == -1 || write(fd, text, len) != (ssize_t)len ||
	    fsync(fd) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		log_warn("%s: %s", __func__, tmp);
		unlink(tmp);
		goto done;
	}
	if (close(fd) == -1 || rename(tmp, path) == -1) {
		log_warn("%s: %s", __func__, path);
		unlink(tmp);
		goto done;
	}
	ret = 0;
done:
	free(tmp);
	free(path);
	return ret;
}

static void
res_unlink(const char *dir, const char *name)
{
	char *path;

	if (dir == NULL)
		return;
	xasprintf(&path, "%s/%s", dir, name);
	if (unlink(path) == -1 && errno != ENOENT)
		log_warn("%s: %s", __func__, path);
	free(path);
}

static int
res_files_write(struct reserve *r, const struct reservation *rv)
{
	char *text;
	int ret;

	xasprintf(&text, "%s,%s,%s\n", rv->mac, rv->ip, rv->name);
	ret = res_write(r->dhcp_dir, rv->name, text);
	free(text);
	if (ret == -1 || r->hosts_dir == NULL)
		return ret;
	if (r->domain != NULL)
		xasprintf(&text, "%s %s %s.%s\n", rv->ip, rv->name, rv->name,
		    r->domain);
	else
		xasprintf(&text, "%s %s\n", rv->ip, rv->name);
	ret = res_write(r->hosts_dir, rv->name, text);
	free(text);
	if (ret == -1)
		res_unlink(r->dhcp_dir, rv->name);
	return ret;
}

static int
res_save(struct reserve *r)
{
	json_object *o = json_object_new_object(), *a, *e;
	const char *text;
	char ip[16];
	size_t i;
	int ret;

	json_object_object_add(o, "version", json_object_new_int(1));
	a = json_object_new_array();
	for (i = 0; i < r->n; i++) {
		e = json_object_new_object();
		json_object_object_add(
		    e, "name", json_object_new_string(r->v[i].name));
		json_object_object_add(
		    e, "ip", json_object_new_string(r->v[i].ip));
		json_object_object_add(
		    e, "mac", json_object_new_string(r->v[i].mac));
		json_object_array_add(a, e);
	}
	json_object_object_add(o, "reservations", a);
	a = json_object_new_array();
	for (i = 0; i < r->nfree; i++) {
		res_ntoa(r->free_order[i], ip);
		json_object_array_add(a, json_object_new_string(ip));
	}
	json_object_object_add(o, "free_order", a);
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY);
	ret = write_file_atomic(r->state_file, text, strlen(text), 0640);
	if (ret == -1)
		log_warn("%s: %s", __func__, r->state_file);
	json_object_put(o);
	return ret;
}

static const char *
res_member(json_object *e, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(e, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Reads the state file; a missing one is an empty state. */
static int
res_load(struct reserve *r, char **errp)
{
	struct json_tokener *tok;
	json_object *o = NULL, *a, *e;
	struct reservation *rv;
	const char *name, *ip, *mac;
	char *text;
	uint32_t addr;
	size_t i, n;
	int ret = -1;

	if ((text = read_file(r->state_file, RESERVE_STATE_MAX, NULL)) == NULL)
		return errno == ENOENT
		    ? 0
		    : err_set(errp, "%s: %s", r->state_file, strerror(errno));
	tok = json_tokener_new();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, text, (int)strlen(text));
	json_tokener_free(tok);
	if (o == NULL || !json_object_object_get_ex(o, "reservations", &a) ||
	    !json_object_is_type(a, json_type_array)) {
		err_set(
		    errp, "%s: not a reservation state file", r->state_file);
		goto done;
	}
	n = json_object_array_length(a);
	r->v = xcalloc(n + 1, sizeof(*r->v));
	for (i = 0; i < n; i++) {
		e = json_object_array_get_idx(a, i);
		name = res_member(e, "name");
		ip = res_member(e, "ip");
		mac = res_member(e, "mac");
		if (name == NULL || ip == NULL || mac == NULL ||
		    !vm_name_valid_new(name) || res_ip(ip, &addr) == -1 ||
		    !vm_mac_valid(mac) || strlen(mac) != 17) {
			err_set(errp, "%s: reservation %zu is malformed",
			    r->state_file, i);
			goto done;
		}
		/* Kept even outside a changed block: the VM still has it. */
		rv = &r->v[r->n++];
		strcpy(rv->name, name);
		res_ntoa(addr, rv->ip);
		strcpy(rv->mac, mac);
	}
	qsort(r->v, r->n, sizeof(*r->v), res_cmp);
	for (i = 1; i < r->n; i++) {
		if (strcmp(r->v[i - 1].name, r->v[i].name) == 0) {
			err_set(errp, "%s: %s is reserved twice", r->state_file,
			    r->v[i].name);
			goto done;
		}
	}
	if (json_object_object_get_ex(o, "free_order", &a) &&
	    json_object_is_type(a, json_type_array)) {
		n = json_object_array_length(a);
		for (i = 0; i < n; i++) {
			e = json_object_array_get_idx(a, i);
			if (!json_object_is_type(e, json_type_string) ||
			    res_ip(json_object_get_string(e), &addr) == -1)
				continue;
			/* Only free addresses of the (maybe new) block. */
			if (addr < r->first || addr > r->last ||
			    res_in_use(r, addr, NULL) || res_listed(r, addr))
				continue;
			r->free_order[r->nfree++] = addr;
		}
	}
	ret = 0;
done:
	json_object_put(o);
	free(text);
	return ret;
}

void
reserve_close(struct reserve *r)
{
	if (r == NULL)
		return;
	pthread_mutex_destroy(&r->lock);
	free(r->state_file);
	free(r->dhcp_dir);
	free(r->hosts_dir);
	free(r->domain);
	free(r->v);
	free(r->free_order);
	free(r);
}

struct reserve *
reserve_open(const struct reserve_params *p, char **errp)
{
	struct reserve *r;
	uint32_t a = 0;
	size_t i;

	if (reserve_check_block(p->block, p->subnet, p->dhcp_pool, errp) == -1)
		return NULL;
	if (p->state_file == NULL || p->dhcp_dir == NULL) {
		err_set(errp, "reserve: state file and dhcp dir are required");
		return NULL;
	}
	r = xcalloc(1, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	res_range(p->block, &r->first, &r->last);
	r->state_file = xstrdup(p->state_file);
	r->dhcp_dir = xstrdup(p->dhcp_dir);
	r->hosts_dir = p->hosts_dir != NULL ? xstrdup(p->hosts_dir) : NULL;
	r->domain = p->domain != NULL ? xstrdup(p->domain) : NULL;
	r->free_order = xcalloc(r->last - r->first + 1, sizeof(uint32_t));
	if (res_load(r, errp) == -1) {
		reserve_close(r);
		return NULL;
	}
	/*
	 * Never-used addresses (not in the saved order) count as freed
	 * longest ago: they go first, lowest first.
	 */
	{
		uint32_t *order =
		    xcalloc(r->last - r->first + 1, sizeof(*order));
		size_t n = 0;

		for (a = r->first; a <= r->last; a++)
			if (!res_in_use(r, a, NULL) && !res_listed(r, a))
				order[n++] = a;
		for (i = 0; i < r->nfree; i++)
			order[n++] = r->free_order[i];
		free(r->free_order);
		r->free_order = order;
		r->nfree = n;
	}
	return r;
}

static void
res_random_mac(char out[18])
{
	unsigned char b[3];

	if (getrandom(b, sizeof(b), 0) != sizeof(b))
		fatal("%s: getrandom", __func__);
	snprintf(out, 18, "52:54:00:%02x:%02x:%02x", b[0], b[1], b[2]);
}

int
reserve_alloc(struct reserve *r, const char *name, const char *mac,
    struct reservation *out, struct api_error *err)
{
	struct reservation rv, *nv;
	char ip[16];
	size_t i, tries;
	int ret = -1;

	if (name == NULL || !vm_name_valid_new(name)) {
		api_error_set(err, 400, "invalid_name",
		    "VM name must match ^[a-z0-9][a-z0-9-]{0,62}$");
		return -1;
	}
	if (mac != NULL && (!vm_mac_valid(mac) || strlen(mac) != 17)) {
		api_error_set(
		    err, 400, "invalid_mac", "MAC must be 52:54:00:xx:xx:xx");
		return -1;
	}
	pthread_mutex_lock(&r->lock);
	if (res_find(r, name) != NULL) {
		api_error_set(err, 409, "exists",
		    "%s already has an address reservation", name);
		goto done;
	}
	if (r->nfree == 0) {
		res_ntoa(r->first, ip);
		api_error_set(err, 409, "no_address",
		    "no free address left in the VM block (%u addresses from "
		    "%s); delete a VM or widen reserve_block",
		    (unsigned)(r->last - r->first + 1), ip);
		goto done;
	}
	memset(&rv, 0, sizeof(rv));
	strcpy(rv.name, name);
	res_ntoa(r->free_order[0], rv.ip);
	if (mac != NULL) {
		for (i = 0; i < 17; i++)
			rv.mac[i] = tolower((unsigned char)mac[i]);
		if (res_in_use(r, 0, rv.mac)) {
			api_error_set(err, 409, "mac_in_use",
			    "MAC %s is reserved by another VM", rv.mac);
			goto done;
		}
	} else {
		tries = 0;
		do
			res_random_mac(rv.mac);
		while (res_in_use(r, 0, rv.mac) && ++tries < 64);
	}
	if (res_files_write(r, &rv) == -1) {
		api_error_set(err, 500, "reservation_failed",
		    "cannot write the DHCP reservation files");
		goto done;
	}
	nv = xreallocarray(r->v, r->n + 1, sizeof(*r->v));
	r->v = nv;
	r->v[r->n++] = rv;
	qsort(r->v, r->n, sizeof(*r->v), res_cmp);
	memmove(r->free_order, r->free_order + 1,
	    --r->nfree * sizeof(*r->free_order));
	if (res_save(r) == -1) {
		/* Roll back: the files must not outlive the state. */
		res_unlink(r->dhcp_dir, name);
		res_unlink(r->hosts_dir, name);
		memmove(r->free_order + 1, r->free_order,
		    r->nfree++ * sizeof(*r->free_order));
		res_ip(rv.ip, &r->free_order[0]);
		nv = res_find(r, name);
		memmove(nv, nv + 1, (r->v + --r->n - nv) * sizeof(*nv));
		api_error_set(err, 500, "reservation_failed",
		    "cannot save the reservation state");
		goto done;
	}
	if (out != NULL)
		*out = rv;
	log_info("reserved %s %s for %s", rv.ip, rv.mac, name);
	ret = 0;
done:
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int
reserve_release(struct reserve *r, const char *name)
{
	struct reservation *rv;
	uint32_t a = 0;
	int ret = -1;

	pthread_mutex_lock(&r->lock);
	if (name == NULL || (rv = res_find(r, name)) == NULL)
		goto done;
	res_unlink(r->dhcp_dir, name);
	res_unlink(r->hosts_dir, name);
	res_ip(rv->ip, &a);
	/* Back to the end of the queue, if still in the block. */
	if (a >= r->first && a <= r->last)
		r->free_order[r->nfree++] = a;
	log_info("released %s %s of %s", rv->ip, rv->mac, name);
	memmove(rv, rv + 1, (r->v + --r->n - rv) * sizeof(*rv));
	ret = res_save(r);
done:
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int
reserve_lookup(struct reserve *r, const char *name, struct reservation *out)
{
	struct reservation *rv;
	int ret = -1;

	pthread_mutex_lock(&r->lock);
	if (name != NULL && (rv = res_find(r, name)) != NULL) {
		if (out != NULL)
			*out = *rv;
		ret = 0;
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

size_t
reserve_list(struct reserve *r, struct reservation **vp)
{
	size_t n;

	pthread_mutex_lock(&r->lock);
	n = r->n;
	*vp = xcalloc(n + 1, sizeof(**vp));
	memcpy(*vp, r->v, n * sizeof(**vp));
	pthread_mutex_unlock(&r->lock);
	return n;
}
