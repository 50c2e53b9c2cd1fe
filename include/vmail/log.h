/* log: leveled logging to stderr or syslog, shared by every program. */
#ifndef VMAIL_LOG_H
#define VMAIL_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_NOTICE,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

#define VMAIL_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* log_init - set the program name, destination and threshold */
void log_init(const char *ident, bool use_syslog, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* log_parse_level - "error".."debug" to a level; false if unknown */
bool log_parse_level(const char *name, enum log_level *out);

/*
 * log_escape - copy in[0..len) to out as one safe log line: control
 * characters (C0, DEL, C1), NUL, bytes that are not well-formed UTF-8 and the
 * bidi and invisible format characters (utf8_shown_char) become \xNN, byte
 * by byte; other well-formed UTF-8 text is kept.  out always ends in NUL and is
 * cut at a whole character or escape.  Returns the length written.  Every
 * message passes through it, so client input cannot start a line of its own.
 */
size_t log_escape(const char *in, size_t len, char *out, size_t outlen);

void log_msg(enum log_level level, const char *fmt, ...) VMAIL_PRINTF(2, 3);
/* log_*_errno variants append strerror(errno); all preserve errno */
void log_msg_errno(enum log_level level, const char *fmt, ...) VMAIL_PRINTF(2, 3);
void log_fatal(const char *fmt, ...) VMAIL_PRINTF(1, 2) __attribute__((noreturn));
void log_fatal_errno(const char *fmt, ...) VMAIL_PRINTF(1, 2) __attribute__((noreturn));

/* The level test happens before any formatting. */
#define LOG_AT(lvl, ...) \
	do { if ((lvl) <= log_get_level()) log_msg((lvl), __VA_ARGS__); } while (0)
#define log_error(...)   LOG_AT(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) LOG_AT(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_notice(...)  LOG_AT(LOG_LEVEL_NOTICE, __VA_ARGS__)
#define log_info(...)    LOG_AT(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)   LOG_AT(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_warn_errno(...) \
	do { if (LOG_LEVEL_WARNING <= log_get_level()) log_msg_errno(LOG_LEVEL_WARNING, __VA_ARGS__); } while (0)
#define log_error_errno(...) log_msg_errno(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif
