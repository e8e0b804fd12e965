/*
 * The server-sent-events ring.  Publishers (the libvirt worker, jobs) turn a
 * JSON object into one SSE text block ("event: vm\ndata: {...}\n\n") exactly
 * once; every SSE client keeps only a sequence number and copies the blocks
 * it has not sent yet.  A client that falls more than RING_SIZE events behind
 * is told so and re-reads the list.  Watchers (suspended HTTP connections)
 * are woken after each publish; nobody is woken when nothing happens.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vmmod.h"

#define RING_SIZE 256
#define MAX_WATCH 256

struct watch {
	int id;
	void (*wake)(void *);
	void *arg;
};

/*
 * events_mtx guards the ring; wake_mtx guards the watch list and is held
 * while wakers run, so once events_unwatch() returns its waker is not running
 * and will not run again (the caller may free the waker's argument).
 */
static pthread_mutex_t events_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t wake_mtx = PTHREAD_MUTEX_INITIALIZER;
static char *ring[RING_SIZE];
static size_t ring_len[RING_SIZE];
static uint64_t ring_seq; /* seq of the newest event; 0 = none */
static struct watch watches[MAX_WATCH];
static int nwatches, next_watch_id = 1;

uint64_t
events_publish(const char *type, json_object *data)
{
	const char *js;
	char *block;
	uint64_t seq;
	size_t slot;
	int i, len;

	js = json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN);
	len = xasprintf(&block, "event: %s\ndata: %s\n\n", type, js);

	pthread_mutex_lock(&events_mtx);
	seq = ++ring_seq;
	slot = seq % RING_SIZE;
	free(ring[slot]);
	ring[slot] = block;
	ring_len[slot] = len;
	pthread_mutex_unlock(&events_mtx);

	/* Outside events_mtx: a waker may call events_next() at once. */
	pthread_mutex_lock(&wake_mtx);
	for (i = 0; i < nwatches; i++)
		watches[i].wake(watches[i].arg);
	pthread_mutex_unlock(&wake_mtx);
	return seq;
}

ssize_t
events_next(uint64_t *seqp, char **outp)
{
	uint64_t want = *seqp + 1;
	ssize_t len;

	*outp = NULL;
	pthread_mutex_lock(&events_mtx);
	if (want > ring_seq) {
		pthread_mutex_unlock(&events_mtx);
		return 0;
	}
	if (ring_seq - want >= RING_SIZE) {
		*seqp = ring_seq;
		pthread_mutex_unlock(&events_mtx);
		return -1;
	}
	len = ring_len[want % RING_SIZE];
	*outp = xmalloc(len + 1);
	memcpy(*outp, ring[want % RING_SIZE], len + 1);
	*seqp = want;
	pthread_mutex_unlock(&events_mtx);
	return len;
}

uint64_t
events_last(void)
{
	uint64_t seq;

	pthread_mutex_lock(&events_mtx);
	seq = ring_seq;
	pthread_mutex_unlock(&events_mtx);
	return seq;
}

int
events_watch(void (*wake)(void *), void *arg)
{
	int id = -1;

	pthread_mutex_lock(&wake_mtx);
	if (nwatches < MAX_WATCH) {
		id = next_watch_id++;
		watches[nwatches].id = id;
		watches[nwatches].wake = wake;
		watches[nwatches].arg = arg;
		nwatches++;
	}
	pthread_mutex_unlock(&wake_mtx);
	if (id == -1)
		log_warnx("%s: too many event watchers", __func__);
	return id;
}

void
events_unwatch(int id)
{
	int i;

	pthread_mutex_lock(&wake_mtx);
	for (i = 0; i < nwatches; i++) {
		if (watches[i].id != id)
			continue;
		watches[i] = watches[--nwatches];
		break;
	}
	pthread_mutex_unlock(&wake_mtx);
}
