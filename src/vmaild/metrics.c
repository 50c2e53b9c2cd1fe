/*
 * metrics: the counters lookup.c feeds (one cell per protocol and kind, plain
 * arrays: the daemon is one thread), the dict service's quota failures, and
 * their Prometheus text rendering.
 * Serving them over HTTP is metrics_http.c.
 */
#include "metrics.h"

#include <string.h>

#include <event2/buffer.h>

const uint32_t metrics_bucket_us[METRICS_NBUCKETS] = {
	50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000,
};

static struct metrics_lookup cells[METRICS_PROTO__COUNT][LOOKUP__COUNT];

static uint64_t quota_failures[METRICS_QUOTA_REQ__COUNT][METRICS_QF__COUNT];

static const char *const quota_req_names[METRICS_QUOTA_REQ__COUNT] = {
	[METRICS_QUOTA_LOOKUP] = "lookup",
	[METRICS_QUOTA_COMMIT] = "commit",
};

static const char *const quota_fail_names[METRICS_QF__COUNT] = {
	[METRICS_QF_UNAVAILABLE] = "unavailable",
	[METRICS_QF_ERROR] = "error",
	[METRICS_QF_UNQUEUED] = "unqueued",
	[METRICS_QF_MEMORY] = "memory",
	[METRICS_QF_OVERLOAD] = "overload",
	[METRICS_QF_DENIED] = "denied",
	[METRICS_QF_INVALID] = "invalid",
	[METRICS_QF_RANGE] = "range",
	[METRICS_QF_CLOSED] = "closed",
};

static const char *const proto_names[METRICS_PROTO__COUNT] = {
	[METRICS_PROTO_OTHER] = "other",
	[METRICS_PROTO_SOCKETMAP] = "socketmap",
	[METRICS_PROTO_DICT] = "dict",
	[METRICS_PROTO_POLICY] = "policy",
};

static const char *const source_names[METRICS_SOURCE__COUNT] = {
	[METRICS_HIT] = "hit",
	[METRICS_STALE] = "stale",
	[METRICS_MISS] = "miss",
	[METRICS_UNCACHED] = "uncached",
};

const char *metrics_proto_name(enum metrics_proto proto)
{
	return (unsigned)proto < METRICS_PROTO__COUNT ? proto_names[proto] : "?";
}

const char *metrics_quota_fail_name(enum metrics_quota_fail reason)
{
	return (unsigned)reason < METRICS_QF__COUNT ? quota_fail_names[reason] : "?";
}

const char *metrics_quota_req_name(enum metrics_quota_req req)
{
	return (unsigned)req < METRICS_QUOTA_REQ__COUNT ? quota_req_names[req] : "?";
}

void metrics_quota_failed(enum metrics_quota_req req, enum metrics_quota_fail reason)
{
	if ((unsigned)req < METRICS_QUOTA_REQ__COUNT && (unsigned)reason < METRICS_QF__COUNT)
		quota_failures[req][reason]++;
}

uint64_t metrics_quota_failures(enum metrics_quota_req req, enum metrics_quota_fail reason)
{
	if ((unsigned)req < METRICS_QUOTA_REQ__COUNT && (unsigned)reason < METRICS_QF__COUNT)
		return quota_failures[req][reason];
	return 0;
}

void metrics_lookup_done(enum metrics_proto proto, enum lookup_kind kind, enum metrics_source src,
			 enum lookup_status st, uint64_t usec)
{
	if ((unsigned)proto >= METRICS_PROTO__COUNT || (unsigned)kind >= LOOKUP__COUNT)
		return;
	struct metrics_lookup *m = &cells[proto][kind];
	m->requests++;
	m->source[src]++;
	m->status[st <= LOOKUP_PERMFAIL ? st : LOOKUP_TEMPFAIL]++;
	m->sum_us += usec;
	unsigned b = 0;
	while (b < METRICS_NBUCKETS && usec > metrics_bucket_us[b])
		b++;
	m->bucket[b]++;
}

const struct metrics_lookup *metrics_lookup_get(enum metrics_proto proto, enum lookup_kind kind)
{
	if ((unsigned)proto >= METRICS_PROTO__COUNT || (unsigned)kind >= LOOKUP__COUNT)
		return NULL;
	return &cells[proto][kind];
}

void metrics_reset(void)
{
	memset(cells, 0, sizeof(cells));
	memset(quota_failures, 0, sizeof(quota_failures));
}

static void help(struct evbuffer *out, const char *name, const char *type, const char *text)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* each_cell - call fn for every cell that counted something */
#define FOR_CELLS(p, k, m)                                                   \
	for (unsigned p = 0; p < METRICS_PROTO__COUNT; p++)                   \
		for (unsigned k = 0; k < LOOKUP__COUNT; k++)                 \
			for (const struct metrics_lookup *m = &cells[p][k]; \
			     m && m->requests; m = NULL)

