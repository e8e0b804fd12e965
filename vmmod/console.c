/*
 * Consoles in the browser.  An authenticated POST /api/vms/{name}/console
 * mints a single-use ticket (30 s) and answers the console page's absolute
 * URL; the page (GET /console/{name}) consumes it and sets a console session
 * cookie for that VM, so the window can reconnect; the websocket
 * (GET /api/vms/{name}/console/{serial,vnc}) wants that cookie or a ticket
 * and a matching Origin.  http.c does the 101 and hands the socket over.
 *
 * One I/O thread waits on every console socket with epoll.  A VM's serial
 * console is one libvirt stream (virt.c), opened by the first viewer and
 * fanned out to all of them: its output arrives on libvirt's event thread
 * and is queued to each viewer's websocket there, input from any viewer goes
 * to the guest.  VNC is one virDomainOpenGraphicsFD socket per viewer (RFB is
 * a per-client protocol), bytes relayed both ways.  con_mtx guards viewers,
 * streams and every wslay context; libvirt is never called while holding it.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "vmmod.h"

#define TICKET_MAX 64
#define SESSION_MAX 64
#define SESSION_TTL (8 * 3600) /* the console window's cookie */
#define VIEWER_MAX 64
#define MSG_MAX (256 * 1024) /* from a browser; RFB cut text is the biggest */
/* Output held for a browser that reads too slowly before it is closed
 * (console_queue_kb; 8 MB by default, at most VIEWER_MAX of them). */
static size_t queued_max = 8 * 1024 * 1024;
#define SERIAL_IN_MAX (64 * 1024) /* input not yet sent to the guest */
#define VNC_OUT_MAX (1024 * 1024) /* input not yet written to QEMU */
#define IDLE_S 1800 /* no input from the viewer: closed */
#define PING_S 30
#define DEAD_S 75 /* nothing at all from the browser, not even a pong */
#define CLOSE_S 5 /* the browser's answer to our close frame */
#define TICK_MS 5000

#define CSP_CONSOLE                                                            \
	"default-src 'self'; script-src 'self'; style-src 'self'; "            \
	"connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "   \
	"base-uri 'none'; form-action 'none'; object-src 'none'"

struct ticket {
	char id[CONSOLE_ID_LEN + 1];
	char uuid[37];
	enum console_type type;
	time_t expires; /* 0: free slot */
};

struct csession {
	char id[CONSOLE_ID_LEN + 1];
	char uuid[37];
	time_t expires;
};

struct viewer;
enum { H_WAKE, H_WS, H_VNC };
struct handle {
	int kind;
	struct viewer *v;
};

/* One VM's serial console stream, shared by its viewers. */
struct vmcon {
	struct vmcon *next;
	char uuid[37];
	struct virt_console *st;
	struct viewer *viewers;
	unsigned refs; /* viewers + websockets not yet upgraded */
	bool eof;
	char *in; /* input for the guest, sent by the I/O thread */
	size_t inlen;
};

struct viewer {
	struct viewer *next, *con_next;
	enum console_type type;
	char uuid[37];
	struct ws *ws;
	int fd;
	void *urh;
	struct handle h_ws, h_vnc;
	uint32_t ev_ws, ev_vnc; /* what epoll waits for */
	struct vmcon *con; /* serial */
	int vnc; /* VNC: QEMU's socket, -1 */
	char *vout; /* VNC: input not written yet */
	size_t voutlen;
	time_t last_input, last_rx, last_ping, close_at;
	bool kick, dead;
};

/* A websocket accepted, 101 not sent yet (api_upgrade's arg). */
struct pending {
	enum console_type type;
	char uuid[37];
	struct vmcon *con;
	int vnc;
};

static pthread_mutex_t tick_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct ticket tickets[TICKET_MAX];
static struct csession csessions[SESSION_MAX];

static pthread_mutex_t con_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t open_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct vmcon *cons;
static struct viewer *viewers;
static unsigned nviewers, npending;
static int ep = -1, wakefd = -1;
static struct handle wake_h = {H_WAKE, NULL};
static pthread_t io_tid;
static bool running, stopping;
static char *url_base, *origins, *web_root;
static pthread_mutex_t origins_mtx = PTHREAD_MUTEX_INITIALIZER; /* origins */

/* ---- pure parts --------------------------------------------------------- */

static time_t
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

int
console_type_parse(const char *s, enum console_type *tp)
{
	if (s != NULL && strcmp(s, "serial") == 0)
		*tp = CONSOLE_SERIAL;
	else if (s != NULL && strcmp(s, "vnc") == 0)
		*tp = CONSOLE_VNC;
	else
		return -1;
	return 0;
}

const char *
console_type_name(enum console_type t)
{
	return t == CONSOLE_VNC ? "vnc" : "serial";
}

/* '2' + {"cols":N,"rows":N}, strictly. */
static int
resize_parse(const char *text, size_t len, struct console_msg *m)
{
	json_tokener *tok = json_tokener_new();
	json_object *o, *v;
	int64_t n[2];
	const char *keys[2] = {"cols", "rows"};
	int i, ret = -1;

	json_tokener_set_flags(
	    tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, text, (int)len);
	if (json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len ||
	    !json_object_is_type(o, json_type_object))
		goto done;
	for (i = 0; i < 2; i++) {
		if (!json_object_object_get_ex(o, keys[i], &v) ||
		    !json_object_is_type(v, json_type_int))
			goto done;
		n[i] = json_object_get_int64(v);
		if (n[i] < 1 || n[i] > 10000)
			goto done;
	}
	m->cols = (unsigned)n[0];
	m->rows = (unsigned)n[1];
	ret = 0;
done:
	json_object_put(o);
	json_tokener_free(tok);
	return ret;
}

