/*
 * vmail-bench: load generator for vmaild's protocols.  N connections, each
 * with one request outstanding at a time, the way a Postfix process uses its
 * socketmap connection (or a Dovecot auth process its dict connection); prints
 * lookups/s, latency percentiles and the reply mix.  Protocols: socketmap
 * ("<map> <key>"), dict ("L shared/userdb/<key>", or shared/passdb/, after
 * the "auth" hello) and policy (an RCPT request for recipient <key>).  --sequential walks the keys
 * once in order (to fill a cache); --idle holds N idle connections and then
 * checks each still gets an answer.  With --echo-server it is instead a
 * trivial socketmap server answering "OK <key>" to everything: the machine's
 * ceiling for the same framing with the least work per request (echo_epoll.c).
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "vmail/build_config.h"
#include "vmail/endpoint.h"
#include "vmail/netstring.h"
#include "vmail/socketmap.h"

#include "echo_epoll.h"

#define BENCH_MAX_FRAME (NETSTRING_MAX_DIGITS + 2 + SOCKETMAP_MAX_REPLY)
#define BENCH_RECONNECT_MS 10
#define BENCH_MAX_LINE 65536

enum bench_proto {
	PROTO_SOCKETMAP = 0,
	PROTO_DICT,
	PROTO_POLICY,
};

enum reply_class {
	REPLY_OK = 0,
	REPLY_NOTFOUND,
	REPLY_TEMP,
	REPLY_PERM,
	REPLY_OTHER,
	REPLY__COUNT,
};

static const char *const class_names[REPLY__COUNT] = { "OK", "NOTFOUND", "TEMP", "PERM",
						       "other" };

struct bench;

struct client {
	struct bench *b;
	struct bufferevent *bev;
	struct event *retry_ev;
	uint64_t sent_ns; /* 0: nothing outstanding */
	unsigned idx;
	bool connected;
};

