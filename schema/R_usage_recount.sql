-- The recount list (014_usage_recount.sql): mailboxes whose quota counters a failed quota
-- request may have left wrong.  vmaild adds to it (usage_recount_add), `vmailctl usage recount`
-- works it off (usage_recount_list, usage_recount_done, usage_recount_failed).

-- Add logins (with the reason and how many F answers each got) in one statement: a mailbox
-- already listed keeps its first failure and reason, its count grows.  Logins that fail the
-- table's checks are skipped, not raised: one odd name must not keep the others off the list.
-- Returns the rows added or updated.  SECURITY DEFINER: vmaild's role (vmail_lookup) holds no
-- privilege on the table itself (grants.sql), so it can add and count, never rewrite or remove.
CREATE OR REPLACE FUNCTION vmail.usage_recount_add(p_login text[], p_reason text[], p_count integer[])
RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
	WITH x AS (
		SELECT l.login, max(l.reason) AS reason, sum(greatest(coalesce(l.n, 1), 1))::integer AS n
		FROM unnest(p_login, p_reason, p_count) AS l(login, reason, n)
		WHERE length(l.login) BETWEEN 1 AND 1024 AND length(l.reason) BETWEEN 1 AND 32
		  AND (l.login !~ '[*?]' OR (l.login = '*' AND l.reason = 'overflow'))
		GROUP BY l.login
	), up AS (
		INSERT INTO vmail.usage_recount AS r (login, reason, count)
		SELECT login, reason, least(n, 1000000000) FROM x
		ON CONFLICT (login) DO UPDATE SET last_failed_at = now(),
			count = least(r.count::bigint + EXCLUDED.count, 2147483647)::integer
		RETURNING 1
	)
	SELECT count(*)::integer FROM up
$$;

-- The list, oldest failure first; checked_at is the time to pass to usage_recount_done after a
-- recount that started now (a failure after it keeps the row).
CREATE OR REPLACE FUNCTION vmail.usage_recount_list()
RETURNS TABLE (login text, first_failed_at timestamptz, last_failed_at timestamptz, reason text,
	count integer, attempts integer, last_error text, checked_at timestamptz)
LANGUAGE sql STABLE AS $$
	SELECT r.login, r.first_failed_at, r.last_failed_at, r.reason, r.count, r.attempts,
		r.last_error, now()
	FROM vmail.usage_recount r ORDER BY r.first_failed_at, r.login
$$;

-- A recount of p_login that started at p_since succeeded: the row goes, unless a failure came
-- after p_since (that one may not be in the recount).  True if the row was removed.
CREATE OR REPLACE FUNCTION vmail.usage_recount_done(p_login text, p_since timestamptz)
RETURNS boolean
LANGUAGE sql AS $$
	WITH d AS (
		DELETE FROM vmail.usage_recount r WHERE r.login = p_login AND r.last_failed_at <= p_since
		RETURNING 1
	)
	SELECT count(*) > 0 FROM d
$$;

-- A recount of p_login failed: the row stays, with the error (at most 1000 characters).
CREATE OR REPLACE FUNCTION vmail.usage_recount_failed(p_login text, p_error text)
RETURNS boolean
LANGUAGE sql AS $$
	WITH u AS (
		UPDATE vmail.usage_recount r SET attempts = least(r.attempts::bigint + 1, 2147483647)::integer,
			last_error = left(p_error, 1000)
		WHERE r.login = p_login RETURNING 1
	)
	SELECT count(*) > 0 FROM u
$$;
