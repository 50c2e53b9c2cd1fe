/*
 * ctl_stats: "vmailctl stats" — fetch vmaild's metrics from metrics_listen (the
 * same configuration file) with a plain HTTP/1.0 GET, and print a summary, JSON
 * or the raw Prometheus text.  Needs no database: it must work during an outage.
 */
#include "ctl.h"

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmail/config.h"
#include "vmail/endpoint.h"
#include "vmail/size.h"

#define STATS_MAX_BODY (4u << 20)
#define STATS_TIMEOUT_S 5
#define STATS_MAX_SAMPLES 4096

/* One sample line: name{labels} value */
struct sample {
	char name[64];
	char labels[192];
	double value;
};

struct scrape {
	struct sample *s;
	size_t n;
};

static int stats_connect(const struct endpoint *ep, char *err, size_t errlen)
{
	struct timeval tv = { STATS_TIMEOUT_S, 0 };
	int fd = -1;
	if (ep->kind == ENDPOINT_UNIX) {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", ep->path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
			snprintf(err, errlen, "%s: %s", ep->text, strerror(errno));
			close(fd);
			return -1;
		}
	} else if (ep->kind == ENDPOINT_INET) {
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
		char port[8];
		snprintf(port, sizeof(port), "%u", ep->port);
		const char *host = strcmp(ep->host, "*") == 0 ? "127.0.0.1" : ep->host;
		int rc = getaddrinfo(host, port, &hints, &res);
		if (rc != 0) {
			snprintf(err, errlen, "%s: %s", ep->text, gai_strerror(rc));
			return -1;
		}
		snprintf(err, errlen, "%s: no address", ep->text);
		for (ai = res; ai; ai = ai->ai_next) {
			fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
			if (fd < 0)
				continue;
			setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
			if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
				break;
			snprintf(err, errlen, "%s: %s", ep->text, strerror(errno));
			close(fd);
			fd = -1;
		}
		freeaddrinfo(res);
	} else {
		snprintf(err, errlen, "%s: a systemd socket cannot be reached from here; use "
			 "inet: or unix:", ep->text);
		return -1;
	}
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	return fd;
}

/* fetch - GET /metrics; the body in *out (NUL-terminated), or false with err */
static bool fetch(const struct endpoint *ep, char **out, char *err, size_t errlen)
{
	int fd = stats_connect(ep, err, errlen);
	if (fd < 0)
		return false;
	static const char req[] = "GET /metrics HTTP/1.0\r\nHost: vmaild\r\n\r\n";
	if (write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
		snprintf(err, errlen, "%s: %s", ep->text, strerror(errno));
		close(fd);
		return false;
	}
	size_t len = 0, cap = 65536;
	char *buf = malloc(cap + 1);
	ssize_t n;
	while (buf && (n = read(fd, buf + len, cap - len)) > 0) {
		len += (size_t)n;
		if (len == cap) {
			char *grown = cap < STATS_MAX_BODY ? realloc(buf, cap * 2 + 1) : NULL;
			if (!grown) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = grown;
			cap *= 2;
		}
	}
	int saved = errno;
	close(fd);
	if (!buf) {
		snprintf(err, errlen, "%s: reply too large", ep->text);
		return false;
	}
	buf[len] = '\0';
	if (len == 0) {
		snprintf(err, errlen, "%s: no reply (%s)", ep->text, saved ? strerror(saved) : "EOF");
		free(buf);
		return false;
	}
	char *body = strstr(buf, "\r\n\r\n");
	if (strncmp(buf, "HTTP/1.", 7) != 0 || !body || strncmp(buf + 8, " 200", 4) != 0) {
		char *eol = strpbrk(buf, "\r\n");
		snprintf(err, errlen, "%s: %.*s", ep->text, eol ? (int)(eol - buf) : 60, buf);
		free(buf);
		return false;
	}
	memmove(buf, body + 4, strlen(body + 4) + 1);
	*out = buf;
	return true;
}