int
console_msg_parse(const uint8_t *msg, size_t len, struct console_msg *m)
{
	memset(m, 0, sizeof(*m));
	if (len == 0 || len > MSG_MAX)
		return -1;
	switch (msg[0]) {
	case CONSOLE_IN:
		m->type = CONSOLE_IN;
		m->data = msg + 1;
		m->len = len - 1;
		return 0;
	case CONSOLE_RESIZE:
		m->type = CONSOLE_RESIZE;
		return resize_parse((const char *)msg + 1, len - 1, m);
	default:
		return -1;
	}
}

/* Compares all of both ids, whatever the first difference. */
static bool
id_eq(const char *a, const char *b)
{
	unsigned char d = 0;
	size_t i;

	if (strlen(a) != CONSOLE_ID_LEN || strlen(b) != CONSOLE_ID_LEN)
		return false;
	for (i = 0; i < CONSOLE_ID_LEN; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

int
console_ticket_new(const char *uuid, enum console_type type, time_t now,
    char out[CONSOLE_ID_LEN + 1])
{
	struct ticket *t = &tickets[0];
	size_t i;

	if (http_random_hex(out) == -1)
		return -1;
	pthread_mutex_lock(&tick_mtx);
	/* a free or expired slot, else the one expiring first */
	for (i = 0; i < TICKET_MAX; i++) {
		if (tickets[i].expires <= now) {
			t = &tickets[i];
			break;
		}
		if (tickets[i].expires < t->expires)
			t = &tickets[i];
	}
	snprintf(t->id, sizeof(t->id), "%s", out);
	snprintf(t->uuid, sizeof(t->uuid), "%s", uuid);
	t->type = type;
	t->expires = now + CONSOLE_TICKET_TTL;
	pthread_mutex_unlock(&tick_mtx);
	return 0;
}

int
console_ticket_take(
    const char *id, const char *uuid, enum console_type type, time_t now)
{
	int ret = -1;
	size_t i;

	if (id == NULL)
		return -1;
	pthread_mutex_lock(&tick_mtx);
	for (i = 0; i < TICKET_MAX; i++) {
		if (tickets[i].expires == 0 || !id_eq(tickets[i].id, id))
			continue;
		/* single use: gone even when it was for another console */
		if (tickets[i].expires > now &&
		    strcmp(tickets[i].uuid, uuid) == 0 &&
		    tickets[i].type == type)
			ret = 0;
		memset(&tickets[i], 0, sizeof(tickets[i]));
		break;
	}
	pthread_mutex_unlock(&tick_mtx);
	return ret;
}

int
console_session_new(const char *uuid, time_t now, char out[CONSOLE_ID_LEN + 1])
{
	struct csession *s = &csessions[0];
	size_t i;

	if (http_random_hex(out) == -1)
		return -1;
	pthread_mutex_lock(&tick_mtx);
	for (i = 0; i < SESSION_MAX; i++) {
		if (csessions[i].expires <= now) {
			s = &csessions[i];
			break;
		}
		if (csessions[i].expires < s->expires)
			s = &csessions[i];
	}
	snprintf(s->id, sizeof(s->id), "%s", out);
	snprintf(s->uuid, sizeof(s->uuid), "%s", uuid);
	s->expires = now + SESSION_TTL;
	pthread_mutex_unlock(&tick_mtx);
	return 0;
}

bool
console_session_ok(const char *id, const char *uuid, time_t now)
{
	bool ok = false;
	size_t i;

	if (id == NULL)
		return false;
	pthread_mutex_lock(&tick_mtx);
	for (i = 0; i < SESSION_MAX && !ok; i++)
		ok = csessions[i].expires > now &&
		    strcmp(csessions[i].uuid, uuid) == 0 &&
		    id_eq(csessions[i].id, id);
	pthread_mutex_unlock(&tick_mtx);
	return ok;
}

void
console_reset(void)
{
	pthread_mutex_lock(&tick_mtx);
	memset(tickets, 0, sizeof(tickets));
	memset(csessions, 0, sizeof(csessions));
	pthread_mutex_unlock(&tick_mtx);
}

void
console_cookie_name(const char *uuid, char *buf, size_t size)
{
	snprintf(buf, size, "vmmod_console_%s", uuid);
}

bool
console_host_ok(const char *host)
{
	const char *p;
	size_t n;

	if (host == NULL || (n = strlen(host)) == 0 || n > 255 ||
	    host[0] == ':' || host[0] == '.' || host[0] == '-')
		return false;
	for (p = host; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			(*p >= '0' && *p <= '9') ||
			strchr(".-:[]", *p) != NULL))
			return false;
	return true;
}

/* Percent-encodes everything but RFC 3986's unreserved characters. */
static char *
url_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = xmalloc(3 * strlen(s) + 1), *q = out;
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p) != NULL) {
			*q++ = *p;
		} else {
			*q++ = '%';
			*q++ = hex[*p >> 4];
			*q++ = hex[*p & 15];
		}
	}
	*q = '\0';
	return out;
}

