/*
 * The web-UI readiness probe.  Home Assistant's first boot takes minutes
 * with no sign of life, so the dashboard says "preparing…" until the VM's
 * web_url accepts a TCP connection.  One thread: it sleeps until state.c
 * kicks it (a VM started), then tries each preparing VM every PROBE_EVERY_S
 * seconds with a short non-blocking connect, and goes back to sleep when no
 * VM is preparing — no wake-ups while nothing is to be done.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vmmod.h"

#define PROBE_EVERY_S 5
#define PROBE_TIMEOUT_MS 1000

static pthread_mutex_t probe_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t probe_cond = PTHREAD_COND_INITIALIZER;
static pthread_t probe_tid;
static bool probe_running, probe_quit, probe_kicked;

/* True when ip:port accepts a TCP connection within timeout_ms. */
bool
webprobe_answers(const char *ip, unsigned port, int timeout_ms)
{
	struct sockaddr_in sin;
	struct pollfd pfd;
	socklen_t len = sizeof(int);
	int fd, err = -1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	if (port == 0 || port > 65535 ||
	    inet_pton(AF_INET, ip, &sin.sin_addr) != 1)
		return false;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return false;
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
		err = 0;
	else if (errno == EINPROGRESS) {
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, timeout_ms) == 1 &&
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
			err = -1;
	}
	close(fd);
	return err == 0;
}

void
webprobe_kick(void)
{
	pthread_mutex_lock(&probe_mtx);
	probe_kicked = true;
	pthread_cond_signal(&probe_cond);
	pthread_mutex_unlock(&probe_mtx);
}

static void *
probe_main(void *arg)
{
	struct web_target *t;
	struct timespec ts;
	size_t i, n;

	pthread_mutex_lock(&probe_mtx);
	while (!probe_quit) {
		probe_kicked = false;
		pthread_mutex_unlock(&probe_mtx);
		n = state_web_targets(&t);
		for (i = 0; i < n; i++)
			if (webprobe_answers(
				t[i].ip, t[i].port, PROBE_TIMEOUT_MS)) {
				log_info("web UI of %s answers at %s:%u",
				    t[i].uuid, t[i].ip, t[i].port);
				state_set_web_ready(t[i].uuid);
			}
		free(t);
		pthread_mutex_lock(&probe_mtx);
		if (probe_quit || probe_kicked)
			continue;
		if (n == 0) {
			/* Nothing preparing: sleep until a VM starts. */
			pthread_cond_wait(&probe_cond, &probe_mtx);
		} else {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += PROBE_EVERY_S;
			pthread_cond_timedwait(&probe_cond, &probe_mtx, &ts);
		}
	}
	pthread_mutex_unlock(&probe_mtx);
	return NULL;
}

int
webprobe_start(void)
{
	pthread_mutex_lock(&probe_mtx);
	probe_quit = false;
	probe_kicked = true;
	pthread_mutex_unlock(&probe_mtx);
	if (pthread_create(&probe_tid, NULL, probe_main, NULL) != 0) {
		log_warnx("%s: cannot start the web probe", __func__);
		return -1;
	}
	probe_running = true;
	return 0;
}

void
webprobe_stop(void)
{
	if (!probe_running)
		return;
	pthread_mutex_lock(&probe_mtx);
	probe_quit = true;
	pthread_cond_signal(&probe_cond);
	pthread_mutex_unlock(&probe_mtx);
	pthread_join(probe_tid, NULL);
	probe_running = false;
}
