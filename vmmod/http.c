/*
 * The HTTP side of vmmod: the only file that includes libmicrohttpd.  Two
 * listeners, each its own MHD daemon with a small thread pool on epoll: the
 * Unix socket (trusted by its file mode and group: the Guardian blueprint,
 * the installer, tests) and an optional TCP one that wants a bearer token or
 * the session cookie of POST /api/login.  A request's path is split into
 * percent-decoded segments here (from the raw URI, so "%2F" stays inside its
 * segment) and handed to api.c, whose answer becomes the MHD response.
 *
 * On Guardian a third one, the console listener (conf console_listen), speaks
 * TLS with Guardian's certificate (read into memory at start, usually from
 * systemd's LoadCredential= directory) and answers only the console page, its
 * assets and the console websockets: everything else is a 404 there, before
 * any credentials, API route or static page is looked at.
 *
 * Server-sent events: a chunked response whose reader copies blocks from the
 * event ring; when there is nothing to send the connection is suspended, and
 * the ring's watch callback or the keepalive timer resumes it, so an idle
 * stream costs no thread and no wake-ups.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <linux/openat2.h>
#include <microhttpd.h>
#include <nettle/sha2.h>

#include "vmmod.h"

#define COOKIE_NAME "vmmod_session"
#define SESSION_MAX 32
#define SESSION_TTL (12 * 3600)
#define SSE_KEEPALIVE_S 25
#define DISCARD_MAX (1024 * 1024) /* of an oversized chunked body, then close */
#define TOKEN_BYTES 32

/* JSON answers are never cached or sniffed; no page may frame them. */
#define CSP_API "default-src 'none'; frame-ancestors 'none'"

struct listener {
	struct MHD_Daemon *d;
	int fd;
	bool tcp; /* needs credentials */
	bool console; /* TLS, console routes only */
	char *path; /* Unix socket to unlink on stop */
};

/* The console listener's certificate and key (PEM, NUL-terminated). */
struct tls_pair {
	char *cert, *key;
	size_t key_len;
};

struct req {
	char *uri; /* raw, before percent-decoding */
	bool started, answered, cookie_auth;
	struct timespec t0;
	int route;
	char *body;
	size_t len, discarded;
	bool too_big;
	char peer[INET6_ADDRSTRLEN + 8];
	char session[2 * TOKEN_BYTES + 1];
	/* the request for api.c and its answer (maybe from a worker) */
	struct MHD_Connection *conn;
	char *path; /* split into ar.seg */
	struct api_request ar;
	struct api_response resp;
	bool have_resp;
	struct api_upgrade *upgrade; /* 101 queued, socket not handed over */
};

struct sse {
	pthread_mutex_t mtx;
	struct MHD_Connection *conn;
	struct sse *next;
	uint64_t seq;
	int watch;
	char *buf; /* block being sent */
	size_t len, off;
	/* under mtx */
	bool suspended, pending, keepalive, closing;
};

struct session {
	char id[2 * TOKEN_BYTES + 1];
	time_t expires;
};

static struct listener listeners[3];
static char *allowed_origins; /* under origins_mtx: a reload sets it */
static pthread_mutex_t origins_mtx = PTHREAD_MUTEX_INITIALIZER;
/* the console listener: URL base of console URLs and its origin */
static char *console_base, *console_origin;
static struct tls_pair console_tls;
/* token_mtx: the digest is replaced whole by a reload (SIGHUP) */
static pthread_mutex_t token_mtx = PTHREAD_MUTEX_INITIALIZER;
static unsigned char token_digest[32];
static bool token_loaded;

static pthread_mutex_t sess_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct session sessions[SESSION_MAX];

/* Workers running libvirt calls for suspended connections. */
#define WORK_MAX 16
static pthread_mutex_t work_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_cond = PTHREAD_COND_INITIALIZER;
static unsigned work_busy;
static bool work_stopping;

/* The SSE list and the keepalive thread. */
static pthread_mutex_t sse_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sse_cond; /* on CLOCK_MONOTONIC, see http_start() */
static struct sse *sse_head;
static unsigned sse_count;
static bool sse_stopping, ka_running, cond_ready;
static pthread_t ka_thread;

/* ---- pure helpers ------------------------------------------------------- */

const char *
http_bearer(const char *authz)
{
	if (authz == NULL || strncasecmp(authz, "Bearer ", 7) != 0)
		return NULL;
	authz += 7;
	while (*authz == ' ')
		authz++;
	return *authz != '\0' ? authz : NULL;
}

/*
 * A state change by cookie must come from our own origin (the Host the
 * browser talked to) or one listed in allowed_origins.
 */
bool
http_origin_ok(const char *origin, const char *host, const char *allowed)
{
	const char *p, *end;
	size_t n;

	if (origin == NULL || *origin == '\0' || strcmp(origin, "null") == 0)
		return false;
	if (host != NULL && *host != '\0') {
		if (str_has_prefix(origin, "http://") &&
		    strcmp(origin + 7, host) == 0)
			return true;
		if (str_has_prefix(origin, "https://") &&
		    strcmp(origin + 8, host) == 0)
			return true;
	}
	n = strlen(origin);
	for (p = allowed; p != NULL && *p != '\0'; p = end) {
		p += strspn(p, " \t,");
		end = p + strcspn(p, " \t,");
		if ((size_t)(end - p) == n && n > 0 &&
		    strncmp(p, origin, n) == 0)
			return true;
	}
	return false;
}

/* "HOST:PORT", "[V6ADDR]:PORT" or ":PORT" (loopback) into malloc'd parts. */
int
http_listen_parse(const char *spec, char **hostp, char **portp)
{
	const char *colon, *host = spec, *end;
	char *e;
	long port;

	*hostp = *portp = NULL;
	if (spec == NULL)
		return -1;
	if (*spec == '[') {
		if ((end = strchr(spec, ']')) == NULL || end[1] != ':')
			return -1;
		host = spec + 1;
		colon = end + 1;
	} else {
		if ((colon = strrchr(spec, ':')) == NULL ||
		    memchr(spec, ':', colon - spec) != NULL)
			return -1;
		end = colon;
	}
	errno = 0;
	port = strtol(colon + 1, &e, 10);
	if (colon[1] < '0' || colon[1] > '9' || *e != '\0' || errno != 0 ||
	    port < 1 || port > 65535)
		return -1;
	*hostp = end > host ? xstrndup(host, end - host) : xstrdup("127.0.0.1");
	*portp = xstrdup(colon + 1);
	return 0;
}

/*
 * Splits "/a/b%2Fc/d" into percent-decoded segments {"a", "b/c", "d"} in
 * place; the query string is cut off.  A decoded NUL becomes 0x01 so the
 * name check refuses it as a control character instead of truncating.
 * Returns the number of segments, -1 if there are too many.
 */
int
http_split_path(char *path, char *seg[API_MAX_SEGS])
{
	char *p, *q;
	size_t n, i;
	int nseg = 0;

	path[strcspn(path, "?#")] = '\0';
	if (*path != '/')
		return -1;
	if (path[1] == '\0')
		return 0;
	for (p = path + 1; p != NULL; p = q) {
		if ((q = strchr(p, '/')) != NULL)
			*q++ = '\0';
		if (nseg == API_MAX_SEGS)
			return -1;
		n = MHD_http_unescape(p);
		for (i = 0; i < n; i++)
			if (p[i] == '\0')
				p[i] = '\x01';
		seg[nseg++] = p;
	}
	return nseg;
}

