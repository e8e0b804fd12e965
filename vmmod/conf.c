/*
 * The daemon's configuration: built-in defaults, /etc/vmmod/vmmod.conf and
 * command-line overrides.  The file is `key = value` lines; `#` starts a
 * comment (at the start of a line, or after blanks following an unquoted
 * value); values may be quoted with "..." (\" and \\ escapes) or '...'.
 * Every key is described once, in the table below: parsing, command-line
 * overrides (conf_set) and the dump (conf_dump, whose output is itself a
 * valid configuration file) all go through it.  A file is applied all or
 * nothing: it is parsed into a copy that replaces the caller's struct only
 * when every line was good, so a bad SIGHUP reload keeps the old settings.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmmod.h"

#ifndef DATADIR
#define DATADIR "/usr/share/guardian-vms"
#endif

enum conf_type {
	CT_STR, /* non-empty string */
	CT_PATH, /* absolute path */
	CT_OPTSTR, /* string; "" means unset (NULL) */
	CT_OPTPATH, /* absolute path; "" means unset (NULL) */
	CT_LISTEN, /* HOST:PORT; "" or "off" means unset */
	CT_MODE, /* octal file mode */
	CT_UINT, /* unsigned in [min, max] */
	CT_ACCEL, /* auto | kvm | tcg */
	CT_BOOL /* yes/no, true/false, on/off, 1/0 */
};

struct conf_key {
	const char *name;
	enum conf_type type;
	size_t off;
	unsigned long min, max;
};

#define K(n, t, f, lo, hi)                                                     \
	{                                                                      \
		n, t, offsetof(struct vmmod_conf, f), lo, hi                   \
	}
static const struct conf_key conf_keys[] = {
    K("uri", CT_STR, uri, 0, 0),
    K("listen", CT_LISTEN, listen, 0, 0),
    K("socket", CT_PATH, socket_path, 0, 0),
    K("socket_group", CT_OPTSTR, socket_group, 0, 0),
    K("socket_mode", CT_MODE, socket_mode, 0, 0777),
    K("token_file", CT_PATH, token_file, 0, 0),
    K("data_dir", CT_PATH, data_dir, 0, 0),
    K("templates_dir", CT_PATH, templates_dir, 0, 0),
    K("web_root", CT_PATH, web_root, 0, 0),
    K("lease_file", CT_PATH, lease_file, 0, 0),
    K("reservations_dir", CT_PATH, reservations_dir, 0, 0),
    K("hosts_dir", CT_OPTPATH, hosts_dir, 0, 0),
    K("domain", CT_OPTSTR, domain, 0, 0),
    K("reserve_block", CT_STR, reserve_block, 0, 0),
    K("reserve_subnet", CT_STR, reserve_subnet, 0, 0),
    K("dhcp_pool", CT_OPTSTR, dhcp_pool, 0, 0),
    K("appliance_dir", CT_OPTPATH, appliance_dir, 0, 0),
    K("audit_log", CT_OPTPATH, audit_log, 0, 0),
    K("allowed_origins", CT_OPTSTR, allowed_origins, 0, 0),
    K("console_url_base", CT_OPTSTR, console_url_base, 0, 0),
    K("console_listen", CT_LISTEN, console_listen, 0, 0),
    K("console_tls_cert", CT_OPTPATH, console_tls_cert, 0, 0),
    K("console_tls_key", CT_OPTPATH, console_tls_key, 0, 0),
    K("console_queue_kb", CT_UINT, console_queue_kb, 64, 64 * 1024),
    K("storage_pool", CT_STR, storage_pool, 0, 0),
    K("pool_dir", CT_OPTPATH, pool_dir, 0, 0),
    K("bridge", CT_STR, bridge, 0, 0),
    K("accel", CT_ACCEL, accel, 0, 0),
    K("max_conns", CT_UINT, max_conns, 1, 10000),
    K("max_conns_per_ip", CT_UINT, max_conns_per_ip, 1, 10000),
    K("conn_timeout_s", CT_UINT, conn_timeout_s, 1, 3600),
    K("ram_budget_mb", CT_UINT, ram_budget_mb, 0, 16U * 1024 * 1024),
    K("debug", CT_BOOL, debug, 0, 1),
};
#undef K

static const char *const accel_names[] = {
    [ACCEL_AUTO] = "auto", [ACCEL_KVM] = "kvm", [ACCEL_TCG] = "tcg"};

