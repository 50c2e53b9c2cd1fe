/*
 * dict_recount: the dict service's failed quota requests.  Owns the metrics count of each F,
 * the once-per-outage warning per mailbox (a small set of logged logins), and the list of
 * mailboxes to recount: lines "REASON LOGIN" in memory, mirrored in a file of the state
 * directory, and inserted into vmail.usage_recount (LOOKUP_USAGE_RECOUNT_ADD) whenever the
 * database takes them; then the file is rewritten with what came in meanwhile.
 */
#include "dict_recount.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "dict_batch.h"
#include "lookup.h"
#include "lookup_kinds.h"
#include "vmail/log.h"
#include "vmail/pg.h"

#define RECOUNT_REASON_MAX 32
#define RECOUNT_ALL "*" /* the login of "recount every mailbox" (the file was full) */

enum recount_insert {
	RECOUNT_IDLE = 0,  /* nothing in the database's hands */
	RECOUNT_INFLIGHT,  /* an insert of the first `sent` bytes is in the pool */
};

/* A mailbox seen in this outage. */
struct recount_seen {
	char *login;
	bool lookup_logged; /* its counters could not be read */
	bool listed;        /* a commit failed: logged and listed */
};

struct dict_recount {
	struct pg_pool *pool;
	struct event *tick;       /* the next insert */
	struct event *sync;       /* fdatasync of the appends of this loop turn */
	char *path;               /* NULL: memory only */
	int fd;                   /* the file, O_APPEND; -1 if none */
	bool file_failed;         /* the last write failed (logged once, until one succeeds) */
	bool file_stale;          /* the file may differ from pending: rewrite, never append */
	struct evbuffer *pending; /* lines not yet in the database */
	bool overflowed;          /* the "*" line is in pending, ending at star_end */
	size_t star_end;
	enum recount_insert state;
	size_t sent;
	struct pg_req *req;
	unsigned failures;        /* failed inserts in a row (logged at the first) */
	bool hurried;             /* dict_recount_db_ok cut this streak's backoff once */
	/* The outage: who was logged (and listed), how many more were not. */
	struct recount_seen logged[DICT_RECOUNT_LOG_MAX];
	unsigned nlogged;
	unsigned long more;
};

static bool reason_listed(enum metrics_quota_fail reason)
{
	return reason != METRICS_QF_DENIED && reason != METRICS_QF_INVALID &&
	       reason != METRICS_QF_RANGE;
}

bool dict_recount_parse_line(const char *line, size_t len, size_t *reason_len,
			     const char **login, size_t *login_len)
{
	const char *sp = memchr(line, ' ', len);
	if (!sp || sp == line || (size_t)(sp - line) > RECOUNT_REASON_MAX)
		return false;
	for (const char *p = line; p < sp; p++)
		if (!((*p >= 'a' && *p <= 'z') || *p == '-'))
			return false;
	*reason_len = (size_t)(sp - line);
	*login = sp + 1;
	*login_len = len - *reason_len - 1;
	if (*login_len == 1 && (*login)[0] == RECOUNT_ALL[0])
		return true;
	return lookup_key_valid(*login, *login_len);
}

static void recount_rewrite(struct dict_recount *rc);

/* recount_retry_later - the next insert in ms */
static void recount_retry_later(struct dict_recount *rc, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	evtimer_add(rc->tick, &tv);
}

/* ---- the file -------------------------------------------------------------------- */

/* recount_file_error - what failed, logged once until the file works again */
static void recount_file_error(struct dict_recount *rc, const char *what)
{
	if (!rc->file_failed)
		log_error("quota recount list %s: %s: %s; the list is kept in memory (and written "
			  "again at the next change)", rc->path, what, strerror(errno));
	rc->file_failed = true;
}

static void recount_file_ok(struct dict_recount *rc)
{
	if (rc->file_failed)
		log_notice("quota recount list %s: written again", rc->path);
	rc->file_failed = false;
	rc->file_stale = false;
}

/* recount_not_regular - something else than a regular file is at path: refused */
static void recount_not_regular(struct dict_recount *rc)
{
	if (!rc->file_failed)
		log_error("quota recount list %s: not a regular file (a FIFO, device or directory?): "
			  "refused; the list is kept in memory only", rc->path);
	rc->file_failed = true;
}

