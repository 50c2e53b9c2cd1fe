-- R_route: keeps vmail.route (015_route.sql) equal to what the lookups of R_lookup_postfix.sql
-- computed from the base tables, and the set-returning functions that answer from it.  They
-- are plain LANGUAGE sql STABLE (not STRICT, not SECURITY DEFINER, no SET clause), so that
-- the planner inlines them into the caller's query: one index probe for the domain row and
-- one over the candidate keys.  The rows are maintained by statement-level triggers with
-- transition tables (a bulk insert recomputes the rows it touches, once); a change of a setting
-- the rows depend on (primary_domain, postmaster_address, subaddress_delimiter) rebuilds all.

-- The candidate keys of address key k (lower case) in domain d, most specific first, always
-- seven (NULL where one does not apply), so that a key's position says what it is:
--   1 k; 2 its local part without the sub-address extension at d (cut at the earliest first
--   occurrence of a delimiter character, a character that first occurs at the start not
--   counting; postmaster and mailer-daemon are never cut), or NULL;
--   with p_mirrors and a target domain t (d is a domain alias of t): 3 k's local part at t,
--   4 the cut one at t;
--   with p_fallbacks: 5 '!postmaster' for postmaster@ and abuse@, 6 the catch-all '@d', and
--   with p_mirrors too, 7 t's catch-all '@t'.
-- PL/pgSQL, not SQL: inlined SQL would repeat the split in every place the keys are used, and
-- the planner's expression trees cost more than the probe.
DROP FUNCTION IF EXISTS vmail.route_keys(text, text, text, boolean);
CREATE OR REPLACE FUNCTION vmail.route_keys(k text, d text, delims text, t text,
	p_fallbacks boolean, p_mirrors boolean)
RETURNS text[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	lp text := left(k, length(k) - length(d) - 1);
	pos integer := 0;
	p integer;
	base text;
	m boolean := p_mirrors AND t IS NOT NULL;
BEGIN
	IF lp NOT IN ('postmaster', 'mailer-daemon') THEN
		FOR i IN 1 .. length(delims) LOOP
			p := strpos(lp, substr(delims, i, 1));
			IF p > 1 AND (pos = 0 OR p < pos) THEN
				pos := p;
			END IF;
		END LOOP;
	END IF;
	base := CASE WHEN pos > 1 THEN left(lp, pos - 1) ELSE lp END;
	RETURN ARRAY[k,
		CASE WHEN pos > 1 THEN base || '@' || d END,
		CASE WHEN m THEN lp || '@' || t END,
		CASE WHEN m AND pos > 1 THEN base || '@' || t END,
		CASE WHEN p_fallbacks AND base IN ('postmaster', 'abuse') THEN '!postmaster' END,
		CASE WHEN p_fallbacks THEN '@' || d END,
		CASE WHEN p_fallbacks AND m THEN '@' || t END];
END $$;

-- lookup_sender's answer for an address row (lookup_sender before the relation).
CREATE OR REPLACE FUNCTION vmail.route_entry_sender(e vmail.address) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
	RETURN (WITH m AS (
		SELECT t.shell_account_id AS s, t.mail_account_id AS a FROM vmail.alias_target t
		 WHERE e.kind = 'alias' AND t.alias_id = e.alias_id AND t.external IS NULL
		UNION ALL
		SELECT e.shell_account_id, e.mail_account_id WHERE e.kind <> 'alias')
	SELECT string_agg(DISTINCT l, ',') FROM (
		SELECT vmail.canonical_login(m.s, m.a) AS l FROM m
		UNION
		SELECT s.login FROM m JOIN vmail.mail_account a ON a.id = m.a
		  JOIN vmail.shell_account s ON s.id = a.shell_account_id
	) x WHERE l IS NOT NULL);
END $$;

-- The row of an address (its key, the alias answer, lookup_mailbox's and lookup_sender's).
-- PL/pgSQL here and in the functions the triggers run: their queries are planned once per
-- session, where a SQL function's are planned at every call (that was most of the cost of a
-- new address).
CREATE OR REPLACE FUNCTION vmail.route_row(a vmail.address, p_domain text) RETURNS vmail.route
LANGUAGE plpgsql STABLE AS $$
DECLARE
	shells bigint[] := ARRAY[a.shell_account_id];
	accounts bigint[] := ARRAY[a.mail_account_id];