static void render_lookups(struct evbuffer *out)
{
	help(out, "vmaild_lookups_total", "counter", "Lookups answered, by protocol and kind.");
	FOR_CELLS(p, k, m)
		evbuffer_add_printf(out, "vmaild_lookups_total{protocol=\"%s\",kind=\"%s\"} %llu\n",
				    metrics_proto_name(p), lookup_kind_name(k),
				    (unsigned long long)m->requests);
	help(out, "vmaild_lookup_source_total", "counter",
	     "Where answers came from: hit, stale (database down), miss (database), uncached.");
	FOR_CELLS(p, k, m)
		for (unsigned s = 0; s < METRICS_SOURCE__COUNT; s++)
			evbuffer_add_printf(out,
					    "vmaild_lookup_source_total{protocol=\"%s\",kind=\"%s\","
					    "source=\"%s\"} %llu\n",
					    metrics_proto_name(p), lookup_kind_name(k), source_names[s],
					    (unsigned long long)m->source[s]);
	help(out, "vmaild_lookup_answers_total", "counter",
	     "Answers by status: found, notfound, tempfail and permfail (the errors).");
	FOR_CELLS(p, k, m)
		for (unsigned s = 0; s <= LOOKUP_PERMFAIL; s++)
			evbuffer_add_printf(out,
					    "vmaild_lookup_answers_total{protocol=\"%s\",kind=\"%s\","
					    "status=\"%s\"} %llu\n",
					    metrics_proto_name(p), lookup_kind_name(k),
					    lookup_status_name((enum lookup_status)s),
					    (unsigned long long)m->status[s]);
	help(out, "vmaild_lookup_duration_seconds", "histogram",
	     "Time from submit to answer inside vmaild.");
	FOR_CELLS(p, k, m) {
		uint64_t cum = 0;
		for (unsigned b = 0; b <= METRICS_NBUCKETS; b++) {
			cum += m->bucket[b];
			char le[32];
			if (b < METRICS_NBUCKETS)
				snprintf(le, sizeof(le), "%g", metrics_bucket_us[b] / 1e6);
			else
				snprintf(le, sizeof(le), "+Inf");
			evbuffer_add_printf(out,
					    "vmaild_lookup_duration_seconds_bucket{protocol=\"%s\","
					    "kind=\"%s\",le=\"%s\"} %llu\n",
					    metrics_proto_name(p), lookup_kind_name(k), le,
					    (unsigned long long)cum);
		}
		evbuffer_add_printf(out,
				    "vmaild_lookup_duration_seconds_sum{protocol=\"%s\",kind=\"%s\"} "
				    "%.6f\n"
				    "vmaild_lookup_duration_seconds_count{protocol=\"%s\",kind=\"%s\"} "
				    "%llu\n",
				    metrics_proto_name(p), lookup_kind_name(k), (double)m->sum_us / 1e6,
				    metrics_proto_name(p), lookup_kind_name(k),
				    (unsigned long long)m->requests);
	}
}

/* Every (request, reason) pair, zeros too: an alert on a rate needs the series to exist. */
static void render_quota_failures(struct evbuffer *out)
{
	help(out, "vmaild_dict_quota_failures_total", "counter",
	     "Quota requests vmaild could not serve, by reason: commits answered F (the "
	     "mailbox is listed for a recount unless the input was refused), counter lookups "
	     "answered F or full.");
	for (unsigned q = 0; q < METRICS_QUOTA_REQ__COUNT; q++)
		for (unsigned r = 0; r < METRICS_QF__COUNT; r++)
			evbuffer_add_printf(out,
					    "vmaild_dict_quota_failures_total{request=\"%s\","
					    "reason=\"%s\"} %llu\n",
					    quota_req_names[q], quota_fail_names[r],
					    (unsigned long long)quota_failures[q][r]);
}

static void gauge(struct evbuffer *out, const char *name, const char *text, double v)
{
	help(out, name, "gauge", text);
	evbuffer_add_printf(out, "%s %.17g\n", name, v);
}

static void counter(struct evbuffer *out, const char *name, const char *text, uint64_t v)
{
	help(out, name, "counter", text);
	evbuffer_add_printf(out, "%s %llu\n", name, (unsigned long long)v);
}

static void render_pool(struct evbuffer *out, const struct pg_stats *ps)
{
	help(out, "vmaild_pg_connections", "gauge", "PostgreSQL pool connections by state.");
	for (unsigned s = 0; s < PG_CONN_STATE__COUNT; s++)
		evbuffer_add_printf(out, "vmaild_pg_connections{state=\"%s\"} %u\n",
				    pg_conn_state_name((enum pg_conn_state)s), ps->conns[s]);
	gauge(out, "vmaild_pg_queued", "Requests waiting for a connection.", (double)ps->queued);
	gauge(out, "vmaild_pg_inflight", "Requests sent and not yet answered.", (double)ps->inflight);
	help(out, "vmaild_pg_answers_total", "counter", "Pool answers by status.");
	for (unsigned s = 0; s < PG_STATUS__COUNT; s++)
		evbuffer_add_printf(out, "vmaild_pg_answers_total{status=\"%s\"} %llu\n",
				    pg_status_name((enum pg_status)s),
				    (unsigned long long)ps->answers[s]);
	counter(out, "vmaild_pg_timeouts_total", "Requests answered tempfail at their deadline.",
		ps->timeouts);
	counter(out, "vmaild_pg_cancelled_total", "Requests cancelled by their client.",
		ps->cancelled);
	counter(out, "vmaild_pg_connection_failures_total", "Connections lost or failed.",
		ps->conn_failures);
	counter(out, "vmaild_pg_batches_total", "Queries that carried several lookups at once.",
		ps->batches);
	counter(out, "vmaild_pg_batched_total", "Lookups those queries carried.", ps->batched);
	counter(out, "vmaild_pg_batch_fallbacks_total",
		"Batches that failed as a whole and were resent one lookup at a time.",
		ps->batch_fallbacks);
}

