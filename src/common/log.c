/*
 * log: leveled logging to stderr or syslog; every program shares one instance.
 * Every message is escaped here, once, after formatting (log_escape): client
 * input reaches many call sites (logins, dict names, keys), and a newline in
 * any of them would otherwise start a forged line of its own.
 */
#include "vmail/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "vmail/utf8.h"

static const char *log_ident = "vmail";
static bool log_syslog;
static enum log_level log_threshold = LOG_LEVEL_INFO;

static const char *const level_names[] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARNING] = "warning",
	[LOG_LEVEL_NOTICE] = "notice",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

static const int syslog_prio[] = {
	[LOG_LEVEL_ERROR] = LOG_ERR,
	[LOG_LEVEL_WARNING] = LOG_WARNING,
	[LOG_LEVEL_NOTICE] = LOG_NOTICE,
	[LOG_LEVEL_INFO] = LOG_INFO,
	[LOG_LEVEL_DEBUG] = LOG_DEBUG,
};

void log_init(const char *ident, bool use_syslog, enum log_level level)
{
	log_ident = ident;
	log_threshold = level;
	if (log_syslog && !use_syslog)
		closelog();
	log_syslog = use_syslog;
	if (use_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void log_set_level(enum log_level level)
{
	log_threshold = level;
}

enum log_level log_get_level(void)
{
	return log_threshold;
}

bool log_parse_level(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	}
	return false;
}

size_t log_escape(const char *in, size_t len, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)in;
	size_t o = 0, i = 0;
	if (!outlen)
		return 0;
	while (i < len) {
		size_t n = utf8_shown_char(in, len, i);
		bool plain = n > 0;
		if (!plain)
			n = 1;
		if (o + (plain ? n : 4) >= outlen)
			break; /* cut at a whole character or escape */
		if (plain) {
			memcpy(out + o, in + i, n);
			o += n;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[s[i] >> 4];
			out[o++] = hex[s[i] & 15];
		}
		i += n;
	}
	out[o] = '\0';
	return o;
}

__attribute__((format(printf, 3, 0)))
static void log_emit(enum log_level level, const char *suffix, const char *fmt, va_list ap)
{
	char raw[2048];
	char buf[4 * sizeof(raw)]; /* every byte may become \xNN */
	int n = vsnprintf(raw, sizeof(raw), fmt, ap);
	if (n < 0)
		return;
	log_escape(raw, (size_t)n < sizeof(raw) ? (size_t)n : sizeof(raw) - 1, buf, sizeof(buf));
	if (log_syslog) {
		syslog(syslog_prio[level], "%s%s%s", buf, suffix ? ": " : "", suffix ? suffix : "");
		return;
	}
	/* stderr lines carry a timestamp with milliseconds: tests and benchmarks read them. */
	struct timespec ts;
	struct tm tm;
	char stamp[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ %s[%s]: %s%s%s\n", stamp, ts.tv_nsec / 1000000, log_ident,
		level_names[level], buf, suffix ? ": " : "", suffix ? suffix : "");
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	if (level > log_threshold)
		return;
	va_start(ap, fmt);
	log_emit(level, NULL, fmt, ap);
	va_end(ap);
	errno = saved;
}

void log_msg_errno(enum log_level level, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	if (level > log_threshold)
		return;
	va_start(ap, fmt);
	log_emit(level, strerror(saved), fmt, ap);
	va_end(ap);
	errno = saved;
}

void log_fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_emit(LOG_LEVEL_ERROR, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}

void log_fatal_errno(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	log_emit(LOG_LEVEL_ERROR, strerror(saved), fmt, ap);
	va_end(ap);
	exit(1);
}
