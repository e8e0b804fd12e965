/*
 * The console port in Guardian's nftables, through libnftables (the only
 * file including it).  Guardian's `inet guardian input` chain has policy
 * drop and an iptables ACCEPT cannot undo that (DESIGN.md), so the root
 * firewall unit inserts one rule of ours into that chain:
 *   iifname "br0" tcp dport 8091 accept comment "guardian-vms console"
 * and finds it again by its comment in libnftables' JSON listing (parsed
 * with json-c).  Without that chain (no Guardian) nothing is done.  The
 * rule goes away when nftables reloads Guardian's ruleset, which is why the
 * unit re-runs after nftables.service.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <nftables/libnftables.h>

#include "common.h"
#include "setup.h"

#define NFT_CHAIN "inet guardian input"

static json_object *
nft_parse(const char *text, char **errp)
{
	json_tokener *tok;
	json_object *o;

	if ((tok = json_tokener_new()) == NULL)
		fatalx("%s: out of memory", __func__);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, text, (int)strlen(text));
	if (json_tokener_get_error(tok) != json_tokener_success ||
	    text[strspn(text + json_tokener_get_parse_end(tok), " \n") +
		json_tokener_get_parse_end(tok)] != '\0') {
		err_set(errp, "nft JSON: %s",
		    json_tokener_error_desc(json_tokener_get_error(tok)));
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

/* The "nftables" array of a listing (borrowed from root), NULL if none. */
static json_object *
nft_items(json_object *root)
{
	json_object *a;

	if (!json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "nftables", &a) ||
	    !json_object_is_type(a, json_type_array))
		return NULL;
	return a;
}