#define FIELD(c, k, type) ((type *)(void *)((char *)(c) + (k)->off))

/*
 * A default from systemd's LoadCredential=: $CREDENTIALS_DIRECTORY/name
 * when the service manager set that (to an absolute path), else unset.
 */
static void
conf_credential(char **p, const char *name)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");

	*p = NULL;
	if (dir != NULL && dir[0] == '/')
		xasprintf(p, "%s/%s", dir, name);
}

void
conf_init(struct vmmod_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->uri = xstrdup("qemu:///system");
	c->listen = NULL;
	c->socket_path = xstrdup("/run/vmmod/vmmod.sock");
	c->socket_group = xstrdup("vmmod");
	c->socket_mode = 0660;
	c->token_file = xstrdup("/var/lib/vmmod/token");
	c->data_dir = xstrdup("/var/lib/vmmod");
	c->templates_dir = xstrdup(DATADIR "/templates");
	c->web_root = xstrdup(DATADIR "/web-assets");
	c->lease_file = xstrdup("/var/lib/misc/dnsmasq.leases");
	c->reservations_dir = xstrdup("/etc/dnsmasq.d/guardian-vms-hosts");
	c->hosts_dir = xstrdup("/etc/dnsmasq.d/guardian-vms-names");
	c->domain = xstrdup("guardian.local");
	c->reserve_block = xstrdup("192.168.4.24-192.168.4.30");
	c->reserve_subnet = xstrdup("192.168.4.1/27");
	c->dhcp_pool = xstrdup("192.168.4.2-192.168.4.23");
	c->appliance_dir = xstrdup(DATADIR "/appliances");
	c->audit_log = NULL;
	c->allowed_origins = NULL;
	c->console_url_base = NULL;
	c->console_listen = NULL;
	conf_credential(&c->console_tls_cert, "console.crt");
	conf_credential(&c->console_tls_key, "console.key");
	c->storage_pool = xstrdup("guardian-vms");
	c->pool_dir = NULL;
	c->bridge = xstrdup("br0");
	c->accel = ACCEL_AUTO;
	c->max_conns = 64;
	c->max_conns_per_ip = 16;
	c->console_queue_kb = 8 * 1024;
	c->conn_timeout_s = 30;
	c->ram_budget_mb = 0;
	c->debug = 0;
}

static bool
conf_is_string(enum conf_type t)
{
	return t == CT_STR || t == CT_PATH || t == CT_OPTSTR ||
	    t == CT_OPTPATH || t == CT_LISTEN;
}

void
conf_clear(struct vmmod_conf *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < nitems(conf_keys); i++) {
		if (conf_is_string(conf_keys[i].type)) {
			free(*FIELD(c, &conf_keys[i], char *));
			*FIELD(c, &conf_keys[i], char *) = NULL;
		}
	}
}

/* Deep copy, so a parse can fail without touching the original. */
static void
conf_copy(struct vmmod_conf *dst, const struct vmmod_conf *src)
{
	char **p;
	size_t i;

	*dst = *src;
	for (i = 0; i < nitems(conf_keys); i++) {
		if (!conf_is_string(conf_keys[i].type))
			continue;
		p = FIELD(dst, &conf_keys[i], char *);
		if (*p != NULL)
			*p = xstrdup(*p);
	}
}

/*
 * What a SIGHUP reload applies (vmmod.c); every other key is read by its
 * module at start and changes with a restart only.
 */
static const char *const conf_reload_keys[] = {"token_file", "templates_dir",
    "appliance_dir", "lease_file", "reservations_dir", "audit_log", "debug",
    "allowed_origins"};

static bool
conf_reloads(const struct conf_key *k)
{
	size_t i;

	for (i = 0; i < nitems(conf_reload_keys); i++)
		if (strcmp(conf_reload_keys[i], k->name) == 0)
			return true;
	return false;
}

_Static_assert(
    sizeof(enum accel_mode) == sizeof(int) && sizeof(unsigned) == sizeof(int),
    "conf_keep_running swaps the non-string fields as ints");

