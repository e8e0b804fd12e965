/*
 * Small file and string helpers shared by both programs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

/*
 * The error convention of both programs: a function that fails stores a
 * message for the user in *errp (when errp is not NULL) and returns -1, so
 * `return err_set(errp, "...", ...);` reports and fails in one line.
 * err_set() is for a first failure (*errp may be uninitialised; callers
 * check the return value before they read it); err_replace() frees a
 * message already there, for code that may fail again after a retry.
 */
static int
err_vset(char **errp, bool replace, const char *fmt, va_list ap)
{
	if (errp == NULL)
		return -1;
	if (replace)
		free(*errp);
	xvasprintf(errp, fmt, ap);
	return -1;
}

int
err_set(char **errp, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(errp, false, fmt, ap);
	va_end(ap);
	return -1;
}

int
err_replace(char **errp, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(errp, true, fmt, ap);
	va_end(ap);
	return -1;
}

bool
str_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/*
 * Reads what fd has left, at most `max` bytes, into a NUL-terminated
 * buffer; fd stays open.  Returns NULL (errno set; EFBIG when larger than
 * max) on failure.
 */
char *
read_fd(int fd, size_t max, size_t *lenp)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	ssize_t n;

	for (;;) {
		if (len + 1 >= cap) {
			cap = cap ? cap * 2 : 4096;
			buf = xreallocarray(buf, cap, 1);
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		if (n == 0)
			break;
		len += n;
		if (len > max) {
			errno = EFBIG;
			goto fail;
		}
	}
	buf[len] = '\0';
	if (lenp != NULL)
		*lenp = len;
	return buf;
fail:
	free(buf);
	return NULL;
}

/* read_fd() of the file at path. */
char *
read_file(const char *path, size_t max, size_t *lenp)
{
	char *buf;
	int fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	buf = read_fd(fd, max, lenp);
	saved = errno;
	close(fd);
	errno = saved;
	return buf;
}

/* s with every `from` (not empty) replaced by `to`; the caller frees it. */
char *
str_replace_all(const char *s, const char *from, const char *to)
{
	size_t nfrom = strlen(from), nto = strlen(to), n = 0, len;
	const char *p, *q;
	char *out;

	if (nfrom == 0)
		return xstrdup(s);
	for (p = s; (q = strstr(p, from)) != NULL; p = q + nfrom)
		n++;
	len = strlen(s) + n * nto - n * nfrom;
	out = xmalloc(len + 1);
	len = 0;
	for (p = s; (q = strstr(p, from)) != NULL; p = q + nfrom) {
		memcpy(out + len, p, q - p);
		len += q - p;
		memcpy(out + len, to, nto);
		len += nto;
	}
	strcpy(out + len, p);
	return out;
}

/* Writes path.tmp, fsyncs it and renames it over path: readers never see half a file. */
int
write_file_atomic(const char *path, const void *buf, size_t len, int mode)
{
	char *tmp;
	const char *p = buf;
	ssize_t n;
	int fd, saved;

	xasprintf(&tmp, "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd == -1)
		goto fail;
	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		p += n;
		len -= n;
	}
	if (fsync(fd) == -1 || close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) == -1)
		goto fail;
	free(tmp);
	return 0;
fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	unlink(tmp);
	free(tmp);
	errno = saved;
	return -1;
}
