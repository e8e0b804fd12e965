/*
 * "Deploy Home Assistant now": through vmmod's Unix socket (API.md), with
 * libcurl (CURLOPT_UNIX_SOCKET_PATH) for HTTP and json-c for the bodies.
 * GET /api/vms/templates says whether the template's image is pinned by a
 * SHA-256; an unpinned one needs trust-on-first-use consent.  POST
 * /api/vms/create starts the job, GET /api/jobs/ID is followed until it
 * ends, its phase and bytes reported as percent.  A VM of that name that
 * already exists is left alone (the install may run again).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "common.h"
#include "setup.h"

#define DEPLOY_MAX_BODY (1 << 20)

struct buf {
	char *p;
	size_t n;
	bool over;
};

static size_t
on_data(char *data, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;
	size_t k = size * nmemb;

	if (b->n + k > DEPLOY_MAX_BODY) {
		b->over = true;
		return 0;
	}
	b->p = realloc(b->p, b->n + k + 1);
	if (b->p == NULL)
		abort();
	memcpy(b->p + b->n, data, k);
	b->n += k;
	b->p[b->n] = '\0';
	return k;
}

/*
 * METHOD PATH on vmmod's socket with BODY (NULL: none) -> status and the
 * parsed answer (*out, may be NULL when it is no JSON).  -1 when vmmod
 * cannot be reached.
 */
static int
call(const char *sock, const char *method, const char *path, json_object *body,
    long *status, json_object **out, char **errp)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	struct buf b = {0};
	char url[512], cerr[CURL_ERROR_SIZE] = "";
	const char *text = NULL;
	CURLcode rc;

	*out = NULL;
	if (c == NULL)
		return err_replace(errp, "libcurl: cannot start");
	snprintf(url, sizeof(url), "http://vmmod%s", path);
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	h = curl_slist_append(h, "Accept: application/json");
	if (body != NULL) {
		text = json_object_to_json_string_ext(
		    body, JSON_C_TO_STRING_PLAIN);
		h = curl_slist_append(h, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
		if (b.p != NULL)
			*out = json_tokener_parse(b.p);
	} else
		err_replace(errp, "vmmod at %s: %s", sock,
		    b.over		  ? "answer too long"
			: cerr[0] != '\0' ? cerr
					  : curl_easy_strerror(rc));
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	free(b.p);
	return rc == CURLE_OK ? 0 : -1;
}

static const char *
jstr(json_object *o, const char *key)
{
	json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int64_t
jint(json_object *o, const char *key)
{
	json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_int))
		return -1;
	return json_object_get_int64(v);
}

static int
jbool(json_object *o, const char *key)
{
	json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_boolean))
		return -1;
	return json_object_get_boolean(v);
}

/* vmmod's error answer as text. */
static int
api_fail(char **errp, const char *what, long status, json_object *ans)
{
	const char *e = jstr(ans, "error"), *code = jstr(ans, "code");

	return err_replace(errp, "%s: HTTP %ld%s%s%s%s", what, status,
	    code != NULL ? " " : "", code != NULL ? code : "",
	    e != NULL ? ": " : "", e != NULL ? e : "");
}

int
deploy_template_info(const char *sock, const char *tmpl, bool *pinned,
    char **why_not, char **errp)
{
	json_object *ans = NULL, *list, *t;
	long status = 0;
	size_t i;
	int rc = -1;

	*why_not = NULL;
	if (call(sock, "GET", "/api/vms/templates", NULL, &status, &ans,
		errp) == -1)
		return -1;
	if (status != 200 ||
	    !json_object_object_get_ex(ans, "templates", &list) ||
	    !json_object_is_type(list, json_type_array)) {
		api_fail(errp, "GET /api/vms/templates", status, ans);
		goto done;
	}
	for (i = 0; i < json_object_array_length(list); i++) {
		const char *id;

		t = json_object_array_get_idx(list, i);
		if ((id = jstr(t, "id")) == NULL || strcmp(id, tmpl) != 0)
			continue;
		*pinned = jbool(t, "pinned") == 1;
		if (jbool(t, "available") != 1)
			*why_not = xstrdup(jstr(t, "why_not") != NULL
				? jstr(t, "why_not")
				: "not available on this host");
		rc = 0;
		goto done;
	}
	err_replace(errp, "vmmod has no template '%s'", tmpl);
done:
	json_object_put(ans);
	return rc;
}

/* Percent of the whole job from its phase and bytes. */
static int
job_pct(json_object *job)
{
	static const char *phases[] = {"downloading", "verifying", "importing",
	    "resizing", "seeding", "defining", "starting", "done"};
	const char *ph = jstr(job, "phase");
	int64_t done = jint(job, "bytes_done"),
		total = jint(job, "bytes_total");
	size_t i;

	if (ph == NULL)
		return 0;
	if (strcmp(ph, "downloading") == 0)
		return total > 0 && done >= 0 ? (int)(done * 60 / total) : 0;
	for (i = 1; i < sizeof(phases) / sizeof(phases[0]); i++)
		if (strcmp(ph, phases[i]) == 0)
			return 60 + (int)(i * 40 / 7);
	return 0;
}

