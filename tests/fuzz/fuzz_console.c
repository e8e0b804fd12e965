/*
 * The console websocket as a client drives it: fuzzed bytes arrive as the
 * bytes libmicrohttpd handed over after the upgrade (ws_new's extra), wslay
 * deframes them, and every message goes through console_msg_parse as in
 * console.c.  The peer end of the socketpair is closed, so replies fail
 * harmlessly (EPIPE; SIGPIPE is ignored).
 */
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "vmmod.h"

static void
on_message(void *arg, struct ws *w, bool binary, const uint8_t *msg, size_t len)
{
	struct console_msg m;

	if (console_msg_parse(msg, len, &m) == 0 && m.type == CONSOLE_IN &&
	    m.len > 0 && m.data[m.len - 1] == 0xff)
		(void)ws_send(w, true, m.data, m.len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	struct console_msg m;
	struct ws *w;
	int sv[2], i;

	if (!init) {
		log_init("fuzz", 0);
		signal(SIGPIPE, SIG_IGN);
		init = true;
	}
	/* the raw protocol first, then the same bytes as framed input */
	(void)console_msg_parse(data, size, &m);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
		abort();
	close(sv[1]);
	if ((w = ws_new(sv[0], (const char *)data, size, 64 * 1024, on_message,
		 NULL)) == NULL)
		abort();
	for (i = 0; i < 64 && !ws_done(w); i++) {
		if (ws_want_read(w) && ws_read(w) == -1)
			break;
		if (ws_want_write(w) && ws_write(w) == -1)
			break;
		if (!ws_has_buffered(w))
			break;
	}
	ws_free(w);
	close(sv[0]);
	return 0;
}