struct bench {
	struct event_base *base;
	struct endpoint target;
	enum bench_proto proto;
	bool sequential;      /* each key once, in order */
	size_t next_key;
	unsigned idle;        /* --idle: connections to hold */
	unsigned connected;   /* connections that completed connect (idle mode) */
	unsigned idle_connected; /* of which open when the idle time ended */
	const char *map;
	char **keys;
	size_t nkeys;
	unsigned nconns;
	double duration_s;    /* 0 with max_requests */
	uint64_t max_requests;
	uint64_t started;     /* requests sent */
	uint64_t start_ns, end_ns;
	bool stopping;
	unsigned outstanding;
	uint32_t *lat_us;     /* one sample per reply */
	size_t nlat, caplat;
	uint64_t counts[REPLY__COUNT];
	uint64_t errors;      /* connect failures, resets, framing errors */
	uint64_t rng;
	struct client *clients;
	struct event *stop_ev;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: cheap and good enough to pick keys uniformly */
static uint64_t next_rand(struct bench *b)
{
	b->rng ^= b->rng >> 12;
	b->rng ^= b->rng << 25;
	b->rng ^= b->rng >> 27;
	return b->rng * 2685821657736338717ULL;
}

static int open_socket(const struct endpoint *ep, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (ep->kind == ENDPOINT_UNIX) {
		struct sockaddr_un *sun = (struct sockaddr_un *)ss;
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, ep->path, strlen(ep->path) + 1);
		*len = sizeof(*sun);
		return 0;
	}
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	char port[8];
	snprintf(port, sizeof(port), "%u", ep->port);
	if (getaddrinfo(ep->host, port, &hints, &res) != 0)
		return -1;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static void client_connect(struct client *c);
static void client_send(struct client *c);

static void bench_maybe_done(struct bench *b)
{
	if (b->stopping && b->outstanding == 0)
		event_base_loopexit(b->base, NULL);
}

static void bench_stop(struct bench *b)
{
	if (b->stopping)
		return;
	b->stopping = true;
	bench_maybe_done(b);
}

static void record(struct bench *b, enum reply_class cls, uint64_t lat_ns)
{
	b->counts[cls]++;
	if (b->nlat == b->caplat) {
		size_t cap = b->caplat ? b->caplat * 2 : 1 << 16;
		uint32_t *grown = realloc(b->lat_us, cap * sizeof(*grown));
		if (!grown)
			return;
		b->lat_us = grown;
		b->caplat = cap;
	}
	uint64_t us = lat_ns / 1000;
	b->lat_us[b->nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void client_fail(struct client *c, const char *why)
{
	struct bench *b = c->b;
	b->errors++;
	if (b->errors <= 5)
		fprintf(stderr, "vmail-bench: connection %u: %s\n", c->idx, why);
	if (c->sent_ns) {
		c->sent_ns = 0;
		b->outstanding--;
	}
	if (c->connected) {
		c->connected = false;
		b->connected--;
	}
	bufferevent_free(c->bev);
	c->bev = NULL;
	if (b->stopping) {
		bench_maybe_done(b);
		return;
	}
	struct timeval tv = { 0, BENCH_RECONNECT_MS * 1000 };
	evtimer_add(c->retry_ev, &tv);
}

static enum reply_class classify(const char *p, size_t n)
{
	if (n >= 3 && memcmp(p, "OK ", 3) == 0)
		return REPLY_OK;
	if (n >= 8 && memcmp(p, "NOTFOUND", 8) == 0)
		return REPLY_NOTFOUND;
	if ((n >= 4 && memcmp(p, "TEMP", 4) == 0) || (n >= 7 && memcmp(p, "TIMEOUT", 7) == 0))
		return REPLY_TEMP;
	if (n >= 4 && memcmp(p, "PERM", 4) == 0)
		return REPLY_PERM;
	return REPLY_OTHER;
}

/* dict replies: O found, N not found, F failure (one line each) */
static enum reply_class classify_dict(const char *p, size_t n)
{
	if (n == 0)
		return REPLY_OTHER;
	return p[0] == 'O' ? REPLY_OK : p[0] == 'N' ? REPLY_NOTFOUND : p[0] == 'F' ? REPLY_TEMP
										 : REPLY_OTHER;
}

/* policy replies: "action=DUNNO" passes; DEFER* is the database-down answer; 4xx/5xx refuse */
static enum reply_class classify_policy(const char *p, size_t n)
{
	if (n >= 12 && memcmp(p, "action=DUNNO", 12) == 0)
		return REPLY_OK;
	if (n >= 12 && memcmp(p, "action=DEFER", 12) == 0)
		return REPLY_TEMP;
	if (n >= 8 && memcmp(p, "action=4", 8) == 0)
		return REPLY_NOTFOUND;
	if (n >= 8 && memcmp(p, "action=5", 8) == 0)
		return REPLY_PERM;
	return REPLY_OTHER;
}

/*
 * next_reply - one complete reply at the head of in: its class and length, or
 * 0 when more input is needed, or (size_t)-1 on a framing error.
 */
static size_t next_reply(struct bench *b, struct evbuffer *in, enum reply_class *cls,
			 const char **err)
{
	size_t avail = evbuffer_get_length(in);
	if (avail == 0)
		return 0;
	if (b->proto == PROTO_SOCKETMAP) {
		size_t look = avail < BENCH_MAX_FRAME ? avail : BENCH_MAX_FRAME;
		const char *buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)look);
		const char *payload;
		size_t plen, used;
		enum netstring_status st =
			netstring_parse(buf, look, SOCKETMAP_MAX_REPLY, NULL, &payload, &plen, &used, err);
		if (st == NETSTRING_NEED_MORE)
			return 0;
		if (st == NETSTRING_ERROR)
			return (size_t)-1;
		*cls = classify(payload, plen);
		return used;
	}
	/* dict: one line; policy: lines up to an empty one */
	const char *end = b->proto == PROTO_DICT ? "\n" : "\n\n";
	struct evbuffer_ptr ptr = evbuffer_search(in, end, strlen(end), NULL);
	if (ptr.pos < 0) {
		if (avail > BENCH_MAX_LINE) {
			*err = "reply too long";
			return (size_t)-1;
		}
		return 0;
	}
	size_t used = (size_t)ptr.pos + strlen(end);
	const char *buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)used);
	*cls = b->proto == PROTO_DICT ? classify_dict(buf, used - 1) : classify_policy(buf, used);
	return used;
}

