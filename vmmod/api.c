/*
 * The API router and its handlers.  One table maps a method and a path
 * pattern to a handler; http.c hands in a request whose path is already split
 * into percent-decoded segments and gets back a status and a JSON object (or
 * text).  Nothing here knows libmicrohttpd, so the matching, the body rules
 * and the metrics text are tested without a socket.  A path that matches no
 * pattern is 404, a known path with the wrong method is 405; routes of later
 * issues are in the table already and answer 501 so clients can tell.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vmmod.h"

typedef void (*handler_fn)(
    const struct api_request *, const char *name, struct api_response *);

struct route {
	const char *pattern; /* "{name}" one segment, "*" the rest */
	unsigned flags;
	handler_fn get, post, put, del;
};

static void
h_healthz(const struct api_request *, const char *, struct api_response *);
static void
h_metrics(const struct api_request *, const char *, struct api_response *);
static void
h_login(const struct api_request *, const char *, struct api_response *);
static void
h_logout(const struct api_request *, const char *, struct api_response *);
static void
h_events(const struct api_request *, const char *, struct api_response *);
static void
h_host(const struct api_request *, const char *, struct api_response *);
static void
h_status(const struct api_request *, const char *, struct api_response *);
static void
h_list(const struct api_request *, const char *, struct api_response *);
static void
h_vm(const struct api_request *, const char *, struct api_response *);
static void
h_action(const struct api_request *, const char *, struct api_response *);
static void
h_autostart(const struct api_request *, const char *, struct api_response *);
static void
h_delete(const struct api_request *, const char *, struct api_response *);
static void
h_console(const struct api_request *, const char *, struct api_response *);
static void h_console_ticket(
    const struct api_request *, const char *, struct api_response *);
static void
h_console_ws(const struct api_request *, const char *, struct api_response *);
static void
h_console_page(const struct api_request *, const char *, struct api_response *);
static void
h_console_file(const struct api_request *, const char *, struct api_response *);
static void
h_host_devices(const struct api_request *, const char *, struct api_response *);
static void
h_vm_devices(const struct api_request *, const char *, struct api_response *);
static void
h_vm_attach(const struct api_request *, const char *, struct api_response *);
static void
h_vm_detach(const struct api_request *, const char *, struct api_response *);

static void
h_templates(const struct api_request *, const char *, struct api_response *);
static void
h_create(const struct api_request *, const char *, struct api_response *);
static void
h_jobs(const struct api_request *, const char *, struct api_response *);
static void
h_job(const struct api_request *, const char *, struct api_response *);
static void
h_job_cancel(const struct api_request *, const char *, struct api_response *);

#define LV API_LIBVIRT
#define LVS (API_LIBVIRT | API_SLOW)
#define LVSG (API_LIBVIRT | API_SLOW | API_SLOW_GET)

/*
 * Order matters: the first pattern that matches the path wins, so literal
 * routes come before "{name}" ones (a domain named "status" is reachable by
 * its UUID, see API.md).
 */