/* ---- viewers (under con_mtx) -------------------------------------------- */

static void
wake_io(void)
{
	uint64_t one = 1;

	if (wakefd != -1 && write(wakefd, &one, sizeof(one)) == -1 &&
	    errno != EAGAIN)
		log_warn("%s", __func__);
}

static void
epoll_set(int fd, struct handle *h, uint32_t *cur, uint32_t want)
{
	struct epoll_event ev = {.events = want, .data.ptr = h};

	if (fd == -1 || *cur == want)
		return;
	if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) == -1)
		log_warn("%s: epoll_ctl", __func__);
	*cur = want;
}

/* What epoll should wait for, from the websocket's and VNC's state. */
static void
viewer_arm(struct viewer *v)
{
	uint32_t ws = 0, vnc = 0;

	if (v->dead)
		return;
	if (ws_want_read(v->ws))
		ws |= EPOLLIN;
	if (ws_want_write(v->ws))
		ws |= EPOLLOUT;
	epoll_set(v->fd, &v->h_ws, &v->ev_ws, ws);
	if (v->vnc != -1) {
		/* a browser that reads slowly slows QEMU down, not our RAM */
		if (!ws_closing(v->ws) && ws_queued(v->ws) < queued_max / 2)
			vnc |= EPOLLIN;
		if (v->voutlen > 0)
			vnc |= EPOLLOUT;
		epoll_set(v->vnc, &v->h_vnc, &v->ev_vnc, vnc);
	}
}

/* Queues a close frame once; the peer's answer (or CLOSE_S) ends it. */
static void
viewer_close(struct viewer *v, uint16_t code, const char *why)
{
	if (v->dead || ws_closing(v->ws))
		return;
	log_debug("console %s %s: closing (%u %s)", v->uuid,
	    console_type_name(v->type), code, why);
	ws_close(v->ws, code, why);
	v->close_at = mono_now();
}

static void
viewer_flush(struct viewer *v)
{
	if (ws_write(v->ws) == -1)
		v->dead = true;
	viewer_arm(v);
}

static void
vnc_drop(struct viewer *v)
{
	if (v->vnc == -1)
		return;
	epoll_ctl(ep, EPOLL_CTL_DEL, v->vnc, NULL);
	close(v->vnc);
	v->vnc = -1;
	v->voutlen = 0;
}

static void
vnc_flush(struct viewer *v)
{
	ssize_t n;

	while (v->vnc != -1 && v->voutlen > 0) {
		n = write(v->vnc, v->vout, v->voutlen);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			vnc_drop(v);
			viewer_close(v, 1001, "console closed");
			break;
		}
		memmove(v->vout, v->vout + n, v->voutlen - n);
		v->voutlen -= n;
	}
}

static void
vnc_read(struct viewer *v)
{
	char buf[65536];
	ssize_t n;

	if (v->vnc == -1 || ws_closing(v->ws))
		return;
	do
		n = read(v->vnc, buf, sizeof(buf));
	while (n == -1 && errno == EINTR);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		/* QEMU went away: the VM stopped */
		vnc_drop(v);
		viewer_close(v, 1001, "console closed");
		return;
	}
	ws_send(v->ws, true, buf, n);
}

/* A message from the browser (ws_read, under con_mtx). */
static void
on_message(void *arg, struct ws *w, bool binary, const uint8_t *msg, size_t len)
{
	struct viewer *v = arg;
	struct console_msg m;
	struct vmcon *con = v->con;

	v->last_input = mono_now();
	if (v->type == CONSOLE_VNC) {
		if (!binary) {
			viewer_close(v, 1003, "RFB wants binary frames");
			return;
		}
		if (v->voutlen + len > VNC_OUT_MAX) {
			viewer_close(v, 1008, "too much input");
			return;
		}
		v->vout = xreallocarray(v->vout, v->voutlen + len, 1);
		memcpy(v->vout + v->voutlen, msg, len);
		v->voutlen += len;
		vnc_flush(v);
		return;
	}
	if (console_msg_parse(msg, len, &m) == -1) {
		viewer_close(v, 1008, "bad console message");
		return;
	}
	if (m.type == CONSOLE_RESIZE) {
		log_debug(
		    "console %s: viewer is %ux%u", v->uuid, m.cols, m.rows);
		return;
	}
	if (con->inlen + m.len > SERIAL_IN_MAX) {
		viewer_close(v, 1008, "too much input");
		return;
	}
	con->in = xreallocarray(con->in, con->inlen + m.len + 1, 1);
	memcpy(con->in + con->inlen, m.data, m.len);
	con->inlen += m.len;
}

/* Guest output or the stream's end, on libvirt's event thread. */
static void
on_stream(void *arg, const char *data, ssize_t len)
{
	struct vmcon *con = arg;
	struct viewer *v;
	char stackbuf[16385], *frame = stackbuf;

	pthread_mutex_lock(&con_mtx);
	if (len <= 0) {
		con->eof = true;
		for (v = con->viewers; v != NULL; v = v->con_next) {
			viewer_close(v, 1001, "console closed");
			viewer_flush(v);
		}
		pthread_mutex_unlock(&con_mtx);
		wake_io();
		return;
	}
	if ((size_t)len + 1 > sizeof(stackbuf))
		frame = xmalloc(len + 1);
	frame[0] = CONSOLE_OUT;
	memcpy(frame + 1, data, len);
	for (v = con->viewers; v != NULL; v = v->con_next) {
		if (v->dead || ws_closing(v->ws))
			continue;
		if (ws_queued(v->ws) > queued_max) {
			log_info("console %s %s: viewer reads too slowly "
				 "(%zu kB queued), closing it",
			    v->uuid, console_type_name(v->type),
			    ws_queued(v->ws) / 1024);
			viewer_close(v, 1008, "viewer reads too slowly");
		} else
			ws_send(v->ws, true, frame, len + 1);
		viewer_flush(v);
	}
	if (frame != stackbuf)
		free(frame);
	pthread_mutex_unlock(&con_mtx);
}

