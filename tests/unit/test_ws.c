/*
 * ws.c: the handshake's accept value and header checks, and wslay's
 * behaviour as vmmod configures it, seen from a client on the other end of
 * a socketpair.  The client's frames are written byte by byte here so that
 * broken ones (unmasked, reserved bits, oversized) can be sent too.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmmod.h"
#include "testutil.h"

struct got {
	int n;
	bool binary;
	char msg[256];
	size_t len;
};

static void
on_msg(void *arg, struct ws *w, bool binary, const uint8_t *msg, size_t len)
{
	struct got *g = arg;

	g->n++;
	g->binary = binary;
	g->len = len < sizeof(g->msg) ? len : sizeof(g->msg);
	memcpy(g->msg, msg, g->len);
}

/* A client frame: FIN/RSV/opcode byte, masked (key 1 2 3 4) or not. */
static size_t
frame(uint8_t *out, uint8_t b0, const void *payload, size_t len, bool mask)
{
	static const uint8_t key[4] = {1, 2, 3, 4};
	const uint8_t *p = payload;
	size_t n = 0, i;

	out[n++] = b0;
	if (len < 126) {
		out[n++] = (mask ? 0x80 : 0) | len;
	} else {
		out[n++] = (mask ? 0x80 : 0) | 126;
		out[n++] = len >> 8;
		out[n++] = len & 0xff;
	}
	if (mask) {
		memcpy(out + n, key, 4);
		n += 4;
	}
	for (i = 0; i < len; i++)
		out[n++] = mask ? p[i] ^ key[i % 4] : p[i];
	return n;
}

struct pair {
	int s, c; /* server (ws.c) and client ends */
	struct ws *w;
	struct got got;
};

static void
pair_open(struct pair *p, size_t max_msg)
{
	int sv[2];

	memset(p, 0, sizeof(*p));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	p->s = sv[0];
	p->c = sv[1];
	fcntl(p->s, F_SETFL, O_NONBLOCK);
	p->w = ws_new(p->s, NULL, 0, max_msg, on_msg, &p->got);
	ck_assert_ptr_nonnull(p->w);
}

static void
pair_close(struct pair *p)
{
	ws_free(p->w);
	close(p->s);
	close(p->c);
}

static void
client_send(struct pair *p, const uint8_t *buf, size_t len)
{
	ck_assert_int_eq(write(p->c, buf, len), (ssize_t)len);
}

/* The server reads what came, writes what it queued. */
static void
pump(struct pair *p)
{
	ws_read(p->w);
	ws_write(p->w);
}

/* Reads one server frame (unmasked, < 126 bytes) into payload. */
static uint8_t
server_frame(struct pair *p, uint8_t *payload, size_t *lenp)
{
	uint8_t h[2];

	ck_assert_int_eq(read(p->c, h, 2), 2);
	ck_assert_int_eq(h[1] & 0x80, 0); /* servers never mask */
	ck_assert_int_lt(h[1], 126);
	*lenp = h[1];
	if (*lenp > 0)
		ck_assert_int_eq(read(p->c, payload, *lenp), (ssize_t)*lenp);
	return h[0];
}

static unsigned
close_code(const uint8_t *payload, size_t len)
{
	ck_assert_uint_ge(len, 2);
	return (unsigned)payload[0] << 8 | payload[1];
}

START_TEST(test_accept_key)
{
	char out[WS_ACCEPT_LEN + 1];
	const char *why = NULL;

	/* RFC 6455, section 1.3 */
	ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out);
	ck_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	ck_assert_int_eq(ws_handshake_check("websocket", "keep-alive, Upgrade",
			     "13", "dGhlIHNhbXBsZSBub25jZQ==", out, &why),
	    0);
	ck_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	ck_assert_int_eq(ws_handshake_check("WebSocket", "upgrade", "13",
			     "dGhlIHNhbXBsZSBub25jZQ==", out, &why),
	    0);
	ck_assert_int_eq(ws_handshake_check(NULL, "upgrade", "13",
			     "dGhlIHNhbXBsZSBub25jZQ==", out, &why),
	    426);
	ck_assert_int_eq(ws_handshake_check("websocket", "keep-alive", "13",
			     "dGhlIHNhbXBsZSBub25jZQ==", out, &why),
	    426);
	ck_assert_int_eq(ws_handshake_check("websocket", "upgrade", "8",
			     "dGhlIHNhbXBsZSBub25jZQ==", out, &why),
	    426);
	ck_assert_int_eq(ws_handshake_check("websocket", "upgrade", "13",
			     "dGhlIHNhbXBsZSBub25jZQ", out, &why),
	    400);
	ck_assert_int_eq(ws_handshake_check("websocket", "upgrade", "13",
			     "not base64 at all!!!!!!=", out, &why),
	    400);
	ck_assert_int_eq(
	    ws_handshake_check("websocket", "upgrade", "13", NULL, out, &why),
	    400);
}
END_TEST

