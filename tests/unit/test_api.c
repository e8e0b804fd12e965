/*
 * api.c: route matching, name and body rules, handlers over a domain table
 * filled by hand (no libvirt: nothing here reaches virt_action), and the
 * Prometheus text.
 */
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "vmmod.h"
#include "testutil.h"

#define UUID1 "bbbbbbbb-0000-0000-0000-000000000001"

/* Builds a request from "METHOD /path" with http.c's own splitter. */
static char *
req_init(struct api_request *req, const char *method, const char *path)
{
	char *copy = xstrdup(path);

	memset(req, 0, sizeof(*req));
	req->method = api_method_bit(method);
	req->nseg = http_split_path(copy, req->seg);
	req->peer = "uid:0";
	return copy;
}

static const char *
route_of(const char *method, const char *path, unsigned *allowp)
{
	struct api_request req;
	char *copy = req_init(&req, method, path);
	unsigned allow;
	int r;

	r = req.nseg == -1 ? -1 : api_route(&req, &allow);
	free(copy);
	if (allowp != NULL)
		*allowp = allow;
	return r == -1 ? NULL : api_route_pattern(r);
}

START_TEST(test_router)
{
	static const struct {
		const char *path, *pattern;
	} cases[] = {
	    {"/healthz", "/healthz"},
	    {"/metrics", "/metrics"},
	    {"/api/vms", "/api/vms"},
	    {"/api/vms/list", "/api/vms/list"},
	    {"/api/vms/status", "/api/vms/status"},
	    {"/api/vms/templates", "/api/vms/templates"},
	    {"/api/vms/homeassistant", "/api/vms/{name}"},
	    {"/api/vms/ubuntu22.04/start", "/api/vms/{name}/start"},
	    {"/api/vms/x/force-stop", "/api/vms/{name}/force-stop"},
	    {"/api/vms/x/delete", "/api/vms/{name}/delete"},
	    {"/api/vms/x/console", "/api/vms/{name}/console"},
	    {"/api/vms/x/console/vnc", "/api/vms/{name}/console/vnc"},
	    {"/api/vms/a%2Fb/start", "/api/vms/{name}/start"},
	    {"/api/vms/", "/api/vms/{name}"},
	    {"/api/vms?x=1", "/api/vms"},
	    {"/api/jobs/j-1", "/api/jobs/{id}"},
	    {"/console/x", "/console/{name}"},
	    {"/console/assets/a.js", "/console/*"},
	    {"/console/assets/a/b.js", "/console/*"},
	    {"/", NULL},
	    {"/api", NULL},
	    {"/api/vms/x/nope", NULL},
	    {"/api/vms/x/start/extra", NULL},
	    {"/console", NULL},
	    {"/healthz/", NULL},
	    {"/a/b/c/d/e/f/g/h/i/j", NULL},
	    {"api/vms", NULL},
	};
	const char *got;
	unsigned allow;
	size_t i;

	for (i = 0; i < nitems(cases); i++) {
		got = route_of("GET", cases[i].path, NULL);
		if (cases[i].pattern == NULL)
			ck_assert_msg(
			    got == NULL, "%s matched %s", cases[i].path, got);
		else
			ck_assert_msg(
			    got != NULL && strcmp(got, cases[i].pattern) == 0,
			    "%s: got %s", cases[i].path, got ? got : "none");
	}
	/* the literal route wins over {name}; its methods decide 405 */
	route_of("DELETE", "/api/vms/status", &allow);
	ck_assert_uint_eq(allow, AM_GET);
	route_of("POST", "/api/vms/x", &allow);
	ck_assert_uint_eq(allow, AM_GET | AM_DELETE);
	route_of("GET", "/api/vms/x/start", &allow);
	ck_assert_uint_eq(allow, AM_POST);
	ck_assert_uint_eq(api_method_bit("HEAD"), AM_GET);
	ck_assert_uint_eq(api_method_bit("PATCH"), 0);
	ck_assert(api_route_flags(0) & API_NOAUTH); /* /healthz */
}
END_TEST

