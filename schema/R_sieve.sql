-- R_sieve: out-of-office replies and forwarding (019_sieve.sql), and the one Sieve script per
-- mailbox they make, which Pigeonhole reads through vmaild's dict as a "before" script
-- (contrib/dovecot).  The script is computed at every lookup from the rule row and the
-- mailbox's addresses, never stored: an alias added or removed changes the reply's
-- :addresses at the next delivery with nothing to keep in step.  R11 (docs/rules.md): at
-- most forward_limit targets per mailbox, no hosted target that does not exist, no target
-- that leads back to the mailbox; forwarding changes take one transaction lock in turn, so
-- two concurrent changes cannot close a loop between them.

-- A string in a Sieve script (RFC 5228 §2.4.2): quoted, with '\' and '"' escaped.  Every
-- customer string enters a script through this or sieve_text, nothing else.
CREATE OR REPLACE FUNCTION vmail.sieve_quote(p text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
	SELECT '"' || replace(replace(p, '\', '\\'), '"', '\"') || '"'
$$;

-- A multi-line Sieve string: "text:", the lines (one that starts with "." gets another, so
-- that no line of the text can end the string), a lone "." line.  Nothing in it is an escape.
CREATE OR REPLACE FUNCTION vmail.sieve_text(p text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
	SELECT E'text:\n' || regexp_replace(rtrim(p, E'\n'), '(^|\n)\.', '\1..', 'g') || E'\n.\n'
$$;

-- The id Pigeonhole's dict storage knows a script by: it changes exactly when the text does,
-- so Pigeonhole recompiles then and only then.
CREATE OR REPLACE FUNCTION vmail.sieve_id(p_script text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
	SELECT encode(sha256(convert_to(p_script, 'UTF8')), 'hex')
$$;

-- Every address that delivers to a mailbox, for the out-of-office reply's :addresses (RFC
-- 5230 §4.5: without them Pigeonhole does not answer mail sent to an alias) and its :from:
-- the mailbox's own address, the aliases that name it, and each of those in the domain
-- aliases of its domain.  Catch-alls are not addresses of anyone.  Index probes only.
CREATE OR REPLACE FUNCTION vmail.mailbox_addresses(p_shell bigint, p_account bigint)
RETURNS TABLE (address text)
LANGUAGE sql STABLE AS $$
	WITH own AS (
		SELECT vmail.canonical_address(p_shell, p_account) AS a
		UNION
		SELECT al.address FROM vmail.alias_target t JOIN vmail.alias al ON al.id = t.alias_id
		 WHERE (t.shell_account_id = p_shell OR t.mail_account_id = p_account)
		   AND left(al.address, 1) <> '@'
	)
	SELECT o.a FROM own o WHERE o.a IS NOT NULL
	UNION
	SELECT split_part(o.a, '@', 1) || '@' || x.name FROM own o
	  JOIN vmail.domain d ON d.name = split_part(o.a, '@', 2)
	  JOIN vmail.domain x ON x.alias_of = d.id
	ORDER BY 1
$$;

-- The script of one rule row; NULL when it does nothing.  The out-of-office dates are tested
-- when the mail arrives (the date extension's currentdate), so the script does not depend on
-- when it was fetched or compiled.  Forwarding with a copy kept is "redirect :copy" and the
-- user's own script (~/.dovecot.sieve) still runs after this one; without a copy, "stop" ends
-- the sequence (docs/rules.md, R11).
CREATE OR REPLACE FUNCTION vmail.sieve_script_of(r vmail.sieve_rule) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
	req text[] := '{}';
	body text := '';
	cond text[] := '{}';
	vac text;
	t text;
BEGIN
	IF r.vacation_on THEN
		req := req || '"vacation"'::text;
		IF r.vacation_start IS NOT NULL THEN
			cond := cond || format('currentdate :value "ge" "date" %s',
				vmail.sieve_quote(to_char(r.vacation_start, 'YYYY-MM-DD')));
		END IF;
		IF r.vacation_end IS NOT NULL THEN
			cond := cond || format('currentdate :value "le" "date" %s',
				vmail.sieve_quote(to_char(r.vacation_end, 'YYYY-MM-DD')));
		END IF;
		IF cardinality(cond) > 0 THEN
			req := req || '"date"'::text || '"relational"'::text;
		END IF;
		vac := format('vacation :days %s :subject %s :from %s :addresses [%s] %s;', r.vacation_days,
			vmail.sieve_quote(r.vacation_subject),
			vmail.sieve_quote(coalesce(r.vacation_from,
				vmail.canonical_address(r.shell_account_id, r.mail_account_id))),
			(SELECT string_agg(vmail.sieve_quote(m.address), ', ')
			   FROM vmail.mailbox_addresses(r.shell_account_id, r.mail_account_id) m),
			vmail.sieve_text(r.vacation_body));
		IF cardinality(cond) > 0 THEN
			body := body || 'if allof (' || array_to_string(cond, ', ') || E') {\n' || vac || E'\n}\n';
		ELSE
			body := body || vac || E'\n';
		END IF;
	END IF;
	IF cardinality(r.forward_to) > 0 THEN
		IF r.forward_keep THEN
			req := req || '"copy"'::text;
		END IF;
		FOREACH t IN ARRAY r.forward_to LOOP
			body := body || 'redirect ' || CASE WHEN r.forward_keep THEN ':copy ' ELSE '' END
				|| vmail.sieve_quote(t) || E';\n';
		END LOOP;
		IF NOT r.forward_keep THEN
			body := body || E'stop;\n';
		END IF;
	END IF;
	IF body = '' THEN
		RETURN NULL;
	END IF;
	RETURN E'# vmaild: made from the database (vmailctl vacation, vmailctl forward, vmail-panel)\n'
		|| CASE WHEN cardinality(req) > 0 THEN 'require [' || array_to_string(req, ', ') || E'];\n' ELSE '' END
		|| body;
END $$;

-- The script of a Dovecot login (one probe of vmail.login, one of the rule by its mailbox);
-- NULL for an unknown login.  A mailbox without rules gets a script that does nothing, never
-- "not found": Pigeonhole 2.4.1 (Debian 13) fails the delivery temporarily when a "before"
-- script of the dict driver is not found (sieve_script_sequence_next tests the caller's
-- error code instead of the storage's; later 2.4 releases fixed it), so every such mailbox's
-- mail would wait.  The empty script's id never changes: it is compiled once per mailbox.
CREATE OR REPLACE FUNCTION vmail.sieve_script(p_login text) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT coalesce(vmail.sieve_script_of(r), E'# vmaild: no out-of-office reply, no forwarding\n')
	  FROM vmail.login l
	  LEFT JOIN vmail.sieve_rule r ON r.shell_account_id = l.shell_id OR r.mail_account_id = l.account_id
	 WHERE l.key = lower(p_login)
$$;

-- Pigeonhole's dict storage through vmaild: priv/sieve/name/vmail -> the id, then
-- priv/sieve/data/<id> -> the script; NULL (not found) for an unknown login, another name or
-- a stale id.  'denied' when the peer may not read p_login's scripts: the quota socket's rule
-- (dict_peer_may), since a script tells where someone's mail goes.
CREATE OR REPLACE FUNCTION vmail.dict_sieve_get(p_login text, p_key text, p_peer_uid integer) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN NOT vmail.dict_peer_may(p_login, p_peer_uid) THEN 'denied'
		WHEN p_key = 'priv/sieve/name/vmail' THEN vmail.sieve_id(x.s)
		WHEN p_key = 'priv/sieve/data/' || vmail.sieve_id(x.s) THEN x.s END
	FROM (SELECT vmail.sieve_script(p_login) AS s) x
$$;

-- ---- changes ----

-- The mailbox an administrator or a user names (a shell account's login or login@primary, a
-- mail account's address), its customer and canonical address.
CREATE OR REPLACE FUNCTION vmail.sieve_mailbox(p_address text, OUT shell_id bigint,
	OUT account_id bigint, OUT customer_id bigint, OUT address text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
	m record := vmail.mailbox_of(p_address);
BEGIN
	IF m.shell_id IS NULL AND m.account_id IS NULL THEN
		PERFORM vmail.fail('VM404', format('no mailbox "%s"', p_address));
	END IF;
	shell_id := m.shell_id;
	account_id := m.account_id;
	address := vmail.canonical_address(m.shell_id, m.account_id);
	customer_id := coalesce((SELECT s.customer_id FROM vmail.shell_account s WHERE s.id = m.shell_id),
		(SELECT a.customer_id FROM vmail.mail_account a WHERE a.id = m.account_id));
END $$;

-- The rule row of a mailbox, created empty if missing, locked for the change.
CREATE OR REPLACE FUNCTION vmail.sieve_rule_for(p_address text) RETURNS vmail.sieve_rule
LANGUAGE plpgsql AS $$
DECLARE
	m record := vmail.sieve_mailbox(p_address);
	r vmail.sieve_rule;
BEGIN
	INSERT INTO vmail.sieve_rule (shell_account_id, mail_account_id) VALUES (m.shell_id, m.account_id)
	ON CONFLICT DO NOTHING;
	SELECT * INTO r FROM vmail.sieve_rule x
	 WHERE x.shell_account_id = m.shell_id OR x.mail_account_id = m.account_id FOR UPDATE;
	RETURN r;
END $$;

-- A rule row that holds nothing any more goes (its out-of-office text stays while it is off).
CREATE OR REPLACE FUNCTION vmail.sieve_rule_tidy(p_id bigint) RETURNS void
LANGUAGE sql AS $$
	DELETE FROM vmail.sieve_rule WHERE id = p_id AND NOT vacation_on AND cardinality(forward_to) = 0
	   AND vacation_subject IS NULL
$$;

-- Out-of-office on (or changed).  NULL p_start/p_end: from now / without end; NULL p_days: 7;
-- NULL p_from: the mailbox's own address.  Lines may end in CRLF (stored as LF).
CREATE OR REPLACE FUNCTION vmail.vacation_set(p_address text, p_subject text, p_body text,
	p_start date, p_end date, p_days integer, p_from text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	r vmail.sieve_rule := vmail.sieve_rule_for(p_address);
	body text := replace(p_body, E'\r\n', E'\n');
	from_addr text := lower(btrim(p_from));
BEGIN
	IF coalesce(btrim(p_subject), '') = '' THEN
		PERFORM vmail.fail('VM400', 'the out-of-office subject is empty');
	ELSIF length(p_subject) > 200 THEN
		PERFORM vmail.fail('VM400', format('the out-of-office subject has %s characters; at most 200', length(p_subject)));
	ELSIF p_subject ~ '[[:cntrl:]]' THEN
		PERFORM vmail.fail('VM400', 'the out-of-office subject is one line without control characters');
	END IF;
	IF coalesce(btrim(body, E' \n\t'), '') = '' THEN
		PERFORM vmail.fail('VM400', 'the out-of-office text is empty');
	ELSIF octet_length(body) > 8192 THEN
		PERFORM vmail.fail('VM400', format('the out-of-office text has %s bytes; at most 8192 (8 KiB)', octet_length(body)));
	ELSIF body ~ '[\x01-\x08\x0b-\x1f\x7f\r]' THEN
		PERFORM vmail.fail('VM400', 'the out-of-office text has control characters (only line ends and tabs are allowed)');
	END IF;
	IF p_days IS NOT NULL AND p_days NOT BETWEEN 1 AND 30 THEN
		PERFORM vmail.fail('VM400', format('days %s: one reply per sender every 1 to 30 days', p_days));
	END IF;
	IF p_end < p_start THEN
		PERFORM vmail.fail('VM400', format('the out-of-office ends (%s) before it starts (%s)', p_end, p_start));
	END IF;
	IF from_addr IS NOT NULL AND NOT EXISTS (SELECT 1 FROM vmail.mailbox_addresses(r.shell_account_id,
			r.mail_account_id) m WHERE m.address = from_addr) THEN
		PERFORM vmail.fail('VM400', format('%s is not an address of mailbox %s (see vmailctl vacation show)',
			p_from, vmail.canonical_address(r.shell_account_id, r.mail_account_id)));
	END IF;
	UPDATE vmail.sieve_rule SET vacation_on = true, vacation_subject = p_subject, vacation_body = body,
		vacation_start = p_start, vacation_end = p_end, vacation_days = coalesce(p_days, 7),
		vacation_from = from_addr
	 WHERE id = r.id;
END $$;

CREATE OR REPLACE FUNCTION vmail.vacation_off(p_address text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	r vmail.sieve_rule := vmail.sieve_rule_for(p_address);
BEGIN
	UPDATE vmail.sieve_rule SET vacation_on = false WHERE id = r.id AND vacation_on;
	PERFORM vmail.sieve_rule_tidy(r.id);
END $$;

CREATE OR REPLACE FUNCTION vmail.vacation_show(p_address text)
RETURNS TABLE (address text, active boolean, subject text, body text, start_date date, end_date date,
	days integer, from_address text, addresses text[])
LANGUAGE sql STABLE AS $$
	SELECT m.address, coalesce(r.vacation_on, false), r.vacation_subject, r.vacation_body,
		r.vacation_start, r.vacation_end, coalesce(r.vacation_days, 7), coalesce(r.vacation_from, m.address),
		ARRAY(SELECT a.address FROM vmail.mailbox_addresses(m.shell_id, m.account_id) a)
	FROM vmail.sieve_mailbox(p_address) m
	LEFT JOIN vmail.sieve_rule r ON r.shell_account_id = m.shell_id OR r.mail_account_id = m.account_id
$$;

-- Does mail sent to p_target come back to the mailbox (p_shell, p_account), through aliases,
-- domain aliases, the postmaster default, catch-alls and other mailboxes' forwarding?  A walk
-- over the routing relation (the answers Postfix gets) and the rule rows; suspended domains
-- count as delivering (their mail is only deferred).
CREATE OR REPLACE FUNCTION vmail.forward_reaches(p_target text, p_shell bigint, p_account bigint)
RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
DECLARE
	todo text[] := ARRAY[lower(p_target)];
	seen text[] := '{}';
	a text;
	f record;
	mb record;
	k text;
	steps integer := 0;
BEGIN
	WHILE cardinality(todo) > 0 LOOP
		a := todo[1];
		todo := todo[2:];
		steps := steps + 1;
		IF steps > 1000 THEN
			PERFORM vmail.fail('VM409', format('forwarding to %s: the chain is too long to check (over 1000 addresses)', p_target));
		END IF;
		SELECT * INTO f FROM vmail.route_find(a, true, true);
		IF f.kind = 'postmaster' THEN
			todo := todo || (SELECT postmaster_address FROM vmail.settings);
			CONTINUE;
		END IF;
		FOR mb IN SELECT * FROM unnest(f.shells, f.accounts) x(shell_id, account_id) LOOP
			IF mb.shell_id IS NOT DISTINCT FROM p_shell AND mb.account_id IS NOT DISTINCT FROM p_account THEN
				RETURN true;
			END IF;
			k := coalesce('s' || mb.shell_id, 'a' || mb.account_id);
			CONTINUE WHEN k = ANY (seen);
			seen := seen || k;
			todo := todo || coalesce((SELECT r.forward_to FROM vmail.sieve_rule r
				WHERE r.shell_account_id = mb.shell_id OR r.mail_account_id = mb.account_id), '{}');
		END LOOP;
	END LOOP;
	RETURN false;
END $$;

-- Forward a mailbox's mail to one more address (R11), or to a login's mailbox.  p_keep: keep a copy in the mailbox
-- (NULL: as it was; a new mailbox rule keeps one).
CREATE OR REPLACE FUNCTION vmail.forward_add(p_address text, p_target text, p_keep boolean) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	r vmail.sieve_rule;
	t text := lower(btrim(p_target));
	lim integer := (SELECT forward_limit FROM vmail.settings);
	f record;
BEGIN
	-- Every forwarding change in turn: a loop closes across customers as easily as within one.
	PERFORM pg_advisory_xact_lock(hashtext('vmail.forward'));
	r := vmail.sieve_rule_for(p_address);
	IF strpos(t, '@') = 0 THEN -- a login here: its mailbox's address
		SELECT vmail.canonical_address(m.shell_id, m.account_id) INTO f FROM vmail.mailbox_of(t) m;
		t := coalesce(f.canonical_address, t);
	END IF;
	IF t IS NULL OR length(t) > 254 OR t !~ '^[^@[:space:][:cntrl:],<>"\\]+@[a-z0-9.-]+$' THEN
		PERFORM vmail.fail('VM400', format('"%s" is not a mail address to forward to', p_target));
	END IF;
	IF t = ANY (r.forward_to) THEN
		PERFORM vmail.fail('VM409', format('mailbox %s already forwards to %s',
			vmail.canonical_address(r.shell_account_id, r.mail_account_id), t));
	END IF;
	IF cardinality(r.forward_to) >= lim THEN
		PERFORM vmail.fail('VM409', format('R11: mailbox %s already forwards to %s of %s addresses',
			vmail.canonical_address(r.shell_account_id, r.mail_account_id), cardinality(r.forward_to), lim));
	END IF;
	SELECT * INTO f FROM vmail.route_find(t, true, true);
	IF FOUND AND f.kind IS NULL OR NOT FOUND AND EXISTS (SELECT 1 FROM vmail.domain d
			WHERE d.name = split_part(t, '@', 2)) THEN
		PERFORM vmail.fail('VM404', format('unknown mailbox "%s" (its domain is hosted here)', t));
	END IF;
	IF vmail.forward_reaches(t, r.shell_account_id, r.mail_account_id) THEN
		PERFORM vmail.fail('VM409', format('R11: forwarding %s to %s would loop: mail to %s comes back to %s',
			vmail.canonical_address(r.shell_account_id, r.mail_account_id), t, t,
			vmail.canonical_address(r.shell_account_id, r.mail_account_id)));
	END IF;
	UPDATE vmail.sieve_rule SET forward_to = forward_to || t, forward_keep = coalesce(p_keep, forward_keep)
	 WHERE id = r.id;
END $$;

CREATE OR REPLACE FUNCTION vmail.forward_del(p_address text, p_target text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	r vmail.sieve_rule;
	t text := lower(btrim(p_target));
BEGIN
	PERFORM pg_advisory_xact_lock(hashtext('vmail.forward'));
	r := vmail.sieve_rule_for(p_address);
	IF NOT t = ANY (r.forward_to) THEN
		PERFORM vmail.sieve_rule_tidy(r.id);
		PERFORM vmail.fail('VM404', format('mailbox %s does not forward to %s',
			vmail.canonical_address(r.shell_account_id, r.mail_account_id), p_target));
	END IF;
	UPDATE vmail.sieve_rule SET forward_to = array_remove(forward_to, t) WHERE id = r.id;
	PERFORM vmail.sieve_rule_tidy(r.id);
END $$;

CREATE OR REPLACE FUNCTION vmail.forward_list(p_address text) RETURNS TABLE (target text, keep boolean)
LANGUAGE sql STABLE AS $$
	SELECT t.target, r.forward_keep
	FROM vmail.sieve_mailbox(p_address) m
	JOIN vmail.sieve_rule r ON r.shell_account_id = m.shell_id OR r.mail_account_id = m.account_id
	CROSS JOIN LATERAL unnest(r.forward_to) WITH ORDINALITY t(target, n)
	ORDER BY t.n
$$;

-- keys: self_forward (on, off): may the customer's shell accounts set forwarding themselves?
CREATE OR REPLACE FUNCTION vmail.customer_set(p_name text, p_key text, p_value text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	c bigint := vmail.customer_id(p_name);
BEGIN
	CASE p_key
	WHEN 'self_forward' THEN
		IF p_value NOT IN ('on', 'off') THEN
			PERFORM vmail.fail('VM400', format('self_forward is on or off, not "%s"', p_value));
		END IF;
		UPDATE vmail.customer SET self_forward = (p_value = 'on') WHERE id = c;
	ELSE
		PERFORM vmail.fail('VM400', format('unknown customer setting "%s" (self_forward)', p_key));
	END CASE;
END $$;

-- ---- self-service: the shell account's own mailbox and its free mail accounts ----

CREATE OR REPLACE FUNCTION vmail.self_sieve_mailbox(s vmail.shell_account, p_address text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
	m record := vmail.mailbox_of(p_address);
BEGIN
	IF m.shell_id = s.id OR EXISTS (SELECT 1 FROM vmail.mail_account a
			WHERE a.id = m.account_id AND a.shell_account_id = s.id AND a.kind = 'free') THEN
		RETURN p_address;
	END IF;
	PERFORM vmail.fail('VM403', format('mailbox %s is not one of shell account %s''s', p_address, s.login));
	RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION vmail.self_vacation_set(p_token text, p_address text, p_subject text, p_body text,
	p_start date, p_end date, p_days integer, p_from text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_begin(p_token);
BEGIN
	PERFORM vmail.vacation_set(vmail.self_sieve_mailbox(s, p_address), p_subject, p_body, p_start, p_end, p_days, p_from);
END $$;

CREATE OR REPLACE FUNCTION vmail.self_vacation_off(p_token text, p_address text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_begin(p_token);
BEGIN
	PERFORM vmail.vacation_off(vmail.self_sieve_mailbox(s, p_address));
END $$;

CREATE OR REPLACE FUNCTION vmail.self_vacation_show(p_token text, p_address text)
RETURNS TABLE (address text, active boolean, subject text, body text, start_date date, end_date date,
	days integer, from_address text, addresses text[])
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_session_account(p_token);
BEGIN
	RETURN QUERY SELECT * FROM vmail.vacation_show(vmail.self_sieve_mailbox(s, p_address));
END $$;

CREATE OR REPLACE FUNCTION vmail.self_forward_add(p_token text, p_address text, p_target text, p_keep boolean) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_begin(p_token);
	a text := vmail.self_sieve_mailbox(s, p_address);
BEGIN
	IF NOT (SELECT c.self_forward FROM vmail.customer c WHERE c.id = s.customer_id) THEN
		PERFORM vmail.fail('VM403', format('forwarding is set by the administrator for customer %s; ask the administrator',
			(SELECT c.name FROM vmail.customer c WHERE c.id = s.customer_id)));
	END IF;
	PERFORM vmail.forward_add(a, p_target, p_keep);
END $$;

-- Removing a forward stays open to the user when self-service forwarding is off: what is
-- switched off is sending mail elsewhere, not stopping it.
CREATE OR REPLACE FUNCTION vmail.self_forward_del(p_token text, p_address text, p_target text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_begin(p_token);
BEGIN
	PERFORM vmail.forward_del(vmail.self_sieve_mailbox(s, p_address), p_target);
END $$;

CREATE OR REPLACE FUNCTION vmail.self_forward_list(p_token text, p_address text) RETURNS TABLE (target text, keep boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_session_account(p_token);
BEGIN
	RETURN QUERY SELECT * FROM vmail.forward_list(vmail.self_sieve_mailbox(s, p_address));
END $$;
