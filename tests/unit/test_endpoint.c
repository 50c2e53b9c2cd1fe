/* test_endpoint: listener address lists (table-driven) and opening unix sockets safely. */
#include "vmail/endpoint.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "check_main.h"

/* in -> the canonical texts (joined with '|'), or NULL and a piece of the error. */
struct list_row {
	const char *in;
	const char *texts;
	const char *err;
};

static const struct list_row list_rows[] = {
	{ "", "", NULL },
	{ "   ", "", NULL },
	{ "unix:/run/vmaild/socketmap", "unix:/run/vmaild/socketmap", NULL },
	{ "inet:127.0.0.1:7000", "inet:127.0.0.1:7000", NULL },
	{ "inet:localhost:7000", "inet:localhost:7000", NULL },
	{ "inet:[::1]:7000", "inet:[::1]:7000", NULL },
	{ "inet:*:25", "inet:*:25", NULL },
	{ "inet:[fe80::1%lo]:1", "inet:[fe80::1%lo]:1", NULL },
	{ "unix:/a, inet:127.0.0.1:1 ,inet:[::1]:65535",
	  "unix:/a|inet:127.0.0.1:1|inet:[::1]:65535", NULL },
	{ "unix:relative", NULL, "must be absolute" },
	{ "unix:", NULL, "expected unix:PATH, inet:HOST:PORT or systemd:NAME" },
	{ "unix:/01234567890123456789012345678901234567890123456789"
	  "012345678901234567890123456789012345678901234567890123456789",
	  NULL, "path too long" },
	{ "unix:/with space", NULL, "comma or space" },
	{ "tcp:127.0.0.1:1", NULL, "expected unix:PATH, inet:HOST:PORT or systemd:NAME" },
	{ "UNIX:/a", NULL, "expected unix:PATH" },
	{ "inet:127.0.0.1", NULL, "expected inet:HOST:PORT" },
	{ "inet:127.0.0.1:", NULL, "port must be 1..65535" },
	{ "inet:127.0.0.1:0", NULL, "port must be 1..65535" },
	{ "inet:127.0.0.1:65536", NULL, "port must be 1..65535" },
	{ "inet:127.0.0.1:+80", NULL, "port must be 1..65535" },
	{ "inet:127.0.0.1:123456", NULL, "port must be 1..65535" },
	{ "inet::25", NULL, "empty host" },
	{ "inet:::1:25", NULL, "brackets" },
	{ "inet:[::1:25", NULL, "missing ']'" },
	{ "inet:[::1]25", NULL, "expected ':PORT'" },
	{ "inet:[]:25", NULL, "empty host" },
	{ "inet:bad/host:25", NULL, "bad character" },
	{ "systemd:socketmap", "systemd:socketmap", NULL },
	{ "systemd:vmaild-dict.socket, unix:/a", "systemd:vmaild-dict.socket|unix:/a", NULL },
	{ "systemd:", NULL, "expected unix:PATH" },
	{ "systemd:a:b", NULL, "systemd: name must be" },
	{ "systemd:a b", NULL, "systemd: name must be" },
	{ "systemd:x,systemd:x", NULL, "systemd:x listed twice" },
	{ "unix:/a,", NULL, "empty item" },
	{ ",unix:/a", NULL, "empty item" },
	{ "unix:/a,,unix:/b", NULL, "empty item" },
	{ "unix:/a, unix:/a", NULL, "unix:/a listed twice" },
	{ "inet:a:1,inet:a:2,inet:a:3,inet:a:4,inet:a:5,inet:a:6,inet:a:7,inet:a:8,inet:a:9,"
	  "inet:a:10,inet:a:11,inet:a:12,inet:a:13,inet:a:14,inet:a:15,inet:a:16,inet:a:17",
	  NULL, "more than 16 endpoints" },
};

START_TEST(test_parse_list)
{
	const struct list_row *row = &list_rows[_i];
	struct endpoint_list l;
	char err[256] = "";
	bool ok = endpoint_parse_list(row->in, &l, err, sizeof(err));
	if (!row->texts) {
		ck_assert_msg(!ok, "accepted \"%s\"", row->in);
		ck_assert_msg(strstr(err, row->err), "\"%s\": got \"%s\", want \"%s\"", row->in, err,
			      row->err);
		return;
	}
	ck_assert_msg(ok, "\"%s\": %s", row->in, err);
	char joined[1024] = "";
	for (size_t i = 0; i < l.count; i++) {
		if (i)
			strcat(joined, "|");
		strcat(joined, l.items[i].text);
	}
	ck_assert_str_eq(joined, row->texts);
}
END_TEST

