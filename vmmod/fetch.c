/*
 * fetch.c: turns a template's image URL into a verified, sparse image file.
 *
 * One streaming pass does everything: libcurl's write callback feeds each
 * chunk to nettle's SHA-256, tees it into the cache's "<key>.part" (http and
 * https only, so that a later attempt can resume), runs it through liblzma's
 * stream decoder and writes the decoded bytes with holes for every all-zero
 * 4 KiB block.  The digest is compared at the end; only then is the image
 * renamed into place and the download kept as "<sha256>.dl".
 *
 * Resume: a .part found by a retry is read once, hashed and decoded again
 * (the image is always rebuilt from byte 0; the decoder state cannot be
 * saved), then curl asks for the rest with a Range request.  A server that
 * refuses the Range (curl reports a 200 as a range error; or 416) gets a
 * fresh download from byte 0.  XXX an unpinned URL whose file changed
 * between attempts would be stitched together; If-Range with the ETag
 * would catch it (a pinned digest always does).
 *
 * Dedupe: fetches of the same cache key (pinned digest, or the URL's hash
 * when unpinned) in this process share one download.  The first becomes the
 * owner; the others wait on a condition variable, mirroring the owner's
 * progress, and then decode the verified "<sha256>.dl" from the cache (the
 * digest is checked again while reading it).  If the owner fails, a waiter
 * takes over.  This keeps one code path for "image already in the cache"
 * and "someone else just downloaded it".
 *
 * image_inspect asks `qemu-img info --output=json` (posix_spawn, argv, no
 * shell, timeout) rather than parsing qcow2 headers here.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <lzma.h>
#include <nettle/sha2.h>

#include "vmmod.h"

#define OBUF_SIZE (1024 * 1024) /* decoded bytes per sparse flush */
#define IBUF_SIZE (1024 * 1024) /* reads of cached files */
#define BLK 4096 /* hole granularity */
#define NOTIFY_NS (200 * 1000000LL)
#define DEF_CONNECT_S 30
#define DEF_LOW_BPS 1024
#define DEF_LOW_S 60
#define DEF_MAX_BYTES (16ULL << 30)
#define DEF_MAX_IMAGE (256ULL << 30)
#define DEF_MEMLIMIT (256ULL << 20)
#define INSPECT_TIMEOUT_MS 30000
#define INSPECT_MAX_OUT (256 * 1024)

extern char **environ;

static const unsigned char zero_blk[BLK];

/* The sparse image writer: decoded bytes collect in buf, file offset off. */
struct sink {
	int fd;
	unsigned char *buf;
	size_t len;
	uint64_t off; /* file offset of buf[0] */
};

/* One pass: hash, tee, decode, write. */
struct pass {
	const struct fetch_req *req;
	struct fetch_progress *prog;
	struct sha256_ctx sha;
	lzma_stream xz;
	bool xz_on;
	int part_fd; /* tee target or -1 */
	bool tee; /* false while re-reading the .part */
	struct sink sink;
	uint64_t in_bytes;
	char *err; /* the first failure, for the caller */
	bool keep_part; /* may a retry resume from the .part? */
	bool bad_data; /* the input itself is wrong (digest, xz, size) */
	bool no_range; /* the server cannot continue from our .part */
	struct timespec t0;
	uint64_t t0_bytes;
	int64_t last_notify;
};

/* The in-process registry of downloads under way (dedupe). */
struct inflight {
	char *key; /* cache_dir/key */
	struct fetch_progress *prog; /* the owner's, mirrored by waiters */
	int status; /* 0 running, 1 verified, -1 failed */
	char sha[65];
	unsigned waiters;
	struct inflight *next;
};
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reg_cond = PTHREAD_COND_INITIALIZER;
static struct inflight *reg_head;
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void
curl_init_once(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatalx("%s: curl_global_init failed", __func__);
}

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void
hex(char *out, const uint8_t *d, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[d[i] >> 4];
		out[2 * i + 1] = digits[d[i] & 15];
	}
	out[2 * n] = '\0';
}