static const struct route routes[] = {
    {"/healthz", API_NOAUTH, h_healthz, NULL, NULL, NULL},
    {"/metrics", 0, h_metrics, NULL, NULL, NULL},
    {"/api/login", API_NOAUTH, NULL, h_login, NULL, NULL},
    {"/api/logout", API_NOAUTH, NULL, h_logout, NULL, NULL},
    {"/api/events", 0, h_events, NULL, NULL, NULL},
    {"/api/host", 0, h_host, NULL, NULL, NULL},
    {"/api/host/devices", LV | API_SLOW_GET, h_host_devices, NULL, NULL, NULL},
    {"/api/jobs", 0, h_jobs, NULL, NULL, NULL},
    {"/api/jobs/{id}", 0, h_job, NULL, NULL, h_job_cancel},
    /* the Xen seed's shapes; pci_none.c answers 501 where PCI is not built */
    {"/api/hypervisor/pci-devices", 0, pci_api_devices, NULL, NULL, NULL},
    {"/api/hypervisor/ai-acceleration", 0, pci_api_accel, NULL, NULL, NULL},
    {"/api/vms", LV, h_list, NULL, NULL, NULL},
    {"/api/vms/status", 0, h_status, NULL, NULL, NULL},
    {"/api/vms/list", LV, h_list, NULL, NULL, NULL},
    {"/api/vms/templates", 0, h_templates, NULL, NULL, NULL},
    {"/api/vms/create", LV, NULL, h_create, NULL, NULL},
    {"/api/vms/{name}", LVSG, h_vm, NULL, NULL, h_delete},
    {"/api/vms/{name}/start", LVS, NULL, h_action, NULL, NULL},
    {"/api/vms/{name}/stop", LVS, NULL, h_action, NULL, NULL},
    {"/api/vms/{name}/force-stop", LVS, NULL, h_action, NULL, NULL},
    {"/api/vms/{name}/restart", LVS, NULL, h_action, NULL, NULL},
    {"/api/vms/{name}/pause", LVS, NULL, h_action, NULL, NULL},
    {"/api/vms/{name}/resume", LVS, NULL, h_action, NULL, NULL},
    {"/api/vms/{name}/autostart", LVS, NULL, h_autostart, NULL, NULL},
    {"/api/vms/{name}/delete", LVS, NULL, NULL, NULL, h_delete},
    {"/api/vms/{name}/console", LV, h_console, h_console_ticket, NULL, NULL},
    /* websockets: a console ticket or cookie instead of credentials */
    {"/api/vms/{name}/console/serial", LV | API_NOAUTH, h_console_ws, NULL,
	NULL, NULL},
    {"/api/vms/{name}/console/vnc", LV | API_NOAUTH, h_console_ws, NULL, NULL,
	NULL},
    {"/api/vms/{name}/devices", LVSG, h_vm_devices, h_vm_attach, NULL, NULL},
    {"/api/vms/{name}/devices/{id}", LVS, NULL, NULL, NULL, h_vm_detach},
    /* the console page: a ticket or the console cookie (console.c) */
    {"/console/{name}", API_NOAUTH, h_console_page, NULL, NULL, NULL},
    /*
     * the console page's assets (xterm.js, noVNC, ours) at
     * /console/assets/<file>: http.c serves them from web_root before
     * routing, on every listener; what reaches this route names no file
     */
    {"/console/*", API_NOAUTH, h_console_file, NULL, NULL, NULL},
};
#define NROUTES ((int)nitems(routes))

void
api_error_set(
    struct api_error *err, int status, const char *code, const char *fmt, ...)
{
	va_list ap;

	err->status = status;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

unsigned
api_method_bit(const char *m)
{
	if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
		return AM_GET;
	if (strcmp(m, "POST") == 0)
		return AM_POST;
	if (strcmp(m, "PUT") == 0)
		return AM_PUT;
	if (strcmp(m, "DELETE") == 0)
		return AM_DELETE;
	return 0;
}

static unsigned
route_methods(const struct route *r)
{
	return (r->get ? AM_GET : 0) | (r->post ? AM_POST : 0) |
	    (r->put ? AM_PUT : 0) | (r->del ? AM_DELETE : 0);
}

/* Does the pattern match the segments?  "{x}" takes any one segment. */
static bool
pattern_match(const char *pat, char *const seg[], int nseg)
{
	const char *p = pat + 1, *end;
	size_t len;
	int i = 0;

	for (;;) {
		end = strchr(p, '/');
		len = end ? (size_t)(end - p) : strlen(p);
		if (len == 1 && *p == '*')
			return i < nseg;
		if (i >= nseg)
			return false;
		if (*p != '{' &&
		    (strlen(seg[i]) != len || strncmp(seg[i], p, len) != 0))
			return false;
		i++;
		if (end == NULL)
			return i == nseg;
		p = end + 1;
	}
}

int
api_route(const struct api_request *req, unsigned *allowp)
{
	int i;

	*allowp = 0;
	for (i = 0; i < NROUTES; i++) {
		if (pattern_match(routes[i].pattern, req->seg, req->nseg)) {
			*allowp = route_methods(&routes[i]);
			return i;
		}
	}
	return -1;
}

const char *
api_route_pattern(int route)
{
	if (route < 0 || route >= NROUTES)
		return "none";
	return routes[route].pattern;
}

unsigned
api_route_flags(int route)
{
	if (route < 0 || route >= NROUTES)
		return 0;
	return routes[route].flags;
}

/* The "{name}" segment of a matched route: the first parameter. */
static const char *
route_param(const struct route *r, const struct api_request *req)
{
	const char *p = r->pattern + 1;
	int i;

	for (i = 0; i < req->nseg && p != NULL; i++) {
		if (*p == '{')
			return req->seg[i];
		if ((p = strchr(p, '/')) != NULL)
			p++;
	}
	return NULL;
}

/* ---- responses ---------------------------------------------------------- */

static void
resp_json(struct api_response *resp, int status, json_object *o)
{
	resp->status = status;
	json_object_put(resp->json);
	resp->json = o;
}

static void
resp_text(struct api_response *resp, int status, const char *ctype, char *text)
{
	resp->status = status;
	resp->content_type = ctype;
	free(resp->text);
	resp->text = text;
}

void
api_response_error(struct api_response *resp, const struct api_error *err)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(err->msg));
	json_object_object_add(o, "code", json_object_new_string(err->code));
	resp_json(resp, err->status, o);
}

