/*
 * leases_load on a fuzzed dnsmasq lease file, and the same bytes as a
 * dhcp-hostsdir reservation file (reserve.c's format).
 */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "vmmod.h"

static char dir[] = "/tmp/gvm-fuzz-leases.XXXXXX";
static char leasefile[64], hostsdir[64];

static void
cleanup(void)
{
	char path[96];

	snprintf(path, sizeof(path), "%s/vm1", hostsdir);
	unlink(path);
	rmdir(hostsdir);
	unlink(leasefile);
	rmdir(dir);
}

static void
write_file(const char *path, const uint8_t *data, size_t size)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lease_map *lm;
	char path[96];

	if (leasefile[0] == '\0') {
		log_init("fuzz", 0);
		if (mkdtemp(dir) == NULL)
			abort();
		snprintf(leasefile, sizeof(leasefile), "%s/leases", dir);
		snprintf(hostsdir, sizeof(hostsdir), "%s/hosts", dir);
		if (mkdir(hostsdir, 0700) != 0)
			abort();
		atexit(cleanup);
	}
	snprintf(path, sizeof(path), "%s/vm1", hostsdir);
	write_file(leasefile, data, size);
	write_file(path, data, size);
	lm = leases_load(leasefile, hostsdir);
	(void)leases_ip_for_mac(lm, "52:54:00:12:34:56");
	leases_free(lm);
	return 0;
}
