/*
 * vmmod/fetch.c against a real HTTP server on 127.0.0.1
 * (tests/tools/fetch-httpd.py, one per test, its request log read back) and
 * file:// URLs.  The image is made once per run: 4 MiB raw with 1 MiB of
 * random 64 KiB extents and zero holes, compressed with `xz -T1 -3`.
 * image_inspect runs the real qemu-img on images made by qemu-img create.
 */
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmmod.h"
#include "testutil.h"

#define RAW_SIZE (4 * 1024 * 1024)
#define DROP_AT 300000

extern char **environ;

/* The fixture, made once in the runner's process (unchecked fixture). */
static char fx_dir[64];
static char fx_raw[128], fx_xz[128];
static char fx_sha[65]; /* of img.raw.xz */
static off_t fx_xz_size; /* bytes */
static size_t fx_nonzero; /* bytes in non-zero 4 KiB blocks of img.raw */

/* Per test: a scratch dir with cache/ and out/, and maybe a server. */
struct env {
	char dir[64], cache[128], out[128];
	char img[128], log[128];
	pid_t srv;
	int port;
};

static void
run(const char *cmd)
{
	int rc = system(cmd);

	if (rc != 0)
		ck_abort_msg("command failed (%d): %s", rc, cmd);
}

static void
sha_of(const char *path, char out[65])
{
	char *cmd;
	FILE *f;

	xasprintf(&cmd, "sha256sum '%s'", path);
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%64s", out), 1);
	pclose(f);
	free(cmd);
}

static void
fixture_make(void)
{
	static unsigned char blk[64 * 1024];
	unsigned char *raw = xcalloc(1, RAW_SIZE);
	char *cmd;
	struct stat st;
	size_t i;
	int fd;

	snprintf(fx_dir, sizeof(fx_dir), "/tmp/gvm-fetch-fx.XXXXXX");
	if (mkdtemp(fx_dir) == NULL)
		abort();
	fd = open("/dev/urandom", O_RDONLY);
	for (i = 0; i < RAW_SIZE / sizeof(blk); i++)
		if (i % 4 == 1) {
			if (read(fd, blk, sizeof(blk)) != sizeof(blk))
				abort();
			memcpy(raw + i * sizeof(blk), blk, sizeof(blk));
		}
	close(fd);
	raw[RAW_SIZE - 5000] = 0x42; /* one lone non-zero block */
	fx_nonzero = RAW_SIZE / 4 + 4096;
	snprintf(fx_raw, sizeof(fx_raw), "%s/img.raw", fx_dir);
	snprintf(fx_xz, sizeof(fx_xz), "%s/img.raw.xz", fx_dir);
	if (write_file_atomic(fx_raw, raw, RAW_SIZE, 0644) == -1)
		abort();
	free(raw);
	xasprintf(&cmd, "xz -T1 -3 -k '%s'", fx_raw);
	if (system(cmd) != 0)
		abort();
	free(cmd);
	sha_of(fx_xz, fx_sha);
	if (stat(fx_xz, &st) == -1)
		abort();
	fx_xz_size = st.st_size;
}

static void
fixture_remove(void)
{
	char *cmd;

	xasprintf(&cmd, "rm -rf '%s'", fx_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", fx_dir);
	free(cmd);
}

static void
env_init(struct env *e)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->dir, sizeof(e->dir), "/tmp/gvm-fetch.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(e->dir));
	snprintf(e->cache, sizeof(e->cache), "%s/cache", e->dir);
	snprintf(e->out, sizeof(e->out), "%s/out", e->dir);
	snprintf(e->img, sizeof(e->img), "%s/out/disk.img", e->dir);
	snprintf(e->log, sizeof(e->log), "%s/server.log", e->dir);
	ck_assert_int_eq(mkdir(e->out, 0755), 0);
}

