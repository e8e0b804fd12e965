/*
 * The Guardian integration's edits of two files Guardian owns, as pure
 * functions of their current text (golden-tested like gen.c):
 *
 * - web/modules/__init__.py: inside `def register_blueprints(APP...):` a
 *   marked block registering our blueprint is added at the end of the
 *   body, and the lines importing and registering Guardian's own `vms`
 *   blueprint (`from .vms import NAME`, `APP.register_blueprint(NAME...)`)
 *   are turned into marked comments;
 * - templates/core/dashboard.html: the element with id="vm-section"
 *   (Guardian's hidden, hard-coded VM tiles) is replaced, whole lines from
 *   its start tag to its end tag, by a marked block with our tile include;
 *   a dashboard without that section gets the block as the last child of
 *   its `nav-tiles` grid.
 *
 * Only whole lines are touched, found by structure (the function's
 * indentation, the element's balanced tags), never by a pattern over the
 * user's text; when the anchor is not there the edit refuses (NULL) rather
 * than guess.  Applying an edit to its own result changes nothing, which is
 * what --repair relies on; --uninstall restores the files byte for byte
 * from the manifest.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "setup.h"

#define PY_BEGIN "# guardian-vms: begin"
#define PY_OFF "# guardian-vms: disabled: "
#define HTML_BEGIN "<!-- guardian-vms: begin"

struct lines {
	char **v; /* each line with its '\n' (the last may lack it) */
	size_t n;
};

static void
lines_split(struct lines *l, const char *text)
{
	const char *p = text, *nl;

	memset(l, 0, sizeof(*l));
	while (*p != '\0') {
		nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) + 1 : strlen(p);

		l->v = xreallocarray(l->v, l->n + 1, sizeof(char *));
		l->v[l->n++] = xstrndup(p, len);
		p += len;
	}
}

static void
lines_insert(struct lines *l, size_t at, char *take)
{
	l->v = xreallocarray(l->v, l->n + 1, sizeof(char *));
	memmove(&l->v[at + 1], &l->v[at], (l->n - at) * sizeof(char *));
	l->v[at] = take;
	l->n++;
}

static void
lines_delete(struct lines *l, size_t at)
{
	free(l->v[at]);
	memmove(&l->v[at], &l->v[at + 1], (l->n - at - 1) * sizeof(char *));
	l->n--;
}

static char *
lines_join(struct lines *l)
{
	size_t i, len = 0;
	char *s, *p;

	for (i = 0; i < l->n; i++)
		len += strlen(l->v[i]);
	p = s = xmalloc(len + 1);
	for (i = 0; i < l->n; i++) {
		size_t k = strlen(l->v[i]);

		memcpy(p, l->v[i], k);
		p += k;
	}
	*p = '\0';
	return s;
}