/* ---- token and sessions ------------------------------------------------- */

static void
hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 0xf];
	}
	out[2 * n] = '\0';
}

static int
random_hex(char out[2 * TOKEN_BYTES + 1])
{
	unsigned char raw[TOKEN_BYTES];

	if (gnutls_rnd(GNUTLS_RND_KEY, raw, sizeof(raw)) != 0) {
		log_warnx("%s: gnutls_rnd failed", __func__);
		return -1;
	}
	hex_encode(raw, sizeof(raw), out);
	gnutls_memset(raw, 0, sizeof(raw));
	return 0;
}

int
http_token_load(const char *path)
{
	char fresh[2 * TOKEN_BYTES + 2], *buf;
	unsigned char digest[32];
	struct stat st;
	size_t len, skip;

	if ((buf = read_file(path, 4096, &len)) == NULL) {
		if (errno != ENOENT) {
			log_warn("%s: %s", __func__, path);
			return -1;
		}
		if (random_hex(fresh) == -1)
			return -1;
		strcat(fresh, "\n");
		if (write_file_atomic(path, fresh, strlen(fresh), 0600) == -1) {
			log_warn("%s: %s", __func__, path);
			return -1;
		}
		log_info("created API token file %s", path);
		buf = xstrdup(fresh);
		len = strlen(buf);
	} else if (stat(path, &st) == 0 && (st.st_mode & 077) != 0) {
		log_warnx("%s: %s is readable by others (mode %04o)", __func__,
		    path, (unsigned)(st.st_mode & 07777));
	}
	/* hand-edited files: surrounding whitespace is not part of it */
	while (len > 0 && strchr(" \t\r\n", buf[len - 1]) != NULL)
		buf[--len] = '\0';
	skip = strspn(buf, " \t\r\n");
	memmove(buf, buf + skip, len - skip + 1);
	len -= skip;
	if (len < 16) {
		log_warnx("%s: %s: token too short", __func__, path);
		free(buf);
		return -1;
	}
	gnutls_hash_fast(GNUTLS_DIG_SHA256, buf, len, digest);
	gnutls_memset(buf, 0, len);
	free(buf);
	pthread_mutex_lock(&token_mtx);
	memcpy(token_digest, digest, sizeof(digest));
	token_loaded = true;
	pthread_mutex_unlock(&token_mtx);
	gnutls_memset(digest, 0, sizeof(digest));
	return 0;
}

int
http_token_reload(const char *path)
{
	bool loaded;

	pthread_mutex_lock(&token_mtx);
	loaded = token_loaded;
	pthread_mutex_unlock(&token_mtx);
	if (!loaded || path == NULL)
		return 0; /* no TCP listener: no token in use */
	if (http_token_load(path) == -1) {
		log_warnx("%s: keeping the old API token", path);
		return -1;
	}
	log_info("API token re-read from %s", path);
	return 0;
}

/* Compares digests so neither the token's bytes nor its length leak. */
static bool
token_ok(const char *tok)
{
	unsigned char d[32], want[32];
	bool loaded;

	if (tok == NULL)
		return false;
	pthread_mutex_lock(&token_mtx);
	loaded = token_loaded;
	memcpy(want, token_digest, sizeof(want));
	pthread_mutex_unlock(&token_mtx);
	if (!loaded)
		return false;
	gnutls_hash_fast(GNUTLS_DIG_SHA256, tok, strlen(tok), d);
	return gnutls_memcmp(d, want, sizeof(d)) == 0;
}

static char *
session_cookie(const char *id, int max_age)
{
	char *c;

	xasprintf(&c,
	    COOKIE_NAME "=%s; Path=/; HttpOnly; SameSite=Strict; "
			"Max-Age=%d",
	    id, max_age);
	return c;
}

char *
http_session_login(const char *token)
{
	struct session *s = &sessions[0];
	time_t now = time(NULL);
	char id[sizeof(s->id)];
	int i;

	if (!token_ok(token) || random_hex(id) == -1)
		return NULL;
	pthread_mutex_lock(&sess_mtx);
	/* a free or expired slot, else the one closest to expiry */
	for (i = 0; i < SESSION_MAX; i++) {
		if (sessions[i].expires <= now) {
			s = &sessions[i];
			break;
		}
		if (sessions[i].expires < s->expires)
			s = &sessions[i];
	}
	memcpy(s->id, id, sizeof(s->id));
	s->expires = now + SESSION_TTL;
	pthread_mutex_unlock(&sess_mtx);
	return session_cookie(id, SESSION_TTL);
}

static struct session *
session_find(const char *id)
{
	time_t now = time(NULL);
	int i;

	if (id == NULL || strlen(id) != 2 * TOKEN_BYTES)
		return NULL;
	for (i = 0; i < SESSION_MAX; i++)
		if (sessions[i].expires > now &&
		    gnutls_memcmp(sessions[i].id, id, 2 * TOKEN_BYTES) == 0)
			return &sessions[i];
	return NULL;
}

bool
http_session_valid(const char *id)
{
	bool ok;

	pthread_mutex_lock(&sess_mtx);
	ok = session_find(id) != NULL;
	pthread_mutex_unlock(&sess_mtx);
	return ok;
}

char *
http_session_logout(const char *id)
{
	struct session *s;

	pthread_mutex_lock(&sess_mtx);
	if ((s = session_find(id)) != NULL)
		memset(s, 0, sizeof(*s));
	pthread_mutex_unlock(&sess_mtx);
	return session_cookie("", 0);
}

/* ---- server-sent events ------------------------------------------------- */

unsigned
http_sse_clients(void)
{
	unsigned n;

	pthread_mutex_lock(&sse_mtx);
	n = sse_count;
	pthread_mutex_unlock(&sse_mtx);
	return n;
}

/* Called with s->mtx held: a suspended stream gets back to its reader. */
static void
sse_kick(struct sse *s)
{
	if (s->suspended) {
		s->suspended = false;
		MHD_resume_connection(s->conn);
	} else
		s->pending = true;
}

/* events_watch() callback, from the publishing thread. */
static void
sse_wake(void *arg)
{
	struct sse *s = arg;

	pthread_mutex_lock(&s->mtx);
	sse_kick(s);
	pthread_mutex_unlock(&s->mtx);
}

static void
sse_set(struct sse *s, char *buf, size_t len)
{
	free(s->buf);
	s->buf = buf;
	s->len = len;
	s->off = 0;
}

/*
 * The content reader.  Never returns 0 without suspending: the watch (or the
 * keepalive timer, or http_stop) resumes the connection, and `pending` covers
 * a publish that lands between events_next() and the suspend.
 */
static ssize_t
sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sse *s = cls;
	bool keepalive, closing;
	size_t n;
	ssize_t len;
	char *block;

	for (;;) {
		if (s->off < s->len) {
			n = s->len - s->off < max ? s->len - s->off : max;
			memcpy(buf, s->buf + s->off, n);
			s->off += n;
			return n;
		}
		pthread_mutex_lock(&s->mtx);
		keepalive = s->keepalive;
		closing = s->closing;
		s->keepalive = s->pending = false;
		pthread_mutex_unlock(&s->mtx);
		if (closing)
			return MHD_CONTENT_READER_END_OF_STREAM;

		if ((len = events_next(&s->seq, &block)) > 0) {
			sse_set(s, block, len);
			continue;
		}
		if (len == -1) {
			/* fell behind the ring: the client re-reads the list */
			block = xstrdup("event: resync\ndata: {}\n\n");
			sse_set(s, block, strlen(block));
			continue;
		}
		if (keepalive) {
			block = xstrdup(": keepalive\n\n");
			sse_set(s, block, strlen(block));
			continue;
		}
		pthread_mutex_lock(&s->mtx);
		if (s->pending || s->keepalive || s->closing) {
			pthread_mutex_unlock(&s->mtx);
			continue;
		}
		s->suspended = true;
		MHD_suspend_connection(s->conn);
		pthread_mutex_unlock(&s->mtx);
		return 0;
	}
}