static void
viewer_read(struct viewer *v)
{
	if (ws_read(v->ws) == -1)
		v->dead = true;
	if (ws_take_rx(v->ws))
		v->last_rx = mono_now();
}

/* Pings, idle and dead viewers, unanswered closes. */
static void
viewer_timers(struct viewer *v, time_t now)
{
	if (v->dead)
		return;
	if (ws_closing(v->ws)) {
		if (v->close_at == 0)
			v->close_at = now;
		if (now - v->close_at >= CLOSE_S)
			v->dead = true;
		return;
	}
	if (now - v->last_rx >= DEAD_S) {
		log_debug("console %s: viewer silent, dropped", v->uuid);
		v->dead = true;
	} else if (now - v->last_input >= IDLE_S) {
		viewer_close(v, 1000, "idle timeout");
	} else if (now - v->last_ping >= PING_S) {
		ws_ping(v->ws);
		v->last_ping = now;
	}
}

/* Frees what the I/O thread took out of the lists (not under con_mtx). */
static void
viewer_free(struct viewer *v)
{
	if (v->fd != -1)
		epoll_ctl(ep, EPOLL_CTL_DEL, v->fd, NULL);
	vnc_drop(v);
	ws_free(v->ws);
	if (v->urh != NULL)
		http_upgrade_close(v->urh);
	log_info(
	    "console %s %s: viewer gone", v->uuid, console_type_name(v->type));
	free(v->vout);
	free(v);
}

static void
con_free(struct vmcon *con)
{
	log_info("console %s: serial stream closed", con->uuid);
	virt_console_close(con->st);
	free(con->in);
	free(con);
}

/* ---- the I/O thread ----------------------------------------------------- */

struct input {
	struct vmcon *con;
	char *buf;
	size_t len;
};

