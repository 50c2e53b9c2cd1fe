-- R_lookup_dovecot: what Dovecot asks (passdb, userdb, quota dict), through vmaild's dict
-- service or Dovecot's own sql driver.  R9 is computed by mailbox_facts (a suspended shell
-- account suspends its free accounts); R6 by quota_get(…, 'account') and userdb_effective.
-- Quota writes check who asks (the uid of the process on the other end of the socket), and a
-- whole batch of Dovecot dict transactions is applied by one statement (dict_commit), so that
-- many deliveries share one database transaction.

-- The mailbox behind a Dovecot login: a shell account's Unix login (also login@<primary>),
-- or a mail account's full address.  One probe of the login relation (016_login.sql,
-- R_route_login.sql), which precomputes the rest of this file's answers per login.
CREATE OR REPLACE FUNCTION vmail.mailbox_of(p_login text, OUT shell_id bigint, OUT account_id bigint)
LANGUAGE sql STABLE AS $$
	-- always a row, NULLs for an unknown login (callers read its fields)
	SELECT l.shell_id, l.account_id FROM (SELECT lower(p_login) AS k) q LEFT JOIN vmail.login l ON l.key = q.k
$$;

-- One row per login with everything Dovecot needs; suspended = R9 (a suspended shell
-- account suspends its free mail accounts).  A mail account's home is the one stored when it
-- was created (vmail.home_expand), never recomputed from today's templates.
CREATE OR REPLACE FUNCTION vmail.mailbox_facts(p_login text)
RETURNS TABLE (username text, password text, suspended boolean, home text, mail text,
	uid integer, gid integer, own_quota bigint, account_limit bigint,
	shell_id bigint, account_id bigint, payer_shell_id bigint)
LANGUAGE sql STABLE AS $$
	SELECT l.username, l.password, l.suspended, l.home, l.mail, l.uid, l.gid, l.own_quota,
		l.account_limit, l.shell_id, l.account_id, l.payer_shell_id
	  FROM vmail.login l WHERE l.key = lower(p_login)
$$;

