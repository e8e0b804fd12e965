/*
 * gvm-domxml: prints the libvirt domain XML that vmmod would define for a
 * VM spec given as JSON (the form of the tests/data/domxml fixtures).  Used by
 * `make demo` and the sandbox tests, so they define guests with the
 * product's own generator instead of hand-written XML.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmmod.h"

int
main(int argc, char *argv[])
{
	struct vm_spec *spec;
	char *json, *xml, *err = NULL;

	log_init("gvm-domxml", 0);
	if (argc != 2 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0) {
		fprintf(argc == 2 ? stdout : stderr,
		    "usage: gvm-domxml SPEC.json   (- reads standard input)\n");
		return argc == 2 ? 0 : 2;
	}
	json = read_file(strcmp(argv[1], "-") == 0 ? "/dev/stdin" : argv[1],
	    API_MAX_BODY, NULL);
	if (json == NULL) {
		log_warn("%s", argv[1]);
		return 1;
	}
	if ((spec = vm_spec_from_json(json, &err)) == NULL ||
	    (xml = domxml_build(spec, &err)) == NULL) {
		log_warnx("%s: %s", argv[1], err ? err : "invalid spec");
		return 1;
	}
	fputs(xml, stdout);
	free(xml);
	free(json);
	vm_spec_free(spec);
	return 0;
}