START_TEST(test_message_and_send)
{
	struct pair p;
	uint8_t buf[64], pl[64];
	size_t n, len;

	pair_open(&p, 1024);
	n = frame(buf, 0x82, "0hi", 3, true);
	client_send(&p, buf, n);
	pump(&p);
	ck_assert_int_eq(p.got.n, 1);
	ck_assert(p.got.binary);
	ck_assert_mem_eq(p.got.msg, "0hi", 3);
	ck_assert_int_eq(ws_send(p.w, true, "1out", 4), 0);
	ws_write(p.w);
	ck_assert_uint_eq(server_frame(&p, pl, &len), 0x82);
	ck_assert_uint_eq(len, 4);
	ck_assert_mem_eq(pl, "1out", 4);
	ck_assert(!ws_done(p.w));
	pair_close(&p);
}
END_TEST

START_TEST(test_unmasked_refused)
{
	struct pair p;
	uint8_t buf[64], pl[64];
	size_t n, len;

	pair_open(&p, 1024);
	n = frame(buf, 0x82, "0hi", 3, false);
	client_send(&p, buf, n);
	pump(&p);
	ck_assert_int_eq(p.got.n, 0);
	ck_assert_uint_eq(server_frame(&p, pl, &len), 0x88);
	ck_assert_uint_eq(close_code(pl, len), 1002);
	ck_assert_uint_eq(ws_close_sent(p.w), 1002);
	pair_close(&p);
}
END_TEST

START_TEST(test_fragments)
{
	struct pair p;
	uint8_t buf[64];
	size_t n;

	pair_open(&p, 1024);
	n = frame(buf, 0x02, "0hel", 4, true); /* binary, no FIN */
	client_send(&p, buf, n);
	pump(&p);
	ck_assert_int_eq(p.got.n, 0);
	n = frame(buf, 0x89, "p", 1, true); /* a ping between fragments */
	client_send(&p, buf, n);
	n = frame(buf, 0x80, "lo", 2, true); /* continuation + FIN */
	client_send(&p, buf, n);
	pump(&p);
	ck_assert_int_eq(p.got.n, 1);
	ck_assert_uint_eq(p.got.len, 6);
	ck_assert_mem_eq(p.got.msg, "0hello", 6);
	pair_close(&p);
}
END_TEST

START_TEST(test_ping_pong)
{
	struct pair p;
	uint8_t buf[64], pl[64];
	size_t n, len;

	pair_open(&p, 1024);
	n = frame(buf, 0x89, "abc", 3, true);
	client_send(&p, buf, n);
	pump(&p);
	ck_assert_uint_eq(server_frame(&p, pl, &len), 0x8a);
	ck_assert_uint_eq(len, 3);
	ck_assert_mem_eq(pl, "abc", 3);
	ck_assert(ws_take_rx(p.w));
	ck_assert(!ws_take_rx(p.w));
	pair_close(&p);
}
END_TEST

START_TEST(test_close_close)
{
	struct pair p;
	uint8_t buf[64], pl[64], code[2] = {0x03, 0xe8}; /* 1000 */
	size_t n, len;

	pair_open(&p, 1024);
	n = frame(buf, 0x88, code, 2, true);
	client_send(&p, buf, n);
	pump(&p);
	ck_assert_uint_eq(ws_close_received(p.w), 1000);
	ck_assert_uint_eq(server_frame(&p, pl, &len), 0x88);
	ck_assert_uint_eq(close_code(pl, len), 1000);
	ck_assert(ws_done(p.w));
	ck_assert_int_eq(ws_send(p.w, true, "x", 1), -1);
	pair_close(&p);
}
END_TEST

/* Our close first: the client's answer ends the connection. */
START_TEST(test_server_close)
{
	struct pair p;
	uint8_t buf[64], pl[64], code[2] = {0x03, 0xe9}; /* 1001 */
	size_t n, len;

	pair_open(&p, 1024);
	ws_close(p.w, 1001, "console closed");
	ws_write(p.w);
	ck_assert(ws_closing(p.w));
	ck_assert(!ws_done(p.w));
	ck_assert_uint_eq(server_frame(&p, pl, &len), 0x88);
	ck_assert_uint_eq(close_code(pl, len), 1001);
	ck_assert_mem_eq(pl + 2, "console closed", len - 2);
	n = frame(buf, 0x88, code, 2, true);
	client_send(&p, buf, n);
	pump(&p);
	ck_assert(ws_done(p.w));
	pair_close(&p);
}
END_TEST