static void parse(char *text, struct scrape *sc)
{
	sc->s = calloc(STATS_MAX_SAMPLES, sizeof(*sc->s));
	sc->n = 0;
	for (char *line = strtok(text, "\n"); line && sc->s; line = strtok(NULL, "\n")) {
		if (line[0] == '#' || sc->n == STATS_MAX_SAMPLES)
			continue;
		struct sample *s = &sc->s[sc->n];
		size_t nl = strcspn(line, "{ ");
		if (nl == 0 || nl >= sizeof(s->name))
			continue;
		memcpy(s->name, line, nl);
		s->name[nl] = '\0';
		char *p = line + nl;
		s->labels[0] = '\0';
		if (*p == '{') {
			char *end = strchr(p, '}');
			if (!end || (size_t)(end - p - 1) >= sizeof(s->labels))
				continue;
			memcpy(s->labels, p + 1, (size_t)(end - p - 1));
			s->labels[end - p - 1] = '\0';
			p = end + 1;
		}
		s->value = strtod(p, NULL);
		sc->n++;
	}
}

/* get - the value of name with exactly these labels ("" for none), or 0 */
static double get(const struct scrape *sc, const char *name, const char *labels)
{
	for (size_t i = 0; i < sc->n; i++)
		if (strcmp(sc->s[i].name, name) == 0 && strcmp(sc->s[i].labels, labels) == 0)
			return sc->s[i].value;
	return 0;
}

/* label - the value of key in a label set, into out */
static bool label(const char *labels, const char *key, char *out, size_t len)
{
	char pat[40];
	snprintf(pat, sizeof(pat), "%s=\"", key);
	const char *p = strstr(labels, pat);
	if (!p)
		return false;
	p += strlen(pat);
	size_t n = strcspn(p, "\"");
	snprintf(out, len, "%.*s", (int)n, p);
	return true;
}

/* quantile - from the cumulative buckets of one (protocol, kind), in ms; the bucket's bound */
static double quantile(const struct scrape *sc, const char *pk, double q)
{
	double count = 0, bound = NAN;
	char want[160];
	snprintf(want, sizeof(want), "%s,le=", pk);
	for (size_t i = 0; i < sc->n; i++)
		if (strcmp(sc->s[i].name, "vmaild_lookup_duration_seconds_bucket") == 0 &&
		    strncmp(sc->s[i].labels, want, strlen(want)) == 0 && strstr(sc->s[i].labels, "+Inf"))
			count = sc->s[i].value;
	if (count == 0)
		return NAN;
	for (size_t i = 0; i < sc->n; i++) {
		if (strcmp(sc->s[i].name, "vmaild_lookup_duration_seconds_bucket") != 0 ||
		    strncmp(sc->s[i].labels, want, strlen(want)) != 0)
			continue;
		if (sc->s[i].value >= q * count) {
			char le[32];
			label(sc->s[i].labels, "le", le, sizeof(le));
			bound = strcmp(le, "+Inf") == 0 ? INFINITY : strtod(le, NULL) * 1000;
			break;
		}
	}
	return bound;
}

static void print_ms(FILE *f, double ms, bool json)
{
	if (isnan(ms))
		fprintf(f, json ? "null" : "%8s", "-");
	else if (isinf(ms))
		fprintf(f, json ? "null" : "%8s", ">5000");
	else
		fprintf(f, json ? "%g" : "%8g", ms);
}

static const char *const sources[] = { "hit", "stale", "miss", "uncached" };
static const char *const statuses[] = { "found", "notfound", "tempfail", "permfail" };

static void print_lookups(const struct scrape *sc, bool json)
{
	bool first = true;
	if (!json)
		printf("\n%-10s %-12s %10s %9s %7s %9s %9s %9s %8s %8s %8s %8s\n", "protocol", "kind",
		       "requests", "hits", "stale", "misses", "uncached", "notfound", "tempfail",
		       "permfail", "p50 ms", "p99 ms");
	for (size_t i = 0; i < sc->n; i++) {
		if (strcmp(sc->s[i].name, "vmaild_lookups_total") != 0)
			continue;
		char proto[32], kind[32], pk[160], l[200];
		if (!label(sc->s[i].labels, "protocol", proto, sizeof(proto)) ||
		    !label(sc->s[i].labels, "kind", kind, sizeof(kind)))
			continue;
		snprintf(pk, sizeof(pk), "protocol=\"%s\",kind=\"%s\"", proto, kind);
		double src[4], st[4];
		for (int k = 0; k < 4; k++) {
			snprintf(l, sizeof(l), "%s,source=\"%s\"", pk, sources[k]);
			src[k] = get(sc, "vmaild_lookup_source_total", l);
			snprintf(l, sizeof(l), "%s,status=\"%s\"", pk, statuses[k]);
			st[k] = get(sc, "vmaild_lookup_answers_total", l);
		}
		double p50 = quantile(sc, pk, 0.5), p99 = quantile(sc, pk, 0.99);
		if (json) {
			printf("%s\n    {\"protocol\": \"%s\", \"kind\": \"%s\", \"requests\": %.0f",
			       first ? "" : ",", proto, kind, sc->s[i].value);
			for (int k = 0; k < 4; k++)
				printf(", \"%s\": %.0f", sources[k], src[k]);
			for (int k = 0; k < 4; k++)
				printf(", \"%s\": %.0f", statuses[k], st[k]);
			printf(", \"p50_ms\": ");
			print_ms(stdout, p50, true);
			printf(", \"p99_ms\": ");
			print_ms(stdout, p99, true);
			printf("}");
		} else {
			printf("%-10s %-12s %10.0f %9.0f %7.0f %9.0f %9.0f %9.0f %8.0f %8.0f ", proto,
			       kind, sc->s[i].value, src[0], src[1], src[2], src[3], st[1], st[2], st[3]);
			print_ms(stdout, p50, false);
			printf(" ");
			print_ms(stdout, p99, false);
			printf("\n");
		}
		first = false;
	}
	if (!json && first)
		printf("(no lookups yet)\n");
}

