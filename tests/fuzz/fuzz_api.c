/*
 * The HTTP request path in front of the handlers: http_split_path (split,
 * percent-decode), api_route, api_name_check on every segment and
 * api_body_parse; and http_static_lookup, whose file must stay below
 * web_root.  Input: byte 0 picks method and content type, then the
 * path up to the first newline, then the body.
 */
#include "fuzz.h"
#include "vmmod.h"

static const char *
no_arg(void *cls, const char *key)
{
	return NULL;
}

/*
 * The web file a GET path names (before any decoding: vmmod looks the raw
 * path up) stays below web_root: a relative path of [A-Za-z0-9._-] names,
 * none empty or starting with '.'; a version is 16 lowercase hex digits.
 */
static void
static_check(const char *uri)
{
	char rel[256], ver[ASSET_VER];
	const char *p;
	size_t i;

	if (http_static_lookup(uri, rel, sizeof(rel), ver) != SK_ASSET)
		return;
	if (rel[0] == '\0' || rel[strlen(rel) - 1] == '/')
		abort();
	for (p = rel; *p != '\0'; p++) {
		if ((p == rel || p[-1] == '/') && (*p == '/' || *p == '.'))
			abort();
		if (strchr(
			"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			"0123456789._-/",
			*p) == NULL)
			abort();
	}
	for (i = 0; ver[i] != '\0'; i++)
		if (strchr("0123456789abcdef", ver[i]) == NULL)
			abort();
	if (i != 0 && i != ASSET_VER - 1)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned methods[] = {AM_GET, AM_POST, AM_PUT, AM_DELETE};
	static const char *const ctypes[] = {NULL, "application/json",
	    "application/json; charset=utf-8", "text/plain",
	    "application/x-www-form-urlencoded"};
	struct api_request req;
	struct api_error err;
	json_object *obj = NULL;
	const uint8_t *nl;
	char *path;
	unsigned allow = 0;
	int i;

	if (size < 1)
		return 0;
	log_init("fuzz", 0);
	memset(&req, 0, sizeof(req));
	req.method = methods[data[0] & 3];
	req.content_type = ctypes[(data[0] >> 2) % 5];
	req.arg = no_arg;
	data++, size--;
	nl = memchr(data, '\n', size);
	path = fuzz_str(data, nl ? (size_t)(nl - data) : size);
	static_check(path);
	req.nseg = http_split_path(path, req.seg);
	if (req.nseg >= 0) {
		for (i = 0; i < req.nseg; i++) {
			memset(&err, 0, sizeof(err));
			(void)api_name_check(req.seg[i], &err);
		}
		(void)api_route(&req, &allow);
	}
	if (nl != NULL) {
		req.body = (const char *)nl + 1;
		req.body_len = size - (size_t)(nl + 1 - data);
		memset(&err, 0, sizeof(err));
		if (api_body_parse(req.content_type, req.body, req.body_len,
			&obj, &err) == 0)
			json_object_put(obj);
	}
	free(path);
	return 0;
}