/* The response's free callback: the stream is over. */
static void
sse_free(void *cls)
{
	struct sse *s = cls, **pp;

	if (s->watch != -1)
		events_unwatch(s->watch); /* no sse_wake() after this */
	pthread_mutex_lock(&sse_mtx);
	for (pp = &sse_head; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	sse_count--;
	pthread_mutex_unlock(&sse_mtx);
	virt_stats_watch(-1);
	free(s->buf);
	pthread_mutex_destroy(&s->mtx);
	free(s);
}

/* Marks every stream for a keepalive comment each SSE_KEEPALIVE_S. */
static void *
sse_keepalive_main(void *arg)
{
	struct timespec deadline;
	struct sse *s;

	pthread_mutex_lock(&sse_mtx);
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	while (!sse_stopping) {
		if (sse_head == NULL) {
			/* nobody watches: sleep until someone does */
			pthread_cond_wait(&sse_cond, &sse_mtx);
			clock_gettime(CLOCK_MONOTONIC, &deadline);
			deadline.tv_sec += SSE_KEEPALIVE_S;
			continue;
		}
		/* new clients wake us too; the deadline stays */
		if (pthread_cond_timedwait(&sse_cond, &sse_mtx, &deadline) !=
		    ETIMEDOUT)
			continue;
		for (s = sse_head; s != NULL; s = s->next) {
			pthread_mutex_lock(&s->mtx);
			s->keepalive = true;
			sse_kick(s);
			pthread_mutex_unlock(&s->mtx);
		}
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += SSE_KEEPALIVE_S;
	}
	pthread_mutex_unlock(&sse_mtx);
	return NULL;
}

static struct MHD_Response *
sse_response(struct MHD_Connection *c)
{
	struct MHD_Response *resp;
	struct sse *s;
	char *hello;

	s = xcalloc(1, sizeof(*s));
	pthread_mutex_init(&s->mtx, NULL);
	s->conn = c;
	s->watch = -1;
	s->seq = events_last();
	/* the first bytes make proxies and EventSource see the stream open */
	hello = xstrdup("retry: 3000\n: hello\n\n");
	sse_set(s, hello, strlen(hello));

	pthread_mutex_lock(&sse_mtx);
	if (sse_stopping) {
		pthread_mutex_unlock(&sse_mtx);
		free(s->buf);
		free(s);
		return NULL;
	}
	s->next = sse_head;
	sse_head = s;
	sse_count++;
	pthread_cond_signal(&sse_cond);
	pthread_mutex_unlock(&sse_mtx);
	virt_stats_watch(+1);

	/* from here on sse_free() undoes all of the above */
	resp = MHD_create_response_from_callback(
	    MHD_SIZE_UNKNOWN, 4096, sse_read, s, sse_free);
	if (resp == NULL) {
		sse_free(s);
		return NULL;
	}
	if ((s->watch = events_watch(sse_wake, s)) == -1) {
		MHD_destroy_response(resp);
		return NULL;
	}
	MHD_add_response_header(resp, "Content-Type", "text/event-stream");
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	return resp;
}

/* ---- websocket upgrade (console.c) -------------------------------------- */

static double elapsed(const struct timespec *);

int
http_random_hex(char out[2 * TOKEN_BYTES + 1])
{
	return random_hex(out);
}

void
http_upgrade_close(void *urh)
{
	if (MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE) != MHD_YES)
		log_warnx(
		    "%s: MHD could not close an upgraded socket", __func__);
}

/* MHD sent the 101: the socket is the console's now. */
static void
on_upgrade(void *cls, struct MHD_Connection *c, void *req_cls,
    const char *extra, size_t extra_len, MHD_socket sock,
    struct MHD_UpgradeResponseHandle *urh)
{
	struct api_upgrade *up = cls;
	struct req *r = req_cls;

	if (r != NULL && r->upgrade == up)
		r->upgrade = NULL;
	up->start(up->arg, sock, extra, extra_len, urh);
	free(up);
}

/* api.c accepted a websocket (console.c checked the handshake): 101. */
static enum MHD_Result
send_upgrade(struct MHD_Connection *c, struct req *r, struct api_response *ar)
{
	struct api_upgrade *up = ar->upgrade;
	struct MHD_Response *resp;
	enum MHD_Result ret;

	ar->upgrade = NULL;
	if ((resp = MHD_create_response_for_upgrade(on_upgrade, up)) == NULL) {
		up->cancel(up->arg);
		free(up);
		api_response_clear(ar);
		return MHD_NO;
	}
	/* MHD adds "Connection: Upgrade" itself */
	MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
	MHD_add_response_header(resp, "Sec-WebSocket-Accept", up->accept);
	r->upgrade = up;
	ret = MHD_queue_response(c, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
	MHD_destroy_response(resp);
	if (ret != MHD_YES) {
		r->upgrade = NULL;
		up->cancel(up->arg);
		free(up);
	}
	api_metrics_observe(r->route, 101, elapsed(&r->t0));
	api_response_clear(ar);
	r->answered = true;
	return ret;
}

/* ---- requests ----------------------------------------------------------- */

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	/* an event stream's client going away is its normal end */
	if (strstr(msg, "Failed to send the chunked response body") != NULL)
		log_debug("http: %s", msg);
	else
		log_warnx("http: %s", msg);
}

/* MHD_OPTION_URI_LOG_CALLBACK: the raw URI; the result becomes *req_cls. */
static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct req *r = xcalloc(1, sizeof(*r));

	r->uri = xstrdup(uri);
	r->route = -1;
	return r;
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct req *r = *req_cls;

	if (r == NULL)
		return;
	if (r->upgrade != NULL) {
		/* the 101 never went out: the console undoes its part */
		r->upgrade->cancel(r->upgrade->arg);
		free(r->upgrade);
	}
	api_response_clear(&r->resp);
	free(r->uri);
	free(r->path);
	free(r->body);
	free(r);
	*req_cls = NULL;
}

static void
peer_name(struct listener *l, struct MHD_Connection *c, struct req *r)
{
	const union MHD_ConnectionInfo *ci;
	struct ucred cred;
	socklen_t len = sizeof(cred);

	snprintf(r->peer, sizeof(r->peer), "unknown");
	if (!l->tcp) {
		ci = MHD_get_connection_info(
		    c, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci != NULL &&
		    getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred,
			&len) == 0)
			snprintf(r->peer, sizeof(r->peer), "uid:%u",
			    (unsigned)cred.uid);
		return;
	}
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || ci->client_addr == NULL)
		return;
	getnameinfo(ci->client_addr,
	    ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						   : sizeof(struct sockaddr_in),
	    r->peer, sizeof(r->peer), NULL, 0, NI_NUMERICHOST);
}

static double
elapsed(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) + (t.tv_nsec - t0->tv_nsec) / 1e9;
}

