/*
 * The installer's answers: what an unattended run is told instead of asking.
 * They come from a key=value file shaped like Guardian's own
 * /etc/hookprobe/install.conf (which may be passed as is: its other keys are
 * ignored) and from the environment, which overrides the file.  Every value
 * is validated here, strictly, so the plan never sees a half-valid answer;
 * errors name the file and line.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "setup.h"

enum ans_type {
	AT_TRI,
	AT_PATH,
	AT_IFNAME,
	AT_CIDR,
	AT_RANGE,
	AT_PORT,
	AT_PORTS
};

static const struct ans_key {
	const char *name;
	enum ans_type type;
} ans_keys[] = {
    {"HOOKPROBE_VM_SUPPORT", AT_TRI},
    {"GVM_STORAGE_DIR", AT_PATH},
    {"GVM_BRIDGE", AT_IFNAME},
    {"GVM_BRIDGE_ADDR", AT_CIDR},
    {"GVM_DHCP_RANGE", AT_RANGE},
    {"GVM_SHRINK_POOL", AT_TRI},
    {"GVM_CONSOLE_PORT", AT_PORT},
    {"GVM_BLOCK_PORTS", AT_PORTS},
    {"GVM_DEPLOY_HA", AT_TRI},
    {"GVM_TRUST_UNPINNED", AT_TRI},
    {"GVM_VM_BLOCK", AT_RANGE},
};

void
answers_init(struct answers *a)
{
	memset(a, 0, sizeof(*a));
}

void
answers_clear(struct answers *a)
{
	free(a->storage_dir);
	free(a->bridge);
	free(a->bridge_addr);
	free(a->dhcp_range);
	free(a->vm_block);
	answers_init(a);
}

static int
ans_tri(const char *v, enum tri *t)
{
	static const char *yes[] = {"yes", "y", "true", "1", "on"};
	static const char *no[] = {"no", "n", "false", "0", "off"};
	size_t i;

	for (i = 0; i < nitems(yes); i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*t = TRI_YES;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*t = TRI_NO;
			return 0;
		}
	}
	return -1;
}

static int
ans_port(const char *v, uint16_t *port)
{
	char *end;
	unsigned long n;

	if (!isdigit((unsigned char)v[0]))
		return -1;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < 1 || n > 65535)
		return -1;
	*port = n;
	return 0;
}

/* Absolute, no "." or ".." component, no whitespace or control bytes. */
static int
ans_path_ok(const char *v)
{
	const char *p;

	if (v[0] != '/' || strlen(v) > 1024)
		return 0;
	for (p = v; *p != '\0'; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '"' ||
		    *p == '\'' || *p == '\\')
			return 0;
	for (p = v; p != NULL; p = strchr(p + 1, '/')) {
		if (strncmp(p, "/./", 3) == 0 || strcmp(p, "/.") == 0 ||
		    strncmp(p, "/../", 4) == 0 || strcmp(p, "/..") == 0 ||
		    strncmp(p, "//", 2) == 0)
			return 0;
	}
	return 1;
}

/* A Linux interface name: 1..15 bytes of [A-Za-z0-9_.-], not "." or "..". */
static int
ans_ifname_ok(const char *v)
{
	const char *p;

	if (v[0] == '\0' || strlen(v) > 15 || strcmp(v, ".") == 0 ||
	    strcmp(v, "..") == 0)
		return 0;
	for (p = v; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' &&
		    *p != '.')
			return 0;
	return 1;
}

