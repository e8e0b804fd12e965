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
 * It also reads, without changing them, the templates around the dashboard
 * for the stylesheets Guardian links from its static folder: the VM page
 * links them too (GUARDIAN_VMS_HOST_CSS in the guardian-webui drop-in) and
 * so looks like Guardian.  The markup is read by libxml2's HTML parser
 * (Jinja comments blanked, Jinja expressions kept whole), the `{% %}`
 * statements by a scan for them.
 *
 * Only whole lines are touched, found by structure (the function's
 * indentation, the element's balanced tags), never by a pattern over the
 * user's text; when the anchor is not there the edit refuses (NULL) rather
 * than guess.  Applying an edit to its own result changes nothing, which is
 * what --repair relies on; --uninstall restores the files byte for byte
 * from the manifest.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/HTMLparser.h>
#include <libxml/tree.h>

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

/* ---- Guardian's stylesheets, from its templates --------------------- */

#define TEMPLATE_DEPTH 4 /* {% extends %} followed this deep */
#define TEMPLATE_LEN 128

/*
 * TEXT with its Jinja comments `{# ... #}` blanked (newlines kept): what
 * they hold is neither markup nor a statement.  An unclosed one runs to
 * the end, as Jinja would refuse the template anyway.
 */
static char *
jinja_uncomment(const char *text)
{
	char *t = xstrdup(text), *p = t, *e;

	while ((p = strstr(p, "{#")) != NULL) {
		e = strstr(p + 2, "#}");
		e = e != NULL ? e + 2 : p + strlen(p);
		for (; p < e; p++)
			if (*p != '\n')
				*p = ' ';
	}
	return t;
}

/*
 * Jinja expressions `{{ ... }}` of a template, each replaced by `{{N}}`
 * before the HTML parser reads it: an expression may hold the quote that
 * encloses its attribute (href="{{ url_for("static", ...) }}" is fine for
 * Jinja, which runs first), and must reach us whole.
 */
#define JINJA_EXPRS 256
struct jinja_exprs {
	char *v[JINJA_EXPRS];
	size_t n;
};

/* A growing string: open_memstream, or a fatal error (out of memory). */
static FILE *
sb_open(char **buf, size_t *len)
{
	FILE *f;

	if ((f = open_memstream(buf, len)) == NULL)
		fatal("%s: open_memstream", __func__);
	return f;
}

static char *
sb_close(FILE *f, char **buf)
{
	if (fclose(f) != 0)
		fatal("%s: fclose", __func__);
	return *buf;
}

static char *
jinja_hide_exprs(const char *text, struct jinja_exprs *x)
{
	const char *p = text, *b, *e;
	char *buf = NULL;
	size_t len;
	FILE *out = sb_open(&buf, &len);

	memset(x, 0, sizeof(*x));
	while ((b = strstr(p, "{{")) != NULL &&
	    (e = strstr(b + 2, "}}")) != NULL && x->n < JINJA_EXPRS) {
		x->v[x->n] = xstrndup(b, (size_t)(e + 2 - b));
		fprintf(out, "%.*s{{%zu}}", (int)(b - p), p, x->n++);
		p = e + 2;
	}
	fputs(p, out);
	return sb_close(out, &buf);
}

/* S with each `{{N}}` back to the expression it stands for. */
static char *
jinja_show_exprs(const char *s, const struct jinja_exprs *x)
{
	const char *p = s, *b;
	char *buf = NULL, *end;
	size_t len;
	unsigned long i;
	FILE *out = sb_open(&buf, &len);

	while ((b = strstr(p, "{{")) != NULL) {
		i = strtoul(b + 2, &end, 10);
		if (end == b + 2 || !str_has_prefix(end, "}}") || i >= x->n) {
			fprintf(out, "%.*s", (int)(b + 2 - p), p);
			p = b + 2;
		} else {
			fprintf(out, "%.*s%s", (int)(b - p), p, x->v[i]);
			p = end + 2;
		}
	}
	fputs(p, out);
	return sb_close(out, &buf);
}

static void
jinja_exprs_free(struct jinja_exprs *x)
{
	while (x->n > 0)
		free(x->v[--x->n]);
}

static const char *
skip_ws(const char *p)
{
	return p + strspn(p, " \t");
}

/* WORD after blanks at P: what follows it, or NULL. */
static const char *
word(const char *p, const char *w)
{
	if (p == NULL)
		return NULL;
	p = skip_ws(p);
	return str_has_prefix(p, w) ? p + strlen(w) : NULL;
}

/* A Jinja string literal after blanks at P (no escapes: none are valid
 * in the names we accept anyway): *S, *N and what follows, or NULL. */
static const char *
jinja_string(const char *p, const char **s, size_t *n)
{
	const char *e;
	char q;

	if (p == NULL)
		return NULL;
	p = skip_ws(p);
	if (*p != '\'' && *p != '"')
		return NULL;
	q = *p++;
	if ((e = strchr(p, q)) == NULL)
		return NULL;
	*s = p;
	*n = (size_t)(e - p);
	return e + 1;
}

static bool
name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '/' ||
	    c == '-';
}