static void client_read_cb(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;
	struct bench *b = c->b;
	struct evbuffer *in = bufferevent_get_input(bev);
	for (;;) {
		enum reply_class cls = REPLY_OTHER;
		const char *err = "framing error";
		size_t used = next_reply(b, in, &cls, &err);
		if (used == 0)
			return;
		if (used == (size_t)-1 || !c->sent_ns) {
			client_fail(c, used == (size_t)-1 ? err : "reply without a request");
			return;
		}
		record(b, cls, now_ns() - c->sent_ns);
		evbuffer_drain(in, used);
		c->sent_ns = 0;
		b->outstanding--;
		if (b->stopping) {
			bench_maybe_done(b);
			return;
		}
		client_send(c);
	}
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct client *c = arg;
	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		struct bench *b = c->b;
		if (b->proto == PROTO_DICT) {
			static const char hello[] = "H3\t2\t0\t\tauth\n";
			bufferevent_write(c->bev, hello, sizeof(hello) - 1);
		}
		c->connected = true;
		b->connected++;
		if (b->idle) {
			if (b->connected == b->nconns)
				fprintf(stderr, "vmail-bench: %u connections open, idle\n", b->connected);
			return;
		}
		client_send(c);
		return;
	}
	client_fail(c, what & BEV_EVENT_EOF ? "server closed the connection"
					    : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

static void client_send(struct client *c)
{
	struct bench *b = c->b;
	if (b->max_requests && b->started >= b->max_requests) {
		bench_stop(b);
		return;
	}
	const char *key;
	if (b->sequential) {
		if (b->next_key >= b->nkeys) {
			bench_stop(b);
			return;
		}
		key = b->keys[b->next_key++];
	} else {
		key = b->keys[next_rand(b) % b->nkeys];
	}
	char payload[SOCKETMAP_MAX_REQUEST], frame[SOCKETMAP_MAX_REQUEST + 16];
	int n;
	size_t len;
	switch (b->proto) {
	case PROTO_DICT:
		/* Dovecot's auth process: "L" key TAB username */
		n = snprintf(frame, sizeof(frame), "Lshared/%s/%s\t%s\n", b->map, key, key);
		len = n > 0 && (size_t)n < sizeof(frame) ? (size_t)n : 0;
		break;
	case PROTO_POLICY:
		n = snprintf(frame, sizeof(frame),
			     "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
			     "client_address=192.0.2.1\nsender=bench@example.org\nrecipient=%s\n"
			     "size=0\n\n", key);
		len = n > 0 && (size_t)n < sizeof(frame) ? (size_t)n : 0;
		break;
	case PROTO_SOCKETMAP:
	default:
		n = snprintf(payload, sizeof(payload), "%s %s", b->map, key);
		len = netstring_encode(frame, sizeof(frame), payload, (size_t)n);
		break;
	}
	b->started++;
	b->outstanding++;
	c->sent_ns = now_ns();
	bufferevent_write(c->bev, frame, len);
}

static void client_connect(struct client *c)
{
	struct bench *b = c->b;
	struct sockaddr_storage ss;
	socklen_t len;
	if (open_socket(&b->target, &ss, &len) < 0) {
		fprintf(stderr, "vmail-bench: cannot resolve %s\n", b->target.text);
		exit(1);
	}
	c->bev = bufferevent_socket_new(b->base, -1, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(c->bev, client_read_cb, NULL, client_event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&ss, (int)len) < 0)
		client_fail(c, "connect failed");
}

static void client_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	client_connect(arg);
}

/* In --idle mode the timer ends the idle time: every connection asks once, then we stop. */
static void bench_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bench *b = arg;
	(void)fd;
	(void)what;
	if (b->idle) {
		b->idle_connected = b->connected;
		b->start_ns = now_ns();
		for (unsigned i = 0; i < b->nconns; i++)
			if (b->clients[i].bev && !b->clients[i].sent_ns)
				client_send(&b->clients[i]);
	}
	bench_stop(b);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static uint32_t percentile(const uint32_t *sorted, size_t n, double p)
{
	if (n == 0)
		return 0;
	size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return sorted[i < n ? i : n - 1];
}