/* Starts fetch-httpd.py serving the fixture dir; extra args end in NULL. */
static void
srv_start(struct env *e, ...)
{
	char *script = test_data_path("../tools/fetch-httpd.py");
	char pf[128], *argv[24], *buf;
	const char *a;
	va_list ap;
	int n = 0, i;

	snprintf(pf, sizeof(pf), "%s/port", e->dir);
	argv[n++] = "/usr/bin/python3";
	argv[n++] = script;
	argv[n++] = "--root";
	argv[n++] = fx_dir;
	argv[n++] = "--port-file";
	argv[n++] = pf;
	argv[n++] = "--log";
	argv[n++] = e->log;
	va_start(ap, e);
	while ((a = va_arg(ap, const char *)) != NULL && n < 22)
		argv[n++] = (char *)a;
	va_end(ap);
	argv[n] = NULL;
	ck_assert_int_eq(
	    posix_spawn(&e->srv, argv[0], NULL, NULL, argv, environ), 0);
	for (i = 0; i < 1000; i++) {
		if ((buf = read_file(pf, 64, NULL)) != NULL) {
			e->port = atoi(buf);
			free(buf);
			break;
		}
		usleep(10000);
	}
	free(script);
	ck_assert_msg(e->port > 0, "the test HTTP server did not start");
}

static void
env_done(struct env *e)
{
	char *cmd;

	if (e->srv > 0) {
		kill(e->srv, SIGTERM);
		waitpid(e->srv, NULL, 0);
	}
	xasprintf(&cmd, "rm -rf '%s'", e->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", e->dir);
	free(cmd);
}

static char *
url_of(const struct env *e, const char *file)
{
	char *u;

	xasprintf(&u, "http://127.0.0.1:%d/%s", e->port, file);
	return u;
}

static void
req_init(struct fetch_req *rq, const struct env *e, const char *url)
{
	memset(rq, 0, sizeof(*rq));
	rq->url = url;
	rq->sha256 = fx_sha;
	rq->comp = FETCH_COMP_XZ;
	rq->cache_dir = e->cache;
	rq->out_path = e->img;
	rq->connect_timeout_s = 5;
	rq->low_speed_bps = 1000;
	rq->low_speed_time_s = 10;
}

/* Entries in a directory but . and ..; -1 when it does not exist. */
static int
dir_count(const char *path)
{
	struct dirent *d;
	DIR *dp;
	int n = 0;

	if ((dp = opendir(path)) == NULL)
		return -1;
	while ((d = readdir(dp)) != NULL)
		if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, ".."))
			n++;
	closedir(dp);
	return n;
}

static bool
dir_empty(const char *path)
{
	return dir_count(path) <= 0;
}

/* Lines of the server log containing `s`. */
static int
log_count(const struct env *e, const char *s)
{
	char *text = read_file(e->log, 1 << 20, NULL), *p;
	int n = 0;

	if (text == NULL)
		return 0;
	for (p = text; (p = strstr(p, s)) != NULL; p++)
		n++;
	free(text);
	return n;
}

/* The written image is the raw fixture, and sparse. */
static void
check_image(const char *path)
{
	char *want = read_file(fx_raw, RAW_SIZE + 1, NULL);
	size_t len = 0;
	char *got = read_file(path, RAW_SIZE + 1, &len);
	struct stat st;

	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(len, RAW_SIZE);
	ck_assert_msg(memcmp(want, got, RAW_SIZE) == 0, "image differs");
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_msg(
	    (size_t)st.st_blocks * 512 <= fx_nonzero + fx_nonzero / 20,
	    "not sparse: %lld bytes allocated for %zu non-zero bytes",
	    (long long)st.st_blocks * 512, fx_nonzero);
	ck_assert_int_eq(st.st_mode & 0777, 0644);
	free(want);
	free(got);
}

static bool
exists(const char *fmt, ...)
{
	char *path;
	va_list ap;
	bool ok;

	va_start(ap, fmt);
	xvasprintf(&path, fmt, ap);
	va_end(ap);
	ok = access(path, F_OK) == 0;
	free(path);
	return ok;
}