static void render_cache(struct evbuffer *out, const struct lookup_cache_stats *cs)
{
	gauge(out, "vmaild_cache_enabled", "1 when the answer cache exists.", cs->enabled);
	gauge(out, "vmaild_cache_live", "1 while invalidations arrive, so fresh hits are served.",
	      cs->live);
	gauge(out, "vmaild_cache_entries", "Entries in the answer cache.", (double)cs->cache.entries);
	gauge(out, "vmaild_cache_bytes", "Bytes the cache holds (slabs and index).",
	      (double)cs->cache.allocated_bytes);
	gauge(out, "vmaild_cache_live_bytes", "Bytes of live entries.",
	      (double)cs->cache.live_bytes);
	gauge(out, "vmaild_cache_max_bytes", "The cache_size bound.", (double)cs->cache.max_bytes);
	gauge(out, "vmaild_cache_longest_probe",
	      "Longest run of occupied index slots: the most one lookup visits (hash flooding shows here).",
	      (double)cs->cache.longest_probe);
	gauge(out, "vmaild_cache_mean_probe", "Index slots visited to find an entry, on average.",
	      cs->cache.entries ? (double)cs->cache.probe_total / (double)cs->cache.entries : 0);
	counter(out, "vmaild_cache_inserts_total", "Answers stored.", cs->cache.inserts);
	counter(out, "vmaild_cache_evictions_total", "Entries evicted to make room.",
		cs->cache.evictions);
	counter(out, "vmaild_cache_expired_total", "Entries removed past expiry.", cs->cache.expired);
	counter(out, "vmaild_cache_dropped_total", "Entries removed by invalidation.",
		cs->cache.dropped);
	counter(out, "vmaild_cache_invalidations_total", "Invalidation payloads applied.",
		cs->invalidations);
	counter(out, "vmaild_cache_flushes_total", "Times the whole cache was emptied.",
		cs->flushes);
}

/* Rows of the listener families: the service groups and metrics_listen. */
#define METRICS_MAX_LISTENERS 16

static void render_listeners(struct evbuffer *out, const struct metrics_state *st)
{
	const struct metrics_listener *rows[METRICS_MAX_LISTENERS];
	size_t n = 0;
	for (size_t i = 0; i < st->nlisteners && n < METRICS_MAX_LISTENERS - 1; i++)
		rows[n++] = &st->listeners[i];
	if (st->metrics.name)
		rows[n++] = &st->metrics;
	if (!n)
		return;
	help(out, "vmaild_listener_connections", "gauge", "Client connections open per listener.");
	for (size_t i = 0; i < n; i++)
		evbuffer_add_printf(out, "vmaild_listener_connections{listener=\"%s\"} %u\n",
				    rows[i]->name, rows[i]->connections);
	help(out, "vmaild_connections_refused_total", "counter",
	     "Connections refused: answered a temporary failure, or closed at accept when "
	     "the service's refusing pool is full (the metrics listener always closes).");
	for (size_t i = 0; i < n; i++)
		for (size_t r = 0; r < METRICS_REFUSAL_REASONS; r++)
			if (rows[i]->reason[r])
				evbuffer_add_printf(out,
						    "vmaild_connections_refused_total{listener=\"%s\","
						    "reason=\"%s\"} %llu\n",
						    rows[i]->name, rows[i]->reason[r],
						    (unsigned long long)rows[i]->refused[r]);
}

void metrics_render(struct evbuffer *out, const struct metrics_state *st)
{
	render_lookups(out);
	render_quota_failures(out);
	if (st->pool)
		render_pool(out, st->pool);
	if (st->cache)
		render_cache(out, st->cache);
	gauge(out, "vmaild_listen_up", "1 while the LISTEN connection listens.", st->listen_up);
	counter(out, "vmaild_listen_notifications_total", "Notifications received.",
		st->listen_notifications);
	counter(out, "vmaild_listen_connects_total", "LISTEN connections established.",
		st->listen_reconnects);
	gauge(out, "vmaild_connections", "Client connections open.", st->connections);
	render_listeners(out, st);
	gauge(out, "vmaild_uptime_seconds", "Seconds since start.", st->uptime_s);
}