-- The login in a query of Dovecot's sql driver is never empty.  Dovecot 2.3 cannot escape %u
-- while it is not connected and then sends the query with '' (seen in its log during an
-- outage); such a query must fail, which Dovecot answers as a temporary failure, and never
-- answer "no such user", which LMTP would turn into a bounce.
-- STABLE, not IMMUTABLE: a constant argument must not raise while a query is planned, before
-- a CASE that guards the call could skip it.
CREATE OR REPLACE FUNCTION vmail.dovecot_login_refused(p_login text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
	PERFORM vmail.fail('VM400', 'empty login in a passdb or userdb query (Dovecot could not escape the user name)');
	RETURN p_login;
END $$;

-- The queries below check the login where they probe with it, as
--   l.key = lower(CASE WHEN coalesce(p_login, '') <> '' THEN p_login
--                 ELSE vmail.dovecot_login_refused(p_login) END)
-- written out rather than a function of its own: the planner does not inline a scalar SQL
-- function whose argument is used twice unless the argument is cheap, and a caller's
-- expression (pgbench's, a view's) is not, while set-returning functions inline regardless.
-- The PL/pgSQL call happens only for the empty login.
DROP FUNCTION IF EXISTS vmail.dovecot_login(text);

-- For Dovecot's sql driver: SELECT username AS user, password FROM vmail.passdb('%u').
-- Suspended accounts have no row, so IMAP, POP3 and SMTP AUTH all refuse them.
CREATE OR REPLACE FUNCTION vmail.passdb(p_login text) RETURNS TABLE (username text, password text)
LANGUAGE sql STABLE AS $$
	SELECT l.username, l.password FROM vmail.login l
	 WHERE l.key = lower(CASE WHEN coalesce(p_login, '') <> '' THEN p_login ELSE vmail.dovecot_login_refused(p_login) END)
	   AND NOT l.suspended AND l.password IS NOT NULL
$$;

-- vmaild's dict answers, set-returning so that vmaild's SELECT (SELECT v FROM
-- vmail.passdb_dict($1) v) inlines them (a scalar SQL function with a subquery is never
-- inlined, and is planned anew at every call).  An empty key is unknown here, as always on
-- the dict path (no %u escaping involved).
CREATE OR REPLACE FUNCTION vmail.passdb_dict(p_login text) RETURNS SETOF text
LANGUAGE sql STABLE AS $$
	SELECT json_build_object('user', f.username, 'password', f.password)::text
	  FROM vmail.mailbox_facts(p_login) f WHERE NOT f.suspended AND f.password IS NOT NULL
$$;

CREATE OR REPLACE FUNCTION vmail.passdb_json(p_login text) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT v FROM vmail.passdb_dict(p_login) v
$$;

-- Usage of the account that pays for a mailbox: a shell account's files, its own mailbox and
-- its free mailboxes (the counter rows of one payer_shell_id, by index); a paid account's own
-- mailbox.  Set-returning (one row) so that callers' queries inline it.
CREATE OR REPLACE FUNCTION vmail.usage_total(p_payer_shell bigint, p_account bigint)
RETURNS TABLE (bytes bigint, messages bigint)
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN p_payer_shell IS NOT NULL THEN
		coalesce((SELECT f.bytes FROM vmail.files_usage f WHERE f.shell_account_id = p_payer_shell), 0)
		+ coalesce((SELECT sum(u.bytes) FROM vmail.mailbox_usage u WHERE u.payer_shell_id = p_payer_shell), 0)::bigint
		ELSE coalesce((SELECT u.bytes FROM vmail.mailbox_usage u WHERE u.mail_account_id = p_account), 0) END,
		CASE WHEN p_payer_shell IS NOT NULL THEN
		coalesce((SELECT sum(u.messages) FROM vmail.mailbox_usage u WHERE u.payer_shell_id = p_payer_shell), 0)::bigint
		ELSE coalesce((SELECT u.messages FROM vmail.mailbox_usage u WHERE u.mail_account_id = p_account), 0) END
$$;

CREATE OR REPLACE FUNCTION vmail.account_usage(p_payer_shell bigint, p_account bigint, OUT bytes bigint, OUT messages bigint)
LANGUAGE sql STABLE AS $$
	SELECT t.bytes, t.messages FROM vmail.usage_total(p_payer_shell, p_account) t
$$;

CREATE OR REPLACE FUNCTION vmail.mailbox_usage_of(p_shell bigint, p_account bigint, OUT bytes bigint, OUT messages bigint)
LANGUAGE sql STABLE AS $$
	SELECT u.bytes, u.messages FROM vmail.mailbox_usage u
	 WHERE (p_shell IS NOT NULL AND u.shell_account_id = p_shell)
	    OR (p_account IS NOT NULL AND u.mail_account_id = p_account)
$$;

-- For Dovecot's sql driver (2.3 with two quota roots): quota_rule is the mailbox's own
-- limit, quota2_rule the whole shell account's disk limit (root 2 = the account).
-- A suspended account answers tempfail, so LMTP defers its mail (R9).
CREATE OR REPLACE FUNCTION vmail.userdb(p_login text)
RETURNS TABLE (username text, home text, mail text, uid integer, gid integer,
	quota_rule text, quota2_rule text, tempfail text)
LANGUAGE sql STABLE AS $$
	SELECT f.username, f.home, f.mail, f.uid, f.gid,
		'*:bytes=' || f.own_quota, '*:bytes=' || f.account_limit,
		CASE WHEN f.suspended THEN 'account suspended' END
	FROM vmail.mailbox_facts(p_login) f
$$;

-- What the other mailboxes (and files) of a mailbox's payer use: the account total less the
-- mailbox's own counter.  PL/pgSQL, so that its three index probes are planned once per
-- session and cost mailbox_effective's plan nothing (no subplans to start) when not called.
CREATE OR REPLACE FUNCTION vmail.usage_of_others(p_payer_shell bigint, p_shell bigint, p_account bigint)
RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
BEGIN
	RETURN (SELECT t.bytes FROM vmail.usage_total(p_payer_shell, p_account) t)
		- coalesce((SELECT u.bytes FROM vmail.mailbox_usage u WHERE u.shell_account_id = p_shell),
			(SELECT u.bytes FROM vmail.mailbox_usage u WHERE u.mail_account_id = p_account), 0);
END $$;

-- R6 carried by the mailbox's own limit, for setups without a second quota root (the count
-- backend): min(own quota, disk limit - (account total - this mailbox)), recomputed at every
-- userdb lookup (LMTP looks up every delivery).  Shared by the 2.3 and 2.4 answers below.
-- Plain SQL over the login relation and the counters: one probe of the login, then the few
-- counter rows of its payer by index (the planner inlines it into the callers' queries).  A
-- paid account pays for itself alone (no payer, no shell account): its total less its own
-- mailbox is 0 whatever its counter says, so its answer reads no counter; the others sum
-- their payer's rows in vmail.usage_of_others.
DROP FUNCTION IF EXISTS vmail.mailbox_effective(text); -- its columns grew (2.4's mail settings)
CREATE OR REPLACE FUNCTION vmail.mailbox_effective(p_login text)
RETURNS TABLE (username text, home text, mail text, uid integer, gid integer,
	quota_bytes bigint, tempfail text, mail_driver text, mail_path text, mail_inbox_path text,
	mail_index_path text, mail_control_path text, mailbox_list_layout text)
LANGUAGE sql STABLE AS $$
	SELECT l.username, l.home, l.mail, l.uid, l.gid,
		greatest(1, least(l.own_quota, l.account_limit
			- CASE WHEN l.payer_shell_id IS NULL AND l.shell_id IS NULL THEN 0
			ELSE vmail.usage_of_others(l.payer_shell_id, l.shell_id, l.account_id) END)),
		CASE WHEN l.suspended THEN 'account suspended' END,
		l.mail_driver, l.mail_path, l.mail_inbox_path, l.mail_index_path, l.mail_control_path,
		l.mailbox_list_layout
	FROM vmail.login l
	WHERE l.key = lower(CASE WHEN coalesce(p_login, '') <> '' THEN p_login ELSE vmail.dovecot_login_refused(p_login) END)
$$;

-- Dovecot 2.3's sql userdb with one quota root: quota_rule in 2.3's syntax.
CREATE OR REPLACE FUNCTION vmail.userdb_effective(p_login text)
RETURNS TABLE (username text, home text, mail text, uid integer, gid integer,
	quota_rule text, tempfail text)
LANGUAGE sql STABLE AS $$
	SELECT e.username, e.home, e.mail, e.uid, e.gid, '*:bytes=' || e.quota_bytes, e.tempfail
	FROM vmail.mailbox_effective(p_login) e
$$;

-- A mail location as the settings keep it (Dovecot 2.3's "driver:path[:KEY=value...]", the
-- shape vmail.check_mail_location() admits) in Dovecot 2.4's settings, "~" made the home.
-- 2.4 has no location string, and a field it does not know it ignores without a word, so
-- every part must land in a named setting.  INBOX: a Maildir's INBOX is its root (Debian
-- 13's stock 10-mail.conf would otherwise put it in /var/mail); a dbox keeps it inside the
-- mail path (empty clears the stock value); mbox keeps the configured one.
CREATE OR REPLACE FUNCTION vmail.mail_location_v24(p_location text, p_home text,
	OUT mail_driver text, OUT mail_path text, OUT mail_inbox_path text, OUT mail_index_path text,
	OUT mail_control_path text, OUT mailbox_list_layout text)
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	parts text[] := string_to_array(p_location, ':');
	opt text;
	val text;
BEGIN
	mail_driver := lower(parts[1]);
	mail_path := regexp_replace(parts[2], '^~(?=/|$)', p_home);
	FOREACH opt IN ARRAY coalesce(parts[3:], '{}') LOOP
		val := regexp_replace(substr(opt, strpos(opt, '=') + 1), '^~(?=/|$)', p_home);
		CASE upper(split_part(opt, '=', 1))
		WHEN 'INBOX' THEN mail_inbox_path := val;
		WHEN 'INDEX' THEN mail_index_path := val;
		WHEN 'CONTROL' THEN mail_control_path := val;
		WHEN 'LAYOUT' THEN mailbox_list_layout := lower(val);
		ELSE NULL;
		END CASE;
	END LOOP;
	IF mail_inbox_path IS NULL THEN
		mail_inbox_path := CASE mail_driver WHEN 'maildir' THEN mail_path
			WHEN 'sdbox' THEN '' WHEN 'mdbox' THEN '' END;
	END IF;
END $$;

-- Dovecot 2.4's sql userdb: the same answer in 2.4's names (quota_storage_size in bytes).
-- NULL columns are left out by Dovecot, so the configuration's own values stand.
CREATE OR REPLACE FUNCTION vmail.userdb_v24(p_login text)
RETURNS TABLE (username text, home text, uid integer, gid integer, mail_driver text, mail_path text,
	mail_inbox_path text, mail_index_path text, mail_control_path text, mailbox_list_layout text,
	quota_storage_size bigint, tempfail text)
LANGUAGE sql STABLE AS $$
	SELECT e.username, e.home, e.uid, e.gid, e.mail_driver, e.mail_path, e.mail_inbox_path,
		e.mail_index_path, e.mail_control_path, e.mailbox_list_layout, e.quota_bytes, e.tempfail
	FROM vmail.mailbox_effective(p_login) e
$$;

CREATE OR REPLACE FUNCTION vmail.userdb_dict(p_login text) RETURNS SETOF text
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN u.tempfail IS NOT NULL THEN json_build_object('tempfail', 'yes')::text
		ELSE json_build_object('user', u.username, 'home', u.home, 'mail', u.mail,
			'uid', u.uid::text, 'gid', u.gid::text,
			'quota_rule', u.quota_rule, 'quota2_rule', u.quota2_rule)::text END
	FROM vmail.userdb(p_login) u
$$;

CREATE OR REPLACE FUNCTION vmail.userdb_json(p_login text) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT v FROM vmail.userdb_dict(p_login) v
$$;

-- Every login Dovecot may iterate (doveadm user '*').
CREATE OR REPLACE FUNCTION vmail.userdb_list() RETURNS SETOF text
LANGUAGE sql STABLE AS $$
	SELECT login FROM vmail.shell_account
	UNION ALL
	SELECT address FROM vmail.mail_account
	ORDER BY 1
$$;

-- root 'mailbox': this mailbox's counter, NULL when there is no counter (Dovecot recounts);
-- root 'account': the paying account's total, never NULL for a known login.  One query each:
-- the login's row, then its counter rows by index (usage_total inlines; a call of a
-- non-inlined SQL function here would be planned anew at every lookup).
CREATE OR REPLACE FUNCTION vmail.quota_get(p_login text, p_key text, p_root text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
	v bigint;
BEGIN
	IF p_key NOT IN ('storage', 'messages') THEN
		RETURN NULL;
	END IF;
	IF p_root = 'account' THEN
		SELECT CASE p_key WHEN 'storage' THEN t.bytes ELSE t.messages END INTO v
		  FROM vmail.login l CROSS JOIN LATERAL vmail.usage_total(l.payer_shell_id, l.account_id) t
		 WHERE l.key = lower(p_login);
	ELSE
		SELECT coalesce(
			(SELECT CASE p_key WHEN 'storage' THEN u.bytes ELSE u.messages END
			   FROM vmail.mailbox_usage u WHERE u.shell_account_id = l.shell_id),
			(SELECT CASE p_key WHEN 'storage' THEN u.bytes ELSE u.messages END
			   FROM vmail.mailbox_usage u WHERE u.mail_account_id = l.account_id)) INTO v
		  FROM vmail.login l WHERE l.key = lower(p_login);
	END IF;
	RETURN v::text;
END $$;

-- Atomic increment; false (and nothing changed) when no counter exists.
CREATE OR REPLACE FUNCTION vmail.quota_apply(p_login text, d_bytes bigint, d_messages bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	m record;
BEGIN
	m := vmail.mailbox_of(p_login);
	IF m.shell_id IS NOT NULL THEN
		UPDATE vmail.mailbox_usage SET bytes = bytes + d_bytes, messages = messages + d_messages, updated_at = now()
		 WHERE shell_account_id = m.shell_id;
	ELSIF m.account_id IS NOT NULL THEN
		UPDATE vmail.mailbox_usage SET bytes = bytes + d_bytes, messages = messages + d_messages, updated_at = now()
		 WHERE mail_account_id = m.account_id;
	ELSE
		RETURN false;
	END IF;
	RETURN FOUND;
END $$;

-- Absolute values (a recount, or quota_clone); creates the counter.  false for unknown logins.
CREATE OR REPLACE FUNCTION vmail.quota_set(p_login text, p_bytes bigint, p_messages bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	m record;
BEGIN
	m := vmail.mailbox_of(p_login);
	IF m.shell_id IS NOT NULL THEN
		INSERT INTO vmail.mailbox_usage (shell_account_id, bytes, messages) VALUES (m.shell_id, p_bytes, p_messages)
		ON CONFLICT (shell_account_id) DO UPDATE SET bytes = EXCLUDED.bytes, messages = EXCLUDED.messages, updated_at = now();
	ELSIF m.account_id IS NOT NULL THEN
		INSERT INTO vmail.mailbox_usage (mail_account_id, bytes, messages) VALUES (m.account_id, p_bytes, p_messages)
		ON CONFLICT (mail_account_id) DO UPDATE SET bytes = EXCLUDED.bytes, messages = EXCLUDED.messages, updated_at = now();
	ELSE
		RETURN false;
	END IF;
	RETURN true;
END $$;

CREATE OR REPLACE FUNCTION vmail.quota_unset(p_login text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	m record;
BEGIN
	m := vmail.mailbox_of(p_login);
	DELETE FROM vmail.mailbox_usage
	 WHERE (m.shell_id IS NOT NULL AND shell_account_id = m.shell_id)
	    OR (m.account_id IS NOT NULL AND mail_account_id = m.account_id);
	RETURN m.shell_id IS NOT NULL OR m.account_id IS NOT NULL;
END $$;

-- The state of a shell account's disk limit (R5 allocation, R6 usage).
CREATE OR REPLACE FUNCTION vmail.quota_state(p_login text)
RETURNS TABLE (login text, disk_limit bigint, files bigint, mailbox bigint, free_mailboxes bigint,
	total bigint, allocated bigint)
LANGUAGE sql STABLE AS $$
	SELECT s.login, s.disk_limit,
		coalesce((SELECT f.bytes FROM vmail.files_usage f WHERE f.shell_account_id = s.id), 0),
		coalesce((SELECT u.bytes FROM vmail.mailbox_usage u WHERE u.shell_account_id = s.id), 0),
		coalesce((SELECT sum(u.bytes) FROM vmail.mailbox_usage u JOIN vmail.mail_account a ON a.id = u.mail_account_id
			WHERE a.shell_account_id = s.id AND a.kind = 'free'), 0)::bigint,
		(SELECT t.bytes FROM vmail.usage_total(s.id, NULL) t),
		coalesce((SELECT sum(a.quota) FROM vmail.mail_account a WHERE a.shell_account_id = s.id AND a.kind = 'free'), 0)::bigint
	FROM vmail.shell_account s WHERE s.login = lower(p_login)
$$;

-- The uid a login's mail processes run under (Dovecot setuid()s to it); NULL if unknown.
CREATE OR REPLACE FUNCTION vmail.mail_uid(p_login text) RETURNS integer
LANGUAGE sql STABLE AS $$
	SELECT f.uid FROM vmail.mailbox_facts(p_login) f
$$;

-- May a process running as p_peer_uid touch p_login's counters?  p_peer_uid < 0 is a trusted
-- peer (root, Dovecot's own users).  An unknown login is refused to untrusted peers like a
-- foreign one, so that probing tells nothing about which logins exist.
CREATE OR REPLACE FUNCTION vmail.dict_peer_may(p_login text, p_peer_uid integer) RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT p_peer_uid < 0 OR vmail.mail_uid(p_login) IS NOT DISTINCT FROM p_peer_uid
$$;

-- quota_get for a peer: 'denied' when dict_peer_may says no, else quota_get's answer
-- (NULL = no counter, so Dovecot recounts).
CREATE OR REPLACE FUNCTION vmail.dict_quota_get(p_login text, p_key text, p_root text, p_peer_uid integer)
RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN vmail.dict_peer_may(p_login, p_peer_uid)
		THEN vmail.quota_get(p_login, p_key, p_root) ELSE 'denied' END
$$;

-- A batch of Dovecot transactions on mailbox counters, applied in array order.  Per
-- transaction i: the login, what to do with storage (p_bop[i], p_bval[i]) and with messages
-- (p_mop[i], p_mval[i]) — '' leave alone, '+' add (only to an existing counter), '=' set
-- (creates the counter), 'x' unset — and the peer's uid (-1 = trusted).  The answer has one
-- letter per transaction: O applied; N an increment found no counter, so nothing of that
-- transaction changed and Dovecot recounts (an increment never creates a counter); D denied;
-- B or M: the storage (B) or messages (M) counter it sets or adds to would end outside
-- ±2^53 bytes or ±2^31 messages (the bounds of src/vmaild/dict_txn.h), so nothing of that
-- transaction changed.  Negative results within the bounds are kept: Dovecot recounts on them.
-- Nothing here raises on a transaction's values: one client's commit must not fail the
-- others of its batch, and an EXCEPTION block per transaction would cost a subtransaction
-- each (the results are computed in numeric, which cannot overflow on two bigints).
CREATE OR REPLACE FUNCTION vmail.dict_commit(p_login text[], p_bop text[], p_bval bigint[], p_mop text[],
	p_mval bigint[], p_peer integer[]) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	answer text := '';
	m record;
	u vmail.mailbox_usage;
	have boolean;
	b numeric;
	n numeric;
BEGIN
	FOR i IN 1 .. coalesce(array_length(p_login, 1), 0) LOOP
		IF NOT vmail.dict_peer_may(p_login[i], p_peer[i]) THEN
			answer := answer || 'D';
			CONTINUE;
		END IF;
		m := vmail.mailbox_of(p_login[i]);
		IF m.shell_id IS NULL AND m.account_id IS NULL THEN
			answer := answer || 'N';
			CONTINUE;
		END IF;
		SELECT * INTO u FROM vmail.mailbox_usage x
		 WHERE (m.shell_id IS NOT NULL AND x.shell_account_id = m.shell_id)
		    OR (m.account_id IS NOT NULL AND x.mail_account_id = m.account_id)
		FOR UPDATE;
		have := FOUND;
		IF 'x' IN (p_bop[i], p_mop[i]) AND '=' NOT IN (p_bop[i], p_mop[i]) AND '+' NOT IN (p_bop[i], p_mop[i]) THEN
			DELETE FROM vmail.mailbox_usage x
			 WHERE (m.shell_id IS NOT NULL AND x.shell_account_id = m.shell_id)
			    OR (m.account_id IS NOT NULL AND x.mail_account_id = m.account_id);
			answer := answer || 'O';
			CONTINUE;
		END IF;
		IF NOT have AND '+' IN (p_bop[i], p_mop[i]) THEN
			answer := answer || 'N';
			CONTINUE;
		END IF;
		b := CASE p_bop[i] WHEN '=' THEN p_bval[i] WHEN '+' THEN u.bytes::numeric + p_bval[i]
			WHEN 'x' THEN 0 ELSE coalesce(u.bytes, 0) END;
		n := CASE p_mop[i] WHEN '=' THEN p_mval[i] WHEN '+' THEN u.messages::numeric + p_mval[i]
			WHEN 'x' THEN 0 ELSE coalesce(u.messages, 0) END;
		-- Only the counters this transaction writes: one left alone is not its business.
		IF p_bop[i] IN ('=', '+') AND abs(b) > 9007199254740992 THEN
			answer := answer || 'B';
			CONTINUE;
		END IF;
		IF p_mop[i] IN ('=', '+') AND abs(n) > 2147483648 THEN
			answer := answer || 'M';
			CONTINUE;
		END IF;
		IF have THEN
			UPDATE vmail.mailbox_usage x SET bytes = b, messages = n, updated_at = now()
			 WHERE (m.shell_id IS NOT NULL AND x.shell_account_id = m.shell_id)
			    OR (m.account_id IS NOT NULL AND x.mail_account_id = m.account_id);
		ELSIF m.shell_id IS NOT NULL THEN
			INSERT INTO vmail.mailbox_usage (shell_account_id, bytes, messages) VALUES (m.shell_id, b, n)
			ON CONFLICT (shell_account_id) DO UPDATE SET bytes = EXCLUDED.bytes,
				messages = EXCLUDED.messages, updated_at = now();
		ELSE
			INSERT INTO vmail.mailbox_usage (mail_account_id, bytes, messages) VALUES (m.account_id, b, n)
			ON CONFLICT (mail_account_id) DO UPDATE SET bytes = EXCLUDED.bytes,
				messages = EXCLUDED.messages, updated_at = now();
		END IF;
		answer := answer || 'O';
	END LOOP;
	RETURN answer;
END $$;

-- For Dovecot's sql userdb (2.4 path, or 2.3 without dict): userdb_effective with the columns
-- named the way Dovecot wants them, NULLs (no tempfail) dropped by the driver.
--   user_query = SELECT username AS user, home, mail, uid, gid, quota_rule, tempfail
--                FROM vmail.userdb_effective('%u')
-- (no new function needed: documented in contrib/dovecot/dovecot-sql.conf.ext)