static void
allow_header(struct MHD_Response *resp, unsigned allow)
{
	static const struct {
		unsigned bit;
		const char *name;
	} m[] = {{AM_GET, "GET, HEAD"}, {AM_POST, "POST"}, {AM_PUT, "PUT"},
	    {AM_DELETE, "DELETE"}};
	char buf[64] = "";
	size_t i;

	for (i = 0; i < nitems(m); i++) {
		if ((allow & m[i].bit) == 0)
			continue;
		if (buf[0] != '\0')
			strcat(buf, ", ");
		strcat(buf, m[i].name);
	}
	MHD_add_response_header(resp, "Allow", buf);
}

/* Turns api.c's answer into an MHD response and queues it. */
static enum MHD_Result
send_response(struct listener *l, struct MHD_Connection *c, struct req *r,
    struct api_response *ar)
{
	struct MHD_Response *resp = NULL;
	const char *body = "", *ctype = NULL;
	enum MHD_Result ret;
	size_t len = 0;

	if (ar->upgrade != NULL)
		return send_upgrade(c, r, ar);
	if (ar->events && (resp = sse_response(c)) == NULL) {
		struct api_error err;

		api_error_set(
		    &err, 503, "too_many_clients", "no more event streams now");
		api_response_error(ar, &err);
		ar->events = false;
	}
	if (resp == NULL) {
		if (ar->json != NULL) {
			body = json_object_to_json_string_ext(ar->json,
			    JSON_C_TO_STRING_PLAIN |
				JSON_C_TO_STRING_NOSLASHESCAPE);
			ctype = "application/json";
		} else if (ar->text != NULL) {
			body = ar->text;
			ctype = ar->content_type;
		}
		len = strlen(body);
		/* copied before api_response_clear() puts the JSON object */
		resp = MHD_create_response_from_buffer(
		    len, (void *)body, MHD_RESPMEM_MUST_COPY);
		if (resp == NULL) {
			api_response_clear(ar);
			return MHD_NO;
		}
		if (ctype != NULL)
			MHD_add_response_header(resp, "Content-Type", ctype);
	}
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "Content-Security-Policy",
	    ar->csp != NULL ? ar->csp : CSP_API);
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	if (ar->status == 405)
		allow_header(resp, ar->allow);
	if (ar->status == 401)
		MHD_add_response_header(
		    resp, "WWW-Authenticate", "Bearer realm=\"vmmod\"");
	if (ar->set_cookie != NULL && l->console) {
		/* the console cookie never leaves TLS */
		char *sc;

		xasprintf(&sc, "%s; Secure", ar->set_cookie);
		MHD_add_response_header(resp, "Set-Cookie", sc);
		free(sc);
	} else if (ar->set_cookie != NULL)
		MHD_add_response_header(resp, "Set-Cookie", ar->set_cookie);
	ret = MHD_queue_response(c, ar->status, resp);
	MHD_destroy_response(resp);
	api_metrics_observe(r->route, ar->status, elapsed(&r->t0));
	api_response_clear(ar);
	r->answered = true;
	return ret;
}

static enum MHD_Result
send_error(struct listener *l, struct MHD_Connection *c, struct req *r,
    int status, const char *code, const char *msg, unsigned allow)
{
	struct api_response ar = {0};
	struct api_error err;

	api_error_set(&err, status, code, "%s", msg);
	api_response_error(&ar, &err);
	ar.allow = allow;
	return send_response(l, c, r, &ar);
}

static const char *
header(struct MHD_Connection *c, const char *name)
{
	return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

static const char *
query_arg(void *cls, const char *key)
{
	return MHD_lookup_connection_value(cls, MHD_GET_ARGUMENT_KIND, key);
}

static const char *
header_arg(void *cls, const char *key)
{
	return MHD_lookup_connection_value(cls, MHD_HEADER_KIND, key);
}

static const char *
cookie_arg(void *cls, const char *key)
{
	return MHD_lookup_connection_value(cls, MHD_COOKIE_KIND, key);
}

/* Credentials on TCP: the bearer token, else a live session cookie. */
static bool
authorized(struct MHD_Connection *c, struct req *r)
{
	if (token_ok(http_bearer(header(c, MHD_HTTP_HEADER_AUTHORIZATION))))
		return true;
	if (r->session[0] != '\0' && http_session_valid(r->session)) {
		r->cookie_auth = true;
		return true;
	}
	return false;
}

/* ---- static files: the web UI (dashboard, login, assets) ------------------
 * GET / (the dashboard), /login and /assets/<file> come from conf web_root,
 * and so do /console/assets/<file> (the console page at /console/{name}
 * loads the same files relatively; any other /console/ path is a 404),
 * opened beneath one directory fd with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS), so neither ".." nor a symlink leaves it; names are
 * also limited to a plain character set.  Pages get a strict CSP (no inline
 * script or style).  On TCP, "/" without credentials redirects to /login;
 * the login page and the assets are public (they hold no data).
 */
#define STATIC_MAX (16 * 1024 * 1024)
#define CSP_PAGE                                                               \
	"default-src 'self'; script-src 'self'; style-src 'self'; "            \
	"connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "   \
	"base-uri 'none'; form-action 'self'; object-src 'none'"

static int static_root = -1;

/*
 * Which static file a GET path names, its path below web_root in rel.
 * Only [A-Za-z0-9._-] and "/" between names; no empty, hidden or ".."
 * component.
 */
enum static_kind
http_static_lookup(
    const char *uri, char *rel, size_t relsz, char ver[ASSET_VER])
{
	const char *p;
	size_t n = strcspn(uri, "?#"), i;

	ver[0] = '\0';
	if (n == 1 && uri[0] == '/') {
		snprintf(rel, relsz, "index.html");
		return SK_INDEX;
	}
	if (n == 6 && strncmp(uri, "/login", 6) == 0) {
		snprintf(rel, relsz, "login.html");
		return SK_LOGIN;
	}
	/* the console page at /console/{name} loads the same files relatively */
	if (n > 16 && strncmp(uri, "/console/assets/", 16) == 0) {
		uri += 8;
		n -= 8;
	}
	if (n <= 8 || strncmp(uri, "/assets/", 8) != 0)
		return SK_NONE;
	/* /assets/v/<version>/<file>: the same file, named by the version
	 * the page that links it was served with */
	if (n > 10 + ASSET_VER && strncmp(uri + 8, "v/", 2) == 0 &&
	    uri[10 + ASSET_VER - 1] == '/') {
		for (i = 0; i < ASSET_VER - 1; i++) {
			if (strchr("0123456789abcdef", uri[10 + i]) == NULL ||
			    uri[10 + i] == '\0')
				return SK_NONE;
			ver[i] = uri[10 + i];
		}
		ver[i] = '\0';
		uri += 2 + ASSET_VER;
		n -= 2 + ASSET_VER;
	}
	if (n - 8 >= relsz)
		return SK_NONE;
	for (p = uri + 8; p < uri + n; p++) {
		/* a component starts: never empty or hidden (nor absolute) */
		if ((p == uri + 8 || p[-1] == '/') && (*p == '/' || *p == '.'))
			return SK_NONE;
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			(*p >= '0' && *p <= '9') || strchr("._-/", *p) != NULL))
			return SK_NONE;
	}
	if (uri[n - 1] == '/')
		return SK_NONE;
	memcpy(rel, uri + 8, n - 8);
	rel[n - 8] = '\0';
	return SK_ASSET;
}