char *
conf_keep_running(struct vmmod_conf *next, struct vmmod_conf *running)
{
	const struct conf_key *k;
	char **ps, **qs, *t, *list = NULL;
	int *pi, *qi, ti;
	bool same;
	size_t i;

	for (i = 0; i < nitems(conf_keys); i++) {
		k = &conf_keys[i];
		if (conf_reloads(k))
			continue;
		if (conf_is_string(k->type)) {
			ps = FIELD(next, k, char *);
			qs = FIELD(running, k, char *);
			same = (*ps == NULL && *qs == NULL) ||
			    (*ps != NULL && *qs != NULL &&
				strcmp(*ps, *qs) == 0);
			t = *ps;
			*ps = *qs;
			*qs = t;
		} else {
			pi = FIELD(next, k, int);
			qi = FIELD(running, k, int);
			same = *pi == *qi;
			ti = *pi;
			*pi = *qi;
			*qi = ti;
		}
		if (same)
			continue;
		if (list == NULL)
			list = xstrdup(k->name);
		else {
			xasprintf(&t, "%s, %s", list, k->name);
			free(list);
			list = t;
		}
	}
	return list;
}

static const struct conf_key *
conf_key_find(const char *name)
{
	size_t i;

	for (i = 0; i < nitems(conf_keys); i++)
		if (strcmp(conf_keys[i].name, name) == 0)
			return &conf_keys[i];
	return NULL;
}

/* Strict unsigned parse in `base`; no sign, no blanks, no trailing junk. */
static int
conf_number(const char *s, int base, unsigned long *np)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*np = strtoul(s, &end, base);
	if (errno != 0 || *end != '\0')
		return -1;
	return 0;
}

/* HOST:PORT or [V6]:PORT with a port in 1..65535. */
static int
conf_listen_ok(const char *s)
{
	const char *colon = strrchr(s, ':');
	unsigned long port;

	if (colon == NULL || colon == s)
		return -1;
	if (s[0] == '[' && colon[-1] != ']')
		return -1;
	if (s[0] != '[' && memchr(s, ':', colon - s) != NULL)
		return -1;
	if (conf_number(colon + 1, 10, &port) == -1 || port < 1 || port > 65535)
		return -1;
	return 0;
}

/*
 * Stores one value.  Returns 0, or -1 with a message (without the
 * "FILE:LINE: " prefix) in *msgp.
 */
static int
conf_apply(
    struct vmmod_conf *c, const struct conf_key *k, const char *v, char **msgp)
{
	unsigned long n;
	size_t i;
	char **sp;

	switch (k->type) {
	case CT_STR:
	case CT_PATH:
		if (*v == '\0') {
			xasprintf(msgp, "%s: value must not be empty", k->name);
			return -1;
		}
		/* FALLTHROUGH */
	case CT_OPTSTR:
	case CT_OPTPATH:
	case CT_LISTEN:
		if ((k->type == CT_PATH || k->type == CT_OPTPATH) &&
		    *v != '\0' && *v != '/') {
			xasprintf(msgp, "%s: '%s' is not an absolute path",
			    k->name, v);
			return -1;
		}
		if (k->type == CT_LISTEN && strcmp(v, "off") == 0)
			v = "";
		if (k->type == CT_LISTEN && *v != '\0' &&
		    conf_listen_ok(v) == -1) {
			xasprintf(msgp,
			    "%s: '%s' is not HOST:PORT (port 1-65535)", k->name,
			    v);
			return -1;
		}
		sp = FIELD(c, k, char *);
		free(*sp);
		*sp = *v == '\0' ? NULL : xstrdup(v);
		return 0;
	case CT_MODE:
	case CT_UINT:
		if (conf_number(v, k->type == CT_MODE ? 8 : 10, &n) == -1) {
			xasprintf(msgp, "%s: '%s' is not %s", k->name, v,
			    k->type == CT_MODE ? "an octal mode" : "a number");
			return -1;
		}
		if (n < k->min || n > k->max) {
			if (k->type == CT_MODE)
				xasprintf(msgp,
				    "%s: %s is out of range %lo-%lo", k->name,
				    v, k->min, k->max);
			else
				xasprintf(msgp,
				    "%s: %s is out of range %lu-%lu", k->name,
				    v, k->min, k->max);
			return -1;
		}
		if (k->type == CT_MODE)
			*FIELD(c, k, int) = (int)n;
		else
			*FIELD(c, k, unsigned) = (unsigned)n;
		return 0;
	case CT_ACCEL:
		for (i = 0; i < nitems(accel_names); i++) {
			if (strcmp(v, accel_names[i]) == 0) {
				*FIELD(c, k, enum accel_mode) = i;
				return 0;
			}
		}
		xasprintf(msgp, "%s: '%s' is not auto, kvm or tcg", k->name, v);
		return -1;
	case CT_BOOL:
		if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 ||
		    strcmp(v, "on") == 0 || strcmp(v, "1") == 0) {
			*FIELD(c, k, int) = 1;
			return 0;
		}
		if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0 ||
		    strcmp(v, "off") == 0 || strcmp(v, "0") == 0) {
			*FIELD(c, k, int) = 0;
			return 0;
		}
		xasprintf(msgp, "%s: '%s' is not yes or no", k->name, v);
		return -1;
	}
	xasprintf(msgp, "%s: internal error (type %d)", k->name, k->type);
	return -1;
}

