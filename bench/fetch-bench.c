/*
 * fetch-bench: one fetch_image() of a file:// URL, timed, for bench/fetch.sh.
 * Prints one line "seconds=S cpu=C image_bytes=N allocated=A nonzero=Z"
 * (C: user + system CPU seconds of the fetch) where A is
 * st_blocks * 512 of the written image and Z the bytes in its non-zero 4 KiB
 * blocks (what a perfectly sparse copy would allocate).
 *
 * usage: fetch-bench URL SHA256 OUT
 */
#include <sys/resource.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmmod.h"

static unsigned long long
nonzero_bytes(const char *path)
{
	static unsigned char buf[1 << 20], zero[4096];
	unsigned long long n = 0;
	ssize_t r, i, k;
	int fd;

	if ((fd = open(path, O_RDONLY)) == -1)
		fatal("open %s", path);
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		for (i = 0; i < r; i += 4096) {
			k = r - i < 4096 ? r - i : 4096;
			if (memcmp(buf + i, zero, (size_t)k) != 0)
				n += (unsigned long long)k;
		}
	close(fd);
	return n;
}

int
main(int argc, char **argv)
{
	struct fetch_req rq = {0};
	struct fetch_result res;
	struct timespec t0, t1;
	struct stat st;
	struct rusage ru;
	char *err = NULL;
	double cpu;

	if (argc != 4) {
		fprintf(stderr, "usage: fetch-bench URL SHA256 OUT\n");
		return 2;
	}
	log_init("fetch-bench", 0);
	rq.url = argv[1];
	rq.sha256 = argv[2];
	rq.comp = FETCH_COMP_XZ;
	rq.out_path = argv[3];
	unlink(argv[3]);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (fetch_image(&rq, NULL, &res, &err) == -1)
		fatalx("fetch_image: %s", err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	getrusage(RUSAGE_SELF, &ru);
	cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	if (stat(argv[3], &st) == -1)
		fatal("stat %s", argv[3]);
	printf("seconds=%.3f cpu=%.3f image_bytes=%llu allocated=%llu "
	       "nonzero=%llu\n",
	    (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
	    cpu, (unsigned long long)res.image_bytes,
	    (unsigned long long)st.st_blocks * 512, nonzero_bytes(argv[3]));
	return 0;
}