static const char *
static_ctype(const char *rel)
{
	static const struct {
		const char *ext, *type;
	} t[] = {{".html", "text/html; charset=utf-8"},
	    {".js", "text/javascript; charset=utf-8"},
	    {".mjs", "text/javascript; charset=utf-8"},
	    {".css", "text/css; charset=utf-8"}, {".json", "application/json"},
	    {".svg", "image/svg+xml"}, {".png", "image/png"},
	    {".ico", "image/x-icon"}, {".woff2", "font/woff2"},
	    {".txt", "text/plain; charset=utf-8"},
	    {".map", "application/json"}};
	const char *dot = strrchr(rel, '.');
	size_t i;

	for (i = 0; dot != NULL && i < nitems(t); i++)
		if (strcmp(dot, t[i].ext) == 0)
			return t[i].type;
	return "application/octet-stream";
}

static int
static_open(const char *rel)
{
	struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW,
	    .resolve =
		RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
	int fd;

	fd = (int)syscall(SYS_openat2, static_root, rel, &how, sizeof(how));
	if (fd == -1 && errno == ENOSYS) {
		/* XXX kernels before 5.6: the name check above is all we have */
		fd =
		    openat(static_root, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	return fd;
}

/*
 * The web assets' version: the first 16 hex digits of the XOR of a
 * SHA-256 per file (its name below web_root, size, mtime and inode) of
 * every file a request may name.  Pages link their assets under
 * /assets/v/<version>/, which a browser keeps for good: an upgrade's files
 * make a new version and new URLs, and nothing is revalidated in between.
 * Worked out for each page and versioned asset (a walk of some 80 stat
 * calls), so files replaced under a running vmmod count at once.
 */
static void
asset_walk(int dfd, const char *dir, int depth, uint8_t acc[SHA256_DIGEST_SIZE])
{
	uint8_t dg[SHA256_DIGEST_SIZE];
	struct sha256_ctx h;
	struct dirent *de;
	struct stat st;
	char *path;
	DIR *d;
	int fd;
	size_t i;

	if (depth > 8 || (d = fdopendir(dfd)) == NULL) {
		close(dfd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
			-1)
			continue;
		xasprintf(&path, "%s%s", dir, de->d_name);
		if (S_ISDIR(st.st_mode)) {
			fd = openat(dirfd(d), de->d_name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd != -1) {
				char *sub;

				xasprintf(&sub, "%s/", path);
				asset_walk(fd, sub, depth + 1, acc);
				free(sub);
			}
		} else if (S_ISREG(st.st_mode)) {
			uint64_t f[4] = {(uint64_t)st.st_size,
			    (uint64_t)st.st_mtim.tv_sec,
			    (uint64_t)st.st_mtim.tv_nsec, (uint64_t)st.st_ino};

			sha256_init(&h);
			sha256_update(&h, strlen(path) + 1, (uint8_t *)path);
			sha256_update(&h, sizeof(f), (uint8_t *)f);
			sha256_digest(&h, sizeof(dg), dg);
			for (i = 0; i < sizeof(dg); i++)
				acc[i] ^= dg[i];
		}
		free(path);
	}
	closedir(d);
}

void
http_asset_version(char out[ASSET_VER])
{
	uint8_t acc[SHA256_DIGEST_SIZE] = {0};
	int fd = -1;
	size_t i;

	if (static_root != -1)
		fd = openat(
		    static_root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd != -1)
		asset_walk(fd, "", 0, acc);
	for (i = 0; i < (ASSET_VER - 1) / 2; i++)
		snprintf(out + 2 * i, 3, "%02x", acc[i]);
}

static void
static_headers(struct MHD_Response *resp, bool page)
{
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(
	    resp, "Content-Security-Policy", page ? CSP_PAGE : CSP_API);
}

static enum MHD_Result
static_queue(struct MHD_Connection *c, struct req *r, int status,
    struct MHD_Response *resp)
{
	enum MHD_Result ret;

	if (resp == NULL)
		return MHD_NO;
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	r->answered = true;
	return ret;
}

static enum MHD_Result
static_serve(struct listener *l, struct MHD_Connection *c, struct req *r,
    enum static_kind kind, const char *rel, const char *ver)
{
	struct MHD_Response *resp;
	struct stat st;
	char etag[96], date[64], cur[ASSET_VER] = "", to[32], *text, *linked;
	const char *inm, *cache = "no-cache";
	struct tm tm;
	bool page, match;
	size_t len;
	int fd;

	if (kind == SK_INDEX && l->tcp && !authorized(c, r)) {
		resp = MHD_create_response_from_buffer(
		    0, (void *)"", MHD_RESPMEM_PERSISTENT);
		if (resp != NULL) {
			MHD_add_response_header(resp, "Location", "/login");
			MHD_add_response_header(
			    resp, "Cache-Control", "no-store");
			static_headers(resp, false);
		}
		return static_queue(c, r, 302, resp);
	}
	if (static_root == -1 || (fd = static_open(rel)) == -1)
		return send_error(l, c, r, 404, "not_found", "no such file", 0);
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size > STATIC_MAX) {
		close(fd);
		return send_error(l, c, r, 404, "not_found", "no such file", 0);
	}
	/* the index and login pages link their assets by version */
	if (kind != SK_ASSET || ver[0] != '\0')
		http_asset_version(cur);
	snprintf(etag, sizeof(etag), "\"%llx-%llx-%llx%s%s\"",
	    (unsigned long long)st.st_ino, (unsigned long long)st.st_size,
	    (unsigned long long)st.st_mtim.tv_sec * 1000000000ULL +
		(unsigned long long)st.st_mtim.tv_nsec,
	    kind != SK_ASSET ? "-" : "", kind != SK_ASSET ? cur : "");
	gmtime_r(&st.st_mtim.tv_sec, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	inm = header(c, MHD_HTTP_HEADER_IF_NONE_MATCH);
	match = inm != NULL && strcmp(inm, etag) == 0;
	if (match) {
		close(fd);
		resp = MHD_create_response_from_buffer(
		    0, (void *)"", MHD_RESPMEM_PERSISTENT);
	} else if (kind != SK_ASSET) {
		text = read_fd(fd, STATIC_MAX, &len);
		close(fd);
		if (text == NULL)
			return send_error(l, c, r, 500, "internal",
			    "cannot read the page", 0);
		snprintf(to, sizeof(to), "\"/assets/v/%s/", cur);
		linked = str_replace_all(text, "\"/assets/", to);
		free(text);
		resp = MHD_create_response_from_buffer(
		    strlen(linked), linked, MHD_RESPMEM_MUST_FREE);
		if (resp == NULL)
			free(linked);
	} else {
		/* MHD owns fd from here, also on failure */
		resp = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
	}
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", static_ctype(rel));
	MHD_add_response_header(resp, "ETag", etag);
	MHD_add_response_header(resp, "Last-Modified", date);
	/*
	 * no data here.  An asset named by the current version is kept for
	 * good; everything else is revalidated (ETag), so after an upgrade no
	 * old script runs against a new API.
	 */
	page = kind != SK_ASSET || strstr(rel, ".html") != NULL;
	if (kind == SK_ASSET && ver[0] != '\0' && strcmp(ver, cur) == 0)
		cache = "public, max-age=31536000, immutable";
	MHD_add_response_header(resp, "Cache-Control", cache);
	static_headers(resp, page);
	return static_queue(c, r, match ? 304 : 200, resp);
}

static void
static_start(const char *web_root)
{
	if (static_root != -1)
		close(static_root);
	static_root = -1;
	if (web_root == NULL)
		return;
	static_root = open(web_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (static_root == -1)
		log_warn("%s: web_root %s (no web UI)", __func__, web_root);
}

/* ---- end of static files ------------------------------------------------ */

/* ---- the console listener ----------------------------------------------- */

enum console_route { CR_NONE, CR_ASSET, CR_PAGE, CR_SOCKET };

/*
 * Which console route the split path is: /console/assets/<file>,
 * /console/{name} or /api/vms/{name}/console/serial|vnc.  Anything else is
 * CR_NONE, which the console listener answers with a 404.
 */
static enum console_route
console_route(const struct api_request *ar)
{
	if (ar->nseg >= 3 && strcmp(ar->seg[0], "console") == 0 &&
	    strcmp(ar->seg[1], "assets") == 0)
		return CR_ASSET;
	if (ar->nseg == 2 && strcmp(ar->seg[0], "console") == 0 &&
	    strcmp(ar->seg[1], "assets") != 0)
		return CR_PAGE;
	if (ar->nseg == 5 && strcmp(ar->seg[0], "api") == 0 &&
	    strcmp(ar->seg[1], "vms") == 0 &&
	    strcmp(ar->seg[3], "console") == 0 &&
	    (strcmp(ar->seg[4], "serial") == 0 ||
		strcmp(ar->seg[4], "vnc") == 0))
		return CR_SOCKET;
	return CR_NONE;
}

/*
 * The console listener's whole policy, on the headers: GET (or HEAD) of a
 * console route, nothing else; a websocket's Origin is the console
 * listener's own (console.c checks tickets and cookies as everywhere).
 */
static enum MHD_Result
console_first_call(struct listener *l, struct MHD_Connection *c, struct req *r,
    unsigned mbit, enum console_route cr)
{
	const char *origin, *host;
	enum static_kind sk;
	char rel[256], ver[ASSET_VER];

	if (cr == CR_NONE || r->route == -1)
		return send_error(l, c, r, 404, "not_found",
		    "only consoles are served here", 0);
	if (mbit != AM_GET)
		return send_error(l, c, r, 405, "method_not_allowed",
		    "method not allowed", AM_GET);
	if (cr == CR_ASSET) {
		if (!str_has_prefix(r->uri, "/console/assets/") ||
		    (sk = http_static_lookup(r->uri, rel, sizeof(rel), ver)) !=
			SK_ASSET)
			return send_error(
			    l, c, r, 404, "not_found", "no such file", 0);
		return static_serve(l, c, r, sk, rel, ver);
	}
	if (cr == CR_SOCKET) {
		origin = header(c, "Origin");
		host = header(c, "Host");
		if (!http_origin_ok(origin, NULL, console_origin) &&
		    (origin == NULL || host == NULL ||
			!str_has_prefix(origin, "https://") ||
			strcmp(origin + 8, host) != 0))
			return send_error(l, c, r, 403, "bad_origin",
			    "Origin not allowed for a console", 0);
	}
	return MHD_YES;
}

/*
 * The first call, with the headers only: route, credentials, Origin and a
 * declared body size are checked before any body is read.
 */
static enum MHD_Result
first_call(struct listener *l, struct MHD_Connection *c, const char *method,
    struct req *r)
{
	struct api_request ar = {0};
	const char *cookie, *origin, *clen, *expect;
	unsigned long long size;
	unsigned mbit = api_method_bit(method), allow;
	char *path = xstrdup(r->uri);
	enum static_kind sk;
	enum console_route cr;
	char rel[256], ver[ASSET_VER];
	bool ok;

	clock_gettime(CLOCK_MONOTONIC, &r->t0);
	peer_name(l, c, r);
	cookie = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, COOKIE_NAME);
	if (cookie != NULL && strlen(cookie) < sizeof(r->session))
		snprintf(r->session, sizeof(r->session), "%s", cookie);

	ar.nseg = http_split_path(path, ar.seg);
	ar.method = mbit;
	r->route = ar.nseg == -1 ? -1 : api_route(&ar, &allow);
	cr = ar.nseg == -1 ? CR_NONE : console_route(&ar);
	free(path);
	if (l->console)
		return console_first_call(l, c, r, mbit, cr);
	/* the web UI's pages and assets (static files section above) */
	if ((r->route == -1 || str_has_prefix(r->uri, "/console/assets/")) &&
	    mbit == AM_GET &&
	    (sk = http_static_lookup(r->uri, rel, sizeof(rel), ver)) != SK_NONE)
		return static_serve(l, c, r, sk, rel, ver);

	if (l->tcp && !(api_route_flags(r->route) & API_NOAUTH) &&
	    !authorized(c, r))
		return send_error(l, c, r, 401, "unauthorized",
		    "missing or wrong credentials", 0);
	if (r->route == -1)
		return send_error(
		    l, c, r, 404, "not_found", "no such route", 0);
	if ((mbit & allow) == 0)
		return send_error(l, c, r, 405, "method_not_allowed",
		    "method not allowed", allow);
	/* A browser's state change: cookie-authenticated or with an Origin. */
	origin = header(c, "Origin");
	if (l->tcp && mbit != AM_GET && (r->cookie_auth || origin != NULL)) {
		pthread_mutex_lock(&origins_mtx);
		ok = http_origin_ok(origin, header(c, "Host"), allowed_origins);
		pthread_mutex_unlock(&origins_mtx);
		if (!ok)
			return send_error(l, c, r, 403, "bad_origin",
			    "Origin not allowed for this request", 0);
	}
	/*
	 * Too big: answer now if the client waits for "100 Continue" or the
	 * body is huge; else read and drop it, so the client (already
	 * sending) gets the 413 instead of a reset connection.
	 */
	clen = header(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (clen != NULL && (size = strtoull(clen, NULL, 10)) > API_MAX_BODY) {
		expect = header(c, MHD_HTTP_HEADER_EXPECT);
		if (size > DISCARD_MAX ||
		    (expect != NULL && strcasecmp(expect, "100-continue") == 0))
			return send_error(l, c, r, 413, "body_too_large",
			    "request body exceeds 65536 bytes", 0);
		r->too_big = true;
	}
	return MHD_YES;
}

static void
request_fill(struct MHD_Connection *c, const char *method, struct req *r)
{
	struct api_request *ar = &r->ar;

	r->path = xstrdup(r->uri);
	ar->nseg = http_split_path(r->path, ar->seg);
	ar->method = api_method_bit(method);
	ar->arg = query_arg;
	ar->arg_cls = c;
	ar->content_type = header(c, MHD_HTTP_HEADER_CONTENT_TYPE);
	ar->body = r->body;
	ar->body_len = r->len;
	ar->peer = r->peer;
	ar->session = r->session[0] != '\0' ? r->session : NULL;
	ar->header = header_arg;
	ar->cookie = cookie_arg;
}

static void *
work_main(void *arg)
{
	struct req *r = arg;

	api_handle(&r->ar, r->route, &r->resp);
	r->have_resp = true;
	/* from here on r belongs to MHD again (and may be freed) */
	MHD_resume_connection(r->conn);
	pthread_mutex_lock(&work_mtx);
	work_busy--;
	pthread_cond_broadcast(&work_cond);
	pthread_mutex_unlock(&work_mtx);
	return NULL;
}

/*
 * A state change calls libvirt, which may take seconds (a start) or hang
 * until its keepalive gives up (libvirtd stopped): that runs on a thread of
 * its own while the connection is suspended, so the MHD worker keeps serving
 * its other connections.  So do the GETs that ask libvirt about each VM
 * (API_SLOW_GET: device lists, one VM's definition); the VM list is the
 * state table's.  Returns -1 to run the handler inline.
 */
static int
work_start(struct MHD_Connection *c, struct req *r)
{
	pthread_attr_t attr;
	pthread_t t;
	int rc;

	if (!(api_route_flags(r->route) &
		(r->ar.method == AM_GET ? API_SLOW_GET : API_SLOW)))
		return -1;
	pthread_mutex_lock(&work_mtx);
	if (work_busy >= WORK_MAX || work_stopping) {
		pthread_mutex_unlock(&work_mtx);
		return -1;
	}
	work_busy++;
	pthread_mutex_unlock(&work_mtx);

	r->conn = c;
	MHD_suspend_connection(c);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &attr, work_main, r);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		/* answer here; MHD calls us again once resumed */
		log_warnx("%s: pthread_create: %s", __func__, strerror(rc));
		work_main(r);
	}
	return 0;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **req_cls)
{
	struct listener *l = cls;
	struct req *r = *req_cls;

	if (r == NULL) /* no URI callback ran: cannot happen, but be safe */
		*req_cls = r = on_uri(NULL, url, c);
	if (!r->started) {
		r->started = true;
		return first_call(l, c, method, r);
	}
	if (r->answered) {
		*upload_size = 0;
		return MHD_YES;
	}
	if (*upload_size > 0) {
		if (r->too_big || r->len + *upload_size > API_MAX_BODY) {
			/* chunked and too big: drain a little, then drop it */
			r->too_big = true;
			r->discarded += *upload_size;
			*upload_size = 0;
			return r->discarded > DISCARD_MAX ? MHD_NO : MHD_YES;
		}
		r->body = xreallocarray(r->body, r->len + *upload_size, 1);
		memcpy(r->body + r->len, upload, *upload_size);
		r->len += *upload_size;
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->too_big)
		return send_error(l, c, r, 413, "body_too_large",
		    "request body exceeds 65536 bytes", 0);

	if (!r->have_resp) {
		request_fill(c, method, r);
		if (work_start(c, r) == 0)
			return MHD_YES; /* suspended until the worker is done */
		api_handle(&r->ar, r->route, &r->resp);
		r->have_resp = true;
	}
	return send_response(l, c, r, &r->resp);
}

/* ---- listeners ---------------------------------------------------------- */

static int
unix_listen(const char *path, int mode, const char *group)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct group gr, *grp = NULL;
	struct stat st;
	char grbuf[4096];
	mode_t old;
	int fd, probe;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_warnx("%s: %s: path too long", __func__, path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_warnx("%s: %s exists and is not a socket", __func__,
			    path);
			return -1;
		}
		/* a live daemon answers; a stale socket refuses */
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe != -1 &&
		    connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
			close(probe);
			log_warnx("%s: %s is in use by another process",
			    __func__, path);
			return -1;
		}
		if (probe != -1)
			close(probe);
		unlink(path);
	}
	if (group != NULL && *group != '\0' &&
	    (getgrnam_r(group, &gr, grbuf, sizeof(grbuf), &grp) != 0 ||
		grp == NULL)) {
		log_warnx("%s: no such group %s", __func__, group);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1) {
		log_warn("%s: socket", __func__);
		return -1;
	}
	/* never reachable with looser permissions than configured */
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		umask(old);
		log_warn("%s: bind %s", __func__, path);
		goto fail;
	}
	umask(old);
	if (grp != NULL && chown(path, (uid_t)-1, grp->gr_gid) == -1) {
		log_warn("%s: chown %s", __func__, path);
		goto fail_unlink;
	}
	if (chmod(path, mode & 0777) == -1) {
		log_warn("%s: chmod %s", __func__, path);
		goto fail_unlink;
	}
	if (listen(fd, 64) == -1) {
		log_warn("%s: listen", __func__);
		goto fail_unlink;
	}
	return fd;