static void
io_event(struct epoll_event *e)
{
	struct handle *h = e->data.ptr;
	struct viewer *v = h->v;
	uint64_t n;

	if (h->kind == H_WAKE) {
		if (read(wakefd, &n, sizeof(n)) == -1 && errno != EAGAIN)
			log_warn("%s: eventfd", __func__);
		return;
	}
	if (v->dead)
		return;
	if (h->kind == H_WS) {
		if (e->events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			viewer_read(v);
		if (!v->dead && (e->events & EPOLLOUT))
			viewer_flush(v);
	} else {
		if (e->events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			vnc_read(v);
		if (e->events & EPOLLOUT)
			vnc_flush(v);
	}
}

static void *
io_main(void *arg)
{
	struct epoll_event evs[32];
	struct viewer *v, **vp, *gone;
	struct vmcon *con, **cp, *cgone;
	struct input *in = NULL;
	size_t nin, i;
	time_t now;
	int n, k;

	for (;;) {
		pthread_mutex_lock(&con_mtx);
		k = viewers != NULL ? TICK_MS : -1;
		pthread_mutex_unlock(&con_mtx);
		n = epoll_wait(ep, evs, nitems(evs), k);
		if (n == -1 && errno != EINTR) {
			log_warn("%s: epoll_wait", __func__);
			n = 0;
		}
		pthread_mutex_lock(&con_mtx);
		if (stopping) {
			pthread_mutex_unlock(&con_mtx);
			break;
		}
		for (k = 0; k < n; k++)
			io_event(&evs[k]);
		now = mono_now();
		gone = NULL;
		for (vp = &viewers; (v = *vp) != NULL;) {
			if (v->kick && !v->dead) {
				viewer_read(v);
				v->kick = false;
			}
			viewer_timers(v, now);
			if (!v->dead)
				viewer_flush(v);
			if (!v->dead && !ws_done(v->ws)) {
				vp = &v->next;
				continue;
			}
			/* out of the lists: no other thread sees it now */
			*vp = v->next;
			nviewers--;
			if (v->con != NULL) {
				struct viewer **pp;

				for (pp = &v->con->viewers; *pp != NULL;
				     pp = &(*pp)->con_next)
					if (*pp == v) {
						*pp = v->con_next;
						break;
					}
				v->con->refs--;
			}
			v->next = gone;
			gone = v;
		}
		/* input for the guests, and streams nobody uses any more */
		nin = 0;
		cgone = NULL;
		for (cp = &cons; (con = *cp) != NULL;) {
			if (con->inlen > 0 && !con->eof && con->refs > 0) {
				in = xreallocarray(in, nin + 1, sizeof(*in));
				in[nin].con = con;
				in[nin].buf = con->in;
				in[nin++].len = con->inlen;
				con->in = NULL;
				con->inlen = 0;
			}
			if (con->refs == 0) {
				*cp = con->next;
				con->next = cgone;
				cgone = con;
			} else
				cp = &con->next;
		}
		pthread_mutex_unlock(&con_mtx);

		/* libvirt calls: never under con_mtx (its callbacks take it) */
		for (i = 0; i < nin; i++) {
			if (virt_console_send(
				in[i].con->st, in[i].buf, in[i].len) == -1)
				log_warnx(
				    "console %s: input lost", in[i].con->uuid);
			free(in[i].buf);
		}
		while ((v = gone) != NULL) {
			gone = v->next;
			viewer_free(v);
		}
		while ((con = cgone) != NULL) {
			cgone = con->next;
			con_free(con);
		}
	}
	free(in);
	return NULL;
}

/* ---- websocket set-up (MHD threads) ------------------------------------- */

/* The VM's stream, opened by its first viewer; a reference for the caller. */
static struct vmcon *
con_acquire(const char *uuid, struct api_error *err)
{
	struct vmcon *con;
	bool stale = false;

	pthread_mutex_lock(&open_mtx);
	pthread_mutex_lock(&con_mtx);
	for (con = cons; con != NULL; con = con->next) {
		if (strcmp(con->uuid, uuid) != 0)
			continue;
		if (!con->eof) {
			con->refs++;
			pthread_mutex_unlock(&con_mtx);
			pthread_mutex_unlock(&open_mtx);
			return con;
		}
		stale = true; /* ended, its stream not closed yet */
	}
	pthread_mutex_unlock(&con_mtx);
	con = xcalloc(1, sizeof(*con));
	snprintf(con->uuid, sizeof(con->uuid), "%s", uuid);
	con->refs = 1;
	/* FORCE only takes over our own ended stream */
	if ((con->st = virt_console_open(uuid, stale, on_stream, con, err)) ==
	    NULL) {
		free(con);
		pthread_mutex_unlock(&open_mtx);
		return NULL;
	}
	pthread_mutex_lock(&con_mtx);
	con->next = cons;
	cons = con;
	pthread_mutex_unlock(&con_mtx);
	pthread_mutex_unlock(&open_mtx);
	log_info("console %s: serial stream opened", uuid);
	return con;
}

static void
pending_cancel(void *arg)
{
	struct pending *p = arg;

	pthread_mutex_lock(&con_mtx);
	npending--;
	if (p->con != NULL)
		p->con->refs--; /* the I/O thread closes an unused stream */
	pthread_mutex_unlock(&con_mtx);
	if (p->vnc != -1)
		close(p->vnc);
	free(p);
	wake_io();
}

/* http.c sent the 101: fd and urh are ours. */
static void
viewer_start(void *arg, int fd, const char *extra, size_t extra_len, void *urh)
{
	struct pending *p = arg;
	struct epoll_event ev = {.events = 0};
	struct viewer *v = xcalloc(1, sizeof(*v));
	enum console_type type = p->type;
	char uuid[sizeof(v->uuid)];
	int fl;

	v->type = p->type;
	memcpy(v->uuid, p->uuid, sizeof(v->uuid));
	memcpy(uuid, p->uuid, sizeof(uuid));
	v->fd = fd;
	v->urh = urh;
	v->con = p->con;
	v->vnc = p->vnc;
	v->h_ws = (struct handle){H_WS, v};
	v->h_vnc = (struct handle){H_VNC, v};
	v->last_input = v->last_rx = v->last_ping = mono_now();
	free(p);
	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		log_warn("%s: fcntl", __func__);
	/* keystrokes and their echo go out at once (fails on Unix sockets) */
	setsockopt(fd, IPPROTO_TCP, TCP_CORK, &(int){0}, sizeof(int));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
	v->ws = ws_new(fd, extra, extra_len, MSG_MAX, on_message, v);

	pthread_mutex_lock(&con_mtx);
	npending--;
	if (v->ws == NULL || stopping) {
		if (v->con != NULL)
			v->con->refs--;
		pthread_mutex_unlock(&con_mtx);
		v->fd = -1; /* never added to epoll */
		viewer_free(v);
		wake_io();
		return;
	}
	ev.data.ptr = &v->h_ws;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1)
		log_warn("%s: epoll_ctl", __func__);
	if (v->vnc != -1) {
		ev.data.ptr = &v->h_vnc;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, v->vnc, &ev) == -1)
			log_warn("%s: epoll_ctl", __func__);
	}
	v->next = viewers;
	viewers = v;
	nviewers++;
	if (v->con != NULL) {
		v->con_next = v->con->viewers;
		v->con->viewers = v;
		if (v->con->eof)
			viewer_close(v, 1001, "console closed");
	}
	v->kick = true; /* bytes MHD read past the headers */
	viewer_arm(v);
	/* the io thread owns v once the lock is gone (it may close and free
	 * it at once): log from what we know */
	pthread_mutex_unlock(&con_mtx);
	log_info(
	    "console %s %s: viewer connected", uuid, console_type_name(type));
	wake_io();
}

/* ---- API handlers ------------------------------------------------------- */

static void
error_resp(
    struct api_response *resp, int status, const char *code, const char *msg)
{
	struct api_error err;

	api_error_set(&err, status, code, "%s", msg);
	api_response_error(resp, &err);
}

static const char *
req_arg(const struct api_request *req, const char *key)
{
	return req->arg != NULL ? req->arg(req->arg_cls, key) : NULL;
}

static const char *
req_header(const struct api_request *req, const char *key)
{
	return req->header != NULL ? req->header(req->arg_cls, key) : NULL;
}