START_TEST(test_fetch_http_pinned)
{
	struct env e;
	struct fetch_req rq;
	struct fetch_progress fp;
	struct fetch_result res;
	char *err = NULL, *url;

	env_init(&e);
	srv_start(&e, NULL);
	url = url_of(&e, "img.raw.xz");
	req_init(&rq, &e, url);
	rq.size = (uint64_t)fx_xz_size;
	fetch_progress_init(&fp);
	ck_assert_msg(fetch_image(&rq, &fp, &res, &err) == 0, "%s", err);
	ck_assert_str_eq(res.sha256, fx_sha);
	ck_assert_uint_eq(res.download_bytes, (uint64_t)fx_xz_size);
	ck_assert_uint_eq(res.image_bytes, RAW_SIZE);
	ck_assert(!res.from_cache);
	ck_assert_int_eq(atomic_load(&fp.phase), FETCH_PHASE_DONE);
	ck_assert_uint_eq(atomic_load(&fp.bytes_done), (uint64_t)fx_xz_size);
	ck_assert_uint_eq(atomic_load(&fp.bytes_total), (uint64_t)fx_xz_size);
	check_image(e.img);
	ck_assert(exists("%s/%s.dl", e.cache, fx_sha));
	ck_assert(!exists("%s/%s.part", e.cache, fx_sha));
	ck_assert_int_eq(dir_count(e.out), 1); /* no temp file left */
	ck_assert_int_eq(log_count(&e, "GET /img.raw.xz"), 1);

	/* Again: decoded from the verified download, no request. */
	unlink(e.img);
	ck_assert_msg(fetch_image(&rq, &fp, &res, &err) == 0, "%s", err);
	ck_assert(res.from_cache);
	check_image(e.img);
	ck_assert_int_eq(log_count(&e, "GET /img.raw.xz"), 1);

	/* A cached download that rotted is noticed and fetched anew. */
	ck_assert_int_eq(truncate(e.img, 0), 0);
	{
		char *dl;
		xasprintf(&dl, "%s/%s.dl", e.cache, fx_sha);
		FILE *f = fopen(dl, "r+");
		ck_assert_ptr_nonnull(f);
		fseek(f, 1000, SEEK_SET);
		fputc(0x55, f);
		fclose(f);
		free(dl);
	}
	ck_assert_msg(fetch_image(&rq, &fp, &res, &err) == 0, "%s", err);
	ck_assert(!res.from_cache);
	check_image(e.img);
	ck_assert_int_eq(log_count(&e, "GET /img.raw.xz"), 2);
	ck_assert_int_eq(fetch_cache_drop(e.cache, fx_sha), 0);
	ck_assert(dir_empty(e.cache));
	free(url);
	env_done(&e);
}
END_TEST

START_TEST(test_fetch_bad_checksum)
{
	char wrong[65], *want, *err = NULL, *url;
	struct env e;
	struct fetch_req rq;
	struct fetch_result res;

	memset(wrong, 'a', 64);
	wrong[64] = '\0';
	env_init(&e);
	srv_start(&e, NULL);
	url = url_of(&e, "img.raw.xz");
	req_init(&rq, &e, url);
	rq.sha256 = wrong;
	ck_assert_int_eq(fetch_image(&rq, NULL, &res, &err), -1);
	xasprintf(
	    &want, "checksum mismatch: expected %s, got %s", wrong, fx_sha);
	ck_assert_str_eq(err, want);
	ck_assert(dir_empty(e.cache));
	ck_assert(dir_empty(e.out));
	free(want);
	free(err);
	free(url);
	env_done(&e);
}
END_TEST

/* Dropped midway: error, .part kept; the retry asks for the rest. */
static void
resume_case(const char *extra)
{
	char *err = NULL, *url, part[256], line[64];
	struct env e;
	struct fetch_req rq;
	struct fetch_result res;
	struct stat st;

	env_init(&e);
	srv_start(&e, "--drop-after", "300000", extra, NULL);
	url = url_of(&e, "img.raw.xz");
	req_init(&rq, &e, url);
	ck_assert_int_eq(fetch_image(&rq, NULL, &res, &err), -1);
	ck_assert_str_eq(err, "connection lost after 300000 bytes");
	free(err);
	snprintf(part, sizeof(part), "%s/%s.part", e.cache, fx_sha);
	ck_assert_int_eq(stat(part, &st), 0);
	ck_assert_int_eq(st.st_size, DROP_AT);
	ck_assert(dir_empty(e.out));

	ck_assert_msg(fetch_image(&rq, NULL, &res, &err) == 0, "%s", err);
	ck_assert_str_eq(res.sha256, fx_sha);
	check_image(e.img);
	/* curl refuses a 200 to a Range request; then it starts over. */
	ck_assert_int_eq(log_count(&e, "range=-"), extra == NULL ? 1 : 2);
	snprintf(line, sizeof(line), "range=bytes=%d- status=%s", DROP_AT,
	    extra == NULL ? "206" : "200");
	ck_assert_msg(log_count(&e, line) == 1, "no \"%s\" in the log", line);
	ck_assert_uint_eq(res.resumed_from, extra == NULL ? DROP_AT : 0);
	ck_assert(!exists("%s", part));
	free(url);
	env_done(&e);
}