fail_unlink:
	unlink(path);
fail:
	close(fd);
	return -1;
}

static int
tcp_listen(const char *spec)
{
	struct addrinfo hints = {0}, *res = NULL;
	char *host, *port;
	int fd = -1, on = 1, rc;

	if (http_listen_parse(spec, &host, &port) == -1) {
		log_warnx("%s: listen address \"%s\": want HOST:PORT or "
			  "[V6ADDR]:PORT",
		    __func__, spec);
		return -1;
	}
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		log_warnx("%s: %s: %s", __func__, spec, gai_strerror(rc));
		goto done;
	}
	fd = socket(res->ai_family,
	    res->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, res->ai_protocol);
	if (fd == -1) {
		log_warn("%s: socket", __func__);
		goto done;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (res->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, res->ai_addr, res->ai_addrlen) == -1 ||
	    listen(fd, 64) == -1) {
		log_warn("%s: %s", __func__, spec);
		close(fd);
		fd = -1;
	}
done:
	if (res != NULL)
		freeaddrinfo(res);
	free(host);
	free(port);
	return fd;
}

/*
 * Reads the console listener's PEM certificate (chain) and key into memory
 * and checks with GnuTLS that they parse and belong together, so a bad file
 * stops the start with its own name instead of a TLS error at the first
 * browser.  A file holding just "none" is systemd's SetCredential= fallback
 * of vmmod.service: the LoadCredential= source was missing.
 */
