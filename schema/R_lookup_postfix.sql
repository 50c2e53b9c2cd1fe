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

-- The sub-address split and the address resolution live in R_route.sql (vmail.route_keys,
-- vmail.route_find) since the routing relation.
DROP FUNCTION IF EXISTS vmail.find_address(text);
DROP FUNCTION IF EXISTS vmail.split_extension(text, text);

CREATE OR REPLACE FUNCTION vmail.with_ext(addr text, ext text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN ext IS NULL THEN addr
		ELSE left(addr, strpos(addr, '@') - 1) || ext || substr(addr, strpos(addr, '@')) END
$$;

-- The canonical address and login of a mailbox, and an address row's destinations: what the
-- relations of R_route.sql store per address.  PL/pgSQL, whose queries are planned once per
-- session: as SQL functions (a scalar subquery is never inlined) they were planned at every
-- call, and vmail.route_rebuild() calls them for every address (10 000 addresses: 4.0 s as
-- SQL, 0.9 s as PL/pgSQL).
CREATE OR REPLACE FUNCTION vmail.canonical_address(p_shell bigint, p_account bigint) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
	IF p_shell IS NOT NULL THEN
		RETURN (SELECT s.login || '@' || (SELECT st.primary_domain FROM vmail.settings st)
			  FROM vmail.shell_account s WHERE s.id = p_shell);
	END IF;
	RETURN (SELECT a.address FROM vmail.mail_account a WHERE a.id = p_account);
END $$;

-- Dovecot's canonical username of a mailbox.
CREATE OR REPLACE FUNCTION vmail.canonical_login(p_shell bigint, p_account bigint) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
	IF p_shell IS NOT NULL THEN
		RETURN (SELECT s.login FROM vmail.shell_account s WHERE s.id = p_shell);
	END IF;
	RETURN (SELECT a.address FROM vmail.mail_account a WHERE a.id = p_account);
END $$;

CREATE OR REPLACE FUNCTION vmail.entry_destinations(e vmail.address, p_ext text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
	IF e.kind = 'alias' THEN
		RETURN (SELECT string_agg(coalesce(t.external,
				vmail.with_ext(vmail.canonical_address(t.shell_account_id, t.mail_account_id), p_ext)), ','
				ORDER BY t.position)
			  FROM vmail.alias_target t WHERE t.alias_id = e.alias_id);
	END IF;
	RETURN vmail.with_ext(vmail.canonical_address(e.shell_account_id, e.mail_account_id), p_ext);
END $$;

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
	SELECT * INTO f FROM vmail.route_find(p_key, with_catchall, true);
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
	-- a verdict, not route_deferred's VM451: the policy words the deferral itself
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
