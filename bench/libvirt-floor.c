/*
 * libvirt-floor: the smallest useful libvirt client, for `make bench`.
 *
 * It connects to URI the way vmmod does (default event loop on a thread of
 * its own, keepalive), lists every domain once, prints "ready" and then
 * sleeps holding the connection.  bench/run.sh reads its smaps next to
 * vmmod's: what any program linking Debian's libvirt.so.0 costs (libvirt
 * initialises GnuTLS, libcurl and, through libssh2, OpenSSL; its libraries'
 * relocations), so vmmod's own share is the difference.
 *
 * usage: libvirt-floor URI
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

static void *
event_main(void *arg)
{
	(void)arg;
	for (;;)
		if (virEventRunDefaultImpl() < 0)
			return NULL;
}

static void
quiet(void *arg, virErrorPtr err)
{
	(void)arg;
	(void)err;
}

int
main(int argc, char **argv)
{
	virDomainPtr *doms = NULL;
	virConnectPtr conn;
	pthread_t tid;
	int i, n;

	if (argc != 2) {
		fprintf(stderr, "usage: libvirt-floor URI\n");
		return 2;
	}
	virSetErrorFunc(NULL, quiet);
	if (virEventRegisterDefaultImpl() < 0 ||
	    pthread_create(&tid, NULL, event_main, NULL) != 0) {
		fprintf(stderr, "libvirt-floor: no event loop\n");
		return 1;
	}
	if ((conn = virConnectOpen(argv[1])) == NULL) {
		fprintf(
		    stderr, "libvirt-floor: cannot connect to %s\n", argv[1]);
		return 1;
	}
	virConnectSetKeepAlive(conn, 5, 3);
	if ((n = virConnectListAllDomains(conn, &doms, 0)) < 0) {
		fprintf(stderr, "libvirt-floor: cannot list domains\n");
		return 1;
	}
	for (i = 0; i < n; i++)
		virDomainFree(doms[i]);
	free(doms);
	printf("ready %d\n", n);
	fflush(stdout);
	for (;;)
		pause();
}
