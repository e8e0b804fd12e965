/*
 * The audit log: one JSON line per state change (who, what, which VM, how
 * it ended).  VM names come from anywhere (virsh accepts newlines and markup),
 * so every field is a JSON string: a name can never forge a second line.
 * Lines are appended with one write() on an O_APPEND descriptor, so readers
 * and log rotation (copytruncate) see whole lines; without a path they go to
 * the daemon log.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "vmmod.h"

static pthread_mutex_t audit_mtx = PTHREAD_MUTEX_INITIALIZER;
static int audit_fd = -1;

int
audit_open(const char *path)
{
	int fd = -1;

	if (path != NULL) {
		fd =
		    open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (fd == -1) {
			log_warn("%s: %s", __func__, path);
			return -1;
		}
	}
	pthread_mutex_lock(&audit_mtx);
	if (audit_fd != -1)
		close(audit_fd);
	audit_fd = fd;
	pthread_mutex_unlock(&audit_mtx);
	return 0;
}

void
audit_close(void)
{
	pthread_mutex_lock(&audit_mtx);
	if (audit_fd != -1)
		close(audit_fd);
	audit_fd = -1;
	pthread_mutex_unlock(&audit_mtx);
}

static void
add_str(json_object *o, const char *key, const char *val)
{
	json_object_object_add(
	    o, key, val != NULL ? json_object_new_string(val) : NULL);
}

void
audit_log(
    const char *peer, const char *action, const char *vm, const char *result)
{
	json_object *o = json_object_new_object();
	struct timeval tv;
	struct tm tm;
	char when[40], *line;
	const char *js;
	ssize_t n;
	int len;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	len = (int)strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(
	    when + len, sizeof(when) - len, ".%03ldZ", (long)tv.tv_usec / 1000);
	add_str(o, "time", when);
	add_str(o, "peer", peer);
	add_str(o, "action", action);
	add_str(o, "vm", vm);
	add_str(o, "result", result);
	js = json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	len = xasprintf(&line, "%s\n", js);
	json_object_put(o);

	pthread_mutex_lock(&audit_mtx);
	if (audit_fd == -1) {
		log_info("audit: %.*s", len - 1, line);
	} else if ((n = write(audit_fd, line, len)) != len) {
		if (n == -1)
			log_warn("%s: write", __func__);
		else
			log_warnx("%s: short write", __func__);
	}
	pthread_mutex_unlock(&audit_mtx);
	free(line);
}