static void
resp_error(
    struct api_response *resp, int status, const char *code, const char *msg)
{
	struct api_error err;

	api_error_set(&err, status, code, "%s", msg);
	api_response_error(resp, &err);
}

void
api_response_clear(struct api_response *resp)
{
	json_object_put(resp->json);
	free(resp->text);
	free(resp->set_cookie);
	free(resp->csp);
	if (resp->upgrade != NULL) {
		resp->upgrade->cancel(resp->upgrade->arg);
		free(resp->upgrade);
	}
	memset(resp, 0, sizeof(*resp));
}

/* ---- input rules -------------------------------------------------------- */

/*
 * Names of domains made outside vmmod may hold nearly anything libvirt
 * accepts; we only refuse what cannot be a route segment or a log line.
 */
int
api_name_check(const char *name, struct api_error *err)
{
	const unsigned char *p;
	size_t len = strlen(name);

	if (len == 0 || len > SPEC_REFNAME_MAX) {
		api_error_set(err, 400, "invalid_name",
		    "VM name must be 1 to %d bytes", SPEC_REFNAME_MAX);
		return -1;
	}
	for (p = (const unsigned char *)name; *p != '\0'; p++) {
		if (*p == '/' || *p < 0x20 || *p == 0x7f) {
			api_error_set(err, 400, "invalid_name",
			    "VM name must not contain '/' or control characters");
			return -1;
		}
	}
	return 0;
}

static bool
ctype_is_json(const char *ctype)
{
	static const char want[] = "application/json";
	size_t n = sizeof(want) - 1;

	if (ctype == NULL || strncasecmp(ctype, want, n) != 0)
		return false;
	ctype += n;
	while (*ctype == ' ' || *ctype == '\t')
		ctype++;
	return *ctype == '\0' || *ctype == ';';
}

int
api_body_parse(const char *ctype, const char *body, size_t len,
    json_object **objp, struct api_error *err)
{
	json_tokener *tok;
	json_object *o;
	enum json_tokener_error jerr;
	size_t end;

	*objp = NULL;
	if (len == 0)
		return 0;
	if (!ctype_is_json(ctype)) {
		api_error_set(err, 415, "unsupported_media_type",
		    "request body must be application/json");
		return -1;
	}
	if (len > API_MAX_BODY) {
		api_error_set(err, 413, "body_too_large",
		    "request body exceeds %d bytes", API_MAX_BODY);
		return -1;
	}
	tok = json_tokener_new_ex(32);
	/*
	 * XXX json-c 0.16's strict mode still takes single-quoted keys and
	 * NaN/Infinity; the typed getters below refuse non-integer numbers.
	 */
	json_tokener_set_flags(
	    tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, body, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (jerr != json_tokener_success) {
		api_error_set(err, 400, "bad_json", "invalid JSON: %s",
		    jerr == json_tokener_continue
			? "unexpected end of input"
			: json_tokener_error_desc(jerr));
		goto fail;
	}
	while (end < len && strchr(" \t\r\n", body[end]) != NULL)
		end++;
	if (end < len) {
		api_error_set(err, 400, "bad_json",
		    "invalid JSON: trailing data after the value");
		goto fail;
	}
	if (!json_object_is_type(o, json_type_object)) {
		api_error_set(
		    err, 400, "bad_json", "request body must be a JSON object");
		goto fail;
	}
	*objp = o;
	return 0;
fail:
	json_object_put(o);
	return -1;
}

/* Refuses keys not in the NULL-terminated list. */
static int
body_fields(json_object *o, const char *const allowed[], struct api_error *err)
{
	size_t i;

	if (o == NULL)
		return 0;
	json_object_object_foreach(o, key, val)
	{
		(void)val;
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(key, allowed[i]) == 0)
				break;
		if (allowed[i] == NULL) {
			api_error_set(err, 400, "unknown_field",
			    "unknown field \"%.64s\"", key);
			return -1;
		}
	}
	return 0;
}

/* 1: present and valid, 0: absent, -1: wrong type or range. */
static int
body_int(json_object *o, const char *key, int min, int max, int *vp,
    struct api_error *err)
{
	json_object *v;
	int64_t n;

	if (o == NULL || !json_object_object_get_ex(o, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int)) {
		api_error_set(
		    err, 400, "bad_type", "%s must be an integer", key);
		return -1;
	}
	n = json_object_get_int64(v);
	if (n < min || n > max) {
		api_error_set(err, 400, "out_of_range",
		    "%s must be between %d and %d", key, min, max);
		return -1;
	}
	*vp = (int)n;
	return 1;
}