static void print_summary(const struct scrape *sc)
{
	char used[SIZE_FMT_MAX], max[SIZE_FMT_MAX];
	size_format((uint64_t)get(sc, "vmaild_cache_bytes", ""), used, sizeof(used));
	size_format((uint64_t)get(sc, "vmaild_cache_max_bytes", ""), max, sizeof(max));
	printf("vmaild       up %.0f s, %.0f client connections\n", get(sc, "vmaild_uptime_seconds", ""),
	       get(sc, "vmaild_connections", ""));
	printf("database     %.0f ready, %.0f connecting, %.0f preparing, %.0f backoff; %.0f queued, "
	       "%.0f in flight; %.0f timeouts, %.0f connection failures\n",
	       get(sc, "vmaild_pg_connections", "state=\"ready\""),
	       get(sc, "vmaild_pg_connections", "state=\"connecting\""),
	       get(sc, "vmaild_pg_connections", "state=\"preparing\""),
	       get(sc, "vmaild_pg_connections", "state=\"backoff\""), get(sc, "vmaild_pg_queued", ""),
	       get(sc, "vmaild_pg_inflight", ""), get(sc, "vmaild_pg_timeouts_total", ""),
	       get(sc, "vmaild_pg_connection_failures_total", ""));
	if (get(sc, "vmaild_cache_enabled", "") == 0) {
		printf("cache        disabled (cache_size 0)\n");
	} else {
		printf("cache        %s; %.0f entries, %s of %s; %.0f evictions, %.0f expired, "
		       "%.0f dropped by %.0f invalidations, emptied %.0f times\n",
		       get(sc, "vmaild_cache_live", "") ? "live" : "NOT LIVE (no invalidations: answers come "
							      "from the database)",
		       get(sc, "vmaild_cache_entries", ""), used, max,
		       get(sc, "vmaild_cache_evictions_total", ""), get(sc, "vmaild_cache_expired_total", ""),
		       get(sc, "vmaild_cache_dropped_total", ""),
		       get(sc, "vmaild_cache_invalidations_total", ""),
		       get(sc, "vmaild_cache_flushes_total", ""));
	}
	printf("invalidation LISTEN %s, %.0f notifications, %.0f connects\n",
	       get(sc, "vmaild_listen_up", "") ? "up" : "down",
	       get(sc, "vmaild_listen_notifications_total", ""),
	       get(sc, "vmaild_listen_connects_total", ""));
	print_lookups(sc, false);
}

