/*
 * The template catalog: one appliance per templates/ID.json, its schema in
 * templates/README.md.  Files are parsed with JSON_TOKENER_STRICT and checked
 * field by field (types, ranges, unknown keys refused); a bad file is logged
 * with the reason and skipped, so one broken template never takes the others
 * (or the daemon) down.  After loading the catalog is read-only.  It turns a
 * template plus a create request into a vm_spec (UEFI per arch, Secure Boot
 * off) and into cloud-init user-data, and answers GET /api/vms/templates.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmmod.h"

#define CATALOG_MAX_FILE (256 * 1024)
#define CATALOG_STR_MAX 4096
#define CATALOG_DISK_GB_MAX 65536
#define CATALOG_DEVICES_MAX 8

/* UEFI code and variable template per arch (Debian's qemu-efi-aarch64, ovmf). */
static const struct {
	const char *code, *vars;
} catalog_fw[] = {
    [VM_ARCH_X86_64] = {"/usr/share/OVMF/OVMF_CODE_4M.fd",
	"/usr/share/OVMF/OVMF_VARS_4M.fd"},
    [VM_ARCH_AARCH64] = {"/usr/share/AAVMF/AAVMF_CODE.fd",
	"/usr/share/AAVMF/AAVMF_VARS.fd"},
};

static const char *const catalog_kinds[] = {
    [CATALOG_DISK_IMAGE] = "disk-image",
    [CATALOG_CLOUD_IMAGE] = "cloud-image",
    [CATALOG_INSTALLER_ISO] = "installer-iso",
};

/* Every key of o must be in keys[]. */
static int
cat_keys(json_object *o, const char *where, const char *const *keys, size_t n,
    char **errp)
{
	size_t i;

	json_object_object_foreach(o, key, val)
	{
		(void)val;
		for (i = 0; i < n; i++)
			if (strcmp(key, keys[i]) == 0)
				break;
		if (i == n)
			return err_set(errp, "%s%s: unknown field", where, key);
	}
	return 0;
}

static bool
cat_text_ok(const char *s, bool multiline)
{
	const unsigned char *p;

	if (!vm_utf8_valid(s, strlen(s)))
		return false;
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if ((*p < 0x20 && !(multiline && *p == '\n')) || *p == 0x7f)
			return false;
	return true;
}

/*
 * A string member: required (absent or null is an error unless nullable,
 * then *out stays NULL).
 */
static int
cat_str(json_object *o, const char *where, const char *key, bool nullable,
    bool multiline, char **out, char **errp)
{
	json_object *v;
	const char *s;

	*out = NULL;
	if (!json_object_object_get_ex(o, key, &v) || v == NULL) {
		if (nullable)
			return 0;
		return err_set(errp, "%s%s: required", where, key);
	}
	if (!json_object_is_type(v, json_type_string))
		return err_set(errp, "%s%s: not a string", where, key);
	s = json_object_get_string(v);
	if ((size_t)json_object_get_string_len(v) != strlen(s))
		return err_set(errp, "%s%s: contains NUL", where, key);
	if (*s == '\0' || strlen(s) > CATALOG_STR_MAX)
		return err_set(errp, "%s%s: empty or too long", where, key);
	if (!cat_text_ok(s, multiline))
		return err_set(
		    errp, "%s%s: control characters or bad UTF-8", where, key);
	*out = xstrdup(s);
	return 0;
}

static int
cat_uint(json_object *o, const char *where, const char *key, unsigned min,
    unsigned max, unsigned *out, char **errp)
{
	json_object *v;
	int64_t n;

	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return err_set(errp, "%s%s: required", where, key);
	if (!json_object_is_type(v, json_type_int))
		return err_set(errp, "%s%s: not an integer", where, key);
	errno = 0;
	n = json_object_get_int64(v);
	if (errno != 0 || n < min || n > max)
		return err_set(
		    errp, "%s%s: out of range %u..%u", where, key, min, max);
	*out = (unsigned)n;
	return 0;
}

static int
cat_bool(
    json_object *o, const char *where, const char *key, bool *out, char **errp)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return err_set(errp, "%s%s: required", where, key);
	if (!json_object_is_type(v, json_type_boolean))
		return err_set(errp, "%s%s: not a boolean", where, key);
	*out = json_object_get_boolean(v);
	return 0;
}

/* Index of the string member's value in names[], -1 and *errp if none. */
static int
cat_enum(json_object *o, const char *where, const char *key,
    const char *const *names, size_t n, char **errp)
{
	char *s;
	size_t i;

	if (cat_str(o, where, key, false, false, &s, errp) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		if (names[i] != NULL && strcmp(s, names[i]) == 0) {
			free(s);
			return (int)i;
		}
	}
	err_set(errp, "%s%s: unknown value \"%s\"", where, key, s);
	free(s);
	return -1;
}

