/* metrics: lookup counters and latency histograms per protocol and kind, rendered as Prometheus text. */
#ifndef VMAIL_METRICS_H
#define VMAIL_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lookup_cache.h"
#include "lookup_kinds.h"
#include "vmail/pg.h"

struct evbuffer;

/*
 * Who asks, a label of the counters: per protocol and lookup kind.  Only
 * the metrics know protocols; lookup.c passes the label through.
 */
enum metrics_proto {
	METRICS_PROTO_OTHER = 0, /* lookup_submit, lookup_submit_rows */
	METRICS_PROTO_SOCKETMAP,
	METRICS_PROTO_DICT,
	METRICS_PROTO_POLICY,
	METRICS_PROTO__COUNT,
};

/* metrics_proto_name - "other", "socketmap", "dict", "policy" */
const char *metrics_proto_name(enum metrics_proto proto);

/* Where an answer came from. */
enum metrics_source {
	METRICS_HIT = 0,  /* fresh from the cache */
	METRICS_STALE,    /* from the cache past its expiry: the database could not answer */
	METRICS_MISS,     /* cacheable, asked the database */
	METRICS_UNCACHED, /* a kind (or key) the cache does not hold, or no cache */
	METRICS_SOURCE__COUNT,
};

/* Upper bounds of the latency buckets in microseconds (the +Inf bucket comes on top). */
#define METRICS_NBUCKETS 16
extern const uint32_t metrics_bucket_us[METRICS_NBUCKETS];

/* One (protocol, kind) cell. */
struct metrics_lookup {
	uint64_t requests;
	uint64_t source[METRICS_SOURCE__COUNT];
	uint64_t status[LOOKUP_PERMFAIL + 1];
	uint64_t bucket[METRICS_NBUCKETS + 1]; /* not cumulative; last = over the largest bound */
	uint64_t sum_us;
};

/* metrics_lookup_done - count one answered lookup (called by lookup.c) */
void metrics_lookup_done(enum metrics_proto proto, enum lookup_kind kind, enum metrics_source src,
			 enum lookup_status st, uint64_t usec);

/* metrics_lookup_get - the cell, for tests and vmailctl-side summaries */
const struct metrics_lookup *metrics_lookup_get(enum metrics_proto proto, enum lookup_kind kind);

/* The quota requests of the dict service (dict_quota_listen) that can be answered F. */
enum metrics_quota_req {
	METRICS_QUOTA_LOOKUP = 0, /* L priv/quota/... */
	METRICS_QUOTA_COMMIT,     /* C of a transaction on the counters */
	METRICS_QUOTA_REQ__COUNT,
};

/* Why a quota request was answered F: the label of vmaild_dict_quota_failures_total. */
enum metrics_quota_fail {
	METRICS_QF_UNAVAILABLE = 0, /* the database did not answer in time (down, frozen) */
	METRICS_QF_ERROR,           /* the statement failed (schema, configuration) */
	METRICS_QF_UNQUEUED,        /* the pool would not take the request */
	METRICS_QF_MEMORY,          /* out of memory */
	METRICS_QF_OVERLOAD,        /* max_connections reached: refused before any work */
	METRICS_QF_DENIED,          /* a counter of a user who does not run under the peer's uid */
	METRICS_QF_INVALID,         /* bad input: user name, key, value */
	METRICS_QF_RANGE,           /* the counter would leave its bounds */
	METRICS_QF_CLOSED,          /* the connection closed before the commit was answered */
	METRICS_QF__COUNT,
};

/* metrics_quota_fail_name - "unavailable", "error", ... (the reason label) */
const char *metrics_quota_fail_name(enum metrics_quota_fail reason);

/* metrics_quota_req_name - "lookup", "commit" (the request label) */
const char *metrics_quota_req_name(enum metrics_quota_req req);

/* metrics_quota_failed - count one F answered to a quota request */
void metrics_quota_failed(enum metrics_quota_req req, enum metrics_quota_fail reason);

/* metrics_quota_failures - how many F were counted for (req, reason) (tests) */
uint64_t metrics_quota_failures(enum metrics_quota_req req, enum metrics_quota_fail reason);

/* metrics_reset - zero every counter (tests) */
void metrics_reset(void);

/* Reasons a listener refuses connections, at most (labels come with the row). */
#define METRICS_REFUSAL_REASONS 4

/* One listener group (service) of the daemon, or the metrics listener itself. */
struct metrics_listener {
	const char *name;                               /* "socketmap", "dict_quota", "metrics" */
	unsigned connections;                           /* open */
	const char *reason[METRICS_REFUSAL_REASONS];    /* NULL: unused slot */
	uint64_t refused[METRICS_REFUSAL_REASONS];
};

/* What the daemon adds to the lookup counters when rendering. */
struct metrics_state {
	const struct pg_stats *pool;       /* NULL: no pool */
	const struct lookup_cache_stats *cache;
	bool listen_up;                    /* the LISTEN connection is listening */
	uint64_t listen_notifications;
	uint64_t listen_reconnects;
	unsigned connections;              /* client connections open */
	const struct metrics_listener *listeners; /* the service groups */
	size_t nlisteners;
	struct metrics_listener metrics;   /* metrics_listen's own (metrics_http fills it) */
	double uptime_s;
};

/*
 * metrics_render - the Prometheus text exposition format (version 0.0.4) of
 * every counter plus st.  Cells that never counted a request are left out.
 */
void metrics_render(struct evbuffer *out, const struct metrics_state *st);

#endif