START_TEST(test_fetch_resume)
{
	resume_case(NULL);
}
END_TEST

START_TEST(test_fetch_resume_ignored)
{
	resume_case("--no-range"); /* the server answers 200: start over */
}
END_TEST

START_TEST(test_fetch_404)
{
	char *err = NULL, *url;
	struct env e;
	struct fetch_req rq;
	struct fetch_result res;

	env_init(&e);
	srv_start(&e, NULL);
	url = url_of(&e, "missing.xz");
	req_init(&rq, &e, url);
	ck_assert_int_eq(fetch_image(&rq, NULL, &res, &err), -1);
	ck_assert_str_eq(err, "HTTP 404 from the server");
	ck_assert(dir_empty(e.cache));
	ck_assert(dir_empty(e.out));
	free(err);
	free(url);
	env_done(&e);
}
END_TEST

START_TEST(test_fetch_503)
{
	char *err = NULL, *url;
	struct env e;
	struct fetch_req rq;
	struct fetch_result res;

	env_init(&e);
	srv_start(&e, "--status", "503", NULL);
	url = url_of(&e, "img.raw.xz");
	req_init(&rq, &e, url);
	ck_assert_int_eq(fetch_image(&rq, NULL, &res, &err), -1);
	ck_assert_str_eq(err, "HTTP 503 from the server");
	free(err);
	ck_assert_msg(fetch_image(&rq, NULL, &res, &err) == 0, "%s", err);
	check_image(e.img);
	free(url);
	env_done(&e);
}
END_TEST

START_TEST(test_fetch_stall)
{
	char *err = NULL, *url;
	struct env e;
	struct fetch_req rq;
	struct fetch_result res;
	struct timespec t0, t1;
	double el;

	env_init(&e);
	srv_start(&e, "--stall-after", "20000", NULL);
	url = url_of(&e, "img.raw.xz");
	req_init(&rq, &e, url);
	rq.low_speed_bps = 10000;
	rq.low_speed_time_s = 2;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(fetch_image(&rq, NULL, &res, &err), -1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	el = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	ck_assert_str_eq(err, "download stalled: under 10000 bytes/s for 2 s");
	/* Sampled once a second: within the configured time + 1 s. */
	ck_assert_msg(el >= 1.9 && el < 3.5, "stall detected after %.1f s", el);
	ck_assert(dir_empty(e.out));
	/* The bytes before the stall stay for a resume. */
	ck_assert(exists("%s/%s.part", e.cache, fx_sha));
	free(err);
	free(url);
	env_done(&e);
}
END_TEST

static void
cancel_at(void *arg, const struct fetch_progress *fp)
{
	struct fetch_progress *p = (struct fetch_progress *)fp;

	if (atomic_load(&p->bytes_done) >= 200000)
		atomic_store(&p->cancel, true);
}

START_TEST(test_fetch_cancel)
{
	char *err = NULL, *url;
	struct env e;
	struct fetch_req rq;
	struct fetch_progress fp;
	struct fetch_result res;

	env_init(&e);
	srv_start(&e, "--rate", "400000", NULL);
	url = url_of(&e, "img.raw.xz");
	req_init(&rq, &e, url);
	fetch_progress_init(&fp);
	fp.notify = cancel_at;
	ck_assert_int_eq(fetch_image(&rq, &fp, &res, &err), -1);
	ck_assert_str_eq(err, "cancelled");
	ck_assert(dir_empty(e.cache));
	ck_assert(dir_empty(e.out));
	ck_assert_uint_lt(atomic_load(&fp.bytes_done), (uint64_t)fx_xz_size);
	free(err);
	free(url);
	env_done(&e);
}
END_TEST

struct twin {
	struct fetch_req rq;
	struct fetch_result res;
	char out[256];
	char *err;
	int rc;
};

static void *
twin_run(void *arg)
{
	struct twin *t = arg;

	t->rc = fetch_image(&t->rq, NULL, &t->res, &t->err);
	return NULL;
}

START_TEST(test_fetch_dedupe)
{
	struct env e;
	struct twin t[2];
	pthread_t th[2];
	char *url;
	int i;

	env_init(&e);
	srv_start(&e, "--rate", "1500000", NULL);
	url = url_of(&e, "img.raw.xz");
	for (i = 0; i < 2; i++) {
		memset(&t[i], 0, sizeof(t[i]));
		req_init(&t[i].rq, &e, url);
		snprintf(t[i].out, sizeof(t[i].out), "%s/disk%d.img", e.out, i);
		t[i].rq.out_path = t[i].out;
		ck_assert_int_eq(
		    pthread_create(&th[i], NULL, twin_run, &t[i]), 0);
	}
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < 2; i++) {
		ck_assert_msg(t[i].rc == 0, "fetch %d: %s", i, t[i].err);
		ck_assert_str_eq(t[i].res.sha256, fx_sha);
		check_image(t[i].out);
	}
	ck_assert_int_eq(log_count(&e, "GET /img.raw.xz"), 1);
	ck_assert_int_eq(t[0].res.from_cache + t[1].res.from_cache, 1);
	free(url);
	env_done(&e);
}
END_TEST