static int
cat_arch(const char *s)
{
	if (strcmp(s, "x86_64") == 0)
		return VM_ARCH_X86_64;
	if (strcmp(s, "aarch64") == 0)
		return VM_ARCH_AARCH64;
	return -1;
}

static bool
cat_hex64(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!isxdigit((unsigned char)s[i]) ||
		    isupper((unsigned char)s[i]))
			return false;
	return s[64] == '\0';
}

/*
 * The digest in a sha256sum(1) file next to a local image: "HEX  NAME".
 * NULL when missing or malformed (the template then stays unpinned).
 */
static char *
cat_sidecar(const char *path)
{
	char *sp, *text, *hex = NULL;

	xasprintf(&sp, "%s.sha256", path);
	text = read_file(sp, 4096, NULL);
	free(sp);
	if (text == NULL)
		return NULL;
	if (strlen(text) >= 64) {
		hex = xstrndup(text, 64);
		if (!cat_hex64(hex) ||
		    (text[64] != '\0' && !isspace((unsigned char)text[64]))) {
			free(hex);
			hex = NULL;
		}
	}
	free(text);
	return hex;
}

/* file://{appliance_dir}/rest -> file://DIR/rest; other URLs unchanged. */
static int
cat_url(char *url, const char *where, const char *appliance_dir, char **outp,
    char **errp)
{
	static const char var[] = "file://{appliance_dir}/";
	const char *path;

	*outp = NULL;
	if (str_has_prefix(url, "https://") || str_has_prefix(url, "http://")) {
		if (strchr(url, ' ') != NULL || strchr(url, '{') != NULL)
			return err_set(errp, "%surl: not a plain URL", where);
		*outp = xstrdup(url);
		return 0;
	}
	if (str_has_prefix(url, var)) {
		if (appliance_dir == NULL || appliance_dir[0] != '/')
			return err_set(errp,
			    "%surl: {appliance_dir} is not configured", where);
		xasprintf(
		    outp, "file://%s/%s", appliance_dir, url + sizeof(var) - 1);
	} else if (str_has_prefix(url, "file:///"))
		*outp = xstrdup(url);
	else
		return err_set(errp, "%surl: only http, https or file", where);
	path = *outp + strlen("file://");
	if (strstr(path, "/../") != NULL || strchr(path, '{') != NULL ||
	    strlen(path) >= SPEC_PATH_MAX) {
		free(*outp);
		*outp = NULL;
		return err_set(errp, "%surl: bad file path", where);
	}
	return 0;
}

static void
cat_image_clear(struct catalog_image *im)
{
	free(im->url);
	free(im->sha256);
	free(im->note);
	free(im->format);
	free(im->version);
	free(im->missing);
	memset(im, 0, sizeof(*im));
}

static int
cat_image(json_object *o, const char *archname, enum catalog_kind kind,
    const char *appliance_dir, struct catalog_image *im, char **errp)
{
	static const char *const keys[] = {"url", "sha256", "sha256_sidecar",
	    "note", "size", "format", "compression", "version"};
	static const char *const comps[] = {"xz"};
	char where[64], *url = NULL, *path;
	json_object *v;
	bool sidecar = false;
	int64_t size;
	int ret = -1;

	snprintf(where, sizeof(where), "images.%s.", archname);
	if (!json_object_is_type(o, json_type_object))
		return err_set(errp, "images.%s: not an object", archname);
	if (cat_keys(o, where, keys, nitems(keys), errp) == -1)
		return -1;
	if (cat_str(o, where, "url", false, false, &url, errp) == -1 ||
	    cat_url(url, where, appliance_dir, &im->url, errp) == -1 ||
	    cat_str(o, where, "sha256", true, false, &im->sha256, errp) == -1 ||
	    cat_str(o, where, "note", true, false, &im->note, errp) == -1 ||
	    cat_str(o, where, "format", false, false, &im->format, errp) ==
		-1 ||
	    cat_str(o, where, "version", false, false, &im->version, errp) ==
		-1)
		goto done;
	if (im->sha256 != NULL && !cat_hex64(im->sha256)) {
		err_set(errp, "%ssha256: not 64 lower-case hex digits", where);
		goto done;
	}
	if (json_object_object_get_ex(o, "sha256_sidecar", &v) &&
	    cat_bool(o, where, "sha256_sidecar", &sidecar, errp) == -1)
		goto done;
	if (sidecar &&
	    (!str_has_prefix(im->url, "file://") || im->sha256 != NULL)) {
		err_set(errp,
		    "%ssha256_sidecar: only for file:// URLs "
		    "with \"sha256\": null",
		    where);
		goto done;
	}
	if (im->sha256 == NULL && im->note == NULL && !sidecar) {
		err_set(errp, "%snote: required when sha256 is null", where);
		goto done;
	}
	if (!json_object_object_get_ex(o, "size", &v)) {
		err_set(errp, "%ssize: required", where);
		goto done;
	}
	if (v != NULL) {
		if (!json_object_is_type(v, json_type_int) ||
		    (size = json_object_get_int64(v)) <= 0) {
			err_set(errp, "%ssize: not a positive integer or null",
			    where);
			goto done;
		}
		im->size = (uint64_t)size;
	}
	if (kind == CATALOG_INSTALLER_ISO ? strcmp(im->format, "iso") != 0
					  : strcmp(im->format, "qcow2") != 0) {
		err_set(errp, "%sformat: must be \"%s\" for a %s", where,
		    kind == CATALOG_INSTALLER_ISO ? "iso" : "qcow2",
		    catalog_kinds[kind]);
		goto done;
	}
	if (!json_object_object_get_ex(o, "compression", &v)) {
		err_set(errp, "%scompression: required", where);
		goto done;
	}
	if (v != NULL) {
		if (cat_enum(o, where, "compression", comps, nitems(comps),
			errp) == -1)
			goto done;
		im->xz = true;
	}
	if (str_has_prefix(im->url, "file://")) {
		path = im->url + strlen("file://");
		/* No host path in the API answer: it is in the log. */
		if (access(path, R_OK) == -1) {
			log_debug("%s: %s: not there", __func__, path);
			im->missing = xstrdup("the image file is missing (for "
					      "the demo: make appliances)");
		} else if (sidecar)
			im->sha256 = cat_sidecar(path);
	}
	ret = 0;
done:
	free(url);
	return ret;
}

