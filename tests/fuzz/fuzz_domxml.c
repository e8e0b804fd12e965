/*
 * VM spec JSON -> domain XML (spec.c, domxml.c).  Whatever a spec holds,
 * the XML libvirt is given must be well-formed (libxml2 parses it back)
 * and must not carry an input string unescaped.  A string counts as
 * checkable when it holds markup ('<', or a '&' that starts no entity)
 * together with a byte domxml's own output never has next to markup
 * ("|~^`{}\$"), so finding it verbatim in the XML can only mean it went in
 * unescaped (checkable() says why '&amp;' in the input does not count).
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>
#include <libxml/parser.h>

#include "fuzz.h"
#include "spec.h"
#include "vmmod.h"

/*
 * Whether finding S verbatim in the XML proves it went in unescaped.  Its
 * escaped form holds S itself when S's '&'s all start entities ("x&amp;"
 * escapes to "x&amp;amp;") or ends S ("x&" is in "x&amp;"), so a '&'
 * counts only when a byte other than a letter or '#' follows it; a '<'
 * always counts (escaped text has none).
 */
static bool
checkable(const char *s)
{
	const char *p;

	if (strpbrk(s, "|~^`{}\\$") == NULL)
		return false;
	if (strchr(s, '<') != NULL)
		return true;
	for (p = strchr(s, '&'); p != NULL; p = strchr(p + 1, '&'))
		if (p[1] != '\0' && !isalpha((unsigned char)p[1]) &&
		    p[1] != '#')
			return true;
	return false;
}

static void
check_strings(json_object *o, const char *xml)
{
	const char *s;
	size_t i;

	switch (json_object_get_type(o)) {
	case json_type_object: {
		json_object_object_foreach(o, key, val)
		{
			(void)key;
			check_strings(val, xml);
		}
		break;
	}
	case json_type_array:
		for (i = 0; i < json_object_array_length(o); i++)
			check_strings(json_object_array_get_idx(o, i), xml);
		break;
	case json_type_string:
		s = json_object_get_string(o);
		if (checkable(s) && strstr(xml, s) != NULL) {
			fprintf(stderr, "unescaped input %s in\n%s", s, xml);
			abort();
		}
		break;
	default:
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vm_spec *spec;
	json_object *in;
	xmlDocPtr doc;
	char *json = fuzz_str(data, size), *err = NULL, *xml;

	log_init("fuzz", 0);
	if ((spec = vm_spec_from_json(json, &err)) == NULL)
		goto done;
	if ((xml = domxml_build(spec, &err)) == NULL)
		goto done;
	doc = xmlReadMemory(xml, strlen(xml), "fuzz.xml", NULL,
	    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (doc == NULL) {
		fprintf(
		    stderr, "domxml_build output is not well-formed:\n%s", xml);
		abort();
	}
	xmlFreeDoc(doc);
	if ((in = json_tokener_parse(json)) != NULL) {
		check_strings(in, xml);
		json_object_put(in);
	}
	free(xml);
done:
	vm_spec_free(spec);
	free(err);
	free(json);
	return 0;
}