static const char *
req_cookie(const struct api_request *req, const char *uuid)
{
	char name[64];

	if (req->cookie == NULL)
		return NULL;
	console_cookie_name(uuid, name, sizeof(name));
	return req->cookie(req->arg_cls, name);
}

/* Does the VM object list this console, and is it running?  Answers if not. */
static int
vm_console_ready(
    const char *uuid, enum console_type type, struct api_response *resp)
{
	json_object *vm, *c, *st;
	size_t i;
	bool has = false, up;

	if ((vm = state_vm_json(uuid)) == NULL) {
		error_resp(resp, 404, "not_found", "no such VM");
		return -1;
	}
	if (json_object_object_get_ex(vm, "consoles", &c) &&
	    json_object_is_type(c, json_type_array))
		for (i = 0; i < json_object_array_length(c); i++)
			if (strcmp(json_object_get_string(
				       json_object_array_get_idx(c, i)),
				console_type_name(type)) == 0)
				has = true;
	up = json_object_object_get_ex(vm, "state", &st) &&
	    strcmp(json_object_get_string(st), "running") == 0;
	json_object_put(vm);
	if (!has) {
		error_resp(resp, 409, "no_console",
		    type == CONSOLE_VNC ? "the VM has no graphical console"
					: "the VM has no serial console");
		return -1;
	}
	if (!up) {
		error_resp(resp, 409, "wrong_state", "the VM is not running");
		return -1;
	}
	return 0;
}

void
console_api_ticket(const struct api_request *req, const char *name,
    const char *uuid, struct api_response *resp)
{
	struct api_error err;
	enum console_type type = CONSOLE_SERIAL;
	json_object *o = NULL, *r;
	const char *host;
	char ticket[CONSOLE_ID_LEN + 1], *url, *ename;

	if (api_body_parse(
		req->content_type, req->body, req->body_len, &o, &err) == -1) {
		api_response_error(resp, &err);
		return;
	}
	if (o != NULL) {
		json_object_object_foreach(o, key, val)
		{
			if (strcmp(key, "type") != 0 ||
			    !json_object_is_type(val, json_type_string) ||
			    console_type_parse(
				json_object_get_string(val), &type) == -1) {
				json_object_put(o);
				error_resp(resp, 400, "bad_field",
				    "type must be \"serial\" or \"vnc\"");
				return;
			}
		}
		json_object_put(o);
	}
	if (vm_console_ready(uuid, type, resp) == -1)
		return;
	host = req_header(req, "Host");
	if (url_base == NULL && !console_host_ok(host)) {
		error_resp(resp, 400, "bad_host",
		    "no console_url_base configured and no usable Host header");
		return;
	}
	if (console_ticket_new(uuid, type, mono_now(), ticket) == -1) {
		error_resp(resp, 500, "internal", "no random numbers");
		return;
	}
	ename = url_escape(name);
	if (url_base != NULL)
		xasprintf(&url, "%s/console/%s?type=%s&ticket=%s", url_base,
		    ename, console_type_name(type), ticket);
	else
		xasprintf(&url, "http://%s/console/%s?type=%s&ticket=%s", host,
		    ename, console_type_name(type), ticket);
	free(ename);
	audit_log(req->peer, "console-ticket", name, console_type_name(type));
	r = json_object_new_object();
	json_object_object_add(r, "ticket", json_object_new_string(ticket));
	json_object_object_add(r, "url", json_object_new_string(url));
	json_object_object_add(
	    r, "expires_s", json_object_new_int(CONSOLE_TICKET_TTL));
	json_object_object_add(
	    r, "type", json_object_new_string(console_type_name(type)));
	free(url);
	resp->status = 200;
	resp->json = r;
}

/*
 * The built-in page, when web_root has no console.html: a bare serial
 * terminal (no escape sequences), its script allowed by a per-response nonce.
 */