static bool
conf_blank(int ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r';
}

/*
 * Splits one line (NUL-terminated, modified in place) into key and value.
 * Returns 1 for a key/value line, 0 for a blank or comment line, -1 with
 * *msgp on a syntax error.
 */
static int
conf_split(char *line, char **keyp, char **valp, char **msgp)
{
	char *p = line, *key, *end, *out, q;

	while (conf_blank(*p))
		p++;
	if (*p == '\0' || *p == '#')
		return 0;
	key = p;
	while (*p != '\0' && *p != '=' && !conf_blank(*p))
		p++;
	end = p;
	while (conf_blank(*p))
		p++;
	if (*p != '=' || end == key) {
		xasprintf(msgp, "expected 'key = value'");
		return -1;
	}
	*end = '\0';
	p++;
	while (conf_blank(*p))
		p++;
	if (*p == '"' || *p == '\'') {
		q = *p++;
		*valp = out = p;
		for (;;) {
			if (*p == '\0') {
				xasprintf(msgp, "%s: unterminated quote", key);
				return -1;
			}
			if (*p == q)
				break;
			if (q == '"' && *p == '\\' &&
			    (p[1] == '"' || p[1] == '\\'))
				p++;
			*out++ = *p++;
		}
		p++;
		while (conf_blank(*p))
			p++;
		if (*p != '\0' && *p != '#') {
			xasprintf(
			    msgp, "%s: text after the closing quote", key);
			return -1;
		}
		*out = '\0';
	} else {
		*valp = p;
		/* an unquoted value ends at a comment after a blank */
		for (end = p; *p != '\0'; p++) {
			if (*p == '#' && p > *valp && conf_blank(p[-1]))
				break;
			if (!conf_blank(*p))
				end = p + 1;
		}
		*end = '\0';
	}
	*keyp = key;
	return 1;
}

/* The line that set key, 0 when it kept its default. */
static unsigned
conf_seen(const unsigned *seen, const char *key)
{
	return seen[conf_key_find(key) - conf_keys];
}

/*
 * The console listener's keys together: it needs a certificate and a key
 * (given, or systemd's credentials), and console URLs need a host that a
 * browser can reach: a wildcard address wants console_url_base.
 */
static int
conf_check_console(const struct vmmod_conf *c, const unsigned *seen,
    unsigned *linep, char **msgp)
{
	const char *l = c->console_listen;
	size_t hostlen;

	if (c->console_url_base != NULL &&
	    !str_has_prefix(c->console_url_base, "http://") &&
	    !str_has_prefix(c->console_url_base, "https://")) {
		*linep = conf_seen(seen, "console_url_base");
		xasprintf(msgp,
		    "console_url_base: '%s' does not start with http:// or "
		    "https://",
		    c->console_url_base);
		return -1;
	}
	if (l == NULL)
		return 0;
	*linep = conf_seen(seen, "console_listen");
	if (c->console_tls_cert == NULL || c->console_tls_key == NULL) {
		xasprintf(msgp,
		    "console_listen needs console_tls_cert and "
		    "console_tls_key (or systemd credentials console.crt and "
		    "console.key in $CREDENTIALS_DIRECTORY)");
		return -1;
	}
	if (c->listen != NULL && strcmp(c->listen, l) == 0) {
		xasprintf(msgp, "console_listen: %s is also 'listen'", l);
		return -1;
	}
	hostlen = strrchr(l, ':') - l;
	if (c->console_url_base == NULL &&
	    ((hostlen == 7 && strncmp(l, "0.0.0.0", 7) == 0) ||
		(hostlen == 4 && strncmp(l, "[::]", 4) == 0))) {
		xasprintf(msgp,
		    "console_listen: %s is a wildcard address; set "
		    "console_url_base to the URL browsers reach it at",
		    l);
		return -1;
	}
	return 0;
}