static bool
sha_valid(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
			(s[i] >= 'a' && s[i] <= 'f') ||
			(s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return s[64] == '\0';
}

static int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		if ((n = pwrite(fd, p, len, (off_t)off)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

void
fetch_progress_init(struct fetch_progress *fp)
{
	atomic_init(&fp->cancel, false);
	atomic_init(&fp->phase, FETCH_PHASE_IDLE);
	atomic_init(&fp->bytes_done, 0);
	atomic_init(&fp->bytes_total, 0);
	atomic_init(&fp->rate_bps, 0);
	atomic_init(&fp->eta_s, -1);
	fp->notify = NULL;
	fp->arg = NULL;
}

const char *
fetch_phase_name(int phase)
{
	switch (phase) {
	case FETCH_PHASE_IDLE:
		return "idle";
	case FETCH_PHASE_WAITING:
		return "waiting";
	case FETCH_PHASE_DOWNLOADING:
		return "downloading";
	case FETCH_PHASE_VERIFYING:
		return "verifying";
	case FETCH_PHASE_DONE:
		return "done";
	}
	return "unknown";
}

static void
set_phase(struct fetch_progress *fp, int phase)
{
	atomic_store(&fp->phase, phase);
	if (fp->notify != NULL)
		fp->notify(fp->arg, fp);
}

/* ---- the pass ------------------------------------------------------- */

static int pass_fail(struct pass *p, bool keep_part, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
pass_fail(struct pass *p, bool keep_part, const char *fmt, ...)
{
	va_list ap;

	if (p->err == NULL) {
		va_start(ap, fmt);
		xvasprintf(&p->err, fmt, ap);
		va_end(ap);
		p->keep_part = keep_part;
	}
	return -1;
}

static int
pass_write_error(struct pass *p, const char *what)
{
	p->bad_data = false; /* our disk, not the data */
	if (errno == ENOSPC || errno == EDQUOT)
		return pass_fail(
		    p, false, "disk full while writing the %s", what);
	log_warn("%s: write %s", __func__, what);
	return pass_fail(
	    p, false, "cannot write the %s: %s", what, strerror(errno));
}

static bool
blk_zero(const unsigned char *b, size_t n)
{
	return memcmp(b, zero_blk, n) == 0;
}

/* Writes runs of non-zero blocks; all-zero blocks stay holes. */
static int
sink_flush(struct pass *p)
{
	struct sink *s = &p->sink;
	size_t i = 0, start, n;

	while (i < s->len) {
		n = s->len - i < BLK ? s->len - i : BLK;
		if (blk_zero(s->buf + i, n)) {
			i += n;
			continue;
		}
		start = i;
		while (i < s->len) {
			n = s->len - i < BLK ? s->len - i : BLK;
			if (blk_zero(s->buf + i, n))
				break;
			i += n;
		}
		if (pwrite_all(
			s->fd, s->buf + start, i - start, s->off + start) == -1)
			return pass_write_error(p, "image");
	}
	s->off += s->len;
	s->len = 0;
	return 0;
}

static int
pass_xz_init(struct pass *p)
{
	lzma_stream init = LZMA_STREAM_INIT;
	uint64_t lim = p->req->xz_memlimit ? p->req->xz_memlimit : DEF_MEMLIMIT;

	p->xz = init;
	if (lzma_stream_decoder(&p->xz, lim, LZMA_CONCATENATED) != LZMA_OK) {
		log_warnx("%s: lzma_stream_decoder failed", __func__);
		return pass_fail(p, false, "cannot start the xz decoder");
	}
	p->xz_on = true;
	return 0;
}

static int
xz_error(struct pass *p, lzma_ret r)
{
	uint64_t lim = p->req->xz_memlimit ? p->req->xz_memlimit : DEF_MEMLIMIT;

	p->bad_data = true;
	switch (r) {
	case LZMA_MEMLIMIT_ERROR:
		return pass_fail(p, false,
		    "xz: the image needs more than the %" PRIu64
		    " MiB decoder memory limit",
		    lim >> 20);
	case LZMA_FORMAT_ERROR:
		return pass_fail(p, false, "not an xz file");
	case LZMA_OPTIONS_ERROR:
		return pass_fail(p, false, "xz: unsupported options");
	case LZMA_BUF_ERROR:
		return pass_fail(p, false, "xz: truncated data");
	default:
		return pass_fail(p, false, "xz: corrupt data");
	}
}

/* Decodes (or copies) input into the sink; action LZMA_FINISH at the end. */
static int
pass_decode(struct pass *p, const uint8_t *in, size_t len, lzma_action act)
{
	struct sink *s = &p->sink;
	uint64_t maxi =
	    p->req->max_image_bytes ? p->req->max_image_bytes : DEF_MAX_IMAGE;
	lzma_ret r;
	size_t n;

	if (!p->xz_on) {
		while (len > 0) {
			n = OBUF_SIZE - s->len < len ? OBUF_SIZE - s->len : len;
			memcpy(s->buf + s->len, in, n);
			s->len += n;
			in += n;
			len -= n;
			if (s->off + s->len > maxi)
				goto toobig;
			if (s->len == OBUF_SIZE && sink_flush(p) == -1)
				return -1;
		}
		return 0;
	}
	p->xz.next_in = in;
	p->xz.avail_in = len;
	for (;;) {
		p->xz.next_out = s->buf + s->len;
		p->xz.avail_out = OBUF_SIZE - s->len;
		r = lzma_code(&p->xz, act);
		s->len = OBUF_SIZE - p->xz.avail_out;
		if (s->off + s->len > maxi)
			goto toobig;
		if (r == LZMA_STREAM_END)
			return sink_flush(p) == -1 ? -1 : 1;
		if (r != LZMA_OK)
			return xz_error(p, r);
		if (s->len == OBUF_SIZE) {
			if (sink_flush(p) == -1)
				return -1;
			continue;
		}
		if (p->xz.avail_in == 0 && act == LZMA_RUN)
			return 0;
	}
toobig:
	return pass_fail(
	    p, false, "image larger than the %" PRIu64 "-byte limit", maxi);
}

static void
pass_progress(struct pass *p, bool force)
{
	struct fetch_progress *fp = p->prog;
	uint64_t total = atomic_load(&fp->bytes_total), rate;
	int64_t now = now_ns(), el;

	atomic_store(&fp->bytes_done, p->in_bytes);
	if (!force && now - p->last_notify < NOTIFY_NS)
		return;
	p->last_notify = now;
	el = now - ((int64_t)p->t0.tv_sec * 1000000000LL + p->t0.tv_nsec);
	if (el > 0 && p->in_bytes > p->t0_bytes) {
		rate = (uint64_t)((double)(p->in_bytes - p->t0_bytes) * 1e9 /
		    (double)el);
		atomic_store(&fp->rate_bps, rate);
		if (total >= p->in_bytes && rate > 0)
			atomic_store(&fp->eta_s,
			    (int64_t)((total - p->in_bytes) / rate));
	}
	if (fp->notify != NULL)
		fp->notify(fp->arg, fp);
}

/* One chunk of the download: hash, tee, decode, count. */
static int
pass_feed(struct pass *p, const void *data, size_t len)
{
	uint64_t maxb = p->req->max_bytes ? p->req->max_bytes : DEF_MAX_BYTES;

	if (atomic_load(&p->prog->cancel))
		return pass_fail(p, false, "cancelled");
	if (p->in_bytes + len > maxb)
		return pass_fail(p, false,
		    "download larger than the %" PRIu64 "-byte limit", maxb);
	if (p->req->size != 0 && p->in_bytes + len > p->req->size)
		return pass_fail(p, false,
		    "download larger than the expected %" PRIu64 " bytes",
		    p->req->size);
	sha256_update(&p->sha, len, data);
	if (p->tee && p->part_fd != -1 &&
	    write_all(p->part_fd, data, len) == -1)
		return pass_write_error(p, "download cache");
	if (pass_decode(p, data, len, LZMA_RUN) == -1)
		return -1;
	p->in_bytes += len;
	pass_progress(p, false);
	return 0;
}

/* Feeds a whole local file (a .part being resumed, or a cached download). */
static int
pass_feed_fd(struct pass *p, int fd)
{
	unsigned char *buf = xmalloc(IBUF_SIZE);
	ssize_t n;
	int rc = 0;

	for (;;) {
		n = read(fd, buf, IBUF_SIZE);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			log_warn("%s: read", __func__);
			rc = pass_fail(
			    p, false, "cannot read the cached download");
			break;
		}
		if (n == 0 || (rc = pass_feed(p, buf, (size_t)n)) == -1)
			break;
	}
	free(buf);
	return rc;
}

/*
 * End of input: flush the decoder, compare the digest, size the image.
 * Returns 0, or -1 with p->err set.
 */
static int
pass_finish(struct pass *p, const char *want, char got[65])
{
	uint8_t d[SHA256_DIGEST_SIZE];
	int r;

	set_phase(p->prog, FETCH_PHASE_VERIFYING);
	pass_progress(p, true);
	sha256_digest(&p->sha, sizeof(d), d);
	hex(got, d, sizeof(d));
	p->bad_data = true; /* until proven good */
	if (want != NULL && strcasecmp(want, got) != 0)
		return pass_fail(p, false,
		    "checksum mismatch: expected %s, got %s", want, got);
	if (p->req->size != 0 && p->in_bytes != p->req->size)
		return pass_fail(p, true,
		    "download is %" PRIu64 " bytes, expected %" PRIu64,
		    p->in_bytes, p->req->size);
	if (p->xz_on) {
		if ((r = pass_decode(p, NULL, 0, LZMA_FINISH)) == -1)
			return -1;
		if (r != 1)
			return pass_fail(p, false, "xz: truncated data");
	}
	p->bad_data = false;
	if (!p->xz_on && sink_flush(p) == -1)
		return -1;
	if (ftruncate(p->sink.fd, (off_t)p->sink.off) == -1 ||
	    fdatasync(p->sink.fd) == -1)
		return pass_write_error(p, "image");
	return 0;
}

static void
pass_clear(struct pass *p)
{
	if (p->xz_on)
		lzma_end(&p->xz);
	free(p->sink.buf);
	free(p->err);
}

/* ---- curl ----------------------------------------------------------- */

#define STALL_RING 128 /* seconds of per-second samples */
struct xfer {
	struct pass *p;
	CURL *c;
	uint64_t resume;
	bool started;
	bool stalled;
	int64_t t0; /* transfer start, ns */
	int64_t last_sec; /* last second sampled */
	curl_off_t seen[STALL_RING]; /* bytes received by second N */
};

static size_t
xfer_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	struct pass *p = x->p;
	curl_off_t cl = -1;

	if (!x->started) {
		x->started = true;
		curl_easy_getinfo(
		    x->c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
		if (cl >= 0)
			atomic_store(
			    &p->prog->bytes_total, x->resume + (uint64_t)cl);
		if (cl >= 0 && p->req->size != 0 &&
		    x->resume + (uint64_t)cl != p->req->size) {
			pass_fail(p, false,
			    "server announces %" PRIu64
			    " bytes, the template %" PRIu64,
			    x->resume + (uint64_t)cl, p->req->size);
			return 0;
		}
	}
	if (size * nmemb == 0)
		return 0;
	if (pass_feed(p, ptr, size * nmemb) == -1)
		return 0;
	return size * nmemb;
}

static int
xfer_info(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct xfer *x = arg;
	const struct fetch_req *rq = x->p->req;
	int64_t sec = (now_ns() - x->t0) / 1000000000LL, t, i;
	uint64_t bps = rq->low_speed_bps ? rq->low_speed_bps : DEF_LOW_BPS;

	if (atomic_load(&x->p->prog->cancel))
		return 1;
	/*
	 * curl's own low-speed check averages over ~5 s, so a short burst
	 * followed by silence fails late; this one looks at exactly the last
	 * low_speed_time seconds (curl's stays as the backstop for long ones).
	 */
	t = rq->low_speed_time_s ? rq->low_speed_time_s : DEF_LOW_S;
	for (i = x->last_sec + 1; i <= sec; i++)
		x->seen[i % STALL_RING] = dn;
	x->last_sec = sec;
	if (t < STALL_RING && sec >= t &&
	    (uint64_t)(dn - x->seen[(sec - t) % STALL_RING]) <
		bps * (uint64_t)t) {
		x->stalled = true;
		return 1;
	}
	return 0;
}

/* Runs the transfer from byte `resume`; 0, or -1 with p->err set. */
static int
xfer_run(struct pass *p, const char *url, uint64_t resume)
{
	const struct fetch_req *rq = p->req;
	char ebuf[CURL_ERROR_SIZE] = "";
	struct xfer x = {.p = p, .resume = resume, .t0 = now_ns()};
	curl_off_t connect_us = 0;
	CURLcode rc;
	long code = 0;

	pthread_once(&curl_once, curl_init_once);
	if ((x.c = curl_easy_init()) == NULL)
		return pass_fail(p, true, "cannot start the download");
	curl_easy_setopt(x.c, CURLOPT_URL, url);
	curl_easy_setopt(x.c, CURLOPT_PROTOCOLS_STR, "http,https,file");
	curl_easy_setopt(x.c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(x.c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(x.c, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(x.c, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(x.c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x.c, CURLOPT_USERAGENT, "vmmod/" VMMOD_VERSION);
	curl_easy_setopt(x.c, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(x.c, CURLOPT_BUFFERSIZE, 512L * 1024);
	curl_easy_setopt(x.c, CURLOPT_CONNECTTIMEOUT,
	    (long)(rq->connect_timeout_s ? rq->connect_timeout_s
					 : DEF_CONNECT_S));
	curl_easy_setopt(x.c, CURLOPT_LOW_SPEED_LIMIT,
	    (long)(rq->low_speed_bps ? rq->low_speed_bps : DEF_LOW_BPS));
	curl_easy_setopt(x.c, CURLOPT_LOW_SPEED_TIME,
	    (long)(rq->low_speed_time_s ? rq->low_speed_time_s : DEF_LOW_S));
	curl_easy_setopt(x.c, CURLOPT_MAXFILESIZE_LARGE,
	    (curl_off_t)(rq->max_bytes ? rq->max_bytes : DEF_MAX_BYTES));
	if (x.resume > 0)
		curl_easy_setopt(
		    x.c, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)x.resume);
	curl_easy_setopt(x.c, CURLOPT_WRITEFUNCTION, xfer_write);
	curl_easy_setopt(x.c, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(x.c, CURLOPT_XFERINFOFUNCTION, xfer_info);
	curl_easy_setopt(x.c, CURLOPT_XFERINFODATA, &x);
	curl_easy_setopt(x.c, CURLOPT_NOPROGRESS, 0L);

	rc = curl_easy_perform(x.c);
	curl_easy_getinfo(x.c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(x.c, CURLINFO_CONNECT_TIME_T, &connect_us);
	curl_easy_cleanup(x.c);
	if (rc == CURLE_OK)
		return 0;
	if (p->err != NULL) /* ours, from the write callback */
		return -1;
	log_warnx("%s: %s: %s", __func__, curl_easy_strerror(rc), ebuf);
	if (resume > 0 && (rc == CURLE_RANGE_ERROR || code == 416))
		p->no_range = true; /* 200 or 416 to our Range request */
	switch (rc) {
	case CURLE_ABORTED_BY_CALLBACK:
		if (!x.stalled)
			return pass_fail(p, false, "cancelled");
		/* FALLTHROUGH */
	case CURLE_OPERATION_TIMEDOUT:
		if (connect_us == 0)
			return pass_fail(p, true, "connection timed out");
		return pass_fail(p, true,
		    "download stalled: under %u bytes/s for %u s",
		    rq->low_speed_bps ? rq->low_speed_bps : DEF_LOW_BPS,
		    rq->low_speed_time_s ? rq->low_speed_time_s : DEF_LOW_S);
	case CURLE_HTTP_RETURNED_ERROR:
		return pass_fail(p, code != 404 && code != 410 && code != 416,
		    "HTTP %ld from the server", code);
	case CURLE_UNSUPPORTED_PROTOCOL:
		return pass_fail(p, false,
		    "unsupported URL scheme (http, https and file only)");
	case CURLE_FILESIZE_EXCEEDED:
		return pass_fail(p, false, "download larger than the limit");
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
		return pass_fail(p, true,
		    "connection lost after %" PRIu64 " bytes", p->in_bytes);
	case CURLE_FILE_COULDNT_READ_FILE:
		return pass_fail(p, false, "cannot read the file: URL");
	default:
		return pass_fail(
		    p, true, "download failed: %s", curl_easy_strerror(rc));
	}
}

/* ---- one fetch ------------------------------------------------------ */

struct job {
	const struct fetch_req *req;
	struct fetch_progress *prog;
	struct fetch_result *res;
	char *tmp_out; /* out_path.tmp-XXXXXX */
	int out_fd;
};

static int
pass_begin(struct pass *p, struct job *j)
{
	memset(p, 0, sizeof(*p));
	p->req = j->req;
	p->prog = j->prog;
	p->part_fd = -1;
	p->sink.fd = j->out_fd;
	p->sink.buf = xmalloc(OBUF_SIZE);
	p->last_notify = now_ns();
	clock_gettime(CLOCK_MONOTONIC, &p->t0);
	sha256_init(&p->sha);
	atomic_store(&j->prog->bytes_done, 0);
	atomic_store(&j->prog->bytes_total, j->req->size);
	if (j->req->comp == FETCH_COMP_XZ)
		return pass_xz_init(p);
	return 0;
}

/* Decodes a verified download kept in the cache.  0, -1, or 1: unusable. */
static int
from_cache(struct job *j, const char *path, const char *sha, char **errp)
{
	struct pass p;
	struct stat st;
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 1;
	if (fstat(fd, &st) == -1 ||
	    (j->req->size && (uint64_t)st.st_size != j->req->size)) {
		close(fd);
		return 1;
	}
	rc = pass_begin(&p, j);
	atomic_store(&j->prog->bytes_total, (uint64_t)st.st_size);
	set_phase(j->prog, FETCH_PHASE_DOWNLOADING);
	if (rc == 0)
		rc = pass_feed_fd(&p, fd);
	if (rc == 0)
		rc = pass_finish(&p, sha, j->res->sha256);
	close(fd);
	if (rc == -1 && p.bad_data) {
		log_warnx("%s: cached %s is corrupt; downloading again",
		    __func__, path);
		unlink(path);
		if (ftruncate(j->out_fd, 0) == -1)
			log_warn("%s: ftruncate", __func__);
		pass_clear(&p);
		return 1;
	}
	if (rc == 0) {
		j->res->download_bytes = p.in_bytes;
		j->res->image_bytes = p.sink.off;
		j->res->from_cache = true;
	} else
		*errp = xstrdup(p.err ? p.err : "cannot decode the image");
	pass_clear(&p);
	return rc;
}

/*
 * Downloads url (resuming part_path if present, or straight through when
 * part_path is NULL: file://).  On success a download with a .part is
 * renamed to <cache>/<sha>.dl.
 */
static int
download(struct job *j, const char *part_path, char **errp)
{
	const struct fetch_req *rq = j->req;
	struct pass p;
	struct stat st;
	char *dl = NULL;
	uint64_t resume = 0;
	int rc, attempt;

	for (attempt = 0; attempt < 2; attempt++) {
		rc = pass_begin(&p, j);
		set_phase(j->prog, FETCH_PHASE_DOWNLOADING);
		if (rc == 0 && part_path != NULL) {
			p.part_fd =
			    open(part_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
			if (p.part_fd == -1) {
				log_warn("%s: open %s", __func__, part_path);
				rc = pass_fail(&p, false,
				    "cannot write the download cache");
			}
		}
		if (rc == 0 && part_path != NULL && attempt == 0 &&
		    fstat(p.part_fd, &st) == 0 && st.st_size > 0) {
			/* Re-establish hash and decoder from the .part. */
			log_info("%s: resuming %s at %jd bytes", __func__,
			    rq->url, (intmax_t)st.st_size);
			rc = pass_feed_fd(&p, p.part_fd);
			resume = p.in_bytes;
		}
		p.tee = true;
		if (rc == 0 && (rq->size == 0 || resume < rq->size))
			rc = xfer_run(&p, rq->url, resume);
		if (rc == -1 && p.no_range) {
			/* The server cannot continue the .part: start over. */
			log_info("%s: %s: no resume, starting over", __func__,
			    rq->url);
			close(p.part_fd);
			unlink(part_path);
			pass_clear(&p);
			if (ftruncate(j->out_fd, 0) == -1)
				log_warn("%s: ftruncate", __func__);
			resume = 0;
			continue;
		}
		break;
	}
	if (rc == 0)
		rc = pass_finish(&p, rq->sha256, j->res->sha256);
	if (p.part_fd != -1)
		close(p.part_fd);
	if (rc == 0 && part_path != NULL) {
		xasprintf(&dl, "%s/%s.dl", rq->cache_dir, j->res->sha256);
		if (rename(part_path, dl) == -1) {
			log_warn("%s: rename %s", __func__, dl);
			unlink(part_path);
		}
		free(dl);
	} else if (rc == -1 && part_path != NULL) {
		if (!p.keep_part ||
		    (stat(part_path, &st) == 0 && st.st_size == 0))
			unlink(part_path);
	}
	if (rc == 0) {
		j->res->download_bytes = p.in_bytes;
		j->res->image_bytes = p.sink.off;
		j->res->resumed_from = resume;
	} else
		*errp = xstrdup(p.err ? p.err : "download failed");
	pass_clear(&p);
	return rc;
}

static struct inflight *
reg_find(const char *key)
{
	struct inflight *e;

	for (e = reg_head; e != NULL; e = e->next)
		if (strcmp(e->key, key) == 0 && e->status == 0)
			return e;
	return NULL;
}

static void
reg_unlink(struct inflight *e)
{
	struct inflight **pp;

	for (pp = &reg_head; *pp != NULL; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	free(e->key);
	free(e);
}

/*
 * Waits (reg_lock held) until the owner of e is done, mirroring its
 * progress.  Returns 1 with sha set when it verified a download, 0 when it
 * failed (the caller may take over), -1 when this caller was cancelled.
 */
static int
reg_wait(struct inflight *e, struct fetch_progress *fp, char sha[65])
{
	struct timespec ts;
	int status;

	e->waiters++;
	set_phase(fp, FETCH_PHASE_WAITING);
	while (e->status == 0 && !atomic_load(&fp->cancel)) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += NOTIFY_NS;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&reg_cond, &reg_lock, &ts);
		if (e->status != 0)
			break;
		atomic_store(
		    &fp->bytes_done, atomic_load(&e->prog->bytes_done));
		atomic_store(
		    &fp->bytes_total, atomic_load(&e->prog->bytes_total));
		atomic_store(&fp->rate_bps, atomic_load(&e->prog->rate_bps));
		atomic_store(&fp->eta_s, atomic_load(&e->prog->eta_s));
		if (fp->notify != NULL)
			fp->notify(fp->arg, fp);
	}
	status = e->status;
	memcpy(sha, e->sha, 65);
	if (--e->waiters == 0 && status != 0)
		reg_unlink(e);
	if (status == 0)
		return -1; /* cancelled while waiting */
	return status == 1 ? 1 : 0;
}

static char *
cache_key(const struct fetch_req *rq)
{
	struct sha256_ctx c;
	uint8_t d[SHA256_DIGEST_SIZE];
	char h[2 * SHA256_DIGEST_SIZE + 1], *k;
	size_t i;

	if (rq->sha256 != NULL) {
		xasprintf(&k, "%s/%s", rq->cache_dir, rq->sha256);
		for (i = strlen(rq->cache_dir) + 1; k[i] != '\0'; i++)
			if (k[i] >= 'A' && k[i] <= 'F')
				k[i] = (char)(k[i] - 'A' + 'a');
		return k;
	}
	sha256_init(&c);
	sha256_update(&c, strlen(rq->url), (const uint8_t *)rq->url);
	sha256_digest(&c, sizeof(d), d);
	hex(h, d, 16);
	xasprintf(&k, "%s/url-%s", rq->cache_dir, h);
	return k;
}

/* http(s): dedupe, cache, resume. */
static int
fetch_remote(struct job *j, char **errp)
{
	const struct fetch_req *rq = j->req;
	struct inflight *e;
	char *key, *part = NULL, *dl = NULL, sha[65];
	int rc, w;

	if (rq->cache_dir == NULL) {
		*errp = xstrdup("no download cache configured");
		return -1;
	}
	if (mkdir(rq->cache_dir, 0755) == -1 && errno != EEXIST) {
		log_warn("%s: mkdir %s", __func__, rq->cache_dir);
		*errp = xstrdup("cannot create the download cache");
		return -1;
	}
	key = cache_key(rq);
	pthread_mutex_lock(&reg_lock);
	while ((e = reg_find(key)) != NULL) {
		w = reg_wait(e, j->prog, sha);
		if (w == -1) {
			pthread_mutex_unlock(&reg_lock);
			free(key);
			*errp = xstrdup("cancelled");
			return -1;
		}
		if (w == 1) {
			/* The owner verified it: decode our copy from the cache. */
			pthread_mutex_unlock(&reg_lock);
			xasprintf(&dl, "%s/%s.dl", rq->cache_dir, sha);
			rc = from_cache(j, dl, sha, errp);
			free(dl);
			free(key);
			if (rc == 1) {
				*errp = xstrdup("the shared download vanished "
						"from the cache");
				rc = -1;
			}
			return rc;
		}
	}
	e = xcalloc(1, sizeof(*e));
	e->key = key;
	e->prog = j->prog;
	e->next = reg_head;
	reg_head = e;
	pthread_mutex_unlock(&reg_lock);

	rc = 1;
	if (rq->sha256 != NULL) {
		xasprintf(&dl, "%s.dl", key);
		rc = from_cache(j, dl, rq->sha256, errp);
		free(dl);
	}
	if (rc == 1) {
		xasprintf(&part, "%s.part", key);
		rc = download(j, part, errp);
		free(part);
	}

	pthread_mutex_lock(&reg_lock);
	e->status = rc == 0 ? 1 : -1;
	memcpy(e->sha, j->res->sha256, sizeof(e->sha));
	pthread_cond_broadcast(&reg_cond);
	if (e->waiters == 0)
		reg_unlink(e);
	pthread_mutex_unlock(&reg_lock);
	return rc;
}

int
fetch_image(const struct fetch_req *rq, struct fetch_progress *fp,
    struct fetch_result *res, char **errp)
{
	struct fetch_progress local;
	struct job j = {.req = rq, .res = res, .out_fd = -1};
	int rc = -1;

	*errp = NULL;
	memset(res, 0, sizeof(*res));
	if (fp == NULL) {
		fetch_progress_init(&local);
		fp = &local;
	}
	j.prog = fp;
	if (rq->url == NULL || rq->out_path == NULL) {
		*errp = xstrdup("fetch: url and output path are required");
		return -1;
	}
	if (rq->sha256 != NULL && !sha_valid(rq->sha256)) {
		*errp = xstrdup("sha256 must be 64 hexadecimal digits");
		return -1;
	}
	xasprintf(&j.tmp_out, "%s.tmp-XXXXXX", rq->out_path);
	if ((j.out_fd = mkostemp(j.tmp_out, O_CLOEXEC)) == -1) {
		log_warn("%s: mkostemp %s", __func__, j.tmp_out);
		xasprintf(
		    errp, "cannot create the image file: %s", strerror(errno));
		free(j.tmp_out);
		return -1;
	}
	if (strncasecmp(rq->url, "http://", 7) == 0 ||
	    strncasecmp(rq->url, "https://", 8) == 0)
		rc = fetch_remote(&j, errp);
	else
		rc = download(&j, NULL, errp); /* file://, or refused */
	if (rc == 0 && fchmod(j.out_fd, 0644) == -1)
		log_warn("%s: fchmod", __func__);
	if (rc == 0 && rename(j.tmp_out, rq->out_path) == -1) {
		log_warn("%s: rename %s", __func__, rq->out_path);
		xasprintf(errp, "cannot move the image into place: %s",
		    strerror(errno));
		rc = -1;
	}
	if (rc == -1) {
		unlink(j.tmp_out);
		atomic_store(&fp->phase, FETCH_PHASE_IDLE);
		log_warnx("%s: %s: %s", __func__, rq->url, *errp);
	} else {
		set_phase(fp, FETCH_PHASE_DONE);
		if (rq->sha256 == NULL)
			log_info("%s: %s: unpinned, sha256 %s (trust on first "
				 "use)",
			    __func__, rq->url, res->sha256);
	}
	close(j.out_fd);
	free(j.tmp_out);
	return rc;
}

int
fetch_cache_drop(const char *cache_dir, const char *sha256)
{
	char *path;
	int rc = 0;

	if (!sha_valid(sha256))
		return -1;
	xasprintf(&path, "%s/%s.dl", cache_dir, sha256);
	if (unlink(path) == -1 && errno != ENOENT) {
		log_warn("%s: unlink %s", __func__, path);
		rc = -1;
	}
	free(path);
	return rc;
}

/* ---- image_inspect -------------------------------------------------- */

/* Runs argv, collecting stdout (bounded); -1 on timeout or failure. */
static int
run_capture(char *const argv[], int timeout_ms, char **outp, int *statusp)
{
	posix_spawn_file_actions_t fa;
	struct pollfd pfd;
	char *out = xmalloc(INSPECT_MAX_OUT + 1);
	size_t len = 0;
	int64_t deadline = now_ns() + (int64_t)timeout_ms * 1000000LL, left;
	int pfds[2], st, rc = -1;
	ssize_t n;
	pid_t pid;

	*outp = NULL;
	if (pipe2(pfds, O_CLOEXEC) == -1) {
		log_warn("%s: pipe2", __func__);
		free(out);
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pfds[1], STDOUT_FILENO);
	posix_spawn_file_actions_addopen(
	    &fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	st = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pfds[1]);
	if (st != 0) {
		errno = st;
		log_warn("%s: spawn %s", __func__, argv[0]);
		close(pfds[0]);
		free(out);
		return -1;
	}
	pfd.fd = pfds[0];
	pfd.events = POLLIN;
	for (;;) {
		left = (deadline - now_ns()) / 1000000;
		if (left <= 0) {
			log_warnx("%s: %s timed out", __func__, argv[0]);
			kill(pid, SIGKILL);
			break;
		}
		if (poll(&pfd, 1, (int)left) == -1 && errno != EINTR)
			break;
		if (pfd.revents == 0)
			continue;
		n = read(pfds[0], out + len, INSPECT_MAX_OUT - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = 0;
			break;
		}
		len += (size_t)n;
		if (len == INSPECT_MAX_OUT) {
			log_warnx("%s: %s: too much output", __func__, argv[0]);
			kill(pid, SIGKILL);
			break;
		}
	}
	close(pfds[0]);
	while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
		;
	*statusp = st;
	out[len] = '\0';
	if (rc == 0)
		*outp = out;
	else
		free(out);
	return rc;
}

int
image_inspect(const char *path, struct image_info *info, char **errp)
{
	json_tokener *tok = NULL;
	json_object *root = NULL, *v, *fs, *data;
	char *arg = NULL, *out = NULL;
	const char *compat;
	int status = 0, rc = -1;

	*errp = NULL;
	memset(info, 0, sizeof(*info));
	/* "./" keeps qemu from reading "proto:..." or "json:{" as a spec. */
	xasprintf(&arg, "%s%s", path[0] == '/' ? "" : "./", path);
	{
		char *argv[] = {"qemu-img", "info", "--output=json", arg, NULL};

		if (run_capture(argv, INSPECT_TIMEOUT_MS, &out, &status) ==
		    -1) {
			*errp = xstrdup("cannot run qemu-img info");
			goto done;
		}
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		*errp = xstrdup("qemu-img cannot read the image");
		goto done;
	}
	tok = json_tokener_new();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	root = json_tokener_parse_ex(tok, out, (int)strlen(out));
	if (json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "format", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    !json_object_object_get_ex(root, "virtual-size", &v) ||
	    !json_object_is_type(v, json_type_int)) {
		log_warnx("%s: unexpected qemu-img output", __func__);
		*errp = xstrdup("unexpected qemu-img info output");
		goto done;
	}
	json_object_object_get_ex(root, "format", &v);
	snprintf(info->format, sizeof(info->format), "%s",
	    json_object_get_string(v));
	json_object_object_get_ex(root, "virtual-size", &v);
	info->virtual_size = (uint64_t)json_object_get_int64(v);
	if (json_object_object_get_ex(root, "actual-size", &v) &&
	    json_object_is_type(v, json_type_int))
		info->actual_size = (uint64_t)json_object_get_int64(v);
	if (json_object_object_get_ex(root, "backing-filename", &v) ||
	    json_object_object_get_ex(root, "full-backing-filename", &v)) {
		*errp = xstrdup("the image refers to a backing file");
		goto done;
	}
	if (strcmp(info->format, "qcow2") == 0) {
		info->qcow2_version = 2;
		if (json_object_object_get_ex(root, "format-specific", &fs) &&
		    json_object_is_type(fs, json_type_object) &&
		    json_object_object_get_ex(fs, "data", &data) &&
		    json_object_is_type(data, json_type_object)) {
			if (json_object_object_get_ex(data, "compat", &v) &&
			    json_object_is_type(v, json_type_string)) {
				compat = json_object_get_string(v);
				if (strcmp(compat, "0.10") != 0)
					info->qcow2_version = 3;
			}
			if (json_object_object_get_ex(data, "data-file", &v)) {
				*errp = xstrdup(
				    "the image refers to an external data file");
				goto done;
			}
		}
	}
	rc = 0;
done:
	if (tok != NULL)
		json_tokener_free(tok);
	json_object_put(root);
	free(out);
	free(arg);
	return rc;
}

int
image_check_format(const struct image_info *info, const char *want, char **errp)
{
	*errp = NULL;
	if (strcmp(info->format, want) == 0)
		return 0;
	xasprintf(
	    errp, "the image is %s, the template says %s", info->format, want);
	return -1;
}