static void tls_clear(struct tls_pair *);

static int
tls_load(struct tls_pair *t, const char *cert, const char *key)
{
	gnutls_certificate_credentials_t cred = NULL;
	gnutls_datum_t dc, dk;
	const char *what = cert, *bad = NULL;
	size_t len;
	int rc;

	memset(t, 0, sizeof(*t));
	if ((t->cert = read_file(cert, 1 << 20, &len)) == NULL)
		goto fail_errno;
	dc.data = (unsigned char *)t->cert;
	dc.size = (unsigned)len;
	what = key;
	if ((t->key = read_file(key, 1 << 20, &t->key_len)) == NULL)
		goto fail_errno;
	dk.data = (unsigned char *)t->key;
	dk.size = (unsigned)t->key_len;
	if (strcmp(t->cert, "none") == 0 || strcmp(t->key, "none") == 0 ||
	    strstr(t->cert, "-----BEGIN") == NULL ||
	    strstr(t->key, "-----BEGIN") == NULL) {
		log_warnx("console listener: %s or %s holds no PEM data (with "
			  "systemd: is the LoadCredential= source of "
			  "vmmod.service there?)",
		    cert, key);
		goto fail;
	}
	if ((rc = gnutls_certificate_allocate_credentials(&cred)) < 0)
		bad = gnutls_strerror(rc);
	else if ((rc = gnutls_certificate_set_x509_key_mem2(
		      cred, &dc, &dk, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0)
		bad = gnutls_strerror(rc);
	if (cred != NULL)
		gnutls_certificate_free_credentials(cred);
	if (bad != NULL) {
		log_warnx("console listener: certificate %s with key %s: %s",
		    cert, key, bad);
		goto fail;
	}
	return 0;
fail_errno:
	log_warn("console listener: %s", what);
fail:
	tls_clear(t);
	return -1;
}

static void
tls_clear(struct tls_pair *t)
{
	if (t->key != NULL)
		gnutls_memset(t->key, 0, t->key_len);
	free(t->key);
	free(t->cert);
	memset(t, 0, sizeof(*t));
}

/* TLS 1.2 and 1.3 only; GnuTLS's NORMAL for the rest. */
#define CONSOLE_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

static int
daemon_start(
    struct listener *l, const struct vmmod_conf *conf, unsigned threads)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	    MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG;

	/* the logger first, so MHD's own start-up messages go through it */
	struct MHD_OptionItem opts[] = {
	    {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL},
	    {MHD_OPTION_LISTEN_SOCKET, l->fd, NULL},
	    {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, l},
	    {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, l},
	    {MHD_OPTION_THREAD_POOL_SIZE, threads, NULL},
	    {MHD_OPTION_CONNECTION_LIMIT,
		conf->max_conns ? conf->max_conns : 64, NULL},
	    {MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		l->tcp ? conf->max_conns_per_ip : 0, NULL},
	    {MHD_OPTION_CONNECTION_TIMEOUT,
		conf->conn_timeout_s ? conf->conn_timeout_s : 30, NULL},
	    /* the console listener's TLS, else the end */
	    {MHD_OPTION_END, 0, NULL},
	    {MHD_OPTION_END, 0, NULL},
	    {MHD_OPTION_END, 0, NULL},
	    {MHD_OPTION_END, 0, NULL},
	};
	size_t n = nitems(opts) - 4;

	if (l->console) {
		flags |= MHD_USE_TLS;
		opts[n++] = (struct MHD_OptionItem){
		    MHD_OPTION_HTTPS_MEM_CERT, 0, console_tls.cert};
		opts[n++] = (struct MHD_OptionItem){
		    MHD_OPTION_HTTPS_MEM_KEY, 0, console_tls.key};
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES,
		    0, (void *)CONSOLE_TLS_PRIORITIES};
	}

	l->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, l,
	    MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	if (l->d == NULL) {
		log_warnx("%s: cannot start the HTTP daemon", __func__);
		return -1;
	}
	return 0;
}