START_TEST(test_fetch_file_unpinned)
{
	char *err = NULL, *url;
	struct env e;
	struct fetch_req rq;
	struct fetch_result res;

	env_init(&e);
	xasprintf(&url, "file://%s", fx_xz);
	req_init(&rq, &e, url);
	rq.sha256 = NULL;
	ck_assert_msg(fetch_image(&rq, NULL, &res, &err) == 0, "%s", err);
	ck_assert_str_eq(res.sha256, fx_sha); /* reported for pinning */
	check_image(e.img);
	ck_assert(dir_empty(e.cache)); /* file:// is read in place */
	free(url);
	env_done(&e);
}
END_TEST

START_TEST(test_fetch_http_unpinned)
{
	char *err = NULL, *url;
	struct env e;
	struct fetch_req rq;
	struct fetch_result res;

	env_init(&e);
	srv_start(&e, NULL);
	url = url_of(&e, "img.raw.xz");
	req_init(&rq, &e, url);
	rq.sha256 = NULL;
	ck_assert_msg(fetch_image(&rq, NULL, &res, &err) == 0, "%s", err);
	ck_assert_str_eq(res.sha256, fx_sha);
	check_image(e.img);
	ck_assert(exists("%s/%s.dl", e.cache, fx_sha));
	ck_assert_int_eq(dir_count(e.cache), 1);
	free(url);
	env_done(&e);
}
END_TEST

START_TEST(test_fetch_uncompressed)
{
	char *err = NULL, *url, sha[65];
	struct env e;
	struct fetch_req rq;
	struct fetch_result res;

	env_init(&e);
	sha_of(fx_raw, sha);
	xasprintf(&url, "file://%s", fx_raw);
	req_init(&rq, &e, url);
	rq.sha256 = sha;
	rq.comp = FETCH_COMP_NONE;
	ck_assert_msg(fetch_image(&rq, NULL, &res, &err) == 0, "%s", err);
	check_image(e.img);
	free(url);
	env_done(&e);
}
END_TEST