START_TEST(test_names)
{
	static const char *bad[] = {
	    "", "a/b", "a\nb", "a\x01", "\x7f", "tab\there"};
	static const char *good[] = {"ubuntu22.04", "a;$(id)", "<script>", "..",
	    "Bob's \"VM\"", "\xc3\xa9t\xc3\xa9", "templates", "-x"};
	struct api_error err;
	char longname[300];
	size_t i;

	for (i = 0; i < nitems(bad); i++) {
		ck_assert_int_eq(api_name_check(bad[i], &err), -1);
		ck_assert_int_eq(err.status, 400);
		ck_assert_str_eq(err.code, "invalid_name");
	}
	/* legal libvirt names: refused or not found later, never here */
	for (i = 0; i < nitems(good); i++)
		ck_assert_int_eq(api_name_check(good[i], &err), 0);
	memset(longname, 'a', sizeof(longname));
	longname[255] = '\0';
	ck_assert_int_eq(api_name_check(longname, &err), 0);
	longname[255] = 'a';
	longname[256] = '\0';
	ck_assert_int_eq(api_name_check(longname, &err), -1);
}
END_TEST

static int
parse(const char *ctype, const char *body, struct api_error *err)
{
	json_object *o;
	int r;

	memset(err, 0, sizeof(*err));
	r = api_body_parse(ctype, body, strlen(body), &o, err);
	if (r == 0 && *body != '\0')
		ck_assert_ptr_nonnull(o);
	json_object_put(o);
	return r;
}

START_TEST(test_body)
{
	static const char *bad[] = {"{", "{\"a\":1,}", "{\"a\":'x'}", "[1]",
	    "1", "\"s\"", "null", "{} {}", "{}x", "{\"a\":01}", "{\"a\":1}\x01",
	    "{\"a\":\"\xff\"}"};
	const char *J = "application/json";
	struct api_error err;
	json_object *o;
	char *big, deep[200];
	size_t i;

	ck_assert_int_eq(parse(J, "", &err), 0);
	ck_assert_int_eq(parse(J, "{}", &err), 0);
	ck_assert_int_eq(parse(J, " {\"timeout_s\": 5}\r\n", &err), 0);
	ck_assert_int_eq(
	    parse("application/json; charset=utf-8", "{}", &err), 0);
	ck_assert_int_eq(parse("Application/JSON", "{}", &err), 0);
	for (i = 0; i < nitems(bad); i++) {
		ck_assert_msg(
		    parse(J, bad[i], &err) == -1, "accepted %s", bad[i]);
		ck_assert_int_eq(err.status, 400);
		ck_assert_str_eq(err.code, "bad_json");
	}
	/* a NUL inside the body is not the end of it */
	ck_assert_int_eq(api_body_parse(J, "{}\0{}", 5, &o, &err), -1);
	ck_assert_int_eq(parse("text/plain", "{}", &err), -1);
	ck_assert_int_eq(err.status, 415);
	ck_assert_int_eq(parse(NULL, "{}", &err), -1);
	ck_assert_int_eq(err.status, 415);
	ck_assert_int_eq(parse("application/jsonx", "{}", &err), -1);
	ck_assert_int_eq(err.status, 415);

	big = xmalloc(API_MAX_BODY + 2);
	memset(big, ' ', API_MAX_BODY + 1);
	big[0] = '{';
	big[API_MAX_BODY - 1] = '}';
	big[API_MAX_BODY] = '\0';
	ck_assert_int_eq(parse(J, big, &err), 0);
	big[API_MAX_BODY] = ' ';
	big[API_MAX_BODY + 1] = '\0';
	ck_assert_int_eq(parse(J, big, &err), -1);
	ck_assert_int_eq(err.status, 413);
	free(big);

	/* nesting is bounded */
	memset(deep, 0, sizeof(deep));
	for (i = 0; i < 60; i++)
		strcat(deep, i == 0 ? "{\"a\":" : "[");
	for (i = 1; i < 60; i++)
		strcat(deep, "]");
	strcat(deep, "}");
	ck_assert_int_eq(parse(J, deep, &err), -1);
}
END_TEST