/* allowed_origins of vmmod.conf, at start and on a reload. */
void
http_origins_reload(const char *allowed)
{
	char *next = allowed != NULL ? xstrdup(allowed) : NULL, *old;

	pthread_mutex_lock(&origins_mtx);
	old = allowed_origins;
	allowed_origins = next;
	pthread_mutex_unlock(&origins_mtx);
	free(old);
}

int
http_start(const struct vmmod_conf *conf)
{
	pthread_condattr_t ca;
	struct listener *l;

	struct vmmod_conf cc;
	size_t n;

	http_origins_reload(conf->allowed_origins);
	free(console_base);
	free(console_origin);
	console_base = console_origin = NULL;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sse_cond, &ca);
	pthread_condattr_destroy(&ca);
	cond_ready = true;
	sse_stopping = work_stopping = false;
	static_start(conf->web_root);
	/*
	 * The console listener: its certificate first (a bad one stops the
	 * start before anything listens), and console URLs point at it --
	 * at console_url_base when that is set (the URL browsers use, e.g. a
	 * name or a NAT), else at https://<console_listen>.
	 */
	if (conf->console_listen != NULL) {
		if (conf->console_tls_cert == NULL ||
		    conf->console_tls_key == NULL) {
			log_warnx("console listener: console_tls_cert and "
				  "console_tls_key are needed");
			goto fail;
		}
		if (tls_load(&console_tls, conf->console_tls_cert,
			conf->console_tls_key) == -1)
			goto fail;
		if (conf->console_url_base != NULL)
			console_base = xstrdup(conf->console_url_base);
		else
			xasprintf(
			    &console_base, "https://%s", conf->console_listen);
		/* conf.c made sure of "http://" or "https://" */
		n = strstr(console_base, "://") + 3 - console_base;
		console_origin = xstrndup(
		    console_base, n + strcspn(console_base + n, "/?#"));
	}
	cc = *conf;
	if (console_base != NULL)
		cc.console_url_base = console_base;
	if (console_start(&cc) == -1)
		goto fail;
	if (conf->socket_path != NULL) {
		l = &listeners[0];
		if ((l->fd = unix_listen(conf->socket_path, conf->socket_mode,
			 conf->socket_group)) == -1)
			goto fail;
		l->path = xstrdup(conf->socket_path);
		if (daemon_start(l, conf, 4) == -1)
			goto fail;
		log_info("listening on %s", conf->socket_path);
	}
	if (conf->listen != NULL) {
		l = &listeners[1];
		l->tcp = true;
		if (conf->token_file == NULL) {
			log_warnx(
			    "%s: a TCP listener needs a token file", __func__);
			goto fail;
		}
		if (http_token_load(conf->token_file) == -1 ||
		    (l->fd = tcp_listen(conf->listen)) == -1 ||
		    daemon_start(l, conf, 2) == -1)
			goto fail;
		log_info("listening on %s (token in %s)", conf->listen,
		    conf->token_file);
	}
	if (conf->console_listen != NULL) {
		l = &listeners[2];
		l->tcp = l->console = true;
		if ((l->fd = tcp_listen(conf->console_listen)) == -1 ||
		    daemon_start(l, conf, 2) == -1)
			goto fail;
		log_info("console listener on https://%s (consoles only; "
			 "console URLs at %s)",
		    conf->console_listen, console_base);
	}
	if (pthread_create(&ka_thread, NULL, sse_keepalive_main, NULL) != 0) {
		log_warnx("%s: cannot start the keepalive thread", __func__);
		goto fail;
	}
	ka_running = true;
	return 0;
fail:
	http_stop();
	return -1;
}

void
http_stop(void)
{
	struct sse *s;
	size_t i;

	/* no new connections; a quiesced daemon leaves its socket to us */
	for (i = 0; i < nitems(listeners); i++)
		if (listeners[i].d != NULL &&
		    MHD_quiesce_daemon(listeners[i].d) == MHD_INVALID_SOCKET)
			listeners[i].fd = -1;
	/* MHD must not be stopped with suspended connections: end them. */
	pthread_mutex_lock(&work_mtx);
	work_stopping = true;
	while (work_busy > 0)
		pthread_cond_wait(&work_cond, &work_mtx);
	pthread_mutex_unlock(&work_mtx);
	pthread_mutex_lock(&sse_mtx);
	sse_stopping = true;
	for (s = sse_head; s != NULL; s = s->next) {
		pthread_mutex_lock(&s->mtx);
		s->closing = true;
		sse_kick(s);
		pthread_mutex_unlock(&s->mtx);
	}
	pthread_cond_broadcast(&sse_cond);
	pthread_mutex_unlock(&sse_mtx);
	if (ka_running) {
		pthread_join(ka_thread, NULL);
		ka_running = false;
	}
	if (cond_ready) {
		pthread_cond_destroy(&sse_cond);
		cond_ready = false;
	}
	/* upgraded sockets must be closed before their daemon stops */
	console_stop();
	for (i = 0; i < nitems(listeners); i++) {
		struct listener *l = &listeners[i];

		if (l->d != NULL)
			MHD_stop_daemon(l->d);
		if (l->fd > 0)
			close(l->fd);
		if (l->path != NULL)
			unlink(l->path);
		free(l->path);
		memset(l, 0, sizeof(*l));
	}
	tls_clear(&console_tls);
	static_start(NULL);
}