static void bench_report(struct bench *b)
{
	double secs = (double)(b->end_ns - b->start_ns) / 1e9;
	qsort(b->lat_us, b->nlat, sizeof(*b->lat_us), cmp_u32);
	double rate = secs > 0 ? (double)b->nlat / secs : 0;
	printf("target       %s map %s, %u connections, %zu keys\n", b->target.text, b->map,
	       b->nconns, b->nkeys);
	printf("lookups      %zu in %.2f s = %.0f lookups/s\n", b->nlat, secs, rate);
	printf("latency us   p50 %u  p99 %u  p99.9 %u  max %u\n", percentile(b->lat_us, b->nlat, 50),
	       percentile(b->lat_us, b->nlat, 99), percentile(b->lat_us, b->nlat, 99.9),
	       b->nlat ? b->lat_us[b->nlat - 1] : 0);
	printf("replies     ");
	for (int i = 0; i < REPLY__COUNT; i++)
		printf(" %s %llu", class_names[i], (unsigned long long)b->counts[i]);
	printf("  errors %llu\n", (unsigned long long)b->errors);
	if (b->idle)
		printf("idle         %u connections held %.0f s: %u open at the end, %zu answered "
		       "afterwards\n", b->nconns, b->duration_s, b->idle_connected, b->nlat);
	/* One line for scripts. */
	printf("RESULT idle_open=%u idle_answered=%zu ", b->idle_connected, b->nlat);
	printf("lookups_per_s=%.0f p50_us=%u p99_us=%u p999_us=%u ok=%llu notfound=%llu "
	       "temp=%llu perm=%llu other=%llu errors=%llu\n",
	       rate, percentile(b->lat_us, b->nlat, 50), percentile(b->lat_us, b->nlat, 99),
	       percentile(b->lat_us, b->nlat, 99.9), (unsigned long long)b->counts[REPLY_OK],
	       (unsigned long long)b->counts[REPLY_NOTFOUND],
	       (unsigned long long)b->counts[REPLY_TEMP], (unsigned long long)b->counts[REPLY_PERM],
	       (unsigned long long)b->counts[REPLY_OTHER], (unsigned long long)b->errors);
}

static bool load_keys(struct bench *b, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "vmail-bench: %s: %s\n", path, strerror(errno));
		return false;
	}
	char *line = NULL;
	size_t cap = 0, n = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, f)) > 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0)
			continue;
		if (b->nkeys == n) {
			n = n ? n * 2 : 1024;
			char **grown = realloc(b->keys, n * sizeof(*grown));
			if (!grown)
				break;
			b->keys = grown;
		}
		b->keys[b->nkeys++] = strdup(line);
	}
	free(line);
	fclose(f);
	if (b->nkeys == 0) {
		fprintf(stderr, "vmail-bench: %s: no keys\n", path);
		return false;
	}
	return true;
}

static void generate_keys(struct bench *b, unsigned count)
{
	b->keys = calloc(count, sizeof(*b->keys));
	for (unsigned i = 0; i < count; i++) {
		char key[64];
		snprintf(key, sizeof(key), "user%u@example.org", i + 1);
		b->keys[i] = strdup(key);
	}
	b->nkeys = count;
}

/* ---- echo server (echo_epoll.c): answers every request "OK <key>" ---- */

static int echo_server(const struct endpoint *ep)
{
	char err[256];
	struct endpoint_perms perms = { (uid_t)-1, (gid_t)-1, 0666 };
	/* a client may stop the server as soon as it accepts: SIGTERM waits until it can be handled */
	sigset_t stop, mask;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_BLOCK, &stop, &mask);
	int fd = endpoint_listen(ep, &perms, 1024, err, sizeof(err));
	if (fd < 0) {
		fprintf(stderr, "vmail-bench: %s\n", err);
		return 1;
	}
	fprintf(stderr, "vmail-bench: echo server on %s\n", ep->text);
	int rc = echo_epoll_run(fd, &mask);
	close(fd);
	if (ep->kind == ENDPOINT_UNIX)
		unlink(ep->path);
	return rc;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: vmail-bench [options] unix:PATH | inet:HOST:PORT\n"
		"       vmail-bench --echo-server unix:PATH | inet:HOST:PORT\n"
		"  -c, --connections N   concurrent connections, one request in flight each (32)\n"
		"  -T, --time SECONDS    run this long (10), or\n"
		"  -n, --requests K      stop after K requests\n"
		"  -P, --proto NAME      socketmap (default), dict (L shared/userdb/<key>, hello\n"
		"                        \"auth\") or policy (RCPT with recipient=<key>)\n"
		"  -m, --map NAME        socketmap name (alias); with dict, userdb (default)\n"
		"                        or passdb\n"
		"  -k, --keys FILE       keys, one per line, picked uniformly at random\n"
		"  -g, --generate N      without --keys: N keys user<i>@example.org (1000)\n"
		"  -S, --sequential      each key once, in file order, then stop (fills a cache)\n"
		"  -I, --idle N          open N connections, hold them idle for --time, then send\n"
		"                        one request on each and count the answers\n"
		"      --echo-server EP  run a server answering \"OK <key>\" to everything\n"
		"  -V, --version, -h, --help\n"
		"Prints lookups/s, p50/p99/p99.9 latency in microseconds and the reply mix; the\n"
		"last line (RESULT ...) is for scripts.\n");
}