/* ---- handlers over a hand-filled table ---------------------------------- */

static struct vmmod_conf tconf;

static void
table_setup(void)
{
	struct host_facts host = {.arch = "x86_64",
	    .accel = "tcg",
	    .ram_total_mb = 8192,
	    .ram_budget_mb = 6144};
	struct vm_facts f;

	memset(&tconf, 0, sizeof(tconf));
	state_init(&tconf, &host);
	memset(&f, 0, sizeof(f));
	strcpy(f.uuid, UUID1);
	f.name = xstrdup("ubuntu22.04");
	f.title = xstrdup("Bob's \"VM\" <b>&\n");
	f.state = VS_SHUTOFF;
	f.vcpus = 1;
	f.memory_mb = 256;
	state_replace_all(&f, 1);
	vm_facts_clear(&f);
	state_set_connected(true);
}

static void
table_teardown(void)
{
	state_set_connected(false);
	state_free();
}

/* Runs one request; returns the status and leaves the answer in *resp. */
static int
run(const char *method, const char *path, const char *body,
    struct api_response *resp)
{
	struct api_request req;
	char *copy = req_init(&req, method, path);
	unsigned allow;
	int route;

	if (body != NULL) {
		req.body = body;
		req.body_len = strlen(body);
		req.content_type = "application/json";
	}
	route = req.nseg == -1 ? -1 : api_route(&req, &allow);
	api_handle(&req, route, resp);
	free(copy);
	return resp->status;
}

static const char *
jstr(json_object *o, const char *key)
{
	return json_object_get_string(json_object_object_get(o, key));
}

/* Status and error code of one request. */
static void
expect(const char *method, const char *path, const char *body, int status,
    const char *code)
{
	struct api_response resp;

	ck_assert_msg(run(method, path, body, &resp) == status,
	    "%s %s: status %d, want %d", method, path, resp.status, status);
	if (code != NULL) {
		ck_assert_ptr_nonnull(resp.json);
		ck_assert_msg(strcmp(jstr(resp.json, "code"), code) == 0,
		    "%s %s: code %s, want %s", method, path,
		    jstr(resp.json, "code"), code);
		ck_assert_ptr_nonnull(jstr(resp.json, "error"));
	}
	api_response_clear(&resp);
}