static void
lines_free(struct lines *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

static bool
blank(const char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	return *s == '\0';
}

static size_t
indent_of(const char *s)
{
	return strspn(s, " \t");
}

/* "NAME" at S followed by a non-identifier character; its length or 0. */
static size_t
ident_len(const char *s)
{
	size_t n = 0;

	if (!isalpha((unsigned char)s[0]) && s[0] != '_')
		return 0;
	while (isalnum((unsigned char)s[n]) || s[n] == '_')
		n++;
	return n;
}

/* ---- web/modules/__init__.py ---------------------------------------- */

#define MAX_NAMES 8

/* NAMES gets the names bound by "from .vms import A, B as C". */
static bool
vms_import(const char *s, char names[][64], size_t *n)
{
	const char *p = s + indent_of(s);
	size_t k;

	if (!str_has_prefix(p, "from .vms import "))
		return false;
	p += strlen("from .vms import ");
	while (*p != '\0' && *n < MAX_NAMES) {
		p += strspn(p, " \t");
		if ((k = ident_len(p)) == 0)
			break;
		const char *name = p;

		p += k;
		if (str_has_prefix(p, " as ")) {
			p += 4;
			p += strspn(p, " ");
			name = p;
			if ((k = ident_len(p)) == 0)
				break;
			p += k;
		}
		snprintf(names[(*n)++], 64, "%.*s", (int)k, name);
		p += strspn(p, " \t");
		if (*p != ',')
			break;
		p++;
	}
	return true;
}

/* APP.register_blueprint(NAME ... on one line with balanced brackets. */
static int
vms_register(const char *s, const char *app, char names[][64], size_t n)
{
	const char *p = s + indent_of(s);
	size_t i, k = strlen(app);
	int depth = 0;

	if (strncmp(p, app, k) != 0 ||
	    !str_has_prefix(p + k, ".register_blueprint("))
		return 0;
	p += k + strlen(".register_blueprint(");
	p += strspn(p, " ");
	for (i = 0; i < n; i++)
		if (str_has_prefix(p, names[i]) &&
		    ident_len(p) == strlen(names[i]))
			break;
	if (i == n)
		return 0;
	for (p = s; *p != '\0' && *p != '#'; p++)
		depth += *p == '(' ? 1 : *p == ')' ? -1 : 0;
	return depth == 0 ? 1 : -1;
}

char *
guardian_edit_modules(const char *cur)
{
	struct lines l;
	char app[64], names[MAX_NAMES][64], *t, *out = NULL;
	const char *p;
	size_t i, def, end, last, nnames = 0, k;
	char ind[64] = ""; /* the indentation of the body's first line */
	bool have_block = false;

	if (cur == NULL)
		return NULL;
	lines_split(&l, cur);
	for (def = 0; def < l.n; def++)
		if (str_has_prefix(l.v[def], "def register_blueprints("))
			break;
	if (def == l.n)
		goto done;
	p = l.v[def] + strlen("def register_blueprints(");
	p += strspn(p, " ");
	if ((k = ident_len(p)) == 0 || k >= sizeof(app))
		goto done;
	snprintf(app, sizeof(app), "%.*s", (int)k, p);
	/* the body: up to the next line starting in column 0 */
	last = def;
	for (end = def + 1; end < l.n; end++) {
		if (blank(l.v[end]))
			continue;
		if (indent_of(l.v[end]) == 0)
			break;
		if (ind[0] == '\0')
			snprintf(ind, sizeof(ind), "%.*s",
			    (int)indent_of(l.v[end]), l.v[end]);
		last = end;
	}
	if (last == def)
		goto done;
	for (i = def + 1; i < end; i++) {
		p = l.v[i] + indent_of(l.v[i]);
		if (str_has_prefix(p, PY_BEGIN))
			have_block = true;
		vms_import(l.v[i], names, &nnames);
	}
	for (i = def + 1; i < end; i++) {
		int r = 0;
		size_t w = indent_of(l.v[i]);

		if (str_has_prefix(l.v[i] + w, "from .vms import "))
			r = 1;
		else if ((r = vms_register(l.v[i], app, names, nnames)) == -1)
			goto done; /* a call over several lines: refuse */
		if (r == 1) {
			xasprintf(
			    &t, "%.*s" PY_OFF "%s", (int)w, l.v[i], l.v[i] + w);
			free(l.v[i]);
			l.v[i] = t;
		}
	}
	if (!have_block) {
		char *block[4];

		xasprintf(&block[0],
		    PY_BEGIN " (guardian-vm-setup: the Guardian VMs plug-in; "
			     "--uninstall restores this file)\n");
		block[1] = xstrdup(
		    "from .guardian_vms import bp as guardian_vms_bp\n");
		xasprintf(
		    &block[2], "%s.register_blueprint(guardian_vms_bp)\n", app);
		block[3] = xstrdup("# guardian-vms: end\n");
		if (strchr(l.v[last], '\n') == NULL) {
			xasprintf(&t, "%s\n", l.v[last]);
			free(l.v[last]);
			l.v[last] = t;
		}
		for (i = 0; i < 4; i++) {
			char *line;

			xasprintf(&line, "%s%s", ind, block[i]);
			free(block[i]);
			lines_insert(&l, last + 1 + i, line);
		}
	}
	out = lines_join(&l);
done:
	lines_free(&l);
	return out;
}

/* ---- templates/core/dashboard.html ---------------------------------- */

/*
 * The line starting with the start tag that carries ATTR (e.g.
 * `id="vm-section"`): exactly one such line whose first non-blank text is
 * `<TAG ...ATTR...>`.  TAG gets the tag name.  -1: none or ambiguous.
 */
static long
find_start(const struct lines *l, const char *attr, char *tag, size_t taglen)
{
	long at = -1;
	size_t i, k;

	for (i = 0; i < l->n; i++) {
		const char *s = l->v[i], *hit = strstr(s, attr), *gt;

		if (hit == NULL)
			continue;
		if (at != -1 || strstr(hit + 1, attr) != NULL)
			return -1; /* two of them */
		s += indent_of(s);
		gt = strchr(s, '>');
		if (s[0] != '<' || (k = ident_len(s + 1)) == 0 || k >= taglen ||
		    gt == NULL || gt < hit || hit[-1] != ' ')
			return -1;
		snprintf(tag, taglen, "%.*s", (int)k, s + 1);
		at = (long)i;
	}
	return at;
}

/* The line ending with the end tag that closes the element at START. */
static long
find_end(const struct lines *l, size_t start, const char *tag)
{
	size_t i, k = strlen(tag);
	int depth = 0;
	bool comment = false;

	for (i = start; i < l->n; i++) {
		const char *p = l->v[i];

		while (*p != '\0') {
			if (comment) {
				const char *e = strstr(p, "-->");

				if (e == NULL)
					break;
				comment = false;
				p = e + 3;
				continue;
			}
			if (str_has_prefix(p, "<!--")) {
				comment = true;
				p += 4;
				continue;
			}
			if (p[0] == '<' && strncmp(p + 1, tag, k) == 0 &&
			    (p[k + 1] == '>' ||
				isspace((unsigned char)p[k + 1])))
				depth++;
			else if (p[0] == '<' && p[1] == '/' &&
			    strncmp(p + 2, tag, k) == 0 && p[k + 2] == '>') {
				if (--depth == 0)
					return blank(p + k + 3) ? (long)i : -1;
			}
			p++;
		}
	}
	return -1;
}

static char *
html_block(size_t ind, const char *what)
{
	char *s;

	xasprintf(&s,
	    "%*s" HTML_BEGIN ": %s by guardian-vm-setup; --uninstall restores "
	    "this file -->\n"
	    "%*s{%% include \"vms/tile.html\" %%}\n"
	    "%*s<!-- guardian-vms: end -->\n",
	    (int)ind, "", what, (int)ind, "", (int)ind, "");
	return s;
}

char *
guardian_edit_dashboard(const char *cur)
{
	struct lines l;
	char tag[32], *out = NULL;
	long s, e;
	size_t ind;

	if (cur == NULL)
		return NULL;
	if (strstr(cur, HTML_BEGIN) != NULL)
		return xstrdup(cur);
	lines_split(&l, cur);
	if ((s = find_start(&l, "id=\"vm-section\"", tag, sizeof(tag))) != -1) {
		if ((e = find_end(&l, (size_t)s, tag)) == -1)
			goto done;
		ind = indent_of(l.v[s]);
		while (e >= s)
			lines_delete(&l, (size_t)e--);
		lines_insert(&l, (size_t)s,
		    html_block(ind, "Guardian's #vm-section replaced"));
	} else if ((s = find_start(
			&l, "class=\"nav-tiles\"", tag, sizeof(tag))) != -1) {
		if ((e = find_end(&l, (size_t)s, tag)) == -1)
			goto done;
		ind = indent_of(l.v[e]) + 4;
		lines_insert(
		    &l, (size_t)e, html_block(ind, "the VM tile added"));
	} else
		goto done;
	out = lines_join(&l);
done:
	lines_free(&l);
	return out;
}

/* ---- guardian-webui.service drop-in --------------------------------- */

char *
gen_webui_dropin(const struct plan *p)
{
	char *s;

	xasprintf(&s,
	    "# Written by guardian-vm-setup(8); --uninstall removes it.\n"
	    "# Where the Guardian VMs blueprint finds vmmod and the web "
	    "assets.\n"
	    "[Service]\n"
	    "Environment=GUARDIAN_VMS_SOCKET=" GVM_VMMOD_SOCKET "\n"
	    "Environment=GUARDIAN_VMS_WEB_ASSETS=%s/web-assets\n",
	    p->datadir);
	return s;
}