START_TEST(test_fetch_refused)
{
	static const struct {
		const char *url, *sha, *err;
		uint64_t max_bytes, size;
		enum fetch_comp comp;
	} c[] = {
	    {"ftp://127.0.0.1/img.raw.xz", NULL,
		"unsupported URL scheme (http, https and file only)", 0, 0,
		FETCH_COMP_XZ},
	    {"gopher://127.0.0.1/img.raw.xz", NULL,
		"unsupported URL scheme (http, https and file only)", 0, 0,
		FETCH_COMP_XZ},
	    {"H/img.raw.xz", "abc", "sha256 must be 64 hexadecimal digits", 0,
		0, FETCH_COMP_XZ},
	    {"H/img.raw.xz", NULL, "download larger than the limit", 100000, 0,
		FETCH_COMP_XZ},
	    {"F/img.raw.xz", NULL, "download larger than the 100000-byte limit",
		100000, 0, FETCH_COMP_XZ},
	    {"H/img.raw.xz", NULL, NULL, 0, 1234, FETCH_COMP_XZ},
	    {"H/img.raw", NULL, "not an xz file", 0, 0, FETCH_COMP_XZ},
	    {"file:///nonexistent/img.raw.xz", NULL,
		"cannot read the file: URL", 0, 0, FETCH_COMP_XZ},
	};
	char *err, *url, *want;
	struct env e;
	struct fetch_req rq;
	struct fetch_result res;
	size_t i;

	env_init(&e);
	srv_start(&e, NULL);
	for (i = 0; i < nitems(c); i++) {
		/* "H/x": our server's x; "F/x": the fixture's x; else as is */
		if (str_has_prefix(c[i].url, "F/"))
			xasprintf(&url, "file://%s%s", fx_dir, c[i].url + 1);
		else if (str_has_prefix(c[i].url, "H/"))
			xasprintf(&url, "http://127.0.0.1:%d%s", e.port,
			    c[i].url + 1);
		else
			url = xstrdup(c[i].url);
		req_init(&rq, &e, url);
		rq.sha256 = c[i].sha;
		rq.max_bytes = c[i].max_bytes;
		rq.size = c[i].size;
		rq.comp = c[i].comp;
		err = NULL;
		ck_assert_msg(fetch_image(&rq, NULL, &res, &err) == -1,
		    "case %zu passed", i);
		if (c[i].err != NULL)
			want = xstrdup(c[i].err);
		else
			xasprintf(&want,
			    "server announces %lld bytes, the template 1234",
			    (long long)fx_xz_size);
		ck_assert_msg(strcmp(err, want) == 0, "case %zu: %s", i, err);
		ck_assert_msg(dir_empty(e.out), "case %zu left output", i);
		ck_assert_msg(dir_empty(e.cache), "case %zu left cache", i);
		free(want);
		free(err);
		free(url);
	}
	env_done(&e);
}
END_TEST

/*
 * Disk full while writing the image: a 512 KiB tmpfs as the output dir, in a
 * private mount namespace of a child process (never a host mount).
 */
static int
disk_full_child(struct env *e, const char *url)
{
	struct fetch_req rq;
	struct fetch_result res;
	char *err = NULL;

	if (unshare(CLONE_NEWNS) == -1 &&
	    unshare(CLONE_NEWUSER | CLONE_NEWNS) == -1)
		return 77;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1 ||
	    mount("gvm-test", e->out, "tmpfs", 0, "size=512k") == -1)
		return 77;
	req_init(&rq, e, url);
	if (fetch_image(&rq, NULL, &res, &err) != -1)
		return 1;
	if (strcmp(err, "disk full while writing the image") != 0) {
		fprintf(stderr, "disk full: got \"%s\"\n", err);
		return 2;
	}
	if (!dir_empty(e->out))
		return 3;
	return 0;
}

START_TEST(test_fetch_disk_full)
{
	struct env e;
	char *url;
	pid_t pid;
	int st;

	env_init(&e);
	xasprintf(&url, "file://%s", fx_xz);
	if ((pid = fork()) == 0)
		_exit(disk_full_child(&e, url));
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	if (WEXITSTATUS(st) == 77)
		fprintf(stderr,
		    "SKIP test_fetch_disk_full: no mount namespace "
		    "here\n");
	else
		ck_assert_int_eq(WEXITSTATUS(st), 0);
	ck_assert(dir_empty(e.out)); /* the mount was never ours */
	free(url);
	env_done(&e);
}
END_TEST