void
catalog_template_free(struct catalog_template *t)
{
	size_t i;

	if (t == NULL)
		return;
	free(t->id);
	free(t->name);
	free(t->description);
	free(t->web_scheme);
	free(t->web_path);
	free(t->dns_name);
	strv_free(t->wants_devices);
	free(t->user_data);
	for (i = 0; i < t->nimages; i++)
		cat_image_clear(&t->images[i]);
	for (i = 0; i < nitems(t->unavailable); i++)
		free(t->unavailable[i]);
	free(t);
}

static int
cat_web(json_object *root, struct catalog_template *t, char **errp)
{
	static const char *const keys[] = {"scheme", "port", "path"};
	static const char *const schemes[] = {"http", "https"};
	json_object *o;
	int i;

	if (!json_object_object_get_ex(root, "web", &o))
		return err_set(errp, "web: required (null: no web UI)");
	if (o == NULL)
		return 0;
	if (!json_object_is_type(o, json_type_object))
		return err_set(errp, "web: not an object or null");
	if (cat_keys(o, "web.", keys, nitems(keys), errp) == -1 ||
	    (i = cat_enum(
		 o, "web.", "scheme", schemes, nitems(schemes), errp)) == -1 ||
	    cat_uint(o, "web.", "port", 1, 65535, &t->web_port, errp) == -1 ||
	    cat_str(o, "web.", "path", false, false, &t->web_path, errp) == -1)
		return -1;
	t->web_scheme = xstrdup(schemes[i]);
	if (t->web_path[0] != '/')
		return err_set(errp, "web.path: must start with /");
	return 0;
}

/* "usb:zigbee", "usb:zwave", "pci:gpu": a bus and a lower-case word. */
static bool
cat_device_ok(const char *s)
{
	const char *p;

	if (!str_has_prefix(s, "usb:") && !str_has_prefix(s, "pci:"))
		return false;
	p = s + 4;
	if (*p == '\0' || strlen(p) > 32)
		return false;
	for (; *p != '\0'; p++)
		if (!islower((unsigned char)*p) &&
		    !isdigit((unsigned char)*p) && *p != '-')
			return false;
	return true;
}

static int
cat_devices(json_object *root, struct catalog_template *t, char **errp)
{
	json_object *a, *v;
	size_t i, n;

	t->wants_devices = xcalloc(1, sizeof(char *));
	if (!json_object_object_get_ex(root, "wants_devices", &a))
		return err_set(errp, "wants_devices: required ([] for none)");
	if (!json_object_is_type(a, json_type_array))
		return err_set(errp, "wants_devices: not an array");
	n = json_object_array_length(a);
	if (n > CATALOG_DEVICES_MAX)
		return err_set(errp, "wants_devices: too many");
	free(t->wants_devices);
	t->wants_devices = xcalloc(n + 1, sizeof(char *));
	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(a, i);
		if (!json_object_is_type(v, json_type_string) ||
		    !cat_device_ok(json_object_get_string(v)))
			return err_set(errp,
			    "wants_devices[%zu]: not \"usb:WORD\" or "
			    "\"pci:WORD\"",
			    i);
		t->wants_devices[i] = xstrdup(json_object_get_string(v));
	}
	return 0;
}