static const char builtin_page[] =
    "<!doctype html><html><head><meta charset=\"utf-8\">"
    "<title>Console</title><style nonce=\"@N@\">"
    "body{margin:0;background:#111;color:#ddd;font:14px monospace}"
    "#s{padding:4px 8px;background:#222}"
    "#t{white-space:pre-wrap;word-break:break-all;padding:8px;margin:0;"
    "outline:none;height:calc(100vh - 40px);overflow:auto}</style></head>"
    "<body><div id=\"s\">connecting\xe2\x80\xa6</div>"
    "<pre id=\"t\" tabindex=\"0\"></pre><script nonce=\"@N@\">\n"
    "(function(){\n"
    "var name=location.pathname.split('/')[2],"
    "q=new URLSearchParams(location.search),type=q.get('type')||'serial';\n"
    "history.replaceState(null,'',location.pathname+'?type='+"
    "encodeURIComponent(type));\n"
    "var s=document.getElementById('s'),t=document.getElementById('t');\n"
    "if(type!=='serial'){s.textContent='This minimal page shows serial "
    "consoles only.';return;}\n"
    "var ws=new WebSocket((location.protocol==='https:'?'wss://':'ws://')+"
    "location.host+'/api/vms/'+name+'/console/serial');\n"
    "ws.binaryType='arraybuffer';\n"
    "var dec=new TextDecoder(),enc=new TextEncoder();\n"
    "ws.onopen=function(){s.textContent='connected: '+"
    "decodeURIComponent(name);t.focus();};\n"
    "ws.onclose=function(e){s.textContent='closed ('+e.code+"
    "(e.reason?': '+e.reason:'')+')';};\n"
    "ws.onmessage=function(e){var b=new Uint8Array(e.data);"
    "if(b[0]!==49)return;t.textContent+=dec.decode(b.subarray(1),"
    "{stream:true});if(t.textContent.length>200000)"
    "t.textContent=t.textContent.slice(-100000);"
    "t.scrollTop=t.scrollHeight;};\n"
    "function send(str){if(ws.readyState!==1)return;var d=enc.encode(str),"
    "m=new Uint8Array(d.length+1);m[0]=48;m.set(d,1);ws.send(m);}\n"
    "var keys={Enter:'\\r',Backspace:'\\x7f',Tab:'\\t',Escape:'\\x1b',"
    "ArrowUp:'\\x1b[A',ArrowDown:'\\x1b[B',ArrowRight:'\\x1b[C',"
    "ArrowLeft:'\\x1b[D'};\n"
    "t.addEventListener('keydown',function(e){var k=e.key;"
    "if(e.ctrlKey&&k.length===1){var c=k.toUpperCase().charCodeAt(0);"
    "if(c>=64&&c<96){send(String.fromCharCode(c-64));e.preventDefault();}"
    "return;}if(keys[k]){send(keys[k]);e.preventDefault();}"
    "else if(k.length===1&&!e.metaKey){send(k);e.preventDefault();}});\n"
    "t.addEventListener('paste',function(e){"
    "send(e.clipboardData.getData('text'));e.preventDefault();});\n"
    "})();\n</script></body></html>\n";

void
console_api_page(const struct api_request *req, const char *name,
    const char *uuid, struct api_response *resp)
{
	enum console_type type = CONSOLE_SERIAL;
	const char *t = req_arg(req, "type"), *ticket = req_arg(req, "ticket");
	char sid[CONSOLE_ID_LEN + 1], cookie[64], nonce[CONSOLE_ID_LEN + 1];
	char *path, *page;
	size_t len;
	time_t now = mono_now();

	if (t != NULL && console_type_parse(t, &type) == -1) {
		error_resp(
		    resp, 400, "bad_query", "type must be serial or vnc");
		return;
	}
	/* a reload keeps the (used) ticket in the URL: the cookie answers */
	if (!console_session_ok(req_cookie(req, uuid), uuid, now)) {
		if (ticket == NULL) {
			error_resp(resp, 401, "no_ticket",
			    "a console ticket is needed");
			return;
		}
		if (console_ticket_take(ticket, uuid, type, now) == -1) {
			error_resp(resp, 403, "bad_ticket",
			    "console ticket unknown, used or expired");
			return;
		}
		if (console_session_new(uuid, now, sid) == -1) {
			error_resp(resp, 500, "internal", "no random numbers");
			return;
		}
		console_cookie_name(uuid, cookie, sizeof(cookie));
		xasprintf(&resp->set_cookie,
		    "%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d",
		    cookie, sid, SESSION_TTL);
		audit_log(
		    req->peer, "console-page", name, console_type_name(type));
	}
	page = NULL;
	if (web_root != NULL) {
		xasprintf(&path, "%s/console.html", web_root);
		page = read_file(path, 1024 * 1024, &len);
		free(path);
	}
	if (page != NULL) {
		/* its assets by version, as the dashboard's (http.c) */
		char ver[ASSET_VER], to[32], *linked;

		http_asset_version(ver);
		snprintf(to, sizeof(to), "\"assets/v/%s/", ver);
		linked = str_replace_all(page, "\"assets/", to);
		free(page);
		page = linked;
		resp->csp = xstrdup(CSP_CONSOLE);
	} else {
		if (http_random_hex(nonce) == -1) {
			error_resp(resp, 500, "internal", "no random numbers");
			return;
		}
		nonce[32] = '\0';
		page = str_replace_all(builtin_page, "@N@", nonce);
		xasprintf(&resp->csp,
		    "default-src 'none'; script-src 'nonce-%s'; "
		    "style-src 'nonce-%s'; connect-src 'self'; "
		    "frame-ancestors 'none'; base-uri 'none'; "
		    "form-action 'none'",
		    nonce, nonce);
	}
	resp->status = 200;
	resp->content_type = "text/html; charset=utf-8";
	resp->text = page;
}