BEGIN
	IF a.kind = 'alias' THEN
		SELECT coalesce(array_agg(t.shell_account_id ORDER BY t.position), '{}'),
			coalesce(array_agg(t.mail_account_id ORDER BY t.position), '{}')
		  INTO shells, accounts
		  FROM vmail.alias_target t WHERE t.alias_id = a.alias_id AND t.external IS NULL;
	END IF;
	RETURN ROW(a.local_part || '@' || p_domain, a.domain_id, a.kind, NULL, NULL,
		vmail.entry_destinations(a, chr(1)),
		CASE WHEN a.kind IN ('account', 'primary')
			THEN vmail.canonical_address(a.shell_account_id, a.mail_account_id) END,
		vmail.route_entry_sender(a), shells, accounts, NULL, NULL)::vmail.route;
END $$;

-- The rows of the given domains (NULL: every domain, and the postmaster default).
CREATE OR REPLACE FUNCTION vmail.route_rows(p_domains bigint[]) RETURNS SETOF vmail.route
LANGUAGE sql STABLE AS $$
	SELECT d.name, d.id, 'domain', d.state, st.subaddress_delimiter, NULL, NULL, NULL, NULL, NULL,
		t.name, t.state
	  FROM vmail.domain d CROSS JOIN vmail.settings st LEFT JOIN vmail.domain t ON t.id = d.alias_of
	 WHERE d.state IN ('active', 'suspended') AND (p_domains IS NULL OR d.id = ANY (p_domains))
	UNION ALL
	SELECT r.* FROM vmail.address a JOIN vmail.domain d ON d.id = a.domain_id
	 CROSS JOIN LATERAL vmail.route_row(a, d.name) r
	 WHERE d.state IN ('active', 'suspended') AND (p_domains IS NULL OR d.id = ANY (p_domains))
	UNION ALL
	SELECT '!postmaster', NULL, 'postmaster', NULL, NULL, st.postmaster_address, NULL, NULL, NULL, NULL,
		NULL, NULL
	  FROM vmail.settings st WHERE p_domains IS NULL
$$;