int
conf_parse(
    struct vmmod_conf *c, const char *text, const char *name, char **errp)
{
	struct vmmod_conf tmp;
	const struct conf_key *k;
	unsigned seen[nitems(conf_keys)] = {0};
	unsigned lineno = 0;
	char *buf, *line, *next, *key, *val, *msg = NULL;
	int rc;

	if (errp != NULL)
		*errp = NULL;
	conf_copy(&tmp, c);
	buf = xstrdup(text);
	for (line = buf; line != NULL; line = next) {
		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if ((rc = conf_split(line, &key, &val, &msg)) == -1)
			goto fail;
		if (rc == 0)
			continue;
		if ((k = conf_key_find(key)) == NULL) {
			xasprintf(&msg, "unknown key '%s'", key);
			goto fail;
		}
		if (seen[k - conf_keys] != 0) {
			xasprintf(&msg,
			    "duplicate key '%s' (first set on line %u)", key,
			    seen[k - conf_keys]);
			goto fail;
		}
		seen[k - conf_keys] = lineno;
		if (conf_apply(&tmp, k, val, &msg) == -1)
			goto fail;
	}
	if (tmp.max_conns_per_ip > tmp.max_conns) {
		k = conf_key_find("max_conns_per_ip");
		lineno = seen[k - conf_keys];
		if (lineno == 0)
			lineno = seen[conf_key_find("max_conns") - conf_keys];
		xasprintf(&msg, "max_conns_per_ip (%u) exceeds max_conns (%u)",
		    tmp.max_conns_per_ip, tmp.max_conns);
		goto fail;
	}
	if (conf_check_console(&tmp, seen, &lineno, &msg) == -1)
		goto fail;
	free(buf);
	conf_clear(c);
	*c = tmp;
	return 0;
fail:
	if (errp != NULL)
		xasprintf(errp, "%s:%u: %s", name, lineno, msg);
	else
		log_warnx("%s: %s:%u: %s", __func__, name, lineno, msg);
	free(msg);
	free(buf);
	conf_clear(&tmp);
	return -1;
}

int
conf_load(struct vmmod_conf *c, const char *path, char **errp)
{
	char *text;

	if (errp != NULL)
		*errp = NULL;
	if ((text = read_file(path, 1 << 20, NULL)) == NULL) {
		if (errp != NULL)
			xasprintf(errp, "%s: %s", path, strerror(errno));
		else
			log_warn("%s: %s", __func__, path);
		return -1;
	}
	if (conf_parse(c, text, path, errp) == -1) {
		free(text);
		return -1;
	}
	free(text);
	return 0;
}

int
conf_set(struct vmmod_conf *c, const char *key, const char *value, char **errp)
{
	const struct conf_key *k;
	char *msg = NULL;

	if (errp != NULL)
		*errp = NULL;
	if ((k = conf_key_find(key)) == NULL)
		xasprintf(&msg, "unknown key '%s'", key);
	else if (conf_apply(c, k, value, &msg) == 0)
		return 0;
	if (errp != NULL)
		*errp = msg;
	else {
		log_warnx("%s: %s", __func__, msg);
		free(msg);
	}
	return -1;
}

/* Writes `"s"` with " and \\ escaped. */
static void
conf_dump_quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

/* One "key = value" line per key in table order; parses back to *c. */
char *
conf_dump(const struct vmmod_conf *c)
{
	const struct conf_key *k;
	const char *s;
	char *buf = NULL;
	size_t i, len = 0;
	FILE *f;

	if ((f = open_memstream(&buf, &len)) == NULL)
		fatal("%s: open_memstream", __func__);
	for (i = 0; i < nitems(conf_keys); i++) {
		k = &conf_keys[i];
		fprintf(f, "%s = ", k->name);
		switch (k->type) {
		case CT_MODE:
			fprintf(f, "%04o", *FIELD(c, k, int));
			break;
		case CT_UINT:
			fprintf(f, "%u", *FIELD(c, k, unsigned));
			break;
		case CT_ACCEL:
			fputs(accel_names[*FIELD(c, k, enum accel_mode)], f);
			break;
		case CT_BOOL:
			fputs(*FIELD(c, k, int) ? "yes" : "no", f);
			break;
		default:
			s = *FIELD(c, k, char *);
			conf_dump_quoted(f, s != NULL ? s : "");
			break;
		}
		fputc('\n', f);
	}
	if (ferror(f) || fclose(f) != 0)
		fatal("%s: out of memory", __func__);
	return buf;
}