static const char *
nft_str(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* {"match":{"op":"==","left":LEFT,"right":RIGHT}} */
static bool
nft_match(json_object *e, json_object **left, json_object **right)
{
	json_object *m;
	const char *op;

	if (!json_object_object_get_ex(e, "match", &m) ||
	    !json_object_is_type(m, json_type_object) ||
	    ((op = nft_str(m, "op")) != NULL && strcmp(op, "==") != 0) ||
	    !json_object_object_get_ex(m, "left", left) ||
	    !json_object_object_get_ex(m, "right", right))
		return false;
	return true;
}

/* Is this rule's expression exactly `iifname IFACE tcp dport PORT accept`? */
static bool
nft_rule_is(json_object *rule, const char *iface, uint16_t port)
{
	json_object *expr, *e, *l, *r, *o;
	const char *s;

	if (!json_object_object_get_ex(rule, "expr", &expr) ||
	    !json_object_is_type(expr, json_type_array) ||
	    json_object_array_length(expr) != 3)
		return false;
	e = json_object_array_get_idx(expr, 0);
	if (!nft_match(e, &l, &r) ||
	    !json_object_object_get_ex(l, "meta", &o) ||
	    (s = nft_str(o, "key")) == NULL || strcmp(s, "iifname") != 0 ||
	    !json_object_is_type(r, json_type_string) ||
	    strcmp(json_object_get_string(r), iface) != 0)
		return false;
	e = json_object_array_get_idx(expr, 1);
	if (!nft_match(e, &l, &r) ||
	    !json_object_object_get_ex(l, "payload", &o) ||
	    (s = nft_str(o, "protocol")) == NULL || strcmp(s, "tcp") != 0 ||
	    (s = nft_str(o, "field")) == NULL || strcmp(s, "dport") != 0 ||
	    !json_object_is_type(r, json_type_int) ||
	    json_object_get_int64(r) != port)
		return false;
	e = json_object_array_get_idx(expr, 2);
	return json_object_is_type(e, json_type_object) &&
	    json_object_object_get_ex(e, "accept", &o);
}

int
nft_console_scan(const char *json, const char *iface, uint16_t port,
    struct nft_scan *scan, char **errp)
{
	json_object *root, *items, *it, *rule, *h;
	const char *s;
	size_t i, n;

	memset(scan, 0, sizeof(*scan));
	if ((root = nft_parse(json, errp)) == NULL)
		return -1;
	if ((items = nft_items(root)) == NULL) {
		json_object_put(root);
		return err_set(errp, "nft JSON: no \"nftables\" array");
	}
	n = json_object_array_length(items);
	for (i = 0; i < n; i++) {
		it = json_object_array_get_idx(items, i);
		if (!json_object_is_type(it, json_type_object))
			continue;
		if (json_object_object_get_ex(it, "chain", &rule) &&
		    (s = nft_str(rule, "family")) != NULL &&
		    strcmp(s, "inet") == 0 &&
		    (s = nft_str(rule, "table")) != NULL &&
		    strcmp(s, "guardian") == 0 &&
		    (s = nft_str(rule, "name")) != NULL &&
		    strcmp(s, "input") == 0)
			scan->chain = true;
		if (!json_object_object_get_ex(it, "rule", &rule) ||
		    (s = nft_str(rule, "comment")) == NULL ||
		    strcmp(s, NFT_CONSOLE_COMMENT) != 0 ||
		    !json_object_object_get_ex(rule, "handle", &h) ||
		    !json_object_is_type(h, json_type_int) ||
		    scan->n == NFT_MAX_HANDLES)
			continue;
		scan->handles[scan->n] = json_object_get_int64(h);
		scan->exact[scan->n] = nft_rule_is(rule, iface, port);
		scan->n++;
	}
	json_object_put(root);
	return 0;
}

/* Runs one nft command (a batch: atomic); JSON output into *outp. */
static int
nft_run(struct nft_ctx *ctx, const char *cmd, char **outp, char **errp)
{
	const char *s;

	if (nft_run_cmd_from_buffer(ctx, cmd) != 0) {
		s = nft_ctx_get_error_buffer(ctx);
		return err_set(errp, "nft: %s: %.*s", cmd,
		    (int)strcspn(s == NULL ? "" : s, "\n"), s == NULL ? "" : s);
	}
	if (outp != NULL) {
		s = nft_ctx_get_output_buffer(ctx);
		*outp = xstrdup(s == NULL ? "" : s);
	}
	return 0;
}

static struct nft_ctx *
nft_open(void)
{
	struct nft_ctx *ctx;

	if ((ctx = nft_ctx_new(NFT_CTX_DEFAULT)) == NULL)
		fatalx("%s: out of memory", __func__);
	nft_ctx_output_set_flags(
	    ctx, NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE);
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	return ctx;
}

/*
 * Finds Guardian's chain and our rules in it.  Listing all inet chains
 * first tells "no Guardian" apart from a failing listing.
 */
static enum nft_result
nft_lookup(struct nft_ctx *ctx, const char *iface, uint16_t port,
    struct nft_scan *scan, char **errp)
{
	char *out = NULL;
	int rc;

	if (nft_run(ctx, "list chains inet", &out, errp) == -1)
		return NFT_ERROR;
	rc = nft_console_scan(out, iface, port, scan, errp);
	free(out);
	if (rc == -1)
		return NFT_ERROR;
	if (!scan->chain)
		return NFT_NO_GUARDIAN;
	if (nft_run(ctx, "list chain " NFT_CHAIN, &out, errp) == -1)
		return NFT_ERROR;
	rc = nft_console_scan(out, iface, port, scan, errp);
	free(out);
	return rc == -1 ? NFT_ERROR : NFT_DONE;
}

static bool
nft_iface_ok(const char *s)
{
	size_t n;

	for (n = 0; s[n] != '\0'; n++)
		if (!isalnum((unsigned char)s[n]) &&
		    strchr("_.-", s[n]) == NULL)
			return false;
	return n > 0 && n < 16;
}

/* Appends "delete rule ... handle N" for each found rule to *cmd. */
static void
nft_deletes(char **cmd, const struct nft_scan *scan)
{
	char *c;
	size_t i;

	for (i = 0; i < scan->n; i++) {
		xasprintf(&c, "%sdelete rule " NFT_CHAIN " handle %lld\n", *cmd,
		    (long long)scan->handles[i]);
		free(*cmd);
		*cmd = c;
	}
}

enum nft_result
nft_console_rule_apply(const char *iface, uint16_t port, char **errp)
{
	struct nft_ctx *ctx;
	struct nft_scan scan;
	enum nft_result r;
	char *cmd = NULL, *c;

	if (iface == NULL || !nft_iface_ok(iface) || port == 0) {
		err_set(errp, "bad console interface or port");
		return NFT_ERROR;
	}
	ctx = nft_open();
	if ((r = nft_lookup(ctx, iface, port, &scan, errp)) != NFT_DONE)
		goto done;
	if (scan.n == 1 && scan.exact[0]) {
		r = NFT_UNCHANGED;
		goto done;
	}
	/* Stale or duplicate rules of ours go in the same batch. */
	cmd = xstrdup("");
	nft_deletes(&cmd, &scan);
	xasprintf(&c,
	    "%sinsert rule " NFT_CHAIN " iifname \"%s\" tcp dport %u accept "
	    "comment \"" NFT_CONSOLE_COMMENT "\"\n",
	    cmd, iface, port);
	free(cmd);
	cmd = c;
	r = nft_run(ctx, cmd, NULL, errp) == -1 ? NFT_ERROR : NFT_DONE;
done:
	free(cmd);
	nft_ctx_free(ctx);
	return r;
}

enum nft_result
nft_console_rule_remove(char **errp)
{
	struct nft_ctx *ctx;
	struct nft_scan scan;
	enum nft_result r;
	char *cmd = NULL;

	ctx = nft_open();
	if ((r = nft_lookup(ctx, "-", 0, &scan, errp)) != NFT_DONE)
		goto done;
	if (scan.n == 0) {
		r = NFT_UNCHANGED;
		goto done;
	}
	cmd = xstrdup("");
	nft_deletes(&cmd, &scan);
	r = nft_run(ctx, cmd, NULL, errp) == -1 ? NFT_ERROR : NFT_DONE;
done:
	free(cmd);
	nft_ctx_free(ctx);
	return r;
}