START_TEST(test_image_inspect)
{
	struct image_info info;
	char *cmd, *err = NULL;
	struct env e;

	env_init(&e);
	xasprintf(&cmd,
	    "cd '%s' && qemu-img create -q -f qcow2 v3.qcow2 8M && "
	    "qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 8M && "
	    "qemu-img create -q -f qcow2 -b v3.qcow2 -F qcow2 child.qcow2 && "
	    "qemu-img create -q -f raw raw.img 3M && "
	    "printf 'QFI\\373' > fake.img && cp v3.qcow2 bad.qcow2 && "
	    "printf '\\0\\0\\0\\143' | "
	    "dd of=bad.qcow2 bs=1 seek=4 conv=notrunc status=none",
	    e.dir);
	run(cmd);
	free(cmd);

	xasprintf(&cmd, "%s/v3.qcow2", e.dir);
	ck_assert_msg(image_inspect(cmd, &info, &err) == 0, "%s", err);
	ck_assert_str_eq(info.format, "qcow2");
	ck_assert_int_eq(info.qcow2_version, 3);
	ck_assert_uint_eq(info.virtual_size, 8 << 20);
	ck_assert_int_eq(image_check_format(&info, "qcow2", &err), 0);
	ck_assert_int_eq(image_check_format(&info, "raw", &err), -1);
	ck_assert_str_eq(err, "the image is qcow2, the template says raw");
	free(err);
	free(cmd);

	xasprintf(&cmd, "%s/v2.qcow2", e.dir);
	ck_assert_msg(image_inspect(cmd, &info, &err) == 0, "%s", err);
	ck_assert_int_eq(info.qcow2_version, 2);
	free(cmd);

	xasprintf(&cmd, "%s/raw.img", e.dir);
	ck_assert_msg(image_inspect(cmd, &info, &err) == 0, "%s", err);
	ck_assert_str_eq(info.format, "raw");
	ck_assert_int_eq(info.qcow2_version, 0);
	ck_assert_uint_eq(info.virtual_size, 3 << 20);
	free(cmd);

	xasprintf(&cmd, "%s/child.qcow2", e.dir);
	ck_assert_int_eq(image_inspect(cmd, &info, &err), -1);
	ck_assert_str_eq(err, "the image refers to a backing file");
	free(err);
	free(cmd);

	/* A truncated qcow2 header is raw data: a qcow2 template refuses it. */
	xasprintf(&cmd, "%s/fake.img", e.dir);
	ck_assert_msg(image_inspect(cmd, &info, &err) == 0, "%s", err);
	ck_assert_str_eq(info.format, "raw");
	ck_assert_int_eq(image_check_format(&info, "qcow2", &err), -1);
	free(err);
	free(cmd);

	/* qcow2 version 99: qemu-img refuses it, so do we. */
	xasprintf(&cmd, "%s/bad.qcow2", e.dir);
	ck_assert_int_eq(image_inspect(cmd, &info, &err), -1);
	ck_assert_str_eq(err, "qemu-img cannot read the image");
	free(err);
	free(cmd);

	ck_assert_int_eq(image_inspect("/nonexistent.img", &info, &err), -1);
	free(err);
	env_done(&e);
}
END_TEST

Suite *
suite_fetch(void)
{
	Suite *s = suite_create("fetch");
	TCase *tc = tcase_create("fetch");

	tcase_add_unchecked_fixture(tc, fixture_make, fixture_remove);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_fetch_http_pinned);
	tcase_add_test(tc, test_fetch_bad_checksum);
	tcase_add_test(tc, test_fetch_resume);
	tcase_add_test(tc, test_fetch_resume_ignored);
	tcase_add_test(tc, test_fetch_404);
	tcase_add_test(tc, test_fetch_503);
	tcase_add_test(tc, test_fetch_stall);
	tcase_add_test(tc, test_fetch_cancel);
	tcase_add_test(tc, test_fetch_dedupe);
	tcase_add_test(tc, test_fetch_file_unpinned);
	tcase_add_test(tc, test_fetch_http_unpinned);
	tcase_add_test(tc, test_fetch_uncompressed);
	tcase_add_test(tc, test_fetch_refused);
	tcase_add_test(tc, test_fetch_disk_full);
	tcase_add_test(tc, test_image_inspect);
	suite_add_tcase(s, tc);
	return s;
}
