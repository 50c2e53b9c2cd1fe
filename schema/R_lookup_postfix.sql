-- R_lookup_postfix: what Postfix asks vmaild (socketmap domain, alias, mailbox, sender; the
-- policy service), in one place.  Every function folds case itself and returns NULL for "not
-- found"; errors are errors.  R6 and R9 at delivery: policy_check.
--
-- A suspended domain stays hosted (lookup_domain finds it, so Postfix never refuses it as
-- relaying) while its addresses raise SQLSTATE VM451, a deliberate temporary failure: vmaild
-- answers it TEMP and never with an older cached answer (src/pg PG_DEFERRED), so new mail for
-- it is deferred, never bounced, until the domain is active again or Postfix's
-- maximal_queue_lifetime runs out.  The policy service defers at RCPT both its addresses and
-- aliases elsewhere that expand to its mailboxes (cleanup's expansion would otherwise defer
-- the whole message, every other recipient with it).  Mail whose addresses Postfix resolved
-- before the suspension is still delivered: Dovecot's userdb does not look at domain state.
-- Pending domains are not ours yet: not found.

-- "local+ext" -> ("local", "+ext") at the first of the delimiter characters; ext NULL if none.
CREATE OR REPLACE FUNCTION vmail.split_extension(lp text, delims text, OUT base text, OUT ext text)
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