void
console_api_ws(const struct api_request *req, enum console_type type,
    const char *uuid, struct api_response *resp)
{
	struct api_upgrade *up;
	struct api_error err = {0};
	struct pending *p;
	const char *why, *ticket, *origin;
	char accept[WS_ACCEPT_LEN + 1];
	bool ok;
	int status, full;

	status = ws_handshake_check(req_header(req, "Upgrade"),
	    req_header(req, "Connection"),
	    req_header(req, "Sec-WebSocket-Version"),
	    req_header(req, "Sec-WebSocket-Key"), accept, &why);
	if (status != 0) {
		error_resp(resp, status, "bad_handshake", why);
		return;
	}
	origin = req_header(req, "Origin");
	pthread_mutex_lock(&origins_mtx);
	ok = http_origin_ok(origin, req_header(req, "Host"), origins);
	pthread_mutex_unlock(&origins_mtx);
	if (!ok) {
		error_resp(resp, 403, "bad_origin",
		    "Origin not allowed for a console");
		return;
	}
	ticket = req_arg(req, "ticket");
	if (ticket != NULL)
		ok = console_ticket_take(ticket, uuid, type, mono_now()) == 0;
	else
		ok =
		    console_session_ok(req_cookie(req, uuid), uuid, mono_now());
	if (!ok) {
		if (ticket == NULL && req_cookie(req, uuid) == NULL)
			error_resp(resp, 401, "no_ticket",
			    "a console ticket or console cookie is needed");
		else
			error_resp(resp, 403, "bad_ticket",
			    "console ticket or cookie unknown, used or expired");
		return;
	}
	if (vm_console_ready(uuid, type, resp) == -1)
		return;
	pthread_mutex_lock(&con_mtx);
	full = !running || stopping || nviewers + npending >= VIEWER_MAX;
	if (!full)
		npending++;
	pthread_mutex_unlock(&con_mtx);
	if (full) {
		error_resp(resp, 503, "too_many_consoles",
		    "no more console connections now");
		return;
	}
	p = xcalloc(1, sizeof(*p));
	p->type = type;
	p->vnc = -1;
	snprintf(p->uuid, sizeof(p->uuid), "%s", uuid);
	if (type == CONSOLE_SERIAL)
		p->con = con_acquire(uuid, &err);
	else if ((p->vnc = virt_graphics_fd(uuid, &err)) != -1)
		fcntl(p->vnc, F_SETFL, fcntl(p->vnc, F_GETFL) | O_NONBLOCK);
	if (p->con == NULL && p->vnc == -1) {
		pthread_mutex_lock(&con_mtx);
		npending--;
		pthread_mutex_unlock(&con_mtx);
		free(p);
		if (err.status == 0)
			api_error_set(&err, 500, "internal", "console failed");
		api_response_error(resp, &err);
		return;
	}
	audit_log(req->peer, "console", uuid, console_type_name(type));
	up = xcalloc(1, sizeof(*up));
	memcpy(up->accept, accept, sizeof(up->accept));
	up->start = viewer_start;
	up->cancel = pending_cancel;
	up->arg = p;
	resp->status = 101;
	resp->upgrade = up;
}

/* ---- start and stop ----------------------------------------------------- */

/* "https://host:port[/]" -> its origin, for the Origin check. */
static char *
origin_of(const char *base)
{
	const char *p = strstr(base, "://");
	size_t n;

	if (p == NULL)
		return NULL;
	n = p + 3 - base;
	n += strcspn(p + 3, "/?#");
	return xstrndup(base, n);
}

/* Websockets come from our own origin, the console listener's or one the
 * admin allowed (allowed_origins, at start and on a reload). */
void
console_origins_reload(const char *allowed)
{
	char *o = url_base != NULL ? origin_of(url_base) : NULL, *next, *old;

	xasprintf(
	    &next, "%s %s", allowed != NULL ? allowed : "", o != NULL ? o : "");
	free(o);
	pthread_mutex_lock(&origins_mtx);
	old = origins;
	origins = next;
	pthread_mutex_unlock(&origins_mtx);
	free(old);
}

int
console_start(const struct vmmod_conf *conf)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &wake_h};
	size_t n;

	if (running)
		return 0;
	free(url_base);
	free(origins);
	free(web_root);
	url_base = origins = web_root = NULL;
	if (conf->console_url_base != NULL && *conf->console_url_base != '\0') {
		if (!str_has_prefix(conf->console_url_base, "http://") &&
		    !str_has_prefix(conf->console_url_base, "https://")) {
			log_warnx("%s: console_url_base must start with "
				  "http:// or https://",
			    __func__);
			return -1;
		}
		url_base = xstrdup(conf->console_url_base);
		n = strlen(url_base);
		while (n > 0 && url_base[n - 1] == '/')
			url_base[--n] = '\0';
	}
	console_origins_reload(conf->allowed_origins);
	if (conf->web_root != NULL)
		web_root = xstrdup(conf->web_root);
	if (conf->console_queue_kb != 0)
		queued_max = (size_t)conf->console_queue_kb * 1024;
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    (wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1 ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, wakefd, &ev) == -1) {
		log_warn("%s: epoll", __func__);
		goto fail;
	}
	stopping = false;
	if (pthread_create(&io_tid, NULL, io_main, NULL) != 0) {
		log_warnx("%s: cannot start the console thread", __func__);
		goto fail;
	}
	running = true;
	return 0;
fail:
	if (ep != -1)
		close(ep);
	if (wakefd != -1)
		close(wakefd);
	ep = wakefd = -1;
	return -1;
}

void
console_stop(void)
{
	struct viewer *v;
	struct vmcon *con;

	if (!running)
		return;
	pthread_mutex_lock(&con_mtx);
	stopping = true;
	for (v = viewers; v != NULL; v = v->next) {
		viewer_close(v, 1001, "vmmod is stopping");
		if (ws_write(v->ws) == -1)
			v->dead = true;
	}
	pthread_mutex_unlock(&con_mtx);
	wake_io();
	pthread_join(io_tid, NULL);
	running = false;
	/* the thread is gone; on_stream still walks a stream's viewers
	 * until virt_console_close() shuts it out: streams first */
	while ((con = cons) != NULL) {
		cons = con->next;
		con_free(con);
	}
	while ((v = viewers) != NULL) {
		viewers = v->next;
		viewer_free(v);
	}
	nviewers = 0;
	close(ep);
	close(wakefd);
	ep = wakefd = -1;
}