static int
body_bool(json_object *o, const char *key, bool *vp, struct api_error *err)
{
	json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v))
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
query_bool(const struct api_request *req, const char *key, bool *vp,
    struct api_error *err)
{
	const char *v = req->arg ? req->arg(req->arg_cls, key) : NULL;

	*vp = false;
	if (v == NULL || strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
		return 0;
	if (*v == '\0' || strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
		*vp = true;
		return 0;
	}
	api_error_set(err, 400, "bad_query", "%s must be true or false", key);
	return -1;
}

/* Parses the body and refuses unknown fields; answers the error itself. */
static int
body_take(const struct api_request *req, const char *const allowed[],
    json_object **objp, struct api_response *resp)
{
	struct api_error err;

	if (api_body_parse(req->content_type, req->body, req->body_len, objp,
		&err) == -1 ||
	    body_fields(*objp, allowed, &err) == -1) {
		json_object_put(*objp);
		*objp = NULL;
		api_response_error(resp, &err);
		return -1;
	}
	return 0;
}

/* Name check and lookup (name, then UUID); answers 400/404 itself. */
static int
vm_resolve(const char *name, char uuid[37], struct api_response *resp)
{
	struct api_error err;

	if (api_name_check(name, &err) == -1) {
		api_response_error(resp, &err);
		return -1;
	}
	if (state_lookup(name, uuid) == -1) {
		resp_error(resp, 404, "not_found", "no such VM");
		return -1;
	}
	return 0;
}

/* ---- handlers ----------------------------------------------------------- */

static void
h_healthz(
    const struct api_request *req, const char *name, struct api_response *resp)
{
	resp_text(resp, 200, "text/plain; charset=utf-8", xstrdup("ok\n"));
}

static void
h_metrics(
    const struct api_request *req, const char *name, struct api_response *resp)
{
	unsigned counts[VS_STARTING + 1];

	state_counts(counts);
	resp_text(resp, 200, "text/plain; version=0.0.4; charset=utf-8",
	    api_metrics_text(counts, virt_reconnects(), http_sse_clients()));
}

static void
h_login(
    const struct api_request *req, const char *name, struct api_response *resp)
{
	static const char *const fields[] = {"token", NULL};
	json_object *o, *v, *r;
	char *cookie;

	if (body_take(req, fields, &o, resp) == -1)
		return;
	if (o == NULL || !json_object_object_get_ex(o, "token", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		json_object_put(o);
		resp_error(resp, 400, "missing_field",
		    "token must be given as a string");
		return;
	}
	cookie = http_session_login(json_object_get_string(v));
	json_object_put(o);
	if (cookie == NULL) {
		audit_log(req->peer, "login", NULL, "denied");
		resp_error(resp, 401, "bad_token", "wrong token");
		return;
	}
	audit_log(req->peer, "login", NULL, "ok");
	resp->set_cookie = cookie;
	r = json_object_new_object();
	json_object_object_add(r, "success", json_object_new_boolean(true));
	resp_json(resp, 200, r);
}

static void
h_logout(
    const struct api_request *req, const char *name, struct api_response *resp)
{
	json_object *r = json_object_new_object();

	resp->set_cookie = http_session_logout(req->session);
	json_object_object_add(r, "success", json_object_new_boolean(true));
	resp_json(resp, 200, r);
}

static void
h_events(
    const struct api_request *req, const char *name, struct api_response *resp)
{
	resp->status = 200;
	resp->events = true;
}

static void
h_host(
    const struct api_request *req, const char *name, struct api_response *resp)
{
	json_object *o = state_host_json();

	/* which security profile features a deploy can ask for here */
	json_object_object_add(o, "security", deploy_security_json());
	json_object_object_add(o, "classifications", deploy_classes_json());
	resp_json(resp, 200, o);
}

static void
h_status(
    const struct api_request *req, const char *name, struct api_response *resp)
{
	resp_json(resp, 200, state_status_json());
}

static void
h_list(
    const struct api_request *req, const char *name, struct api_response *resp)
{
	/* The hot path: a cached serialization, rebuilt when the table changes. */
	resp_text(resp, 200, "application/json", state_vms_text(NULL));
}

static void
h_vm(const struct api_request *req, const char *name, struct api_response *resp)
{
	json_object *vm;
	char uuid[37];

	if (vm_resolve(name, uuid, resp) == -1)
		return;
	if ((vm = state_vm_json(uuid)) == NULL) {
		resp_error(resp, 404, "not_found", "no such VM");
		return;
	}
	/* USB devices it wants: attached, or waiting for a replug. */
	json_object_object_add(vm, "devices", devices_vm_json(uuid));
	resp_json(resp, 200, vm);
}

static const struct {
	const char *word;
	enum vm_action act;
	int status; /* 202: ACPI request, the result comes as an event */
	bool timeout;
	const char *done;
} actions[] = {
    {"start", ACT_START, 200, false, "started"},
    {"stop", ACT_STOP, 202, true, "shutdown requested"},
    {"force-stop", ACT_FORCE_STOP, 200, false, "stopped"},
    {"restart", ACT_RESTART, 202, true, "reboot requested"},
    {"pause", ACT_PAUSE, 200, false, "paused"},
    {"resume", ACT_RESUME, 200, false, "resumed"},
};

static void
action_done(const struct api_request *req, const char *what, const char *name,
    const char *uuid, int status, const char *message, json_object *vm,
    struct api_response *resp)
{
	json_object *r = json_object_new_object();

	audit_log(req->peer, what, name, "ok");
	if (vm == NULL)
		vm = state_vm_json(uuid);
	json_object_object_add(r, "success", json_object_new_boolean(true));
	json_object_object_add(r, "message", json_object_new_string(message));
	json_object_object_add(r, "vm", vm);
	resp_json(resp, status, r);
}

static void
action_failed(const struct api_request *req, const char *what, const char *name,
    struct api_error *err, struct api_response *resp)
{
	char result[64];

	if (err->status == 0)
		api_error_set(err, 500, "internal", "%s failed", what);
	snprintf(result, sizeof(result), "error:%s", err->code);
	audit_log(req->peer, what, name, result);
	api_response_error(resp, err);
}

static void
h_action(
    const struct api_request *req, const char *name, struct api_response *resp)
{
	static const char *const none[] = {NULL};
	static const char *const timed[] = {"timeout_s", NULL};
	const char *word = req->seg[req->nseg - 1];
	struct api_error err = {0};
	json_object *o, *vm = NULL;
	char uuid[37];
	int timeout_s = 0;
	size_t i;

	for (i = 0; i < nitems(actions); i++)
		if (strcmp(actions[i].word, word) == 0)
			break;
	if (i == nitems(actions)) {
		resp_error(resp, 404, "not_found", "no such action");
		return;
	}
	if (vm_resolve(name, uuid, resp) == -1 ||
	    body_take(req, actions[i].timeout ? timed : none, &o, resp) == -1)
		return;
	if (body_int(o, "timeout_s", 1, 3600, &timeout_s, &err) == -1) {
		json_object_put(o);
		api_response_error(resp, &err);
		return;
	}
	json_object_put(o);
	if (virt_action(uuid, actions[i].act, timeout_s, &vm, &err) == -1) {
		action_failed(req, word, name, &err, resp);
		return;
	}
	action_done(req, word, name, uuid, actions[i].status, actions[i].done,
	    vm, resp);
}

static void
h_autostart(
    const struct api_request *req, const char *name, struct api_response *resp)
{
	static const char *const fields[] = {"enabled", NULL};
	struct api_error err = {0};
	json_object *o, *vm = NULL;
	char uuid[37];
	bool on;
	int r;

	if (vm_resolve(name, uuid, resp) == -1 ||
	    body_take(req, fields, &o, resp) == -1)
		return;
	r = body_bool(o, "enabled", &on, &err);
	json_object_put(o);
	if (r == 0)
		api_error_set(&err, 400, "missing_field",
		    "enabled must be given as true or false");
	if (r != 1) {
		api_response_error(resp, &err);
		return;
	}
	if (virt_set_autostart(uuid, on, &vm, &err) == -1) {
		action_failed(req, "autostart", name, &err, resp);
		return;
	}
	action_done(req, on ? "autostart-on" : "autostart-off", name, uuid, 200,
	    on ? "autostart enabled" : "autostart disabled", vm, resp);
}

static void
h_delete(
    const struct api_request *req, const char *name, struct api_response *resp)
{
	static const char *const none[] = {NULL};
	struct api_error err = {0};
	bool remove_disk, force;
	json_object *o;
	char uuid[37], *vmname = NULL;

	if (vm_resolve(name, uuid, resp) == -1 ||
	    body_take(req, none, &o, resp) == -1)
		return;
	json_object_put(o);
	if (query_bool(req, "remove_disk", &remove_disk, &err) == -1 ||
	    query_bool(req, "force", &force, &err) == -1) {
		api_response_error(resp, &err);
		return;
	}
	/* The domain's own name (the route may give its UUID). */
	if ((o = state_vm_json(uuid)) != NULL)
		vmname = xstrdup(
		    json_object_get_string(json_object_object_get(o, "name")));
	json_object_put(o);
	if (virt_delete(uuid, remove_disk, force, &err) == -1) {
		action_failed(req, "delete", name, &err, resp);
		free(vmname);
		return;
	}
	deploy_vm_deleted(vmname);
	free(vmname);
	audit_log(
	    req->peer, remove_disk ? "delete+disk" : "delete", name, "ok");
	resp->status = 204;
}

/*
 * GET /api/vms/{name}/console (the seed's route): which consoles the VM
 * has, from the VM object's "consoles"; "type" is the first of them (serial
 * before vnc) or null.
 */
static void
h_console(
    const struct api_request *req, const char *name, struct api_response *resp)
{
	json_object *vm, *c, *r, *first = NULL;
	char uuid[37];

	if (vm_resolve(name, uuid, resp) == -1)
		return;
	if ((vm = state_vm_json(uuid)) == NULL) {
		resp_error(resp, 404, "not_found", "no such VM");
		return;
	}
	r = json_object_new_object();
	if (json_object_object_get_ex(vm, "consoles", &c) &&
	    json_object_is_type(c, json_type_array)) {
		if (json_object_array_length(c) > 0)
			first = json_object_array_get_idx(c, 0);
		json_object_object_add(r, "type", json_object_get(first));
		json_object_object_add(r, "consoles", json_object_get(c));
	} else {
		json_object_object_add(r, "type", NULL);
		json_object_object_add(r, "consoles", json_object_new_array());
	}
	json_object_object_add(
	    r, "name", json_object_get(json_object_object_get(vm, "name")));
	json_object_put(vm);
	resp_json(resp, 200, r);
}

/* POST /api/vms/{name}/console {"type"}: a ticket and the console URL. */
static void
h_console_ticket(
    const struct api_request *req, const char *name, struct api_response *resp)
{
	char uuid[37];

	if (vm_resolve(name, uuid, resp) == -1)
		return;
	console_api_ticket(req, name, uuid, resp);
}

/* GET /api/vms/{name}/console/{serial,vnc}: the websocket. */
static void
h_console_ws(
    const struct api_request *req, const char *name, struct api_response *resp)
{
	enum console_type type;
	char uuid[37];

	if (console_type_parse(req->seg[req->nseg - 1], &type) == -1) {
		resp_error(resp, 404, "not_found", "no such console");
		return;
	}
	if (vm_resolve(name, uuid, resp) == -1)
		return;
	console_api_ws(req, type, uuid, resp);
}

/* GET /console/{name}?type=&ticket=: the console page. */
static void
h_console_page(
    const struct api_request *req, const char *name, struct api_response *resp)
{
	char uuid[37];

	if (vm_resolve(name, uuid, resp) == -1)
		return;
	console_api_page(req, name, uuid, resp);
}

/* ---- deploys (deploy.c) ------------------------------------------------- */

static void
h_templates(
    const struct api_request *req, const char *name, struct api_response *resp)
{
	resp_json(resp, 200, deploy_templates_json());
}

/* POST /api/vms/create: 202 and the queued job; the work runs elsewhere. */
static void
h_create(
    const struct api_request *req, const char *name, struct api_response *resp)
{
	struct api_error err = {0};
	json_object *o, *job;
	char result[64];

	if (api_body_parse(
		req->content_type, req->body, req->body_len, &o, &err) == -1) {
		api_response_error(resp, &err);
		return;
	}
	if (deploy_create(o, &job, &err) == -1) {
		json_object_put(o);
		snprintf(result, sizeof(result), "error:%s", err.code);
		audit_log(req->peer, "create", NULL, result);
		api_response_error(resp, &err);
		return;
	}
	json_object_put(o);
	audit_log(req->peer, "create",
	    json_object_get_string(json_object_object_get(job, "vm")),
	    json_object_get_string(json_object_object_get(job, "id")));
	resp_json(resp, 202, job);
}

static void
h_jobs(
    const struct api_request *req, const char *name, struct api_response *resp)
{
	resp_json(resp, 200, deploy_jobs_json());
}

static void
h_job(const struct api_request *req, const char *id, struct api_response *resp)
{
	json_object *job;

	if ((job = deploy_job_json(id)) == NULL) {
		resp_error(resp, 404, "not_found", "no such job");
		return;
	}
	resp_json(resp, 200, job);
}

/* DELETE /api/jobs/{id}: cancels; the job cleans up and ends "cancelled". */
static void
h_job_cancel(
    const struct api_request *req, const char *id, struct api_response *resp)
{
	struct api_error err = {0};
	json_object *job;

	if (deploy_cancel(id, &job, &err) == -1) {
		api_response_error(resp, &err);
		return;
	}
	audit_log(req->peer, "cancel",
	    json_object_get_string(json_object_object_get(job, "vm")), id);
	resp_json(resp, 202, job);
}

/* GET /console/<anything but a console page or a servable asset> */
static void
h_console_file(
    const struct api_request *req, const char *name, struct api_response *resp)
{
	resp_error(resp, 404, "not_found", "no such file");
}

/* ---- devices (devices.c) ------------------------------------------------ */

static void
h_host_devices(
    const struct api_request *req, const char *name, struct api_response *resp)
{
	resp_json(resp, 200, devices_host_json());
}

static void
h_vm_devices(
    const struct api_request *req, const char *name, struct api_response *resp)
{
	json_object *o;
	char uuid[37];

	if (vm_resolve(name, uuid, resp) == -1)
		return;
	o = json_object_new_object();
	json_object_object_add(o, "usb", devices_vm_json(uuid));
	json_object_object_add(o, "pci", devices_vm_pci_json(uuid));
	resp_json(resp, 200, o);
}

static void
h_vm_attach(
    const struct api_request *req, const char *name, struct api_response *resp)
{
	static const char *const fields[] = {"usb", "pci", NULL};
	struct api_error err = {0};
	json_object *o, *dev = NULL, *r;
	char uuid[37];
	int rc;

	if (vm_resolve(name, uuid, resp) == -1 ||
	    body_take(req, fields, &o, resp) == -1)
		return;
	rc = devices_attach(uuid, o, &dev, &err);
	json_object_put(o);
	if (rc == -1) {
		action_failed(req, "usb-attach", name, &err, resp);
		return;
	}
	audit_log(req->peer, "usb-attach", name, "ok");
	r = json_object_new_object();
	json_object_object_add(r, "success", json_object_new_boolean(true));
	json_object_object_add(r, "device", dev);
	json_object_object_add(r, "devices", devices_vm_json(uuid));
	json_object_object_add(r, "pci_devices", devices_vm_pci_json(uuid));
	resp_json(resp, 200, r);
}

static void
h_vm_detach(
    const struct api_request *req, const char *name, struct api_response *resp)
{
	static const char *const none[] = {NULL};
	struct api_error err = {0};
	json_object *o;
	char uuid[37];

	if (vm_resolve(name, uuid, resp) == -1 ||
	    body_take(req, none, &o, resp) == -1)
		return;
	json_object_put(o);
	if (devices_detach(uuid, req->seg[req->nseg - 1], &err) == -1) {
		action_failed(req, "usb-detach", name, &err, resp);
		return;
	}
	audit_log(req->peer, "usb-detach", name, "ok");
	resp->status = 204;
}

void
api_handle(const struct api_request *req, int route, struct api_response *resp)
{
	const struct route *r;
	handler_fn fn = NULL;
	char allow[64];

	memset(resp, 0, sizeof(*resp));
	if (route < 0 || route >= NROUTES) {
		/* XXX web UI: static files from conf->web_root go here. */
		resp_error(resp, 404, "not_found", "no such route");
		return;
	}
	r = &routes[route];
	switch (req->method) {
	case AM_GET:
		fn = r->get;
		break;
	case AM_POST:
		fn = r->post;
		break;
	case AM_PUT:
		fn = r->put;
		break;
	case AM_DELETE:
		fn = r->del;
		break;
	}
	if (fn == NULL) {
		resp->allow = route_methods(r);
		snprintf(allow, sizeof(allow), "method not allowed on %s",
		    r->pattern);
		resp_error(resp, 405, "method_not_allowed", allow);
		resp->allow = route_methods(r);
		return;
	}
	if ((r->flags & API_LIBVIRT) && !state_connected()) {
		resp_error(resp, 503, "libvirtd_down",
		    "libvirtd is not reachable; retrying");
		return;
	}
	fn(req, route_param(r, req), resp);
}

/* ---- metrics ------------------------------------------------------------ */

/*
 * Counters are per route pattern (never the raw path: names would blow up the
 * label set) and per status among a fixed list; updated with atomics from
 * every HTTP thread.
 */
static const int metric_codes[] = {
    200, 202, 204, 400, 401, 403, 404, 405, 409, 413, 415, 500, 501, 503, 0};
#define NCODES ((int)nitems(metric_codes))
static const double metric_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NBUCKETS ((int)nitems(metric_buckets))
#define NSLOTS (NROUTES + 1) /* the last: no route matched */

static unsigned long metric_req[NSLOTS][NCODES];
static unsigned long metric_hist[NSLOTS][NBUCKETS + 1];
static unsigned long metric_sum_us[NSLOTS];
static unsigned long metric_total;
/* vmmod.c's trim: told once when requests start after a quiet spell */
static void (*burst_hook)(void);
static bool burst_on;

unsigned long
api_requests_total(void)
{
	return __atomic_load_n(&metric_total, __ATOMIC_RELAXED);
}

void
api_set_burst_hook(void (*fn)(void))
{
	burst_hook = fn;
}

void
api_burst_end(void)
{
	__atomic_store_n(&burst_on, false, __ATOMIC_RELEASE);
}

void
api_metrics_observe(int route, int status, double seconds)
{
	int r = (route < 0 || route >= NROUTES) ? NROUTES : route, c, b;

	for (c = 0; c < NCODES - 1; c++)
		if (metric_codes[c] == status)
			break;
	for (b = 0; b < NBUCKETS; b++)
		if (seconds <= metric_buckets[b])
			break;
	__atomic_fetch_add(&metric_req[r][c], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&metric_total, 1, __ATOMIC_RELAXED);
	if (burst_hook != NULL &&
	    !__atomic_exchange_n(&burst_on, true, __ATOMIC_ACQ_REL))
		burst_hook();
	__atomic_fetch_add(&metric_hist[r][b], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&metric_sum_us[r],
	    (unsigned long)llround(seconds * 1e6), __ATOMIC_RELAXED);
}

static void
buf_printf(char **bufp, size_t *lenp, size_t *capp, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(*bufp + *lenp, *capp - *lenp, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < *capp - *lenp) {
			*lenp += n;
			return;
		}
		*capp = *capp * 2 + n;
		*bufp = xreallocarray(*bufp, *capp, 1);
	}
}

char *
api_metrics_text(const unsigned counts[VS_STARTING + 1],
    unsigned long reconnects, unsigned sse_clients)
{
	size_t len = 0, cap = 8192;
	char *buf = xmalloc(cap), code[8];
	unsigned long n, cum;
	int s, r, c, b;

#define P(...) buf_printf(&buf, &len, &cap, __VA_ARGS__)
	P("# HELP vmmod_vms Domains known to vmmod by state.\n"
	  "# TYPE vmmod_vms gauge\n");
	for (s = 0; s <= VS_STARTING; s++)
		P("vmmod_vms{state=\"%s\"} %u\n", vm_state_name(s), counts[s]);
	P("# HELP vmmod_http_requests_total HTTP requests by route and status.\n"
	  "# TYPE vmmod_http_requests_total counter\n");
	for (r = 0; r < NSLOTS; r++) {
		for (c = 0; c < NCODES; c++) {
			n = __atomic_load_n(
			    &metric_req[r][c], __ATOMIC_RELAXED);
			if (n == 0)
				continue;
			if (metric_codes[c] != 0)
				snprintf(
				    code, sizeof(code), "%d", metric_codes[c]);
			else
				snprintf(code, sizeof(code), "other");
			P("vmmod_http_requests_total{route=\"%s\",code=\"%s\"} "
			  "%lu\n",
			    api_route_pattern(r), code, n);
		}
	}
	P("# HELP vmmod_http_request_duration_seconds Time to produce a "
	  "response.\n"
	  "# TYPE vmmod_http_request_duration_seconds histogram\n");
	for (r = 0; r < NSLOTS; r++) {
		cum = 0;
		for (b = 0; b <= NBUCKETS; b++)
			cum += __atomic_load_n(
			    &metric_hist[r][b], __ATOMIC_RELAXED);
		if (cum == 0)
			continue;
		cum = 0;
		for (b = 0; b <= NBUCKETS; b++) {
			cum += __atomic_load_n(
			    &metric_hist[r][b], __ATOMIC_RELAXED);
			if (b < NBUCKETS)
				P("vmmod_http_request_duration_seconds_bucket{"
				  "route=\"%s\",le=\"%g\"} %lu\n",
				    api_route_pattern(r), metric_buckets[b],
				    cum);
			else
				P("vmmod_http_request_duration_seconds_bucket{"
				  "route=\"%s\",le=\"+Inf\"} %lu\n",
				    api_route_pattern(r), cum);
		}
		P("vmmod_http_request_duration_seconds_sum{route=\"%s\"} "
		  "%.6f\n",
		    api_route_pattern(r),
		    __atomic_load_n(&metric_sum_us[r], __ATOMIC_RELAXED) / 1e6);
		P("vmmod_http_request_duration_seconds_count{route=\"%s\"} "
		  "%lu\n",
		    api_route_pattern(r), cum);
	}
	P("# HELP vmmod_libvirt_reconnects_total Reconnections to libvirtd.\n"
	  "# TYPE vmmod_libvirt_reconnects_total counter\n"
	  "vmmod_libvirt_reconnects_total %lu\n",
	    reconnects);
	P("# HELP vmmod_sse_clients Connected event-stream clients.\n"
	  "# TYPE vmmod_sse_clients gauge\n"
	  "vmmod_sse_clients %u\n",
	    sse_clients);
#undef P
	return buf;
}
