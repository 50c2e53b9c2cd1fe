/* test_sdlisten: LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES parsing (table-driven) and taking descriptors. */
#include "vmail/sdlisten.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"

#define SELF 4242L

/* The environment -> rc, the names joined with '|', or a piece of the error. */
struct parse_row {
	const char *pid, *fds, *names;
	int rc;
	const char *want; /* names for rc 1, error text for rc -1 */
};

static const struct parse_row parse_rows[] = {
	{ NULL, NULL, NULL, 0, "" },
	{ "4242", NULL, NULL, 0, "" },
	{ NULL, "2", "a:b", 0, "" },
	{ "1", "2", "a:b", 0, "" },                 /* meant for another process */
	{ "4242", "0", NULL, 0, "" },
	{ "4242", "1", NULL, 1, "unknown" },
	{ "4242", "3", NULL, 1, "unknown|unknown|unknown" },
	{ "4242", "1", "socketmap", 1, "socketmap" },
	{ "4242", "4", "socketmap:policy:dict:metrics", 1, "socketmap|policy|dict|metrics" },
	{ "4242", "2", "socketmap:socketmap", 1, "socketmap|socketmap" },
	{ "4242", "2", ":x", 1, "|x" },              /* systemd never sends it; no name matches "" */
	{ "4242", "2", "socketmap", -1, "fewer names" },
	{ "4242", "1", "a:b", -1, "more names" },
	{ "4242", "1", "a:", -1, "more names" },
	{ "4242", "0", "a", -1, "names without LISTEN_FDS" },
	{ "4242", "65", NULL, -1, "more descriptors than vmaild takes" },
	{ "4242", "99999999999999999999", NULL, -1, "not a number" },
	{ "4242", "-1", NULL, -1, "not a number" },
	{ "4242", " 1", NULL, -1, "not a number" },
	{ "4242", "1x", NULL, -1, "not a number" },
	{ "", "1", NULL, -1, "not a process id" },
	{ "+4242", "1", NULL, -1, "not a process id" },
	{ "4242 ", "1", NULL, -1, "not a process id" },
};

START_TEST(test_parse)
{
	const struct parse_row *row = &parse_rows[_i];
	struct sdlisten sd;
	char err[256] = "";
	int rc = sdlisten_parse(row->pid, row->fds, row->names, SELF, &sd, err, sizeof(err));
	ck_assert_msg(rc == row->rc, "row %d: rc %d, want %d (%s)", _i, rc, row->rc, err);
	if (rc < 0) {
		ck_assert_msg(strstr(err, row->want), "row %d: got \"%s\", want \"%s\"", _i, err,
			      row->want);
		ck_assert_uint_eq(sd.count, 0);
		return;
	}
	char joined[1024] = "";
	for (unsigned i = 0; i < sd.count; i++) {
		if (i)
			strcat(joined, "|");
		strcat(joined, sd.items[i].name);
		ck_assert_int_eq(sd.items[i].fd, SDLISTEN_FD_START + (int)i);
		ck_assert(!sd.items[i].taken);
	}
	ck_assert_str_eq(joined, row->want);
}
END_TEST

START_TEST(test_name_too_long)
{
	char names[600];
	memset(names, 'n', 256);
	names[256] = '\0';
	struct sdlisten sd;
	char err[512] = "";
	ck_assert_int_eq(sdlisten_parse("4242", "1", names, SELF, &sd, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "name too long"), "%s", err);
	names[255] = '\0';
	ck_assert_int_eq(sdlisten_parse("4242", "1", names, SELF, &sd, err, sizeof(err)), 1);
	ck_assert_uint_eq(strlen(sd.items[0].name), 255);
}
END_TEST

START_TEST(test_name_valid)
{
	ck_assert(sdlisten_name_valid("socketmap", 9));
	ck_assert(sdlisten_name_valid("vmaild-dict.socket", 18));
	ck_assert(!sdlisten_name_valid("", 0));
	ck_assert(!sdlisten_name_valid("a:b", 3));
	ck_assert(!sdlisten_name_valid("a,b", 3));
	ck_assert(!sdlisten_name_valid("a b", 3));
	ck_assert(!sdlisten_name_valid("a\tb", 3));
	ck_assert(!sdlisten_name_valid("\xc3\xa9", 2));
}
END_TEST

/*
 * The fake systemd runs in a child of its own: it puts sockets at descriptors
 * 3..5, where Check may keep its own files, so failures are reported through
 * the exit status (and a line on stderr) instead of ck_assert.
 */
