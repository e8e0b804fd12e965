/*
 * Shared by the libFuzzer targets (tests/fuzz/fuzz_*.c, `make fuzz`): the
 * entry point's prototype and a NUL-terminated copy of the input, since
 * the parsers under test take C strings.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static inline char *
fuzz_str(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

#endif
