/*
 * RFC 6455 websockets on a socket libmicrohttpd handed over after a 101
 * (http.c does the upgrade, console.c owns the connections).  The framing is
 * wslay's: a server context whose recv/send callbacks read and write the
 * non-blocking socket, so masking, fragments, ping/pong, the close handshake,
 * UTF-8 of text frames and the message size limit are its job; this file
 * only checks the handshake headers, computes Sec-WebSocket-Accept with
 * nettle (SHA-1 + base64) and gives console.c a small pump interface.
 * Nothing here locks: the caller serializes calls on one struct ws.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nettle/base64.h>
#include <nettle/sha1.h>
#include <wslay/wslay.h>

#include "vmmod.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

struct ws {
	wslay_event_context_ptr ctx;
	int fd;
	char *extra; /* bytes MHD read past the request headers */
	size_t extra_len, extra_off;
	bool broken; /* the socket failed or hit EOF */
	bool rx; /* something arrived since ws_take_rx() */
	ws_message_fn on_message;
	void *arg;
};

/* ---- handshake (pure) --------------------------------------------------- */

int
ws_accept_key(const char *key, char out[WS_ACCEPT_LEN + 1])
{
	struct sha1_ctx sha;
	uint8_t digest[SHA1_DIGEST_SIZE];

	sha1_init(&sha);
	sha1_update(&sha, strlen(key), (const uint8_t *)key);
	sha1_update(&sha, strlen(WS_GUID), (const uint8_t *)WS_GUID);
	sha1_digest(&sha, sizeof(digest), digest);
	base64_encode_raw(out, sizeof(digest), digest);
	out[WS_ACCEPT_LEN] = '\0';
	return 0;
}

/* Is tok one of the comma separated tokens of a header value? */
static bool
has_token(const char *value, const char *tok)
{
	size_t n = strlen(tok), len;
	const char *p;

	for (p = value; p != NULL && *p != '\0';) {
		p += strspn(p, " \t,");
		len = strcspn(p, ",");
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len == n && strncasecmp(p, tok, n) == 0)
			return true;
		p += strcspn(p, ",");
	}
	return false;
}

int
ws_handshake_check(const char *upgrade, const char *connection,
    const char *version, const char *key, char accept[WS_ACCEPT_LEN + 1],
    const char **whyp)
{
	struct base64_decode_ctx b64;
	uint8_t raw[BASE64_DECODE_LENGTH(24)];
	size_t len = sizeof(raw);

	if (upgrade == NULL || !has_token(upgrade, "websocket") ||
	    connection == NULL || !has_token(connection, "upgrade")) {
		*whyp = "this route wants a websocket upgrade";
		return 426;
	}
	if (version == NULL || strcmp(version, "13") != 0) {
		*whyp = "Sec-WebSocket-Version must be 13";
		return 426;
	}
	/* the key is 16 random bytes in base64: exactly 24 characters */
	base64_decode_init(&b64);
	if (key == NULL || strlen(key) != 24 ||
	    !base64_decode_update(&b64, &len, raw, 24, key) ||
	    !base64_decode_final(&b64) || len != 16) {
		*whyp = "bad Sec-WebSocket-Key";
		return 400;
	}
	return ws_accept_key(key, accept);
}

/* ---- wslay callbacks ---------------------------------------------------- */

