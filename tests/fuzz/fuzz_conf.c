/*
 * conf_parse on fuzzed vmmod.conf text.  A text that parses must survive
 * conf_dump and parse again: the dump is what `vmmod -n` shows operators.
 */
#include <stdio.h>

#include "fuzz.h"
#include "vmmod.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vmmod_conf c, again;
	char *text = fuzz_str(data, size), *err = NULL, *dump;

	log_init("fuzz", 0);
	conf_init(&c);
	if (conf_parse(&c, text, "fuzz.conf", &err) == 0) {
		dump = conf_dump(&c);
		conf_init(&again);
		if (conf_parse(&again, dump, "dump", &err) != 0) {
			fprintf(stderr,
			    "conf_dump output does not parse: %s\n%s", err,
			    dump);
			abort();
		}
		conf_clear(&again);
		free(dump);
	}
	free(err);
	conf_clear(&c);
	free(text);
	return 0;
}