static int
ans_set(struct answers *a, const struct ans_key *k, const char *v, char **errp)
{
	struct ip4net net;
	struct ip4range r;
	enum tri *tp = NULL;
	char *list, *tok, *save;
	uint16_t port;
	size_t i;

	switch (k->type) {
	case AT_TRI:
		if (strcmp(k->name, "HOOKPROBE_VM_SUPPORT") == 0)
			tp = &a->vm_support;
		else if (strcmp(k->name, "GVM_SHRINK_POOL") == 0)
			tp = &a->shrink_pool;
		else if (strcmp(k->name, "GVM_DEPLOY_HA") == 0)
			tp = &a->deploy_ha;
		else
			tp = &a->trust_unpinned;
		if (ans_tri(v, tp) == -1)
			return err_set(
			    errp, "%s: '%s' is not yes or no", k->name, v);
		return 0;
	case AT_PATH:
		if (!ans_path_ok(v))
			return err_set(errp,
			    "%s: '%s' is not a plain absolute path", k->name,
			    v);
		free(a->storage_dir);
		a->storage_dir = xstrdup(v);
		return 0;
	case AT_IFNAME:
		if (!ans_ifname_ok(v))
			return err_set(errp,
			    "%s: '%s' is not an interface name (1-15 of "
			    "A-Z a-z 0-9 _ . -)",
			    k->name, v);
		free(a->bridge);
		a->bridge = xstrdup(v);
		return 0;
	case AT_CIDR:
		if (plan_net_parse(v, &net) == -1)
			return err_set(errp,
			    "%s: '%s' is not a host address A.B.C.D/PREFIX "
			    "(prefix 8-30, not the network or broadcast "
			    "address)",
			    k->name, v);
		free(a->bridge_addr);
		a->bridge_addr = xstrdup(v);
		return 0;
	case AT_RANGE:
		if (plan_range_parse(v, &r) == -1)
			return err_set(errp,
			    "%s: '%s' is not FIRST-LAST (A.B.C.D-A.B.C.D, "
			    "first <= last)",
			    k->name, v);
		if (strcmp(k->name, "GVM_VM_BLOCK") == 0) {
			free(a->vm_block);
			a->vm_block = xstrdup(v);
		} else {
			free(a->dhcp_range);
			a->dhcp_range = xstrdup(v);
		}
		return 0;
	case AT_PORT:
		if (ans_port(v, &a->console_port) == -1)
			return err_set(errp, "%s: '%s' is not a port (1-65535)",
			    k->name, v);
		return 0;
	case AT_PORTS:
		a->nblock_ports = 0;
		a->block_ports_set = true;
		list = xstrdup(v);
		for (tok = strtok_r(list, ", ", &save); tok != NULL;
		     tok = strtok_r(NULL, ", ", &save)) {
			if (ans_port(tok, &port) == -1) {
				err_set(errp,
				    "%s: '%s' is not a port (1-65535)", k->name,
				    tok);
				free(list);
				return -1;
			}
			for (i = 0; i < a->nblock_ports; i++)
				if (a->block_ports[i] == port)
					break;
			if (i < a->nblock_ports)
				continue;
			if (a->nblock_ports == ANS_MAX_PORTS) {
				err_set(errp, "%s: more than %d ports", k->name,
				    ANS_MAX_PORTS);
				free(list);
				return -1;
			}
			a->block_ports[a->nblock_ports++] = port;
		}
		free(list);
		return 0;
	}
	return -1;
}

static const struct ans_key *
ans_find(const char *name)
{
	size_t i;

	for (i = 0; i < nitems(ans_keys); i++)
		if (strcmp(ans_keys[i].name, name) == 0)
			return &ans_keys[i];
	return NULL;
}

/*
 * Unquotes a shell-like value in place: "..." (with \" \\ \$ \`), '...', or
 * a bare word without spaces, quotes or $; a trailing " # comment" is
 * allowed after a value.  Returns NULL with *why on error.
 */
static char *
ans_unquote(char *v, const char **why)
{
	char *out = v, *p = v, q;

	if (*p == '"' || *p == '\'') {
		q = *p++;
		for (;;) {
			if (*p == '\0') {
				*why = "unterminated quote";
				return NULL;
			}
			if (*p == q)
				break;
			if (q == '"' && *p == '\\' && p[1] != '\0' &&
			    strchr("\"\\$`", p[1]) != NULL)
				p++;
			else if (q == '"' && (*p == '$' || *p == '`')) {
				*why = "'$' or '`' (no shell expansion here)";
				return NULL;
			}
			*out++ = *p++;
		}
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '\0' && *p != '#') {
			*why = "text after the closing quote";
			return NULL;
		}
		*out = '\0';
		return v;
	}
	while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '#') {
		if (strchr("\"'$`\\;&|<>(){}", *p) != NULL) {
			*why = "a shell character (quote the value)";
			return NULL;
		}
		p++;
	}
	out = p;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '\0' && *p != '#') {
		*why = "a space in an unquoted value";
		return NULL;
	}
	*out = '\0';
	return v;
}

int
answers_parse(
    struct answers *a, const char *text, const char *name, char **errp)
{
	const struct ans_key *k;
	char *copy, *line, *next, *key, *eq, *val, *err = NULL;
	const char *why = NULL;
	unsigned seen = 0, lineno = 0;
	size_t len;
	int rc = -1;