CREATE OR REPLACE FUNCTION vmail.with_ext(addr text, ext text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN ext IS NULL THEN addr
		ELSE left(addr, strpos(addr, '@') - 1) || ext || substr(addr, strpos(addr, '@')) END
$$;

-- The address registry row an address key resolves to: exact first, then without its
-- sub-address extension.  The catch-all is not consulted here.  An address in a suspended
-- domain raises VM451 (see the top of this file).
CREATE OR REPLACE FUNCTION vmail.find_address(p_key text, OUT entry vmail.address, OUT ext text, OUT domain_id bigint, OUT base text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
	k text := lower(p_key);
	at int := length(k) - strpos(reverse(k), '@') + 1;
	lp text;
	b text;
	st text;
BEGIN
	IF strpos(k, '@') = 0 OR at = 1 THEN
		RETURN;
	END IF;
	lp := left(k, at - 1);
	SELECT d.id, d.state INTO domain_id, st FROM vmail.domain d
	 WHERE d.name = substr(k, at + 1) AND d.state IN ('active', 'suspended');
	IF st = 'suspended' THEN
		PERFORM vmail.fail('VM451', format('domain %s is suspended: its mail is deferred', substr(k, at + 1)));
	END IF;
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

CREATE OR REPLACE FUNCTION vmail.canonical_address(p_shell bigint, p_account bigint) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN p_shell IS NOT NULL
		THEN (SELECT login || '@' || (SELECT primary_domain FROM vmail.settings) FROM vmail.shell_account WHERE id = p_shell)
		ELSE (SELECT address FROM vmail.mail_account WHERE id = p_account) END
$$;

-- Dovecot's canonical username of a mailbox.
CREATE OR REPLACE FUNCTION vmail.canonical_login(p_shell bigint, p_account bigint) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN p_shell IS NOT NULL
		THEN (SELECT login FROM vmail.shell_account WHERE id = p_shell)
		ELSE (SELECT address FROM vmail.mail_account WHERE id = p_account) END
$$;

CREATE OR REPLACE FUNCTION vmail.entry_destinations(e vmail.address, p_ext text) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT CASE e.kind
		WHEN 'alias' THEN (
			SELECT string_agg(coalesce(t.external,
				vmail.with_ext(vmail.canonical_address(t.shell_account_id, t.mail_account_id), p_ext)), ','
				ORDER BY t.position)
			FROM vmail.alias_target t WHERE t.alias_id = e.alias_id)
		ELSE vmail.with_ext(vmail.canonical_address(e.shell_account_id, e.mail_account_id), p_ext) END
$$;

-- The socketmap lookups (domain, alias, mailbox, sender) answer from the routing relation:
-- R_route.sql.  Their meaning, which route_rows precomputes with the functions above:
-- "domain": hosted, active or suspended (a suspended domain's addresses defer).  "alias":
-- where an address goes.  Exact alias or mailbox (a mailbox resolves to its canonical
-- address, which resolves to itself, so Postfix's expansion ends); then the same without the
-- sub-address extension (kept on mailbox destinations, as Postfix's
-- propagate_unmatched_extensions would); postmaster@ and abuse@ default to the ISP's
-- postmaster; the catch-all only when no address matched.  "mailbox": the canonical address
-- when the address is a mailbox.  "sender" (smtpd_sender_login_maps): the canonical logins of
-- the mailboxes the address delivers to, plus the shell account that owns them.

-- The mailboxes (shell_id, account_id) an address delivers to: what the alias map expands to,
-- restricted to our own mailboxes.  with_catchall: also through the catch-all and postmaster.
CREATE OR REPLACE FUNCTION vmail.address_mailboxes(p_key text, with_catchall boolean)
RETURNS TABLE (shell_id bigint, account_id bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
	f record;
BEGIN
	-- the routing relation's row for the key (R_route.sql): one probe
	SELECT * INTO f FROM vmail.route_find(p_key, with_catchall);
	IF f.suspended THEN
		PERFORM vmail.route_deferred(f.domain_name);
	ELSIF f.kind = 'postmaster' THEN
		RETURN QUERY SELECT m.shell_id, m.account_id
			FROM vmail.address_mailboxes((SELECT postmaster_address FROM vmail.settings), false) m;
	ELSIF f.kind IS NOT NULL THEN
		RETURN QUERY SELECT * FROM unnest(f.shells, f.accounts);
	END IF;
END $$;

-- Delivery-time verdict for one recipient (policy service): NULL when fine or not ours,
-- 'domain_suspended<TAB>domain' (the recipient's domain is suspended), 'suspended<TAB>mailbox'
-- (R9), or 'full<TAB>mailbox<TAB>used<TAB>limit' (R6 or the mailbox's own quota).  size 0
-- (unknown at RCPT) still refuses a mailbox that is already full.
CREATE OR REPLACE FUNCTION vmail.policy_check(p_recipient text, p_size bigint) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
	m record;
	f record;
	used bigint;
	need bigint := greatest(coalesce(p_size, 0), 1);
	k text := lower(p_recipient);
	dom text := CASE WHEN strpos(k, '@') > 0 THEN substr(k, length(k) - strpos(reverse(k), '@') + 2) END;
BEGIN
	-- a verdict, not find_address's VM451: the policy words the deferral itself
	IF EXISTS (SELECT 1 FROM vmail.domain d WHERE d.name = dom AND d.state = 'suspended') THEN
		RETURN 'domain_suspended' || E'\t' || dom;
	END IF;
	FOR m IN SELECT * FROM vmail.address_mailboxes(p_recipient, true) LOOP
		IF m.account_id IS NOT NULL THEN
			SELECT d.name INTO dom FROM vmail.mail_account a JOIN vmail.domain d ON d.id = a.domain_id
			 WHERE a.id = m.account_id AND d.state = 'suspended';
			IF FOUND THEN
				RETURN 'domain_suspended' || E'\t' || dom;
			END IF;
		END IF;
		-- the login relation by id: a shell account's two rows carry the same facts
		SELECT * INTO f FROM vmail.login l WHERE l.shell_id = m.shell_id OR l.account_id = m.account_id LIMIT 1;
		IF f.suspended THEN
			RETURN 'suspended' || E'\t' || vmail.canonical_address(m.shell_id, m.account_id);
		END IF;
		IF m.account_id IS NOT NULL THEN
			used := coalesce((SELECT u.bytes FROM vmail.mailbox_usage u WHERE u.mail_account_id = m.account_id), 0);
			IF used + need > f.own_quota THEN
				RETURN format(E'full\t%s\t%s\t%s', f.username, used, f.own_quota);
			END IF;
		END IF;
		SELECT t.bytes INTO used FROM vmail.usage_total(f.payer_shell_id, f.account_id) t;
		IF used + need > f.account_limit THEN
			RETURN format(E'full\t%s\t%s\t%s', vmail.canonical_address(m.shell_id, m.account_id), used, f.account_limit);
		END IF;
	END LOOP;
	RETURN NULL;
END $$;