START_TEST(test_too_big)
{
	struct pair p;
	uint8_t buf[256], pl[64], big[200];
	size_t n, len;

	memset(big, 'x', sizeof(big));
	pair_open(&p, 100);
	n = frame(buf, 0x82, big, sizeof(big), true);
	client_send(&p, buf, n);
	pump(&p);
	ck_assert_int_eq(p.got.n, 0);
	ck_assert_uint_eq(server_frame(&p, pl, &len), 0x88);
	ck_assert_uint_eq(close_code(pl, len), 1009);
	pair_close(&p);
}
END_TEST

START_TEST(test_bad_frames)
{
	static const uint8_t b0s[] = {
	    0xc2, /* RSV1 without an extension */
	    0x83, /* reserved opcode */
	};
	struct pair p;
	uint8_t buf[64], pl[64];
	size_t n, len, i;

	for (i = 0; i < nitems(b0s); i++) {
		pair_open(&p, 1024);
		n = frame(buf, b0s[i], "0x", 2, true);
		client_send(&p, buf, n);
		pump(&p);
		ck_assert_int_eq(p.got.n, 0);
		ck_assert_uint_eq(server_frame(&p, pl, &len), 0x88);
		ck_assert_msg(
		    len >= 2, "frame %02x: close without code", b0s[i]);
		ck_assert_uint_eq(close_code(pl, len), 1002);
		pair_close(&p);
	}
	/* a fragmented ping: wslay closes, without a status code */
	pair_open(&p, 1024);
	n = frame(buf, 0x09, "0x", 2, true);
	client_send(&p, buf, n);
	pump(&p);
	ck_assert_uint_eq(server_frame(&p, pl, &len), 0x88);
	ck_assert(ws_closing(p.w));
	pair_close(&p);
	/* a continuation with nothing to continue */
	pair_open(&p, 1024);
	n = frame(buf, 0x80, "0x", 2, true);
	client_send(&p, buf, n);
	pump(&p);
	ck_assert_uint_eq(server_frame(&p, pl, &len), 0x88);
	ck_assert_uint_eq(close_code(pl, len), 1002);
	pair_close(&p);
}
END_TEST

/* Bytes MHD read past the headers come first. */
START_TEST(test_extra_bytes)
{
	struct pair p;
	uint8_t buf[64], buf2[64];
	size_t n, n2;
	int sv[2];

	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	p.s = sv[0];
	p.c = sv[1];
	fcntl(p.s, F_SETFL, O_NONBLOCK);
	n = frame(buf, 0x82, "0a", 2, true);
	p.w = ws_new(p.s, (char *)buf, n, 1024, on_msg, &p.got);
	ck_assert(ws_has_buffered(p.w));
	n2 = frame(buf2, 0x82, "0b", 2, true);
	client_send(&p, buf2, n2);
	pump(&p);
	pump(&p);
	ck_assert_int_eq(p.got.n, 2);
	ck_assert_mem_eq(p.got.msg, "0b", 2);
	ck_assert(!ws_has_buffered(p.w));
	pair_close(&p);
}
END_TEST

/* EOF without a close frame: the connection is over. */
START_TEST(test_eof)
{
	struct pair p;

	pair_open(&p, 1024);
	close(p.c);
	ck_assert_int_eq(ws_read(p.w), -1);
	ck_assert(ws_done(p.w));
	p.c = open("/dev/null", O_RDONLY);
	pair_close(&p);
}
END_TEST

Suite *
suite_ws(void)
{
	Suite *s = suite_create("ws");
	TCase *tc = tcase_create("ws");

	tcase_add_test(tc, test_accept_key);
	tcase_add_test(tc, test_message_and_send);
	tcase_add_test(tc, test_unmasked_refused);
	tcase_add_test(tc, test_fragments);
	tcase_add_test(tc, test_ping_pong);
	tcase_add_test(tc, test_close_close);
	tcase_add_test(tc, test_server_close);
	tcase_add_test(tc, test_too_big);
	tcase_add_test(tc, test_bad_frames);
	tcase_add_test(tc, test_extra_bytes);
	tcase_add_test(tc, test_eof);
	suite_add_tcase(s, tc);
	return s;
}
