-- 003_lookup: the meaning of every lookup, in one place.  vmaild calls these functions for
-- Postfix (socketmap, policy) and Dovecot (dict); Dovecot's sql driver can call them too.
-- Every function folds case itself and returns NULL for "not found"; errors are errors.

-- The mailbox behind a Dovecot login: a shell account's Unix login (also login@<primary>),
-- or a mail account's full address.
CREATE FUNCTION vmail.mailbox_of(p_login text, OUT shell_id bigint, OUT account_id bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
	l text := lower(p_login);
	at int := strpos(l, '@');
BEGIN
	IF at = 0 THEN
		SELECT id INTO shell_id FROM vmail.shell_account WHERE login = l;
		RETURN;
	END IF;
	IF substr(l, at + 1) = (SELECT primary_domain FROM vmail.settings) THEN
		SELECT id INTO shell_id FROM vmail.shell_account WHERE login = left(l, at - 1);
		IF shell_id IS NOT NULL THEN
			RETURN;
		END IF;
	END IF;
	SELECT id INTO account_id FROM vmail.mail_account WHERE address = l;
END $$;

-- "local+ext" -> ("local", "+ext") at the first of the delimiter characters; ext NULL if none.
CREATE FUNCTION vmail.split_extension(lp text, delims text, OUT base text, OUT ext text)
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	pos int := 0;
	p int;
BEGIN
	base := lp;
	IF delims = '' OR lp IN ('postmaster', 'mailer-daemon') THEN
		RETURN;
	END IF;
	FOR i IN 1 .. length(delims) LOOP
		p := strpos(lp, substr(delims, i, 1));
		IF p > 1 AND (pos = 0 OR p < pos) THEN
			pos := p;
		END IF;
	END LOOP;
	IF pos > 1 THEN
		base := left(lp, pos - 1);
		ext := substr(lp, pos);
	END IF;
END $$;

CREATE FUNCTION vmail.with_ext(addr text, ext text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN ext IS NULL THEN addr
		ELSE left(addr, strpos(addr, '@') - 1) || ext || substr(addr, strpos(addr, '@')) END
$$;

-- The address registry row an address key resolves to: exact first, then without its
-- sub-address extension.  The catch-all is not consulted here.
CREATE FUNCTION vmail.find_address(p_key text, OUT entry vmail.address, OUT ext text, OUT domain_id bigint, OUT base text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
	k text := lower(p_key);
	at int := length(k) - strpos(reverse(k), '@') + 1;
	lp text;
	b text;
BEGIN
	IF strpos(k, '@') = 0 OR at = 1 THEN
		RETURN;
	END IF;
	lp := left(k, at - 1);
	SELECT d.id INTO domain_id FROM vmail.domain d WHERE d.name = substr(k, at + 1) AND d.state = 'active';
	IF domain_id IS NULL THEN
		RETURN;
	END IF;
	base := lp;
	SELECT * INTO entry FROM vmail.address a WHERE a.domain_id = find_address.domain_id AND a.local_part = lp;
	IF FOUND THEN
		RETURN;
	END IF;
	SELECT s.base, s.ext INTO b, ext FROM vmail.split_extension(lp, (SELECT subaddress_delimiter FROM vmail.settings)) s;
	IF ext IS NOT NULL THEN
		base := b;
		SELECT * INTO entry FROM vmail.address a WHERE a.domain_id = find_address.domain_id AND a.local_part = b;
		IF NOT FOUND THEN
			ext := NULL;
		END IF;
	END IF;
END $$;

CREATE FUNCTION vmail.canonical_address(p_shell bigint, p_account bigint) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN p_shell IS NOT NULL
		THEN (SELECT login || '@' || (SELECT primary_domain FROM vmail.settings) FROM vmail.shell_account WHERE id = p_shell)
		ELSE (SELECT address FROM vmail.mail_account WHERE id = p_account) END
$$;

-- Dovecot's canonical username of a mailbox.
CREATE FUNCTION vmail.canonical_login(p_shell bigint, p_account bigint) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN p_shell IS NOT NULL
		THEN (SELECT login FROM vmail.shell_account WHERE id = p_shell)
		ELSE (SELECT address FROM vmail.mail_account WHERE id = p_account) END
$$;

CREATE FUNCTION vmail.entry_destinations(e vmail.address, p_ext text) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT CASE e.kind
		WHEN 'alias' THEN (
			SELECT string_agg(coalesce(t.external,
				vmail.with_ext(vmail.canonical_address(t.shell_account_id, t.mail_account_id), p_ext)), ','
				ORDER BY t.position)
			FROM vmail.alias_target t WHERE t.alias_id = e.alias_id)
		ELSE vmail.with_ext(vmail.canonical_address(e.shell_account_id, e.mail_account_id), p_ext) END
$$;

-- Socketmap "domain": hosted and active.
CREATE FUNCTION vmail.lookup_domain(p_key text) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT name FROM vmail.domain WHERE name = lower(p_key) AND state = 'active'
$$;

-- Socketmap "alias": where an address goes.  Exact alias or mailbox (a mailbox resolves to
-- its canonical address, which resolves to itself, so Postfix's expansion ends); then the
-- same without the sub-address extension (kept on mailbox destinations, as Postfix's
-- propagate_unmatched_extensions would); postmaster@ and abuse@ default to the ISP's
-- postmaster; the catch-all only when no address matched.
CREATE FUNCTION vmail.lookup_alias(p_key text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
	f record;
	catchall vmail.address;
BEGIN
	f := vmail.find_address(p_key);
	IF f.domain_id IS NULL THEN
		RETURN NULL;
	END IF;
	IF (f.entry).kind IS NOT NULL THEN
		RETURN vmail.entry_destinations(f.entry, f.ext);
	END IF;
	IF f.base IN ('postmaster', 'abuse') THEN
		RETURN (SELECT postmaster_address FROM vmail.settings);
	END IF;
	SELECT * INTO catchall FROM vmail.address a WHERE a.domain_id = f.domain_id AND a.local_part = '';
	IF FOUND THEN
		RETURN vmail.entry_destinations(catchall, NULL);
	END IF;
	RETURN NULL;
END $$;

-- Socketmap "mailbox": the canonical address when the address is a mailbox.
CREATE FUNCTION vmail.lookup_mailbox(p_key text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
	f record;
BEGIN
	f := vmail.find_address(p_key);
	IF (f.entry).kind IN ('account', 'primary') THEN
		RETURN vmail.canonical_address((f.entry).shell_account_id, (f.entry).mail_account_id);
	END IF;
	RETURN NULL;
END $$;

-- The mailboxes (shell_id, account_id) an address delivers to: what the alias map expands to,
-- restricted to our own mailboxes.  with_catchall: also through the catch-all and postmaster.
CREATE FUNCTION vmail.address_mailboxes(p_key text, with_catchall boolean)
RETURNS TABLE (shell_id bigint, account_id bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
	f record;
	e vmail.address;
BEGIN
	f := vmail.find_address(p_key);
	IF f.domain_id IS NULL THEN
		RETURN;
	END IF;
	e := f.entry;
	IF e.kind IS NULL AND with_catchall THEN
		IF f.base IN ('postmaster', 'abuse') THEN
			RETURN QUERY SELECT m.shell_id, m.account_id
				FROM vmail.address_mailboxes((SELECT postmaster_address FROM vmail.settings), false) m;
			RETURN;
		END IF;
		SELECT * INTO e FROM vmail.address a WHERE a.domain_id = f.domain_id AND a.local_part = '';
	END IF;
	IF e.kind = 'alias' THEN
		RETURN QUERY SELECT t.shell_account_id, t.mail_account_id FROM vmail.alias_target t
			WHERE t.alias_id = e.alias_id AND t.external IS NULL ORDER BY t.position;
	ELSIF e.kind IS NOT NULL THEN
		RETURN QUERY SELECT e.shell_account_id, e.mail_account_id;
	END IF;
END $$;

-- Socketmap "sender" (smtpd_sender_login_maps): the canonical logins of the mailboxes the
-- address delivers to, plus the shell account that owns them.  Unknown addresses: NULL.
CREATE FUNCTION vmail.lookup_sender(p_key text) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT string_agg(DISTINCT l, ',') FROM (
		SELECT vmail.canonical_login(m.shell_id, m.account_id) AS l
		  FROM vmail.address_mailboxes(p_key, false) m
		UNION
		SELECT s.login FROM vmail.address_mailboxes(p_key, false) m
		  JOIN vmail.mail_account a ON a.id = m.account_id
		  JOIN vmail.shell_account s ON s.id = a.shell_account_id
	) x WHERE l IS NOT NULL
$$;

------------------------------------------------------------------------------------------
-- Dovecot passdb/userdb.

-- One row per login with everything Dovecot needs; suspended = R9 (a suspended shell
-- account suspends its free mail accounts).
CREATE FUNCTION vmail.mailbox_facts(p_login text)
RETURNS TABLE (username text, password text, suspended boolean, home text, mail text,
	uid integer, gid integer, own_quota bigint, account_limit bigint,
	shell_id bigint, account_id bigint, payer_shell_id bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
	m record;
	st vmail.settings;
BEGIN
	m := vmail.mailbox_of(p_login);
	SELECT * INTO st FROM vmail.settings;
	IF m.shell_id IS NOT NULL THEN
		RETURN QUERY SELECT s.login, s.password, s.state = 'suspended', s.home, st.shell_mail_location,
			s.uid, s.gid, s.disk_limit, s.disk_limit, s.id, NULL::bigint, s.id
			FROM vmail.shell_account s WHERE s.id = m.shell_id;
	ELSIF m.account_id IS NOT NULL THEN
		RETURN QUERY SELECT a.address, a.password,
			a.state = 'suspended' OR coalesce(s.state = 'suspended', false),
			CASE a.kind WHEN 'free'
				THEN replace(replace(replace(st.free_home_template, '%h', s.home), '%d', d.name), '%n', a.local_part)
				ELSE replace(replace(st.paid_home_template, '%d', d.name), '%n', a.local_part) END,
			CASE a.kind WHEN 'free' THEN st.free_mail_location ELSE st.paid_mail_location END,
			coalesce(s.uid, st.vmail_uid), coalesce(s.gid, st.vmail_gid),
			a.quota, coalesce(s.disk_limit, a.quota), NULL::bigint, a.id, s.id
			FROM vmail.mail_account a JOIN vmail.domain d ON d.id = a.domain_id
			LEFT JOIN vmail.shell_account s ON s.id = a.shell_account_id
			WHERE a.id = m.account_id;
	END IF;
END $$;

-- For Dovecot's sql driver: SELECT username AS user, password FROM vmail.passdb('%u').
-- Suspended accounts have no row, so IMAP, POP3 and SMTP AUTH all refuse them.
CREATE FUNCTION vmail.passdb(p_login text) RETURNS TABLE (username text, password text)
LANGUAGE sql STABLE AS $$
	SELECT f.username, f.password FROM vmail.mailbox_facts(p_login) f
	 WHERE NOT f.suspended AND f.password IS NOT NULL
$$;

CREATE FUNCTION vmail.passdb_json(p_login text) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT json_build_object('user', p.username, 'password', p.password)::text FROM vmail.passdb(p_login) p
$$;

-- Usage of the account that pays for a mailbox: a shell account's files, its own mailbox and
-- its free mailboxes; a paid account's own mailbox.
CREATE FUNCTION vmail.account_usage(p_payer_shell bigint, p_account bigint, OUT bytes bigint, OUT messages bigint)
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN p_payer_shell IS NOT NULL THEN
		coalesce((SELECT f.bytes FROM vmail.files_usage f WHERE f.shell_account_id = p_payer_shell), 0)
		+ coalesce((SELECT sum(u.bytes) FROM vmail.mailbox_usage u WHERE u.shell_account_id = p_payer_shell), 0)
		+ coalesce((SELECT sum(u.bytes) FROM vmail.mailbox_usage u JOIN vmail.mail_account a ON a.id = u.mail_account_id
			WHERE a.shell_account_id = p_payer_shell AND a.kind = 'free'), 0)
		ELSE coalesce((SELECT u.bytes FROM vmail.mailbox_usage u WHERE u.mail_account_id = p_account), 0) END,
		CASE WHEN p_payer_shell IS NOT NULL THEN
		coalesce((SELECT sum(u.messages) FROM vmail.mailbox_usage u WHERE u.shell_account_id = p_payer_shell), 0)
		+ coalesce((SELECT sum(u.messages) FROM vmail.mailbox_usage u JOIN vmail.mail_account a ON a.id = u.mail_account_id
			WHERE a.shell_account_id = p_payer_shell AND a.kind = 'free'), 0)
		ELSE coalesce((SELECT u.messages FROM vmail.mailbox_usage u WHERE u.mail_account_id = p_account), 0) END
$$;

CREATE FUNCTION vmail.mailbox_usage_of(p_shell bigint, p_account bigint, OUT bytes bigint, OUT messages bigint)
LANGUAGE sql STABLE AS $$
	SELECT u.bytes, u.messages FROM vmail.mailbox_usage u
	 WHERE (p_shell IS NOT NULL AND u.shell_account_id = p_shell)
	    OR (p_account IS NOT NULL AND u.mail_account_id = p_account)
$$;

-- For Dovecot's sql driver (2.3 with two quota roots): quota_rule is the mailbox's own
-- limit, quota2_rule the whole shell account's disk limit (root 2 = the account).
-- A suspended account answers tempfail, so LMTP defers its mail (R9).
CREATE FUNCTION vmail.userdb(p_login text)
RETURNS TABLE (username text, home text, mail text, uid integer, gid integer,
	quota_rule text, quota2_rule text, tempfail text)
LANGUAGE sql STABLE AS $$
	SELECT f.username, f.home, f.mail, f.uid, f.gid,
		'*:bytes=' || f.own_quota, '*:bytes=' || f.account_limit,
		CASE WHEN f.suspended THEN 'account suspended' END
	FROM vmail.mailbox_facts(p_login) f
$$;

-- For setups without a second quota root (Dovecot 2.4, count backend): R6 carried by the
-- mailbox's own limit, recomputed at every userdb lookup (LMTP looks up every delivery):
-- min(own quota, disk limit - (account total - this mailbox)).
CREATE FUNCTION vmail.userdb_effective(p_login text)
RETURNS TABLE (username text, home text, mail text, uid integer, gid integer,
	quota_rule text, tempfail text)
LANGUAGE sql STABLE AS $$
	SELECT f.username, f.home, f.mail, f.uid, f.gid,
		'*:bytes=' || greatest(1, least(f.own_quota,
			f.account_limit - ((vmail.account_usage(f.payer_shell_id, f.account_id)).bytes
				- coalesce((vmail.mailbox_usage_of(f.shell_id, f.account_id)).bytes, 0)))),
		CASE WHEN f.suspended THEN 'account suspended' END
	FROM vmail.mailbox_facts(p_login) f
$$;

CREATE FUNCTION vmail.userdb_json(p_login text) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN u.tempfail IS NOT NULL THEN json_build_object('tempfail', 'yes')::text
		ELSE json_build_object('user', u.username, 'home', u.home, 'mail', u.mail,
			'uid', u.uid::text, 'gid', u.gid::text,
			'quota_rule', u.quota_rule, 'quota2_rule', u.quota2_rule)::text END
	FROM vmail.userdb(p_login) u
$$;

-- Every login Dovecot may iterate (doveadm user '*').
CREATE FUNCTION vmail.userdb_list() RETURNS SETOF text
LANGUAGE sql STABLE AS $$
	SELECT login FROM vmail.shell_account
	UNION ALL
	SELECT address FROM vmail.mail_account
	ORDER BY 1
$$;

------------------------------------------------------------------------------------------
-- Quota counters (Dovecot's quota dict and quota_clone).

-- root 'mailbox': this mailbox's counter, NULL when there is no counter (Dovecot recounts);
-- root 'account': the paying account's total, never NULL for a known login.
CREATE FUNCTION vmail.quota_get(p_login text, p_key text, p_root text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
	f record;
	u record;
BEGIN
	IF p_key NOT IN ('storage', 'messages') THEN
		RETURN NULL;
	END IF;
	SELECT * INTO f FROM vmail.mailbox_facts(p_login);
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	IF p_root = 'account' THEN
		SELECT * INTO u FROM vmail.account_usage(f.payer_shell_id, f.account_id);
	ELSE
		SELECT * INTO u FROM vmail.mailbox_usage_of(f.shell_id, f.account_id);
		IF NOT FOUND THEN
			RETURN NULL;
		END IF;
	END IF;
	RETURN CASE p_key WHEN 'storage' THEN u.bytes ELSE u.messages END::text;
END $$;

-- Atomic increment; false (and nothing changed) when no counter exists.
CREATE FUNCTION vmail.quota_apply(p_login text, d_bytes bigint, d_messages bigint) RETURNS boolean
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
CREATE FUNCTION vmail.quota_set(p_login text, p_bytes bigint, p_messages bigint) RETURNS boolean
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

CREATE FUNCTION vmail.quota_unset(p_login text) RETURNS boolean
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
CREATE FUNCTION vmail.quota_state(p_login text)
RETURNS TABLE (login text, disk_limit bigint, files bigint, mailbox bigint, free_mailboxes bigint,
	total bigint, allocated bigint)
LANGUAGE sql STABLE AS $$
	SELECT s.login, s.disk_limit,
		coalesce((SELECT f.bytes FROM vmail.files_usage f WHERE f.shell_account_id = s.id), 0),
		coalesce((SELECT u.bytes FROM vmail.mailbox_usage u WHERE u.shell_account_id = s.id), 0),
		coalesce((SELECT sum(u.bytes) FROM vmail.mailbox_usage u JOIN vmail.mail_account a ON a.id = u.mail_account_id
			WHERE a.shell_account_id = s.id AND a.kind = 'free'), 0)::bigint,
		(vmail.account_usage(s.id, NULL)).bytes,
		coalesce((SELECT sum(a.quota) FROM vmail.mail_account a WHERE a.shell_account_id = s.id AND a.kind = 'free'), 0)::bigint
	FROM vmail.shell_account s WHERE s.login = lower(p_login)
$$;

-- Delivery-time verdict for one recipient (policy service): NULL when fine or not ours,
-- 'suspended<TAB>mailbox' (R9), or 'full<TAB>mailbox<TAB>used<TAB>limit' (R6 or the mailbox's
-- own quota).  size 0 (unknown at RCPT) still refuses a mailbox that is already full.
CREATE FUNCTION vmail.policy_check(p_recipient text, p_size bigint) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
	m record;
	f record;
	used bigint;
	need bigint := greatest(coalesce(p_size, 0), 1);
BEGIN
	FOR m IN SELECT * FROM vmail.address_mailboxes(p_recipient, true) LOOP
		SELECT * INTO f FROM vmail.mailbox_facts(vmail.canonical_login(m.shell_id, m.account_id));
		IF f.suspended THEN
			RETURN 'suspended' || E'\t' || vmail.canonical_address(m.shell_id, m.account_id);
		END IF;
		IF m.account_id IS NOT NULL THEN
			used := coalesce((vmail.mailbox_usage_of(NULL, m.account_id)).bytes, 0);
			IF used + need > f.own_quota THEN
				RETURN format(E'full\t%s\t%s\t%s', f.username, used, f.own_quota);
			END IF;
		END IF;
		used := (vmail.account_usage(f.payer_shell_id, f.account_id)).bytes;
		IF used + need > f.account_limit THEN
			RETURN format(E'full\t%s\t%s\t%s', vmail.canonical_address(m.shell_id, m.account_id), used, f.account_limit);
		END IF;
	END LOOP;
	RETURN NULL;
END $$;