int
deploy_run(const struct deploy_opts *o, char **errp)
{
	json_object *body, *ans = NULL;
	char path[128], last[160] = "";
	int lastpct = -1, pct;
	const char *id, *state;
	long status = 0;
	time_t end;
	int rc = -1;

	body = json_object_new_object();
	json_object_object_add(
	    body, "template", json_object_new_string(o->tmpl));
	json_object_object_add(body, "name", json_object_new_string(o->name));
	json_object_object_add(body, "start", json_object_new_boolean(1));
	json_object_object_add(body, "autostart", json_object_new_boolean(1));
	if (o->trust_unpinned)
		json_object_object_add(
		    body, "trust_unpinned", json_object_new_boolean(1));
	if (call(o->sock, "POST", "/api/vms/create", body, &status, &ans,
		errp) == -1) {
		json_object_put(body);
		return -1;
	}
	json_object_put(body);
	if (status == 409 && jstr(ans, "code") != NULL &&
	    strcmp(jstr(ans, "code"), "exists") == 0) {
		o->progress(o->arg, 100,
		    "a VM named this exists already: kept "
		    "as it is, not deployed again");
		json_object_put(ans);
		return 0;
	}
	if (status != 202 || (id = jstr(ans, "id")) == NULL) {
		api_fail(errp, "POST /api/vms/create", status, ans);
		json_object_put(ans);
		return -1;
	}
	snprintf(path, sizeof(path), "/api/jobs/%s", id);
	o->progress(o->arg, 0, "job started");
	json_object_put(ans);
	ans = NULL;
	end = time(NULL) + o->timeout_s;
	for (;;) {
		if (call(o->sock, "GET", path, NULL, &status, &ans, errp) == -1)
			break;
		if (status != 200 || (state = jstr(ans, "state")) == NULL) {
			api_fail(errp, path, status, ans);
			break;
		}
		if (strcmp(state, "succeeded") == 0) {
			o->progress(o->arg, 100,
			    jbool(ans, "pinned") == 0
				? "deployed (image trusted on first use: its "
				  "SHA-256 is now pinned)"
				: "deployed");
			rc = 0;
			break;
		}
		if (strcmp(state, "failed") == 0 ||
		    strcmp(state, "cancelled") == 0) {
			err_replace(errp, "the deploy %s: %s", state,
			    jstr(ans, "error") != NULL ? jstr(ans, "error")
						       : "no reason given");
			break;
		}
		char msg[160];

		snprintf(msg, sizeof(msg), "%s %s",
		    jstr(ans, "phase") != NULL ? jstr(ans, "phase") : state,
		    strcmp(state, "queued") == 0 ? "(queued)" : "");
		pct = job_pct(ans);
		if (strcmp(msg, last) != 0 || pct != lastpct)
			o->progress(o->arg, pct, msg);
		snprintf(last, sizeof(last), "%s", msg);
		lastpct = pct;
		if (time(NULL) > end) {
			err_replace(errp,
			    "the deploy did not end within %d s (it goes on "
			    "in vmmod: see the dashboard, job %s)",
			    o->timeout_s, path + 10);
			break;
		}
		json_object_put(ans);
		ans = NULL;
		usleep(500000);
	}
	json_object_put(ans);
	return rc;
}

/*
 * What the consent screen tells about TMPL's image for ARCH ("aarch64",
 * "x86_64"): its URL, version and note, from the template file shipped in
 * DATADIR/templates (vmmod's listing does not give the URL).  Fields not
 * found stay NULL; -1 when the file cannot be read or parsed.
 */
int
deploy_template_image(const char *datadir, const char *tmpl, const char *arch,
    struct deploy_image *im, char **errp)
{
	json_object *root, *images, *a;
	char *path;
	int rc = -1;

	memset(im, 0, sizeof(*im));
	xasprintf(&path, "%s/templates/%s.json", datadir, tmpl);
	if ((root = json_object_from_file(path)) == NULL) {
		err_replace(errp, "%s: %s", path, json_util_get_last_err());
		free(path);
		return -1;
	}
	if (json_object_object_get_ex(root, "images", &images) &&
	    json_object_object_get_ex(images, arch, &a) &&
	    json_object_is_type(a, json_type_object)) {
		if (jstr(a, "url") != NULL)
			im->url = xstrdup(jstr(a, "url"));
		if (jstr(a, "version") != NULL)
			im->version = xstrdup(jstr(a, "version"));
		if (jstr(a, "note") != NULL)
			im->note = xstrdup(jstr(a, "note"));
		im->pinned = jstr(a, "sha256") != NULL;
		rc = 0;
	} else
		err_replace(errp, "%s: no image for %s", path, arch);
	json_object_put(root);
	free(path);
	return rc;
}

void
deploy_image_free(struct deploy_image *im)
{
	free(im->url);
	free(im->version);
	free(im->note);
	memset(im, 0, sizeof(*im));
}