static void print_json(const struct scrape *sc)
{
	printf("{\n  \"uptime_s\": %.3f, \"connections\": %.0f,\n", get(sc, "vmaild_uptime_seconds", ""),
	       get(sc, "vmaild_connections", ""));
	printf("  \"pool\": {\"ready\": %.0f, \"connecting\": %.0f, \"preparing\": %.0f, \"backoff\": "
	       "%.0f, \"queued\": %.0f, \"inflight\": %.0f, \"timeouts\": %.0f, \"failures\": %.0f},\n",
	       get(sc, "vmaild_pg_connections", "state=\"ready\""),
	       get(sc, "vmaild_pg_connections", "state=\"connecting\""),
	       get(sc, "vmaild_pg_connections", "state=\"preparing\""),
	       get(sc, "vmaild_pg_connections", "state=\"backoff\""), get(sc, "vmaild_pg_queued", ""),
	       get(sc, "vmaild_pg_inflight", ""), get(sc, "vmaild_pg_timeouts_total", ""),
	       get(sc, "vmaild_pg_connection_failures_total", ""));
	printf("  \"cache\": {\"enabled\": %s, \"live\": %s, \"entries\": %.0f, \"bytes\": %.0f, "
	       "\"max_bytes\": %.0f, \"evictions\": %.0f, \"expired\": %.0f, \"dropped\": %.0f, "
	       "\"invalidations\": %.0f, \"flushes\": %.0f},\n",
	       get(sc, "vmaild_cache_enabled", "") ? "true" : "false",
	       get(sc, "vmaild_cache_live", "") ? "true" : "false", get(sc, "vmaild_cache_entries", ""),
	       get(sc, "vmaild_cache_bytes", ""), get(sc, "vmaild_cache_max_bytes", ""),
	       get(sc, "vmaild_cache_evictions_total", ""), get(sc, "vmaild_cache_expired_total", ""),
	       get(sc, "vmaild_cache_dropped_total", ""),
	       get(sc, "vmaild_cache_invalidations_total", ""),
	       get(sc, "vmaild_cache_flushes_total", ""));
	printf("  \"listen\": {\"up\": %s, \"notifications\": %.0f, \"connects\": %.0f},\n",
	       get(sc, "vmaild_listen_up", "") ? "true" : "false",
	       get(sc, "vmaild_listen_notifications_total", ""),
	       get(sc, "vmaild_listen_connects_total", ""));
	printf("  \"lookups\": [");
	print_lookups(sc, true);
	printf("\n  ]\n}\n");
}

static int stats_show(struct ctl *ctx, const struct ctl_args *a)
{
	const char *path = ctl_config_path(ctx);
	static const char *const wanted[] = { "metrics_listen", NULL };
	struct config cfg;
	char err[512];
	if (!config_load_keys(path, wanted, &cfg, err, sizeof(err)))
		return ctl_fail("%s", err);
	struct endpoint_list eps;
	bool ok = false;
	if (!cfg.metrics_listen[0])
		snprintf(err, sizeof(err), "metrics_listen is not set in %s", path);
	else if (!endpoint_parse_list(cfg.metrics_listen, &eps, err, sizeof(err)))
		; /* cannot happen: the row checked the syntax */
	else if (eps.count != 1)
		snprintf(err, sizeof(err), "metrics_listen: one endpoint only");
	else
		ok = true;
	config_free(&cfg);
	if (!ok)
		return ctl_fail("%s", err);

	char *body;
	if (!fetch(&eps.items[0], &body, err, sizeof(err)))
		return ctl_fail("cannot read vmaild's metrics: %s", err);
	if (ctl_flag(a, "raw")) {
		fputs(body, stdout);
		free(body);
		return CTL_EXIT_OK;
	}
	struct scrape sc;
	parse(body, &sc);
	if (!sc.s) {
		free(body);
		return ctl_fail("out of memory");
	}
	if (ctx->json)
		print_json(&sc);
	else
		print_summary(&sc);
	free(sc.s);
	free(body);
	return CTL_EXIT_OK;
}

static const struct ctl_opt stats_opts[] = {
	{ "raw", NULL, "print the Prometheus text as vmaild serves it" },
	{ NULL, NULL, NULL },
};

static const struct ctl_verb stats_verbs[] = {
	{ "show", "", 0, 0, CTL_ADMIN | CTL_NO_DB, "vmaild's lookup, cache and database pool counters",
	  "Reads metrics_listen from the configuration file and asks the running vmaild\n"
	  "(GET /metrics).  Per protocol and lookup kind: requests, where the answers came\n"
	  "from (cache hit, stale during an outage, database, uncached), failures and the\n"
	  "median and 99th percentile latency (upper bounds of histogram buckets).  --json\n"
	  "gives the same as one object; --raw the Prometheus text.  Needs no database.",
	  stats_opts, stats_show },
	{ NULL, NULL, 0, 0, 0, NULL, NULL, NULL, NULL },
};

const struct ctl_noun ctl_noun_stats = { "stats", "vmaild's counters: lookups, cache, database pool",
					 stats_verbs, "show" };