static int
cat_cloud_init(json_object *root, struct catalog_template *t, char **errp)
{
	static const char *const keys[] = {"needs_login", "user_data"};
	json_object *o, *ud;

	if (!json_object_object_get_ex(root, "cloud_init", &o))
		return err_set(errp, "cloud_init: required (null: none)");
	if ((o != NULL) != (t->kind == CATALOG_CLOUD_IMAGE))
		return err_set(errp,
		    "cloud_init: an object exactly for a "
		    "cloud-image, else null");
	if (o == NULL)
		return 0;
	if (!json_object_is_type(o, json_type_object))
		return err_set(errp, "cloud_init: not an object");
	if (cat_keys(o, "cloud_init.", keys, nitems(keys), errp) == -1 ||
	    cat_bool(o, "cloud_init.", "needs_login", &t->needs_login, errp) ==
		-1)
		return -1;
	if (!json_object_object_get_ex(o, "user_data", &ud) ||
	    !json_object_is_type(ud, json_type_object))
		return err_set(errp,
		    "cloud_init.user_data: a cloud-config object is required");
	if (json_object_object_get_ex(ud, "hostname", NULL) ||
	    json_object_object_get_ex(ud, "users", NULL))
		return err_set(errp,
		    "cloud_init.user_data: hostname and users "
		    "come from the create request");
	t->cloud_init = true;
	t->user_data = xstrdup(json_object_to_json_string_ext(
	    ud, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	return 0;
}

static int
cat_firmware(json_object *root, struct catalog_template *t, char **errp)
{
	static const char *const keys[] = {"type", "secure_boot"};
	static const char *const types[] = {"uefi"};
	json_object *o;
	bool sb;

	if (!json_object_object_get_ex(root, "firmware", &o) ||
	    !json_object_is_type(o, json_type_object))
		return err_set(errp, "firmware: an object is required");
	if (cat_keys(o, "firmware.", keys, nitems(keys), errp) == -1 ||
	    cat_enum(o, "firmware.", "type", types, nitems(types), errp) ==
		-1 ||
	    cat_bool(o, "firmware.", "secure_boot", &sb, errp) == -1)
		return -1;
	/* HAOS does not boot with it, and vmmod ships no enrolled vars. */
	if (sb)
		return err_set(errp, "firmware.secure_boot: must be false");
	t->uefi = true;
	return 0;
}

static int
cat_images(json_object *root, struct catalog_template *t,
    const char *appliance_dir, char **errp)
{
	json_object *imgs, *un;
	int arch;

	if (!json_object_object_get_ex(root, "images", &imgs) ||
	    !json_object_is_type(imgs, json_type_object))
		return err_set(errp, "images: an object is required");
	json_object_object_foreach(imgs, key, val)
	{
		if ((arch = cat_arch(key)) == -1)
			return err_set(errp, "images.%s: unknown arch", key);
		t->images[t->nimages].arch = arch;
		if (cat_image(val, key, t->kind, appliance_dir,
			&t->images[t->nimages++], errp) == -1)
			return -1;
	}
	if (!json_object_object_get_ex(root, "unavailable", &un))
		un = NULL;
	if (un != NULL && !json_object_is_type(un, json_type_object))
		return err_set(errp, "unavailable: not an object");
	if (un != NULL) {
		json_object_object_foreach(un, ukey, uval)
		{
			if ((arch = cat_arch(ukey)) == -1)
				return err_set(
				    errp, "unavailable.%s: unknown arch", ukey);
			if (!json_object_is_type(uval, json_type_string) ||
			    json_object_get_string_len(uval) == 0 ||
			    !cat_text_ok(json_object_get_string(uval), false))
				return err_set(
				    errp, "unavailable.%s: not a reason", ukey);
			if (t->unavailable[arch] != NULL)
				return err_set(
				    errp, "unavailable.%s: duplicate", ukey);
			t->unavailable[arch] =
			    xstrdup(json_object_get_string(uval));
		}
	}
	if (t->nimages == 0)
		return err_set(errp, "images: no image for any arch");
	for (size_t i = 0; i < t->nimages; i++)
		if (t->unavailable[t->images[i].arch] != NULL)
			return err_set(errp,
			    "unavailable.%s: the template has that image",
			    vm_arch_name(t->images[i].arch));
	return 0;
}

struct catalog_template *
catalog_template_parse(
    const char *id, const char *json, const char *appliance_dir, char **errp)
{
	static const char *const keys[] = {"schema", "id", "name",
	    "description", "kind", "firmware", "memory_mb", "min_memory_mb",
	    "vcpus", "disk_gb", "disk_mode", "web", "dns_name", "wants_devices",
	    "cloud_init", "images", "unavailable"};
	static const char *const modes[] = {
	    [CATALOG_DISK_OVERLAY] = "overlay", [CATALOG_DISK_COPY] = "copy"};
	struct catalog_template *t = xcalloc(1, sizeof(*t));
	struct json_tokener *tok;
	json_object *root = NULL, *v;
	size_t len = strlen(json);
	unsigned schema;
	char *s = NULL;
	int k;

	if (errp != NULL)
		*errp = NULL;
	tok = json_tokener_new();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	root = json_tokener_parse_ex(tok, json, (int)len);
	if (root == NULL ||
	    json_tokener_get_error(tok) != json_tokener_success) {
		err_set(errp, "JSON: %s",
		    json_tokener_error_desc(json_tokener_get_error(tok)));
		goto fail;
	}
	if (json_tokener_get_parse_end(tok) != len) {
		err_set(errp, "JSON: trailing data");
		goto fail;
	}
	if (!json_object_is_type(root, json_type_object)) {
		err_set(errp, "JSON: not an object");
		goto fail;
	}
	/* XXX json-c keeps the last of duplicate keys; strict mode allows them. */
	if (cat_keys(root, "", keys, nitems(keys), errp) == -1 ||
	    cat_uint(root, "", "schema", 1, 1, &schema, errp) == -1 ||
	    cat_str(root, "", "id", false, false, &s, errp) == -1)
		goto fail;
	if (!vm_name_valid_new(id) || strcmp(s, id) != 0) {
		err_set(errp,
		    "id: \"%s\" must be the file name and match "
		    "^[a-z0-9][a-z0-9-]{0,62}$",
		    s);
		goto fail;
	}
	t->id = s;
	s = NULL;
	if (cat_str(root, "", "name", false, false, &t->name, errp) == -1 ||
	    cat_str(root, "", "description", false, false, &t->description,
		errp) == -1 ||
	    (k = cat_enum(root, "", "kind", catalog_kinds,
		 nitems(catalog_kinds), errp)) == -1)
		goto fail;
	t->kind = k;
	if (cat_firmware(root, t, errp) == -1 ||
	    cat_uint(root, "", "memory_mb", SPEC_MEMORY_MIN_MB,
		SPEC_MEMORY_MAX_MB, &t->memory_mb, errp) == -1 ||
	    cat_uint(root, "", "min_memory_mb", SPEC_MEMORY_MIN_MB,
		t->memory_mb, &t->min_memory_mb, errp) == -1 ||
	    cat_uint(root, "", "vcpus", 1, SPEC_VCPUS_MAX, &t->vcpus, errp) ==
		-1 ||
	    cat_uint(root, "", "disk_gb", 1, CATALOG_DISK_GB_MAX, &t->disk_gb,
		errp) == -1)
		goto fail;
	/* An installer writes onto an empty disk: nothing to overlay or copy. */
	if (t->kind == CATALOG_INSTALLER_ISO) {
		if (json_object_object_get_ex(root, "disk_mode", &v)) {
			err_set(errp, "disk_mode: not for an installer-iso");
			goto fail;
		}
		t->disk_mode = CATALOG_DISK_COPY;
	} else {
		if ((k = cat_enum(root, "", "disk_mode", modes, nitems(modes),
			 errp)) == -1)
			goto fail;
		t->disk_mode = k;
	}
	if (cat_web(root, t, errp) == -1 ||
	    cat_str(root, "", "dns_name", false, false, &t->dns_name, errp) ==
		-1)
		goto fail;
	if (!vm_name_valid_new(t->dns_name)) {
		err_set(errp, "dns_name: must match ^[a-z0-9][a-z0-9-]{0,62}$");
		goto fail;
	}
	if (cat_devices(root, t, errp) == -1 ||
	    cat_cloud_init(root, t, errp) == -1 ||
	    cat_images(root, t, appliance_dir, errp) == -1)
		goto fail;
	json_tokener_free(tok);
	json_object_put(root);
	return t;
fail:
	free(s);
	json_tokener_free(tok);
	json_object_put(root);
	catalog_template_free(t);
	return NULL;
}

static int
cat_cmp(const void *a, const void *b)
{
	const struct catalog_template *const *x = a, *const *y = b;

	return strcmp((*x)->id, (*y)->id);
}

static int
cat_dirent_ok(const struct dirent *de)
{
	size_t len = strlen(de->d_name);

	return de->d_name[0] != '.' && len > 5 &&
	    strcmp(de->d_name + len - 5, ".json") == 0;
}

struct catalog *
catalog_load(const char *dir, enum vm_arch host, const char *appliance_dir)
{
	struct catalog *c;
	struct catalog_template *t;
	struct dirent **names;
	char *path, *text, *id, *err;
	int i, n;

	n = scandir(dir, &names, cat_dirent_ok, alphasort);
	if (n == -1) {
		log_warn("%s: %s", __func__, dir);
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->host_arch = host;
	c->v = xcalloc(n + 1, sizeof(*c->v));
	for (i = 0; i < n; i++) {
		xasprintf(&path, "%s/%s", dir, names[i]->d_name);
		id = xstrndup(names[i]->d_name, strlen(names[i]->d_name) - 5);
		text = read_file(path, CATALOG_MAX_FILE, NULL);
		err = NULL;
		if (text == NULL)
			log_warn("template %s skipped: %s", path,
			    "cannot read (or larger than 256 KiB)");
		else if ((t = catalog_template_parse(
			      id, text, appliance_dir, &err)) == NULL)
			log_warnx("template %s skipped: %s", path, err);
		else
			c->v[c->n++] = t;
		free(err);
		free(text);
		free(id);
		free(path);
		free(names[i]);
	}
	free(names);
	qsort(c->v, c->n, sizeof(*c->v), cat_cmp);
	log_info("catalog: %zu templates from %s", c->n, dir);
	return c;
}

void
catalog_free(struct catalog *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n; i++)
		catalog_template_free(c->v[i]);
	free(c->v);
	free(c);
}

const struct catalog_template *
catalog_find(const struct catalog *c, const char *id)
{
	size_t i;

	if (c == NULL || id == NULL)
		return NULL;
	for (i = 0; i < c->n; i++)
		if (strcmp(c->v[i]->id, id) == 0)
			return c->v[i];
	return NULL;
}

const struct catalog_image *
catalog_image(const struct catalog *c, const struct catalog_template *t,
    const char **whyp)
{
	static char why[2][64];
	size_t i;

	for (i = 0; i < t->nimages; i++) {
		if (t->images[i].arch != c->host_arch)
			continue;
		if (t->images[i].missing != NULL) {
			if (whyp != NULL)
				*whyp = t->images[i].missing;
			return NULL;
		}
		return &t->images[i];
	}
	if (whyp != NULL) {
		if (t->unavailable[c->host_arch] != NULL)
			*whyp = t->unavailable[c->host_arch];
		else {
			/* Constant per arch: safe to share between threads. */
			snprintf(why[c->host_arch], sizeof(why[0]),
			    "no %s image", vm_arch_name(c->host_arch));
			*whyp = why[c->host_arch];
		}
	}
	return NULL;
}

static json_object *
cat_strv_json(char **v)
{
	json_object *a = json_object_new_array();

	for (; v != NULL && *v != NULL; v++)
		json_object_array_add(a, json_object_new_string(*v));
	return a;
}

static json_object *
cat_str_or_null(const char *s)
{
	return s != NULL ? json_object_new_string(s) : NULL;
}

static json_object *
cat_template_json(const struct catalog *c, const struct catalog_template *t,
    const struct catalog_host *h)
{
	const struct catalog_image *im;
	const char *why = NULL;
	json_object *o = json_object_new_object(), *a, *w;
	uint64_t need;
	size_t i;
	bool fits_ram, fits_disk;

	im = catalog_image(c, t, &why);
	json_object_object_add(o, "id", json_object_new_string(t->id));
	json_object_object_add(o, "name", json_object_new_string(t->name));
	json_object_object_add(
	    o, "description", json_object_new_string(t->description));
	json_object_object_add(
	    o, "kind", json_object_new_string(catalog_kinds[t->kind]));
	a = json_object_new_array();
	for (i = 0; i < t->nimages; i++)
		json_object_array_add(
		    a, json_object_new_string(vm_arch_name(t->images[i].arch)));
	json_object_object_add(o, "arch", a);
	json_object_object_add(
	    o, "memory_mb", json_object_new_int(t->memory_mb));
	json_object_object_add(
	    o, "min_memory_mb", json_object_new_int(t->min_memory_mb));
	json_object_object_add(o, "vcpus", json_object_new_int(t->vcpus));
	json_object_object_add(o, "disk_gb", json_object_new_int(t->disk_gb));
	json_object_object_add(
	    o, "available", json_object_new_boolean(im != NULL));
	json_object_object_add(o, "why_not", cat_str_or_null(im ? NULL : why));
	/* A budget of 0 is unknown: the create request's guard decides. */
	fits_ram = h->ram_budget_mb == 0 ||
	    h->ram_committed_mb + t->memory_mb <= h->ram_budget_mb;
	need = (uint64_t)t->disk_gb << 30;
	if (im != NULL && str_has_prefix(im->url, "http"))
		need += im->size; /* the cached download */
	fits_disk =
	    h->disk_free_bytes == UINT64_MAX || need <= h->disk_free_bytes;
	json_object_object_add(
	    o, "fits_ram", json_object_new_boolean(fits_ram));
	json_object_object_add(
	    o, "fits_disk", json_object_new_boolean(fits_disk));
	json_object_object_add(o, "pinned",
	    json_object_new_boolean(im != NULL && im->sha256 != NULL));
	json_object_object_add(
	    o, "wants_devices", cat_strv_json(t->wants_devices));
	json_object_object_add(
	    o, "version", cat_str_or_null(im != NULL ? im->version : NULL));
	json_object_object_add(
	    o, "sha256", cat_str_or_null(im != NULL ? im->sha256 : NULL));
	json_object_object_add(
	    o, "note", cat_str_or_null(im != NULL ? im->note : NULL));
	json_object_object_add(o, "size",
	    im != NULL && im->size > 0
		? json_object_new_int64((int64_t)im->size)
		: NULL);
	if (t->web_scheme != NULL) {
		w = json_object_new_object();
		json_object_object_add(
		    w, "scheme", json_object_new_string(t->web_scheme));
		json_object_object_add(
		    w, "port", json_object_new_int(t->web_port));
		json_object_object_add(
		    w, "path", json_object_new_string(t->web_path));
		json_object_object_add(o, "web", w);
	} else
		json_object_object_add(o, "web", NULL);
	json_object_object_add(
	    o, "dns_name", json_object_new_string(t->dns_name));
	json_object_object_add(
	    o, "cloud_init", json_object_new_boolean(t->cloud_init));
	json_object_object_add(
	    o, "needs_login", json_object_new_boolean(t->needs_login));
	json_object_object_add(o, "console",
	    json_object_new_string(
		t->kind == CATALOG_INSTALLER_ISO ? "vnc" : "serial"));
	return o;
}

json_object *
catalog_templates_json(const struct catalog *c, const struct catalog_host *h)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();
	size_t i;

	for (i = 0; c != NULL && i < c->n; i++)
		json_object_array_add(a, cat_template_json(c, c->v[i], h));
	json_object_object_add(o, "templates", a);
	return o;
}

struct vm_spec *
catalog_spec(const struct catalog *c, const struct catalog_template *t,
    const struct catalog_create *req, char **errp)
{
	const struct catalog_image *im;
	struct vm_spec *spec;
	const char *why = NULL;
	unsigned mem;

	if (errp != NULL)
		*errp = NULL;
	if ((im = catalog_image(c, t, &why)) == NULL) {
		err_set(errp, "template %s: not available on %s: %s", t->id,
		    vm_arch_name(c->host_arch), why);
		return NULL;
	}
	if (req->name == NULL || !vm_name_valid_new(req->name)) {
		err_set(errp,
		    "name: must match ^[a-z0-9][a-z0-9-]{0,62}$ "
		    "and not be a route word");
		return NULL;
	}
	mem = req->memory_mb != 0 ? req->memory_mb : t->memory_mb;
	if (mem < t->min_memory_mb) {
		err_set(errp, "memory_mb: %s needs at least %u MB", t->name,
		    t->min_memory_mb);
		return NULL;
	}
	if (req->disk == NULL || req->nvram == NULL || req->mac == NULL) {
		err_set(errp, "disk, nvram and mac are required");
		return NULL;
	}
	if (t->kind != CATALOG_DISK_IMAGE && req->seed_iso == NULL) {
		err_set(errp, "%s: needs a %s", t->id,
		    t->kind == CATALOG_CLOUD_IMAGE ? "cloud-init seed ISO"
						   : "installer ISO");
		return NULL;
	}
	spec = vm_spec_new();
	spec->name = xstrdup(req->name);
	spec->title = xstrdup(t->name);
	spec->description = xstrdup(t->description);
	spec->template_id = xstrdup(t->id);
	spec->arch = c->host_arch;
	spec->virt = req->virt;
	spec->memory_mb = mem;
	spec->vcpus = req->vcpus != 0 ? req->vcpus : t->vcpus;
	spec->autostart = req->autostart;
	/* UEFI, Secure Boot off (domxml writes secure="no"). */
	spec->loader = xstrdup(catalog_fw[spec->arch].code);
	spec->nvram_template = xstrdup(catalog_fw[spec->arch].vars);
	spec->nvram = xstrdup(req->nvram);
	spec->disk = xstrdup(req->disk);
	/*
	 * XXX installer-iso: the ISO rides in the seed cdrom slot, which has no
	 * boot order; the firmware falls back to it only while the disk is
	 * empty.  A vm_spec "cdrom boots first" flag belongs in domxml.c.
	 */
	if (req->seed_iso != NULL)
		spec->seed_iso = xstrdup(req->seed_iso);
	spec->bridge = xstrdup(req->bridge != NULL ? req->bridge : "br0");
	spec->mac = xstrdup(req->mac);
	if (req->ip != NULL)
		spec->filter_ip = xstrdup(req->ip);
	/* A framebuffer without a TCP port; consoles go through libvirt. */
	spec->vnc = true;
	if (vm_spec_validate(spec, errp) == -1) {
		vm_spec_free(spec);
		return NULL;
	}
	return spec;
}

/* Login names cloud-init may create: ^[a-z_][a-z0-9_-]{0,31}$. */
static bool
cat_user_ok(const char *s)
{
	size_t i;

	if (s[0] == '\0' || strlen(s) > 32 ||
	    !(islower((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (i = 1; s[i] != '\0'; i++)
		if (!islower((unsigned char)s[i]) &&
		    !isdigit((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
			return false;
	return strcmp(s, "root") != 0;
}

static bool
cat_sshkey_ok(const char *s)
{
	return strlen(s) < 16384 && cat_text_ok(s, false) &&
	    (str_has_prefix(s, "ssh-") || str_has_prefix(s, "ecdsa-") ||
		str_has_prefix(s, "sk-"));
}

/*
 * The cloud-config is built as a JSON object and written as JSON, which
 * YAML parsers read as flow style: request strings are quoted by json-c,
 * never pasted into YAML text.
 */
char *
catalog_user_data(const struct catalog_template *t,
    const struct catalog_create *req, char **errp)
{
	json_object *ud = NULL, *users, *u, *keys;
	const char *host = req->hostname != NULL ? req->hostname : req->name;
	const char *const *k;
	char *out = NULL;

	if (errp != NULL)
		*errp = NULL;
	if (!t->cloud_init) {
		err_set(errp, "%s: no cloud-init", t->id);
		return NULL;
	}
	if (host == NULL || !vm_name_valid_new(host)) {
		err_set(errp,
		    "cloud_init.hostname: must match "
		    "^[a-z0-9][a-z0-9-]{0,62}$");
		return NULL;
	}
	if (req->user != NULL && !cat_user_ok(req->user)) {
		err_set(errp,
		    "cloud_init.user: must match ^[a-z_][a-z0-9_-]"
		    "{0,31}$ and not be root");
		return NULL;
	}
	if (req->password != NULL &&
	    (strlen(req->password) < 8 || strlen(req->password) > 256 ||
		!cat_text_ok(req->password, false))) {
		err_set(errp,
		    "cloud_init.password: 8 to 256 printable "
		    "characters");
		return NULL;
	}
	for (k = req->ssh_keys; k != NULL && *k != NULL; k++) {
		if (!cat_sshkey_ok(*k)) {
			err_set(errp,
			    "cloud_init.ssh_authorized_keys: not an "
			    "OpenSSH public key line");
			return NULL;
		}
	}
	if ((req->password != NULL || req->ssh_keys != NULL) &&
	    req->user == NULL) {
		err_set(errp,
		    "cloud_init.user: required with a password or "
		    "keys");
		return NULL;
	}
	if (t->needs_login &&
	    (req->user == NULL ||
		(req->password == NULL &&
		    (req->ssh_keys == NULL || req->ssh_keys[0] == NULL)))) {
		err_set(errp,
		    "cloud_init: %s needs a user and a password or "
		    "SSH key",
		    t->name);
		return NULL;
	}
	ud = json_tokener_parse(t->user_data);
	if (ud == NULL) {
		err_set(errp, "%s: bad user_data", t->id);
		return NULL;
	}
	json_object_object_add(ud, "hostname", json_object_new_string(host));
	if (req->user != NULL) {
		users = json_object_new_array();
		u = json_object_new_object();
		json_object_object_add(
		    u, "name", json_object_new_string(req->user));
		json_object_object_add(
		    u, "groups", json_object_new_string("sudo"));
		json_object_object_add(
		    u, "shell", json_object_new_string("/bin/bash"));
		json_object_object_add(u, "lock_passwd",
		    json_object_new_boolean(req->password == NULL));
		/* XXX plain text in the seed ISO: hash it (crypt) once the
		 * seed step links libcrypt. */
		if (req->password != NULL)
			json_object_object_add(u, "plain_text_passwd",
			    json_object_new_string(req->password));
		if (req->ssh_keys != NULL) {
			keys = json_object_new_array();
			for (k = req->ssh_keys; *k != NULL; k++)
				json_object_array_add(
				    keys, json_object_new_string(*k));
			json_object_object_add(u, "ssh_authorized_keys", keys);
		}
		json_object_array_add(users, u);
		json_object_object_add(ud, "users", users);
		json_object_object_add(ud, "ssh_pwauth",
		    json_object_new_boolean(req->password != NULL));
	}
	xasprintf(&out, "#cloud-config\n%s\n",
	    json_object_to_json_string_ext(ud,
		JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
		    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(ud);
	return out;
}