START_TEST(test_handlers)
{
	struct api_response resp;
	json_object *list;
	const char *s;

	ck_assert_int_eq(run("GET", "/api/vms/ubuntu22.04", NULL, &resp), 200);
	ck_assert_str_eq(jstr(resp.json, "uuid"), UUID1);
	/* libvirt's strings come out as proper JSON */
	s = json_object_to_json_string_ext(resp.json, JSON_C_TO_STRING_PLAIN);
	ck_assert_ptr_nonnull(strstr(s, "\"Bob's \\\"VM\\\" <b>&\\n\""));
	api_response_clear(&resp);
	ck_assert_int_eq(run("GET", "/api/vms/" UUID1, NULL, &resp), 200);
	ck_assert_str_eq(jstr(resp.json, "name"), "ubuntu22.04");
	api_response_clear(&resp);
	/* The list is served from the serialized cache, as text. */
	ck_assert_int_eq(run("GET", "/api/vms", NULL, &resp), 200);
	ck_assert_ptr_null(resp.json);
	ck_assert_str_eq(resp.content_type, "application/json");
	list = json_tokener_parse(resp.text);
	ck_assert_ptr_nonnull(list);
	ck_assert_int_eq(
	    json_object_array_length(json_object_object_get(list, "vms")), 1);
	json_object_put(list);
	api_response_clear(&resp);
	expect("GET", "/api/vms/list", NULL, 200, NULL);
	expect("GET", "/api/host", NULL, 200, NULL);
	ck_assert_int_eq(run("GET", "/healthz", NULL, &resp), 200);
	ck_assert_str_eq(resp.text, "ok\n");
	api_response_clear(&resp);
	ck_assert_int_eq(run("GET", "/api/events", NULL, &resp), 200);
	ck_assert(resp.events);
	api_response_clear(&resp);
	ck_assert_int_eq(
	    run("GET", "/api/vms/ubuntu22.04/console", NULL, &resp), 200);
	ck_assert(json_object_object_get_ex(resp.json, "type", NULL));
	api_response_clear(&resp);

	/* errors: every one is {"error","code"} with a fitting status */
	expect("GET", "/api/vms/nope", NULL, 404, "not_found");
	expect("POST", "/api/vms/nope/start", NULL, 404, "not_found");
	expect("POST", "/api/vms/templates/start", NULL, 404, "not_found");
	expect("POST", "/api/vms/a%3B%24(id)/start", NULL, 404, "not_found");
	expect("POST", "/api/vms/%3Cscript%3E/start", NULL, 404, "not_found");
	expect("POST", "/api/vms/a%2Fb/start", NULL, 400, "invalid_name");
	expect("POST", "/api/vms/a%0Ab/start", NULL, 400, "invalid_name");
	expect("POST", "/api/vms/a%00b/start", NULL, 400, "invalid_name");
	expect("POST", "/api/vms//start", NULL, 400, "invalid_name");
	expect("GET", "/api/nothing", NULL, 404, "not_found");
	ck_assert_int_eq(run("PUT", "/api/vms/ubuntu22.04", NULL, &resp), 405);
	ck_assert_uint_eq(resp.allow, AM_GET | AM_DELETE);
	ck_assert_str_eq(jstr(resp.json, "code"), "method_not_allowed");
	api_response_clear(&resp);
	expect("GET", "/api/vms/ubuntu22.04/start", NULL, 405,
	    "method_not_allowed");
	expect("POST", "/api/vms/ubuntu22.04/start", "{\"x\":1}", 400,
	    "unknown_field");
	expect("POST", "/api/vms/ubuntu22.04/start", "{\"timeout_s\":5}", 400,
	    "unknown_field");
	expect("POST", "/api/vms/ubuntu22.04/start", "{", 400, "bad_json");
	expect("POST", "/api/vms/ubuntu22.04/stop", "{\"timeout_s\":0}", 400,
	    "out_of_range");
	expect("POST", "/api/vms/ubuntu22.04/stop", "{\"timeout_s\":3601}", 400,
	    "out_of_range");
	expect("POST", "/api/vms/ubuntu22.04/stop", "{\"timeout_s\":\"5\"}",
	    400, "bad_type");
	expect("POST", "/api/vms/ubuntu22.04/stop", "{\"timeout_s\":1.5}", 400,
	    "bad_type");
	expect("POST", "/api/vms/ubuntu22.04/stop", "{\"timeout_s\":NaN}", 400,
	    "bad_type");
	expect("POST", "/api/vms/ubuntu22.04/autostart", NULL, 400,
	    "missing_field");
	expect("POST", "/api/vms/ubuntu22.04/autostart", "{\"enabled\":1}", 400,
	    "bad_type");
	expect("POST", "/api/vms/ubuntu22.04/autostart",
	    "{\"enabled\":true,\"x\":1}", 400, "unknown_field");
	expect("POST", "/api/login", "{}", 400, "missing_field");
	expect("POST", "/api/login", "{\"token\":\"x\",\"y\":1}", 400,
	    "unknown_field");
	expect("POST", "/api/login", "{\"token\":\"wrong\"}", 401, "bad_token");

	/* deploys without deploy_init: an empty catalog, no jobs */
	expect("GET", "/api/vms/templates", NULL, 200, NULL);
	expect("POST", "/api/vms/create", "{}", 503, "deploy_unavailable");
	expect("GET", "/api/jobs/j-1", NULL, 404, "not_found");
	expect("DELETE", "/api/jobs/j-1", NULL, 404, "not_found");
	expect("GET", "/api/jobs", NULL, 200, NULL);

	/* consoles: what needs no libvirt stream (console.c) */
	expect("POST", "/api/vms/x/console", "{}", 404, "not_found");
	expect("POST", "/api/vms/ubuntu22.04/console", "{\"type\":\"rdp\"}",
	    400, "bad_field");
	expect("GET", "/api/vms/ubuntu22.04/console/serial", NULL, 426,
	    "bad_handshake");
	expect("GET", "/console/ubuntu22.04", NULL, 401, "no_ticket");

	/* No USB on the build hosts: an empty list, not an error. */
	expect("GET", "/api/host/devices", NULL, 200, NULL);

	/* libvirtd away: VM routes answer 503 at once, status still 200 */
	state_set_connected(false);
	expect("GET", "/api/vms", NULL, 503, "libvirtd_down");
	expect(
	    "POST", "/api/vms/ubuntu22.04/start", NULL, 503, "libvirtd_down");
	ck_assert_int_eq(run("GET", "/api/vms/status", NULL, &resp), 200);
	ck_assert(!json_object_get_boolean(
	    json_object_object_get(resp.json, "libvirtd_running")));
	api_response_clear(&resp);
	expect("GET", "/healthz", NULL, 200, NULL);
}
END_TEST