	copy = xstrdup(text);
	for (line = copy; line != NULL; line = next) {
		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		len = strlen(line);
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		while (*line == ' ' || *line == '\t')
			line++;
		if (*line == '\0' || *line == '#')
			continue;
		if (strncmp(line, "export ", 7) == 0)
			line += 7;
		if ((eq = strchr(line, '=')) == NULL) {
			err_set(errp, "%s:%u: not KEY=VALUE", name, lineno);
			goto done;
		}
		*eq = '\0';
		key = line;
		for (val = key; *val != '\0'; val++)
			if (!isalnum((unsigned char)*val) && *val != '_')
				break;
		if (*val != '\0' || key[0] == '\0') {
			err_set(errp,
			    "%s:%u: '%s' is not a key (no spaces around '=')",
			    name, lineno, key);
			goto done;
		}
		val = ans_unquote(eq + 1, &why);
		if (val == NULL) {
			err_set(errp, "%s:%u: %s: %s", name, lineno, key, why);
			goto done;
		}
		if ((k = ans_find(key)) == NULL) {
			if (str_has_prefix(key, "GVM_")) {
				err_set(errp, "%s:%u: unknown key '%s'", name,
				    lineno, key);
				goto done;
			}
			continue; /* install.conf's own keys */
		}
		if (seen & (1U << (k - ans_keys))) {
			err_set(
			    errp, "%s:%u: %s given twice", name, lineno, key);
			goto done;
		}
		seen |= 1U << (k - ans_keys);
		if (ans_set(a, k, val, &err) == -1) {
			err_set(errp, "%s:%u: %s", name, lineno, err);
			free(err);
			goto done;
		}
	}
	rc = 0;
done:
	free(copy);
	return rc;
}

int
answers_load(struct answers *a, const char *path, char **errp)
{
	char *text;
	int rc;

	if ((text = read_file(path, 1 << 20, NULL)) == NULL)
		return err_set(errp, "%s: %s", path, strerror(errno));
	rc = answers_parse(a, text, path, errp);
	free(text);
	return rc;
}

int
answers_from_env(
    struct answers *a, const char *(*get)(const char *), char **errp)
{
	const char *v;
	char *err = NULL;
	size_t i;

	for (i = 0; i < nitems(ans_keys); i++) {
		if ((v = get(ans_keys[i].name)) == NULL)
			continue;
		if (ans_set(a, &ans_keys[i], v, &err) == -1) {
			err_set(errp, "environment: %s", err);
			free(err);
			return -1;
		}
	}
	return 0;
}

static const char *
ans_tri_name(enum tri t)
{
	return t == TRI_YES ? "yes" : "no";
}

char *
answers_format(const struct answers *a)
{
	char *out = NULL, *tmp;
	size_t i;

#define ADD(...)                                                               \
	do {                                                                   \
		xasprintf(&tmp, "%s" __VA_ARGS__);                             \
		free(out);                                                     \
		out = tmp;                                                     \
	} while (0)
	out = xstrdup("");
	if (a->vm_support != TRI_UNSET)
		ADD("HOOKPROBE_VM_SUPPORT=%s\n", out,
		    ans_tri_name(a->vm_support));
	if (a->storage_dir != NULL)
		ADD("GVM_STORAGE_DIR=%s\n", out, a->storage_dir);
	if (a->bridge != NULL)
		ADD("GVM_BRIDGE=%s\n", out, a->bridge);
	if (a->bridge_addr != NULL)
		ADD("GVM_BRIDGE_ADDR=%s\n", out, a->bridge_addr);
	if (a->dhcp_range != NULL)
		ADD("GVM_DHCP_RANGE=%s\n", out, a->dhcp_range);
	if (a->shrink_pool != TRI_UNSET)
		ADD("GVM_SHRINK_POOL=%s\n", out, ans_tri_name(a->shrink_pool));
	if (a->console_port != 0)
		ADD("GVM_CONSOLE_PORT=%u\n", out, a->console_port);
	if (a->block_ports_set) {
		ADD("GVM_BLOCK_PORTS=", out);
		for (i = 0; i < a->nblock_ports; i++)
			ADD("%s%u", out, i > 0 ? "," : "", a->block_ports[i]);
		ADD("\n", out);
	}
	if (a->deploy_ha != TRI_UNSET)
		ADD("GVM_DEPLOY_HA=%s\n", out, ans_tri_name(a->deploy_ha));
	if (a->vm_block != NULL)
		ADD("GVM_VM_BLOCK=%s\n", out, a->vm_block);
	if (a->trust_unpinned != TRI_UNSET)
		ADD("GVM_TRUST_UNPINNED=%s\n", out,
		    ans_tri_name(a->trust_unpinned));
#undef ADD
	return out;
}