-- Recompute the rows of the given domains (a domain's own change: its state or its name).
CREATE OR REPLACE FUNCTION vmail.route_refresh(p_domains bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM vmail.route WHERE domain_id = ANY (p_domains);
	INSERT INTO vmail.route SELECT * FROM vmail.route_rows(p_domains) WHERE p_domains <> '{}';
END $$;

-- Recompute the rows of the given addresses, (domain id, local part) pairs without
-- repeats: every other change touches only these, so a bulk insert into a large domain
-- costs the rows it adds.  A pair whose domain is gone was removed with the domain's rows.
CREATE OR REPLACE FUNCTION vmail.route_refresh_addresses(p_domains bigint[], p_locals text[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM vmail.route r
	 USING unnest(p_domains, p_locals) u(d, lp) JOIN vmail.domain dm ON dm.id = u.d
	 WHERE r.key = u.lp || '@' || dm.name;
	INSERT INTO vmail.route SELECT r.*
	  FROM unnest(p_domains, p_locals) u(d, lp)
	  JOIN vmail.address a ON a.domain_id = u.d AND a.local_part = u.lp
	  JOIN vmail.domain d ON d.id = a.domain_id
	 CROSS JOIN LATERAL vmail.route_row(a, d.name) r
	 WHERE d.state IN ('active', 'suspended');
END $$;

-- Recompute every row from the base tables (after a bulk path that bypassed the triggers, a
-- settings change, or to check the triggers: tests/sql/test_route.py).
CREATE OR REPLACE FUNCTION vmail.route_rebuild() RETURNS void
LANGUAGE sql AS $$
	DELETE FROM vmail.route;
	INSERT INTO vmail.route SELECT * FROM vmail.route_rows(NULL);
$$;

-- The addresses whose rows a change of aliases, shell accounts or mail accounts touches: the
-- addresses that are them, those of aliases that expand to them (an alias's answer holds its
-- targets' canonical addresses, its sender answer their owners' logins) and those of a shell
-- account's mail accounts (their sender answer holds the shell login).  One index probe per
-- id in each branch: the branches are separate so that none becomes a scan.
CREATE OR REPLACE FUNCTION vmail.route_touched(p_aliases bigint[], p_shells bigint[],
	p_accounts bigint[]) RETURNS TABLE (domain_id bigint, local_part text)
LANGUAGE sql STABLE AS $$
	WITH acc AS (
		SELECT unnest(p_accounts) AS id
		UNION SELECT m.id FROM vmail.mail_account m WHERE m.shell_account_id = ANY (p_shells)),
	al AS (
		SELECT unnest(p_aliases) AS id
		UNION SELECT t.alias_id FROM vmail.alias_target t WHERE t.shell_account_id = ANY (p_shells)
		UNION SELECT t.alias_id FROM vmail.alias_target t JOIN acc ON t.mail_account_id = acc.id)
	SELECT a.domain_id, a.local_part FROM vmail.address a JOIN al ON a.alias_id = al.id
	UNION SELECT a.domain_id, a.local_part FROM vmail.address a JOIN acc ON a.mail_account_id = acc.id
	UNION SELECT a.domain_id, a.local_part FROM vmail.address a WHERE a.shell_account_id = ANY (p_shells)
$$;

-- Writers that change the routing or login relation (R_route_login.sql) take this lock until
-- they commit, so that a row is recomputed only after the last change it depends on has
-- committed: two transactions changing what one row depends on (a shell account and its
-- mail account, an alias and its target) would otherwise each compute it without the
-- other's change, and the second insert would fail on the first's key.  Lookups never take it.
CREATE OR REPLACE FUNCTION vmail.relations_lock() RETURNS void
LANGUAGE sql AS $$
	SELECT pg_advisory_xact_lock(hashtext('vmail.route and vmail.login'))
$$;

-- The changed rows are read by dynamic SQL: a transition table that the event does not have
-- (old_rows of an INSERT) must not be named.
CREATE OR REPLACE FUNCTION vmail.route_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	src text := CASE TG_OP WHEN 'INSERT' THEN 'SELECT * FROM new_rows' WHEN 'DELETE' THEN 'SELECT * FROM old_rows'
		ELSE 'SELECT * FROM new_rows UNION ALL SELECT * FROM old_rows' END;
	col text := CASE TG_TABLE_NAME WHEN 'alias_target' THEN 'alias_id' ELSE 'id' END;
	ids bigint[];
	dids bigint[];
	lps text[];
BEGIN
	PERFORM vmail.relations_lock();
	IF TG_TABLE_NAME = 'address' THEN
		EXECUTE format('SELECT array_agg(domain_id), array_agg(local_part)
			FROM (SELECT DISTINCT domain_id, local_part FROM (%s) x) y', src) INTO dids, lps;
	ELSE
		EXECUTE format('SELECT coalesce(array_agg(DISTINCT %I), ''{}'') FROM (%s) x', col, src) INTO ids;
		IF TG_TABLE_NAME = 'domain' THEN
			-- an alias domain's row carries its target's name and state
			PERFORM vmail.route_refresh(ids || coalesce((SELECT array_agg(a.id) FROM vmail.domain a
				WHERE a.alias_of = ANY (ids) AND NOT a.id = ANY (ids)), '{}'));
			RETURN NULL;
		END IF;
		SELECT array_agg(t.domain_id), array_agg(t.local_part) INTO dids, lps
		  FROM vmail.route_touched(
			CASE WHEN TG_TABLE_NAME IN ('alias', 'alias_target') THEN ids ELSE '{}' END,
			CASE WHEN TG_TABLE_NAME = 'shell_account' THEN ids ELSE '{}' END,
			CASE WHEN TG_TABLE_NAME = 'mail_account' THEN ids ELSE '{}' END) t;
	END IF;
	IF dids IS NOT NULL THEN
		PERFORM vmail.route_refresh_addresses(dids, lps);
	END IF;
	RETURN NULL;
END $$;

-- Statement triggers running p_function after every insert, update and delete on p_tables,
-- with the changed rows as transition tables new_rows/old_rows (one trigger per event: a
-- trigger with transition tables may have only one).  Also used by R_route_login.sql.
CREATE OR REPLACE FUNCTION vmail.relations_triggers(p_prefix text, p_function text, p_tables text[])
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY p_tables LOOP
		EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER INSERT ON vmail.%I
			REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION %s()', p_prefix || '_ins', t, p_function);
		EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER UPDATE ON vmail.%I
			REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION %s()',
			p_prefix || '_upd', t, p_function);
		EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER DELETE ON vmail.%I
			REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION %s()', p_prefix || '_del', t, p_function);
	END LOOP;
END $$;

SELECT vmail.relations_triggers('route_sync', 'vmail.route_sync',
	ARRAY['domain', 'address', 'alias', 'alias_target', 'mail_account', 'shell_account']);

CREATE OR REPLACE FUNCTION vmail.route_settings() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM vmail.relations_lock();
	PERFORM vmail.route_rebuild();
	RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER route_settings AFTER INSERT OR UPDATE OF primary_domain, postmaster_address,
	subaddress_delimiter ON vmail.settings FOR EACH STATEMENT EXECUTE FUNCTION vmail.route_settings();

-- Applying this file (a new schema, an upgrade, a changed definition) recomputes every row.
SELECT vmail.route_rebuild();

-- VM451 for an address in a suspended domain (see the top of R_lookup_postfix.sql), raised
-- from an expression so that the query stays one plan.
CREATE OR REPLACE FUNCTION vmail.route_deferred(p_domain text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
	PERFORM vmail.fail('VM451', format('domain %s is suspended: its mail is deferred', p_domain));
	RETURN NULL;
END $$;

-- The route of an address key: the first of its candidate keys (route_keys) that exists, rank
-- its position there: the key itself (1); without its sub-address extension (2, ext the
-- extension); with p_mirrors in a domain alias, the same two at the target (3, 4); with
-- p_fallbacks, for postmaster@ and abuse@ the ISP default (5), the domain's catch-all (6) and
-- the target's (7).  Suspended: the key's domain is, or an answer that is not the domain's own
-- (a mirrored one, or none) would come from a suspended target.  No row for a key without a
-- local part or outside our active and suspended domains.
DROP FUNCTION IF EXISTS vmail.route_find(text, boolean);
CREATE OR REPLACE FUNCTION vmail.route_find(p_key text, p_fallbacks boolean, p_mirrors boolean)
RETURNS TABLE (domain_name text, suspended boolean, rank integer, ext text, kind text,
	dest text, mailbox text, sender text, shells bigint[], accounts bigint[])
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN d.state = 'suspended' THEN d.key ELSE d.target END,
		d.state = 'suspended' OR (p_mirrors AND d.target_state = 'suspended'
			AND (r.key IS NULL OR array_position(c.keys, r.key) NOT IN (1, 2, 5, 6))),
		array_position(c.keys, r.key),
		CASE WHEN c.keys[2] IS NOT NULL THEN substr(q.k, strpos(c.keys[2], '@'),
			length(q.k) - length(c.keys[2])) END,
		r.kind, r.dest, r.mailbox, r.sender, r.shells, r.accounts
	FROM (SELECT lower(p_key) AS k) q
	JOIN vmail.route d ON d.key = substr(q.k, length(q.k) - strpos(reverse(q.k), '@') + 2) AND d.kind = 'domain'
	CROSS JOIN LATERAL (SELECT vmail.route_keys(q.k, d.key, d.delims, d.target, p_fallbacks, p_mirrors) AS keys
		OFFSET 0) c
	LEFT JOIN LATERAL (SELECT r.* FROM vmail.route r WHERE r.key = ANY (c.keys)
		ORDER BY array_position(c.keys, r.key) LIMIT 1) r ON true
	WHERE strpos(q.k, '@') > 0 AND strpos(reverse(q.k), '@') < length(q.k)
$$;

-- The Postfix answers from the relation (the scalar lookup_* functions return these).
CREATE OR REPLACE FUNCTION vmail.route_domain(p_key text) RETURNS SETOF text
LANGUAGE sql STABLE AS $$
	SELECT r.key FROM vmail.route r WHERE r.key = lower(p_key) AND r.kind = 'domain'
$$;

-- The answers with the deferral as data: v the answer, deferred the suspended domain whose
-- mail waits (v is then NULL).  vmaild's batches (one query for many keys) read these, since
-- one raised deferral would fail every key of the batch; route_alias, route_mailbox and
-- route_sender raise it (VM451) for the single-key callers.
CREATE OR REPLACE FUNCTION vmail.route_alias_answer(p_key text) RETURNS TABLE (v text, deferred text)
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN NOT f.suspended THEN replace(f.dest, chr(1), CASE WHEN f.rank IN (2, 4) THEN f.ext ELSE '' END) END,
		CASE WHEN f.suspended THEN f.domain_name END
	FROM vmail.route_find(p_key, true, true) f
$$;

CREATE OR REPLACE FUNCTION vmail.route_mailbox_answer(p_key text) RETURNS TABLE (v text, deferred text)
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN NOT f.suspended THEN f.mailbox END, CASE WHEN f.suspended THEN f.domain_name END
	FROM vmail.route_find(p_key, false, false) f
$$;

CREATE OR REPLACE FUNCTION vmail.route_sender_answer(p_key text) RETURNS TABLE (v text, deferred text)
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN NOT f.suspended THEN f.sender END, CASE WHEN f.suspended THEN f.domain_name END
	FROM vmail.route_find(p_key, false, true) f
$$;

CREATE OR REPLACE FUNCTION vmail.route_alias(p_key text) RETURNS SETOF text
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN a.deferred IS NOT NULL THEN vmail.route_deferred(a.deferred) ELSE a.v END
	FROM vmail.route_alias_answer(p_key) a
$$;

CREATE OR REPLACE FUNCTION vmail.route_mailbox(p_key text) RETURNS SETOF text
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN a.deferred IS NOT NULL THEN vmail.route_deferred(a.deferred) ELSE a.v END
	FROM vmail.route_mailbox_answer(p_key) a
$$;

CREATE OR REPLACE FUNCTION vmail.route_sender(p_key text) RETURNS SETOF text
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN a.deferred IS NOT NULL THEN vmail.route_deferred(a.deferred) ELSE a.v END
	FROM vmail.route_sender_answer(p_key) a
$$;

-- What vmaild calls (src/vmaild/lookup_kinds.c): the scalar answers, NULL for "not found".
CREATE OR REPLACE FUNCTION vmail.lookup_domain(p_key text) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT v FROM vmail.route_domain(p_key) v
$$;

CREATE OR REPLACE FUNCTION vmail.lookup_alias(p_key text) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT v FROM vmail.route_alias(p_key) v
$$;

CREATE OR REPLACE FUNCTION vmail.lookup_mailbox(p_key text) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT v FROM vmail.route_mailbox(p_key) v
$$;

CREATE OR REPLACE FUNCTION vmail.lookup_sender(p_key text) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT v FROM vmail.route_sender(p_key) v
$$;