START_TEST(test_parsed_fields)
{
	struct endpoint_list l;
	char err[256];
	ck_assert(endpoint_parse_list("inet:[::1]:7000,unix:/x/y", &l, err, sizeof(err)));
	ck_assert_uint_eq(l.count, 2);
	ck_assert_int_eq(l.items[0].kind, ENDPOINT_INET);
	ck_assert_str_eq(l.items[0].host, "::1");
	ck_assert_uint_eq(l.items[0].port, 7000);
	ck_assert_int_eq(l.items[1].kind, ENDPOINT_UNIX);
	ck_assert_str_eq(l.items[1].path, "/x/y");
}
END_TEST

static char tmpdir[64];

static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_endpoint_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void unix_endpoint(struct endpoint *ep, const char *name)
{
	struct endpoint_list l;
	char spec[200], err[256];
	snprintf(spec, sizeof(spec), "unix:%s/%s", tmpdir, name);
	ck_assert_msg(endpoint_parse_list(spec, &l, err, sizeof(err)), "%s", err);
	*ep = l.items[0];
}

START_TEST(test_unix_listen_mode_and_stale)
{
	make_tmpdir();
	struct endpoint ep;
	unix_endpoint(&ep, "sock");
	struct endpoint_perms perms = { (uid_t)-1, (gid_t)-1, 0640 };
	char err[256] = "";
	int fd = endpoint_listen(&ep, &perms, 16, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	struct stat st;
	ck_assert_int_eq(stat(ep.path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0640);
	ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
	ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);

	/* A live listener is never replaced. */
	ck_assert_int_lt(endpoint_listen(&ep, &perms, 16, err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, "another process is listening"), "%s", err);

	/* A dead one's socket file is removed and the name reused. */
	close(fd);
	fd = endpoint_listen(&ep, &perms, 16, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	close(fd);
	unlink(ep.path);
	rmdir(tmpdir);
}
END_TEST

/* A client that connects as soon as the socket's name appears (what tests and services do). */
static struct {
	const char *path;
	atomic_bool stop;
	atomic_uint refused, accepted;
} racer;

static void *race_connect(void *arg)
{
	(void)arg;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", racer.path);
	while (!atomic_load(&racer.stop)) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
			atomic_fetch_add(&racer.accepted, 1);
		else if (errno == ECONNREFUSED)
			atomic_fetch_add(&racer.refused, 1);
		close(fd);
	}
	return NULL;
}

/*
 * The name appears only once the socket listens: a client that finds it must never be
 * refused (it would take the service for down, and a test for failed).  500 sockets are
 * opened while a thread connects in a loop.
 */
START_TEST(test_unix_name_appears_listening)
{
	make_tmpdir();
	struct endpoint ep;
	unix_endpoint(&ep, "sock");
	struct endpoint_perms perms = { (uid_t)-1, (gid_t)-1, 0660 };
	racer.path = ep.path;
	atomic_store(&racer.stop, false);
	atomic_store(&racer.refused, 0);
	atomic_store(&racer.accepted, 0);
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, race_connect, NULL), 0);
	char err[256] = "";
	/*
	 * Every listener stays open until the racer stopped: a connect that found the name
	 * just before the unlink must not meet a socket closing under it, which refuses too.
	 */
	static int fds[500];
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		fds[i] = endpoint_listen(&ep, &perms, 4096, err, sizeof(err));
		ck_assert_msg(fds[i] >= 0, "%s", err);
		unlink(ep.path);
	}
	atomic_store(&racer.stop, true);
	pthread_join(t, NULL);
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		close(fds[i]);
	ck_assert_msg(atomic_load(&racer.refused) == 0, "%u connects refused (%u accepted)",
		      atomic_load(&racer.refused), atomic_load(&racer.accepted));
	rmdir(tmpdir);
}
END_TEST

