/*
 * Shared by vmmod and guardian-vm-setup: logging, allocation that aborts on
 * out-of-memory, and small string helpers.  Prototypes are grouped by file.
 */
#ifndef COMMON_H
#define COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>

#define nitems(a) (sizeof(a) / sizeof((a)[0]))

/* log.c */
enum log_dest { LOG_DEST_STDERR, LOG_DEST_JOURNAL };
void log_init(const char *ident, int debug);
void log_setverbose(int debug);
int log_getverbose(void);
void log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));

/* xmalloc.c: every allocation either succeeds or aborts (one policy, here). */
void *xmalloc(size_t);
void *xcalloc(size_t, size_t);
void *xreallocarray(void *, size_t, size_t);
char *xstrdup(const char *);
char *xstrndup(const char *, size_t);
int xasprintf(char **, const char *, ...) __attribute__((format(printf, 2, 3)));
int xvasprintf(char **, const char *, va_list);

/* util.c */
int err_set(char **errp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int err_replace(char **errp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
bool str_has_prefix(const char *, const char *);
char *read_fd(int fd, size_t max, size_t *lenp);
char *read_file(const char *path, size_t max, size_t *lenp);
char *str_replace_all(const char *s, const char *from, const char *to);
int write_file_atomic(const char *path, const void *buf, size_t len, int mode);

/* notify.c: systemd's notify protocol (READY=1, RELOADING=1, STOPPING=1) */
int notify_manager(const char *state);

#endif
