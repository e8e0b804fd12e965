/* catalog_template_parse on a fuzzed templates/ID.json. */
#include "fuzz.h"
#include "vmmod.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct catalog_template *t;
	char *json = fuzz_str(data, size), *err = NULL;

	log_init("fuzz", 0);
	t = catalog_template_parse("fuzz", json, "/nonexistent", &err);
	catalog_template_free(t);
	free(err);
	free(json);
	return 0;
}