START_TEST(test_unix_listen_refuses_regular_file)
{
	make_tmpdir();
	struct endpoint ep;
	unix_endpoint(&ep, "file");
	int f = open(ep.path, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(f, 0);
	close(f);
	struct endpoint_perms perms = { (uid_t)-1, (gid_t)-1, 0660 };
	char err[256] = "";
	ck_assert_int_lt(endpoint_listen(&ep, &perms, 16, err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, "is not a socket"), "%s", err);
	struct stat st;
	ck_assert_int_eq(stat(ep.path, &st), 0); /* still there */
	unlink(ep.path);
	rmdir(tmpdir);
}
END_TEST

/* make_victim - a root-only file standing for /etc/shadow */
static void make_victim(const char *path)
{
	int f = open(path, O_CREAT | O_WRONLY | O_EXCL, 0600);
	ck_assert_int_ge(f, 0);
	close(f);
	ck_assert_int_eq(chmod(path, 0600), 0);
}

static void assert_victim_untouched(const char *path, uid_t uid, gid_t gid)
{
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_msg((st.st_mode & 07777) == 0600, "victim mode is now %04o",
		      (unsigned)(st.st_mode & 07777));
	ck_assert_msg(st.st_uid == uid && st.st_gid == gid, "victim owner is now %u:%u",
		      (unsigned)st.st_uid, (unsigned)st.st_gid);
}

/*
 * Whoever can write the socket directory swaps the fresh socket for a
 * symlink to a root-only file between bind() and the owner/mode step: that
 * step must neither chown nor chmod the file the link points to.
 */
START_TEST(test_unix_perms_ignore_planted_symlink)
{
	make_tmpdir();
	char victim[128], lnk[128], err[256] = "";
	snprintf(victim, sizeof(victim), "%s/victim", tmpdir);
	snprintf(lnk, sizeof(lnk), "%s/sock", tmpdir);
	make_victim(victim);
	struct stat before;
	ck_assert_int_eq(stat(victim, &before), 0);
	ck_assert_int_eq(symlink(victim, lnk), 0);
	/* nobody:nogroup where we may chown (root); else only the mode is at stake */
	bool root = geteuid() == 0;
	struct endpoint_perms perms = { root ? 65534 : (uid_t)-1, root ? 65534 : (gid_t)-1, 0666 };
	ck_assert(!endpoint_unix_set_perms(lnk, &perms, err, sizeof(err)));
	ck_assert_msg(strstr(err, "not a socket"), "%s", err);
	assert_victim_untouched(victim, before.st_uid, before.st_gid);
	/* Nor a hard link (where fs.protected_hardlinks does not stop one). */
	unlink(lnk);
	ck_assert_int_eq(link(victim, lnk), 0);
	ck_assert(!endpoint_unix_set_perms(lnk, &perms, err, sizeof(err)));
	assert_victim_untouched(victim, before.st_uid, before.st_gid);
	unlink(lnk);
	unlink(victim);
	rmdir(tmpdir);
}
END_TEST

/* The socket is born with its final mode and owner (root only: chown). */
START_TEST(test_unix_listen_owner)
{
	if (geteuid() != 0)
		return;
	make_tmpdir();
	struct endpoint ep;
	unix_endpoint(&ep, "owned");
	struct endpoint_perms perms = { 65534, 65534, 0660 };
	char err[256] = "";
	int fd = endpoint_listen(&ep, &perms, 16, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	struct stat st;
	ck_assert_int_eq(lstat(ep.path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0660);
	ck_assert_uint_eq(st.st_uid, 65534);
	ck_assert_uint_eq(st.st_gid, 65534);
	close(fd);
	unlink(ep.path);
	rmdir(tmpdir);
}
END_TEST

START_TEST(test_inet_listen)
{
	struct endpoint_list l;
	char err[256] = "";
	/* Port 1..1023 need root; pick a high one and tolerate it being taken. */
	ck_assert(endpoint_parse_list("inet:127.0.0.1:39127", &l, err, sizeof(err)));
	int fd = endpoint_listen(&l.items[0], NULL, 16, err, sizeof(err));
	if (fd < 0) {
		ck_assert_msg(strstr(err, "in use"), "%s", err);
		return;
	}
	int one = 0;
	socklen_t len = sizeof(one);
	ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, &len), 0);
	ck_assert_int_ne(one, 0);
	ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
	close(fd);
	ck_assert(endpoint_parse_list("inet:no-such-host.invalid:1", &l, err, sizeof(err)));
	ck_assert_int_lt(endpoint_listen(&l.items[0], NULL, 16, err, sizeof(err)), 0);
}
END_TEST

static Suite *endpoint_suite(void)
{
	Suite *s = suite_create("endpoint");
	TCase *tc = tcase_create("endpoint");
	tcase_add_loop_test(tc, test_parse_list, 0, (int)(sizeof(list_rows) / sizeof(list_rows[0])));
	tcase_add_test(tc, test_parsed_fields);
	tcase_add_test(tc, test_unix_listen_mode_and_stale);
	tcase_add_test(tc, test_unix_listen_refuses_regular_file);
	tcase_add_test(tc, test_unix_name_appears_listening);
	tcase_add_test(tc, test_unix_perms_ignore_planted_symlink);
	tcase_add_test(tc, test_unix_listen_owner);
	tcase_add_test(tc, test_inet_listen);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(endpoint_suite)
