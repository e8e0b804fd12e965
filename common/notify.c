/*
 * notify.c: tells the service manager about our state (systemd's
 * sd_notify(3) protocol) without linking libsystemd.
 *
 * The protocol is one datagram of "KEY=VALUE\n…" text sent to the
 * AF_UNIX socket named by $NOTIFY_SOCKET (a path, or "@name" for the
 * abstract namespace).  systemd documents it as stable and meant to be
 * spoken directly; vmmod needs nothing else from libsystemd, and not
 * loading it (with libgcrypt, liblz4, libcap behind it) keeps the daemon's
 * resident size down (bench/README.md).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common.h"

/*
 * Returns 1 when the message was sent, 0 when no service manager listens
 * ($NOTIFY_SOCKET unset: started by hand, or by a test), -1 with errno set
 * when $NOTIFY_SOCKET is unusable or the send failed.
 */
int
notify_manager(const char *state)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	const char *path = getenv("NOTIFY_SOCKET");
	socklen_t salen;
	size_t plen, len = strlen(state);
	ssize_t n;
	int fd, saved;

	if (path == NULL || *path == '\0')
		return 0;
	plen = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || plen < 2 ||
	    plen > sizeof(sun.sun_path)) {
		errno = EINVAL;
		return -1;
	}
	/* a path must leave room for its NUL; "@x" is abstract: "\0x" */
	if (path[0] == '/' && plen == sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun.sun_path, path, plen);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	salen = offsetof(struct sockaddr_un, sun_path) + plen +
	    (path[0] == '/' ? 1 : 0);

	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	n = sendto(
	    fd, state, len, MSG_NOSIGNAL, (struct sockaddr *)&sun, salen);
	saved = errno;
	close(fd);
	if (n == -1) {
		errno = saved;
		return -1;
	}
	if ((size_t)n != len) {
		errno = EMSGSIZE;
		return -1;
	}
	return 1;
}