/*
 * S (N bytes) as a path under a folder the web UI serves from: relative,
 * [A-Za-z0-9._/-] only, no empty component and none starting with '.'
 * (so no ".."), ending in EXT, shorter than MAX.  NULL, or why not.
 */
static const char *
path_why_not(const char *s, size_t n, const char *ext, size_t max)
{
	size_t i, k = strlen(ext);

	if (n == 0)
		return "empty";
	if (n >= max)
		return "too long";
	if (s[0] == '/')
		return "an absolute path";
	for (i = 0; i < n; i++)
		if (!name_char(s[i]))
			return "a character outside [A-Za-z0-9._/-]";
	for (i = 0; i < n; i++)
		if ((i == 0 || s[i - 1] == '/') && s[i] == '.')
			return n - i >= 2 && s[i + 1] == '.' &&
				(i + 2 == n || s[i + 2] == '/')
			    ? "'..' in the path"
			    : "a path component starting with '.'";
		else if (s[i] == '/' && (i + 1 == n || s[i + 1] == '/'))
			return "an empty path component";
	if (n <= k || strncmp(s + n - k, ext, k) != 0)
		return ext[1] == 'c' ? "not a .css file" : "not a template";
	return NULL;
}

static void css_skip(struct host_css *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
css_skip(struct host_css *css, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (css->nskipped < GUARDIAN_CSS_SKIPS) {
		s = css->skipped[css->nskipped];
		va_start(ap, fmt);
		vsnprintf(s, sizeof(css->skipped[0]), fmt, ap);
		va_end(ap);
		/* Guardian's text, shown in the plan: printable ASCII only */
		for (; *s != '\0'; s++)
			if ((unsigned char)*s < 0x20 ||
			    (unsigned char)*s > 0x7e)
				*s = '?';
	}
	css->nskipped++;
}

/* REL names the stylesheet link type, and not an alternate one. */
static bool
rel_stylesheet(const char *rel)
{
	bool sheet = false, alternate = false;
	const char *p = rel;

	while (*p != '\0') {
		size_t k;

		p += strspn(p, " \t\r\n\f");
		k = strcspn(p, " \t\r\n\f");
		if (k == 10 && strncasecmp(p, "stylesheet", 10) == 0)
			sheet = true;
		if (k == 9 && strncasecmp(p, "alternate", 9) == 0)
			alternate = true;
		p += k;
	}
	return sheet && !alternate;
}

static const char css_foreign[] = "another site's";

/* HREF has a URL scheme ("https:") or is "//host/...". */
static bool
url_foreign(const char *s)
{
	size_t k = 0;

	if (str_has_prefix(s, "//"))
		return true;
	if (!isalpha((unsigned char)s[0]))
		return false;
	while (isalnum((unsigned char)s[k]) || s[k] == '+' || s[k] == '-' ||
	    s[k] == '.')
		k++;
	return s[k] == ':';
}

/*
 * The name under the static folder an href names: exactly
 * `{{ url_for('static', filename='NAME') }}` (either quotes) or
 * `/static/NAME`.  NULL, or why not (css_foreign: another site's).
 */
static const char *
css_href(const char *href, char *name, size_t len)
{
	char buf[256];
	const char *p, *s, *why;
	size_t n;

	if (strlen(href) >= sizeof(buf))
		return "too long";
	snprintf(buf, sizeof(buf), "%s", href);
	if (str_has_prefix(buf, "{{")) {
		p = buf + 2;
		if (*p == '-')
			p++;
		p = word(p, "url_for");
		p = word(p, "(");
		if ((p = jinja_string(p, &s, &n)) == NULL || n != 6 ||
		    strncmp(s, "static", 6) != 0)
			return "not url_for('static', filename=...)";
		p = word(word(word(p, ","), "filename"), "=");
		p = jinja_string(p, &s, &n);
		p = word(p, ")");
		if (p != NULL && *skip_ws(p) == '-')
			p = skip_ws(p) + 1;
		p = word(p, "}}");
		if (p == NULL || *skip_ws(p) != '\0')
			return "not url_for('static', filename=...)";
	} else if (str_has_prefix(buf, "/static/")) {
		s = buf + strlen("/static/");
		n = strlen(s);
	} else if (url_foreign(buf))
		return css_foreign;
	else
		return "not in Guardian's static folder";
	if ((why = path_why_not(s, n, ".css", len)) != NULL)
		return why;
	snprintf(name, len, "%.*s", (int)n, s);
	return NULL;
}

static void
css_add(struct host_css *css, const char *name)
{
	size_t i;

	for (i = 0; i < css->n; i++)
		if (strcmp(css->name[i], name) == 0)
			return;
	if (css->n == GUARDIAN_CSS_MAX) {
		css_skip(css, "%s: more than %d stylesheets", name,
		    GUARDIAN_CSS_MAX);
		return;
	}
	snprintf(css->name[css->n++], sizeof(css->name[0]), "%s", name);
}

/* One <link>: a stylesheet from Guardian's static folder is taken. */
static void
css_link(struct host_css *css, xmlNode *link, const struct jinja_exprs *x)
{
	char name[GUARDIAN_CSS_LEN], *rel, *href = NULL, *h;
	const char *why;
	size_t n;

	rel = (char *)xmlGetProp(link, BAD_CAST "rel");
	h = (char *)xmlGetProp(link, BAD_CAST "href");
	if (h != NULL) {
		href = jinja_show_exprs(h, x);
		xmlFree(h);
	}
	if (rel == NULL || !rel_stylesheet(rel))
		goto done;
	if (href == NULL) {
		css_skip(css, "<link rel=\"%.40s\">: no href", rel);
		goto done;
	}
	if ((why = css_href(href, name, sizeof(name))) == css_foreign)
		css->nforeign++; /* a CDN's: expected, only counted */
	else if (why != NULL) {
		n = strlen(href);
		css_skip(css, "%.*s%s: %s", (int)(n <= 60 ? n : 57), href,
		    n <= 60 ? "" : "...", why);
	} else
		css_add(css, name);
done:
	xmlFree(rel);
	free(href);
}

/* Every <link> element under N, in document order. */
static void
css_walk(struct host_css *css, xmlNode *n, const struct jinja_exprs *x)
{
	for (; n != NULL; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		if (xmlStrcasecmp(n->name, BAD_CAST "link") == 0)
			css_link(css, n, x);
		css_walk(css, n->children, x);
	}
}

/*
 * The stylesheets TEXT (a Jinja template) links, read with libxml2's HTML
 * parser: comments, <script> and <style> text are no tags to it, and
 * Jinja expressions in attribute values are just their text.  Jinja
 * comments are blanked first and its expressions stand in as `{{N}}`;
 * `{% %}` statements between tags are text.
 */
void
guardian_host_css(const char *text, struct host_css *css)
{
	struct jinja_exprs x;
	htmlDocPtr doc;
	char *t, *u;

	if (text == NULL)
		return;
	t = jinja_uncomment(text);
	u = jinja_hide_exprs(t, &x);
	free(t);
	doc = htmlReadMemory(u, (int)strlen(u), "template.html", "UTF-8",
	    HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
		HTML_PARSE_NONET);
	free(u);
	if (doc != NULL) {
		css_walk(css, xmlDocGetRootElement(doc), &x);
		xmlFreeDoc(doc);
	}
	jinja_exprs_free(&x);
}

struct stmt {
	const char *keyword; /* extends, include */
	const char *want; /* include: this name; extends: NULL */
	char *name;
	size_t len;
	bool found;
};

/* `{% KEYWORD "NAME" ... %}` (Jinja allows it over lines), NAME a checked
 * template path */
static void
stmt_visit(const char *at, struct stmt *st)
{
	const char *p = at + 2, *s;
	size_t n;

	if (st->found)
		return;
	if (*p == '-' || *p == '+')
		p++;
	p = skip_ws(p);
	if (!str_has_prefix(p, st->keyword) ||
	    (p[strlen(st->keyword)] != ' ' && p[strlen(st->keyword)] != '\t'))
		return;
	p = jinja_string(p + strlen(st->keyword), &s, &n);
	if (p == NULL || strstr(p, "%}") == NULL ||
	    path_why_not(s, n, ".html", TEMPLATE_LEN) != NULL)
		return;
	if (st->want != NULL)
		st->found =
		    strlen(st->want) == n && strncmp(st->want, s, n) == 0;
	else if (n < st->len) {
		snprintf(st->name, st->len, "%.*s", (int)n, s);
		st->found = true;
	}
}

/* Every `{%` of TEXT outside Jinja comments (Jinja runs statements
 * wherever they are, in HTML comments and <script> too). */
static bool
stmt_scan(const char *text, struct stmt *st)
{
	char *t, *p;

	if (text == NULL)
		return false;
	t = jinja_uncomment(text);
	for (p = t; (p = strstr(p, "{%")) != NULL; p += 2)
		stmt_visit(p, st);
	free(t);
	return st->found;
}

bool
guardian_template_extends(const char *text, char *name, size_t len)
{
	struct stmt st = {"extends", NULL, name, len, false};

	return stmt_scan(text, &st);
}

bool
guardian_template_includes(const char *text, const char *name)
{
	struct stmt st = {"include", name, NULL, 0, false};

	return stmt_scan(text, &st);
}

void
guardian_find_host_css(
    guardian_read_fn read, const void *arg, struct host_css *css)
{
	char *text[TEMPLATE_DEPTH + 1], name[TEMPLATE_DEPTH + 1][TEMPLATE_LEN];
	size_t n, i, j;
	bool extends = false;

	memset(css, 0, sizeof(*css));
	snprintf(name[0], sizeof(name[0]), "core/dashboard.html");
	if ((text[0] = read(name[0], arg)) == NULL)
		return;
	for (n = 1; n <= TEMPLATE_DEPTH &&
	     guardian_template_extends(text[n - 1], name[n], sizeof(name[n]));
	     n++) {
		extends = true;
		for (j = 0; j < n && strcmp(name[j], name[n]) != 0; j++)
			;
		if (j < n) {
			css_skip(css, "templates/%s: extended twice", name[n]);
			break;
		}
		if ((text[n] = read(name[n], arg)) == NULL) {
			css_skip(css, "templates/%s: not readable", name[n]);
			break;
		}
	}
	/* Guardian's own layout: base.html includes the dashboard */
	if (!extends && (text[n] = read("base.html", arg)) != NULL) {
		if (guardian_template_includes(text[n], name[0]))
			n++;
		else
			free(text[n]);
	}
	/* in the order the page links them: the outer layout first */
	for (i = n; i-- > 0;) {
		guardian_host_css(text[i], css);
		free(text[i]);
	}
}

/* ---- guardian-webui.service drop-in --------------------------------- */

char *
gen_webui_dropin(const struct plan *p)
{
	char *s, *css = xstrdup(""), *t;
	size_t i;

	for (i = 0; i < p->host_css.n; i++) {
		xasprintf(
		    &t, "%s%s%s", css, i > 0 ? "," : "", p->host_css.name[i]);
		free(css);
		css = t;
	}
	xasprintf(&s,
	    "# Written by guardian-vm-setup(8); --uninstall removes it.\n"
	    "# Where the Guardian VMs blueprint finds vmmod and the web "
	    "assets.\n"
	    "[Service]\n"
	    "Environment=GUARDIAN_VMS_SOCKET=" GVM_VMMOD_SOCKET "\n"
	    "Environment=GUARDIAN_VMS_WEB_ASSETS=%s/web-assets\n",
	    p->datadir);
	if (css[0] != '\0') {
		xasprintf(&t,
		    "%s# Guardian's stylesheets (from its templates), linked "
		    "by the VM page too.\n"
		    "Environment=GUARDIAN_VMS_HOST_CSS=%s\n",
		    s, css);
		free(s);
		s = t;
	}
	free(css);
	return s;
}