/*
 * recount_regular - fd if it is a regular file; else closed and -1, errno EINVAL for
 * anything else than a regular file, fstat's own errno when fstat failed (sb unread)
 */
static int recount_regular(int fd)
{
	struct stat sb;
	int e = EINVAL;
	if (fstat(fd, &sb) < 0)
		e = errno;
	else if (S_ISREG(sb.st_mode))
		return fd;
	close(fd);
	errno = e;
	return -1;
}

/*
 * recount_open - the file with flags, only if it is a regular file: O_NONBLOCK so a FIFO
 * put there cannot hang the start-up (open and read would wait for a writer), then
 * refused.  -1 when missing (errno ENOENT), refused or failed.
 */
static int recount_open(struct dict_recount *rc, int flags)
{
	int fd = open(rc->path, flags | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1;
	fd = recount_regular(fd);
	if (fd < 0 && errno == EINVAL)
		recount_not_regular(rc);
	return fd;
}

/* recount_load - open the file and take the whole lines a previous process left in it */
static void recount_load(struct dict_recount *rc)
{
	/* Created at the first line: nothing to say about a directory that was never needed. */
	errno = 0;
	rc->fd = recount_open(rc, O_RDWR | O_APPEND);
	if (rc->fd < 0) {
		if (errno != ENOENT && !rc->file_failed)
			recount_file_error(rc, "cannot open");
		return;
	}
	char *buf = malloc(DICT_RECOUNT_FILE_MAX + 1);
	if (!buf)
		return;
	size_t total = 0;
	ssize_t n = 0;
	while (total <= DICT_RECOUNT_FILE_MAX &&
	       (n = read(rc->fd, buf + total, DICT_RECOUNT_FILE_MAX + 1 - total)) > 0)
		total += (size_t)n;
	if (n < 0) {
		/* Taking the file over would drop its unread lines at the next rewrite: it
		 * stays as it is for the next start, this process keeps its list in memory. */
		log_error("quota recount list %s: cannot read: %s; the file is left as it is and the "
			  "list kept in memory only", rc->path, strerror(errno));
		close(rc->fd);
		rc->fd = -1;
		free(rc->path);
		rc->path = NULL;
	}
	bool full = total > DICT_RECOUNT_FILE_MAX;
	/* A line cut by a crash (appends are whole lines, but not atomic on disk) is dropped. */
	size_t whole = total;
	while (whole && buf[whole - 1] != '\n')
		whole--;
	if (whole > DICT_RECOUNT_FILE_MAX - 16)
		full = true;
	if (full)
		while (whole && (whole > DICT_RECOUNT_FILE_MAX - 16 || buf[whole - 1] != '\n'))
			whole--;
	evbuffer_add(rc->pending, buf, whole);
	free(buf);
	if (full) {
		evbuffer_add_printf(rc->pending, "overflow %s\n", RECOUNT_ALL);
		rc->overflowed = true;
		rc->star_end = evbuffer_get_length(rc->pending);
	}
	if (whole != total)
		recount_rewrite(rc);
	if (whole && rc->path)
		log_notice("quota recount list %s: %zu bytes left from before the restart", rc->path,
			   whole);
}

/* recount_path_free - nothing but a regular file may be replaced at path */
static bool recount_path_free(struct dict_recount *rc)
{
	struct stat sb;
	if (lstat(rc->path, &sb) < 0)
		return errno == ENOENT;
	if (S_ISREG(sb.st_mode))
		return true;
	recount_not_regular(rc);
	return false;
}

/*
 * recount_create - a new empty regular file at tmp, whatever was there: whatever a crash
 * or someone else left there (a FIFO would block the open, a hard link's other name would
 * be overwritten) is unlinked first, and O_EXCL creates a file of our own.  -1 on error.
 */
static int recount_create(const char *tmp)
{
	if (unlink(tmp) < 0 && errno != ENOENT)
		return -1;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	return recount_regular(fd);
}

/* recount_sync_dir - the rename on disk: the directory holding the file, synced */
static bool recount_sync_dir(struct dict_recount *rc)
{
	char dir[4096];
	int len = snprintf(dir, sizeof(dir), "%s", rc->path);
	char *slash = strrchr(dir, '/'); /* always there: the path is "<state_dir>/<file>" */
	if (len < 0 || (size_t)len >= sizeof(dir) || !slash) {
		errno = ENAMETOOLONG;
		return false;
	}
	slash[slash == dir] = '\0'; /* "/usage-recount" is in "/" */
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return false;
	bool ok = fsync(dfd) == 0;
	int e = errno;
	close(dfd);
	errno = e;
	return ok;
}

/*
 * recount_rewrite - the file holds what is pending now (usually nothing).  A whole new
 * file, synced and renamed over the old one: a crash leaves either, never a mix.
 */
static void recount_rewrite(struct dict_recount *rc)
{
	if (!rc->path)
		return;
	size_t n = evbuffer_get_length(rc->pending);
	if (n == 0 && rc->fd < 0)
		return;
	if (n == 0) {
		if (ftruncate(rc->fd, 0) < 0) {
			recount_file_error(rc, "cannot truncate");
			rc->file_stale = true;
			return;
		}
		recount_file_ok(rc);
		return;
	}
	char tmp[4096];
	int len = snprintf(tmp, sizeof(tmp), "%s.new", rc->path);
	if (len < 0 || (size_t)len >= sizeof(tmp) || !recount_path_free(rc)) {
		rc->file_stale = true;
		return;
	}
	const char *data = (const char *)evbuffer_pullup(rc->pending, -1);
	int fd = -1;
	if (!data)
		errno = ENOMEM;
	else if ((fd = recount_create(tmp)) >= 0)
		errno = 0; /* from here, a failure with errno 0 is a short write */
	if (fd < 0 || write(fd, data, n) != (ssize_t)n || fdatasync(fd) < 0 ||
	    fcntl(fd, F_SETFL, O_APPEND) < 0 || rename(tmp, rc->path) < 0) {
		if (errno == 0)
			errno = ENOSPC; /* a short write */
		recount_file_error(rc, "cannot rewrite");
		rc->file_stale = true;
		if (fd >= 0) {
			close(fd);
			unlink(tmp);
		}
		return;
	}
	if (rc->fd >= 0)
		close(rc->fd);
	rc->fd = fd; /* now the file's name */
	if (!recount_sync_dir(rc)) {
		recount_file_error(rc, "cannot sync its directory");
		rc->file_stale = true; /* the rename may not survive a crash: done again */
		return;
	}
	recount_file_ok(rc);
}

/*
 * recount_file_append - the line just added to pending, into the file and on disk.  A
 * failed or short write leaves the file stale: the next change rewrites it whole, so a
 * cut line never glues onto the next one.
 */
static void recount_file_append(struct dict_recount *rc, const char *line, size_t n)
{
	if (!rc->path)
		return;
	if (rc->fd < 0 || rc->file_stale) {
		recount_rewrite(rc);
		return;
	}
	off_t end = lseek(rc->fd, 0, SEEK_END);
	errno = 0;
	ssize_t w = write(rc->fd, line, n);
	if (w == (ssize_t)n) {
		recount_file_ok(rc);
		/* One sync for all the lines of this loop turn: an outage fails many at once. */
		if (!event_pending(rc->sync, EV_TIMEOUT, NULL))
			event_active(rc->sync, EV_TIMEOUT, 0);
		return;
	}
	if (errno == 0)
		errno = ENOSPC; /* a short write */
	recount_file_error(rc, "cannot append");
	rc->file_stale = true;
	/* Meanwhile (a crash before the rewrite) the file ends with whole lines. */
	if (w > 0 && end >= 0 && ftruncate(rc->fd, end) < 0)
		log_debug("quota recount list %s: cannot cut the partial line", rc->path);
}

/* recount_append - one line, in memory and in the file; "*" once when full */
static void recount_append(struct dict_recount *rc, const char *reason, const char *login)
{
	char line[RECOUNT_REASON_MAX + LOOKUP_KEY_MAX + 4];
	int n = snprintf(line, sizeof(line), "%s %s\n", reason, login);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	if (evbuffer_get_length(rc->pending) + (size_t)n > DICT_RECOUNT_FILE_MAX) {
		if (rc->overflowed)
			return;
		log_error("quota recount list full (%d bytes): every mailbox will be recounted",
			  DICT_RECOUNT_FILE_MAX);
		n = snprintf(line, sizeof(line), "overflow %s\n", RECOUNT_ALL);
		if (evbuffer_add(rc->pending, line, (size_t)n) < 0)
			return;
		rc->overflowed = true;
		rc->star_end = evbuffer_get_length(rc->pending);
	} else if (evbuffer_add(rc->pending, line, (size_t)n) < 0) {
		log_error("quota recount list: out of memory; %s not listed", login);
		return;
	}
	recount_file_append(rc, line, (size_t)n);
	if (rc->state == RECOUNT_IDLE && !evtimer_pending(rc->tick, NULL))
		recount_retry_later(rc, DICT_RECOUNT_RETRY_MS);
}

/* ---- the insert ------------------------------------------------------------------ */

static void recount_outage_over(struct dict_recount *rc)
{
	if (rc->more)
		log_warning("quota: %lu more mailboxes were answered F during the database outage "
			    "(not logged one by one)", rc->more);
	if (rc->nlogged || rc->more)
		log_notice("quota: the database answers again");
	for (unsigned i = 0; i < rc->nlogged; i++)
		free(rc->logged[i].login);
	rc->nlogged = 0;
	rc->more = 0;
}

/*
 * recount_insert_failed - back off (dict_recount_backoff_ms); the streak is logged at its
 * first failure and when it ends, not at every retry
 */
static void recount_insert_failed(struct dict_recount *rc, const char *why)
{
	rc->failures++;
	unsigned ms = dict_recount_backoff_ms(rc->failures);
	if (rc->failures == 1)
		log_error("quota recount list: the insert failed (%s); retrying, at most every %d s, "
			  "the lines stay listed", why, DICT_RECOUNT_BACKOFF_MAX_MS / 1000);
	else
		log_debug("quota recount list: the insert failed again (%s, %u in a row); next in "
			  "%u ms", why, rc->failures, ms);
	recount_retry_later(rc, ms);
}

static void recount_inserted(void *arg, enum pg_status st, const PGresult *res)
{
	struct dict_recount *rc = arg;
	(void)res;
	rc->req = NULL;
	rc->state = RECOUNT_IDLE;
	size_t sent = rc->sent;
	rc->sent = 0;
	if (st != PG_FOUND) {
		recount_insert_failed(rc, st == PG_PERMFAIL ? "permfail: schema older than 014, or "
							      "a missing grant?"
							    : pg_status_name(st));
		return;
	}
	if (rc->failures)
		log_notice("quota recount list: inserted after %u failed attempts", rc->failures);
	rc->failures = 0;
	rc->hurried = false;
	log_notice("quota recount list: %zu bytes of mailboxes in vmail.usage_recount", sent);
	evbuffer_drain(rc->pending, sent);
	/* The "*" line went with them, unless it came after: a later overflow adds a new one. */
	if (rc->overflowed && rc->star_end <= sent)
		rc->overflowed = false;
	else if (rc->overflowed)
		rc->star_end -= sent;
	recount_rewrite(rc);
	recount_outage_over(rc);
	if (evbuffer_get_length(rc->pending))
		event_active(rc->tick, EV_TIMEOUT, 0);
}

/* recount_arrays_add - one line onto the three array literals; false when skipped */
static bool recount_arrays_add(struct evbuffer *arr[3], const char *line, size_t len,
			       bool first)
{
	size_t rlen, llen;
	const char *login;
	if (!dict_recount_parse_line(line, len, &rlen, &login, &llen))
		return false;
	char q[2 * LOOKUP_KEY_MAX + 8], l[LOOKUP_KEY_MAX + 1];
	memcpy(l, login, llen);
	l[llen] = '\0';
	size_t n = dict_batch_quote(q, sizeof(q), l);
	const char *sep = first ? "" : ",";
	return n > 0 && evbuffer_add_printf(arr[0], "%s%.*s", sep, (int)n, q) >= 0 &&
	       evbuffer_add_printf(arr[1], "%s\"%.*s\"", sep, (int)rlen, line) >= 0 &&
	       evbuffer_add_printf(arr[2], "%s1", sep) >= 0;
}

/* recount_insert - send every whole pending line */
static void recount_insert(struct dict_recount *rc)
{
	if (rc->state != RECOUNT_IDLE || evbuffer_get_length(rc->pending) == 0)
		return;
	size_t total = evbuffer_get_length(rc->pending);
	const char *data = (const char *)evbuffer_pullup(rc->pending, -1);
	if (!data) {
		recount_insert_failed(rc, "out of memory");
		return;
	}
	struct evbuffer *arr[3] = { evbuffer_new(), evbuffer_new(), evbuffer_new() };
	bool ok = arr[0] && arr[1] && arr[2];
	for (int i = 0; i < 3 && ok; i++)
		ok = evbuffer_add(arr[i], "{", 1) == 0;
	size_t off = 0, count = 0;
	while (ok && off < total) {
		const char *nl = memchr(data + off, '\n', total - off);
		if (!nl)
			break; /* cannot happen: lines are added whole */
		size_t len = (size_t)(nl - (data + off));
		if (recount_arrays_add(arr, data + off, len, count == 0))
			count++;
		else
			log_warning("quota recount list: skipping a malformed line (%zu bytes)", len);
		off += len + 1;
	}
	const char *params[3];
	size_t lens[3];
	for (int i = 0; i < 3 && ok; i++) {
		ok = evbuffer_add(arr[i], "}", 1) == 0;
		lens[i] = evbuffer_get_length(arr[i]);
		params[i] = (const char *)evbuffer_pullup(arr[i], -1);
		ok = ok && params[i];
	}
	if (ok) {
		rc->req = pg_submit(rc->pool, LOOKUP_USAGE_RECOUNT_ADD, params, lens, 3,
				    recount_inserted, rc);
		if (rc->req) {
			rc->state = RECOUNT_INFLIGHT;
			rc->sent = off;
		}
	}
	for (int i = 0; i < 3; i++)
		if (arr[i])
			evbuffer_free(arr[i]);
	if (rc->state == RECOUNT_IDLE && evbuffer_get_length(rc->pending))
		recount_insert_failed(rc, "not queued");
}

static void recount_sync(evutil_socket_t fd, short what, void *arg)
{
	struct dict_recount *rc = arg;
	(void)fd;
	(void)what;
	if (rc->fd >= 0 && !rc->file_stale && fdatasync(rc->fd) < 0) {
		recount_file_error(rc, "cannot sync");
		rc->file_stale = true;
	}
}

static void recount_tick(evutil_socket_t fd, short what, void *arg)
{
	struct dict_recount *rc = arg;
	(void)fd;
	(void)what;
	if (rc->file_stale)
		recount_rewrite(rc);
	recount_insert(rc);
}

/* ---- the service's side ------------------------------------------------------------ */

struct dict_recount *dict_recount_new(struct event_base *base, struct pg_pool *pool,
				      const char *state_dir)
{
	struct dict_recount *rc = calloc(1, sizeof(*rc));
	if (!rc)
		return NULL;
	rc->pool = pool;
	rc->fd = -1;
	rc->pending = evbuffer_new();
	rc->tick = evtimer_new(base, recount_tick, rc);
	rc->sync = evtimer_new(base, recount_sync, rc);
	if (!rc->pending || !rc->tick || !rc->sync) {
		dict_recount_free(rc);
		return NULL;
	}
	if (state_dir && state_dir[0]) {
		size_t n = strlen(state_dir) + sizeof("/" DICT_RECOUNT_FILE);
		rc->path = malloc(n);
		if (!rc->path) {
			dict_recount_free(rc);
			return NULL;
		}
		snprintf(rc->path, n, "%s/%s", state_dir, DICT_RECOUNT_FILE);
		recount_load(rc);
	}
	if (evbuffer_get_length(rc->pending))
		event_active(rc->tick, EV_TIMEOUT, 0);
	return rc;
}

void dict_recount_free(struct dict_recount *rc)
{
	if (!rc)
		return;
	if (rc->req)
		pg_cancel(rc->req);
	if (rc->tick)
		event_free(rc->tick);
	/* A stop while the file is stale (a cut append, the insert backing off): the lines
	 * answered F since must reach the file, or the next start never recounts them. */
	if (rc->file_stale && rc->pending && evbuffer_get_length(rc->pending))
		recount_rewrite(rc);
	if (rc->sync) {
		if (rc->fd >= 0 && event_pending(rc->sync, EV_TIMEOUT, NULL))
			(void)fdatasync(rc->fd); /* a stop: what was appended reaches the disk */
		event_free(rc->sync);
	}
	if (rc->pending)
		evbuffer_free(rc->pending);
	if (rc->fd >= 0)
		close(rc->fd);
	for (unsigned i = 0; i < rc->nlogged; i++)
		free(rc->logged[i].login);
	free(rc->path);
	free(rc);
}

/* recount_seen - login's entry in this outage (added if there is room); NULL past the cap */
static struct recount_seen *recount_seen(struct dict_recount *rc, const char *login)
{
	for (unsigned i = 0; i < rc->nlogged; i++)
		if (strcmp(rc->logged[i].login, login) == 0)
			return &rc->logged[i];
	if (rc->nlogged < DICT_RECOUNT_LOG_MAX) {
		struct recount_seen *e = &rc->logged[rc->nlogged];
		*e = (struct recount_seen){ .login = strdup(login) };
		if (e->login) {
			rc->nlogged++;
			return e;
		}
	}
	if (rc->more++ == 0)
		log_warning("quota: more mailboxes affected; their number is logged when the "
			    "database answers again");
	return NULL;
}

void dict_recount_failed(struct dict_recount *rc, enum metrics_quota_req req,
			 enum metrics_quota_fail reason, const char *login)
{
	metrics_quota_failed(req, reason);
	if (!rc || !reason_listed(reason) || !login || !lookup_key_valid(login, strlen(login)))
		return;
	struct recount_seen *e = recount_seen(rc, login);
	const char *why = metrics_quota_fail_name(reason);
	if (req == METRICS_QUOTA_LOOKUP) {
		/* Answered "full" (svc_dict): the mail waits, nothing is stored uncounted. */
		if (e && !e->lookup_logged)
			log_warning("quota: cannot read the counters of %s (%s): answered full, its "
				    "mail is deferred", login, why);
		if (e)
			e->lookup_logged = true;
		return;
	}
	if (e && e->listed)
		return;
	if (e) {
		log_warning("quota: %s a commit for %s (%s): its counters may be wrong, listed for "
			    "a recount", reason == METRICS_QF_CLOSED ? "connection closed before"
								      : "answered F to",
			    login, why);
		e->listed = true;
	}
	/* Past the cap every failed commit is appended: the file's bound still holds. */
	char line_reason[RECOUNT_REASON_MAX + 1];
	snprintf(line_reason, sizeof(line_reason), "%s-%s", metrics_quota_req_name(req), why);
	recount_append(rc, line_reason, login);
}

void dict_recount_db_ok(struct dict_recount *rc)
{
	if (!rc)
		return;
	if (rc->nlogged || rc->more)
		recount_outage_over(rc);
	if (rc->state != RECOUNT_IDLE || evbuffer_get_length(rc->pending) == 0)
		return;
	/* After failed inserts the backoff decides; only its first wait is cut short (the
	 * database that failed them may just have come back). */
	if (rc->failures && rc->hurried)
		return;
	rc->hurried = rc->failures > 0;
	evtimer_del(rc->tick);
	event_active(rc->tick, EV_TIMEOUT, 0);
}

unsigned dict_recount_backoff_ms(unsigned failures)
{
	unsigned ms = 1000;
	for (unsigned i = 1; i < failures && ms < DICT_RECOUNT_BACKOFF_MAX_MS; i++)
		ms *= 2;
	return ms < DICT_RECOUNT_BACKOFF_MAX_MS ? ms : DICT_RECOUNT_BACKOFF_MAX_MS;
}

size_t dict_recount_pending(const struct dict_recount *rc)
{
	return rc ? evbuffer_get_length(rc->pending) : 0;
}
