/*
 * Logging to stderr.  Under systemd (JOURNAL_STREAM set) each line carries a
 * "<N>" syslog priority prefix that journald turns into the entry's priority;
 * otherwise lines are "ident: message".  log_warn appends strerror(errno),
 * log_warnx does not.  fatal/fatalx are for start-up and broken invariants only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "common.h"

static const char *log_ident = "guardian-vms";
static int log_debug_on;
static int log_journal;

void
log_init(const char *ident, int debug)
{
	log_ident = ident;
	log_debug_on = debug;
	log_journal = getenv("JOURNAL_STREAM") != NULL;
}

void
log_setverbose(int debug)
{
	log_debug_on = debug;
}

int
log_getverbose(void)
{
	return log_debug_on;
}

static void
vlog(int pri, const char *fmt, va_list ap, const char *err)
{
	char msg[2048];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_journal)
		fprintf(stderr, "<%d>%s%s%s\n", pri, msg, err ? ": " : "",
		    err ? err : "");
	else
		fprintf(stderr, "%s: %s%s%s\n", log_ident, msg, err ? ": " : "",
		    err ? err : "");
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	vlog(LOG_WARNING, fmt, ap, strerror(saved));
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_WARNING, fmt, ap, NULL);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_INFO, fmt, ap, NULL);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_debug_on)
		return;
	va_start(ap, fmt);
	vlog(LOG_DEBUG, fmt, ap, NULL);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	vlog(LOG_CRIT, fmt, ap, strerror(saved));
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}
