/*
 * The install manifest: an ordered list of every change guardian-vm-setup
 * made, saved as JSON after each change so an interrupted run can still be
 * undone.  --uninstall walks it backwards.  The only file of the installer
 * that includes json-c; values returned by manifest_get are borrowed from
 * the json-c objects.
 *
 *   {"version": 1, "changes": [
 *     {"type": "file", "path": "/etc/vmmod/vmmod.conf", "previous": null,
 *      "content": "..."},
 *     {"type": "file", "path": "/etc/default/libvirt-guests",
 *      "previous": "...", "previous_mode": 420, "content": "..."},
 *     {"type": "dir", "path": "/etc/vmmod"}, {"type": "package",
 *      "path": "qemu-utils"}, ...]}
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common.h"
#include "setup.h"

struct manifest {
	json_object *root;
	json_object *changes; /* borrowed from root */
};

static struct manifest *
manifest_wrap(json_object *root)
{
	struct manifest *m = xcalloc(1, sizeof(*m));

	m->root = root;
	json_object_object_get_ex(root, "changes", &m->changes);
	return m;
}

struct manifest *
manifest_new(void)
{
	json_object *root = json_object_new_object();

	json_object_object_add(root, "version", json_object_new_int(1));
	json_object_object_add(root, "changes", json_object_new_array());
	return manifest_wrap(root);
}

struct manifest *
manifest_load(const char *path, char **errp)
{
	json_tokener *tok;
	json_object *root, *v, *changes, *e;
	char *text;
	size_t len, i;

	if ((text = read_file(path, 64 << 20, &len)) == NULL) {
		if (errno == ENOENT)
			return manifest_new();
		err_set(errp, "%s: %s", path, strerror(errno));
		return NULL;
	}
	tok = json_tokener_new();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	root = json_tokener_parse_ex(tok, text, len);
	if (json_tokener_get_error(tok) != json_tokener_success) {
		err_set(errp, "%s: not JSON: %s", path,
		    json_tokener_error_desc(json_tokener_get_error(tok)));
		goto fail;
	}
	if (!json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "version", &v) ||
	    !json_object_is_type(v, json_type_int) ||
	    json_object_get_int(v) != 1 ||
	    !json_object_object_get_ex(root, "changes", &changes) ||
	    !json_object_is_type(changes, json_type_array)) {
		err_set(errp, "%s: not a version 1 manifest", path);
		goto fail;
	}
	for (i = 0; i < json_object_array_length(changes); i++) {
		e = json_object_array_get_idx(changes, i);
		if (!json_object_is_type(e, json_type_object) ||
		    !json_object_object_get_ex(e, "type", &v) ||
		    !json_object_is_type(v, json_type_string) ||
		    !json_object_object_get_ex(e, "path", &v) ||
		    !json_object_is_type(v, json_type_string)) {
			err_set(
			    errp, "%s: change %zu lacks type or path", path, i);
			goto fail;
		}
	}
	json_tokener_free(tok);
	free(text);
	return manifest_wrap(root);
fail:
	json_object_put(root);
	json_tokener_free(tok);
	free(text);
	return NULL;
}

void
manifest_free(struct manifest *m)
{
	if (m == NULL)
		return;
	json_object_put(m->root);
	free(m);
}

char *
manifest_json(const struct manifest *m)
{
	char *s;

	xasprintf(&s, "%s\n",
	    json_object_to_json_string_ext(m->root,
		JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
		    JSON_C_TO_STRING_NOSLASHESCAPE));
	return s;
}

int
manifest_save(const struct manifest *m, const char *path, char **errp)
{
	char *s = manifest_json(m);
	int rc = 0;

	if (write_file_atomic(path, s, strlen(s), 0600) == -1)
		rc = err_set(errp, "%s: %s", path, strerror(errno));
	free(s);
	return rc;
}

size_t
manifest_count(const struct manifest *m)
{
	return json_object_array_length(m->changes);
}

static const char *
ment_str(json_object *e, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(e, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static bool
ment_bool(json_object *e, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(e, key, &v) &&
	    json_object_is_type(v, json_type_boolean) &&
	    json_object_get_boolean(v);
}

int
manifest_get(const struct manifest *m, size_t i, struct mentry *me)
{
	json_object *e, *v;

	memset(me, 0, sizeof(*me));
	if (i >= manifest_count(m))
		return -1;
	e = json_object_array_get_idx(m->changes, i);
	me->type = ment_str(e, "type");
	me->path = ment_str(e, "path");
	me->prev = ment_str(e, "previous");
	me->content = ment_str(e, "content");
	me->target = ment_str(e, "target");
	me->guardian = ment_bool(e, "guardian");
	me->keep = ment_bool(e, "keep");
	me->own = ment_bool(e, "manifest");
	me->prev_mode = 0644;
	if (json_object_object_get_ex(e, "previous_mode", &v) &&
	    json_object_is_type(v, json_type_int))
		me->prev_mode = json_object_get_int(v) & 07777;
	return 0;
}

void
manifest_remove(struct manifest *m, size_t i)
{
	if (i < manifest_count(m))
		json_object_array_del_idx(m->changes, i, 1);
}

long
manifest_find(const struct manifest *m, const char *type, const char *path)
{
	struct mentry me;
	size_t i;

	for (i = 0; i < manifest_count(m); i++) {
		manifest_get(m, i, &me);
		if (strcmp(me.type, type) == 0 && strcmp(me.path, path) == 0)
			return (long)i;
	}
	return -1;
}

void
manifest_add(struct manifest *m, const struct mentry *me)
{
	json_object *e = json_object_new_object();

	json_object_object_add(e, "type", json_object_new_string(me->type));
	json_object_object_add(e, "path", json_object_new_string(me->path));
	if (strcmp(me->type, "file") == 0) {
		json_object_object_add(e, "previous",
		    me->prev != NULL ? json_object_new_string(me->prev) : NULL);
		if (me->prev != NULL)
			json_object_object_add(e, "previous_mode",
			    json_object_new_int(me->prev_mode));
		json_object_object_add(e, "content",
		    json_object_new_string(
			me->content != NULL ? me->content : ""));
	}
	if (me->target != NULL)
		json_object_object_add(
		    e, "target", json_object_new_string(me->target));
	if (me->guardian)
		json_object_object_add(
		    e, "guardian", json_object_new_boolean(1));
	if (me->keep)
		json_object_object_add(e, "keep", json_object_new_boolean(1));
	if (me->own)
		json_object_object_add(
		    e, "manifest", json_object_new_boolean(1));
	json_object_array_add(m->changes, e);
}

void
manifest_file(struct manifest *m, const char *path, const char *prev,
    int prev_mode, const char *content, bool guardian)
{
	struct mentry me = {.type = "file",
	    .path = path,
	    .prev = prev,
	    .prev_mode = prev_mode,
	    .content = content,
	    .guardian = guardian};
	json_object *e;
	long i;

	if ((i = manifest_find(m, "file", path)) != -1) {
		/* the original "previous" stays: that is what undo restores */
		e = json_object_array_get_idx(m->changes, i);
		json_object_object_add(
		    e, "content", json_object_new_string(content));
		return;
	}
	manifest_add(m, &me);
}