#define CHILD_CHECK(x)                                                                      \
	do {                                                                                \
		if (!(x)) {                                                                 \
			fprintf(stderr, "%s:%d: %s (err \"%s\")\n", __FILE__, __LINE__, #x, err); \
			_exit(1);                                                           \
		}                                                                           \
	} while (0)

/* fake_systemd - descriptors 3 (listening), 4 (listening), 5 (not listening), then sdlisten */
static void fake_systemd(void)
{
	char err[256] = "";
	int a = socket(AF_UNIX, SOCK_STREAM, 0), b = socket(AF_UNIX, SOCK_STREAM, 0);
	int c = socket(AF_UNIX, SOCK_STREAM, 0);
	CHILD_CHECK(a >= 0 && b >= 0 && c >= 0);
	/* Move them out of the way first: socket() may have returned 3..5 itself. */
	int fa = fcntl(a, F_DUPFD, 100), fb = fcntl(b, F_DUPFD, 100), fc = fcntl(c, F_DUPFD, 100);
	close(a);
	close(b);
	close(c);
	/* An address of sa_family_t only: Linux autobinds a unique abstract name. */
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	CHILD_CHECK(bind(fa, (struct sockaddr *)&sun, sizeof(sa_family_t)) == 0);
	CHILD_CHECK(bind(fb, (struct sockaddr *)&sun, sizeof(sa_family_t)) == 0);
	CHILD_CHECK(listen(fa, 4) == 0 && listen(fb, 4) == 0);
	CHILD_CHECK(dup2(fa, 3) == 3 && dup2(fb, 4) == 4 && dup2(fc, 5) == 5);
	close(fa);
	close(fb);
	close(fc);

	char pid[32];
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	setenv("LISTEN_PID", pid, 1);
	setenv("LISTEN_FDS", "3", 1);
	setenv("LISTEN_FDNAMES", "socketmap:policy:dict", 1);
	CHILD_CHECK(sdlisten_init(err, sizeof(err)));
	CHILD_CHECK(sdlisten_count() == 3);
	CHILD_CHECK(!getenv("LISTEN_FDS") && !getenv("LISTEN_PID") && !getenv("LISTEN_FDNAMES"));
	CHILD_CHECK(fcntl(3, F_GETFD) & FD_CLOEXEC);

	CHILD_CHECK(sdlisten_take("policy", err, sizeof(err)) == 4);
	CHILD_CHECK(fcntl(4, F_GETFL) & O_NONBLOCK);
	CHILD_CHECK(sdlisten_take("policy", err, sizeof(err)) == -1);
	CHILD_CHECK(strstr(err, "already in use"));
	CHILD_CHECK(sdlisten_take("metrics", err, sizeof(err)) == -1);
	CHILD_CHECK(strstr(err, "FileDescriptorName=metrics"));
	CHILD_CHECK(sdlisten_take("dict", err, sizeof(err)) == -1);
	CHILD_CHECK(strstr(err, "not a listening stream socket"));

	/* socketmap was never asked for and dict was refused: both closed. */
	CHILD_CHECK(sdlisten_close_unused() == 2);
	CHILD_CHECK(fcntl(3, F_GETFD) == -1 && fcntl(5, F_GETFD) == -1);
	CHILD_CHECK(fcntl(4, F_GETFD) != -1);
	_exit(0);
}

START_TEST(test_init_and_take)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		fake_systemd();
	int status = 0;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "fake systemd child failed (status %d), see stderr", status);
}
END_TEST

START_TEST(test_init_not_ours)
{
	setenv("LISTEN_PID", "1", 1);
	setenv("LISTEN_FDS", "2", 1);
	char err[256] = "";
	ck_assert_msg(sdlisten_init(err, sizeof(err)), "%s", err);
	ck_assert_uint_eq(sdlisten_count(), 0);
	ck_assert_int_eq(sdlisten_take("socketmap", err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "LISTEN_FDS unset"), "%s", err);
}
END_TEST

START_TEST(test_init_closed_descriptor)
{
	char pid[32];
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	int hi = 3 + 40;
	close(hi);
	setenv("LISTEN_PID", pid, 1);
	setenv("LISTEN_FDS", "41", 1);
	unsetenv("LISTEN_FDNAMES");
	char err[256] = "";
	ck_assert(!sdlisten_init(err, sizeof(err)));
	ck_assert_msg(strstr(err, "is not open"), "%s", err);
}
END_TEST

static Suite *sdlisten_suite(void)
{
	Suite *s = suite_create("sdlisten");
	TCase *tc = tcase_create("core");
	tcase_add_loop_test(tc, test_parse, 0, (int)(sizeof(parse_rows) / sizeof(parse_rows[0])));
	tcase_add_test(tc, test_name_too_long);
	tcase_add_test(tc, test_name_valid);
	tcase_add_test(tc, test_init_and_take);
	tcase_add_test(tc, test_init_not_ours);
	tcase_add_test(tc, test_init_closed_descriptor);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(sdlisten_suite)