static bool parse_endpoint(const char *spec, struct endpoint *ep)
{
	struct endpoint_list l;
	char err[256];
	if (!endpoint_parse_list(spec, &l, err, sizeof(err)) || l.count != 1) {
		fprintf(stderr, "vmail-bench: %s: %s\n", spec, l.count > 1 ? "one endpoint only" : err);
		return false;
	}
	*ep = l.items[0];
	return true;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "connections", required_argument, NULL, 'c' },
		{ "time", required_argument, NULL, 'T' },
		{ "requests", required_argument, NULL, 'n' },
		{ "map", required_argument, NULL, 'm' },
		{ "keys", required_argument, NULL, 'k' },
		{ "generate", required_argument, NULL, 'g' },
		{ "proto", required_argument, NULL, 'P' },
		{ "sequential", no_argument, NULL, 'S' },
		{ "idle", required_argument, NULL, 'I' },
		{ "echo-server", required_argument, NULL, 'E' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bench b = { .map = "alias", .nconns = 32, .duration_s = 10 };
	const char *keys_path = NULL, *echo = NULL;
	unsigned generate = 1000;
	int opt;
	while ((opt = getopt_long(argc, argv, "c:T:n:m:k:g:P:SI:Vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			b.nconns = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'T':
			b.duration_s = strtod(optarg, NULL);
			break;
		case 'n':
			b.max_requests = strtoull(optarg, NULL, 10);
			b.duration_s = 0;
			break;
		case 'm':
			b.map = optarg;
			break;
		case 'k':
			keys_path = optarg;
			break;
		case 'g':
			generate = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'E':
			echo = optarg;
			break;
		case 'P':
			if (strcmp(optarg, "socketmap") == 0)
				b.proto = PROTO_SOCKETMAP;
			else if (strcmp(optarg, "dict") == 0)
				b.proto = PROTO_DICT;
			else if (strcmp(optarg, "policy") == 0)
				b.proto = PROTO_POLICY;
			else {
				usage(stderr);
				return 2;
			}
			break;
		case 'S':
			b.sequential = true;
			b.duration_s = 0;
			b.max_requests = UINT64_MAX;
			break;
		case 'I':
			b.idle = (unsigned)strtoul(optarg, NULL, 10);
			b.nconns = b.idle;
			break;
		case 'V':
			printf("vmail-bench %s\n", VMAIL_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (b.proto == PROTO_DICT && strcmp(b.map, "alias") == 0)
		b.map = "userdb";
	if (b.proto == PROTO_DICT && strcmp(b.map, "userdb") != 0 && strcmp(b.map, "passdb") != 0) {
		usage(stderr);
		return 2;
	}
	if (echo) {
		struct endpoint ep;
		return parse_endpoint(echo, &ep) ? echo_server(&ep) : 2;
	}
	if (optind + 1 != argc || b.nconns == 0 || b.nconns > 100000 || generate == 0 ||
	    (b.duration_s <= 0 && b.max_requests == 0)) {
		usage(stderr);
		return 2;
	}
	if (!parse_endpoint(argv[optind], &b.target))
		return 2;
	if (keys_path && !load_keys(&b, keys_path))
		return 1;
	if (!keys_path)
		generate_keys(&b, generate);

	signal(SIGPIPE, SIG_IGN);
	b.rng = (uint64_t)now_ns() | 1;
	b.base = event_base_new();
	b.clients = calloc(b.nconns, sizeof(*b.clients));
	b.start_ns = now_ns();
	for (unsigned i = 0; i < b.nconns; i++) {
		struct client *c = &b.clients[i];
		c->b = &b;
		c->idx = i;
		c->retry_ev = evtimer_new(b.base, client_retry_cb, c);
		client_connect(c);
	}
	if (b.duration_s > 0) {
		b.stop_ev = evtimer_new(b.base, bench_timer_cb, &b);
		struct timeval tv = { (time_t)b.duration_s,
				      (suseconds_t)((b.duration_s - (double)(time_t)b.duration_s) * 1e6) };
		evtimer_add(b.stop_ev, &tv);
	}
	event_base_dispatch(b.base);
	b.end_ns = now_ns(); /* the loop ends with the last reply */
	bench_report(&b);

	for (unsigned i = 0; i < b.nconns; i++) {
		if (b.clients[i].bev)
			bufferevent_free(b.clients[i].bev);
		event_free(b.clients[i].retry_ev);
	}
	if (b.stop_ev)
		event_free(b.stop_ev);
	event_base_free(b.base);
	for (size_t i = 0; i < b.nkeys; i++)
		free(b.keys[i]);
	free(b.keys);
	free(b.clients);
	free(b.lat_us);
	return b.nlat ? 0 : 1;
}