static ssize_t
ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
    void *user)
{
	struct ws *w = user;
	ssize_t n;

	if (w->extra_off < w->extra_len) {
		n = w->extra_len - w->extra_off < len
		    ? (ssize_t)(w->extra_len - w->extra_off)
		    : (ssize_t)len;
		memcpy(buf, w->extra + w->extra_off, n);
		w->extra_off += n;
		w->rx = true;
		return n;
	}
	do
		n = recv(w->fd, buf, len, 0);
	while (n == -1 && errno == EINTR);
	if (n > 0) {
		w->rx = true;
		return n;
	}
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	w->broken = true;
	wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

static ssize_t
ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
    int flags, void *user)
{
	struct ws *w = user;
	ssize_t n;

	do
		n = send(w->fd, data, len,
		    MSG_NOSIGNAL | (flags & WSLAY_MSG_MORE ? MSG_MORE : 0));
	while (n == -1 && errno == EINTR);
	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	w->broken = true;
	wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

static void
ws_msg_cb(wslay_event_context_ptr ctx,
    const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
	struct ws *w = user;

	/* control frames (ping, pong, close) are wslay's business */
	if (arg->opcode != WSLAY_TEXT_FRAME &&
	    arg->opcode != WSLAY_BINARY_FRAME)
		return;
	if (w->on_message != NULL)
		w->on_message(w->arg, w, arg->opcode == WSLAY_BINARY_FRAME,
		    arg->msg, arg->msg_length);
}

/* ---- connections -------------------------------------------------------- */

struct ws *
ws_new(int fd, const char *extra, size_t extra_len, size_t max_msg,
    ws_message_fn on_message, void *arg)
{
	static const struct wslay_event_callbacks cbs = {
	    .recv_callback = ws_recv_cb,
	    .send_callback = ws_send_cb,
	    .on_msg_recv_callback = ws_msg_cb,
	};
	struct ws *w = xcalloc(1, sizeof(*w));

	w->fd = fd;
	w->on_message = on_message;
	w->arg = arg;
	if (extra_len > 0) {
		w->extra = xmalloc(extra_len);
		memcpy(w->extra, extra, extra_len);
		w->extra_len = extra_len;
	}
	if (wslay_event_context_server_init(&w->ctx, &cbs, w) != 0) {
		log_warnx("%s: out of memory", __func__);
		free(w->extra);
		free(w);
		return NULL;
	}
	wslay_event_config_set_max_recv_msg_length(w->ctx, max_msg);
	return w;
}

void
ws_free(struct ws *w)
{
	if (w == NULL)
		return;
	wslay_event_context_free(w->ctx);
	free(w->extra);
	free(w);
}

int
ws_send(struct ws *w, bool binary, const void *data, size_t len)
{
	struct wslay_event_msg m = {
	    .opcode = binary ? WSLAY_BINARY_FRAME : WSLAY_TEXT_FRAME,
	    .msg = data,
	    .msg_length = len,
	};

	/* refused once a close is queued: the connection is ending */
	return wslay_event_queue_msg(w->ctx, &m) == 0 ? 0 : -1;
}

int
ws_ping(struct ws *w)
{
	struct wslay_event_msg m = {.opcode = WSLAY_PING, .msg_length = 0};

	return wslay_event_queue_msg(w->ctx, &m) == 0 ? 0 : -1;
}

void
ws_close(struct ws *w, uint16_t code, const char *reason)
{
	wslay_event_queue_close(w->ctx, code, (const uint8_t *)reason,
	    reason != NULL ? strlen(reason) : 0);
}

/* Reads what the socket has; messages go to on_message from here. */
int
ws_read(struct ws *w)
{
	if (!wslay_event_want_read(w->ctx))
		return 0;
	if (wslay_event_recv(w->ctx) != 0 || w->broken) {
		w->broken = true;
		return -1;
	}
	return 0;
}

/* Writes queued frames until the socket would block. */
int
ws_write(struct ws *w)
{
	if (!wslay_event_want_write(w->ctx))
		return 0;
	if (wslay_event_send(w->ctx) != 0 || w->broken) {
		w->broken = true;
		return -1;
	}
	return 0;
}

bool
ws_want_read(const struct ws *w)
{
	/* bytes MHD handed over are read without the socket being ready */
	return !w->broken && wslay_event_want_read(w->ctx);
}

bool
ws_want_write(const struct ws *w)
{
	return !w->broken && wslay_event_want_write(w->ctx);
}

bool
ws_has_buffered(const struct ws *w)
{
	return w->extra_off < w->extra_len;
}

/* Nothing left to read or write (closed both ways, or broken). */
bool
ws_done(const struct ws *w)
{
	return w->broken ||
	    (!wslay_event_want_read(w->ctx) && !wslay_event_want_write(w->ctx));
}

bool
ws_closing(const struct ws *w)
{
	return w->broken || wslay_event_get_close_sent(w->ctx) ||
	    wslay_event_get_close_received(w->ctx) ||
	    !wslay_event_get_write_enabled(w->ctx);
}

size_t
ws_queued(const struct ws *w)
{
	return wslay_event_get_queued_msg_length(w->ctx);
}

bool
ws_take_rx(struct ws *w)
{
	bool rx = w->rx;

	w->rx = false;
	return rx;
}

uint16_t
ws_close_sent(const struct ws *w)
{
	return wslay_event_get_close_sent(w->ctx)
	    ? wslay_event_get_status_code_sent(w->ctx)
	    : 0;
}

uint16_t
ws_close_received(const struct ws *w)
{
	return wslay_event_get_close_received(w->ctx)
	    ? wslay_event_get_status_code_received(w->ctx)
	    : 0;
}