START_TEST(test_metrics)
{
	unsigned counts[VS_STARTING + 1] = {0};
	regex_t re;
	char *text, *line, *save;
	int route;
	unsigned allow;
	struct api_request req;
	char *copy = req_init(&req, "GET", "/api/vms/x");

	route = api_route(&req, &allow);
	free(copy);
	counts[VS_RUNNING] = 2;
	api_metrics_observe(route, 200, 0.0004);
	api_metrics_observe(route, 404, 0.002);
	api_metrics_observe(-1, 418, 20);
	text = api_metrics_text(counts, 3, 1);
	ck_assert_ptr_nonnull(strstr(text, "vmmod_vms{state=\"running\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(text, "vmmod_vms{state=\"shutoff\"} 0\n"));
	ck_assert_ptr_nonnull(strstr(text,
	    "vmmod_http_requests_total{route=\"/api/vms/{name}\","
	    "code=\"200\"} "));
	ck_assert_ptr_nonnull(strstr(
	    text, "vmmod_http_requests_total{route=\"none\",code=\"other\"} "));
	ck_assert_ptr_nonnull(strstr(text,
	    "vmmod_http_request_duration_seconds_bucket{route=\"/api/vms/"
	    "{name}\",le=\"0.0005\"} "));
	ck_assert_ptr_nonnull(strstr(text,
	    "vmmod_http_request_duration_seconds_bucket{route=\"none\","
	    "le=\"+Inf\"} "));
	ck_assert_ptr_nonnull(
	    strstr(text, "vmmod_libvirt_reconnects_total 3\n"));
	ck_assert_ptr_nonnull(strstr(text, "vmmod_sse_clients 1\n"));
	/* every line: a comment, or name{labels} value */
	ck_assert_int_eq(
	    regcomp(&re,
		"^(# (HELP|TYPE) [a-z_]+ .+|[a-z_]+(\\{[a-z_]+=\"[^\"]*"
		"\"(,[a-z_]+=\"[^\"]*\")*\\})? [0-9.e+]+)$",
		REG_EXTENDED | REG_NOSUB),
	    0);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save))
		ck_assert_msg(regexec(&re, line, 0, NULL, 0) == 0,
		    "bad metrics line: %s", line);
	regfree(&re);
	free(text);
}
END_TEST

Suite *
suite_api(void)
{
	Suite *s = suite_create("api");
	TCase *tc = tcase_create("api");
	TCase *th = tcase_create("handlers");

	tcase_add_test(tc, test_router);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_body);
	tcase_add_test(tc, test_metrics);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(th, table_setup, table_teardown);
	tcase_add_test(th, test_handlers);
	suite_add_tcase(s, th);
	return s;
}
